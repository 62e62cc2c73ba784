"""The haystack's exception types: one class per way assembly or preparation can fail.

All derive from `BabilabError`, so the CLI prints their one-line message and exits non-zero.
`FactsDoNotFitError` is the one callers are expected to catch and count (a dropped sample).
"""

from __future__ import annotations

from ..errors import BabilabError


class HaystackError(BabilabError):
    """Something in background preparation or assembly went wrong."""


class CorpusError(HaystackError):
    """A corpus cannot be read or holds no usable text."""


class FetchError(HaystackError):
    """A download through npm or pip failed."""


class ChecksumError(FetchError):
    """A downloaded file does not have its pinned sha256."""


class UnknownTokenizerError(HaystackError):
    """A tokenizer name that is neither a known name nor an existing path."""


class PlacementError(HaystackError):
    """A placement policy name or argument that cannot be parsed."""


class FactsDoNotFitError(HaystackError):
    """The facts alone need more tokens than the context length allows (a dropped sample)."""


class AssemblyError(HaystackError):
    """Assembly could not reach the exact token count (should not happen; please report)."""


__all__ = [
    "AssemblyError", "ChecksumError", "CorpusError", "FactsDoNotFitError", "FetchError",
    "HaystackError", "PlacementError", "UnknownTokenizerError",
]
