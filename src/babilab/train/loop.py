"""`train(cfg)`: curriculum training of RMT, RMT-R, ARMT or a plain backbone.

nanoGPT's train.py, as named steps that `train` calls in order: read the recipe, set up
accelerate, the model and the optimiser, start or resume the run (those three in start.py),
make the data; then every stage runs its loop (`train_stage`): set the learning rate,
validate (keep the best, stop early), checkpoint, micro-batches with gradient accumulation,
clip, step, log. At the end of a stage (`end_stage`) its best weights are loaded, exported for
evaluation, and the next stage starts from them with a fresh optimiser, as the reference's
`--model_cpt` did (github.com/booydar/recurrent-memory-transformer). The model itself (building, LoRA,
`init`, export) is trainee.py's.

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
import dataclasses
import json
import logging
import math
import os
import shutil
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file
from torch import nn
from tqdm import tqdm

from ..errors import BabilabError
from ..haystack import prepare_background
from ..memory.layout import IGNORE_INDEX
from .checkpoint import load_trainable, rng_state, save_checkpoint, save_tensors, trainable_tensors
from .config import TrainConfig
from .curriculum import StageSettings, accumulation_steps, rows_of
from .data import NO_PROMPT_PARTS, Sample, SampleMaker, collate, haystack_tokenizer
from .prefetch import Prefetcher
from .schedule import lr_at
from .start import AUTOCAST, RunState, Setup, read_recipe, resume_run, set_up, start_run
from .trainee import (
    architecture_config,
    backbone_source,
    build_model,
    export_model,
    init_from,
    merge_lora,
)

log = logging.getLogger("babilab.train")

BEST_FILE = "best.safetensors"
METRICS_FILE = "metrics.jsonl"
MAX_BAD_STEPS = 3  # steps in a row with a loss or gradient that is not finite: the run stops


@dataclass(frozen=True)
class TrainResult:
    out_dir: Path
    model_dir: Path  # the last stage's best model
    eval_args: str  # its `babilab eval` options: --model rmt:DIR (plain: hf:DIR and --prompt)
    stages: list[dict[str, Any]]  # per stage: steps run, why it stopped, best accuracy
    finished: bool = True  # False: stopped by `stop_after_s`, a checkpoint to resume from


@dataclass
class Piece:
    """This call's part of the run (a long campaign runs in pieces): its clock, its last save."""

    began: float  # time.perf_counter() when `train` was called
    stop_after_s: float | None
    first_step: int = 0  # run.global_step when this piece began
    saved_at: int = -1  # run.global_step of the latest checkpoint; -1 before any

    def out_of_time(self, run: RunState) -> bool:
        """Past `stop_after_s`, after one step at least (so that every piece moves the run on)."""
        return (self.stop_after_s is not None and run.global_step > self.first_step
                and time.perf_counter() - self.began > self.stop_after_s)


def train(cfg: TrainConfig | Mapping[str, Any] | str | Path, resume: bool = False,
          stop_after_s: float | None = None) -> TrainResult:
    """Run (or with `resume`, continue) the recipe's curriculum; see the module docstring.

    `stop_after_s`: stop at the first step boundary after this many seconds, with a checkpoint
    there, so that a long campaign runs in pieces that each fit a session (`--resume` goes on
    from exactly that step).
    """
    piece = Piece(time.perf_counter(), stop_after_s)
    cfg, checkpoint = read_recipe(cfg, resume)  # the recipe (start.py, as set_up and *_run)
    s = set_up(cfg, resume)  # accelerate, the model, the optimiser
    maker = sample_maker(s)  # the data
    run = resume_run(s, checkpoint) if resume else start_run(s)  # weights, RNG, position
    metrics = MetricsLog(s.out / METRICS_FILE, s.is_main, truncate_at=run.metrics_offset)
    piece.first_step = run.global_step
    piece.saved_at = run.global_step if resume else -1  # the checkpoint it resumed from
    n_all = sum(p.numel() for p in s.model.parameters())
    log.info("%s on %s: %s parameters, %s trainable (%s); %d process(es) on %s, %s",
             cfg.architecture, cfg.backbone, f"{n_all:,}", f"{sum(p.numel() for p in s.params):,}",
             cfg.trainable, s.world, s.device, s.dtype)

    with Prefetcher(maker, cfg.data_workers) as samples:
        for stage in s.stages[run.stage:]:
            stopped = train_stage(s, samples, run, stage, metrics, piece)
            if stopped is None:  # out of time, right after a checkpoint
                return TrainResult(s.out, s.out / "model", "", run.stages_done, finished=False)
            run = end_stage(s, run, stage, stopped, metrics)
            take_checkpoint(s, run, metrics)
            piece.saved_at = run.global_step
    return finish(s, run, metrics)


def sample_maker(s: Setup) -> SampleMaker:
    """Training and validation samples, made on the fly from the train-split background."""
    cfg = s.cfg
    with s.accelerator.main_process_first():  # the first process prepares, the others load
        background = prepare_background(cfg.corpus, haystack_tokenizer(s.tokenizer, cfg.backbone),
                                        split="train", cache_dir=cfg.cache_dir,
                                        progress=s.is_main and s.show)
    if not background.meta.get("disjoint_splits"):
        raise BabilabError(f"corpus {cfg.corpus}: with a single book the train and test splits "
                           f"share it; training needs a corpus of two books or more")
    return SampleMaker(s.tokenizer, background,
                       layout="plain" if cfg.architecture == "plain" else "memory",
                       segment_size=cfg.segment_size, tasks=cfg.tasks, seed=cfg.seed,
                       eos_id=s.eos_id, story_pool=cfg.story_pool,
                       questions_per_sample=cfg.questions_per_sample,
                       facts_before_last=cfg.facts_before_last,
                       valid_facts_before_last=cfg.valid_facts_before_last)


# --------------------------------------------------------------------------------------------
# One stage


def train_stage(s: Setup, samples: Prefetcher, run: RunState, stage: StageSettings,
                metrics: MetricsLog, piece: Piece) -> str | None:
    """Run the stage's steps from `run.step` on. Returns why it stopped ("target",
    "patience" or "steps"), or None when the piece ran out of time (at a checkpoint)."""
    if s.is_main:
        (s.out / stage.name).mkdir(parents=True, exist_ok=True)
    accum = accumulation_steps(stage, s.world)
    rows = rows_of(s.rank, s.world, stage.batch_size)
    valid = [samples.maker.valid_sample(i, stage.segments)
             for i in range(s.rank, s.cfg.valid_samples, s.world)]
    tokens_per_step = stage.batch_size * (stage.segments * s.cfg.segment_size + 32)
    log.info("%s: up to %d steps of %d samples (%d per pass x %d accumulation x %d "
             "process(es)), about %s tokens per step, lr %.2g, %d validation samples",
             stage.name, stage.steps, stage.batch_size, stage.micro_batch_size, accum, s.world,
             f"{tokens_per_step:,}", stage.lr, s.cfg.valid_samples)
    bar = tqdm(total=stage.steps, initial=run.step, desc=stage.name, unit="step",
               disable=not (s.is_main and s.show), dynamic_ncols=True)
    started = time.perf_counter()
    while True:
        # 1) the learning rate: a pure function of the step (schedule.py)
        lr = lr_at(run.step, stage.lr, stage.warmup_steps, stage.decay_steps)
        for group in s.optimizer.param_groups:
            group["lr"] = lr

        # 2) validate; keep the best weights; stop the stage at the target or patience
        stopped = validate(s, run, stage, valid, metrics, bar)
        if stopped is None and run.step == stage.steps:
            stopped = "steps"
        if stopped:
            bar.close()
            return stopped

        # 3) a resumable checkpoint (the position is: this step has not run yet)
        out_of_time = piece.out_of_time(run)
        if (run.step % s.cfg.checkpoint_interval == 0 or out_of_time) \
                and run.global_step != piece.saved_at:
            take_checkpoint(s, run, metrics)
            piece.saved_at = run.global_step
        if out_of_time:
            bar.close()
            metrics.close()
            log.info("stopped after %.0f s at %s step %d (run step %d): continue with "
                     "--resume", time.perf_counter() - piece.began, stage.name, run.step,
                     run.global_step)
            return None

        # 4) forward and backward over this process's rows, in micro-batches
        batch = samples.get(stage.sample_stage, run.step, rows, stage.segments,
                            s.cfg.vary_segments, s.cfg.full_length_ratio)
        loss, n_tokens, n_targets = forward_backward(s, stage, batch)

        # 5) clip, step
        grad_norm, bad = optimizer_step(s, run, loss)

        # 6) log
        bar.update(1)
        bar.set_postfix(loss=f"{loss:.3f}")
        if run.step % s.cfg.log_interval == 0 or run.step == 1 or bad:
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


def validate(s: Setup, run: RunState, stage: StageSettings, valid: Sequence[Sample],
             metrics: MetricsLog, bar: Any) -> str | None:
    """Evaluate when it is due (every eval_interval steps and at the last one, never twice at
    a step); save new best weights. Returns "target" or "patience" when the stage should stop."""
    due = run.step % stage.eval_interval == 0 or run.step == stage.steps
    if not due or run.last_eval_global_step == run.global_step:
        return None
    accuracy, valid_loss = evaluate(s.model, valid, s.cfg.eval_batch_size, s.accelerator,
                                    s.autocast)
    run.last_eval_global_step = run.global_step
    better = (accuracy, -valid_loss) > (run.best_accuracy, -run.best_loss)
    if better:
        run.best_accuracy, run.best_loss, run.best_step = accuracy, valid_loss, run.step
        run.evals_since_best = 0
        if s.is_main:
            save_tensors(s.out / stage.name / BEST_FILE, trainable_tensors(s.model))
    else:
        run.evals_since_best += 1
    metrics.write(kind="valid", stage=stage.index, segments=stage.segments, step=run.step,
                  global_step=run.global_step, accuracy=accuracy, loss=valid_loss, best=better)
    bar.set_postfix(valid_acc=f"{accuracy:.2f}")
    if stage.target_accuracy is not None and accuracy >= stage.target_accuracy:
        return "target"
    if s.cfg.patience is not None and run.evals_since_best >= s.cfg.patience:
        return "patience"
    return None


def forward_backward(s: Setup, stage: StageSettings, samples: list[Sample]
                     ) -> tuple[float, float, float]:
    """Gradients of this process's samples, in micro-batches: (the global batch's mean
    answer-token loss, its input tokens, its answer tokens)."""
    batches = [collate(samples[i:i + stage.micro_batch_size], s.device)
               for i in range(0, len(samples), stage.micro_batch_size)]
    counts = torch.tensor([sum(b.n_targets for b in batches),
                           sum(int(b.attention_mask.sum()) for b in batches)], device=s.device)
    n_targets, n_tokens = s.accelerator.reduce(counts, "sum").tolist()
    loss_sum = torch.zeros((), device=s.device)
    for i, batch in enumerate(batches):
        # DDP averages gradients over processes only on the last micro-batch
        sync = i == len(batches) - 1
        with contextlib.nullcontext() if sync else s.accelerator.no_sync(s.wrapped):
            with torch.autocast(s.device.type, s.autocast, enabled=s.autocast is not None):
                result = s.wrapped(batch.input_ids, batch.attention_mask, batch.labels)
            # Each micro-batch's mean is re-weighted by its share of the global batch's
            # answer tokens (x world, since DDP averages), so the step's gradient is the
            # mean over all of them however the rows are split.
            weight = batch.n_targets * s.world / n_targets
            s.accelerator.backward(s.scaler.scale(result.loss * weight))
        loss_sum += result.loss.detach().float() * batch.n_targets
    loss = float(s.accelerator.reduce(loss_sum, "sum")) / n_targets
    return loss, n_tokens, n_targets


def optimizer_step(s: Setup, run: RunState, loss: float) -> tuple[float, bool]:
    """Clip and step; (gradient norm, whether the step was skipped). A loss or gradient that
    is not finite would turn every weight into NaN: that step is skipped (float16's scaler
    skips overflowed gradients itself and lowers its scale), and `run.bad_steps` counts them."""
    s.scaler.unscale_(s.optimizer)
    grad_norm = float(torch.nn.utils.clip_grad_norm_(s.params, s.cfg.grad_clip or float("inf")))
    bad = not math.isfinite(loss) or (not s.scaler.is_enabled() and not math.isfinite(grad_norm))
    if not bad:
        s.scaler.step(s.optimizer)
    s.scaler.update()
    s.optimizer.zero_grad(set_to_none=True)
    run.bad_steps = run.bad_steps + 1 if bad else 0
    run.step += 1
    run.global_step += 1
    return grad_norm, bad


def take_checkpoint(s: Setup, run: RunState, metrics: MetricsLog) -> None:
    """Every process hands in its RNG state; the main process writes the folder."""
    run.metrics_offset = metrics.offset()
    run.scaler = s.scaler.state_dict() if s.scaler.is_enabled() else None
    rng = {k: s.accelerator.gather(v.to(s.device)[None]).cpu() for k, v in rng_state().items()}
    if s.is_main:
        save_checkpoint(s.out / "checkpoints", s.model, s.optimizer, rng, dataclasses.asdict(run),
                        s.cfg.model_dump())
    s.accelerator.wait_for_everyone()


# --------------------------------------------------------------------------------------------
# After a stage, after the run


def end_stage(s: Setup, run: RunState, stage: StageSettings, stopped: str,
              metrics: MetricsLog) -> RunState:
    """The stage's best weights go on, and are exported for evaluation; returns the position
    of the next stage, which starts with a fresh AdamW like a new reference run."""
    stage_dir = s.out / stage.name
    s.accelerator.wait_for_everyone()  # the main process wrote best.safetensors
    load_trainable(s.model, load_file(stage_dir / BEST_FILE), str(stage_dir / BEST_FILE))
    if s.is_main:
        export_model(s.model, s.tokenizer, s.cfg, stage_dir / "model")
    summary = {"stage": stage.index, "segments": stage.segments, "steps": run.step,
               "stopped": stopped, "best_accuracy": run.best_accuracy,
               "best_loss": run.best_loss, "best_step": run.best_step,
               "model": str(stage_dir / "model")}
    run.stages_done.append(summary)
    metrics.write(kind="stage", **summary)
    log.info("%s: stopped (%s) after %d steps; best validation accuracy %.3f at step %d",
             stage.name, stopped, run.step, run.best_accuracy, run.best_step)
    fields = ("stages_done", "global_step", "world_size", "metrics_offset", "scaler")
    s.optimizer.state.clear()
    return RunState(stage=stage.index + 1, **{k: getattr(run, k) for k in fields})


def finish(s: Setup, run: RunState, metrics: MetricsLog) -> TrainResult:
    """OUT/model points at the last stage's model; what to evaluate it with."""
    model_dir = s.out / "model"
    if s.is_main:
        _link(model_dir, f"{s.stages[-1].name}/model")
    s.accelerator.wait_for_everyone()
    metrics.close()
    if s.cfg.architecture == "plain":  # data.py's plain layout is this prompt configuration
        eval_args = f"--model hf:{model_dir} --prompt {NO_PROMPT_PARTS.name}"
    else:
        eval_args = f"--model {s.cfg.architecture}:{model_dir}"
    return TrainResult(s.out, model_dir, eval_args, run.stages_done)


# --------------------------------------------------------------------------------------------
# Pieces the steps call


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


def _link(link: Path, target: str) -> None:
    """Point `link` at `target` (relative), replacing an older link atomically."""
    tmp = link.with_name(f".{link.name}.tmp-{os.getpid()}")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    tmp.symlink_to(target)
    if link.exists() and not link.is_symlink():
        shutil.rmtree(link)
    os.replace(tmp, link)


__all__ = ["MetricsLog", "Piece", "RunState", "TrainResult", "evaluate", "sample_maker", "train",
           # start.py's and trainee.py's, importable from here as before they were split off
           "AUTOCAST", "architecture_config", "backbone_source", "build_model", "export_model",
           "init_from", "merge_lora"]
