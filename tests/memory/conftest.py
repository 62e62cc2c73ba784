"""Fixtures for tests/memory: each backbone family and each architecture."""

from __future__ import annotations

import pytest
import torch

from .memory_fixtures import ARCHITECTURES, BACKBONES


@pytest.fixture(autouse=True)
def one_thread():
    # Toy-sized tensors: extra threads cost more than they give (about 10x here), and CI
    # machines are shared. Restored afterwards so that other test packages are unaffected.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(params=list(BACKBONES))
def backbone(request):
    torch.manual_seed(0)
    return BACKBONES[request.param]()


@pytest.fixture(params=ARCHITECTURES)
def arch(request) -> str:
    return request.param
