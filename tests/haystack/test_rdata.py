"""The R serialization reader: bytes laid out per R's format, and the real janeaustenr data.

R is not installed here, so the bytes are built by hand after R Internals ("Serialization
Formats"): serialize_r for ordinary vectors, and raw items below for what R writes and our
writer does not (back-references, long lengths, NA, Latin-1, ALTREP, a data frame).
"""

from __future__ import annotations

import gzip
import struct
import zlib

import pytest

from babilab.haystack.rdata import (
    RDataError,
    RVector,
    read_lazyload,
    read_serialized,
    serialize_r,
    write_lazyload,
)

HEADER_V2 = b"X\n" + struct.pack(">iii", 2, 0x030600, 0x020300)  # format 2: no encoding field


def i32(*values: int) -> bytes:
    return struct.pack(f">{len(values)}i", *values)


def charsxp(raw: bytes, levels: int = 1 << 6) -> bytes:  # ASCII by default
    return i32(9 | levels << 12, len(raw)) + raw


def test_vectors_round_trip():
    assert read_serialized(serialize_r(["a", None, "Émile"])) == \
        RVector("character", ["a", None, "Émile"])
    assert read_serialized(serialize_r([1, -2, 3])) == RVector("integer", [1, -2, 3])
    assert read_serialized(serialize_r([0.5, 2.0])) == RVector("double", [0.5, 2.0])
    named = read_serialized(serialize_r({"text": ["x", "y"], "n": [1, 2]}))
    assert named.kind == "list" and named.names() == ["text", "n"]
    assert named["text"].values == ["x", "y"]
    with pytest.raises(RDataError, match="no element 'book'"):
        named["book"]


def test_a_data_frame_as_r_writes_it():
    """data.frame(text = c("It is a truth", NA), book = factor(...)): a list with names,
    class and compact row names c(NA, -2); a symbol seen before is a back-reference (symbols
    are numbered as read: levels 1, class 2, names 3)."""
    frame = (
        i32(19 | 1 << 8 | 1 << 9, 2)  # VECSXP, object, with attributes; 2 columns
        + i32(16, 2) + charsxp(b"It is a truth") + i32(9, -1)  # STRSXP with NA_STRING
        + i32(13 | 1 << 8 | 1 << 9, 2) + i32(1, 1)  # the factor's codes
        + i32(2 | 1 << 10) + i32(1) + charsxp(b"levels")  # attribute pairlist: levels =
        + i32(16, 1) + charsxp("Pride & Préjudice".encode(), levels=1 << 3)
        + i32(2 | 1 << 10) + i32(1) + charsxp(b"class") + i32(16, 1) + charsxp(b"factor")
        + i32(254)
        # the frame's attributes: names, class, row.names
        + i32(2 | 1 << 10) + i32(1) + charsxp(b"names") + i32(16, 2) + charsxp(b"text")
        + charsxp(b"book")
        + i32(2 | 1 << 10) + i32(255 | 2 << 8)  # REFSXP to the second symbol read: "class"
        + i32(16, 1) + charsxp(b"data.frame")
        + i32(2 | 1 << 10) + i32(1) + charsxp(b"row.names") + i32(13, 2) + i32(-(1 << 31), -2)
        + i32(254)
    )
    df = read_serialized(HEADER_V2 + frame)
    assert df.names() == ["text", "book"]
    assert df["text"].values == ["It is a truth", None]
    assert df["book"].attributes["levels"].values == ["Pride & Préjudice"]  # UTF-8 flag
    assert df.attributes["class"].values == ["data.frame"]
    assert df.attributes["row.names"].values == [None, -2]


def test_latin1_strings_long_lengths_and_compact_sequences():
    latin1 = HEADER_V2 + i32(16, 1) + charsxp("café".encode("latin-1"), levels=1 << 2)
    assert read_serialized(latin1).values == ["café"]
    long_length = HEADER_V2 + i32(13, -1, 0, 2) + i32(7, 8)  # a long-vector length field
    assert read_serialized(long_length).values == [7, 8]
    # ALTREP compact_intseq 1:5: info pairlist (class, package, type), state c(n, start, step)
    intseq = (HEADER_V2 + i32(238) + i32(2) + i32(1) + charsxp(b"compact_intseq")
              + i32(2) + i32(1) + charsxp(b"base") + i32(2) + i32(13, 1, 13) + i32(254)
              + i32(14, 3) + struct.pack(">3d", 5, 1, 1) + i32(254))
    assert read_serialized(intseq) == RVector("integer", [1, 2, 3, 4, 5])


@pytest.mark.parametrize("data, message", [
    (b"A\n" + b"\0" * 12, "only 'X'"),
    (b"X\n" + struct.pack(">iii", 4, 0, 0), "version 4"),
    (HEADER_V2 + i32(16, 3) + charsxp(b"a"), "ends early"),
    (HEADER_V2 + i32(3), "type 3"),  # a closure
    (HEADER_V2 + i32(255 | 7 << 8), "reference 7"),
])
def test_what_it_does_not_read_is_one_clear_error(data, message):
    with pytest.raises(RDataError, match=message):
        read_serialized(data)


def test_lazyload_database_round_trip_and_damage():
    rdx, rdb = write_lazyload({"emma": ["EMMA", "", "By Jane Austen"], "n": [3]})
    objects = read_lazyload(rdx, rdb)
    assert objects["emma"].values == ["EMMA", "", "By Jane Austen"]
    assert objects["n"].values == [3]
    with pytest.raises(RDataError, match="outside the file"):
        read_lazyload(rdx, rdb[:20])
    entry = struct.pack(">I", 999) + zlib.compress(serialize_r(["x"]))
    rdx2 = gzip.compress(serialize_r({"variables": {"x": [0, len(entry)]}}))
    with pytest.raises(RDataError, match="inflates to"):
        read_lazyload(rdx2, entry)
    with pytest.raises(RDataError, match="damaged zlib"):
        read_lazyload(rdx2, entry[:4] + b"\x78\x9c garbage" + entry[14:])


def test_the_real_janeaustenr_lazyload_data(austen_download):
    """Debian's r-cran-janeaustenr: six novels, one character vector of lines each."""
    from babilab.haystack.packaged import AUSTEN

    files = AUSTEN.open_archive(austen_download)
    objects = read_lazyload(files.read("Rdata.rdx"), files.read("Rdata.rdb"))
    assert sorted(objects) == ["emma", "mansfieldpark", "northangerabbey", "persuasion",
                               "prideprejudice", "sensesensibility"]
    pride = objects["prideprejudice"]
    assert pride.kind == "character" and len(pride.values) == 13030
    assert pride.values[0] == "PRIDE AND PREJUDICE"
    assert "It is a truth universally acknowledged" in " ".join(pride.values[:12])
