"""A BABILong suite on disk: tasks x lengths x samples, written once, read as a stream.

    SUITE/
      suite.json              what made it (config, fingerprint, versions) and per-cell counts
      data/qa1/4k.jsonl       one sample per line
      data/qa1/4k.parquet     the same rows, for `datasets.load_dataset("parquet", ...)`

Rows keep BABILong's field names (`input`, `question`, `target`) so official sets and ours
load alike, plus what babilab knows and BABILong forgets: the facts, which of them support
the answer, and where each one sits in the context (character and token offsets, depth %).

Format 2 adds the background's provenance to each generated sample's `meta["background"]`:
the stretches of books it uses (`spans`: book, its sentences [first, end), tokens), its
background tokens, distinct background tokens and `repetition` factor (tokens / distinct
tokens: 1.0 when no text repeats); and to each cell in suite.json the largest repetition
factor and how many samples repeat text. Format 1 suites (without them) are still read.
A suite is built in a temporary folder and renamed into place only when complete, and
read back checked: a damaged suite.json or sample line (truncated, binary, other fields) is
one BabilabError naming the file, the line and the fix, never a traceback mid-evaluation.

This module knows nothing about how answers are produced.
"""

from __future__ import annotations

import array
import itertools
import json
import re
import shutil
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from ..errors import BabilabError
from ..outputs import (
    check_output_dir,
    make_dir,
    missing_folders,
    read_json_file,
    remove_if_empty,
    replace_dir,
)

SUITE_FORMAT = "babilab-suite/2"  # what this babilab writes
READ_FORMATS = ("babilab-suite/1", SUITE_FORMAT)  # 1: no background provenance
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
        self.info = read_suite_info(info_path)

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
            raise BabilabError(f"{self.path}: no samples for {task} at {length} ({path.name} is "
                               f"missing); {REBUILD}")
        where = f"{self.path}: unreadable sample in {task}/{length}"
        with open(path, encoding="utf-8") as f:
            try:
                for number, line in enumerate(f, 1):
                    if line.strip():
                        yield sample_of_line(line, f"{where} (line {number}")
            except UnicodeDecodeError:
                raise BabilabError(f"{where} ({path.name} is not UTF-8 text: binary or "
                                   f"damaged); {REBUILD}") from None

    def check(self, cells: Iterable[tuple[str, str]] | None = None) -> None:
        """Read every sample of `cells` (all by default), so a damaged line is refused now,
        before a run writes anything or loads a model."""
        for task, length in self.cells() if cells is None else cells:
            for _ in self.samples(task, length):
                pass

    def __iter__(self) -> Iterator[Sample]:
        for task, length in self.cells():
            yield from self.samples(task, length)


REBUILD = "rebuild the suite with `babilab generate`"
_REQUIRED = {"task": str, "length": str, "index": int, "input": str, "question": str,
             "target": str}
_LISTS = {"facts": str, "supporting": int, "fact_char_offsets": int, "fact_token_offsets": int,
          "fact_depths": float}


def kind_name(value) -> str:
    """`"a list"`, `"a string"`: a JSON value's type, for messages."""
    names = {dict: "an object", list: "a list", str: "a string", bool: "true or false",
             int: "a number", float: "a number", type(None): "null"}
    return names.get(type(value), type(value).__name__)


def is_kind(value, kind: type) -> bool:
    """JSON typing: no bools for numbers, ints are floats too."""
    if isinstance(value, bool):
        return kind is bool
    return isinstance(value, (int, float) if kind is float else kind)


def row_problem(row) -> str | None:
    """What makes a sample row unusable (wrong shape, missing or mistyped fields), or None.
    Fields this babilab does not know are left alone: official sets carry their own."""
    if not isinstance(row, dict):
        return f"{kind_name(row)}, not an object"
    missing = [k for k in _REQUIRED if k not in row]
    if missing:
        return f"no {', '.join(missing)} field{'s' * (len(missing) > 1)}"
    for name, kind in _REQUIRED.items():
        if not is_kind(row[name], kind):
            return f"{name} is {kind_name(row[name])}, expected {kind_name(kind())}"
    for name, kind in _LISTS.items():
        value = row.get(name, [])
        if not isinstance(value, list) or not all(is_kind(v, kind) for v in value):
            return f"{name} is not a list of {kind_name(kind()).removeprefix('a ')}s"
    for name, kind in (("context_tokens", int), ("meta", dict)):
        if row.get(name) is not None and not is_kind(row[name], kind):
            return f"{name} is {kind_name(row[name])}, expected {kind_name(kind())}"
    for sized in ("facts", "fact_depths"):  # supporting ids index both
        if row.get(sized) and any(not 0 <= i < len(row[sized]) for i in row.get("supporting", [])):
            return f"a supporting id is outside {sized}"
    return None


def sample_of_line(line: str, where: str) -> Sample:
    """One JSONL line as a Sample; `where` opens the message ("... (line 3")."""
    try:
        row = json.loads(line)
    except json.JSONDecodeError as e:
        raise BabilabError(f"{where}: {e.msg}; the file is truncated or damaged); {REBUILD}") from None
    problem = row_problem(row)
    if problem:
        raise BabilabError(f"{where}: {problem}); {REBUILD}")
    return Sample.from_row(row)


def read_suite_info(path: Path) -> dict:
    """suite.json, checked: an object with this babilab's format, a fingerprint and cells."""
    info = read_json_file(path, REBUILD)
    if not isinstance(info, dict):
        raise BabilabError(f"{path}: {kind_name(info)}, expected a JSON object; {REBUILD}")
    if info.get("format") not in READ_FORMATS:
        raise BabilabError(f"{path.parent}: suite format {info.get('format')!r}, this babilab "
                           f"reads {' and '.join(map(repr, READ_FORMATS))}; {REBUILD}")
    if not isinstance(info.get("fingerprint"), str):
        raise BabilabError(f"{path}: no fingerprint; {REBUILD}")
    cells = info.get("cells")
    if not isinstance(cells, dict) or not all(map(is_cell_name, cells)):
        raise BabilabError(f"{path}: no cells, or cells not named task/length; {REBUILD}")
    return info


def is_cell_name(name: str) -> bool:
    """`qa1/4k`: a task, a slash, a length."""
    task, sep, length = name.partition("/")
    return bool(sep) and re.fullmatch(r"qa\d+", task) is not None and _LENGTH_RE.match(length) is not None


class CellWriter:
    """Streams one (task, length) cell to JSONL and Parquet, one sample at a time, so a cell
    of 10M-token samples never has more than one sample in memory."""

    def __init__(self, folder: Path, task: str, length: str):
        self.task, self.length = task, length
        target = folder / "data" / task
        target.mkdir(parents=True, exist_ok=True)
        self.jsonl = open(target / f"{length}.jsonl", "wb")  # UTF-8 lines, see json_line
        self.parquet_path = target / f"{length}.parquet"
        self.parquet = None  # opened with the first row, whose types give the schema
        self.count = 0

    def add(self, sample: Sample) -> None:
        import pyarrow.parquet as pq

        # to_row's values without its deep copy (most of a 32k sample's writing time): the
        # row is only read here
        row = {f.name: getattr(sample, f.name) for f in SAMPLE_FIELDS}
        row = {k: list(v) if isinstance(v, tuple) else v for k, v in row.items()}
        # The context is nearly all of a sample (43 MB at 10M tokens): its UTF-8 is made once,
        # for both files
        utf8 = {"input": row["input"].encode()} if len(row["input"]) >= LONG_TEXT else {}
        table = row_table({**row, "meta": json.dumps(row["meta"], sort_keys=True)},
                          self.parquet.schema if self.parquet else None, utf8)
        if self.parquet is None:
            # One row group per sample: a dictionary or min/max statistics of a context that
            # is never repeated cost time (half the write at 10M tokens) and save nothing.
            self.parquet = pq.ParquetWriter(self.parquet_path, table.schema,
                                            use_dictionary=False, write_statistics=False)
        self.parquet.write_table(table)
        self.jsonl.writelines(json_line(row, utf8))
        self.count += 1

    def close(self) -> None:
        self.jsonl.close()
        if self.parquet is not None:
            self.parquet.close()


SAMPLE_FIELDS = fields(Sample)
LONG_TEXT = 1 << 16  # characters; shorter strings go through json.dumps and str.encode


def json_line(row: dict, utf8: dict[str, bytes]) -> list[bytes]:
    """`json.dumps(row, ensure_ascii=False) + "\n"` in UTF-8, the same bytes, as pieces to
    write; `utf8` holds the UTF-8 of some of row's strings (the context), escaped here as
    bytes: json.dumps escapes a long string at about 130 MB/s, longer than assembling it.

    Without control characters json.dumps escapes only backslashes and quotes (ensure_ascii
    off), and UTF-8 never has those bytes inside a multi-byte character, so replacing them
    in the bytes is exact. A string with control characters takes json.dumps.
    """
    import numpy as np

    pieces = [b"{"]
    for k, (key, value) in enumerate(row.items()):
        pieces.append((", " * (k > 0) + json.dumps(key, ensure_ascii=False) + ": ").encode())
        data = utf8.get(key)
        if data is not None and (not data or np.frombuffer(data, np.uint8).min() >= 0x20):
            if b"\\" in data:  # rare in books; the check is a fraction of a copy
                data = data.replace(b"\\", b"\\\\")
            pieces += [b'"', data.replace(b'"', b'\\"'), b'"']
        else:
            pieces.append(json.dumps(value, ensure_ascii=False).encode())
    pieces.append(b"}\n")
    return pieces


def row_table(row: dict, schema=None, utf8: dict[str, bytes] | None = None):
    """`row` as a one-row Arrow table: what `pa.Table.from_pylist([row], schema)` makes, the
    same types and values, built from buffers for the values a sample row holds; `utf8`:
    the UTF-8 of some of its strings, already made.

    Why not from_pylist alone: pyarrow converts Python values through its pandas shim, which
    imports pandas (0.3-0.7 s, more than the rest of a 1M-token `babilab generate`) only to
    ask whether they are pandas objects. Other values, and a row whose types differ from
    `schema`'s (an empty list after non-empty ones), still take from_pylist.
    """
    import pyarrow as pa

    columns = {}
    for name, value in row.items():
        data = (utf8 or {}).get(name)
        column = plain_array(value) if data is None else string_array([data])
        if column is None or (schema is not None and column.type != schema.field(name).type):
            return pa.Table.from_pylist([row], schema=schema)
        columns[name] = column
    return pa.table(columns)


def plain_array(value):
    """`value` as a one-element Arrow array of the type pyarrow infers for it, for None, a
    str, int or float, or a list of them (ints and floats together: floats); else None."""
    import pyarrow as pa

    if value is None:
        return pa.nulls(1)
    if not isinstance(value, list):
        return arrow_values([value], type(value))
    kinds = {type(v) for v in value}
    if kinds == {int, float}:  # pyarrow makes such a list doubles
        value, kinds = [float(v) for v in value], {float}
    if not kinds:
        values = pa.nulls(0)  # an empty list: list<null>, as pyarrow infers it
    elif len(kinds) == 1:
        values = arrow_values(value, kinds.pop())
    else:
        return None
    if values is None:
        return None
    offsets = array.array("i", [0, len(value)])
    return pa.ListArray.from_arrays(
        pa.Array.from_buffers(pa.int32(), 2, [None, pa.py_buffer(offsets)]), values)


def arrow_values(values: list, kind: type):
    """`values`, all of Python type `kind`, as an Arrow array made from buffers; None when
    `kind` is not exactly str, int or float (bool, numpy numbers: pyarrow converts those)."""
    import pyarrow as pa

    if kind is str:
        return string_array([v.encode() for v in values])
    codes = {int: ("q", pa.int64()), float: ("d", pa.float64())}
    if kind not in codes:
        return None
    code, arrow_type = codes[kind]
    return pa.Array.from_buffers(arrow_type, len(values), [
        None, pa.py_buffer(array.array(code, values))])


def string_array(data: list[bytes]):
    """Arrow strings from their UTF-8 bytes."""
    import pyarrow as pa

    offsets = array.array("i", itertools.accumulate(map(len, data), initial=0))
    return pa.Array.from_buffers(pa.string(), len(data), [
        None, pa.py_buffer(offsets), pa.py_buffer(b"".join(data))])


def check_suite_out(out: Path) -> None:
    """Refuse a suite folder that cannot be written: not a folder path, not writable, or a
    folder that holds something other than a suite (which building would replace)."""
    check_output_dir(out, "--out")
    if out.is_dir() and any(out.iterdir()) and not (out / SUITE_FILE).exists():
        raise BabilabError(f"{out} exists and is not a suite; choose an empty folder")


class SuiteWriter:
    """Builds a suite in a temporary folder next to `out` and renames it into place.

    with SuiteWriter(out, info) as w:
        cell = w.cell("qa1", "4k")
        cell.add(sample)                  # as many as there are
        w.finish_cell(cell, dropped=0)
    """

    def __init__(self, out: Path | str, info: dict):
        self.out = Path(out)
        check_suite_out(self.out)
        self.info = {"format": SUITE_FORMAT, **info, "cells": {}}
        self.made = missing_folders(self.out.parent)  # removed again if the build fails
        self.out.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = make_dir(self.out.parent, f".{self.out.name}.tmp-")

    def cell(self, task: str, length: str) -> CellWriter:
        return CellWriter(self.tmp, task, length)

    def finish_cell(self, cell: CellWriter, dropped: int = 0, stats: dict | None = None) -> None:
        """Close `cell` and record its counts (and `stats`, such as repetition) in suite.json."""
        cell.close()
        self.info["cells"][f"{cell.task}/{cell.length}"] = {"samples": cell.count,
                                                             "dropped": dropped, **(stats or {})}

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
            remove_if_empty(self.made)
            return
        (self.tmp / SUITE_FILE).write_text(json.dumps(self.info, indent=2, sort_keys=True) + "\n")
        replace_dir(self.tmp, self.out)  # an older suite at the same path is replaced
