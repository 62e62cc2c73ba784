"""LoRA adapters as small shipped files: read them out of a trained model, fold them into a
plain backbone at load time, or put them back into a model that trains on.

A memory model trained with `trainable: lora` changes the backbone only through its adapters
(rank r per linear layer: a few MB), so it ships as those adapters plus the memory parameters,
on top of a backbone anyone can load (an alias such as `smollm2`, a folder, a hub id), instead
of a whole merged copy of the backbone (512 MB for SmolLM2-135M).

File layout (`adapters.safetensors`): for each adapted linear layer at module path P of the
backbone, `P.lora_A` (r, in) and `P.lora_B` (out, r). The scale alpha / r is stored in the
checkpoint's JSON. Folding computes W + scale * B @ A in float32, which is what peft's
`merge()` does, so evaluation needs no peft.
"""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import load_file
from torch import Tensor, nn

from ..errors import BabilabError

ADAPTERS_FILE = "adapters.safetensors"
_A, _B = ".lora_A", ".lora_B"


def _lora_layers(model: nn.Module) -> dict[str, nn.Module]:
    """peft LoRA layers of `model`, by module path (relative to `model`)."""
    return {name: m for name, m in model.named_modules()
            if hasattr(m, "lora_A") and hasattr(m, "get_base_layer")}


def lora_tensors(backbone: nn.Module) -> tuple[dict[str, Tensor], float]:
    """(tensors in the file layout above, scale) of a backbone with peft adapters (one adapter,
    "default"); empty when it has none."""
    tensors: dict[str, Tensor] = {}
    scales = set()
    for name, layer in _lora_layers(backbone).items():
        tensors[name + _A] = layer.lora_A["default"].weight.detach().cpu().contiguous()
        tensors[name + _B] = layer.lora_B["default"].weight.detach().cpu().contiguous()
        scales.add(float(layer.scaling["default"]))
    if len(scales) > 1:
        raise BabilabError(f"LoRA layers with different scales {sorted(scales)}: not supported")
    return tensors, scales.pop() if scales else 0.0


def _pairs(tensors: dict[str, Tensor], where: str) -> dict[str, tuple[Tensor, Tensor]]:
    paths = {k[: -len(_A)] for k in tensors if k.endswith(_A)}
    if {k for k in tensors} != {p + s for p in paths for s in (_A, _B)}:
        raise BabilabError(f"{where}: every adapter needs both {_A} and {_B} tensors")
    return {p: (tensors[p + _A], tensors[p + _B]) for p in sorted(paths)}


@torch.no_grad()
def merge_adapters(backbone: nn.Module, path: Path, scale: float) -> int:
    """Fold the adapters in `path` into `backbone`'s weights in place; returns how many."""
    pairs = _pairs(load_file(path), str(path))
    for module_path, (a, b) in pairs.items():
        try:
            layer = backbone.get_submodule(module_path)
        except AttributeError:
            raise BabilabError(f"{path}: the backbone has no layer {module_path!r}: the "
                               "adapters were trained on another model") from None
        weight = layer.weight
        delta = scale * (b.float() @ a.float())  # (out, in)
        if type(layer).__name__ == "Conv1D":  # GPT-2 stores (in, out)
            delta = delta.T
        if delta.shape != weight.shape:
            raise BabilabError(f"{path}: adapter for {module_path!r} is {tuple(delta.shape)}, "
                               f"the layer's weight {tuple(weight.shape)}")
        weight.copy_((weight.float() + delta.to(weight.device)).to(weight.dtype))
    return len(pairs)


@torch.no_grad()
def load_lora_tensors(backbone: nn.Module, tensors: dict[str, Tensor], where: str) -> None:
    """Put saved adapters back into a backbone with peft adapters of the same shape."""
    layers = _lora_layers(backbone)
    pairs = _pairs(tensors, where)
    if set(pairs) != set(layers):
        missing, extra = sorted(set(layers) - set(pairs)), sorted(set(pairs) - set(layers))
        raise BabilabError(f"{where}: the adapters do not fit this model (missing "
                           f"{missing[:2]}, unexpected {extra[:2]}): train with the same "
                           "lora_target_modules")
    for name, (a, b) in pairs.items():
        for target, value in ((layers[name].lora_A["default"].weight, a),
                              (layers[name].lora_B["default"].weight, b)):
            if target.shape != value.shape:
                raise BabilabError(f"{where}: adapter {name!r} is {tuple(value.shape)}, the "
                                   f"model's {tuple(target.shape)}: train with the same lora_r")
            target.copy_(value)


__all__ = ["ADAPTERS_FILE", "load_lora_tensors", "lora_tensors", "merge_adapters"]
