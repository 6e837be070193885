"""UBJSON (Draft 12, as XGBoost writes it): walk a whole document and check it is well formed.

Strongly typed arrays of fixed-size numbers (``[$d#L<n>``) are stepped over in one seek, so a
model's weight arrays cost nothing; every count and length is checked against the bytes left.
"""

from __future__ import annotations

import struct
from collections.abc import Callable

from .forward_reader import DecodeError, ForwardReader

MAX_DEPTH = 128
MAX_KEY_KEPT = 256

_INTS = {ord("i"): ">b", ord("U"): ">B", ord("I"): ">h", ord("l"): ">i", ord("L"): ">q"}
# Values of a fixed size (no-op, null, booleans, numbers, char): marker -> payload bytes.
_FIXED = {ord("N"): 0, ord("Z"): 0, ord("T"): 0, ord("F"): 0, ord("d"): 4, ord("D"): 8, ord("C"): 1}
_FIXED.update({marker: struct.calcsize(fmt) for marker, fmt in _INTS.items()})
_SIZED = (ord("S"), ord("H"))  # string, high-precision number: a length, then bytes
OPEN = {ord("["): ord("]"), ord("{"): ord("}")}


class _Container:
    __slots__ = ("close", "element", "is_object", "key_next", "remaining")

    def __init__(self, is_object: bool, element: int | None, remaining: int | None) -> None:
        self.is_object = is_object
        self.close = ord("}") if is_object else ord("]")
        self.element = element  # the one type of every value, for a strongly typed container
        self.remaining = remaining  # None: ends at the closing marker
        self.key_next = is_object


def read_length(reader: ForwardReader) -> int:
    offset = reader.pos
    marker = reader.byte()
    if marker not in _INTS:
        raise DecodeError(f"length marker {chr(marker)!r} is not an integer type", offset)
    fmt = _INTS[marker]
    value = struct.unpack(fmt, reader.read(struct.calcsize(fmt)))[0]
    if value < 0:
        raise DecodeError(f"negative length {value}", offset)
    return value


def walk_object(reader: ForwardReader, tick: Callable[[], None] | None = None) -> list[str]:
    """Check one document whose top level is an object; return its top-level keys."""
    offset = reader.pos
    if reader.byte() != ord("{"):
        raise DecodeError("the document is not an object", offset)
    stack = [_open(reader, is_object=True)]
    keys: list[str] = []
    steps = 0
    while stack:
        frame = stack[-1]
        steps += 1
        if tick is not None and steps % 4096 == 0:
            tick()
        if frame.remaining == 0:
            stack.pop()
            continue
        if frame.remaining is None and reader.peek() == frame.close:
            reader.skip(1)
            stack.pop()
            continue
        if frame.key_next:
            key = _read_key(reader, keep=len(stack) == 1)
            if key is not None:
                keys.append(key)
            frame.key_next = False
            continue
        marker = frame.element if frame.element is not None else reader.byte()
        if frame.remaining is not None:
            frame.remaining -= 1
        frame.key_next = frame.is_object
        child = _value(reader, marker)
        if child is not None:
            if len(stack) >= MAX_DEPTH:
                raise DecodeError(f"containers nested deeper than {MAX_DEPTH} levels", reader.pos)
            stack.append(child)
    return keys


def _value(reader: ForwardReader, marker: int) -> _Container | None:
    """Step over one value; a container is opened and returned for the caller to walk."""
    if marker in _FIXED:
        reader.skip(_FIXED[marker])
    elif marker in _SIZED:
        reader.skip(read_length(reader))
    elif marker in OPEN:
        return _open(reader, is_object=marker == ord("{"))
    else:
        raise DecodeError(f"byte 0x{marker:02x} is not a UBJSON type", reader.pos - 1)
    return None


def _open(reader: ForwardReader, is_object: bool) -> _Container:
    """Read the optional type and count after an opening marker; fixed-size typed arrays are skipped whole."""
    element = None
    offset = reader.pos
    if reader.peek() == ord("$"):
        reader.skip(1)
        element = reader.byte()
        if element not in _FIXED and element not in _SIZED and element not in OPEN:
            raise DecodeError(f"container type 0x{element:02x} is not a UBJSON type", offset)
        if reader.peek() != ord("#"):
            raise DecodeError("a typed container has no count", reader.pos)
    count = None
    if reader.peek() == ord("#"):
        reader.skip(1)
        count = read_length(reader)
        remaining = reader.remaining()
        if remaining is not None and count > remaining and not (element in _FIXED and _FIXED[element] == 0):
            raise DecodeError(f"{count} items announced, {remaining} bytes left", offset, truncated=True)
    if not is_object and element in _FIXED and count is not None:
        reader.skip(count * _FIXED[element])
        return _Container(is_object, element, 0)
    return _Container(is_object, element, count)


def _read_key(reader: ForwardReader, keep: bool) -> str | None:
    length = read_length(reader)
    if keep and length <= MAX_KEY_KEPT:
        return reader.read(length).decode("utf-8", "replace")
    reader.skip(length)
    return None
