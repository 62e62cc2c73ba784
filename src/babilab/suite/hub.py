"""A suite in the Hugging Face hub layout of `RMT-team/babilong`: one config per length, one
split per task, so `load_dataset(DIR, "4k")["qa1"]` works on an export as on the official set.

    DIR/
      README.md                               dataset card; its YAML `configs:` maps files to
                                              configs (lengths) and splits (tasks)
      babilab-suite.json                      the suite's suite.json, for full provenance
      data/4k/qa1-00000-of-00001.parquet      one file per (length, task)

Rows keep BABILong's `input`, `question`, `target` first, then what babilab knows per sample
(id, facts, supporting facts, fact offsets and depths, context tokens, books, meta as JSON).
Every file has the same explicit schema, so splits agree and empty lists never become nulls.

This is an export, not a second suite format: `babilab generate` keeps one on-disk layout
(and its fingerprint cache), and `babilab export-suite` converts any suite, generated or
official, in one pass. Like SuiteWriter, it builds in a temporary folder next to `out` and
renames it into place only when complete, so a failure leaves nothing behind.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import yaml

from ..errors import BabilabError
from ..outputs import check_output_dir
from .files import SUITE_FILE, Sample, Suite, sort_lengths, sort_tasks

CARD_FILE = "README.md"
INFO_FILE = "babilab-suite.json"
ROWS_PER_GROUP = 256  # parquet row groups: small enough for 10M-token samples, big enough to scan
CHARS_PER_GROUP = 64 << 20  # ... and flushed early when the inputs are long


def data_file(length: str, task: str) -> str:
    """Where a (length, task) cell goes, relative to the export folder (the hub's shard naming)."""
    return f"data/{length}/{task}-00000-of-00001.parquet"


def row_schema():
    import pyarrow as pa

    ints, floats = pa.list_(pa.int64()), pa.list_(pa.float64())
    return pa.schema([
        ("input", pa.string()), ("question", pa.string()), ("target", pa.string()),
        ("sample_id", pa.string()), ("task", pa.string()), ("length", pa.string()),
        ("index", pa.int64()), ("facts", pa.list_(pa.string())), ("supporting", ints),
        ("fact_char_offsets", ints), ("fact_token_offsets", ints), ("fact_depths", floats),
        ("support_depth", pa.float64()), ("context_tokens", pa.int64()),
        ("books", pa.list_(pa.string())), ("meta", pa.string()),
    ])


def hub_row(sample: Sample) -> dict:
    row = sample.to_row()
    meta = row.pop("meta")
    return {**row, "sample_id": sample.sample_id, "support_depth": sample.support_depth,
            "books": [str(b) for b in meta.get("books", ())],  # the background's provenance
            "meta": json.dumps(meta, sort_keys=True, ensure_ascii=False)}


def write_cell(samples: Iterator[Sample], path: Path) -> int:
    """Stream one cell into a parquet file, a row group at a time; returns the row count."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema, count = row_schema(), 0
    path.parent.mkdir(parents=True, exist_ok=True)
    with pq.ParquetWriter(path, schema) as writer:
        batch, chars = [], 0
        for sample in samples:
            batch.append(hub_row(sample))
            chars += len(sample.input)
            count += 1
            if len(batch) >= ROWS_PER_GROUP or chars >= CHARS_PER_GROUP:
                writer.write_table(pa.Table.from_pylist(batch, schema=schema))
                batch, chars = [], 0
        if batch:  # no empty row group: `datasets` sizes its reads by the first one, and 0 fails
            writer.write_table(pa.Table.from_pylist(batch, schema=schema))
    return count


def group_by_length(cells: list[tuple[str, str]]) -> dict[str, list[str]]:
    """(task, length) pairs -> {length: tasks at that length}, both in natural order."""
    by_length: dict[str, list[str]] = {}
    for task, length in cells:
        by_length.setdefault(length, []).append(task)
    return {n: sort_tasks(by_length[n]) for n in sort_lengths(by_length)}


def card_header(suite: Suite, cells: dict[str, list[str]], license: str) -> dict:
    configs = [{"config_name": length,
                "data_files": [{"split": task, "path": data_file(length, task)} for task in tasks]}
               for length, tasks in cells.items()]
    return {"pretty_name": f"BABILong suite {suite.fingerprint[:12]} (babilab)", "license": license,
            "language": ["en"], "task_categories": ["question-answering"],
            "tags": ["babilong", "long-context", "babilab"], "configs": configs}


def babilab_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("babilab")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "unknown"


def flat(value) -> str:
    """A config value as the command line takes it: lists comma-joined."""
    return ",".join(map(str, value)) if isinstance(value, list) else str(value)


def generate_command(config: dict) -> str | None:
    """The `babilab generate` line that rebuilds a generated suite; None for other suites."""
    keys = ("tasks", "lengths", "samples", "corpus", "tokenizer", "placement", "split", "seed",
            "reserve_tokens")
    if not all(k in config for k in keys):
        return None
    args = " ".join(f"--{k.replace('_', '-')} {flat(config[k])}" for k in keys)
    return f"babilab generate {args} --out SUITE"


def count_label(cell: dict | None, exported: bool) -> str:
    if cell is None:
        return ""
    return str(cell["samples"]) if exported else f"{cell['samples']} (no split)"


def card_text(suite: Suite, cells: dict[str, list[str]], license: str) -> str:
    """The dataset card: YAML header for `datasets` and the hub, then how the data was made."""
    header = yaml.safe_dump(card_header(suite, cells, license), sort_keys=False, allow_unicode=True)
    info, lengths = suite.info, list(cells)
    example = lengths[min(1, len(lengths) - 1)]
    all_tasks = sort_tasks(t for t, _ in suite.cells())
    all_lengths = sort_lengths(n for _, n in suite.cells())
    lines = [
        f"---\n{header}---\n",
        f"# BABILong suite {suite.fingerprint[:12]}\n",
        "bAbI reasoning facts hidden in background text at several context lengths, in the "
        "layout of the public BABILong dataset `RMT-team/babilong` (arXiv 2406.10149): one "
        "config per length, one split per task.\n",
        "```python\nfrom datasets import load_dataset\n"
        f'qa = load_dataset("PATH_TO_THIS_FOLDER", "{example}")["{cells[example][0]}"]\n```\n',
        "## How it was generated\n",
        f"- exported with babilab {babilab_version()}; bAbI generator version "
        f"{info.get('babi_generator', 'n/a')}",
        f"- suite fingerprint `{suite.fingerprint}` (a hash of everything that shapes the content)",
    ]
    config = info.get("config", {})
    if config:
        lines.append("- config: " + ", ".join(f"{k}={flat(v)}" for k, v in config.items()))
    bg = info.get("background")
    if bg:
        lines.append(f"- background: {bg.get('corpus')} ({bg.get('split')} split, "
                     f"{bg.get('n_books')} books, {bg.get('n_tokens')} {bg.get('tokenizer')} tokens)")
    command = generate_command(config)
    if command:
        lines.append(f"- rebuild: `{command}`")
    lines += ["", f"Full details in `{INFO_FILE}`.\n", "## Samples per split\n",
              "A cell whose questions were all dropped (their facts do not fit the length) has "
              "no split: `datasets` cannot load an empty one.\n",
              "| length | " + " | ".join(all_tasks) + " |", "|---" * (len(all_tasks) + 1) + "|"]
    for length in all_lengths:
        counts = [count_label(info["cells"].get(f"{t}/{length}"), t in cells.get(length, ()))
                  for t in all_tasks]
        lines.append(f"| {length} | " + " | ".join(counts) + " |")
    lines += ["", "## Fields\n",
              "`input` (the context; the question is not in it), `question`, `target` as in "
              "BABILong; then `sample_id` (task/length/index, the same index at every length), "
              "`task`, `length`, `index`, `facts`, `supporting` (indices into `facts`), "
              "`fact_char_offsets` and `fact_token_offsets` (where each fact starts in `input`), "
              "`fact_depths` (% of the context), `support_depth` (mean depth of the supporting "
              "facts), `context_tokens`, `books` (background books used) and `meta` (JSON: seed, "
              "corpus, tokenizer, placement, versions). Positions are empty for official sets.\n"]
    return "\n".join(lines)


def check_out(out: Path) -> None:
    """Refuse an `out` that holds anything, cannot be a folder or cannot be written, before
    anything is written."""
    check_output_dir(out, "--out")
    if out.is_dir() and any(out.iterdir()):
        raise BabilabError(f"{out} exists and is not empty; choose a new or empty folder")


def export_hub(suite_path: Path | str, out: Path | str, license: str = "apache-2.0") -> Path:
    """Write the suite at `suite_path` to `out` in the hub layout; returns `out`."""
    suite, out = Suite(suite_path), Path(out)
    check_out(out)
    missing = [p for p in [out.parent, *out.parent.parents] if not p.exists()]
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.tmp-"))
    try:
        written = []
        for task, length in suite.cells():
            path = tmp / data_file(length, task)  # a damaged sample: BabilabError, from Suite
            if write_cell(suite.samples(task, length), path):
                written.append((task, length))
            else:  # `datasets` cannot load an empty split, so the cell gets none
                path.unlink()
        if not written:
            raise BabilabError(f"{suite.path}: no samples to export")
        shutil.copyfile(suite.path / SUITE_FILE, tmp / INFO_FILE)
        (tmp / CARD_FILE).write_text(card_text(suite, group_by_length(written), license),
                                     encoding="utf-8")
        if out.exists():  # an empty folder, checked above
            out.rmdir()
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        for folder in missing:  # the folders made for `out`, deepest first
            if folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()
        raise
    return out
