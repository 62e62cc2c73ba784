"""A suite as lm-evaluation-harness tasks: `babilab export-lm-eval SUITE --out DIR` writes

    DIR/dataset/                 the suite in the hub layout (hub.py): config per length,
                                 split per task
    DIR/babilab_qa1_4k.yaml      one lm-eval task per (task, length) cell
    DIR/babilab_4k.yaml          one group per length (acc averaged over its tasks' samples)
    DIR/utils.py                 process_results: lm-eval's own babilong score and the
                                 official BABILong metric
    DIR/babilab-prompts.yaml     the same prompts for `babilab eval --prompts`

    lm_eval --model hf --model_args pretrained=MODEL --include_path DIR --tasks babilab_4k

Each task is lm-eval's own `babilong_qaN` (lm_eval/tasks/babilong/, read from the installed
package at export time, never copied into babilab): its description, few-shot examples,
prompt template and generation settings (greedy, 16 new tokens), with the dataset swapped
for the local one (`dataset_path` the absolute path of DIR/dataset, `dataset_name` the
length, `test_split` the task), so moving DIR means exporting again. Tasks also carry the
tag `babilab` (`--tasks babilab` runs them all).

Scores per sample (utils.py):
  acc           lm-eval's babilong metric, called from lm-eval itself: the target is a
                substring of the stripped output, case ignored
  acc_babilong  the official metric (babilab.scoring.score_babilong), which leaderboards use
  acc_strict    babilab's strict metric
Where `acc` and `acc_babilong` part ways is measured in docs/datasets_lmeval.md.

This module does not run lm-eval: the test suite does (tests/test_lmeval.py).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import yaml

from ..errors import BabilabError
from ..outputs import staged_dir
from .files import Suite, sort_lengths
from .hub import check_out, data_file, export_hub, group_by_length

DATASET_DIR = "dataset"
PROMPTS_FILE = "babilab-prompts.yaml"
TAG = "babilab"
# What a task takes from lm-eval's babilong_qaN; the dataset, the task name, the metric and
# the metadata are babilab's.
LM_EVAL_FIELDS = ("output_type", "description", "doc_to_text", "doc_to_target", "target_delimiter",
                  "fewshot_delimiter", "num_fewshot", "fewshot_config", "generation_kwargs")
METRICS = ("acc", "acc_babilong", "acc_strict")

UTILS_PY = '''"""process_results for the babilab_* tasks (written by `babilab export-lm-eval`).

acc           lm-eval's own babilong score (lm_eval/tasks/babilong/common_utils.py)
acc_babilong  the official BABILong metric (babilab.scoring), as leaderboards score
acc_strict    babilab's strict metric (whole words, list answers as sets)
"""

from lm_eval.tasks.babilong.common_utils import process_results as babilong_process_results

from babilab.scoring import score_answer


def process_results(doc: dict, results: list[str]) -> dict[str, float]:
    output = results[0].strip()
    task, target, question = doc["task"], doc["target"], doc["question"]
    return {**babilong_process_results(doc, results),
            "acc_babilong": float(score_answer(task, target, output, question, "babilong")),
            "acc_strict": float(score_answer(task, target, output, question, "strict"))}
'''


class FunctionRef(str):
    """A YAML `!function module.name` value, read from lm-eval's files and written to ours."""


class _Loader(yaml.SafeLoader):
    pass


class _Dumper(yaml.SafeDumper):
    pass


_Loader.add_constructor("!function", lambda loader, node: FunctionRef(loader.construct_scalar(node)))
_Dumper.add_representer(FunctionRef, lambda dumper, ref: dumper.represent_scalar("!function", ref))
_Dumper.add_representer(  # prompts as they read: multi-line text in literal blocks
    str, lambda dumper, text: dumper.represent_scalar("tag:yaml.org,2002:str", text,
                                                      style="|" if "\n" in text else None))


def babilong_task_dir() -> Path:
    """lm-eval's babilong task folder, found without importing lm-eval."""
    spec = importlib.util.find_spec("lm_eval")
    if spec is None or not spec.submodule_search_locations:
        raise BabilabError("export-lm-eval reads lm-eval's own babilong tasks: "
                           "pip install 'babilab[lmeval]'")
    folder = Path(next(iter(spec.submodule_search_locations))) / "tasks" / "babilong"
    if not (folder / "babilong_qa1.yaml").is_file():
        raise BabilabError(f"{folder}: no babilong tasks in this lm-eval; pip install -U lm_eval")
    return folder


def read_task_yaml(path: Path) -> dict:
    """One lm-eval task file with its `include` merged in (the file's own keys win)."""
    config = yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader)  # noqa: S506 (a SafeLoader)
    include = config.pop("include", None)
    if include is None:
        return config
    return {**read_task_yaml(path.parent / include), **config}


def babilong_task(task: str, folder: Path | None = None) -> dict:
    """lm-eval's `babilong_<task>` definition: the fields babilab takes from it."""
    path = (folder or babilong_task_dir()) / f"babilong_{task}.yaml"
    if not path.is_file():
        raise BabilabError(f"lm-eval has no babilong_{task} task ({path})")
    config = read_task_yaml(path)
    return {k: config[k] for k in LM_EVAL_FIELDS if k in config}


def task_name(task: str, length: str) -> str:
    """The lm-eval task name of one cell.

    >>> task_name("qa1", "4k")
    'babilab_qa1_4k'
    """
    return f"{TAG}_{task}_{length}"


def task_config(task: str, length: str, dataset: Path, babilong: dict, fingerprint: str) -> dict:
    return {
        "task": task_name(task, length), "tag": [TAG],
        "dataset_path": str(dataset), "dataset_name": length, "test_split": task,
        **babilong,
        "process_results": FunctionRef("utils.process_results"),
        "metric_list": [{"metric": m, "aggregation": "mean", "higher_is_better": True}
                        for m in METRICS],
        "metadata": {"version": 0.0, "lm_eval_task": f"babilong_{task}",
                     "babilab_suite": fingerprint},
    }


def group_config(length: str, tasks: list[str]) -> dict:
    return {"group": f"{TAG}_{length}", "task": [task_name(t, length) for t in tasks],
            "aggregate_metric_list": [{"metric": m, "weight_by_size": True} for m in METRICS],
            "metadata": {"version": 0.0}}


def render(template: str, doc: dict) -> str:
    """A Jinja field as lm-eval renders it (utils.apply_template's environment)."""
    import jinja2

    env = jinja2.Environment(loader=jinja2.BaseLoader(), undefined=jinja2.StrictUndefined,
                             keep_trailing_newline=True)
    return env.from_string(template).render(**doc)


def babilab_prompt(babilong: dict) -> dict | None:
    """The prompt lm-eval sends without a chat template, as a `babilab eval --prompts` entry:
    description, then each few-shot example (text, target delimiter, target, few-shot
    delimiter), then the sample's text. None when the few-shot examples are not a fixed list
    (only then is the prompt the same for every sample)."""
    fewshot = babilong.get("fewshot_config") or {}
    shots = babilong.get("num_fewshot", 0)
    samples = fewshot.get("samples", [])
    if shots and (fewshot.get("sampler") != "first_n" or not isinstance(samples, list)):
        return None
    text, target = babilong["doc_to_text"], babilong.get("doc_to_target", "{{target}}")
    examples = "".join(render(text, s) + babilong.get("target_delimiter", " ") + render(target, s)
                       + babilong.get("fewshot_delimiter", "\n\n") for s in samples[:shots])
    # The sample's own text with markers where the context and the question go.
    marked = render(text, {"input": "\x00context\x00", "question": "\x00question\x00"})
    escaped = marked.replace("{", "{{").replace("}", "}}")
    template = escaped.replace("\x00context\x00", "{context}").replace("\x00question\x00", "{question}")
    return {"instruction": babilong.get("description", ""), "examples": examples, "post_prompt": "",
            "template": "{instruction}{examples}" + template}


def dump(config: dict) -> str:
    return yaml.dump(config, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)


def export_lm_eval(suite_path: Path | str, out: Path | str) -> list[str]:
    """Write the suite at `suite_path` as lm-eval tasks in `out`; returns the group names."""
    suite, out = Suite(suite_path), Path(out)
    check_out(out)
    lm_eval_dir = babilong_task_dir()  # before anything is written
    dataset = out.resolve() / DATASET_DIR
    with staged_dir(out) as tmp:
        export_hub(suite.path, tmp / DATASET_DIR)
        cells = group_by_length(
            [(t, n) for t, n in suite.cells() if (tmp / DATASET_DIR / data_file(n, t)).is_file()])
        babilong = {t: babilong_task(t, lm_eval_dir) for t in sorted({t for ts in cells.values()
                                                                       for t in ts})}
        header = (f"# lm-eval's babilong_{{task}} on babilab suite {suite.fingerprint[:12]}, "
                  "written by `babilab export-lm-eval`\n")
        for length in sort_lengths(cells):
            for task in cells[length]:
                config = task_config(task, length, dataset, babilong[task], suite.fingerprint)
                (tmp / f"{task_name(task, length)}.yaml").write_text(
                    header.format(task=task) + dump(config), encoding="utf-8")
            (tmp / f"{TAG}_{length}.yaml").write_text(dump(group_config(length, cells[length])),
                                                       encoding="utf-8")
        (tmp / "utils.py").write_text(UTILS_PY, encoding="utf-8")
        prompts = {t: p for t, b in babilong.items() if (p := babilab_prompt(b)) is not None}
        if prompts:
            (tmp / PROMPTS_FILE).write_text(
                "# lm-eval's babilong prompts for `babilab eval --prompts` (with a configuration "
                "without chat template, and --max-new-tokens 16)\n" + dump(prompts), encoding="utf-8")
    return [f"{TAG}_{length}" for length in cells]
