"""Run an answerer over a suite into a run folder, resumably.

For each prompt configuration and (task, length) cell, the samples whose prediction key is
not yet in the store are sent to the answerer in batches; each batch's predictions are
committed before the next batch starts. Re-running the same command therefore skips all
finished work, and an interrupted run (Ctrl-C, `kill -9`, a crash) loses at most the batch
in flight; answerers that read for hours per sample (the memory models on millions of tokens)
also keep their progress within it in RUN/partial, and continue from there. Failed
predictions (`error` set, redacted before it is stored) are retried by the next run.
Progress goes to stderr: a bar on a terminal, a plain line every 30 s in a log (progress.py).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

from ..errors import BabilabError
from ..models.base import Answerer, Request, load_answerer, redact
from ..prompts import PromptConfig
from ..suite.files import Sample, Suite
from .progress import progress_counter, progress_kind, quiet_weight_loading
from .store import Prediction, RunStore, prediction_key

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
        prompt_config=config.name, model=answerer.label, model_fingerprint=answerer.fingerprint,
        target=sample.target, question=sample.question, output=answer.output,
        elapsed_s=answer.elapsed_s, prompt_tokens=answer.prompt_tokens,
        over_window=answer.over_window, truncated=answer.truncated,
        error=None if answer.error is None else redact(answer.error),  # whatever the backend
        depth=sample.support_depth, extra=answer.extra,
    )


def record_run(run_dir: Path, suite: Suite, answerer: Answerer, configs: list[PromptConfig],
               model_spec: str) -> None:
    """Keep a readable note of what each model in this run folder was asked to do."""
    note_model(run_dir, answerer.label, {
        "spec": model_spec, "fingerprint": answerer.fingerprint, "suite": str(suite.path),
        "suite_fingerprint": suite.fingerprint, "prompt_configs": [c.name for c in configs],
    })


def note_model(run_dir: Path, label: str, note: dict) -> None:
    """Write one model's entry of RUN/run.json (replacing its old one), atomically."""
    path = run_dir / RUN_FILE
    info = json.loads(path.read_text()) if path.exists() else {"models": {}}
    info["models"][label] = note
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")
    tmp.replace(path)


def select_cells(suite: Suite, tasks: list[str] | None = None,
                 lengths: list[str] | None = None) -> list[tuple[str, str]]:
    """The suite's (task, length) cells kept by the filters; none at all is an error."""
    cells = [(t, n) for t, n in suite.cells()
             if (tasks is None or t in tasks) and (lengths is None or n in lengths)]
    if not cells:
        raise BabilabError(f"{suite.path}: no samples for the tasks and lengths asked for")
    return cells


def evaluate(suite: Suite | Path | str, model: str | Answerer, run_dir: Path | str,
             configs: list[PromptConfig] | None = None, batch_size: int = 8,
             tasks: list[str] | None = None, lengths: list[str] | None = None,
             progress: bool | None = None, **model_options) -> EvalSummary:
    """Answer every sample of `suite` with `model`, storing predictions in `run_dir`.

    `progress`: True a bar, False nothing, None a bar on a terminal and log lines elsewhere.
    """
    suite = suite if isinstance(suite, Suite) else Suite(suite)
    configs = configs or [PromptConfig()]
    if batch_size < 1:
        raise BabilabError(f"batch size must be >= 1, got {batch_size}")
    cells = select_cells(suite, tasks, lengths)
    if progress_kind(progress) == "lines":
        quiet_weight_loading()
    answerer = model if isinstance(model, Answerer) else load_answerer(model, **model_options)
    run_dir = Path(run_dir)
    if answerer.resume_dir is None:
        answerer.resume_dir = run_dir / "partial"
    new = skipped = failed = 0
    first_error = None
    try:
        with RunStore(run_dir) as store:
            record_run(run_dir, suite, answerer, configs, model if isinstance(model, str) else "")
            done = store.done_keys()
            todo = []  # (config, cell samples still to answer)
            for config in configs:
                for task, length in cells:
                    pending = []
                    for sample in suite.samples(task, length):
                        key = prediction_key(suite.fingerprint, sample.sample_id, config.name,
                                             answerer.fingerprint)
                        if key in done:
                            skipped += 1
                        else:
                            pending.append(sample)
                    if pending:
                        todo.append((config, pending))
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
