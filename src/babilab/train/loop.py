"""`train(cfg)`: curriculum training of RMT, RMT-R, ARMT or a plain backbone.

nanoGPT's train.py inside one function. It reads top to bottom: check the recipe, set up
accelerate, the model, the data and the optimiser, resume; then for every stage, the loop:
set the learning rate, evaluate (keep the best, stop early), checkpoint, micro-batches with
gradient accumulation, clip, step, log. At the end of a stage its best weights are loaded,
exported for evaluation, and the next stage starts from them with a fresh optimiser, as the
reference's `--model_cpt` did (shared/reference/memory_models.md §2).

Scale-out: run under `accelerate launch` (or torch.distributed.run): data parallel with DDP.
Every process computes a fixed slice of each step's global batch (curriculum.rows_of), and
the loss is weighted by answer tokens over the whole global batch, so N processes compute the
same step as one process with the same global batch. DeepSpeed and FSDP are refused: their
engines own gradient accumulation and shard the state this checkpoint format saves whole,
and a GPT-2-size model with its AdamW state (about 2 GB) fits any GPU, so they would not help.

Outputs (OUT = out_dir):
    OUT/config.json          the recipe (a valid recipe itself: `babilab train OUT/config.json --resume`)
    OUT/metrics.jsonl        one JSON record per logged step (loss: the global batch's mean
                             answer-token loss; tokens: input tokens, memory excluded; elapsed_s:
                             since this process began the stage; skipped: the step was not
                             taken, its loss or gradient was not finite, always logged), per
                             validation, per stage end
    OUT/checkpoints/         the resumable checkpoint (checkpoint.py)
    OUT/stageK-segN/best.safetensors   the stage's best trainable weights (model selection)
    OUT/stageK-segN/model/   the stage's best model, ready for `babilab eval --model rmt:...`
    OUT/model -> the last stage's model/

Validation is greedy exact match computed teacher-forced: one forward pass with labels, and a
sample counts as correct when the argmax at every answer position and at the EOS is the
target token. That is exactly whether greedy decoding would produce the answer and stop, at
the cost of one pass. It never uses test stories or test books (data.py).
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import json
import logging
import math
import os
import shutil
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file
from torch import nn
from tqdm import tqdm

from ..errors import BabilabError
from ..hardware import resolve_dtype
from ..haystack import prepare_background
from ..memory.common import IGNORE_INDEX, decoder_layers, final_norm, memory_class
from ..models.hf import load_model, resolve_model
from .checkpoint import (
    OPTIMIZER_FILE,
    RNG_FILE,
    TRAINABLE_FILE,
    find_checkpoint,
    load_optimizer,
    load_trainable,
    make_dir,
    rng_state,
    save_checkpoint,
    save_tensors,
    set_rng_state,
    trainable_tensors,
    write_json,
)
from .config import RESUMABLE_CHANGES, TrainConfig, conflicts, load_recipe, make_config
from .curriculum import accumulation_steps, rows_of, stage_settings
from .data import NO_PROMPT_PARTS, Sample, SampleMaker, collate, haystack_tokenizer
from .plain import PlainLM
from .schedule import lr_at

log = logging.getLogger("babilab.train")

BEST_FILE = "best.safetensors"
METRICS_FILE = "metrics.jsonl"
MAX_BAD_STEPS = 3  # steps in a row with a loss or gradient that is not finite: the run stops
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


@dataclass(frozen=True)
class TrainResult:
    out_dir: Path
    model_dir: Path  # the last stage's best model
    eval_args: str  # its `babilab eval` options: --model rmt:DIR (plain: hf:DIR and --prompt)
    stages: list[dict[str, Any]]  # per stage: steps run, why it stopped, best accuracy
    finished: bool = True  # False: stopped by `stop_after_s`, a checkpoint to resume from


def train(cfg: TrainConfig | Mapping[str, Any] | str | Path, resume: bool = False,
          stop_after_s: float | None = None) -> TrainResult:
    """Run (or with `resume`, continue) the recipe's curriculum; see the module docstring.

    `stop_after_s`: stop at the first step boundary after this many seconds, with a checkpoint
    there, so that a long campaign runs in pieces that each fit a session (`--resume` goes on
    from exactly that step).
    """
    began = time.perf_counter()
    cfg = _as_config(cfg)
    out = Path(cfg.out_dir)
    checkpoint = find_checkpoint(out / "checkpoints")

    # --- the recipe: resume takes the run's own config; a conflicting value is an error ----
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
    memory_config = architecture_config(cfg)  # unknown memory options fail here
    stages = stage_settings(cfg)
    if cfg.dtype == "float16" and (cfg.device == "cpu" or not torch.cuda.is_available()):
        raise BabilabError("dtype float16 needs a GPU; on a CPU use bfloat16 or float32")
    if cfg.threads:
        torch.set_num_threads(cfg.threads)

    # --- accelerate: one process, or DDP over many; batch arithmetic checked per stage -----
    accelerator = _accelerator(cfg)
    world, rank, device = accelerator.num_processes, accelerator.process_index, accelerator.device
    is_main = accelerator.is_main_process
    for stage in stages:
        accumulation_steps(stage, world)  # impossible arithmetic fails before anything loads

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

    # --- data: train-split background, samples made on the fly (data.py) -------------------
    show = cfg.progress if cfg.progress is not None else sys.stderr.isatty()
    with accelerator.main_process_first():  # the first process prepares, the others load
        background = prepare_background(cfg.corpus, haystack_tokenizer(tokenizer, cfg.backbone),
                                        split="train", cache_dir=cfg.cache_dir,
                                        progress=is_main and show)
    if not background.meta.get("disjoint_splits"):
        raise BabilabError(f"corpus {cfg.corpus}: with a single book the train and test splits "
                           f"share it; training needs a corpus of two books or more")
    maker = SampleMaker(tokenizer, background,
                        layout="plain" if cfg.architecture == "plain" else "memory",
                        segment_size=cfg.segment_size, tasks=cfg.tasks, seed=cfg.seed,
                        eos_id=eos_id, story_pool=cfg.story_pool,
                        questions_per_sample=cfg.questions_per_sample,
                        facts_before_last=cfg.facts_before_last)

    # --- optimiser: AdamW, decay on matrices and embeddings only (as nanoGPT) ---------------
    optimizer = torch.optim.AdamW(
        [{"params": [p for p in params if p.dim() >= 2], "weight_decay": cfg.weight_decay},
         {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}],
        lr=stages[0].lr, betas=(cfg.beta1, cfg.beta2))
    wrapped = accelerator.prepare(model)  # DDP when there are several processes
    # Mixed precision by hand, as nanoGPT: autocast around forward passes, a gradient scaler
    # for float16 only (bfloat16 has float32's range).
    dtype = resolve_dtype(cfg.dtype, device)
    autocast = AUTOCAST[dtype]
    scaler = torch.amp.GradScaler(device.type, enabled=dtype == "float16")

    # --- resume: weights, optimiser, RNG, position; the data needs nothing more ------------
    run = RunState(world_size=world)
    if resume:
        load_trainable(model, checkpoint.tensors(TRAINABLE_FILE), str(checkpoint.path))
        load_optimizer(optimizer, checkpoint.tensors(OPTIMIZER_FILE))
        fields = {f.name for f in dataclasses.fields(RunState)}
        run = RunState(**{k: v for k, v in checkpoint.state.items() if k in fields})
        if run.world_size == world:
            set_rng_state({k: v[rank] for k, v in checkpoint.tensors(RNG_FILE).items()})
        else:
            log.warning("resuming %d process(es) as %d: same data, but dropout draws differ, so "
                        "the run is not bit-exact", run.world_size, world)
            torch.manual_seed(cfg.seed + 1_000_003 * rank + run.global_step)
        run.world_size = world
        if run.scaler and scaler.is_enabled():
            scaler.load_state_dict(run.scaler)
        log.info("resumed %s at stage %d step %d (run step %d)", checkpoint.path, run.stage,
                 run.step, run.global_step)
    else:
        torch.manual_seed(cfg.seed + 1_000_003 * rank)  # dropout draws differ between processes
        if is_main:
            out.mkdir(parents=True, exist_ok=True)
            write_json(out / "config.json", cfg.model_dump())
    metrics = MetricsLog(out / METRICS_FILE, is_main, truncate_at=run.metrics_offset)
    saved_at = run.global_step if resume else -1
    first_step = run.global_step

    n_all = sum(p.numel() for p in model.parameters())
    log.info("%s on %s: %s parameters, %s trainable (%s); %d process(es) on %s, %s", cfg.architecture,
             cfg.backbone, f"{n_all:,}", f"{sum(p.numel() for p in params):,}", cfg.trainable, world,
             device, dtype)

    def checkpoint_now() -> None:
        """Every process hands in its RNG state; the main process writes the folder."""
        run.metrics_offset = metrics.offset()
        run.scaler = scaler.state_dict() if scaler.is_enabled() else None
        rng = {k: accelerator.gather(v.to(device)[None]).cpu() for k, v in rng_state().items()}
        if is_main:
            save_checkpoint(out / "checkpoints", model, optimizer, rng, dataclasses.asdict(run),
                            cfg.model_dump())
        accelerator.wait_for_everyone()

    for stage in stages[run.stage:]:
        stage_dir = out / stage.name
        if is_main:
            stage_dir.mkdir(parents=True, exist_ok=True)
        accum = accumulation_steps(stage, world)
        rows = rows_of(rank, world, stage.batch_size)
        valid = [maker.valid_sample(i, stage.segments) for i in range(rank, cfg.valid_samples, world)]
        tokens_per_step = stage.batch_size * (stage.segments * cfg.segment_size + 32)
        log.info("%s: up to %d steps of %d samples (%d per pass x %d accumulation x %d "
                 "process(es)), about %s tokens per step, lr %.2g, %d validation samples",
                 stage.name, stage.steps, stage.batch_size, stage.micro_batch_size, accum, world,
                 f"{tokens_per_step:,}", stage.lr, cfg.valid_samples)
        bar = tqdm(total=stage.steps, initial=run.step, desc=stage.name, unit="step",
                   disable=not (is_main and show), dynamic_ncols=True)
        started = time.perf_counter()
        stopped = None
        while True:
            # 1) the learning rate: a pure function of the step (schedule.py)
            lr = lr_at(run.step, stage.lr, stage.warmup_steps, stage.decay_steps)
            for group in optimizer.param_groups:
                group["lr"] = lr

            # 2) evaluate; keep the best weights; stop the stage at the target or patience
            last = run.step == stage.steps
            if (run.step % stage.eval_interval == 0 or last) and \
                    run.last_eval_global_step != run.global_step:
                accuracy, valid_loss = evaluate(model, valid, cfg.eval_batch_size, accelerator,
                                                autocast)
                run.last_eval_global_step = run.global_step
                better = (accuracy, -valid_loss) > (run.best_accuracy, -run.best_loss)
                if better:
                    run.best_accuracy, run.best_loss, run.best_step = accuracy, valid_loss, run.step
                    run.evals_since_best = 0
                    if is_main:
                        save_tensors(stage_dir / BEST_FILE, trainable_tensors(model))
                else:
                    run.evals_since_best += 1
                metrics.write(kind="valid", stage=stage.index, segments=stage.segments,
                              step=run.step, global_step=run.global_step, accuracy=accuracy,
                              loss=valid_loss, best=better)
                bar.set_postfix(valid_acc=f"{accuracy:.2f}")
                if stage.target_accuracy is not None and accuracy >= stage.target_accuracy:
                    stopped = "target"
                elif cfg.patience is not None and run.evals_since_best >= cfg.patience:
                    stopped = "patience"
            if stopped is None and last:
                stopped = "steps"
            if stopped:
                break

            # 3) a resumable checkpoint (the position is: this step has not run yet)
            # (after one step at least, so that every piece of a campaign moves it on)
            out_of_time = (stop_after_s is not None and run.global_step > first_step
                           and time.perf_counter() - began > stop_after_s)
            if (run.step % cfg.checkpoint_interval == 0 or out_of_time) \
                    and run.global_step != saved_at:
                checkpoint_now()
                saved_at = run.global_step
            if out_of_time:
                bar.close()
                metrics.close()
                log.info("stopped after %.0f s at %s step %d (run step %d): continue with "
                         "--resume", time.perf_counter() - began, stage.name, run.step,
                         run.global_step)
                return TrainResult(out, out / "model", "", run.stages_done, finished=False)

            # 4) forward and backward over this process's rows, in micro-batches
            samples = [maker.train_sample(stage.index, run.step, row, stage.segments,
                                          cfg.vary_segments, cfg.full_length_ratio)
                       for row in rows]
            batches = [collate(samples[i:i + stage.micro_batch_size], device)
                       for i in range(0, len(samples), stage.micro_batch_size)]
            counts = torch.tensor([sum(b.n_targets for b in batches),
                                   sum(int(b.attention_mask.sum()) for b in batches)], device=device)
            n_targets, n_tokens = accelerator.reduce(counts, "sum").tolist()
            loss_sum = torch.zeros((), device=device)
            for i, batch in enumerate(batches):
                # DDP averages gradients over processes only on the last micro-batch
                sync = i == len(batches) - 1
                with contextlib.nullcontext() if sync else accelerator.no_sync(wrapped):
                    with torch.autocast(device.type, autocast, enabled=autocast is not None):
                        result = wrapped(batch.input_ids, batch.attention_mask, batch.labels)
                    # Each micro-batch's mean is re-weighted by its share of the global batch's
                    # answer tokens (x world, since DDP averages), so the step's gradient is the
                    # mean over all of them however the rows are split.
                    weight = batch.n_targets * world / n_targets
                    accelerator.backward(scaler.scale(result.loss * weight))
                loss_sum += result.loss.detach().float() * batch.n_targets
            loss = float(accelerator.reduce(loss_sum, "sum")) / n_targets

            # 5) clip, step. A loss or gradient that is not finite would turn every weight into
            # NaN: that step is skipped (float16's scaler skips overflowed gradients itself and
            # lowers its scale), and a run that keeps producing them stops.
            scaler.unscale_(optimizer)
            grad_norm = float(torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip or float("inf")))
            bad = not math.isfinite(loss) or (not scaler.is_enabled() and not math.isfinite(grad_norm))
            if not bad:
                scaler.step(optimizer)
            scaler.update()
            optimizer.zero_grad(set_to_none=True)
            run.bad_steps = run.bad_steps + 1 if bad else 0
            run.step += 1
            run.global_step += 1

            # 6) log
            bar.update(1)
            bar.set_postfix(loss=f"{loss:.3f}")
            if run.step % cfg.log_interval == 0 or run.step == 1 or bad:
                metrics.write(kind="train", stage=stage.index, segments=stage.segments,
                              step=run.step, global_step=run.global_step, loss=loss, lr=lr,
                              grad_norm=grad_norm, tokens=int(n_tokens), targets=int(n_targets),
                              elapsed_s=round(time.perf_counter() - started, 3),
                              **({"skipped": "not finite"} if bad else {}))
            if run.bad_steps >= MAX_BAD_STEPS:
                raise BabilabError(
                    f"training diverged: the loss or the gradients were not finite for "
                    f"{run.bad_steps} steps in a row, up to {stage.name} step {run.step} (all "
                    f"skipped, see {METRICS_FILE}); start a new run with an lr below {stage.lr:g}")
        bar.close()

        # --- end of stage: its best weights go on, and are exported for evaluation ---------
        accelerator.wait_for_everyone()  # the main process wrote best.safetensors
        load_trainable(model, load_file(stage_dir / BEST_FILE), str(stage_dir / BEST_FILE))
        if is_main:
            export_model(model, tokenizer, cfg, stage_dir / "model")
        summary = {"stage": stage.index, "segments": stage.segments, "steps": run.step,
                   "stopped": stopped, "best_accuracy": run.best_accuracy,
                   "best_loss": run.best_loss, "best_step": run.best_step,
                   "model": str(stage_dir / "model")}
        run.stages_done.append(summary)
        metrics.write(kind="stage", **summary)
        log.info("%s: stopped (%s) after %d steps; best validation accuracy %.3f at step %d",
                 stage.name, stopped, run.step, run.best_accuracy, run.best_step)
        fields = ("stages_done", "global_step", "world_size", "metrics_offset", "scaler")
        run = RunState(stage=stage.index + 1, **{k: getattr(run, k) for k in fields})
        optimizer.state.clear()  # each stage starts a fresh AdamW, like a new reference run
        checkpoint_now()
        saved_at = run.global_step

    model_dir = out / "model"
    if is_main:
        _link(model_dir, f"{stages[-1].name}/model")
    accelerator.wait_for_everyone()
    metrics.close()
    if cfg.architecture == "plain":  # data.py's plain layout is this prompt configuration
        eval_args = f"--model hf:{model_dir} --prompt {NO_PROMPT_PARTS.name}"
    else:
        eval_args = f"--model {cfg.architecture}:{model_dir}"
    return TrainResult(out, model_dir, eval_args, run.stages_done)


# --------------------------------------------------------------------------------------------
# Pieces the loop calls


@torch.no_grad()
def evaluate(model: nn.Module, samples: Sequence[Sample], batch_size: int, accelerator: Any,
             autocast: torch.dtype | None = None) -> tuple[float, float]:
    """(greedy exact-match accuracy, mean answer-token loss) over every process's samples.

    Calls the unwrapped model: each process has its own number of samples, and DDP's forward
    would wait for the others.
    """
    model.eval()
    device = accelerator.device
    correct, loss_sum, n_targets = 0, 0.0, 0
    for i in range(0, len(samples), batch_size):
        batch = collate(samples[i:i + batch_size], device)
        with torch.autocast(device.type, autocast, enabled=autocast is not None):
            result = model(batch.input_ids, batch.attention_mask, batch.labels)
        targets = batch.labels[:, 1:]  # (B, L-1): position t predicts t + 1
        keep = targets != IGNORE_INDEX
        hits = result.logits.argmax(-1) == targets[keep]  # (N,) in row-major order
        correct += sum(bool(h.all()) for h in torch.split(hits, keep.sum(1).tolist()))
        loss_sum += float(result.loss) * int(keep.sum())
        n_targets += int(keep.sum())
    totals = torch.tensor([correct, len(samples), loss_sum, n_targets], dtype=torch.float64,
                          device=device)
    correct, n, loss_sum, n_targets = accelerator.reduce(totals, "sum").tolist()
    model.train()
    return correct / max(n, 1), loss_sum / max(n_targets, 1)


def build_model(cfg: TrainConfig, backbone: nn.Module, memory_config: Any) -> nn.Module:
    """The trainee around a loaded backbone, with the recipe's trainable parameters."""
    backbone.config.use_cache = False
    if cfg.gradient_checkpointing:
        # non-reentrant: works when the inputs (memory embeddings) need grad and the weights not.
        # transformers 5 renamed the method (the old name warns); 4.x has only the old one.
        kwargs = {"use_reentrant": False}
        if hasattr(backbone, "activation_checkpointing_enable"):
            backbone.activation_checkpointing_enable(kwargs)
        else:
            backbone.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)
    if cfg.trainable == "lora":
        from peft import LoraConfig, inject_adapter_in_model

        lora = LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                          target_modules=cfg.lora_target_modules,
                          fan_in_fan_out=backbone.config.model_type == "gpt2")  # GPT-2's Conv1D
        try:
            backbone = inject_adapter_in_model(lora, backbone)  # in place: still a HF model
        except ValueError as e:
            raise BabilabError(f"lora: {str(e).splitlines()[0]}") from None
    if cfg.architecture == "plain":
        model: nn.Module = PlainLM(backbone)
    else:
        model = memory_class(cfg.architecture)(backbone, memory_config)
    model.requires_grad_(False)
    wrapper = [p for n, p in model.named_parameters() if not n.startswith("backbone.")]
    if cfg.trainable == "all":
        chosen = list(model.parameters())
    elif cfg.trainable == "memory":
        chosen = wrapper
    elif cfg.trainable == "lora":
        chosen = wrapper + [p for n, p in model.named_parameters() if "lora_" in n]
    else:  # top:N: the last N decoder layers and the final norm (the LM head stays: it is tied)
        n = int(cfg.trainable.split(":")[1])
        layers = decoder_layers(backbone)
        if n > len(layers):
            raise BabilabError(f"trainable {cfg.trainable}: the backbone has {len(layers)} layers")
        chosen = wrapper + [p for layer in layers[-n:] for p in layer.parameters()]
        chosen += list(final_norm(backbone).parameters())
    for p in chosen:
        p.requires_grad_(True)
    if not any(p.requires_grad for p in model.parameters()):
        raise BabilabError(f"trainable {cfg.trainable}: nothing to train in this model")
    return model.train()


def export_model(model: nn.Module, tokenizer: Any, cfg: TrainConfig, directory: Path) -> None:
    """An evaluation-ready folder, replaced atomically.

    Memory models: `MemoryModel.save` (with the backbone unless only the memory trained and
    the backbone is a local folder) and the tokenizer, which `babilab eval --model
    rmt:DIR` loads (models/memory.py). Plain: a transformers folder for `--model hf:DIR`.
    A memory model whose backbone did not train (`memory`) or trained through LoRA adapters
    (`lora`) is saved as its trained parts only (memory parameters, adapters) on top of the
    backbone the recipe names (memory/adapters.py): a few MB instead of the backbone's copy.
    A plain backbone with LoRA is merged into a copy first, so it loads without peft.
    """
    tmp = make_dir(directory.parent, f".{directory.name}.tmp-")
    try:
        if cfg.architecture == "plain":
            plain = merge_lora(copy.deepcopy(model)) if cfg.trainable == "lora" else model
            plain.backbone.save_pretrained(tmp)
        else:
            model.save(tmp, save_backbone=cfg.trainable not in ("memory", "lora"),
                       backbone_source=backbone_source(cfg.backbone))
        tokenizer.save_pretrained(tmp)
        old = directory.with_name(f".{directory.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        if directory.exists():
            os.replace(directory, old)
        os.replace(tmp, directory)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def backbone_source(backbone: str) -> str:
    """The recipe's backbone as a checkpoint records it: local paths made absolute."""
    path = Path(backbone).expanduser()
    return str(path.resolve()) if path.exists() else backbone


def init_from(model: nn.Module, cfg: TrainConfig) -> None:
    """Start from the trained parts of a saved memory model (`init`: memory parameters and
    LoRA adapters, as export_model or the campaign ships them), built with the same recipe."""
    from ..memory.adapters import load_lora_tensors
    from ..memory.common import WEIGHTS_FILE, read_meta

    directory = Path(cfg.init).expanduser()
    meta = read_meta(directory)
    if cfg.architecture == "plain" or meta["architecture"] != cfg.architecture:
        raise BabilabError(f"init: {directory} holds a {meta['architecture']} model, the "
                           f"recipe trains {cfg.architecture}")
    ours = dataclasses.asdict(architecture_config(cfg))
    if meta["config"] != ours:
        diff = sorted(k for k in ours if meta["config"].get(k) != ours[k])
        raise BabilabError(f"init: {directory} was trained with other memory settings "
                           f"({', '.join(diff)}); use the recipe it was trained with")
    held = ("a whole backbone" if meta.get("backbone_saved") else
            "LoRA adapters" if "lora" in meta else "memory parameters only")
    if meta.get("backbone_saved") or ("lora" in meta) != (cfg.trainable == "lora"):
        raise BabilabError(f"init: {directory} holds {held}, the recipe trains "
                           f"{cfg.trainable}: start from parts trained the same way")
    tensors = load_file(directory / WEIGHTS_FILE)
    expected = model.memory_state_dict()
    if set(tensors) != set(expected):
        raise BabilabError(f"init: {directory / WEIGHTS_FILE} does not fit this model")
    with torch.no_grad():
        for name, value in tensors.items():
            expected[name].copy_(value)
    if "lora" in meta:
        load_lora_tensors(model.backbone, load_file(directory / meta["lora"]["file"]),
                          str(directory))
    log.info("initialised the trained parts from %s", directory)


def merge_lora(model: nn.Module) -> nn.Module:
    """Fold every LoRA adapter into its base layer and put the base layer back, in place."""
    from peft.tuners.lora import LoraLayer

    for name, module in list(model.named_modules()):
        if isinstance(module, LoraLayer):
            module.merge()
            parent, _, child = name.rpartition(".")
            setattr(model.get_submodule(parent), child, module.get_base_layer())
    return model


class MetricsLog:
    """metrics.jsonl on the main process (and TensorBoard when it is installed).

    On resume the file is cut back to its size at the checkpoint, so the steps a killed run
    logged after its last checkpoint are not there twice.
    """

    def __init__(self, path: Path, active: bool, truncate_at: int = 0):
        self.path, self.active, self.file, self.tb = path, active, None, None
        if not active:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        mode = "r+" if path.exists() and truncate_at else "w"
        self.file = open(path, mode, encoding="utf-8")  # noqa: SIM115 (closed in close())
        self.file.seek(truncate_at)
        self.file.truncate()
        with contextlib.suppress(ImportError):
            from torch.utils.tensorboard import SummaryWriter

            self.tb = SummaryWriter(str(path.parent / "tensorboard"))

    def write(self, **record: Any) -> None:
        if self.file is None:
            return
        self.file.write(json.dumps(record) + "\n")
        self.file.flush()
        if self.tb is not None:
            for key in ("loss", "accuracy", "lr", "grad_norm"):
                if isinstance(record.get(key), float):
                    self.tb.add_scalar(f"{record['kind']}/{key}", record[key],
                                       record.get("global_step", 0))

    def offset(self) -> int:
        return self.file.tell() if self.file is not None else 0

    def close(self) -> None:
        if self.file is not None:
            self.file.close()
        if self.tb is not None:
            self.tb.close()


def _as_config(cfg: TrainConfig | Mapping[str, Any] | str | Path) -> TrainConfig:
    if isinstance(cfg, TrainConfig):
        return cfg
    if isinstance(cfg, str | Path):
        return load_recipe(cfg)
    return make_config(dict(cfg))


def architecture_config(cfg: TrainConfig) -> Any:
    """The architecture's config dataclass from the recipe's `memory` options."""
    if cfg.architecture == "plain":
        return None
    config_class = memory_class(cfg.architecture).config_class
    names = {f.name for f in dataclasses.fields(config_class)} - {"segment_size"}
    unknown = sorted(set(cfg.memory) - names)
    if unknown:
        raise BabilabError(f"memory: unknown option {unknown[0]!r} for {cfg.architecture}; "
                           f"options are {', '.join(sorted(names))}")
    return config_class(segment_size=cfg.segment_size, **cfg.memory)


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


def _link(link: Path, target: str) -> None:
    """Point `link` at `target` (relative), replacing an older link atomically."""
    tmp = link.with_name(f".{link.name}.tmp-{os.getpid()}")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    tmp.symlink_to(target)
    if link.exists() and not link.is_symlink():
        shutil.rmtree(link)
    os.replace(tmp, link)


__all__ = ["RunState", "TrainResult", "architecture_config", "backbone_source", "build_model",
           "evaluate", "export_model", "init_from", "merge_lora", "train"]
