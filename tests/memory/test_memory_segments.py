"""Known answers for segmenting and for lining samples up so that they end together."""

from __future__ import annotations

import pytest
import torch

from babilab.memory import segment_batches, split_points


@pytest.mark.parametrize(
    "length, align, expected",
    [
        (10, "left", [(0, 4), (4, 8), (8, 10)]),  # reference default: remainder last
        (10, "right", [(0, 2), (2, 6), (6, 10)]),
        (8, "left", [(0, 4), (4, 8)]),
        (8, "right", [(0, 4), (4, 8)]),
        (3, "left", [(0, 3)]),
        (1, "right", [(0, 1)]),
    ],
)
def test_split_points(length, align, expected):
    assert split_points(length, 4, align) == expected


def test_split_points_rejects_bad_input():
    with pytest.raises(ValueError, match="at least one token"):
        split_points(0, 4)
    with pytest.raises(ValueError, match="align"):
        split_points(5, 4, "center")


def test_segment_batches_end_together_with_left_padding():
    steps = list(segment_batches([[1, 2, 3, 4, 5], [6, 7]], 2))
    assert [s.input_ids.tolist() for s in steps] == [
        [[1, 2], [0, 0]],
        [[3, 4], [0, 0]],
        [[0, 5], [6, 7]],
    ]
    assert [s.attention_mask.tolist() for s in steps] == [
        [[1, 1], [0, 0]],
        [[1, 1], [0, 0]],
        [[0, 1], [1, 1]],
    ]
    assert [s.active.tolist() for s in steps] == [[True, False], [True, False], [True, True]]


def test_segment_batches_keep_every_token_once_in_order():
    samples = [torch.arange(1, 24), torch.arange(30, 35), torch.arange(40, 49)]
    extras = {"pos": [torch.arange(len(s)) for s in samples]}
    rebuilt = [[] for _ in samples]
    positions = [[] for _ in samples]
    for step in segment_batches(samples, 4, "right", extras):
        for i in range(len(samples)):
            real = step.attention_mask[i].bool()
            rebuilt[i] += step.input_ids[i][real].tolist()
            positions[i] += step.extras["pos"][i][real].tolist()
            assert (step.extras["pos"][i][~real] == -100).all()
    assert rebuilt == [s.tolist() for s in samples]
    assert positions == [list(range(len(s))) for s in samples]


def test_segment_batches_check_extras():
    with pytest.raises(ValueError, match="extras"):
        next(segment_batches([[1, 2, 3]], 2, extras={"x": [torch.arange(2)]}))
