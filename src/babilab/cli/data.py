"""Verbs that make data: bAbI files (`babilab babi generate|stats|check`) and suites
(`babilab generate`)."""

# No `from __future__ import annotations`: typer reads every verb's annotations each time
# `babilab` runs, and string annotations cost it an eval each (30 ms of a 0.5 s command).

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from .. import babi
from ..errors import BabilabError
from .app import app, babi_app

MAX_QUESTIONS = 1_000_000  # per bAbI file: the stories are held in memory (en-10k has 10,000)


@babi_app.command("generate")
def babi_generate(
    out: Annotated[Path, typer.Option(help="folder for the qaN_<name>_<split>.txt files")],
    tasks: Annotated[str, typer.Option(help="qa1,qa2 or qa1-qa5 or all")] = "all",
    split: Annotated[str, typer.Option(help="train, valid or test (disjoint story sets)")] = "train",
    questions: Annotated[int, typer.Option(min=1, max=MAX_QUESTIONS,
                                           help="questions per task file")] = 1000,
    seed: Annotated[int, typer.Option(min=0)] = 0,
) -> None:
    """Generate fresh bAbI v1.2 files, one per task."""
    names = babi.parse_tasks(tasks)
    with typer_progress(len(names), "generating") as bar:  # all files or none
        paths = babi.write_files(names, split, questions, seed, out, lambda _: bar.update(1))
    for path in paths:
        typer.echo(path)


@babi_app.command("stats")
def babi_stats(
    path: Annotated[Path, typer.Argument(help="a bAbI file or a folder of them")],
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object per file")] = False,
) -> None:
    """Per-task statistics: lengths, answers, templates, recency."""
    for file in babi.find_files(path):
        for stats in babi.compute_stats(babi.read_file(file)).values():
            if as_json:
                typer.echo(json.dumps({"file": str(file), **stats.as_dict()}))
            else:
                typer.echo(f"{file}\n{babi.format_stats(stats)}\n")


@babi_app.command("check")
def babi_check(
    path: Annotated[Path, typer.Argument(help="a bAbI file or a folder of them")],
    show: Annotated[int, typer.Option(min=0, help="errors to print per file")] = 10,
) -> None:
    """Re-derive every answer and supporting id with the solver; exit 1 on any error."""
    failed = False
    for file in babi.find_files(path):
        checked, errors = babi.check_stories(babi.read_file(file))
        typer.echo(f"{file}: {checked} questions, {len(errors)} errors")
        for error in errors[:show]:
            typer.echo(f"  {error}")
        failed |= bool(errors)
    if failed:
        raise typer.Exit(1)


@app.command()
def generate(
    out: Annotated[Path | None, typer.Option(help="suite folder (default: the user cache, "
                                                  "named by the suite's fingerprint)")] = None,
    config: Annotated[Path | None, typer.Option(help="YAML with any of the options below")] = None,
    tasks: Annotated[str | None, typer.Option(help="qa1-qa5, qa1,qa3 or all [qa1-qa5]")] = None,
    lengths: Annotated[str | None, typer.Option(help="0k,1k,4k,32k,128k,1M,10M [0k-8k]")] = None,
    samples: Annotated[int | None, typer.Option(help="questions per task [100]")] = None,
    corpus: Annotated[str | None, typer.Option(
        help="gutenberg | austen | sotu | bible | shakespeare | pg19[:SOURCE] | dir:PATH | "
             "file:PATH, or several joined by + (gutenberg+austen+sotu)")] = None,
    tokenizer: Annotated[str | None, typer.Option(help="gpt2 | cl100k | HF folder | .gguf")] = None,
    placement: Annotated[str | None, typer.Option(
        help="uniform | spread | window:START-END | depth:D")] = None,
    depths: Annotated[str | None, typer.Option(
        help="depth x length grids (needle-in-a-haystack style): one suite per depth, e.g. "
             "0,25,50,75,100, placement depth:D, in OUT/depth-D")] = None,
    split: Annotated[str | None, typer.Option(help="test (evaluation) or train")] = None,
    seed: Annotated[int | None, typer.Option()] = None,
    reserve_tokens: Annotated[int | None, typer.Option(help="tokens left for the prompt [300]")] = None,
    official: Annotated[bool, typer.Option(help="load RMT-team/babilong instead (needs the hub)")] = False,
    official_source: Annotated[str, typer.Option(help="hub id or local copy of an official set")] =
        "RMT-team/babilong",
) -> None:
    """Build a BABILong suite: bAbI facts hidden in background books, token-exact."""
    from ..config_files import read_yaml
    from ..outputs import check_output_dir
    from ..suite import GenerateConfig, generate_suite, load_official
    from ..suite.build import config_error
    from ..suite.files import check_suite_out

    # before the background is prepared, which can take minutes; --depths fills OUT/depth-D
    if out is not None and depths:
        check_output_dir(out, "--out")
    elif out is not None:
        check_suite_out(out)
    if official:
        if out is None:
            raise BabilabError("--official needs --out")
        if depths:
            raise BabilabError("--depths builds suites; it does not apply to --official")
        suite = load_official([x.strip() for x in (lengths or "0k").split(",")],
                              babi.parse_tasks(tasks or "qa1-qa5"), out, official_source)
    else:
        given = {"tasks": tasks, "lengths": lengths, "samples": samples, "corpus": corpus,
                 "tokenizer": tokenizer, "placement": placement, "split": split, "seed": seed,
                 "reserve_tokens": reserve_tokens}
        values = read_yaml(config) if config else {}
        values.update({k: v for k, v in given.items() if v is not None})
        try:
            cfg = GenerateConfig(**values)
        except ValueError as e:
            raise config_error(e) from None
        if depths:
            from ..suite.build import generate_depth_suites, parse_depths

            for each in generate_depth_suites(cfg, parse_depths(depths), out):
                echo_suite(each)
            typer.echo("evaluate each into one run (babilab eval --suite SUITE ... --run RUN); "
                       "babilab report RUN gives accuracy by depth x length")
            return
        suite = generate_suite(cfg, out)
    echo_suite(suite)


def echo_suite(suite) -> None:
    """What `generate` built: background, samples per cell, fingerprint and path."""
    bg = suite.info.get("background")
    if bg:
        other = "train" if bg["split"] == "test" else "test"
        disjoint = (f"books disjoint from the {other} split" if bg.get("disjoint_splits")
                    else f"the corpus is too small to keep its {other} books apart")
        typer.echo(f"background: {bg['corpus']} {bg['split']} split, {bg['n_books']} books, "
                   f"{bg['n_tokens']:,} {bg['tokenizer']} tokens ({disjoint})")
    for key, cell in suite.info["cells"].items():
        dropped = f", {cell['dropped']} dropped (facts do not fit)" if cell.get("dropped") else ""
        typer.echo(f"{key}: {cell['samples']} samples{dropped}")
    from ..suite.build import background_report

    lines, warnings = background_report(suite.info)  # per length: how often text repeats
    for line in lines:
        typer.echo(line)
    for warning in warnings:
        typer.echo(f"warning: {warning}", err=True)
    typer.echo(f"suite {suite.fingerprint[:12]} at {suite.path}")



class typer_progress:
    """A tqdm bar on stderr that stays quiet when stderr is not a terminal."""

    def __init__(self, total: int, desc: str):
        from tqdm import tqdm

        self.bar = tqdm(total=total, desc=desc, unit="task", disable=not sys.stderr.isatty())

    def __enter__(self):
        return self.bar

    def __exit__(self, *exc):
        self.bar.close()
