"""Backbones: a GGUF file's special tokens come from the file, whatever transformers reads."""

import pytest
from transformers import AutoTokenizer

from babilab.backbone import (
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
