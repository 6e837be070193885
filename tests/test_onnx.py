"""ONNX: custom operator domains, external data that leaves the model folder, absurd sizes, broken protobuf.

Benign models come from the real libraries: torch.onnx.export, onnx.helper (saved with onnx.save,
external data included) and the models the onnx package ships as its backend test data. The hostile
models are structural only: built with onnx.helper or byte by byte to onnx.proto, and never loaded
(onnxruntime is not installed here, and onnx itself refuses external data outside the model folder).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from corpus import protobuf_models as pm
from corpus.protobuf_models import length_past_the_end, nesting_bomb, overlong_varint

from mloops import scan_path
from mloops.core import Severity
from mloops.limits import Limits
from mloops.models import onnx as onnx_analyzer
from tests.conftest import findings_at_least, rule_ids

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper  # noqa: E402

CUSTOM, ESCAPE, MALFORMED = "MLO160", "MLO161", "MLO201"


def identity() -> object:
    return helper.make_node("Identity", ["X"], ["Y"])


def by_rule(report, rule_id: str) -> list:
    return [finding for finding in report.findings if finding.rule.id == rule_id]


# ------------------------------------------------------------------ benign models from the real libraries


def test_torch_export_is_clean(tmp_path):
    report = scan_path(str(pm.torch_onnx_export(tmp_path / "small.onnx")))
    assert report.files[0].formats == ["onnx"]
    assert not findings_at_least(report, Severity.LOW)
    assert rule_ids(report) == {"MLO001"}


@pytest.mark.parametrize("external", [False, True])
def test_helper_model_with_subgraphs_ml_ops_and_external_data_is_clean(tmp_path, external):
    folder = tmp_path / "model"
    folder.mkdir()
    pm.onnx_if_ml_model(folder / "model.onnx", external=external)
    report = scan_path(str(folder))
    assert not findings_at_least(report, Severity.LOW), [f.message for f in report.findings]
    assert "onnx" in {fmt for result in report.files for fmt in result.formats}


def test_model_local_function_is_not_a_custom_operator(tmp_path):
    report = scan_path(str(pm.onnx_with_local_function(tmp_path / "local.onnx")))
    assert not findings_at_least(report, Severity.LOW), [f.message for f in report.findings]


def test_models_shipped_with_onnx_are_clean():
    """Real models and test tensors (.pb) from the onnx package: ML, training and preview domains included."""
    data = Path(onnx.__file__).parent / "backend" / "test" / "data"
    report = scan_path(str(data))
    models = [result for result in report.files if result.path.endswith((".onnx", ".pb"))]
    assert len(models) > 100
    assert all(result.formats == ["onnx"] for result in models), [r.path for r in models if r.formats != ["onnx"]]
    assert not findings_at_least(report, Severity.LOW), [f.message for f in report.findings][:5]


# ------------------------------------------------------------------ detection


def test_detected_by_content_without_the_extension(tmp_path, scan):
    data = pm.torch_onnx_export(tmp_path / "m.onnx").read_bytes()
    assert scan("weights.bin", data).files[0].formats == ["onnx"]
    assert onnx_analyzer.detect(data[:65536], "weights.bin")


@pytest.mark.parametrize(
    "data",
    [
        b"\x80\x04\x95\x10\x00\x00\x00\x00\x00\x00\x00\x8c\x05hello\x94.",  # a pickle
        b"ir_version: 8\ngraph { node { op_type: 'Relu' } }\n",  # ONNX text format
        bytes(range(256)) * 4,
        b"\x08\x07\x12\x07pytorch",  # an IR version and a producer, but no graph: not enough without the name
        b"",
    ],
)
def test_no_misfire_on_other_content(data):
    assert not onnx_analyzer.detect(data, "blob.bin")


def test_pickle_named_onnx_goes_to_the_pickle_engine(scan):
    report = scan("model.onnx", b"\x80\x04\x95\x10\x00\x00\x00\x00\x00\x00\x00\x8c\x05hello\x94.")
    assert "onnx" not in report.files[0].formats


# ------------------------------------------------------------------ custom operators


def test_custom_domain_operator_is_high(scan):
    nodes = [helper.make_node("Backdoor", ["X"], ["Y"], domain="com.evil.ops")]
    report = scan("custom.onnx", pm.onnx_model_bytes(nodes, opsets=[("com.evil.ops", 1)]))
    [finding] = by_rule(report, CUSTOM)
    assert finding.severity == Severity.HIGH
    assert finding.evidence["domain"] == "com.evil.ops" and finding.evidence["op_type"] == "Backdoor"


def test_onnxruntime_contrib_operator_is_low(scan):
    nodes = [helper.make_node("FusedMatMul", ["X", "X"], ["Y"], domain="com.microsoft")]
    report = scan("ort.onnx", pm.onnx_model_bytes(nodes, opsets=[("com.microsoft", 1)]))
    [finding] = by_rule(report, CUSTOM)
    assert finding.severity == Severity.LOW
    assert "onnxruntime" in finding.message


def test_custom_operator_inside_a_subgraph_and_a_local_function_body(scan):
    inner = helper.make_graph(
        [helper.make_node("Hidden", ["X"], ["t"], domain="evil.sub")],
        "then",
        [],
        [helper.make_tensor_value_info("t", TensorProto.FLOAT, [2])],
    )
    nodes = [helper.make_node("If", ["X"], ["Y"], then_branch=inner, else_branch=inner)]
    model = onnx.load_from_string(pm.onnx_model_bytes(nodes))
    body = [helper.make_node("Native", ["a"], ["b"], domain="evil.lib")]
    model.functions.append(helper.make_function("local.fns", "Wrap", ["a"], ["b"], body, []))
    report = scan("nested.onnx", model.SerializeToString())
    domains = {finding.evidence["domain"] for finding in by_rule(report, CUSTOM)}
    assert domains == {"evil.sub", "evil.lib"}


# ------------------------------------------------------------------ external data


@pytest.mark.parametrize(
    "location",
    [
        "../../etc/passwd",
        "/etc/passwd",
        "weights/../../../home/user/.ssh/id_rsa",
        "C:\\Windows\\win.ini",
        "\\\\srv\\s\\w",
    ],
)
def test_external_data_outside_the_model_folder(scan, location):
    tensor = pm.external_tensor("W", location, [4], offset="0", length="16")
    report = scan("ext.onnx", pm.onnx_model_bytes([identity()], [tensor]))
    [finding] = by_rule(report, ESCAPE)
    assert finding.severity == Severity.HIGH
    assert finding.evidence["external_location"] == location
    assert finding.evidence["tensor"] == "W"


@pytest.mark.parametrize("location", ["weights.bin", "data/model.onnx.data", "..weights"])
def test_external_data_inside_the_model_folder(scan, location):
    tensor = pm.external_tensor("W", location, [4], offset="4096", length="16")
    report = scan("ext.onnx", pm.onnx_model_bytes([identity()], [tensor]))
    assert not findings_at_least(report, Severity.LOW)


def test_external_data_in_subgraphs_and_sparse_initializers(scan):
    then_graph = helper.make_graph(
        [identity()],
        "then",
        [],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [2])],
        [pm.external_tensor("inner", "/etc/shadow", [2])],
    )
    nodes = [helper.make_node("If", ["X"], ["Y"], then_branch=then_graph, else_branch=then_graph)]
    model = onnx.load_from_string(pm.onnx_model_bytes(nodes))
    sparse = model.graph.sparse_initializer.add()
    sparse.dims.extend([10])
    sparse.values.CopyFrom(pm.external_tensor("values", "../../secrets", [2]))
    sparse.indices.CopyFrom(helper.make_tensor("indices", TensorProto.INT64, [2], [1, 5]))
    report = scan("hidden.onnx", model.SerializeToString())
    assert {finding.evidence["tensor"] for finding in by_rule(report, ESCAPE)} == {"inner", "values"}


def test_external_data_needs_a_location_and_byte_counts(scan):
    no_location = onnx.TensorProto(name="A", dims=[2], data_type=TensorProto.FLOAT)
    no_location.data_location = TensorProto.EXTERNAL
    bad_offset = pm.external_tensor("B", "w.bin", [2], offset="-8")
    wrong_length = pm.external_tensor("C", "w.bin", [2], length="9999")
    report = scan("counts.onnx", pm.onnx_model_bytes([identity()], [no_location, bad_offset, wrong_length]))
    assert {finding.evidence["tensor"] for finding in by_rule(report, MALFORMED)} == {"A", "B", "C"}


def test_findings_per_rule_are_capped(tmp_path):
    tensors = [pm.external_tensor(f"W{i}", "/etc/passwd", [1]) for i in range(120)]
    path = tmp_path / "many.onnx"
    path.write_bytes(pm.onnx_model_bytes([identity()], tensors))
    escapes = by_rule(scan_path(str(path), limits=Limits(max_findings_per_rule=50)), ESCAPE)
    assert len(escapes) == 50 + 1
    assert [f.evidence["not_listed"] for f in escapes if "not_listed" in f.evidence] == ["70"]


# ------------------------------------------------------------------ sizes


@pytest.mark.parametrize(
    ("dims", "raw"),
    [
        ([2**62, 2**62], b""),  # more elements than an int64 counts
        ([-1, 4], b""),
        ([1024, 1024], b"\x00" * 16),  # 4 MiB claimed, 16 bytes held
        ([2], b"\x00" * 12),  # more data than the dims allow
    ],
)
def test_sizes_that_contradict_the_data(scan, dims, raw):
    tensor = onnx.TensorProto(name="W", dims=dims, data_type=TensorProto.FLOAT, raw_data=raw)
    report = scan("sizes.onnx", pm.onnx_model_bytes([identity()], [tensor]))
    [finding] = by_rule(report, MALFORMED)
    assert finding.evidence["tensor"] == "W"


@pytest.mark.parametrize(("dims", "malformed"), [([4, 4], False), ([4, -4], True)])
def test_packed_dims_are_read_like_unpacked_ones(scan, dims, malformed):
    """onnx writes dims one varint field each; a packed encoding is equally valid protobuf."""
    packed = pm.lfield(1, b"".join(pm.varint(dim) for dim in dims))
    tensor = packed + pm.vfield(2, TensorProto.FLOAT) + pm.lfield(8, "W") + pm.lfield(9, b"\x00" * 64)
    model = onnx.load_from_string(pm.onnx_model_bytes([identity()]))
    data = model.SerializeToString() + pm.lfield(7, pm.lfield(5, tensor))  # a second graph field merges into the first
    assert (MALFORMED in rule_ids(scan("packed.onnx", data))) == malformed


def test_typed_values_must_match_dims(scan):
    short = helper.make_tensor("short", TensorProto.FLOAT, [3], [1.0, 2.0, 3.0])
    short.float_data.pop()
    good = helper.make_tensor("good", TensorProto.INT64, [2, 2], [1, 2, 3, 4])
    text = helper.make_tensor("text", TensorProto.STRING, [2], [b"a", b"b"])
    report = scan("typed.onnx", pm.onnx_model_bytes([identity()], [short, good, text]))
    assert [finding.evidence["tensor"] for finding in by_rule(report, MALFORMED)] == ["short"]


def test_two_gib_model_is_valid(tmp_path):
    path = pm.big_onnx(tmp_path / "big.onnx", 2 * 1024**3)
    assert rule_ids(scan_path(str(path))) == {"MLO001"}  # without reading the weights: bench/unit_speed.py


# ------------------------------------------------------------------ malformed and hostile protobuf


def assert_malformed(report) -> None:
    assert MALFORMED in rule_ids(report)
    assert "MLO903" not in rule_ids(report)


def test_truncated_model(tmp_path, scan):
    data = pm.torch_onnx_export(tmp_path / "m.onnx").read_bytes()
    assert_malformed(scan("cut.onnx", data[: len(data) // 2]))


def test_length_past_the_end_of_the_file(scan):
    assert_malformed(scan("long.onnx", length_past_the_end()))


def test_varint_longer_than_64_bits(scan):
    assert_malformed(scan("overflow.onnx", overlong_varint()))


def test_nesting_bomb(scan):
    report = scan("deep.onnx", nesting_bomb())
    assert_malformed(report)
    assert any("nested deeper" in finding.message for finding in by_rule(report, MALFORMED))


def test_groups_and_bad_wire_types(scan):
    for tail in (pm.key(9, 3), pm.key(9, 7) + b"\x00"):
        data = pm.vfield(1, 9) + pm.lfield(7, pm.lfield(1, pm.lfield(4, "Relu") + tail))
        assert MALFORMED in rule_ids(scan("wire.onnx", data))


def test_model_without_a_graph(scan):
    data = pm.vfield(1, 9) + pm.lfield(8, pm.lfield(1, "") + pm.vfield(2, 17))
    assert MALFORMED in rule_ids(scan("empty.onnx", data))
