"""Saving and loading memory models, and the table of architectures by name.

A saved model is a folder:

    memory_config.json     format name and version, architecture, its config, the backbone it
                           was trained with (name, sizes, config hash) and, optionally, where
                           to load it from (`backbone_source`) and the LoRA adapters' scale
    memory.safetensors     the parameters the wrapper adds (never the backbone's own)
    adapters.safetensors   LoRA adapters of the backbone, when they trained (adapters.py)
    backbone/              the whole backbone (`save_pretrained`), after full fine-tuning

Each file is written under a temporary name, then renamed (outputs.write_atomic: with the
permissions the umask gives any file babilab writes, so a shipped model is readable by
everyone who can read its folder). Loading reads JSON and
safetensors only: a saved model cannot run code. `MemoryModel.save` and `.load` (common.py)
are these functions; `load_memory_model` picks the class from the folder.

Not here: tokenizers and where a backbone comes from (models/memory.py loads a saved model
for evaluation), training checkpoints (train/checkpoint.py).
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from safetensors.torch import load_file, save_file
from torch import Tensor
from transformers import PreTrainedModel

from ..backbone import load_causal_lm, quiet_loading
from ..errors import BabilabError
from ..outputs import make_dir, replace_dir, write_atomic

if TYPE_CHECKING:  # for annotations only: common.py imports this module
    from .common import MemoryModel

FORMAT_NAME = "babilab-memory"
FORMAT_VERSION = 1  # bump when the meaning of saved files changes
CONFIG_FILE = "memory_config.json"
WEIGHTS_FILE = "memory.safetensors"
BACKBONE_DIR = "backbone"

# Architecture name (as saved in memory_config.json) -> "module:Class", imported on demand.
ARCHITECTURES = {"rmt": "rmt:RMT", "rmt_r": "rmt_r:RMTR", "armt": "armt:ARMT"}


def memory_class(architecture: str) -> type[MemoryModel]:
    """The class for an architecture name: "rmt", "rmt_r" or "armt"."""
    if architecture not in ARCHITECTURES:
        raise BabilabError(
            f"unknown memory architecture {architecture!r}; known: {list(ARCHITECTURES)}"
        )
    module, name = ARCHITECTURES[architecture].split(":")
    return getattr(importlib.import_module(f"{__package__}.{module}"), name)


def load_memory_model(
    directory: str | Path, backbone: PreTrainedModel | None = None
) -> MemoryModel:
    """Load a saved memory model of whichever architecture the directory holds."""
    return memory_class(read_meta(Path(directory))["architecture"]).load(directory, backbone)


def save(model: MemoryModel, directory: str | Path, save_backbone: bool = False,
         backbone_source: str | None = None, dtype: torch.dtype | None = None) -> None:
    """Write the memory parameters (safetensors) and a versioned JSON config.

    The JSON names the backbone (name_or_path, model_type, sizes, config hash) and, with
    `backbone_source`, how to load it again (an alias such as `smollm2`, a folder, a hub
    id). With `save_backbone` (needed after full fine-tuning) the backbone is saved beside
    it with `save_pretrained` (safetensors). Without it, LoRA adapters in the backbone are
    saved alone (adapters.py), to be folded into the backbone at load. `dtype` casts the
    saved memory parameters and adapters (bfloat16 halves a shipped model). Each file is
    written under a temporary name, then renamed.
    """
    from .adapters import ADAPTERS_FILE, lora_tensors

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    meta = {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "architecture": model.architecture,
        "config": dataclasses.asdict(model.config),
        "backbone": backbone_reference(model.backbone),
        "backbone_saved": save_backbone,
    }
    if backbone_source is not None:
        meta["backbone_source"] = backbone_source

    def cast(tensors: dict[str, Tensor]) -> dict[str, Tensor]:
        return {k: v.detach().to("cpu", dtype or v.dtype).contiguous()
                for k, v in tensors.items()}

    adapters, scale = ({}, 0.0) if save_backbone else lora_tensors(model.backbone)
    if adapters:
        meta["lora"] = {"file": ADAPTERS_FILE, "scale": scale}
        write_atomic(directory / ADAPTERS_FILE, lambda p: save_file(cast(adapters), p))
    tensors = cast(model.memory_state_dict())
    write_atomic(directory / WEIGHTS_FILE, lambda p: save_file(tensors, p))
    if save_backbone:
        tmp = make_dir(directory, ".backbone-")
        with quiet_loading():  # no "Writing model shards" bar
            model.backbone.save_pretrained(tmp)
        replace_dir(tmp, directory / BACKBONE_DIR)
    text = json.dumps(meta, indent=2, sort_keys=True)
    write_atomic(directory / CONFIG_FILE, lambda p: Path(p).write_text(text))


def load(cls: type[MemoryModel], directory: str | Path,
         backbone: PreTrainedModel | None = None) -> MemoryModel:
    """Rebuild a saved model of architecture `cls` around `backbone`.

    Without `backbone`, the one saved in the directory is loaded; if none was saved, pass
    it in (this module never downloads). The parameters must match key for key. Saved
    LoRA adapters are folded into `backbone` in place.
    """
    directory = Path(directory)
    meta = read_meta(directory)
    if meta["architecture"] != cls.architecture:
        raise BabilabError(
            f"{directory} holds a {meta['architecture']!r} checkpoint, not {cls.architecture!r}"
            f"; load it with load_memory_model() or the {meta['architecture']} class"
        )
    if backbone is None:
        if not meta["backbone_saved"]:
            raise BabilabError(
                f"{directory} has no saved backbone: pass backbone= (it was "
                f"{meta['backbone']['name_or_path']!r}, model_type "
                f"{meta['backbone']['model_type']!r})"
            )
        backbone = load_causal_lm(directory / BACKBONE_DIR)
    _check_backbone_matches(meta["backbone"], backbone)
    if "lora" in meta:  # adapters trained with the memory: folded into the backbone
        from .adapters import merge_adapters

        merge_adapters(backbone, directory / meta["lora"]["file"], meta["lora"]["scale"])
    model = cls(backbone, cls.config_class(**meta["config"]))
    tensors = load_file(directory / WEIGHTS_FILE, device=str(backbone.device))
    expected = model.memory_state_dict()
    if set(tensors) != set(expected):
        raise BabilabError(
            f"{directory / WEIGHTS_FILE} does not fit {cls.__name__}: missing "
            f"{sorted(set(expected) - set(tensors))}, unexpected "
            f"{sorted(set(tensors) - set(expected))}"
        )
    model.load_state_dict(tensors, strict=False)  # strict=False: backbone keys come from it
    return model


def backbone_reference(model: PreTrainedModel) -> dict[str, Any]:
    """What identifies the backbone a memory checkpoint was trained with."""
    config = model.config
    text = json.dumps(config.to_dict(), sort_keys=True, default=str)
    return {
        "name_or_path": getattr(config, "_name_or_path", "") or "",
        "model_type": config.model_type,
        "hidden_size": config.hidden_size,
        "num_hidden_layers": config.num_hidden_layers,
        "vocab_size": config.vocab_size,
        "config_sha256": hashlib.sha256(text.encode()).hexdigest(),
    }


def read_meta(directory: Path) -> dict[str, Any]:
    """The JSON config of a saved memory model, after checking its format and version."""
    path = Path(directory) / CONFIG_FILE
    if not path.exists():
        raise BabilabError(f"{path} not found: not a saved babilab memory model")
    meta = json.loads(path.read_text())
    if meta.get("format") != FORMAT_NAME:
        raise BabilabError(f"{path} is not a {FORMAT_NAME} file")
    if meta.get("version") != FORMAT_VERSION:
        raise BabilabError(
            f"{path} has format version {meta.get('version')}; this babilab reads {FORMAT_VERSION}"
        )
    return meta


def _check_backbone_matches(reference: Mapping[str, Any], backbone: PreTrainedModel) -> None:
    found = backbone_reference(backbone)
    for key in ("model_type", "hidden_size", "num_hidden_layers", "vocab_size"):
        if reference[key] != found[key]:
            raise BabilabError(
                f"the backbone does not match the checkpoint: {key} is {found[key]!r}, the "
                f"checkpoint was saved with {reference[key]!r} ({reference['name_or_path']!r})"
            )


__all__ = [
    "ARCHITECTURES",
    "BACKBONE_DIR",
    "CONFIG_FILE",
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "WEIGHTS_FILE",
    "backbone_reference",
    "load",
    "load_memory_model",
    "memory_class",
    "read_meta",
    "save",
]
