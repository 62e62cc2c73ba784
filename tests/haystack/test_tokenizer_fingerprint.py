"""A tokenizer.json's fingerprint is computed once per file content and kept in the cache:
later loads read it there (same value, no re-serialising), and other bytes get their own."""

from __future__ import annotations

import hashlib
import json
import shutil

from tokenizers import Tokenizer as Backend

from babilab.haystack import load_tokenizer
from babilab.haystack.tokenizer import ensure_gpt2_files, known_fingerprint_file


def fingerprint_by_hand(path) -> str:
    backend = Backend.from_file(str(path))
    backend.encode_special_tokens = True
    return "hf:" + hashlib.sha256(backend.to_str().encode()).hexdigest()


def test_fingerprint_is_kept_and_reused(tmp_path):
    path = tmp_path / "tokenizer.json"
    shutil.copy(ensure_gpt2_files() / "tokenizer.json", path)
    known = known_fingerprint_file(path.read_bytes(), tmp_path / "cache")
    assert not known.exists()
    first = load_tokenizer(str(path), cache_dir=tmp_path / "cache")
    assert known.read_text().strip() == first.fingerprint == fingerprint_by_hand(path)
    again = load_tokenizer(str(path), cache_dir=tmp_path / "cache")
    assert again.fingerprint == first.fingerprint == load_tokenizer("gpt2").fingerprint
    assert again.encode(["Hello world <|endoftext|>"]) == first.encode(["Hello world <|endoftext|>"])


def test_other_bytes_other_fingerprint(tmp_path):
    data = json.loads((ensure_gpt2_files() / "tokenizer.json").read_text(encoding="utf-8"))
    data["model"]["merges"] = data["model"]["merges"][:-1]  # one merge fewer: other ids
    path = tmp_path / "tokenizer.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    other = load_tokenizer(str(path), cache_dir=tmp_path / "cache")
    assert other.fingerprint == fingerprint_by_hand(path) != load_tokenizer("gpt2").fingerprint
