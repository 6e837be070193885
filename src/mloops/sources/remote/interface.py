"""What a remote store gives the scanner: objects with a size, read by byte ranges.

The analyzers read a ``RangeStream`` like a local file; it fetches aligned blocks on demand and keeps a few,
so that a ZIP's central directory, a safetensors header or a pickle member costs a handful of requests and
the tensor data in between is never fetched. The object counts what the verdict cost.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import NamedTuple, Protocol

BLOCK = 64 * 1024  # bytes per request at least: small reads (pickle opcodes) would otherwise be one request each
KEPT_BLOCKS = 64  # blocks held (4 MiB): the end record, the directory and the member being read
MAX_READAHEAD = 16  # blocks fetched in one request when reading straight on


class RemoteError(Exception):
    """A remote object cannot be read; the message is one line a user can act on."""


class Listed(NamedTuple):
    """An object a target expands to, and its version when the listing tells it (an ETag, a pinned commit):
    a cached result for that version is used without opening the object."""

    uri: str
    version: str | None = None


class RemoteObject(Protocol):
    """One object of a remote store; it counts what it fetched, its size and version lookups included."""

    uri: str  # what the report names it by
    size: int
    version: str | None  # ETag or revision: what the object was when it was read
    bytes_fetched: int
    requests: int
    head: bytes  # the first min(BLOCK, size) bytes when opening the object fetched them anyway, else b""

    def read_range(self, start: int, length: int, /) -> bytes: ...


class RangeStream:
    """A seekable stream over a remote object, fetching only the blocks that are read."""

    def __init__(self, remote: RemoteObject) -> None:
        self.remote = remote
        self._pos = 0
        self._blocks: OrderedDict[int, bytes] = OrderedDict()
        if remote.head and len(remote.head) == min(BLOCK, remote.size):
            self._blocks[0] = remote.head
        self._next_expected = 1 if self._blocks else -1  # reading on from the last block fetched reads ahead
        self._ahead = 1

    def read(self, size: int = -1, /) -> bytes:
        end = self.remote.size if size < 0 else min(self.remote.size, self._pos + size)
        parts = []
        while self._pos < end:
            index = self._pos // BLOCK
            block = self._block(index)
            offset = self._pos - index * BLOCK
            piece = block[offset : offset + end - self._pos]
            if not piece:
                break
            parts.append(piece)
            self._pos += len(piece)
        return b"".join(parts)

    def seek(self, offset: int, whence: int = 0, /) -> int:
        base = {0: 0, 1: self._pos, 2: self.remote.size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def tell(self) -> int:
        return self._pos

    def _block(self, index: int) -> bytes:
        if index in self._blocks:
            self._blocks.move_to_end(index)
            return self._blocks[index]
        # Reading straight on doubles the span of the next request; a jump starts again from one block.
        self._ahead = min(self._ahead * 2, MAX_READAHEAD) if index == self._next_expected else 1
        last = min(index + self._ahead, -(-self.remote.size // BLOCK))
        start = index * BLOCK
        data = self.remote.read_range(start, min(last * BLOCK, self.remote.size) - start)
        for number in range(index, last):
            self._blocks[number] = data[(number - index) * BLOCK : (number - index + 1) * BLOCK]
        while len(self._blocks) > KEPT_BLOCKS:
            self._blocks.popitem(last=False)
        self._next_expected = last
        return self._blocks[index]
