"""TorchScript archives: pickles whose classes are compiled from the archive's own code/ folder.

torch.jit.load, and torch.load for any archive with a top-level constants.pkl, reads data.pkl and
constants.pkl with PyTorch's C++ unpickler. It imports no Python: ``__torch__`` classes are compiled
from code/, and their methods (``__setstate__`` runs during loading) call operators. Operators that
write files (``torch.save``), map files (``torch.from_file``) or come from custom native libraries
reach beyond tensor math; the code is parsed, never run, and every operator it names is checked.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable, Iterator, Sequence

from .. import rules
from ..context import Handler, Item, ScanContext
from ..limits import MiB
from ..picklevm.policy import BUILD_ONLY, SAFE, UNKNOWN, Policy, Signature, Verdict
from ..registry import Format, Layout
from . import pickle_stream
from .torch_ops import TIME_CHECK_EVERY, OpTable, Use, class_uses, is_dunder, op_table, operator_uses, report_uses

# One class file. Real ones stay below 100 kB; parsing costs about 170 bytes of memory per byte.
MAX_CODE_BYTES = 4 * MiB

_CODE_MEMBER = re.compile(r"(?:^|/)code/.+\.py$")
# The pickles torch.jit.load reads with its C++ unpickler: <archive folder>/data.pkl and constants.pkl.
_LOADER_PICKLE = re.compile(r"^[^/]+/(?:data|constants)\.pkl$")


def member_handler(name: str) -> Handler | None:
    if _CODE_MEMBER.search(name):
        return analyze_code
    if _LOADER_PICKLE.match(name):
        return analyze_loader_pickle
    # An archive that is also a .pt2 lists "pytorch-pt2" among its layouts: dispatch asks that handler next.
    return None  # debug_pkl, extra files, storages: sniffed by content


# ------------------------------------------------------------------ pickles


_COMPILED_CLASS = Signature(new=True)


class TorchScriptPolicy(Policy):
    """The pickle policy as torch.jit.load's C++ unpickler applies it.

    That unpickler imports nothing: a ``__torch__.<name>`` global is a class compiled from the
    archive's code/ folder (analyzed as TorchScript code), or a class of PyTorch's own native
    libraries (``__torch__.torch.classes.<ns>``). Making one, or calling an enum class with its
    value, runs only that code. Every other name keeps the ordinary judgement.
    """

    def __init__(self, base: Policy) -> None:
        super().__init__(base.data)

    def signature_of(self, name: tuple[str, str]) -> Signature:
        # The C++ unpickler makes a compiled class's object first and sets its state after (NEWOBJ).
        if name[0] == "__torch__" or name[0].startswith("__torch__."):
            return _COMPILED_CLASS
        return super().signature_of(name)

    def judge(self, name: tuple[str, str]) -> Verdict:
        module, qualname = name
        if not qualname or (module != "__torch__" and not module.startswith("__torch__.")):
            return super().judge(name)
        parts = f"{module}.{qualname}".split(".")
        if any(is_dunder(part) for part in parts[1:]):
            return super().judge(name)  # a dunder after __torch__ is no compiled class
        if parts[1:3] == ["torch", "classes"]:
            if len(parts) < 5 or op_table().script_class(parts[3], parts[4]) is not None:
                return Verdict(UNKNOWN, ".".join(parts))  # a class from outside PyTorch: reported
            return Verdict(BUILD_ONLY, ".".join(parts))
        return Verdict(SAFE, ".".join(parts))


def analyze_loader_pickle(ctx: ScanContext, item: Item) -> None:
    """data.pkl and constants.pkl of an archive that torch.load hands to torch.jit.load."""
    pickle_stream.analyze(ctx, item, policy=TorchScriptPolicy(ctx.policy))


# --------------------------------------------------------------------- code


def analyze_code(ctx: ScanContext, item: Item) -> None:
    """One serialized TorchScript source file from code/: parsed, never compiled or run."""
    ctx.record(item, "torchscript-code")
    data = ctx.read_all(item, MAX_CODE_BYTES, "TorchScript code")
    if data is None:
        return
    try:
        tree = ast.parse(data.decode("utf-8"), filename=item.name)
    except (SyntaxError, ValueError, UnicodeDecodeError, RecursionError, MemoryError) as exc:
        reason = exc.msg if isinstance(exc, SyntaxError) else type(exc).__name__
        line = getattr(exc, "lineno", None)
        evidence = {"line": str(line)} if line else {}
        message = f"TorchScript code does not parse ({reason}); torch.jit.load would refuse it, other readers may not"
        ctx.report(rules.MALFORMED.finding(item.location, message, evidence))
        return
    report_uses(ctx, item, code_uses(tree, ctx.budget.check_time))


def code_uses(tree: ast.AST, tick: Callable[[], None]) -> Iterator[Use]:
    """Every operator, class, name and construct in the code that the op table flags."""
    table = op_table()
    pending: list[tuple[ast.AST, ast.AST | None]] = [(tree, None)]
    count = 0
    while pending:
        node, parent = pending.pop()
        count += 1
        if count % TIME_CHECK_EVERY == 0:
            tick()
        _push_children(node, pending)
        kind = type(node).__name__
        if kind in table.syntax:
            yield Use(table.syntax[kind], f"the Python construct {kind}", kind, _line(node))
        if isinstance(node, ast.Name | ast.Attribute | ast.Call) and _is_outermost(node, parent):
            parts = _chain(node)
            if parts:
                yield from _chain_uses(table, parts, _line(node))
        elif isinstance(node, ast.FunctionDef | ast.ClassDef | ast.arg):
            name = node.arg if isinstance(node, ast.arg) else node.name
            if is_dunder(name) and name not in table.allowed_dunders:
                yield Use(table.special["introspection"], f"the definition of {name}", name, _line(node))


def _push_children(node: ast.AST, pending: list[tuple[ast.AST, ast.AST | None]]) -> None:
    """ast.iter_child_nodes without the generator, and without the Load/Store markers."""
    for field in node._fields:
        value = getattr(node, field, None)
        if isinstance(value, list):
            pending.extend((child, node) for child in value if isinstance(child, ast.AST))
        elif isinstance(value, ast.AST) and not isinstance(value, ast.expr_context):
            pending.append((value, node))


def _line(node: ast.AST) -> tuple[str, str]:
    return ("line", str(getattr(node, "lineno", 0)))


def _is_outermost(node: ast.AST, parent: ast.AST | None) -> bool:
    """True unless the node is the object of an attribute access or of getattr(node, "name")."""
    if isinstance(parent, ast.Attribute):
        return parent.value is not node
    if isinstance(parent, ast.Call) and _getattr_name(parent) is not None:
        return parent.args[0] is not node
    return True


def _getattr_name(call: ast.Call) -> str | None:
    """The constant attribute name of ``getattr(x, "name")``, which TorchScript resolves statically."""
    if isinstance(call.func, ast.Name) and call.func.id == "getattr" and len(call.args) == 2:
        name = call.args[1]
        if isinstance(name, ast.Constant) and isinstance(name.value, str):
            return name.value
    return None


def _chain(node: ast.AST) -> list[str] | None:
    """``a.b.c`` (or ``getattr(a.b, "c")``) as ["a", "b", "c"]; None unless it starts at a name."""
    parts: list[str] = []
    while True:
        if isinstance(node, ast.Attribute):
            parts.append(node.attr)
            node = node.value
        elif isinstance(node, ast.Call) and _getattr_name(node) is not None:
            parts.append(_getattr_name(node) or "")
            node = node.args[0]
        elif isinstance(node, ast.Name):
            parts.append(node.id)
            parts.reverse()
            return parts
        else:
            return None


def _chain_uses(table: OpTable, parts: list[str], place: tuple[str, str]) -> Iterator[Use]:
    spelled = ".".join(parts)
    root = parts[0]
    if root in table.names:
        yield Use(table.names[root], f"the name {root}", spelled, place)
    for part in parts[1:] if root in table.names else parts:
        if is_dunder(part) and part not in table.allowed_dunders:
            yield Use(table.special["introspection"], f"the attribute {part}", spelled, place)
    if root == "torch":
        yield from _torch_uses(table, parts, spelled, place)
    elif root == "ops":
        yield from operator_uses(table, parts[1:], spelled, place)
    elif root == "__torch__" and parts[1:3] == ["torch", "classes"][: len(parts) - 1]:
        yield from class_uses(table, parts[3:], spelled, place)  # __torch__.torch.classes.<ns>.<class>


def _torch_uses(table: OpTable, parts: list[str], spelled: str, place: tuple[str, str]) -> Iterator[Use]:
    if len(parts) == 1:
        yield Use(table.special["namespace-alias"], "the operator namespace torch", spelled, place)
    elif parts[1] == "ops":
        yield from operator_uses(table, parts[2:], spelled, place)
    elif parts[1] == "classes":
        yield from class_uses(table, parts[2:], spelled, place)
    else:
        category = table.operator("aten", parts[1])  # TorchScript resolves torch.<op> to aten::<op>
        if category is not None:
            yield Use(category, f"the operator aten::{parts[1]}", spelled, place)


def _routes_to_torchscript(names: Sequence[str]) -> bool:
    """torch.load hands an archive to torch.jit.load when its records include constants.pkl;
    records are the member names below the folder of the first member (PyTorchStreamReader)."""
    if not names or "/" not in names[0]:
        return False
    folder = names[0].split("/", 1)[0]
    return f"{folder}/constants.pkl" in names


FORMATS = (
    Format(
        "torchscript-zip",
        "code",
        "TorchScript archive",
        layout=Layout("zip", 10, _routes_to_torchscript, member_handler),
    ),
    Format("torchscript-code", "code", "TorchScript code"),
)
