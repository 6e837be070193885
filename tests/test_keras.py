"""Keras H5 and .keras: Lambda bytecode, foreign modules, dangerous Keras functions, and the HDF5 reader.

Benign models come from real Keras (torch backend). Malicious ones are built by test code and proven
with the real Keras loader in a subprocess; Keras 3.15 refuses Lambda layers and pickled torch modules
unless the caller passes safe_mode=False, so the proofs load that way, as users of such models do.
"""

from __future__ import annotations

import base64
import io
import json
import marshal
import random
import shutil
import struct
import zipfile
from pathlib import Path
from typing import NamedTuple

import h5py
import numpy as np
import pytest
from corpus import keras_models as km
from corpus import prove
from corpus.keras_models import (
    ATTRIBUTE,
    DENSE,
    dense_h5,
    hostile_files,
    hostile_marshal_blobs,
    keras_config,
)

from mloops import scan_path
from mloops.core import Report, Severity
from mloops.parsers import hdf5, pymarshal
from mloops.picklevm.assemble import PickleBuilder

from .conftest import findings_at_least, rule_ids, worst


def by_rule(report, rule_id):
    return [f for f in report.findings if f.rule.id == rule_id]


def formats(report) -> set[str]:
    return {asset.format for asset in report.assets}


def assert_fails_closed(report, *expected: str) -> None:
    assert "MLO903" not in rule_ids(report), [f.message for f in report.findings]
    assert worst(report) >= Severity.HIGH
    if expected:
        assert rule_ids(report) & set(expected), [(f.rule.id, f.message) for f in report.findings]


@pytest.fixture(scope="module")
def benign(tmp_path_factory) -> list[Path]:
    return km.save_benign(tmp_path_factory.mktemp("benign"))


class Malicious(NamedTuple):
    path: Path
    marker: Path


@pytest.fixture(scope="module")
def malicious(tmp_path_factory) -> dict[str, Malicious]:
    folder = tmp_path_factory.mktemp("malicious")
    cases = {}
    for name, suffix in (("h5", ".h5"), ("tf2", ".h5"), ("keras", ".keras")):
        marker = folder / f"marker-{name}"
        cases[name] = Malicious(km.save_lambda(folder, marker, suffix, stem=name), marker)
    cases["tf2"] = Malicious(km.to_tf_keras_lambda(cases["tf2"].path, folder / "tf2_style.h5"), cases["tf2"].marker)
    marker = folder / "marker-torch"
    km.payload_module(folder / "site", marker)
    cases["torch"] = Malicious(km.save_torch_wrapper_payload(folder), marker)
    return cases


@pytest.fixture(scope="module")
def proofs(malicious) -> dict[str, tuple[bool, str]]:
    """Every malicious file loaded once with the real Keras, in one subprocess; the H5 first with the
    default safe_mode=True (refused), then, like every other file, with safe_mode=False."""
    plan = [("h5-safe", malicious["h5"], True)] + [(name, case, False) for name, case in malicious.items()]
    site = malicious["torch"].path.parent / "site"
    results = km.keras_payloads_run([(case.path, case.marker, safe) for _, case, safe in plan], pythonpath=site)
    for case in malicious.values():
        shutil.rmtree(case.marker, ignore_errors=True)
    return {name: result for (name, _, _), result in zip(plan, results, strict=True)}


def proven_report(name: str, malicious: dict[str, Malicious], proofs: dict[str, tuple[bool, str]]) -> Report:
    """The payload ran under the real loader; scanning the file runs nothing."""
    ran, error = proofs[name]
    assert ran, error
    case = malicious[name]
    report = scan_path(str(case.path))
    assert not case.marker.exists()
    return report


# ------------------------------------------------------------------ benign files


def test_benign_keras_models_have_no_finding_above_info(benign):
    for path in benign:
        report = scan_path(str(path))
        assert worst(report) == Severity.INFO, (path.name, [(f.rule.id, f.message) for f in report.findings])
        if path.name.endswith(".weights.h5"):
            assert formats(report) == {"hdf5"}
        elif path.suffix == ".h5":
            assert formats(report) == {"keras-h5"} and "MLO002" in rule_ids(report)
        else:
            assert formats(report) == {"keras", "keras-config", "hdf5", "other"}


def test_generic_hdf5_data_file_is_labeled_hdf5_and_safe(tmp_path):
    path = tmp_path / "measurements.h5"
    with h5py.File(path, "w") as h5:
        h5.attrs["title"] = "sensor run"
        h5.attrs["channels"] = np.array(["a", "b"], dtype=h5py.string_dtype())
        h5.create_dataset("data", data=np.arange(1000.0).reshape(100, 10), compression="gzip")
        h5.create_group("meta/run").attrs["operator"] = "x"
    report = scan_path(str(path))
    assert formats(report) == {"hdf5"}
    assert rule_ids(report) == {"MLO001"} and worst(report) == Severity.INFO


@pytest.mark.parametrize(
    "options",
    [{}, {"libver": "latest"}, {"libver": ("v108", "latest")}, {"userblock_size": 1024}, {"track_order": True}],
    ids=["default", "latest", "v108", "userblock", "track-order"],
)
def test_reader_agrees_with_h5py_on_every_group(tmp_path, options):
    path = tmp_path / "layout.h5"
    with h5py.File(path, "w", **options) as h5:
        h5.attrs["text"] = "hello"
        h5.attrs["bytes"] = b"raw"
        h5.attrs["unicode"] = "ünïcode"
        h5.attrs["number"] = 42
        h5.attrs["fixed"] = np.array([b"ab", b"cde"], dtype="S4")
        h5.attrs["names"] = np.array(["x", "yy", "zzz"], dtype=h5py.string_dtype())
        h5.attrs["long"] = "J" * 100_000
        for index in range(40):  # more than 8 attributes and links: dense storage with libver latest
            h5.attrs[f"a{index}"] = f"v{index}"
            h5.create_group(f"g{index}/inner").attrs["k"] = str(index)
    with h5py.File(path) as h5, open(path, "rb") as stream:
        file = hdf5.File(stream, path.stat().st_size, start=hdf5.find_superblock(stream.read(hdf5.SEARCH_BYTES)))
        groups = ["/"]
        h5.visit(lambda name: groups.append("/" + name))
        for group in groups:
            expected = {}
            for name, value in h5[group].attrs.items():
                if isinstance(value, (str, bytes)):
                    value = (value.encode() if isinstance(value, str) else value,)
                elif value.dtype.kind in "SO":
                    value = tuple(v.encode() if isinstance(v, str) else v for v in value)
                else:
                    value = None
                expected[name] = value
            assert {a.name: a.strings for a in file.attributes(group)} == expected, group


def test_reader_walks_deep_b_trees_and_huge_heap_objects(tmp_path):
    path = dense_h5(tmp_path / "dense.h5")
    with open(path, "rb") as stream:
        attributes = hdf5.File(stream, path.stat().st_size).attributes("/")
    values = {a.name: a.strings[0] for a in attributes}
    assert len(attributes) == 20_001 and values["huge"] == b"x" * 100_000
    assert all(values[f"a{index:05d}"] == str(index).encode() for index in range(20_000))
    assert rule_ids(scan_path(str(path))) == {"MLO001"}  # within the reader's bounds; speed: bench/unit_speed.py


# ------------------------------------------------------------------ malicious, proven


def test_keras_h5_lambda_runs_with_the_real_loader_and_is_critical(malicious, proofs):
    """Keras 3.15 runs the Lambda from a legacy H5 when loaded with safe_mode=False; by default it refuses."""
    assert not proofs["h5-safe"][0] and "safe_mode" in proofs["h5-safe"][1]
    report = proven_report("h5", malicious, proofs)
    (finding,) = by_rule(report, "MLO130")
    assert finding.severity == Severity.CRITICAL and formats(report) == {"keras-h5"}
    assert {"__import__", "makedirs"} <= set(finding.evidence["names"].split(", "))
    assert "'os'" in finding.evidence["constants"] and finding.evidence["config"] == "model_config"


def test_tf_keras_2_style_lambda_runs_and_is_critical(malicious, proofs):
    """tf.keras 2 stored [code, defaults, closure] with function_type "lambda"; Keras 3 still runs it."""
    (finding,) = by_rule(proven_report("tf2", malicious, proofs), "MLO130")
    assert finding.severity == Severity.CRITICAL and finding.evidence["field"] == "function"
    assert finding.evidence["module"] == "__main__" and "makedirs" in finding.evidence["dangerous"]


def test_keras_v3_lambda_runs_with_the_real_loader_and_is_critical(malicious, proofs):
    """A .keras Lambda runs under safe_mode=False (the loader's own error message tells users to pass it)."""
    (finding,) = by_rule(proven_report("keras", malicious, proofs), "MLO130")
    assert finding.severity == Severity.CRITICAL
    assert finding.location.members == ("config.json",) and finding.evidence["config"] == "config.json"
    assert finding.evidence["path"] == "config.layers[1].config.function"


def test_keras_v3_reference_to_a_non_keras_module_runs_and_is_reported(malicious, proofs):
    """Keras 3.15 no longer imports modules named by "module" (see the structural test below), but a
    TorchModuleWrapper's config holds torch.save() bytes that Keras hands to torch.load under
    safe_mode=False. Here they are a pickle calling a function of a module outside Keras, installed
    on the loading machine (PYTHONPATH)."""
    report = proven_report("torch", malicious, proofs)
    (finding,) = findings_at_least(report, Severity.HIGH)
    assert finding.rule.id == "MLO110" and finding.evidence["callable"] == f"{km.PAYLOAD_MODULE}.touch"
    assert finding.location.members == ("config.json", "config.layers[1].module")


def test_keras_v3_foreign_module_reference_is_high(malicious, tmp_path):
    """Structural only: the CVE-2025-1550 shape. Keras 3.0-3.8 imported any "module" named by the config;
    Keras 3.9+ (installed here) imports only Keras packages, so this cannot be proven with it."""
    path = km.foreign_module_keras(malicious["keras"].path, tmp_path / "foreign.keras")
    (finding,) = by_rule(scan_path(str(path)), "MLO131")
    assert finding.severity == Severity.HIGH
    assert finding.evidence["module"] == km.PAYLOAD_MODULE and finding.evidence["symbol"] == "touch"


# ------------------------------------------------------------------ config judgement


def keras_zip(config: dict | bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("metadata.json", json.dumps({"keras_version": "3.15.1"}))
        archive.writestr("config.json", config if isinstance(config, bytes) else json.dumps(config))
    return buffer.getvalue()


def function(module: str, name: str) -> dict:
    return {"module": module, "class_name": "function", "config": name, "registered_name": "function"}


@pytest.mark.parametrize(
    "layer,rule,severity",
    [
        # CVE-2025-8747: a functional model calls a "layer" that resolves to keras.utils.get_file
        ({"module": "keras.utils", "class_name": "get_file", "config": {}}, "MLO132", Severity.CRITICAL),
        ({"module": "keras.config", "class_name": "enable_unsafe_deserialization", "config": {}}, "MLO132", None),
        ({"module": "keras.src.saving.saving_api", "class_name": "load_model", "config": {}}, "MLO132", None),
        ({"module": "keras.layers", "class_name": "TFSMLayer", "config": {"filepath": "/x"}}, "MLO132", None),
        # CVE-2025-12058: lookup layers read the vocabulary path when rebuilt
        (
            {"module": "keras.layers", "class_name": "StringLookup", "config": {"vocabulary": "/etc/passwd"}},
            "MLO132",
            Severity.HIGH,
        ),
        ({"class_name": "TFOpLambda", "config": {"function": "io.write_file"}}, "MLO132", Severity.CRITICAL),
        ({**DENSE, "config": {"activation": function("builtins", "eval")}}, "MLO131", Severity.CRITICAL),
        ({**DENSE, "config": {"activation": function("os", "system")}}, "MLO131", Severity.CRITICAL),
        ({**DENSE, "module": "my_package.layers", "registered_name": "my_package>MyDense"}, "MLO131", Severity.HIGH),
        ({**DENSE, "registered_name": "my_package>Dense"}, "MLO131", Severity.MEDIUM),
        ({"class_name": "MyLegacyLayer", "config": {}}, "MLO131", Severity.MEDIUM),
        (
            {"class_name": "Lambda", "config": {"function": "system", "function_type": "function", "module": "os"}},
            "MLO131",
            Severity.CRITICAL,
        ),
    ],
    ids=[
        "get_file",
        "enable_unsafe",
        "load_model",
        "tfsm",
        "vocabulary-path",
        "tfoplambda-io",
        "builtins-eval",
        "os-system",
        "custom-module",
        "custom-registered",
        "legacy-custom-class",
        "legacy-lambda-function",
    ],
)
def test_config_references_are_judged(scan, layer, rule, severity):
    for name, data in (("m.keras", keras_zip(keras_config(layer))), ("m.h5", km.keras_h5_bytes(keras_config(layer)))):
        report = scan(name, data)
        found = by_rule(report, rule)
        assert found, (name, [(f.rule.id, f.message) for f in report.findings])
        assert max(f.severity for f in found) == (severity or found[0].rule.severity)
        assert found[0].evidence["path"].startswith("config.layers[1]")


def test_training_config_objects_are_judged(scan):
    training = {"loss": function("subprocess", "check_output"), "metrics": ["accuracy"], "optimizer_config": DENSE}
    report = scan("m.h5", km.keras_h5_bytes(keras_config(), training))
    (finding,) = by_rule(report, "MLO131")
    assert finding.severity == Severity.CRITICAL and finding.evidence["config"] == "training_config"
    assert finding.evidence["path"] == "loss"


def test_keras_builtin_names_are_not_reported(scan):
    compile_config = {
        "optimizer": {"module": "keras.optimizers", "class_name": "Adam", "config": {}, "registered_name": "Adam"},
        "loss": function("builtins", "mean_squared_error"),
        "metrics": [function("builtins", "mean_absolute_error"), "mse"],
    }
    legacy_training = {"loss": "mse", "optimizer_config": {"class_name": "Custom>Adam", "config": {}}}
    assert worst(scan("m.keras", keras_zip(keras_config(compile_config=compile_config)))) == Severity.INFO
    assert worst(scan("m.h5", km.keras_h5_bytes(keras_config(), legacy_training))) == Severity.INFO


def test_lambda_forms_and_undecodable_code(scan):
    code = base64.b64encode(marshal.dumps((lambda x: x + 1).__code__)).decode()
    plain = {"class_name": "__lambda__", "config": {"code": code, "defaults": None, "closure": None}}
    generic = {"class_name": "__lambda__", "config": {"value": [code, None, None]}}  # a lambda as an activation
    garbage = {"class_name": "__lambda__", "config": {"code": "not marshal data"}}
    for value, severity in ((plain, Severity.HIGH), (generic, Severity.HIGH), (garbage, Severity.HIGH)):
        layer = {"module": "keras.layers", "class_name": "Lambda", "config": {"name": "l", "function": value}}
        (finding,) = by_rule(scan("m.keras", keras_zip(keras_config(layer))), "MLO130")
        assert finding.severity == severity
    assert "could not decode" in finding.message


def test_unreadable_configs_fail_closed(scan):
    assert_fails_closed(scan("m.keras", keras_zip(b"{x")), "MLO201")
    broken = km.hdf5_file([(ATTRIBUTE, km.attribute("model_config", b'{"class_name": '))])
    report = scan("m.h5", broken)
    assert_fails_closed(report, "MLO201")
    assert formats(report) == {"keras-h5"}
    deep = km.hdf5_file([(ATTRIBUTE, km.attribute("model_config", b"[" * 60_000))])
    assert_fails_closed(scan("deep.h5", deep), "MLO201")


def test_duplicate_model_config_attributes_are_reported_and_both_judged(scan):
    evil = keras_config({"module": "os", "class_name": "system", "config": {}})
    attributes = [
        (ATTRIBUTE, km.attribute("model_config", json.dumps(keras_config()).encode())),
        (ATTRIBUTE, km.attribute("model_config", json.dumps(evil).encode())),
    ]
    report = scan("m.h5", km.hdf5_file(attributes))
    assert {"MLO201", "MLO131"} <= rule_ids(report)


def test_model_config_in_dense_attribute_storage(malicious, tmp_path):
    path = tmp_path / "dense.h5"
    with h5py.File(malicious["h5"].path) as source, h5py.File(path, "w", libver="latest") as target:
        for name, value in source.attrs.items():
            target.attrs[name] = value
        for index in range(30):
            target.attrs[f"padding{index}"] = index
    (finding,) = by_rule(scan_path(str(path)), "MLO130")
    assert finding.severity == Severity.CRITICAL


# ------------------------------------------------------------------ the marshal walker


def test_marshal_walker_reads_names_and_constants():
    def nested(x):
        return [str(x).upper() for _ in range(2)] + ["constant"]

    (result,) = pymarshal.code_strings(marshal.dumps((lambda x: __import__("os").system("id")).__code__))
    assert result.names == ("__import__", "system") and result.constants == ("os", "id")
    (result,) = pymarshal.code_strings(marshal.dumps(nested.__code__))
    assert {"str", "upper", "range"} <= set(result.names) and "constant" in result.constants


def test_marshal_walker_survives_hostile_bytes():
    for blob in hostile_marshal_blobs():  # no exception escapes; its speed: bench/unit_speed.py
        pymarshal.code_strings(blob)


# ------------------------------------------------------------------ hostile HDF5


@pytest.mark.parametrize("name,data", list(hostile_files().items()), ids=list(hostile_files()))
def test_hostile_hdf5_fails_closed(scan, name, data):
    assert_fails_closed(scan(f"{name}.h5", data), "MLO201", "MLO901")  # its speed: bench/unit_speed.py


def test_truncated_keras_h5_fails_closed_at_every_cut(malicious, scan):
    data = malicious["h5"].path.read_bytes()
    for cut in range(8, len(data), max(1, len(data) // 97)):
        assert_fails_closed(scan("model.h5", data[:cut]))


def test_mutated_keras_h5_never_crashes_the_scanner(malicious, scan):
    data = malicious["h5"].path.read_bytes()
    metadata_end = min(len(data), 4096)
    generator = random.Random(3)
    for _ in range(150):
        mutant = bytearray(data)
        for _ in range(generator.randrange(1, 8)):
            mutant[generator.randrange(8, metadata_end)] = generator.randrange(256)
        report = scan("model.h5", bytes(mutant))
        assert "MLO903" not in rule_ids(report), [f.message for f in report.findings]


def test_unsupported_structures_are_reported_not_passed(scan):
    shared_type = km.attribute("model_config", b"x")
    shared_type = bytes([2, 0x01]) + shared_type[2:]  # version 2 attribute whose datatype is a shared message
    report = scan("model.h5", km.hdf5_file([(ATTRIBUTE, shared_type)]))
    assert_fails_closed(report, "MLO203")


# ------------------------------------------------------------------ bytes around the HDF5 data


def test_pickle_spanning_the_user_block_and_the_hdf5_data_is_found(tmp_path):
    """A pickle/HDF5 polyglot: h5py reads the HDF5 after a 512-byte user block, while pickle.load reads
    from byte 0 a pickle whose BINBYTES8 swallows the HDF5 data and whose call comes after it."""
    path, marker = tmp_path / "model.h5", tmp_path / "marker"
    with h5py.File(path, "w", userblock_size=512) as h5:
        h5.attrs["title"] = "x"
    assert rule_ids(scan_path(str(path))) == {"MLO001"}  # an empty user block is fine
    data = bytearray(path.read_bytes())
    data[:11] = b"\x80\x04\x8e" + struct.pack("<Q", len(data) - 11)
    path.write_bytes(bytes(data) + PickleBuilder(None).pop().call("os", "makedirs", str(marker)).stop().build())
    assert h5py.File(path).attrs["title"] == "x"
    ran, stderr = prove.payload_runs("pickle", path, marker)
    assert ran, stderr
    marker.rmdir()
    report = scan_path(str(path))
    assert {"MLO101", "MLO202"} <= rule_ids(report) and not marker.exists()


def test_archive_appended_after_the_hdf5_data_is_reported_and_scanned(malicious, benign, tmp_path):
    """A file that is both HDF5 (for h5py) and a .keras ZIP (for zipfile, which reads from the end)."""
    weights = next(p for p in benign if p.name.endswith(".weights.h5"))
    path = tmp_path / "polyglot.keras"
    path.write_bytes(weights.read_bytes() + malicious["keras"].path.read_bytes())
    report = scan_path(str(path))
    assert {"MLO202", "MLO130"} <= rule_ids(report)


def test_keras_v3_members_other_than_config_are_sniffed(tmp_path, malicious):
    payload = PickleBuilder(2).call("os", "system", "id").stop().build()
    path = tmp_path / "extra.keras"
    with zipfile.ZipFile(malicious["keras"].path) as source, zipfile.ZipFile(path, "w") as target:
        for info in source.infolist():
            target.writestr(info, source.read(info.filename))
        target.writestr("assets/extra.pkl", payload)
        target.writestr("sub/config.json", json.dumps({"module": "os", "class_name": "system"}))
    report = scan_path(str(path))
    assert "MLO101" in rule_ids(report)
    assert all(f.location.members[:1] != ("sub/config.json",) for f in report.findings)
