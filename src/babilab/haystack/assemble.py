"""Token-exact assembly: one context of bAbI facts hidden in background text.

    >>> bg = prepare_background("gutenberg", "gpt2")                         # doctest: +SKIP
    >>> ctx = assemble(qa, 4000, np.random.default_rng(0), bg)               # doctest: +SKIP
    >>> ctx.n_tokens, len(bg.tokenizer.encode([ctx.text()])[0])              # doctest: +SKIP
    (3700, 3700)

How a context of nominal length L is built (as in BABILong, arXiv 2406.10149; made exact):

1. Target: the context (facts + background) gets exactly L - reserve tokens, measured by
   encoding the final string with the background's tokenizer. L = 0 means facts only.
   Facts needing more than the target raise `FactsDoNotFitError` (the caller counts drops).
2. Background: a random book, a random sentence in it, then whole sentences of the prepared
   stream (continuing into the next book, wrapping at the end) until the next one would not
   fit; that one is cut at token level to fill the rest exactly. A cut that would not
   re-encode to the same count (a half word that tokenises differently, a split character)
   is not used: that sentence is left out and the next one is tried.
3. Placement: the policy (placement.py) picks a slot between background sentences for each
   fact, in story order.
4. Joining: every piece is " " + text, so the joins are where GPT-2-style pre-tokenizers split
   anyway, and counts add up. The context's first piece loses its space and is re-encoded.
   Only the few joins that the prepared stream has not already proven (fact/background,
   the cut sentence, a left-out sentence) are checked, by encoding each join alone.
5. Fix-up: if the measured count is off (a re-encoded first piece, a join that merged), the
   background budget is corrected by the difference and steps 2-4 run again with the same
   random draws. (If that oscillates, which only a non-additive tokenizer can make happen,
   the background restarts one sentence later.)

When the prepared stream is not additive, a join check fails, or `verify="full"`, step 4
encodes the whole context instead (exact for any tokenizer, but it costs a full encode).

The result is a plan: a handful of pieces that reference the prepared arrays. It can be turned
into one string (`text()`), streamed as text or token-id chunks, and reports every fact's
character offset, token offset and depth without building the string.

Provenance: `Context.spans` says which stretch of which book each part of the background is
(book id, the book's sentences [first, end) as the prepared background numbers them, tokens),
and `repetition_factor` how often the background repeats itself: background tokens /
distinct background tokens, counted in the prepared stream. It is exactly 1.0 when no
sentence (or part of one) appears twice, and about L / stream size once the background wraps
around the whole stream. Facts are not background and never count.

Owns assembly and positions. Does not own where the sentences come from (corpora.py,
prepare.py), slot choice (placement.py) or anything about prompts and models.
Longer than 450 lines on purpose: one algorithm, its numbered steps in order on one page, and
the provenance it reports is read off the same private pieces.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from ..babi.story import QA
from .errors import AssemblyError, FactsDoNotFitError, HaystackError
from .placement import Placement, parse_placement
from .prepare import ANCHOR, Background, encode_in_context

ASSEMBLY_VERSION = "1"  # bump whenever the same inputs would assemble a different context
MAX_ROUNDS = 32  # fix-up rounds before giving up; one is the norm, two is rare
ROUNDS_PER_START = 6  # then the background restarts one sentence later (see assemble)
MAX_SKIPS = 1000  # sentences that may be left out in a row when no clean cut is found
_CUT_TRIES = (0, -1, 1, -2, 2, -3, 3)  # token prefixes of a cut sentence tried, around k


@dataclass(frozen=True)
class FactPosition:
    fact: int  # index into QA.facts
    char_offset: int  # context[char_offset:char_offset + len(fact)] == fact
    token_offset: int  # first token of the fact in encode(context); it carries the joining space
    n_tokens: int
    depth_pct: float  # 100 * token_offset / context tokens
    supporting: bool


@dataclass(frozen=True)
class _Run:
    """Stream sentences [lo, hi) of the prepared background, each with its leading space."""

    lo: int
    hi: int


@dataclass(frozen=True)
class _Text:
    """A fact, a cut sentence, or the context's first piece (which has no leading space)."""

    text: str
    ids: tuple[int, ...]
    fact: int = -1  # index into the facts; -1 for background text
    sentence: int = -1  # the stream sentence this background text comes from


Piece = _Run | _Text


@dataclass(frozen=True)
class Span:
    """One stretch of one book in a context's background, in order of appearance."""

    book: str
    first_sentence: int  # the book's kept sentences (>= min_sentence_tokens), from 0
    end_sentence: int  # exclusive
    n_tokens: int  # background tokens taken; a cut last sentence counts only its prefix

    def as_dict(self) -> dict:
        return {"book": self.book, "sentences": [self.first_sentence, self.end_sentence],
                "tokens": self.n_tokens}


@dataclass(frozen=True, eq=False)
class Context:
    """One assembled context: the plan, its exact size, and where every fact is."""

    length_tokens: int  # nominal length L
    reserve_tokens: int  # tokens left for the prompt; n_tokens == L - reserve unless L == 0
    n_tokens: int  # tokens of text() when encoded alone
    n_chars: int
    n_background_tokens: int
    placement: str
    positions: tuple[FactPosition, ...]  # one per fact, in story order
    books: tuple[str, ...]  # book ids the background came from, in order of appearance
    spans: tuple[Span, ...]  # the background's stretches of books, in order
    n_distinct_background_tokens: int  # stream tokens used at least once
    pieces: tuple[Piece, ...] = field(repr=False)
    background: Background = field(repr=False)
    full_ids: np.ndarray | None = field(default=None, repr=False)  # set when fully encoded

    @property
    def repetition_factor(self) -> float:
        """Background tokens / distinct background tokens: 1.0 when no text repeats."""
        total = sum(s.n_tokens for s in self.spans)
        return total / self.n_distinct_background_tokens if total else 1.0

    def iter_text(self, max_chars: int = 1 << 22) -> Iterator[str]:
        """The context as consecutive text chunks of at most `max_chars` characters."""
        bg = self.background
        for p in self.pieces:
            if isinstance(p, _Text):
                yield p.text
                continue
            a, b = int(bg.char_starts[p.lo]), int(bg.char_starts[p.hi])
            for s in range(a, b, max_chars):
                yield bg.text[s:min(s + max_chars, b)]

    def text(self) -> str:
        return "".join(self.iter_text())

    def iter_token_ids(self, max_tokens: int = 1 << 20) -> Iterator[np.ndarray]:
        """encode(text()) as consecutive uint32 chunks of at most `max_tokens` ids."""
        if self.full_ids is not None:
            for s in range(0, len(self.full_ids), max_tokens):
                yield self.full_ids[s:s + max_tokens]
            return
        bg = self.background
        for p in self.pieces:
            if isinstance(p, _Text):
                yield np.asarray(p.ids, dtype=np.uint32)
                continue
            a, b = int(bg.tok_starts[p.lo]), int(bg.tok_starts[p.hi])
            for s in range(a, b, max_tokens):
                yield np.array(bg.ids[s:min(s + max_tokens, b)])  # a copy, not a memmap view

    def token_ids(self) -> np.ndarray:
        return np.concatenate(list(self.iter_token_ids()))


# --- 2. background: whole sentences, then one cut to fit ---------------------------------------

def _decode_in_context(bg: Background, ids: Sequence[int]) -> str:
    text = bg.tokenizer.decode([*bg.anchor_ids, *ids])
    return text[len(ANCHOR):] if text.startswith(ANCHOR) else bg.tokenizer.decode(ids)


def _cut(bg: Background, i: int, k: int) -> _Text | None:
    """A prefix of sentence i that encodes to exactly k tokens in running text, or None.

    The prefix must be a true prefix of the sentence text (no split character) and must not
    end in whitespace (which could merge with the next piece's joining space). For a
    non-additive tokenizer counts are only estimates until the whole context is encoded, so
    the prefix nearest k is taken and the fix-up loop corrects the rest.
    """
    text, ids = bg.sentence_text(i), bg.sentence_ids(i).tolist()
    candidates: list[str] = []
    for d in _CUT_TRIES:
        j = k + d
        if 1 <= j < len(ids):
            prefix = _decode_in_context(bg, ids[:j])
            if (len(prefix) > 1 and text.startswith(prefix) and not prefix[-1].isspace()
                    and prefix not in candidates):
                candidates.append(prefix)
    encoded = encode_in_context(bg.tokenizer, candidates)
    for prefix, got in zip(candidates, encoded, strict=True):
        if len(got) == k:
            return _Text(prefix, tuple(got), sentence=i)
    if bg.additive or not candidates:
        return None
    best = min(range(len(candidates)), key=lambda c: abs(len(encoded[c]) - k))
    return _Text(candidates[best], tuple(encoded[best]), sentence=i)


def _fit_background(bg: Background, start: int, budget: int) -> list[Piece]:
    """Background pieces from sentence `start` on, holding exactly `budget` tokens."""
    units: list[Piece] = []
    ts, n = bg.tok_starts, bg.n_sentences
    i = lo = start
    remaining, skips = budget, 0
    while remaining > 0:
        # j: the first sentence that no longer fits whole (n when the stream end fits)
        j = int(np.searchsorted(ts, ts[i] + remaining, side="right")) - 1
        remaining -= int(ts[j] - ts[i])
        if j == n:  # the rest of the stream fits: take it and wrap to the first sentence
            if n > lo:
                units.append(_Run(lo, n))
            i = lo = 0
            continue
        i = j
        if remaining == 0:
            break
        cut = _cut(bg, i, remaining)
        if i > lo:
            units.append(_Run(lo, i))
        if cut is not None:
            units.append(cut)
            return units
        skips += 1  # no clean cut of sentence i: leave it out, try the next one
        if skips > MAX_SKIPS:
            raise AssemblyError(f"no sentence of {bg.meta['corpus']} can be cut to "
                                f"{remaining} tokens")
        i = lo = (i + 1) % n
    if i > lo:
        units.append(_Run(lo, i))
    return units


def _unit_lengths(bg: Background, units: Sequence[Piece]) -> np.ndarray:
    """(m,) tokens of each background sentence, in order."""
    parts = [np.diff(bg.tok_starts[u.lo:u.hi + 1]) if isinstance(u, _Run)
             else np.array([len(u.ids)]) for u in units]
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)


# --- 3/4. interleave facts, strip the first space ---------------------------------------------

def _interleave(units: Sequence[Piece], facts: Sequence[_Text], slots: np.ndarray,
                m: int) -> list[Piece]:
    out: list[Piece] = []
    u = off = cursor = 0  # current unit, sentences used from it, background sentences emitted

    def take(until: int) -> None:
        nonlocal u, off, cursor
        while cursor < until:
            unit = units[u]
            size = unit.hi - unit.lo if isinstance(unit, _Run) else 1
            n = min(size - off, until - cursor)
            out.append(_Run(unit.lo + off, unit.lo + off + n) if isinstance(unit, _Run) else unit)
            off += n
            cursor += n
            if off == size:
                u, off = u + 1, 0

    for fact, slot in zip(facts, slots.tolist(), strict=True):
        take(slot)
        out.append(fact)
    take(m)
    return out


def _strip_first(bg: Background, pieces: list[Piece]) -> list[Piece]:
    """Drop the joining space of the context's first piece and re-encode that piece alone."""
    if not pieces:
        return pieces
    first, rest = pieces[0], pieces[1:]
    if isinstance(first, _Run):
        if first.hi > first.lo + 1:
            rest = [_Run(first.lo + 1, first.hi), *rest]
        first = _Text(bg.sentence_text(first.lo), (), sentence=first.lo)
    text = first.text[1:]
    return [replace(first, text=text, ids=tuple(bg.tokenizer.encode([text])[0])), *rest]


# --- 4. measure -------------------------------------------------------------------------------

@dataclass
class _Measure:
    n_tokens: int
    n_chars: int
    facts: list[tuple[int, int, int, int]]  # (fact, char offset, token offset, n tokens)
    full_ids: np.ndarray | None = None


def _edge(bg: Background, p: Piece, last: bool) -> tuple[str, list[int]]:
    if isinstance(p, _Text):
        return p.text, list(p.ids)
    i = p.hi - 1 if last else p.lo
    return bg.sentence_text(i), bg.sentence_ids(i).tolist()


def _measure_fast(bg: Background, pieces: Sequence[Piece]) -> _Measure | None:
    """Count by adding piece sizes; None if a join does not encode to its two sides' ids."""
    ts, cs, n = bg.tok_starts, bg.char_starts, bg.n_sentences
    tok = char = 0
    facts = []
    for k, p in enumerate(pieces):
        if isinstance(p, _Run):
            nt, nc = int(ts[p.hi] - ts[p.lo]), int(cs[p.hi] - cs[p.lo])
        else:
            nt, nc = len(p.ids), len(p.text)
            if p.fact >= 0:
                facts.append((p.fact, char + (k > 0), tok, nt))
        tok, char = tok + nt, char + nc
    # Joins not proven at preparation: everything but stream neighbours (incl. the wrap).
    first_join: list[tuple[str, list[int]]] = []
    other_joins: list[tuple[str, list[int]]] = []
    for k in range(1, len(pieces)):
        left, right = pieces[k - 1], pieces[k]
        if (isinstance(left, _Run) and isinstance(right, _Run)
                and (left.hi == right.lo or (left.hi == n and right.lo == 0))):
            continue
        (lt, li), (rt, ri) = _edge(bg, left, True), _edge(bg, right, False)
        (first_join if k == 1 else other_joins).append((lt + rt, li + ri))
    checks = [(bg.tokenizer.encode, first_join), (lambda t: encode_in_context(bg.tokenizer, t),
                                                  other_joins)]
    for encode, joins in checks:
        if joins and encode([t for t, _ in joins]) != [ids for _, ids in joins]:
            return None
    return _Measure(tok, char, facts)


def _measure_full(bg: Background, pieces: Sequence[Piece]) -> _Measure:
    """Count by encoding the whole context; fact token offsets from the token start offsets."""
    texts = [p.text if isinstance(p, _Text)
             else bg.text[bg.char_starts[p.lo]:bg.char_starts[p.hi]] for p in pieces]
    text = "".join(texts)
    ids, starts = bg.tokenizer.encode_offsets(text)
    facts, char = [], 0
    for k, (p, t) in enumerate(zip(pieces, texts, strict=True)):
        if isinstance(p, _Text) and p.fact >= 0:
            first = bisect.bisect_right(starts, char) - 1  # the token holding the joining space
            last = bisect.bisect_right(starts, char + len(t) - 1) - 1
            facts.append((p.fact, char + (k > 0), max(first, 0), last - max(first, 0) + 1))
        char += len(t)
    return _Measure(len(ids), len(text), facts, np.asarray(ids, dtype=np.uint32))


# --- the public function ----------------------------------------------------------------------

def assemble(qa: QA, length_tokens: int, rng: np.random.Generator, background: Background, *,
             placement: str | Placement = "uniform", reserve_tokens: int = 300,
             verify: str = "auto") -> Context:
    """Hide `qa.facts` in background text: a context of exactly length - reserve tokens.

    rng: the sample's own generator; it picks the book, the start sentence and the slots.
    verify: "auto" trusts the prepared stream's additivity and checks only the new joins;
    "full" encodes the whole context (exact for any tokenizer, slower).
    The same `qa` can be assembled at every length; only the background changes.
    """
    if verify not in ("auto", "full"):
        raise HaystackError(f"verify must be 'auto' or 'full', got {verify!r}")
    if length_tokens < 0 or reserve_tokens < 0:
        raise HaystackError(f"length and reserve must be >= 0, got {length_tokens}, "
                            f"{reserve_tokens}")
    policy = parse_placement(placement)
    fact_texts = [f.strip() for f in qa.facts]
    if not all(fact_texts):
        raise HaystackError("a fact is empty")
    fact_ids = encode_in_context(background.tokenizer, [" " + f for f in fact_texts])
    facts = [_Text(" " + f, tuple(ids), fact=k)
             for k, (f, ids) in enumerate(zip(fact_texts, fact_ids, strict=True))]
    fact_lengths = np.array([len(ids) for ids in fact_ids], dtype=np.int64)
    need = int(fact_lengths.sum())

    facts_only = length_tokens == 0  # BABILong's "0k": the facts alone, no target
    target = need if facts_only else length_tokens - reserve_tokens
    if target < need or target <= 0:
        raise FactsDoNotFitError(
            f"{len(facts)} facts need {need} tokens; length {length_tokens} minus the "
            f"{reserve_tokens}-token reserve leaves {target}")
    start = 0 if facts_only else background.random_start(rng)
    draws = policy.draw(rng, len(facts))

    budget = target - need
    full = verify == "full" or not background.additive
    for round_ in range(MAX_ROUNDS):
        if round_ and round_ % ROUNDS_PER_START == 0 and not facts_only:
            # The fix-ups oscillate: a join merges one way at one budget and the other way at
            # the next. Only a non-additive tokenizer gets here; a background that starts one
            # sentence later has other joins (same draws, so still deterministic).
            start = (start + 1) % background.n_sentences
        units = _fit_background(background, start, budget)
        bg_lengths = _unit_lengths(background, units)
        slots = policy.slots(draws, bg_lengths, fact_lengths, qa.supporting)
        pieces = _strip_first(background, _interleave(units, facts, slots, len(bg_lengths)))
        measure = None if full else _measure_fast(background, pieces)
        if measure is None:
            measure = _measure_full(background, pieces)
        if facts_only or measure.n_tokens == target:
            break
        budget -= measure.n_tokens - target
        if budget < 0:
            raise FactsDoNotFitError(f"{len(facts)} facts need {need - budget} tokens once "
                                     f"joined; only {target} are available")
    else:
        raise AssemblyError(f"could not reach exactly {target} tokens in {MAX_ROUNDS} rounds "
                            f"(last: {measure.n_tokens})")

    supporting = set(qa.supporting)
    spans, distinct = _provenance(background, pieces)
    n = max(measure.n_tokens, 1)
    positions = tuple(FactPosition(fact=f, char_offset=c, token_offset=t, n_tokens=nt,
                                   depth_pct=100.0 * t / n, supporting=f in supporting)
                      for f, c, t, nt in measure.facts)
    return Context(
        length_tokens=length_tokens, reserve_tokens=reserve_tokens,
        n_tokens=measure.n_tokens, n_chars=measure.n_chars,
        n_background_tokens=measure.n_tokens - sum(p.n_tokens for p in positions),
        placement=policy.name, positions=positions, books=_books(background, pieces),
        spans=spans, n_distinct_background_tokens=distinct,
        pieces=tuple(pieces), background=background, full_ids=measure.full_ids)


def _books(bg: Background, pieces: Sequence[Piece]) -> tuple[str, ...]:
    out: list[str] = []
    for p in pieces:
        if isinstance(p, _Run):
            a = int(np.searchsorted(bg.book_starts, p.lo, side="right")) - 1
            b = int(np.searchsorted(bg.book_starts, p.hi - 1, side="right")) - 1
            ids = bg.book_ids[a:b + 1]
        elif p.sentence >= 0:
            ids = [bg.book_of(p.sentence)]
        else:
            continue
        for book in ids:
            if not out or out[-1] != book:
                out.append(book)
    return tuple(out)


def _stream_intervals(bg: Background, pieces: Sequence[Piece]) -> list[tuple[int, int, int, bool]]:
    """(first sentence, end sentence, tokens, whole) of each background piece, in stream
    coordinates, cut at book boundaries; `whole` is False for a sentence's prefix (a cut)."""
    out = []
    bs, ts = bg.book_starts, bg.tok_starts
    for p in pieces:
        if isinstance(p, _Run):
            lo = p.lo
            while lo < p.hi:
                book = int(np.searchsorted(bs, lo, side="right")) - 1
                hi = min(p.hi, int(bs[book + 1]))
                out.append((lo, hi, int(ts[hi] - ts[lo]), True))
                lo = hi
        elif p.sentence >= 0:  # a cut sentence, or the first piece (its space stripped)
            i = p.sentence
            size = int(ts[i + 1] - ts[i])
            whole = p.text.strip() == bg.sentence_text(i).strip()
            # The first piece is re-encoded without its space: count it as its stream tokens
            out.append((i, i + 1, size if whole else min(len(p.ids), size), whole))
    return out


def _provenance(bg: Background, pieces: Sequence[Piece]) -> tuple[tuple[Span, ...], int]:
    """The background's spans (adjacent stretches of one book merged) and its distinct tokens."""
    spans: list[list] = []  # [book index, first, end, tokens, whole]
    covered: list[tuple[int, int]] = []  # stream token intervals [a, b)
    bs, ts = bg.book_starts, bg.tok_starts
    for lo, hi, n, whole in _stream_intervals(bg, pieces):
        covered.append((int(ts[lo]), int(ts[lo]) + n))
        book = int(np.searchsorted(bs, lo, side="right")) - 1
        last = spans[-1] if spans else None
        if last is not None and last[0] == book and last[2] == lo and last[4]:
            last[2], last[3], last[4] = hi, last[3] + n, whole
        else:
            spans.append([book, lo, hi, n, whole])
    distinct, reach = 0, -1
    for a, b in sorted(covered):  # the length of the union of the intervals
        if b > reach:
            distinct += b - max(a, reach)
            reach = b
    out = tuple(Span(bg.book_ids[book], lo - int(bs[book]), hi - int(bs[book]), n)
                for book, lo, hi, n, _ in spans)
    return out, distinct


__all__ = ["ASSEMBLY_VERSION", "Context", "FactPosition", "Span", "assemble"]
