"""Assembly: exact token counts for every tokenizer, positions, order, determinism, errors."""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import pytest

from babilab.babi import QA, take_qas
from babilab.haystack import (
    FactsDoNotFitError,
    PlacementError,
    assemble,
    load_tokenizer,
    prepare_background,
)

from .conftest import TOKENIZER_KINDS

QAS = take_qas("qa1", "test", 12, seed=0)
LENGTHS = [400, 1000, 4000, 16000]


def rng(*key: int) -> np.random.Generator:
    return np.random.default_rng(key)


def check_exact(ctx, qa: QA, tokenizer, fast: bool = True) -> None:
    """The context string encodes to exactly n_tokens ids and every position hits its fact.

    fast: the count came from adding prepared sizes, not from encoding the whole context
    (what an additive tokenizer must get; the full encode would hide a wrong piece).
    """
    assert (ctx.full_ids is None) == fast
    text = ctx.text()
    ids = tokenizer.encode([text])[0]
    assert len(ids) == ctx.n_tokens
    if ctx.length_tokens:
        assert ctx.n_tokens == ctx.length_tokens - ctx.reserve_tokens
    assert text == text.strip()
    assert np.array_equal(ctx.token_ids(), np.asarray(ids, dtype=np.uint32))
    assert [p.fact for p in ctx.positions] == list(range(len(qa.facts)))  # story order
    for p in ctx.positions:
        fact = qa.facts[p.fact]
        assert text[p.char_offset:p.char_offset + len(fact)] == fact
        assert tokenizer.decode(ids[p.token_offset:p.token_offset + p.n_tokens]).strip() == fact
        assert p.depth_pct == pytest.approx(100 * p.token_offset / ctx.n_tokens)
        assert p.supporting == (p.fact in qa.supporting)
    chars = [p.char_offset for p in ctx.positions]
    assert chars == sorted(chars) and len(set(chars)) == len(chars)


@pytest.mark.parametrize("length", LENGTHS)
@pytest.mark.parametrize("placement", ["uniform", "spread", "depth:40", "window:10-30"])
def test_exact_length_and_positions_cl100k(bg, cl100k, length, placement):
    for i, qa in enumerate(QAS[:4]):
        check_exact(assemble(qa, length, rng(length, i), bg, placement=placement), qa, cl100k)


@pytest.mark.parametrize("length", [1000, 8000])
def test_exact_length_and_positions_gpt2_on_gutenberg(gutenberg_gpt2, gpt2, length):
    for i, qa in enumerate(QAS[:6]):
        check_exact(assemble(qa, length, rng(length, i), gutenberg_gpt2), qa, gpt2)


@pytest.mark.parametrize("kind", TOKENIZER_KINDS)
def test_exact_length_for_every_tokenizer_offered(books_dir, tmp_path, every_tokenizer, kind):
    tok = every_tokenizer[kind]
    bg = prepare_background(f"dir:{books_dir}", tok, split="all", cache_dir=tmp_path)
    assert bg.additive
    for i, qa in enumerate(QAS[:3]):
        for length in (500, 3000):
            check_exact(assemble(qa, length, rng(i), bg), qa, tok)


def test_non_additive_tokenizer_is_still_exact(books_dir, tmp_path, merging_tokenizer_file):
    """A BPE whose merges cross spaces: assembly falls back to full encoding, still exact."""
    tok = load_tokenizer(str(merging_tokenizer_file))
    bg = prepare_background(f"dir:{books_dir}", tok, split="all", cache_dir=tmp_path)
    assert not bg.additive
    for i, qa in enumerate(QAS[:4]):
        ctx = assemble(qa, 1500, rng(i), bg)
        text = ctx.text()
        assert len(tok.encode([text])[0]) == ctx.n_tokens == 1200
        for p in ctx.positions:
            assert text[p.char_offset:p.char_offset + len(qa.facts[p.fact])] == qa.facts[p.fact]
        assert np.array_equal(ctx.token_ids(), np.asarray(tok.encode([text])[0], np.uint32))


def test_full_verification_agrees_with_the_fast_path(bg):
    for i, qa in enumerate(QAS[:4]):
        fast = assemble(qa, 3000, rng(i), bg)
        full = assemble(qa, 3000, rng(i), bg, verify="full")
        assert fast.text() == full.text() and fast.positions == full.positions


def test_same_inputs_same_bytes_other_seed_other_haystack(bg):
    qa = QAS[0]
    a = assemble(qa, 4000, rng(1), bg)
    b = assemble(qa, 4000, rng(1), bg)
    c = assemble(qa, 4000, rng(2), bg)
    assert a.text().encode() == b.text().encode() and a.positions == b.positions
    assert a.text() != c.text()


def test_same_question_at_every_length(bg, cl100k):
    qa = QAS[5]
    texts = []
    for length in [0, 500, 2000, 8000, 32000]:
        ctx = assemble(qa, length, rng(9), bg)
        check_exact(ctx, qa, cl100k)
        texts.append(ctx.text())
    assert texts[0] == " ".join(qa.facts)  # 0 means facts only, as BABILong's 0k
    assert len(set(texts)) == len(texts)


def test_reserve_zero_fills_the_whole_length(bg, cl100k):
    ctx = assemble(QAS[0], 1234, rng(0), bg, reserve_tokens=0)
    assert ctx.n_tokens == 1234 == len(cl100k.encode([ctx.text()])[0])


def test_uniform_uses_sentence_boundaries_and_keeps_facts_whole(bg):
    ctx = assemble(QAS[3], 6000, rng(3), bg)
    text = ctx.text()
    for p in ctx.positions:
        fact = QAS[3].facts[p.fact]
        before, after = text[:p.char_offset], text[p.char_offset + len(fact):]
        assert before == "" or before.endswith(" ")
        assert after == "" or after.startswith(" ")


def test_window_and_depth_land_where_asked(bg):
    qa = QAS[7]
    for i in range(5):
        ctx = assemble(qa, 20000, rng(i), bg, placement="window:30-50")
        assert all(29 <= p.depth_pct <= 51 for p in ctx.positions)
        ctx = assemble(qa, 20000, rng(i), bg, placement="depth:75")
        support = [p for p in ctx.positions if p.supporting]
        assert support and all(abs(p.depth_pct - 75) < 1.5 for p in support)
        others = [p.depth_pct for p in ctx.positions if not p.supporting]
        assert max(np.diff(sorted(others)), default=0) > 2  # spread out, not clumped


def test_spread_is_even(bg):
    qa = QAS[4]
    ctx = assemble(qa, 20000, rng(0), bg, placement="spread")
    depths = np.array([p.depth_pct for p in ctx.positions])
    n = len(depths)
    assert np.allclose(depths, 100 * np.arange(1, n + 1) / (n + 1), atol=1.5)


def test_facts_that_do_not_fit_raise(bg):
    qa = QAS[0]
    with pytest.raises(FactsDoNotFitError, match="facts need"):
        assemble(qa, 310, rng(0), bg)
    with pytest.raises(FactsDoNotFitError):
        assemble(qa, 200, rng(0), bg)  # less than the reserve
    need = sum(p.n_tokens for p in assemble(qa, 0, rng(0), bg).positions)
    ctx = assemble(qa, 300 + need + 1, rng(0), bg)  # room for one background token
    assert ctx.n_tokens == need + 1


def test_unknown_placement_is_an_error(bg):
    for bad in ["middle", "depth:150", "window:50-10", "window:10"]:
        with pytest.raises(PlacementError):
            assemble(QAS[0], 2000, rng(0), bg, placement=bad)


def test_streaming_pieces_rebuild_the_context(bg):
    ctx = assemble(QAS[2], 50000, rng(4), bg)
    chunks = list(ctx.iter_text(max_chars=5000))
    assert max(map(len, chunks)) <= 5000 and "".join(chunks) == ctx.text()
    id_chunks = list(ctx.iter_token_ids(max_tokens=3000))
    assert max(map(len, id_chunks)) <= 3000
    assert np.array_equal(np.concatenate(id_chunks), ctx.token_ids())


def test_a_million_tokens_wrap_around_the_corpus_exactly(bg, cl100k):
    ctx = assemble(QAS[1], 1_000_000, rng(5), bg)
    assert ctx.n_tokens == 999_700 > 20 * bg.n_tokens  # the tiny corpus is reused many times
    assert len(cl100k.encoding.encode_ordinary(ctx.text())) == 999_700
    assert ctx.books[0] != ctx.books[1]


# --- provenance: spans and the repetition factor ------------------------------------------------

def span_intervals(ctx) -> list[tuple[int, int]]:
    """Each span as stream token offsets [a, b), recomputed from the book and its sentences."""
    bg = ctx.background
    out = []
    for s in ctx.spans:
        first = int(bg.book_starts[bg.book_ids.index(s.book)]) + s.first_sentence
        out.append((int(bg.tok_starts[first]), int(bg.tok_starts[first]) + s.n_tokens))
    return out


def test_spans_name_the_books_and_sentences_the_background_is_made_of(bg):
    for i, qa in enumerate(QAS[:6]):
        ctx = assemble(qa, 4000, rng(44, i), bg)
        text = ctx.text()
        assert [s.book for s in ctx.spans] == list(ctx.books)  # one span per book here
        cursor = 0
        for s in ctx.spans:
            first = int(bg.book_starts[bg.book_ids.index(s.book)]) + s.first_sentence
            assert 0 <= s.first_sentence < s.end_sentence
            # every sentence of the span but the (possibly cut) last one, in order in the text
            for k in range(first, first + s.end_sentence - s.first_sentence - 1):
                found = text.find(bg.sentence_text(k).strip(), cursor)
                assert found >= 0
                cursor = found
        # background tokens: the spans count in the prepared stream; the context re-encodes its
        # first sentence without the joining space, which may differ by a token
        assert abs(sum(s.n_tokens for s in ctx.spans) - ctx.n_background_tokens) <= 1
        assert ctx.repetition_factor == 1.0
        assert ctx.n_distinct_background_tokens == sum(s.n_tokens for s in ctx.spans)


def test_a_context_longer_than_the_corpus_reports_how_often_it_repeats(bg):
    ctx = assemble(QAS[1], 100_000, rng(5), bg)
    total = sum(s.n_tokens for s in ctx.spans)
    assert ctx.n_distinct_background_tokens == bg.n_tokens  # every sentence used, some twice
    assert ctx.repetition_factor == pytest.approx(total / bg.n_tokens)
    assert ctx.repetition_factor > 100_000 / bg.n_tokens * 0.95
    assert len({s.book for s in ctx.spans}) == bg.meta["n_books"]


def test_repetition_is_exactly_one_until_the_stream_is_used_up(bg):
    for length in (bg.n_tokens // 2, bg.n_tokens - 400):
        for seed in range(4):
            ctx = assemble(QAS[2], length, rng(length, seed), bg)
            spans = sorted(span_intervals(ctx))
            assert all(a < b <= c for (a, b), (c, _) in pairwise(spans))  # disjoint
            assert ctx.repetition_factor == 1.0
    ctx = assemble(QAS[2], bg.n_tokens + 2000, rng(9), bg)
    assert ctx.repetition_factor > 1.0


ALL_OFFLINE = "gutenberg+austen+sotu+bible+shakespeare"


@pytest.fixture(scope="module")
def offline_test_split(gpt2):
    """Every offline corpus's test books, prepared for gpt2 (user cache; fetched once)."""
    from .conftest import packaged_or_skip

    for name in ("austen", "sotu", "bible", "shakespeare"):
        packaged_or_skip(name)
    return prepare_background(ALL_OFFLINE, gpt2, split="test")


@pytest.mark.slow
def test_a_million_token_test_context_from_the_offline_corpora_repeats_nothing(
        offline_test_split):
    bg = offline_test_split
    assert bg.n_tokens > 1_000_000 and bg.meta["disjoint_splits"]
    for seed in range(3):
        ctx = assemble(QAS[seed], 1_000_000, rng(1_000_000, seed), bg)
        assert ctx.n_tokens == 999_700
        assert ctx.repetition_factor == 1.0
        spans = sorted(span_intervals(ctx))
        assert all(b <= c for (_, b), (c, _) in pairwise(spans))  # no span twice
        assert len({s.book for s in ctx.spans}) > 20  # most of the test split's books
