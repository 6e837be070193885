"""A JSON object checked as a stream: brackets balance, strings end, nothing follows the document.

Models saved as JSON can be gigabytes, so nothing is built in memory. Numbers and literals are
not validated one by one (the model's own loader rejects a bad number; a bad number runs nothing);
what is checked is that the document is one complete, well-nested object, and which keys its top
level has.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from ..limits import LimitExceeded
from ..streams import Stream
from .forward_reader import DecodeError

CHUNK = 1 << 20
MAX_DEPTH = 256
MAX_STRING = 64 << 20
LOOKAHEAD = 64  # a token this close to the end of the buffer may continue in the next chunk

_STRING = rb'"[^"\\]*(?:\\.[^"\\]*)*"'
_NUMBERS = rb"\[[\s0-9.eE+\-,]*\]"  # an array of plain numbers, the bulk of a model
_SCALAR = rb"(?:" + _STRING + rb"|[0-9.eE+\-a-zA-Z]+|" + _NUMBERS + rb")"
_TOKEN = re.compile(
    b"|".join(
        (
            rb"(?P<member>" + _STRING + rb")\s*:\s*" + _SCALAR,  # a key and a plain value in one step
            rb"(?P<key>" + _STRING + rb")\s*:",
            rb"(?P<string>" + _STRING + rb")",
            rb"(?P<numbers>" + _NUMBERS + rb")",
            rb"(?P<open>[{\[])",
            rb"(?P<close>[}\]])",
            rb'(?P<unterminated>")',
            rb"(?P<stray>[^\s0-9.eE+\-,:a-zA-Z])",
        )
    )
)
_PAIRS = {ord("}"): ord("{"), ord("]"): ord("[")}


class JsonSummary:
    """What the scan learned: the top-level keys, and where the document ends."""

    def __init__(self) -> None:
        self.keys: list[str] = []
        self.end = 0  # offset just after the closing brace
        self.trailing_at: int | None = None  # first non-blank byte after the document


def scan_object(stream: Stream, tick: Callable[[], None] | None = None) -> JsonSummary:
    """Check the stream holds one JSON object; raise DecodeError where it does not."""
    summary = JsonSummary()
    stack = bytearray()
    stream.seek(0)
    buffer, base, pos, eof = b"", 0, 0, False  # base: stream offset of buffer[0]
    while True:
        match = _TOKEN.search(buffer, pos)
        kind = match.lastgroup if match is not None else None
        may_continue = match is None or kind == "unterminated" or match.end() > len(buffer) - LOOKAHEAD
        if may_continue and not eof:
            keep = match.start() if match is not None else len(buffer)
            if kind == "unterminated" and len(buffer) - keep > MAX_STRING:
                raise LimitExceeded(f"a JSON string longer than {MAX_STRING} bytes")
            if not stack and buffer[pos:keep].strip():
                raise DecodeError("text before the opening brace", base + pos)
            base, buffer, pos = base + keep, buffer[keep:], 0
            chunk = stream.read(max(CHUNK, len(buffer)))  # doubling keeps a long string's rescans linear
            eof = not chunk
            buffer += chunk
            if tick is not None:
                tick()
            continue
        if match is None:
            break
        at = base + match.start()
        char = buffer[match.start()]
        if not stack and (buffer[pos : match.start()].strip() or char != ord("{")):
            raise DecodeError("the document is not a JSON object", base + pos)
        pos = match.end()
        if kind == "key" or kind == "member":
            if len(stack) == 1:
                summary.keys.append(match.group(kind)[1:-1].decode("utf-8", "replace"))
        elif kind == "open":
            if len(stack) >= MAX_DEPTH:
                raise DecodeError(f"nested deeper than {MAX_DEPTH} levels", at)
            stack.append(char)
        elif kind == "close":
            if stack[-1] != _PAIRS[char]:
                raise DecodeError(f"{chr(char)} closes a {chr(stack[-1])}", at)
            stack.pop()
            if not stack:
                summary.end = base + pos
                break
        elif kind == "unterminated":
            raise DecodeError("a string is not terminated", at, truncated=True)
        elif kind == "stray":
            raise DecodeError(f"byte 0x{char:02x} has no place outside a string", at)
    if stack:
        raise DecodeError(f"the data ends inside {len(stack)} open brackets", base + len(buffer), truncated=True)
    if not summary.end:
        raise DecodeError("no JSON object", base + pos, truncated=True)
    summary.trailing_at = _first_non_blank(stream, buffer[pos:], summary.end)
    return summary


def _first_non_blank(stream: Stream, rest: bytes, offset: int) -> int | None:
    while rest:
        stripped = rest.lstrip()
        if stripped:
            return offset + len(rest) - len(stripped)
        offset += len(rest)
        rest = stream.read(CHUNK)
    return None
