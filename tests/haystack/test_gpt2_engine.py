"""`gpt2` runs the cached tokenizer.json's BPE on tiktoken's engine: it must give the ids,
offsets and text that tokenizers' engine gives for that file, keep its fingerprint, and fall
back to tokenizers' engine for a file of another kind."""

from __future__ import annotations

import json
import random

import pytest

from babilab.haystack.tokenizer import (
    GPT2_GGUF,
    GPT2_RANKS,
    GPT2Tokenizer,
    HFTokenizer,
    byte_level_ranks,
    ensure_gpt2_files,
    load_tokenizer,
)


@pytest.fixture(scope="module")
def engines(gpt2):
    files = ensure_gpt2_files()
    return gpt2, HFTokenizer.from_file(files / "tokenizer.json", "gpt2 file")


def tricky_texts() -> list[str]:
    files = ensure_gpt2_files()
    vectors = (files / f"{GPT2_GGUF}.inp").read_text(encoding="utf-8").split("\n__ggml_vocab_test__\n")
    rng = random.Random(0)
    # spaces, digits, apostrophes, accents, combining marks, CJK, emoji, controls, the EOS string
    alphabet = " \t\n\r'sdmtlvre0123456789aZé\u0301€中🦙.,!?-_<|>endoftext\u00a0\u2028"
    noise = ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40))) for _ in range(400)]
    return [*vectors, *noise, "<|endoftext|>", " 's 're 'LL", "x" * 5000]


def test_same_ids_offsets_and_text_as_the_tokenizer_json(engines):
    fast, reference = engines
    assert isinstance(fast, GPT2Tokenizer) and fast.fingerprint == reference.fingerprint
    texts = tricky_texts()
    ids = fast.encode(texts)
    assert ids == reference.encode(texts)
    assert fast.encode(texts[:3]) == ids[:3]  # the unthreaded small-batch path too
    for text, one in zip(texts, ids, strict=True):
        assert fast.encode_offsets(text) == reference.encode_offsets(text), repr(text)
        assert fast.decode(one) == reference.decode(one) == text


def test_same_ids_on_whole_books(engines, gutenberg_gpt2):
    fast, reference = engines
    text = gutenberg_gpt2.text
    chunks = [text[i:i + 200_000] for i in range(0, len(text), 200_000)]
    assert fast.encode(chunks) == reference.encode(chunks)


def test_ranks_are_cached_and_a_torn_file_is_rebuilt(tmp_path, gpt2):
    cache = tmp_path / "cache"
    files = ensure_gpt2_files()
    # a private cache holding only the converted files, so the ranks are derived here
    mine = cache / "tokenizers" / files.name
    mine.mkdir(parents=True)
    for name in ("tokenizer.json", GPT2_GGUF):
        (mine / name).write_bytes((files / name).read_bytes())
    first = load_tokenizer("gpt2", cache_dir=cache)
    ranks = mine / GPT2_RANKS
    assert ranks.is_file() and first.encode(["Hello world"]) == [[15496, 995]]
    ranks.write_bytes(ranks.read_bytes()[:1000])  # torn: derived again, same ids
    again = load_tokenizer("gpt2", cache_dir=cache)
    assert again.encode(["Hello world"]) == [[15496, 995]] and again.fingerprint == gpt2.fingerprint


def test_only_gpt2s_kind_of_file_gets_the_fast_engine():
    spec = json.loads((ensure_gpt2_files() / "tokenizer.json").read_text(encoding="utf-8"))
    assert len(byte_level_ranks(spec)) == 50256
    swapped = json.loads(json.dumps(spec))
    merges = swapped["model"]["merges"]
    merges[0], merges[1] = merges[1], merges[0]  # merge order no longer follows the ids
    assert byte_level_ranks(swapped) is None
    prefixed = json.loads(json.dumps(spec))
    prefixed["pre_tokenizer"]["add_prefix_space"] = True
    assert byte_level_ranks(prefixed) is None
    normalized = {**spec, "normalizer": {"type": "Lowercase"}}
    assert byte_level_ranks(normalized) is None
