"""R serialized objects: ``.rds`` (saveRDS/serialize) and ``.RData``/``.rda`` workspaces (save).

``readRDS`` and ``load`` rebuild whatever the stream describes, and some of it is code: a promise
(an unevaluated expression) runs as soon as the value is touched (CVE-2024-27322), closures and
byte code run when the loading program calls them (a model's ``predict`` hook), a namespace or
package reference makes R load that package and run its ``.onLoad``, and an ALTREP object is
rebuilt by its class's package code. The stream is walked here, never loaded: an explicit stack
instead of recursion, every length checked against the bytes that are there.

Layout (R Internals, "Serialization Formats"): a format line (``X\\n`` XDR big-endian, ``A\\n``
ASCII, ``B\\n`` native), the version (2 or 3), the writer's and the minimum reader's R versions,
for version 3 the native encoding, then one item. An item starts with a flags word: the SEXPTYPE
in the low 8 bits, then object, attribute and tag bits, and the ``levels`` (gp bits) from bit 12.
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Callable
from typing import Any, NamedTuple

from .. import rules
from ..context import Item, ScanContext
from ..core import AttackClass, Capability, ParseError, Rule, Severity
from ..data import load_toml
from ..limits import LimitExceeded
from ..registry import Format
from ..streams import Stream

LABEL = "r-serialized"

# SEXPTYPEs (Rinternals.h) and the serialization pseudo-types (serialize.c).
SYMSXP, LISTSXP, CLOSXP, ENVSXP, PROMSXP, LANGSXP, SPECIALSXP, BUILTINSXP, CHARSXP = 1, 2, 3, 4, 5, 6, 7, 8, 9
LGLSXP, INTSXP, REALSXP, CPLXSXP, STRSXP, DOTSXP, VECSXP, EXPRSXP = 10, 13, 14, 15, 16, 17, 19, 20
BCODESXP, EXTPTRSXP, WEAKREFSXP, RAWSXP, S4SXP = 21, 22, 23, 24, 25
ALTREP_SXP, ATTRLISTSXP, ATTRLANGSXP, BASEENV_SXP, EMPTYENV_SXP = 238, 239, 240, 241, 242
BCREPREF, BCREPDEF, GENERICREFSXP, CLASSREFSXP, PERSISTSXP = 243, 244, 245, 246, 247
PACKAGESXP, NAMESPACESXP, BASENAMESPACE_SXP, MISSINGARG_SXP = 248, 249, 250, 251
UNBOUNDVALUE_SXP, GLOBALENV_SXP, NILVALUE_SXP, REFSXP = 252, 253, 254, 255

# Pseudo-types that stand for one fixed object; the environments among them by name.
_CONSTANTS = {
    NILVALUE_SXP: None,
    UNBOUNDVALUE_SXP: None,
    MISSINGARG_SXP: None,
    GLOBALENV_SXP: "R_GlobalEnv",
    EMPTYENV_SXP: "R_EmptyEnv",
    BASEENV_SXP: "base",
    BASENAMESPACE_SXP: "namespace:base",
}
_NUMBER_WIDTH = {LGLSXP: 4, INTSXP: 4, REALSXP: 8, CPLXSXP: 16, RAWSXP: 1}
_PAIRLISTS = (LISTSXP, LANGSXP, DOTSXP)
_BC_LANGUAGE = (LANGSXP, LISTSXP, BCREPDEF, BCREPREF, ATTRLANGSXP, ATTRLISTSXP)
_EVALUATED = (LANGSXP, BCODESXP, PROMSXP, DOTSXP)  # promise code that runs something when forced
_TYPE_NAMES = {
    SYMSXP: "symbol",
    LANGSXP: "call",
    BCODESXP: "byte code",
    PROMSXP: "promise",
    STRSXP: "character vector",
    REALSXP: "double vector",
    INTSXP: "integer vector",
    LGLSXP: "logical vector",
}

ACTIVE_BINDING = 1 << 15  # gp bit of a frame cell whose value is a function called on every read
OBJECT_BIT, ATTR_BIT, TAG_BIT = 1 << 8, 1 << 9, 1 << 10
NA_INTEGER = -(1 << 31)
MAX_DEPTH = 5_000  # nested items (a pairlist's tail does not count); R objects nest a few dozen deep
MAX_TEXT = 256  # bytes kept of a symbol or string: names are short, data is skipped
MAX_NAMES = 512  # names kept per function
MAX_STRING_VEC = 16  # strings kept of a namespace or package reference (name, version)
MAX_WORD = 128  # R's ASCII reader reads numbers into a buffer of this size
CHUNK = 1 << 16

# Functions that start processes, evaluate or parse code, load native code or other packages, or
# reach any function by a computed name: flagged wherever they are named in a function body, also as
# a string (do.call("system", ...)) or an argument (lapply(x, system)).
DANGEROUS_NAMES = frozenset(
    "system system2 shell shell.exec pipe eval evalq eval.parent parse str2lang str2expression source "
    "sys.source download.file socketConnection make.socket .Internal .Primitive .External .External2 "
    ".Call .C .Fortran dyn.load library.dynam getNativeSymbolInfo do.call match.fun getFromNamespace "
    "loadNamespace requireNamespace attachNamespace library require install.packages unserialize readRDS "
    "load Sys.setenv".split()
)
# Names benign code also uses for variables or arguments: flagged only where a call is made.
DANGEROUS_CALLS = frozenset(
    "file url fifo gzcon get get0 mget assign unlink file.remove file.create file.copy file.rename "
    "writeLines writeBin writeChar Sys.chmod setwd".split()
)
# Interfaces to native code: a function of a reviewed namespace uses them for the package's own
# registered routines (stats' .Call(C_logit_link, ...)) and base R's internals (paste's .Internal);
# what an internal runs is named inside the call and checked as any other name.
NATIVE_CALLS = frozenset({".Call", ".External", ".External2", ".C", ".Fortran", ".Internal", ".Primitive"})
# ALTREP classes are registered by package; those of base R (compact_intseq, wrap_*, deferred_string,
# mmap_*) are rebuilt by R itself.
BASE_ALTREP_PACKAGE = "base"

_RDATA = {b"RDX2\n": b"X", b"RDX3\n": b"X", b"RDA2\n": b"A", b"RDA3\n": b"A", b"RDB2\n": b"B", b"RDB3\n": b"B"}

# Actions on the walker's stack.
_ITEM, _ITEMS, _END, _BC1, _BC_CONSTS, _BC_CONST, _BC_LANG = range(7)
# What the parent wants to learn from an item.
_NONE, _CALL, _TAG, _ENCLOS, _CLOENV, _PROM_VALUE, _PROM_CODE, _ACTIVE = range(8)


@functools.cache
def trusted_packages() -> frozenset[str]:
    table = load_toml("r_packages.toml")
    return frozenset(name for group in ("base", "recommended") for name in table[group])


class RStreamError(ParseError):
    def __init__(self, offset: int, message: str) -> None:
        super().__init__(message)
        self.offset = offset
        self.message = message


class _DepthLimit(Exception):
    def __init__(self, offset: int, what: str) -> None:
        super().__init__(what)
        self.offset = offset
        self.what = what


# ---------------------------------------------------------------------- reading bytes


class _Source:
    """Buffered, forward-only reading of the item's stream, with the absolute offset."""

    def __init__(self, stream: Stream, start: int, size: int | None, check_time: Callable[[], None]) -> None:
        stream.seek(start)
        self._stream = stream
        self._size = size  # known for files and members: long skips seek instead of reading
        self._buf = b""
        self._pos = 0
        self._base = start
        self._check_time = check_time

    def offset(self) -> int:
        return self._base + self._pos

    def _fill(self, need: int) -> bool:
        if len(self._buf) - self._pos >= need:
            return True
        chunks = [self._buf[self._pos :]]
        have = len(chunks[0])
        self._base += self._pos
        self._pos = 0
        while have < need:
            chunk = self._stream.read(max(CHUNK, need - have))
            if not chunk:
                break
            chunks.append(chunk)
            have += len(chunk)
        self._buf = b"".join(chunks)
        return have >= need

    def read(self, count: int) -> bytes:
        if not self._fill(count):
            raise RStreamError(self.offset(), f"stream ends inside a {count}-byte field")
        data = self._buf[self._pos : self._pos + count]
        self._pos += count
        return data

    def skip(self, count: int) -> None:
        held = len(self._buf) - self._pos
        if count <= held:
            self._pos += count
            return
        target = self.offset() + count
        if self._size is not None:
            if target > self._size:
                raise RStreamError(self.offset(), f"a vector of {count} bytes runs past the end of the stream")
            self._stream.seek(target)
        else:
            self._drain(count - held)
        self._base, self._buf, self._pos = target, b"", 0

    def _drain(self, count: int) -> None:
        start = self.offset()
        while count > 0:
            self._check_time()
            chunk = self._stream.read(min(count, 1 << 20))
            if not chunk:
                raise RStreamError(start, "a vector runs past the end of the stream")
            count -= len(chunk)

    def getc(self) -> int:
        if self._pos >= len(self._buf) and not self._fill(1):
            return -1
        char = self._buf[self._pos]
        self._pos += 1
        return char

    def at_end(self) -> bool:
        return not self._fill(1)

    def unread(self, count: int) -> None:
        """Give back the last ``count`` bytes read; they are still in the buffer."""
        self._pos -= count


class _Binary:
    """XDR (big-endian) or native (little-endian) integers; strings as raw bytes."""

    def __init__(self, source: _Source, big_endian: bool) -> None:
        self.source = source
        self._int = struct.Struct(">i" if big_endian else "<i")

    def integer(self) -> int:
        value: int = self._int.unpack(self.source.read(4))[0]
        return value

    def skip_numbers(self, count: int, width: int) -> None:
        self.source.skip(count * width)

    def text(self, length: int) -> bytes:
        kept = self.source.read(min(length, MAX_TEXT))
        if length > MAX_TEXT:
            self.source.skip(length - MAX_TEXT)
        return kept

    def rest_is_padding(self) -> bool:
        return self.source.at_end()


_ESCAPES = {ord("n"): 10, ord("t"): 9, ord("v"): 11, ord("b"): 8, ord("r"): 13, ord("f"): 12, ord("a"): 7}
_SPACE = frozenset(b" \t\n\r\v\f")


class _Ascii:
    """ASCII serialization: numbers as whitespace-separated words, strings with C escapes."""

    def __init__(self, source: _Source, check_time: Callable[[], None]) -> None:
        self.source = source
        self._check_time = check_time

    def _skip_space(self) -> int:
        char = self.source.getc()
        while char in _SPACE:
            char = self.source.getc()
        return char

    def word(self) -> bytes:
        at = self.source.offset()
        char = self._skip_space()
        if char < 0:
            raise RStreamError(at, "stream ends where a number was expected")
        out = bytearray()
        while char >= 0 and char not in _SPACE:
            out.append(char)
            if len(out) > MAX_WORD:
                raise RStreamError(at, f"a number longer than {MAX_WORD} characters")
            char = self.source.getc()
        return bytes(out)

    def integer(self) -> int:
        at = self.source.offset()
        word = self.word()
        if word == b"NA":
            return NA_INTEGER
        try:
            return int(word)
        except ValueError:
            raise RStreamError(at, f"{word[:40]!r} is not an integer") from None

    def skip_numbers(self, count: int, width: int) -> None:
        words = count * 2 if width == 16 else count  # a complex number is two words
        for done in range(words):
            if not done & 0xFFFF:
                self._check_time()
            self.word()

    def text(self, length: int) -> bytes:
        at = self.source.offset()
        out = bytearray()
        char = self._skip_space() if length > 0 else 0
        for done in range(length):
            if done and not done & 0xFFFFF:
                self._check_time()
            if done:
                char = self.source.getc()
            if char < 0:
                raise RStreamError(at, f"stream ends inside a string of {length} characters")
            if char == ord("\\"):
                char = self._escape()
            if len(out) < MAX_TEXT:
                out.append(char & 0xFF)
        return bytes(out)

    def _escape(self) -> int:
        char = self.source.getc()
        if ord("0") <= char <= ord("7"):
            value, digits = 0, 0
            while ord("0") <= char <= ord("7") and digits < 3:
                value, digits = value * 8 + char - ord("0"), digits + 1
                if digits < 3:
                    char = self._peek_octal()
                    if char < 0:
                        break
            return value
        return _ESCAPES.get(char, char)

    def _peek_octal(self) -> int:
        """The next character when it is an octal digit, consumed; -1 (nothing consumed) otherwise."""
        source = self.source
        if source.at_end():
            return -1
        char = source.getc()
        if ord("0") <= char <= ord("7"):
            return char
        source.unread(1)  # it belongs to the string
        return -1

    def rest_is_padding(self) -> bool:
        return self._skip_space() < 0


_Input = _Binary | _Ascii


# ---------------------------------------------------------------------- what the walk learns


class _Env:
    """A serialized environment; its enclosing environment is known once read."""

    __slots__ = ("offset", "parent")

    def __init__(self, offset: int) -> None:
        self.offset = offset
        self.parent: _Env | str | None = None


class _Code:
    """A closure, promise or byte code being read: what its body names, and for a promise whether it ran."""

    __slots__ = ("active", "calls", "code_type", "env", "forced", "kind", "names", "offset", "strings")

    def __init__(self, kind: str, offset: int, active: bool = False) -> None:
        self.kind = kind
        self.offset = offset
        self.active = active  # the value of an active binding: called whenever the variable is read
        self.calls: list[str] = []  # names in function position, in order of appearance
        self.names: set[str] = set()  # every symbol, function object or string of the body
        self.strings: set[str] = set()
        self.env: _Env | str | None = None
        self.forced: bool | None = None
        self.code_type: int | None = None

    def symbol(self, name: str, call: bool) -> None:
        if len(self.names) < MAX_NAMES:
            self.names.add(name)
        if call and name not in self.calls and len(self.calls) < MAX_NAMES:
            self.calls.append(name)

    def string(self, text: str) -> None:
        if len(self.strings) < MAX_NAMES:
            self.strings.add(text)


class _Altrep:
    """An ALTREP object's class info: (class symbol, package symbol, base type)."""

    __slots__ = ("offset", "symbols")

    def __init__(self, offset: int) -> None:
        self.offset = offset
        self.symbols: list[str] = []

    def symbol(self, name: str, call: bool) -> None:
        if len(self.symbols) < 2:
            self.symbols.append(name)

    def string(self, text: str) -> None:
        pass


_Collector = _Code | _Altrep


class _Ref(NamedTuple):
    """An entry of the reference table: later REFSXPs point back at it."""

    kind: int  # SYMSXP, ENVSXP or the pseudo-type of what was read
    name: str = ""
    env: _Env | str | None = None


class Header(NamedTuple):
    form: str  # "xdr", "ascii" or "native"
    version: int
    writer: str
    min_reader: str
    encoding: str
    workspace: bool


def _r_version(packed: int) -> str:
    return f"{packed >> 16}.{(packed >> 8) & 0xFF}.{packed & 0xFF}"


def _decode(raw: bytes) -> str:
    return raw.decode("utf-8", "replace")


# ---------------------------------------------------------------------- detection


def detect(head: bytes, name: str) -> bool:
    """A full header: format line, version 2 or 3, plausible R versions and, for version 3, the encoding."""
    try:
        return _sniff_header(head) is not None
    except (ValueError, struct.error, IndexError):
        return False


def _sniff_header(head: bytes) -> tuple[int, int, int] | None:
    form = head[:2]
    if head[:5] in _RDATA:
        form, head = _RDATA[head[:5]] + b"\n", head[5:]
        if head[:2] != form:
            return None
    if head[:2] == b"A\n":
        return _sniff_ascii(head)
    if head[:2] not in (b"X\n", b"B\n"):
        return None
    big = head[:2] == b"X\n" or struct.unpack("<i", head[2:6])[0] not in (2, 3)
    version, writer, min_reader = struct.unpack(">iii" if big else "<iii", head[2:14])
    if not _plausible(version, writer, min_reader):
        return None
    if version == 3:
        length = struct.unpack(">i" if big else "<i", head[14:18])[0]
        if not _plausible_encoding(head[18 : 18 + length], length):
            return None
    return version, writer, min_reader


def _sniff_ascii(head: bytes) -> tuple[int, int, int] | None:
    lines = head[2:].split(b"\n", 5)
    if len(lines) < 4 or not all(line.isdigit() for line in lines[:3]):
        return None
    version, writer, min_reader = (int(line) for line in lines[:3])
    if not _plausible(version, writer, min_reader):
        return None
    if version == 3:
        if len(lines) < 5 or not lines[3].isdigit() or not _plausible_encoding(lines[4], int(lines[3])):
            return None
    return version, writer, min_reader


def _plausible(version: int, writer: int, min_reader: int) -> bool:
    # R versions are packed major<<16 | minor<<8 | patch; serialization 2 exists since R 1.4.0.
    return version in (2, 3) and 1 <= writer >> 16 <= 9 and 1 <= min_reader >> 16 <= 9


def _plausible_encoding(raw: bytes, length: int) -> bool:
    return 1 <= length <= 63 and len(raw) == length and all(0x21 <= byte < 0x7F for byte in raw)


# ---------------------------------------------------------------------- the analyzer


def analyze(ctx: ScanContext, item: Item) -> None:
    ctx.record(item, LABEL)
    try:
        header, walker = _open(ctx, item)
    except RStreamError as exc:
        ctx.report(rules.MALFORMED.finding(item.location.at(exc.offset), f"R serialization header: {exc.message}"))
        return
    evidence = _header_evidence(header)
    try:
        walker.run()
        if not walker.inp.rest_is_padding():
            at = walker.inp.source.offset()
            message = "bytes follow the serialized R object; R ignores them"
            ctx.report(rules.TRAILING_DATA.finding(item.location.at(at), message, evidence))
    except RStreamError as exc:
        walker.flush()
        ctx.report(rules.MALFORMED.finding(item.location.at(exc.offset), f"R object: {exc.message}", evidence))
    except _DepthLimit as exc:
        walker.flush()
        ctx.report(rules.SCAN_LIMIT.finding(item.location.at(exc.offset), exc.what, evidence))
    except LimitExceeded:
        walker.flush()
        raise
    walker.report_notes()


def _open(ctx: ScanContext, item: Item) -> tuple[Header, _Walker]:
    item.stream.seek(0)
    head = item.stream.read(8)
    start, workspace = (5, True) if head[:5] in _RDATA else (0, False)
    source = _Source(item.stream, start, item.size, ctx.budget.check_time)
    form = source.read(2)
    inp: _Input
    if form == b"X\n":
        inp = _Binary(source, big_endian=True)
    elif form == b"B\n":
        raw = source.read(4)
        big = struct.unpack("<i", raw)[0] not in (2, 3)
        inp = _Binary(source, big_endian=big)
        source.unread(4)  # the version is read again below, in the byte order now known
    elif form == b"A\n":
        inp = _Ascii(source, ctx.budget.check_time)
    else:
        raise RStreamError(start, f"unknown format {form!r}")
    header = _read_header(inp, workspace)
    return header, _Walker(ctx, item, inp)


def _read_header(inp: _Input, workspace: bool) -> Header:
    at = inp.source.offset()
    version, writer, min_reader = inp.integer(), inp.integer(), inp.integer()
    if version not in (2, 3):
        raise RStreamError(at, f"serialization version {version}; R writes 2 or 3")
    encoding = ""
    if version == 3:
        length = inp.integer()
        if not 0 < length <= 63:
            raise RStreamError(at, f"native encoding name of {length} bytes")
        encoding = _decode(inp.text(length))
    form = "ascii" if isinstance(inp, _Ascii) else "xdr" if inp._int.format == ">i" else "native"
    return Header(form, version, _r_version(writer), _r_version(min_reader), encoding, workspace)


def _header_evidence(header: Header) -> dict[str, str]:
    evidence = {
        "container": "workspace (save/load)" if header.workspace else "serialized object (saveRDS/readRDS)",
        "format": header.form,
        "version": str(header.version),
        "written_by_r": header.writer,
    }
    if header.encoding:
        evidence["encoding"] = header.encoding
    return evidence


# ---------------------------------------------------------------------- the walk

_Action = tuple[Any, ...]


class _Walker:
    """Reads one item, as R's ReadItem does, with an explicit stack; reports what can run code."""

    def __init__(self, ctx: ScanContext, item: Item, inp: _Input) -> None:
        self.ctx = ctx
        self.item = item
        self.inp = inp
        self.refs: list[_Ref] = []
        self.stack: list[_Action] = [(_ITEM, 0, _NONE, None, None)]
        self.packages: set[str] = set()  # package names already reported
        self.notes: dict[str, tuple[int, int]] = {}  # native object kind -> (count, first offset)

    # --- the loop

    def run(self) -> None:
        stack = self.stack
        steps = 0
        while stack:
            steps += 1
            if not steps & 0xFFF:
                self.ctx.budget.check_time()
            action = stack.pop()
            op = action[0]
            if op == _ITEM:
                self._item(*action[1:])
            elif op == _ITEMS:
                _, depth, count, collector = action
                if count > 1:
                    stack.append((_ITEMS, depth, count - 1, collector))
                stack.append((_ITEM, depth, _NONE, None, collector))
            elif op == _END:
                self._end(action[1])
            else:
                self._bytecode_step(action)

    def flush(self) -> None:
        """The stream broke or a limit was hit: judge the functions and promises left open, as read so far."""
        for action in reversed(self.stack):
            if action[0] == _END:
                self._end(action[1], partial=True)
        self.stack.clear()

    def _push_item(self, depth: int, role: int = _NONE, owner: Any = None, collector: _Collector | None = None) -> None:
        self.stack.append((_ITEM, depth, role, owner, collector))

    def _add_ref(self, ref: _Ref) -> None:
        if len(self.refs) >= self.ctx.limits.max_memo_entries:
            raise _DepthLimit(self.inp.source.offset(), f"more than {len(self.refs)} R reference table entries")
        self.refs.append(ref)

    # --- one item

    def _item(self, depth: int, role: int, owner: Any, collector: _Collector | None) -> None:
        at = self.inp.source.offset()
        if depth > MAX_DEPTH:
            raise _DepthLimit(at, f"R object nested deeper than {MAX_DEPTH} levels; the rest was not checked")
        flags = self.inp.integer()
        kind = flags & 0xFF
        if kind in _CONSTANTS:
            self._seen(role, owner, kind, _CONSTANTS[kind])
        elif kind == REFSXP:
            self._reference(at, flags, role, owner, collector)
        elif kind == SYMSXP:
            name = self._symbol_name()
            self._add_ref(_Ref(SYMSXP, name))
            self._symbol(name, role, collector)
            self._seen(role, owner, SYMSXP, None)
        elif kind in (PACKAGESXP, NAMESPACESXP, PERSISTSXP):
            self._named_environment(at, kind, role, owner)
        elif kind == ENVSXP:
            self._environment(at, depth, role, owner)
        elif kind in (CLOSXP, PROMSXP) or kind in _PAIRLISTS:
            self._seen(role, owner, kind, None)
            self._pairlist(at, kind, flags, depth, role, collector)
        else:
            self._seen(role, owner, kind, None)
            self._other(at, kind, flags, depth, role, collector)

    def _reference(self, at: int, flags: int, role: int, owner: Any, collector: _Collector | None) -> None:
        index = flags >> 8 or self.inp.integer()
        if not 1 <= index <= len(self.refs):
            raise RStreamError(at, f"reference {index} to an object not read yet ({len(self.refs)} so far)")
        ref = self.refs[index - 1]
        if ref.kind == SYMSXP:
            self._symbol(ref.name, role, collector)
        self._seen(role, owner, ref.kind, ref.env)

    def _seen(self, role: int, owner: Any, kind: int, env: _Env | str | None) -> None:
        """Tell the parent what its item turned out to be."""
        if role == _ENCLOS:
            owner.parent = env
        elif role == _CLOENV:
            owner.env = env
        elif role == _PROM_VALUE:
            owner.forced = kind != UNBOUNDVALUE_SXP
        elif role == _PROM_CODE:
            owner.code_type = kind

    def _symbol(self, name: str, role: int, collector: _Collector | None) -> None:
        if collector is not None and role != _TAG:  # a tag is an argument or variable name, not a use
            collector.symbol(name, role == _CALL)

    def _symbol_name(self) -> str:
        at = self.inp.source.offset()
        flags = self.inp.integer()
        if flags & 0xFF != CHARSXP:
            raise RStreamError(at, f"a symbol's name is SEXP type {flags & 0xFF}, not a string")
        text = self._charsxp(at)
        if text is None:
            raise RStreamError(at, "a symbol named NA")
        return text

    def _charsxp(self, at: int) -> str | None:
        length = self.inp.integer()
        if length == -1:
            return None
        if length < -1:
            raise RStreamError(at, f"string of length {length}")
        return _decode(self.inp.text(length))

    def _string_vector(self, at: int) -> list[str]:
        """InStringVec: a zero, a count, then that many strings (namespace name and version, ...)."""
        if self.inp.integer() != 0:
            raise RStreamError(at, "names in a persistent string vector, which R refuses")
        count = self.inp.integer()
        if count < 0:
            raise RStreamError(at, f"string vector of length {count}")
        kept: list[str] = []
        for done in range(count):
            if not done & 0xFFF:
                self.ctx.budget.check_time()
            where = self.inp.source.offset()
            if self.inp.integer() & 0xFF != CHARSXP:
                raise RStreamError(where, "a package reference holds something other than strings")
            text = self._charsxp(where)
            if len(kept) < MAX_STRING_VEC:
                kept.append("NA" if text is None else text)
        return kept

    def _named_environment(self, at: int, kind: int, role: int, owner: Any) -> None:
        strings = self._string_vector(at)
        name = strings[0] if strings else ""
        if kind == NAMESPACESXP:
            env = f"namespace:{name}"
            self._package(at, name, "namespace", strings[1:2])
        elif kind == PACKAGESXP:
            env = name
            self._package(at, name.removeprefix("package:"), "package environment", [])
        else:
            env = None
            self._note("persistent reference", at)
        self._add_ref(_Ref(ENVSXP if env else kind, name, env))
        self._seen(role, owner, ENVSXP if env else kind, env)

    def _environment(self, at: int, depth: int, role: int, owner: Any) -> None:
        self.inp.integer()  # locked
        env = _Env(at)
        self._add_ref(_Ref(ENVSXP, env=env))  # before its contents: they may point back at it
        self._seen(role, owner, ENVSXP, env)
        # enclosing environment, frame, hash table, attributes; the contents are data, not a body
        self._push_item(depth + 1)
        self._push_item(depth + 1)
        self._push_item(depth + 1)
        self._push_item(depth + 1, _ENCLOS, env)

    def _pairlist(self, at: int, kind: int, flags: int, depth: int, role: int, collector: _Collector | None) -> None:
        has_attr, has_tag = flags & ATTR_BIT, flags & TAG_BIT
        stack = self.stack
        if kind == CLOSXP:
            code = _Code("closure", at, active=role == _ACTIVE)
            stack.append((_END, code))
            self._push_item(depth + 1, collector=code)  # body
            self._push_item(depth + 1, collector=code)  # formals and their defaults
            tag_role, tag_owner = _CLOENV, code
        elif kind == PROMSXP:
            code = _Code("promise", at)
            stack.append((_END, code))
            self._push_item(depth + 1, _PROM_CODE, code, code)
            self._push_item(depth + 1, _PROM_VALUE, code)
            tag_role, tag_owner = _CLOENV, code
        else:
            self._push_item(depth, collector=collector)  # the tail: a list's length is no nesting
            levels = flags >> 12
            car_role = _CALL if kind == LANGSXP else _ACTIVE if levels & ACTIVE_BINDING else _NONE
            self._push_item(depth + 1, car_role, None, collector)
            tag_role, tag_owner = _TAG, None
        if has_tag:
            self._push_item(depth + 1, tag_role, tag_owner, None if tag_owner else collector)
        if has_attr:
            self._push_item(depth + 1, collector=None if kind in (CLOSXP, PROMSXP) else collector)

    def _length(self, at: int) -> int:
        length = self.inp.integer()
        if length == -1:  # a long vector: two more words, upper then lower half
            upper, lower = self.inp.integer() & 0xFFFFFFFF, self.inp.integer() & 0xFFFFFFFF
            return upper << 32 | lower
        if length < 0:
            raise RStreamError(at, f"vector of negative length {length}")
        return length

    def _other(self, at: int, kind: int, flags: int, depth: int, role: int, collector: _Collector | None) -> None:
        has_attr = flags & ATTR_BIT
        if has_attr and kind not in (CHARSXP, ALTREP_SXP):
            self._push_item(depth + 1, collector=collector)  # attributes follow the content
        if kind in _NUMBER_WIDTH:
            self.inp.skip_numbers(self._length(at), _NUMBER_WIDTH[kind])
        elif kind == CHARSXP:
            text = self._charsxp(at)
            if collector is not None and text is not None:
                collector.string(text)
        elif kind in (STRSXP, VECSXP, EXPRSXP):
            count = self._length(at)
            if count:
                self.stack.append((_ITEMS, depth + 1, count, collector))
        elif kind in (SPECIALSXP, BUILTINSXP):
            length = self.inp.integer()
            if not 0 <= length <= MAX_WORD:
                raise RStreamError(at, f"primitive function name of {length} bytes")
            self._symbol(_decode(self.inp.text(length)), role, collector)
        elif kind == ALTREP_SXP:
            self._altrep(at, depth, collector)
        elif kind == BCODESXP:
            self._bytecode(at, depth, collector)
        elif kind == EXTPTRSXP:
            self._add_ref(_Ref(EXTPTRSXP))
            self._note("external pointer", at)
            self._push_item(depth + 1)  # tag
            self._push_item(depth + 1)  # protected value
        elif kind == WEAKREFSXP:
            self._add_ref(_Ref(WEAKREFSXP))
            self._note("weak reference", at)
        elif kind != S4SXP:
            raise RStreamError(at, f"unknown SEXP type {kind}; R refuses the stream")

    def _altrep(self, at: int, depth: int, collector: _Collector | None) -> None:
        altrep = _Altrep(at)
        # class info (class, package, type), then the state and the attributes
        self._push_item(depth + 1, collector=collector)
        self._push_item(depth + 1, collector=collector)
        self.stack.append((_END, altrep))
        self._push_item(depth + 1, collector=altrep)

    # --- byte code: ReadBC, with its constant pool and its shared language objects

    def _bytecode(self, at: int, depth: int, collector: _Collector | None) -> None:
        reps = self.inp.integer()
        if reps < 0:
            raise RStreamError(at, f"byte code with {reps} shared cells")
        if collector is None:  # byte code outside a closure: judged on its own
            collector = _Code("byte code", at)
            self.stack.append((_END, collector))
        self.stack.append((_BC1, depth + 1, reps, collector))

    def _bytecode_step(self, action: _Action) -> None:
        op, depth, reps, collector = action[:4]
        if depth > MAX_DEPTH:
            raise _DepthLimit(self.inp.source.offset(), f"R byte code nested deeper than {MAX_DEPTH} levels")
        if op == _BC1:  # the code (an integer vector), then the constants
            self.stack.append((_BC_CONSTS, depth, reps, collector))
            self._push_item(depth + 1)
        elif op == _BC_CONSTS:
            at = self.inp.source.offset()
            count = self.inp.integer()
            if count < 0:
                raise RStreamError(at, f"byte code with {count} constants")
            if count:
                self.stack.append((_BC_CONST, depth, reps, collector, count))
        elif op == _BC_CONST:
            if action[4] > 1:
                self.stack.append((_BC_CONST, depth, reps, collector, action[4] - 1))
            kind = self.inp.integer()
            if kind == BCODESXP:
                self.stack.append((_BC1, depth + 1, reps, collector))
            elif kind in _BC_LANGUAGE:
                self._bytecode_language(kind, depth + 1, reps, collector, _NONE)
            else:
                self._push_item(depth + 1, collector=collector)
        else:  # _BC_LANG
            self._bytecode_language(self.inp.integer(), depth, reps, collector, action[4])

    def _bytecode_language(self, kind: int, depth: int, reps: int, collector: _Collector | None, role: int) -> None:
        at = self.inp.source.offset()
        if kind == BCREPREF:
            index = self.inp.integer()
            if not 0 <= index < reps:
                raise RStreamError(at, f"byte code refers to shared cell {index} of {reps}")
            return
        if kind not in _BC_LANGUAGE:  # a padding word, then an ordinary item
            self._push_item(depth, role, None, collector)
            return
        if kind == BCREPDEF:
            index, kind = self.inp.integer(), self.inp.integer()
            if not 0 <= index < reps:
                raise RStreamError(at, f"byte code defines shared cell {index} of {reps}")
        has_attr = kind in (ATTRLANGSXP, ATTRLISTSXP)
        kind = {ATTRLANGSXP: LANGSXP, ATTRLISTSXP: LISTSXP}.get(kind, kind)
        if kind not in (LANGSXP, LISTSXP):
            raise RStreamError(at, f"byte code language cell of SEXP type {kind}")
        self.stack.append((_BC_LANG, depth, reps, collector, _NONE))  # the tail
        self.stack.append((_BC_LANG, depth + 1, reps, collector, _CALL if kind == LANGSXP else _NONE))
        self._push_item(depth + 1, _TAG, None, collector)
        if has_attr:
            self._push_item(depth + 1, collector=collector)

    # --- judgement

    def _end(self, scope: _Collector, partial: bool = False) -> None:
        if isinstance(scope, _Altrep):
            self._judge_altrep(scope)
        elif scope.kind == "promise":
            self._judge_promise(scope, partial)
        else:
            self._judge_function(scope, partial)

    def _judge_promise(self, code: _Code, partial: bool) -> None:
        evaluates = code.code_type in _EVALUATED
        if not evaluates:
            return  # a constant or a variable lookup: forcing it runs nothing of its own
        evidence = _code_evidence(code, partial)
        evidence["environment"] = _env_name(code.env)
        location = self.item.location.at(code.offset)
        if code.forced:
            evidence["state"] = "already forced: R returns the stored value and never evaluates the code again"
            message = f"R promise already evaluated when saved; its code calls {_shown(code.calls)}"
            self.ctx.report(R_PROMISE.finding(location, message, evidence, severity=Severity.INFO))
            return
        evidence["state"] = "unevaluated: R evaluates it the first time the value is used"
        evidence["why"] = "readRDS/load hand back the promise; touching the object runs it (CVE-2024-27322)"
        message = f"R promise runs code when the object is used: it calls {_shown(code.calls)}"
        self.ctx.report(R_PROMISE.finding(location, message, evidence))

    def _judge_function(self, code: _Code, partial: bool) -> None:
        root = _root(code.env)
        trusted_root = root.startswith("namespace:") and root.removeprefix("namespace:") in trusted_packages()
        dangerous = _dangerous(code, trusted_root)
        evidence = _code_evidence(code, partial)
        if code.kind == "closure":
            evidence["environment"] = _env_name(code.env)
        if dangerous:
            severity = Severity.HIGH
            evidence["dangerous"] = ", ".join(dangerous)
            why = f"calls {', '.join(dangerous)}"
        elif trusted_root:
            severity = Severity.INFO
            why = f"defined in {root} and calls nothing outside ordinary computation"
        else:
            severity = Severity.MEDIUM
            why = "arbitrary R code that runs when the loading program calls it"
        if code.active:
            severity = max(severity, Severity.HIGH)
            evidence["active_binding"] = "yes: R calls it whenever the variable is read"
        evidence["why"] = why
        what = "R closure" if code.kind == "closure" else "R byte code"
        message = f"{what} stored in the object ({why})"
        self.ctx.report(R_FUNCTION.finding(self.item.location.at(code.offset), message, evidence, severity=severity))

    def _judge_altrep(self, altrep: _Altrep) -> None:
        location = self.item.location.at(altrep.offset)
        if len(altrep.symbols) < 2:
            message = "ALTREP object without a (class, package) pair; R cannot rebuild it"
            self.ctx.report(rules.MALFORMED.finding(location, message))
            return
        cls, package = altrep.symbols
        if package == BASE_ALTREP_PACKAGE:
            return
        evidence = {
            "class": cls,
            "package": package,
            "why": "R rebuilds the vector by calling the unserialize method the package registered for the class",
        }
        message = f"ALTREP vector of class {cls!r} from package {package!r}: that package's code rebuilds it"
        self.ctx.report(R_ALTREP.finding(location, message, evidence))

    def _package(self, at: int, name: str, what: str, version: list[str]) -> None:
        if name in trusted_packages() or name in self.packages:
            return
        self.packages.add(name)
        evidence = {
            "package": name,
            "reference": what,
            "why": "R loads the package to rebuild the reference, which runs its .onLoad hook",
        }
        if version:
            evidence["version"] = version[0]
        message = f"R object references the {what} of package {name!r}; reading it loads that package"
        self.ctx.report(R_PACKAGE.finding(self.item.location.at(at), message, evidence))

    def _note(self, what: str, at: int) -> None:
        count, first = self.notes.get(what, (0, at))
        self.notes[what] = (count + 1, first)

    def report_notes(self) -> None:
        for what, (count, first) in self.notes.items():
            persistent = what == "persistent reference"
            why = (
                "readRDS(refhook=) and unserialize(refhook=) pass its strings to a function the loading program chooses"
                if persistent
                else "restored empty: the native state it pointed to is not in the file, and no code is"
            )
            evidence = {"count": str(count), "why": why}
            message = f"R object holds {count} {what}(s)"
            severity = Severity.LOW if persistent else Severity.INFO
            location = self.item.location.at(first)
            self.ctx.report(R_NATIVE_REFERENCE.finding(location, message, evidence, severity=severity))


def _dangerous(code: _Code, trusted_root: bool) -> list[str]:
    found = {name for name in code.names | code.strings if name in DANGEROUS_NAMES}
    found |= {name for name in code.calls if name in DANGEROUS_CALLS}
    if trusted_root:  # the package's own native routines, as every compiled function of stats does
        found -= NATIVE_CALLS
    return sorted(found)


def _code_evidence(code: _Code, partial: bool) -> dict[str, str]:
    evidence = {"kind": code.kind, "calls": _shown(code.calls)}
    if partial:
        evidence["incomplete"] = "the stream ended inside it: only what was read is listed"
    return evidence


def _shown(names: list[str], limit: int = 20) -> str:
    if not names:
        return "nothing"
    more = f", ... ({len(names) - limit} more)" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


def _root(env: _Env | str | None) -> str:
    """The first named environment up the enclosing chain: a namespace, the global or base environment."""
    for _ in range(256):  # a chain may loop through references
        if not isinstance(env, _Env):
            return env or "unknown"
        env = env.parent
    return "unknown"


def _env_name(env: _Env | str | None) -> str:
    if isinstance(env, _Env):
        return f"local environment (byte {env.offset}) inside {_root(env)}"
    return env or "none"


_REMEDIATION = (
    "Do not readRDS() or load() files from untrusted sources. Exchange data in a format that holds "
    "data only (CSV, Parquet, JSON) and refit or re-export the model from trusted code. "
)

R_PROMISE = Rule(
    id="MLO145",
    name="r-promise",
    title="R object holds an unevaluated promise that runs code when the value is used",
    severity=Severity.CRITICAL,
    attack_class=AttackClass.MALICIOUS_MODEL,
    capability=Capability.CODE_EXECUTION,
    description="A serialized promise (PROMSXP) carries an expression that R evaluates the first time the value is "
    "touched, right after readRDS() or load() return (CVE-2024-27322). Save files of models and data "
    "hold no unevaluated calls; promises already evaluated when saved are noted only.",
    remediation=_REMEDIATION + "Treat a machine that already read the file as compromised. R 4.4.0 and later refuse "
    "unevaluated promises in serialized streams: upgrade R.",
    summary=(
        "An R object (`.rds`, `.RData`) holds an unevaluated promise: its call runs when the value is "
        "first used (CVE-2024-27322); promises already evaluated when saved are info."
    ),
    severities="critical, info",
)

R_FUNCTION = Rule(
    id="MLO146",
    name="r-function",
    title="R object stores a function (closure or byte code)",
    severity=Severity.HIGH,
    attack_class=AttackClass.MALICIOUS_MODEL,
    capability=Capability.CODE_EXECUTION,
    description="The object carries an R function that runs when the loading program calls it, as a model's predict "
    "method, a callback or an active binding. High when its body names process, eval/parse, download, "
    "native-call or package-loading functions; medium for other functions; info for functions of a "
    "base or recommended package's namespace (a glm's family) that call none of them.",
    remediation=_REMEDIATION + "Review the listed calls before calling anything the object holds.",
    summary=(
        "An R closure or byte code stored in the object: high when its body names `system`, `eval`, "
        "`parse`, `source`, `download.file`, native calls or package loading, medium otherwise, info for "
        "functions of a base or recommended namespace (a glm's family)."
    ),
    severities="high, medium, info",
)

R_PACKAGE = Rule(
    id="MLO147",
    name="r-package-reference",
    title="R object references a package that R loads to read it",
    severity=Severity.LOW,
    attack_class=AttackClass.MALICIOUS_MODEL,
    capability=Capability.CODE_EXECUTION,
    description="A namespace or package environment reference outside R's base and recommended packages "
    "(data/r_packages.toml) makes readRDS()/load() load that package, which runs its .onLoad hook. "
    "Harmless for a package you trust and have installed, a foothold for one installed by an attacker.",
    remediation="Check that the named packages are ones you expect and installed from a trusted repository.",
    summary=(
        "An R object references a package namespace or environment outside base and recommended R "
        "(`data/r_packages.toml`): reading it loads the package and runs its `.onLoad`."
    ),
)

R_ALTREP = Rule(
    id="MLO148",
    name="r-foreign-altrep",
    title="R object holds an ALTREP vector rebuilt by a package's code",
    severity=Severity.MEDIUM,
    attack_class=AttackClass.MALICIOUS_MODEL,
    capability=Capability.CODE_EXECUTION,
    description="An ALTREP vector names its class and package; R rebuilds it by calling the unserialize method that "
    "package registered, with state taken from the file. Base R's classes (compact sequences, wrappers, "
    "deferred strings, memory maps) are not flagged.",
    remediation="Make sure the package is one you trust; materialize the vector before saving to avoid the dependency.",
    summary=("An R ALTREP vector whose class comes from a package other than base R: that package's code rebuilds it."),
)

R_NATIVE_REFERENCE = Rule(
    id="MLO149",
    name="r-native-reference",
    title="R object holds external pointers, weak references or persistent references",
    severity=Severity.INFO,
    attack_class=AttackClass.MALICIOUS_MODEL,
    capability=Capability.CODE_EXECUTION,
    description="External pointers and weak references are restored empty: they carry no code, but the object needs "
    "the package that created them to work again. A persistent reference (low) is resolved by the refhook "
    "function the loading program passes to readRDS() or unserialize().",
    remediation="Nothing to fix for external pointers; check what refhook your code passes when a file holds "
    "persistent references.",
    summary=(
        "An R object holds external pointers or weak references (restored empty), or persistent "
        "references handed to the caller's refhook (low)."
    ),
    severities="info, low",
)


FORMATS = (
    Format(
        LABEL,
        "code",
        "R serialized object (.rds, .RData)",
        handler=analyze,
        detect=detect,
        order=125,  # after the binary model formats, before the pickle check: "X" and "B" are pickle opcodes
        extensions=(".rds", ".rdata", ".rda"),
    ),
)
