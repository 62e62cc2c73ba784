"""The schedule and the curriculum: pure functions of the step (and of a sample's rng)."""

import numpy as np
import pytest

from babilab.errors import BabilabError
from babilab.train.curriculum import (
    StageSettings,
    accumulation_steps,
    draw_segments,
    rows_of,
    stage_of,
)
from babilab.train.schedule import lr_at


def stage(**kw) -> StageSettings:
    values = dict(index=0, segments=4, steps=100, batch_size=64, micro_batch_size=16, lr=1e-3,
                  warmup_steps=10, decay_steps=200, eval_interval=10, target_accuracy=1.0)
    return StageSettings(**{**values, **kw})


def test_lr_warms_up_then_decays_linearly_as_the_reference():
    # reference: warm-up ITERS/10, linear decay toward 2 x ITERS -> about half the peak at the end
    lrs = [lr_at(s, 1e-3, 10, 200) for s in range(200)]
    assert lrs[0] == pytest.approx(1e-3 / 11) and lrs[9] == pytest.approx(1e-3 * 10 / 11)
    assert lrs[10] == pytest.approx(1e-3)
    assert all(a > b for a, b in zip(lrs[10:], lrs[11:], strict=False))
    assert lrs[100] == pytest.approx(1e-3 * 100 / 190)
    assert lr_at(200, 1e-3, 10, 200) == 0.0 and lr_at(500, 1e-3, 10, 200) == 0.0
    assert lr_at(0, 1e-3, 0, 10) == pytest.approx(1e-3)  # no warm-up: the peak at once


def test_segment_draws_replay_shorter_lengths_uniformly():
    rng = np.random.default_rng(0)
    draws = [draw_segments(rng, 4, vary=True) for _ in range(4000)]
    counts = np.bincount(draws, minlength=5)[1:]
    assert counts.min() > 900 and counts.max() < 1100  # uniform over 1..4
    assert {draw_segments(rng, 4, vary=False) for _ in range(50)} == {4}
    mixed = [draw_segments(rng, 4, vary=True, full_length_ratio=0.5) for _ in range(4000)]
    assert 0.55 < np.mean(np.array(mixed) == 4) < 0.7  # half forced, a quarter of the rest


def test_draws_consume_the_same_numbers_whatever_the_settings():
    a, b = np.random.default_rng(1), np.random.default_rng(1)
    draw_segments(a, 8, vary=True)
    draw_segments(b, 2, vary=False, full_length_ratio=1.0)
    assert a.random() == b.random()


def test_batch_arithmetic():
    assert accumulation_steps(stage(), 1) == 4
    assert accumulation_steps(stage(), 4) == 1
    # the reference's 1-segment stage on several GPUs: 64 per GPU x 4 GPUs > 64
    with pytest.raises(BabilabError, match="batch_size 64 is not a multiple of micro_batch_size 64 x 4"):
        accumulation_steps(stage(micro_batch_size=64), 4)
    with pytest.raises(BabilabError, match="stage 0"):
        accumulation_steps(stage(batch_size=6, micro_batch_size=4), 1)


def test_rows_partition_the_global_batch():
    for world in (1, 2, 4):
        rows = [r for rank in range(world) for r in rows_of(rank, world, 8)]
        assert rows == list(range(8))


def test_stage_of_a_step():
    stages = [stage(index=0, steps=3), stage(index=1, steps=5)]
    assert [stage_of(g, stages) for g in (0, 2, 3, 7, 8)] == [(0, 0), (0, 2), (1, 0), (1, 4), (2, 0)]
