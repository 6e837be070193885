"""Single compressed streams: gzip, bz2, xz, lzma and zlib (joblib's compressors among them).

The decompressed bytes are scanned as a member of their own, decompressed lazily as the
analyzer reads, within the per-file budget on size and ratio.
"""

from __future__ import annotations

from .. import rules
from ..context import Item, ScanContext
from ..sniff import COMPRESSION_EXTENSIONS
from ..streams import Decompressed


def scan(ctx: ScanContext, item: Item, kind: str) -> None:
    ctx.record(item, kind)
    stream = Decompressed(item.stream, kind, ctx.budget)
    ctx.scan(item.child(stream, f"<{kind}>", None, _inner_name(item.name)))
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
