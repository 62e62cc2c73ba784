"""Import published BABILong predictions into a run store: the inverse of `export_babilong`.

BABILong (arXiv 2406.10149; github.com/booydar/babilong) publishes each model's outputs as
`<org>/<model>/<task>_<length>_<config>.csv` with the columns `target, output, question`,
and beside each CSV a `.json` with the prompt and generation settings that were used.
`import_babilong` reads such a folder (or one model's folder) and stores every row as a
prediction of that model, so `rescore`, `report` and `export` treat it like any other:

  - label: the model folder's path below the imported folder (`mistralai/Mistral-7B-Instruct-v0.2`),
    or, for a model folder given directly, its last two path parts;
  - model fingerprint: a hash of the imported files' names and bytes, so the same files
    always give the same keys (re-importing adds nothing) and changed files never mix
    with the old ones under one label;
  - sample id: `<task>/<length>/<row index>`, as `Sample.sample_id`; prompt configuration:
    the file-name suffix, kept exactly as written (older names without the chat-template
    and system-prompt keys included), so `export` writes the same file names back.

Everything is read and checked before anything is written: bad input raises one
`BabilabError` and leaves the run folder as it was. The CSVs are the data; the JSON files
are only recorded (per prompt configuration) in RUN/run.json.
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
from collections import defaultdict
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from ..errors import BabilabError
from ..models.base import fingerprint_of
from ..prompts import PromptConfig
from ..scoring import TASK_LABELS
from ..suite.files import length_name, parse_length
from .evaluate import check_run_dir, note_model
from .store import STORE_FILE, Prediction, RunStore

COLUMNS = ("target", "output", "question")
_FILE_NAME = re.compile(r"(qa\d+)_([^_]+)_(.+)\.csv")
_EXAMPLE_NAME = f"qa1_4k_{PromptConfig().name}.csv"


@dataclass(frozen=True)
class PredictionFile:
    """One `<task>_<length>_<config>.csv`, read and checked."""

    path: Path
    task: str
    length: str
    prompt_config: str
    rows: list[tuple[str, str, str]]  # (target, output, question), in file order
    prompt: dict | None  # the `.json` beside the CSV, when there is one
    digest: str  # sha256 of the CSV and JSON bytes


@dataclass(frozen=True)
class ImportedModel:
    label: str
    folder: Path
    files: list[PredictionFile]

    @cached_property
    def fingerprint(self) -> str:
        return fingerprint_of(imported="babilong-predictions",
                              files={f.path.name: f.digest for f in self.files})

    @cached_property
    def suite(self) -> str:
        """A fingerprint of the samples (ids, targets, questions): the same published set
        gives the same suite fingerprint for every model evaluated on it."""
        samples = sorted({(f"{f.task}/{f.length}/{i}", target, question)
                          for f in self.files for i, (target, _, question) in enumerate(f.rows)})
        digest = hashlib.sha256(json.dumps(samples).encode()).hexdigest()
        return fingerprint_of(imported="babilong-samples", samples=digest)

    def predictions(self) -> list[Prediction]:
        return [Prediction(suite=self.suite, sample_id=f"{f.task}/{f.length}/{i}", task=f.task,
                           length=f.length, prompt_config=f.prompt_config, model=self.label,
                           model_fingerprint=self.fingerprint, target=target, question=question,
                           output=output)
                for f in self.files for i, (target, output, question) in enumerate(f.rows)]


@dataclass(frozen=True)
class ImportSummary:
    label: str
    fingerprint: str
    files: int
    new: int  # predictions written by this call
    skipped: int  # already in the store (an earlier import of the same files)


def parse_file_name(path: Path, pred_dir: Path) -> tuple[str, str, str]:
    """`qa1_4k_instruction_yes_..._system_prompt_no.csv` -> ("qa1", "4k", "instruction_yes_...")."""
    def bad(reason: str) -> BabilabError:
        return BabilabError(f"{path}: file name is not <task>_<length>_<config>.csv ({reason}); "
                            f"rename it like {_EXAMPLE_NAME} or move it out of {pred_dir}")

    match = _FILE_NAME.fullmatch(path.name)
    if not match:
        raise bad("no task, length and prompt configuration in it")
    task, length, config = match.groups()
    if task not in TASK_LABELS:
        raise bad(f"unknown task {task}; tasks are qa1..qa20")
    try:
        canonical = length_name(parse_length(length))
    except BabilabError:
        canonical = None
    if canonical != length:  # "04k" or "4000" would export under another name
        raise bad(f"length {length!r} is not a length name like 0k, 4k, 128k, 1M")
    try:  # the system prompt's text is not in the name; a placeholder lets the name parse
        PromptConfig.from_name(config, system_prompt="")
    except BabilabError:
        raise bad(f"{config!r} is not a prompt configuration name") from None
    return task, length, config


def read_rows(path: Path) -> list[tuple[str, str, str]]:
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
            if missing:
                found = ", ".join(c or "(unnamed)" for c in reader.fieldnames or []) or "none"
                raise BabilabError(f"{path}: no {', '.join(missing)} column (found: {found}); "
                                   f"BABILong prediction files have the columns {', '.join(COLUMNS)}")
            rows = []
            for row in reader:
                values = tuple(row[c] for c in COLUMNS)
                if None in values:  # a short row: csv fills the missing fields with None
                    raise BabilabError(f"{path}: line {reader.line_num} has fewer fields than the "
                                       "header; fix or remove that row")
                rows.append(values)
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise BabilabError(f"{path}: not a readable UTF-8 CSV ({e}); re-download or fix the "
                           "file") from None
    if not rows:
        raise BabilabError(f"{path}: no prediction rows, only a header; remove the empty file")
    return rows


def read_prompt(path: Path) -> dict | None:
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise BabilabError(f"{path}: not readable JSON ({e}); fix or remove it (the CSV beside "
                           "it is the data)") from None
    if not isinstance(data, dict):
        raise BabilabError(f"{path}: expected a JSON object with the prompt; fix or remove it")
    return data


def read_file(path: Path, pred_dir: Path) -> PredictionFile:
    task, length, config = parse_file_name(path, pred_dir)
    json_path = path.with_suffix(".json")
    prompt = read_prompt(json_path)
    digest = hashlib.sha256(path.read_bytes())
    if prompt is not None:
        digest.update(json_path.read_bytes())
    return PredictionFile(path, task, length, config, read_rows(path), prompt, digest.hexdigest())


def find_models(pred_dir: Path) -> list[ImportedModel]:
    """Every folder below `pred_dir` that holds CSVs is one model, named by its path."""
    if not pred_dir.is_dir():
        what = "not a folder" if pred_dir.exists() else "no such folder"
        raise BabilabError(f"{pred_dir}: {what}; give the folder of BABILong predictions "
                           "(<org>/<model>/<task>_<length>_<config>.csv) or one model's folder")
    by_folder: dict[Path, list[Path]] = defaultdict(list)
    for path in sorted(pred_dir.rglob("*.csv")):
        by_folder[path.parent].append(path)
    if not by_folder:
        raise BabilabError(f"{pred_dir}: no .csv files; expected BABILong's layout "
                           "<org>/<model>/<task>_<length>_<config>.csv")
    models = []
    for folder, paths in sorted(by_folder.items()):
        relative = folder.relative_to(pred_dir)
        # a model folder given directly: its org/model are the last two parts of its path
        label = relative.as_posix() if relative.parts else "/".join(folder.resolve().parts[-2:])
        files = [read_file(p, pred_dir) for p in paths]
        files.sort(key=lambda f: (int(f.task[2:]), parse_length(f.length), f.prompt_config))
        models.append(ImportedModel(label, folder, files))
    return models


def prompt_settings(files: list[PredictionFile]) -> dict[str, list[dict]]:
    """Per prompt configuration, the distinct template / chat / decoding settings of its JSONs
    (the per-task instruction and example texts are left in the files)."""
    settings: dict[str, list[dict]] = defaultdict(list)
    for f in files:
        if f.prompt is None:
            continue
        prompt = f.prompt.get("prompt") if isinstance(f.prompt.get("prompt"), dict) else {}
        entry = {k: prompt[k] for k in ("template", "chat_template", "system_prompt") if k in prompt}
        entry["parts"] = [k for k in ("instruction", "examples", "post_prompt") if prompt.get(k)]
        if "generate_kwargs" in f.prompt:
            entry["generate_kwargs"] = f.prompt["generate_kwargs"]
        if entry not in settings[f.prompt_config]:
            settings[f.prompt_config].append(entry)
    return dict(settings)


def import_babilong(pred_dir: Path | str, run_dir: Path | str) -> list[ImportSummary]:
    """Store the predictions under `pred_dir` in `run_dir`; the same files twice add nothing."""
    pred_dir, run_dir = Path(pred_dir), Path(run_dir)
    check_run_dir(run_dir)  # a folder, with readable run files of this format
    models = find_models(pred_dir)
    if (run_dir / STORE_FILE).exists():  # one label with two fingerprints would pool them
        with RunStore(run_dir, create=False) as store:
            for model in models:
                other = store.fingerprints(model.label) - {model.fingerprint}
                if other:
                    raise BabilabError(
                        f"{run_dir}: already holds predictions of {model.label} from other files "
                        f"or another model (fingerprint {sorted(other)[0]}, these files "
                        f"{model.fingerprint}); import into a new run folder")
    summaries = []
    with RunStore(run_dir) as store:
        done = store.done_keys()
        for model in models:
            predictions = model.predictions()
            new = [p for p in predictions if p.key not in done]
            store.add(new)  # one transaction per model: all of its rows or none
            note_model(run_dir, model.label, {
                "spec": f"import:{model.folder.resolve()}", "fingerprint": model.fingerprint,
                "suite": str(model.folder.resolve()), "suite_fingerprint": model.suite,
                "prompt_configs": sorted({f.prompt_config for f in model.files}),
                "imported": {"files": len(model.files), "predictions": len(predictions),
                             "prompts": prompt_settings(model.files)},
            })
            summaries.append(ImportSummary(model.label, model.fingerprint, len(model.files),
                                           len(new), len(predictions) - len(new)))
    return summaries
