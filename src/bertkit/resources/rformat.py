"""Read data sets from R's lazy-load databases (``data/Rdata.rdb`` + ``Rdata.rdx``).

Why: Debian's ``r-cran-*`` packages ship real text (Jane Austen's novels, Amazon fine-food
reviews) only in R's own binary format. Reading it needs neither R nor a third-party reader
(PyPI's ``rdata`` pulls in pandas and xarray for what is ~150 lines of format): this module
decodes the subset of R serialization that data sets use.

Format, as R writes it (``src/main/serialize.c``):

* ``Rdata.rdx`` is a gzip'd serialized list: ``variables`` (object name → (offset, length) in
  the ``.rdb``) and ``compressed`` (``TRUE`` = zlib, 2 = bzip2, 3 = xz, or per record as below).
* Each ``.rdb`` record is a 4-byte big-endian uncompressed length, then — for types 2/3 — one
  type byte (``Z`` raw LZMA2, ``2`` bzip2, ``1`` zlib, ``0`` stored) and the compressed payload;
  for ``TRUE`` just a zlib stream.
* The payload is a serialized object, XDR (big-endian) format 2 or 3: ``X\\n``, versions, then
  items. Each item starts with a 32-bit flags word: type in the low byte, "has attributes" /
  "has tag" / "is object" bits, and the CHARSXP encoding bits in the high "levels" field.

Supported: NULL, symbols and back-references to them, pairlists (attributes), character,
logical, integer, double and complex vectors, lists, and the ALTREP forms R ≥ 3.5 writes
(compact integer/real sequences, wrapper and deferred-string vectors). Environments, closures,
bytecode and external pointers are refused with a :class:`~bertkit.errors.DataFormatError`:
no data set needs them.

Values come back as :class:`RVector` (a ``list`` with an ``attributes`` dict); ``NA`` is
``None``. :func:`data_frame` turns a data.frame / tibble into columns with factors decoded.
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import struct
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bertkit.errors import DataFormatError

__all__ = ["RVector", "data_frame", "lazy_load", "lazy_load_names", "unserialize"]

# SEXP type codes and the pseudo-types of the serialization stream.
NILSXP, SYMSXP, LISTSXP, CLOSXP, ENVSXP, PROMSXP, LANGSXP = 0, 1, 2, 3, 4, 5, 6
CHARSXP, LGLSXP, INTSXP, REALSXP, CPLXSXP, STRSXP, DOTSXP = 9, 10, 13, 14, 15, 16, 17
VECSXP, EXPRSXP = 19, 20
ALTREP_SXP, EMPTYENV_SXP, BASEENV_SXP, GLOBALENV_SXP = 238, 242, 241, 253
NILVALUE_SXP, REFSXP = 254, 255
_PAIRLISTS = {LISTSXP, LANGSXP, CLOSXP, PROMSXP, DOTSXP}
_NA_INTEGER = -(2**31)
_IS_OBJECT, _HAS_ATTR, _HAS_TAG = 1 << 8, 1 << 9, 1 << 10
_LATIN1, _UTF8 = 1 << 2, 1 << 3


class RVector(list):
    """An R vector or list: its elements, plus R attributes (``names``, ``class``, ``levels``…).

    A ``list`` subclass so that plain uses (``len``, indexing, iteration) need nothing R-ish.
    """

    def __init__(self, values: Any = (), attributes: dict[str, Any] | None = None):
        super().__init__(values)
        self.attributes: dict[str, Any] = attributes or {}

    def named(self) -> dict[str, Any]:
        """The elements keyed by the ``names`` attribute (R's ``list(a = …)``)."""
        return dict(zip(self.attributes.get("names") or [], self, strict=True))


class _Symbol(str):
    """An R symbol (a name); distinct from a character string only inside the decoder."""


class _Reader:
    """Decode one XDR serialization stream; ``where`` names the source in error messages."""

    def __init__(self, data: bytes, where: str):
        self.data, self.pos, self.where = data, 0, where
        self.refs: list[Any] = []

    def fail(self, message: str) -> DataFormatError:
        return DataFormatError(f"{self.where}: {message} (at byte {self.pos})")

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise self.fail("R data ends early")
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def int(self) -> int:
        return struct.unpack(">i", self.take(4))[0]

    def length(self) -> int:
        n = self.int()
        if n == -1:  # long vector: two 32-bit halves
            upper, lower = self.int(), self.int()
            n = (upper << 32) + lower
        return n

    def header(self) -> None:
        if self.take(2) != b"X\n":
            raise self.fail("not R's XDR serialization format (expected 'X\\n')")
        version = self.int()
        self.take(8)  # writer's R version, oldest R version that can read it
        if version == 3:
            self.take(self.int())  # native encoding name, e.g. "UTF-8"
        elif version != 2:
            raise self.fail(f"R serialization version {version}; expected 2 or 3")

    def item(self) -> Any:
        flags = self.int()
        kind = flags & 0xFF
        if kind in (NILVALUE_SXP, NILSXP, EMPTYENV_SXP, BASEENV_SXP, GLOBALENV_SXP):
            return None
        if kind == REFSXP:
            index = flags >> 8 or self.int()
            return self.refs[index - 1]
        if kind == SYMSXP:
            symbol = _Symbol(self.item())
            self.refs.append(symbol)
            return symbol
        if kind in _PAIRLISTS:
            return self.pairlist(flags)
        if kind == CHARSXP:
            return self.charsxp(flags)
        if kind == ALTREP_SXP:
            return self.altrep()
        if kind in _VECTOR_READERS:
            values = _VECTOR_READERS[kind](self, self.length())
        elif kind in (VECSXP, EXPRSXP):
            values = [self.item() for _ in range(self.length())]
        else:
            raise self.fail(f"unsupported R object type {kind} (only data vectors and lists)")
        attributes = self.attributes(self.item()) if flags & _HAS_ATTR else {}
        return RVector(values, attributes)

    def pairlist(self, flags: int) -> RVector:
        """A pairlist as a vector of its values, tags as ``names``; iterative along the CDR
        chain so that long pairlists do not recurse."""
        values, names, attributes = [], [], {}
        while True:
            if flags & _HAS_ATTR:
                attributes = self.attributes(self.item())
            names.append(str(self.item()) if flags & _HAS_TAG else "")
            values.append(self.item())
            flags = self.int()
            if flags & 0xFF not in _PAIRLISTS:
                if flags & 0xFF != NILVALUE_SXP:
                    raise self.fail(f"pairlist ends in type {flags & 0xFF}; expected NULL")
                break
        return RVector(values, {**attributes, "names": names})

    def attributes(self, pairs: RVector | None) -> dict[str, Any]:
        return pairs.named() if pairs else {}

    def charsxp(self, flags: int) -> str | None:
        n = self.int()
        if n == -1:
            return None  # NA_character_
        raw = self.take(n)
        encoding = "latin-1" if flags >> 12 & _LATIN1 else "utf-8"
        return raw.decode(encoding, errors="replace")

    def altrep(self) -> RVector:
        """ALTREP: (class info, state, attributes); expanded to the plain vector it stands for."""
        info, state, attributes = self.item(), self.item(), self.item()
        name = str(info[0]) if info else "?"
        if name in ("compact_intseq", "compact_realseq"):
            n, start, step = (int(v) for v in state)
            values: list[Any] = list(range(start, start + n * step, step))
            if name == "compact_realseq":
                values = [float(v) for v in values]
        elif name.startswith("wrap_") or name == "deferred_string":
            # wrap_*: state = (payload vector, metadata); deferred_string: (source vector,
            # scalar); R re-creates the strings with as.character, i.e. decimal text.
            source = state[0]
            values = [v if name != "deferred_string" or v is None else _r_string(v)
                      for v in source]
        else:
            raise self.fail(f"unsupported ALTREP class {name!r}")
        return RVector(values, self.attributes(attributes))


def _ints(reader: _Reader, n: int) -> list[int | None]:
    values = struct.unpack(f">{n}i", reader.take(4 * n))
    return [None if v == _NA_INTEGER else v for v in values]


def _reals(reader: _Reader, n: int) -> list[float]:
    return list(struct.unpack(f">{n}d", reader.take(8 * n)))


def _complexes(reader: _Reader, n: int) -> list[complex]:
    parts = _reals(reader, 2 * n)
    return [complex(parts[i], parts[i + 1]) for i in range(0, 2 * n, 2)]


def _strings(reader: _Reader, n: int) -> list[str | None]:
    return [reader.item() for _ in range(n)]


_VECTOR_READERS: dict[int, Callable[[_Reader, int], list[Any]]] = {
    LGLSXP: _ints, INTSXP: _ints, REALSXP: _reals, CPLXSXP: _complexes, STRSXP: _strings,
}


def _r_string(value: float | int) -> str:
    """R's ``as.character`` of a whole number: no trailing ``.0``."""
    return str(int(value)) if float(value).is_integer() else repr(value)


def unserialize(data: bytes, where: str = "R data") -> Any:
    """Decode one serialized R object (the bytes of an ``.rds`` file after gunzip)."""
    reader = _Reader(data, where)
    reader.header()
    return reader.item()


# --------------------------------------------------------------------------- lazy-load DB


def _index(folder: Path) -> RVector:
    path = folder / "Rdata.rdx"
    try:
        raw = gzip.decompress(path.read_bytes())
    except FileNotFoundError:
        raise DataFormatError("no R lazy-load index here (Rdata.rdx)", path) from None
    except (OSError, EOFError, zlib.error) as err:
        raise DataFormatError(f"not a gzip'd R index: {err}", path) from None
    index = unserialize(raw, str(path))
    if not isinstance(index, RVector) or "variables" not in index.named():
        raise DataFormatError("not an R lazy-load index (no 'variables')", path)
    return index


def lazy_load_names(folder: str | Path) -> list[str]:
    """The names of the objects in the lazy-load database in ``folder`` (``data/``)."""
    return list(_index(Path(folder)).named()["variables"].attributes.get("names", []))


def lazy_load(folder: str | Path, name: str) -> Any:
    """Object ``name`` from the lazy-load database ``folder/Rdata.{rdx,rdb}``.

    Raises:
        DataFormatError: a missing or corrupt file, an unknown name (the known ones listed),
            or an object type this reader does not decode.
    """
    folder = Path(folder)
    index = _index(folder).named()
    variables = index["variables"].named()
    if name not in variables:
        raise DataFormatError(f"no object {name!r}; the objects are {sorted(variables)}",
                              folder / "Rdata.rdx")
    offset, length = (int(v) for v in variables[name])
    path = folder / "Rdata.rdb"
    try:
        with open(path, "rb") as handle:
            handle.seek(offset)
            record = handle.read(length)
    except FileNotFoundError:
        raise DataFormatError("no R lazy-load data here (Rdata.rdb)", path) from None
    compressed = index.get("compressed", [True])[0]
    return unserialize(_decompress(record, compressed, f"{path}[{name}]"), f"{path}[{name}]")


def _decompress(record: bytes, compressed: Any, where: str) -> bytes:
    """One ``.rdb`` record's payload (see the module docstring for the layout)."""
    size, body = struct.unpack(">I", record[:4])[0], record[4:]
    try:
        if compressed is True or compressed == 1:
            data = zlib.decompress(body)
        else:
            kind, body = body[:1], body[1:]
            if kind == b"Z":
                data = lzma.decompress(body, format=lzma.FORMAT_RAW, filters=[
                    {"id": lzma.FILTER_LZMA2, "preset": 9 | lzma.PRESET_EXTREME}])
            elif kind == b"2":
                data = bz2.decompress(body)
            elif kind == b"1":
                data = zlib.decompress(body)
            elif kind == b"0":
                data = body
            else:
                raise DataFormatError(f"{where}: unknown compression type {kind!r}")
    except (zlib.error, lzma.LZMAError, OSError, ValueError) as err:
        raise DataFormatError(f"{where}: corrupt compressed record: {err}") from None
    if len(data) != size:
        raise DataFormatError(f"{where}: record holds {len(data)} bytes; its header says {size}")
    return data


def data_frame(value: Any, where: str = "R data") -> dict[str, list[Any]]:
    """The columns of an R data.frame / tibble, factors decoded to their level strings."""
    if not isinstance(value, RVector) or "data.frame" not in (value.attributes.get("class")
                                                             or []):
        raise DataFormatError(f"{where}: not a data.frame")
    columns = {}
    for column, values in value.named().items():
        levels = values.attributes.get("levels")
        if levels is not None and "factor" in (values.attributes.get("class") or []):
            values = [None if code is None else levels[code - 1] for code in values]
        columns[column] = list(values)
    return columns
