"""The run store and what reads and writes it: evaluation, import, re-scoring, export."""

from .evaluate import EvalSummary, evaluate
from .importer import ImportSummary, import_babilong
from .results import export_babilong, score_run
from .store import Prediction, RunStore

__all__ = ["EvalSummary", "ImportSummary", "Prediction", "RunStore", "evaluate", "export_babilong",
           "import_babilong", "score_run"]
