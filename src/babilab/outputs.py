"""Where babilab writes, and how: output paths checked first, files renamed into place,
sets of files built aside and moved in only once complete.

Every command that writes keeps two promises: nothing half-written is ever visible (a
reader, or the next run, sees a whole file or none), and a refusal leaves the disk as it was
(no empty folder, no temporary file). `check_output_dir` runs before any work, so a bad
--out fails in a second rather than after an hour of evaluation; `write_atomic` writes
under a temporary name and renames (the one way babilab writes a file that must not be seen
half-written); `replace_dir` swaps a finished folder for an older one; `staged_dir` builds a
folder's files beside it and moves them in at the end, removing on failure whatever it made,
parent folders included. (Content-named cache folders enter the cache through
cache.publish_dir.)
`os_error_line` turns an OSError that still gets through (a full disk, a folder made
read-only mid-run) into the one line the CLI prints.
"""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .errors import BabilabError


def read_json_file(path: Path, fix: str) -> Any:
    """A JSON file's value; damage (not UTF-8, not JSON) is one BabilabError ending in `fix`."""
    import json

    try:
        return json.loads(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError:
        raise BabilabError(f"{path}: not UTF-8 text (binary or damaged); {fix}") from None
    except json.JSONDecodeError as e:
        raise BabilabError(f"{path}: unreadable ({e.msg} at line {e.lineno}); {fix}") from None


def nearest_existing(path: Path) -> Path:
    """`path` itself or its closest ancestor that exists (a file or a folder)."""
    for candidate in [path, *path.parents]:
        if candidate.exists():
            return candidate
    return Path.cwd()


def check_output_dir(path: Path | str, option: str) -> None:
    """Refuse an output folder that cannot be one, before anything is written: a path that
    is a file, runs through a file, or whose nearest existing folder is not writable."""
    path = Path(path)
    existing = nearest_existing(path)
    if not existing.is_dir():
        where = "is a file" if existing == path else f"is under a file ({existing})"
        raise BabilabError(f"{path} {where}; give {option} a folder path")
    if not can_write_in(existing):
        raise BabilabError(f"{path}: {existing} is not writable; give {option} a folder you "
                           "can write to")


def can_write_in(folder: Path) -> bool:
    """Whether this process may create files in `folder`: checked with the effective ids and
    capabilities, as the writes will be (plain access() asks about the real ones)."""
    effective = os.access in os.supports_effective_ids
    return os.access(folder, os.W_OK | os.X_OK, effective_ids=effective)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def make_dir(parent: Path, prefix: str) -> Path:
    """A temporary folder in `parent`, with the permissions a plain mkdir would give."""
    tmp = Path(tempfile.mkdtemp(dir=parent, prefix=prefix))
    os.chmod(tmp, 0o777 & ~_umask())
    return tmp


def write_atomic(path: Path, write: Callable[[str], Any]) -> None:
    """`write(tmp_name)` writes the file; it then replaces `path` in one rename."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes it private; the result should not be
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_text_atomic(path: Path, text: str) -> None:
    write_atomic(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


def replace_dir(tmp: Path, final: Path) -> None:
    """Put the finished folder `tmp` (beside `final`) at `final`, replacing an older one: the
    old folder is moved aside, `tmp` renamed into place, then the old one removed. A reader
    finds the old folder or the new one whole; only between the two renames, neither."""
    old = final.with_name(f".{final.name}.old-{os.getpid()}")
    shutil.rmtree(old, ignore_errors=True)
    if final.exists():
        os.replace(final, old)
    os.replace(tmp, final)
    shutil.rmtree(old, ignore_errors=True)


def missing_folders(path: Path) -> list[Path]:
    """The folders `path.mkdir(parents=True)` would create, deepest first."""
    return [p for p in [path, *path.parents] if not p.exists()]


def remove_if_empty(folders: list[Path]) -> None:
    """Remove the folders (deepest first) that hold nothing: ones this call made."""
    for folder in folders:
        try:
            folder.rmdir()
        except OSError:  # not empty, or already gone: someone else's now
            return


@contextmanager
def created_folder(folder: Path) -> Iterator[Path]:
    """Make `folder` (and its parents); if the block fails, remove the ones made here that
    are still empty, so a refusal leaves no empty folder behind."""
    made = missing_folders(folder)
    folder.mkdir(parents=True, exist_ok=True)
    try:
        yield folder
    except BaseException:
        remove_if_empty(made)
        raise


@contextmanager
def staged_dir(out: Path) -> Iterator[Path]:
    """A temporary folder to write into; when the block succeeds its files move into `out`.
    A new `out` is the temporary folder, built beside it and renamed; an existing one takes
    the files (replacing those of the same name) from a temporary folder inside it, so only
    `out` itself needs to be writable. When the block fails, the temporary folder and any
    parent folders made for it are removed."""
    out = Path(out)
    home = out if out.is_dir() else out.parent
    with created_folder(home):
        tmp = make_dir(home, f".{out.name}.tmp-")
        try:
            yield tmp
            publish(tmp, out)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


def publish(tmp: Path, out: Path) -> None:
    """Move the files under `tmp` to the same places under `out`, each in one rename."""
    if not out.exists():
        os.rename(tmp, out)
        return
    for source in sorted(p for p in tmp.rglob("*") if not p.is_dir()):
        target = out / source.relative_to(tmp)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(source, target)


_FIXES = {
    errno.EACCES: "choose a folder you can write to, or fix its permissions",
    errno.EPERM: "choose a folder you can write to, or fix its permissions",
    errno.EROFS: "the file system is read-only; choose a folder elsewhere",
    errno.ENOSPC: "free some space or choose a folder on another disk",
    errno.EDQUOT: "free some space or choose a folder on another disk",
    errno.ENOTDIR: "a part of the path is a file; choose another path",
    errno.EISDIR: "it is a folder; give a file path",
    errno.ENOENT: "check the path",
    errno.ENAMETOOLONG: "choose a shorter path",
}


def os_error_line(e: OSError) -> str:
    """One line for an OSError: the path, what went wrong and what to do about it."""
    where = f"{e.filename}: " if e.filename is not None else ""
    what = e.strerror or str(e) or type(e).__name__
    fix = _FIXES.get(e.errno or 0, "check the path and its permissions")
    return f"{where}{what.rstrip('.').lower()}; {fix}"


__all__ = ["can_write_in", "check_output_dir", "created_folder", "make_dir", "missing_folders",
           "nearest_existing", "os_error_line", "publish", "remove_if_empty", "replace_dir",
           "staged_dir", "write_atomic", "write_text_atomic"]
