"""Symbolic values on the emulated pickle stack, each with its provenance.

Small constants (int, float, str, bytes, bool, None) are kept as themselves. Everything
the real unpickler would build by importing or calling is represented by what it came
from, so that later calls on it can be judged by the object they actually reach.

Every object also says whether it is *live*: an object whose own code the scanner has not
reviewed (an instance of an unlisted class, an unknown global, anything computed at load
time). Calling, hashing, iterating, converting or setting state on a live object runs that
code, so the machine reports every such use; inert objects are constants, built-in
containers and objects of allowlisted types, whose dunders are library code.
"""

from __future__ import annotations

from typing import Any

# Containers keep this many items for evidence and argument analysis; the rest are counted.
KEEP_ITEMS = 256


class Live:
    """Why a value is live: what it is, where it was made, and whether a denied primitive is behind it."""

    __slots__ = ("critical", "offset", "what")

    def __init__(self, what: str, offset: int, critical: bool = False) -> None:
        self.what = what
        self.offset = offset
        self.critical = critical


class Global:
    """An object fetched by GLOBAL, STACK_GLOBAL, INST or a resolver such as getattr."""

    __slots__ = ("live", "module", "offset", "opcode", "qualname", "state")

    def __init__(self, module: str, qualname: str, offset: int, opcode: str, live: Live | None = None) -> None:
        self.module = module
        self.qualname = qualname
        self.offset = offset
        self.opcode = opcode
        self.state: Any = None
        self.live = live  # set for globals that are not on the allowlist

    @property
    def dotted(self) -> str:
        return f"{self.module}.{self.qualname}" if self.qualname else self.module


class Ext:
    """A global named only by a copyreg extension code (EXT1/2/4)."""

    __slots__ = ("code", "live", "offset", "state")

    def __init__(self, code: int, offset: int) -> None:
        self.code = code
        self.offset = offset
        self.state: Any = None
        self.live = Live(f"the object registered under extension code {code}", offset)


class Call:
    """The result of calling ``func`` with ``args`` (REDUCE, INST, OBJ)."""

    __slots__ = ("added", "args", "folded", "func", "live", "offset", "opcode", "state")

    def __init__(self, func: Any, args: Any, offset: int, opcode: str, live: Live | None) -> None:
        self.func = func
        self.args = args
        self.offset = offset
        self.opcode = opcode
        self.state: Any = None
        self.folded: Any = None  # the constant result of a pure decoder, once computed
        self.live = live  # None when the callable is allowlisted and was called within its signature
        self.added: list[Any] | None = None  # objects put in by SETITEM/APPEND (a library container)


class Instance:
    """An object made by ``cls.__new__`` only (NEWOBJ, NEWOBJ_EX, copyreg reconstructors)."""

    __slots__ = ("added", "cls", "live", "offset", "opcode", "state")

    def __init__(self, cls: Any, offset: int, opcode: str, live: Live | None) -> None:
        self.cls = cls
        self.offset = offset
        self.opcode = opcode
        self.state: Any = None
        self.live = live  # None when the class is allowlisted
        self.added: list[Any] | None = None


class Attr:
    """``getattr(base, name)`` where the name is known; ``name`` is None when it was computed."""

    __slots__ = ("base", "live", "name", "offset", "state")

    def __init__(self, base: Any, name: str | None, offset: int, live: Live | None) -> None:
        self.base = base
        self.name = name
        self.offset = offset
        self.state: Any = None
        self.live = live


class Seq:
    """list, tuple, dict (flat key/value pairs), set or frozenset, with its first items.

    Items beyond KEEP_ITEMS are counted in ``dropped``; the objects among them (anything but a
    constant) are still kept in ``extra``, because whether they are live matters to every use.
    """

    __slots__ = ("dropped", "extra", "items", "kind", "state")

    def __init__(self, kind: str, items: list[Any] | None = None) -> None:
        self.kind = kind
        self.items: list[Any] = []
        self.extra: list[Any] | tuple[()] = ()  # a list once needed: most containers stay small
        self.dropped = 0
        self.state: Any = None
        if items:
            self.extend(items)

    def extend(self, values: list[Any]) -> None:
        room = KEEP_ITEMS - len(self.items)
        if room >= len(values):
            self.items.extend(values)
            return
        if room > 0:
            self.items.extend(values[:room])
        beyond = values[max(room, 0) :]
        self.dropped += len(beyond)
        kept = [value for value in beyond if not is_constant(value)]
        if kept:
            if isinstance(self.extra, tuple):
                self.extra = kept
            else:
                self.extra.extend(kept)

    @property
    def count(self) -> int:
        return len(self.items) + self.dropped

    def get(self, key: str) -> Any:
        """Value for a string key of a dict, or None."""
        items = self.items
        for i in range(0, len(items) - 1, 2):
            if items[i] == key:
                return items[i + 1]
        return None


class Blob:
    """A byte or text payload too large to keep; it stays in the stream at ``offset``."""

    __slots__ = ("kind", "length", "offset")

    def __init__(self, kind: str, offset: int, length: int) -> None:
        self.kind = kind  # "bytes", "str" (UTF-8 encoded in the stream) or "bytearray"
        self.offset = offset
        self.length = length


class Persistent:
    """The object a loader's persistent_load returns for an id (PyTorch storages)."""

    __slots__ = ("live", "pid", "state")

    def __init__(self, pid: Any) -> None:
        self.pid = pid
        self.state: Any = None
        self.live: Live | None = None  # the loader's own object (a PyTorch storage)


class Opaque:
    """A value the emulator does not model (huge numbers, out-of-band buffers)."""

    __slots__ = ("live", "state", "what")

    def __init__(self, what: str, live: Live | None = None) -> None:
        self.what = what
        self.state: Any = None
        self.live = live  # None for data the emulator skips (huge integers, buffers, arrays)


def is_constant(value: Any) -> bool:
    return value is None or isinstance(value, (bool, int, float, str, bytes, bytearray, Blob))


def describe(value: Any, depth: int = 0) -> str:
    """A short, bounded rendering for evidence; never recurses without limit."""
    if depth > 3:
        return "..."
    if isinstance(value, (str, bytes, bytearray)):
        text = repr(value if len(value) <= 120 else value[:117])
        return text if len(value) <= 120 else text + "..."
    if value is None or isinstance(value, (bool, int, float)):
        return repr(value)
    if isinstance(value, Global):
        return value.dotted
    if isinstance(value, Call):
        return f"{describe(value.func, depth + 1)}{describe(value.args, depth + 1)}"
    if isinstance(value, Instance):
        return f"<new {describe(value.cls, depth + 1)}>"
    if isinstance(value, Attr):
        return f"{describe(value.base, depth + 1)}.{value.name or '<computed>'}"
    if isinstance(value, Seq):
        return _describe_seq(value, depth)
    if isinstance(value, Blob):
        return f"<{value.kind} of {value.length} bytes at {value.offset}>"
    if isinstance(value, Ext):
        return f"<extension code {value.code}>"
    if isinstance(value, Persistent):
        return f"<persistent {describe(value.pid, depth + 1)}>"
    if isinstance(value, Opaque):
        return f"<{value.what}>"
    return "<?>"


def _describe_seq(seq: Seq, depth: int) -> str:
    shown = seq.items[:8]
    more = len(seq.items) - len(shown) + seq.dropped
    if seq.kind == "dict":
        parts = [
            f"{describe(shown[i], depth + 1)}: {describe(shown[i + 1], depth + 1)}" for i in range(0, len(shown) - 1, 2)
        ]
    else:
        parts = [describe(v, depth + 1) for v in shown]
    if more:
        parts.append(f"... {more} more")
    body = ", ".join(parts)
    if seq.kind == "tuple":
        return f"({body}{',' if len(parts) == 1 and not more else ''})"
    if seq.kind == "list":
        return f"[{body}]"
    if seq.kind == "dict":
        return "{" + body + "}"
    return f"{seq.kind}({{{body}}})"
