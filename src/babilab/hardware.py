"""What the hardware offers: the number format to compute in (bfloat16 only where the
hardware has it), the device and attention kernel a model runs with, and this process's place
among the processes a launcher (torchrun, accelerate launch) started.

CPUs without AVX512-BF16 or AMX emulate bfloat16 matrix products in software: on one AVX2
core a 512x576x1536 product runs at about 1 GFLOP/s in bfloat16 against 72 in float32, so
`auto` (the default everywhere) picks float32 there. CPUs with native bfloat16 run it about
1.5-3x faster than float32, and GPUs with bfloat16 halve memory traffic.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .errors import BabilabError

DTYPES = ("auto", "bfloat16", "float16", "float32")
log = logging.getLogger(__name__)


def native_bfloat16(device: Any = "cpu") -> bool:
    """Whether `device` computes bfloat16 matrix products in hardware."""
    import torch

    kind = torch.device(device).type
    if kind == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if kind == "cpu":
        probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
        return any(getattr(torch.cpu, name, lambda: False)() for name in probes)
    return False


def resolve_dtype(dtype: str, device: Any = "cpu") -> str:
    """`auto` -> bfloat16 where native, else float32; other names are checked and kept.

    Asking for bfloat16 where it is emulated works, but logs a warning once: it is slow.
    """
    if dtype not in DTYPES:
        raise BabilabError(f"dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    if dtype == "auto":
        return "bfloat16" if native_bfloat16(device) else "float32"
    if dtype == "bfloat16" and not native_bfloat16(device):
        _warn_emulated_bfloat16(str(device))
    return dtype


@functools.cache  # once per device: a run resolves the dtype many times
def _warn_emulated_bfloat16(device: str) -> None:
    log.warning("this %s has no native bfloat16: it is emulated and can be tens of times "
                "slower than float32 (dtype auto picks float32 here)", device)


# --------------------------------------------------------------------------------------------
# Where a model runs: the device, its number format and attention kernel, chosen from what the
# machine has. `plan_device` is a pure function of the request and an `Accelerators` record,
# so the choice is tested without a GPU; `probe_accelerators` fills the record from torch.

DEVICE_MAPS = ("auto", "balanced", "balanced_low_0", "sequential")  # transformers' strategies
ATTENTION = ("auto", "sdpa", "eager", "flash_attention_2")


@dataclass(frozen=True)
class Accelerators:
    """What this machine offers a model."""

    cuda_count: int = 0  # GPUs torch can see (after CUDA_VISIBLE_DEVICES)
    cuda_bf16: bool = False  # they compute bfloat16 natively (Ampere and later)
    cpu_bf16: bool = False  # the CPU does (AVX512-BF16 or AMX)
    flash_attn: bool = False  # the flash-attn package is importable
    force_cpu: bool = False  # `accelerate launch --cpu` (ACCELERATE_USE_CPU) asked for the CPU


@dataclass(frozen=True)
class DevicePlan:
    device: str  # "cpu" or "cuda:N": where the inputs go (the first GPU with a device map)
    dtype: str  # resolved: bfloat16, float16 or float32
    attn_implementation: str | None  # for from_pretrained; None: transformers' own default
    device_map: str | None = None  # a strategy spreading the layers over all GPUs, or None

    @property
    def kind(self) -> str:
        return self.device.split(":")[0]


def plan_device(device: str = "auto", dtype: str = "auto", attn: str = "auto",
                device_map: str | None = None, *, have: Accelerators,
                local_rank: int = 0, world_size: int = 1) -> DevicePlan:
    """Choose where and how a transformers model runs.

    `device`: auto (a GPU when torch sees one and `accelerate launch --cpu` did not ask for
    the CPU), cpu, cuda (this process's GPU: cuda:LOCAL_RANK under a launcher, else cuda:0)
    or cuda:N. `dtype` auto: bfloat16 where the device computes it natively, else float32.
    `attn` auto: on a GPU flash_attention_2 when flash-attn is installed and the dtype is a
    16-bit one (the kernel has no float32), else sdpa; on the CPU transformers' default
    (sdpa where the model has it), which the CPU path has always used.

    >>> plan_device("auto", have=Accelerators(cuda_count=2, cuda_bf16=True), local_rank=1)
    DevicePlan(device='cuda:1', dtype='bfloat16', attn_implementation='sdpa', device_map=None)
    >>> plan_device("auto", have=Accelerators())
    DevicePlan(device='cpu', dtype='float32', attn_implementation=None, device_map=None)
    """
    kind, index = parse_device(device)
    if kind == "auto":
        kind = "cuda" if have.cuda_count and not have.force_cpu else "cpu"
    if kind == "cuda":
        if not have.cuda_count:
            raise BabilabError(f"device {device!r}: torch sees no GPU (is this torch built for "
                               "CUDA, and CUDA_VISIBLE_DEVICES right?); use --device cpu")
        if index is None and local_rank >= have.cuda_count:
            raise BabilabError(f"process LOCAL_RANK={local_rank} has no GPU of its own "
                               f"({have.cuda_count} visible); start at most {have.cuda_count} "
                               "processes per machine")
        index = local_rank if index is None else index
        if index >= have.cuda_count:
            raise BabilabError(f"device cuda:{index} does not exist: {have.cuda_count} GPU"
                               f"{'s' * (have.cuda_count > 1)} visible (cuda:0 to "
                               f"cuda:{have.cuda_count - 1})")
    if device_map is not None:
        if device_map not in DEVICE_MAPS:
            raise BabilabError(f"device_map must be one of {', '.join(DEVICE_MAPS)}, "
                               f"got {device_map!r}")
        if kind != "cuda":
            raise BabilabError(f"device_map={device_map} spreads a model over GPUs; this "
                               "process runs on the CPU")
        if world_size > 1:
            raise BabilabError(f"device_map={device_map} spreads one model over every GPU; "
                               f"with {world_size} processes give each its own GPU instead "
                               "(drop device_map), or start one process")
    if dtype not in DTYPES:
        raise BabilabError(f"dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    native = have.cuda_bf16 if kind == "cuda" else have.cpu_bf16
    if dtype == "auto":
        dtype = "bfloat16" if native else "float32"
    elif dtype == "bfloat16" and not native:
        _warn_emulated_bfloat16(kind)
    return DevicePlan("cpu" if kind == "cpu" else f"cuda:{index}", dtype,
                      attention_for(attn, kind, dtype, have), device_map)


def parse_device(device: str) -> tuple[str, int | None]:
    """`"cuda:1"` -> ("cuda", 1); `"cpu"` -> ("cpu", None); anything else is one clear error."""
    text = str(device).strip().lower()
    kind, sep, index = text.partition(":")
    if kind in ("auto", "cpu") and not sep:
        return kind, None
    if kind == "cuda" and not sep:
        return "cuda", None
    if kind == "cuda" and index.isdigit():
        return "cuda", int(index)
    raise BabilabError(f"device must be auto, cpu, cuda or cuda:N (N a GPU number), "
                       f"got {device!r}")


def attention_for(attn: str, kind: str, dtype: str, have: Accelerators) -> str | None:
    """The attention kernel to ask transformers for (see `plan_device`)."""
    if attn not in ATTENTION:
        raise BabilabError(f"attn_implementation must be one of {', '.join(ATTENTION)}, "
                           f"got {attn!r}")
    if attn == "flash_attention_2":
        if kind != "cuda" or not have.flash_attn:
            raise BabilabError("attn_implementation=flash_attention_2 needs a GPU and the "
                               "flash-attn package (pip install flash-attn)")
        if dtype == "float32":
            raise BabilabError("flash_attention_2 computes in bfloat16 or float16, not "
                               "float32; set dtype")
    if attn != "auto":
        return attn
    if kind == "cpu":
        return None
    return "flash_attention_2" if have.flash_attn and dtype != "float32" else "sdpa"


def probe_accelerators(environ: Mapping[str, str] | None = None) -> Accelerators:
    """What torch sees on this machine, for `plan_device`."""
    import importlib.util

    import torch

    environ = os.environ if environ is None else environ
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    return Accelerators(
        cuda_count=count, cuda_bf16=bool(count) and torch.cuda.is_bf16_supported(),
        cpu_bf16=native_bfloat16("cpu"),
        flash_attn=importlib.util.find_spec("flash_attn") is not None,
        force_cpu=environ.get("ACCELERATE_USE_CPU", "").lower() in ("1", "true", "yes"))


# --------------------------------------------------------------------------------------------
# Several processes: torchrun and `accelerate launch` start N copies of one command and tell
# each its place in environment variables. `babilab eval` reads them to split its work.


@dataclass(frozen=True)
class Processes:
    """This process's place among the copies a launcher started; one process by default."""

    rank: int = 0  # RANK: 0 .. world_size - 1; rank 0 reports
    world_size: int = 1  # WORLD_SIZE: how many processes share the work
    local_rank: int = 0  # LOCAL_RANK: its number on this machine, which picks its GPU


def launched_processes(environ: Mapping[str, str] | None = None) -> Processes:
    """RANK, WORLD_SIZE and LOCAL_RANK as torchrun and `accelerate launch` set them.

    >>> launched_processes({"RANK": "1", "WORLD_SIZE": "2", "LOCAL_RANK": "1"})
    Processes(rank=1, world_size=2, local_rank=1)
    >>> launched_processes({})
    Processes(rank=0, world_size=1, local_rank=0)
    """
    environ = os.environ if environ is None else environ
    values = {}
    for name, default in (("RANK", "0"), ("WORLD_SIZE", "1"), ("LOCAL_RANK", None)):
        text = environ.get(name, default if default is not None else environ.get("RANK", "0"))
        try:
            values[name] = int(text)
        except ValueError:
            raise BabilabError(f"environment variable {name}={text!r} is not a number; "
                               "start babilab under torchrun or accelerate launch, or unset "
                               "it") from None
    rank, world, local = values["RANK"], values["WORLD_SIZE"], values["LOCAL_RANK"]
    if world > 1 and "RANK" not in environ:  # every copy would take rank 0's share
        raise BabilabError(f"WORLD_SIZE={world} but no RANK: start babilab under torchrun or "
                           "accelerate launch, which set both")
    if world < 1 or not 0 <= rank < world or local < 0:
        raise BabilabError(f"RANK={rank}, WORLD_SIZE={world}, LOCAL_RANK={local}: expected "
                           "0 <= RANK < WORLD_SIZE and LOCAL_RANK >= 0")
    return Processes(rank, world, local)
