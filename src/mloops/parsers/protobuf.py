"""The Protocol Buffers wire format, decoded lazily and within bounds, without the protobuf package.

A message is a window of bytes; iterating it yields one field at a time. Length-delimited fields
come back as spans, so a multi-gigabyte tensor payload is stepped over, never read. Every length is
checked against the enclosing window before use, varints longer than 64 bits and groups are
rejected, and nesting deeper than protobuf's own recursion limit is an error.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import NamedTuple

from ..core import ParseError
from ..streams import Stream

VARINT, I64, LEN, START_GROUP, END_GROUP, I32 = 0, 1, 2, 3, 4, 5
MAX_DEPTH = 100  # protobuf's default recursion limit: deeper messages fail to load anyway
CHUNK = 1 << 16  # small: after stepping over a large payload only the next header is needed
CHECK_EVERY = 0x3FFF  # fields between calls of the caller's check (a mask: every 16384)
IN_MEMORY = 64 << 20  # also spares compressed streams the restarts that backward seeks cost
_HEADER_BYTES = 20  # a tag and a length or value, both varints of at most 10 bytes


class DecodeError(ParseError, ValueError):
    """The bytes break the wire format at ``offset`` (absolute, from the start of the source)."""

    def __init__(self, reason: str, offset: int) -> None:
        super().__init__(f"{reason} (byte {offset})")
        self.reason = reason
        self.offset = offset


class Field(NamedTuple):
    number: int
    wire: int
    value: int  # the varint or fixed-width value; for LEN the payload length
    offset: int  # where the value (for LEN: the payload) starts


class Source:
    """Random access to the bytes of a seekable stream, read in chunks and cached one chunk at a time.

    ``check`` is called every few thousand fields, so that a caller's time budget also bounds loops
    over hostile messages made of millions of tiny fields.
    """

    def __init__(
        self, stream: Stream | None, size: int, data: bytes = b"", check: Callable[[], None] | None = None
    ) -> None:
        self._stream = stream
        self.size = size
        self._block = data
        self._block_start = 0
        self.check = check
        self.in_memory = stream is None  # every byte is in the one block: views need no bounds checks

    @classmethod
    def from_bytes(cls, data: bytes, check: Callable[[], None] | None = None) -> Source:
        return cls(None, len(data), data, check)

    def view(self, offset: int, length: int) -> tuple[bytes, int]:
        """A buffer and an index in it where ``length`` bytes from ``offset`` start (fewer at the end)."""
        rel = offset - self._block_start
        block_end = self._block_start + len(self._block)
        if rel < 0 or (rel + length > len(self._block) and block_end < self.size):
            self._load(offset, max(length, CHUNK))
            rel = 0
        return self._block, rel

    def read(self, offset: int, length: int) -> bytes:
        """Exactly ``length`` bytes from ``offset``; raises DecodeError when the data ends first."""
        if length <= CHUNK:
            buf, rel = self.view(offset, length)
            data = buf[rel : rel + length]
        elif self._stream is None:
            data = self._block[offset : offset + length]
        else:
            self._stream.seek(offset)
            data = self._stream.read(length)
        if len(data) < length:
            raise DecodeError("data ends inside a field", offset + len(data))
        return data

    def _load(self, offset: int, length: int) -> None:
        if self._stream is None:
            raise DecodeError("data ends inside a field", len(self._block))
        self._stream.seek(offset)
        self._block = self._stream.read(max(0, min(length, self.size - offset)))
        self._block_start = offset


def _varint(buf: bytes, i: int, stop: int, base: int) -> tuple[int, int]:
    """Decode the varint at ``buf[i]`` that must end before ``buf[stop]``; ``base`` maps ``i`` to a file offset."""
    result = 0
    shift = 0
    start = i
    while True:
        if i >= stop:
            raise DecodeError("data ends inside a varint", base + i)
        byte = buf[i]
        i += 1
        if shift == 63 and byte > 1:
            raise DecodeError("varint longer than 64 bits", base + start)
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, i
        shift += 7


def as_int64(value: int) -> int:
    """A 64-bit varint read as a two's-complement signed integer (how int64 fields are stored)."""
    return value - (1 << 64) if value >= 1 << 63 else value


class Message:
    """The bytes ``[start, end)`` of a source, read as one protobuf message."""

    __slots__ = ("depth", "end", "source", "start")

    def __init__(self, source: Source, start: int, end: int, depth: int = 0) -> None:
        self.source = source
        self.start = start
        self.end = end
        self.depth = depth

    @classmethod
    def load(cls, stream: Stream, size: int, check: Callable[[], None] | None = None) -> Message:
        """The whole stream as one message; small streams are read at once, large ones on demand."""
        if size <= IN_MEMORY:
            stream.seek(0)
            data = stream.read(size)
            return cls(Source.from_bytes(data, check), 0, size)
        return cls(Source(stream, size, check=check), 0, size)

    def fields(self) -> Iterator[Field]:
        pos, end, source = self.start, self.end, self.source
        in_memory = source.in_memory
        buf, base = source.view(pos, _HEADER_BYTES)[0], 0
        count = 0
        while pos < end:
            count += 1
            if not count & CHECK_EVERY and source.check is not None:
                source.check()
            if not in_memory:
                buf, rel = source.view(pos, _HEADER_BYTES)
                base = pos - rel
            i = pos - base
            stop = min(len(buf), end - base)
            # Tags and lengths below 128 take one byte: the common case is decoded inline.
            key = buf[i] if i < stop else 0x80
            if key < 0x80:
                i += 1
            else:
                key, i = _varint(buf, i, stop, base)
            number, wire = key >> 3, key & 7
            if number == 0:
                raise DecodeError("field number 0", pos)
            if wire == LEN:
                value = buf[i] if i < stop else 0x80
                if value < 0x80:
                    i += 1
                else:
                    value, i = _varint(buf, i, stop, base)
                if value > end - (base + i):
                    raise DecodeError(f"field {number} claims {value} bytes, past the end of its message", pos)
                field = Field(number, wire, value, base + i)
                i += value
            elif wire == VARINT:
                value, i = _varint(buf, i, stop, base)
                field = Field(number, wire, value, base + i)
            elif wire in (I64, I32):
                width = 8 if wire == I64 else 4
                if i + width > stop:
                    raise DecodeError("data ends inside a fixed-width field", base + i)
                field = Field(number, wire, int.from_bytes(buf[i : i + width], "little"), base + i)
                i += width
            elif wire in (START_GROUP, END_GROUP):
                raise DecodeError("groups are not used by this format", pos)
            else:
                raise DecodeError(f"invalid wire type {wire}", pos)
            pos = base + i
            yield field

    def child(self, field: Field) -> Message:
        """The message held by a length-delimited field."""
        if self.depth + 1 > MAX_DEPTH:
            raise DecodeError(f"messages nested deeper than {MAX_DEPTH} levels", field.offset)
        return Message(self.source, field.offset, field.offset + field.value, self.depth + 1)

    def bytes(self, field: Field, limit: int) -> bytes:
        """The payload of a length-delimited field; DecodeError when it is longer than ``limit``."""
        if field.value > limit:
            raise DecodeError(f"field {field.number} holds {field.value} bytes, more than {limit}", field.offset)
        return self.source.read(field.offset, field.value)

    def text(self, field: Field, limit: int = 4096) -> str:
        """A string field, cut to ``limit`` bytes: names longer than that match nothing reviewed."""
        data = self.source.read(field.offset, min(field.value, limit))
        return data.decode("utf-8", errors="replace")

    def packed_count(self, field: Field, width: int) -> int:
        """Values in a packed repeated field: fixed ``width`` bytes each, or varints when ``width`` is 0."""
        if width:
            return field.value // width
        terminators = 0
        pos, remaining = field.offset, field.value
        while remaining:
            step = min(remaining, CHUNK)
            chunk = self.source.read(pos, step)
            terminators += step - len(chunk.translate(None, _TERMINATOR_BYTES))
            pos += step
            remaining -= step
        return terminators

    def varints(self, field: Field) -> Iterator[int]:
        """The values of a repeated varint field, stored packed (LEN) or as a single value."""
        if field.wire == VARINT:
            yield field.value
            return
        if field.wire != LEN:
            return
        pos, end = field.offset, field.offset + field.value
        count = 0
        while pos < end:
            count += 1
            if not count & CHECK_EVERY and self.source.check is not None:
                self.source.check()
            buf, rel = self.source.view(pos, 10)
            value, i = _varint(buf, rel, min(len(buf), rel + end - pos), pos - rel)
            pos += i - rel
            yield value


_TERMINATOR_BYTES = bytes(range(0x80))  # deleting these leaves the continuation bytes of varints


class PrefixField(NamedTuple):
    field: Field
    complete: bool  # False when the payload runs past the known bytes


def prefix_fields(data: bytes, limit: int = 64) -> tuple[list[PrefixField], bool]:
    """The first fields of a message of which only ``data`` (a prefix) is known.

    Returns the fields whose headers are complete and whether the prefix decoded cleanly. A field
    whose payload runs past ``data`` ends the list; a broken varint or wire type makes it unclean.
    """
    found: list[PrefixField] = []
    pos = 0
    end = len(data)
    while pos < end and len(found) < limit:
        try:
            key, i = _varint(data, pos, min(end, pos + 10), 0)
            number, wire = key >> 3, key & 7
            if number == 0 or wire in (START_GROUP, END_GROUP) or wire > I32:
                return found, False
            if wire == VARINT:
                value, i = _varint(data, i, min(end, i + 10), 0)
                found.append(PrefixField(Field(number, wire, value, i), True))
            elif wire == LEN:
                value, i = _varint(data, i, min(end, i + 10), 0)
                complete = i + value <= end
                found.append(PrefixField(Field(number, wire, value, i), complete))
                if not complete:
                    return found, True
                i += value
            else:
                width = 8 if wire == I64 else 4
                if i + width > end:
                    return found, True
                found.append(PrefixField(Field(number, wire, int.from_bytes(data[i : i + width], "little"), i), True))
                i += width
        except DecodeError as exc:
            # A varint cut by the end of the known bytes is no evidence against the format.
            return found, exc.reason == "data ends inside a varint" and exc.offset >= end
        pos = i
    return found, True
