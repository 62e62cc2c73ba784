"""The `babilab` command: one verb per public function, no logic of its own.

Any `BabilabError` or usage mistake becomes one line on stderr and exit code 2.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from . import babi
from .errors import BabilabError

app = typer.Typer(help="Generate BABILong, evaluate models on it, train memory models, report.",
                  add_completion=False, pretty_exceptions_enable=False)
babi_app = typer.Typer(help="The bAbI tasks: generate stories, measure them, check them.")
app.add_typer(babi_app, name="babi")


@app.callback(invoke_without_command=True)
@babi_app.callback(invoke_without_command=True)
def show_help(ctx: typer.Context) -> None:
    """A group called without a verb prints its help."""
    if ctx.invoked_subcommand is None:
        typer.echo(ctx.get_help())
        raise typer.Exit(0)


@babi_app.command("generate")
def babi_generate(
    out: Annotated[Path, typer.Option(help="folder for the qaN_<name>_<split>.txt files")],
    tasks: Annotated[str, typer.Option(help="qa1,qa2 or qa1-qa5 or all")] = "all",
    split: Annotated[str, typer.Option(help="train, valid or test (disjoint story sets)")] = "train",
    questions: Annotated[int, typer.Option(help="questions per task file")] = 1000,
    seed: int = 0,
) -> None:
    """Generate fresh bAbI v1.2 files, one per task."""
    names = babi.parse_tasks(tasks)
    with typer_progress(len(names), "generating") as bar:
        paths = []
        for task in names:
            paths += babi.write_files([task], split, questions, seed, out)
            bar.update(1)
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
    show: Annotated[int, typer.Option(help="errors to print per file")] = 10,
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


class typer_progress:
    """A tqdm bar on stderr that stays quiet when stderr is not a terminal."""

    def __init__(self, total: int, desc: str):
        from tqdm import tqdm

        self.bar = tqdm(total=total, desc=desc, unit="task", disable=not sys.stderr.isatty())

    def __enter__(self):
        return self.bar

    def __exit__(self, *exc):
        self.bar.close()


def main(argv: list[str] | None = None) -> int:
    command = typer.main.get_command(app)
    try:
        code = command.main(args=argv, prog_name="babilab", standalone_mode=False)
    except typer.Exit as e:
        return e.exit_code
    except (typer.Abort, KeyboardInterrupt):
        print("babilab: interrupted", file=sys.stderr)
        return 130
    except typer.TyperException as e:  # usage errors: bad option, bad value, missing argument
        print(f"babilab: error: {e.format_message()}", file=sys.stderr)
        return 2
    except BabilabError as e:
        print(f"babilab: error: {e}", file=sys.stderr)
        return 2
    return code if isinstance(code, int) else 0


def run() -> None:
    sys.exit(main())


if __name__ == "__main__":
    run()
