"""The typer apps the verbs register on: `babilab` and its `babi` group.

Each verb module (data.py, runs.py, sharing.py, training.py) decorates its functions with
`app.command`; the package's __init__ imports them in the order `babilab --help` lists them.
"""

from __future__ import annotations

import typer

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
