"""Folders that are really read-only in a test, even when the tests run as root.

`chmod a-w` stops an ordinary user, but root passes every permission check through the
CAP_DAC_OVERRIDE capability, and CI runs the tests as root. So as root, `read_only` also
drops that capability from the thread's effective set for the duration of the block (it
stays in the permitted set, so it can be raised again afterwards) with capget/capset. Where
that is impossible (not Linux, no capset), the block is told so, and the caller skips only
the part of a test that needs the folder to refuse writes.

Also here: `snapshot`, a folder's tree as {relative path: bytes, or None for a folder}, to
assert that a command left a folder byte-identical.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

CAP_DAC_OVERRIDE = 1  # linux/capability.h: bypass file read, write and execute checks
_CAPABILITY_VERSION_3 = 0x20080522
NOT_ENFORCED = ("this process can write into a read-only folder (root, and CAP_DAC_OVERRIDE "
                "cannot be dropped here), so the folder's refusal of writes cannot be tested")


def snapshot(root: Path) -> dict[str, bytes | None]:
    """Every path under `root` (hidden ones too) with its bytes; None for folders."""
    return {p.relative_to(root).as_posix(): None if p.is_dir() else p.read_bytes()
            for p in sorted(root.rglob("*"))}


class _Header(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _Data(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                ("inheritable", ctypes.c_uint32)]


def _capabilities():
    """(libc, header, data) of this thread's capabilities, or None where unavailable."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        header, data = _Header(_CAPABILITY_VERSION_3, 0), (_Data * 2)()
        if libc.capget(ctypes.byref(header), data) != 0:
            return None
        return libc, header, data
    except (OSError, AttributeError):
        return None


@contextmanager
def _without_dac_override() -> Iterator[None]:
    """As root: CAP_DAC_OVERRIDE out of the effective set for the block (same thread)."""
    caps = _capabilities() if os.geteuid() == 0 else None
    if caps is None or not caps[2][0].effective & (1 << CAP_DAC_OVERRIDE):
        yield
        return
    libc, header, data = caps
    saved = data[0].effective
    data[0].effective = saved & ~(1 << CAP_DAC_OVERRIDE)
    dropped = libc.capset(ctypes.byref(header), data) == 0
    try:
        yield
    finally:
        if dropped:
            data[0].effective = saved
            libc.capset(ctypes.byref(header), data)


def _writes_refused(folder: Path) -> bool:
    probe = folder / ".write-probe"
    try:
        probe.write_text("")
    except PermissionError:
        return True
    probe.unlink()
    return False


@contextmanager
def read_only(folder: Path) -> Iterator[bool]:
    """Make `folder` and everything in it read-only for the block; yields whether writes
    into it are really refused (see the module docstring). Modes are restored afterwards."""
    paths = [folder, *folder.rglob("*")]
    modes = {p: p.stat().st_mode for p in paths}
    for p in reversed(paths):  # contents first: a read-only folder can still chmod its files
        os.chmod(p, stat.S_IMODE(modes[p]) & ~0o222)
    try:
        with _without_dac_override():
            yield _writes_refused(folder)
    finally:
        for p, mode in modes.items():
            os.chmod(p, stat.S_IMODE(mode))
