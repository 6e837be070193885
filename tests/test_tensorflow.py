"""TensorFlow SavedModel, frozen GraphDef and Keras SavedModel metadata.

TensorFlow is not installed and not needed: every fixture here is built byte by byte to TensorFlow's
.proto definitions (corpus/protobuf_models.py) and is structural only, never loaded. The
benign ones copy what TensorFlow writes: the TF2 saver functions (SaveV2, RestoreV2,
MergeV2Checkpoints, StringJoin, ShardedFilename on the caller's file prefix), the TF1 Saver's
nodes, vocabulary tables fed from assets. The hostile ones hide file operations in function
libraries or fix checkpoint paths themselves.
"""

from __future__ import annotations

import pytest
from corpus import protobuf_models as pm
from corpus.protobuf_models import attr_func, attr_list_s, attr_s, const_string, function, graph_def, node
from corpus.tensorflow_graphs import (
    big_frozen_graph,
    graph_with_nested_function_attributes,
    graph_with_overlong_varint,
    saved_model_length_past_the_end,
)

from mloops.core import Capability, Severity
from mloops.models import tensorflow
from tests.conftest import findings_at_least, rule_ids

OP, MALFORMED, LAMBDA = "MLO140", "MLO201", "MLO130"


def op_findings(report) -> dict[str, object]:
    return {finding.evidence["op"]: finding for finding in report.findings if finding.rule.id == OP}


def saved(nodes: list[bytes], functions: list[bytes] = ()) -> bytes:
    return pm.saved_model(pm.meta_graph(graph_def(nodes, functions)))


def writer_called_with(*graph_nodes: bytes, path_input: str = "target") -> bytes:
    """A function that saves a checkpoint at its argument, called from the graph with ``path_input``."""
    writer = function(
        "__inference_writer_9",
        ["prefix", "value"],
        [
            const_string("names", "x"),
            const_string("slices", ""),
            node("SaveV2", "SaveV2", ("prefix", "names:output:0", "slices:output:0", "value")),
        ],
    )
    call = node("call", "StatefulPartitionedCall", (path_input, "x"), f=attr_func("__inference_writer_9"))
    return saved([node("x", "Placeholder"), *graph_nodes, call], [writer])


# ------------------------------------------------------------------ benign layouts


@pytest.mark.parametrize(
    ("builder", "label"),
    [
        (pm.benign_tf2_saved_model, "tensorflow-savedmodel"),
        (pm.benign_tf1_saved_model, "tensorflow-savedmodel"),
        (pm.frozen_graph, "tensorflow-graphdef"),
    ],
)
def test_benign_graphs_and_their_savers_are_clean(scan, builder, label):
    report = scan("saved_model.pb" if label.endswith("savedmodel") else "frozen_graph.pb", builder())
    assert report.files[0].formats == [label]
    assert not findings_at_least(report, Severity.LOW), [f.message for f in report.findings]


def test_benign_keras_metadata_is_clean(scan):
    report = scan("keras_metadata.pb", pm.keras_metadata_model(with_lambda=False))
    assert report.files[0].formats == ["keras-metadata"]
    assert not findings_at_least(report, Severity.LOW)


# ------------------------------------------------------------------ ops that are always flagged


def test_file_ops_inside_a_function_library(scan):
    report = scan("saved_model.pb", pm.file_ops_in_library())
    found = op_findings(report)
    assert found["ReadFile"].severity == Severity.HIGH
    assert found["WriteFile"].severity == Severity.CRITICAL
    assert found["WriteFile"].capability == Capability.FILE_ACCESS
    assert found["ReadFile"].evidence["where"] == "function '__inference_leak_77'"
    assert found["ReadFile"].location.offset is not None


def test_py_func(scan):
    found = op_findings(scan("graph.pb", pm.py_func_graph()))
    assert found["PyFunc"].severity == Severity.HIGH
    assert found["PyFunc"].capability == Capability.CODE_EXECUTION


def test_a_saved_model_without_its_schema_version_is_still_a_saved_model(scan):
    # The loader parses saved_model.pb as a SavedModel whatever it holds; the version field is optional.
    graph = graph_def([node("x", "Placeholder"), node("py", "PyFunc", ("x",), token=attr_s("pyfunc_0"))])
    data = pm.saved_model(pm.meta_graph(graph))
    assert data.startswith(b"\x08\x01")  # saved_model_schema_version 1
    report = scan("saved_model.pb", data[2:])
    assert [asset.format for asset in report.files[0].assets] == ["tensorflow-savedmodel"]
    assert op_findings(report)["PyFunc"].severity == Severity.HIGH


def test_ops_are_counted_once_per_type(scan):
    nodes = [node(f"read{i}", "ReadFile", ("x",)) for i in range(30)]
    report = scan("graph.pb", graph_def([node("x", "Placeholder"), *nodes]))
    [finding] = [f for f in report.findings if f.rule.id == OP]
    assert finding.evidence["nodes"] == "30"


# ------------------------------------------------------------------ ops judged by where their path comes from


def test_checkpoint_path_fixed_by_the_file_outside_its_folder(scan):
    report = scan("saved_model.pb", pm.hardcoded_save_path("/home/user/.ssh/authorized_keys"))
    finding = op_findings(report)["SaveV2"]
    assert finding.severity == Severity.HIGH
    assert "/home/user/.ssh/authorized_keys" in finding.evidence["path_constants"]
    assert "passed by StatefulPartitionedCall node 'call'" in finding.message


def test_checkpoint_path_fixed_by_the_file_relative(scan):
    finding = op_findings(scan("saved_model.pb", pm.hardcoded_save_path("model")))["SaveV2"]
    assert finding.severity == Severity.MEDIUM


def test_climbing_suffix_joined_to_the_callers_prefix(scan):
    nodes = [
        node("prefix", "Placeholder"),
        const_string("climb", "/../../../etc/cron.d/job"),
        node("joined", "StringJoin", ("prefix", "climb"), separator=attr_s("")),
    ]
    finding = op_findings(scan("saved_model.pb", writer_called_with(*nodes, path_input="joined")))["SaveV2"]
    assert finding.severity == Severity.HIGH


def test_placeholder_default_outside_the_folder(scan):
    """A PlaceholderWithDefault may be fed, but its default is what runs when nothing is."""
    nodes = [const_string("default", "/etc/passwd"), node("maybe", "PlaceholderWithDefault", ("default",))]
    finding = op_findings(scan("saved_model.pb", writer_called_with(*nodes, path_input="maybe")))["SaveV2"]
    assert finding.severity == Severity.HIGH


def test_path_from_a_variable_the_checkpoint_fills(scan):
    nodes = [node("path_var", "VarHandleOp"), node("read", "ReadVariableOp", ("path_var",))]
    finding = op_findings(scan("saved_model.pb", writer_called_with(*nodes, path_input="read")))["SaveV2"]
    assert finding.severity == Severity.MEDIUM
    assert "checkpoint" in finding.message


def test_path_argument_supplied_by_a_loop(scan):
    body = function(
        "__inference_body_5",
        ["path"],
        [node("init", "InitializeTableFromTextFileV2", ("table", "path")), node("table", "HashTableV2")],
    )
    loop = node("loop", "While", ("x",), body=attr_func("__inference_body_5"), cond=attr_func("__inference_body_5"))
    finding = op_findings(scan("saved_model.pb", saved([node("x", "Placeholder"), loop], [body])))[
        "InitializeTableFromTextFileV2"
    ]
    assert finding.severity == Severity.MEDIUM
    assert "While node 'loop'" in finding.message


def test_function_named_inside_another_functions_attributes(scan):
    """A function reached through a NameAttrList nested in another function reference counts as referenced."""
    reader = function("__inference_reader_3", ["path"], [node("r", "RestoreV2", ("path", "n", "s"))])
    nested = pm.lfield(
        10,
        pm.lfield(1, "__inference_outer_1")
        + pm.lfield(2, pm.lfield(1, "g") + pm.lfield(2, attr_func("__inference_reader_3"))),
    )
    user = node("map", "MapDataset", ("x",), f=nested)
    finding = op_findings(scan("saved_model.pb", saved([node("x", "Placeholder"), user], [reader])))["RestoreV2"]
    assert finding.severity == Severity.MEDIUM


# ------------------------------------------------------------------ ops judged by an attribute


@pytest.mark.parametrize(
    ("op", "attrs", "severity"),
    [
        ("PrintV2", {"output_stream": attr_s("file:///home/user/.bashrc")}, Severity.HIGH),
        ("PrintV2", {"output_stream": attr_s("log(info)")}, None),
        ("DebugIdentityV2", {"debug_urls": attr_list_s(["grpc://collector.example:6064"])}, Severity.HIGH),
        ("DebugIdentity", {"debug_urls": attr_list_s([])}, None),
        ("DecodeProtoV2", {"descriptor_source": attr_s("/etc/descriptors.bin")}, Severity.MEDIUM),
        ("DecodeProtoV2", {"descriptor_source": attr_s("local://")}, None),
    ],
)
def test_attribute_judged_ops(scan, op, attrs, severity):
    report = scan("graph.pb", graph_def([node("x", "Placeholder"), node("n", op, ("x",), **attrs)]))
    found = op_findings(report)
    if severity is None:
        assert op not in found
    else:
        assert found[op].severity == severity


def test_debug_urls_reach_the_network(scan):
    debug = node("d", "DebugIdentity", ("x",), debug_urls=attr_list_s(["grpc://10.0.0.1:6064"]))
    finding = op_findings(scan("graph.pb", graph_def([node("x", "Placeholder"), debug])))["DebugIdentity"]
    assert finding.capability == Capability.NETWORK_ACCESS
    assert finding.evidence["debug_urls"] == "grpc://10.0.0.1:6064"


def test_op_table_is_consistent():
    table = tensorflow.op_rules()
    assert {"ReadFile", "WriteFile", "MatchingFiles", "PyFunc", "PyFuncStateless", "EagerPyFunc"} <= set(table)
    for op, rule in table.items():
        assert rule.judge in ("always", "path", "attribute"), op
        assert bool(rule.path_inputs) == (rule.judge == "path"), op
        assert bool(rule.attr) == (rule.judge == "attribute"), op
    assert {"StringJoin", "ShardedFilename", "StaticRegexFullMatch"}.isdisjoint(table)


# ------------------------------------------------------------------ Keras metadata


def test_keras_metadata_lambda(scan):
    """The Lambda's config sits in the model's node and again in its own: one finding, judged by keras_config."""
    report = scan("keras_metadata.pb", pm.keras_metadata_model(with_lambda=True))
    [finding] = [f for f in report.findings if f.rule.id == LAMBDA]
    assert finding.severity == Severity.CRITICAL
    assert "system" in finding.evidence["dangerous"]


def test_keras_metadata_that_is_not_json(scan):
    data = pm.keras_metadata([("root", "_tf_keras_model", {})]).replace(b"{}", b"{!")
    assert MALFORMED in rule_ids(scan("keras_metadata.pb", data))


# ------------------------------------------------------------------ detection


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("saved_model.pb", b"\x80\x04\x95\x10\x00\x00\x00\x00\x00\x00\x00\x8c\x05hello\x94."),
        ("graph.pb", b'node {\n  name: "x"\n  op: "Placeholder"\n}\n'),
        ("graph.bin", pm.frozen_graph()),  # protobuf has no magic: without a .pb name it is not guessed
        ("saved_model.pb", bytes(range(256)) * 8),
        ("keras_metadata.pb", pm.frozen_graph()),
    ],
)
def test_no_misfire(name, data):
    assert not tensorflow.detect(data[:65536], name)


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("fingerprint.pb", b"".join(pm.vfield(n, 0x9E3779B97F4A7C15 >> n) for n in range(1, 6)) + pm.vfield(6, 1)),
        ("tfhub_module.pb", pm.vfield(1, 3)),
    ],
)
def test_savedmodel_companion_files(scan, name, data):
    report = scan(name, data)
    assert report.files[0].formats == ["tensorflow-metadata"]
    assert not findings_at_least(report, Severity.LOW)
    assert findings_at_least(
        scan(name, data + pm.lfield(9, b"\x00\xff")), Severity.HIGH
    )  # the name admits nothing else


def test_unidentified_pb_is_reported(scan):
    report = scan("model.pb", bytes(range(256)) * 8)
    assert "MLO203" in rule_ids(report)


# ------------------------------------------------------------------ malformed and hostile protobuf


def assert_malformed(report) -> None:
    assert MALFORMED in rule_ids(report)
    assert "MLO903" not in rule_ids(report)


def test_truncated_saved_model(scan):
    data = pm.benign_tf2_saved_model()
    assert_malformed(scan("saved_model.pb", data[: len(data) * 2 // 3]))


def test_length_past_the_end(scan):
    assert_malformed(scan("saved_model.pb", saved_model_length_past_the_end()))


def test_varint_longer_than_64_bits(scan):
    assert_malformed(scan("graph.pb", graph_with_overlong_varint()))


def test_nesting_bomb_in_function_attributes(scan):
    assert_malformed(scan("graph.pb", graph_with_nested_function_attributes()))


def test_ops_before_the_break_are_still_reported(scan):
    data = graph_def([node("x", "Placeholder"), node("leak", "ReadFile", ("x",))])
    report = scan("graph.pb", data + pm.key(1, 2) + pm.varint(500))
    assert {OP, MALFORMED} <= rule_ids(report)


def test_two_gib_frozen_graph_is_scanned_past_its_weights(tmp_path):
    from mloops import scan_path

    report = scan_path(str(big_frozen_graph(tmp_path)))  # without reading the weights: bench/unit_speed.py
    assert "ReadFile" in op_findings(report)
    assert MALFORMED not in rule_ids(report)
