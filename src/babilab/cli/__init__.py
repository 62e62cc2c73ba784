"""The `babilab` command: one verb per public function, no logic of its own.

Any `BabilabError`, usage mistake or OSError (a full disk, a folder that cannot be written)
becomes one line on stderr and exit code 2; anything else (a bug) one line and exit code 1
(BABILAB_TRACEBACK=1 shows the traceback). Ctrl-C and SIGTERM stop a command with one line
saying what it keeps, and exit code 130. Inputs are checked here or in the functions each
verb calls before anything is written or loaded (outputs.py: where and how files are written).

The verbs, by what they work on: data.py (`babi`, `generate`), runs.py (`eval`, `rescore`,
`report`, `export`), sharing.py (`export-suite`, `push`, `export-lm-eval`, `import`) and
training.py (`train`), all on app.py's typer app. This file runs one command line: `main`.
"""

from __future__ import annotations

import os
import signal
import sys
import threading

import typer

from ..errors import BabilabError
from . import data, runs, sharing, training  # noqa: F401 - registers the verbs, in help order
from .app import app
from .runs import EXIT_FAILED_PREDICTIONS

EXIT_STOPPED = 130  # Ctrl-C or SIGTERM, as a shell reports an interrupt
KEPT_WHEN_STOPPED = {  # what a command stopped midway leaves, and how to go on
    "eval": "the predictions stored so far are kept; the same command continues from them",
    "train": "the checkpoints written so far are kept; continue with the same command and "
             "--resume",
    "import": "each model's predictions are stored whole or not at all; the same command "
              "finishes the import",
}
KEPT_OTHERWISE = "nothing half-written is left; run the same command again"


class StopSignals:
    """While a command runs, SIGTERM (`kill`, a scheduler taking the machine back) stops it
    like Ctrl-C, so what Ctrl-C keeps is kept (a memory model's read in progress); either
    signal is remembered, for the line that says the command was stopped."""

    def __init__(self):
        self.received: str | None = None
        self.previous: dict[int, object] = {}

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():  # signals need the main one
            for signum in (signal.SIGINT, signal.SIGTERM):
                self.previous[signum] = signal.signal(signum, self.stop)
        return self

    def stop(self, signum, frame) -> None:
        self.received = "Ctrl-C" if signum == signal.SIGINT else signal.Signals(signum).name
        raise KeyboardInterrupt

    def __exit__(self, *exc) -> None:
        for signum, handler in self.previous.items():
            signal.signal(signum, handler)

    def line(self, argv: list[str]) -> str:
        words = [a for a in argv if not a.startswith("-")][:2]
        name = " ".join(words) if words[:1] == ["babi"] else "".join(words[:1])
        how = f"by {self.received}" if self.received else "(interrupted)"
        return f"babilab: {name or 'babilab'} stopped {how}; {KEPT_WHEN_STOPPED.get(name, KEPT_OTHERWISE)}"


def main(argv: list[str] | None = None) -> int:
    """Run one command line; every failure is one line on stderr and a non-zero exit code."""
    argv = sys.argv[1:] if argv is None else argv
    command = typer.main.get_command(app)
    with StopSignals() as signals:
        try:
            code = command.main(args=argv, prog_name="babilab", standalone_mode=False)
        except typer.Exit as e:
            code = e.exit_code
        except (typer.Abort, KeyboardInterrupt):
            code = EXIT_STOPPED
        except typer.TyperException as e:  # usage errors: bad option, bad value, missing argument
            return error_line(e.format_message())
        except BabilabError as e:
            return error_line(str(e))
        except OSError as e:  # a disk that filled up, a folder made read-only mid-run
            from ..outputs import os_error_line

            return error_line(os_error_line(e))
        except Exception as e:  # a bug: still one line, the traceback on request
            if os.environ.get("BABILAB_TRACEBACK"):
                raise
            first = str(e).splitlines()[0] if str(e) else ""
            return error_line(f"internal error ({type(e).__name__}: {first}); please report it "
                              "with the command line (BABILAB_TRACEBACK=1 shows where)", code=1)
    if code == EXIT_STOPPED:  # typer turns KeyboardInterrupt into this exit code, silently
        print(signals.line(argv), file=sys.stderr)
    return code if isinstance(code, int) else 0


def error_line(message: str, code: int = 2) -> int:
    print(f"babilab: error: {' '.join(message.split())}", file=sys.stderr)  # one line, always
    return code


def run() -> None:
    sys.exit(main())


__all__ = ["EXIT_FAILED_PREDICTIONS", "EXIT_STOPPED", "StopSignals", "app", "main", "run"]
