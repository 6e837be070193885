"""LightGBM text models (``Booster.save_model``): a header, one block per tree, parameters.

The format is plain numbers and settings read by LightGBM's C++ parser; nothing in it names code.
A damaged file is what matters: the header's ``tree_sizes`` give each tree's byte length, so every
tree start is checked without reading the trees, and the model must close with ``end of trees``
(and ``end of parameters`` when a parameters section begins).
"""

from __future__ import annotations

import re

from .. import rules
from ..context import Item, ScanContext
from ..limits import LimitExceeded
from ..parsers.forward_reader import DecodeError
from ..registry import Format
from ..streams import Stream

MAGIC = re.compile(rb"tree\r?\nversion=v\d")
MAX_HEADER = 64 << 20  # feature names and bin bounds of every feature; real headers are far smaller
CHUNK = 1 << 20
TREE = b"Tree="
END_OF_TREES = b"end of trees"


def detect(head: bytes, name: str) -> bool:
    return MAGIC.match(head) is not None


def analyze(ctx: ScanContext, item: Item) -> None:
    ctx.record(item, "lightgbm-text")
    length = item.size if item.size is not None else item.stream.seek(0, 2)
    try:
        trees_end = _check_trees(ctx, item.stream, length)
        _check_parameters(ctx, item.stream, trees_end, length)
        if _read_at(item.stream, length - 1, 1) != b"\n":  # LightGBM ends every section with a newline
            raise DecodeError("is truncated: the last line is cut off", length)
    except DecodeError as exc:
        ctx.report(rules.MALFORMED.finding(item.location.at(exc.offset), f"LightGBM model {exc.message}"))


def _check_trees(ctx: ScanContext, stream: Stream, length: int) -> int:
    """Check each tree starts where tree_sizes says; return the offset after ``end of trees``."""
    header_end = _find(ctx, stream, b"\n" + TREE, 0, MAX_HEADER)
    if header_end is None:  # a model without trees
        header_end = _find(ctx, stream, b"\n" + END_OF_TREES, 0, MAX_HEADER)
    if header_end is None:
        if length > MAX_HEADER:
            raise LimitExceeded(f"no tree within the first {MAX_HEADER} bytes of a LightGBM model")
        raise DecodeError("is truncated: no tree and no 'end of trees' after the header", length)
    sizes = _tree_sizes(ctx, stream, header_end)
    position = header_end + 1
    if sizes is None:  # models from before tree_sizes existed: look for the end marker
        found = _find(ctx, stream, b"\n" + END_OF_TREES, header_end, None)
        if found is None:
            raise DecodeError("is truncated: no 'end of trees'", length)
        return found + 1 + len(END_OF_TREES)
    for index, size in enumerate(sizes):
        if position + len(TREE) > length:
            raise DecodeError(f"is truncated: tree_sizes puts tree {index} at byte {position}, past the end", length)
        if _read_at(stream, position, len(TREE)) != TREE:
            raise DecodeError(f"has no tree {index} where tree_sizes puts it", position)
        position += size
        if index % 1024 == 0:
            ctx.budget.check_time()
    if _read_at(stream, position, len(END_OF_TREES)) != END_OF_TREES:
        problem = "is truncated" if position + len(END_OF_TREES) > length else "is malformed"
        raise DecodeError(f"{problem}: no 'end of trees' after the last tree", min(position, length))
    return position + len(END_OF_TREES)


def _tree_sizes(ctx: ScanContext, stream: Stream, header_end: int) -> list[int] | None:
    start = _find(ctx, stream, b"\ntree_sizes=", 0, header_end)
    if start is None or start > header_end:
        return None
    line = _read_at(stream, start + 1, header_end - start).split(b"\n", 1)[0]
    values = line[len(b"tree_sizes=") :].split()
    if not all(value.isdigit() and len(value) <= 20 for value in values):  # sizes fit in 64 bits
        raise DecodeError("has a tree_sizes line that is not a list of sizes", start + 1)
    return [int(value) for value in values]


def _check_parameters(ctx: ScanContext, stream: Stream, start: int, length: int) -> None:
    begins = _find(ctx, stream, b"\nparameters:", start, None)
    if begins is not None and _find(ctx, stream, b"\nend of parameters", begins, None) is None:
        raise DecodeError("is truncated: the parameters section does not end", length)


def _find(ctx: ScanContext, stream: Stream, needle: bytes, start: int, limit: int | None) -> int | None:
    """Offset of ``needle`` at or after ``start``, searching chunk by chunk."""
    stream.seek(start)
    offset, carry = start, b""
    while limit is None or offset < start + limit:
        chunk = stream.read(CHUNK)
        if not chunk:
            return None
        data = carry + chunk
        found = data.find(needle)
        if found >= 0:
            return offset - len(carry) + found
        carry = data[-(len(needle) - 1) :]
        offset += len(chunk)
        ctx.budget.check_time()
    return None


def _read_at(stream: Stream, offset: int, count: int) -> bytes:
    stream.seek(offset)
    return stream.read(count)


FORMATS = (Format("lightgbm-text", "safe", "LightGBM text model", handler=analyze, detect=detect, order=70),)
