"""Read a stream front to back in chunks, stepping over large payloads without loading them."""

from __future__ import annotations

from ..core import ParseError
from ..streams import Stream

CHUNK = 1 << 20


class DecodeError(ParseError):
    """The bytes break the format at ``offset``; ``truncated`` when the data simply ran out."""

    def __init__(self, message: str, offset: int, truncated: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.offset = offset
        self.truncated = truncated


class ForwardReader:
    """Sequential reads with exact lengths; a short read raises DecodeError(truncated=True).

    ``size`` is the stream length when known (files, archive members); decompressed
    streams have none, and then a skip finds out by seeking how far the data goes.
    """

    def __init__(self, stream: Stream, size: int | None, start: int = 0) -> None:
        self.stream = stream
        self.size = size
        self._buffer = b""
        self._buffer_at = start  # stream offset of _buffer[0]
        self._index = 0
        stream.seek(start)

    @property
    def pos(self) -> int:
        return self._buffer_at + self._index

    def remaining(self) -> int | None:
        return None if self.size is None else self.size - self.pos

    def read(self, count: int) -> bytes:
        if self._index + count <= len(self._buffer):
            data = self._buffer[self._index : self._index + count]
            self._index += count
            return data
        self._require(count)
        data = self._buffer[self._index : self._index + count]
        self._index += len(data)
        return data

    def byte(self) -> int:
        if self._index < len(self._buffer):
            value = self._buffer[self._index]
            self._index += 1
            return value
        return self.read(1)[0]

    def peek(self) -> int:
        """The next byte, left unread."""
        if self._index >= len(self._buffer):
            self._require(1)
        return self._buffer[self._index]

    def skip(self, count: int) -> None:
        if count < 0:
            raise DecodeError("negative length", self.pos)
        if self._index + count <= len(self._buffer):
            self._index += count
            return
        target = self.pos + count
        if self.size is not None and target > self.size:
            raise DecodeError(f"{count} bytes announced, {self.size - self.pos} left", self.pos, truncated=True)
        reached = self.stream.seek(target)
        if reached < target:
            raise DecodeError(f"{count} bytes announced, the data ends first", self.pos, truncated=True)
        self._buffer, self._buffer_at, self._index = b"", target, 0

    def at_end(self) -> bool:
        if self._index < len(self._buffer):
            return False
        if self.size is not None:
            return self.pos >= self.size
        return not self._fill()

    def _require(self, count: int) -> None:
        remaining = self.remaining()
        if remaining is not None and count > remaining:
            raise DecodeError(f"{count} bytes needed, {remaining} left", self.pos, truncated=True)
        while len(self._buffer) - self._index < count:
            if not self._fill(max(CHUNK, count)):
                raise DecodeError(f"{count} bytes needed, the data ends first", self.pos, truncated=True)

    def _fill(self, want: int = CHUNK) -> bool:
        """Append more data to the buffer, dropping what was consumed; False at the end."""
        self._buffer_at += self._index
        self._buffer = self._buffer[self._index :]
        self._index = 0
        self.stream.seek(self._buffer_at + len(self._buffer))
        data = self.stream.read(want)
        self._buffer += data
        return bool(data)
