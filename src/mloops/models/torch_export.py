""".pt2 archives written by torch.export.save: exported graphs as JSON, weights, and pickles.

torch.export.load unpickles sample inputs, pickled weights and constants with torch.load and
pickle.loads (those members reach the pickle engine by content), and rebuilds each graph in
models/*.json by resolving every node's target from its dotted name. A target in a custom
operator namespace runs that library's native code; AOTInductor packages carry compiled
libraries that torch._inductor.aoti_load_package loads into the process.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from typing import Any

from .. import rules
from ..context import Handler, Item, ScanContext
from ..core import Capability
from ..limits import MiB
from ..picklevm.policy import DANGEROUS, INTROSPECTION, Policy
from ..registry import Format, Layout
from . import torch_ops
from .torch_ops import TIME_CHECK_EVERY, OpTable, Use, class_uses, op_table, operator_uses, report_uses

MAX_GRAPH_BYTES = 64 * MiB  # one exported program; stack-trace metadata makes large models some MB

_GRAPH_MEMBER = re.compile(r"(?:^|/)models/[^/]+\.json$")
# What torch._inductor.package writes under data/aotinductor/: the compiled model and its sources.
_NATIVE_MEMBER = re.compile(r"(?:^|/)data/aotinductor/.+\.(?:so|dll|dylib|pyd|o|a|cpp)$", re.IGNORECASE)


def member_handler(name: str) -> Handler | None:
    if _GRAPH_MEMBER.search(name):
        return analyze_graph
    if _NATIVE_MEMBER.search(name):
        return report_native_member
    return None  # pickles, weights and configs are identified by content


def report_native_member(ctx: ScanContext, item: Item) -> None:
    ctx.record(item, "aotinductor-native")
    message = (
        "AOTInductor compiled code: torch._inductor.aoti_load_package builds or loads it as a native "
        "library in the loading process; no scanner can vouch for it"
    )
    finding = torch_ops.TORCHSCRIPT_DANGEROUS_CODE.finding(
        item.location, message, {"member": item.name}, capability=Capability.CODE_EXECUTION
    )
    ctx.report(finding)


def analyze_graph(ctx: ScanContext, item: Item) -> None:
    """One exported program (models/<name>.json): every node target is checked."""
    ctx.record(item, "pytorch-export-graph")
    data = ctx.read_all(item, MAX_GRAPH_BYTES, "exported graph")
    if data is None:
        return
    try:
        program = json.loads(data)
    except (ValueError, RecursionError) as exc:
        message = f"exported graph is not valid JSON ({type(exc).__name__}); torch.export.load would refuse it"
        ctx.report(rules.MALFORMED.finding(item.location, message))
        return
    report_uses(ctx, item, graph_uses(program, op_table(), ctx.policy, ctx.budget.check_time))


def graph_uses(program: Any, table: OpTable, policy: Policy, tick: Callable[[], None]) -> Iterator[Use]:
    """The flagged targets of every node, nested graphs (cond, map, while_loop bodies) included."""
    pending = [program]
    count = 0
    while pending:
        value = pending.pop()
        count += 1
        if count % TIME_CHECK_EVERY == 0:
            tick()
        if isinstance(value, dict):
            yield from _dict_uses(table, policy, value)
            pending.extend(value.values())
        elif isinstance(value, list):
            pending.extend(value)


def _dict_uses(table: OpTable, policy: Policy, value: dict[str, Any]) -> Iterator[Use]:
    """A node's target, an operator passed as an argument (to higher-order operators), and the
    TorchScript class of a custom object argument."""
    target, operator, class_fqn = value.get("target"), value.get("as_operator"), value.get("class_fqn")
    if isinstance(target, str) and "inputs" in value:
        yield from _target_uses(table, policy, target, ("node", str(value.get("name") or "?")))
    if isinstance(operator, str):
        yield from _target_uses(table, policy, operator, ("argument", "as_operator"))
    if isinstance(class_fqn, str):
        parts = class_fqn.split(".")
        if parts[:3] == ["__torch__", "torch", "classes"]:
            yield from class_uses(table, parts[3:], class_fqn, ("argument", "as_custom_obj"))
        else:
            yield Use(table.special["custom-class"], f"the class {class_fqn}", class_fqn, ("argument", "as_custom_obj"))


def _target_uses(table: OpTable, policy: Policy, target: str, place: tuple[str, str]) -> Iterator[Use]:
    """torch.export.load resolves ``torch.*``, ``_operator.*`` and ``math.*`` targets attribute by
    attribute, and ``#namespace:op`` through handlers that libraries register."""
    parts = target.split(".")
    if parts[:2] == ["torch", "ops"] and len(parts) > 2:
        yield from operator_uses(table, parts[2:], target, place)
    elif target.startswith("#"):
        namespace = target[1:].split(":", 1)[0]
        yield Use(table.special["custom-operator"], f"the extension operator namespace {namespace}", target, place)
    elif target not in table.export_functions:
        category = table.special["graph-function"]
        verdict = policy.judge(policy.canonical(parts[0], ".".join(parts[1:])))
        if verdict.status in (DANGEROUS, INTROSPECTION) and verdict.category is not None:
            category = verdict.category._replace(why=f"{verdict.category.why}, and {category.why}")
        yield Use(category, f"the function {target}", target, place)


FORMATS = (
    Format(
        "pytorch-pt2",
        "code",
        "PyTorch export archive (.pt2)",
        extensions=(".pt2",),
        layout=Layout(
            "zip", 20, lambda names: any(n.rsplit("/", 1)[-1] == "archive_format" for n in names), member_handler
        ),
    ),
    Format("pytorch-export-graph", "code", "torch.export graph (.pt2 models/*.json)"),
    Format("aotinductor-native", "code", "AOTInductor compiled code"),
)
