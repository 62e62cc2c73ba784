"""Writing a suite's cells: the same JSONL and Parquet bytes that `json.dumps` and pyarrow's
`Table.from_pylist` give (what CellWriter used before it built rows from buffers), and
`babilab generate` never importing pandas (pyarrow's conversion of Python values did)."""

import json
import subprocess
import sys

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from babilab.suite import Sample, SuiteWriter
from babilab.suite.files import LONG_TEXT, json_line, row_table

# A long context takes the bytes path of json_line; quotes, backslashes, non-ASCII text
# (two-, three- and four-byte UTF-8) and DEL are what its escaping must get right.
LONG = ('He said "no" \\ then left; caf\u00e9 \u2713 \U0001F600 \x7f. ' * 2000)[:LONG_TEXT + 99]
META = {"seed": 0, "books": ["a", "b"], "background": {"spans": [{"book": "a", "tokens": 3}],
                                                      "repetition": 1.25}, "\u00e9": None}


def generated(index: int, text: str, **changes) -> Sample:
    fields = dict(task="qa1", length="1M", index=index, input=text, question="Where is Mary?",
                  target="garden", facts=("Mary went to the garden.", "John left."),
                  supporting=(0,), fact_char_offsets=(3, 60), fact_token_offsets=(1, 14),
                  fact_depths=(0.125, 61.0), context_tokens=999_700, meta=META)
    return Sample(**{**fields, **changes})


CELLS = {
    "generated": [generated(0, LONG), generated(1, "short \u00e9 context"), generated(2, LONG[::-1])],
    # control characters: json.dumps escapes those itself
    "control": [generated(0, "tab\there, newline\n, bell\x07. " * 3000)],
    # the official sets: no facts nor positions, no token count
    "official": [Sample("qa1", "1k", i, f"ctx {i} \u00e9", "Where?", "garden",
                        meta={"source": "RMT-team/babilong", "revision": None}) for i in range(3)],
    # types that differ from the first row's: an empty list, no token count, an int depth
    "mixed": [generated(0, LONG), generated(1, "x", facts=(), context_tokens=None),
              generated(2, "y", fact_depths=(1, 2.5))],
}


def write_as_before(folder, samples) -> None:
    """The JSONL and Parquet writing that CellWriter replaced, for the bytes to compare with."""
    writer = None
    with open(folder / "cell.jsonl", "w", encoding="utf-8") as f:
        for sample in samples:
            row = sample.to_row()
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
            row["meta"] = json.dumps(row["meta"], sort_keys=True)
            table = pa.Table.from_pylist([row], schema=writer.schema if writer else None)
            if writer is None:
                writer = pq.ParquetWriter(folder / "cell.parquet", table.schema,
                                          use_dictionary=False, write_statistics=False)
            writer.write_table(table)
    writer.close()


@pytest.mark.parametrize("name", CELLS)
def test_cells_are_the_bytes_json_dumps_and_from_pylist_write(name, tmp_path):
    samples = CELLS[name]
    with SuiteWriter(tmp_path / "suite", {"fingerprint": "f", "config": {}}) as writer:
        writer.add_cell("qa1", "1M", samples)
    (tmp_path / "before").mkdir()
    write_as_before(tmp_path / "before", samples)
    for suffix in ("jsonl", "parquet"):
        got = (tmp_path / "suite" / "data" / "qa1" / f"1M.{suffix}").read_bytes()
        assert got == (tmp_path / "before" / f"cell.{suffix}").read_bytes(), suffix


@pytest.mark.parametrize("text", [LONG, "plain " * 20_000, "ctl\x01" * 20_000, "\\" * 70_000,
                                  "\u2028\u00a0" * 40_000])
def test_json_line_is_json_dumps(text):
    row = {"task": "qa1", "input": text, "facts": ["a \"b\""], "meta": META, "n": None}
    want = (json.dumps(row, ensure_ascii=False) + "\n").encode()
    assert b"".join(json_line(row, {"input": text.encode()})) == want
    assert b"".join(json_line(row, {})) == want


def test_row_table_is_from_pylist():
    first = {"s": "x \u00e9", "i": -2**63, "f": 0.5, "n": None, "ls": ["", "\u2713"], "li": [1, 2],
             "lf": [0.25], "mixed": [1, 2.5], "empty": [], "b": True, "lb": [True, None]}
    table = row_table(first)
    assert table.equals(pa.Table.from_pylist([first]))
    later = {**first, "ls": [], "n": None, "li": [7], "empty": [], "b": False}
    assert row_table(later, table.schema).equals(pa.Table.from_pylist([later], schema=table.schema))


def test_generate_does_not_import_pandas(tmp_path):
    # pyarrow's conversion of Python objects imports pandas (0.3-0.7 s) to ask whether they
    # are pandas objects; `babilab generate` builds its Arrow rows without it
    code = ("import sys; from babilab.cli import main; code = main(sys.argv[1:]); "
            "print('pandas' in sys.modules); sys.exit(code)")
    done = subprocess.run([sys.executable, "-c", code, "generate", "--tasks", "qa1", "--samples",
                           "2", "--lengths", "0k,1k", "--out", str(tmp_path / "s")],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "False"
    assert pq.read_table(tmp_path / "s" / "data" / "qa1" / "1k.parquet").num_rows == 2


def test_a_failed_build_leaves_nothing(tmp_path):
    with pytest.raises(KeyboardInterrupt), SuiteWriter(tmp_path / "out" / "s", {"fingerprint": "f",
                                                                                "config": {}}) as w:
        cell = w.cell("qa1", "1M")
        cell.add(generated(0, LONG))  # its Parquet write may still be running
        raise KeyboardInterrupt
    assert not (tmp_path / "out").exists()
