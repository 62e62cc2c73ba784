"""A BABILong suite on disk: tasks x lengths x samples, written once, read as a stream.

    SUITE/
      suite.json              what made it (config, fingerprint, versions) and per-cell counts
      data/qa1/4k.jsonl       one sample per line
      data/qa1/4k.parquet     the same rows, for `datasets.load_dataset("parquet", ...)`

Rows keep BABILong's field names (`input`, `question`, `target`) so official sets and ours
load alike, plus what babilab knows and BABILong forgets: the facts, which of them support
the answer, and where each one sits in the context (character and token offsets, depth %).
A suite is built in a temporary folder and renamed into place only when complete.

This module knows nothing about how answers are produced.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from ..errors import BabilabError

SUITE_FORMAT = "babilab-suite/1"
SUITE_FILE = "suite.json"


@dataclass(frozen=True)
class Sample:
    task: str  # "qa1"
    length: str  # nominal length name: "0k", "4k", "1M"
    index: int  # position of the question in the task's stream (the same at every length)
    input: str  # the context: facts hidden in background text; the question is not in it
    question: str
    target: str
    facts: tuple[str, ...] = ()
    supporting: tuple[int, ...] = ()  # indices into `facts`, reasoning order
    fact_char_offsets: tuple[int, ...] = ()  # where each fact starts in `input`
    fact_token_offsets: tuple[int, ...] = ()
    fact_depths: tuple[float, ...] = ()  # token offset / context tokens, in percent
    context_tokens: int | None = None  # len(tokenizer(input)); None when unknown
    meta: dict = field(default_factory=dict)  # seed, corpus, tokenizer, placement, versions

    @property
    def sample_id(self) -> str:
        return f"{self.task}/{self.length}/{self.index}"

    @property
    def support_depth(self) -> float | None:
        """Mean depth (%) of the supporting facts; None when positions are unknown."""
        if not self.fact_depths or not self.supporting:
            return None
        return sum(self.fact_depths[i] for i in self.supporting) / len(self.supporting)

    def to_row(self) -> dict:
        row = asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in row.items()}

    @classmethod
    def from_row(cls, row: dict) -> Sample:
        known = {f.name for f in fields(cls)}
        kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in row.items() if k in known}
        return cls(**kwargs)


_LENGTH_RE = re.compile(r"^(\d+(?:\.\d+)?)([kKmM]?)$")


def parse_length(name: str) -> int:
    """`"4k"` -> 4000, `"1M"` -> 1000000, `"700"` -> 700 (k is 1,000 as in BABILong)."""
    m = _LENGTH_RE.match(name.strip())
    if not m:
        raise BabilabError(f"bad length {name!r}; use a number with an optional k or M, like 0k, 4k, 1M")
    scale = {"": 1, "k": 1000, "m": 1_000_000}[m.group(2).lower()]
    return int(float(m.group(1)) * scale)


def length_name(tokens: int) -> str:
    if tokens >= 1_000_000 and tokens % 1_000_000 == 0:
        return f"{tokens // 1_000_000}M"
    if tokens % 1000 == 0:
        return f"{tokens // 1000}k"
    return str(tokens)


def sort_lengths(names: Iterable[str]) -> list[str]:
    return sorted(set(names), key=parse_length)


def sort_tasks(names: Iterable[str]) -> list[str]:
    return sorted(set(names), key=lambda t: int(t[2:]) if t[2:].isdigit() else 1 << 30)


class Suite:
    """A suite folder opened for reading."""

    def __init__(self, path: Path | str):
        self.path = Path(path)
        info_path = self.path / SUITE_FILE
        if not info_path.is_file():
            raise BabilabError(f"{self.path}: not a babilab suite (no {SUITE_FILE}); "
                               "make one with `babilab generate`")
        try:
            self.info = json.loads(info_path.read_text())
        except json.JSONDecodeError as e:
            raise BabilabError(f"{info_path}: unreadable ({e.msg} at line {e.lineno})") from None
        if self.info.get("format") != SUITE_FORMAT:
            raise BabilabError(f"{self.path}: suite format {self.info.get('format')!r}, "
                               f"this babilab reads {SUITE_FORMAT!r}")

    @property
    def fingerprint(self) -> str:
        return self.info["fingerprint"]

    def cells(self) -> list[tuple[str, str]]:
        """(task, length) pairs present, tasks then lengths in natural order."""
        pairs = [tuple(c.split("/")) for c in self.info["cells"]]
        tasks, lengths = sort_tasks(t for t, _ in pairs), sort_lengths(n for _, n in pairs)
        return [(t, n) for t in tasks for n in lengths if (t, n) in pairs]

    def samples(self, task: str, length: str) -> Iterator[Sample]:
        path = self.path / "data" / task / f"{length}.jsonl"
        if not path.is_file():
            raise BabilabError(f"{self.path}: no samples for {task} at {length}")
        with open(path, encoding="utf-8") as f:
            for line in f:
                yield Sample.from_row(json.loads(line))

    def __iter__(self) -> Iterator[Sample]:
        for task, length in self.cells():
            yield from self.samples(task, length)


class CellWriter:
    """Streams one (task, length) cell to JSONL and Parquet, one sample at a time, so a cell
    of 10M-token samples never has more than one sample in memory."""

    def __init__(self, folder: Path, task: str, length: str):
        self.task, self.length = task, length
        target = folder / "data" / task
        target.mkdir(parents=True, exist_ok=True)
        self.jsonl = open(target / f"{length}.jsonl", "w", encoding="utf-8")
        self.parquet_path = target / f"{length}.parquet"
        self.parquet = None  # opened with the first row, whose types give the schema
        self.count = 0

    def add(self, sample: Sample) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        row = sample.to_row()
        self.jsonl.write(json.dumps(row, ensure_ascii=False) + "\n")
        row["meta"] = json.dumps(row["meta"], sort_keys=True)
        table = pa.Table.from_pylist([row], schema=self.parquet.schema if self.parquet else None)
        if self.parquet is None:
            self.parquet = pq.ParquetWriter(self.parquet_path, table.schema)
        self.parquet.write_table(table)
        self.count += 1

    def close(self) -> None:
        self.jsonl.close()
        if self.parquet is not None:
            self.parquet.close()


class SuiteWriter:
    """Builds a suite in a temporary folder next to `out` and renames it into place.

    with SuiteWriter(out, info) as w:
        cell = w.cell("qa1", "4k")
        cell.add(sample)                  # as many as there are
        w.finish_cell(cell, dropped=0)
    """

    def __init__(self, out: Path | str, info: dict):
        self.out = Path(out)
        if self.out.exists() and any(self.out.iterdir()) and not (self.out / SUITE_FILE).exists():
            raise BabilabError(f"{self.out} exists and is not a suite; choose an empty folder")
        self.info = {"format": SUITE_FORMAT, **info, "cells": {}}
        self.out.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = Path(tempfile.mkdtemp(dir=self.out.parent, prefix=f".{self.out.name}.tmp-"))

    def cell(self, task: str, length: str) -> CellWriter:
        return CellWriter(self.tmp, task, length)

    def finish_cell(self, cell: CellWriter, dropped: int = 0) -> None:
        cell.close()
        self.info["cells"][f"{cell.task}/{cell.length}"] = {"samples": cell.count,
                                                             "dropped": dropped}

    def add_cell(self, task: str, length: str, samples: Iterable[Sample], dropped: int = 0) -> None:
        """Write a whole cell at once."""
        cell = self.cell(task, length)
        for sample in samples:
            cell.add(sample)
        self.finish_cell(cell, dropped)

    def __enter__(self) -> SuiteWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)
            return
        (self.tmp / SUITE_FILE).write_text(json.dumps(self.info, indent=2, sort_keys=True) + "\n")
        if self.out.exists():  # replace an older suite at the same path
            old = self.out.with_name(f".{self.out.name}.old-{os.getpid()}")
            self.out.rename(old)
            self.tmp.rename(self.out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            self.tmp.rename(self.out)
