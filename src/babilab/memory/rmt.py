"""RMT: the Recurrent Memory Transformer for decoder-only backbones, as used for BABILong.

Bulatov, Kuratov, Burtsev, "Recurrent Memory Transformer" (NeurIPS 2022, arXiv 2207.06881) and
"Scaling Transformer to 1M tokens and beyond with RMT" (arXiv 2304.11062); the BABILong code is
github.com/booydar/recurrent-memory-transformer, branch babilong-release, which this file
follows.

For segment t with token embeddings E(x_t) (T tokens) and memory M_t (M x D):

    [H_read ; H_seg ; H_write] = Transformer([M_t ; E(x_t) ; M_t])
    M_{t+1} = H_write        (last-layer states after the final norm, fed back as embeddings)

The same M_t is read (prefix) and written (suffix); causal attention lets the suffix see the
prefix and the whole segment. M_0 is one trainable (M, D) parameter, randn x std(embeddings).
Positions run 0..M+T+M-1 over the concatenation, skipping padding. For generation the last
segment is [M_t ; E(x_t)] with no write block.

Not here: the loop over segments, k2 truncation, streaming and save/load (common.py), the
decode loop (generate.py). Differences from the reference: k2 counts the last k2 segments of
each sample, not of max_n_segments; answer-only logits.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor
from transformers import PreTrainedModel

from ..errors import BabilabError
from .common import (
    MemoryModel,
    SegmentInputs,
    assemble_segment,
    init_memory,
    keep_rows,
)
from .layout import SegmentBatch


@dataclass(frozen=True)
class RMTConfig:
    segment_size: int = 512  # tokens of text per segment, memory excluded (all BABILong scripts)
    num_mem_tokens: int = 16  # M; 0 turns the memory off (the backbone alone, segment by segment)
    k2: int | None = None  # BPTT through the last k2 segments of each sample; None = all (-1 there)
    align: str = "left"  # "left": full segments first, remainder last (reference default)


@dataclass
class RMTState:
    memory: Tensor  # (B, M, D): read and written by the next segment


class RMT(MemoryModel):
    """RMT around a HF causal LM: [memory; segment; memory], memory = last-layer write states."""

    architecture = "rmt"
    config_class = RMTConfig

    def __init__(self, backbone: PreTrainedModel, config: RMTConfig | None = None):
        config = config or RMTConfig()
        if config.num_mem_tokens < 0:
            raise BabilabError("num_mem_tokens must be >= 0")
        super().__init__(backbone, config)
        self.memory = init_memory(backbone, config.num_mem_tokens)  # (M, D): M_0

    @property
    def tokens_per_pass(self) -> int:
        return self.config.segment_size + 2 * self.config.num_mem_tokens

    def init_state(self, batch_size: int) -> RMTState:
        return RMTState(self.memory.unsqueeze(0).expand(batch_size, -1, -1))  # (B, M, D)

    def segment_inputs(self, state: RMTState, segment: SegmentBatch, write: bool) -> SegmentInputs:
        tokens = self.embed(segment.input_ids)  # (B, T, D)
        return assemble_segment(
            tokens, segment.attention_mask, state.memory, state.memory if write else None
        )

    def step(self, state: RMTState, segment: SegmentBatch) -> tuple[Tensor, RMTState]:
        M, T = self.config.num_mem_tokens, segment.input_ids.shape[1]
        inputs = self.segment_inputs(state, segment, write=True)
        hidden = self.body(inputs).last_hidden_state  # (B, M + T + M, D)
        new_memory = hidden[:, M + T:]  # (B, M, D): the write block's outputs
        memory = keep_rows(segment.active, new_memory.to(state.memory.dtype), state.memory)
        return hidden[:, M:M + T], RMTState(memory)  # (B, T, D)


__all__ = ["RMT", "RMTConfig", "RMTState"]
