"""The `train` verb: a memory model (or a plain backbone) through a curriculum of lengths."""

# No `from __future__ import annotations`: typer reads every verb's annotations each time
# `babilab` runs, and string annotations cost it an eval each (30 ms of a 0.5 s command).

from pathlib import Path
from typing import Annotated

import typer

from .app import app


@app.command("train")
def train_(
    recipe: Annotated[Path, typer.Argument(help="a training recipe (YAML), e.g. recipes/cpu_smoke.yaml")],
    resume: Annotated[bool, typer.Option("--resume", help="continue the run in out_dir from its "
                                                          "last checkpoint")] = False,
    out_dir: Annotated[str | None, typer.Option(help="where the run goes (instead of the "
                                                     "recipe's out_dir)")] = None,
    set_: Annotated[list[str] | None, typer.Option("--set", help="override a recipe value: "
                                                   "KEY=VALUE, e.g. lr=1e-4 or stages.0.steps=5")] = None,
    stop_after: Annotated[float | None, typer.Option(
        min=0, help="minutes: stop at the next step after this, with a checkpoint, to continue "
                    "later with --resume")] = None,
) -> None:
    """Train a memory model (or a plain backbone) through a curriculum of lengths."""
    import logging

    from ..outputs import check_output_dir
    from ..train import load_recipe, train

    cfg = load_recipe(recipe, set_ or [], {"out_dir": out_dir} if out_dir else None)
    check_output_dir(Path(cfg.out_dir), "out_dir")  # before any weights load
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    result = train(cfg, resume=resume, stop_after_s=None if stop_after is None else 60 * stop_after)
    if not result.finished:
        typer.echo(f"stopped after {stop_after:g} minutes with a checkpoint; continue: "
                   f"babilab train {result.out_dir / 'config.json'} --resume")
        return
    for s in result.stages:
        typer.echo(f"stage {s['stage']} ({s['segments']} segments): {s['steps']} steps, stopped "
                   f"by {s['stopped']}, best validation accuracy {s['best_accuracy']:.3f} at "
                   f"step {s['best_step']}")
    typer.echo(f"model: {result.model_dir}\nevaluate it: babilab eval --suite SUITE "
               f"{result.eval_args} --run RUN")
