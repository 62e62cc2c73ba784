"""The curriculum: stages with their resolved settings, who computes which rows, and the
segment count of every training sample, all pure functions of their arguments.

A run is a sequence of stages (e.g. 1, 2, 4, 8, 16, 32 context segments), each trained from
the previous stage's best checkpoint (loop.py). Within a stage every sample draws its own
length, as the reference's `vary_n_segments` does: uniform over 1..n segments, so shorter
lengths are replayed (github.com/booydar/recurrent-memory-transformer); `full_length_ratio` forces a
share of samples to the full n (RMT-R's `mixed_length_ratio`).

Rows: the global batch of a step has `batch_size` rows numbered 0..batch_size-1. A sample
depends only on (seed, stage, step, row) (data.py), and process `rank` computes a fixed slice
of rows, so one process and many processes see the same samples at the same global batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import BabilabError
from .config import TrainConfig


@dataclass(frozen=True)
class StageSettings:
    """A stage with every value resolved (the recipe's default where the stage sets none)."""

    index: int
    segments: int
    steps: int
    batch_size: int
    micro_batch_size: int
    lr: float
    warmup_steps: int
    decay_steps: int
    eval_interval: int
    target_accuracy: float | None
    data_stage: int | None = None  # the stage index in sample seeds, when not `index`

    @property
    def name(self) -> str:
        """Folder name of the stage's outputs: `stage0-seg1`."""
        return f"stage{self.index}-seg{self.segments}"

    @property
    def sample_stage(self) -> int:
        """The stage index its training samples are drawn with (data.py)."""
        return self.index if self.data_stage is None else self.data_stage


def stage_settings(cfg: TrainConfig) -> list[StageSettings]:
    out = []
    for i, s in enumerate(cfg.stages):
        warmup = s.warmup_steps if s.warmup_steps is not None else int(cfg.warmup_frac * s.steps)
        out.append(StageSettings(
            index=i, segments=s.segments, steps=s.steps,
            batch_size=s.batch_size or cfg.batch_size,
            micro_batch_size=s.micro_batch_size or cfg.micro_batch_size,
            lr=s.lr or cfg.lr, warmup_steps=warmup,
            decay_steps=max(warmup + 1, round(cfg.decay_frac * s.steps)),
            eval_interval=s.eval_interval or cfg.eval_interval,
            target_accuracy=s.target_accuracy if s.target_accuracy is not None
            else cfg.target_accuracy,
            data_stage=s.data_stage,
        ))
    return out


def accumulation_steps(stage: StageSettings, world_size: int) -> int:
    """Micro-batches per process per step; the batch must split evenly.

    The reference's bash arithmetic silently gave 0 accumulation steps for its 1-segment stage
    on more than one GPU; here that is an error at start-up.

    >>> accumulation_steps(StageSettings(0, 1, 10, 64, 16, 1e-5, 1, 20, 10, 1.0), 2)
    2
    """
    per_pass = stage.micro_batch_size * world_size
    if stage.batch_size % per_pass:
        raise BabilabError(
            f"stage {stage.index}: batch_size {stage.batch_size} is not a multiple of "
            f"micro_batch_size {stage.micro_batch_size} x {world_size} process(es) = {per_pass}")
    return stage.batch_size // per_pass


def rows_of(rank: int, world_size: int, batch_size: int) -> range:
    """The global batch rows that process `rank` computes: a contiguous slice.

    >>> rows_of(1, 2, 8)
    range(4, 8)
    """
    per_rank = batch_size // world_size
    return range(rank * per_rank, (rank + 1) * per_rank)


def draw_segments(rng: np.random.Generator, segments: int, vary: bool,
                  full_length_ratio: float = 0.0) -> int:
    """Context segments of one training sample of a stage with `segments` at most.

    The draw always consumes the same two numbers, so later draws from `rng` do not depend
    on the settings.
    """
    full, pick = rng.random(), int(rng.integers(1, segments + 1))
    if not vary or full < full_length_ratio:
        return segments
    return pick


def stage_of(step: int, stages: list[StageSettings]) -> tuple[int, int]:
    """(stage, step in stage) of a run-wide step when no stage stops early (for plots).

    >>> s = [StageSettings(i, 1, n, 8, 8, 1e-5, 0, n, 1, None) for i, n in enumerate((3, 5))]
    >>> [stage_of(g, s) for g in (0, 2, 3, 7, 8)]
    [(0, 0), (0, 2), (1, 0), (1, 4), (2, 0)]
    """
    for stage in stages:
        if step < stage.steps:
            return stage.index, step
        step -= stage.steps
    return len(stages), step


__all__ = ["StageSettings", "accumulation_steps", "draw_segments", "rows_of", "stage_of",
           "stage_settings"]
