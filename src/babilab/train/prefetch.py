"""The next step's training samples, made by worker processes while this step computes.

A sample is a pure function of (stage, step, row) (data.py), so workers can make them ahead
without changing a single token: the loop asks for step k's rows and gets exactly what
`maker.train_sample` would return inline. What this buys: on a GPU one step of a 32-sample
batch takes less time than making its samples (~10-20 ms each, bAbI stories, haystack,
tokens), so inline the accelerator waits on the CPU.

    with Prefetcher(maker, workers=8) as samples:
        batch = samples.get(stage=1, step=0, rows=range(32), segments=4, vary=True, full=0.25)

Workers are forked (the maker and its background arrays are inherited, not pickled); where
fork is unavailable, or with `workers=0`, samples are made inline.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any

from .data import Sample, SampleMaker

_MAKER: SampleMaker | None = None  # the forked workers' maker (set before the fork)


def _make(key: tuple) -> Sample:  # in a worker
    assert _MAKER is not None
    return _MAKER.train_sample(*key)


class Prefetcher:
    """`get` returns one step's samples and starts making the following step's."""

    def __init__(self, maker: SampleMaker, workers: int = 0):
        self.maker = maker
        self.pool: ProcessPoolExecutor | None = None
        self.pending: dict[tuple, Future] = {}
        if workers > 0 and "fork" in multiprocessing.get_all_start_methods():
            global _MAKER
            _MAKER = maker
            self.pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork"))

    def get(self, stage: int, step: int, rows: Sequence[int], segments: int, vary: bool,
            full: float) -> list[Sample]:
        keys = [(stage, step, row, segments, vary, full) for row in rows]
        if self.pool is None:
            return [self.maker.train_sample(*k) for k in keys]
        for key in [k for k in self.pending if k not in set(keys)]:  # ahead of a stage's end
            self.pending.pop(key).cancel()
        self._submit(keys)
        samples = [self.pending.pop(k).result() for k in keys]
        # the next step of the same stage: what the loop asks for unless the stage ends
        self._submit([(stage, step + 1, *k[2:]) for k in keys])
        return samples

    def _submit(self, keys: list[tuple]) -> None:
        assert self.pool is not None
        for key in keys:
            if key not in self.pending:
                self.pending[key] = self.pool.submit(_make, key)

    def close(self) -> None:
        if self.pool is not None:
            for future in self.pending.values():
                future.cancel()
            self.pool.shutdown(wait=True, cancel_futures=True)
            self.pool, self.pending = None, {}

    def __enter__(self) -> Prefetcher:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


__all__ = ["Prefetcher"]
