"""A symbolic pickle virtual machine: every opcode's effect, nothing imported or called.

The machine follows CPython's unpickler (both the C and the pure-Python one, taking the
more lenient where they differ) so that it sees what a real loader would run. Each
import, call, instantiation and state change is reported to an observer, which judges it.
"""

from __future__ import annotations

import codecs
import struct
from collections.abc import Callable
from typing import Any

from ..core import ParseError
from ..limits import Budget, LimitExceeded, Limits
from . import calls
from .calls import MAX_NAME_DEPTH
from .folding import fold
from .liveness import MAX_OBJECT_EXPANSION, Walker
from .policy import BUILD_ONLY, DANGEROUS, INTROSPECTION, SAFE, Policy, Signature, dotted
from .reader import Reader, Truncated
from .values import Attr, Blob, Call, Ext, Global, Instance, Live, Opaque, Persistent, Seq, is_constant

BLOB_THRESHOLD = 1 << 20  # byte and text payloads larger than this are skipped, not read
HIGHEST_PROTOCOL = 5
BUDGET_SPENT = object()  # returned by Machine.run when its opcode budget ran out

Name = tuple[str, str]  # (module, qualname), canonical


class Malformed(ParseError):
    """The real unpickler stops here; everything before this offset has already run."""

    def __init__(self, message: str, offset: int, truncated: bool = False) -> None:
        super().__init__(message)
        self.offset = offset
        self.truncated = truncated


class Observer:
    """What the machine tells whoever judges the stream; every event is a no-op here."""

    def reference(self, name: Name, offset: int, opcode: str, spelled: str | None) -> None: ...
    def call(self, name: Name | None, callee: Any, args: Any, offset: int, opcode: str) -> None: ...
    def instantiate(self, name: Name | None, cls: Any, offset: int, opcode: str) -> None: ...
    def build(self, target: Any, name: Name | None, offset: int, opcode: str) -> None: ...
    def extension(self, code: int, offset: int) -> None: ...
    def computed_global(self, offset: int, detail: str) -> None: ...
    def computed_name(self, offset: int, detail: str) -> None: ...
    def touch(self, live: Live, use: str, offset: int, opcode: str) -> None: ...
    def misuse(self, via: str, message: str, offset: int, opcode: str) -> None: ...
    def expansion(self, message: str, offset: int) -> None: ...
    def mutation(self, message: str, evidence: dict[str, str], offset: int) -> None: ...
    def nested(self, data: bytes | None, offset: int, via: Name) -> None: ...
    def anomaly(self, offset: int, message: str, kind: str) -> None: ...


# BUILD hooks handle loaders that read raw data from the stream after an object (joblib).
BuildHook = Callable[["Machine", Any, Any], Any]


class Machine:
    def __init__(
        self,
        reader: Reader,
        policy: Policy,
        observer: Observer,
        limits: Limits,
        budget: Budget,
        build_hooks: dict[str, BuildHook] | None = None,
        depth: int = 0,
    ) -> None:
        self.reader = reader
        self.policy = policy
        self.observer = observer
        self.limits = limits
        self.budget = budget
        self.build_hooks = build_hooks or {}
        self.depth = depth
        self.stack: list[Any] = []
        self.metastack: list[list[Any]] = []
        self.memo: dict[int, Any] = {}
        self.offset = 0  # offset of the opcode being executed
        self.opcode_count = 0
        self.walker = Walker(budget)
        self.frame_end = 0  # where the current FRAME ends; 0 outside frames

    # ----------------------------------------------------------------- driving

    def run(self, budget_opcodes: int = 0) -> Any:
        """Execute up to and including STOP and return the symbolic result; with a budget,
        return BUDGET_SPENT once that many opcodes ran without error (used to sniff)."""
        reader = self.reader
        table = _TABLE
        budget = self.budget
        limit_stack = self.limits.max_stack_items
        count = 0
        try:
            while True:
                # The hot loop reads the opcode byte inline; Reader.byte refills when needed.
                pos = reader.pos
                if pos < len(reader.buf):
                    op = reader.buf[pos]
                    reader.pos = pos + 1
                    offset = self.offset = reader.base + pos
                else:
                    offset = self.offset = reader.tell()
                    op = reader.byte()
                if offset >= self.frame_end > 0:
                    self._leave_frame(offset)
                handler = table[op]
                if handler is None:
                    raise Malformed(f"invalid opcode 0x{op:02x}", self.offset)
                count += 1
                if handler(self):
                    return self._stop()
                if count == budget_opcodes:
                    return BUDGET_SPENT
                if not count & 0x3FFF:
                    budget.check_time()
                    budget.check_memory()
                    if len(self.stack) + len(self.metastack) > limit_stack:
                        raise LimitExceeded(f"more than {limit_stack} items and marks on the pickle stack")
        except Truncated as exc:
            raise Malformed(f"truncated: {exc}", self.offset, truncated=True) from None
        except (IndexError, KeyError) as exc:
            raise Malformed(self._describe_lookup_error(exc), self.offset) from None
        except (ValueError, UnicodeDecodeError, OverflowError, struct.error) as exc:
            raise Malformed(f"invalid argument: {exc}", self.offset) from None
        finally:
            self.opcode_count += count

    def _describe_lookup_error(self, exc: Exception) -> str:
        if isinstance(exc, KeyError):
            return f"memo slot {exc.args[0]} read before it was written"
        return "stack underflow (an opcode needs more values than the stack or current MARK frame holds)"

    def _stop(self) -> Any:
        if not self.stack:
            raise Malformed("STOP with an empty stack", self.offset)
        result = self.stack.pop()
        if self.walker.expansion(result, tuples_only=False, cap=MAX_OBJECT_EXPANSION) > MAX_OBJECT_EXPANSION:
            message = (
                f"the loaded object expands to more than {MAX_OBJECT_EXPANSION} items when walked (shared references "
                "nested level upon level): whoever prints, copies or serializes it hangs (billion laughs)"
            )
            self.observer.expansion(message, self.offset)
        return result

    # ------------------------------------------------------------ stack helpers

    def _pop_mark(self) -> list[Any]:
        if not self.metastack:
            raise Malformed("no MARK to pop to", self.offset)
        items = self.stack
        self.stack = self.metastack.pop()
        return items

    def _memo_put(self, index: int) -> None:
        self.memo[index] = self.stack[-1]
        if len(self.memo) > self.limits.max_memo_entries:
            raise LimitExceeded(f"more than {self.limits.max_memo_entries} memo entries")

    # -------------------------------------------------------------- constants

    def _payload(self, kind: str, length: int) -> Any:
        if length < 0:
            raise Malformed(f"negative length {length}", self.offset)
        if length > BLOB_THRESHOLD:
            start = self.reader.tell()
            self.reader.skip(length)
            return Blob(kind, start, length)
        data = self.reader.read(length)
        if kind == "str":
            return str(data, "utf-8", "surrogatepass")
        return data

    def _text(self, data: bytes) -> str:
        # Python 2 strings: loaders pass encoding="latin1" (torch, numpy), which never fails.
        return data.decode("latin-1")

    # ------------------------------------------------------------ naming

    def target_name(self, value: Any, depth: int = 0) -> Name | None:
        """The importable object a value is, when it can be named."""
        if isinstance(value, Global):
            return value.module, value.qualname
        if depth > MAX_NAME_DEPTH:
            return None
        if isinstance(value, Attr):
            if value.name is None:
                return None
            if isinstance(value.base, (Global, Attr)):
                base = self.target_name(value.base, depth + 1)
            else:
                base = self.class_name(value.base, depth + 1)
            if base is None:
                return None
            module, qualname = base
            return module, f"{qualname}.{value.name}" if qualname else value.name
        if isinstance(value, Call) and value.state is None:  # BUILD may swap what a wrapper calls
            signature = self._signature(value.func)
            if signature is not None and signature.wraps is not None:
                return self.target_name(_arg(value.args, signature.wraps), depth + 1)
        return None

    def class_name(self, value: Any, depth: int = 0) -> Name | None:
        """The class an instance was made from, when it can be named."""
        if isinstance(value, Instance):
            return self.target_name(value.cls, depth + 1)
        if isinstance(value, Call):
            name = self.target_name(value.func, depth + 1)
            returns = self.policy.signature_of(name).returns if name is not None else None
            if returns is not None:
                module, _, qualname = returns.partition(":")
                return module, qualname
            return name
        if isinstance(value, Seq):
            return "builtins", value.kind
        if is_constant(value) and not isinstance(value, Blob) and value is not None:
            return "builtins", type(value).__name__
        return None

    def _signature(self, func: Any) -> Signature | None:
        name = self.target_name(func) if isinstance(func, (Global, Attr)) else None
        return None if name is None else self.policy.signature_of(name)

    def make_global(self, module: str, qualname: str, opcode: str) -> Global:
        if not _importable(module, qualname):
            # The loader's import or attribute lookup fails here, and the load stops.
            raise Malformed(f"{opcode} names {module!r} {qualname!r}, which cannot be imported", self.offset)
        canon_module, canon_qualname = self.policy.canonical(module, qualname)
        spelled = f"{module}.{qualname}" if qualname else module
        value = self.synthesized_global((canon_module, canon_qualname), opcode)
        shown = spelled if spelled != value.dotted else None
        self.observer.reference((canon_module, canon_qualname), self.offset, opcode, shown)
        imported = self.policy.canonical(module, "")
        if imported[0] != canon_module and not canon_module.startswith(imported[0] + "."):
            # Reached through another module's attribute (webbrowser.os.stat_result): the loader still
            # imports that module first, and its top-level code runs.
            self.observer.reference(imported, self.offset, opcode, module)
        return value

    def synthesized_global(self, name: Name, opcode: str) -> Global:
        """A global with its provenance, for names the file reaches (without counting as a reference)."""
        verdict = self.policy.judge(name)
        live = None
        if verdict.status not in (SAFE, BUILD_ONLY):
            denied = verdict.status in (DANGEROUS, INTROSPECTION)
            live = Live(f"{verdict.name}, which is not on the allowlist", self.offset, denied)
        return Global(name[0], name[1], self.offset, opcode, live)

    def materialize(self, value: Any) -> bytes | None:
        """The bytes a value holds, re-reading skipped payloads and folding pure decoders."""
        if isinstance(value, (bytes, bytearray)):
            return bytes(value)
        if isinstance(value, str):
            return value.encode("utf-8", "surrogatepass")
        if isinstance(value, Blob):
            if value.length > self.limits.max_nested_bytes:
                raise LimitExceeded(f"nested payload of {value.length} bytes")
            return self.reader.read_at(value.offset, value.length)
        if isinstance(value, Call):
            if value.folded is None:
                signature = self._signature(value.func)
                if signature is None or signature.folds is None:
                    return None
                value.folded = fold(signature.folds, self.materialize, value.args, self.limits.max_nested_bytes)
            return value.folded
        return None

    # ------------------------------------------------------------- opcodes

    def op_proto(self) -> None:
        if self.reader.byte() > HIGHEST_PROTOCOL:
            raise Malformed("unsupported pickle protocol", self.offset)

    def op_frame(self) -> None:
        length = struct.unpack("<Q", self.reader.read(8))[0]
        remaining = self.reader.remaining()
        if self.frame_end > self.offset:
            message = f"a FRAME starts {self.frame_end - self.offset} bytes before the current frame ends"
            self.observer.anomaly(self.offset, message, "frame-overlap")
        if remaining is not None and length > remaining:
            # CPython's C unpickler stops here, its pure-Python twin (used by joblib) reads on.
            message = f"FRAME announces {length} bytes but {remaining} remain"
            self.observer.anomaly(self.offset, message, "frame-too-long")
        self.frame_end = self.reader.tell() + length if length else 0

    def read_outside_frames(self) -> None:
        """A loader reads raw bytes from the file itself next (joblib arrays): its writer ended the frame first.

        Inside a frame, the real loader would take those bytes from after the frame and run the rest of
        the frame as opcodes, which this emulator does not reorder: a crafted file, reported as such.
        """
        position = self.reader.tell()
        if position < self.frame_end:
            message = f"raw data read {self.frame_end - position} bytes before the end of its FRAME"
            raise Malformed(message, position)
        if self.frame_end:
            self._leave_frame(position)

    def _leave_frame(self, offset: int) -> None:
        if offset > self.frame_end:
            # The pure-Python unpickler (joblib's) stops where an opcode runs past its frame; the C one reads on.
            message = f"an opcode runs {offset - self.frame_end} bytes past the end of its FRAME"
            self.observer.anomaly(self.frame_end, message, "frame-straddle")
        self.frame_end = 0

    def op_stop(self) -> bool:
        return True

    def op_mark(self) -> None:
        self.metastack.append(self.stack)
        self.stack = []

    def op_pop(self) -> None:
        if self.stack:
            self.stack.pop()
        else:
            self._pop_mark()

    def op_pop_mark(self) -> None:
        self._pop_mark()

    def op_dup(self) -> None:
        self.stack.append(self.stack[-1])

    # numbers
    def op_int(self) -> None:
        line = self.reader.readline()
        if line == b"00":
            self.stack.append(False)
        elif line == b"01":
            self.stack.append(True)
        else:
            self.stack.append(_parse_int(line))

    def op_long(self) -> None:
        line = self.reader.readline()
        if line.endswith(b"L"):
            line = line[:-1]
        self.stack.append(_parse_int(line))

    def op_binint(self) -> None:
        self.stack.append(struct.unpack("<i", self.reader.read(4))[0])

    def op_binint1(self) -> None:
        self.stack.append(self.reader.byte())

    def op_binint2(self) -> None:
        self.stack.append(struct.unpack("<H", self.reader.read(2))[0])

    def op_long1(self) -> None:
        size = self.reader.byte()
        self.stack.append(int.from_bytes(self.reader.read(size), "little", signed=True))

    def op_long4(self) -> None:
        size = struct.unpack("<i", self.reader.read(4))[0]
        if size < 0:
            raise Malformed("LONG4 with a negative byte count", self.offset)
        if size > 4096:
            self.reader.skip(size)
            self.stack.append(Opaque(f"integer of {size} bytes"))
        else:
            self.stack.append(int.from_bytes(self.reader.read(size), "little", signed=True))

    def op_float(self) -> None:
        self.stack.append(float(self.reader.readline()))

    def op_binfloat(self) -> None:
        self.stack.append(struct.unpack(">d", self.reader.read(8))[0])

    def op_none(self) -> None:
        self.stack.append(None)

    def op_newtrue(self) -> None:
        self.stack.append(True)

    def op_newfalse(self) -> None:
        self.stack.append(False)

    # strings and bytes
    def op_string(self) -> None:
        data = self.reader.readline()
        if len(data) < 2 or data[0] != data[-1] or data[0] not in b"\"'":
            raise Malformed("STRING argument is not quoted", self.offset)
        self.stack.append(self._text(codecs.escape_decode(data[1:-1])[0]))

    def op_binstring(self) -> None:
        length = struct.unpack("<i", self.reader.read(4))[0]
        value = self._payload("bytes", length)
        self.stack.append(self._text(value) if isinstance(value, bytes) else value)

    def op_short_binstring(self) -> None:
        self.stack.append(self._text(self.reader.read(self.reader.byte())))

    def op_unicode(self) -> None:
        self.stack.append(str(self.reader.readline(), "raw-unicode-escape"))

    def op_binunicode(self) -> None:
        self.stack.append(self._payload("str", struct.unpack("<I", self.reader.read(4))[0]))

    def op_short_binunicode(self) -> None:
        self.stack.append(str(self.reader.read(self.reader.byte()), "utf-8", "surrogatepass"))

    def op_binunicode8(self) -> None:
        self.stack.append(self._payload("str", struct.unpack("<Q", self.reader.read(8))[0]))

    def op_binbytes(self) -> None:
        self.stack.append(self._payload("bytes", struct.unpack("<I", self.reader.read(4))[0]))

    def op_short_binbytes(self) -> None:
        self.stack.append(self.reader.read(self.reader.byte()))

    def op_binbytes8(self) -> None:
        self.stack.append(self._payload("bytes", struct.unpack("<Q", self.reader.read(8))[0]))

    def op_bytearray8(self) -> None:
        value = self._payload("bytearray", struct.unpack("<Q", self.reader.read(8))[0])
        self.stack.append(bytearray(value) if isinstance(value, bytes) else value)

    def op_next_buffer(self) -> None:
        self.stack.append(Opaque("out-of-band buffer"))

    def op_readonly_buffer(self) -> None:
        self.stack[-1]

    # containers
    def op_empty_list(self) -> None:
        self.stack.append(Seq("list"))

    def op_empty_tuple(self) -> None:
        self.stack.append(Seq("tuple"))

    def op_empty_dict(self) -> None:
        self.stack.append(Seq("dict"))

    def op_empty_set(self) -> None:
        self.stack.append(Seq("set"))

    # Pop the MARK frame before touching self.stack: popping it rebinds self.stack.
    def op_list(self) -> None:
        items = self._pop_mark()
        self.stack.append(Seq("list", items))

    def op_tuple(self) -> None:
        items = self._pop_mark()
        self.stack.append(Seq("tuple", items))

    def op_frozenset(self) -> None:
        items = self._pop_mark()
        calls.hash_keys(self, items, "FROZENSET")
        self.stack.append(Seq("frozenset", items))

    def op_dict(self) -> None:
        items = self._pop_mark()
        if len(items) % 2:
            raise Malformed("odd number of items for DICT", self.offset)
        calls.hash_keys(self, items[0::2], "DICT")
        self.stack.append(Seq("dict", items))

    def op_tuple1(self) -> None:
        self.stack[-1] = Seq("tuple", [self.stack[-1]])

    def op_tuple2(self) -> None:
        second = self.stack.pop()
        self.stack[-1] = Seq("tuple", [self.stack[-1], second])

    def op_tuple3(self) -> None:
        third = self.stack.pop()
        second = self.stack.pop()
        self.stack[-1] = Seq("tuple", [self.stack[-1], second, third])

    def _into(self, items: list[Any], opcode: str) -> None:
        target = self.stack[-1]
        if is_constant(target):
            raise Malformed(f"{opcode} into a {type(target).__name__}, which takes no items", self.offset)
        calls.add_items(self, target, items, opcode)

    def op_append(self) -> None:
        value = self.stack.pop()
        self._into([value], "APPEND")

    def op_appends(self) -> None:
        self._into(self._pop_mark(), "APPENDS")

    def op_setitem(self) -> None:
        value = self.stack.pop()
        key = self.stack.pop()
        self._into([key, value], "SETITEM")

    def op_setitems(self) -> None:
        items = self._pop_mark()
        if len(items) % 2:
            raise Malformed("odd number of items for SETITEMS", self.offset)
        self._into(items, "SETITEMS")

    def op_additems(self) -> None:
        self._into(self._pop_mark(), "ADDITEMS")

    # memo
    def op_get(self) -> None:
        index = _parse_int(self.reader.readline())
        if not isinstance(index, int):
            raise Malformed("GET index too long to be a memo slot", self.offset)
        self.stack.append(self.memo[index])

    def op_binget(self) -> None:
        self.stack.append(self.memo[self.reader.byte()])

    def op_long_binget(self) -> None:
        self.stack.append(self.memo[struct.unpack("<I", self.reader.read(4))[0]])

    def op_put(self) -> None:
        index = _parse_int(self.reader.readline())
        if not isinstance(index, int) or index < 0:
            raise Malformed(f"PUT index {index} unusable", self.offset)
        self._memo_put(index)

    def op_binput(self) -> None:
        self._memo_put(self.reader.byte())

    def op_long_binput(self) -> None:
        self._memo_put(struct.unpack("<I", self.reader.read(4))[0])

    def op_memoize(self) -> None:
        self._memo_put(len(self.memo))

    # globals
    def op_global(self) -> None:
        module, name = self._global_lines("GLOBAL")
        self.stack.append(self.make_global(module, name, "GLOBAL"))

    def _global_lines(self, opcode: str) -> tuple[str, str]:
        """GLOBAL's and INST's module and name lines. A name line cut off by the end of data still makes the
        loaders import the module (they drop its last byte, if any, and look the rest up): that import is
        judged, then the stream is truncated."""
        module = self.reader.readline().decode("utf-8")
        line, complete = self.reader.readline_or_rest()
        if not complete:  # the pure-Python unpickler imports the module even when nothing of the name is left
            self.make_global(module, line[:-1].decode("utf-8", "replace"), opcode)
            raise Truncated("end of data inside a text line")
        return module, line.decode("utf-8")

    def op_stack_global(self) -> None:
        name = self.stack.pop()
        module = self.stack.pop()
        if isinstance(name, str) and isinstance(module, str):
            self.stack.append(self.make_global(module, name, "STACK_GLOBAL"))
            return
        if _plainly_not_str(name) or _plainly_not_str(module):
            raise Malformed("STACK_GLOBAL requires two strings", self.offset)
        # A name computed at load time (the result of a call): the scanner cannot say what it imports.
        self.observer.computed_global(self.offset, "STACK_GLOBAL on a module or name computed at load time")
        live = Live("a global whose name is computed at load time", self.offset)
        self.stack.append(Opaque("computed global", live))

    def _ext(self, code: int) -> None:
        if code <= 0:
            raise Malformed("EXT code must be positive", self.offset)
        self.observer.extension(code, self.offset)
        self.stack.append(Ext(code, self.offset))

    def op_ext1(self) -> None:
        self._ext(self.reader.byte())

    def op_ext2(self) -> None:
        self._ext(struct.unpack("<H", self.reader.read(2))[0])

    def op_ext4(self) -> None:
        self._ext(struct.unpack("<i", self.reader.read(4))[0])

    # calls and objects
    def op_reduce(self) -> None:
        args = self.stack.pop()
        self.stack[-1] = calls.invoke(self, self.stack[-1], args, "REDUCE")

    def op_newobj(self) -> None:
        args = self.stack.pop()
        self.stack[-1] = calls.new_object(self, self.stack[-1], args, None, "NEWOBJ")

    def op_newobj_ex(self) -> None:
        kwargs = self.stack.pop()
        args = self.stack.pop()
        self.stack[-1] = calls.new_object(self, self.stack[-1], args, kwargs, "NEWOBJ_EX")

    def op_obj(self) -> None:
        items = self._pop_mark()
        cls = items.pop(0)
        # cls(*args) unless cls is a class and there are no args; unknowable here, so a call.
        self.stack.append(calls.invoke(self, cls, Seq("tuple", items), "OBJ"))

    def op_inst(self) -> None:
        module, name = self._global_lines("INST")
        cls = self.make_global(module, name, "INST")
        args = Seq("tuple", self._pop_mark())
        self.stack.append(calls.invoke(self, cls, args, "INST"))

    def op_build(self) -> None:
        state = self.stack.pop()
        target = self.stack[-1]
        if is_constant(target):
            raise Malformed(f"BUILD on a {type(target).__name__}, which has no state to set", self.offset)
        name = self.class_name(target) or self.target_name(target)
        calls.set_state(self, target, state, name)
        target.state = state
        if name is not None:
            hook = self.build_hooks.get(dotted(name))
            if hook is not None:
                self.stack[-1] = hook(self, target, state)

    def op_persid(self) -> None:
        pid = self.reader.readline().decode("ascii")
        self.stack.append(Persistent(pid))

    def op_binpersid(self) -> None:
        pid = self.stack[-1]
        calls.check_data(self, pid, "handed to the loader's persistent_load", "BINPERSID")
        self.stack[-1] = _persistent_object(pid)


def _build_table() -> list[Callable[[Machine], bool | None] | None]:
    table: list[Callable[[Machine], bool | None] | None] = [None] * 256
    m = Machine
    ops = {
        b"(": m.op_mark,
        b".": m.op_stop,
        b"0": m.op_pop,
        b"1": m.op_pop_mark,
        b"2": m.op_dup,
        b"F": m.op_float,
        b"I": m.op_int,
        b"J": m.op_binint,
        b"K": m.op_binint1,
        b"L": m.op_long,
        b"M": m.op_binint2,
        b"N": m.op_none,
        b"P": m.op_persid,
        b"Q": m.op_binpersid,
        b"R": m.op_reduce,
        b"S": m.op_string,
        b"T": m.op_binstring,
        b"U": m.op_short_binstring,
        b"V": m.op_unicode,
        b"X": m.op_binunicode,
        b"a": m.op_append,
        b"b": m.op_build,
        b"c": m.op_global,
        b"d": m.op_dict,
        b"}": m.op_empty_dict,
        b"e": m.op_appends,
        b"g": m.op_get,
        b"h": m.op_binget,
        b"i": m.op_inst,
        b"j": m.op_long_binget,
        b"l": m.op_list,
        b"]": m.op_empty_list,
        b"o": m.op_obj,
        b"p": m.op_put,
        b"q": m.op_binput,
        b"r": m.op_long_binput,
        b"s": m.op_setitem,
        b"t": m.op_tuple,
        b")": m.op_empty_tuple,
        b"u": m.op_setitems,
        b"G": m.op_binfloat,
        b"\x80": m.op_proto,
        b"\x81": m.op_newobj,
        b"\x82": m.op_ext1,
        b"\x83": m.op_ext2,
        b"\x84": m.op_ext4,
        b"\x85": m.op_tuple1,
        b"\x86": m.op_tuple2,
        b"\x87": m.op_tuple3,
        b"\x88": m.op_newtrue,
        b"\x89": m.op_newfalse,
        b"\x8a": m.op_long1,
        b"\x8b": m.op_long4,
        b"B": m.op_binbytes,
        b"C": m.op_short_binbytes,
        b"\x8c": m.op_short_binunicode,
        b"\x8d": m.op_binunicode8,
        b"\x8e": m.op_binbytes8,
        b"\x8f": m.op_empty_set,
        b"\x90": m.op_additems,
        b"\x91": m.op_frozenset,
        b"\x92": m.op_newobj_ex,
        b"\x93": m.op_stack_global,
        b"\x94": m.op_memoize,
        b"\x95": m.op_frame,
        b"\x96": m.op_bytearray8,
        b"\x97": m.op_next_buffer,
        b"\x98": m.op_readonly_buffer,
    }
    for code, handler in ops.items():
        table[code[0]] = handler
    return table


_TABLE = _build_table()


def _arg(args: Any, index: int) -> Any:
    if isinstance(args, Seq) and index < len(args.items):
        return args.items[index]
    return None


def _importable(module: str, qualname: str) -> bool:
    if not module or not all(part.isidentifier() for part in module.split(".")):
        return False
    return not qualname or all(part.isidentifier() for part in qualname.split("."))


def _persistent_object(pid: Any) -> Any:
    """What the loader's persistent_load returns. Legacy torch.save refers to a module class as
    ('module', cls, source file, source) and gets the class back; anything else is the loader's object."""
    if isinstance(pid, Seq) and pid.kind == "tuple" and len(pid.items) == 4 and pid.items[0] == "module":
        if isinstance(pid.items[1], Global):
            return pid.items[1]
    return Persistent(pid)


def _parse_int(line: bytes) -> int | Opaque:
    text = line.strip()
    if len(text) > 4000:
        return Opaque(f"integer of {len(text)} digits")
    return int(text, 0) if text[:2].lower() in (b"0x", b"0o", b"0b") else int(text)


def _plainly_not_str(value: Any) -> bool:
    """True for values that certainly are not str at load time (the loader then fails)."""
    return isinstance(value, (bytes, bytearray, int, float, type(None), Seq, Blob, Persistent, Ext))
