"""Prepared backgrounds: array layout, the length filter, additivity, and the cache key."""

from __future__ import annotations

import numpy as np

from babilab.haystack import prepare_background
from babilab.haystack.prepare import encode_in_context


def test_arrays_describe_each_kept_sentence(bg, cl100k):
    n = bg.n_sentences
    assert bg.char_starts.shape == bg.tok_starts.shape == (n + 1,)
    assert len(bg.text) == bg.char_starts[-1] and len(bg.ids) == bg.tok_starts[-1]
    sample = list(range(0, n, max(1, n // 50)))
    texts = [bg.sentence_text(i) for i in sample]
    assert all(t.startswith(" ") and not t[1].isspace() and t == t.rstrip() for t in texts)
    for i, ids in zip(sample, encode_in_context(cl100k, texts), strict=True):
        assert bg.sentence_ids(i).tolist() == ids
    lengths = np.diff(bg.tok_starts)
    assert lengths.min() >= 10  # BABILong's minimum sentence length
    assert "CHAPTER" not in bg.text  # headings are sentences of < 10 tokens: dropped
    assert bg.meta["n_dropped_short"] > 0


def test_books_are_laid_end_to_end(bg):
    assert bg.book_ids == ["book0", "book1", "book2", "book3"]
    assert bg.book_starts[0] == 0 and bg.book_starts[-1] == bg.n_sentences
    assert np.all(np.diff(bg.book_starts) > 0)
    assert bg.book_of(0) == "book0" and bg.book_of(bg.n_sentences - 1) == "book3"


def test_stream_is_additive_for_cl100k(bg, cl100k):
    assert bg.additive
    # the whole stream encoded as one running text gives exactly the per-sentence ids
    assert encode_in_context(cl100k, [bg.text])[0] == bg.ids.tolist()


def test_cached_by_content_and_settings(books_dir, cache_dir, cl100k, bg):
    again = prepare_background(f"dir:{books_dir}", cl100k, split="all", cache_dir=cache_dir)
    assert again.folder == bg.folder and again.fingerprint == bg.fingerprint
    other = prepare_background(f"dir:{books_dir}", cl100k, split="all", cache_dir=cache_dir,
                               min_sentence_tokens=20)
    assert other.fingerprint != bg.fingerprint
    assert np.diff(other.tok_starts).min() >= 20
    wrapped = prepare_background(f"dir:{books_dir}", cl100k, split="all", cache_dir=cache_dir,
                                 keep_newlines=True)
    assert "\n" in wrapped.text and "\n" not in bg.text


def test_a_merging_tokenizer_is_found_non_additive(books_dir, tmp_path, merging_tokenizer_file):
    merged = prepare_background(f"dir:{books_dir}", str(merging_tokenizer_file), split="all",
                                cache_dir=tmp_path)
    assert not merged.additive and merged.meta["non_additive_windows"] > 0
