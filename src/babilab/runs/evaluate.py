"""Run an answerer over a suite into a run folder, resumably.

For each prompt configuration and (task, length) cell, the samples whose prediction key is
not yet in the store are sent to the answerer in batches; each batch's predictions are
committed before the next batch starts. Re-running the same command therefore skips all
finished work, and an interrupted run (Ctrl-C, `kill -9`, a crash) loses at most the batch
in flight; answerers that read for hours per sample (the memory models on millions of tokens)
also keep their progress within it in RUN/partial, and continue from there. Failed
predictions (`error` set, redacted before it is stored) are retried by the next run.
Progress goes to stderr: a bar on a terminal, a plain line every 30 s in a log (progress.py).
Each prediction keeps where its supporting facts lie (their depths, the suite's placement), so
reports can say where in the context a model loses them without the suite at hand.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..errors import BabilabError
from ..models.base import Answerer, Request, load_answerer, redact
from ..outputs import check_output_dir, read_json_file, write_text_atomic
from ..prompts import PromptConfig
from ..suite.files import Sample, Suite
from .progress import progress_counter, progress_kind, quiet_weight_loading
from .store import STORE_FILE, Prediction, RunStore, prediction_key

log = logging.getLogger(__name__)
RUN_FILE = "run.json"


@dataclass(frozen=True)
class EvalSummary:
    run_dir: Path
    model: str
    new: int  # predictions made by this call
    skipped: int  # already in the store
    failed: int  # stored with an error (retried next time)
    first_error: str | None = None  # one of those errors, to say what went wrong


def request_of(sample: Sample) -> Request:
    return Request(sample.sample_id, sample.task, sample.input, sample.question, sample.facts,
                   sample.supporting, sample.fact_char_offsets)


def prediction_of(sample: Sample, suite: str, config: PromptConfig, answerer: Answerer,
                  answer) -> Prediction:
    return Prediction(
        suite=suite, sample_id=sample.sample_id, task=sample.task, length=sample.length,
        prompt_config=config.key, model=answerer.label, model_fingerprint=answerer.fingerprint,
        target=sample.target, question=sample.question, output=answer.output,
        elapsed_s=answer.elapsed_s, prompt_tokens=answer.prompt_tokens,
        over_window=answer.over_window, truncated=answer.truncated,
        error=None if answer.error is None else redact(answer.error),  # whatever the backend
        depth=sample.support_depth, extra=answer.extra, support_depths=support_depths(sample),
        placement=sample.meta.get("placement"),
    )


def support_depths(sample: Sample) -> tuple[float, ...] | None:
    """Each supporting fact's depth (%), in context order; None when positions are unknown."""
    if not sample.fact_depths or not sample.supporting:
        return None
    return tuple(sorted(sample.fact_depths[i] for i in sample.supporting))


def record_run(run_dir: Path, suite: Suite, answerer: Answerer, configs: list[PromptConfig],
               model_spec: str) -> None:
    """Keep a readable note of what each model in this run folder was asked to do."""
    note_model(run_dir, answerer.label, {
        "spec": model_spec, "fingerprint": answerer.fingerprint, "suite": str(suite.path),
        "suite_fingerprint": suite.fingerprint, "prompt_configs": [c.key for c in configs],
        "prompt_files": {c.prompts.short: c.prompts.source for c in configs if c.prompts},
    })


def note_model(run_dir: Path, label: str, note: dict) -> None:
    """Write one model's entry of RUN/run.json (replacing its old one), atomically.

    Read, change and write happen under an exclusive lock (RUN/.run.json.lock): evals that
    share a run folder would otherwise each write back what they read, and the last one
    would drop the others' entries.
    """
    import fcntl

    with open(run_dir / f".{RUN_FILE}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        info = read_run_file(run_dir)
        info["models"][label] = note
        write_text_atomic(run_dir / RUN_FILE, json.dumps(info, indent=2, sort_keys=True) + "\n")


def read_run_file(run_dir: Path) -> dict:
    """RUN/run.json, checked: an object with a `models` object (a new run has none)."""
    path = run_dir / RUN_FILE
    if not path.exists():
        return {"models": {}}
    fix = f"fix or delete it (it only notes what ran; the predictions are in {STORE_FILE})"
    info = read_json_file(path, fix)
    models = info.get("models") if isinstance(info, dict) else None
    if not isinstance(models, dict) or not all(isinstance(m, dict) for m in models.values()):
        raise BabilabError(f"{path}: expected an object with a `models` object; {fix}")
    return info


def check_run_dir(run_dir: Path) -> None:
    """What can be checked of a run folder before a model loads: it can be a folder, and
    its run.json and store, where they exist, are readable and of this format."""
    check_output_dir(run_dir, "--run")
    read_run_file(run_dir)
    if (run_dir / STORE_FILE).exists():
        RunStore(run_dir, create=False).close()


def stored_keys(run_dir: Path) -> set[str]:
    """Keys of the predictions a run folder already holds, read without writing to it."""
    if not (run_dir / STORE_FILE).exists():
        return set()
    with RunStore(run_dir, create=False) as store:
        return store.done_keys()


def pending_work(suite: Suite, cells: list[tuple[str, str]], configs: list[PromptConfig],
                 answerer: Answerer, done: set[str]) -> tuple[list, int]:
    """([(config, samples still to answer)], samples already answered); reading every sample
    here checks the whole suite before anything is written."""
    todo, skipped = [], 0
    for config in configs:
        for task, length in cells:
            pending = []
            for sample in suite.samples(task, length):
                key = prediction_key(suite.fingerprint, sample.sample_id, config.key,
                                     answerer.fingerprint)
                if key in done:
                    skipped += 1
                else:
                    pending.append(sample)
            if pending:  # the texts of this length, where a prompts file has its own
                todo.append((config.at_length(length), pending))
    return todo, skipped


def select_cells(suite: Suite, tasks: list[str] | None = None,
                 lengths: list[str] | None = None) -> list[tuple[str, str]]:
    """The suite's (task, length) cells kept by the filters; none at all is an error."""
    cells = [(t, n) for t, n in suite.cells()
             if (tasks is None or t in tasks) and (lengths is None or n in lengths)]
    if not cells:
        have = ", ".join(f"{t}/{n}" for t, n in suite.cells())
        raise BabilabError(f"{suite.path}: no samples for the tasks and lengths asked for; "
                           f"choose among its cells: {have}")
    return cells


def check_prompt_files(configs: list[PromptConfig], cells: list[tuple[str, str]]) -> None:
    """A prompts file must have a prompt for every task asked, before anything runs."""
    tasks = list(dict.fromkeys(t for t, _ in cells))
    for config in configs:
        if config.prompts is not None:
            config.prompts.check_covers(tasks)


def evaluate(suite: Suite | Path | str, model: str | Answerer, run_dir: Path | str,
             configs: list[PromptConfig] | None = None, batch_size: int = 8,
             tasks: list[str] | None = None, lengths: list[str] | None = None,
             progress: bool | None = None, before_writing: Callable[[], None] | None = None,
             **model_options) -> EvalSummary:
    """Answer every sample of `suite` with `model`, storing predictions in `run_dir`.

    `progress`: True a bar, False nothing, None a bar on a terminal and log lines elsewhere.
    Nothing is written until the run folder, the suite and the model have been checked and
    loaded; `before_writing()` is called then, before the first write.
    """
    suite = suite if isinstance(suite, Suite) else Suite(suite)
    configs = configs or [PromptConfig()]
    if batch_size < 1:
        raise BabilabError(f"batch size must be >= 1, got {batch_size}")
    cells = select_cells(suite, tasks, lengths)
    check_prompt_files(configs, cells)
    run_dir = Path(run_dir)
    check_run_dir(run_dir)
    if progress_kind(progress) == "lines":
        quiet_weight_loading()
    answerer = model if isinstance(model, Answerer) else load_answerer(model, **model_options)
    if answerer.resume_dir is None:
        answerer.resume_dir = run_dir / "partial"
    new = failed = 0
    first_error = None
    try:
        todo, skipped = pending_work(suite, cells, configs, answerer, stored_keys(run_dir))
        if before_writing is not None:
            before_writing()
        with RunStore(run_dir) as store:
            record_run(run_dir, suite, answerer, configs, model if isinstance(model, str) else "")
            total = sum(len(p) for _, p in todo)
            with progress_counter(total, f"eval {answerer.label}", "sample", progress) as bar:
                for config, pending in todo:
                    for start in range(0, len(pending), batch_size):
                        batch = pending[start:start + batch_size]
                        answers = answerer.answer([request_of(s) for s in batch], config)
                        if len(answers) != len(batch):
                            raise RuntimeError(f"{answerer.label} returned {len(answers)} answers "
                                               f"for {len(batch)} requests")
                        made = [prediction_of(s, suite.fingerprint, config, answerer, a)
                                for s, a in zip(batch, answers, strict=True)]
                        store.add(made)
                        new += len(batch)
                        errors = [p.error for p in made if p.error is not None]
                        failed += len(errors)
                        first_error = first_error or next(iter(errors), None)
                        bar.update(len(batch))
    finally:
        if not isinstance(model, Answerer):
            answerer.close()
    if not failed:
        warn_unused_saves(answerer.resume_dir)
    return EvalSummary(run_dir, answerer.label, new, skipped, failed, first_error)


def warn_unused_saves(directory: Path | None) -> None:
    """After a run with every answer stored, anything left in its resume folder is work of
    another model or input (answerers remove their saves once they answer): say so, since a
    saved read of a long input can hold gigabytes."""
    files = [f for f in directory.iterdir() if f.is_file()] if directory and directory.is_dir() else []
    if files:
        size = sum(f.stat().st_size for f in files) / 2**20
        log.warning("%s keeps %d saved read%s (%.1f MB) of another model or input; delete "
                    "them unless a run of that model on that suite will continue them",
                    directory, len(files), "s" * (len(files) > 1), size)
