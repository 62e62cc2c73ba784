"""What RMT, RMT-R and ARMT share: segmenting, memory-token insertion, backbone access, the
loop over segments, and safetensors save/load.

The three architectures (rmt.py, rmt_r.py, armt.py) each define a config, a state and one
segment step (the memory cell). Everything that is truly identical lives here once:

* `segment_batches` cuts samples into segments and lines several samples up so that they all
  end on the same step (left padding inside a step), which is what batched generation needs.
* `MemoryModel` is the shared contract: built around any HF causal LM, `forward` for training
  (loss and logits only at target positions), `read` for streaming inference, `reset`,
  `generate` (the decode loop itself is in generate.py), `save` / `load`.
* `assemble_segment` builds `[read memory; tokens; write memory]` with its mask and positions.

What this module does not do: datasets, tokenisation, curriculum, optimisation (train/).
Reference: shared/reference/memory_models.md (§1 RMT layout and segmentation, §1.5 BPTT, §7).

Dimension letters used in shape comments, in every file of this package:
B batch, S segments, T tokens per segment, M memory tokens, D hidden size, V vocabulary,
L backbone layers, N target positions in a batch.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import importlib
import inspect
import itertools
import json
import os
import shutil
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, NamedTuple

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import Tensor, nn
from transformers import PreTrainedModel

from ..errors import BabilabError

FORMAT_NAME = "babilab-memory"
FORMAT_VERSION = 1  # bump when the meaning of saved files changes
CONFIG_FILE = "memory_config.json"
WEIGHTS_FILE = "memory.safetensors"
BACKBONE_DIR = "backbone"
IGNORE_INDEX = -100  # label value that is never scored (the HF / PyTorch convention)
ALIGNS = ("left", "right")


# --------------------------------------------------------------------------------------------
# Segmenting


def split_points(length: int, segment_size: int, align: str = "left") -> list[tuple[int, int]]:
    """Segment boundaries of a sample of `length` tokens.

    `left` (the reference default, §1.3) fills segments from the start and leaves the remainder
    last; `right` puts the remainder first. Every segment has at least one token.

    >>> split_points(10, 4)
    [(0, 4), (4, 8), (8, 10)]
    >>> split_points(10, 4, "right")
    [(0, 2), (2, 6), (6, 10)]
    """
    if length < 1:
        raise BabilabError("a sample needs at least one token")
    if align not in ALIGNS:
        raise BabilabError(f"align must be one of {ALIGNS}, got {align!r}")
    n_full, rest = divmod(length, segment_size)
    sizes = [segment_size] * n_full
    if rest:
        sizes = sizes + [rest] if align == "left" else [rest] + sizes
    ends = list(itertools.accumulate(sizes))
    return list(zip([0] + ends[:-1], ends, strict=True))


@dataclass(frozen=True)
class SegmentBatch:
    """One step of several samples: token ids left-padded to the step's widest segment.

    A row whose sample has not started yet (it has fewer segments than the longest one) is all
    padding: its `attention_mask` row is zero and the step leaves its state unchanged.
    `extras` carries per-token tensors cut the same way (targets, positions), padded with -100.
    """

    input_ids: Tensor  # (B, T) long, pad positions hold 0
    attention_mask: Tensor  # (B, T) long, 1 on real tokens
    extras: Mapping[str, Tensor] = dataclasses.field(default_factory=dict)  # name -> (B, T)

    @property
    def active(self) -> Tensor:
        """(B,) bool: the rows that have tokens in this step."""
        return self.attention_mask.bool().any(-1)

    def to(self, device: torch.device | str) -> SegmentBatch:
        return SegmentBatch(
            self.input_ids.to(device),
            self.attention_mask.to(device),
            {k: v.to(device) for k, v in self.extras.items()},
        )


def segment_batches(
    samples: Sequence[Tensor | Sequence[int]],
    segment_size: int,
    align: str = "left",
    extras: Mapping[str, Sequence[Tensor]] | None = None,
) -> Iterator[SegmentBatch]:
    """Cut each sample into segments and yield them step by step, all samples ending together.

    Each sample is segmented on its own (so batching never moves a segment boundary); a sample
    with fewer segments starts later. Inside a step, shorter segments are left-padded, so the
    last step ends on every sample's last token (the question) and decoding can continue there.
    Only token ids are sliced here: nothing is embedded, so a 10M-token sample costs its ids.

    >>> [b.input_ids.tolist() for b in segment_batches([[1, 2, 3, 4, 5], [6, 7]], 2)]
    [[[1, 2], [0, 0]], [[3, 4], [0, 0]], [[0, 5], [6, 7]]]
    """
    samples = [torch.as_tensor(s, dtype=torch.long) for s in samples]
    if not samples:
        raise BabilabError("no samples to segment")
    extras = dict(extras or {})
    for name, values in extras.items():
        if [len(v) for v in values] != [len(s) for s in samples]:
            raise BabilabError(f"extras[{name!r}] must have one tensor per sample, of equal length")
    points = [split_points(len(s), segment_size, align) for s in samples]
    n_steps = max(len(p) for p in points)
    for step in range(n_steps):
        pieces = []  # per sample: (start, end) or None before the sample starts
        for p in points:
            j = step - (n_steps - len(p))  # the sample's own segment index
            pieces.append(p[j] if j >= 0 else None)
        width = max(b - a for a, b in filter(None, pieces))
        ids = torch.zeros(len(samples), width, dtype=torch.long)  # (B, T)
        mask = torch.zeros(len(samples), width, dtype=torch.long)  # (B, T)
        cut = {k: torch.full((len(samples), width), IGNORE_INDEX, dtype=torch.long) for k in extras}
        for i, piece in enumerate(pieces):
            if piece is None:
                continue
            a, b = piece
            ids[i, width - (b - a):] = samples[i][a:b]
            mask[i, width - (b - a):] = 1
            for k, values in extras.items():
                cut[k][i, width - (b - a):] = values[i][a:b]
        yield SegmentBatch(ids, mask, cut)


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
    states taken from its output are post-norm, as in the reference (§1.1, §7 point 3)."""
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
    """(rows, D) trainable memory, randn x std(word embeddings) as in the reference (§1.2)."""
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

    Memory positions are never masked (§1.1). Padding sits inside the token block (left
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
    segments, streaming, saving and loading are here.

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
        window = max_positions(backbone)
        if window is not None and self.tokens_per_pass > window:
            raise BabilabError(
                f"segment_size + memory tokens = {self.tokens_per_pass} exceeds the backbone's "
                f"window (max_position_embeddings = {window}); use a smaller segment_size"
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
            # steps from n_steps - k2 on. As in the reference (§1.5) the memory entering every
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

    def generate(self, segments: Iterable[SegmentBatch], max_new_tokens: int = 10, **kwargs):
        """Greedy decoding after the last segment; see `babilab.memory.generate.generate`."""
        from .generate import generate  # generate.py imports this module

        return generate(self, segments, max_new_tokens=max_new_tokens, **kwargs)

    # --- save / load ------------------------------------------------------------------------

    def memory_state_dict(self) -> dict[str, Tensor]:
        """The parameters this wrapper adds (initial memory, retrieval block, ARMT projections)."""
        return {k: v for k, v in self.state_dict().items() if not k.startswith("backbone.")}

    def save(self, directory: str | Path, save_backbone: bool = False,
             backbone_source: str | None = None, dtype: torch.dtype | None = None) -> None:
        """Write the memory parameters (safetensors) and a versioned JSON config.

        The JSON names the backbone (name_or_path, model_type, sizes, config hash) and, with
        `backbone_source`, how to load it again (an alias such as `smollm2`, a folder, a hub
        id). With `save_backbone` (needed after full fine-tuning) the backbone is saved beside
        it with `save_pretrained` (safetensors). Without it, LoRA adapters in the backbone are
        saved alone (adapters.py), to be folded into the backbone at load. `dtype` casts the
        saved memory parameters and adapters (bfloat16 halves a shipped model). Each file is
        written under a temporary name, then renamed.
        """
        from .adapters import ADAPTERS_FILE, lora_tensors

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        meta = {
            "format": FORMAT_NAME,
            "version": FORMAT_VERSION,
            "architecture": self.architecture,
            "config": dataclasses.asdict(self.config),
            "backbone": backbone_reference(self.backbone),
            "backbone_saved": save_backbone,
        }
        if backbone_source is not None:
            meta["backbone_source"] = backbone_source

        def cast(tensors: dict[str, Tensor]) -> dict[str, Tensor]:
            return {k: v.detach().to("cpu", dtype or v.dtype).contiguous()
                    for k, v in tensors.items()}

        adapters, scale = ({}, 0.0) if save_backbone else lora_tensors(self.backbone)
        if adapters:
            meta["lora"] = {"file": ADAPTERS_FILE, "scale": scale}
            _write_atomic(directory / ADAPTERS_FILE, lambda p: save_file(cast(adapters), p))
        tensors = cast(self.memory_state_dict())
        _write_atomic(directory / WEIGHTS_FILE, lambda p: save_file(tensors, p))
        if save_backbone:
            tmp = Path(tempfile.mkdtemp(dir=directory, prefix=".backbone-"))
            self.backbone.save_pretrained(tmp)
            shutil.rmtree(directory / BACKBONE_DIR, ignore_errors=True)
            os.replace(tmp, directory / BACKBONE_DIR)
        text = json.dumps(meta, indent=2, sort_keys=True)
        _write_atomic(directory / CONFIG_FILE, lambda p: Path(p).write_text(text))

    @classmethod
    def load(cls, directory: str | Path, backbone: PreTrainedModel | None = None) -> MemoryModel:
        """Rebuild a saved model of this architecture around `backbone`.

        Without `backbone`, the one saved in the directory is loaded; if none was saved, pass
        it in (this module never downloads). The parameters must match key for key. Saved
        LoRA adapters are folded into `backbone` in place.
        """
        directory = Path(directory)
        meta = read_meta(directory)
        if meta["architecture"] != cls.architecture:
            raise BabilabError(
                f"{directory} holds a {meta['architecture']!r} checkpoint, not {cls.architecture!r}"
                f"; load it with load_memory_model() or the {meta['architecture']} class"
            )
        if backbone is None:
            if not meta["backbone_saved"]:
                raise BabilabError(
                    f"{directory} has no saved backbone: pass backbone= (it was "
                    f"{meta['backbone']['name_or_path']!r}, model_type "
                    f"{meta['backbone']['model_type']!r})"
                )
            from transformers import AutoModelForCausalLM

            backbone = AutoModelForCausalLM.from_pretrained(directory / BACKBONE_DIR)
        _check_backbone_matches(meta["backbone"], backbone)
        if "lora" in meta:  # adapters trained with the memory: folded into the backbone
            from .adapters import merge_adapters

            merge_adapters(backbone, directory / meta["lora"]["file"], meta["lora"]["scale"])
        model = cls(backbone, cls.config_class(**meta["config"]))
        tensors = load_file(directory / WEIGHTS_FILE, device=str(backbone.device))
        expected = model.memory_state_dict()
        if set(tensors) != set(expected):
            raise BabilabError(
                f"{directory / WEIGHTS_FILE} does not fit {cls.__name__}: missing "
                f"{sorted(set(expected) - set(tensors))}, unexpected "
                f"{sorted(set(tensors) - set(expected))}"
            )
        model.load_state_dict(tensors, strict=False)  # strict=False: backbone keys come from it
        return model


# Architecture name (as saved in memory_config.json) -> "module:Class", imported on demand.
ARCHITECTURES = {"rmt": "rmt:RMT", "rmt_r": "rmt_r:RMTR", "armt": "armt:ARMT"}


def memory_class(architecture: str) -> type[MemoryModel]:
    """The class for an architecture name: "rmt", "rmt_r" or "armt"."""
    if architecture not in ARCHITECTURES:
        raise BabilabError(
            f"unknown memory architecture {architecture!r}; known: {list(ARCHITECTURES)}"
        )
    module, name = ARCHITECTURES[architecture].split(":")
    return getattr(importlib.import_module(f"{__package__}.{module}"), name)


def load_memory_model(
    directory: str | Path, backbone: PreTrainedModel | None = None
) -> MemoryModel:
    """Load a saved memory model of whichever architecture the directory holds."""
    return memory_class(read_meta(Path(directory))["architecture"]).load(directory, backbone)


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


def backbone_reference(model: PreTrainedModel) -> dict[str, Any]:
    """What identifies the backbone a memory checkpoint was trained with."""
    config = model.config
    text = json.dumps(config.to_dict(), sort_keys=True, default=str)
    return {
        "name_or_path": getattr(config, "_name_or_path", "") or "",
        "model_type": config.model_type,
        "hidden_size": config.hidden_size,
        "num_hidden_layers": config.num_hidden_layers,
        "vocab_size": config.vocab_size,
        "config_sha256": hashlib.sha256(text.encode()).hexdigest(),
    }


def read_meta(directory: Path) -> dict[str, Any]:
    """The JSON config of a saved memory model, after checking its format and version."""
    path = Path(directory) / CONFIG_FILE
    if not path.exists():
        raise BabilabError(f"{path} not found: not a saved babilab memory model")
    meta = json.loads(path.read_text())
    if meta.get("format") != FORMAT_NAME:
        raise BabilabError(f"{path} is not a {FORMAT_NAME} file")
    if meta.get("version") != FORMAT_VERSION:
        raise BabilabError(
            f"{path} has format version {meta.get('version')}; this babilab reads {FORMAT_VERSION}"
        )
    return meta


def _check_backbone_matches(reference: Mapping[str, Any], backbone: PreTrainedModel) -> None:
    found = backbone_reference(backbone)
    for key in ("model_type", "hidden_size", "num_hidden_layers", "vocab_size"):
        if reference[key] != found[key]:
            raise BabilabError(
                f"the backbone does not match the checkpoint: {key} is {found[key]!r}, the "
                f"checkpoint was saved with {reference[key]!r} ({reference['name_or_path']!r})"
            )


def _write_atomic(path: Path, write: Any) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


__all__ = [
    "ARCHITECTURES",
    "IGNORE_INDEX",
    "MemoryModel",
    "MemoryOutput",
    "SegmentBatch",
    "SegmentInputs",
    "activation",
    "assemble_segment",
    "backbone_reference",
    "check_causal_lm",
    "decoder_layers",
    "detach_rows",
    "final_norm",
    "init_memory",
    "keep_rows",
    "load_memory_model",
    "max_positions",
    "memory_class",
    "read_meta",
    "segment_batches",
    "split_points",
    "state_fields",
]
