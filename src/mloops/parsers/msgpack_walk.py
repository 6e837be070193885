"""MessagePack, one value header at a time: the caller walks the structure and skips the payloads.

A header says what the next value is and how big its payload or how many its items are;
nothing is decoded beyond that, so a claimed 4 GiB string costs nothing until it is read.
"""

from __future__ import annotations

import struct
from enum import Enum
from typing import NamedTuple

from .forward_reader import DecodeError, ForwardReader


class Kind(Enum):
    NIL = "nil"
    BOOL = "bool"
    INT = "int"
    FLOAT = "float"
    STR = "str"
    BIN = "bin"
    EXT = "ext"
    ARRAY = "array"
    MAP = "map"


class Header(NamedTuple):
    kind: Kind
    value: int | float | bool | None  # scalars: the value; str/bin/ext: payload length; array/map: item count
    offset: int  # where the header starts
    ext_code: int = 0

    @property
    def number(self) -> int:
        """The integer the header carries: a payload length, an item count, or an INT scalar."""
        if isinstance(self.value, int):
            return int(self.value)
        raise DecodeError(f"a {self.kind.value} header carries no integer", self.offset)


# marker -> (kind, layout of what follows the marker)
_FIXED: dict[int, tuple[Kind, struct.Struct]] = {
    marker: (kind, struct.Struct(fmt))
    for marker, kind, fmt in (
        (0xC4, Kind.BIN, ">B"),
        (0xC5, Kind.BIN, ">H"),
        (0xC6, Kind.BIN, ">I"),
        (0xC7, Kind.EXT, ">Bb"),
        (0xC8, Kind.EXT, ">Hb"),
        (0xC9, Kind.EXT, ">Ib"),
        (0xCA, Kind.FLOAT, ">f"),
        (0xCB, Kind.FLOAT, ">d"),
        (0xCC, Kind.INT, ">B"),
        (0xCD, Kind.INT, ">H"),
        (0xCE, Kind.INT, ">I"),
        (0xCF, Kind.INT, ">Q"),
        (0xD0, Kind.INT, ">b"),
        (0xD1, Kind.INT, ">h"),
        (0xD2, Kind.INT, ">i"),
        (0xD3, Kind.INT, ">q"),
        (0xD9, Kind.STR, ">B"),
        (0xDA, Kind.STR, ">H"),
        (0xDB, Kind.STR, ">I"),
        (0xDC, Kind.ARRAY, ">H"),
        (0xDD, Kind.ARRAY, ">I"),
        (0xDE, Kind.MAP, ">H"),
        (0xDF, Kind.MAP, ">I"),
    )
}
_FIXEXT_LENGTHS = {0xD4: 1, 0xD5: 2, 0xD6: 4, 0xD7: 8, 0xD8: 16}
MAP_MARKERS = frozenset({*range(0x80, 0x90), 0xDE, 0xDF})


def read_header(reader: ForwardReader) -> Header:
    offset = reader.pos
    marker = reader.byte()
    if marker >= 0xA0:  # the one-byte forms come first: they are most of a Flax file's headers
        if marker <= 0xBF:
            return Header(Kind.STR, marker & 0x1F, offset)
        if marker >= 0xE0:
            return Header(Kind.INT, marker - 0x100, offset)
    elif marker <= 0x7F:
        return Header(Kind.INT, marker, offset)
    elif marker <= 0x8F:
        return Header(Kind.MAP, marker & 0x0F, offset)
    else:
        return Header(Kind.ARRAY, marker & 0x0F, offset)
    if marker == 0xC0:
        return Header(Kind.NIL, None, offset)
    if marker in (0xC2, 0xC3):
        return Header(Kind.BOOL, marker == 0xC3, offset)
    if marker in _FIXEXT_LENGTHS:
        code = struct.unpack(">b", reader.read(1))[0]
        return Header(Kind.EXT, _FIXEXT_LENGTHS[marker], offset, code)
    if marker not in _FIXED:
        raise DecodeError(f"byte 0x{marker:02x} is not a MessagePack type", offset)
    kind, layout = _FIXED[marker]
    fields = layout.unpack(reader.read(layout.size))
    if kind is Kind.EXT:
        return Header(kind, fields[0], offset, fields[1])
    return Header(kind, fields[0], offset)
