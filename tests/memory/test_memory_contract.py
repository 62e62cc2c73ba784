"""Contract tests: every architecture x every backbone family behaves the same way."""

from __future__ import annotations

import torch

from babilab.memory import generate, load_memory_model, memory_class
from babilab.memory.generate import CHECK_EVERY

from .memory_fixtures import EOS, SEGMENT, VOCAB, build, sample


def labelled(ids: torch.Tensor, n_targets: int) -> torch.Tensor:
    """Labels scoring the last `n_targets` tokens of each row (HF convention, -100 elsewhere)."""
    labels = torch.full_like(ids, -100)
    labels[:, -n_targets:] = ids[:, -n_targets:]
    return labels


def test_forward_shapes(arch, backbone):
    model = build(arch, backbone)
    ids = torch.stack([sample(3 * SEGMENT - 2, 1), sample(3 * SEGMENT - 2, 2)])  # (2, 22)
    out = model(ids, labels=labelled(ids, 3))
    assert out.logits.shape == (6, VOCAB)
    assert out.hidden_states.shape == (6, backbone.config.hidden_size)
    assert out.loss.shape == () and torch.isfinite(out.loss)
    unlabelled = model(ids)
    assert unlabelled.loss is None and unlabelled.logits.shape == (2, VOCAB)
    # without labels: the logits at each last token, i.e. those predicting one more token
    longer = torch.cat([ids, torch.zeros(2, 1, dtype=torch.long)], dim=1)  # still 3 segments
    torch.testing.assert_close(unlabelled.logits, model(longer, labels=labelled(longer, 1)).logits)


def test_save_load_round_trip(arch, backbone, tmp_path):
    model = build(arch, backbone)
    ids = sample(2 * SEGMENT + 3, 3)[None]
    labels = labelled(ids, 2)
    expected = model(ids, labels=labels).logits
    model.save(tmp_path / "mem")
    torch.manual_seed(123)  # the rebuilt model starts from other random memory parameters
    loaded = memory_class(arch).load(tmp_path / "mem", backbone=backbone).eval()
    assert torch.equal(loaded(ids, labels=labels).logits, expected)
    model.save(tmp_path / "full", save_backbone=True)
    reloaded = load_memory_model(tmp_path / "full").eval()  # backbone read back from disk
    assert type(reloaded) is type(model) and reloaded.config == model.config
    torch.testing.assert_close(reloaded(ids, labels=labels).logits, expected)


def test_streaming_equals_training_forward(arch, backbone):
    model = build(arch, backbone)
    context = sample(2 * SEGMENT + 4, 4)  # the last segment has room for the 3 new tokens
    streamed = generate(model, model.segments([context]), max_new_tokens=3, return_logits=True)
    assert streamed.tokens.shape == (1, 3)
    # Teacher-force the generated tokens through forward: same inputs, same memory path.
    ids = torch.cat([context, streamed.tokens[0]])[None]
    trained = model(ids, labels=labelled(ids, 3))
    torch.testing.assert_close(trained.logits, streamed.logits[0], rtol=1e-4, atol=1e-5)


def test_batched_left_padded_equals_one_at_a_time(arch, backbone):
    model = build(arch, backbone)
    samples = [sample(3 * SEGMENT + 2, 5), sample(SEGMENT + 3, 6), sample(5, 7)]  # 4, 2, 1 segs
    batched = generate(model, model.segments(samples), max_new_tokens=3, return_logits=True)
    for i, s in enumerate(samples):
        alone = generate(model, model.segments([s]), max_new_tokens=3, return_logits=True)
        assert torch.equal(batched.tokens[i], alone.tokens[0])
        torch.testing.assert_close(batched.logits[i], alone.logits[0], rtol=1e-4, atol=1e-5)


def test_training_forward_batched_equals_one_at_a_time(arch, backbone):
    model = build(arch, backbone)
    long, short = sample(3 * SEGMENT + 1, 8), sample(SEGMENT + 2, 9)
    ids = torch.zeros(2, len(long), dtype=torch.long)  # left padding for the short sample
    ids[0], ids[1, -len(short):] = long, short
    mask = (torch.arange(len(long)) >= len(long) - torch.tensor([[len(long)], [len(short)]]))
    out = model(ids, mask.long(), labels=labelled(ids, 2))
    for row, s in enumerate([long, short]):
        alone = model(s[None], labels=labelled(s[None], 2))
        torch.testing.assert_close(out.logits[2 * row:2 * row + 2], alone.logits,
                                   rtol=1e-4, atol=1e-5)


def test_generate_produces_tokens_and_stops_at_eos(arch, backbone):
    model = build(arch, backbone)
    samples = [sample(2 * SEGMENT, 10), sample(SEGMENT + 1, 11)]
    out = generate(model, model.segments(samples), max_new_tokens=4)
    assert out.tokens.shape == (2, 4) and out.tokens.dtype == torch.long
    assert bool(((out.tokens >= 0) & (out.tokens < VOCAB)).all())
    assert out.logits is None
    first = out.tokens[:, 0]
    segments = model.segments(samples)
    stopped = generate(model, segments, max_new_tokens=4, eos_token_id=first.tolist())
    assert stopped.tokens.shape == (2, 1)  # every row hit one of its stop tokens at once
    bf16 = generate(model, model.segments(samples), max_new_tokens=2,
                    autocast_dtype=torch.bfloat16)
    assert bf16.tokens.shape == (2, 2)
    assert EOS not in samples[0]


def test_a_read_whose_state_overflowed_stops_at_the_next_check(arch, backbone):
    model = build(arch, backbone)
    ids = sample((CHECK_EVERY + 4) * SEGMENT, 12)
    written: list[int] = []
    clean = generate(model, model.segments([ids]), max_new_tokens=2, on_read=written.append)
    assert written[-1] == CHECK_EVERY + 3 and bool(clean.finite.all())  # all but the last
    with torch.no_grad():  # a state that overflows at the first write
        (model.assoc[0].v_proj.weight if arch == "armt" else model.memory).fill_(float("inf"))
    written.clear()
    out = generate(model, model.segments([ids]), max_new_tokens=2, on_read=written.append,
                   return_logits=True)
    assert written[-1] == CHECK_EVERY and not bool(out.finite.any())
    assert out.tokens.shape[0] == 1 and bool(out.logits.isnan().all())


def test_reset_clears_state(arch, backbone):
    model = build(arch, backbone)
    samples = [sample(3 * SEGMENT, 12)]
    before = generate(model, model.segments(samples), max_new_tokens=2, return_logits=True)
    for segment in model.segments([sample(2 * SEGMENT, 13)]):
        model.read(segment)
    assert model.state is not None
    model.reset()
    assert model.state is None
    # generate resets by itself: the unrelated sample read above leaves no trace
    for segment in model.segments([sample(2 * SEGMENT, 14)]):
        model.read(segment)
    after = generate(model, model.segments(samples), max_new_tokens=2, return_logits=True)
    assert torch.equal(before.logits, after.logits)


def test_memory_carries_information_across_segments(arch, backbone):
    model = build(arch, backbone)
    context = sample(2 * SEGMENT + 3, 15)
    changed = context.clone()
    changed[:SEGMENT] = sample(SEGMENT, 16)  # only the first segment differs
    a = generate(model, model.segments([context]), max_new_tokens=1, return_logits=True)
    b = generate(model, model.segments([changed]), max_new_tokens=1, return_logits=True)
    assert (a.logits - b.logits).abs().max() > 1e-4
