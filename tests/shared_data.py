"""The real data in ../shared/data, unpacked for tests into a temporary folder (never into
the repository); a test that needs an archive is skipped where ../shared is absent."""

from __future__ import annotations

import tarfile
from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"


def unpack(archive_name: str, tmp_path_factory) -> Path:
    """Unpack ../shared/data/ARCHIVE_NAME into a new temporary folder and return that folder."""
    archive = SHARED_DATA / archive_name
    if not archive.is_file():
        pytest.skip("the shared data folder (../shared) is absent")
    out = tmp_path_factory.mktemp(archive_name.split(".")[0])
    with tarfile.open(archive) as tar:
        tar.extractall(out, filter="data")
    return out
