"""Single compressed streams: gzip, bz2, xz, lzma and zlib (joblib's compressors among them).

The decompressed bytes are scanned as a member of their own, decompressed lazily as the
analyzer reads, within the per-file budget on size and ratio.
"""

from __future__ import annotations

from .. import rules
from ..context import Item, ScanContext
from ..sniff import COMPRESSION_EXTENSIONS
from ..streams import Decompressed, Window


def scan(ctx: ScanContext, item: Item, kind: str) -> None:
    ctx.record(item, kind)
    stream = Decompressed(item.stream, kind, ctx.budget)
    _scan_stream(ctx, item, stream, kind)


def scan_joblib_zfile(ctx: ScanContext, item: Item) -> None:
    """joblib < 0.10: "ZF", the data length in hex, space padding, then a zlib stream. It holds a
    pickle, or raw array bytes for an array wrapper, so its name says nothing about the content."""
    ctx.record(item, "joblib-zfile")
    item.stream.seek(0)
    header = item.stream.read(64)
    start = 2 + len(header[2:].split(b" ", 1)[0])
    start += len(header[start:]) - len(header[start:].lstrip(b" "))
    size = item.size if item.size is not None else item.stream.seek(0, 2)
    body = Window(item.stream, start, max(0, size - start))
    _scan_stream(ctx, item, Decompressed(body, "zlib", ctx.budget), "zlib", "")


def _scan_stream(ctx: ScanContext, item: Item, stream: Decompressed, kind: str, inner_name: str | None = None) -> None:
    name = _inner_name(item.name) if inner_name is None else inner_name
    ctx.scan(item.child(stream, f"<{kind}>", None, name))
    if stream.corrupt:
        ctx.report(rules.MALFORMED_CONTAINER.finding(item.location, f"{kind} stream is damaged: {stream.corrupt}"))
    elif stream.truncated:
        ctx.report(rules.MALFORMED_CONTAINER.finding(item.location, f"{kind} stream ends before its end marker"))


def _inner_name(name: str) -> str:
    lower = name.lower()
    for ext in COMPRESSION_EXTENSIONS:
        if lower.endswith(ext):
            return name[: -len(ext)]
    return name
