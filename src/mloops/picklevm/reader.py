"""Buffered reading of a pickle stream that can skip large payloads without reading them."""

from __future__ import annotations

from ..limits import MiB
from ..streams import Stream

CHUNK = 1 * MiB
MAX_LINE = 64 * MiB  # protocol 0 strings are lines; anything longer is not a model


class Truncated(Exception):
    """The stream ended inside an opcode or its argument."""


class Reader:
    def __init__(self, stream: Stream, start: int = 0, size: int | None = None) -> None:
        self.stream = stream
        self.size = size  # total stream length when cheaply known
        self.base = start  # absolute offset of buf[0]
        self.buf = b""
        self.pos = 0

    def tell(self) -> int:
        return self.base + self.pos

    def _fill(self, need: int) -> None:
        keep = self.buf[self.pos :]
        self.base += self.pos
        self.pos = 0
        self.stream.seek(self.base + len(keep))
        more = self.stream.read(max(CHUNK, need - len(keep)))
        self.buf = keep + more

    def at_end(self) -> bool:
        if self.pos < len(self.buf):
            return False
        self._fill(1)
        return not self.buf

    def byte(self) -> int:
        if self.pos >= len(self.buf):
            self._fill(1)
            if not self.buf:
                raise Truncated("end of data where an opcode was expected")
        value = self.buf[self.pos]
        self.pos += 1
        return value

    def read(self, count: int) -> bytes:
        end = self.pos + count
        if end > len(self.buf):
            self._fill(count)
            end = count
            if end > len(self.buf):
                raise Truncated(f"needed {count} bytes, {len(self.buf)} left")
        data = self.buf[self.pos : end]
        self.pos = end
        return data

    def readline(self) -> bytes:
        """One line without its newline; a line cut off by the end of data is truncation."""
        line, complete = self.readline_or_rest()
        if not complete:
            raise Truncated("end of data inside a text line")
        return line

    def readline_or_rest(self) -> tuple[bytes, bool]:
        """One line without its newline, and True; at the end of data, what is left of it and False
        (both unpicklers hand such a cut line on, minus its last byte, where they expect a newline)."""
        while True:
            nl = self.buf.find(b"\n", self.pos)
            if nl >= 0:
                line = self.buf[self.pos : nl]
                self.pos = nl + 1
                return line, True
            pending = len(self.buf) - self.pos
            if pending > MAX_LINE:
                raise Truncated(f"line longer than {MAX_LINE} bytes")
            self._fill(pending + CHUNK)
            if len(self.buf) - self.pos == pending:
                rest = self.buf[self.pos :]
                self.pos = len(self.buf)
                return rest, False

    def skip(self, count: int) -> None:
        """Move past ``count`` bytes; only checks they exist, never reads what the stream need not."""
        if self.pos + count <= len(self.buf):
            self.pos += count
            return
        target = self.tell() + count
        if self.size is not None:
            if target > self.size:
                raise Truncated(f"payload of {count} bytes runs past the end of data")
        else:
            reached = self.stream.seek(target)
            if reached < target:
                raise Truncated(f"payload of {count} bytes runs past the end of data")
        self.base = target
        self.buf = b""
        self.pos = 0

    def remaining(self) -> int | None:
        return None if self.size is None else self.size - self.tell()

    def read_at(self, offset: int, count: int) -> bytes:
        """Re-read a skipped payload; the buffer stays valid because _fill always seeks first."""
        self.stream.seek(offset)
        return self.stream.read(count)
