"""What TorchScript code and torch.export graphs may call: the reviewed operator data
(``data/torchscript_ops.toml``), and how a flagged use becomes a finding (rule MLO150)."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import NamedTuple

from ..context import Item, ScanContext
from ..core import AttackClass, Capability, Rule, Severity
from ..data import load_toml
from ..picklevm.policy import Category

TORCHSCRIPT_DANGEROUS_CODE = Rule(
    id="MLO150",
    name="torchscript-dangerous-code",
    title="TorchScript code calls an operation that reaches files, processes or native code",
    severity=Severity.HIGH,
    attack_class=AttackClass.MALICIOUS_MODEL,
    capability=Capability.FILE_ACCESS,
    description=(
        "The serialized TorchScript program (the archive's code/ folder) runs when the module is called. "
        "Operations that open files, save or load other archives, or call custom native operators reach "
        "beyond tensor math."
    ),
    remediation="Do not run the module. Re-export it from reviewed model code.",
    summary="TorchScript code or a `.pt2` graph calls file operators, custom native operators or Python escapes.",
)


TIME_CHECK_EVERY = 4096  # nodes between deadline checks


class OpTable(NamedTuple):
    """The reviewed operator data of ``data/torchscript_ops.toml``."""

    builtin_namespaces: frozenset[str]
    builtin_class_namespaces: frozenset[str]
    allowed_dunders: frozenset[str]
    export_functions: frozenset[str]
    ops: dict[str, Category]  # "<ns>::<op>" or "<ns>::*"
    classes: dict[str, Category]
    names: dict[str, Category]
    syntax: dict[str, Category]
    special: dict[str, Category]  # the categories applied by the analyzers themselves (SPECIAL)

    def operator(self, namespace: str, name: str | None) -> Category | None:
        """The category of ``<namespace>::<name>`` (name None: the namespace as a whole)."""
        listed = self.ops.get(f"{namespace}::{name}") if name else None
        listed = listed or self.ops.get(f"{namespace}::*")
        if listed is not None:
            return listed
        return None if namespace in self.builtin_namespaces else self.special["custom-operator"]

    def script_class(self, namespace: str, name: str | None) -> Category | None:
        listed = self.classes.get(f"{namespace}::{name}") if name else None
        listed = listed or self.classes.get(f"{namespace}::*")
        if listed is not None:
            return listed
        return None if namespace in self.builtin_class_namespaces else self.special["custom-class"]


SPECIAL = ("custom-operator", "custom-class", "introspection", "namespace-alias", "graph-function")


@functools.cache
def op_table() -> OpTable:
    data = load_toml("torchscript_ops.toml")
    tables: dict[str, dict[str, Category]] = {"ops": {}, "classes": {}, "names": {}, "syntax": {}}
    special: dict[str, Category] = {}
    for key, spec in data.items():
        if not isinstance(spec, dict):
            continue
        category = Category(key, Severity.parse(spec["severity"]), Capability[spec["capability"].upper()], spec["why"])
        if key in SPECIAL:
            special[key] = category
        for kind, table in tables.items():
            for name in spec.get(kind, ()):
                if name in table:
                    raise ValueError(f"torchscript_ops.toml lists {name} twice")
                table[name] = category
    return OpTable(
        frozenset(data["builtin_namespaces"]),
        frozenset(data["builtin_class_namespaces"]),
        frozenset(data["allowed_dunders"]),
        frozenset(data["export_functions"]),
        tables["ops"],
        tables["classes"],
        tables["names"],
        tables["syntax"],
        special,
    )


class Use(NamedTuple):
    category: Category
    what: str  # the operator, class or name, as the loader resolves it
    spelled: str  # as the file writes it
    place: tuple[str, str]  # evidence saying where: ("line", "12"), ("node", "relu")


def report_uses(ctx: ScanContext, item: Item, uses: Iterator[Use]) -> None:
    """One finding per distinct use, at its first line, counting the others."""
    first: dict[tuple[str, str], Use] = {}
    counts: dict[tuple[str, str], int] = {}
    for use in uses:
        key = (use.category.key, use.what)
        first.setdefault(key, use)
        counts[key] = counts.get(key, 0) + 1
    for key, use in first.items():
        category = use.category
        evidence = {"category": category.key, "spelled": use.spelled, use.place[0]: use.place[1]}
        if counts[key] > 1:
            evidence["uses"] = str(counts[key])
        spelled = "" if use.spelled in use.what else f" ({use.spelled})"
        message = f"uses {use.what}{spelled}: it {category.why}"
        ctx.report(
            TORCHSCRIPT_DANGEROUS_CODE.finding(
                item.location, message, evidence, severity=category.severity, capability=category.capability
            )
        )


def operator_uses(table: OpTable, parts: list[str], spelled: str, place: tuple[str, str]) -> Iterator[Use]:
    """``parts`` follow ``ops``: [namespace, operator, overload...]."""
    if not parts:
        yield Use(table.special["namespace-alias"], "the operator namespace ops", spelled, place)
        return
    namespace, name = parts[0], parts[1] if len(parts) > 1 else None
    category = table.operator(namespace, name)
    if category is not None:
        yield Use(category, f"the operator {namespace}::{name or '*'}", spelled, place)
    elif name is None:
        yield Use(table.special["namespace-alias"], f"the operator namespace {namespace}", spelled, place)


def class_uses(table: OpTable, parts: list[str], spelled: str, place: tuple[str, str]) -> Iterator[Use]:
    """``parts`` follow ``__torch__.torch.classes``: [namespace, class]."""
    if not parts:
        yield Use(table.special["namespace-alias"], "the class namespace torch.classes", spelled, place)
        return
    namespace, name = parts[0], parts[1] if len(parts) > 1 else None
    category = table.script_class(namespace, name)
    if category is not None:
        yield Use(category, f"the class {namespace}.{name or '*'}", spelled, place)


def is_dunder(name: str) -> bool:
    return len(name) > 4 and name.startswith("__") and name.endswith("__")
