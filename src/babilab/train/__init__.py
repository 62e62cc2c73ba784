"""Curriculum training of recurrent-memory models (RMT, RMT-R, ARMT) and plain backbones.

    from babilab.train import load_recipe, train
    result = train(load_recipe("recipes/cpu_smoke.yaml"))
    # then: babilab eval --suite SUITE --model rmt:{result.model_dir} --run RUN

Files, in the order the loop uses them: config.py (the recipe), curriculum.py (stages, rows,
segment draws), schedule.py (learning rate), data.py (samples on the fly), trainee.py (the
model: memory wrapper or plain.py's no-memory baseline, LoRA, export), checkpoint.py
(atomic, resumable), start.py (set-up and resume), loop.py (`train`).
Importing this package does not import torch or pydantic; `train` loads them when called.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .config import Stage, TrainConfig, load_recipe
    from .loop import TrainResult


def __getattr__(name: str):
    # The recipe types load on first use: `import babilab` imports this package for `train`,
    # and the config's pydantic models cost every babilab command 0.06 s to build.
    if name in ("Stage", "TrainConfig", "load_recipe"):
        from . import config

        return getattr(config, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def train(cfg: TrainConfig | dict[str, Any] | str | Path, resume: bool = False,
          stop_after_s: float | None = None) -> TrainResult:
    """Run a recipe (a TrainConfig, a dict, or a YAML path); `resume` continues its out_dir;
    `stop_after_s` stops it at a checkpoint after that long (loop.train)."""
    from .loop import train as run

    return run(cfg, resume=resume, stop_after_s=stop_after_s)


__all__ = ["Stage", "TrainConfig", "load_recipe", "train"]
