"""Core ML: custom models and custom layers (native code), paths that leave the model or its package,
model types mloops does not know, broken protobuf, and detection that keeps to Core ML files.

Every model is a real file written by coremltools (saved specs and ML program packages, built on Linux and
never compiled or loaded); hostile ones set fields of a real spec through coremltools' protobuf classes,
or are cut or assembled byte by byte to Model.proto where coremltools would refuse to write them.
"""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

import pytest
from corpus import protobuf_models as pm
from corpus.protobuf_models import lfield, vfield

from mloops import scan_path
from mloops.core import Capability, Severity
from mloops.models import coreml, onnx, tensorflow
from mloops.sniff import sniff
from tests.conftest import findings_at_least, rule_ids

pytest.importorskip("coremltools")
from corpus import coreml_models as cm

CUSTOM_MODEL, CUSTOM_LAYER, ESCAPE, UNKNOWN, LINKED = "MLO135", "MLO136", "MLO137", "MLO138", "MLO139"
MALFORMED, SCAN_LIMIT = "MLO201", "MLO901"


def by_rule(report, rule_id: str) -> list:
    return [finding for finding in report.findings if finding.rule.id == rule_id]


def scan_spec(tmp_path: Path, spec: object, name: str = "model.mlmodel"):
    return scan_path(str(cm.save(spec, tmp_path / name)))


def messages(report) -> list[str]:
    return [f"{f.rule.id} {f.severity.name} {f.message}" for f in report.findings]


# ------------------------------------------------------------------ benign models


@pytest.mark.parametrize(
    "build",
    [
        cm.network_spec,
        cm.classifier_spec,
        cm.tree_ensemble_spec,
        cm.glm_spec,
        lambda: cm.pipeline_spec(cm.network_spec()),
    ],
    ids=["neural-network", "nn-classifier", "tree-ensemble", "glm", "pipeline"],
)
def test_benign_models_are_clean(tmp_path, build):
    report = scan_spec(tmp_path, build())
    assert report.files[0].formats == ["coreml"]
    assert rule_ids(report) == {"MLO001"}, messages(report)


def test_benign_ml_program_package_is_clean(tmp_path):
    package = cm.ml_program_package(tmp_path / "prog.mlpackage")
    report = scan_path(str(package))
    formats = {Path(result.path).name: result.formats for result in report.files}
    assert formats["model.mlmodel"] == ["coreml"]
    assert formats["Manifest.json"] == ["coreml-manifest"]
    assert not findings_at_least(report, Severity.LOW), messages(report)


# ------------------------------------------------------------------ native code


def test_custom_model_names_native_code(tmp_path):
    report = scan_spec(tmp_path, cm.custom_model_spec("EvilModel"))
    [finding] = by_rule(report, CUSTOM_MODEL)
    assert finding.severity == Severity.HIGH and finding.capability == Capability.CODE_EXECUTION
    assert finding.evidence["class_name"] == "EvilModel"
    assert finding.evidence["field"] == "Model.customModel.className"
    assert finding.evidence["parameters"] == "endpoint"
    assert finding.location.offset is not None


def test_custom_layer_in_a_network(tmp_path):
    report = scan_spec(tmp_path, cm.network_spec("EvilLayer"))
    [finding] = by_rule(report, CUSTOM_LAYER)
    assert finding.severity == Severity.HIGH and finding.capability == Capability.CODE_EXECUTION
    assert finding.evidence["class_name"] == "EvilLayer"
    assert finding.evidence["field"] == "Model.neuralNetwork.layers[2].custom.className"


def test_custom_layer_hidden_in_a_branch(tmp_path):
    report = scan_spec(tmp_path, cm.branch_with_custom_layer_spec("Hidden"))
    [finding] = by_rule(report, CUSTOM_LAYER)
    assert finding.evidence["field"] == "Model.neuralNetwork.layers[1].branch.ifBranch.layers[0].custom.className"


def test_custom_layer_inside_a_pipeline_stage(tmp_path):
    spec = cm.pipeline_spec(cm.tree_ensemble_spec(), cm.network_spec("Staged"))
    report = scan_spec(tmp_path, spec)
    [finding] = by_rule(report, CUSTOM_LAYER)
    assert finding.evidence["class_name"] == "Staged"
    assert finding.evidence["field"].startswith("Model.pipeline.models[1].neuralNetwork.")


def test_custom_layers_of_one_class_are_reported_once(tmp_path):
    spec = cm.network_spec("Same")
    extra = spec.neuralNetwork.layers.add()
    extra.CopyFrom(spec.neuralNetwork.layers[2])
    extra.name = "second"
    report = scan_spec(tmp_path, spec)
    [finding] = by_rule(report, CUSTOM_LAYER)
    assert finding.evidence["layers"] == "2"


def test_custom_layer_before_a_broken_layer_is_still_reported(scan):
    spec = cm.network_spec("Early")
    network = spec.neuralNetwork.SerializeToString() + lfield(1, b"\x0a\x90")  # a last layer cut inside
    data = vfield(1, 4) + lfield(2, spec.description.SerializeToString()) + lfield(500, network)
    report = scan("broken.mlmodel", data)
    assert {CUSTOM_LAYER, MALFORMED} <= rule_ids(report), messages(report)


# ------------------------------------------------------------------ files outside the model


@pytest.mark.parametrize(
    ("path", "severity"),
    [
        ("../../../../etc/passwd", Severity.HIGH),
        ("/Users/victim/.ssh/id_rsa", Severity.HIGH),
        ("../Manifest.json", Severity.MEDIUM),
    ],
)
def test_manifest_item_path_outside_the_package(tmp_path, path, severity):
    package = cm.ml_program_package(tmp_path / "prog.mlpackage")
    cm.rewrite_manifest_path(package, path)
    report = scan_path(str(package))
    [finding] = by_rule(report, ESCAPE)
    assert finding.severity == severity and finding.capability == Capability.FILE_ACCESS
    assert finding.evidence["path"] == path
    assert finding.evidence["field"].startswith("itemInfoEntries[") and finding.location.path.endswith("Manifest.json")


def test_zipped_package_with_an_escaping_manifest(tmp_path):
    package = cm.ml_program_package(tmp_path / "prog.mlpackage")
    cm.rewrite_manifest_path(package, "../../secret.key")
    archive = Path(shutil.make_archive(str(tmp_path / "prog.mlpackage"), "zip", tmp_path, "prog.mlpackage"))
    with zipfile.ZipFile(archive) as zipped:
        assert "prog.mlpackage/Manifest.json" in zipped.namelist()
    shutil.rmtree(package)
    report = scan_path(str(archive))
    [finding] = by_rule(report, ESCAPE)
    assert finding.severity == Severity.HIGH
    assert finding.location.members[-1] == "prog.mlpackage/Manifest.json"


@pytest.mark.parametrize(
    ("file_name", "severity"),
    [
        ("/etc/passwd", Severity.HIGH),
        ("@model_path/../../../home/user/.aws/credentials", Severity.HIGH),
        ("weights/weight.bin", Severity.MEDIUM),
    ],
)
def test_ml_program_weights_read_from_outside_the_package(tmp_path, file_name, severity):
    package = cm.ml_program_package(tmp_path / "prog.mlpackage")
    cm.rewrite_blob_paths(package, file_name)
    report = scan_path(str(cm.package_model(package)))
    [finding] = by_rule(report, ESCAPE)
    assert finding.severity == severity
    assert finding.evidence["file_name"] == file_name
    assert finding.evidence["field"].endswith(".blobFileValue.fileName")


def test_linked_model_is_a_note_and_an_escaping_one_is_high(tmp_path):
    report = scan_spec(tmp_path, cm.linked_model_spec("Other.mlmodelc", "$BUNDLE_MAIN/Models"), "ok.mlmodel")
    [note] = by_rule(report, LINKED)
    assert note.severity == Severity.LOW and ESCAPE not in rule_ids(report)
    report = scan_spec(tmp_path, cm.linked_model_spec("Other.mlmodelc", "$BUNDLE_MAIN:/private/var/tmp"), "b.mlmodel")
    [finding] = by_rule(report, ESCAPE)
    assert finding.severity == Severity.HIGH and "/private/var/tmp" in finding.message


# ------------------------------------------------------------------ what mloops cannot follow


def test_unknown_model_type_is_reported(tmp_path, scan):
    data = vfield(1, 9) + lfield(2, lfield(1, lfield(1, "x"))) + lfield(4321, vfield(1, 1))
    report = scan("future.mlmodel", data)
    assert report.files[0].formats == ["coreml"]
    [finding] = by_rule(report, UNKNOWN)
    assert finding.severity == Severity.MEDIUM and finding.evidence["field"] == "Model[4321]"


def test_serialized_model_is_opaque(tmp_path):
    spec = cm.network_spec()
    spec.serializedModel.identifier = "com.apple.private.model"
    spec.serializedModel.model = b"\x00" * 64
    report = scan_spec(tmp_path, spec)
    [finding] = by_rule(report, UNKNOWN)
    assert finding.evidence["identifier"] == "com.apple.private.model"


def test_truncated_model_is_malformed(tmp_path, scan):
    data = cm.save(cm.network_spec(), tmp_path / "whole.mlmodel").read_bytes()
    report = scan("cut.mlmodel", data[: len(data) // 2])
    assert report.files[0].formats == ["coreml"]
    assert [f.severity for f in by_rule(report, MALFORMED)] == [Severity.HIGH]
    assert "MLO001" not in rule_ids(report)


@pytest.mark.parametrize(
    "data",
    [
        vfield(1, 4) + lfield(2, b""),  # no model type
        vfield(1, 4) + lfield(2, b"") + vfield(500, 1),  # the model type is not a message
        vfield(1, 4) + lfield(2, b"") + lfield(500, lfield(1, b"\x0a\x90")),  # a layer cut inside
    ],
    ids=["no-type", "type-not-a-message", "broken-layer"],
)
def test_models_core_ml_refuses_are_malformed(scan, data):
    report = scan("broken.mlmodel", data)
    assert findings_at_least(report, Severity.HIGH) and MALFORMED in rule_ids(report), messages(report)


def test_garbage_named_mlmodel_is_not_a_silent_pass(scan):
    report = scan("model.mlmodel", b"\xff" * 64)
    assert findings_at_least(report, Severity.HIGH)


@pytest.mark.parametrize(
    "manifest",
    [b'{"itemInfoEntries": {"a": {"path": ', b'{"itemInfoEntries": {"a": {"path": "com.apple.CoreML/model.mlmodel"}}}'],
    ids=["cut-json", "no-root-item"],
)
def test_broken_manifest_is_malformed(tmp_path, manifest):
    (tmp_path / "Manifest.json").write_bytes(manifest)
    report = scan_path(str(tmp_path / "Manifest.json"))
    assert report.files[0].formats == ["coreml-manifest"]
    assert MALFORMED in rule_ids(report)


def test_pipelines_nested_past_the_limit_are_a_scan_limit_and_earlier_stages_still_count(scan):
    model = vfield(1, 4) + lfield(300, b"")
    for _ in range(coreml.MAX_PIPELINE_DEPTH + 2):
        model = vfield(1, 4) + lfield(202, lfield(1, model))
    first_stage = cm.network_spec("BeforeTheLimit").SerializeToString()
    report = scan("deep.mlmodel", vfield(1, 4) + lfield(202, lfield(1, first_stage) + lfield(1, model)))
    assert {SCAN_LIMIT, CUSTOM_LAYER} <= rule_ids(report), messages(report)


# ------------------------------------------------------------------ detection


def test_detected_by_content_under_another_name(tmp_path):
    data = cm.save(cm.network_spec(), tmp_path / "m.mlmodel").read_bytes()
    assert sniff(data, "weights.bin") == ["coreml"]
    assert sniff(data, "model.pb") == ["coreml"]  # TensorFlow's detector does not take it for a graph
    assert not onnx.detect(data, "weights.bin") and not tensorflow.detect(data, "model.pb")


def test_onnx_tensorflow_and_pickle_files_are_not_core_ml(tmp_path):
    onnx_model = pm.onnx_if_ml_model(tmp_path / "model.onnx").read_bytes()
    samples = {
        "model.onnx": onnx_model,
        "weights.bin": onnx_model,
        "saved_model.pb": pm.benign_tf2_saved_model(),
        "frozen.pb": pm.frozen_graph(),
        "keras_metadata.pb": pm.keras_metadata_model(with_lambda=False),
        "model.pkl": b"\x80\x04\x95\x05\x00\x00\x00\x00\x00\x00\x00K\x01.",
    }
    for name, data in samples.items():
        assert not coreml.detect(data[:65536], name), name
        assert "coreml" not in sniff(data[:65536], name), name
    assert sniff(onnx_model, "model.onnx") == ["onnx"]
    assert sniff(pm.frozen_graph(), "frozen.pb") == ["tensorflow"]


def test_a_json_file_is_a_manifest_only_by_name_and_content():
    manifest = b'{"fileFormatVersion": "1.0.0", "itemInfoEntries": {}}'
    assert coreml.detect_manifest(manifest, "prog.mlpackage/Manifest.json")
    assert not coreml.detect_manifest(manifest, "config.json")
    assert not coreml.detect_manifest(b'{"name": "x"}', "Manifest.json")
