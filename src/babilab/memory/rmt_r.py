"""RMT-R: RMT with self-retrieval over its own past memory states.

Kuratov et al., "In Search of Needles in a 11M Haystack: Recurrent Memory Finds What LLMs Miss"
(arXiv 2402.10790); code booydar/recurrent-memory-transformer, branch babilong_retr,
modeling_rmt/language_modeling_mem_retrieve.py, which this file implements as coded there.

Every write output M_{t+1} (Mw x D) is stored. Before segment t >= 1, one extra block outside
the backbone (single-head pre-LN cross-attention, then an MLP) lets the current memory query
all stored states M_1..M_t (the current one included):

    Q = W_q LN_q(M_t),  K = W_k LN_kv([M_1; ...; M_t]),  V = W_v LN_kv([M_1; ...; M_t])
    A = softmax(Q K^T / sqrt(D))           ("top_1": softmax(1e5 Q K^T / sqrt(D)), near argmax)
    R = M_t + Dropout(W_o Dropout(A) V)
    R = R + Dropout(FC2(act(FC1(LN_mlp(R)))))       (4D hidden, the backbone's activation)

The memory state is [M_t ; R_t] (2 Mw rows). The segment reads its last Mr rows and writes its
first Mw rows: with the released Mr = 32, Mw = 16 the input is [M_t ; R_t ; E(x_t) ; M_t], and
M_{t+1} = the last-layer outputs of the write block. Segment 0 uses one learned (Mr, D)
parameter: it reads all of it and writes its first Mw rows. Generation retrieves the same way
before the last, read-only segment [M_t ; R_t ; E(x_t)].

What is stored is each state's key and value (W_k LN_kv(M_j), W_v LN_kv(M_j)), computed once
when M_j is written: the same numbers as the reference, which recomputes them for every stored
state at every segment (O(S D^2) per segment, hours at 10M tokens). Without autograd (streaming)
they go into buffers allocated once at their final size when the read's length is known
(`reserve`, which `generate(segments_total=...)` calls), else doubled when full (appending is
amortised O(1), but each doubling briefly holds both copies); rows not written yet cost no
memory. Retrieval then attends over the stored states padded with zero rows to one of a few
sizes per power of two (`padded`, at most 1/8 more): oneDNN, which multiplies bfloat16 on CPUs,
compiles and caches a kernel for every new shape, about 1.5 MB each, so a shape per segment
would add gigabytes over a long read. With autograd (training, few segments) they are
concatenated out of place and attended unpadded.

Cost: the stored keys and values grow with the number of segments, 2 x S x Mw x D per sample
(about 1 GB in bfloat16 for 10M tokens with GPT-2), and retrieval is O(S) per segment: RMT-R is
not constant-memory, unlike RMT and ARMT.

Not here: the loop over segments, streaming, save/load (common.py), decoding (generate.py).
Differences from the reference: k2 truncation is supported (the reference raises for any k2
other than -1): cutting the memory entering a segment also cuts every stored state before it.
The "repeat last segment" option of the babilong_retr branch is left out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from transformers import PreTrainedModel

from ..errors import BabilabError
from .common import (
    MemoryModel,
    SegmentInputs,
    activation,
    assemble_segment,
    init_memory,
    keep_rows,
)
from .layout import SegmentBatch

RETRIEVE_MODES = ("attention", "top_1")


@dataclass(frozen=True)
class RMTRConfig:
    segment_size: int = 512  # tokens of text per segment, memory excluded
    num_read_mem_tokens: int = 32  # Mr: rows read per segment, Mw <= Mr <= 2 Mw (released: 32)
    num_write_mem_tokens: int = 16  # Mw: recurrent memory rows written per segment (released: 16)
    retrieve_mode: str = "attention"  # or "top_1": a near-hard argmax over stored states
    dropout: float = 0.1  # on attention weights, attention output and MLP output
    k2: int | None = None  # BPTT through the last k2 segments of each sample; None = all
    align: str = "left"  # "left": full segments first, remainder last (reference default)


@dataclass
class RMTRState:
    memory: Tensor  # (B, Mw, D) M_t, the recurrent memory (the next write block)
    keys: Tensor  # (B, C, Mw, D) W_k LN_kv(M_j) for the stored M_1..M_t in [:, :length]
    values: Tensor  # (B, C, Mw, D) W_v LN_kv(M_j), likewise; C >= length is the capacity
    stored_mask: Tensor  # (B, C) bool: stored states that belong to the row's own sample
    length: int = 0  # how many states are stored (S)


class MemoryRetrieval(nn.Module):
    """Cross-attention from the current memory to the stored memories, then an MLP."""

    def __init__(self, d_model: int, act: nn.Module, mode: str, dropout: float):
        super().__init__()
        self.mode = mode
        self.ln_q = nn.LayerNorm(d_model)
        self.ln_kv = nn.LayerNorm(d_model)
        self.ln_mlp = nn.LayerNorm(d_model)
        self.q_proj = nn.Linear(d_model, d_model)
        self.k_proj = nn.Linear(d_model, d_model)
        self.v_proj = nn.Linear(d_model, d_model)
        self.o_proj = nn.Linear(d_model, d_model)
        self.fc1 = nn.Linear(d_model, 4 * d_model)
        self.fc2 = nn.Linear(4 * d_model, d_model)
        self.act = act
        self.attn_dropout = nn.Dropout(dropout)
        self.dropout = nn.Dropout(dropout)

    def key_value(self, stored: Tensor) -> tuple[Tensor, Tensor]:
        """Key and value of states to store, (B, Mw, D) -> two (B, Mw, D)."""
        kv = self.ln_kv(stored.to(self.k_proj.weight.dtype))
        return self.k_proj(kv), self.v_proj(kv)

    def forward(self, memory: Tensor, k: Tensor, v: Tensor, mask: Tensor) -> Tensor:
        """memory (B, Mw, D); k, v (B, S*Mw, D) and mask (B, S*Mw) of stored -> R (B, Mw, D)."""
        memory = memory.to(self.q_proj.weight.dtype)
        q = self.q_proj(self.ln_q(memory))  # (B, Mw, D)
        # k @ q^T, not q @ k^T: with the long stored keys as the contiguous left operand, CPUs
        # take a fast path (bfloat16, 76k stored keys: 334 -> 7 ms on one core)
        scores = (k @ q.transpose(1, 2)).transpose(1, 2).float()  # (B, Mw, S*Mw)
        scores = scores / math.sqrt(q.shape[-1])
        if self.mode == "top_1":
            scores = scores * 1e5
        # A finite fill, not -inf: a row with nothing stored yet must not produce NaN (its
        # result is discarded, but NaN would poison gradients through torch.where).
        scores = scores.masked_fill(~mask[:, None, :], torch.finfo(scores.dtype).min)
        attn = self.attn_dropout(scores.softmax(-1)).to(v.dtype)  # (B, Mw, S*Mw)
        r = memory + self.dropout(self.o_proj(attn @ v))  # (B, Mw, D)
        return r + self.dropout(self.fc2(self.act(self.fc1(self.ln_mlp(r)))))


class RMTR(MemoryModel):
    """RMT-R around a HF causal LM: RMT plus retrieval over every past memory state."""

    architecture = "rmt_r"
    config_class = RMTRConfig

    def __init__(self, backbone: PreTrainedModel, config: RMTRConfig | None = None):
        config = config or RMTRConfig()
        Mr, Mw = config.num_read_mem_tokens, config.num_write_mem_tokens
        if not 0 <= Mw <= Mr <= 2 * Mw:
            raise BabilabError(
                "need num_write_mem_tokens <= num_read_mem_tokens <= 2 * num_write_mem_tokens "
                f"(the read block comes from [memory; retrieved]), got read={Mr}, write={Mw}"
            )
        if config.retrieve_mode not in RETRIEVE_MODES:
            raise BabilabError(f"retrieve_mode must be one of {RETRIEVE_MODES}")
        super().__init__(backbone, config)
        self.memory = init_memory(backbone, Mr)  # (Mr, D): read at segment 0, first Mw written
        self.retrieval = MemoryRetrieval(
            backbone.config.hidden_size, activation(backbone), config.retrieve_mode,
            config.dropout,
        ).to(self.memory.device, self.memory.dtype)
        self.reserved = 0  # stored states to allocate at once (`reserve`); 0: grow by doubling

    def reset(self) -> None:
        super().reset()
        self.reserved = 0

    def reserve(self, n_segments: int) -> None:
        self.reserved = n_segments - 1  # every segment but the last is written and stored

    @property
    def tokens_per_pass(self) -> int:
        c = self.config
        return c.num_read_mem_tokens + c.segment_size + c.num_write_mem_tokens

    def init_state(self, batch_size: int) -> RMTRState:
        Mw, (_, D) = self.config.num_write_mem_tokens, self.memory.shape
        return RMTRState(
            self.memory[:Mw].unsqueeze(0).expand(batch_size, -1, -1),  # (B, Mw, D)
            self.memory.new_zeros(batch_size, 0, Mw, D),  # (B, 0, Mw, D): nothing stored yet
            self.memory.new_zeros(batch_size, 0, Mw, D),
            torch.zeros(batch_size, 0, dtype=torch.bool, device=self.device),  # (B, 0)
        )

    def state_finite(self, state: RMTRState) -> Tensor:
        # The stored keys and values are computed from earlier memories, and their buffers hold
        # rows not written yet: the recurrent memory alone says whether the read went wrong.
        return torch.isfinite(state.memory.flatten(1)).all(1)  # (B,)

    def read_block(self, state: RMTRState) -> Tensor:
        """The Mr memory rows a segment reads: the last Mr rows of [M_t ; R_t]."""
        Mr, Mw = self.config.num_read_mem_tokens, self.config.num_write_mem_tokens
        B, S = state.memory.shape[0], state.length
        initial = self.memory.unsqueeze(0).expand(B, -1, -1)  # (B, Mr, D)
        if S == 0:
            return initial
        mask = state.stored_mask[:, :S]  # (B, S)
        n = padded(S) if state.keys.shape[1] >= padded(S) else S  # training stores exactly S
        retrieved = self.retrieval(
            state.memory,
            state.keys[:, :n].flatten(1, 2),  # (B, n*Mw, D), a view of the buffer
            state.values[:, :n].flatten(1, 2),  # (B, n*Mw, D)
            F.pad(mask, (0, n - S)).repeat_interleave(Mw, dim=1),  # (B, n*Mw): none past S
        )  # (B, Mw, D)
        full = torch.cat([state.memory.to(retrieved.dtype), retrieved], dim=1)  # (B, 2Mw, D)
        fresh = ~mask.any(1)  # (B,) rows whose sample has not started
        return keep_rows(fresh, initial.to(full.dtype), full[:, 2 * Mw - Mr:])  # (B, Mr, D)

    def segment_inputs(self, state: RMTRState, segment: SegmentBatch, write: bool) -> SegmentInputs:
        tokens = self.embed(segment.input_ids)  # (B, T, D)
        read = self.read_block(state)
        return assemble_segment(
            tokens, segment.attention_mask, read, state.memory if write else None
        )

    def step(self, state: RMTRState, segment: SegmentBatch) -> tuple[Tensor, RMTRState]:
        Mr, T = self.config.num_read_mem_tokens, segment.input_ids.shape[1]
        inputs = self.segment_inputs(state, segment, write=True)
        hidden = self.body(inputs).last_hidden_state  # (B, Mr + T + Mw, D)
        new_memory = hidden[:, Mr + T:].to(state.memory.dtype)  # (B, Mw, D)
        active = segment.active  # (B,)
        memory = keep_rows(active, new_memory, state.memory)
        return hidden[:, Mr:Mr + T], self.store(state, memory, new_memory, active)  # (B, T, D)

    def store(self, state: RMTRState, memory: Tensor, new: Tensor, active: Tensor) -> RMTRState:
        """Append the key and value of `new` (B, Mw, D); rows not `active` (B,) store nothing."""
        k, v = self.retrieval.key_value(new)  # (B, Mw, D) each
        S = state.length
        if torch.is_grad_enabled():  # out of place, so autograd can go back through every step
            keys = torch.cat([state.keys[:, :S], k[:, None]], dim=1)  # (B, S + 1, Mw, D)
            values = torch.cat([state.values[:, :S], v[:, None]], dim=1)
            mask = torch.cat([state.stored_mask[:, :S], active[:, None]], dim=1)  # (B, S + 1)
            return RMTRState(memory, keys, values, mask, S + 1)
        keys, values, mask = state.keys, state.values, state.stored_mask
        if S == keys.shape[1]:  # full: grow to the reserved size, else double
            capacity = padded(self.reserved if self.reserved > S else max(2 * S, 16))
            keys, values = grow(keys.to(k.dtype), capacity), grow(values.to(v.dtype), capacity)
            mask = grow(mask, capacity)
        keys[:, S], values[:, S], mask[:, S] = k, v, active  # in place: the old state is dropped
        end = padded(S + 1)
        if end > padded(S):  # retrieval now reads rows up to `end`: their weights are 0,
            keys[:, S + 1:end] = 0  # and 0 times NaN would be NaN
            values[:, S + 1:end] = 0
        return RMTRState(memory, keys, values, mask, S + 1)


def padded(n: int) -> int:
    """n rounded up to a multiple of 1/8 of the largest power of two <= n (below 16, n itself): at
    most 1/8 more, and 8 sizes per power of two."""
    step = 1 << max(0, n.bit_length() - 4)
    return -(-n // step) * step


def grow(buffer: Tensor, capacity: int) -> Tensor:
    """`buffer` (B, n, ...) copied into a new one of `capacity` rows along dim 1. The new rows
    are left unset (torch.empty): their pages take no memory until written, and nothing reads
    past the stored length."""
    grown = buffer.new_empty(buffer.shape[0], capacity, *buffer.shape[2:])
    grown[:, :buffer.shape[1]] = buffer
    return grown


__all__ = ["MemoryRetrieval", "RMTR", "RMTRConfig", "RMTRState"]
