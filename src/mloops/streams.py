"""Seekable byte views over files, archive members and compressed streams, and files written atomically.

Nothing is extracted to disk or held whole in memory: a member is a window on its
parent, and a compressed stream is decompressed as it is read, under the budget.
"""

from __future__ import annotations

import bz2
import lzma
import os
import tempfile
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import IO, Protocol

from .limits import Budget, LimitExceeded

CHUNK = 1 << 20
HISTORY = CHUNK  # decompressed bytes kept behind the read position (Decompressed)
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
    """A compressed stream read as its decompressed bytes, bounded in size and ratio.

    The last ``HISTORY`` bytes produced are kept, so a short step back (a format sniffed from
    the head, then read from the start) costs nothing; a longer one decompresses again from
    the start, and every byte decompressed again counts against the budget again."""

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
        self._recent = bytearray()  # the last bytes produced, ending at self._produced
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
            # Input that yields nothing (empty blocks, empty members) must not spin unchecked.
            self.budget.check_time()
            if self._dec.eof and not self._next_member():
                self._done = True
                break
            if isinstance(self._dec, _ZLIB_DECOMPRESSOR):
                if not self._input:
                    self._input = self._feed()
                if self._input:
                    out = self._dec.decompress(self._input, want)
                    # At the end of a member zlib leaves the rest in unused_data, and may leave the same
                    # bytes in unconsumed_tail too: keeping both would feed them twice.
                    self._input = b"" if self._dec.eof else self._dec.unconsumed_tail
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
        limits = self.budget.limits
        if self._produced > limits.ratio_floor_bytes and self._produced > limits.max_ratio * max(self._consumed, 1):
            raise LimitExceeded(f"{self.kind} compression ratio above {limits.max_ratio}:1")
        self.budget.add_expanded(count)

    def _produce(self, want: int) -> bytes:
        """The next decompressed bytes after everything produced so far (b"" at the end)."""
        try:
            out = self._pull(want)
        except (zlib.error, OSError, EOFError, lzma.LZMAError) as exc:
            self.corrupt = str(exc)
            self._done = True
            return b""
        recent = self._recent
        recent += out
        if len(recent) > 2 * HISTORY:
            del recent[: len(recent) - HISTORY]
        return out

    def read(self, size: int = -1, /) -> bytes:
        parts = []
        have = 0
        while size < 0 or have < size:
            want = CHUNK if size < 0 else min(CHUNK, size - have)
            behind = self._produced - self._pos
            if behind > 0:  # served from the bytes already produced
                start = len(self._recent) - behind
                piece = bytes(self._recent[start : start + want])
            else:
                piece = self._produce(want)
                if not piece:
                    break
            parts.append(piece)
            have += len(piece)
            self._pos += len(piece)
        return b"".join(parts)

    def seek(self, offset: int, whence: int = 0, /) -> int:
        if whence == 1:
            offset += self._pos
        elif whence == 2:
            while self._produce(CHUNK):
                pass
            offset += self._produced
        offset = max(0, offset)
        if offset < self._produced - len(self._recent):
            self._restart()
        while self._produced < offset:
            if not self._produce(min(CHUNK, offset - self._produced)):
                break
        self._pos = min(offset, self._produced)
        return self._pos

    def tell(self) -> int:
        return self._pos


def needs_random_access_copy(stream: Stream) -> bool:
    """True when stepping back in ``stream`` means decompressing again (a compressed stream, or a
    window on one): an archive read from such a stream is better read from a copy in memory."""
    while isinstance(stream, Window):
        stream = stream.parent
    return isinstance(stream, Decompressed)


class InMemory:
    """A stream over bytes already in memory (no copy of the buffer)."""

    def __init__(self, data: bytearray) -> None:
        self._data = data
        self._pos = 0

    def read(self, size: int = -1, /) -> bytes:
        end = len(self._data) if size < 0 else min(len(self._data), self._pos + size)
        if end <= self._pos:
            return b""
        with memoryview(self._data) as view:
            data = view[self._pos : end].tobytes()
        self._pos = end
        return data

    def seek(self, offset: int, whence: int = 0, /) -> int:
        base = {0: 0, 1: self._pos, 2: len(self._data)}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def tell(self) -> int:
        return self._pos


@contextmanager
def random_access(stream: Stream, size: int | None, budget: Budget, try_unknown: bool = True) -> Iterator[Stream]:
    """``stream`` itself, or a copy of it in memory when stepping back in it means decompressing
    again and it fits in what is left of ``max_held_bytes`` (held until the block ends).

    Archives seek back and forth (end record, central directory, members); inside a compressed
    stream each step back would decompress everything before it once more. ``try_unknown``: copy
    a stream of unknown size when it turns out to fit (a reader that needs its end anyway)."""
    allowance = budget.limits.max_held_bytes - budget.held
    if not needs_random_access_copy(stream) or (size is not None and size > allowance):
        yield stream
        return
    if size is None and not try_unknown:
        yield stream
        return
    stream.seek(0)
    data = bytearray()
    while len(data) <= allowance:
        piece = stream.read(min(CHUNK, allowance + 1 - len(data)))
        if not piece:
            break
        data += piece
    if len(data) > allowance or not budget.hold(len(data)):
        del data
        stream.seek(0)
        yield stream  # too large to hold: read in place, decompressing again where needed
        return
    try:
        yield InMemory(data)
    finally:
        budget.release(len(data))


@contextmanager
def atomic_file(path: str) -> Iterator[IO[bytes]]:
    """A file written whole or not at all: the bytes go to a temporary file beside ``path``, which replaces
    it only when the block ends without an error."""
    fd, temporary = tempfile.mkstemp(prefix=".mloops-", dir=os.path.dirname(os.path.abspath(path)))
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise
