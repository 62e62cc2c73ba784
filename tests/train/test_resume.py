"""A training run killed with SIGKILL after a checkpoint, then resumed, ends with exactly the
parameters (and metrics) of an uninterrupted run of the same steps."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
import yaml
from safetensors.torch import load_file

from babilab.train import train
from babilab.train.checkpoint import LATEST, find_checkpoint

from .train_fixtures import recipe

KILL_AFTER_STEP = 4


def final_weights(out):
    return load_file(find_checkpoint(out / "checkpoints").path / "trainable.safetensors")


def metrics(out):
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if k not in ("elapsed_s", "model")} for r in rows]


@pytest.mark.slow
def test_sigkill_then_resume_equals_an_uninterrupted_run(tmp_path, corpus, dropout_backbone):
    # RMT-R with dropout in the backbone and the retrieval block: the RNG must be restored too
    values = recipe(tmp_path, dropout_backbone, corpus, architecture="rmt_r",
                    memory={"num_write_mem_tokens": 4, "num_read_mem_tokens": 6},
                    stages=[{"segments": 1, "steps": 7}, {"segments": 2, "steps": 9}],
                    eval_interval=3, checkpoint_interval=2)
    reference = train({**values, "out_dir": str(tmp_path / "reference")})

    killed = tmp_path / "killed"
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump({**values, "out_dir": str(killed)}))
    proc = subprocess.Popen([sys.executable, "-m", "babilab.cli", "train", str(path)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    latest = killed / "checkpoints" / LATEST
    while proc.poll() is None:
        if latest.is_file() and int(latest.read_text().split("-")[1]) >= KILL_AFTER_STEP:
            os.kill(proc.pid, signal.SIGKILL)
            break
        time.sleep(0.005)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read().decode()[-2000:]
    interrupted = find_checkpoint(killed / "checkpoints")
    assert KILL_AFTER_STEP <= interrupted.state["global_step"] < 16  # stopped midway

    resumed = train(path, resume=True)
    a, b = final_weights(reference.out_dir), final_weights(resumed.out_dir)
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a), "resumed parameters differ"
    assert metrics(resumed.out_dir) == metrics(reference.out_dir)
    assert [s["best_step"] for s in resumed.stages] == [s["best_step"] for s in reference.stages]
