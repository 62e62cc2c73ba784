"""Bad input gives one clear error."""

from __future__ import annotations

import json

import pytest
import torch
from transformers import BertConfig, BertForMaskedLM, GPT2Config, GPT2Model

from babilab.errors import BabilabError
from babilab.memory import (
    ARMT,
    RMT,
    RMTR,
    ARMTConfig,
    RMTConfig,
    RMTRConfig,
    generate,
    load_memory_model,
)

from .memory_fixtures import SEGMENT, WINDOW, build, gpt2_backbone, llama_backbone, sample


@pytest.mark.parametrize(
    "not_a_causal_lm",
    [
        lambda: GPT2Model(GPT2Config(n_layer=1, n_embd=32, n_head=2, vocab_size=50)),  # no head
        lambda: BertForMaskedLM(
            BertConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                       intermediate_size=32, vocab_size=50)
        ),
        lambda: "gpt2",
    ],
)
@pytest.mark.parametrize("cls", [RMT, RMTR, ARMT])
def test_backbone_must_be_a_causal_lm(cls, not_a_causal_lm):
    with pytest.raises(BabilabError, match="causal LM"):
        cls(not_a_causal_lm())


@pytest.mark.parametrize(
    "cls, config",
    [
        (RMT, RMTConfig(segment_size=WINDOW - 8, num_mem_tokens=5)),  # 40 + 2 * 5 > 48
        (RMTR, RMTRConfig(segment_size=WINDOW - 8, num_read_mem_tokens=6,
                          num_write_mem_tokens=4)),  # 6 + 40 + 4 > 48
        (ARMT, ARMTConfig(segment_size=WINDOW, num_mem_tokens=1)),  # 48 + 1 > 48
    ],
)
def test_segment_plus_memory_must_fit_the_window(cls, config):
    with pytest.raises(BabilabError, match="max_position_embeddings = 48"):
        cls(gpt2_backbone(), config)


def test_window_fits_exactly():
    RMT(gpt2_backbone(), RMTConfig(segment_size=WINDOW - 10, num_mem_tokens=5))


def test_generation_must_fit_the_window():
    model = build("armt", gpt2_backbone())
    # ARMT's prompt is the 8 tokens alone (positions 0..7); new tokens are fed back at 8, 9, ...
    # and the last one never is: 41 new tokens use positions up to 47, the window's last.
    segments = model.segments([sample(SEGMENT, 50)])
    fits = generate(model, segments, max_new_tokens=WINDOW - SEGMENT + 1, eos_token_id=[])
    assert fits.tokens.shape == (1, 41)
    with pytest.raises(BabilabError, match="max_new_tokens=42"):
        generate(model, model.segments([sample(SEGMENT, 50)]), max_new_tokens=WINDOW - SEGMENT + 2)


@pytest.mark.parametrize(
    "config",
    [
        RMTConfig(k2=0),
        RMTConfig(align="center"),
        RMTConfig(num_mem_tokens=-1),
        RMTConfig(segment_size=0),
    ],
)
def test_bad_config(config):
    with pytest.raises(BabilabError):
        RMT(llama_backbone(), config)


@pytest.mark.parametrize("read, write", [(3, 4), (9, 4)])
def test_rmt_r_read_block_comes_from_memory_and_retrieved(read, write):
    config = RMTRConfig(segment_size=SEGMENT, num_read_mem_tokens=read, num_write_mem_tokens=write)
    with pytest.raises(BabilabError, match="num_read_mem_tokens"):
        RMTR(gpt2_backbone(), config)


def test_checkpoint_from_another_architecture(tmp_path):
    backbone = gpt2_backbone()
    build("rmt", backbone).save(tmp_path)
    with pytest.raises(BabilabError, match="holds a 'rmt' checkpoint, not 'armt'"):
        ARMT.load(tmp_path, backbone=backbone)
    with pytest.raises(BabilabError, match="holds a 'rmt' checkpoint, not 'rmt_r'"):
        RMTR.load(tmp_path, backbone=backbone)
    assert isinstance(load_memory_model(tmp_path, backbone=backbone), RMT)


def test_checkpoint_with_another_backbone(tmp_path):
    build("rmt", gpt2_backbone()).save(tmp_path)
    with pytest.raises(BabilabError, match="model_type is 'llama'"):
        RMT.load(tmp_path, backbone=llama_backbone())
    with pytest.raises(BabilabError, match="no saved backbone"):
        RMT.load(tmp_path)


def test_checkpoint_format_version(tmp_path):
    build("armt", gpt2_backbone()).save(tmp_path)
    meta = json.loads((tmp_path / "memory_config.json").read_text())
    meta["version"] = 999
    (tmp_path / "memory_config.json").write_text(json.dumps(meta))
    with pytest.raises(BabilabError, match="format version 999"):
        load_memory_model(tmp_path, backbone=gpt2_backbone())
    with pytest.raises(BabilabError, match="not found"):
        load_memory_model(tmp_path / "missing")


def test_streaming_batch_size_must_not_change():
    model = build("rmt", gpt2_backbone())
    model.read(next(model.segments([sample(SEGMENT, 51)])))
    with pytest.raises(BabilabError, match="reset"):
        model.read(next(model.segments([sample(SEGMENT, 52), sample(SEGMENT, 53)])))


def test_labels_must_score_something():
    model = build("rmt", gpt2_backbone())
    ids = sample(SEGMENT, 54)[None]
    with pytest.raises(BabilabError, match="no position to score"):
        model(ids, labels=torch.full_like(ids, -100))
