"""Prompts from a file (`babilab eval --prompts`): what the answerer receives, BABILong's own
prompt .json files, the prediction fingerprint, and bad files refused in one line."""

import json
import time
from dataclasses import replace

import pytest
import yaml

from babilab.cli import main
from babilab.errors import BabilabError
from babilab.models.base import Answer, Answerer, fingerprint_of, register
from babilab.prompt_files import BABILONG_TEMPLATE, load_prompt_file
from babilab.prompts import PromptConfig, chat_messages, format_prompt
from babilab.runs import RunStore, evaluate

QA1 = {"instruction": "Find where the person is.",
       "examples": "<example>\nAda went to the den. Where is Ada?\nAnswer: den\n</example>",
       "post_prompt": "Answer with one word."}


@register("prompt_echo")
class PromptEcho(Answerer):
    """Answers with the exact prompt text it was sent: what reached the model."""

    @classmethod
    def from_spec(cls, arg: str = "", **options) -> "PromptEcho":
        return cls()

    @property
    def fingerprint(self) -> str:
        return fingerprint_of(backend="prompt_echo")

    def answer(self, requests, config):
        start = time.perf_counter()
        return [Answer(format_prompt(r.task, r.context, r.question, config),
                       elapsed_s=time.perf_counter() - start) for r in requests]


def write_yaml(path, data):
    path.write_text(yaml.safe_dump(data))
    return path


def babilong_record(instruction="Find the item.", examples="<example>\nx\n</example>",
                    post_prompt="One sentence.", flat=False):
    """A prompt record as BABILong's scripts write it beside a predictions CSV."""
    prompt = {"instruction": instruction, "examples": examples, "post_prompt": post_prompt,
              "template": BABILONG_TEMPLATE}
    return prompt if flat else {"prompt": prompt, "generate_kwargs": {"num_beams": 1}}


def outputs(run, task="qa1"):
    with RunStore(run, create=False) as store:
        return {p.sample_id: (p.prompt_config, p.output) for p in store.predictions()
                if p.task == task}


def test_a_yaml_file_changes_what_the_answerer_receives(small_suite, tmp_path):
    path = write_yaml(tmp_path / "prompts.yaml", {"qa1": QA1})
    config = replace(PromptConfig(), prompts=load_prompt_file(path))
    evaluate(small_suite, "prompt_echo", tmp_path / "run", configs=[config], tasks=["qa1"])
    sample = next(small_suite.samples("qa1", "0k"))
    want = (f"{QA1['instruction']}\n\n{QA1['examples']}\n\n{QA1['post_prompt']}\n\n<context>\n"
            f"{sample.input}\n</context>\n\nQuestion: {sample.question}")
    assert outputs(tmp_path / "run")[sample.sample_id][1] == want
    # the hf and openai answerers send the same text as their one user message
    assert chat_messages("qa1", sample.input, sample.question, config)[-1]["content"] == want
    # without the file: babilab's own wording
    assert format_prompt("qa1", sample.input, sample.question, PromptConfig()) != want


def test_switched_off_parts_are_empty_as_in_babilong(tmp_path):
    path = write_yaml(tmp_path / "p.yaml", {"template": "{instruction}|{examples}|{post_prompt}|"
                                                        "{context}|{question}", "qa1": QA1})
    off = replace(PromptConfig(False, True, False), prompts=load_prompt_file(path))
    assert format_prompt("qa1", "ctx", "Where?", off) == f"|{QA1['examples']}||ctx|Where?"
    none = replace(PromptConfig(False, False, False), prompts=load_prompt_file(path))
    assert format_prompt("qa1", " ctx ", "Where?", none) == "||| ctx |Where?"  # then stripped


def test_a_babilong_json_is_read_flat_or_nested(tmp_path):
    for flat in (False, True):
        path = tmp_path / f"{flat}" / "qa2_4k_instruction_yes_examples_yes_post_prompt_yes.json"
        path.parent.mkdir()
        path.write_text(json.dumps(babilong_record(flat=flat)))
        prompts = load_prompt_file(path)
        assert list(prompts.tasks) == ["qa2"]
        text = format_prompt("qa2", "Mary got the milk.", "Where is the milk?",
                             replace(PromptConfig(), prompts=prompts))
        assert text == ("Find the item.\n\n<example>\nx\n</example>\n\nOne sentence.\n\n<context>\n"
                        "Mary got the milk.\n</context>\n\nQuestion: Where is the milk?")
    # BABILong's blank lines stay where a switched-off part leaves them
    off = replace(PromptConfig(True, False, True), prompts=prompts)
    assert format_prompt("qa2", "c", "q", off).startswith("Find the item.\n\n\n\nOne sentence.")


def test_a_folder_of_babilong_files_merges_configs_and_keeps_per_length_texts(tmp_path):
    folder = tmp_path / "Org-Model"
    folder.mkdir()
    on = "instruction_yes_examples_yes_post_prompt_yes"
    off = "instruction_no_examples_no_post_prompt_no"
    for length in ("1k", "2k", "4k"):
        (folder / f"qa3_{length}_{on}.json").write_text(json.dumps(babilong_record()))
        (folder / f"qa3_{length}_{off}.json").write_text(json.dumps(babilong_record("", "", "")))
    (folder / f"qa3_0k_{on}.json").write_text(json.dumps(babilong_record(examples="older")))
    (folder / f"qa3_8k_{off}.json").write_text(json.dumps(babilong_record("", "", "")))
    (folder / f"qa3_0k_{on}.csv").write_text(",target,output,question\n")
    prompts = load_prompt_file(folder)
    assert prompts.tasks["qa3"].examples == "<example>\nx\n</example>"  # most lengths use it
    assert prompts.at_length("0k").tasks["qa3"].examples == "older"
    assert prompts.at_length("4k").tasks["qa3"].examples == "<example>\nx\n</example>"
    assert list(prompts.by_length) == [("qa3", "0k")]  # 8k's empty parts are no texts of its own
    assert prompts.at_length("0k").tasks["qa3"].instruction == "Find the item."
    config = replace(PromptConfig(), prompts=prompts)
    assert config.at_length("0k").key == config.key  # one file, one fingerprint
    (folder / f"qa3_4k_{off}.json").write_text(json.dumps(babilong_record("Other.", "", "")))
    with pytest.raises(BabilabError, match="qa3 prompt files at 4k disagree on the instruction"):
        load_prompt_file(folder)


def test_the_fingerprint_changes_with_the_file_and_its_content(small_suite, tmp_path):
    run = tmp_path / "run"
    path = write_yaml(tmp_path / "prompts.yaml", {"qa1": QA1})
    base = ["eval", "--suite", str(small_suite.path), "--model", "oracle", "--run", str(run),
            "--tasks", "qa1"]
    assert main(base) == 0
    assert main([*base, "--prompts", str(path)]) == 0
    assert main([*base, "--prompts", str(path)]) == 0  # the same file: all stored already
    write_yaml(path, {"qa1": {**QA1, "instruction": "Say where the person is."}})
    assert main([*base, "--prompts", str(path)]) == 0
    with RunStore(run, create=False) as store:
        configs = [p.prompt_config for p in store.predictions()]
    names = sorted(set(configs))
    assert len(configs) == 30 and len(names) == 3 and all(configs.count(c) == 10 for c in names)
    name = PromptConfig().name
    assert name in names and sum(c.startswith(f"{name}@prompts-") for c in names) == 2
    # the run records which file each digest stands for, and the report shows it
    digest = load_prompt_file(path).short
    info = json.loads((run / "run.json").read_text())
    assert info["models"]["oracle"]["prompt_files"] == {digest: str(path)}
    assert main(["report", str(run)]) == 0
    page = (run / "report" / "index.html").read_text()
    assert f"<code>prompts-{digest}</code>: {path}" in page
    record = yaml.safe_load((run / "eval_config.yaml").read_text())
    assert record["prompts_file"] == str(path)


def test_equal_prompts_share_a_digest_whatever_the_layout(tmp_path):
    a = write_yaml(tmp_path / "a.yaml", {"qa1": QA1})
    b = tmp_path / "b.yaml"
    b.write_text("# the same prompts, other bytes\n" + yaml.safe_dump({"qa1": QA1}, width=40))
    assert load_prompt_file(a).digest == load_prompt_file(b).digest
    c = write_yaml(tmp_path / "c.yaml", {"qa1": {**QA1, "template": BABILONG_TEMPLATE + "\n"}})
    assert load_prompt_file(c).digest != load_prompt_file(a).digest


BAD_FILES = {
    "not.yaml": ("qa1: [unclosed", "not valid YAML"),
    "list.yaml": ("- qa1\n", "expected a mapping of task"),
    "missing.yaml": (yaml.safe_dump({"qa1": {"instruction": "a", "examples": ""}}),
                     'qa1: missing post_prompt (write post_prompt: "" for none)'),
    "typo.yaml": (yaml.safe_dump({"qa1": {**QA1, "post_promt": "x"}}), "unknown key 'post_promt'"),
    "task.yaml": (yaml.safe_dump({"qa21": QA1}), "unknown key 'qa21'"),
    "number.yaml": (yaml.safe_dump({"qa1": {**QA1, "instruction": 3}}), "qa1.instruction must be text"),
    "nocontext.yaml": (yaml.safe_dump({"qa1": {**QA1, "template": "{instruction} {question}"}}),
                       "template has no {context}"),
    "field.yaml": (yaml.safe_dump({"qa1": {**QA1, "template": "{context} {question} {answer}"}}),
                   "template names {answer}"),
    "brace.yaml": (yaml.safe_dump({"qa1": {**QA1, "template": "{context} {question"}}),
                   "not a format string"),
    "noqa1.yaml": (yaml.safe_dump({"qa2": QA1}), "no prompt for qa1 (it has qa2)"),
    "broken_4k_x.json": ("{", "not valid JSON"),
    "prompts.json": (json.dumps(babilong_record()), "name starts with its task"),
    "qa1_4k_x.json": (json.dumps({"prompt": {"instruction": "a"}}), "not a BABILong prompt file"),
    "absent.yaml": (None, "no such prompts file"),
}


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_a_bad_prompts_file_is_one_line_exit_2_and_nothing_written(small_suite, tmp_path, name,
                                                                    capsys):
    content, message = BAD_FILES[name]
    path = tmp_path / name
    if content is not None:
        path.write_text(content)
    run = tmp_path / "run"
    code = main(["eval", "--suite", str(small_suite.path), "--model", "oracle", "--run", str(run),
                 "--tasks", "qa1", "--prompts", str(path)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err and err.startswith("babilab: error: ")
    assert message in err, err
    assert not run.exists()


def test_a_run_file_takes_prompts_file(small_suite, tmp_path):
    path = write_yaml(tmp_path / "prompts.yaml", {"qa1": QA1})
    run_file = write_yaml(tmp_path / "run.yaml", {
        "suite": str(small_suite.path), "run": str(tmp_path / "run"), "models": ["prompt_echo"],
        "tasks": "qa1", "prompts_file": str(path)})
    assert main(["eval", "--config", str(run_file)]) == 0
    assert all(out.startswith(QA1["instruction"]) for _, out in outputs(tmp_path / "run").values())
