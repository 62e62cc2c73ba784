"""The memory answerers: a saved RMT, RMT-R or ARMT checkpoint answers a suite like any model.

    load_answerer("memory:/ckpt/qa1")    # whichever architecture the checkpoint holds
    load_answerer("rmt:/ckpt/qa1")       # the same, but the checkpoint must hold an RMT
    load_answerer("armt:/ckpt/qa1", backbone="smollm2")   # a checkpoint saved without backbone

    babilab eval --suite S --model rmt:/ckpt/qa1 --run R

Names: `memory` reads the architecture from the checkpoint; `rmt`, `rmt_r` and `armt` also
check it, so a checkpoint of another architecture is a clear error before anything loads.
All four give the same answers and fingerprint for the same checkpoint.

Checkpoint: a folder written by `MemoryModel.save` (memory_config.json + memory.safetensors,
plus backbone/ when saved with `save_backbone=True`), with the backbone's tokenizer in the
folder itself or in backbone/ (`save_checkpoint` below writes both). The backbone comes from,
in order: the `backbone` option (backbone.py's forms: a folder, a .gguf, `smollm2`, a hub
id), the saved backbone/, the source the checkpoint names (`backbone_source`, e.g. `smollm2`),
or the folder it records as its backbone, if it exists here. LoRA adapters saved with the memory
(adapters.safetensors) are folded into the backbone as it loads.

What a memory model reads is memory/layout.py's, the one definition training uses too: the
context's segments, each read with a memory write, then a last, read-only segment that the
question ends ("\\nQuestion: <question>\\nAnswer:"), then greedy decoding from there.
No special tokens (BOS) are added. The PromptConfig's instruction, examples and chat template
are for instruction-following models and are ignored: a memory model is fine-tuned on raw
context and question (github.com/booydar/recurrent-memory-transformer). There is no window for the
context: only the last segment must fit (the context piece it shares, the question, memory
and max_new_tokens <= the backbone's positions), else the answer is `over_window`. An answer
chosen from logits that are not finite (a memory state that overflowed to inf or NaN) is an
error, not a guess: its argmax would mean nothing.

Options: max_new_tokens (20), batch_size (4 requests decoded together, longest first; left
padding makes batched answers equal one-at-a-time ones), dtype (auto: bfloat16 where the
hardware has it, else float32; hardware.py), device (cuda when
there is one), threads, progress (a per-segment bar; default: on a terminal, for long inputs),
save_every_s (300: with `resume_dir` set, as `babilab eval` does, the memory state is saved
this often during a read, and at once when the read is interrupted (Ctrl-C, SIGTERM in the
CLI, an error); a read stopped that way or by a crash or kill -9 continues from the last save;
reads shorter than this that are not interrupted never write).
The fingerprint hashes content, never paths: the memory weights file, the architecture and
config, the backbone's weights (backbone.py's content id), the tokenizer, and the decoding
settings.

Memory: the context is tokenized in chunks into one int32 array per request (4 bytes a token)
and segments are sliced from it step by step, so no full-context tensor is built and the
model's state stays constant (RMT, ARMT) or grows by its stored states (RMT-R). Chunking
gives the ids of one encode (see `encode_long`); it only applies past CHUNK_CHARS.

Not here: the architectures, the decode loop and the segment layout (memory/), the saved
read itself (saved_read.py), training (train/).
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..backbone import load_causal_lm, load_model, resolve_model, weights_hash
from ..cache import sha256_file
from ..errors import BabilabError
from ..hardware import resolve_dtype
from ..memory.layout import (
    LAYOUT_VERSION,
    last_segment_length,
    n_segments,
    question_text,
    stream_segments,
)
from ..memory.saving import BACKBONE_DIR, WEIGHTS_FILE, memory_class, read_meta
from ..prompts import PromptConfig
from .base import Answer, Answerer, Request, fingerprint_of, folder_label, register
from .saved_read import SavedRead

# context characters encoded at once: the tokenizer's buffers stay small, and freed they go
# back to the OS (chunks of 1M characters left ~65 MB resident after 10M tokens; 64k, none)
CHUNK_CHARS = 1 << 16
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "tokenizer.model")
# Step widths are rounded up to a multiple of this. On CPU, oneDNN keeps JIT code for every
# distinct matmul shape (about 0.7 MB each for a bf16 Linear, measured with torch 2.13): with
# a context remainder and a question of any length, a long eval would keep hundreds of them.
WIDTH_MULTIPLE = 64


def encode_long(tokenizer: Any, text: str, chunk_chars: int = CHUNK_CHARS):
    """Token ids of `text` (no special tokens) as an int32 numpy array, encoded in chunks.

    Chunks end just before a space that follows a non-space character: byte-level BPE
    pre-tokenizers (GPT-2, SmolLM2, Llama 3, Qwen) always split there, so the ids equal one
    encode of the whole text while the tokenizer never holds more than a few chunks. A
    tokenizer for which that does not hold on a probe text (a SentencePiece one that prepends
    "▁" to each input) encodes the whole text at once.
    """
    import numpy as np

    bounds = chunk_bounds(text, chunk_chars)
    if len(bounds) > 1 and not _chunks_join_exactly(tokenizer):
        bounds = [(0, len(text))]
    parts = []
    per_call = min(8, os.cpu_count() or 1)  # Rust encodes a call's chunks in parallel
    for i in range(0, len(bounds), per_call):
        parts += [np.asarray(x, dtype=np.int32)
                  for x in _encode(tokenizer, [text[a:b] for a, b in bounds[i:i + per_call]])]
    ids = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int32)
    del parts  # before the trim: freed after it, the pieces would stay resident for the read
    if len(bounds) > 1:
        release_freed_memory()
    return ids


def chunk_bounds(text: str, chunk_chars: int) -> list[tuple[int, int]]:
    """(start, end) of pieces of at most about `chunk_chars`, each cut just before a space that
    follows a non-space character (a piece with no such space is longer)."""
    bounds, start = [], 0
    while len(text) - start > chunk_chars:
        cut = text.rfind(" ", start + 1, start + chunk_chars)
        while cut > start and text[cut - 1].isspace():
            cut = text.rfind(" ", start + 1, cut)
        if cut <= start:  # no usable space in the window: take a longer chunk
            cut = text.find(" ", start + chunk_chars)
            while cut != -1 and text[cut - 1].isspace():
                cut = text.find(" ", cut + 1)
            if cut == -1:
                break
        bounds.append((start, cut))
        start = cut
    bounds.append((start, len(text)))
    return bounds


def _encode(tokenizer: Any, texts: list[str]) -> list[list[int]]:
    backend = getattr(tokenizer, "backend_tokenizer", None)
    # encode_batch_fast skips the character offsets: 1.8x faster, 40% less memory on 10M tokens
    encode = getattr(backend, "encode_batch_fast", getattr(backend, "encode_batch", None))
    if encode is not None:
        return [e.ids for e in encode(texts, add_special_tokens=False)]
    return [tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]


CHUNK_PROBE = "Mary went  back to the\ngarden.\n\n Then John, who  was in   the hallway, moved. " * 2


def _chunks_join_exactly(tokenizer: Any) -> bool:
    """Whether the probe text cut at every space `chunk_bounds` may cut at encodes as one."""
    pieces = [CHUNK_PROBE[a:b] for a, b in chunk_bounds(CHUNK_PROBE, 1)]
    return sum(_encode(tokenizer, pieces), []) == _encode(tokenizer, [CHUNK_PROBE])[0]


def release_freed_memory() -> None:
    """Hand memory freed by the process back to the OS, where the C library can (glibc).

    Tokenizing 10M tokens leaves ~400 MB of freed buffers that glibc keeps resident for the
    whole read that follows; malloc_trim returns them. Elsewhere this does nothing.
    """
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    try:
        ctypes.CDLL(name).malloc_trim(0)
    except (OSError, AttributeError, TypeError):
        pass  # not glibc: nothing to do


def save_checkpoint(model: Any, tokenizer: Any, directory: str | Path,
                    save_backbone: bool = False) -> Path:
    """`model.save(directory, save_backbone)` plus the tokenizer: a folder this answerer loads."""
    directory = Path(directory)
    model.save(directory, save_backbone=save_backbone)
    tokenizer.save_pretrained(directory)
    return directory


def _has_tokenizer(folder: Path) -> bool:
    return any((folder / name).is_file() for name in TOKENIZER_FILES)


def _backbone_source(directory: Path, meta: dict, backbone: str | None) -> tuple[str, str, str | None]:
    """backbone.resolve_model's (source, content id, gguf file) for the checkpoint's backbone."""
    saved = directory / BACKBONE_DIR
    if backbone is not None:
        return resolve_model(backbone)
    if meta.get("backbone_saved") and saved.is_dir():
        return str(saved), f"dir:{weights_hash(saved)}", None
    if meta.get("backbone_source"):  # what training loaded: an alias, folder or hub id
        return resolve_model(meta["backbone_source"])
    recorded = meta["backbone"]["name_or_path"]
    if not recorded or not Path(recorded).is_dir():
        raise BabilabError(
            f"{directory} was saved without its backbone and the one it records ({recorded!r}, "
            f"model_type {meta['backbone']['model_type']!r}) is not a folder here: pass "
            "backbone= (a folder, a .gguf file or smollm2)")
    return resolve_model(recorded)


def _load_backbone(directory: Path, source: str, content_id: str, gguf: str | None, dtype: str):
    """(tokenizer, backbone); a tokenizer saved with the checkpoint wins over the backbone's."""
    from transformers import AutoTokenizer

    if gguf is not None:  # through backbone.py's converted-copy cache, which has the tokenizer
        tokenizer, model = load_model(source, gguf, content_id, dtype)
    else:
        try:
            tokenizer, model = None, load_causal_lm(source, dtype)
        except OSError as e:
            raise BabilabError(f"cannot load backbone {source!r}: {str(e).splitlines()[0]}") from None
    if _has_tokenizer(directory):
        tokenizer_source = directory
    elif tokenizer is not None:
        return tokenizer, model
    elif Path(source).is_dir() and not _has_tokenizer(Path(source)):
        raise BabilabError(f"no tokenizer in {directory} or {source}: save it beside the "
                           "checkpoint (models.memory.save_checkpoint does)")
    else:
        tokenizer_source = source
    try:
        return AutoTokenizer.from_pretrained(tokenizer_source), model
    except (OSError, ValueError) as e:
        raise BabilabError(f"cannot load the tokenizer of {tokenizer_source}: "
                           f"{str(e).splitlines()[0]}") from None


def _eos_ids(model: Any, tokenizer: Any) -> list[int]:
    """Every end token the config, generation config and tokenizer name (chat models differ)."""
    eos: set[int] = set()
    generation = getattr(model, "generation_config", None)
    for value in (model.config.eos_token_id, getattr(tokenizer, "eos_token_id", None),
                  getattr(generation, "eos_token_id", None)):
        eos.update(value if isinstance(value, list) else [value] if isinstance(value, int) else [])
    return sorted(eos)


def _tokenizer_hash(tokenizer: Any) -> str:
    backend = getattr(tokenizer, "backend_tokenizer", None)
    text = backend.to_str() if backend is not None else json.dumps(tokenizer.get_vocab(), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


class MemoryAnswerer(Answerer):
    """Greedy answers from a saved memory model; `architecture` None accepts any of the three."""

    architecture: str | None = None

    def __init__(self, checkpoint: str, backbone: str | None = None, max_new_tokens: int = 20,
                 batch_size: int = 4, dtype: str = "auto", threads: int | None = None,
                 progress: bool | None = None, device: str | None = None,
                 save_every_s: float = 300.0):
        if max_new_tokens < 1:
            raise BabilabError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
        if batch_size < 1:
            raise BabilabError(f"batch_size must be >= 1, got {batch_size}")
        import torch

        if threads:
            torch.set_num_threads(threads)
        try:
            device_ = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        except RuntimeError as e:
            raise BabilabError(f"bad device {device!r}: {e}") from None
        dtype = resolve_dtype(dtype, device_)
        directory = Path(checkpoint).expanduser()
        if not directory.is_dir():
            raise BabilabError(f"{directory}: no such checkpoint folder; give the model folder "
                               "`babilab train` exported (OUT_DIR/model)")
        meta = read_meta(directory)  # checks the format and version
        found = meta["architecture"]
        if self.architecture is not None and found != self.architecture:
            raise BabilabError(
                f"{directory} holds a {found!r} checkpoint, not {self.architecture!r}: use "
                f"--model {found}:{directory} (or memory:{directory})")
        cls = memory_class(found)  # an unknown architecture name is an error here, before loading

        source, content_id, gguf = _backbone_source(directory, meta, backbone)
        self.tokenizer, backbone_model = _load_backbone(directory, source, content_id, gguf, dtype)
        if content_id.startswith("hub:"):
            content_id += "@" + str(getattr(backbone_model.config, "_commit_hash", None))
        self.model = cls.load(directory, backbone_model.to(device_)).eval()
        self.eos_ids = _eos_ids(backbone_model, self.tokenizer)
        self.checkpoint, self.meta = directory, meta
        self.max_new_tokens, self.batch_size, self.progress = max_new_tokens, batch_size, progress
        self.save_every_s = save_every_s
        # on_segment(first, written, total): called after each segment a read writes to memory
        # (first = segments a saved read had covered, total = the read's segments in all), for
        # a caller that follows a long read (benchmarks/bench_memory_qa1.py)
        self.on_segment: Callable[[int, int, int], None] | None = None
        # Content, never paths: the same weights under another folder give the same key.
        # (Only a checkpoint with adapters has their fields: older keys stay as they were.)
        adapters = ({"adapters": sha256_file(directory / meta["lora"]["file"]),
                     "adapter_scale": meta["lora"]["scale"]} if "lora" in meta else {})
        self._fingerprint = fingerprint_of(
            backend="memory", architecture=found, memory_config=meta["config"],
            format_version=meta["version"], memory_weights=sha256_file(directory / WEIGHTS_FILE),
            **adapters,
            backbone=content_id, tokenizer=_tokenizer_hash(self.tokenizer), dtype=dtype,
            max_new_tokens=max_new_tokens, decoding="greedy", prompt=LAYOUT_VERSION,
            device=device_.type)  # kernels differ by device: a near tie can flip a greedy token

    @classmethod
    def from_spec(cls, arg: str, **options) -> MemoryAnswerer:
        if not arg:
            raise BabilabError(f"{cls.name} needs a checkpoint folder: {cls.name}:PATH")
        return cls(arg, **options)

    @property
    def label(self) -> str:
        return f"{self.meta['architecture']}-{folder_label(self.checkpoint)}"

    @property
    def fingerprint(self) -> str:
        return self._fingerprint

    def _fits(self, n_context: int, n_question: int) -> bool:
        """Whether the read-only last segment, its memory and the new tokens fit the backbone
        (for a question that fits a segment: `answer` checks that before encoding contexts)."""
        config = self.model.config
        window = self.model.window
        memory_rows = self.model.tokens_per_pass - config.segment_size  # >= rows it reads
        last = last_segment_length(n_context, n_question, config.segment_size, config.align)
        return window is None or last + memory_rows + self.max_new_tokens <= window

    def answer(self, requests: list[Request], config: PromptConfig) -> list[Answer]:
        answers: list[Answer | None] = [None] * len(requests)
        questions = [self.tokenizer(question_text(r.question), add_special_tokens=False)["input_ids"]
                     for r in requests]
        size = self.model.config.segment_size
        runnable = []
        for i, q in enumerate(questions):
            if len(q) <= size:
                runnable.append(i)
            else:
                answers[i] = Answer("", prompt_tokens=len(q), over_window=True)
        lengths = {i: len(requests[i].context) for i in runnable}
        runnable.sort(key=lambda i: -lengths[i])  # longest first: similar lengths share a batch
        for start in range(0, len(runnable), self.batch_size):
            began = time.perf_counter()
            batch, contexts = [], []
            for i in runnable[start:start + self.batch_size]:
                context = encode_long(self.tokenizer, requests[i].context)
                if self._fits(len(context), len(questions[i])):
                    batch.append(i)
                    contexts.append(context)
                else:
                    answers[i] = Answer("", prompt_tokens=len(context) + len(questions[i]),
                                        over_window=True)
            if not batch:
                continue
            outputs, finite, resumed = self._generate(contexts, [questions[i] for i in batch])
            elapsed = (time.perf_counter() - began) / len(batch)
            for i, context, output, ok in zip(batch, contexts, outputs, finite, strict=True):
                extra = {"segments": n_segments(len(context), len(questions[i]), size,
                                                self.model.config.align)}
                error = None if ok else (f"the model's output was not finite (inf or NaN): its "
                                         f"memory state overflowed reading these "
                                         f"{extra['segments']} segments, so there is no answer")
                answers[i] = Answer("" if error else output, elapsed_s=elapsed,
                                    prompt_tokens=len(context) + len(questions[i]), error=error,
                                    extra={**extra, "resumed_at": resumed} if resumed else extra)
        return [a for a in answers if a is not None]

    def _generate(self, contexts: list[Any], questions: list[list[int]]
                  ) -> tuple[list[str], list[bool], int]:
        """Read the contexts' segments, then decode greedily after the questions: the texts,
        whether each was chosen from finite logits, and the number of segments a saved read
        had already covered (0 when starting afresh)."""
        import torch
        from tqdm import tqdm

        config = self.model.config
        n_steps = max(n_segments(len(c), len(q), config.segment_size, config.align)
                      for c, q in zip(contexts, questions, strict=True))
        saved = (SavedRead(self.resume_dir, self._read_key(contexts, questions), self.save_every_s)
                 if self.resume_dir is not None else None)
        start, state = saved.load(self.model) if saved is not None else (0, None)
        steps = stream_segments(contexts, questions, config.segment_size, config.align,
                                WIDTH_MULTIPLE, start=start)
        show = (sys.stderr.isatty() and n_steps > 64) if self.progress is None else self.progress

        def after_segment(n_read: int) -> None:
            if saved is not None:
                saved.update(self.model, start + n_read)
            if self.on_segment is not None:
                self.on_segment(start, n_read, n_steps)

        try:
            with tqdm(steps, total=n_steps, initial=start, unit="seg", desc=self.label,
                      leave=False, disable=not show) as bar:
                out = self.model.generate(bar, max_new_tokens=self.max_new_tokens,
                                          eos_token_id=self.eos_ids or None, state=state,
                                          on_read=(after_segment if saved is not None
                                                   or self.on_segment is not None else None),
                                          segments_total=n_steps)
        except BaseException:  # Ctrl-C, SIGTERM in the CLI, a failure: keep what was read
            if saved is not None:
                saved.save_latest()
            raise
        if saved is not None:
            saved.clear()
        texts = []
        eos = torch.tensor(self.eos_ids, dtype=torch.long)
        for row in out.tokens.cpu():
            stop = torch.isin(row, eos).nonzero()
            row = row[:int(stop[0])] if len(stop) else row
            texts.append(self.tokenizer.decode(row.tolist(), skip_special_tokens=True).strip())
        return texts, out.finite.cpu().tolist(), start

    def _read_key(self, contexts: list[Any], questions: list[list[int]]) -> str:
        """What a saved read must match: this answerer's fingerprint and the token ids read."""
        h = hashlib.sha256(self._fingerprint.encode())
        for context, question in zip(contexts, questions, strict=True):
            h.update(len(context).to_bytes(8, "little") + context.tobytes())
            h.update(json.dumps(question).encode())
        return h.hexdigest()


@register("memory")
class AnyMemoryAnswerer(MemoryAnswerer):
    """`memory:PATH`: the architecture comes from the checkpoint."""


@register("rmt")
class RMTAnswerer(MemoryAnswerer):
    architecture = "rmt"


@register("rmt_r")
class RMTRAnswerer(MemoryAnswerer):
    architecture = "rmt_r"


@register("armt")
class ARMTAnswerer(MemoryAnswerer):
    architecture = "armt"


__all__ = ["MemoryAnswerer", "encode_long", "save_checkpoint"]
