"""Hostile TensorFlow protobuf: a SavedModel and GraphDefs that break the reader, and a 2 GiB frozen graph.

Built with the protobuf writers of ``protobuf_models``; kept apart from it because this ``big_frozen_graph``
(a folder in, the 2 GiB graph with a ReadFile after its weights out) shares its name with the general
``protobuf_models.big_frozen_graph``.
"""

from __future__ import annotations

from . import protobuf_models as pm
from .protobuf_models import attr_func, graph_def, node


# Hostile protobuf; how fast each fails is measured by bench/unit_speed.py.
def saved_model_length_past_the_end() -> bytes:
    return pm.vfield(1, 1) + pm.key(2, 2) + pm.varint(1 << 50) + pm.lfield(2, b"")


def graph_with_overlong_varint() -> bytes:
    return pm.lfield(1, pm.lfield(1, "x") + pm.lfield(2, "Relu") + pm.key(9, 0) + b"\xff" * 11)


def graph_with_nested_function_attributes() -> bytes:
    nested = attr_func("__inference_leaf")
    for _ in range(200):  # AttrValue.func > NameAttrList.attr > AttrValue ...: past protobuf's recursion limit
        nested = pm.lfield(10, pm.lfield(1, "f") + pm.lfield(2, pm.lfield(1, "a") + pm.lfield(2, nested)))
    return graph_def([node("x", "Placeholder"), node("m", "MapDataset", ("x",), f=nested)])


def big_frozen_graph(tmp_path):
    after = [node("MatMul", "MatMul", ("input", "weights")), node("leak", "ReadFile", ("input",))]
    return pm.big_frozen_graph(tmp_path / "frozen_graph.pb", 2 * 1024**3, after)
