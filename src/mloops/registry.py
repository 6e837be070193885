"""The one registry of formats and rules: each module of the attack-surface folders (and of ``sources``) declares the
formats it recognises or records in a module-level ``FORMATS`` tuple, and sniffing, dispatch, archive
layouts and the per-format summary are all derived from those declarations.

A new format is one module with its ``FORMATS`` and the ``Rule`` declarations of what it reports: nothing else
lists them (``all_rules`` finds every module-level rule).
"""

from __future__ import annotations

import functools
import importlib
import os
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from .context import Handler
    from .core import AttackClass, Rule

KINDS = ("code", "safe", "archive", "wrapper", "other")
GROUPS = ("model", "data", "notebook", "source", "deployment", "other")
# Where format modules live: the containers and the attack surfaces that hold files.
PACKAGES = ("sources", "models", "datasets", "notebooks", "mlcode", "deployments")


class Layout(NamedTuple):
    """An archive layout a loader recognises by its member names, and the role each member then has."""

    container: str  # "zip" or "tar": the archive the names are read from
    order: int  # layouts are tried in this order; the first is the archive's label
    matches: Callable[[Sequence[str]], bool]  # the member names, in archive order
    members: Callable[[str], Handler | None] | None = None  # a member's handler by its name; None: sniff it
    fallback: bool = False  # only when no layout of a lower order matched


class Format(NamedTuple):
    """One format label: what it can do (kind), what a user calls it (title), how it is found and judged.

    kind = "code"     loading can run code or call named objects by design; mloops scans for that
           "safe"     data only: the usual loader runs no code
           "archive"  a plain container; its members are what matters
           "wrapper"  a compression layer: a file counts as what it wraps
           "other"    not a model
    group = what the inventory counts a file as; by default "model", or "other" for kind "other".
    """

    label: str
    kind: str
    title: str
    group: str = ""
    handler: Handler | None = None  # called for content sniffed as this format
    magic: tuple[bytes, ...] = ()  # byte prefixes that identify it, checked before any detector
    detect: Callable[[bytes, str], bool] | None = None  # (first bytes, name) -> whether it is this format
    order: int = 0  # detectors run in this order, most specific first
    extensions: tuple[str, ...] = ()  # names under which a file is expected to be a model of this format
    layout: Layout | None = None
    pickled: bool = False  # assets of this label are pickle streams: loading them runs code by design

    @property
    def inventory_group(self) -> str:
        return self.group or ("other" if self.kind == "other" else "model")


# The pipeline's own labels for content no format claimed.
OWN = (
    Format("other", "other", "not a model"),
    Format("unrecognized", "other", "unrecognized"),
    Format("git-lfs-pointer", "other", "Git LFS pointer"),
    Format("not-a-model", "other", "named like a model, but an image, document, web page or text"),
)


@functools.cache
def catalog() -> dict[str, Format]:
    """Every declared format by label; a label declared twice, or an unknown kind or group, fails here."""
    entries: dict[str, Format] = {}
    for fmt in (*OWN, *_declared()):
        if fmt.label in entries:
            raise ValueError(f"format label {fmt.label!r} is declared twice")
        if fmt.kind not in KINDS or fmt.inventory_group not in GROUPS:
            raise ValueError(f"format {fmt.label!r}: unknown kind {fmt.kind!r} or group {fmt.group!r}")
        if (fmt.magic or fmt.detect) and fmt.handler is None:
            raise ValueError(f"format {fmt.label!r} is detected but has no handler")
        entries[fmt.label] = fmt
    return entries


def _declared() -> list[Format]:
    return [fmt for _, module in _declaring() for fmt in module.FORMATS]


@functools.cache
def _declaring() -> tuple[tuple[ModuleType, ModuleType], ...]:
    """(surface package, module) of every module that declares formats: found once for the catalog and the
    surfaces alike."""
    packages = [importlib.import_module(f"{__package__}.{name}") for name in PACKAGES]
    return tuple((package, module) for package in packages for module in package_modules(package, _DECLARES))


# A module that declares formats says so at the start of a line; only those are imported to build the
# catalog, so that a scan does not pay for helpers it may never use (chat_template imports Jinja2).
_DECLARES = b"\nFORMATS = "


def _modules() -> list[ModuleType]:
    packages = (importlib.import_module(f"{__package__}.{name}") for name in PACKAGES)
    return [module for package in packages for module in package_modules(package)]


def package_modules(package: ModuleType, declaring: bytes | None = None) -> list[ModuleType]:
    """The modules of a package in name order; with ``declaring``, only those whose source holds it."""
    folder = package.__path__[0]
    names = sorted(name[:-3] for name in os.listdir(folder) if name.endswith(".py") and name != "__init__.py")
    if declaring is not None:
        names = [name for name in names if declaring in _source(os.path.join(folder, name + ".py"))]
    return [importlib.import_module(f"{package.__name__}.{name}") for name in names]


def _source(path: str) -> bytes:
    with open(path, "rb") as handle:
        return handle.read()


@functools.cache
def all_rules() -> tuple[Rule, ...]:
    """Every rule by id: the shared ones of ``rules.py`` and those declared beside the code that emits them
    (any module-level Rule of the format packages, the pickle engine and the platform probes); two rules
    with one id fail here."""
    from . import picklevm, platforms, rules
    from .core import Rule

    modules = [rules, *_modules(), *package_modules(picklevm), *package_modules(platforms)]
    found = {id(v): v for module in modules for v in vars(module).values() if isinstance(v, Rule)}
    ids = [rule.id for rule in found.values()]
    twice = sorted({i for i in ids if ids.count(i) > 1})
    if twice:
        raise ValueError(f"rule ids declared twice: {twice}")
    return tuple(sorted(found.values(), key=lambda rule: rule.id))


@functools.cache
def surfaces() -> dict[str, AttackClass]:
    """Format label -> the attack class of the surface folder that declares it (sources declare none)."""
    return {
        fmt.label: package.ATTACK_CLASS
        for package, module in _declaring()
        if hasattr(package, "ATTACK_CLASS")
        for fmt in module.FORMATS
    }


@functools.cache
def magic() -> tuple[tuple[bytes, str], ...]:
    return tuple((prefix, fmt.label) for fmt in catalog().values() for prefix in fmt.magic)


@functools.cache
def detectors() -> tuple[Format, ...]:
    return tuple(sorted((f for f in catalog().values() if f.detect), key=lambda f: (f.order, f.label)))


@functools.cache
def layouts(container: str) -> tuple[Format, ...]:
    found = [f for f in catalog().values() if f.layout and f.layout.container == container]
    return tuple(sorted(found, key=lambda f: (f.layout.order if f.layout else 0, f.label)))


def matching_layouts(container: str, names: Sequence[str]) -> tuple[str, ...]:
    """Every loader layout the member names match, in layout order."""
    matched: list[str] = []
    for fmt in layouts(container):
        assert fmt.layout is not None
        if fmt.layout.fallback and matched:
            continue
        if fmt.layout.matches(names):
            matched.append(fmt.label)
    return tuple(matched)


@functools.cache
def model_extensions() -> tuple[str, ...]:
    return tuple(sorted({ext for fmt in catalog().values() for ext in fmt.extensions}))


def handler(label: str) -> Handler:
    found = catalog()[label].handler
    assert found is not None, label
    return found


def member_handler(layout: str, name: str) -> Handler | None:
    """The handler a layout gives the member ``name``, or None when the member is identified by content."""
    fmt = catalog().get(layout)
    if fmt is None or fmt.layout is None or fmt.layout.members is None:
        return None
    return fmt.layout.members(name)
