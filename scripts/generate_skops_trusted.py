"""Write src/mloops/data/skops_trusted.txt: the types skops trusts by default, per node loader.

skops decides trust per node: an ObjectNode trusts scikit-learn estimators, a FunctionNode
numpy and scipy ufuncs, a TypeNode primitives and numpy scalar types, and so on. This script
asks the installed skops itself: it builds every registered node class from a minimal state,
with no trusted types given, and records the list that node checks against. mloops reads the
result at run time and never imports skops. A human reviews the diff before committing it.

    python scripts/generate_skops_trusted.py   (needs the [test] extras: skops, scikit-learn)
"""

from __future__ import annotations

import io
import json
import sys
import zipfile
from pathlib import Path
from typing import Any

import numpy
import scipy
import sklearn
import skops
from skops.io import _persist  # noqa: F401 - registers every node class in NODE_TYPE_MAPPING
from skops.io._audit import NODE_TYPE_MAPPING, CachedNode
from skops.io._protocol import PROTOCOL
from skops.io._trusted_types import NUMPY_RANDOM_BIT_GENERATOR_TYPE_NAMES
from skops.io._utils import LoadContext

OUTPUT = Path(__file__).resolve().parent.parent / "src" / "mloops" / "data" / "skops_trusted.txt"
PROBE = "mloops_probe.Probe"  # a name no default list holds, to see which nodes honour the caller's list

# Loaders skops registers but cannot build here: QuantileForestNode needs the optional
# quantile-forest package and trusts nothing by default (it passes an empty list).
UNBUILDABLE = {"QuantileForestNode": []}


def json_state(value: object = 1) -> dict[str, Any]:
    return {"__class__": "int", "__module__": "builtins", "__loader__": "JsonNode", "content": json.dumps(value)}


def bit_generator_state() -> dict[str, Any]:
    return {
        "__class__": "dict",
        "__module__": "builtins",
        "__loader__": "DictNode",
        "key_types": {"__class__": "list", "__module__": "builtins", "__loader__": "ListNode", "content": []},
        "content": {"bit_generator": json_state("PCG64")},
    }


def minimal_state(loader: str, protocol: int) -> dict[str, Any]:
    """The least state each node's __init__ accepts; children are plain JSON nodes."""
    state: dict[str, Any] = {"__class__": "Probe", "__module__": "mloops_probe", "__loader__": loader}
    child = json_state()
    extra: dict[str, dict[str, Any]] = {
        "DictNode": {"key_types": child, "content": {}},
        "DefaultDictNode": {"content": {"main": child, "default_factory": child}},
        "ListNode": {"content": []},
        "SetNode": {"content": []},
        "TupleNode": {"content": []},
        "BytesNode": {"file": "blob.bin"},
        "BytearrayNode": {"file": "blob.bin"},
        "SliceNode": {"content": {"start": None, "stop": 1, "step": None}},
        "MethodNode": {
            "__class__": "int",
            "__module__": "builtins",
            "content": {"func": "bit_length", "obj": child},
        },
        "PartialNode": {"content": {"func": child, "args": child, "kwds": child, "namespace": child}},
        "ConstructorFromReduceNode": {"content": child},
        "JsonNode": {"content": "1"},
        "OperatorFuncNode": {"__module__": "operator", "attrs": child},
        "NdArrayNode": {"type": "json", "content": [], "shape": child},
        "MaskedArrayNode": {"content": {"data": child, "mask": child}},
        "DTypeNode": {"content": child},
        "RandomStateNode": {"content": child},
        "RandomGeneratorNode": {"content": {"bit_generator": bit_generator_state(), "seed_seq": child}},
        "SparseMatrixNode": {"type": "scipy", "file": "blob.bin"},
        "LossNode": {"__reduce__": {"args": child}, "content": child},
        "TreeNode": {"__reduce__": {"args": child}, "content": child},
    }
    if loader == "FunctionNode" and protocol == 0:
        state["content"] = {"module_path": "mloops_probe", "function": "Probe"}
    elif loader == "RandomGeneratorNode" and protocol == 0:
        state["content"] = {"bit_generator": {}}
    else:
        state.update(extra.get(loader, {}))
    return state


def context(protocol: int) -> LoadContext:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("blob.bin", b"")
    return LoadContext(src=zipfile.ZipFile(buffer), protocol=protocol)


def trusted_by_default(loader: str, protocol: int, node_class: type) -> tuple[list[str], bool]:
    """The node's default list, and whether it also honours the caller's trusted list."""
    lists = []
    for trusted in (None, [PROBE]):
        load_context = context(protocol)
        if node_class is CachedNode:
            load_context.memoize(object(), 7)
            state = {"__class__": "Probe", "__module__": "mloops_probe", "__loader__": loader, "__id__": 7}
        else:
            state = minimal_state(loader, protocol)
        lists.append(node_class(state, load_context, trusted=trusted).trusted)
    default, with_probe = lists
    return sorted(set(default)), PROBE in with_probe


def sections() -> dict[str, list[str]]:
    result: dict[str, list[str]] = {}
    for (loader, protocol), node_class in sorted(NODE_TYPE_MAPPING.items()):
        key = loader if protocol == PROTOCOL else f"{loader}@{protocol}"
        if loader in UNBUILDABLE:
            result[key] = UNBUILDABLE[loader]
            continue
        names, honours_caller = trusted_by_default(loader, protocol, node_class)
        # mloops hard-codes the one node that ignores the caller's list; fail loudly if that changes.
        if honours_caller == (loader == "DefaultDictNode"):
            sys.exit(f"{key}: honours the caller's trusted list = {honours_caller}; update mloops' skops analyzer")
        result[key] = names
    result["bit-generators"] = sorted(NUMPY_RANDOM_BIT_GENERATOR_TYPE_NAMES)
    return result


def main() -> None:
    lines = [
        "# Types skops trusts by default, per node loader ([Loader], or [Loader@N] for protocol N).",
        "# [bit-generators] lists the numpy.random bit generators a RandomGeneratorNode may name.",
        "# Generated by scripts/generate_skops_trusted.py from",
        f"#   skops {skops.__version__}, scikit-learn {sklearn.__version__}, numpy {numpy.__version__}, "
        f"scipy {scipy.__version__};",
        f"# skops protocol {PROTOCOL}. Review the diff; do not edit by hand.",
    ]
    for key, names in sections().items():
        lines.append("")
        lines.append(f"[{key}]")
        lines.extend(names)
    OUTPUT.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {OUTPUT} ({sum(not line.startswith(('#', '[')) and bool(line) for line in lines)} names)")


if __name__ == "__main__":
    main()
