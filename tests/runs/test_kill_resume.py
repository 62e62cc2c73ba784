"""A run killed with SIGKILL at random moments, then resumed, ends with exactly the
predictions of an uninterrupted run: nothing lost, nothing duplicated."""

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from tests.conftest import facts_only_suite


def eval_command(suite, run):
    return [sys.executable, "-m", "babilab.cli", "eval", "--suite", str(suite), "--model",
            "oracle", "--run", str(run), "--batch-size", "1"]


def stored(run):
    with sqlite3.connect(run / "predictions.sqlite") as db:
        rows = db.execute("SELECT key, sample_id, prompt_config, output FROM predictions").fetchall()
    assert len(rows) == len({r[0] for r in rows})
    return sorted(rows)


def count(run):
    try:
        with sqlite3.connect(run / "predictions.sqlite", timeout=1) as db:
            return db.execute("SELECT COUNT(*) FROM predictions").fetchone()[0]
    except sqlite3.OperationalError:  # the table is not created yet
        return 0


@pytest.mark.slow  # 3,000 samples, 7 processes
def test_sigkill_at_random_points_then_resume(tmp_path):
    tasks = ("qa1", "qa2", "qa4", "qa9", "qa10", "qa12")
    suite = facts_only_suite(tmp_path / "suite", tasks=tasks, n=500)
    total = len(tasks) * 500
    subprocess.run(eval_command(suite.path, tmp_path / "clean"), check=True, capture_output=True)
    reference = stored(tmp_path / "clean")
    assert len(reference) == total

    rng = random.Random(1234)
    run = tmp_path / "killed"
    partial_counts = []
    for _ in range(6):
        before = len(stored(run)) if (run / "predictions.sqlite").exists() else 0
        proc = subprocess.Popen(eval_command(suite.path, run), stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        # Wait until this process is writing (start-up time varies with machine load), then
        # kill it at a random moment inside its work.
        deadline = time.time() + 120
        while proc.poll() is None and time.time() < deadline:
            if (run / "predictions.sqlite").exists() and count(run) > before:
                break
            time.sleep(0.01)
        time.sleep(rng.uniform(0.0, 0.1))
        if proc.poll() is not None:
            break
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        partial_counts.append(len(stored(run)))
    subprocess.run(eval_command(suite.path, run), check=True, capture_output=True)

    assert stored(run) == reference
    # the kills really interrupted work in progress
    assert any(0 < n < total for n in partial_counts), partial_counts
