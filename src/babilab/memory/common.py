"""What RMT, RMT-R and ARMT share: backbone access, memory-token insertion, the loop over
segments, streaming reads, and the contract that saving and decoding rely on.

The three architectures (rmt.py, rmt_r.py, armt.py) each define a config, a state and one
segment step (the memory cell). Everything that is truly identical lives here once:

* `MemoryModel` is the shared contract: built around any HF causal LM, `forward` for training
  (loss and logits only at target positions), `read` for streaming inference, `reset`,
  `generate` (the decode loop itself is in generate.py), `save` / `load` (saving.py).
* `assemble_segment` builds `[read memory; tokens; write memory]` with its mask and positions.
* How samples and requests are cut into segments is layout.py's (`segment_batches`).

What this module does not do: datasets, tokenisation, curriculum, optimisation (train/).
Reference: github.com/booydar/recurrent-memory-transformer (segmentation, BPTT).

Dimension letters used in shape comments, in every file of this package:
B batch, S segments, T tokens per segment, M memory tokens, D hidden size, V vocabulary,
L backbone layers, N target positions in a batch.
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from transformers import PreTrainedModel

from ..errors import BabilabError
from . import saving
from .generate import Generation
from .generate import generate as decode
from .layout import ALIGNS, IGNORE_INDEX, SegmentBatch, segment_batches

# --------------------------------------------------------------------------------------------
# Backbone access

# Where the decoder layers and the final norm sit inside `model.base_model`, by model_type.
# Llama-family models (llama, mistral, qwen2, gemma, smollm, ...) use the default.
_BODY_ATTRS: dict[str, tuple[str, str]] = {"gpt2": ("h", "ln_f")}
_DEFAULT_BODY_ATTRS = ("layers", "norm")
# Config attribute naming the MLP activation, by family (GPT-2, Llama, Gemma).
_ACT_ATTRS = ("activation_function", "hidden_act", "hidden_activation")


def check_causal_lm(model: Any) -> None:
    """Raise one clear error unless `model` is a loaded HF decoder-only causal LM."""
    ok = (
        isinstance(model, PreTrainedModel)
        and model.can_generate()
        and not getattr(model.config, "is_encoder_decoder", False)
        and model.get_output_embeddings() is not None
    )
    if not ok:
        raise BabilabError(
            f"the backbone must be a loaded Hugging Face causal LM (e.g. AutoModelForCausalLM"
            f".from_pretrained(...)); got {type(model).__name__}"
        )
    d_embed = model.get_input_embeddings().embedding_dim
    if d_embed != model.config.hidden_size:
        raise BabilabError(
            f"memory states are fed back as input embeddings, so the embedding size ({d_embed}) "
            f"must equal the hidden size ({model.config.hidden_size})"
        )


def decoder_layers(model: PreTrainedModel) -> nn.ModuleList:
    """The backbone's decoder layers (`transformer.h` for GPT-2, `model.layers` for Llama)."""
    layers_attr, _ = _BODY_ATTRS.get(model.config.model_type, _DEFAULT_BODY_ATTRS)
    layers = getattr(model.base_model, layers_attr, None)
    if not isinstance(layers, nn.ModuleList):
        raise BabilabError(
            f"cannot find the decoder layers of {type(model).__name__} at base_model."
            f"{layers_attr}; add its model_type to _BODY_ATTRS in memory/common.py"
        )
    return layers


def final_norm(model: PreTrainedModel) -> nn.Module:
    """The backbone's final norm (`ln_f`, `norm`). `base_model` already applies it, so memory
    states taken from its output are post-norm, as in the reference."""
    _, norm_attr = _BODY_ATTRS.get(model.config.model_type, _DEFAULT_BODY_ATTRS)
    return getattr(model.base_model, norm_attr)


def activation(model: PreTrainedModel) -> nn.Module:
    """The backbone's MLP activation (GELU for GPT-2, SiLU for Llama), for RMT-R's MLP."""
    from transformers.activations import ACT2FN

    for attr in _ACT_ATTRS:
        name = getattr(model.config, attr, None)
        if isinstance(name, str):
            return ACT2FN[name]
    return nn.GELU()


def max_positions(model: PreTrainedModel) -> int | None:
    """The backbone's window (`max_position_embeddings`; GPT-2's n_positions), if it has one."""
    return getattr(model.config, "max_position_embeddings", None)


def init_memory(model: PreTrainedModel, rows: int) -> nn.Parameter:
    """(rows, D) trainable memory, randn x std(word embeddings) as in the reference."""
    weight = model.get_input_embeddings().weight
    noise = torch.randn(rows, weight.shape[1], dtype=weight.dtype, device=weight.device)
    return nn.Parameter(noise * weight.std().detach())


class SegmentInputs(NamedTuple):
    """What one backbone pass gets: embeddings of [read; tokens; write], mask and positions."""

    inputs_embeds: Tensor  # (B, R + T + W, D)
    attention_mask: Tensor  # (B, R + T + W) long
    position_ids: Tensor  # (B, R + T + W) long


def assemble_segment(
    tokens: Tensor, token_mask: Tensor, read: Tensor | None, write: Tensor | None
) -> SegmentInputs:
    """Concatenate [read; tokens; write] and give positions that skip padding.

    Memory positions are never masked. Padding sits inside the token block (left
    padding), and positions count real entries only, so a padded row gets exactly the positions
    it would get alone: read memory 0..R-1, tokens from R on, write memory after the tokens.
    """
    B = tokens.shape[0]
    parts, masks = [], []
    for block, mask in ((read, None), (tokens, token_mask), (write, None)):
        if block is None:
            continue
        parts.append(block.to(tokens.dtype))
        masks.append(mask if mask is not None else token_mask.new_ones(B, block.shape[1]))
    embeds = torch.cat(parts, dim=1)  # (B, R + T + W, D)
    mask = torch.cat(masks, dim=1)  # (B, R + T + W)
    positions = (mask.cumsum(-1) - 1).clamp(min=0)  # (B, R + T + W); pads get 0, never attended
    return SegmentInputs(embeds, mask, positions)


# --------------------------------------------------------------------------------------------
# State helpers: a state is a dataclass of tensors with the batch first (plus plain flags).


def detach_rows(state: Any, rows: Tensor) -> Any:
    """Cut the gradient of `rows` (B,) bool in every tensor of `state`, keep the others."""
    changes = {}
    for f in dataclasses.fields(state):
        value = getattr(state, f.name)
        if isinstance(value, Tensor):
            keep = rows.view(-1, *([1] * (value.dim() - 1)))
            changes[f.name] = torch.where(keep, value.detach(), value)
    return dataclasses.replace(state, **changes)


def keep_rows(active: Tensor, new: Tensor, old: Tensor) -> Tensor:
    """`new` where the row was `active` (B,), else `old`: idle rows keep their state."""
    return torch.where(active.view(-1, *([1] * (new.dim() - 1))), new, old)


# --------------------------------------------------------------------------------------------
# The shared contract and the loop over segments


@dataclass
class MemoryOutput:
    """What `MemoryModel.forward` returns; N counts target positions over the batch."""

    loss: Tensor | None  # () mean cross-entropy over the targets; None without labels
    logits: Tensor  # (N, V) at target positions, in row-major order of the input
    hidden_states: Tensor  # (N, D) last-layer (post-norm) states at the same positions
    memory: Any  # the final state, one row per sample


def cache_keyword(model: nn.Module) -> str:
    """The keyword `model.forward` takes its key/value cache under: `cache` since transformers
    5.x, `past_key_values` before."""
    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"


class MemoryModel(nn.Module, ABC):
    """A recurrent-memory model around a HF causal LM: the contract all three share.

    Subclasses set `architecture` and `config_class` and fill in `init_state`, `segment_inputs`
    and `step` (one segment, the memory cell); ARMT also overrides `reading`. The loop over
    segments and streaming are here; saving and loading go through saving.py.

    * `forward(input_ids, attention_mask, labels)` trains on whole (padded) samples: every
      call starts from a fresh state; logits and loss only where `labels[:, 1:] != -100`.
    * `read(segment)` consumes one `SegmentBatch` under no_grad into `self.state`;
      `reset()` clears it; `generate(segments, ...)` reads all but the last segment and
      decodes greedily after it (generate.py).
    """

    architecture: ClassVar[str]
    config_class: ClassVar[type]

    def __init__(self, backbone: PreTrainedModel, config: Any):
        super().__init__()
        check_causal_lm(backbone)
        if not isinstance(config, self.config_class):
            raise BabilabError(f"{type(self).__name__} needs a {self.config_class.__name__}")
        if config.segment_size < 1:
            raise BabilabError("segment_size must be at least 1")
        if config.k2 is not None and config.k2 < 1:
            raise BabilabError("k2 must be None (full BPTT) or at least 1")
        if config.align not in ALIGNS:
            raise BabilabError(f"align must be one of {ALIGNS}, got {config.align!r}")
        self.backbone = backbone
        self.config = config
        self.state: Any = None  # streaming state kept by `read`; `reset` clears it
        if self.window is not None and self.tokens_per_pass > self.window:
            raise BabilabError(
                f"segment_size + memory tokens = {self.tokens_per_pass} exceeds the backbone's "
                f"window (max_position_embeddings = {self.window}); use a smaller segment_size"
            )

    # --- what each architecture provides ----------------------------------------------------

    @property
    @abstractmethod
    def tokens_per_pass(self) -> int:
        """Most positions one backbone pass uses (segment plus memory tokens)."""

    @abstractmethod
    def init_state(self, batch_size: int) -> Any:
        """The state before the first segment, one row per sample."""

    @abstractmethod
    def segment_inputs(self, state: Any, segment: SegmentBatch, write: bool) -> SegmentInputs:
        """Backbone inputs for one segment; `write=False` is the read-only generation prompt."""

    @abstractmethod
    def step(self, state: Any, segment: SegmentBatch) -> tuple[Tensor, Any]:
        """Process one segment: (hidden (B, T, D) at the token positions, next state)."""

    def reading(self, state: Any) -> contextlib.AbstractContextManager:
        """Context under which the backbone reads memory while decoding (ARMT's layer hooks)."""
        return contextlib.nullcontext()

    def state_finite(self, state: Any) -> Tensor:
        """(B,) bool: each row's state holds finite numbers only (every floating field)."""
        rows = [torch.isfinite(v.flatten(1)).all(1) for f in dataclasses.fields(state)
                if isinstance(v := getattr(state, f.name), Tensor) and v.is_floating_point()]
        return torch.stack(rows).all(0)

    # --- backbone helpers -------------------------------------------------------------------

    @property
    def device(self) -> torch.device:
        return self.backbone.device

    @property
    def window(self) -> int | None:
        """Positions one backbone pass may use, memory included (None: no limit)."""
        return max_positions(self.backbone)

    def embed(self, input_ids: Tensor) -> Tensor:
        return self.backbone.get_input_embeddings()(input_ids)  # (B, T, D)

    def body(self, inputs: SegmentInputs, cache: Any = None):
        """Run the backbone body (no LM head); `.last_hidden_state` is after the final norm.
        A transformers `Cache` given as `cache` is filled in place (decoding)."""
        body = self.backbone.base_model
        if cache is None:
            kwargs = {"use_cache": False}
        else:
            kwargs = {cache_keyword(body): cache, "use_cache": True}
        return body(inputs_embeds=inputs.inputs_embeds, attention_mask=inputs.attention_mask,
                    position_ids=inputs.position_ids, **kwargs)

    def logits(self, hidden: Tensor) -> Tensor:
        """LM head on the given states only (..., D) -> (..., V), in float32."""
        logits = self.backbone.get_output_embeddings()(hidden).float()
        cap = getattr(self.backbone.config, "final_logit_softcapping", None)  # Gemma 2/3
        return torch.tanh(logits / cap) * cap if cap else logits

    # --- training ---------------------------------------------------------------------------

    def forward(
        self, input_ids: Tensor, attention_mask: Tensor | None = None, labels: Tensor | None = None
    ) -> MemoryOutput:
        """Run whole samples segment by segment; score only the labelled positions.

        input_ids (B, L) may be left- or right-padded (`attention_mask` marks real tokens).
        labels (B, L) follow the HF convention: position t is predicted from t-1 and -100 is not
        scored. Without labels the logits are those at each sample's last token, (B, V).
        Gradients flow through the memory of the last `k2` segments of every sample (None: all).
        """
        B, L = input_ids.shape
        real = (attention_mask if attention_mask is not None else torch.ones_like(input_ids))
        real = real.bool().cpu()
        targets = torch.full((B, L), IGNORE_INDEX, dtype=torch.long)  # (B, L), predicted at t
        if labels is None:
            last = L - 1 - real.flip(-1).int().argmax(-1)  # (B,) last real position
            targets[torch.arange(B), last] = 0  # a dummy target: logits at the last token
        else:
            targets[:, :-1] = labels[:, 1:].cpu()
        order = torch.arange(B * L).view(B, L)  # (B, L) row-major position, to sort outputs
        rows = [real[i] for i in range(B)]
        batches = segment_batches(
            [input_ids[i].cpu()[rows[i]] for i in range(B)],
            self.config.segment_size,
            self.config.align,
            {"target": [targets[i][rows[i]] for i in range(B)],
             "order": [order[i][rows[i]] for i in range(B)]},
        )
        batches = list(batches)  # ids only; needed to know where the last k2 segments start
        n_steps, k2 = len(batches), self.config.k2
        state = self.init_state(B)
        started = torch.zeros(B, dtype=torch.bool, device=self.device)  # rows past segment 0
        hidden, picked, order_out = [], [], []
        for s, segment in enumerate(batches):
            # All samples end on the last step, so "the last k2 segments of each sample" are the
            # steps from n_steps - k2 on. As in the reference the memory entering every
            # earlier step is cut too, so a target there backpropagates one segment at most.
            if k2 is not None and s <= n_steps - k2 and bool(started.any()):
                state = detach_rows(state, started)
            segment = segment.to(self.device)
            h, state = self.step(state, segment)  # (B, T, D)
            sel = segment.extras["target"] != IGNORE_INDEX  # (B, T)
            hidden.append(h[sel])  # (N_s, D)
            picked.append(segment.extras["target"][sel])
            order_out.append(segment.extras["order"][sel])
            started = started | segment.active  # not in place: detach_rows saved it
        sort = torch.argsort(torch.cat(order_out))
        hidden_states = torch.cat(hidden)[sort]  # (N, D)
        logits = self.logits(hidden_states)  # (N, V): the LM head runs on targets only
        loss = None
        if labels is not None:
            if hidden_states.shape[0] == 0:
                raise BabilabError("labels mark no position to score (all -100 after the shift)")
            loss = F.cross_entropy(logits, torch.cat(picked)[sort])
        return MemoryOutput(loss, logits, hidden_states, state)

    # --- streaming inference ----------------------------------------------------------------

    def reset(self) -> None:
        """Forget the streaming state (call between unrelated batches of samples)."""
        self.state = None

    def reserve(self, n_segments: int) -> None:
        """Expect the next read to have `n_segments` segments in all (after `reset`). States of
        constant size need nothing; RMT-R allocates its stored states once, at their final size."""

    def segments(self, samples: Sequence[Tensor | Sequence[int]]) -> Iterator[SegmentBatch]:
        """`segment_batches` with this model's segment size and alignment."""
        return segment_batches(samples, self.config.segment_size, self.config.align)

    @torch.no_grad()
    def read(self, segment: SegmentBatch) -> None:
        """Consume one step of segments (with memory write) into `self.state`."""
        B = segment.input_ids.shape[0]
        if self.state is None:
            self.state = self.init_state(B)
        elif state_batch_size(self.state) != B:
            raise BabilabError(
                f"segment batch of {B} rows after a state of {state_batch_size(self.state)}; "
                "call reset() between batches"
            )
        _, self.state = self.step(self.state, segment.to(self.device))

    def state_from(self, fields: Mapping[str, Any]) -> Any:
        """The state `state_fields` made plain again, on this model's device."""
        template = self.init_state(1)
        names = {f.name for f in dataclasses.fields(template)}
        if set(fields) != names:
            raise BabilabError(f"a saved {self.architecture} state has fields {sorted(fields)}, "
                               f"expected {sorted(names)}")
        return dataclasses.replace(template, **{
            k: v.to(self.device) if isinstance(v, Tensor) else v for k, v in fields.items()})

    def generate(self, segments: Iterable[SegmentBatch], max_new_tokens: int = 10,
                 **kwargs) -> Generation:
        """Greedy decoding after the last segment; see `babilab.memory.generate.generate`."""
        return decode(self, segments, max_new_tokens=max_new_tokens, **kwargs)

    # --- save / load ------------------------------------------------------------------------

    def memory_state_dict(self) -> dict[str, Tensor]:
        """The parameters this wrapper adds (initial memory, retrieval block, ARMT projections)."""
        return {k: v for k, v in self.state_dict().items() if not k.startswith("backbone.")}

    def save(self, directory: str | Path, save_backbone: bool = False,
             backbone_source: str | None = None, dtype: torch.dtype | None = None) -> None:
        """Write the memory parameters and a versioned JSON config (`saving.save`)."""
        saving.save(self, directory, save_backbone, backbone_source, dtype)

    @classmethod
    def load(cls, directory: str | Path, backbone: PreTrainedModel | None = None) -> MemoryModel:
        """Rebuild a saved model of this architecture around `backbone` (`saving.load`)."""
        return saving.load(cls, directory, backbone)


def state_batch_size(state: Any) -> int:
    """Rows of a state (its first tensor's first dimension)."""
    for f in dataclasses.fields(state):
        value = getattr(state, f.name)
        if isinstance(value, Tensor):
            return value.shape[0]
    raise TypeError("a state needs at least one tensor")  # a bug in an architecture, not input


def state_fields(state: Any) -> dict[str, Any]:
    """A state as plain data for `torch.save`: its fields, tensors copied to the CPU."""
    return {f.name: (v.detach().cpu() if isinstance(v := getattr(state, f.name), Tensor) else v)
            for f in dataclasses.fields(state)}


__all__ = [
    "IGNORE_INDEX",
    "MemoryModel",
    "MemoryOutput",
    "SegmentInputs",
    "activation",
    "assemble_segment",
    "cache_keyword",
    "check_causal_lm",
    "decoder_layers",
    "detach_rows",
    "final_norm",
    "init_memory",
    "keep_rows",
    "max_positions",
    "state_batch_size",
    "state_fields",
]
