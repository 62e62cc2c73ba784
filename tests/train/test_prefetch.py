"""Prefetching: worker processes hand the loop exactly the samples it would make inline."""

import numpy as np
import pytest
from transformers import AutoTokenizer

from babilab.haystack import prepare_background
from babilab.train.data import SampleMaker, haystack_tokenizer
from babilab.train.prefetch import Prefetcher

from .train_fixtures import SEGMENT


@pytest.fixture(scope="module")
def maker(tmp_path_factory, backbone, corpus):
    tokenizer = AutoTokenizer.from_pretrained(backbone)
    background = prepare_background(f"dir:{corpus}", haystack_tokenizer(tokenizer, "tiny"),
                                     split="train", cache_dir=tmp_path_factory.mktemp("cache"))
    return SampleMaker(tokenizer, background, layout="memory", segment_size=SEGMENT,
                       tasks=["qa1", "qa2"], seed=0, eos_id=tokenizer.eos_token_id,
                       questions_per_sample=2, facts_before_last=0.5)


def same(a, b) -> bool:
    return (np.array_equal(a.input_ids, b.input_ids) and np.array_equal(a.labels, b.labels)
            and (a.story_index, a.question, a.n_segments) == (b.story_index, b.question,
                                                             b.n_segments))


def test_workers_make_the_inline_samples_in_order(maker):
    rows = [1, 3, 5]
    # steps in order, a stage change (the prefetched step is dropped), then a jump (a resume)
    positions = [(0, 0, 2), (0, 1, 2), (0, 2, 2), (1, 0, 3), (1, 1, 3), (1, 7, 3)]
    with Prefetcher(maker, workers=2) as ahead:
        assert ahead.pool is not None
        for stage, step, segments in positions:
            got = ahead.get(stage, step, rows, segments, True, 0.25)
            want = [maker.train_sample(stage, step, r, segments, True, 0.25) for r in rows]
            assert all(same(g, w) for g, w in zip(got, want, strict=True))
        assert set(ahead.pending) == {(1, 8, r, 3, True, 0.25) for r in rows}
    assert ahead.pool is None and not ahead.pending


def test_no_workers_is_inline(maker):
    with Prefetcher(maker, workers=0) as inline:
        assert inline.pool is None
        got = inline.get(0, 4, [0, 1], 2, True, 0.0)
    assert all(same(g, maker.train_sample(0, 4, r, 2, True, 0.0))
               for g, r in zip(got, [0, 1], strict=True))
