"""The published BABILong sets (`RMT-team/babilong`, `RMT-team/babilong-1k-samples`) as suites.

They load through HF `datasets` when the hub is reachable; a local copy with the hub's
layout (`data/qaN/<length>.json`) loads from its folder. Fields map one to one (`input`,
`question`, `target`); fact positions are unknown there, so depth reports and the oracle
are not available for these suites.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from ..errors import BabilabError
from .files import SUITE_FILE, Sample, Suite, SuiteWriter

OFFICIAL = ("RMT-team/babilong", "RMT-team/babilong-1k-samples")


def _load_length(source: str, length: str, tasks: list[str], revision: str | None):
    from datasets import load_dataset

    folder = Path(source)
    try:
        if folder.is_dir():
            files = {t: str(folder / "data" / t / f"{length}.json") for t in tasks
                     if (folder / "data" / t / f"{length}.json").is_file()}
            if not files:
                raise BabilabError(f"{folder}: no data/qaN/{length}.json files")
            return load_dataset("json", data_files=files)
        return load_dataset(source, length, revision=revision)
    except BabilabError:
        raise
    except Exception as e:  # datasets raises many types for "offline" and "no such config"
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise BabilabError(f"cannot load {source} at {length}: {first[:200]} (the official "
                           "sets need the HF hub, or a local copy's folder)") from None


def load_official(lengths: list[str], tasks: list[str], out: Path | str,
                  source: str = OFFICIAL[0], revision: str | None = None) -> Suite:
    """Copy the official samples for `tasks` x `lengths` into a suite at `out`."""
    out = Path(out)
    datasets = {n: _load_length(source, n, tasks, revision) for n in lengths}
    ids = {n: {t: ds[t]._fingerprint for t in tasks if t in ds} for n, ds in datasets.items()}
    fingerprint = hashlib.sha256(json.dumps(
        {"official": source, "revision": revision, "data": ids}, sort_keys=True).encode()
    ).hexdigest()
    if (out / SUITE_FILE).is_file() and Suite(out).fingerprint == fingerprint:
        return Suite(out)
    info = {"fingerprint": fingerprint, "config": {"official": source, "revision": revision,
                                                   "tasks": tasks, "lengths": lengths}}
    with SuiteWriter(out, info) as writer:
        for length, ds in datasets.items():
            for task in tasks:
                if task not in ds:
                    continue
                cell = writer.cell(task, length)
                for i, row in enumerate(ds[task]):
                    cell.add(Sample(task, length, i, row["input"], row["question"].strip(),
                                    row["target"], meta={"source": source, "revision": revision}))
                writer.finish_cell(cell)
    if not Suite(out).cells():
        raise BabilabError(f"{source}: none of {', '.join(tasks)} at {', '.join(lengths)}")
    return Suite(out)
