"""Resumable training checkpoints: safetensors and JSON, written atomically, never pickled.

    OUT/checkpoints/
        step-00000120/
            trainable.safetensors  every parameter that trains (frozen ones are the backbone's
                                   own, which the run reloads and identifies by content)
            optimizer.safetensors  AdamW state: "state.<i>.<name>", i = the parameter's index
                                   in the optimizer (the order of trainable parameters)
            rng.safetensors        torch RNG states, one row per process: "cpu" (and "cuda")
            state.json             position (stage, step, global step), early-stop bookkeeping,
                                   the metrics.jsonl offset, the world size
            config.json            the run's recipe
        LATEST                     the name of the newest complete folder

A folder is built under a temporary name and renamed once complete; LATEST is replaced
(write, then rename) after that, and only then are older folders deleted. A SIGKILL at any
moment therefore leaves LATEST naming a complete folder, or no LATEST yet. (Renames survive a
killed process; surviving a power cut would also need fsync, which we skip.)

Loading reads tensors with safetensors and JSON with json: a checkpoint from elsewhere cannot
run code. What this module does not know: when to save, or what the position means (loop.py).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from ..errors import BabilabError
from ..outputs import make_dir, write_atomic  # shared with every command that writes

FORMAT_NAME = "babilab-train-checkpoint"
FORMAT_VERSION = 1
LATEST = "LATEST"
TRAINABLE_FILE = "trainable.safetensors"
OPTIMIZER_FILE = "optimizer.safetensors"
RNG_FILE = "rng.safetensors"
STATE_FILE = "state.json"
CONFIG_FILE = "config.json"


# --------------------------------------------------------------------------------------------
# Tensors in and out


def trainable_tensors(model: nn.Module) -> dict[str, Tensor]:
    """Every parameter that trains, by name (tied weights once), as CPU copies."""
    return {n: p.detach().to("cpu", copy=True).contiguous()
            for n, p in model.named_parameters() if p.requires_grad}


def load_trainable(model: nn.Module, tensors: Mapping[str, Tensor], where: str) -> None:
    """Copy saved trainable parameters into `model`; the names must match exactly."""
    params = {n: p for n, p in model.named_parameters() if p.requires_grad}
    if set(params) != set(tensors):
        missing, extra = sorted(set(params) - set(tensors)), sorted(set(tensors) - set(params))
        raise BabilabError(f"{where} does not fit this model: missing {missing[:3]}, "
                           f"unexpected {extra[:3]} (was the recipe's trainable changed?)")
    with torch.no_grad():
        for name, p in params.items():
            p.copy_(tensors[name].to(p.device, p.dtype))


def optimizer_tensors(optimizer: torch.optim.Optimizer) -> dict[str, Tensor]:
    """The optimizer's per-parameter state as flat named tensors."""
    out = {}
    for i, state in optimizer.state_dict()["state"].items():
        for name, value in state.items():
            if not isinstance(value, Tensor):  # AdamW keeps tensors only; others would need JSON
                raise BabilabError(f"optimizer state {name!r} is not a tensor")
            out[f"state.{i}.{name}"] = value.detach().to("cpu", copy=True).contiguous()
    return out


def load_optimizer(optimizer: torch.optim.Optimizer, tensors: Mapping[str, Tensor]) -> None:
    """Put saved state into an optimizer built with the same parameters and settings."""
    state: dict[int, dict[str, Tensor]] = {}
    for key, value in tensors.items():
        _, i, name = key.split(".", 2)
        state.setdefault(int(i), {})[name] = value
    current = optimizer.state_dict()  # hyper-parameters come from the recipe, not the file
    n_params = sum(len(g["params"]) for g in current["param_groups"])
    if any(i >= n_params for i in state):
        raise BabilabError("the saved optimizer state has more parameters than this model")
    optimizer.load_state_dict({"state": state, "param_groups": current["param_groups"]})


def rng_state() -> dict[str, Tensor]:
    """This process's torch RNG states (dropout draws from them), as uint8 tensors."""
    out = {"cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        out["cuda"] = torch.cuda.get_rng_state()
    return out


def set_rng_state(states: Mapping[str, Tensor]) -> None:
    torch.set_rng_state(states["cpu"].to(torch.uint8).cpu())
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state(states["cuda"].to(torch.uint8).cpu())


def save_tensors(path: Path, tensors: Mapping[str, Tensor]) -> None:
    """safetensors file written under a temporary name, then renamed."""
    write_atomic(Path(path), lambda p: save_file(dict(tensors), p))


def write_json(path: Path, data: Any) -> None:
    text = json.dumps(data, indent=1, sort_keys=True)
    write_atomic(Path(path), lambda p: Path(p).write_text(text))


# --------------------------------------------------------------------------------------------
# Checkpoint folders


@dataclass(frozen=True)
class Checkpoint:
    path: Path
    state: dict[str, Any]
    config: dict[str, Any]

    def tensors(self, file: str) -> dict[str, Tensor]:
        return load_file(self.path / file)


def save_checkpoint(root: Path, model: nn.Module, optimizer: torch.optim.Optimizer,
                    rng: Mapping[str, Tensor], state: Mapping[str, Any],
                    config: Mapping[str, Any]) -> Path:
    """Write one complete checkpoint folder, point LATEST at it, then drop older ones."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    name = f"step-{state['global_step']:08d}"
    latest = _read_latest(root)
    if name == latest or (root / name).exists():  # never overwrite what LATEST may name
        name = next(f"{name}-{k}" for k in range(1, 1 << 20)
                    if f"{name}-{k}" != latest and not (root / f"{name}-{k}").exists())
    tmp = make_dir(root, f".{name}.tmp-")
    try:
        # files created inside tmp follow the umask; only the folder needed make_dir's chmod
        save_file(trainable_tensors(model), tmp / TRAINABLE_FILE)
        save_file(optimizer_tensors(optimizer), tmp / OPTIMIZER_FILE)
        save_file({k: v.contiguous() for k, v in rng.items()}, tmp / RNG_FILE)
        meta = {"format": FORMAT_NAME, "version": FORMAT_VERSION, **state}
        (tmp / STATE_FILE).write_text(json.dumps(meta, indent=1, sort_keys=True))
        (tmp / CONFIG_FILE).write_text(json.dumps(dict(config), indent=1, sort_keys=True))
        os.replace(tmp, root / name)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    write_atomic(root / LATEST, lambda p: Path(p).write_text(name + "\n"))
    for other in root.iterdir():  # older folders, and temporary ones a killed run left
        if other.is_dir() and other.name != name:
            shutil.rmtree(other, ignore_errors=True)
    return root / name


def _read_latest(root: Path) -> str | None:
    path = Path(root) / LATEST
    return path.read_text().strip() if path.is_file() else None


def find_checkpoint(root: Path) -> Checkpoint | None:
    """The checkpoint LATEST names, or None when no checkpoint was completed yet."""
    name = _read_latest(root)
    if name is None:
        return None
    path = Path(root) / name
    if not (path / STATE_FILE).is_file():
        raise BabilabError(f"{root / LATEST} names {name}, which is missing or incomplete")
    state = json.loads((path / STATE_FILE).read_text())
    if state.get("format") != FORMAT_NAME or state.get("version") != FORMAT_VERSION:
        raise BabilabError(f"{path}: not a {FORMAT_NAME} version {FORMAT_VERSION} checkpoint")
    return Checkpoint(path, state, json.loads((path / CONFIG_FILE).read_text()))


__all__ = ["Checkpoint", "LATEST", "OPTIMIZER_FILE", "RNG_FILE", "TRAINABLE_FILE",
           "find_checkpoint", "load_optimizer", "make_dir", "load_trainable", "optimizer_tensors",
           "rng_state", "save_checkpoint", "save_tensors", "set_rng_state", "trainable_tensors",
           "write_atomic", "write_json"]
