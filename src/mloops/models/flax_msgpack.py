"""Flax checkpoints (``flax.serialization.to_bytes``): a MessagePack map of parameter arrays.

Restoring one runs no code: arrays are MessagePack extension values holding (shape, dtype name,
raw bytes) that NumPy reads with ``frombuffer``. What can go wrong is a damaged or crafted file:
sizes that do not add up, truncation, bytes after the end. Every array header is checked against
its byte count; the array data itself is stepped over, never read.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable

from .. import rules
from ..context import Item, ScanContext
from ..parsers.forward_reader import DecodeError, ForwardReader
from ..parsers.msgpack_walk import MAP_MARKERS, Header, Kind, read_header
from ..registry import Format

# Flax's extension type codes (flax.serialization._MsgpackExtType).
EXT_NDARRAY = 1
EXT_COMPLEX = 2
EXT_NPSCALAR = 3
FLAX_EXT_CODES = (EXT_NDARRAY, EXT_COMPLEX, EXT_NPSCALAR)

MAX_DEPTH = 64
MAX_DIMS = 64  # NumPy's limit
MAX_KEY_SHOWN = 256
MAX_DTYPE_NAME = 64
SAMPLE_VALUES = 4096  # detection gives up after this many values without an array

# dtype.name -> itemsize, for the names NumPy and ml_dtypes (bfloat16, float8, int4) give.
_ITEMSIZES = {
    "bool": 1,
    "int8": 1,
    "uint8": 1,
    "int16": 2,
    "uint16": 2,
    "float16": 2,
    "bfloat16": 2,
    "int32": 4,
    "uint32": 4,
    "float32": 4,
    "int64": 8,
    "uint64": 8,
    "float64": 8,
    "complex64": 8,
    "float128": 16,
    "complex128": 16,
    "complex256": 32,
    "int2": 1,
    "uint2": 1,
    "int4": 1,
    "uint4": 1,
}
_ONE_BYTE_FLOAT = re.compile(r"float[468]_e\d+m\d+\w*")  # ml_dtypes' float8_e4m3fn, float4_e2m1fn, ...
_SIZED_BY_BITS = re.compile(r"(?:bytes|str|void)(\d+)")
_DATETIME = re.compile(r"(?:datetime|timedelta)64(?:\[\w+\])?")


def detect(head: bytes, name: str) -> bool:
    """A non-empty map whose keys are strings and which holds a Flax array extension.

    Without magic bytes the structure decides; a map that only holds other maps (an empty
    model) is claimed when the name ends in .msgpack.
    """
    if not head or head[0] not in MAP_MARKERS or head[0] == 0x80:
        return False
    walker = _Walker(ForwardReader(io.BytesIO(head), len(head)), sample=True)
    try:
        if walker.walk():
            return True
    except DecodeError as exc:
        if not exc.truncated:
            return False
    return name.lower().endswith(".msgpack")


def analyze(ctx: ScanContext, item: Item) -> None:
    ctx.record(item, "flax-msgpack")
    reader = ForwardReader(item.stream, item.size)
    walker = _Walker(reader, sample=False, tick=ctx.budget.check_time)
    try:
        walker.walk()
    except DecodeError as exc:
        where = walker.where()
        evidence = {"path": where} if where else {}
        problem = "truncated" if exc.truncated else "malformed"
        message = f"Flax msgpack {problem}: {exc.message}"
        ctx.report(rules.MALFORMED.finding(item.location.at(exc.offset), message, evidence))
        return
    if not reader.at_end():
        ctx.report(
            rules.TRAILING_DATA.finding(
                item.location.at(reader.pos), "bytes follow the Flax state map; msgpack refuses them as extra data"
            )
        )


class _Walker:
    """Walks one MessagePack value iteratively, depth-bounded, checking Flax's layout on the way."""

    def __init__(self, reader: ForwardReader, sample: bool, tick: Callable[[], None] | None = None) -> None:
        self.reader = reader
        self.sample = sample
        self.tick = tick
        self.path: list[str] = []
        self.key = ""

    def where(self) -> str:
        return "/".join([*self.path, self.key] if self.key else self.path)

    def walk(self) -> bool:
        """Check the whole value; in sample mode, return True at the first Flax array."""
        top = read_header(self.reader)
        if top.kind is not Kind.MAP or not top.value:
            raise DecodeError("the top level is not a non-empty map", top.offset)
        remaining = [self._items(top)]  # keys and values still to read in each open container
        in_map = [True]
        values = 0
        while remaining:
            if remaining[-1] == 0:
                remaining.pop()
                in_map.pop()
                if self.path:
                    self.path.pop()
                self.key = ""
                continue
            wants_key = in_map[-1] and remaining[-1] % 2 == 0
            remaining[-1] -= 1
            header = read_header(self.reader)
            values += 1
            if self.sample and values > SAMPLE_VALUES:
                return False
            if self.tick is not None and values % 4096 == 0:
                self.tick()
            if wants_key:
                self._read_key(header)
            elif header.kind in (Kind.MAP, Kind.ARRAY):
                if len(remaining) >= MAX_DEPTH:
                    if self.sample:
                        return False  # no verdict from the sample; the analysis reports the depth
                    raise DecodeError(f"maps nested deeper than {MAX_DEPTH} levels", header.offset)
                remaining.append(self._items(header))
                in_map.append(header.kind is Kind.MAP)
                self.path.append(self.key or "[]")
                self.key = ""
            elif header.kind in (Kind.STR, Kind.BIN):
                self.reader.skip(header.number)
            elif header.kind is Kind.EXT:
                if header.ext_code not in FLAX_EXT_CODES:
                    raise DecodeError(f"extension type {header.ext_code} is not one Flax writes", header.offset)
                if self.sample:
                    return self._plausible_payload(header)
                self._check_extension(header)
        return False

    def _items(self, header: Header) -> int:
        items = header.number * (2 if header.kind is Kind.MAP else 1)
        remaining = self.reader.remaining()
        if remaining is not None and items > remaining:
            raise DecodeError(
                f"{header.value} entries announced, only {remaining} bytes left", header.offset, truncated=True
            )
        return items

    def _read_key(self, header: Header) -> None:
        if header.kind is not Kind.STR:
            raise DecodeError(f"a map key is a {header.kind.value}, Flax writes strings", header.offset)
        length = header.number
        if length > MAX_KEY_SHOWN:
            self.reader.skip(length)
            self.key = f"<{length}-byte key>"
        else:
            self.key = self.reader.read(length).decode("utf-8", "replace")

    def _plausible_payload(self, header: Header) -> bool:
        # ndarray and npscalar payloads are (shape, dtype, data); complex ones (real, imag).
        first = self.reader.byte()
        return first == (0x92 if header.ext_code == EXT_COMPLEX else 0x93)

    def _check_extension(self, header: Header) -> None:
        start = self.reader.pos
        length = header.number
        if header.ext_code == EXT_COMPLEX:
            self._check_complex(header)
        else:
            self._check_array(header, start, length)
        if self.reader.pos - start != length:
            raise DecodeError(
                f"extension holds {length} bytes, its content takes {self.reader.pos - start}", header.offset
            )

    def _check_complex(self, header: Header) -> None:
        pair = read_header(self.reader)
        if pair.kind is not Kind.ARRAY or pair.value != 2:
            raise DecodeError("complex number extension does not hold (real, imag)", header.offset)
        for _ in range(2):
            if read_header(self.reader).kind not in (Kind.FLOAT, Kind.INT):
                raise DecodeError("complex number part is not a number", header.offset)

    def _check_array(self, header: Header, start: int, length: int) -> None:
        triple = read_header(self.reader)
        if triple.kind is not Kind.ARRAY or triple.value != 3:
            raise DecodeError("array extension does not hold (shape, dtype, data)", header.offset)
        shape = self._read_shape(header)
        if header.ext_code == EXT_NPSCALAR and shape:
            raise DecodeError(f"scalar extension has shape {tuple(shape)}", header.offset)
        dtype = self._read_dtype(header)
        data = read_header(self.reader)
        if data.kind not in (Kind.BIN, Kind.STR):
            raise DecodeError("array data is not a byte string", data.offset)
        stored = data.number
        if self.reader.pos - start + stored != length:
            raise DecodeError(
                f"array data of {stored} bytes does not end where its {length}-byte extension ends", data.offset
            )
        itemsize = _itemsize(dtype)
        if itemsize is None:
            raise DecodeError(f"dtype {dtype!r} is not a NumPy array type", header.offset)
        needed = itemsize
        for dim in shape:
            needed = min(needed * dim, 1 << 64)  # hostile dimensions must not build huge numbers
        if needed != stored:
            shown = "x".join(map(str, shape)) or "scalar"
            raise DecodeError(f"{shown} {dtype} needs {needed} bytes, {stored} stored", data.offset)
        self.reader.skip(stored)

    def _read_shape(self, header: Header) -> list[int]:
        dims = read_header(self.reader)
        if dims.kind is not Kind.ARRAY or dims.number > MAX_DIMS:
            raise DecodeError("array shape is not a list of at most 64 dimensions", dims.offset)
        shape = []
        for _ in range(dims.number):
            dim = read_header(self.reader)
            if dim.kind is not Kind.INT or dim.number < 0:
                raise DecodeError("array dimension is not a non-negative integer", dim.offset)
            shape.append(dim.number)
        return shape

    def _read_dtype(self, header: Header) -> str:
        name = read_header(self.reader)
        if name.kind not in (Kind.STR, Kind.BIN) or name.number > MAX_DTYPE_NAME:
            raise DecodeError("array dtype is not a short name", name.offset)
        return self.reader.read(name.number).decode("ascii", "replace")


def _itemsize(dtype: str) -> int | None:
    if dtype in _ITEMSIZES:
        return _ITEMSIZES[dtype]
    if _ONE_BYTE_FLOAT.fullmatch(dtype):
        return 1
    if _DATETIME.fullmatch(dtype):
        return 8
    sized = _SIZED_BY_BITS.fullmatch(dtype)
    if sized and int(sized.group(1)) % 8 == 0 and int(sized.group(1)) > 0:
        return int(sized.group(1)) // 8
    return None


FORMATS = (Format("flax-msgpack", "safe", "Flax msgpack", handler=analyze, detect=detect, order=90),)
