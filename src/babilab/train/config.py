"""Training recipes: one flat pydantic model, loaded from YAML, overridable from the CLI.

A recipe names the model (architecture, backbone, memory options, what trains), the data
(tasks, background corpus, validation size), the optimiser defaults and a list of curriculum
stages; a stage may override the batch, learning rate and early-stop settings of the recipe.
Every field has a default except `stages`. Unknown keys are errors (`extra="forbid"`), so a
typo never silently trains with a default.

    cfg = load_recipe("recipes/cpu_smoke.yaml", ["out_dir=/tmp/run", "stages.0.steps=5"])

What this module does not check: anything that needs the world size or the backbone (batch
arithmetic per process, the backbone's window); `start.set_up` does that at start-up, the
batch arithmetic before any weights load. Reference for the defaults: the public
RMT training scripts (github.com/booydar/recurrent-memory-transformer).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ..babi import parse_tasks
from ..config_files import config_error, read_yaml
from ..errors import BabilabError

ARCHITECTURES = ("rmt", "rmt_r", "armt", "plain")  # plain: the backbone alone, no memory
TRAINABLE = re.compile(r"^(all|memory|lora|top:[1-9]\d*)$")
# Fields that may differ on --resume: where things live and how they are shown, not what is
# computed (threads can change float summation order, so a resume with other threads is not
# bit-exact, but it is the same run).
RESUMABLE_CHANGES = frozenset({"out_dir", "cache_dir", "progress", "threads", "data_workers"})
MAX_SEGMENTS = 1024  # per training sample; the published curricula stop at 32


class Stage(BaseModel):
    """One curriculum stage; unset fields take the recipe's value."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    segments: int = Field(ge=1)  # context segments of the longest sample; the question adds one
    steps: int = Field(ge=1)  # optimiser steps at most: an early stop may end the stage sooner
    batch_size: int | None = Field(None, ge=1)  # samples per optimiser step, all processes
    micro_batch_size: int | None = Field(None, ge=1)  # samples per forward pass on one process
    lr: float | None = Field(None, gt=0)
    warmup_steps: int | None = Field(None, ge=0)  # default: warmup_frac x steps
    eval_interval: int | None = Field(None, ge=1)
    target_accuracy: float | None = Field(None, gt=0, le=1)
    # the stage index in its samples' seeds (default: its own): a run that replays another
    # run's stages in another order (a baseline of a run continued from shipped parts) draws
    # the same samples
    data_stage: int | None = Field(None, ge=0)

    @field_validator("segments")
    @classmethod
    def _segments(cls, v: int) -> int:
        if v > MAX_SEGMENTS:  # refused here, before any weights load or any step runs
            raise ValueError(f"at most {MAX_SEGMENTS} (backpropagation through time keeps "
                             f"every segment's activations), got {v}")
        return v


class TrainConfig(BaseModel):
    """What `babilab train` does. Defaults follow the RMT BABILong scripts where they exist."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # --- model
    architecture: Literal["rmt", "rmt_r", "armt", "plain"] = "rmt"
    backbone: str = "smollm2"  # as for hf: an alias (smollm2), a model folder, a .gguf, a hub id
    segment_size: int = Field(512, ge=1)  # context tokens per segment; plain uses it as length unit
    memory: dict[str, Any] = {}  # options of the architecture's config: num_mem_tokens, k2, d_mem...
    trainable: str = "all"  # all | memory (wrapper only) | top:N (+ last N layers, final norm) | lora
    lora_r: int = Field(8, ge=1)
    lora_alpha: float = Field(16, gt=0)
    lora_dropout: float = Field(0.0, ge=0, lt=1)
    lora_target_modules: list[str] | None = None  # None: peft's default for the model type
    init: str | None = None  # a saved memory model's trained parts to start from (not a resume)
    gradient_checkpointing: bool = False  # recompute activations in backward (not with ARMT)
    # autocast; weights stay float32. auto: bfloat16 where the hardware has it (hardware.py)
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "float32"
    device: Literal["auto", "cpu"] = "auto"  # auto: a GPU when there is one

    # --- data (always the bAbI train split and the corpus's train books; see data.py)
    tasks: list[str] = ["qa1"]
    corpus: str = "gutenberg"  # gutenberg | pg19 | dir:PATH | file:PATH; only train books are read
    story_pool: int | None = Field(None, ge=1)  # draw from the first N train stories (None: fresh)
    questions_per_sample: int = Field(1, ge=1)  # more questions on the same story, same last segment
    vary_segments: bool = True  # each sample draws 1..segments, as the reference's vary_n_segments
    full_length_ratio: float = Field(0.0, ge=0, le=1)  # share forced to the stage's full length
    # share of training samples of 2+ segments whose facts all lie before the last segment:
    # with uniform placement most answers sit beside the question, where attention finds them
    # without the memory (experiments/qa1_failures.py)
    facts_before_last: float = Field(0.0, ge=0, le=1)
    # the same for validation questions, which choose each stage's best model: at 0 a model
    # whose memory carries nothing scores ~80% at 2 segments, and its memory's progress is noise
    valid_facts_before_last: float = Field(0.0, ge=0, le=1)
    valid_samples: int = Field(100, ge=1)  # validation questions (bAbI valid split), per stage
    seed: int = Field(0, ge=0)  # seeds numpy's generators, which take no negative seed

    # --- optimisation (per-stage values may override the first five)
    stages: list[Stage] = Field(min_length=1)
    batch_size: int = Field(64, ge=1)  # samples per optimiser step, summed over processes
    micro_batch_size: int = Field(16, ge=1)  # samples per forward pass on one process
    lr: float = Field(1e-5, gt=0)  # peak learning rate (RMT 1e-5, RMT-R 5e-5, ARMT 1e-4)
    eval_interval: int = Field(100, ge=1)  # optimiser steps between validations
    target_accuracy: float | None = Field(1.0, gt=0, le=1)  # end a stage at this valid accuracy
    warmup_frac: float = Field(0.1, ge=0, lt=1)  # warm-up as a share of a stage's steps (ITERS/10)
    decay_frac: float = Field(2.0, ge=1)  # LR reaches 0 at decay_frac x steps; 2 leaves half peak
    weight_decay: float = Field(0.01, ge=0)  # on matrices and embeddings, not on biases and norms
    beta1: float = Field(0.9, ge=0, lt=1)
    beta2: float = Field(0.999, ge=0, lt=1)
    grad_clip: float = Field(1.0, ge=0)  # max global gradient norm; 0 turns clipping off
    patience: int | None = Field(None, ge=1)  # end a stage after this many evals without a new best
    eval_batch_size: int = Field(8, ge=1)

    # --- output
    out_dir: str = "out/train"
    checkpoint_interval: int = Field(100, ge=1)  # optimiser steps between resumable checkpoints
    log_interval: int = Field(10, ge=1)  # optimiser steps between train-loss records
    threads: int | None = Field(None, ge=1)  # torch CPU threads per process (None: torch's default)
    # processes making the next step's samples during this one (prefetch.py); 0: inline. On a
    # GPU making a sample takes longer than training on it; on 2 CPU cores workers only compete
    data_workers: int = Field(0, ge=0)
    progress: bool | None = None  # a progress bar per stage (None: when stderr is a terminal)
    cache_dir: str | None = None  # babilab cache (backgrounds, corpora); None: the user cache

    @field_validator("tasks", mode="before")
    @classmethod
    def _tasks(cls, v: Any) -> list[str]:
        return parse_tasks(v if isinstance(v, str) else ",".join(map(str, v)))

    @field_validator("trainable")
    @classmethod
    def _trainable(cls, v: str) -> str:
        if not TRAINABLE.match(v):
            raise ValueError(f"must be all, memory, lora or top:N, got {v!r}")
        return v

    @field_validator("memory")
    @classmethod
    def _memory(cls, v: dict[str, Any]) -> dict[str, Any]:
        if "segment_size" in v:
            raise ValueError("set segment_size at the top level of the recipe")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> TrainConfig:
        if self.architecture == "plain":
            if self.trainable == "memory":
                raise ValueError("trainable: a plain backbone has no memory to train alone")
            if self.memory:
                raise ValueError("memory: a plain backbone takes no memory options")
        if self.architecture == "armt" and self.gradient_checkpointing:
            raise ValueError("gradient_checkpointing: ARMT's layer hooks do not survive it")
        return self


def apply_override(values: dict[str, Any], assignment: str) -> None:
    """Set one `key=value` in a recipe dict; the value is read as YAML, keys may be dotted.

    >>> v = {"stages": [{"segments": 1, "steps": 10}]}
    >>> apply_override(v, "stages.0.steps=5"); apply_override(v, "lr=1e-4"); v["lr"], v["stages"]
    (0.0001, [{'segments': 1, 'steps': 5}])
    """
    import yaml

    key, sep, text = assignment.partition("=")
    if not sep or not key.strip():
        raise BabilabError(f"override {assignment!r}: expected key=value, e.g. stages.0.steps=5")
    value = yaml.safe_load(text) if text.strip() else None
    if isinstance(value, str) and re.fullmatch(r"[-+]?\d+(\.\d*)?[eE][-+]?\d+", value):
        value = float(value)  # YAML 1.1 reads 1e-4 as a string
    node: Any = values
    parts = key.strip().split(".")
    for part in parts[:-1]:
        try:
            node = node[int(part)] if isinstance(node, list) else node.setdefault(part, {})
        except (IndexError, ValueError, AttributeError):
            raise BabilabError(f"override {assignment!r}: no {part!r} under {key!r}") from None
    last = parts[-1]
    if isinstance(node, list):
        if not last.isdigit() or int(last) >= len(node):
            raise BabilabError(f"override {assignment!r}: no item {last!r}")
        node[int(last)] = value
    elif isinstance(node, dict):
        node[last] = value
    else:
        raise BabilabError(f"override {assignment!r}: {key!r} does not name a recipe value")


def make_config(values: dict[str, Any], where: str = "") -> TrainConfig:
    try:
        return TrainConfig(**values)
    except ValueError as e:  # pydantic's ValidationError and our validators' ValueErrors
        raise config_error(e, where) from None


def load_recipe(path: str | Path, overrides: Sequence[str] = (),
                values: Mapping[str, Any] | None = None) -> TrainConfig:
    """A recipe from YAML, then `key=value` overrides (YAML values), then typed `values`."""
    data = read_yaml(Path(path))
    for assignment in overrides:
        apply_override(data, assignment)
    data.update(values or {})
    return make_config(data, f"{path}: ")


def conflicts(recipe: TrainConfig, saved: TrainConfig) -> list[str]:
    """The recipe values that differ from those a run was started with (`key: new != saved`)."""
    a, b = recipe.model_dump(), saved.model_dump()
    return [f"{k}: {a[k]!r} != {b[k]!r}" for k in a if k not in RESUMABLE_CHANGES and a[k] != b[k]]


__all__ = ["ARCHITECTURES", "RESUMABLE_CHANGES", "Stage", "TrainConfig", "apply_override",
           "config_error", "conflicts", "load_recipe", "make_config", "read_yaml"]
