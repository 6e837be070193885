"""Notebooks, Python sources and Arrow data are picked up by the same scan as models."""

from __future__ import annotations

import json
from pathlib import Path

from mloops import scan_path

from .conftest import rule_ids

SCRIPT = """\
import torch as T
from datasets import load_dataset

model = T.load("model.pt", weights_only=False)
data = load_dataset("org/data", trust_remote_code=True)
"""


def _notebook(source: str, html: str) -> str:
    cell = {
        "cell_type": "code",
        "execution_count": 1,
        "metadata": {},
        "source": source,
        "outputs": [{"output_type": "display_data", "metadata": {}, "data": {"text/html": html}}],
    }
    return json.dumps({"cells": [cell], "metadata": {}, "nbformat": 4, "nbformat_minor": 5})


def test_python_sources_and_notebooks_are_scanned_in_the_same_run(tmp_path: Path):
    (tmp_path / "train.py").write_text(SCRIPT)
    token = "hf_" + "Ab1" * 12
    source = f"import pickle\\nx = pickle.load(open('a.pkl', 'rb'))\\nTOKEN = '{token}'\\n"
    (tmp_path / "explore.ipynb").write_text(_notebook(json.loads(f'"{source}"'), "<img src=x onerror=alert(1)>"))
    report = scan_path(str(tmp_path))
    assert {"MLO321", "MLO326", "MLO320", "MLO311", "MLO330"} <= rule_ids(report)
    assert {a.format for a in report.assets} >= {"python-source", "notebook"}
    assert all(token not in f.message + json.dumps(f.evidence) for f in report.findings)


def test_a_protocol_0_pickle_named_like_python_is_still_a_pickle(tmp_path: Path):
    (tmp_path / "helpers.py").write_bytes(b"cos\nsystem\n(S'id'\ntR.")
    assert "MLO101" in rule_ids(scan_path(str(tmp_path)))


def test_clean_sources_and_notebooks_raise_nothing(tmp_path: Path):
    (tmp_path / "clean.py").write_text("import torch\nstate = torch.load('w.pt', weights_only=True)\n")
    (tmp_path / "clean.ipynb").write_text(_notebook("print(1)\n", "<table><tr><td>1</td></tr></table>"))
    report = scan_path(str(tmp_path))
    assert all(f.severity.name in ("INFO", "LOW") for f in report.findings), [f.rule.id for f in report.findings]
