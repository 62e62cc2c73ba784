"""Verbs that share babilab's data with other tools: a suite in the hub layout
(`export-suite`, `push`), as lm-evaluation-harness tasks (`export-lm-eval`), and published
BABILong predictions into a run (`import`)."""

# No `from __future__ import annotations`: typer reads every verb's annotations each time
# `babilab` runs, and string annotations cost it an eval each (30 ms of a 0.5 s command).

from pathlib import Path
from typing import Annotated

import typer

from .app import app


@app.command("export-suite")
def export_suite(
    suite: Annotated[Path, typer.Argument(help="a suite folder (from babilab generate)")],
    out: Annotated[Path, typer.Option(help="new or empty folder for the hub layout")],
    license: Annotated[str, typer.Option(help="license id for the dataset card")] = "apache-2.0",
) -> None:
    """Write a suite in RMT-team/babilong's hub layout: load_dataset(OUT, "4k")["qa1"]."""
    from ..suite.hub import export_hub

    typer.echo(f"wrote {export_hub(suite, out, license)}; load it: "
               f"datasets.load_dataset(\"{out}\", LENGTH)[TASK]")


@app.command("push")
def push(
    suite: Annotated[Path, typer.Argument(help="a suite folder (from babilab generate)")],
    repo_id: Annotated[str, typer.Argument(help="dataset repo on the Hugging Face hub: OWNER/NAME")],
    public: Annotated[bool, typer.Option("--public", help="make a new repo public (default: "
                                                          "private)")] = False,
    license: Annotated[str, typer.Option(help="license id for the dataset card")] = "apache-2.0",
    stage_only: Annotated[Path | None, typer.Option(
        help="write the exact files that would be uploaded to this new folder and stop: no "
             "token, no network")] = None,
) -> None:
    """Upload a suite to the hub in RMT-team/babilong's layout (token: HF_TOKEN or `hf auth
    login`; never stored or printed): load_dataset(REPO_ID, "4k")["qa1"]."""
    from ..suite.push import push_suite, stage_push, staged_files

    if stage_only is not None:
        folder = stage_push(suite, stage_only, repo_id, license)
        for name, size in staged_files(folder):
            typer.echo(f"{size:>12,}  {name}")
        typer.echo(f"staged in {folder}; nothing uploaded (the upload needs a token and the network)")
        return
    url = push_suite(suite, repo_id, private=not public, license=license)
    typer.echo(f"uploaded to {url}; load it: datasets.load_dataset(\"{repo_id}\", LENGTH)[TASK]")


@app.command("export-lm-eval")
def export_lm_eval(
    suite: Annotated[Path, typer.Argument(help="a suite folder (from babilab generate)")],
    out: Annotated[Path, typer.Option(help="new or empty folder for the task YAMLs and the data")],
) -> None:
    """Write lm-evaluation-harness tasks (lm-eval's babilong tasks on this suite):
    lm_eval --model hf --model_args pretrained=MODEL --include_path OUT --tasks GROUP."""
    from ..suite.lmeval import export_lm_eval as export

    groups = export(suite, out)
    typer.echo(f"wrote lm-eval tasks to {out} (groups {', '.join(groups)}; tag babilab for all); "
               f"run: lm_eval --model hf --model_args pretrained=MODEL --include_path {out} "
               f"--tasks {groups[0]}")


@app.command("import")
def import_(
    pred_dir: Annotated[Path, typer.Argument(help="BABILong predictions: a folder of "
                                                  "<org>/<model>/<task>_<length>_<config>.csv, "
                                                  "or one model's folder")],
    run: Annotated[Path, typer.Option(help="run folder; importing the same files again adds nothing")],
) -> None:
    """Store published BABILong predictions in a run, as that model's predictions."""
    from ..runs import import_babilong

    for s in import_babilong(pred_dir, run):
        typer.echo(f"{s.label}: {s.new} new predictions, {s.skipped} already stored, from "
                   f"{s.files} files -> {run}")
    typer.echo(f"score them: babilab rescore {run} (or babilab report {run})")
