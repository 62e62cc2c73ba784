"""With the [train] extra (it brings tensorboard), training logs its scalars to TensorBoard
beside metrics.jsonl: loss, learning rate and gradient norm per logged step, validation
accuracy and loss per evaluation."""

import json

import pytest

from babilab.train import train

from .train_fixtures import recipe

pytest.importorskip("tensorboard")


def test_training_writes_tensorboard_scalars(tmp_path, corpus, backbone):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    result = train(recipe(tmp_path, backbone, corpus, stages=[{"segments": 1, "steps": 4}],
                          eval_interval=2))
    [events] = (result.out_dir / "tensorboard").glob("events.out.tfevents.*")
    log = EventAccumulator(str(events.parent))
    log.Reload()
    tags = set(log.Tags()["scalars"])
    assert {"train/loss", "train/lr", "train/grad_norm", "valid/accuracy", "valid/loss"} <= tags
    records = [json.loads(line) for line in (result.out_dir / "metrics.jsonl").read_text().splitlines()]
    for kind, key in (("train", "loss"), ("train", "lr"), ("valid", "accuracy")):
        logged = sorted((r["global_step"], r[key]) for r in records if r["kind"] == kind)
        scalars = sorted((e.step, e.value) for e in log.Scalars(f"{kind}/{key}"))
        assert [step for step, _ in scalars] == [step for step, _ in logged]
        assert [v for _, v in scalars] == pytest.approx([v for _, v in logged], rel=1e-6)  # float32
