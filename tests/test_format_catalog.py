"""The one format registry: every format a module declares is detected, dispatched and counted from that
declaration, and a label no module declares fails loudly instead of counting as "other"."""

from __future__ import annotations

import ast
import io
import pathlib
import re
import subprocess
import sys

import pytest

from mloops import registry, scan
from mloops.context import Item, ScanContext
from mloops.core import Location
from mloops.limits import Limits
from mloops.picklevm.policy import default_policy
from mloops.sniff import has_model_extension, sniff

SRC = pathlib.Path(scan.__file__).resolve().parent


def test_every_detected_format_has_a_handler_and_detection_uses_the_declared_order():
    catalog = registry.catalog()
    detected = [fmt for fmt in catalog.values() if fmt.magic or fmt.detect]
    assert len(detected) > 25
    assert all(fmt.handler is not None for fmt in detected)
    orders = [fmt.order for fmt in registry.detectors()]
    assert orders == sorted(orders)
    # the pickle check comes after every binary format and before every text format
    labels = [fmt.label for fmt in registry.detectors()]
    assert labels.index("tar") < labels.index("pickle") < labels.index("notebook")


def test_sniffing_gives_declared_labels_only():
    samples = [b"\x93NUMPY\x01\x00", b"PK\x03\x04", b"\x80\x04K\x01.", b'{"cells": [], "nbformat": 4}', b"FROM x\n"]
    found = {label for sample in samples for label in sniff(sample, "f")}
    assert found and found <= set(registry.catalog())


def test_every_literal_label_an_analyzer_records_is_declared():
    recorded = {
        label
        for path in SRC.rglob("*.py")
        for label in re.findall(r'\.record\(\w+, "([^"]+)"\)', path.read_text(encoding="utf-8"))
    }
    assert len(recorded) > 25
    assert recorded <= set(registry.catalog()), sorted(recorded - set(registry.catalog()))


def test_the_formats_extensions_cover_every_model_name_mloops_knew_before_the_registry():
    before = ".pkl .pickle .pck .pcl .joblib .jbl .dill .cloudpickle .pt .pth .ckpt .npy .npz .mar .pth.tar .pt.tar"
    before += " .pt2 .nemo .h5 .hdf5 .keras .pb .onnx .gguf .safetensors .skops .tflite"
    assert set(before.split()) <= set(registry.model_extensions())
    assert has_model_extension("weights.PTH.gz") and not has_model_extension("notes.txt")


def test_archive_layouts_come_from_the_declarations():
    assert registry.matching_layouts("zip", ["archive/data.pkl", "archive/constants.pkl"]) == ("torchscript-zip",)
    assert registry.matching_layouts("zip", ["archive/data.pkl"]) == ("pytorch-zip",)
    assert registry.matching_layouts("zip", ["config.json", "metadata.json", "schema.json"]) == ("keras", "skops")
    assert registry.matching_layouts("zip", ["a.npy", "b.npy"]) == ("npz",)
    assert registry.matching_layouts("tar", ["storages", "tensors", "pickle"]) == ("pytorch-legacy-tar",)
    assert registry.member_handler("keras", "config.json") is not None
    assert registry.member_handler("zip", "config.json") is None


def test_an_unknown_label_fails_loudly():
    ctx = ScanContext("x", Limits(), default_policy(), scan.dispatch)
    item = Item(io.BytesIO(b""), Location("x"), 0, "x", 0)
    with pytest.raises(LookupError, match="declared by no module"):
        ctx.record(item, "no-such-format")


def test_a_label_declared_twice_or_detected_without_a_handler_is_refused(monkeypatch):
    twice = (*registry.OWN, registry.Format("other", "other", "again"))
    monkeypatch.setattr(registry, "OWN", twice)
    registry.catalog.cache_clear()
    try:
        with pytest.raises(ValueError, match="declared twice"):
            registry.catalog()
        monkeypatch.setattr(registry, "OWN", (registry.Format("x", "safe", "x", magic=(b"X",)),))
        with pytest.raises(ValueError, match="no handler"):
            registry.catalog()
    finally:
        monkeypatch.undo()
        registry.catalog.cache_clear()


def test_shared_findings_take_the_attack_class_of_the_surface_they_occur_in(tmp_path: pathlib.Path):
    from mloops import scan_path
    from mloops.core import AttackClass

    notebook = tmp_path / "broken.ipynb"
    notebook.write_text('{"cells": [{"cell_type": "code", "outputs": 7}], "nbformat": 4, "nbformat_minor": 5}')
    manifest = tmp_path / "pod.yaml"  # a billion-laughs manifest: the YAML alias bound is reached
    laughs = "".join(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]\n" for i in range(1, 9))
    manifest.write_text("apiVersion: v1\nkind: Pod\nmetadata: {name: x}\na0: &a0 [lol]\n" + laughs)
    model = tmp_path / "model.pkl"
    model.write_bytes(b"\x80\x04\x95\x05\x00\x00\x00\x00\x00\x00\x00]\x94(K")  # truncated
    classes = {
        path.name: {(f.rule.id, f.attack_class) for f in scan_path(str(path)).findings if f.rule.shared}
        for path in (notebook, manifest, model)
    }
    assert ("MLO201", AttackClass.NOTEBOOK_XSS) in classes["broken.ipynb"], classes
    assert ("MLO901", AttackClass.CONTAINER_ESCAPE) in classes["pod.yaml"], classes
    assert ("MLO201", AttackClass.MALICIOUS_MODEL) in classes["model.pkl"], classes
    assert registry.surfaces()["notebook"] is AttackClass.NOTEBOOK_XSS and "zip" not in registry.surfaces()


def test_every_module_that_declares_formats_is_found_by_the_catalog():
    declared = set()
    for package in registry.PACKAGES:
        for path in (SRC / package).glob("*.py"):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            if any(
                isinstance(n, ast.Assign) and any(getattr(t, "id", "") == "FORMATS" for t in n.targets)
                for n in tree.body
            ):
                declared.add(f"mloops.{package}.{path.stem}")
    found = {module.__name__ for _, module in registry._declaring()}
    assert declared == found and len(found) > 30


def test_a_one_file_scan_imports_no_helper_it_does_not_need():
    """Start-up: the catalog imports the declaring modules only (bench/startup.py times it)."""
    code = (
        "import sys, pickle, tempfile\n"
        "path = tempfile.mkstemp(suffix='.pkl')[1]\n"
        "open(path, 'wb').write(pickle.dumps([1, 2]))\n"
        "for name in ('jinja2', 'dataclasses'): sys.modules.pop(name, None)\n"
        "before = set(sys.modules)\n"
        "from mloops import scan_path\n"
        "scan_path(path)\n"
        "print(sorted({'jinja2', 'dataclasses', 'yaml'} & (set(sys.modules) - before)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_the_summary_of_a_capped_shared_rule_keeps_the_surface_of_its_findings():
    from mloops import rules
    from mloops.core import AttackClass

    def broken_notebook(ctx: ScanContext, item: Item) -> None:
        ctx.record(item, "notebook")
        for index in range(3):
            ctx.report(rules.MALFORMED.finding(item.location, f"problem {index}"))

    ctx = ScanContext("nb.ipynb", Limits(max_findings_per_rule=1), default_policy(), broken_notebook)
    ctx.scan(Item(io.BytesIO(b"{}"), Location("nb.ipynb"), 2, "nb.ipynb", 0))
    findings = ctx.result.findings
    assert [f.evidence.get("not_listed") for f in findings] == [None, "2"]
    assert {f.attack_class for f in findings} == {AttackClass.NOTEBOOK_XSS}
