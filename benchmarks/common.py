"""What the benchmarks share: the machine they ran on, process memory, the SmolLM2 backbone
and the memory models built the same way in every benchmark (segment 512, 16 memory tokens,
seeded), so records of different scripts compare.

Records name the CPU (`cpu_kind`, `machine_line`), the load average (`load_text`) and the
machine's float32 matrix-multiply rate right now (`gemm_gflops`): 2 cores shared with other
tenants make absolute timings vary, ratios much less.
"""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
SEGMENT, MEMORY = 512, 16
SEED = 0


def write_json(path: Path, value) -> None:
    """Write through a temporary file, so a reader never sees half a record."""
    from babilab.outputs import write_text_atomic

    write_text_atomic(path, json.dumps(value, indent=1) + "\n")


def parse_length(name: str) -> int:
    from babilab.suite.files import parse_length as parse

    return parse(name)


# --------------------------------------------------------------------------------------------
# Process memory (Linux): current RSS, peak RSS, and a reset of the peak


def _status_kb(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def rss_mb() -> float:
    return _status_kb("VmRSS") / 1024


def peak_rss_mb() -> float:
    return _status_kb("VmHWM") / 1024


def reset_peak_rss() -> None:
    """Make the peak RSS start again from the current RSS (Linux >= 4.0)."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def gemm_gflops(seconds: float = 2.0) -> float:
    """The float32 matrix-multiply rate of the machine right now, on the product that
    dominates a segment (544 positions through SmolLM2's 576 -> 1536 MLP projection). On a
    shared host the load average misses other tenants' work; this does not, so rows measured
    at different times compare by it."""
    import torch

    gen = torch.Generator().manual_seed(SEED)
    a = torch.randn(SEGMENT + 2 * MEMORY, 576, generator=gen)
    b = torch.randn(576, 1536, generator=gen)
    for _ in range(5):
        a @ b
    n, began = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - began) < seconds:
        a @ b
        n += 1
    return 2 * a.shape[0] * a.shape[1] * b.shape[1] * n / elapsed / 1e9


def load_text() -> str:
    """The load average, for the record: 2 cores shared with others make timings noisy."""
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def cpu_kind() -> str:
    """The CPU's name and its bfloat16 matrix units: RMT reads bfloat16 about 3x faster with
    AMX than with AVX-512-BF16 alone (bench_memory_throughput.txt against its .avx512.txt),
    so records from different kinds do not compare."""
    import torch

    try:
        with open("/proc/cpuinfo") as f:
            name = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        name = platform.processor() or platform.machine()
    units = [unit for unit, probe in (("AMX", "_is_amx_tile_supported"),
                                      ("AVX-512-BF16", "_is_avx512_bf16_supported"))
             if getattr(torch.cpu, probe, lambda: False)()]
    return f"{name} ({' + '.join(units) or 'no native bfloat16'})"


def machine_line() -> str:
    import torch
    import transformers

    mem_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (f"# {platform.machine()}, {cpu_kind()}, {os.cpu_count()} cpus, "
            f"{mem_gb:.0f} GiB RAM; python {platform.python_version()}, torch {torch.__version__} "
            f"({torch.get_num_threads()} threads), transformers {transformers.__version__}")


# --------------------------------------------------------------------------------------------
# Models and inputs


def load_backbone(dtype: str = "float32"):
    """(tokenizer, SmolLM2-135M-Instruct) from the converted-copy cache of the packaged GGUF."""
    from babilab.backbone import load_model, resolve_model

    source, content_id, gguf = resolve_model("smollm2")
    return load_model(source, gguf, content_id, dtype)


def build_memory_model(arch: str, backbone):
    """An untrained memory model with the benchmark's settings (seeded, so runs agree)."""
    import torch

    from babilab.memory import ARMT, RMT, RMTR, ARMTConfig, RMTConfig, RMTRConfig

    torch.manual_seed(SEED)
    if arch == "rmt":
        model = RMT(backbone, RMTConfig(segment_size=SEGMENT, num_mem_tokens=MEMORY))
    elif arch == "rmt_r":
        model = RMTR(backbone, RMTRConfig(segment_size=SEGMENT, num_read_mem_tokens=2 * MEMORY,
                                          num_write_mem_tokens=MEMORY))
    elif arch == "armt":
        model = ARMT(backbone, ARMTConfig(segment_size=SEGMENT, num_mem_tokens=MEMORY))
    else:
        raise ValueError(f"unknown architecture {arch!r}")
    return model.eval()



def qa1_points(dtype: str, device: str = "cpu") -> list[dict]:
    """Finished reads of bench_memory_qa1.py in this dtype on this device, shortest first."""
    points = [json.loads(f.read_text()) for f in RESULTS.glob("bench_memory_qa1_*.json")]
    points = [p for p in points if p["dtype"] == dtype and p["device"] == device]
    return sorted(points, key=lambda p: parse_length(p["length"]))
