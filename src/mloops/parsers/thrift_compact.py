"""Thrift compact protocol, decoded from bytes in memory with every count and length bounded.

Parquet stores its footer (FileMetaData) in this encoding. A struct decodes to a dict of field id
to value; fields the caller does not ask for are stepped over without building anything. Lengths
are checked against the remaining bytes before reading, counts cannot exceed the remaining bytes
(every element takes at least one), and nesting is bounded.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Collection
from typing import Any

from .forward_reader import DecodeError

MAX_DEPTH = 32
TICK_EVERY = 4096  # elements between two calls of the time check

# Compact protocol type codes.
STOP, TRUE, FALSE, BYTE, I16, I32, I64, DOUBLE, BINARY, LIST, SET, MAP, STRUCT, UUID = range(14)
_INTEGERS = (I16, I32, I64)


class CompactDecoder:
    """Reads values from ``data`` starting at ``pos``; raises DecodeError on anything out of bounds."""

    def __init__(self, data: bytes, check_time: Callable[[], None], pos: int = 0) -> None:
        self.data = data
        self.pos = pos
        self._check_time = check_time
        self._elements = 0

    def struct(self, wanted: Collection[int] | None = None, depth: int = 0) -> dict[int, Any]:
        """A struct as {field id: value}; fields outside ``wanted`` (when given) are skipped."""
        self._enter(depth)
        fields: dict[int, Any] = {}
        last_id = 0
        while True:
            header = self._byte()
            kind = header & 0x0F
            if kind == STOP:
                return fields
            delta = header >> 4
            field_id = last_id + delta if delta else _zigzag(self._varint())
            last_id = field_id
            if kind in (TRUE, FALSE):
                fields[field_id] = kind == TRUE
            elif wanted is None or field_id in wanted:
                fields[field_id] = self.value(kind, depth + 1)
            else:
                self.skip(kind, depth + 1)

    def value(self, kind: int, depth: int) -> Any:
        if kind in (TRUE, FALSE):  # a bool inside a list or map is one byte
            return self._byte() == TRUE
        if kind == BYTE:
            return self._take(1)[0]
        if kind in _INTEGERS:
            return _zigzag(self._varint())
        if kind == DOUBLE:
            return struct.unpack("<d", self._take(8))[0]
        if kind == BINARY:
            return self._take(self._length())
        if kind == UUID:
            return self._take(16)
        if kind in (LIST, SET):
            element, count = self._list_header()
            self._enter(depth)
            return [self._element(element, depth + 1) for _ in range(count)]
        if kind == MAP:
            key, item, count = self._map_header()
            self._enter(depth)
            return [(self._element(key, depth + 1), self._element(item, depth + 1)) for _ in range(count)]
        if kind == STRUCT:
            return self.struct(None, depth)
        raise DecodeError(f"unknown Thrift compact type {kind}", self.pos - 1)

    def skip(self, kind: int, depth: int) -> None:
        """Step over a value, building nothing for lists, maps and structs."""
        if kind in (LIST, SET):
            element, count = self._list_header()
            self._enter(depth)
            for _ in range(count):
                self._skip_element(element, depth + 1)
        elif kind == MAP:
            key, item, count = self._map_header()
            self._enter(depth)
            for _ in range(count):
                self._skip_element(key, depth + 1)
                self._skip_element(item, depth + 1)
        elif kind == STRUCT:
            self._enter(depth)
            while (header := self._byte()) & 0x0F != STOP:
                if not header >> 4:
                    self._varint()
                if header & 0x0F not in (TRUE, FALSE):
                    self.skip(header & 0x0F, depth + 1)
        elif kind in _INTEGERS:
            self._varint()
        elif kind == BINARY:
            length = self._length()  # read before self.pos: it moves past the length's varint
            self.pos += length
        else:
            self.value(kind, depth)

    def _element(self, kind: int, depth: int) -> Any:
        self._tick()
        return self.value(kind, depth)

    def _skip_element(self, kind: int, depth: int) -> None:
        self._tick()
        self.skip(kind, depth)

    def _tick(self) -> None:
        self._elements += 1
        if self._elements % TICK_EVERY == 0:
            self._check_time()

    def _list_header(self) -> tuple[int, int]:
        header = self._byte()
        count = header >> 4
        if count == 15:
            count = self._varint()
        self._check_count(count)
        return header & 0x0F, count

    def _map_header(self) -> tuple[int, int, int]:
        count = self._varint()
        if not count:
            return STOP, STOP, 0
        self._check_count(count)
        types = self._byte()
        return types >> 4, types & 0x0F, count

    def _check_count(self, count: int) -> None:
        if count > len(self.data) - self.pos:  # every element takes at least one byte
            raise DecodeError(f"a count of {count} exceeds the {len(self.data) - self.pos} bytes left", self.pos)

    def _enter(self, depth: int) -> None:
        if depth > MAX_DEPTH:
            raise DecodeError(f"Thrift values nested deeper than {MAX_DEPTH} levels", self.pos)

    def _length(self) -> int:
        length = self._varint()
        if length > len(self.data) - self.pos:
            raise DecodeError(f"a length of {length} runs past the end", self.pos, truncated=True)
        return length

    def _byte(self) -> int:
        pos = self.pos
        if pos >= len(self.data):
            raise DecodeError("the data ends inside a value", pos, truncated=True)
        self.pos = pos + 1
        return self.data[pos]

    def _take(self, count: int) -> bytes:
        end = self.pos + count
        if end > len(self.data):
            raise DecodeError(f"the data ends inside {count} bytes", self.pos, truncated=True)
        chunk = self.data[self.pos : end]
        self.pos = end
        return chunk

    def _varint(self) -> int:
        data, pos, result, shift = self.data, self.pos, 0, 0
        while pos < len(data) and shift < 64:
            byte = data[pos]
            pos += 1
            result |= (byte & 0x7F) << shift
            if not byte & 0x80:
                self.pos = pos
                return result
            shift += 7
        if shift >= 64:
            raise DecodeError("a varint longer than 64 bits", pos)
        raise DecodeError("the data ends inside a varint", pos, truncated=True)


def _zigzag(value: int) -> int:
    return (value >> 1) ^ -(value & 1)
