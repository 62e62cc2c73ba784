"""The babilab cache: its one root folder, the sha256 that names what is in it, and how a
folder enters it.

    cache_root()                        # $XDG_CACHE_HOME/babilab, else ~/.cache/babilab
    cache_root(cfg.cache_dir)           # a folder the caller was given wins
    sha256_file(path)                   # hex digest, read in 1 MiB blocks
    with publish_dir(cache_root() / "gguf" / key) as tmp: ...   # appears whole, or not at all

Every package keeps its entries in a sub-folder of the root: suites/, haystack/, corpora/,
downloads/, tokenizers/, gguf/, rag/ and campaigns/. An entry is named by what it holds (a
sha256 of its content or of what made it), never by a path or a time, so two processes that
build the same entry build the same bytes and either may win.

Not here: what goes in each entry (its package's), writing single files atomically
(outputs.py), pinned downloads (haystack/cache.py).
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .outputs import make_dir


def cache_root(cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """The babilab cache folder: `cache_dir` if given, else $XDG_CACHE_HOME/babilab."""
    if cache_dir is not None:
        return Path(cache_dir)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "babilab"


def sha256_file(path: str | os.PathLike[str]) -> str:
    """The hex sha256 of a file's bytes, read a block at a time (GGUF files are gigabytes)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@contextmanager
def publish_dir(final: Path) -> Iterator[Path]:
    """Yield an empty temp folder beside `final`; on success rename it to `final`.

    Nothing half-written is ever visible under `final`. If another process published the
    same folder first, ours is dropped and theirs is kept (both hold the same content, since
    every cached folder is named by what it holds).
    """
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = make_dir(final.parent, f".{final.name}.tmp-")
    try:
        yield tmp
        try:
            os.rename(tmp, final)
        except OSError:
            if not final.is_dir():
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


__all__ = ["cache_root", "publish_dir", "sha256_file"]
