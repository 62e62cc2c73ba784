"""With the memory off, every architecture is its backbone (reference tests against HF)."""

from __future__ import annotations

import torch

from .memory_fixtures import SEGMENT, build, sample


def test_one_segment_without_memory_equals_backbone(arch, backbone):
    model = build(arch, backbone, mem=0)
    ids = sample(SEGMENT, 20)[None]  # (1, T): one segment
    out = model(ids, labels=ids)  # every next-token prediction
    expected = backbone(ids).logits[0, :-1]  # (T - 1, V)
    torch.testing.assert_close(out.logits, expected, rtol=1e-5, atol=1e-6)


def test_many_segments_without_memory_equal_backbone_per_segment(arch, backbone):
    model = build(arch, backbone, mem=0)
    ids = sample(2 * SEGMENT + 5, 21)
    out = model(ids[None], labels=ids[None])
    expected = []
    for a in range(0, len(ids), SEGMENT):  # left alignment: 8, 8, 5
        logits = backbone(ids[None, a:a + SEGMENT]).logits[0]
        expected.append(logits)
    expected = torch.cat(expected)[:-1]  # the last token predicts nothing
    torch.testing.assert_close(out.logits, expected, rtol=1e-5, atol=1e-6)


def test_fresh_armt_first_segment_equals_backbone(backbone):
    # Memory tokens are appended after the text and nothing has been written yet, so the
    # first segment's token logits are the backbone's even with memory on.
    model = build("armt", backbone, mem=3)
    ids = sample(SEGMENT, 22)[None]
    torch.testing.assert_close(
        model(ids, labels=ids).logits, backbone(ids).logits[0, :-1], rtol=1e-5, atol=1e-6
    )
