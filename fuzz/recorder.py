"""What a real load does, recorded inside a throwaway worker process.

A zygote process imports the libraries whose names the allowlists hold, resolves every allowlisted
name to its object, and then forks one worker per connection. The worker installs an audit hook that
records and blocks (by raising) every process, code-evaluation, file-write, network, ctypes and
unexpected-import event, and loads each case twice:

  1. with the pure-Python ``pickle._Unpickler`` under ``sys.setprofile``, its dispatch wrapped so that
     every callable the unpickler invokes (REDUCE, OBJ, INST, NEWOBJ, BUILD's __setstate__, the item
     methods of APPEND/SETITEM/ADDITEMS) is judged against the claim by identity;
  2. with the C ``pickle.Unpickler``, under the audit hook only.

The profiler judges every Python-level call the unpickler makes without naming it (``__hash__`` of a key,
``__setstate__``, ``__init_subclass__``, metaclass ``__new__``, ``__len__`` of BUILD's state, ...) by the
class whose code runs: allowlisted classes (and, for the methods BUILD and the item opcodes use, classes
reported MEDIUM) may run their own code, nothing else may. While an allowlisted callable runs, the calls it
makes back into Python are judged only when the file chose them: code of a class (or of a base of a class)
that the file put on the stack, or a function it put there. Module bodies (imports) are left to the
audit hook.

Modules, classes, functions and module-level objects that appear on the unpickler's stack are snapshotted
when they appear and compared after the load; every SWEEP_EVERY cases the worker also compares a
fingerprint of all module namespaces. A worker exits after a case that went outside the claim, had an
operation blocked, started a thread or raised an unusual exception (memory, recursion, OS errors, exits),
and after ``--recycle-every`` cases; the oracle then connects again and the zygote forks a fresh one.

This module never runs in the oracle's own process except to start the zygote.
"""

from __future__ import annotations

import ast
import builtins
import contextlib
import functools
import importlib
import io
import json
import marshal
import os
import pickle
import resource
import select
import signal
import socket
import struct
import sys
import tempfile
import threading
import time
import types
import warnings
from collections.abc import Iterator
from typing import Any, ClassVar

_ident = object.__hash__  # identity without builtins.id, which fires an audit event on every call
_type_dict = type.__dict__["__dict__"].__get__
_type_mro = type.__dict__["__mro__"].__get__
_module_dict = types.ModuleType.__dict__["__dict__"].__get__
_function_dict = types.FunctionType.__dict__["__dict__"].__get__

PICKLE_FILE = pickle.__file__
BOOTSTRAP_FILES = ("<frozen importlib._bootstrap>", "<frozen importlib._bootstrap_external>")
_SKIP_FILES = frozenset({*BOOTSTRAP_FILES, PICKLE_FILE})  # the import system and the unpickler itself
MAX_STATE_GLOBALS = 5_000  # names looked at per namespace when telling library state from the file's objects
CASE_TIMEOUT = 2.0  # seconds of Python-level work per load before the timer interrupts it
MEMORY_HEADROOM = 2 << 30  # address space a worker may add to what it inherited
SWEEP_EVERY = 1024  # cases between two fingerprints of every module namespace (one costs ~0.25 s)
MAX_PICKLES = 8  # pickles read back to back from one case, as a loader calling load() repeatedly does
MAX_EVENTS = 64  # violations and notes kept per case

# Methods a class named in a MEDIUM finding may run: its __new__ and its own state and item methods.
# The attribute hooks are part of BUILD's mechanics: it looks __setstate__ up (__getattribute__, __getattr__)
# and sets slot state with setattr (__setattr__).
MEDIUM_METHODS = frozenset(
    {
        *("__new__", "__setstate__", "__setitem__", "append", "extend", "add"),
        *("__getattr__", "__getattribute__", "__setattr__"),
        "__del__",  # the class's own finalizer, run when the object it made is dropped
    }
)
# Methods of the built-in containers the unpickler fills: C code that runs nothing of the file's.
BUILTIN_CONTAINERS = (dict, list, set, bytearray, object)
# Keys the interpreter itself adds to namespaces while code runs (not a mutation by the file).
IGNORED_KEYS = frozenset({"__warningregistry__", "__annotations__", "__slotnames__", "__abstractmethods__"})

# --------------------------------------------------------------- audit events

_EXACT_EVENTS = {
    "os.system": "process",
    "os.exec": "process",
    "os.spawn": "process",
    "os.posix_spawn": "process",
    "os.fork": "process",
    "os.forkpty": "process",
    "os.kill": "process",
    "os.killpg": "process",
    "os.startfile": "process",
    "os.add_dll_directory": "process",
    "subprocess.Popen": "process",
    "pty.spawn": "process",
    "signal.pthread_kill": "process",
    "resource.setrlimit": "process",
    "resource.prlimit": "process",
    "exec": "exec",
    "compile": "exec",
    "code.__new__": "exec",
    "function.__new__": "exec",
    "builtins.breakpoint": "exec",
    "builtins.input": "exec",
    "cpython.run_command": "exec",
    "cpython.run_module": "exec",
    "cpython.run_file": "exec",
    "cpython.run_startup": "exec",
    "cpython.run_interactivehook": "exec",
    "cpython.run_stdin": "exec",
    "cpython._PySys_ClearAuditHooks": "tracing",
    "os.remove": "file-write",
    "os.rename": "file-write",
    "os.rmdir": "file-write",
    "os.mkdir": "file-write",
    "os.chmod": "file-write",
    "os.chown": "file-write",
    "os.chflags": "file-write",
    "os.lchflags": "file-write",
    "os.link": "file-write",
    "os.symlink": "file-write",
    "os.truncate": "file-write",
    "os.utime": "file-write",
    "os.setxattr": "file-write",
    "os.removexattr": "file-write",
    "os.putenv": "environment",
    "os.unsetenv": "environment",
    "os.chdir": "environment",
    "tempfile.mkstemp": "file-write",
    "tempfile.mkdtemp": "file-write",
    "sqlite3.connect": "file-write",
    "mmap.__new__": "file-write",
    "sys.settrace": "tracing",
    "sys.setprofile": "tracing",
    "sys.addaudithook": "tracing",
    "sys._current_frames": "tracing",
    "sys._current_exceptions": "tracing",
    "sys.set_asyncgen_hooks_firstiter": "tracing",
    "sys.set_asyncgen_hooks_finalizer": "tracing",
    "gc.get_objects": "introspection",
    "gc.get_referrers": "introspection",
    "gc.get_referents": "introspection",
    "marshal.loads": "exec",
    "marshal.load": "exec",
    "urllib.Request": "network",
    "webbrowser.open": "process",
}
_PREFIX_EVENTS = {
    "socket": "network",
    "ctypes": "ctypes",
    "shutil": "file-write",
    "http": "network",
    "ftplib": "network",
    "smtplib": "network",
    "poplib": "network",
    "imaplib": "network",
    "nntplib": "network",
    "telnetlib": "network",
    "syslog": "environment",
    "fcntl": "environment",
    "winreg": "environment",
    "msvcrt": "environment",
    "_winapi": "process",
}
# Events an import legitimately raises while it loads and runs a module's code.
IMPORT_EXEC_EVENTS = frozenset({"exec", "compile", "marshal.loads", "function.__new__", "code.__new__"})
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND


class Blocked(Exception):
    """Raised by the audit hook to stop an operation outside the claim."""


class CaseTimeout(BaseException):
    """Raised by the per-case timer; a BaseException so that library ``except Exception`` lets it through."""


def classify(event: str) -> str | None:
    category = _EXACT_EVENTS.get(event)
    if category is None:
        category = _PREFIX_EVENTS.get(event.partition(".")[0])
    return category


def _writes(args: tuple) -> bool:
    mode = args[1] if len(args) > 1 else None
    flags = args[2] if len(args) > 2 else None
    if isinstance(mode, str) and any(c in mode for c in "wax+"):
        return True
    return isinstance(flags, int) and bool(flags & _WRITE_FLAGS)


# ----------------------------------------------------------------- trust tables


class Trust:
    """The allowlists, resolved to the objects they name in this process (built once, in the zygote)."""

    def __init__(self) -> None:
        self.call_keys: set[Any] = set()  # call_key() of every callable on the call allowlist
        self.class_ids: set[int] = set()  # allowlisted classes (call or build): their own code is library code
        self.direct_codes: set[int] = set()  # code of allowlisted Python functions
        self.boundary_codes: set[int] = set()  # code an allowlisted callable or class runs on the file's behalf
        self.module_names: set[str] = set()  # dotted prefixes of every allowlisted name
        self.holders: dict[int, tuple[dict, Any]] = {}  # module-level containers: id -> (namespace, key)
        self.resolvers: set[int] = set()  # allowlisted callables whose result is fetched by name (getattr)
        self.unresolved: list[str] = []
        self.keep: list[Any] = []  # keeps every object whose identity is used alive

    def build(self, allow_call: frozenset[str], allow_build: frozenset[str]) -> None:
        for tier, names in (("call", allow_call), ("build", allow_build)):
            for dotted in sorted(names):
                parts = dotted.split(".")
                for end in range(1, len(parts)):
                    self.module_names.add(".".join(parts[:end]))
                obj = resolve(dotted)
                if obj is _MISSING:
                    self.unresolved.append(dotted)
                    continue
                self.keep.append(obj)
                if tier == "call":
                    self.call_keys.add(call_key(obj))
                    if dotted in RESOLVERS:
                        self.resolvers.add(_ident(obj))
                if isinstance(obj, type):
                    self.class_ids.add(_ident(obj))
                    self._class_codes(obj)
                else:
                    codes: set[int] = set()
                    _codes_of(obj, codes, self.keep)
                    self.direct_codes |= codes
        self.boundary_codes |= self.direct_codes

    def _class_codes(self, cls: type) -> None:
        for klass in (*_type_mro(cls), *_type_mro(type(cls))):
            for value in _type_dict(klass).values():
                _codes_of(value, self.boundary_codes, self.keep)

    def index_holders(self) -> None:
        """Mutable objects held by module namespaces (and by classes found there), to snapshot on sight."""
        for module in list(sys.modules.values()):
            if type(module) is not types.ModuleType:
                continue
            namespace = _module_dict(module)
            for key, value in list(namespace.items()):
                self._hold(namespace, key, value)
                if isinstance(value, type) and getattr(value, "__module__", None) == module.__name__:
                    with contextlib.suppress(Exception):
                        class_dict = _type_dict(value)
                        for ckey, cvalue in list(class_dict.items()):
                            if isinstance(cvalue, (dict, list, set, bytearray)):
                                self.holders[_ident(cvalue)] = (class_dict, ckey)

    def _hold(self, namespace: dict, key: Any, value: Any) -> None:
        if value is None or isinstance(value, _NOT_HELD):
            return
        self.holders[_ident(value)] = (namespace, key)


_MISSING = object()
RESOLVERS = frozenset(
    {
        "builtins.getattr",
        "cloudpickle.cloudpickle.subimport",
        "dill._dill._import_module",
        "dill._dill._load_type",
        "cloudpickle.cloudpickle._builtin_type",
    }
)
_NOT_HELD = (
    types.ModuleType,
    type,
    types.FunctionType,
    types.BuiltinFunctionType,
    types.MethodDescriptorType,
    types.WrapperDescriptorType,
    str,
    bytes,
    int,
    float,
    complex,
    tuple,
    frozenset,
)


def resolve(dotted: str) -> Any:
    """The object a dotted name names, importing its longest importable module prefix."""
    parts = dotted.split(".")
    for end in range(len(parts), 0, -1):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                obj: Any = importlib.import_module(".".join(parts[:end]))
        except Exception:  # noqa: BLE001 - a missing or broken optional library: the name stays unresolved
            continue
        try:
            for attr in parts[end:]:
                obj = getattr(obj, attr)
        except AttributeError:
            return _MISSING
        return obj
    return _MISSING


def call_key(obj: Any, depth: int = 0) -> Any:
    """What calling ``obj`` calls, as a hashable identity: partials by what they wrap, bound methods by
    (owner, name), everything else by itself."""
    kind = type(obj)
    if kind is functools.partial and depth < 16:
        return call_key(obj.func, depth + 1)
    if kind is types.BuiltinFunctionType:
        owner = obj.__self__
        if owner is None or type(owner) is types.ModuleType:
            return _ident(obj)
        return ("method", _ident(owner), obj.__name__)
    if kind is types.MethodType:
        return ("method", _ident(obj.__self__), _ident(obj.__func__))
    return _ident(obj)


def _codes_of(value: Any, out: set[int], keep: list[Any], depth: int = 0) -> None:
    """Code objects a class attribute or function runs (through decorators, properties, wrappers)."""
    if depth > 6:
        return
    kind = type(value)
    if kind in (staticmethod, classmethod):
        _codes_of(value.__func__, out, keep, depth + 1)
    elif kind is property:
        for accessor in (value.fget, value.fset, value.fdel):
            if accessor is not None:
                _codes_of(accessor, out, keep, depth + 1)
    elif kind is functools.cached_property:
        _codes_of(value.func, out, keep, depth + 1)
    elif kind is types.MethodType:
        _codes_of(value.__func__, out, keep, depth + 1)
    elif kind is functools.partial:
        _codes_of(value.func, out, keep, depth + 1)
    elif isinstance(value, types.FunctionType):
        code = value.__code__
        keep.append(code)
        out.add(_ident(code))
        for const in code.co_consts:  # comprehensions and nested helpers of the function
            if type(const) is types.CodeType:
                keep.append(const)
                out.add(_ident(const))
        wrapped = _function_dict(value).get("__wrapped__")
        if wrapped is not None:
            _codes_of(wrapped, out, keep, depth + 1)


def _pickle_codes() -> set[int]:
    """Every code object of pickle.py: frames there are the unpickler itself."""
    found: set[int] = set()
    stack = [value for value in vars(pickle).values()]
    for cls in (pickle._Unpickler, pickle._Unframer):
        stack.extend(vars(cls).values())
    seen: list[Any] = []
    while stack:
        value = stack.pop()
        code = getattr(value, "__code__", None) if isinstance(value, types.FunctionType) else value
        if type(code) is types.CodeType and code.co_filename == PICKLE_FILE:
            seen.append(code)
            found.add(_ident(code))
            stack.extend(c for c in code.co_consts if type(c) is types.CodeType)
    _KEEP.extend(seen)
    return found


_KEEP: list[Any] = []
TRUST = Trust()
BASELINE: dict[str, int] = {}  # module fingerprints taken in the zygote, which every worker starts from
DIRECT_CODES: set[int] = set()
HARNESS_CODES: set[int] = set()
INFRA_CODES: set[int] = set()  # the ABC machinery: isinstance() on an ABC walks its registry and subclass hooks


def _infra_codes() -> set[int]:
    import _collections_abc
    import abc

    found: set[int] = set()
    for value in vars(abc.ABCMeta).values():
        _codes_of(value, found, _KEEP)
    for value in vars(_collections_abc).values():
        if isinstance(value, type):
            hook = vars(value).get("__subclasshook__")
            if hook is not None:
                _codes_of(hook, found, _KEEP)
    return found


def _harness_codes() -> set[int]:
    found: set[int] = set()
    stack: list[Any] = []
    for value in list(globals().values()):
        if isinstance(value, types.FunctionType) and value.__module__ == __name__:
            stack.append(value.__code__)
        elif isinstance(value, type) and value.__module__ == __name__:
            for attr in vars(value).values():
                func = attr.__func__ if isinstance(attr, (staticmethod, classmethod)) else attr
                if isinstance(func, types.FunctionType):
                    stack.append(func.__code__)
    while stack:
        code = stack.pop()
        _KEEP.append(code)
        found.add(_ident(code))
        stack.extend(c for c in code.co_consts if type(c) is types.CodeType)
    return found


# ------------------------------------------------------------------- snapshots


def summarize(obj: Any) -> Any:
    """A comparable picture of what a load could change in ``obj``, by identity of every value."""
    kind = type(obj)
    if issubclass(kind, types.ModuleType):
        return ("module", _ident(kind), _pairs(_module_dict(obj)))
    if issubclass(kind, type):
        extra = (
            _ident(type.__dict__["__bases__"].__get__(obj)),
            type.__dict__["__name__"].__get__(obj),
            type.__dict__["__qualname__"].__get__(obj),
        )
        return ("class", extra, _pairs(_type_dict(obj)))
    if kind is types.FunctionType:
        parts = (obj.__code__, obj.__defaults__, obj.__kwdefaults__, obj.__name__, obj.__qualname__, obj.__module__)
        return ("function", tuple(_ident(p) for p in parts), _pairs(_function_dict(obj)))
    if issubclass(kind, dict):
        return ("dict", _pairs(obj))
    if issubclass(kind, (list, tuple)):
        return ("list", tuple(_ident(v) for v in list.__iter__(obj) if kind is not tuple))
    if issubclass(kind, (set, frozenset)):
        return ("set", frozenset(_ident(v) for v in set.__iter__(obj) if kind is not frozenset))
    if issubclass(kind, bytearray):
        return ("bytes", bytes(obj))
    try:
        namespace = object.__getattribute__(obj, "__dict__")
    except Exception:  # noqa: BLE001 - an object without a namespace has nothing we can compare
        return ("opaque",)
    return ("object", _pairs(namespace) if type(namespace) is dict else ())


def _pairs(mapping: Any) -> tuple:
    return tuple((_ident(k), _ident(v)) for k, v in mapping.items())


def describe_change(obj: Any, before: Any, after: Any) -> str:
    name = safe_name(obj)
    if before[0] in ("module", "class", "function", "dict", "object") and len(before) == len(after):
        old, new = dict(before[-1]), dict(after[-1])
        keys = {k for k in set(old) | set(new) if old.get(k) != new.get(k)}
        shown = [_key_text(obj, k) for k in list(keys)[:5]]
        return f"{name}: {', '.join(shown) or 'identity fields'} changed"
    return f"{name} changed"


def _key_text(obj: Any, key_id: int) -> str:
    namespace = _namespace_of(obj)
    if namespace is not None:
        for key in list(namespace):
            if _ident(key) == key_id:
                return repr(key)[:60]
    return "<key>"


def _namespace_of(obj: Any) -> Any:
    kind = type(obj)
    try:
        if issubclass(kind, types.ModuleType):
            return _module_dict(obj)
        if issubclass(kind, type):
            return _type_dict(obj)
        if kind is types.FunctionType:
            return _function_dict(obj)
        if issubclass(kind, dict):
            return obj
        namespace = object.__getattribute__(obj, "__dict__")
        return namespace if type(namespace) is dict else None
    except Exception:  # noqa: BLE001
        return None


def _benign_addition(obj: Any, before: Any, after: Any) -> bool:
    """Only new keys, each a submodule registered on its package or an interpreter-maintained key."""
    if before[0] not in ("module", "dict", "class") or before[:-1] != after[:-1]:
        return False
    old = dict(before[-1])
    namespace = _namespace_of(obj)
    if namespace is None:
        return False
    for key, value in list(namespace.items()):
        key_id = _ident(key)
        if key_id in old:
            if old[key_id] != _ident(value):
                return False
            continue
        if key in IGNORED_KEYS:
            continue
        if type(value) is types.ModuleType and isinstance(key, str):
            if value.__name__ == key or value.__name__.endswith("." + key):
                continue
        return False
    return len(namespace) >= len(old)


def safe_name(obj: Any) -> str:
    """module.qualname of an object, read without running any of its code."""
    kind = type(obj)
    try:
        if issubclass(kind, type):
            module = _type_dict(obj).get("__module__", "?")
            return f"{module}.{type.__dict__['__qualname__'].__get__(obj)}"
        if issubclass(kind, types.ModuleType):
            return f"<module {_module_dict(obj).get('__name__', '?')}>"
        if kind is types.FunctionType:
            return f"{obj.__module__}.{obj.__qualname__}"
        if kind is types.BuiltinFunctionType:
            owner = obj.__self__
            if owner is None or type(owner) is types.ModuleType:
                return f"{getattr(owner, '__name__', 'builtins')}.{obj.__name__}"
            return f"{safe_name(owner)}.{obj.__name__}"
        if kind is functools.partial:
            return f"functools.partial({safe_name(obj.func)})"
        if kind is types.MethodType:
            return f"{safe_name(obj.__self__)}.{obj.__func__.__name__}"
    except Exception:  # noqa: BLE001
        return f"<{kind.__name__}>"
    module = type.__dict__["__module__"].__get__(kind)
    return f"<{module}.{kind.__qualname__} instance>"


def lookup(cls: type, name: str) -> tuple[type | None, Any]:
    """(the class in cls's MRO whose namespace defines ``name``, the value), without running code."""
    for klass in _type_mro(cls):
        namespace = _type_dict(klass)
        if name in namespace:
            return klass, namespace[name]
    return None, None


# ---------------------------------------------------------------- the case


class Case:
    """What one case is allowed to do, and what it was seen doing."""

    def __init__(self, case_id: Any, modules: list[str], medium: list[str]) -> None:
        self.id = case_id
        self.allowed_modules = set(modules)
        self.medium_names = set(medium)
        self.medium_ids: set[int] = set()
        self.violations: list[dict[str, str]] = []
        self.notes: list[dict[str, str]] = []
        self.seen: set[tuple[str, str]] = set()
        self.snapshots: dict[int, tuple[Any, Any]] = {}
        self.provided_classes: set[int] = set()
        self.provided_bases: dict[int, type] = {}  # every class in the MROs of the provided classes
        self.provided_codes: set[int] = set()
        self.appeared_ids: set[int] = set()  # every object the unpickler put on its stack
        self.data = b""  # the case's bytes: source text compiled by library code is judged against them
        self.library_compiled: set[str] = set()  # file names of sources library code compiled (not the file's)
        self.run = "py"
        self.blocked = False
        self.imported = False
        self.entry_code = 0  # code of the harness frame that runs the load: frame walks stop there
        self.inside = 0  # > 0 while an allowlisted callable runs: its callbacks are judged by provenance
        self.callees: list[Any] = []  # the allowlisted callables (and classes being created) now running
        self.importing = 0  # module bodies now running (imports, which the audit hook judges)

    # ------------------------------------------------------------ recording

    def violate(self, kind: str, what: str, detail: str = "") -> None:
        key = (kind, what)
        if key in self.seen or len(self.violations) >= MAX_EVENTS:
            return
        self.seen.add(key)
        self.violations.append({"kind": kind, "what": what, "detail": detail[:300], "run": self.run})

    def note(self, kind: str, what: str) -> None:
        key = ("note:" + kind, what)
        if key in self.seen or len(self.notes) >= MAX_EVENTS:
            return
        self.seen.add(key)
        self.notes.append({"kind": kind, "what": what, "run": self.run})

    # ------------------------------------------------------------ what the file named

    def resolve_medium(self) -> None:
        """The classes named in MEDIUM findings, by identity, looked up without importing anything."""
        ids = set()
        for dotted in self.medium_names:
            obj = _lookup_loaded(dotted)
            if obj is not _MISSING:
                ids.add(_ident(obj))
        self.medium_ids = ids

    def is_medium(self, key: int) -> bool:
        if key in self.medium_ids:
            return True
        if len(self.medium_ids) < len(self.medium_names):
            self.resolve_medium()
        return key in self.medium_ids

    def enter(self, callee: Any, allowed: bool) -> None:
        if allowed:
            self.inside += 1
            for _ in range(16):  # a partial calls what it wraps
                if type(callee) is not functools.partial:
                    break
                callee = callee.func
            self.callees.append(callee)

    def leave(self, allowed: bool) -> None:
        if allowed:
            self.inside -= 1
            self.callees.pop()

    def provide(self, cls: type) -> None:
        key = _ident(cls)
        if key in self.provided_classes:
            return
        self.provided_classes.add(key)
        for klass in _type_mro(cls):
            if _ident(klass) not in _BUILTIN_BASES:
                self.provided_bases[_ident(klass)] = klass

    def appeared(self, obj: Any, fetched: bool = False) -> None:
        """An object the unpickler just put on its stack: remember what the file can now reach.

        Classes and functions on the stack are the file's choice; so is the class of an object fetched
        from a namespace (GLOBAL, getattr). Objects that allowlisted library code made are not."""
        key = _ident(obj)
        self.appeared_ids.add(key)
        if key in self.snapshots:
            return
        kind = type(obj)
        if issubclass(kind, type):
            self.provide(obj)
            if kind is not type:
                self.provide(kind)  # its metaclass's hooks run when it is subclassed
        elif fetched and type.__dict__["__module__"].__get__(kind) != "builtins":
            self.provide(kind)  # not function, method or builtin types: their code is C
        if kind is types.FunctionType:
            self.provided_codes.add(_ident(obj.__code__))
        elif kind is types.MethodType and type(obj.__func__) is types.FunctionType:
            self.provided_codes.add(_ident(obj.__func__.__code__))
        elif kind is functools.partial:
            self.appeared(obj.func, fetched)
        watched = (
            issubclass(kind, (types.ModuleType, type))
            or kind is types.FunctionType
            or (key in TRUST.holders and _still_held(obj, key))
        )
        if watched:
            with contextlib.suppress(Exception):
                self.snapshots[key] = (obj, summarize(obj))

    def compare_snapshots(self) -> None:
        for obj, before in list(self.snapshots.values()):
            try:
                after = summarize(obj)
            except Exception as exc:  # noqa: BLE001
                self.violate("mutation", safe_name(obj), f"cannot be summarized after the load: {exc!r}")
                continue
            if after != before and not _benign_addition(obj, before, after):
                change = describe_change(obj, before, after)
                if issubclass(type(obj), type) and self.is_medium(_ident(obj)):
                    self.note("medium-code-effect", change)  # a reported class's own code changed its own class
                elif self.library_self_patch(obj, before, after):
                    self.note("library-code-effect", change)
                else:
                    self.violate("mutation", safe_name(obj), change)

    def library_self_patch(self, obj: Any, before: Any, after: Any) -> bool:
        """An allowlisted class whose own library code rewrote it (torch's Optimizer.__setstate__ wraps its
        class's step) with values the file did not provide: the claim is about what the file chooses."""
        if not issubclass(type(obj), type) or _ident(obj) not in TRUST.class_ids or before[0] != "class":
            return False
        old, new = dict(before[-1]), dict(after[-1])
        changed = [new[key] for key in new if old.get(key) != new[key]]
        return not any(value in self.appeared_ids for value in changed)

    def refresh_snapshots(self) -> None:
        for key, (obj, _) in list(self.snapshots.items()):
            with contextlib.suppress(Exception):
                self.snapshots[key] = (obj, summarize(obj))

    # ------------------------------------------------------------ judging calls

    def judge_call(self, func: Any, opcode: str) -> bool:
        """The unpickler calls ``func``: it must be on the call allowlist. True when it is."""
        try:
            key = call_key(func)
        except Exception:  # noqa: BLE001 - an object whose identity we cannot take is not allowlisted
            key = None
        if key in TRUST.call_keys:
            return True
        self.violate("call", safe_name(func), f"{opcode} calls it; it is not on the call allowlist")
        return False

    def judge_new(self, cls: Any, opcode: str) -> bool:
        """The unpickler runs ``cls.__new__``: allowlisted classes and classes named MEDIUM only. True when
        allowed (what that __new__ calls back is then judged by provenance, as for an allowlisted call)."""
        if not issubclass(type(cls), type):
            self.note("new-on-non-class", safe_name(cls))  # its __new__ attribute runs; Python code is profiled
            return False
        key = _ident(cls)
        if key in TRUST.class_ids or self.is_medium(key):
            return True
        self.violate("new", safe_name(cls), f"{opcode} creates it with __new__; not allowlisted nor reported MEDIUM")
        return False

    def judge_method(self, target: Any, name: str, opcode: str) -> None:
        """BUILD, APPEND(S), SETITEM(S), ADDITEMS run ``target.<name>``: whose code is that?"""
        kind = type(target)
        if name == "__setstate__" and not issubclass(kind, (type, types.ModuleType)):
            own = _instance_attribute(target, name)
            if own is not _MISSING:
                self.judge_call(own, f"{opcode} (an instance attribute named {name})")
                return
        provider, _ = lookup(kind, name)
        if provider is None or provider in BUILTIN_CONTAINERS:
            return
        if _ident(provider) in TRUST.class_ids or _ident(kind) in TRUST.class_ids:
            return
        if name in MEDIUM_METHODS and self.is_medium(_ident(kind)):
            return
        self.violate(
            "method", f"{safe_name(provider)}.{name}", f"{opcode} runs it on {safe_name(target)}; not allowlisted code"
        )

    def judge_python_call(self, frame: types.FrameType, code: types.CodeType, direct: bool) -> None:
        """A Python-level call the unpickler (or an allowlisted callable) made without naming it."""
        qualname = code.co_qualname
        owner_name, _, _ = qualname.rpartition(".")
        is_method = bool(owner_name) and not owner_name.endswith("<locals>")
        if not is_method:
            if _ident(code) in self.provided_codes:  # a function the file put on the stack, called back
                self.violate("python-call", f"{frame.f_globals.get('__name__', '?')}.{qualname}", _where(direct, frame))
            return  # library code calling its own helpers (codec search, dispatchers, module __getattr__)
        first = _first_argument(frame, code)
        if first is _MISSING:
            return
        if issubclass(type(first), types.ModuleType) and code.co_name in ("__getattr__", "__getattribute__", "__dir__"):
            return  # a (lazy) module resolving a name: part of fetching a global
        cls = first if issubclass(type(first), type) else type(first)
        key = _ident(cls)
        if _definer(cls, code) is None:  # a static method, or a function handed another object: not cls's code
            if _ident(code) in self.provided_codes:
                self.violate("python-call", f"{frame.f_globals.get('__name__', '?')}.{qualname}", _where(direct, frame))
            return
        if code.co_name == "__del__" and _ident(first) not in self.appeared_ids and not _provided(self, cls, code):
            self.note("finalizer", f"{safe_name(cls)}.__del__")  # garbage from earlier, collected now
            return
        if (not direct or self.inside) and not _provided(self, cls, code):
            return  # a library object the allowlisted code made for itself
        if not direct and first is not cls and _ident(first) not in self.appeared_ids and _library_state(frame, first):
            # An instance the library keeps for itself (pathlib's flavour, dateutil's instance cache), of a
            # class the file merely named: the library runs the same code for any caller.
            self.note("library-state", f"{safe_name(cls)}.{code.co_name}")
            return
        if key in TRUST.class_ids and _code_in_mro(cls, code):
            return
        if self.callees and key == _ident(type(self.callees[-1])) and _code_in_mro(cls, code):
            return  # an allowlisted class called: its own metaclass's __call__ and helpers run
        if code.co_name in MEDIUM_METHODS and self.is_medium(key) and _code_in_mro(cls, code):
            return
        self.violate(
            "python-call",
            f"{frame.f_globals.get('__name__', '?')}.{qualname}",
            f"runs on {safe_name(cls)} ({_where(direct, frame)})",
        )


_BUILTIN_BASES = frozenset({_ident(object), _ident(type)})


def _provided(case: Case, cls: type, code: types.CodeType) -> bool:
    """True when the file chose this code: ``cls`` is a class it put on the stack, or the code is defined by
    a class those classes derive from (a base's __init_subclass__ running for a class made from them)."""
    key = _ident(cls)
    if key in case.provided_classes:
        return key not in _BUILTIN_BASES
    bases = case.provided_bases
    if not any(_ident(klass) in bases for klass in (*_type_mro(cls), *_type_mro(type(cls)))):
        return False
    definer = _definer(cls, code)
    return definer is not None and _ident(definer) in bases


def _library_state(frame: types.FrameType, obj: Any) -> bool:
    """Whether ``obj`` is state the calling library code keeps: a global of its module, or an attribute of a
    class or module among those globals or of the class the caller runs on (its first argument)."""
    caller = frame.f_back
    if caller is None:
        return False
    target = _ident(obj)
    holders: list[Any] = []
    for value in list(caller.f_globals.values())[:MAX_STATE_GLOBALS]:
        if _ident(value) == target:
            return True
        if isinstance(value, type | types.ModuleType):
            holders.append(value)
    owner = _first_argument(caller, caller.f_code)
    if isinstance(owner, type):
        holders.append(owner)
    for holder in holders:
        namespace = getattr(holder, "__dict__", None)
        if isinstance(namespace, dict | types.MappingProxyType) and any(
            _ident(value) == target for value in list(namespace.values())[:MAX_STATE_GLOBALS]
        ):
            return True
    return False


def _where(direct: bool, frame: types.FrameType) -> str:
    if direct:
        return "called by the unpickler"
    back = frame.f_back
    caller = back.f_code.co_qualname if back is not None else "?"
    return f"called by allowlisted code {caller}"


def _first_argument(frame: types.FrameType, code: types.CodeType) -> Any:
    if not code.co_argcount and not code.co_flags & 0x04:
        return _MISSING
    try:
        return frame.f_locals.get(code.co_varnames[0], _MISSING)
    except Exception:  # noqa: BLE001
        return _MISSING


def _definer(cls: type, code: types.CodeType) -> type | None:
    """The class of cls's MRO (or its metaclass's) that defines ``code``."""
    for klass in (*_type_mro(cls), *_type_mro(type(cls))):
        if _code_in_mro_of(klass, code):
            return klass
    return None


def _code_in_mro_of(klass: type, code: types.CodeType) -> bool:
    if type.__dict__["__qualname__"].__get__(klass) == code.co_qualname.rpartition(".")[0]:
        return _defined_in(klass, code.co_filename)
    namespace = _type_dict(klass)
    value = namespace.get(code.co_name)
    if value is None:
        return False
    codes: set[int] = set()
    _codes_of(value, codes, [])
    return _ident(code) in codes


def _code_in_mro(cls: type, code: types.CodeType) -> bool:
    """True when ``code`` is the code of an attribute of ``cls`` (or of its metaclass), by MRO: found in a
    class namespace, or defined in the body of a class of the MRO (same qualified name, same file)."""
    owner = code.co_qualname.rpartition(".")[0]
    for klass in (*_type_mro(cls), *_type_mro(type(cls))):
        if type.__dict__["__qualname__"].__get__(klass) == owner and _defined_in(klass, code.co_filename):
            return True
    target = _ident(code)
    name = code.co_name
    for klass in (*_type_mro(cls), *_type_mro(type(cls))):
        namespace = _type_dict(klass)
        for key in (name, f"_{klass.__name__.lstrip('_')}{name}"):
            value = namespace.get(key)
            if value is not None:
                codes: set[int] = set()
                _codes_of(value, codes, [])
                if target in codes:
                    return True
    return False


def _defined_in(klass: type, filename: str) -> bool:
    """True when the body of ``klass`` is in ``filename`` (judged by the functions it defines)."""
    for value in list(_type_dict(klass).values()):
        codes: set[int] = set()
        keep: list[Any] = []
        _codes_of(value, codes, keep)
        for code in keep:
            if type(code) is types.CodeType:
                return code.co_filename == filename
    return True  # a class without Python methods: the qualified name alone decides


def _instance_attribute(obj: Any, name: str) -> Any:
    """obj.__dict__[name] when obj has a plain instance namespace, else _MISSING."""
    provider, descriptor = lookup(type(obj), "__dict__")
    if provider is None or type(descriptor) is not types.GetSetDescriptorType:
        return _MISSING
    try:
        namespace = object.__getattribute__(obj, "__dict__")
    except Exception:  # noqa: BLE001
        return _MISSING
    if type(namespace) is not dict:
        return _MISSING
    return namespace.get(name, _MISSING)


def _still_held(obj: Any, key: int) -> bool:
    namespace, name = TRUST.holders[key]
    return namespace.get(name) is obj


def _lookup_loaded(dotted: str) -> Any:
    """Resolve a dotted name through already-imported modules and plain namespaces only."""
    parts = dotted.split(".")
    for end in range(len(parts), 0, -1):
        module = sys.modules.get(".".join(parts[:end]))
        if module is None:
            continue
        obj: Any = module
        for attr in parts[end:]:
            namespace = _namespace_of(obj)
            if namespace is None or attr not in namespace:
                return _MISSING
            obj = namespace[attr]
        return obj
    return _MISSING


# ---------------------------------------------------------------- hooks

_CASE: Case | None = None
_IN_HOOK = False
_TIMED_OUT = False  # the harness's timer fired in this load (see _timeout_handler)


def _audit(event: str, args: tuple) -> None:
    global _IN_HOOK
    case = _CASE
    if case is None or _IN_HOOK:
        return
    if event == "open":
        if not _writes(args):
            return
        category = "file-write"
    elif event == "import":
        category = "import"
    elif event == "sys.setprofile" and _near_recursion_limit():
        # The interpreter turns a profiler off when calling it fails (no stack left): not the file's call.
        case.note("profiler-lost", "recursion limit reached while profiling; later implicit calls unseen")
        return
    elif event == "sys.setprofile" and _TIMED_OUT:
        # The timer's exception, raised inside the profiler, makes the interpreter turn the profiler off.
        case.note("profiler-lost", "the case timed out inside the profiler")
        return
    elif event == "pickle.find_class":
        if case.run == "c":
            _IN_HOOK = True
            try:
                _find_class_seen(case, args)
            finally:
                _IN_HOOK = False
        return
    else:
        category = classify(event)
        if category is None:
            return
    _IN_HOOK = True
    try:
        verdict = _judge_event(case, event, category, args)
    finally:
        _IN_HOOK = False
    if verdict is not None:
        raise Blocked(f"{event} blocked by the oracle: {verdict}")


def _near_recursion_limit() -> bool:
    depth = 0
    frame: types.FrameType | None = sys._getframe()
    while frame is not None:
        depth += 1
        frame = frame.f_back
    return depth > sys.getrecursionlimit() - 50


def _judge_event(case: Case, event: str, category: str, args: tuple) -> str | None:
    """None when the event is within the claim; else the reason, after recording it."""
    frames = _frames_to_entry(case)
    codes = [frame.f_code for frame in frames]
    in_module_body = any(code.co_name == "<module>" for code in codes)
    in_import = in_module_body or any(code.co_filename in BOOTSTRAP_FILES for code in codes)
    if category == "import":
        return _judge_import(case, str(args[0]), codes, in_import)
    if category == "exec" and event in IMPORT_EXEC_EVENTS and in_import:
        return None  # a module body being imported (import itself is judged on its own)
    if event == "compile" and any(code.co_filename == ast.__file__ and code.co_name == "parse" for code in codes):
        case.note("parse-only", f"{event}{_short_args(args)}")
        return None  # ast.parse (ast.literal_eval: numpy's dtype strings) builds a tree, no code to run
    if event == "compile" and _library_source(case, args):
        case.library_compiled.add(str(args[1]))
        case.note("library-compile", f"{event}{_short_args(args)}")
        return None  # a library compiling its own fixed text (sklearn's repr, inspect): nothing of the file's
    if event == "exec" and args and getattr(args[0], "co_filename", None) in case.library_compiled:
        return None  # running what the library compiled above
    what = f"{event}{_short_args(args)}"
    case.blocked = True
    medium = _medium_frame(case, frames)
    if medium is not None:
        case.note("medium-code-effect", f"{what} in {medium}")  # the reported class's own code did it
    elif in_import and category not in ("process", "network"):
        case.note("import-side-effect", what)  # a module the claim lets the file import did it on import
    else:
        case.violate(category, what, "blocked" + (" (during an import)" if in_import else ""))
    return what


def _library_source(case: Case, args: tuple) -> bool:
    """compile()'s source is no text of the file's: not found in the case's bytes, in any usual encoding."""
    source = args[0] if args else None
    if isinstance(source, str):
        candidates = [source.encode("utf-8", "surrogatepass"), source.encode("latin-1", "replace")]
    elif isinstance(source, (bytes, bytearray)):
        candidates = [bytes(source)]
    else:
        return False  # an AST or something else made at load time: the file's doing, as far as we know
    return len(candidates[0]) > 0 and not any(candidate in case.data for candidate in candidates)


def _medium_frame(case: Case, frames: list[types.FrameType]) -> str | None:
    """The permitted method of a MEDIUM-reported class running on the stack, if any."""
    if not case.medium_names:
        return None
    for frame in frames:
        code = frame.f_code
        if code.co_name not in MEDIUM_METHODS:
            continue
        first = _first_argument(frame, code)
        if first is _MISSING:
            continue
        cls = first if issubclass(type(first), type) else type(first)
        if case.is_medium(_ident(cls)):
            return f"{safe_name(cls)}.{code.co_name}"
    return None


def _judge_import(case: Case, module: str, frames: list[types.CodeType], in_import: bool) -> str | None:
    case.imported = True
    if in_import:
        return None  # a dependency of a module already being imported, or its parent package
    if module in case.allowed_modules or module in TRUST.module_names:
        return None
    innermost = next((c for c in frames if c.co_filename not in BOOTSTRAP_FILES), None)
    direct = innermost is None or _ident(innermost) in DIRECT_CODES or _ident(innermost) == case.entry_code
    if not direct:
        case.note("lazy-import", module)  # library code importing what it needs
        return None
    if not _findable(module):
        case.note("import-miss", module)
        return None
    case.violate("import", module, "the file makes the loader import a module it does not name in the claim")
    case.blocked = True
    return f"import of {module}"


def _findable(module: str) -> bool:
    import importlib.machinery

    parent, _, leaf = module.rpartition(".")
    try:
        if not parent:
            return importlib.machinery.PathFinder.find_spec(leaf) is not None or leaf in sys.builtin_module_names
        package = sys.modules.get(parent)
        if package is None:
            return _findable(parent)
        path = getattr(package, "__path__", None)
        return path is not None and importlib.machinery.PathFinder.find_spec(module, path) is not None
    except Exception:  # noqa: BLE001
        return True


def _frames_to_entry(case: Case) -> list[types.FrameType]:
    """Frames from the hook's caller outwards, up to the harness frame that started the load."""
    frames = []
    frame = sys._getframe(3)
    while frame is not None and len(frames) < 400:
        if _ident(frame.f_code) == case.entry_code:
            break
        frames.append(frame)
        frame = frame.f_back
    return frames


def _short_args(args: tuple) -> str:
    text = repr(args)
    return text if len(text) <= 160 else text[:157] + "..."


def _find_class_seen(case: Case, args: tuple) -> None:
    """C run: snapshot the module (and the named object) a GLOBAL reaches, before it can be changed."""
    module = sys.modules.get(args[0]) if args and isinstance(args[0], str) else None
    if module is None:
        return
    case.appeared(module)
    if len(args) > 1 and isinstance(args[1], str):
        obj = _lookup_loaded(f"{args[0]}.{args[1]}")
        if obj is not _MISSING:
            case.appeared(obj)


def _profile(frame: types.FrameType, event: str, arg: Any) -> None:
    case = _CASE
    if case is None:
        return
    if event != "call":
        if event == "return" and case.importing and frame.f_code.co_name == "<module>":
            case.importing -= 1
        return
    code = frame.f_code
    if code.co_name == "<module>":
        case.importing += 1  # a module body runs: the import of a module the claim allows (judged on its own)
        return
    if case.importing:
        return
    key = _ident(code)
    if key in HARNESS_CODES or key in TRUST.direct_codes or key in DIRECT_CODES or code.co_filename in _SKIP_FILES:
        return
    if key in INFRA_CODES:
        return
    back = frame.f_back
    if back is None:
        return
    back_key = _ident(back.f_code)
    if back_key in DIRECT_CODES:
        case.judge_python_call(frame, code, True)
    elif back_key in TRUST.boundary_codes:
        case.judge_python_call(frame, code, False)


# ----------------------------------------------------------------- the loaders


def _storage_classes() -> set[int]:
    try:
        import torch
    except ImportError:
        return set()
    found = {_ident(getattr(torch, name)) for name in dir(torch) if name.endswith("Storage")}
    _KEEP.extend(getattr(torch, name) for name in dir(torch) if name.endswith("Storage"))
    return found


_STORAGE_CLASSES: set[int] = set()


class Stub:
    """What a persistent id loads to when it is not a PyTorch storage."""


def persistent_load(pid: Any) -> Any:
    """PyTorch's storage records become real (small) storages so that tensors rebuild as in torch.load."""
    if type(pid) is tuple and len(pid) == 5 and type(pid[0]) is str and pid[0] == "storage":
        storage_type, numel = pid[1], pid[4]
        if _ident(storage_type) in _STORAGE_CLASSES and type(numel) is int and 0 <= numel <= 1 << 16:
            import torch

            dtype = storage_type.dtype if storage_type is not torch.UntypedStorage else torch.uint8
            return torch.storage.TypedStorage(numel, dtype=dtype, _internal=True)
    return Stub()


def _after(opcode: str, original: Any) -> Any:
    """A dispatch entry that tells the case about the object the original put on the stack."""

    def entry(self: RecordingUnpickler) -> None:
        original(self)
        case = _CASE
        if case is not None and self.stack:
            case.appeared(self.stack[-1], fetched=True)

    entry.__name__ = f"recorded_{opcode}"
    return entry


def _reduce(self: RecordingUnpickler) -> None:
    stack = self.stack
    case = _CASE
    if case is None or len(stack) < 2:
        _ORIGINAL[pickle.REDUCE[0]](self)
        return
    func = stack[-2]
    allowed = case.judge_call(func, "REDUCE")
    case.enter(func, allowed)
    try:
        _ORIGINAL[pickle.REDUCE[0]](self)
    finally:
        case.leave(allowed)
    if stack:
        case.appeared(stack[-1], fetched=_ident(func) in TRUST.resolvers)


def _newobj(depth: int, opcode: str) -> Any:
    def entry(self: RecordingUnpickler) -> None:
        stack = self.stack
        case = _CASE
        original = _ORIGINAL[(pickle.NEWOBJ if depth == 2 else pickle.NEWOBJ_EX)[0]]
        if case is None or len(stack) < depth:
            original(self)
            return
        cls = stack[-depth]
        allowed = case.judge_new(cls, opcode)
        case.enter(cls, allowed)
        try:
            original(self)
        finally:
            case.leave(allowed)
        if stack:
            case.appeared(stack[-1])

    return entry


def _build(self: RecordingUnpickler) -> None:
    if len(self.stack) >= 2 and _CASE is not None:
        _CASE.judge_method(self.stack[-2], "__setstate__", "BUILD")
    _ORIGINAL[pickle.BUILD[0]](self)


def _items(opcode: str, method: str, marked: bool, key: bytes) -> Any:
    def entry(self: RecordingUnpickler) -> None:
        case = _CASE
        if case is not None:
            target = self.metastack[-1][-1] if marked and self.metastack and self.metastack[-1] else None
            if not marked and len(self.stack) >= 2 + (opcode == "SETITEM"):
                target = self.stack[-2 - (opcode == "SETITEM")]
            if target is not None and type(target) not in (dict, list, set):
                name = method
                if opcode == "APPENDS" and lookup(type(target), "extend")[0] is None:
                    name = "append"
                case.judge_method(target, name, opcode)
        _ORIGINAL[key[0]](self)

    return entry


_ORIGINAL = dict(pickle._Unpickler.dispatch)


class RecordingUnpickler(pickle._Unpickler):
    dispatch: ClassVar[dict[int, Any]] = dict(pickle._Unpickler.dispatch)

    def _instantiate(self, klass: Any, args: list) -> None:
        case = _CASE
        allowed = False
        if case is not None:
            if args or not issubclass(type(klass), type) or lookup(klass, "__getinitargs__")[0] is not None:
                allowed = case.judge_call(klass, "OBJ/INST")
            else:
                allowed = case.judge_new(klass, "OBJ/INST")
            case.enter(klass, allowed)
        try:
            super()._instantiate(klass, args)
        finally:
            if case is not None:
                case.leave(allowed)
        if case is not None and self.stack:
            case.appeared(self.stack[-1])

    def persistent_load(self, pid: Any) -> Any:
        return persistent_load(pid)


for _opcode in ("GLOBAL", "STACK_GLOBAL", "EXT1", "EXT2", "EXT4", "PERSID", "BINPERSID"):
    _key = getattr(pickle, _opcode)[0]
    RecordingUnpickler.dispatch[_key] = _after(_opcode, _ORIGINAL[_key])
RecordingUnpickler.dispatch[pickle.REDUCE[0]] = _reduce
RecordingUnpickler.dispatch[pickle.NEWOBJ[0]] = _newobj(2, "NEWOBJ")
RecordingUnpickler.dispatch[pickle.NEWOBJ_EX[0]] = _newobj(3, "NEWOBJ_EX")
RecordingUnpickler.dispatch[pickle.BUILD[0]] = _build
for _opcode, _method, _marked in (
    ("APPEND", "append", False),
    ("APPENDS", "extend", True),
    ("SETITEM", "__setitem__", False),
    ("SETITEMS", "__setitem__", True),
    ("ADDITEMS", "add", True),
):
    _key = getattr(pickle, _opcode)
    RecordingUnpickler.dispatch[_key[0]] = _items(_opcode, _method, _marked, _key)


class CUnpickler(pickle.Unpickler):
    def persistent_load(self, pid: Any) -> Any:
        return persistent_load(pid)


def _set_profile(function: Any) -> None:
    """sys.setprofile is itself audited: the harness's own calls are not the file's."""
    global _IN_HOOK
    _IN_HOOK = True
    try:
        sys.setprofile(function)
    finally:
        _IN_HOOK = False


def _timeout_handler(signum: int, frame: Any) -> None:
    global _TIMED_OUT
    _TIMED_OUT = True
    raise CaseTimeout("case timed out")


def _load_all(unpickler_class: type, data: bytes, case: Case, profile: bool) -> str:
    """Load every pickle in ``data`` back to back; the outcome as text."""
    global _CASE, _TIMED_OUT
    stream = io.BytesIO(data)
    outcome = "ok"
    _CASE = case
    _TIMED_OUT = False
    signal.setitimer(signal.ITIMER_REAL, CASE_TIMEOUT)
    try:
        for _ in range(MAX_PICKLES):
            unpickler = unpickler_class(stream, encoding="latin1")
            if profile:
                _set_profile(_profile)
            try:
                unpickler.load()
            finally:
                if profile:
                    _set_profile(None)
            if stream.tell() >= len(data):
                break
    except CaseTimeout:
        outcome = "timeout"
    except BaseException as exc:  # noqa: BLE001 - whatever the load raised is its outcome
        outcome = _outcome_of(exc)
        if _unusual(exc):
            case.note("unusual-exception", outcome)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        _CASE = None
    return outcome


_PLAIN_ARGUMENTS = (str, int, float, bytes, bool, type(None))


def _outcome_of(exc: BaseException) -> str:
    """The exception as text, without running code of what the load made: str() of an exception formats
    its arguments (KeyError reprs its key), and a loaded object's __repr__ may raise or act (case 7825738:
    a torch module's repr raised here, and the worker died)."""
    kind = type(exc)
    plain = all(type(argument) in _PLAIN_ARGUMENTS for argument in exc.args)
    if plain and kind.__module__ == "builtins" and kind.__str__ in _BUILTIN_STRS:
        text = f"{kind.__name__}: {exc}"
    else:
        text = f"{kind.__name__}: (message not formatted: arguments of types {_type_names(exc.args)})"
    return text if len(text) <= 200 else text[:197] + "..."


def _type_names(arguments: tuple[Any, ...]) -> str:
    return ", ".join(type(argument).__name__ for argument in arguments[:4]) or "none"


_BUILTIN_STRS = frozenset(
    kind.__str__ for kind in vars(builtins).values() if isinstance(kind, type) and issubclass(kind, BaseException)
)


# Exceptions that a failed load raises without leaving anything behind (bad arguments, bad opcodes).
ORDINARY_EXCEPTIONS = (
    TypeError,
    ValueError,
    AttributeError,
    LookupError,
    pickle.UnpicklingError,
    EOFError,
    ModuleNotFoundError,
    ArithmeticError,
    struct.error,
    NotImplementedError,
    AssertionError,
)


def _unusual(exc: BaseException) -> bool:
    """True for an exception after which the worker's state may differ (memory, recursion, OS, exits)."""
    if isinstance(exc, MemoryError | RecursionError | Blocked):
        return True
    return not isinstance(exc, ORDINARY_EXCEPTIONS)


def run_case(case_id: Any, data: bytes, modules: list[str], medium: list[str]) -> dict[str, Any]:
    """Both real loads of one case, judged against the claim."""
    started = time.perf_counter()
    before_modules = len(sys.modules)
    case = Case(case_id, modules, medium)
    case.data = data
    case.entry_code = _ident(_load_all.__code__)
    case.run = "py"
    py_outcome = _load_all(RecordingUnpickler, data, case, profile=True)
    case.compare_snapshots()
    c_outcome = "skipped"
    if not case.violations:
        case.run = "c"
        case.refresh_snapshots()
        c_outcome = _load_all(CUnpickler, data, case, profile=False)
        case.compare_snapshots()
    recycle = None
    if threading.active_count() > 1:  # a thread the load started would act during later cases
        case.note("thread-started", ", ".join(sorted(t.name for t in threading.enumerate()))[:200])
        recycle = "thread"
    if case.violations:
        recycle = "violation"
    elif case.blocked:
        recycle = "blocked"
    elif any(n["kind"] == "unusual-exception" for n in case.notes) or "timeout" in (py_outcome, c_outcome):
        recycle = "exception"
    return {
        "id": case_id,
        "violations": case.violations,
        "notes": case.notes,
        "py": py_outcome,
        "c": c_outcome,
        "recycle": recycle,
        "imported": case.imported or len(sys.modules) != before_modules,
        "ms": round((time.perf_counter() - started) * 1000, 3),
    }


# --------------------------------------------------------------- fingerprints


# Modules a worker changes itself: the harness, and threading's bookkeeping after fork.
UNWATCHED_MODULES = frozenset({"__main__", "__mp_main__", __name__, "threading"})


def fingerprint() -> dict[str, int]:
    """A hash of every module namespace, by identity of its values (new submodule entries excepted)."""
    out = {}
    for name, module in list(sys.modules.items()):
        if type(module) is types.ModuleType and name not in UNWATCHED_MODULES:
            with contextlib.suppress(Exception):
                out[name] = hash(tuple(_watched_pairs(name, _module_dict(module))))
    return out


def _watched_pairs(name: str, namespace: dict) -> Iterator[tuple[int, int]]:
    for key, value in namespace.items():
        if key in IGNORED_KEYS:
            continue
        if type(value) is types.ModuleType and value.__name__ == f"{name}.{key}":
            continue  # a submodule, registered on its package when imported
        yield _ident(key), _ident(value)


def changed_modules(before: dict[str, int], after: dict[str, int]) -> list[str]:
    return sorted(name for name, value in before.items() if after.get(name, value) != value)


# ------------------------------------------------------------- worker and zygote


def preload(full: bool = True) -> None:
    """Import what the allowlists name and build the trust tables (in the zygote, before any fork)."""
    global DIRECT_CODES, HARNESS_CODES, INFRA_CODES, _STORAGE_CLASSES, BASELINE
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    from mloops.picklevm.policy import default_policy

    policy = default_policy()
    allow_call, allow_build = policy.allow_call, policy.allow_build
    if not full:
        allow_call = frozenset(n for n in allow_call if n.partition(".")[0] in sys.stdlib_module_names)
        allow_build = frozenset(n for n in allow_build if n.partition(".")[0] in sys.stdlib_module_names)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        TRUST.build(allow_call, allow_build)
        import ctypes  # noqa: F401 - imported now so that no load imports it behind the audit hook
    if full:
        with contextlib.suppress(Exception):
            import torch

            torch.set_num_threads(1)
    _warm_codecs()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        TRUST.index_holders()
    DIRECT_CODES = _pickle_codes()
    HARNESS_CODES = _harness_codes()
    INFRA_CODES = _infra_codes()
    _STORAGE_CLASSES = _storage_classes()
    sys.dont_write_bytecode = True  # imports during loads must not write .pyc files
    tempfile.gettempdir()  # computed (and cached in tempfile's namespace) before the fingerprint
    BASELINE = fingerprint()


def _warm_codecs() -> None:
    """Look up every standard codec now: the unpickler's text opcodes look codecs up lazily."""
    import codecs
    import encodings.aliases

    names = {*encodings.aliases.aliases, *encodings.aliases.aliases.values(), "raw_unicode_escape", "unicode_escape"}
    for name in names:
        with contextlib.suppress(LookupError):
            codecs.lookup(name)


def _send(conn: socket.socket, payload: bytes) -> None:
    conn.sendall(struct.pack("<I", len(payload)) + payload)


def _recv(conn: socket.socket) -> bytes | None:
    head = _recv_exact(conn, 4)
    if head is None:
        return None
    return _recv_exact(conn, struct.unpack("<I", head)[0])


def _recv_exact(conn: socket.socket, size: int) -> bytes | None:
    chunks = []
    while size:
        chunk = conn.recv(min(size, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def _confine(root: str) -> str:
    """Limits of a worker: bounded memory, no core files, no file growth, a private working folder.

    The folder is made under the zygote's own folder, which the oracle removes: a worker killed mid-case
    leaves its folder behind, and a later worker given the same process id must not trip over it."""
    vm = 0
    with contextlib.suppress(OSError), open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmSize:"):
                vm = int(line.split()[1]) * 1024
    limit = vm + MEMORY_HEADROOM
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))
    quiet = os.open(os.devnull, os.O_WRONLY)
    os.dup2(quiet, 1)  # what loads print must not fill the zygote's pipe
    os.dup2(quiet, 2)
    os.close(quiet)
    folder = tempfile.mkdtemp(prefix="worker-", dir=root)
    os.chdir(folder)
    signal.signal(signal.SIGALRM, _timeout_handler)
    sys.addaudithook(_audit)
    return folder


def serve(conn: socket.socket, recycle_every: int, root: str) -> None:
    """A worker: run batches of cases until told to stop or until the worker must be recycled."""
    folder = _confine(root)
    try:
        _serve(conn, recycle_every)
    finally:
        os.chdir("/")
        with contextlib.suppress(OSError):
            os.rmdir(folder)


class Sweep:
    """Fingerprints of every module namespace, compared every SWEEP_EVERY cases (and before a worker that
    ran at least a quarter of that is recycled): the safety net behind the per-case snapshots.

    Changes in a window where a case imported a new module are that import's side effects (a module the
    claim lets the file import); other changes are reported with the window's cases, which the oracle then
    re-runs one by one to find the culprit."""

    def __init__(self) -> None:
        self.baseline = BASELINE
        self.cases: list[Any] = []
        self.imported = False

    def add(self, case_id: Any, imported: bool) -> None:
        self.cases.append(case_id)
        self.imported = self.imported or imported

    def due(self, recycle: str | None) -> bool:
        if recycle == "violation":
            return False  # the case is reported anyway, and the worker discarded
        return len(self.cases) >= (SWEEP_EVERY // 4 if recycle else SWEEP_EVERY)

    def check(self, result: dict[str, Any]) -> None:
        now = fingerprint()
        changed = changed_modules(self.baseline, now)
        if changed and self.imported:
            note = {"kind": "import-side-effect", "what": "modules changed: " + ", ".join(changed[:8]), "run": "?"}
            result["notes"].append(note)
        elif changed:
            result["sweep"] = {"modules": changed[:20], "cases": self.cases, "imported": False}
            result["recycle"] = result["recycle"] or "sweep"
        self.baseline = now
        self.cases = []
        self.imported = False


def _serve(conn: socket.socket, recycle_every: int) -> None:
    _send(conn, json.dumps({"pid": os.getpid()}).encode())
    sweep = Sweep()
    done = 0
    while True:
        message = _recv(conn)
        if message is None:
            return
        request = marshal.loads(message)
        strict = request.get("strict", False)
        for case_id, data, modules, medium in request["cases"]:
            result = run_case(case_id, data, list(modules), list(medium))
            done += 1
            sweep.add(case_id, result["imported"])
            quota = done >= recycle_every
            if strict or quota or sweep.due(result["recycle"]):
                sweep.check(result)
            if quota and not result["recycle"]:
                result["recycle"] = "quota"
            _send(conn, json.dumps(result).encode())
            if result["recycle"]:
                return
        _send(conn, b'{"batch": "done"}')


def zygote(path: str, full: bool, recycle_every: int) -> None:
    """Preload once, then fork a worker per connection on the Unix socket ``path``."""
    preload(full)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(16)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped by the kernel
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    while True:
        readable, _, _ = select.select([listener, sys.stdin], [], [])
        if sys.stdin in readable and not os.read(sys.stdin.fileno(), 1024):
            os._exit(0)  # the oracle is gone
        if listener in readable:
            conn, _ = listener.accept()
            if os.fork() == 0:
                listener.close()
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                try:
                    serve(conn, recycle_every, os.path.dirname(path))
                finally:
                    os._exit(0)
            conn.close()


def main(argv: list[str]) -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--zygote", required=True, help="Unix socket path to listen on")
    parser.add_argument("--minimal", action="store_true", help="preload the standard library only")
    parser.add_argument("--recycle-every", type=int, default=4000)
    args = parser.parse_args(argv)
    zygote(args.zygote, not args.minimal, args.recycle_every)


if __name__ == "__main__":
    main(sys.argv[1:])
