"""Which number format to compute in: bfloat16 only where the hardware has it.

CPUs without AVX512-BF16 or AMX emulate bfloat16 matrix products in software: on one AVX2
core a 512x576x1536 product runs at about 1 GFLOP/s in bfloat16 against 72 in float32, so
`auto` (the default everywhere) picks float32 there. CPUs with native bfloat16 run it about
1.5-3x faster than float32, and GPUs with bfloat16 halve memory traffic.
"""

from __future__ import annotations

import functools
import logging
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
