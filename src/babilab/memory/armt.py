"""ARMT: the Associative Recurrent Memory Transformer.

Rodkin, Kuratov, Bulatov, Burtsev, "Associative Recurrent Memory Transformer" (arXiv 2407.04841);
code github.com/RodkinIvan/associative-recurrent-memory-transformer, branch framework_accel,
which this file follows.

Every decoder layer l keeps an associative matrix A_l (K x D) and a normaliser z_l (K), with
K = 2 nu d_mem. Keys and queries go through DPFP (Schlag et al. 2021):

    x' = [ReLU(x), ReLU(-x)]                          (2 d_mem)
    phi(x) = concat_{j=1..nu} x' * roll(x', j)         (2 nu d_mem = K)

Read, before layer l, for every position of the segment (memory tokens included):

    q = phi(W_Q h),   h <- h + (q A_l) / (q . z_l + eps)

Write, after layer l, from the layer's outputs m_i at the M memory-token positions:

    k_i = phi(W_K m_i),  v_i = W_V m_i,  beta_i = sigmoid(W_beta m_i)
    vbar_i  = (k_i A_l) / (k_i . z_l + eps)                          value stored for k_i now
    gamma_i = clip(1 - (k_i . z_l) / (|k_i|^2 + eps), 0, 1)          no gradient
    A_l <- A_l + sum_i beta_i k_i^T (v_i - vbar_i)                   delta rule: overwrite
    z_l <- z_l + sum_i gamma_i k_i                                   count only the new part

Each segment is [E(x_t) ; P]: the same M learned tokens P are appended every time and their
outputs are not carried over; recurrence runs only through (A_l, z_l), so the state size does
not depend on the length. W_V starts at zero (a fresh ARMT equals its backbone). On the first
segment A = z = 0, so the read adds exactly 0 (the reference skips it; so do we) and vbar = 0,
gamma = 1. Generation only reads: the last segment is x_t alone, then decoding.

The read and write hook into each decoder layer (PyTorch forward hooks installed for one
backbone call and removed after it), so the backbone is unchanged and GPT-2 and Llama-family
layers work alike. The state and the write stay in float32 even under bf16 autocast: the state
sums millions of updates over a 10M-token input. The read, which runs at every position of
every layer, multiplies in bfloat16 when the layer computes in bfloat16 (the reference trains
in bfloat16 throughout), with A rounded once per layer and segment and the normaliser in float32.

Not here: the loop over segments and k2 (common.py; the reference never truncates ARMT), the
decode loop (generate.py), `wrap_pos` (off in the reference scripts), the later experimental
branch (multi-head memory, L2-normalised phi, ACT). Gradient checkpointing is not supported:
a recomputed layer would run without its hooks.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from transformers import PreTrainedModel

from ..errors import BabilabError
from .common import (
    MemoryModel,
    SegmentInputs,
    assemble_segment,
    decoder_layers,
    init_memory,
    keep_rows,
)
from .layout import SegmentBatch

EPS = 1e-5  # in the denominators, as in the reference


@dataclass(frozen=True)
class ARMTConfig:
    segment_size: int = 512  # tokens of text per segment, memory excluded
    num_mem_tokens: int = 10  # M, appended to every segment (10 in the BABILong scripts)
    d_mem: int = 64  # width of W_Q and W_K
    nu: int = 3  # DPFP order: keys have K = 2 * nu * d_mem features (384)
    k2: int | None = None  # BPTT through the last k2 segments of each sample; None = all
    align: str = "left"  # "left": full segments first, remainder last (reference default)


@dataclass
class ARMTState:
    A: Tensor  # (B, L, K, D) float32: one associative matrix per decoder layer
    z: Tensor  # (B, L, K) float32: one normaliser per decoder layer
    written: bool = False  # False until a segment has written: then every read would add 0


def dpfp(x: Tensor, nu: int) -> Tensor:
    """Deterministic parameter-free projection, (..., d) -> (..., 2 nu d).

    >>> dpfp(torch.tensor([1.0, -2.0]), 1).tolist()  # x' = [1, 0, 0, 2], roll 1 = [2, 1, 0, 0]
    [2.0, 0.0, 0.0, 0.0]
    """
    x = torch.cat([F.relu(x), F.relu(-x)], dim=-1)  # (..., 2d)
    return torch.cat([x * x.roll(shifts=j, dims=-1) for j in range(1, nu + 1)], dim=-1)


class AssociativeMemory(nn.Module):
    """One layer's projections, and the read and write on its (A, z): pure functions."""

    def __init__(self, d_model: int, d_mem: int, nu: int):
        super().__init__()
        self.nu = nu
        self.q_proj = nn.Linear(d_model, d_mem, bias=False)
        self.k_proj = nn.Linear(d_model, d_mem, bias=False)
        self.v_proj = nn.Linear(d_model, d_model, bias=False)
        self.beta_proj = nn.Linear(d_model, 1)
        nn.init.zeros_(self.v_proj.weight)  # nothing is stored at first: ARMT starts as backbone

    def _project(self, layer: nn.Linear, x: Tensor, dtype: torch.dtype = torch.float32) -> Tensor:
        # in `dtype` whatever the backbone's dtype or autocast: see the module docstring
        bias = layer.bias.to(dtype) if layer.bias is not None else None
        return F.linear(x.to(dtype), layer.weight.to(dtype), bias)

    def read(self, h: Tensor, A: Tensor, z: Tensor) -> Tensor:
        """What the memory adds to layer input h (B, T, D), given A (B, K, D) and z (B, K)."""
        kind = h.device.type
        computes = torch.get_autocast_dtype(kind) if torch.is_autocast_enabled(kind) else h.dtype
        # float16's range is too small for A: only bfloat16 reads in the layer's dtype
        dtype = torch.bfloat16 if computes == torch.bfloat16 else torch.float32
        with torch.autocast(kind, enabled=False):
            q = dpfp(self._project(self.q_proj, h, dtype), self.nu)  # (B, T, K)
            out = (q @ A.to(dtype)).float() / (q.float() @ z.unsqueeze(-1) + EPS)  # (B, T, D)
        return out.to(h.dtype)

    def write(self, m: Tensor, A: Tensor, z: Tensor) -> tuple[Tensor, Tensor]:
        """(A, z) after storing memory-token outputs m (B, M, D)."""
        with torch.autocast(m.device.type, enabled=False):
            k = dpfp(self._project(self.k_proj, m), self.nu)  # (B, M, K)
            v = self._project(self.v_proj, m)  # (B, M, D)
            beta = torch.sigmoid(self._project(self.beta_proj, m))  # (B, M, 1)
            kz = k @ z.unsqueeze(-1)  # (B, M, 1)
            v_old = (k @ A) / (kz + EPS)  # (B, M, D)
            gamma = (1 - kz / (k.pow(2).sum(-1, keepdim=True) + EPS)).clamp(0, 1).detach()
            A = A + (beta * k).transpose(1, 2) @ (v - v_old)  # (B, K, D)
            z = z + (gamma * k).sum(1)  # (B, K)
        return A, z


class ARMT(MemoryModel):
    """ARMT around a HF causal LM: per-layer associative memory written by M appended tokens."""

    architecture = "armt"
    config_class = ARMTConfig

    def __init__(self, backbone: PreTrainedModel, config: ARMTConfig | None = None):
        config = config or ARMTConfig()
        if config.num_mem_tokens < 0 or config.d_mem < 1 or config.nu < 1:
            raise BabilabError("need num_mem_tokens >= 0, d_mem >= 1 and nu >= 1")
        super().__init__(backbone, config)
        D = backbone.config.hidden_size
        self.memory = init_memory(backbone, config.num_mem_tokens)  # (M, D): P
        self.assoc = nn.ModuleList(
            AssociativeMemory(D, config.d_mem, config.nu)
            for _ in decoder_layers(backbone)
        ).to(self.memory.device, self.memory.dtype)

    @property
    def tokens_per_pass(self) -> int:
        return self.config.segment_size + self.config.num_mem_tokens

    def init_state(self, batch_size: int) -> ARMTState:
        L, D = len(self.assoc), self.backbone.config.hidden_size
        K = 2 * self.config.nu * self.config.d_mem
        A = torch.zeros(batch_size, L, K, D, device=self.device)  # (B, L, K, D)
        return ARMTState(A, torch.zeros(batch_size, L, K, device=self.device))  # z: (B, L, K)

    def segment_inputs(self, state: ARMTState, segment: SegmentBatch, write: bool) -> SegmentInputs:
        tokens = self.embed(segment.input_ids)  # (B, T, D)
        P = self.memory.unsqueeze(0).expand(tokens.shape[0], -1, -1)  # (B, M, D)
        return assemble_segment(tokens, segment.attention_mask, None, P if write else None)

    def step(self, state: ARMTState, segment: SegmentBatch) -> tuple[Tensor, ARMTState]:
        layers = decoder_layers(self.backbone)
        if self.training and any(getattr(la, "gradient_checkpointing", False) for la in layers):
            raise BabilabError("ARMT's layer hooks do not survive gradient checkpointing")
        T = segment.input_ids.shape[1]
        inputs = self.segment_inputs(state, segment, write=True)
        with self._hooks(state, write_rows=segment.active) as (A, z):
            hidden = self.body(inputs).last_hidden_state  # (B, T + M, D)
        if self.config.num_mem_tokens == 0:
            return hidden[:, :T], state
        state = ARMTState(torch.stack(A, dim=1), torch.stack(z, dim=1), written=True)
        return hidden[:, :T], state  # (B, T, D)

    def reading(self, state: ARMTState) -> contextlib.AbstractContextManager:
        return self._hooks(state, write_rows=None)

    @contextlib.contextmanager
    def _hooks(
        self, state: ARMTState, write_rows: Tensor | None
    ) -> Iterator[tuple[list[Tensor], list[Tensor]]]:
        """Read before every decoder layer; with `write_rows` (B,) also write after it.

        Yields the per-layer lists that the write hooks fill with the new A_l and z_l
        (rows outside `write_rows` keep their old values).
        """
        M = self.config.num_mem_tokens
        layers = decoder_layers(self.backbone)
        # One unbind per segment, not an index per layer and use: the backward of each
        # `state.A[:, i]` fills a zero gradient of the whole (B, L, K, D) state, which made
        # training with short segments several times slower.
        old_A, old_z = state.A.unbind(1), state.z.unbind(1)  # (B, K, D), (B, K) per layer
        new_A: list[Tensor] = list(old_A)
        new_z: list[Tensor] = list(old_z)

        def read_hook(i: int):
            def hook(module: nn.Module, args: tuple, kwargs: dict):
                h = args[0] if args else kwargs["hidden_states"]  # (B, T, D) layer input
                h = h + self.assoc[i].read(h, old_A[i], old_z[i])
                if args:
                    return (h, *args[1:]), kwargs
                return args, {**kwargs, "hidden_states": h}

            return hook

        def write_hook(i: int):
            def hook(module: nn.Module, args: tuple, output: Tensor | tuple):
                out = output[0] if isinstance(output, tuple) else output  # (B, T + M, D)
                A, z = self.assoc[i].write(out[:, -M:], old_A[i], old_z[i])
                new_A[i] = keep_rows(write_rows, A, old_A[i])
                new_z[i] = keep_rows(write_rows, z, old_z[i])

            return hook

        handles = []
        try:
            for i, layer in enumerate(layers):
                if state.written:
                    handles.append(layer.register_forward_pre_hook(read_hook(i), with_kwargs=True))
                if write_rows is not None and M > 0:
                    handles.append(layer.register_forward_hook(write_hook(i)))
            yield new_A, new_z
        finally:
            for handle in handles:
                handle.remove()


__all__ = ["ARMT", "ARMTConfig", "ARMTState", "AssociativeMemory", "dpfp"]
