"""FlatBuffers read in place: tables, vectors and strings, every offset checked before it is followed.

A FlatBuffer is a web of 32-bit offsets inside one byte range; a reader that trusts them reads
outside the buffer. Here each offset, vtable and length is checked against the file size before
use, and bytes come through a small cache of blocks, so a multi-gigabyte model costs a few reads.
"""

from __future__ import annotations

import struct
from collections import OrderedDict
from collections.abc import Iterator

from ..streams import Stream
from .forward_reader import DecodeError

BLOCK = 1 << 16
CACHED_BLOCKS = 64


class RandomReader:
    """Byte ranges of a seekable stream of known size, through an LRU cache of aligned blocks."""

    def __init__(self, stream: Stream, size: int) -> None:
        self.stream = stream
        self.size = size
        self._blocks: OrderedDict[int, bytes] = OrderedDict()

    def read(self, offset: int, count: int) -> bytes:
        if offset < 0 or count < 0 or offset + count > self.size:
            raise DecodeError(f"{count} bytes at offset {offset} lie outside the {self.size}-byte file", max(offset, 0))
        if count == 0:
            return b""
        if count > BLOCK:
            self.stream.seek(offset)
            return self._exact(self.stream.read(count), offset, count)
        first, last = offset // BLOCK, (offset + count - 1) // BLOCK
        data = b"".join(self._block(index) for index in range(first, last + 1))
        start = offset - first * BLOCK
        return self._exact(data[start : start + count], offset, count)

    def _block(self, index: int) -> bytes:
        block = self._blocks.get(index)
        if block is None:
            self.stream.seek(index * BLOCK)
            block = self.stream.read(BLOCK)
            self._blocks[index] = block
            if len(self._blocks) > CACHED_BLOCKS:
                self._blocks.popitem(last=False)
        else:
            self._blocks.move_to_end(index)
        return block

    @staticmethod
    def _exact(data: bytes, offset: int, count: int) -> bytes:
        if len(data) < count:
            raise DecodeError(f"the data ends inside {count} bytes at offset {offset}", offset, truncated=True)
        return data

    def unpack(self, fmt: str, offset: int) -> int:
        return struct.unpack(fmt, self.read(offset, struct.calcsize(fmt)))[0]


class Vector:
    """``count`` elements of ``width`` bytes starting at ``start``; bounds already checked."""

    def __init__(self, reader: RandomReader, start: int, count: int, width: int) -> None:
        self.reader = reader
        self.start = start
        self.count = count
        self.width = width

    def ints(self) -> tuple[int, ...]:
        """The elements as signed 32-bit integers."""
        return struct.unpack(f"<{self.count}i", self.reader.read(self.start, self.count * 4))

    def tables(self) -> Iterator[Table]:
        for index in range(self.count):
            at = self.start + 4 * index
            yield Table.at(self.reader, at + self.reader.unpack("<I", at))


class Table:
    """A table: its vtable's field offsets are checked to stay inside the table when it is opened."""

    def __init__(self, reader: RandomReader, position: int, fields: tuple[int, ...], inline_size: int) -> None:
        self.reader = reader
        self.position = position
        self.fields = fields
        self.inline_size = inline_size

    @classmethod
    def at(cls, reader: RandomReader, position: int) -> Table:
        vtable = position - reader.unpack("<i", position)
        if vtable < 0 or vtable + 4 > reader.size:
            raise DecodeError(f"table at {position} has its vtable outside the file", position)
        vtable_size, inline_size = struct.unpack("<HH", reader.read(vtable, 4))
        if vtable_size < 4 or vtable_size % 2 or inline_size < 4:
            raise DecodeError(f"table at {position} has an impossible vtable", vtable)
        if position + inline_size > reader.size:
            raise DecodeError(f"table at {position} runs past the end of the file", position)
        count = (vtable_size - 4) // 2
        fields = struct.unpack(f"<{count}H", reader.read(vtable + 4, count * 2))
        for offset in fields:
            if offset and not 4 <= offset < inline_size:
                raise DecodeError(f"table at {position} has a field outside its {inline_size} bytes", vtable)
        return cls(reader, position, fields, inline_size)

    def _field(self, index: int, width: int) -> int | None:
        if index >= len(self.fields) or not self.fields[index]:
            return None
        if self.fields[index] + width > self.inline_size:
            raise DecodeError(f"field {index} of the table at {self.position} overflows it", self.position)
        return self.position + self.fields[index]

    def scalar(self, index: int, fmt: str, default: int = 0) -> int:
        at = self._field(index, struct.calcsize(fmt))
        return default if at is None else self.reader.unpack(fmt, at)

    def _target(self, index: int) -> int | None:
        at = self._field(index, 4)
        return None if at is None else at + self.reader.unpack("<I", at)

    def table(self, index: int) -> Table | None:
        target = self._target(index)
        return None if target is None else Table.at(self.reader, target)

    def vector(self, index: int, width: int) -> Vector | None:
        target = self._target(index)
        if target is None:
            return None
        count = self.reader.unpack("<I", target)
        if target + 4 + count * width > self.reader.size:
            raise DecodeError(f"vector of {count} elements at {target} runs past the end of the file", target)
        return Vector(self.reader, target + 4, count, width)

    def string(self, index: int, limit: int = 1024) -> str | None:
        vector = self.vector(index, 1)
        if vector is None:
            return None
        if vector.start + vector.count >= self.reader.size or self.reader.read(vector.start + vector.count, 1) != b"\0":
            raise DecodeError(f"string at {vector.start - 4} is not terminated", vector.start - 4)
        return self.reader.read(vector.start, min(vector.count, limit)).decode("utf-8", "replace")


def root_table(reader: RandomReader) -> Table:
    return Table.at(reader, reader.unpack("<I", 0))
