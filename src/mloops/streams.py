"""Seekable byte views over files, archive members and compressed streams.

Nothing is extracted to disk or held whole in memory: a member is a window on its
parent, and a compressed stream is decompressed as it is read, under the budget.
"""

from __future__ import annotations

import bz2
import lzma
import zlib
from collections.abc import Callable
from typing import Protocol

from .limits import Budget, LimitExceeded

CHUNK = 1 << 20
_ZLIB_DECOMPRESSOR = type(zlib.decompressobj())  # zlib keeps unconsumed input itself; bz2 and lzma do not


class Stream(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...
    def seek(self, offset: int, whence: int = 0, /) -> int: ...
    def tell(self) -> int: ...


class Window:
    """Bytes ``[start, start + length)`` of a seekable parent, as a stream of its own."""

    def __init__(self, parent: Stream, start: int, length: int) -> None:
        self.parent = parent
        self.start = start
        self._length = length
        self._pos = 0

    def read(self, size: int = -1, /) -> bytes:
        remaining = self._length - self._pos
        if size < 0 or size > remaining:
            size = remaining
        if size <= 0:
            return b""
        self.parent.seek(self.start + self._pos)
        data = self.parent.read(size)
        self._pos += len(data)
        return data

    def seek(self, offset: int, whence: int = 0, /) -> int:
        base = {0: 0, 1: self._pos, 2: self._length}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def tell(self) -> int:
        return self._pos


Decompressor = Callable[[], "zlib._Decompress | bz2.BZ2Decompressor | lzma.LZMADecompressor"]

# kind -> (factory, magic that starts a further concatenated member, or None)
_CODECS: dict[str, tuple[Decompressor, bytes | None]] = {
    "gzip": (lambda: zlib.decompressobj(16 + zlib.MAX_WBITS), b"\x1f\x8b"),
    "zlib": (lambda: zlib.decompressobj(zlib.MAX_WBITS), None),
    "deflate": (lambda: zlib.decompressobj(-zlib.MAX_WBITS), None),
    "bz2": (bz2.BZ2Decompressor, b"BZh"),
    "xz": (lambda: lzma.LZMADecompressor(lzma.FORMAT_XZ), b"\xfd7zXZ\x00"),
    "lzma": (lambda: lzma.LZMADecompressor(lzma.FORMAT_ALONE), None),
}


class Decompressed:
    """A compressed stream read as its decompressed bytes, bounded in size and ratio."""

    def __init__(self, raw: Stream, kind: str, budget: Budget, make: Decompressor | None = None) -> None:
        self.raw = raw
        self.kind = kind
        self.budget = budget
        self.truncated = False  # the compressed data ended before its end-of-stream marker
        self.corrupt: str | None = None
        self._make, self._next_magic = (make, None) if make else _CODECS[kind]
        self._restart()

    def _restart(self) -> None:
        self.raw.seek(0)
        self._dec = self._make()
        self._input = b""
        self._consumed = 0
        self._produced = 0
        self._pos = 0
        self._buffer = b""
        self._done = False

    def _feed(self) -> bytes:
        data = self.raw.read(CHUNK // 4)
        self._consumed += len(data)
        return data

    def _next_member(self) -> bool:
        rest = self._dec.unused_data + self._input
        if self._next_magic is None:
            return False
        if len(rest) < len(self._next_magic):
            rest += self._feed()
        if not rest.startswith(self._next_magic):
            return False
        self._dec = self._make()
        self._input = rest
        return True

    def _pull(self, want: int) -> bytes:
        while not self._done:
            if self._dec.eof and not self._next_member():
                self._done = True
                break
            if isinstance(self._dec, _ZLIB_DECOMPRESSOR):
                if not self._input:
                    self._input = self._feed()
                if self._input:
                    out = self._dec.decompress(self._input, want)
                    self._input = self._dec.unconsumed_tail
                else:
                    # Input is spent, but zlib may still hold output for it (max_length cut it short).
                    out = self._dec.decompress(b"", want)
                    if not out:
                        self.truncated = True
                        self._done = True
                        break
            else:
                data = b""
                if self._dec.needs_input:
                    data = self._input or self._feed()
                    self._input = b""
                    if not data:
                        self.truncated = True
                        self._done = True
                        break
                out = self._dec.decompress(data, want)
            if out:
                self._account(len(out))
                return out
        return b""

    def _account(self, count: int) -> None:
        self._produced += count
        self.budget.add_expanded(count)
        limits = self.budget.limits
        if self._produced > limits.ratio_floor_bytes and self._produced > limits.max_ratio * max(self._consumed, 1):
            raise LimitExceeded(f"{self.kind} compression ratio above {limits.max_ratio}:1")

    def read(self, size: int = -1, /) -> bytes:
        parts = [self._buffer]
        have = len(self._buffer)
        while size < 0 or have < size:
            try:
                chunk = self._pull(CHUNK if size < 0 else min(CHUNK, size - have))
            except (zlib.error, OSError, EOFError, lzma.LZMAError) as exc:
                self.corrupt = str(exc)
                self._done = True
                chunk = b""
            if not chunk:
                break
            parts.append(chunk)
            have += len(chunk)
            self.budget.check_time()
        data = b"".join(parts)
        if size >= 0 and len(data) > size:
            data, self._buffer = data[:size], data[size:]
        else:
            self._buffer = b""
        self._pos += len(data)
        return data

    def seek(self, offset: int, whence: int = 0, /) -> int:
        if whence == 1:
            offset += self._pos
        elif whence == 2:
            while self.read(CHUNK):
                pass
            offset += self._pos
        if offset < self._pos:
            self._restart()
        while self._pos < offset:
            if not self.read(min(CHUNK, offset - self._pos)):
                break
        return self._pos

    def tell(self) -> int:
        return self._pos
