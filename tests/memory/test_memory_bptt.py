"""Backpropagation through time: full when k2 is None, the last k2 segments of each sample else."""

from __future__ import annotations

import pytest
import torch

from .memory_fixtures import SEGMENT, build, gpt2_backbone, llama_backbone, sample


def segment_grads(model, ids, mask, labels) -> list[torch.Tensor]:
    """Backpropagate the loss; return the gradient of each step's token embeddings (B, T, D)."""
    seen = []

    def keep(module, args, output):
        output.retain_grad()
        seen.append(output)

    handle = model.backbone.get_input_embeddings().register_forward_hook(keep)
    try:
        model(ids, mask, labels=labels).loss.backward()
    finally:
        handle.remove()
    return [e.grad for e in seen]


def last_token_labels(ids: torch.Tensor, rows: list[int]) -> torch.Tensor:
    labels = torch.full_like(ids, -100)
    labels[rows, -1] = ids[rows, -1]
    return labels


@pytest.mark.parametrize("make_backbone", [gpt2_backbone, llama_backbone])
@pytest.mark.parametrize("k2", [None, 2])
def test_gradient_reaches_back_k2_segments(arch, make_backbone, k2):
    torch.manual_seed(0)
    model = build(arch, make_backbone(), k2=k2)
    ids = sample(4 * SEGMENT, 30)[None]  # 4 segments, loss on the last token only
    grads = segment_grads(model, ids, None, last_token_labels(ids, [0]))
    norms = [float(g.norm()) for g in grads]
    assert len(norms) == 4
    reached = [n > 0 for n in norms]
    assert reached == ([True] * 4 if k2 is None else [False, False, True, True]), norms
    if arch != "armt":  # ARMT's tokens P are used in every segment, so they always get gradient
        initial = model.memory.grad
        assert (initial is not None and float(initial.norm()) > 0) == (k2 is None)


def test_k2_is_counted_from_each_samples_own_length(arch):
    torch.manual_seed(0)
    model = build(arch, gpt2_backbone(), k2=2)
    long, short = sample(4 * SEGMENT, 31), sample(2 * SEGMENT, 32)  # 4 and 2 segments
    ids = torch.zeros(2, len(long), dtype=torch.long)
    ids[0], ids[1, -len(short):] = long, short  # left padding: both end on the last step
    mask = (ids != 0).long()
    mask[1, :2 * SEGMENT], mask[0] = 0, 1
    # Loss on the short sample: its 2 segments are both inside k2 = 2, so all get gradient.
    grads = segment_grads(model, ids, mask, last_token_labels(ids, [1]))
    assert [float(g[1].norm()) > 0 for g in grads] == [False, False, True, True]
    model.zero_grad()
    # Loss on the long sample: its first two segments are cut off.
    grads = segment_grads(model, ids, mask, last_token_labels(ids, [0]))
    assert [float(g[0].norm()) > 0 for g in grads] == [False, False, True, True]
