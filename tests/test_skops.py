"""skops: mloops reports exactly the types skops would ask the user to trust, and proves why it matters."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from corpus import safe_formats
from corpus.safe_formats import LR, call, deeply_nested_skops, literal, mapping, node, sequence, skops_file, wide_skops

from mloops import scan_path
from mloops.core import Severity
from mloops.limits import Limits
from mloops.models import skops as analyzer

from .conftest import findings_at_least, rule_ids, worst

ROOT = Path(__file__).resolve().parent.parent


def reported_types(report) -> set[str]:
    return {f.evidence["type"] for f in report.findings if f.rule.id == "MLO180" and "type" in f.evidence}


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


# ------------------------------------------------------------------ benign files from scikit-learn


@pytest.fixture(scope="module")
def benign_files(tmp_path_factory) -> dict[str, Path]:
    import skops.io

    folder = tmp_path_factory.mktemp("skops-benign")
    files = {}
    for name, estimator in safe_formats.benign_estimators().items():
        files[name] = folder / f"{name}.skops"
        skops.io.dump(estimator, files[name])
    return files


@pytest.mark.parametrize("name", safe_formats.ESTIMATORS)
def test_estimators_saved_by_skops_raise_nothing_high(benign_files, name):
    import skops.io

    report = scan_path(str(benign_files[name]))
    assert not findings_at_least(report, Severity.HIGH), [f.message for f in report.findings]
    assert {"skops", "skops-schema"} <= {a.format for a in report.assets}
    # skops itself asks to trust some scikit-learn internals (tree node storage, KD-trees): mloops
    # reports exactly those, as library types whose content skops cannot vouch for.
    assert reported_types(report) == set(skops.io.get_untrusted_types(file=benign_files[name]))
    for finding in report.findings:
        if finding.rule.id == "MLO180":
            assert finding.severity == Severity.MEDIUM and "reviewed allowlist" in finding.message


def test_skops_own_untrusted_internals_are_reported_as_what_they_are(benign_files):
    report = scan_path(str(benign_files["forest"]))
    (finding,) = [f for f in report.findings if f.rule.id == "MLO180"]
    assert finding.evidence["type"] == "sklearn.tree._tree.Tree"
    assert finding.evidence["loader"] == "TreeNode" and finding.evidence["path"].startswith("$.")


def test_plain_estimators_are_a_clean_code_capable_format(benign_files):
    for name in ("logistic", "pipeline", "sgd", "tfidf", "log1p"):
        report = scan_path(str(benign_files[name]))
        assert worst(report) == Severity.INFO and rule_ids(report) == {"MLO002"}, name
        assert {"skops", "skops-schema"} <= {a.format for a in report.assets}


def test_compressed_skops_archive_reads_the_same(tmp_path):
    import skops.io

    path = tmp_path / "forest.skops"
    skops.io.dump(safe_formats.benign_estimators()["forest"], path, compression=zipfile.ZIP_DEFLATED)
    report = scan_path(str(path))
    assert reported_types(report) == {"sklearn.tree._tree.Tree"} and worst(report) == Severity.MEDIUM


# ------------------------------------------------------------------ payloads, proven with the real skops


PAYLOADS = sorted(safe_formats.payload_schemas(Path("marker")))


@pytest.fixture(scope="module")
def proven(tmp_path_factory) -> dict[str, tuple[set[str], dict]]:
    """Every payload scanned by mloops, then loaded by the real skops trusting what mloops reported."""
    folder = tmp_path_factory.mktemp("skops-payloads")
    (folder / "mloops_gadget.py").write_text(safe_formats.GADGET_MODULE)
    cases, reported = {}, {}
    for name in PAYLOADS:
        case = folder / name.replace(".", "_")
        case.mkdir()
        marker = case / "marker"
        schema, _ = safe_formats.payload_schemas(marker)[name]
        path = write(case, "model.skops", skops_file(schema))
        reported[name] = reported_types(scan_path(str(path)))
        cases[name] = (path, sorted(reported[name]), marker)
    answers = safe_formats.skops_prove(cases, folder)
    return {name: (reported[name], answers[name]) for name in PAYLOADS}


@pytest.mark.parametrize("name", PAYLOADS)
def test_payload_runs_once_the_reported_types_are_trusted(proven, name):
    reported, skops = proven[name]
    assert reported == safe_formats.payload_schemas(Path("marker"))[name][1]
    # skops' own audit asks the user to trust exactly what mloops reports, and refuses without it ...
    assert skops["untrusted"] == sorted(reported)
    assert skops["refused"].startswith("UntrustedTypesFoundException") and not skops["ran_untrusted"]
    # ... and trusting it runs the payload.
    assert skops["ran"], skops["trusted_load"]


@pytest.mark.parametrize(
    "name,category",
    [
        ("os.system", "process"),
        ("builtins.eval", "code-evaluation"),
        ("subprocess.Popen", "process"),
        ("loss-constructor", "code-evaluation"),
    ],
)
def test_dangerous_primitives_are_critical_with_their_category(tmp_path, name, category):
    schema, _ = safe_formats.payload_schemas(tmp_path / "marker")[name]
    report = scan_path(str(write(tmp_path, "model.skops", skops_file(schema))))
    (finding,) = [f for f in report.findings if f.rule.id == "MLO180"]
    assert finding.severity == Severity.CRITICAL and finding.evidence["category"] == category
    assert finding.location.members == ("schema.json",)


def test_unknown_third_party_class_is_high(tmp_path):
    schema, _ = safe_formats.payload_schemas(tmp_path / "marker")["third-party-class"]
    report = scan_path(str(write(tmp_path, "model.skops", skops_file(schema))))
    (finding,) = [f for f in report.findings if f.rule.id == "MLO180"]
    assert finding.severity == Severity.HIGH
    assert finding.evidence == {"type": "mloops_gadget.Gadget", "loader": "ObjectNode", "path": "$"}


# ------------------------------------------------------------------ the same answer as skops, case by case

HINGE = ("sklearn.linear_model._sgd_fast", "Hinge")

# Schemas that exercise each of skops' per-node trust rules; skops answers for each.
PARITY = {
    "operator-methodcaller": node("OperatorFuncNode", "operator", "methodcaller", attrs=sequence(literal("system"))),
    "bound-method": node("MethodNode", *LR, content={"func": "fit", "obj": node("ObjectNode", *LR, content=mapping())}),
    "type-reference": sequence(node("TypeNode", "builtins", "eval"), node("TypeNode", "builtins", "int")),
    "function-reference": sequence(node("FunctionNode", "numpy", "add"), node("FunctionNode", "posix", "system")),
    "partial": node(
        "PartialNode",
        "functools",
        "partial",
        content={
            "func": node("FunctionNode", "builtins", "exec"),
            "args": sequence(),
            "kwds": mapping(),
            "namespace": literal(None),
        },
    ),
    # skops reuses the node first built under an id and never reads the second state.
    "shadowed-by-id": sequence(
        node("ObjectNode", *LR, __id__=5), {**call("os", "system", literal("id")), "__id__": 5}, loader="ListNode"
    ),
    "cycle": {**mapping(again={"__id__": 9, **mapping()}), "__id__": 9},
    # A LossNode trusts its losses for everything below it, and only there.
    "loss-trust-inherited": sequence(
        node("LossNode", *HINGE, __reduce__={"args": sequence(literal(1.0))}, content=node("ObjectNode", *HINGE)),
        node("ObjectNode", *HINGE),
    ),
    # DefaultDictNode trusts collections.defaultdict and nothing else, not even dict.
    "defaultdict-class": node(
        "DefaultDictNode", "builtins", "dict", content={"main": mapping(), "default_factory": literal(None)}
    ),
    "bit-generator-name": node(
        "RandomGeneratorNode",
        "numpy.random._generator",
        "Generator",
        content={"bit_generator": mapping(bit_generator=literal("seed")), "seed_seq": mapping()},
    ),
    "protocol-0-function": {
        **node("FunctionNode", "numpy", "add", content={"module_path": "os", "function": "system"}),
        "protocol": 0,
    },
    "tree-constructor": node("TreeNode", "builtins", "print", __reduce__={"args": sequence()}, content=mapping()),
    "sparse-class-unused": node("SparseMatrixNode", "os", "system", type="scipy", file="m.npz"),
    "object-array": node(
        "NdArrayNode",
        "numpy",
        "ndarray",
        type="json",
        content=[node("ObjectNode", "mloops_gadget", "Gadget"), literal(1)],
        shape=sequence(literal(2)),
    ),
    "masked-and-dtype": sequence(
        node("MaskedArrayNode", "numpy.ma", "MaskedArray", content={"data": literal(1), "mask": literal(0)}),
        node("DTypeNode", "numpy", "dtype", content=literal("f4")),
        node("SliceNode", "builtins", "slice", content={"start": 1, "stop": 2, "step": None}),
    ),
}

MEMBERS = {"sparse-class-unused": {"m.npz": b""}}  # skops reads the member while building the tree

# Schemas skops refuses while building its tree; mloops reports them as malformed.
REFUSED = {
    "unknown-loader": node("EvalNode", "builtins", "eval"),
    "method-on-another-type": node("MethodNode", "os", "system", content={"func": "x", "obj": node("ObjectNode", *LR)}),
    "operator-outside-operator": node("OperatorFuncNode", "os", "system", attrs=sequence()),
    "cached-unknown-id": node("CachedNode", "os", "system", __id__=77),
    "unhashable-id": node("ObjectNode", *LR, __id__=[1]),
    "missing-class": {"__module__": "os", "__loader__": "ObjectNode"},
    "list-content-not-array": node("ListNode", "builtins", "list", content={"a": literal(1)}),
    "unknown-array-storage": node("NdArrayNode", "numpy", "ndarray", type="pickle"),
    "generator-without-name": node(
        "RandomGeneratorNode", "numpy.random._generator", "Generator", content={"bit_generator": mapping()}
    ),
    "sparse-not-scipy": node("SparseMatrixNode", "scipy.sparse", "csr_matrix", type="pickle", file="x"),
    "future-protocol": {**literal(1), "protocol": 3},
    "protocol-as-text": {**literal(1), "protocol": "2"},
}


@pytest.fixture(scope="module")
def skops_answers(tmp_path_factory) -> dict[str, tuple[Path, list[str] | str]]:
    folder = tmp_path_factory.mktemp("skops-parity")
    paths = {
        name: write(folder, f"{name}.skops", skops_file(schema, MEMBERS.get(name)))
        for name, schema in {**PARITY, **REFUSED}.items()
    }
    answers = safe_formats.skops_untrusted(*paths.values())
    return {name: (path, answers[path]) for name, path in paths.items()}


@pytest.mark.parametrize("name", sorted(PARITY))
def test_reports_exactly_what_skops_asks_to_trust(skops_answers, name):
    path, expected = skops_answers[name]
    assert isinstance(expected, list), expected
    report = scan_path(str(path))
    assert reported_types(report) == set(expected)
    assert "MLO201" not in rule_ids(report) and "MLO903" not in rule_ids(report)


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_schemas_skops_refuses_are_malformed(skops_answers, name):
    path, expected = skops_answers[name]
    assert isinstance(expected, str), f"skops accepted {name}: {expected}"
    report = scan_path(str(path))
    assert "MLO201" in rule_ids(report) and "MLO903" not in rule_ids(report)


def test_operator_gadgets_are_critical(skops_answers):
    report = scan_path(str(skops_answers["operator-methodcaller"][0]))
    (finding,) = findings_at_least(report, Severity.HIGH)
    assert finding.severity == Severity.CRITICAL and finding.evidence["type"] == "operator.methodcaller"


def test_protocol_0_function_is_judged_by_the_name_skops_imports(skops_answers):
    report = scan_path(str(skops_answers["protocol-0-function"][0]))
    (finding,) = findings_at_least(report, Severity.HIGH)
    assert finding.evidence["type"] == "os.system" and finding.severity == Severity.CRITICAL


# ------------------------------------------------------------------ broken and hostile schemas


@pytest.mark.parametrize(
    "schema",
    [b"", b"{", b"[1, 2]", b'{"protocol": 2', "\ufeff{}".encode("utf-16")],
    ids=["empty", "cut", "array", "truncated", "utf16-garbage"],
)
def test_unreadable_schema_is_malformed(tmp_path, schema):
    path = tmp_path / "model.skops"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("schema.json", schema)
    report = scan_path(str(path))
    assert "MLO201" in rule_ids(report) and "MLO903" not in rule_ids(report)


def test_another_tools_schema_json_is_left_alone(tmp_path):
    data = io.BytesIO()
    with zipfile.ZipFile(data, "w") as archive:
        archive.writestr("schema.json", '{"$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object"}')
        archive.writestr("rows.csv", "a,b\n1,2\n")
    report = scan_path(str(write(tmp_path, "dataset.zip", data.getvalue())))
    assert worst(report) == Severity.INFO and "skops-schema" not in {a.format for a in report.assets}


@pytest.mark.parametrize(
    "extra",
    [{"data.pkl": b"\x80\x02}q\x00."}, {"config.json": b"{}", "metadata.json": b"{}"}],
    ids=["with-a-torch-pickle", "with-keras-config"],
)
def test_a_schema_hidden_in_an_archive_of_another_layout_is_still_read(tmp_path, extra):
    # skops.load reads schema.json from any ZIP; the other members only change what the archive looks like.
    schema, _ = safe_formats.payload_schemas(tmp_path / "marker")["os.system"]
    report = scan_path(str(write(tmp_path, "model.skops", skops_file(schema, extra))))
    assert reported_types(report) == {"os.system"} and worst(report) == Severity.CRITICAL


@pytest.mark.parametrize("depth", [analyzer.MAX_NODE_DEPTH + 40, 3000])
def test_deep_nesting_is_bounded(tmp_path, depth):
    report = scan_path(str(write(tmp_path, "deep.skops", deeply_nested_skops(depth))))  # speed: bench/unit_speed.py
    assert "MLO201" in rule_ids(report) and "MLO903" not in rule_ids(report)


def test_many_untrusted_types_yield_a_bounded_report(tmp_path):
    schema = sequence(*(node("ObjectNode", "pkg", f"C{i}") for i in range(1000)), loader="ListNode")
    report = scan_path(str(write(tmp_path, "many.skops", skops_file(schema))), limits=Limits(max_findings_per_rule=200))
    untrusted = [f for f in report.findings if f.rule.id == "MLO180"]
    assert len(untrusted) == 200 + 1  # the context's cap, then one summary line
    assert [f.evidence["not_listed"] for f in untrusted if "not_listed" in f.evidence] == ["800"]


def test_a_wide_schema_is_walked(tmp_path):
    path = write(tmp_path, "wide.skops", wide_skops())  # 80,000 nodes; how fast: bench/unit_speed.py
    assert rule_ids(scan_path(str(path))) == {"MLO002"}


def test_an_oversized_schema_is_a_scan_limit(tmp_path):
    path = tmp_path / "huge.skops"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("schema.json", b" " * (analyzer.MAX_SCHEMA_BYTES + 1))
    # Deflated about 1000:1: the member decompresses completely, and is too large to parse.
    assert rule_ids(scan_path(str(path))) == {"MLO901", "MLO002"}


# ------------------------------------------------------------------ the reviewed data file


def test_trusted_data_file_is_what_the_installed_skops_computes():
    # In a fresh interpreter: skops derives part of its trusted set from the scikit-learn modules imported
    # so far, which other tests in this process (the library sweep) change.
    code = (
        "import importlib.util, json, sys\n"
        f"spec = importlib.util.spec_from_file_location('gen', {str(ROOT / 'scripts/generate_skops_trusted.py')!r})\n"
        "script = importlib.util.module_from_spec(spec); spec.loader.exec_module(script)\n"
        "json.dump(script.sections(), sys.stdout)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True)
    expected = {key: frozenset(names) for key, names in json.loads(done.stdout).items()}
    assert analyzer.trusted_types() == expected, "run scripts/generate_skops_trusted.py and review the diff"


def test_every_node_loader_is_handled():
    from skops.io import _persist  # noqa: F401 - registers the node classes
    from skops.io._audit import NODE_TYPE_MAPPING

    assert {loader for loader, _ in NODE_TYPE_MAPPING} == set(analyzer._HANDLERS)
