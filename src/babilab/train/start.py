"""How a call of `train` starts: the recipe, accelerate, the model, the optimiser, and the
run's position (new, or resumed from its checkpoint).

`train` (loop.py) calls these in order: `read_recipe`, `set_up`, then `start_run` or
`resume_run`. A resumed run takes its recipe, weights, optimiser state, RNG states and
position from the checkpoint; the data needs nothing more (a sample is a function of its
position, data.py), so the run goes on exactly as if it had never stopped.

What it does not do: the steps (loop.py), the model's own parts (trainee.py), the files of
a checkpoint (checkpoint.py).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..backbone import load_model, resolve_model
from ..errors import BabilabError
from ..hardware import resolve_dtype
from .checkpoint import (
    OPTIMIZER_FILE,
    RNG_FILE,
    TRAINABLE_FILE,
    Checkpoint,
    find_checkpoint,
    load_optimizer,
    load_trainable,
    set_rng_state,
    write_json,
)
from .config import RESUMABLE_CHANGES, TrainConfig, conflicts, load_recipe, make_config
from .curriculum import StageSettings, accumulation_steps, stage_settings
from .trainee import architecture_config, build_model, init_from

log = logging.getLogger("babilab.train")

AUTOCAST = {"float32": None, "bfloat16": torch.bfloat16, "float16": torch.float16}


@dataclass
class RunState:
    """Where a run is and what it found so far: all of it goes into every checkpoint."""

    stage: int = 0  # stage index; len(stages) once the run is done
    step: int = 0  # optimiser steps done in this stage: the data position with `stage`
    global_step: int = 0  # optimiser steps done in the whole run
    best_accuracy: float = -1.0  # the stage's best validation accuracy so far
    best_loss: float = float("inf")  # its validation loss (breaks accuracy ties)
    best_step: int = -1
    evals_since_best: int = 0
    last_eval_global_step: int = -1  # skip re-evaluating the step a checkpoint was taken at
    metrics_offset: int = 0  # bytes of metrics.jsonl written when the checkpoint was taken
    world_size: int = 1
    stages_done: list[dict[str, Any]] = field(default_factory=list)
    scaler: dict[str, Any] | None = None  # fp16 GradScaler state
    bad_steps: int = 0  # steps in a row skipped for a loss or gradient that was not finite


@dataclass
class Setup:
    """What one call of `train` works with (`set_up`); none of it is in a checkpoint."""

    cfg: TrainConfig
    stages: list[StageSettings]
    accelerator: Any
    tokenizer: Any
    eos_id: int  # ends every answer in the samples
    model: nn.Module  # the trainee (trainee.py); evaluation and checkpoints use it
    wrapped: nn.Module  # the same under DDP when there are several processes: steps use it
    params: list[nn.Parameter]  # the parameters that train
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler  # float16 only (bfloat16 has float32's range)
    dtype: str  # resolved: float32, bfloat16 or float16

    @property
    def show(self) -> bool:
        """Progress bars: as asked, else on a terminal (the main process only draws them)."""
        return self.cfg.progress if self.cfg.progress is not None else sys.stderr.isatty()

    @property
    def out(self) -> Path:
        return Path(self.cfg.out_dir)

    @property
    def autocast(self) -> torch.dtype | None:
        return AUTOCAST[self.dtype]

    @property
    def world(self) -> int:
        return self.accelerator.num_processes

    @property
    def rank(self) -> int:
        return self.accelerator.process_index

    @property
    def device(self) -> torch.device:
        return self.accelerator.device

    @property
    def is_main(self) -> bool:
        return self.accelerator.is_main_process


def read_recipe(cfg: TrainConfig | Mapping[str, Any] | str | Path, resume: bool
                ) -> tuple[TrainConfig, Checkpoint | None]:
    """The recipe to run and the checkpoint to resume: with `resume`, the run's own recipe
    (the infrastructure values may change, any other conflicting value is an error)."""
    cfg = _as_config(cfg)
    out = Path(cfg.out_dir)
    checkpoint = find_checkpoint(out / "checkpoints")
    if resume:
        if checkpoint is None:
            raise BabilabError(f"--resume: {out} holds no checkpoint to continue from")
        saved = make_config(checkpoint.config, f"{checkpoint.path / 'config.json'}: ")
        diff = conflicts(cfg, saved)
        if diff:
            more = f" (and {len(diff) - 1} more)" if len(diff) > 1 else ""
            raise BabilabError(f"--resume: the recipe differs from the run in {out}: {diff[0]}"
                               f"{more}; resume with the recipe it started with "
                               f"({out / 'config.json'})")
        cfg = saved.model_copy(update={k: getattr(cfg, k) for k in RESUMABLE_CHANGES})
    elif checkpoint is not None:
        raise BabilabError(f"{out} already holds a run ({checkpoint.path.name}); pass --resume "
                           f"to continue it, or choose another out_dir")
    return cfg, checkpoint


def set_up(cfg: TrainConfig, resume: bool) -> Setup:
    """Accelerate, the model and the optimiser. Every check that needs no model comes first,
    so that a bad recipe fails in a second; each random draw stays where it always was."""
    memory_config = architecture_config(cfg)  # unknown memory options fail here
    stages = stage_settings(cfg)
    if cfg.dtype == "float16" and (cfg.device == "cpu" or not torch.cuda.is_available()):
        raise BabilabError("dtype float16 needs a GPU; on a CPU use bfloat16 or float32")
    if cfg.threads:
        torch.set_num_threads(cfg.threads)

    # --- accelerate: one process, or DDP over many; batch arithmetic checked per stage -----
    accelerator = _accelerator(cfg)
    for stage in stages:
        accumulation_steps(stage, accelerator.num_processes)  # fails before anything loads

    # --- the model: backbone, optional LoRA and checkpointing, the memory wrapper ----------
    torch.manual_seed(cfg.seed)  # memory and LoRA initialisation: the same on every process
    source, content_id, gguf = resolve_model(cfg.backbone)  # a missing backbone fails here
    tokenizer, backbone = load_model(source, gguf, content_id, "float32")  # master weights
    eos_id = _eos_id(tokenizer, backbone)
    model = build_model(cfg, backbone, memory_config)
    if cfg.init and not resume:  # a resumed run's checkpoint holds newer weights
        init_from(model, cfg)
    if cfg.architecture == "plain":
        window = model.window
        longest = max(s.segments for s in stages) * cfg.segment_size
        if window is not None and longest >= window:
            raise BabilabError(f"the longest stage has {longest} context tokens, but the plain "
                               f"backbone's window is {window}: a plain model must see the "
                               f"whole sample; drop the longer stages")
    params = [p for p in model.parameters() if p.requires_grad]

    # --- optimiser: AdamW, decay on matrices and embeddings only (as nanoGPT) ---------------
    optimizer = torch.optim.AdamW(
        [{"params": [p for p in params if p.dim() >= 2], "weight_decay": cfg.weight_decay},
         {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}],
        lr=stages[0].lr, betas=(cfg.beta1, cfg.beta2))
    wrapped = accelerator.prepare(model)  # DDP when there are several processes
    # Mixed precision by hand, as nanoGPT: autocast around forward passes, a gradient scaler
    # for float16 only.
    dtype = resolve_dtype(cfg.dtype, accelerator.device)
    scaler = torch.amp.GradScaler(accelerator.device.type, enabled=dtype == "float16")
    return Setup(cfg, stages, accelerator, tokenizer, eos_id, model, wrapped, params, optimizer,
                 scaler, dtype)


def start_run(s: Setup) -> RunState:
    """A new run: its folder and recipe, and this process's dropout seed."""
    torch.manual_seed(s.cfg.seed + 1_000_003 * s.rank)  # dropout draws differ between processes
    if s.is_main:
        s.out.mkdir(parents=True, exist_ok=True)
        write_json(s.out / "config.json", s.cfg.model_dump())
    return RunState(world_size=s.world)


def resume_run(s: Setup, checkpoint: Checkpoint) -> RunState:
    """Weights, optimiser, RNG and position from the checkpoint; the data needs nothing more."""
    load_trainable(s.model, checkpoint.tensors(TRAINABLE_FILE), str(checkpoint.path))
    load_optimizer(s.optimizer, checkpoint.tensors(OPTIMIZER_FILE))
    fields = {f.name for f in dataclasses.fields(RunState)}
    run = RunState(**{k: v for k, v in checkpoint.state.items() if k in fields})
    if run.world_size == s.world:
        set_rng_state({k: v[s.rank] for k, v in checkpoint.tensors(RNG_FILE).items()})
    else:
        log.warning("resuming %d process(es) as %d: same data, but dropout draws differ, so "
                    "the run is not bit-exact", run.world_size, s.world)
        torch.manual_seed(s.cfg.seed + 1_000_003 * s.rank + run.global_step)
    run.world_size = s.world
    if run.scaler and s.scaler.is_enabled():
        s.scaler.load_state_dict(run.scaler)
    log.info("resumed %s at stage %d step %d (run step %d)", checkpoint.path, run.stage,
             run.step, run.global_step)
    return run


def _as_config(cfg: TrainConfig | Mapping[str, Any] | str | Path) -> TrainConfig:
    if isinstance(cfg, TrainConfig):
        return cfg
    if isinstance(cfg, str | Path):
        return load_recipe(cfg)
    return make_config(dict(cfg))


def _accelerator(cfg: TrainConfig) -> Any:
    from accelerate import Accelerator, DistributedType
    from accelerate.utils import DistributedDataParallelKwargs

    # find_unused_parameters: a 1-segment row never reaches RMT-R's retrieval block, and rows
    # of different lengths on different processes use different parameters.
    # cpu=True also when there is no GPU: only then does accelerate join a gloo process group
    # under torch.distributed.run (otherwise each process would train alone).
    # mixed_precision="no": the loop autocasts itself, so train() can run again in the same
    # process with another dtype (accelerate's mixed precision is process-wide state).
    accelerator = Accelerator(
        cpu=cfg.device == "cpu" or not torch.cuda.is_available(), mixed_precision="no",
        kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=True)])
    if accelerator.distributed_type in (DistributedType.DEEPSPEED, DistributedType.FSDP):
        raise BabilabError(f"{accelerator.distributed_type.value} is not supported: launch with "
                           f"plain data parallel (accelerate launch --multi_gpu); see train/loop.py")
    launched = int(os.environ.get("WORLD_SIZE", "1"))
    if accelerator.num_processes != launched:
        raise BabilabError(f"launched as {launched} processes, but accelerate joined "
                           f"{accelerator.num_processes}: they would train alone into one out_dir")
    return accelerator


def _eos_id(tokenizer: Any, backbone: nn.Module) -> int:
    eos = tokenizer.eos_token_id
    if eos is None:
        eos = backbone.config.eos_token_id
    if isinstance(eos, list):
        eos = eos[0] if eos else None
    if eos is None:
        raise BabilabError("the backbone has no end-of-sequence token to end answers with")
    return int(eos)


__all__ = ["AUTOCAST", "RunState", "Setup", "read_recipe", "resume_run", "set_up", "start_run"]
