"""Offline sentence splitting for background books: rules, no model, no NLTK data.

BABILong splits PG-19 with NLTK's untrained Punkt. Untrained Punkt knows no abbreviations, so
it splits at "Mr." and after "!" inside dialogue. This splitter is a few regex rules instead,
about as good on Gutenberg prose and needing nothing downloaded:

- a blank line always ends a sentence (so headings and verse lines stand alone);
- otherwise a sentence ends at . ! or ? (plus closing quotes or brackets) followed by
  whitespace and a capital letter or digit (optionally behind an opening quote);
- except after a known title abbreviation ("Mr.", "Dr.", "St.") or a single capital initial
  ("G. K. Chesterton").

By default whitespace inside a sentence (hard line wraps) is collapsed to single spaces:
bAbI facts carry no line wraps, so keeping them would mark every fact as the only unwrapped
text in the haystack. `keep_newlines=True` keeps BABILong's raw text instead.

Owns splitting only; the minimum sentence length (in tokens) is applied in prepare.py, which
knows the tokenizer. Bump SPLITTER_VERSION whenever output changes for the same input.
"""

from __future__ import annotations

import re

SPLITTER_VERSION = "1"

# Title-like abbreviations that almost never end a sentence before a capitalised word.
_ABBREVIATIONS = frozenset({
    "mr", "mrs", "ms", "messrs", "mme", "mlle", "dr", "st", "prof", "rev", "hon", "sr", "jr",
    "capt", "col", "gen", "lt", "sgt", "maj", "adm", "gov", "esq", "mt", "ft", "vs", "viz",
    "cf", "vol", "ch", "pp",
})
_PARAGRAPH = re.compile(r"\n(?:[ \t]*\n)+")
_CAPITAL = "A-Z0-9\u00c0-\u00d6\u00d8-\u00de"
_BOUNDARY = re.compile(
    r"([.!?]+)([\"'\u2019\u201d)\]_*]*)\s+(?=[\"'\u2018\u201c(\[_]*[" + _CAPITAL + "])")
_WORD_BEFORE = re.compile(r"([A-Za-z]+)$")


def _is_abbreviation(para: str, m: re.Match[str]) -> bool:
    if m.group(1) != "." or m.group(2):
        return False
    word = _WORD_BEFORE.search(para, max(0, m.start() - 12), m.start())
    if word is None:
        return False
    w = word.group(1)
    return w.lower() in _ABBREVIATIONS or (len(w) == 1 and w.isupper())


def split_sentences(text: str, keep_newlines: bool = False) -> list[str]:
    """Sentences of `text` in order, stripped, never empty.

    >>> split_sentences('Mr. Smith came.  "Oh!" said\\nshe. It rained.\\n\\nCHAPTER II')
    ['Mr. Smith came.', '"Oh!" said she.', 'It rained.', 'CHAPTER II']
    """
    out: list[str] = []
    for para in _PARAGRAPH.split(text):
        start = 0
        for m in _BOUNDARY.finditer(para):
            if _is_abbreviation(para, m):
                continue
            out.append(para[start:m.end(2)])
            start = m.end()
        out.append(para[start:])
    if keep_newlines:
        return [s for s in (s.strip() for s in out) if s]
    return [s for s in (" ".join(s.split()) for s in out) if s]


__all__ = ["SPLITTER_VERSION", "split_sentences"]
