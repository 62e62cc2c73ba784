"""The haystack: background corpora, sentence splitting, token-exact assembly, placement.

    >>> import numpy as np
    >>> from babilab.babi import take_qas
    >>> from babilab.haystack import assemble, prepare_background
    >>> bg = prepare_background("gutenberg", "gpt2", split="test")   # doctest: +SKIP
    >>> qa = take_qas("qa1", "test", 1)[0]                           # doctest: +SKIP
    >>> ctx = assemble(qa, 8000, np.random.default_rng(0), bg)        # doctest: +SKIP
    >>> ctx.n_tokens, [round(p.depth_pct, 1) for p in ctx.positions]  # doctest: +SKIP
    (7700, [3.0, 24.6])

Flow: corpora.py (books; packaged.py and rdata.py read the pinned offline packages) ->
sentences.py (sentences) -> prepare.py (pre-tokenised stream per tokenizer, cached on disk) ->
assemble.py (+ placement.py) -> `Context`, with its background's provenance (`Span`s, the
repetition factor). Knows nothing about models or prompts: the suite layer turns a `Context`
and its question into a sample.
"""

from .assemble import ASSEMBLY_VERSION, Context, FactPosition, Span, assemble
from .corpora import (
    GUTENBERG_BOOKS,
    PG19,
    Combined,
    Corpus,
    Document,
    open_corpus,
    split_books,
    strip_gutenberg_boilerplate,
)
from .errors import (
    AssemblyError,
    ChecksumError,
    CorpusError,
    FactsDoNotFitError,
    FetchError,
    HaystackError,
    PlacementError,
    UnknownTokenizerError,
)
from .placement import Placement, parse_placement
from .prepare import Background, prepare_background
from .sentences import split_sentences
from .tokenizer import Tokenizer, load_tokenizer

__all__ = [
    "ASSEMBLY_VERSION", "GUTENBERG_BOOKS", "PG19", "AssemblyError", "Background", "ChecksumError",
    "Combined", "Context", "Corpus", "CorpusError", "Document", "FactPosition",
    "FactsDoNotFitError", "FetchError", "HaystackError", "Placement", "PlacementError", "Span",
    "Tokenizer", "UnknownTokenizerError",
    "assemble", "load_tokenizer", "open_corpus", "parse_placement", "prepare_background",
    "split_books", "split_sentences", "strip_gutenberg_boilerplate",
]
