"""A tiny offline world for training tests: a background corpus, a byte-level BPE tokenizer
trained on it, and a 2-layer GPT-2 saved as a transformers folder (no downloads, fast on CPU).

A uniquely named module rather than conftest.py, so that `import` finds it unambiguously.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from babilab.babi import take_qas

EOS = "<|endoftext|>"
SEGMENT = 48  # tokens per segment in the tests
BOOKS = ("alpha", "beta", "gamma", "delta", "epsilon")
_WORDS = ("the old sailor walked along a quiet road and thought about his ship while rain fell "
          "over grey hills where farmers kept sheep near the river under tall trees each "
          "morning before bells rang in distant towns").split()


def write_corpus(folder: Path) -> Path:
    """Five small books of made-up prose, one sentence of 12-20 words at a time."""
    folder.mkdir(parents=True, exist_ok=True)
    for k, name in enumerate(BOOKS):
        rng = random.Random(k)
        sentences = []
        for _ in range(120):
            words = [rng.choice(_WORDS) for _ in range(rng.randint(12, 20))]
            sentences.append(" ".join(words).capitalize() + ".")
        (folder / f"{name}.txt").write_text(" ".join(sentences) + "\n")
    return folder


def tokenizer_texts(corpus: Path) -> list[str]:
    texts = [p.read_text() for p in sorted(corpus.glob("*.txt"))]
    for task in ("qa1", "qa2"):
        for split in ("train", "valid"):
            for qa in take_qas(task, split, 200):
                texts.append(" ".join(qa.facts))
                texts.append(f"\nQuestion: {qa.question}\nAnswer: {qa.answer}")
    return texts


def write_backbone(folder: Path, corpus: Path, dropout: float = 0.0, vocab_size: int = 400,
                   **config: Any) -> Path:
    """A byte-level BPE tokenizer trained on the corpus and bAbI text, and a random tiny
    GPT-2 with a matching vocabulary, saved together like any transformers model folder."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=[EOS], show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    backend.train_from_iterator(tokenizer_texts(corpus), trainer)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, eos_token=EOS)
    eos = tokenizer.eos_token_id
    torch.manual_seed(0)
    settings = dict(n_layer=2, n_embd=32, n_head=2, n_positions=256, vocab_size=len(tokenizer),
                    bos_token_id=eos, eos_token_id=eos, initializer_range=0.1,
                    resid_pdrop=dropout, embd_pdrop=dropout, attn_pdrop=dropout)
    model = GPT2LMHeadModel(GPT2Config(**{**settings, **config}))
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def recipe(tmp_path: Path, backbone: Path, corpus: Path, **values: Any) -> dict[str, Any]:
    """A tiny RMT recipe: two stages of a few steps, every output under tmp_path."""
    base: dict[str, Any] = {
        "architecture": "rmt", "backbone": str(backbone), "segment_size": SEGMENT,
        "memory": {"num_mem_tokens": 4}, "tasks": "qa1", "corpus": f"dir:{corpus}",
        "stages": [{"segments": 1, "steps": 3}, {"segments": 2, "steps": 3}],
        "batch_size": 4, "micro_batch_size": 2, "lr": 3e-3, "eval_interval": 2,
        "valid_samples": 4, "eval_batch_size": 4, "target_accuracy": None,
        "checkpoint_interval": 2, "log_interval": 1, "threads": 1, "progress": False,
        "out_dir": str(tmp_path / "run"), "cache_dir": str(tmp_path / "cache"),
    }
    base.update(values)
    return base
