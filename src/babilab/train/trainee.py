"""The trainee: the model that `train` optimises, how it starts and how it is shipped.

* `architecture_config`: the memory architecture's config from the recipe.
* `build_model`: the backbone wrapped in RMT, RMT-R or ARMT (memory/) or alone (plain.py),
  with gradient checkpointing, LoRA adapters and the recipe's trainable parameters.
* `init_from`: start from the trained parts of a saved memory model (recipe `init`).
* `export_model`: a folder `babilab eval` loads (`--model rmt:DIR`, or `hf:DIR` for plain).

What it does not know: steps, stages, optimisers, checkpoints of a run (loop.py,
checkpoint.py).
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file
from torch import nn

from ..backbone import quiet_loading
from ..errors import BabilabError
from ..memory.adapters import load_lora_tensors
from ..memory.common import decoder_layers, final_norm
from ..memory.saving import WEIGHTS_FILE, memory_class, read_meta
from ..outputs import make_dir, replace_dir
from .config import TrainConfig
from .plain import PlainLM

log = logging.getLogger("babilab.train")


def architecture_config(cfg: TrainConfig) -> Any:
    """The architecture's config dataclass from the recipe's `memory` options."""
    if cfg.architecture == "plain":
        return None
    config_class = memory_class(cfg.architecture).config_class
    names = {f.name for f in dataclasses.fields(config_class)} - {"segment_size"}
    unknown = sorted(set(cfg.memory) - names)
    if unknown:
        raise BabilabError(f"memory: unknown option {unknown[0]!r} for {cfg.architecture}; "
                           f"options are {', '.join(sorted(names))}")
    return config_class(segment_size=cfg.segment_size, **cfg.memory)


def build_model(cfg: TrainConfig, backbone: nn.Module, memory_config: Any) -> nn.Module:
    """The trainee around a loaded backbone, with the recipe's trainable parameters."""
    backbone.config.use_cache = False
    if cfg.gradient_checkpointing:
        # non-reentrant: works when the inputs (memory embeddings) need grad and the weights not.
        # transformers 5 renamed the method (the old name warns); 4.x has only the old one.
        kwargs = {"use_reentrant": False}
        if hasattr(backbone, "activation_checkpointing_enable"):
            backbone.activation_checkpointing_enable(kwargs)
        else:
            backbone.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)
    if cfg.trainable == "lora":
        from peft import LoraConfig, inject_adapter_in_model

        lora = LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                          target_modules=cfg.lora_target_modules,
                          fan_in_fan_out=backbone.config.model_type == "gpt2")  # GPT-2's Conv1D
        try:
            backbone = inject_adapter_in_model(lora, backbone)  # in place: still a HF model
        except ValueError as e:
            raise BabilabError(f"lora: {str(e).splitlines()[0]}") from None
    if cfg.architecture == "plain":
        model: nn.Module = PlainLM(backbone)
    else:
        model = memory_class(cfg.architecture)(backbone, memory_config)
    model.requires_grad_(False)
    wrapper = [p for n, p in model.named_parameters() if not n.startswith("backbone.")]
    if cfg.trainable == "all":
        chosen = list(model.parameters())
    elif cfg.trainable == "memory":
        chosen = wrapper
    elif cfg.trainable == "lora":
        chosen = wrapper + [p for n, p in model.named_parameters() if "lora_" in n]
    else:  # top:N: the last N decoder layers and the final norm (the LM head stays: it is tied)
        n = int(cfg.trainable.split(":")[1])
        layers = decoder_layers(backbone)
        if n > len(layers):
            raise BabilabError(f"trainable {cfg.trainable}: the backbone has {len(layers)} layers")
        chosen = wrapper + [p for layer in layers[-n:] for p in layer.parameters()]
        chosen += list(final_norm(backbone).parameters())
    for p in chosen:
        p.requires_grad_(True)
    if not any(p.requires_grad for p in model.parameters()):
        raise BabilabError(f"trainable {cfg.trainable}: nothing to train in this model")
    return model.train()


def export_model(model: nn.Module, tokenizer: Any, cfg: TrainConfig, directory: Path) -> None:
    """An evaluation-ready folder, replaced atomically.

    Memory models: `MemoryModel.save` (with the backbone unless only the memory trained and
    the backbone is a local folder) and the tokenizer, which `babilab eval --model
    rmt:DIR` loads (models/memory.py). Plain: a transformers folder for `--model hf:DIR`.
    A memory model whose backbone did not train (`memory`) or trained through LoRA adapters
    (`lora`) is saved as its trained parts only (memory parameters, adapters) on top of the
    backbone the recipe names (memory/adapters.py): a few MB instead of the backbone's copy.
    A plain backbone with LoRA is merged into a copy first, so it loads without peft.
    """
    tmp = make_dir(directory.parent, f".{directory.name}.tmp-")
    try:
        if cfg.architecture == "plain":
            plain = merge_lora(copy.deepcopy(model)) if cfg.trainable == "lora" else model
            with quiet_loading():  # no "Writing model shards" bar
                plain.backbone.save_pretrained(tmp)
        else:
            model.save(tmp, save_backbone=cfg.trainable not in ("memory", "lora"),
                       backbone_source=backbone_source(cfg.backbone))
        tokenizer.save_pretrained(tmp)
        replace_dir(tmp, directory)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def backbone_source(backbone: str) -> str:
    """The recipe's backbone as a checkpoint records it: local paths made absolute."""
    path = Path(backbone).expanduser()
    return str(path.resolve()) if path.exists() else backbone


def init_from(model: nn.Module, cfg: TrainConfig) -> None:
    """Start from the trained parts of a saved memory model (`init`: memory parameters and
    LoRA adapters, as export_model or the campaign ships them), built with the same recipe."""
    directory = Path(cfg.init).expanduser()
    meta = read_meta(directory)
    if cfg.architecture == "plain" or meta["architecture"] != cfg.architecture:
        raise BabilabError(f"init: {directory} holds a {meta['architecture']} model, the "
                           f"recipe trains {cfg.architecture}")
    ours = dataclasses.asdict(architecture_config(cfg))
    if meta["config"] != ours:
        diff = sorted(k for k in ours if meta["config"].get(k) != ours[k])
        raise BabilabError(f"init: {directory} was trained with other memory settings "
                           f"({', '.join(diff)}); use the recipe it was trained with")
    held = ("a whole backbone" if meta.get("backbone_saved") else
            "LoRA adapters" if "lora" in meta else "memory parameters only")
    if meta.get("backbone_saved") or ("lora" in meta) != (cfg.trainable == "lora"):
        raise BabilabError(f"init: {directory} holds {held}, the recipe trains "
                           f"{cfg.trainable}: start from parts trained the same way")
    tensors = load_file(directory / WEIGHTS_FILE)
    expected = model.memory_state_dict()
    if set(tensors) != set(expected):
        raise BabilabError(f"init: {directory / WEIGHTS_FILE} does not fit this model")
    with torch.no_grad():
        for name, value in tensors.items():
            expected[name].copy_(value)
    if "lora" in meta:
        load_lora_tensors(model.backbone, load_file(directory / meta["lora"]["file"]),
                          str(directory))
    log.info("initialised the trained parts from %s", directory)


def merge_lora(model: nn.Module) -> nn.Module:
    """Fold every LoRA adapter into its base layer and put the base layer back, in place."""
    from peft.tuners.lora import LoraLayer

    for name, module in list(model.named_modules()):
        if isinstance(module, LoraLayer):
            module.merge()
            parent, _, child = name.rpartition(".")
            setattr(model.get_submodule(parent), child, module.get_base_layer())
    return model


__all__ = ["architecture_config", "backbone_source", "build_model", "export_model", "init_from",
           "merge_lora"]
