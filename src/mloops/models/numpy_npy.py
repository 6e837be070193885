"""NumPy ``.npy`` files: a header, then raw numbers, or a pickle when the dtype holds objects.

``numpy.load(..., allow_pickle=True)`` unpickles object arrays, so their pickle goes to
the pickle engine. Numeric arrays must be exactly as long as the header says.
"""

from __future__ import annotations

import re
import struct
from typing import Any

from .. import rules
from ..context import Item, ScanContext
from ..registry import Format, Layout
from . import pickle_stream

MAGIC = b"\x93NUMPY"
_PY2_LONG = re.compile(r"\b(\d+)L\b")
_ITEMSIZE = re.compile(r"^[<>=|]?([a-zA-Z?])(\d*)")
_CHAR_BYTES = {"U": 4}  # 'U10' is ten UCS-4 characters
_DEFAULT_SIZES = {
    "?": 1,
    "b": 1,
    "B": 1,
    "h": 2,
    "H": 2,
    "i": 4,
    "I": 4,
    "l": 8,
    "L": 8,
    "q": 8,
    "Q": 8,
    "e": 2,
    "f": 4,
    "d": 8,
    "g": 16,
    "F": 8,
    "D": 16,
    "G": 32,
}


def analyze(ctx: ScanContext, item: Item) -> None:
    try:
        header, data_start = _read_header(item, ctx.limits.max_header_bytes)
    except ValueError as exc:
        ctx.record(item, "npy")
        ctx.report(rules.MALFORMED.finding(item.location, f"NumPy header unreadable: {exc}"))
        return
    descr = header.get("descr")
    if _has_object(descr):
        pickle_stream.analyze(ctx, item, data_start, "numpy-object")
        return
    ctx.record(item, "npy")
    _check_length(ctx, item, header, data_start)


def _read_header(item: Item, limit: int) -> tuple[dict[str, Any], int]:
    stream = item.stream
    stream.seek(0)
    prefix = stream.read(10)
    if len(prefix) < 10 or not prefix.startswith(MAGIC):
        raise ValueError("missing magic")
    major = prefix[6]
    if major == 1:
        length, start = struct.unpack("<H", prefix[8:10])[0], 10
    elif major in (2, 3):
        stream.seek(0)
        prefix = stream.read(12)
        length, start = struct.unpack("<I", prefix[8:12])[0], 12
    else:
        raise ValueError(f"unknown format version {major}")
    if length > limit:
        raise ValueError(f"header of {length} bytes is larger than {limit}")
    raw = stream.read(length)
    if len(raw) < length:
        raise ValueError("file ends inside the header")
    import ast  # only .npy headers need it

    text = raw.decode("utf-8" if major == 3 else "latin-1")
    text = _PY2_LONG.sub(r"\1", text)  # Python 2 wrote shapes as (3L, 4L)
    try:
        header = ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError) as exc:
        raise ValueError(f"header is not a Python literal ({type(exc).__name__})") from None
    if not isinstance(header, dict) or not {"descr", "fortran_order", "shape"} <= header.keys():
        raise ValueError("header lacks descr, fortran_order or shape")
    return header, start + length


def _has_object(descr: Any) -> bool:
    if isinstance(descr, str):
        return descr.lstrip("<>=|").startswith("O")
    if isinstance(descr, list):
        return any(isinstance(field, tuple) and len(field) >= 2 and _has_object(field[1]) for field in descr)
    return True  # an unexpected descr: let the pickle check decide rather than trust it


def _itemsize(descr: Any) -> int | None:
    if isinstance(descr, str):
        match = _ITEMSIZE.match(descr)
        if not match:
            return None
        kind, digits = match.groups()
        if digits:
            return int(digits) * _CHAR_BYTES.get(kind, 1)
        return _DEFAULT_SIZES.get(kind)
    if isinstance(descr, list):
        total = 0
        for field in descr:
            if not isinstance(field, tuple) or len(field) < 2:
                return None
            size = _itemsize(field[1])
            if size is None:
                return None
            for dim in field[2] if len(field) > 2 and isinstance(field[2], tuple) else ():
                size *= dim
            total += size
        return total
    return None


def _check_length(ctx: ScanContext, item: Item, header: dict[str, Any], data_start: int) -> None:
    shape = header["shape"]
    itemsize = _itemsize(header["descr"])
    if item.size is None or itemsize is None or not isinstance(shape, tuple):
        return
    count = 1
    for dim in shape:
        if not isinstance(dim, int) or dim < 0:
            ctx.report(rules.MALFORMED.finding(item.location, f"NumPy header has an invalid shape {shape!r}"))
            return
        count *= dim
    expected = data_start + count * itemsize
    if item.size < expected:
        ctx.report(
            rules.MALFORMED.finding(item.location, f"NumPy array truncated: {item.size} bytes, header needs {expected}")
        )
    elif item.size > expected:
        ctx.report(
            rules.TRAILING_DATA.finding(
                item.location.at(expected), f"{item.size - expected} bytes follow the NumPy array data"
            )
        )


FORMATS = (
    Format("npy", "safe", "NumPy array", handler=analyze, magic=(b"\x93NUMPY",), extensions=(".npy",)),
    Format("numpy-object", "code", "NumPy object array", pickled=True),
    Format(
        "npz",
        "safe",
        "NumPy archive",
        extensions=(".npz",),
        layout=Layout("zip", 70, lambda names: bool(names) and all(n.endswith(".npy") for n in names), fallback=True),
    ),
)
