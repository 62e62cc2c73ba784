"""`babilab eval` split over processes by torchrun and `accelerate launch`, on the CPU: the
store ends with exactly the predictions of a one-process run, fresh or resumed, and process 0
waits for the others and reports the whole job. No process group is used: the launchers
only set RANK, WORLD_SIZE and LOCAL_RANK."""

import os
import random
import socket
import sqlite3
import subprocess
import sys
import time
from dataclasses import replace

import pytest

from babilab.errors import BabilabError
from babilab.hardware import Processes, launched_processes
from babilab.runs import RunStore
from babilab.runs.evaluate import evaluate, share_of
from tests.conftest import facts_only_suite

pytestmark = pytest.mark.slow  # each test starts several Python processes


def test_every_batch_is_dealt_to_exactly_one_process():
    rng = random.Random(0)
    for _ in range(200):
        cells = [(f"c{c}", [(f"c{c}k{i}", f"c{c}s{i}") for i in range(rng.randint(0, 9))])
                 for c in range(rng.randint(1, 4))]
        keys = [k for _, samples in cells for k, _ in samples]
        done = {k for k in keys if rng.random() < 0.3}
        batch_size, world = rng.randint(1, 4), rng.randint(1, 4)
        shares = [share_of(cells, done, batch_size, Processes(r, world, r)) for r in range(world)]
        answered = [s for share in shares for _, batch in share for s in batch]
        assert sorted(answered) == sorted(s for _, samples in cells for k, s in samples
                                          if k not in done)
        assert all(0 < len(batch) <= batch_size for share in shares for _, batch in share)


def test_on_a_fresh_run_the_batches_are_the_one_process_batches():
    cells = [("a", [(f"a{i}", f"a{i}") for i in range(7)]), ("b", [(f"b{i}", f"b{i}") for i in range(5)])]
    one = share_of(cells, set(), 3)
    dealt = [share_of(cells, set(), 3, Processes(r, 2, r)) for r in range(2)]
    assert sorted(map(str, one)) == sorted(str(b) for share in dealt for b in share)


def test_launcher_variables():
    assert launched_processes({}) == Processes(0, 1, 0)
    env = {"RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "1"}
    assert launched_processes(env) == Processes(3, 4, 1)
    for env, message in [({"RANK": "x", "WORLD_SIZE": "2"}, "RANK='x' is not a number"),
                         ({"RANK": "2", "WORLD_SIZE": "2"}, "expected 0 <= RANK < WORLD_SIZE"),
                         ({"WORLD_SIZE": "2"}, "WORLD_SIZE=2 but no RANK")]:
        with pytest.raises(BabilabError, match=message):
            launched_processes(env)


# --------------------------------------------------------------------------------------------
# Real launches


@pytest.fixture(scope="module")
def suite(tmp_path_factory):
    return facts_only_suite(tmp_path_factory.mktemp("dp") / "suite", tasks=("qa1", "qa2"), n=7,
                            lengths=("0k", "1k"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def eval_args(suite, run, *more):
    # --run-dir: torchrun would read `--run` as an abbreviation of its own --run-path
    return ["-m", "babilab.cli", "eval", "--suite", str(suite.path), "--run-dir", str(run),
            "--batch-size", "2", *more]


def torchrun(*args):
    return [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", *args]


def accelerate(*args):
    # --multi_gpu is what makes accelerate start N processes (through torchrun) on any machine;
    # `--cpu --num_processes 2` starts one process, as accelerate needs MPI for several CPUs
    return [sys.executable, "-m", "accelerate.commands.accelerate_cli", "launch", "--multi_gpu",
            "--num_processes", "2", "--main_process_port", str(free_port()), *args]


def run(command, **env):
    proc = subprocess.run(command, capture_output=True, text=True, timeout=300,
                          env={**os.environ, **env})
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def stored(run_dir):
    """The store's predictions, without what differs between runs (seconds per answer)."""
    with RunStore(run_dir, create=False) as store:
        rows = sorted((replace(p, elapsed_s=0.0) for p in store.predictions()),
                      key=lambda p: (p.sample_id, p.prompt_config))
    assert len({(p.sample_id, p.prompt_config, p.model_fingerprint) for p in rows}) == len(rows)
    return rows


@pytest.fixture(scope="module")
def one_process(suite, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("one") / "run"
    run([sys.executable, *eval_args(suite, run_dir, "--model", "oracle")])
    return stored(run_dir)


def test_torchrun_two_processes_equal_one(suite, one_process, tmp_path):
    proc = run(torchrun(*eval_args(suite, tmp_path / "run", "--model", "oracle")))
    assert stored(tmp_path / "run") == one_process and len(one_process) == 28
    assert "process 0 of 2" in proc.stderr
    # process 0 alone reports, for the whole job
    assert proc.stdout.count("oracle: 28 new predictions, 0 already stored, 0 failed") == 1
    assert proc.stdout.count("qa1-5") <= 1 and proc.stdout.count("\noracle (babilong") == 1


def test_torchrun_resumes_a_one_process_run(suite, one_process, tmp_path):
    run([sys.executable, *eval_args(suite, tmp_path / "run", "--model", "oracle", "--tasks", "qa1")])
    proc = run(torchrun(*eval_args(suite, tmp_path / "run", "--model", "oracle")))
    assert stored(tmp_path / "run") == one_process
    assert "oracle: 14 new predictions, 14 already stored, 0 failed" in proc.stdout


def test_accelerate_launch_two_processes_equal_one(suite, one_process, tmp_path):
    proc = run(accelerate(*eval_args(suite, tmp_path / "run", "--model", "oracle")))
    assert stored(tmp_path / "run") == one_process
    assert "process 0 of 2" in proc.stderr
    assert proc.stdout.count("oracle: 28 new predictions") == 1


def test_process_0_waits_for_the_others_then_reports_the_job(suite, tmp_path):
    """No launcher, no process group: two copies told their rank. Process 0, its share done,
    waits for process 1's and only then reports all of it."""
    command = [sys.executable, *eval_args(suite, tmp_path / "run", "--model", "oracle")]
    env = {**os.environ, "WORLD_SIZE": "2", "LOCAL_RANK": "0"}
    first = subprocess.Popen(command, env={**env, "RANK": "0"}, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 120
        while time.time() < deadline and count(tmp_path / "run") < 16:  # process 0's share
            time.sleep(0.2)
        time.sleep(3)
        assert first.poll() is None and count(tmp_path / "run") == 16  # still waiting
        second = run(command, RANK="1", WORLD_SIZE="2", LOCAL_RANK="1")
        assert second.stdout == ""  # process 1 reports nothing
        out, err = first.communicate(timeout=120)
    finally:
        first.kill()
    assert first.returncode == 0, err
    assert "oracle: 28 new predictions, 0 already stored, 0 failed" in out
    assert count(tmp_path / "run") == 28


def count(run_dir) -> int:
    try:
        with sqlite3.connect(run_dir / "predictions.sqlite", timeout=5) as db:
            return db.execute("SELECT COUNT(*) FROM predictions").fetchone()[0]
    except sqlite3.OperationalError:  # not made yet
        return 0


def test_hf_under_torchrun_equals_one_process(suite, tmp_path):
    """A real model: SmolLM2 on the CPU, one thread per process in both runs (a matrix
    product's rounding can depend on the thread count); the one-process run in this one."""
    import torch

    options = {"max_new_tokens": 6, "device": "cpu"}
    threads = torch.get_num_threads()
    try:
        evaluate(suite, "hf:smollm2", tmp_path / "one", batch_size=2, tasks=["qa1"],
                 lengths=["0k"], progress=False, threads=1, **options)
    finally:
        torch.set_num_threads(threads)
    run(torchrun(*eval_args(suite, tmp_path / "two", "--model", "hf:smollm2", "--tasks", "qa1",
                            "--lengths", "0k", *(f"--model-arg={k}={v}" for k, v in options.items()))))
    one, two = stored(tmp_path / "one"), stored(tmp_path / "two")
    assert len(one) == 7 and all(p.output for p in one)
    assert two == one
