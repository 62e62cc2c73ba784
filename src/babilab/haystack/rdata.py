"""A small pure-Python reader of R's serialization format, for R packages' lazy-load data.

An installed R package keeps its data sets in a *lazy-load database*:

    data/Rdata.rdx   the index: one gzip-compressed serialized R list, whose element
                     `variables` maps each object name to c(offset, length) in the .rdb
    data/Rdata.rdb   the objects, back to back; each one is a 4-byte big-endian length of the
                     uncompressed bytes, then a zlib stream of one serialized object

A serialized object ("X\\n" then XDR, big-endian; R's format versions 2 and 3) is a tree of
items, each opening with a 32-bit flags word: the type in the low 8 bits, then the object,
attribute and tag bits and the 16 "levels" bits (a string's encoding). Read here: NULL,
symbols, pairlists (attributes, data frames' names), logical, integer, double and character
vectors, lists (data frames are lists), references to symbols seen before, and R's compact
ALTREP forms of integer sequences and of deferred strings. Anything else (functions,
environments, bytecode, S4) raises `RDataError`: babilab only needs the character vectors of
data frames, such as janeaustenr's `text` and `book` columns.

    >>> read_serialized(serialize_r(["Emma", None]))
    RVector(kind='character', values=['Emma', None], attributes={})

Reference: R Internals, "Serialization Formats" (src/main/serialize.c) and "Lazy loading".
Owns only the byte format; which objects make a corpus is corpora.py's business.
"""

from __future__ import annotations

import gzip
import struct
import zlib
from dataclasses import dataclass, field

from .errors import CorpusError


class RDataError(CorpusError):
    """Bytes that are not R serialization this reader handles."""


# Item types (SEXPTYPE) and the special pseudo-types of the stream (serialize.c).
NILSXP, SYMSXP, LISTSXP, CHARSXP = 0, 1, 2, 9
LGLSXP, INTSXP, REALSXP, STRSXP, VECSXP, EXPRSXP = 10, 13, 14, 16, 19, 20
REFSXP, NILVALUE_SXP, ALTREP_SXP = 255, 254, 238
_ENVIRONMENTS = {253: "R_GlobalEnv", 242: "R_EmptyEnv", 241: "R_BaseEnv", 250: "R_BaseNamespace"}
IS_OBJECT, HAS_ATTR, HAS_TAG = 1 << 8, 1 << 9, 1 << 10
NA_INTEGER = -(1 << 31)
_LATIN1, _ASCII = 1 << 2, 1 << 6  # CHARSXP encoding bits among the levels


@dataclass
class RVector:
    """An R vector: its kind, its values (None for NA) and its attributes (names, class...)."""

    kind: str  # "logical", "integer", "double", "character", "list"
    values: list
    attributes: dict = field(default_factory=dict)

    def names(self) -> list[str] | None:
        names = self.attributes.get("names")
        return names.values if isinstance(names, RVector) else None

    def __getitem__(self, name: str):
        """A list's element by name: `df["text"]`."""
        names = self.names() or []
        if name not in names:
            raise RDataError(f"R list has no element {name!r} (has {', '.join(map(str, names))})")
        return self.values[names.index(name)]


@dataclass(frozen=True)
class RSymbol:
    name: str


class _Reader:
    def __init__(self, data: bytes):
        self.data, self.pos = data, 0
        self.refs: list = []  # symbols and environments, for REFSXP back-references

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise RDataError(f"serialized R data ends early (wanted {n} bytes at {self.pos})")
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def int(self) -> int:
        return struct.unpack(">i", self.take(4))[0]

    def length(self) -> int:
        n = self.int()
        if n == -1:  # a long vector: two more ints, upper and lower halves
            upper, lower = self.int(), self.int()
            n = (upper << 32) + (lower & 0xFFFFFFFF)
        if n < 0:
            raise RDataError(f"negative vector length {n} at byte {self.pos}")
        return n

    def header(self) -> None:
        fmt = self.take(2)
        if fmt != b"X\n":
            raise RDataError(f"not XDR-serialized R data (format bytes {fmt!r}; only 'X' is read)")
        version = self.int()
        self.int()  # the R version that wrote it
        self.int()  # the oldest R version that can read it
        if version == 3:
            self.take(self.int())  # the writer's native encoding, e.g. "UTF-8"
        elif version != 2:
            raise RDataError(f"R serialization version {version}; this reader knows 2 and 3")

    def item(self):
        flags = self.int()
        kind = flags & 0xFF
        if kind == NILVALUE_SXP or kind == NILSXP:
            return None
        if kind == REFSXP:
            index = flags >> 8 or self.int()  # packed in the flags, or the next int when large
            if not 1 <= index <= len(self.refs):
                raise RDataError(f"reference {index} to an item not read yet")
            return self.refs[index - 1]
        if kind in _ENVIRONMENTS:
            return RSymbol(_ENVIRONMENTS[kind])
        if kind == SYMSXP:
            symbol = RSymbol(self.item() or "")
            self.refs.append(symbol)
            return symbol
        if kind == CHARSXP:
            return self.charsxp(flags)
        if kind == LISTSXP:
            return self.pairlist(flags)
        if kind == ALTREP_SXP:
            return self.altrep()
        if kind in (LGLSXP, INTSXP):
            n = self.length()
            raw = struct.unpack(f">{n}i", self.take(4 * n))
            values = [None if v == NA_INTEGER else (bool(v) if kind == LGLSXP else v) for v in raw]
            out = RVector("logical" if kind == LGLSXP else "integer", values)
        elif kind == REALSXP:
            n = self.length()
            out = RVector("double", list(struct.unpack(f">{n}d", self.take(8 * n))))
        elif kind == STRSXP:
            n = self.length()
            out = RVector("character", [self.item() for _ in range(n)])
        elif kind in (VECSXP, EXPRSXP):
            n = self.length()
            out = RVector("list", [self.item() for _ in range(n)])
        else:
            raise RDataError(f"R item type {kind} (flags {flags:#x}) is not read by babilab's "
                             f"reader (only vectors, lists and pairlists)")
        if flags & HAS_ATTR:
            out.attributes = self.attributes()
        return out

    def charsxp(self, flags: int) -> str | None:
        n = self.int()
        if n == -1:
            return None  # NA_character_
        raw = self.take(n)
        levels = flags >> 12
        return raw.decode("latin-1" if levels & _LATIN1 and not levels & _ASCII else "utf-8")

    def pairlist(self, flags: int) -> dict:
        """A pairlist as {tag: value} (attributes, argument lists); untagged cells get 0, 1..."""
        out: dict = {}
        while True:
            if flags & HAS_ATTR:
                self.item()  # a pairlist cell's own attributes: none that matter here
            tag = self.item() if flags & HAS_TAG else None
            value = self.item()
            out[tag.name if isinstance(tag, RSymbol) else len(out)] = value
            flags = self.int()  # the CDR: another cell, or the end
            if flags & 0xFF in (NILVALUE_SXP, NILSXP):
                return out
            if flags & 0xFF != LISTSXP:
                raise RDataError(f"a pairlist ends in item type {flags & 0xFF}")

    def attributes(self) -> dict:
        attrs = self.item()
        if attrs is None:
            return {}
        if not isinstance(attrs, dict):
            raise RDataError("attributes that are not a pairlist")
        return attrs

    def altrep(self):
        """R >= 3.5 compact forms: info (class, package, type), state, attributes."""
        info, state, attrs = self.item(), self.item(), self.item()
        cls = info.get(0) if isinstance(info, dict) else None
        name = cls.name if isinstance(cls, RSymbol) else "?"
        if name == "compact_intseq" and isinstance(state, RVector):
            n, first, step = (int(v) for v in state.values[:3])
            out = RVector("integer", list(range(first, first + n * step, step)))
        elif name == "compact_realseq" and isinstance(state, RVector):
            n, first, step = state.values[:3]
            out = RVector("double", [first + i * step for i in range(int(n))])
        elif name == "deferred_string" and isinstance(state, dict) and isinstance(state.get(0), RVector):
            source = state[0]  # the numbers a character vector was made from
            out = RVector("character", [None if v is None else _format_number(v)
                                        for v in source.values])
        elif name.startswith("wrap_") and isinstance(state, dict) and isinstance(state.get(0), RVector):
            out = state[0]  # a wrapper around an ordinary vector (plus metadata)
        else:
            raise RDataError(f"ALTREP class {name!r} is not read by babilab's reader")
        out.attributes = attrs if isinstance(attrs, dict) else {}
        return out


def _format_number(v) -> str:
    return str(int(v)) if isinstance(v, float) and v.is_integer() else str(v)


def read_serialized(data: bytes):
    """One serialized R object (uncompressed bytes) as Python values."""
    reader = _Reader(data)
    reader.header()
    return reader.item()


def read_lazyload(rdx: bytes, rdb: bytes, where: str = "Rdata") -> dict:
    """Every object of a lazy-load database (the bytes of Rdata.rdx and Rdata.rdb), by name."""
    index = read_serialized(_gunzip(rdx, f"{where}.rdx"))
    if not isinstance(index, RVector) or index.kind != "list":
        raise RDataError(f"{where}.rdx: the index is not an R list")
    variables = index["variables"]
    names = variables.names() or []
    out = {}
    for name, at in zip(names, variables.values, strict=True):
        offset, size = (int(v) for v in at.values)
        if offset < 0 or offset + size > len(rdb):
            raise RDataError(f"{where}.rdb: {name} lies outside the file (truncated?)")
        out[name] = read_serialized(_inflate_entry(rdb[offset:offset + size], f"{where}.rdb:{name}"))
    return out


def _gunzip(data: bytes, where: str) -> bytes:
    try:
        return gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data
    except (OSError, EOFError) as e:
        raise RDataError(f"{where}: damaged gzip data ({e})") from None


def _inflate_entry(entry: bytes, where: str) -> bytes:
    """One .rdb entry: 4-byte big-endian uncompressed length, then a zlib stream."""
    if len(entry) < 5:
        raise RDataError(f"{where}: an empty or truncated entry")
    want = struct.unpack(">I", entry[:4])[0]
    if entry[4:5] in (b"2", b"X", b"0"):  # bzip2 / xz / stored: R's other compress= options
        raise RDataError(f"{where}: compression type {entry[4:5]!r}; only zlib is read")
    try:
        data = zlib.decompress(entry[4:])
    except zlib.error as e:
        raise RDataError(f"{where}: damaged zlib data ({e})") from None
    if len(data) != want:
        raise RDataError(f"{where}: inflates to {len(data)} bytes, the entry says {want}")
    return data


# --- writing, for tests: the few items the reader reads, as R itself lays them out ------------

def _flags(kind: int, attr: bool = False, tag: bool = False, levels: int = 0,
           obj: bool = False) -> bytes:
    value = kind | (IS_OBJECT if obj else 0) | (HAS_ATTR if attr else 0) | (HAS_TAG if tag else 0)
    return struct.pack(">i", value | (levels << 12))


def _charsxp(s: str | None) -> bytes:
    if s is None:
        return _flags(CHARSXP) + struct.pack(">i", -1)
    raw = s.encode("utf-8")
    levels = _ASCII if s.isascii() else 1 << 3  # UTF8_MASK
    return _flags(CHARSXP, levels=levels) + struct.pack(">i", len(raw)) + raw


def _symbol(name: str) -> bytes:
    return _flags(SYMSXP) + _charsxp(name)


def serialize_r(value, attributes: dict | None = None) -> bytes:
    """Version-3 XDR bytes of a str/int/float list, a list of those, or None (tests only).

    A Python list of str is a character vector, of int an integer vector, of float a double
    vector, a dict {name: list} a named list; `attributes` become tagged pairlist cells.
    Symbols are written in full every time (R would back-reference repeats: the reader
    handles both).
    """
    out = b"X\n" + struct.pack(">iii", 3, 0x040201, 0x030500)
    out += struct.pack(">i", 5) + b"UTF-8"
    return out + _item(value, attributes)


def _item(value, attributes: dict | None = None) -> bytes:
    attrs = dict(attributes or {})
    if value is None:
        return _flags(NILVALUE_SXP)
    if isinstance(value, dict):
        attrs = {"names": list(value), **attrs}
        body = struct.pack(">i", len(value)) + b"".join(_item(v) for v in value.values())
        kind = VECSXP
    elif all(isinstance(v, str) or v is None for v in value):
        body = struct.pack(">i", len(value)) + b"".join(_charsxp(v) for v in value)
        kind = STRSXP
    elif all(isinstance(v, int) for v in value):
        body = struct.pack(f">i{len(value)}i", len(value), *value)
        kind = INTSXP
    else:
        body = struct.pack(f">i{len(value)}d", len(value), *value)
        kind = REALSXP
    head = _flags(kind, attr=bool(attrs), obj="class" in attrs)
    return head + body + (_pairlist(attrs) if attrs else b"")


def _pairlist(attrs: dict) -> bytes:
    out = b""
    for name, value in attrs.items():
        out += _flags(LISTSXP, tag=True) + _symbol(name) + _item(value)
    return out + _flags(NILVALUE_SXP)


def write_lazyload(objects: dict) -> tuple[bytes, bytes]:
    """(rdx, rdb) bytes of a lazy-load database of `objects` ({name: value for serialize_r}),
    laid out as R's makeLazyLoadDB lays them (tests only)."""
    rdb, where = b"", {}
    for name, value in objects.items():
        data = serialize_r(value)
        entry = struct.pack(">I", len(data)) + zlib.compress(data)
        where[name] = [len(rdb), len(entry)]
        rdb += entry
    # R writes `compressed` as a logical; an integer here: the reader does not look at it
    index = {"variables": where, "references": {}, "compressed": [1]}
    return gzip.compress(serialize_r(index)), rdb


__all__ = ["RDataError", "RSymbol", "RVector", "read_lazyload", "read_serialized",
           "serialize_r", "write_lazyload"]
