"""Greedy decoding after the last segment: the one decoding loop shared by RMT, RMT-R and ARMT.

Like transformers' GenerationMixin, the loop lives apart from the models. It reads every segment
but the last into the model's memory (with writes), then feeds the last segment as a read-only
prompt (RMT: [M; x], RMT-R: [M; R; x], ARMT: x with layer reads) and decodes with the backbone's
KV cache, running the LM head on one position per step.

Why our own loop rather than HF `generate(inputs_embeds=...)`: its output layout changed across
versions (a BOS used to be prepended, now the output starts empty) and batched calls with
embeddings had bugs (transformers #11841, #16831, #41863); that silently broke the reference's
exact-match parsing (github.com/booydar/recurrent-memory-transformer). Here the output is only the new
tokens, and left padding makes batched decoding equal one sample at a time.

Segments come from an iterator and are consumed one at a time under no_grad, so memory use does
not grow with the input length (only RMT-R keeps its O(S) stored memory states).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor
from transformers import DynamicCache

from ..errors import BabilabError
from .layout import SegmentBatch

if TYPE_CHECKING:  # for annotations only: common.py imports this module (MemoryModel.generate)
    from .common import MemoryModel

CHECK_EVERY = 256  # segments between checks that some row's memory state is still finite


@dataclass
class Generation:
    tokens: Tensor  # (B, N) new token ids; after a row's EOS the row repeats EOS
    logits: Tensor | None  # (B, N, V) float32 logits that chose each token, if asked for
    finite: Tensor  # (B,) bool: every logit that chose the row's tokens was finite (a state
    # that overflowed to inf or NaN makes the argmax meaningless)


@torch.no_grad()
def generate(
    model: MemoryModel,
    segments: Iterable[SegmentBatch],
    max_new_tokens: int = 10,
    eos_token_id: int | list[int] | None = None,
    autocast_dtype: torch.dtype | None = None,
    return_logits: bool = False,
    state: Any = None,
    on_read: Callable[[int], None] | None = None,
    segments_total: int | None = None,
) -> Generation:
    """Reset `model`, read all segments, and decode greedily after the last one.

    segments: steps from `model.segments(samples)` (or any iterator of `SegmentBatch`); every
    sample must end on the last step, which holds its question (and the GEN token, if used).
    eos_token_id: stop a row at this token (default: the backbone's eos_token_id); decoding
    stops early once every row has stopped. autocast_dtype: e.g. torch.bfloat16 to run the
    backbone under autocast (ARMT keeps its associative state and write in float32).
    state: continue a read stopped part way (`model.state` after some segments, e.g. saved
    with `state_fields` and restored with `model.state_from`); `segments` then starts with the
    first segment not read yet. on_read(n): called after each memory write, n = segments
    written in this call, `model.state` = the state after them (a place to save progress).
    segments_total: the read's segments in all, when known (a continued read's earlier ones
    included): `model.reserve` then sizes growing states once (RMT-R's stored states).
    Every CHECK_EVERY segments the state is checked: once no row's is finite (it overflowed
    to inf or NaN) the read stops there, with every row not `finite`, instead of reading on
    for hours to no answer. The model's train/eval mode is left as it is: call `model.eval()`
    first.
    """
    if max_new_tokens < 1:
        raise BabilabError("max_new_tokens must be at least 1")
    if eos_token_id is None:
        eos_token_id = model.backbone.config.eos_token_id
    eos = torch.tensor(
        [] if eos_token_id is None else eos_token_id, device=model.device, dtype=torch.long
    ).flatten()
    device_type = model.device.type
    model.reset()
    if segments_total is not None:
        model.reserve(segments_total)
    model.state = state
    with torch.autocast(device_type, dtype=autocast_dtype, enabled=autocast_dtype is not None):
        last, written = None, 0
        for segment in segments:  # look one segment ahead: the last one is not written
            if last is not None:
                model.read(last)
                written += 1
                if on_read is not None:
                    on_read(written)
                if written % CHECK_EVERY == 0 and not bool(model.state_finite(model.state).any()):
                    return overflowed(model, segment.input_ids.shape[0], return_logits)
            last = segment
        if last is None:
            raise BabilabError("no segments to read")
        last = last.to(model.device)
        B = last.input_ids.shape[0]
        if not bool(last.active.all()):
            raise BabilabError("every sample must have tokens in the last segment (its question)")
        state = model.state if model.state is not None else model.init_state(B)
        prompt = model.segment_inputs(state, last, write=False)
        window = model.window
        if window is not None and int(prompt.position_ids.max()) + max_new_tokens > window:
            raise BabilabError(
                f"the last segment ({int(prompt.position_ids.max()) + 1} positions with memory) "
                f"plus max_new_tokens={max_new_tokens} exceeds the backbone's window ({window})"
            )
        mask = prompt.attention_mask  # (B, P) grows by one column per new token
        positions = prompt.position_ids[:, -1:]  # (B, 1) position of the last prompt token
        tokens, all_logits = [], []
        done = torch.zeros(B, dtype=torch.bool, device=model.device)
        finite = torch.ones(B, dtype=torch.bool, device=model.device)
        with model.reading(state):
            cache = DynamicCache()
            out = model.body(prompt, cache)
            for i in range(max_new_tokens):
                logits = model.logits(out.last_hidden_state[:, -1])  # (B, V)
                token = logits.argmax(-1)  # (B,)
                finite &= done | torch.isfinite(logits).all(-1)  # rows that ended are not read
                if eos.numel():
                    token = torch.where(done, eos[0], token)
                    done |= torch.isin(token, eos)
                tokens.append(token)
                if return_logits:
                    all_logits.append(logits)
                if i == max_new_tokens - 1 or bool(done.all()):
                    break
                mask = torch.cat([mask, mask.new_ones(B, 1)], dim=1)  # (B, P + i + 1)
                positions = positions + 1
                step = type(prompt)(model.embed(token[:, None]), mask, positions)  # (B, 1, D)
                out = model.body(step, cache)
    return Generation(
        torch.stack(tokens, dim=1),  # (B, N)
        torch.stack(all_logits, dim=1) if return_logits else None,  # (B, N, V)
        finite,  # (B,)
    )


def overflowed(model: MemoryModel, batch_size: int, return_logits: bool) -> Generation:
    """The result of a read whose every state overflowed: no row has an answer."""
    B, V, device = batch_size, model.backbone.config.vocab_size, model.device
    return Generation(
        torch.zeros(B, 1, dtype=torch.long, device=device),  # (B, 1)
        torch.full((B, 1, V), float("nan"), device=device) if return_logits else None,
        torch.zeros(B, dtype=torch.bool, device=device),  # (B,)
    )


__all__ = ["CHECK_EVERY", "Generation", "generate"]
