"""The run store: every prediction in one SQLite file, committed as soon as it exists.

A prediction's key is the sha256 of (suite fingerprint, sample id, prompt configuration,
answerer fingerprint), so a re-run of the same command finds its finished work and skips
it, while a different model, prompt or suite can never reuse someone else's answers.
Each batch is written in one transaction before the next batch starts, so `kill -9` at any
moment loses at most the batch in flight and never duplicates a row (the key is the
primary key). Predictions that failed (`error` set) are retried by the next run and
replaced.

Columns added after a store was first written (`support_depths`, `placement`) are added to
it when it is opened, empty for the rows already there; rows are written by column name.

Several processes may write one store at once (`babilab eval` under torchrun or accelerate
launch, or two evals into one run folder): SQLite's locks serialize their commits, making a
store and adding columns are safe against a race, and `made_since` lets one process see what
the others have committed.

Readers (rescore, report, export) open a store read-only and leave its folder byte-identical,
so they work on runs nobody may write to; every opening refuses, before writing anything, a
file that is not a store of this format, and a damaged row is one clear error.

The store knows nothing about how outputs were made, nor how they are plotted.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, fields
from pathlib import Path

from ..errors import BabilabError

FORMAT_VERSION = "1"
STORE_FILE = "predictions.sqlite"


@dataclass(frozen=True)
class Prediction:
    suite: str  # suite fingerprint
    sample_id: str
    task: str
    length: str  # "4k"
    prompt_config: str  # PromptConfig.key: the name, and a prompts file's digest
    model: str  # the answerer's label
    model_fingerprint: str
    target: str
    question: str
    output: str
    elapsed_s: float = 0.0
    prompt_tokens: int | None = None
    over_window: bool = False
    truncated: bool = False
    error: str | None = None
    depth: float | None = None  # mean depth (%) of the supporting facts in the context
    extra: dict | None = None  # the answer's backend-specific measurements, stored as JSON
    # each supporting fact's depth (%), in context order, stored as JSON: where the facts lie
    support_depths: tuple[float, ...] | None = None
    placement: str | None = None  # the suite's placement policy ("depth:25"), when known

    @property
    def key(self) -> str:
        return prediction_key(self.suite, self.sample_id, self.prompt_config, self.model_fingerprint)


def prediction_key(suite: str, sample_id: str, prompt_config: str, model_fingerprint: str) -> str:
    text = "\x1f".join((suite, sample_id, prompt_config, model_fingerprint))
    return hashlib.sha256(text.encode()).hexdigest()


_COLUMNS = [f.name for f in fields(Prediction)]
_JSON_COLUMNS = {"extra", "support_depths"}


def _sql_value(column: str, value):
    """A prediction field as its column stores it: JSON text for the structured ones."""
    return json.dumps(value, sort_keys=True) if column in _JSON_COLUMNS and value is not None else value


_SQL_TYPES = {"elapsed_s": "REAL", "depth": "REAL", "prompt_tokens": "INTEGER",
              "over_window": "INTEGER", "truncated": "INTEGER"}  # the rest are TEXT
_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS predictions (
    key TEXT PRIMARY KEY,
    {", ".join(f"{c} {_SQL_TYPES.get(c, 'TEXT')}" for c in _COLUMNS)},
    created_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS predictions_cell ON predictions (model, prompt_config, task, length);
"""


# Columns every store has had since format 1: a table without them is someone else's.
_BASE_COLUMNS = ("key", "suite", "sample_id", "task", "length", "prompt_config", "model",
                 "model_fingerprint", "target", "question", "output", "created_at")
_TEXT_FIELDS = ("suite", "sample_id", "task", "length", "prompt_config", "model",
                "model_fingerprint", "target", "question", "output")
NOT_A_STORE_FIX = "give a run folder made by `babilab eval` or `babilab import`, or a new one"


def connect_read_only(path: Path) -> sqlite3.Connection:
    """A connection that never writes, not even SQLite's -shm and -wal files, so reading
    leaves a run folder byte-identical and works where it is read-only. With no -wal file
    no process has the store open for writing and every commit is in the file itself, so it
    is read as immutable; otherwise it is read through the -wal (which needs its -shm)."""
    uri = path.resolve().as_uri()
    wal = path.with_name(path.name + "-wal")
    if not wal.exists():
        return sqlite3.connect(f"{uri}?mode=ro&immutable=1", uri=True)
    db = sqlite3.connect(f"{uri}?mode=ro", uri=True, timeout=30)
    try:
        db.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
        return db
    except sqlite3.OperationalError:  # no -shm, and the folder is read-only
        db.close()
    if wal.stat().st_size > 0:
        raise BabilabError(f"{path}: its {wal.name} holds predictions not yet in the store, and "
                           "the folder is read-only; copy the run folder (-wal file included) "
                           "somewhere writable and give that copy")
    return sqlite3.connect(f"{uri}?mode=ro&immutable=1", uri=True)


def check_store(db: sqlite3.Connection, path: Path) -> set[str] | None:
    """The predictions table's columns, once the file is known to be a run store of this
    format; None for a database with no tables at all (a store about to be made)."""
    tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    if not tables:
        return None
    if not {"meta", "predictions"} <= tables:
        raise BabilabError(f"{path}: not a babilab run store (its tables: "
                           f"{', '.join(sorted(tables))}); {NOT_A_STORE_FIX}")
    row = db.execute("SELECT value FROM meta WHERE key='format'").fetchone()
    if row is not None and row[0] != FORMAT_VERSION:
        raise BabilabError(f"{path.parent}: run store format {row[0]}, this babilab reads "
                           f"{FORMAT_VERSION}; use a new run folder")
    columns = {r[1] for r in db.execute("PRAGMA table_info(predictions)")}
    missing = [c for c in _BASE_COLUMNS if c not in columns]
    if missing:
        raise BabilabError(f"{path}: not a babilab run store (its predictions table has no "
                           f"{', '.join(missing)}); {NOT_A_STORE_FIX}")
    return columns


def check_shared_store(run_dir: Path) -> None:
    """Check, before a model loads, that a store other processes may be making or writing
    right now is of this format: read through SQLite's locks (waiting for a writer), where
    the read-only opening reads the file as immutable; a store with no tables yet is fine."""
    path = Path(run_dir) / STORE_FILE
    db = sqlite3.connect(path, timeout=30)
    try:
        check_store(db, path)
    except sqlite3.DatabaseError as e:
        raise BabilabError(f"{path}: not a readable run store ({e}); {NOT_A_STORE_FIX}") from None
    finally:
        db.close()


def prediction_of_row(p: dict) -> Prediction:
    """A stored row as a Prediction, its types checked (TypeError, ValueError when damaged)."""
    for name in _TEXT_FIELDS:
        if not isinstance(p[name], str):
            raise TypeError(f"{name} is {type(p[name]).__name__}, not text")
    p["over_window"], p["truncated"] = bool(p["over_window"]), bool(p["truncated"])
    p["extra"] = json.loads(p["extra"]) if p["extra"] else None
    depths = p["support_depths"]
    p["support_depths"] = tuple(json.loads(depths)) if depths else None
    return Prediction(**p)


class RunStore:
    """One run folder's prediction database. Use as a context manager.

    `create=True` opens it for writing, making it when there is none; `create=False` opens
    an existing one read-only, all that rescore, report and export need, so they work on a
    run folder nobody may write to (a shared results folder, a mounted archive). Either way
    a file that is not a run store of this format is refused before anything is written to it.
    """

    def __init__(self, run_dir: Path | str, create: bool = True):
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / STORE_FILE
        if not self.path.exists() and not create:
            raise BabilabError(f"{self.run_dir}: not a babilab run (no {STORE_FILE}); "
                               "run `babilab eval` first")
        self.db = None
        try:
            self.columns = self._open_read_only() if not create else self._open_for_writing()
        except sqlite3.DatabaseError as e:
            self.close()
            raise BabilabError(f"{self.path}: not a readable run store ({e}); "
                               f"{NOT_A_STORE_FIX}") from None
        except BaseException:
            self.close()
            raise

    def _open_read_only(self) -> set[str]:
        self.db = connect_read_only(self.path)
        columns = check_store(self.db, self.path)
        if columns is None:
            raise BabilabError(f"{self.path}: an empty store, no predictions; run `babilab "
                               "eval` into this folder first")
        return columns

    def _open_for_writing(self) -> set[str]:
        if not self.path.exists():
            self.run_dir.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(self.path, timeout=30)
        check_store(self.db, self.path)  # before anything is added to it
        self.db.execute("PRAGMA journal_mode=WAL")  # a crash never leaves a torn commit
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(_SCHEMA)
        self._check_version()
        self._add_new_columns()
        return set(_COLUMNS)

    def _check_version(self) -> None:
        with self.db:  # OR IGNORE: another process making the store may have written it first
            self.db.execute("INSERT OR IGNORE INTO meta VALUES ('format', ?)", (FORMAT_VERSION,))
        row = self.db.execute("SELECT value FROM meta WHERE key='format'").fetchone()
        if row[0] != FORMAT_VERSION:
            raise BabilabError(f"{self.run_dir}: run store format {row[0]}, this babilab reads "
                               f"{FORMAT_VERSION}; use a new run folder")

    def _add_new_columns(self) -> None:
        """Columns of this version a store written by an older one lacks (added empty)."""
        have = {row[1] for row in self.db.execute("PRAGMA table_info(predictions)")}
        if all(c in have for c in _COLUMNS):
            return
        with self.db:  # read again under the write lock: another process may have added them
            self.db.execute("BEGIN IMMEDIATE")
            have = {row[1] for row in self.db.execute("PRAGMA table_info(predictions)")}
            for column in (c for c in _COLUMNS if c not in have):
                self.db.execute(f"ALTER TABLE predictions ADD COLUMN {column} "
                                f"{_SQL_TYPES.get(column, 'TEXT')}")

    def __enter__(self) -> RunStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self.db is not None:
            self.db.close()

    def done_keys(self, before: float | None = None) -> set[str]:
        """Keys of predictions that need no re-run (errors are retried); with `before` (a
        time.time()), only those stored before then."""
        sql, args = "SELECT key FROM predictions WHERE error IS NULL", ()
        if before is not None:
            sql, args = sql + " AND created_at < ?", (before,)
        return {k for (k,) in self.db.execute(sql, args)}

    def made_since(self, since: float) -> dict[str, str | None]:
        """{key: error} of the predictions stored (or replaced) at or after `since`."""
        sql = "SELECT key, error FROM predictions WHERE created_at >= ?"
        return dict(self.db.execute(sql, (since,)))

    def add(self, predictions: Iterable[Prediction]) -> int:
        """Write a batch in one transaction; an existing key is replaced."""
        # getattr, not dataclasses.asdict: asdict deep-copies every field, which took about
        # as long as the rest of importing 100k published predictions
        rows = [(p.key, *(_sql_value(k, getattr(p, k)) for k in _COLUMNS), time.time())
                for p in predictions]
        names = ", ".join(["key", *_COLUMNS, "created_at"])  # by name: added columns sit last
        marks = ", ".join("?" * (len(_COLUMNS) + 2))
        with self.db:
            self.db.executemany(f"INSERT OR REPLACE INTO predictions ({names}) VALUES ({marks})",
                                rows)
        return len(rows)

    def predictions(self, model: str | None = None) -> Iterator[Prediction]:
        """All stored predictions in insertion order, optionally of one model."""
        # a read-only store of an older version lacks the newer columns: they read as empty
        selected = ", ".join(c if c in self.columns else f"NULL AS {c}" for c in _COLUMNS)
        sql = f"SELECT rowid, {selected} FROM predictions"
        args: tuple = ()
        if model is not None:
            sql, args = sql + " WHERE model = ?", (model,)
        for rowid, *row in self.db.execute(sql + " ORDER BY rowid", args):
            try:
                yield prediction_of_row(dict(zip(_COLUMNS, row, strict=True)))
            except (TypeError, ValueError) as e:  # json.JSONDecodeError is a ValueError
                raise BabilabError(f"{self.path}: prediction row {rowid} is damaged ({e}); "
                                   "evaluate into a new run folder") from None

    def fingerprints(self, model: str) -> set[str]:
        """The model fingerprints stored under one label."""
        sql = "SELECT DISTINCT model_fingerprint FROM predictions WHERE model = ?"
        return {f for (f,) in self.db.execute(sql, (model,))}

    def count(self) -> int:
        return self.db.execute("SELECT COUNT(*) FROM predictions").fetchone()[0]
