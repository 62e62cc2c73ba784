"""Shared fixtures: small suites built from generated bAbI questions (facts-only contexts)."""

from pathlib import Path

import pytest

from babilab.babi import take_qas
from babilab.suite import Sample, Suite, SuiteWriter


def facts_only_suite(path: Path, tasks=("qa1", "qa2", "qa4"), n: int = 10,
                     lengths=("0k",)) -> Suite:
    """A suite whose contexts are the facts alone, the same questions at every length."""
    with SuiteWriter(path, {"fingerprint": f"test-{'-'.join(tasks)}-{n}", "config": {}}) as w:
        for task in tasks:
            qas = take_qas(task, "test", n, seed=0)
            for length in lengths:
                samples = []
                for i, qa in enumerate(qas):
                    context = " ".join(qa.facts)
                    offsets, pos = [], 0
                    for fact in qa.facts:
                        offsets.append(pos)
                        pos += len(fact) + 1
                    depths = tuple(100 * o / max(1, len(context)) for o in offsets)
                    samples.append(Sample(task, length, i, context, qa.question, qa.answer,
                                          qa.facts, qa.supporting, tuple(offsets), (), depths))
                w.add_cell(task, length, samples)
    return Suite(path)


@pytest.fixture
def small_suite(tmp_path) -> Suite:
    return facts_only_suite(tmp_path / "suite")
