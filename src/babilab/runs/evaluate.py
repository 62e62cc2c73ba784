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

Data parallel: under `torchrun --nproc_per_node N` or `accelerate launch` (RANK, WORLD_SIZE,
LOCAL_RANK set; hardware.launched_processes) each process loads the model on its own device
and answers a share of the work: each cell's samples are cut into batches as one process
would cut them, batch i goes to process i mod N, and each process drops from its batches
what the store already holds. The deal depends on the suite alone, not on what each process
read as done at its own moment, so no batch is answered twice or missed, and on a fresh run
the batches (so the answers) are the one-process run's. No process group is needed: every
process commits to the same SQLite store (its locking serializes the writes), and process 0,
after its share, waits until the store holds the whole job, then reports it all. The run
folder must be on a local disk: SQLite's locks do not work across machines.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..errors import BabilabError
from ..hardware import Processes, launched_processes
from ..models.base import Answerer, Request, load_answerer, redact
from ..outputs import check_output_dir, read_json_file, write_text_atomic
from ..prompts import PromptConfig
from ..suite.files import Sample, Suite
from .progress import LOG_INTERVAL_S, format_duration, progress_counter, progress_kind, quiet_weight_loading
from .store import STORE_FILE, Prediction, RunStore, check_shared_store, prediction_key

log = logging.getLogger(__name__)
RUN_FILE = "run.json"
# When this process began, near enough (the CLI imports this module first thing). Under a
# launcher every process of a job starts together, so the store's rows made since then are
# this job's: process 0 counts them as new and waits for them (`wait_for_job`).
PROCESS_STARTED = time.time()
WAIT_POLL_S = 2.0  # how often process 0 looks whether the others are done


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
        if launched_processes().world_size > 1:  # another process may be making it right now
            check_shared_store(run_dir)
        else:
            RunStore(run_dir, create=False).close()


Work = list[tuple[PromptConfig, list[tuple[str, Sample]]]]  # per config and cell: (key, sample)


def all_work(suite: Suite, cells: list[tuple[str, str]], configs: list[PromptConfig],
             answerer: Answerer) -> Work:
    """Every (prompt configuration, cell) asked for, with its samples and their prediction
    keys; reading every sample here checks the whole suite before anything is written."""
    work = []
    for config in configs:
        for task, length in cells:
            samples = [(prediction_key(suite.fingerprint, s.sample_id, config.key,
                                       answerer.fingerprint), s)
                       for s in suite.samples(task, length)]
            # the texts of this length, where a prompts file has its own
            work.append((config.at_length(length), samples))
    return work


def share_of(work: Work, done: set[str], batch_size: int,
             procs: Processes | None = None) -> list[tuple[PromptConfig, list[Sample]]]:
    """This process's batches, in order. One process: each cell's samples not yet done,
    `batch_size` at a time. Several: each cell's samples, all of them, `batch_size` at a
    time, batch i (counted over all cells) to process i mod N, then stripped of what is done.

    >>> work = [("c", [(f"k{i}", i) for i in range(5)])]
    >>> share_of(work, {"k1"}, 2), share_of(work, {"k1"}, 2, Processes(1, 2, 1))
    ([('c', [0, 2]), ('c', [3, 4])], [('c', [2, 3])])
    """
    procs = procs or Processes()
    batches, dealt = [], 0
    for config, samples in work:
        if procs.world_size == 1:
            pending = [s for k, s in samples if k not in done]
            groups = [pending[i:i + batch_size] for i in range(0, len(pending), batch_size)]
        else:
            groups = []
            for start in range(0, len(samples), batch_size):
                if dealt % procs.world_size == procs.rank:
                    groups.append([s for k, s in samples[start:start + batch_size]
                                   if k not in done])
                dealt += 1
        batches.extend((config, group) for group in groups if group)
    return batches


def wait_for_job(store: RunStore, keys: set[str], since: float, world_size: int) -> dict:
    """Process 0, its share done: wait until every key of the job has a row made since
    `since` (by whichever process had it), saying so every LOG_INTERVAL_S; -> {key: error}.
    A process that fails makes its launcher stop the others, this one included."""
    began = last = time.monotonic()
    while True:
        made = store.made_since(since)
        missing = len(keys - made.keys())
        if not missing:
            return {k: made[k] for k in keys}
        now = time.monotonic()
        if now - last >= LOG_INTERVAL_S:
            log.warning("process 0 of %d: waiting for the others, %d of %d predictions still "
                        "to come (%s so far)", world_size, missing, len(keys),
                        format_duration(now - began))
            last = now
        time.sleep(WAIT_POLL_S)


def bind_local_gpu(procs: Processes) -> None:
    """Under a launcher, make plain `cuda` mean this process's GPU (cuda:LOCAL_RANK), for
    backends that ask for `cuda` (the memory models, a RAG embedder); hf picks it itself."""
    import torch

    if torch.cuda.is_available() and procs.local_rank < torch.cuda.device_count():
        torch.cuda.set_device(procs.local_rank)


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
    Under a launcher (see the module docstring) this process answers its share; process 0
    then waits for the others and returns the whole job's summary, the others their share's.
    """
    procs = launched_processes()
    suite = suite if isinstance(suite, Suite) else Suite(suite)
    configs = configs or [PromptConfig()]
    if batch_size < 1:
        raise BabilabError(f"batch size must be >= 1, got {batch_size}")
    cells = select_cells(suite, tasks, lengths)
    check_prompt_files(configs, cells)
    run_dir = Path(run_dir)
    check_run_dir(run_dir)
    where = ""
    if procs.world_size > 1:
        bind_local_gpu(procs)
        where = f", process {procs.rank} of {procs.world_size}"
        progress = False if procs.rank else progress  # process 0 shows its share
    if progress_kind(progress) == "lines" or procs.rank:  # N copies of loading bars: none
        quiet_weight_loading()
    answerer = model if isinstance(model, Answerer) else load_answerer(model, **model_options)
    if answerer.resume_dir is None:
        answerer.resume_dir = run_dir / "partial"
    new = failed = 0
    first_error = None
    try:
        work = all_work(suite, cells, configs, answerer)
        if before_writing is not None:
            before_writing()
        with RunStore(run_dir) as store:
            done = store.done_keys()
            skipped = sum(k in done for _, samples in work for k, _ in samples)
            batches = share_of(work, done, batch_size, procs)
            record_run(run_dir, suite, answerer, configs, model if isinstance(model, str) else "")
            total = sum(len(batch) for _, batch in batches)
            with progress_counter(total, f"eval {answerer.label}{where}", "sample", progress) as bar:
                for config, batch in batches:
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
            if procs.world_size > 1 and procs.rank == 0:  # report the whole job
                keys = {k for _, samples in work for k, _ in samples}
                job = keys - store.done_keys(before=PROCESS_STARTED)
                outcome = wait_for_job(store, job, PROCESS_STARTED, procs.world_size)
                errors = [e for e in outcome.values() if e is not None]
                new, skipped, failed = len(job), len(keys) - len(job), len(errors)
                first_error = next(iter(errors), None)
    finally:
        if not isinstance(model, Answerer):
            answerer.close()
    if not failed and procs.rank == 0:  # the others' saves may be work in progress
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
