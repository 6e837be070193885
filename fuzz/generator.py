"""A seeded, grammar-based generator of pickle programs (protocols 0 to 5).

Every case is a function of (seed, index) alone, so any case of a campaign can be rebuilt from its id.
A program is a few statements, each emitting one value (the last one is what STOP returns, the others
are popped), drawn from a grammar of:

  constants and containers     ints, floats, text, bytes, None/bools, tuples, lists, dicts, sets, frozensets
  allowlisted calls            every callable of default_policy().allow_call, with valid argument shapes
                               from templates and odd ones (wrong arity, objects where constants belong)
  objects                      NEWOBJ/NEWOBJ_EX/OBJ/INST of allowlisted, unlisted and standard classes,
                               with BUILD state (dict, (dict, slots), objects as state)
  names                        GLOBAL and STACK_GLOBAL, dotted names, module aliases found by identity
                               (enum.bltns is builtins), Python 2 spellings
  attribute walks              builtins.getattr with constant names and names computed at load time
                               (builtins.str(b'..', 'ascii'), codecs.decode(.., 'rot13'))
  memo and stack games         PUT/BINPUT/LONG_BINPUT/MEMOIZE and GETs of earlier values, DUP, POP,
                               POP_MARK, nested MARKs, FRAMEs
  dunder hooks                 BUILD on modules, classes and functions, SETITEM/APPEND on non-containers,
                               objects as dict keys and set items, map/filter/itertools objects drained by
                               list/tuple/set/bytes, three-argument type(), copyreg reconstructors,
                               functools.partial whose BUILD state swaps what it calls
  payloads                     os.system, exec, eval, open for writing, subprocess, socket, ctypes, imports,
                               reached directly or through the above (the recorder blocks each one)

The mix is biased so that a good share of cases use only allowlisted names in reviewed forms and pass
mloops: those are the cases the oracle really loads. Payload strings are harmless (``true``, ``0``, a
file name inside the worker's private folder).
"""

from __future__ import annotations

import importlib
import random
import struct
import sys
import types
from collections.abc import Callable, Iterator
from typing import Any

from mloops.picklevm.policy import default_policy

# ------------------------------------------------------------------ vocabulary

# Standard-library modules whose attributes the generator walks (imported here only to list names).
WALKED_MODULES = (
    "builtins",
    "os",
    "sys",
    "enum",
    "functools",
    "collections",
    "copyreg",
    "codecs",
    "pickle",
    "types",
    "typing",
    "inspect",
    "operator",
    "itertools",
    "io",
    "re",
    "json",
    "pathlib",
    "random",
    "datetime",
    "decimal",
    "fractions",
    "uuid",
    "argparse",
    "logging",
    "threading",
    "subprocess",
    "shutil",
    "tempfile",
    "socket",
    "base64",
    "binascii",
    "zlib",
    "array",
    "struct",
    "copy",
    "weakref",
    "abc",
    "contextlib",
    "string",
    "dataclasses",
    "numbers",
    "heapq",
    "platform",
    "warnings",
    "traceback",
    "linecache",
    "ast",
    "dis",
    "zipfile",
    "tarfile",
    "pprint",
    "reprlib",
    "textwrap",
    "glob",
    "fnmatch",
    "queue",
    "shlex",
    "email",
    "html",
    "http",
    "urllib",
    "xml",
    "ctypes",
    "importlib",
    "runpy",
    "code",
    "timeit",
    "pdb",
    "webbrowser",
)

# What payload primitives are, and harmless arguments for each (the recorder blocks them anyway).
PAYLOADS: tuple[tuple[str, str, tuple[Any, ...]], ...] = (
    ("os", "system", ("true",)),
    ("posix", "system", ("true",)),
    ("builtins", "exec", ("0",)),
    ("builtins", "eval", ("0",)),
    ("builtins", "compile", ("0", "<x>", "eval")),
    ("builtins", "open", ("oracle-marker", "w")),
    ("io", "open", ("oracle-marker", "a")),
    ("os", "remove", ("oracle-marker",)),
    ("os", "mkdir", ("oracle-dir",)),
    ("subprocess", "Popen", (["true"],)),
    ("subprocess", "check_output", (["true"],)),
    ("os", "popen", ("true",)),
    ("socket", "socket", ()),
    ("socket", "create_connection", (("127.0.0.1", 9),)),
    ("ctypes", "CDLL", (None,)),
    ("importlib", "import_module", ("this",)),
    ("builtins", "__import__", ("antigravity",)),
    ("sys", "settrace", (None,)),
    ("gc", "get_objects", ()),
    ("marshal", "loads", (b"N",)),
    ("runpy", "run_path", ("oracle-marker",)),
    ("shutil", "rmtree", ("oracle-dir",)),
    ("tempfile", "mkdtemp", ()),
    ("builtins", "input", ()),
    ("pickle", "loads", (b"N.",)),
    ("code", "InteractiveInterpreter", ()),
    ("timeit", "timeit", ("0",)),
    ("operator", "methodcaller", ("system", "true")),
    ("operator", "attrgetter", ("system",)),
)

# Classes outside the allowlists with their own hooks (__setstate__, __setitem__, __hash__, __init_subclass__,
# __getattr__): instantiated by NEWOBJ they are reported MEDIUM (their own code runs), used otherwise HIGH.
UNLISTED_CLASSES = (
    ("sklearn.utils._bunch", "Bunch"),
    ("transformers.tokenization_utils_base", "BatchEncoding"),
    ("transformers.utils.generic", "ModelOutput"),
    ("transformers.configuration_utils", "PretrainedConfig"),
    ("torch.utils.data.dataset", "TensorDataset"),
    ("torch.nn.parameter", "UninitializedParameter"),
    ("numpy.lib._index_tricks_impl", "AxisConcatenator"),
    ("pandas.core.flags", "Flags"),
    ("joblib.memory", "Memory"),
    ("joblib.parallel", "Parallel"),
    ("tqdm.std", "tqdm"),
    ("matplotlib.figure", "Figure"),
    ("scipy.sparse._csr", "csr_matrix"),
    ("collections", "UserDict"),
    ("collections", "UserList"),
    ("argparse", "ArgumentParser"),
    ("logging", "Logger"),
    ("random", "Random"),
    ("string", "Template"),
    ("threading", "Thread"),
    ("enum", "Enum"),
    ("typing", "NamedTuple"),
    ("types", "SimpleNamespace"),
    ("weakref", "WeakValueDictionary"),
)

# Iterator classes whose __new__ stores a callable that draining then calls.
ITERATOR_CLASSES = (
    ("builtins", "map"),
    ("builtins", "filter"),
    ("itertools", "starmap"),
    ("itertools", "takewhile"),
    ("itertools", "dropwhile"),
    ("itertools", "filterfalse"),
    ("itertools", "accumulate"),
    ("itertools", "groupby"),
    ("itertools", "chain"),
    ("builtins", "zip"),
    ("builtins", "reversed"),
    ("builtins", "enumerate"),
)
DRAINERS = (
    ("builtins", "list"),
    ("builtins", "tuple"),
    ("builtins", "set"),
    ("builtins", "frozenset"),
    ("builtins", "bytes"),
    ("builtins", "bytearray"),
    ("builtins", "sum"),
    ("builtins", "max"),
    ("builtins", "min"),
    ("collections", "deque"),
    ("collections", "Counter"),
    ("collections", "OrderedDict"),
    ("builtins", "dict"),
)

# Python 2 spellings the unpickler maps (fix_imports, protocols < 3).
PY2_SPELLINGS = (
    ("__builtin__", "getattr"),
    ("__builtin__", "eval"),
    ("__builtin__", "set"),
    ("copy_reg", "_reconstructor"),
    ("UserDict", "UserDict"),
    ("itertools", "imap"),
    ("exceptions", "ValueError"),
    ("__builtin__", "xrange"),
    ("__builtin__", "reduce"),
)

ATTRIBUTE_NAMES = (
    "system",
    "exec",
    "eval",
    "__import__",
    "__builtins__",
    "__globals__",
    "__dict__",
    "__class__",
    "__base__",
    "__subclasses__",
    "__init__",
    "__reduce__",
    "__setstate__",
    "__getattribute__",
    "modules",
    "path",
    "bltns",
    "os",
    "sys",
    "join",
    "fromhex",
    "fromkeys",
    "update",
    "append",
    "get",
    "mro",
    "__code__",
    "__func__",
    "__self__",
    "__module__",
    "dispatch_table",
    "_extension_registry",
    "_inverted_registry",
    "__new__",
    "loads",
    "partial",
)


class Vocabulary:
    """Names the grammar draws from, computed once per process from the policy and the standard library."""

    def __init__(self) -> None:
        policy = default_policy()
        self.allow_call = sorted(policy.allow_call)
        self.allow_build = sorted(policy.allow_build)
        self.deny = sorted(policy.deny)
        self.signatures = policy.signatures
        self.aliases: list[tuple[str, str]] = []  # (spelled module attribute path, module it is)
        self.attributes: dict[str, list[str]] = {}
        self.modules: dict[str, types.ModuleType] = {}
        for name in WALKED_MODULES:
            try:
                module = importlib.import_module(name)
            except Exception:  # noqa: BLE001 - a module missing on this platform is simply not walked
                continue
            self.modules[name] = module
            attrs = sorted(a for a in dir(module) if isinstance(a, str))
            self.attributes[name] = attrs
            for attr in attrs:
                value = module.__dict__.get(attr)
                if isinstance(value, types.ModuleType) and value.__name__ != name:
                    self.aliases.append((f"{name}.{attr}", value.__name__))
        self.alias_to: dict[str, list[str]] = {}
        for spelled, target in self.aliases:
            self.alias_to.setdefault(target, []).append(spelled)
        self.call_classes = [n for n in self.allow_call if _looks_like_class(n)]
        self.build_classes = [n for n in self.allow_build if _looks_like_class(n)]


def _looks_like_class(dotted: str) -> bool:
    last = dotted.rpartition(".")[2]
    return last[:1].isupper()


_VOCABULARY: Vocabulary | None = None


def vocabulary() -> Vocabulary:
    global _VOCABULARY
    if _VOCABULARY is None:
        _VOCABULARY = Vocabulary()
    return _VOCABULARY


def split(dotted: str) -> tuple[str, str]:
    """(module, qualname) for a dotted allowlist name, guessing the module as the lowercase prefix."""
    parts = dotted.split(".")
    cut = len(parts) - 1
    while cut > 1 and (parts[cut - 1][:1].isupper() or parts[cut - 1] in ("bytes", "str", "dict", "int")):
        cut -= 1
    return ".".join(parts[:cut]), ".".join(parts[cut:])


# ------------------------------------------------------------------ emitting


def _utf8(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")


class Emitter:
    """Writes opcodes for one protocol, choosing among the encodings that protocol (and a lenient loader)
    accepts, and tracks the memo as the loader will see it."""

    def __init__(self, protocol: int, rng: random.Random) -> None:
        self.protocol = protocol
        self.rng = rng
        self.out = bytearray()
        self.cuts: list[int] = []  # offsets between opcodes, where a FRAME may start
        self.memo: set[int] = set()
        if protocol >= 2:
            self.out += bytes([0x80, protocol])

    def op(self, data: bytes) -> None:
        self.cuts.append(len(self.out))
        self.out += data

    # constants
    def int(self, value: int) -> None:
        rng = self.rng
        if self.protocol == 0 or rng.random() < 0.1:
            if value in (0, 1) and rng.random() < 0.3:
                self.op(b"I0%d\n" % value)
            else:
                self.op((b"I%d\n" if rng.random() < 0.7 else b"L%dL\n") % value)
        elif 0 <= value < 256 and rng.random() < 0.8:
            self.op(b"K" + bytes([value]))
        elif 0 <= value < 65536 and rng.random() < 0.7:
            self.op(b"M" + struct.pack("<H", value))
        elif -(2**31) <= value < 2**31 and rng.random() < 0.8:
            self.op(b"J" + struct.pack("<i", value))
        else:
            data = value.to_bytes((value.bit_length() + 8) // 8, "little", signed=True)
            if self.protocol >= 2 and rng.random() < 0.8:
                self.op(b"\x8a" + bytes([len(data)]) + data)
            elif self.protocol >= 2:
                self.op(b"\x8b" + struct.pack("<i", len(data)) + data)
            else:
                self.op(b"L%dL\n" % value)

    def float(self, value: float) -> None:
        if self.protocol == 0 or self.rng.random() < 0.1:
            self.op(b"F" + repr(value).encode() + b"\n")
        else:
            self.op(b"G" + struct.pack(">d", value))

    def none(self) -> None:
        self.op(b"N")

    def bool(self, value: bool) -> None:
        if self.protocol >= 2 and self.rng.random() < 0.8:
            self.op(b"\x88" if value else b"\x89")
        else:
            self.op(b"I01\n" if value else b"I00\n")

    def str(self, value: str) -> None:
        rng = self.rng
        data = value.encode("utf-8", "surrogatepass")
        if self.protocol == 0 or rng.random() < 0.1:
            if value.isascii() and "\n" not in value and rng.random() < 0.4:
                self.op(b"S" + repr(value).encode("ascii") + b"\n")  # STRING: loaded as latin-1 text
                return
            text = value.replace("\\", "\\u005c").replace("\0", "\\u0000").replace("\n", "\\u000a")
            text = text.replace("\r", "\\u000d").replace("\x1a", "\\u001a")
            self.op(b"V" + text.encode("raw-unicode-escape") + b"\n")
            return
        choice = rng.random()
        if self.protocol >= 4 and len(data) < 256 and choice < 0.6:
            self.op(b"\x8c" + bytes([len(data)]) + data)
        elif self.protocol >= 4 and choice < 0.7:
            self.op(b"\x8d" + struct.pack("<Q", len(data)) + data)
        elif value.isascii() and choice < 0.8:
            raw = value.encode("latin-1")
            self.op((b"U" + bytes([len(raw)]) if len(raw) < 256 else b"T" + struct.pack("<i", len(raw))) + raw)
        else:
            self.op(b"X" + struct.pack("<I", len(data)) + data)

    def bytes(self, value: bytes) -> None:
        rng = self.rng
        if self.protocol >= 5 and rng.random() < 0.15:
            self.op(b"\x96" + struct.pack("<Q", len(value)) + value)  # a bytearray, not bytes
        elif self.protocol >= 3:
            if len(value) < 256 and rng.random() < 0.6:
                self.op(b"C" + bytes([len(value)]) + value)
            elif rng.random() < 0.8:
                self.op(b"B" + struct.pack("<I", len(value)) + value)
            else:
                self.op(b"\x8e" + struct.pack("<Q", len(value)) + value)
        else:  # as pickle writes bytes for old protocols: _codecs.encode(text, 'latin1')
            self.global_("_codecs", "encode")
            self.mark()
            self.str(value.decode("latin-1"))
            self.str("latin1")
            self.tuple_from_mark()
            self.op(b"R")

    # names
    def global_(self, module: str, name: str, stack: bool | None = None) -> None:
        if stack is None:
            stack = self.protocol >= 4 and self.rng.random() < 0.6
        if stack:
            self.str(module)
            self.maybe_memo()
            self.str(name)
            self.maybe_memo()
            self.op(b"\x93")
        else:
            self.op(b"c" + _utf8(module) + b"\n" + _utf8(name) + b"\n")

    def inst(self, module: str, name: str) -> None:
        """INST: the arguments must already follow a MARK."""
        self.op(b"i" + module.encode() + b"\n" + name.encode() + b"\n")

    # structure
    def mark(self) -> None:
        self.op(b"(")

    def tuple_from_mark(self) -> None:
        self.op(b"t")

    def empty_dict(self) -> None:
        self.op(b"}" if self.protocol >= 1 else b"(d")

    def empty_list(self) -> None:
        self.op(b"]" if self.protocol >= 1 else b"(l")

    def tuple_of(self, count: int) -> None:
        """After ``count`` pushed values (with a MARK before them when count > 3 or for old protocols)."""
        self.op({0: b")", 1: b"\x85", 2: b"\x86", 3: b"\x87"}[count])

    # memo
    def put(self) -> int:
        rng = self.rng
        if self.protocol >= 4 and rng.random() < 0.4:
            index = len(self.memo)
            self.op(b"\x94")
        else:
            index = rng.choice((len(self.memo), len(self.memo), rng.randrange(0, 300), rng.randrange(0, 70000)))
            if self.protocol == 0 or rng.random() < 0.1:
                self.op(b"p%d\n" % index)
            elif index < 256:
                self.op(b"q" + bytes([index]))
            else:
                self.op(b"r" + struct.pack("<I", index))
        self.memo.add(index)
        return index

    def get(self, index: int) -> None:
        if self.protocol == 0 or self.rng.random() < 0.1:
            self.op(b"g%d\n" % index)
        elif index < 256:
            self.op(b"h" + bytes([index]))
        else:
            self.op(b"j" + struct.pack("<I", index))

    def maybe_memo(self) -> None:
        if self.rng.random() < 0.15:
            self.put()

    def framed(self) -> bytes:
        """The program with its body cut into FRAMEs (protocol 4+), as the pickler does for large pickles."""
        data = bytes(self.out)
        if self.protocol < 4 or self.rng.random() < 0.5:
            return data
        cuts = sorted({cut for cut in self.cuts if cut > 2} | {len(data)})
        if self.rng.random() < 0.05:  # a frame boundary inside an opcode: the loaders refuse it
            cuts = sorted({*cuts, self.rng.randrange(3, len(data) + 1)})
        out = bytearray(data[:2])
        start = 2
        while start < len(data):
            bigger = [cut for cut in cuts if cut > start]
            end = self.rng.choice(bigger) if self.rng.random() < 0.5 else bigger[-1]
            out += b"\x95" + struct.pack("<Q", end - start) + data[start:end]
            start = end
        return bytes(out)


# ------------------------------------------------------------------ the grammar


class Program:
    """One generated case: emits statements into an Emitter, with a pool of memoized values."""

    def __init__(self, rng: random.Random, vocab: Vocabulary, protocol: int, hostile: float) -> None:
        self.rng = rng
        self.vocab = vocab
        self.e = Emitter(protocol, rng)
        self.hostile = hostile  # probability that a choice point takes a hostile branch
        self.pool: list[int] = []  # memo slots holding earlier values
        self.depth = 0

    def build(self) -> bytes:
        rng = self.rng
        statements = rng.choice((1, 1, 2, 3, 4))
        for index in range(statements):
            self.value()
            self.stack_games()
            if index < statements - 1:
                self.e.op(b"0")
        self.e.op(b".")
        return self.e.framed()

    # -------------------------------------------------------------- values

    def value(self) -> None:
        """Emit code leaving exactly one value on the stack."""
        rng = self.rng
        self.depth += 1
        try:
            if self.depth > 5:
                self.constant()
                return
            kinds = self.kinds()
            choice = rng.choices([k for k, _ in kinds], [w for _, w in kinds])[0]
            choice()
            if rng.random() < 0.12:
                self.pool.append(self.e.put())
        finally:
            self.depth -= 1

    def kinds(self) -> list[tuple[Callable[[], None], float]]:
        h = self.hostile
        table = [
            (self.constant, 3.0),
            (self.container, 2.0),
            (self.allowed_call, 4.0),
            (self.allowed_object, 2.5),
            (self.memo_ref, 1.0 if self.pool else 0.0),
            (self.unlisted_object, 1.0),
            (self.reference_only, 0.6),
            (self.getattr_walk, 1.0 + 2 * h),
            (self.iterator_drain, 0.4 + 2 * h),
            (self.three_arg_type, 0.3 + h),
            (self.reconstructor, 0.8 + h),
            (self.partial_swap, 0.5 + h),
            (self.hook_on_global, 0.3 + 2 * h),
            (self.object_key, 0.4 + h),
            (self.payload, 0.1 + 3 * h),
            (self.odd_opcodes, 0.3 + h),
            (self.py2_name, 0.2),
        ]
        return table

    def constant(self) -> None:
        rng = self.rng
        e = self.e
        kind = rng.randrange(9)
        if kind == 0:
            e.int(rng.choice((0, 1, 2, 7, 255, 256, 65535, -1, 2**31 - 1, -(2**31), 2**40, -(2**70), 3)))
        elif kind == 1:
            e.float(rng.choice((0.0, 1.5, -2.25, 1e300, float("inf"))))
        elif kind in (2, 3):
            e.str(rng.choice(self._texts()))
        elif kind == 4:
            e.bytes(rng.choice((b"", b"x", b"\x00" * 8, b"abc", bytes(range(20)), b"N.")))
        elif kind == 5:
            e.none()
        elif kind == 6:
            e.bool(rng.random() < 0.5)
        elif kind == 7:
            self.constant_tuple(rng.randrange(0, 4))
        else:
            e.op(b"]" if e.protocol >= 1 else b"(l")

    def _texts(self) -> tuple[str, ...]:
        return ("", "a", "x", "f8", "<i4", "latin1", "utf-8", "rot13", "hex", "cpu", "0", "é", "\n", "true", "os")

    def constant_tuple(self, count: int) -> None:
        e = self.e
        if e.protocol >= 2 and count <= 3 and self.rng.random() < 0.7:
            for _ in range(count):
                self.constant()
            e.tuple_of(count)
        else:
            e.mark()
            for _ in range(count):
                self.constant()
            e.tuple_from_mark()

    def container(self) -> None:
        rng = self.rng
        e = self.e
        kind = rng.randrange(6)
        count = rng.randrange(0, 4)
        if kind == 0:  # tuple of values
            if e.protocol >= 2 and count <= 3 and rng.random() < 0.6:
                for _ in range(count):
                    self.value()
                e.tuple_of(count)
            else:
                e.mark()
                for _ in range(count):
                    self.value()
                e.tuple_from_mark()
        elif kind == 1:  # list
            if e.protocol >= 1 and rng.random() < 0.7:
                e.op(b"]")
                if count:
                    if rng.random() < 0.5:
                        e.mark()
                        for _ in range(count):
                            self.value()
                        e.op(b"e")
                    else:
                        for _ in range(count):
                            self.value()
                            e.op(b"a")
            else:
                e.mark()
                for _ in range(count):
                    self.value()
                e.op(b"l")
        elif kind == 2:  # dict with constant keys
            e.op(b"}" if e.protocol >= 1 else b"(d")
            for _ in range(count):
                e.str(rng.choice(self._texts()))
                self.value()
                e.op(b"s")
        elif kind == 3:  # DICT from mark
            e.mark()
            for _ in range(count):
                e.int(rng.randrange(100))
                self.value()
            e.op(b"d")
        elif kind == 4 and e.protocol >= 4:  # set / frozenset of constants
            if rng.random() < 0.5:
                e.op(b"\x8f")
                e.mark()
                for _ in range(count):
                    self.constant()
                e.op(b"\x90")
            else:
                e.mark()
                for _ in range(count):
                    self.constant()
                e.op(b"\x91")
        else:
            self.constant_tuple(count)

    def memo_ref(self) -> None:
        self.e.get(self.rng.choice(self.pool))

    # -------------------------------------------------------------- names

    def name(self, dotted: str, alias: bool = True) -> None:
        """Push the global ``dotted``, spelled directly, through a dotted path, or through a module alias."""
        rng = self.rng
        e = self.e
        module, qualname = split(dotted)
        if alias and rng.random() < 0.15:
            spellings = self.vocab.alias_to.get(module)
            if spellings:
                spelled = rng.choice(spellings)
                head, _, attr = spelled.rpartition(".")
                if e.protocol >= 4:
                    e.global_(head, f"{attr}.{qualname}")
                else:
                    self.getattr_chain(lambda: e.global_(head, attr), qualname.split("."))
                return
        if "." in qualname and e.protocol < 4:
            first, *rest = qualname.split(".")
            self.getattr_chain(lambda: e.global_(module, first), rest)
            return
        if alias and rng.random() < 0.1 and "." in module and e.protocol >= 4:
            package, _, sub = module.rpartition(".")
            e.global_(package, f"{sub}.{qualname}")  # a submodule as an attribute of its package
            return
        e.global_(module, qualname)

    def getattr_chain(self, base: Callable[[], None], attrs: list[str]) -> None:
        """getattr(getattr(base, a1), a2)... with REDUCE."""
        if not attrs:
            base()
            return
        e = self.e
        e.global_("builtins", "getattr")
        e.mark()
        self.getattr_chain(base, attrs[:-1])
        e.str(attrs[-1])
        e.tuple_from_mark()
        e.op(b"R")

    # -------------------------------------------------------------- calls

    def call(self, dotted: str, args: Callable[[], int] | None = None) -> None:
        """REDUCE (or OBJ/INST) of ``dotted`` with arguments emitted by ``args`` (which returns their count)."""
        rng = self.rng
        e = self.e
        module, qualname = split(dotted)
        how = rng.random()
        if how < 0.08 and "." not in qualname:
            e.mark()
            (args or self.odd_args)()
            e.inst(module, qualname)
            return
        if how < 0.16:
            e.mark()
            self.name(dotted)
            (args or self.odd_args)()
            e.op(b"o")
            return
        self.name(dotted)
        e.mark()
        (args or self.odd_args)()
        e.tuple_from_mark()
        e.op(b"R")

    def odd_args(self) -> int:
        count = self.rng.choice((0, 1, 1, 2, 3, 4))
        for _ in range(count):
            self.value()
        return count

    def allowed_call(self) -> None:
        rng = self.rng
        dotted = rng.choice(self.vocab.allow_call)
        template = TEMPLATES.get(dotted)
        if template is not None and rng.random() < 0.75:
            self.call(dotted, lambda: template(self))
        else:
            self.call(dotted, self.arity_args(dotted))

    def arity_args(self, dotted: str) -> Callable[[], int]:
        signature = self.vocab.signatures.get(dotted)

        def emit() -> int:
            if signature is None or signature.arity is None or self.rng.random() < 0.2:
                return self.odd_args()
            least, most = signature.arity
            count = self.rng.randint(least, least + 2 if most < 0 else most)
            for _ in range(count):
                self.constant() if self.rng.random() < 0.6 else self.value()
            return count

        return emit

    def allowed_object(self) -> None:
        """NEWOBJ of an allowlisted class, then perhaps BUILD with state."""
        rng = self.rng
        classes = self.vocab.build_classes if rng.random() < 0.6 else self.vocab.call_classes
        self.new_object(rng.choice(classes))
        self.maybe_build()

    def new_object(self, dotted: str) -> None:
        rng = self.rng
        e = self.e
        how = rng.random()
        if e.protocol >= 2 and how < 0.6:
            self.name(dotted)
            self.constant_tuple(rng.choice((0, 0, 1)))
            e.op(b"\x81")
        elif e.protocol >= 4 and how < 0.7:
            self.name(dotted)
            self.constant_tuple(0)
            e.op(b"}")
            e.op(b"\x92")
        elif how < 0.85:
            self.call("copyreg._reconstructor", lambda: self._reconstructor_args(dotted, "builtins.object"))
        else:
            self.call("copyreg.__newobj__", lambda: self._name_count(dotted))

    def _name_count(self, dotted: str) -> int:
        self.name(dotted)
        return 1

    def _reconstructor_args(self, cls: str, base: str) -> int:
        self.name(cls)
        self.name(base)
        self.e.none()
        return 3

    def maybe_build(self) -> None:
        rng = self.rng
        e = self.e
        if rng.random() < 0.5:
            return
        kind = rng.randrange(5)
        if kind == 0:
            e.empty_dict()
            for _ in range(rng.randrange(0, 3)):
                e.str(rng.choice(("training", "_parameters", "a", "x", "__dict__", "__class__", "_modules")))
                self.value()
                e.op(b"s")
        elif kind == 1:  # (dict, slots)
            e.mark()
            e.none() if rng.random() < 0.5 else e.empty_dict()
            e.empty_dict()
            e.str(rng.choice(("a", "__class__", "__dict__", "func", "x")))
            self.value()
            e.op(b"s")
            e.tuple_from_mark()
        elif kind == 2:
            self.value()
        elif kind == 3:
            self.constant_tuple(rng.randrange(0, 3))
        else:
            self.unlisted_object()
        e.op(b"b")

    # -------------------------------------------------------------- unlisted names

    def unlisted_object(self) -> None:
        module, name = self.rng.choice(UNLISTED_CLASSES)
        self.new_object(f"{module}.{name}")
        self.maybe_build()
        if self.rng.random() < 0.3:
            self.items_on_top()

    def reference_only(self) -> None:
        rng = self.rng
        if rng.random() < 0.5:
            module, name = rng.choice(UNLISTED_CLASSES)
        else:
            module = rng.choice(tuple(self.vocab.attributes))
            name = rng.choice(self.vocab.attributes[module] or ["__name__"])
        self.e.global_(module, name)

    def py2_name(self) -> None:
        module, name = self.rng.choice(PY2_SPELLINGS)
        self.e.global_(module, name, stack=False)
        if self.rng.random() < 0.5:
            self.e.mark()
            self.odd_args()
            self.e.tuple_from_mark()
            self.e.op(b"R")

    def items_on_top(self) -> None:
        """SETITEM/APPEND/ADDITEMS on whatever is on top (a non-container runs its own methods)."""
        rng = self.rng
        e = self.e
        kind = rng.randrange(4)
        if kind == 0:
            self.constant()
            self.value()
            e.op(b"s")
        elif kind == 1:
            self.value()
            e.op(b"a")
        elif kind == 2:
            e.mark()
            self.value()
            e.op(b"e")
        elif e.protocol >= 4:
            e.mark()
            self.constant()
            e.op(b"\x90")
        else:
            e.mark()
            self.constant()
            self.value()
            e.op(b"u")

    # -------------------------------------------------------------- hostile shapes

    def computed_name(self, name: str) -> None:
        """Push ``name`` computed at load time by an allowlisted decoder."""
        rng = self.rng
        kind = rng.randrange(4)
        if kind == 0:
            self.call("codecs.decode", lambda: self._two(name.encode().decode("ascii"), "rot13", rot=True))
        elif kind == 1:
            self.call("codecs.encode", lambda: self._two(name, "rot13", rot=True))
        elif kind == 2:
            self.call("builtins.str", lambda: self._bytes_ascii(name))
        else:
            self.e.str(name)

    def _two(self, text: str, codec: str, rot: bool) -> int:
        import codecs

        self.e.str(codecs.encode(text, "rot13") if rot else text)
        self.e.str(codec)
        return 2

    def _bytes_ascii(self, name: str) -> int:
        self.e.bytes(name.encode())
        self.e.str("ascii")
        return 2

    def getattr_walk(self) -> None:
        """getattr(base, name) once or twice, names constant or computed; then perhaps call the result."""
        rng = self.rng
        e = self.e
        steps = rng.choice((1, 1, 2, 3))
        e.global_("builtins", "getattr")
        e.mark()
        self.walk_base()
        names = [rng.choice(ATTRIBUTE_NAMES) for _ in range(steps)]
        self.computed_name(names[0]) if rng.random() < 0.4 else e.str(names[0])
        e.tuple_from_mark()
        e.op(b"R")
        for name in names[1:]:
            if rng.random() < 0.3:
                self.pool.append(e.put())
            # getattr(<top>, name): rotate the base under the callable with a memo slot
            slot = e.put()
            e.op(b"0")
            e.global_("builtins", "getattr")
            e.mark()
            e.get(slot)
            self.computed_name(name) if rng.random() < 0.4 else e.str(name)
            e.tuple_from_mark()
            e.op(b"R")
        if rng.random() < 0.4:
            e.mark()
            self.odd_args()
            e.tuple_from_mark()
            e.op(b"R")
        elif rng.random() < 0.2:
            self.maybe_build()

    def walk_base(self) -> None:
        rng = self.rng
        kind = rng.randrange(5)
        if kind == 0:
            module = rng.choice(tuple(self.vocab.attributes))
            attrs = self.vocab.attributes[module]
            self.e.global_(module, rng.choice(attrs) if attrs else "__name__")
        elif kind == 1:
            self.name(rng.choice(self.vocab.allow_call))
        elif kind == 2:
            self.name(rng.choice(self.vocab.allow_build))
        elif kind == 3 and self.vocab.aliases:
            spelled, _ = rng.choice(self.vocab.aliases)
            head, _, attr = spelled.rpartition(".")
            self.e.global_(head, attr)
        else:
            self.value()

    def iterator_drain(self) -> None:
        """list(map(f, xs)) and friends: NEWOBJ or REDUCE of an iterator class, drained by a container."""
        rng = self.rng
        e = self.e
        drainer = rng.choice(DRAINERS)
        module, name = rng.choice(ITERATOR_CLASSES)
        self.name(".".join(drainer))
        e.mark()
        self.name(f"{module}.{name}")
        e.mark()
        if name in ("map", "filter", "starmap", "takewhile", "dropwhile", "filterfalse", "accumulate", "groupby"):
            self.callable_ref()
        e.op(b"]")
        e.mark()
        self.constant()
        e.op(b"e")
        e.tuple_from_mark()
        e.op(b"\x81" if e.protocol >= 2 and rng.random() < 0.5 else b"R")
        e.tuple_from_mark()
        e.op(b"R")

    def callable_ref(self) -> None:
        """A callable as an argument: allowlisted, payload, or computed."""
        rng = self.rng
        kind = rng.randrange(4)
        if kind == 0:
            self.name(rng.choice(self.vocab.allow_call))
        elif kind == 1:
            module, name, _ = rng.choice(PAYLOADS)
            self.name(f"{module}.{name}")
        elif kind == 2:
            self.name(rng.choice(self.vocab.deny))
        else:
            self.value()

    def three_arg_type(self) -> None:
        """type(name, bases, namespace) by REDUCE or NEWOBJ: a class is made and its bases' hooks run."""
        rng = self.rng
        e = self.e
        self.name("builtins.type")
        e.mark()
        e.str(rng.choice(("X", "E", "Module")))
        e.mark()
        base = rng.choice(self.vocab.call_classes + self.vocab.build_classes)
        self.name(base) if rng.random() < 0.8 else self.value()
        e.tuple_from_mark()
        e.op(b"}")
        if rng.random() < 0.5:
            e.str(rng.choice(("__init_subclass__", "__set_name__", "x", "__module__", "__hash__")))
            self.value()
            e.op(b"s")
        e.tuple_from_mark()
        e.op(b"\x81" if e.protocol >= 2 and rng.random() < 0.5 else b"R")
        if rng.random() < 0.4:
            e.op(b")\x81" if e.protocol >= 2 else b"(tR")  # instantiate the new class
            self.maybe_build()

    def reconstructor(self) -> None:
        """copyreg reconstructors with classes and bases of every kind."""
        rng = self.rng
        kind = rng.randrange(3)
        cls = rng.choice(self.vocab.call_classes + self.vocab.build_classes + [f"{m}.{n}" for m, n in UNLISTED_CLASSES])
        if kind == 0:
            base = rng.choice(("builtins.object", "builtins.dict", "builtins.list", cls, "collections.OrderedDict"))
            self.call("copyreg._reconstructor", lambda: self._reconstructor_state(cls, base))
        elif kind == 1:
            self.call("copyreg.__newobj__", lambda: self._newobj_args(cls))
        else:
            self.call("copyreg.__newobj_ex__", lambda: self._newobj_ex_args(cls))
        self.maybe_build()

    def _reconstructor_state(self, cls: str, base: str) -> int:
        self.name(cls)
        self.name(base)
        self.value() if self.rng.random() < 0.5 else self.e.none()
        return 3

    def _newobj_args(self, cls: str) -> int:
        self.name(cls)
        return 1 + self.odd_args()

    def _newobj_ex_args(self, cls: str) -> int:
        self.name(cls)
        self.constant_tuple(self.rng.randrange(2))
        self.e.op(b"}")
        return 3

    def partial_swap(self) -> None:
        """functools.partial(f) whose BUILD state (func, args, kwds, dict) replaces f, then called."""
        rng = self.rng
        e = self.e
        self.call("functools.partial", lambda: self._one_callable())
        if rng.random() < 0.7:
            e.mark()
            self.callable_ref()
            self.constant_tuple(rng.randrange(2))
            e.op(b"}")
            e.none() if rng.random() < 0.5 else e.op(b"}")
            e.tuple_from_mark()
            e.op(b"b")
        if rng.random() < 0.7:
            e.mark()
            self.odd_args()
            e.tuple_from_mark()
            e.op(b"R")

    def _one_callable(self) -> int:
        self.name(self.rng.choice(self.vocab.allow_call))
        return 1

    def hook_on_global(self) -> None:
        """BUILD, SETITEM or APPEND applied to a module, a class or a function instead of a new object."""
        rng = self.rng
        e = self.e
        kind = rng.randrange(4)
        if kind == 0:
            module = rng.choice(("builtins", "copyreg", "pickle", "os.path", "codecs", "collections", "sys"))
            head, _, attr = module.rpartition(".")
            e.global_(head, attr) if head else self.module_object(module)
        elif kind == 1:
            self.name(rng.choice(self.vocab.call_classes + self.vocab.build_classes))
        elif kind == 2:
            self.name(rng.choice(self.vocab.allow_call))
        else:
            self.call("builtins.type", lambda: self._one_value())  # type(x): the class of a value
        if rng.random() < 0.6:
            e.op(b"}")
            e.str(rng.choice(("__reduce_ex__", "__setstate__", "x", "__init__", "getattr", "loads", "__doc__")))
            self.callable_ref() if rng.random() < 0.5 else self.constant()
            e.op(b"s")
            e.op(b"b")
        else:
            self.items_on_top()

    def module_object(self, module: str) -> None:
        """A module object on the stack: through a dotted alias or getattr on a module holding it."""
        for spelled, target in self.vocab.aliases:
            if target == module:
                head, _, attr = spelled.rpartition(".")
                self.e.global_(head, attr)
                return
        self.call("cloudpickle.cloudpickle.subimport", lambda: self._text(module))

    def _text(self, text: str) -> int:
        self.e.str(text)
        return 1

    def _one_value(self) -> int:
        self.value()
        return 1

    def object_key(self) -> None:
        """An object as a dict key or set item: the loader runs its __hash__ and __eq__."""
        rng = self.rng
        e = self.e
        if rng.random() < 0.5 or e.protocol < 4:
            e.op(b"}")
            self.value()
            self.constant()
            e.op(b"s")
        else:
            e.op(b"\x8f")
            e.mark()
            self.value()
            e.op(b"\x90")

    def payload(self) -> None:
        """A dangerous primitive, reached directly or indirectly."""
        rng = self.rng
        e = self.e
        module, name, args = rng.choice(PAYLOADS)
        way = rng.randrange(6)
        if way == 0:
            self.call(f"{module}.{name}", lambda: self._push_all(args))
        elif way == 1:  # getattr(module, computed name)(args)
            e.global_("builtins", "getattr")
            e.mark()
            self.module_object(module)
            self.computed_name(name)
            e.tuple_from_mark()
            e.op(b"R")
            e.mark()
            self._push_all(args)
            e.tuple_from_mark()
            e.op(b"R")
        elif way == 2:  # through a partial
            self.call("functools.partial", lambda: self._payload_partial(module, name, args))
            e.op(b")R")
        elif way == 3:  # drained map
            self.name("builtins.list")
            e.mark()
            self.name("builtins.map")
            e.mark()
            self.name(f"{module}.{name}")
            e.op(b"]")
            e.mark()
            e.str(args[0] if args and isinstance(args[0], str) else "0")
            e.op(b"e")
            e.tuple_from_mark()
            e.op(b"R")
            e.tuple_from_mark()
            e.op(b"R")
        elif way == 4 and e.protocol >= 4:  # dotted STACK_GLOBAL through a module alias
            spellings = self.vocab.alias_to.get(module) or [module]
            spelled = rng.choice(spellings)
            head, _, attr = spelled.rpartition(".")
            e.global_(head or spelled, f"{attr}.{name}" if head else name, stack=True)
            e.mark()
            self._push_all(args)
            e.tuple_from_mark()
            e.op(b"R")
        else:  # a defaultdict whose factory is the payload, then a missing key is read by __getitem__... kept
            self.call("collections.defaultdict", lambda: self._one_name(f"{module}.{name}"))

    def _push_all(self, args: tuple[Any, ...]) -> int:
        for arg in args:
            self.push(arg)
        return len(args)

    def _payload_partial(self, module: str, name: str, args: tuple[Any, ...]) -> int:
        self.name(f"{module}.{name}")
        return 1 + self._push_all(args)

    def _one_name(self, dotted: str) -> int:
        self.name(dotted)
        return 1

    def push(self, value: Any) -> None:
        e = self.e
        if value is None:
            e.none()
        elif isinstance(value, bool):
            e.bool(value)
        elif isinstance(value, int):
            e.int(value)
        elif isinstance(value, str):
            e.str(value)
        elif isinstance(value, bytes):
            e.bytes(value)
        elif isinstance(value, (tuple, list)):
            e.mark()
            for item in value:
                self.push(item)
            e.op(b"t" if isinstance(value, tuple) else b"l")
        else:
            raise TypeError(type(value).__name__)

    def odd_opcodes(self) -> None:
        """Stack and memo games around a value: DUP, POP_MARK, EXT, PERSID, MEMOIZE of marks."""
        rng = self.rng
        e = self.e
        kind = rng.randrange(6)
        if kind == 0:
            self.value()
            e.op(b"2")  # DUP
            e.op(b"0")
        elif kind == 1:
            e.mark()
            self.value()
            self.value()
            e.op(b"1")  # POP_MARK discards both
            self.value()
        elif kind == 2 and e.protocol >= 2:
            e.op(rng.choice((b"\x82\x01", b"\x83\x00\x01", b"\x84\x01\x00\x00\x00")))  # EXT: nothing registered
        elif kind == 3:
            self.constant_tuple(0)
            e.op(b"Q")  # BINPERSID: our loaders return a stub object
        elif kind == 4:
            e.op(b"Pid\n")
        else:
            self.value()
            slot = e.put()
            e.op(b"0")
            e.get(slot)

    def stack_games(self) -> None:
        rng = self.rng
        e = self.e
        roll = rng.random()
        if roll < 0.1:
            e.op(b"2")
            e.op(b"0")
        elif roll < 0.15:
            self.constant()
            e.op(b"0")
        elif roll < 0.2:
            e.mark()
            self.constant()
            e.op(b"1")


# ---------------------------------------------------------------- templates

Template = Callable[[Program], int]


def _args(*values: Any) -> Template:
    def emit(p: Program) -> int:
        return p._push_all(values)

    return emit


def _one_of(*templates: Template) -> Template:
    return lambda p: p.rng.choice(templates)(p)


def _dtype(p: Program) -> int:
    p.e.str(p.rng.choice(("f8", "i4", "u1", "O", "M8[ns]", "<f4", "b1", "U3", "V8")))
    p.e.bool(False)
    p.e.bool(True)
    return 3


def _ndarray_reconstruct(p: Program) -> int:
    p.name("numpy.ndarray")
    p.push((0,))
    p.e.bytes(b"b")
    return 3


def _rebuild_tensor(p: Program) -> int:
    e = p.e
    e.mark()
    e.str("storage")
    p.name(p.rng.choice(("torch.FloatStorage", "torch.LongStorage", "torch.HalfStorage", "torch.ByteStorage")))
    e.str("0")
    e.str("cpu")
    e.int(4)
    e.tuple_from_mark()
    e.op(b"Q")
    p.push(0)
    p.push((2,))
    p.push((1,))
    e.bool(False)
    p.name("collections.OrderedDict")
    e.op(b")R")
    return 6


def _reconstructor(p: Program) -> int:
    return p._reconstructor_args(p.rng.choice(p.vocab.build_classes), "builtins.object")


def _newobj(p: Program) -> int:
    return p._name_count(p.rng.choice(p.vocab.build_classes + p.vocab.call_classes))


def _getattr_args(p: Program) -> int:
    p.walk_base()
    p.e.str(p.rng.choice(ATTRIBUTE_NAMES))
    return 2


def _pairs(p: Program) -> int:
    e = p.e
    e.op(b"]")
    e.mark()
    for _ in range(p.rng.randrange(0, 3)):
        p.constant_tuple(2)
    e.op(b"e")
    return 1


TEMPLATES: dict[str, Template] = {
    "builtins.getattr": _getattr_args,
    "builtins.type": lambda p: p._one_value(),
    "builtins.int": _one_of(_args("12"), _args("ff", 16), _args(7)),
    "builtins.float": _one_of(_args("1.5"), _args("nan")),
    "builtins.str": _one_of(_args("x"), _args(b"abc", "ascii"), lambda p: p._one_value()),
    "builtins.bytes": _one_of(_args("abc", "latin1"), _args(3), _args([1, 2])),
    "builtins.bytearray": _one_of(_args(b"ab"), _args(2)),
    "builtins.bytes.fromhex": _args("0a0b"),
    "builtins.complex": _args(1, 2),
    "builtins.range": _one_of(_args(3), _args(0, 10, 2)),
    "builtins.slice": _args(1, 5, None),
    "builtins.set": _pairs,
    "builtins.frozenset": _pairs,
    "builtins.list": _pairs,
    "builtins.tuple": _pairs,
    "builtins.dict": _pairs,
    "builtins.len": _args("abc"),
    "builtins.max": _args([3, 1, 2]),
    "builtins.min": _args([3, 1, 2]),
    "builtins.sum": _args([1, 2]),
    "builtins.divmod": _args(7, 2),
    "builtins.round": _args(2, 0),
    "builtins.abs": _args(-3),
    "builtins.bool": _args(1),
    "builtins.object": _args(),
    "collections.OrderedDict": _one_of(_args(), _pairs),
    "collections.defaultdict": _one_of(lambda p: p._one_name("builtins.list"), _args()),
    "collections.deque": _one_of(_args([1, 2]), _args([], 3)),
    "collections.Counter": _one_of(_args("abca"), _args()),
    "copyreg._reconstructor": _reconstructor,
    "copyreg.__newobj__": _newobj,
    "codecs.decode": _one_of(_args("6162", "hex"), _args("flfgrz", "rot13"), _args(b"YWJj", "base64")),
    "codecs.encode": _one_of(_args("abc", "latin1"), _args("system", "rot13")),
    "_codecs.encode": _args("abc", "latin1"),
    "base64.b64decode": _args("YWJj"),
    "binascii.a2b_base64": _args("YWJj"),
    "zlib.decompress": _args(b"x\x9c\x03\x00\x00\x00\x00\x01"),
    "datetime.datetime": _one_of(_args(2024, 1, 2), _args(b"\x07\xe8\x01\x02\x03\x04\x05\x00\x00\x00")),
    "datetime.date": _args(2020, 1, 1),
    "datetime.time": _args(1, 2),
    "datetime.timedelta": _args(1, 2, 3),
    "decimal.Decimal": _args("1.25"),
    "fractions.Fraction": _args(1, 3),
    "uuid.UUID": _args("12345678123456781234567812345678"),
    "pathlib.PurePosixPath": _args("a", "b"),
    "pathlib.PosixPath": _args("a"),
    "pathlib.Path": _args("a"),
    "pathlib.PurePath": _args("a"),
    "pathlib.PureWindowsPath": _args("a"),
    "re._compile": _args("a+", 0),
    "array._array_reconstructor": lambda p: p._push_all(()) + _array_args(p),
    "array.array": _args("i", [1, 2]),
    "argparse.Namespace": _args(),
    "types.SimpleNamespace": _args(),
    "functools.partial": lambda p: p._one_callable(),
    "numpy.dtype": _dtype,
    "numpy.core.multiarray._reconstruct": _ndarray_reconstruct,
    "numpy._core.multiarray._reconstruct": _ndarray_reconstruct,
    "torch._utils._rebuild_tensor_v2": _rebuild_tensor,
    "torch.device": _args("cpu"),
    "torch.Size": _args((2, 3)),
    "cloudpickle.cloudpickle.subimport": _one_of(_args("collections"), _args("os"), _args("numpy")),
    "dill._dill._import_module": _one_of(_args("collections"), _args("os")),
    "dill._dill._load_type": _one_of(_args("FunctionType"), _args("CodeType"), _args("ModuleType")),
    "cloudpickle.cloudpickle._builtin_type": _one_of(_args("FunctionType"), _args("CodeType")),
}


def _array_args(p: Program) -> int:
    p.name("array.array")
    p.push("i")
    p.push(8)
    p.e.bytes(b"\x01\x00\x00\x00")
    return 4


# ------------------------------------------------------------------ the generator


class Generator:
    """Case ``index`` of campaign ``seed``: bytes and a short origin label, the same on every run."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.vocab = vocabulary()

    def case(self, index: int) -> tuple[bytes, str]:
        rng = random.Random(self.seed * 1_000_003 + index)
        protocol = rng.choice((0, 1, 2, 2, 3, 4, 4, 5, 5))
        hostile = rng.choice((0.0, 0.0, 0.0, 0.05, 0.2, 0.6))
        program = Program(rng, self.vocab, protocol, hostile)
        try:
            data = program.build()
        except RecursionError:
            data = b"N."
        return data, f"gen:p{protocol}:h{hostile}"

    def cases(self, start: int, stop: int, step: int = 1) -> Iterator[tuple[int, bytes, str]]:
        for index in range(start, stop, step):
            data, origin = self.case(index)
            yield index, data, origin


if __name__ == "__main__":
    import pickletools

    generator = Generator(int(sys.argv[1]) if len(sys.argv) > 1 else 0)
    for number in range(int(sys.argv[2]) if len(sys.argv) > 2 else 3):
        blob, label = generator.case(number)
        print(label, blob.hex())
        try:
            pickletools.dis(blob)
        except Exception as exc:  # noqa: BLE001 - generated programs may be invalid on purpose
            print("  (disassembly stops:", exc, ")")
