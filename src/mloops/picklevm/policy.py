"""What a pickle may reach while loading: the reviewed data files, and the verdict on a name.

The data lives in the data/ folder next to this module:
  allow/call/*.txt   callables safe to invoke with any arguments while loading
  allow/build/*.txt  classes and objects safe to import, to create with __new__ and to
                     give state by BUILD, but not to call; one ecosystem a file
  deny.toml        known dangerous primitives, grouped by what they give an attacker
  semantics.toml   callables whose arguments get called, instantiated or deserialized,
                   and resolvers (getattr, import) whose result the engine can name
  names.toml       spellings that reach the same object (posix.system is os.system)

Anything neither allowed nor denied is unknown, and unknown is reported.
"""

from __future__ import annotations

import _compat_pickle
import os
import tomllib
from functools import lru_cache
from typing import NamedTuple

from ..core import Capability, Severity


class Category(NamedTuple):
    key: str
    severity: Severity
    capability: Capability
    why: str


class Verdict(NamedTuple):
    status: str  # SAFE, BUILD_ONLY, DANGEROUS, INTROSPECTION or UNKNOWN
    name: str  # canonical dotted name that was judged
    category: Category | None = None
    reached: str | None = None  # the denied name actually reached, when it differs from `name`


class CallSemantics(NamedTuple):
    calls: tuple[int, ...] = ()
    instantiates: tuple[int, ...] = ()
    loads: tuple[int, ...] = ()
    resolves: str | None = None  # "attribute", "module", "object", "builtin-type"
    folds: str | None = None  # pure decoder the engine may evaluate on constants
    wraps: int | None = None  # calling the result calls this argument (functools.partial)


MAX_PARTS = 64  # longer dotted names are judged on their first parts (and their dunders)

SAFE = "safe"
BUILD_ONLY = "build-only"
DANGEROUS = "dangerous"
INTROSPECTION = "introspection"
UNKNOWN = "unknown"

_INTROSPECTION_CATEGORY = Category(
    "introspection",
    Severity.CRITICAL,
    Capability.CODE_EXECUTION,
    "walks dunder attributes to reach interpreter internals (builtins, globals, subclasses)",
)


def _is_dunder(part: str) -> bool:
    return len(part) > 4 and part.startswith("__") and part.endswith("__")


class Policy:
    def __init__(
        self,
        allow_call: frozenset[str],
        allow_build: frozenset[str],
        deny: dict[str, Category],
        semantics: dict[str, CallSemantics],
        aliases: dict[str, str],
        reach_through: frozenset[str],
    ) -> None:
        self.allow_call = allow_call
        self.allow_build = allow_build
        self.deny = deny
        self.semantics = semantics
        self.aliases = aliases
        self.reach_through = reach_through

    def canonical(self, module: str, qualname: str) -> tuple[str, str]:
        """The spelling Python 3 resolves: py2 names mapped as the unpickler maps them, aliases folded."""
        mapped = _compat_pickle.NAME_MAPPING.get((module, qualname))
        if mapped is not None:
            module, qualname = mapped
        else:
            module = _compat_pickle.IMPORT_MAPPING.get(module, module)
        head, _, rest = module.partition(".")
        alias = self.aliases.get(module) or self.aliases.get(head)
        if alias is not None:
            module = alias if module in self.aliases else f"{alias}.{rest}"
        return module, qualname

    def semantics_of(self, name: tuple[str, str]) -> CallSemantics | None:
        return self.semantics.get(_dotted(name))

    def judge(self, name: tuple[str, str]) -> Verdict:
        qualname = name[1]
        dotted = _dotted(name)
        if dotted in self.allow_call:
            return Verdict(SAFE, dotted)
        if dotted in self.allow_build:
            return Verdict(BUILD_ONLY, dotted)
        parts = dotted.split(".")[:MAX_PARTS]
        category = self._denied(parts)
        if category is not None:
            return Verdict(DANGEROUS, dotted, category)
        # Attribute paths can pass through another module: pathlib.os.system is os.system.
        for start in range(1, len(parts)):
            if parts[start] in self.reach_through:
                reached = [self.aliases.get(parts[start], parts[start]), *parts[start + 1 :]]
                category = self._denied(reached)
                if category is not None:
                    return Verdict(DANGEROUS, dotted, category, ".".join(reached))
        if any(_is_dunder(part) for part in qualname.split(".")):
            return Verdict(INTROSPECTION, dotted, _INTROSPECTION_CATEGORY)
        return Verdict(UNKNOWN, dotted)

    def _denied(self, parts: list[str]) -> Category | None:
        for end in range(len(parts), 0, -1):
            category = self.deny.get(".".join(parts[:end]))
            if category is not None:
                return category
        return None


def _dotted(name: tuple[str, str]) -> str:
    module, qualname = name
    return f"{module}.{qualname}" if qualname else module


DATA = os.path.join(os.path.dirname(__file__), "data")


def _read_text(*parts: str) -> str:
    with open(os.path.join(DATA, *parts), encoding="utf-8") as handle:
        return handle.read()


def _load_allow(tier: str) -> frozenset[str]:
    names: set[str] = set()
    for entry in sorted(os.listdir(os.path.join(DATA, "allow", tier))):
        if entry.endswith(".txt"):
            for line in _read_text("allow", tier, entry).splitlines():
                line = line.split("#", 1)[0].strip()
                if line:
                    names.add(line)
    return frozenset(names)


def _load_deny() -> dict[str, Category]:
    data = tomllib.loads(_read_text("deny.toml"))
    deny: dict[str, Category] = {}
    for key, spec in data.items():
        category = Category(key, Severity.parse(spec["severity"]), Capability[spec["capability"].upper()], spec["why"])
        for name in spec["names"]:
            if name in deny:
                raise ValueError(f"deny.toml lists {name} twice")
            deny[name] = category
    return deny


def _load_semantics() -> dict[str, CallSemantics]:
    data = tomllib.loads(_read_text("semantics.toml"))
    return {
        name: CallSemantics(
            calls=tuple(spec.get("calls", ())),
            instantiates=tuple(spec.get("instantiates", ())),
            loads=tuple(spec.get("loads", ())),
            resolves=spec.get("resolves"),
            folds=spec.get("folds"),
            wraps=spec.get("wraps"),
        )
        for name, spec in data.items()
    }


@lru_cache(maxsize=1)
def default_policy() -> Policy:
    names = tomllib.loads(_read_text("names.toml"))
    return Policy(
        allow_call=_load_allow("call"),
        allow_build=_load_allow("build"),
        deny=_load_deny(),
        semantics=_load_semantics(),
        aliases=dict(names["aliases"]),
        reach_through=frozenset(names["reach_through"]),
    )
