"""The `oracle` answerer: the bAbI symbolic solver, reading the facts of each request.

It is the upper bound of every table (100% by construction) and a check of the whole
pipeline: a suite, prompt, store or scorer bug shows up as an oracle score below 100%.
It needs the facts, which babilab suites record; for a request without them it answers
with an empty output and says why in `error`. Facts from which the solver cannot answer
(a RAG reader given the retrieved sentences only) give an empty, wrong answer with the
solver's reason in `extra`: the same facts would fail again, so it is not a failure to retry.
"""

from __future__ import annotations

import time

from ..babi import GENERATOR_VERSION, solve
from ..prompts import PromptConfig
from .base import Answer, Answerer, Request, fingerprint_of, register


@register("oracle")
class OracleAnswerer(Answerer):
    @classmethod
    def from_spec(cls, arg: str = "", **options: object) -> OracleAnswerer:
        return cls()

    @property
    def fingerprint(self) -> str:
        return fingerprint_of(backend="oracle", solver=GENERATOR_VERSION)

    def answer(self, requests: list[Request], config: PromptConfig) -> list[Answer]:
        answers = []
        for r in requests:
            start = time.perf_counter()
            if not r.facts:
                answers.append(Answer("", error="no facts recorded for this sample"))
                continue
            try:
                output = solve(r.task, list(r.facts), r.question)
            except ValueError as e:
                answers.append(Answer("", elapsed_s=time.perf_counter() - start,
                                      extra={"unanswerable": f"solver: {e}"}))
                continue
            answers.append(Answer(output, elapsed_s=time.perf_counter() - start))
        return answers
