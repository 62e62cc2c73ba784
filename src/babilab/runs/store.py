"""The run store: every prediction in one SQLite file, committed as soon as it exists.

A prediction's key is the sha256 of (suite fingerprint, sample id, prompt configuration,
answerer fingerprint), so a re-run of the same command finds its finished work and skips
it, while a different model, prompt or suite can never reuse someone else's answers.
Each batch is written in one transaction before the next batch starts, so `kill -9` at any
moment loses at most the batch in flight and never duplicates a row (the key is the
primary key). Predictions that failed (`error` set) are retried by the next run and
replaced.

The store knows nothing about how outputs were made, nor how they are plotted.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, fields
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
    prompt_config: str  # PromptConfig.name
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

    @property
    def key(self) -> str:
        return prediction_key(self.suite, self.sample_id, self.prompt_config, self.model_fingerprint)


def prediction_key(suite: str, sample_id: str, prompt_config: str, model_fingerprint: str) -> str:
    text = "\x1f".join((suite, sample_id, prompt_config, model_fingerprint))
    return hashlib.sha256(text.encode()).hexdigest()


_COLUMNS = [f.name for f in fields(Prediction)]
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


class RunStore:
    """One run folder's prediction database. Use as a context manager."""

    def __init__(self, run_dir: Path | str, create: bool = True):
        self.run_dir = Path(run_dir)
        path = self.run_dir / STORE_FILE
        if not path.exists():
            if not create:
                raise BabilabError(f"{self.run_dir}: not a babilab run (no {STORE_FILE}); "
                                   "run `babilab eval` first")
            self.run_dir.mkdir(parents=True, exist_ok=True)
        try:
            self.db = sqlite3.connect(path, timeout=30)
            self.db.execute("PRAGMA journal_mode=WAL")  # a crash never leaves a torn commit
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.executescript(_SCHEMA)
            self._check_version()
        except sqlite3.DatabaseError as e:
            raise BabilabError(f"{path}: not a readable run store ({e})") from None

    def _check_version(self) -> None:
        row = self.db.execute("SELECT value FROM meta WHERE key='format'").fetchone()
        if row is None:
            with self.db:
                self.db.execute("INSERT INTO meta VALUES ('format', ?)", (FORMAT_VERSION,))
        elif row[0] != FORMAT_VERSION:
            raise BabilabError(f"{self.run_dir}: run store format {row[0]}, this babilab reads "
                               f"{FORMAT_VERSION}; use a new run folder")

    def __enter__(self) -> RunStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self.db.close()

    def done_keys(self) -> set[str]:
        """Keys of predictions that need no re-run (errors are retried)."""
        return {k for (k,) in self.db.execute("SELECT key FROM predictions WHERE error IS NULL")}

    def add(self, predictions: Iterable[Prediction]) -> int:
        """Write a batch in one transaction; an existing key is replaced."""
        rows = [(p.key, *(json.dumps(v, sort_keys=True) if k == "extra" and v is not None else v
                          for k, v in asdict(p).items()), time.time()) for p in predictions]
        marks = ", ".join("?" * (len(_COLUMNS) + 2))
        with self.db:
            self.db.executemany(f"INSERT OR REPLACE INTO predictions VALUES ({marks})", rows)
        return len(rows)

    def predictions(self, model: str | None = None) -> Iterator[Prediction]:
        """All stored predictions in insertion order, optionally of one model."""
        sql = f"SELECT {', '.join(_COLUMNS)} FROM predictions"
        args: tuple = ()
        if model is not None:
            sql, args = sql + " WHERE model = ?", (model,)
        for row in self.db.execute(sql + " ORDER BY rowid", args):
            p = dict(zip(_COLUMNS, row, strict=True))
            p["over_window"], p["truncated"] = bool(p["over_window"]), bool(p["truncated"])
            p["extra"] = json.loads(p["extra"]) if p["extra"] else None
            yield Prediction(**p)

    def fingerprints(self, model: str) -> set[str]:
        """The model fingerprints stored under one label."""
        sql = "SELECT DISTINCT model_fingerprint FROM predictions WHERE model = ?"
        return {f for (f,) in self.db.execute(sql, (model,))}

    def count(self) -> int:
        return self.db.execute("SELECT COUNT(*) FROM predictions").fetchone()[0]
