"""The run store and what reads and writes it: evaluation, re-scoring, export."""

from .evaluate import EvalSummary, evaluate
from .results import export_babilong, score_run
from .store import Prediction, RunStore

__all__ = ["EvalSummary", "Prediction", "RunStore", "evaluate", "export_babilong", "score_run"]
