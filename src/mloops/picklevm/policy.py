"""What a pickle may reach while loading: the reviewed data files, and the verdict on a name.

The data lives in the data/ folder next to this module:
  allow/call/*.toml  callables safe to call while loading, each with its signature: how many
                     arguments it takes and what it does with each (signatures.toml explains)
  allow/build/*.txt  classes and objects safe to import, to create with __new__ and to
                     give state by BUILD, but not to call; one ecosystem a file
  allow/overrides.toml  reviewed names under a denied prefix that are plain data (os.stat_result)
  deny.toml        known dangerous primitives, grouped by what they give an attacker
  signatures.toml  what some denied callables do with their arguments (payloads, names to resolve)
  names.toml       module spellings that reach the same module (posix.system is os.system)
  aliases.txt      attributes that are another module or object (enum.bltns is builtins),
                   generated from the libraries by scripts/generate_aliases.py

Anything neither allowed nor denied is unknown, and unknown is reported.
"""

from __future__ import annotations

import _compat_pickle
import os
import tomllib
from functools import lru_cache
from typing import Any, NamedTuple

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


class Signature(NamedTuple):
    """What a callable does with its arguments while a file loads (data/signatures.toml).

    Each positional argument has a role; see signatures.toml for their meaning. A callable
    without an entry has the default signature: any number of arguments, all used as data.
    """

    params: tuple[tuple[str, str], ...] = ()  # (role, reference) per argument: "call:2" is ("call", "2")
    rest: tuple[str, str] = ("data", "")  # role of the arguments after ``params``
    arity: tuple[int, int] | None = None  # (least, most) arguments; most = -1 for no bound
    resolves: str | None = None  # "attribute", "module", "object", "builtin-type"
    folds: str | None = None  # pure decoder the engine may evaluate on constants
    wraps: int | None = None  # calling the result calls this argument (functools.partial)
    returns: str | None = None  # the class of the result, when it is not the callable itself (re._compile)
    new: bool = False  # a class also created with __new__ alone (NEWOBJ), without being called

    def role(self, index: int) -> tuple[str, str]:
        return self.params[index] if index < len(self.params) else self.rest

    def accepts(self, count: int) -> bool:
        if self.arity is None:
            return True
        least, most = self.arity
        return count >= least and (most < 0 or count <= most)

    @property
    def restrictive(self) -> bool:
        """True when calling it with arguments the engine cannot see might leave its reviewed forms."""
        return bool(
            self.arity is not None
            or self.params
            or self.rest != ("data", "")
            or self.resolves
            or self.wraps is not None
        )


DEFAULT_SIGNATURE = Signature()
ROLES = frozenset(
    {
        *("data", "drain", "keys", "pairs", "text", "numeral", "none", "repr", "object", "store"),
        *("name", "call", "init", "base", "new", "construct", "payload"),
    }
)


MAX_PARTS = 64  # longer dotted names are judged on their first parts (and their dunders)
MAX_CACHED_VERDICTS = 50_000

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


class PolicyData(NamedTuple):
    allow_call: frozenset[str]
    allow_build: frozenset[str]
    deny: dict[str, Category]
    signatures: dict[str, Signature]
    enums: frozenset[str]  # allowlisted enum classes, whose public attributes are members
    shared: frozenset[str]  # classes and factories that return an existing object (names.toml)
    shared_when_called: frozenset[str]  # ... when called, while their __new__ makes a fresh one
    state_uses: dict[str, frozenset[str]]  # class-name prefix -> state keys its __setstate__ uses at once
    repr_state: frozenset[str]  # classes whose pybind11 __setstate__ reprs a state it rejects
    aliases: dict[str, str]  # module spellings: posix -> os
    attribute_aliases: dict[str, str]  # dotted attributes that are another object, found by identity
    reach_through: frozenset[str]


class Policy:
    def __init__(self, data: PolicyData) -> None:
        self.data = data
        self.allow_call = data.allow_call
        self.allow_build = data.allow_build
        self.deny = data.deny
        self.signatures = data.signatures
        self.enums = data.enums
        self.shared = data.shared
        self.shared_when_called = data.shared_when_called
        self.state_uses = data.state_uses
        self.repr_state = data.repr_state
        self.aliases = data.aliases
        self.attribute_aliases = data.attribute_aliases
        self.reach_through = data.reach_through
        self._verdicts: dict[tuple[str, str], Verdict] = {}

    def canonical(self, module: str, qualname: str) -> tuple[str, str]:
        """The spelling Python 3 resolves: py2 names mapped as the unpickler maps them, aliases folded."""
        mapped = _compat_pickle.NAME_MAPPING.get((module, qualname))
        if mapped is not None:
            module, qualname = mapped
        else:
            module = _compat_pickle.IMPORT_MAPPING.get(module, module)
        module, qualname = self._attribute_alias(self._module_alias(module), qualname)
        return self._module_alias(module), qualname  # an attribute may be a private module: _io is io

    def _module_alias(self, module: str) -> str:
        head, _, rest = module.partition(".")
        alias = self.aliases.get(module) or self.aliases.get(head)
        if alias is None:
            return module
        return alias if module in self.aliases else f"{alias}.{rest}"

    def _attribute_alias(self, module: str, qualname: str) -> tuple[str, str]:
        """enum.bltns.exec is builtins.exec: the longest dotted prefix that is another object, replaced.

        Only prefixes reaching into the qualname count: a module path that passes through an
        attribute cannot be imported, and the load stops there.
        """
        table = self.attribute_aliases
        if not table or not qualname:
            return module, qualname
        base = module.split(".")
        attrs = qualname.split(".")[:MAX_PARTS]
        for end in range(len(attrs), 0, -1):
            target = table.get(".".join([*base, *attrs[:end]]))
            if target is not None:
                target_module, _, target_qualname = target.partition(":")
                joined = ".".join(part for part in (target_qualname, *attrs[end:]) if part)
                return target_module, joined
        return module, qualname

    def state_used(self, name: tuple[str, str]) -> frozenset[str]:
        """The state keys the class's own __setstate__ uses at once (names.toml [state_uses])."""
        cls = dotted(name)
        for prefix, keys in self.state_uses.items():
            if cls.startswith(prefix):
                return keys
        return frozenset()

    def signature_of(self, name: tuple[str, str]) -> Signature:
        return self.signatures.get(dotted(name), DEFAULT_SIGNATURE)

    def judge(self, name: tuple[str, str]) -> Verdict:
        verdict = self._verdicts.get(name)
        if verdict is None:
            if len(self._verdicts) > MAX_CACHED_VERDICTS:  # a file naming 300,000 globals must not grow it
                self._verdicts.clear()
            verdict = self._verdicts[name] = self._judge(name)
        return verdict

    def _judge(self, name: tuple[str, str]) -> Verdict:
        qualname = name[1]
        full = dotted(name)
        if full in self.allow_call:
            return Verdict(SAFE, full)
        if full in self.allow_build:
            return Verdict(BUILD_ONLY, full)
        owner, _, member = full.rpartition(".")
        if owner in self.enums and not member.startswith("_"):
            return Verdict(BUILD_ONLY, full)  # getattr(Color, "RED"): a member (Python 3.12+ pickles enums so)
        parts = full.split(".")[:MAX_PARTS]
        category = self._denied(parts)
        if category is not None:
            return Verdict(DANGEROUS, full, category)
        # Attribute paths can pass through another module: pathlib.os.system is os.system.
        for start in range(1, len(parts)):
            if parts[start] in self.reach_through:
                reached = [self.aliases.get(parts[start], parts[start]), *parts[start + 1 :]]
                category = self._denied(reached)
                if category is not None:
                    return Verdict(DANGEROUS, full, category, ".".join(reached))
        if any(_is_dunder(part) for part in qualname.split(".")):
            return Verdict(INTROSPECTION, full, _INTROSPECTION_CATEGORY)
        return Verdict(UNKNOWN, full)

    def _denied(self, parts: list[str]) -> Category | None:
        for end in range(len(parts), 0, -1):
            category = self.deny.get(".".join(parts[:end]))
            if category is not None:
                return category
        return None


def dotted(name: tuple[str, str]) -> str:
    module, qualname = name
    return f"{module}.{qualname}" if qualname else module


DATA = os.path.join(os.path.dirname(__file__), "data")


def _read_text(*parts: str) -> str:
    with open(os.path.join(DATA, *parts), encoding="utf-8") as handle:
        return handle.read()


def _load_build_tier() -> frozenset[str]:
    names: set[str] = set()
    for entry in sorted(os.listdir(os.path.join(DATA, "allow", "build"))):
        if entry.endswith(".txt"):
            for line in _read_text("allow", "build", entry).splitlines():
                line = line.split("#", 1)[0].strip()
                if line:
                    names.add(line)
    return frozenset(names)


class CallTier(NamedTuple):
    names: frozenset[str]
    signatures: dict[str, Signature]  # only those narrower than the default
    enums: frozenset[str]  # enum classes: their public attributes are members, plain data


def _load_call_tier() -> CallTier:
    names: set[str] = set()
    signatures: dict[str, Signature] = {}
    enums: set[str] = set()
    folder = os.path.join(DATA, "allow", "call")
    tables = [(entry, tomllib.loads(_read_text("allow", "call", entry))) for entry in sorted(os.listdir(folder))]
    overrides = tomllib.loads(_read_text("allow", "overrides.toml"))
    tables.append(("overrides.toml", {name: spec for name, spec in overrides.items() if spec["tier"] == "call"}))
    for entry, table in tables:
        for name, spec in table.items():
            if name in names:
                raise ValueError(f"allow/call: {name} is listed twice (again in {entry})")
            names.add(name)
            if spec.get("enum"):
                enums.add(name)
                # An enum is called with one member value; with more it builds a new enum class (functional API).
                spec = {"arity": [1, 1], **spec}
            signature = _signature(name, spec)
            if signature != DEFAULT_SIGNATURE:
                signatures[name] = signature
    return CallTier(frozenset(names), signatures, frozenset(enums))


def _load_overridden_build_names() -> frozenset[str]:
    overrides = tomllib.loads(_read_text("allow", "overrides.toml"))
    return frozenset(name for name, spec in overrides.items() if spec["tier"] == "build")


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


def _signature(name: str, spec: dict[str, Any]) -> Signature:
    arity = spec.get("arity")
    signature = Signature(
        params=tuple(_role(role) for role in spec.get("params", ())),
        rest=_role(spec.get("rest", "data")),
        arity=(arity[0], arity[1]) if arity else None,
        resolves=spec.get("resolves"),
        folds=spec.get("folds"),
        wraps=spec.get("wraps"),
        returns=spec.get("returns"),
        new=spec.get("new", False),
    )
    unknown = {role for role, _ in (*signature.params, signature.rest)} - ROLES
    if unknown:
        raise ValueError(f"{name} has unknown roles {sorted(unknown)}")
    return signature


def _load_denied_signatures() -> dict[str, Signature]:
    return {name: _signature(name, spec) for name, spec in tomllib.loads(_read_text("signatures.toml")).items()}


def _role(text: str) -> tuple[str, str]:
    role, _, reference = text.partition(":")
    return role, reference


def _load_attribute_aliases() -> dict[str, str]:
    # Plain lines, not TOML: thousands of them, read at every start.
    aliases = {}
    for line in _read_text("aliases.txt").splitlines():
        if line and not line.startswith("#"):
            name, target = line.split()
            aliases[name] = target
    return aliases


@lru_cache(maxsize=1)
def default_policy() -> Policy:
    names = tomllib.loads(_read_text("names.toml"))
    call_tier = _load_call_tier()
    denied_signatures = _load_denied_signatures()
    if set(denied_signatures) & call_tier.names:
        raise ValueError("signatures.toml is for denied callables; allowlisted ones carry theirs in allow/call/")
    return Policy(
        PolicyData(
            allow_call=call_tier.names,
            allow_build=_load_build_tier() | _load_overridden_build_names(),
            deny=_load_deny(),
            signatures={**call_tier.signatures, **denied_signatures},
            enums=call_tier.enums,
            shared=frozenset(names["shared"]),
            shared_when_called=frozenset(names["shared_when_called"]),
            state_uses={prefix: frozenset(keys) for prefix, keys in names["state_uses"].items()},
            repr_state=frozenset(names["repr_state"]),
            aliases=dict(names["aliases"]),
            attribute_aliases=_load_attribute_aliases(),
            reach_through=frozenset(names["reach_through"]),
        )
    )
