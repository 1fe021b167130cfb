"""Tests for bertkit.resources.rformat: R serialization decoded from bytes written here by a
tiny encoder
(following R's serialize.c), a lazy-load database in each compression, and the real packages."""

from __future__ import annotations

import bz2
import gzip
import lzma
import struct
import zlib
from pathlib import Path

import pytest

from bertkit.errors import DataFormatError
from bertkit.resources.rformat import RVector, data_frame, lazy_load, lazy_load_names, unserialize

HAS_ATTR, HAS_TAG, IS_OBJECT, UTF8 = 1 << 9, 1 << 10, 1 << 8, 1 << 3 << 12
NIL = struct.pack(">i", 254)


def i32(*values: int) -> bytes:
    return struct.pack(f">{len(values)}i", *values)


def char(text: str | None, flags: int = UTF8) -> bytes:
    if text is None:
        return i32(9, -1)
    raw = text.encode("utf-8")
    return i32(9 | flags, len(raw)) + raw


def symbol(name: str) -> bytes:
    return i32(1) + char(name, 0)


def attributes(pairs: dict[str, bytes]) -> bytes:
    """A pairlist of tagged values (R's attribute list)."""
    out = b""
    for name, value in pairs.items():
        out += i32(2 | HAS_TAG) + symbol(name) + value
    return out + NIL


def strings(values: list[str | None], attrs: dict[str, bytes] | None = None) -> bytes:
    flags = 16 | (HAS_ATTR if attrs else 0)
    body = i32(flags, len(values)) + b"".join(char(v) for v in values)
    return body + (attributes(attrs) if attrs else b"")


def ints(values: list[int], attrs: dict[str, bytes] | None = None) -> bytes:
    flags = 13 | (HAS_ATTR | IS_OBJECT if attrs else 0)
    return i32(flags, len(values), *values) + (attributes(attrs) if attrs else b"")


def serialized(item: bytes) -> bytes:
    return b"X\n" + i32(3, 0x40201, 0x30500, 5) + b"UTF-8" + item


def data_frame_bytes() -> bytes:
    """data.frame(text = c("a b", NA), score = factor(c("great", "other")), row.names = 1:2
    stored compactly as c(NA, -2), and an ALTREP compact 1:3 column."""
    factor = ints([2, 1], {"levels": strings(["great", "other"]),
                           "class": strings(["factor"])})
    compact = (i32(238) + i32(2) + symbol("compact_intseq") + i32(2) + symbol("base")
               + i32(2) + ints([13]) + NIL + struct.pack(">i", 14) + i32(3)
               + struct.pack(">3d", 3, 1, 1) + NIL)
    columns = i32(19 | HAS_ATTR | IS_OBJECT, 3) + strings(["a b", None]) + factor + compact
    return columns + attributes({
        "names": strings(["text", "score", "n"]),
        "class": strings(["tbl_df", "data.frame"]),
        "row.names": ints([-(2**31), -2]),
    })


def test_data_frame_with_factor_na_and_altrep():
    frame = unserialize(serialized(data_frame_bytes()))
    assert isinstance(frame, RVector)
    assert frame.attributes["class"] == ["tbl_df", "data.frame"]
    assert frame.attributes["row.names"] == [None, -2]
    assert data_frame(frame) == {"text": ["a b", None], "score": ["other", "great"],
                                 "n": [1, 2, 3]}


def test_truncated_and_foreign_data_are_located_errors():
    with pytest.raises(DataFormatError, match="ends early"):
        unserialize(serialized(data_frame_bytes())[:-7], "x.rds")
    with pytest.raises(DataFormatError, match=r"x\.rds.*not R's XDR"):
        unserialize(b"RDX3\n", "x.rds")
    with pytest.raises(DataFormatError, match="unsupported R object type 4"):
        unserialize(serialized(i32(4, 0)))  # an environment
    with pytest.raises(DataFormatError, match=r"not a data\.frame"):
        data_frame(unserialize(serialized(strings(["x"]))))


def _compress(kind: bytes, data: bytes) -> bytes:
    if kind == b"Z":
        return kind + lzma.compress(data, format=lzma.FORMAT_RAW, filters=[
            {"id": lzma.FILTER_LZMA2, "preset": 9 | lzma.PRESET_EXTREME}])
    return kind + {b"2": bz2.compress, b"1": zlib.compress, b"0": bytes}[kind](data)


def write_lazy_load(folder: Path, objects: dict[str, bytes], kind: bytes | None) -> None:
    """Rdata.rdb records (length + payload) and the gzip'd Rdata.rdx index pointing at them."""
    rdb, spans = b"", {}
    for name, item in objects.items():
        payload = serialized(item)
        body = zlib.compress(payload) if kind is None else _compress(kind, payload)
        record = struct.pack(">I", len(payload)) + body
        spans[name] = (len(rdb), len(record))
        rdb += record
    variables = (i32(19 | HAS_ATTR, len(spans))
                 + b"".join(ints(list(span)) for span in spans.values())
                 + attributes({"names": strings(list(spans))}))
    compressed = i32(10, 1, 1) if kind is None else ints([3])
    index = i32(19 | HAS_ATTR, 2) + variables + compressed + attributes(
        {"names": strings(["variables", "compressed"])})
    (folder / "Rdata.rdb").write_bytes(rdb)
    (folder / "Rdata.rdx").write_bytes(gzip.compress(serialized(index)))


@pytest.mark.parametrize("kind", [None, b"Z", b"2", b"1", b"0"])
def test_lazy_load_database_in_every_compression(tmp_path, kind):
    write_lazy_load(tmp_path, {"lines": strings(["It is a truth", "", "universally"]),
                               "frame": data_frame_bytes()}, kind)
    assert lazy_load_names(tmp_path) == ["lines", "frame"]
    assert lazy_load(tmp_path, "lines") == ["It is a truth", "", "universally"]
    assert data_frame(lazy_load(tmp_path, "frame"))["score"] == ["other", "great"]
    with pytest.raises(DataFormatError, match=r"no object 'emma'.*\['frame', 'lines'\]"):
        lazy_load(tmp_path, "emma")


def test_corrupt_record_and_missing_index(tmp_path):
    write_lazy_load(tmp_path, {"lines": strings(["x"])}, b"Z")
    data = bytearray((tmp_path / "Rdata.rdb").read_bytes())
    data[8:12] = b"\xff\xff\xff\xff"
    (tmp_path / "Rdata.rdb").write_bytes(bytes(data))
    with pytest.raises(DataFormatError, match=r"Rdata\.rdb\[lines\]: corrupt"):
        lazy_load(tmp_path, "lines")
    with pytest.raises(DataFormatError, match="no R lazy-load index"):
        lazy_load(tmp_path / "nowhere", "lines")


@pytest.mark.needs_artifacts
def test_real_jane_austen_and_modeldata(artifact):
    austen = artifact("janeaustenr")
    assert lazy_load_names(austen) == ["emma", "mansfieldpark", "northangerabbey", "persuasion",
                                       "prideprejudice", "sensesensibility"]
    pride = lazy_load(austen, "prideprejudice")
    assert len(pride) == 13030
    assert pride[:3] == ["PRIDE AND PREJUDICE", "", "By Jane Austen"]
    assert "It is a truth universally acknowledged" in " ".join(pride[:20])
    testing = data_frame(lazy_load(artifact("modeldata"), "testing_data"))
    assert list(testing) == ["product", "review", "score"]
    assert len(testing["review"]) == 1000 and set(testing["score"]) == {"great", "other"}
