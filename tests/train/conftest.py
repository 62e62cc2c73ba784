"""Fixtures for tests/train: one corpus and tiny backbones per session (they take seconds)."""

from __future__ import annotations

import pytest

from .train_fixtures import write_backbone, write_corpus


@pytest.fixture(scope="session")
def corpus(tmp_path_factory):
    return write_corpus(tmp_path_factory.mktemp("corpus"))


@pytest.fixture(scope="session")
def backbone(tmp_path_factory, corpus):
    """Tiny GPT-2 without dropout (so 1 and 2 processes compute the same thing)."""
    return write_backbone(tmp_path_factory.mktemp("backbone"), corpus)


@pytest.fixture(scope="session")
def dropout_backbone(tmp_path_factory, corpus):
    """Tiny GPT-2 with dropout: training draws from the RNG, which a resume must restore."""
    return write_backbone(tmp_path_factory.mktemp("dropout_backbone"), corpus, dropout=0.1)


@pytest.fixture(autouse=True)
def one_thread():
    # Toy-sized tensors: extra threads cost more than they give, and CI machines are shared.
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
