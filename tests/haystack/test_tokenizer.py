"""Tokenizers: names, paths, the shared contract, known answers, and pinned downloads."""

from __future__ import annotations

from pathlib import Path

import pytest

from babilab.haystack import ChecksumError, UnknownTokenizerError, load_tokenizer
from babilab.haystack.tokenizer import GPT2_GGUF, ensure_gpt2_files, install_gpt2_sdist

from .conftest import TOKENIZER_KINDS as KINDS

TEXTS = ["Hello world", " Mary moved to the bathroom.", "", "naïve café — 🦙 <|endoftext|>",
         "  two  spaces\nand a newline"]


@pytest.mark.parametrize("kind", KINDS)
def test_contract(every_tokenizer, kind):
    tok = every_tokenizer[kind]
    batch = tok.encode(TEXTS)
    assert batch == [tok.encode([t])[0] for t in TEXTS]  # batched == one by one, in order
    assert batch[2] == []  # nothing added: no BOS/EOS
    for text, ids in zip(TEXTS, batch, strict=True):
        assert tok.decode(ids) == text
        got, starts = tok.encode_offsets(text)
        assert got == ids and len(starts) == len(ids)
        assert starts == sorted(starts)
    assert len(tok.fingerprint) > 40


def test_same_vocabulary_same_fingerprint_whatever_the_path(every_tokenizer):
    fp = {k: t.fingerprint for k, t in every_tokenizer.items()}
    assert fp["gpt2"] == fp["tokenizer.json"] == fp["gguf-file"] == load_tokenizer("gpt2").fingerprint
    assert fp["gpt2"] != fp["cl100k"]
    # the hf-dir round trip may add nothing that changes ids, but its ids must agree
    assert every_tokenizer["hf-dir"].encode(TEXTS) == every_tokenizer["gpt2"].encode(TEXTS)


def test_gpt2_matches_llama_cpp_test_vectors(gpt2):
    """Known answers: the ids llama.cpp expects for its tricky test strings."""
    folder = ensure_gpt2_files()
    cases = (folder / f"{GPT2_GGUF}.inp").read_text(encoding="utf-8").split(
        "\n__ggml_vocab_test__\n")[:-1]
    expected = (folder / f"{GPT2_GGUF}.out").read_text(encoding="utf-8").split("\n")
    assert len(cases) > 40
    for case, line in zip(cases, expected, strict=False):
        assert gpt2.encode([case])[0] == [int(x) for x in line.split()], repr(case)


def test_known_ids(gpt2, cl100k):
    assert gpt2.encode(["Hello world"]) == [[15496, 995]]  # GPT-2's published ids
    assert cl100k.encode(["Hello world"]) == [[9906, 1917]]


def test_unknown_tokenizer_is_an_error(tmp_path):
    with pytest.raises(UnknownTokenizerError, match="unknown tokenizer 'llama-9'"):
        load_tokenizer("llama-9")
    with pytest.raises(UnknownTokenizerError):
        load_tokenizer(str(tmp_path / "missing.gguf"))


def test_corrupt_sdist_is_rejected(tmp_path):
    bad = tmp_path / "llama_cpp_python-0.3.36.tar.gz"
    bad.write_bytes(b"garbage")
    final = tmp_path / "gpt2"
    with pytest.raises(ChecksumError, match="sha256"):
        install_gpt2_sdist(bad, final)
    assert not final.exists() and not any(Path(tmp_path).glob(".gpt2*"))
