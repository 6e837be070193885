"""Read the names and string constants of a marshalled Python code object, without unmarshalling it.

``marshal.loads`` on hostile bytes can crash the interpreter, and the code object it builds is the
attacker's program; this walker only steps over the serialized values and keeps the strings. The
field layout of code objects changed across Python versions and the bytes do not say which one wrote
them, so every known layout is tried; the ones that decode the whole blob are reported.
"""

from __future__ import annotations

from typing import NamedTuple

from ..core import ParseError

MAX_BYTES = 4 << 20
MAX_VALUES = 1 << 18
MAX_DEPTH = 100
FLAG_REF = 0x80

# Code object fields after the leading 32-bit integers: a role for each serialized value, or
# "int" for a bare 32-bit integer (the first line number).
_OLD_FIELDS = ("code", "consts", "names", "locals", "locals", "locals", "filename", "name", "int", "lines")
LAYOUTS: tuple[tuple[str, int, tuple[str, ...]], ...] = (
    (
        "3.11+",
        5,
        ("code", "consts", "names", "locals", "kinds", "filename", "name", "name", "int", "lines", "lines"),
    ),
    ("3.8-3.10", 6, _OLD_FIELDS),
    ("3.0-3.7", 5, _OLD_FIELDS),
    ("2.x", 4, _OLD_FIELDS),
)


class MarshalError(ParseError):
    """The bytes are not a code object in the layout being tried."""


class CodeStrings(NamedTuple):
    layout: str  # the Python versions whose code layout decoded the blob
    names: tuple[str, ...]  # globals and attributes the code uses (co_names), in first-use order
    constants: tuple[str, ...]  # string and bytes constants


def code_strings(data: bytes) -> list[CodeStrings]:
    """One result per layout that decodes ``data`` as exactly one code object; empty when none does."""
    if len(data) > MAX_BYTES:
        return []
    results = []
    for layout, ints, fields in LAYOUTS:
        walker = _Walker(data, ints, fields, python2=layout == "2.x")
        try:
            if walker.value("top", 0) is not _CODE or walker.pos != len(data):
                continue
        except MarshalError:
            continue
        results.append(CodeStrings(layout, tuple(walker.names), tuple(walker.constants)))
    return results


_CODE = object()  # what value() returns for a code object
_SIMPLE = {ord(c) for c in "NFTS."}  # None, False, True, StopIteration, Ellipsis
_FIXED = {ord("i"): 4, ord("I"): 8, ord("g"): 8, ord("y"): 16}
_STRINGS = {ord(c): 4 for c in "stuaA"} | {ord("z"): 1, ord("Z"): 1}
_SEQUENCES = {ord(c): 4 for c in "([<>"} | {ord(")"): 1}


class _Walker:
    def __init__(self, data: bytes, ints: int, fields: tuple[str, ...], python2: bool) -> None:
        self.data = data
        self.ints = ints
        self.fields = fields
        self.python2 = python2
        self.pos = 0
        self.count = 0
        self.refs: list[str | None] = []
        self.interned: list[str] = []  # Python 2 'R' references
        self.names: dict[str, None] = {}
        self.constants: dict[str, None] = {}

    def take(self, count: int) -> bytes:
        if count < 0 or self.pos + count > len(self.data):
            raise MarshalError("value runs past the end of the data")
        chunk = self.data[self.pos : self.pos + count]
        self.pos += count
        return chunk

    def uint(self, size: int) -> int:
        return int.from_bytes(self.take(size), "little")

    def int32(self) -> int:
        return int.from_bytes(self.take(4), "little", signed=True)

    def value(self, role: str, depth: int) -> object:
        """Step over one value; return its text for strings, _CODE for code objects, else None."""
        self.count += 1
        if self.count > MAX_VALUES or depth > MAX_DEPTH:
            raise MarshalError("too many or too deeply nested values")
        code = self.uint(1)
        flagged, kind = bool(code & FLAG_REF), code & ~FLAG_REF
        slot = len(self.refs)
        if flagged:
            self.refs.append(None)  # reserved before the children, as marshal numbers them
        result = self._value(kind, role, depth)
        if flagged:
            self.refs[slot] = result if isinstance(result, str) else None
        return result

    def _value(self, kind: int, role: str, depth: int) -> object:
        if kind in _SIMPLE:
            return None
        if kind in _FIXED:
            self.take(_FIXED[kind])
            return None
        if kind == ord("l"):
            self.take(2 * abs(self.int32()))
            return None
        if kind == ord("f"):
            self.take(self.uint(1))
            return None
        if kind == ord("x"):
            self.take(self.uint(1))
            self.take(self.uint(1))
            return None
        if kind in _STRINGS:
            return self._string(kind, role)
        if kind == ord("r"):
            return self._reference(self.refs, role)
        if kind == ord("R") and self.python2:
            return self._reference(self.interned, role)
        if kind in _SEQUENCES:
            count = self.uint(_SEQUENCES[kind])
            if count > len(self.data) - self.pos:
                raise MarshalError("sequence longer than the data")
            for _ in range(count):
                self.value(role, depth + 1)
            return None
        if kind == ord("{"):
            while self.data[self.pos : self.pos + 1] != b"0":
                self.value(role, depth + 1)
                self.value(role, depth + 1)
            self.take(1)
            return None
        if kind == ord("c"):
            self.take(4 * self.ints)
            for field in self.fields:
                if field == "int":
                    self.take(4)
                else:
                    self.value(field, depth + 1)
            return _CODE
        raise MarshalError(f"unknown marshal type {kind:#x}")

    def _string(self, kind: int, role: str) -> str:
        raw = self.take(self.uint(_STRINGS[kind]))
        text = raw.decode("latin-1") if kind == ord("s") else raw.decode("utf-8", "replace")
        if kind == ord("t") and self.python2:
            self.interned.append(text)
        self._note(text, role)
        return text

    def _reference(self, table: list, role: str) -> str | None:
        index = self.uint(4)
        if index >= len(table):
            raise MarshalError(f"reference {index} to a value not yet read")
        target = table[index]
        if isinstance(target, str):
            self._note(target, role)
        return target

    def _note(self, text: str, role: str) -> None:
        if role == "names":
            self.names.setdefault(text, None)
        elif role == "consts":
            self.constants.setdefault(text, None)
