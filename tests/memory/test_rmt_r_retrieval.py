"""RMT-R's retrieval against a naive transcription of its equations (arXiv 2406.10149).

The reference keeps the raw write outputs M_1..M_t and recomputes keys and values from them at
every segment; the model caches them (when streaming, in a buffer that doubles or is
reserved at the read's final size). The naive code here
recomputes, from the raw memories recorded while streaming, and must give the same read block.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from babilab.memory import rmt_r

from .memory_fixtures import SEGMENT, build, gpt2_backbone, llama_backbone, sample


def naive_read_block(model, memories: list[torch.Tensor]) -> torch.Tensor:
    """[M_t ; R_t][-Mr:] for one sample from raw stored memories M_1..M_t (each (Mw, D))."""
    r = model.retrieval
    Mr = model.config.num_read_mem_tokens
    current, stored = memories[-1], torch.cat(memories)  # (Mw, D), (t*Mw, D)
    q = r.q_proj(r.ln_q(current))
    k, v = r.k_proj(r.ln_kv(stored)), r.v_proj(r.ln_kv(stored))
    scores = q @ k.T / math.sqrt(q.shape[-1])
    if r.mode == "top_1":
        scores = scores * 1e5
    retrieved = current + r.o_proj(scores.softmax(-1) @ v)
    retrieved = retrieved + r.fc2(r.act(r.fc1(r.ln_mlp(retrieved))))
    return torch.cat([current, retrieved])[-Mr:]


@pytest.mark.parametrize("make_backbone", [gpt2_backbone, llama_backbone])
@pytest.mark.parametrize("mode", ["attention", "top_1"])
def test_read_block_matches_naive_retrieval_over_many_segments(make_backbone, mode):
    torch.manual_seed(0)
    model = build("rmt_r", make_backbone(), retrieve_mode=mode)
    memories = []
    # 18 segments: the streaming buffer starts at 16 states and must grow once
    for segment in model.segments([sample(18 * SEGMENT, 60)]):
        model.read(segment)
        memories.append(model.state.memory[0])
        with torch.no_grad():
            expected = naive_read_block(model, memories)
            torch.testing.assert_close(model.read_block(model.state)[0], expected,
                                       rtol=1e-4, atol=1e-5)
    assert model.state.length == 18 and model.state.keys.shape[1] == 32


def test_long_stream_equals_training_forward():
    torch.manual_seed(0)
    model = build("rmt_r", gpt2_backbone())
    context = sample(17 * SEGMENT + 2, 61)  # 18 segments, room for 2 new tokens in the last
    streamed = model.generate(model.segments([context]), max_new_tokens=2, return_logits=True)
    ids = torch.cat([context, streamed.tokens[0]])[None]
    labels = torch.full_like(ids, -100)
    labels[0, -2:] = ids[0, -2:]
    torch.testing.assert_close(model(ids, labels=labels).logits, streamed.logits[0],
                               rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("make_backbone", [gpt2_backbone, llama_backbone])
def test_a_reserved_read_stores_each_state_once_and_answers_alike(make_backbone):
    torch.manual_seed(0)
    model = build("rmt_r", make_backbone())
    contexts = [sample(20 * SEGMENT + 5, 62), sample(7 * SEGMENT, 63)]  # 21 and 8 segments

    def read(**kwargs):
        out = model.generate(model.segments(contexts), max_new_tokens=2, return_logits=True,
                             **kwargs)
        return out, model.state

    grown, grown_state = read()
    reserved, reserved_state = read(segments_total=21)
    assert reserved_state.length == 20 and reserved_state.keys.shape[1] == 20  # no slack
    assert grown_state.length == 20 and grown_state.keys.shape[1] == 32  # doubled 16 -> 32
    torch.testing.assert_close(reserved.logits, grown.logits, rtol=0, atol=0)
    n = reserved_state.length
    for field in ("keys", "values", "stored_mask"):
        torch.testing.assert_close(getattr(reserved_state, field)[:, :n],
                                   getattr(grown_state, field)[:, :n], rtol=0, atol=0)
    short, short_state = read(segments_total=10)  # a hint that is too small: doubling goes on
    assert short_state.keys.shape[1] == 36  # 9, then doubled twice
    torch.testing.assert_close(short.logits, grown.logits, rtol=0, atol=0)


def test_retrieval_pads_to_few_sizes_with_little_slack():
    sizes = [rmt_r.padded(n) for n in range(20_001)]
    assert all(n <= p <= n + n / 8 for n, p in enumerate(sizes))
    assert all(rmt_r.padded(p) == p for p in sizes)  # a padded size is its own padding
    assert len(set(sizes)) < 100  # 19,531 states at 10M tokens: under 100 distinct shapes


def test_unset_buffer_rows_never_reach_the_read(monkeypatch):
    """Buffer rows past the stored states hold whatever memory held; retrieval attends over
    some of them (padding), with weight 0, so NaN there must change nothing."""
    torch.manual_seed(0)
    model = build("rmt_r", gpt2_backbone())
    context = sample(40 * SEGMENT + 3, 64)  # 41 segments: padded sizes 18, 20, ..., 40
    clean = model.generate(model.segments([context]), max_new_tokens=2, return_logits=True)

    def grow_into_nan(buffer, capacity):
        grown = torch.full((buffer.shape[0], capacity, *buffer.shape[2:]), float("nan"))
        grown = grown.to(buffer.dtype)  # bool: True, as if every unset row were stored
        grown[:, :buffer.shape[1]] = buffer
        return grown

    monkeypatch.setattr(rmt_r, "grow", grow_into_nan)
    dirty = model.generate(model.segments([context]), max_new_tokens=2, return_logits=True)
    assert model.state.keys.shape[1] == 64 and model.state.length == 40
    torch.testing.assert_close(dirty.logits, clean.logits, rtol=0, atol=0)


def test_top_1_is_nearly_hard():
    torch.manual_seed(0)
    model = build("rmt_r", gpt2_backbone(), retrieve_mode="top_1")
    r = model.retrieval
    memory, stored = torch.randn(1, 3, 32), torch.randn(1, 12, 32)
    k, v = r.key_value(stored)
    with torch.no_grad():
        scores = r.q_proj(r.ln_q(memory)) @ k.transpose(1, 2)  # (1, 3, 12)
        hard = memory + r.o_proj(F.one_hot(scores.argmax(-1), 12).float() @ v)
        hard = hard + r.fc2(r.act(r.fc1(r.ln_mlp(hard))))
        out = r(memory, k, v, torch.ones(1, 12, dtype=torch.bool))
    torch.testing.assert_close(out, hard)
