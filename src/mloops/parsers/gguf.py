"""Decode the header region of a GGUF file: key-value metadata and tensor infos, never tensor data.

Layout (little-endian unless the version reads byte-swapped): ``GGUF``, version, tensor count, KV
count, the KVs (key string, value type, value), the tensor infos (name, n_dims, dims, ggml type,
data offset), padding to the alignment, tensor data. Version 1 wrote counts and lengths as 32 bits.
Every claimed count and length is checked against the bytes left before anything is read for it.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import NamedTuple

from ..streams import Stream
from .forward_reader import DecodeError, ForwardReader

MAGIC = b"GGUF"
STRING = 8
ARRAY = 9
SCALAR_FORMATS = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}
TYPE_NAMES = {
    0: "uint8",
    1: "int8",
    2: "uint16",
    3: "int16",
    4: "uint32",
    5: "int32",
    6: "float32",
    7: "bool",
    STRING: "string",
    ARRAY: "array",
    10: "uint64",
    11: "int64",
    12: "float64",
}
MAX_KEY_BYTES = 64 * 1024  # keys are dotted names; longer ones are not metadata
MAX_TENSOR_NAME_BYTES = 64 * 1024
MAX_ARRAY_NESTING = 8
MAX_DIMS = 16  # ggml uses 4; a larger count is reported by the analyzer, a huge one stops the parse
MAX_ENTRIES = 1_000_000  # KVs or tensors kept in memory; real models have a few thousand


class Array(NamedTuple):
    element_type: int
    length: int
    first: int  # offset of the first element


class KeyValue(NamedTuple):
    key: str
    type: int
    at: int  # offset of the key's length field
    value_at: int  # offset of the value (for strings: of the first character)
    value: object  # numbers, bools, kept strings, an Array; None for strings not kept
    length: int = 0  # strings: their byte length


class TensorInfo(NamedTuple):
    name: str
    dims: tuple[int, ...]
    type: int
    offset: int  # relative to the start of the data section
    at: int


class Parsed:
    """What was read before the end of the header region or the first break in it."""

    def __init__(self) -> None:
        self.version = 0
        self.big_endian = False
        self.tensor_count = 0
        self.kv_count = 0
        self.kvs: list[KeyValue] = []
        self.tensors: list[TensorInfo] = []
        self.infos_end: int | None = None  # offset just after the last tensor info
        self.error: DecodeError | None = None
        self.limit: str | None = None  # a bound of ours, not a defect of the file


class _Decoder:
    def __init__(self, reader: ForwardReader, parsed: Parsed, check_time: Callable[[], None]) -> None:
        self.reader = reader
        self.parsed = parsed
        self.check_time = check_time
        order = ">" if parsed.big_endian else "<"
        wide = parsed.version >= 2
        self.u32 = struct.Struct(order + "I").unpack
        self.u64 = struct.Struct(order + "Q").unpack
        self.length = struct.Struct(order + ("Q" if wide else "I")).unpack  # counts and string lengths
        self.length_bytes = 8 if wide else 4
        self.scalars = {code: struct.Struct(order + fmt) for code, fmt in SCALAR_FORMATS.items()}

    def count(self) -> int:
        return self.length(self.reader.read(self.length_bytes))[0]

    def check_fits(self, count: int, unit: int, what: str) -> None:
        """Refuse a count whose smallest possible encoding is already longer than the rest of the file."""
        remaining = self.reader.remaining()
        if remaining is not None and count * unit > remaining:
            raise DecodeError(
                f"{what} claims {count} entries, at least {count * unit} bytes; {remaining} left", self.reader.pos
            )

    def string(self, what: str, limit: int) -> tuple[str | None, int]:
        """A length-prefixed string, decoded when at most ``limit`` bytes long, else skipped."""
        at = self.reader.pos
        length = self.count()
        remaining = self.reader.remaining()
        if remaining is not None and length > remaining:
            raise DecodeError(f"{what} claims {length} bytes, {remaining} left", at)
        if length > limit:
            self.reader.skip(length)
            return None, length
        return self.reader.read(length).decode("utf-8", "replace"), length

    def value(self, kind: int, keep_string: bool, string_limit: int) -> tuple[object, int]:
        if kind in self.scalars:
            layout = self.scalars[kind]
            return layout.unpack(self.reader.read(layout.size))[0], 0
        if kind == STRING:
            if keep_string:
                return self.string("string value", string_limit)
            self.skip_strings(1)
            return None, 0
        if kind == ARRAY:
            return self.array(0), 0
        raise DecodeError(f"unknown value type {kind}", self.reader.pos - 4)

    def array(self, depth: int) -> Array:
        if depth >= MAX_ARRAY_NESTING:
            raise DecodeError(f"arrays nested more than {MAX_ARRAY_NESTING} deep", self.reader.pos)
        element_type = self.u32(self.reader.read(4))[0]
        count = self.count()
        first = self.reader.pos
        if element_type in self.scalars:
            size = self.scalars[element_type].size
            self.check_fits(count, size, f"{TYPE_NAMES[element_type]} array")
            self.reader.skip(count * size)
        elif element_type == STRING:
            self.check_fits(count, self.length_bytes, "string array")
            self.skip_strings(count)
        elif element_type == ARRAY:
            self.check_fits(count, 4 + self.length_bytes, "array of arrays")
            for index in range(count):
                self.array(depth + 1)
                if index & 0xFFF == 0:
                    self.check_time()
        else:
            raise DecodeError(f"array of unknown value type {element_type}", first - 4 - self.length_bytes)
        return Array(element_type, count, first)

    def skip_strings(self, count: int) -> None:
        """Step over length-prefixed strings without keeping them (a vocabulary has 100k+)."""
        read, skip, length, width = self.reader.read, self.reader.skip, self.length, self.length_bytes
        for index in range(count):
            size = length(read(width))[0]
            try:
                skip(size)
            except DecodeError as exc:
                at = self.reader.pos - width
                raise DecodeError(f"string of {size} bytes runs past the end of the file", at, exc.truncated) from None
            if not index & 0xFFFF:
                self.check_time()

    def key_values(self, keep: Callable[[str], bool], string_limit: int) -> None:
        for index in range(self.parsed.kv_count):
            if index >= MAX_ENTRIES:
                self.parsed.limit = f"more than {MAX_ENTRIES} metadata keys"
                return
            at = self.reader.pos
            key, length = self.string("key", MAX_KEY_BYTES)
            if key is None:
                raise DecodeError(f"key of {length} bytes", at)
            kind = self.u32(self.reader.read(4))[0]
            value_at = self.reader.pos
            if kind == STRING:
                value_at += self.length_bytes
            value, length = self.value(kind, keep(key), string_limit)
            self.parsed.kvs.append(KeyValue(key, kind, at, value_at, value, length))
            self.check_time()

    def tensor_infos(self) -> None:
        for index in range(self.parsed.tensor_count):
            if index >= MAX_ENTRIES:
                self.parsed.limit = f"more than {MAX_ENTRIES} tensors"
                return
            at = self.reader.pos
            name, length = self.string("tensor name", MAX_TENSOR_NAME_BYTES)
            if name is None:
                raise DecodeError(f"tensor name of {length} bytes", at)
            n_dims = self.u32(self.reader.read(4))[0]
            if n_dims > MAX_DIMS:
                raise DecodeError(f"tensor {name!r} claims {n_dims} dimensions", at)
            dims = tuple(self.count() for _ in range(n_dims))
            ggml_type = self.u32(self.reader.read(4))[0]
            offset = self.u64(self.reader.read(8))[0]
            self.parsed.tensors.append(TensorInfo(name, dims, ggml_type, offset, at))
            self.check_time()
        self.parsed.infos_end = self.reader.pos


def parse(
    stream: Stream,
    size: int | None,
    keep: Callable[[str], bool],
    string_limit: int,
    check_time: Callable[[], None],
) -> Parsed:
    """Read the header region; string values are decoded only for keys where ``keep(key)`` holds."""
    parsed = Parsed()
    reader = ForwardReader(stream, size)
    try:
        if reader.read(4) != MAGIC:
            raise DecodeError("missing GGUF magic", 0)
        raw_version = reader.read(4)
        version = struct.unpack("<I", raw_version)[0]
        if version and version & 0xFFFF == 0:  # written on a big-endian machine
            parsed.big_endian, version = True, struct.unpack(">I", raw_version)[0]
        parsed.version = version
        if version not in (1, 2, 3):
            raise DecodeError(f"unknown GGUF version {version}", 4)
        decoder = _Decoder(reader, parsed, check_time)
        parsed.tensor_count = decoder.count()
        parsed.kv_count = decoder.count()
        decoder.check_fits(parsed.kv_count, decoder.length_bytes + 5, "metadata count")
        decoder.key_values(keep, string_limit)
        if parsed.limit is None:
            decoder.check_fits(parsed.tensor_count, 16 + decoder.length_bytes, "tensor count")
            decoder.tensor_infos()
    except DecodeError as exc:
        parsed.error = exc
    return parsed


def read_strings(
    stream: Stream,
    size: int | None,
    parsed: Parsed,
    array: Array,
    wanted: set[int],
    limit: int,
    check_time: Callable[[], None],
) -> dict[int, str]:
    """Elements ``wanted`` of a string array (token texts by id); longer than ``limit`` bytes are left out."""
    reader = ForwardReader(stream, size, array.first)
    decoder = _Decoder(reader, parsed, check_time)
    found: dict[int, str] = {}
    last = max(wanted, default=-1)
    try:
        for index in range(min(array.length, last + 1)):
            if index in wanted:
                text, _ = decoder.string("token", limit)
                if text is not None:
                    found[index] = text
            else:
                decoder.skip_strings(1)
    except DecodeError:
        pass  # the first pass already reported the break
    return found
