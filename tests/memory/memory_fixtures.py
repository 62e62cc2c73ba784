"""Tiny random backbones and memory models shared by tests/memory (no downloads, fast on a CPU).

A uniquely named module rather than conftest.py, so that `import` finds it unambiguously.
"""

from __future__ import annotations

import torch
from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

from babilab.memory import ARMT, RMT, RMTR, ARMTConfig, MemoryModel, RMTConfig, RMTRConfig

VOCAB = 100
EOS = 99
WINDOW = 48  # max_position_embeddings of the tiny backbones
SEGMENT = 8  # tokens per segment in the tests


def gpt2_backbone() -> GPT2LMHeadModel:
    config = GPT2Config(
        n_layer=2, n_embd=32, n_head=2, vocab_size=VOCAB, n_positions=WINDOW,
        bos_token_id=EOS, eos_token_id=EOS, initializer_range=0.1,
    )
    return GPT2LMHeadModel(config).eval()


def llama_backbone() -> LlamaForCausalLM:
    config = LlamaConfig(
        num_hidden_layers=2, hidden_size=32, intermediate_size=64, num_attention_heads=4,
        num_key_value_heads=2, vocab_size=VOCAB, max_position_embeddings=WINDOW,
        bos_token_id=0, eos_token_id=EOS, pad_token_id=0, initializer_range=0.1,
    )
    return LlamaForCausalLM(config).eval()


BACKBONES = {"gpt2": gpt2_backbone, "llama": llama_backbone}
ARCHITECTURES = ("rmt", "rmt_r", "armt")


def build(arch: str, backbone, mem: int = 3, **config) -> MemoryModel:
    """A tiny memory model; `mem` sets the memory size (0 turns memory off)."""
    if arch == "rmt":
        model = RMT(backbone, RMTConfig(segment_size=SEGMENT, num_mem_tokens=mem, **config))
    elif arch == "rmt_r":
        model = RMTR(
            backbone,
            RMTRConfig(
                segment_size=SEGMENT, num_read_mem_tokens=mem + mem // 2 if mem else 0,
                num_write_mem_tokens=mem, **config,
            ),
        )
    else:
        model = ARMT(
            backbone, ARMTConfig(segment_size=SEGMENT, num_mem_tokens=mem, d_mem=4, nu=2, **config)
        )
        # W_V starts at zero (nothing stored); give it weights so the memory carries information.
        with torch.no_grad():
            for layer in model.assoc:
                layer.v_proj.weight.normal_(std=0.3)
    return model.eval()


def sample(length: int, seed: int) -> torch.Tensor:
    """Random token ids (never EOS), reproducible."""
    return torch.randint(0, EOS, (length,), generator=torch.Generator().manual_seed(seed))
