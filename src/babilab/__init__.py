"""babilab: generate BABILong, evaluate any model on it, train recurrent-memory models, report.

Public functions live here; each has one CLI verb (`babilab --help`). Importing babilab
never imports torch or an HTTP client: heavy parts load when they are first used.

    import babilab
    suite = babilab.generate_suite(babilab.GenerateConfig(tasks="qa1-qa5", lengths="0k,4k"))
    babilab.evaluate(suite, "hf:smollm2", "runs/demo")
    babilab.score_run("runs/demo", mode="strict")
    babilab.build_report("runs/demo")
"""

from .babi import generate_stories, iter_qas, read_file, write_files
from .errors import BabilabError
from .report import build_report
from .runs import evaluate, export_babilong, score_run
from .suite import GenerateConfig, Suite, generate_suite, load_official
from .train import train  # the function; its modules stay importable as `from babilab.train import loop`

__version__ = "0.1.0"

__all__ = [
    "BabilabError", "GenerateConfig", "Suite", "__version__", "build_report", "evaluate",
    "export_babilong", "generate_stories", "generate_suite", "iter_qas", "load_official",
    "read_file", "score_run", "train", "write_files",
]
