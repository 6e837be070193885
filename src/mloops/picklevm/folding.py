"""Evaluate pure decoders on constants, so payloads hidden as zlib/base64/hex are seen.

Only decoders listed with ``folds`` in semantics.toml are evaluated, always on bytes
the engine already holds, and never beyond the nested-payload bound.
"""

from __future__ import annotations

import base64
import binascii
import zlib
from collections.abc import Callable
from typing import Any

from ..limits import LimitExceeded
from .values import Seq

_LATIN1 = {"latin1", "latin-1", "iso-8859-1", "iso8859-1", "l1", "cp819"}


def fold(kind: str, materialize: Callable[[Any], bytes | None], args: Any, limit: int) -> bytes | None:
    """The bytes decoder ``kind`` makes of ``args``; ``materialize`` gives the bytes a value holds (the machine's)."""
    items = args.items if isinstance(args, Seq) else []
    if not items:
        return None
    first = items[0]
    second = items[1] if len(items) > 1 else None
    if kind == "encode" or (kind == "bytes" and isinstance(first, str)):
        return _encode_text(first, second)
    if kind == "bytes" and isinstance(first, Seq):
        if first.dropped or not all(isinstance(i, int) and 0 <= i < 256 for i in first.items):
            return None
        return bytes(first.items)
    data = materialize(first)
    if data is None:
        return None
    try:
        if kind == "zlib":
            return _inflate(data, limit)
        if kind == "base64":
            return base64.b64decode(data)
        if kind == "hex":
            return bytes.fromhex(data.decode("latin-1"))
        if kind == "decode" and isinstance(second, str):
            codec = second.lower().replace("_codec", "")
            if codec in ("base64", "base_64"):
                return base64.b64decode(data)
            if codec == "hex":
                return binascii.unhexlify(data)
            if codec == "zlib":
                return _inflate(data, limit)
        if kind == "bytes":
            return data
    except (ValueError, zlib.error, binascii.Error):
        return None
    return None


def _encode_text(text: Any, encoding: Any) -> bytes | None:
    if not isinstance(text, str):
        return None
    name = "utf-8" if encoding is None else str(encoding).lower()
    try:
        if name in _LATIN1:
            return text.encode("latin-1")
        if name in ("utf-8", "utf8"):
            return text.encode("utf-8", "surrogatepass")
    except UnicodeEncodeError:
        return None
    return None


def _inflate(data: bytes, limit: int) -> bytes:
    decompressor = zlib.decompressobj()
    out = decompressor.decompress(data, limit)
    if decompressor.unconsumed_tail:
        raise LimitExceeded(f"zlib payload inflating beyond {limit} bytes")
    return out
