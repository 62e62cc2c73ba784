"""ARMT against a direct, naive transcription of its equations (arXiv 2407.04841).

The naive code below works element by element from the written equations (index arithmetic for
DPFP's roll, explicit sums over memory tokens and key features), independent of the vectorised
module. The model's own segment loop runs; hooks record what each decoder layer saw and
produced, and the naive code replays the writes and reads from those records.
"""

from __future__ import annotations

import pytest
import torch

from babilab.memory.armt import EPS, AssociativeMemory, dpfp
from babilab.memory.common import decoder_layers

from .memory_fixtures import SEGMENT, build, gpt2_backbone, llama_backbone, sample

N_SEGMENTS = 3


def naive_dpfp(x: torch.Tensor, nu: int) -> torch.Tensor:
    """phi(x)[(j-1) 2d + i] = x'[i] * x'[(i - j) mod 2d], x' = [relu(x), relu(-x)]."""
    d2 = 2 * x.shape[0]
    x = x.detach()
    xp = [max(float(v), 0.0) for v in x] + [max(-float(v), 0.0) for v in x]
    return torch.tensor(
        [xp[i] * xp[(i - j) % d2] for j in range(1, nu + 1) for i in range(d2)], dtype=torch.float64
    )


def naive_write(layer, m: torch.Tensor, A: torch.Tensor, z: torch.Tensor, nu: int):
    """One sample: m (M, D) memory-token outputs; A (K, D), z (K) before the write."""
    Wk, Wv = layer.k_proj.weight.detach().double(), layer.v_proj.weight.detach().double()
    wb, bb = layer.beta_proj.weight.detach().double()[0], layer.beta_proj.bias.detach().double()[0]
    dA, dz = torch.zeros_like(A), torch.zeros_like(z)
    for mi in m.double():
        k = naive_dpfp(Wk @ mi, nu)  # (K,)
        v = Wv @ mi  # (D,)
        beta = 1 / (1 + torch.exp(-(wb @ mi + bb)))
        kz = sum(k[a] * z[a] for a in range(len(k)))
        v_old = sum(k[a] * A[a] for a in range(len(k))) / (kz + EPS)
        gamma = min(max(1 - kz / (sum(k[a] ** 2 for a in range(len(k))) + EPS), 0.0), 1.0)
        dA += beta * torch.outer(k, v - v_old)  # every token sees the same old A and z
        dz += gamma * k
    return A + dA, z + dz


def naive_read(layer, h: torch.Tensor, A: torch.Tensor, z: torch.Tensor, nu: int):
    """One sample: h (T, D) layer input -> h + q A / (q . z + eps) per position."""
    out = []
    for ht in h.double():
        q = naive_dpfp(layer.q_proj.weight.detach().double() @ ht, nu)
        out.append(ht + (q @ A) / (q @ z + EPS))
    return torch.stack(out)


def test_dpfp_matches_the_formula():
    x = torch.randn(5)
    for nu in (1, 2, 3):
        torch.testing.assert_close(dpfp(x, nu).double(), naive_dpfp(x, nu))


@pytest.mark.parametrize("make_backbone", [gpt2_backbone, llama_backbone])
def test_state_after_n_writes_and_reads_match_naive_equations(make_backbone):
    torch.manual_seed(0)
    model = build("armt", make_backbone(), mem=3)
    M, nu = model.config.num_mem_tokens, model.config.nu
    layers = decoder_layers(model.backbone)
    records: list[list] = [[] for _ in layers]  # per layer: (input after read, output) per step

    def record(i):
        def hook(module, args, kwargs, output):
            h = args[0] if args else kwargs["hidden_states"]
            records[i].append((h[0].detach(), output[0].detach()))

        return hook

    # Registered before the model's own hooks: a forward hook sees the input after the read.
    handles = [
        layer.register_forward_hook(record(i), with_kwargs=True) for i, layer in enumerate(layers)
    ]
    try:
        ids = sample(N_SEGMENTS * SEGMENT, 40)[None]
        with torch.no_grad():
            state = model(ids).memory
    finally:
        for handle in handles:
            handle.remove()

    K, D = state.A.shape[2:]
    A = [torch.zeros(K, D, dtype=torch.float64) for _ in layers]
    z = [torch.zeros(K, dtype=torch.float64) for _ in layers]
    for step in range(N_SEGMENTS):
        for i in range(len(layers)):
            h_in, h_out = records[i][step]
            if i > 0:  # the read: this layer's input = previous layer's output + memory
                expected = naive_read(model.assoc[i], records[i - 1][step][1], A[i], z[i], nu)
                torch.testing.assert_close(h_in.double(), expected, rtol=1e-4, atol=1e-5)
            A[i], z[i] = naive_write(model.assoc[i], h_out[-M:], A[i], z[i], nu)
    for i in range(len(layers)):
        assert float(A[i].abs().max()) > 0  # the test is not vacuous
        torch.testing.assert_close(state.A[0, i].double(), A[i], rtol=1e-4, atol=1e-6)
        torch.testing.assert_close(state.z[0, i].double(), z[i], rtol=1e-4, atol=1e-6)


def test_state_size_is_constant():
    torch.manual_seed(0)
    model = build("armt", gpt2_backbone())
    short = model(sample(SEGMENT, 41)[None]).memory
    long = model(sample(5 * SEGMENT, 42)[None]).memory
    assert short.A.shape == long.A.shape and short.z.shape == long.z.shape
    K = 2 * model.config.nu * model.config.d_mem
    assert short.A.shape == (1, 2, K, 32)


def relative_error(x: torch.Tensor, expected: torch.Tensor) -> float:
    return float((x.float() - expected).norm() / expected.norm())


def test_low_precision_reads_agree_with_float32():
    """bfloat16 layers read in bfloat16 within its rounding; float16 ones read in float32,
    so a state beyond float16's range (65504) still reads right."""
    torch.manual_seed(0)
    layer = AssociativeMemory(d_model=32, d_mem=8, nu=2).requires_grad_(False)
    h = torch.randn(2, 7, 32)  # (B, T, D)
    A, z = torch.randn(2, 32, 32), torch.rand(2, 32)  # K = 2 nu d_mem = 32
    expected = layer.read(h, A, z)

    bf16 = AssociativeMemory(32, 8, 2).to(torch.bfloat16).requires_grad_(False)
    bf16.load_state_dict(layer.state_dict())
    read = bf16.read(h.bfloat16(), A, z)
    assert read.dtype == torch.bfloat16
    assert relative_error(read, expected) < 1e-2  # bfloat16 keeps 8 bits: 0.4% per rounding
    with torch.autocast("cpu", dtype=torch.bfloat16):
        read = layer.read(h, A, z)
    assert read.dtype == torch.float32
    assert 0 < relative_error(read, expected) < 1e-2  # computed in bfloat16, not float32

    fp16 = AssociativeMemory(32, 8, 2).to(torch.float16).requires_grad_(False)
    fp16.load_state_dict(layer.state_dict())
    read = fp16.read(h.half(), 1e5 * A, 1e5 * z)  # the same ratio: the same read
    assert read.dtype == torch.float16 and bool(torch.isfinite(read).all())
    assert relative_error(read, expected) < 1e-2
