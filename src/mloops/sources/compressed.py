"""Single compressed streams: gzip, bz2, xz, lzma and zlib (joblib's compressors among them).

The decompressed bytes are scanned as a member of their own, decompressed lazily as the
analyzer reads, within the per-file budget on size and ratio.
"""

from __future__ import annotations

import functools
import lzma
import zlib
from collections.abc import Callable

from .. import rules
from ..context import Item, ScanContext
from ..registry import Format
from ..streams import Decompressed, Window

COMPRESSION_EXTENSIONS = (".gz", ".bz2", ".xz", ".lzma", ".z", ".zlib")


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
    name = without_compression(item.name) if inner_name is None else inner_name
    ctx.scan(item.child(stream, f"<{kind}>", None, name))
    if stream.corrupt:
        ctx.report(rules.MALFORMED_CONTAINER.finding(item.location, f"{kind} stream is damaged: {stream.corrupt}"))
    elif stream.truncated:
        ctx.report(rules.MALFORMED_CONTAINER.finding(item.location, f"{kind} stream ends before its end marker"))


def without_compression(name: str) -> str:
    """The name without its compression extension (model.pkl.gz -> model.pkl), as the decompressed stream's."""
    lower = name.lower()
    for ext in COMPRESSION_EXTENSIONS:
        if lower.endswith(ext):
            return name[: -len(ext)]
    return name


def scan_seven_zip(ctx: ScanContext, item: Item) -> None:
    ctx.record(item, "7z")
    ctx.report(
        rules.MALFORMED_CONTAINER.finding(item.location, "7z archive: mloops cannot look inside, contents unscanned")
    )


def _is_bz2(head: bytes) -> bool:
    return (
        len(head) >= 10
        and head[:3] == b"BZh"
        and head[3:4] in b"123456789"
        and head[4:10]
        in (
            b"1AY&SY",
            b"\x17rE8P\x90",
        )
    )


def _is_zlib(head: bytes) -> bool:
    # zlib.compress (and joblib) always write CMF 0x78; the check bytes make the pair divisible by 31.
    if len(head) < 2 or head[0] != 0x78 or (head[0] << 8 | head[1]) % 31 or head[1] & 0x20:
        return False
    try:
        zlib.decompressobj().decompress(head[:4096], 64)
    except zlib.error:
        return False
    return True


def _is_lzma_alone(head: bytes) -> bool:
    # .lzma ("alone") header: properties byte, power-of-two dictionary size, uncompressed size.
    if len(head) < 13 or head[0] != 0x5D:
        return False
    dict_size = int.from_bytes(head[1:5], "little")
    if dict_size < 4096 or dict_size & (dict_size - 1):
        return False
    try:
        lzma.LZMADecompressor(lzma.FORMAT_ALONE).decompress(head[:4096], 64)
    except lzma.LZMAError:
        return False
    return True


def _wrapper(
    label: str, title: str, magic: tuple[bytes, ...] = (), detect: Callable[[bytes], bool] | None = None, order: int = 0
) -> Format:
    tests = (lambda head, name: detect(head)) if detect else None
    return Format(
        label, "wrapper", title, handler=functools.partial(scan, kind=label), magic=magic, detect=tests, order=order
    )


FORMATS = (
    _wrapper("gzip", "gzip", magic=(b"\x1f\x8b\x08",)),
    _wrapper("xz", "xz", magic=(b"\xfd7zXZ\x00",)),
    _wrapper("bz2", "bzip2", detect=_is_bz2, order=200),
    _wrapper("zlib", "zlib", detect=_is_zlib, order=210),
    _wrapper("lzma", "lzma", detect=_is_lzma_alone, order=220),
    # joblib < 0.10: "ZF", the length in hex padded to 19 bytes, then zlib
    Format("joblib-zfile", "wrapper", "joblib zfile", handler=scan_joblib_zfile, magic=(b"ZF0x",)),
    Format("7z", "archive", "7z archive", handler=scan_seven_zip, magic=(b"7z\xbc\xaf\x27\x1c",)),
)
