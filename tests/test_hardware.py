"""dtype `auto`: bfloat16 only where the hardware computes it natively, float32 elsewhere."""

from __future__ import annotations

import pytest

from babilab.errors import BabilabError
from babilab.hardware import native_bfloat16, resolve_dtype


def test_explicit_choices_are_kept():
    for dtype in ("bfloat16", "float16", "float32"):
        assert resolve_dtype(dtype, "cpu") == dtype


def test_unknown_dtype_is_one_clear_error():
    with pytest.raises(BabilabError, match="dtype must be one of auto, bfloat16, float16, float32"):
        resolve_dtype("fp8")


def test_a_cpu_without_native_bfloat16_gets_float32(monkeypatch):
    import torch

    for probe in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"):
        monkeypatch.setattr(torch.cpu, probe, lambda: False, raising=False)
    assert not native_bfloat16("cpu") and resolve_dtype("auto", "cpu") == "float32"
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: True, raising=False)
    assert resolve_dtype("auto", "cpu") == "bfloat16"


def test_emulated_bfloat16_asked_for_warns_once(monkeypatch, caplog):
    import torch

    from babilab import hardware

    for probe in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"):
        monkeypatch.setattr(torch.cpu, probe, lambda: False, raising=False)
    hardware._warn_emulated_bfloat16.cache_clear()  # earlier tests may have warned already
    with caplog.at_level("WARNING", logger="babilab.hardware"):
        for _ in range(3):
            assert resolve_dtype("bfloat16", "cpu") == "bfloat16"
    assert [r.message.split(":")[0] for r in caplog.records] == ["this cpu has no native bfloat16"]
