"""babilab: generate BABILong, evaluate any model on it, train recurrent-memory models, report.

Public functions live here; each has one CLI verb (`babilab --help`). Importing babilab
never imports torch or an HTTP client: heavy parts load when they are first used.

    import babilab
    suite = babilab.generate_suite(babilab.GenerateConfig(tasks="qa1-qa5", lengths="0k,4k"))
    babilab.evaluate(suite, "hf:smollm2", "runs/demo")
    babilab.score_run("runs/demo", mode="strict")
    babilab.build_report("runs/demo")
"""

from importlib import import_module
from typing import TYPE_CHECKING

from .errors import BabilabError

# `train` is imported now, unlike the names below: the function shares its name with the
# subpackage, and a lazy lookup would find the subpackage once anything had imported
# `babilab.train.loop`. Its modules stay importable as `from babilab.train import loop`.
from .train import train

if TYPE_CHECKING:  # for type checkers and linters; at run time __getattr__ imports them
    from .babi import generate_stories, iter_qas, read_file, write_files
    from .report import build_report
    from .runs import evaluate, export_babilong, score_run
    from .suite import GenerateConfig, Suite, generate_suite, load_official

__version__ = "0.1.0"

# Loaded on first use (`babilab.evaluate`, `from babilab import evaluate`): importing them all
# took 0.3 s (the report, the run store, the suite builder), which every `babilab` command
# paid before doing anything, since the CLI's modules live in this package.
_LAZY = {
    "generate_stories": ".babi", "iter_qas": ".babi", "read_file": ".babi", "write_files": ".babi",
    "build_report": ".report",
    "evaluate": ".runs", "export_babilong": ".runs", "score_run": ".runs",
    "GenerateConfig": ".suite", "Suite": ".suite", "generate_suite": ".suite",
    "load_official": ".suite",
}


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(_LAZY[name], __name__), name)
    globals()[name] = value  # found directly next time
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


__all__ = [
    "BabilabError", "GenerateConfig", "Suite", "__version__", "build_report", "evaluate",
    "export_babilong", "generate_stories", "generate_suite", "iter_qas", "load_official",
    "read_file", "score_run", "train", "write_files",
]
