"""Models saved by the real libraries: nothing at HIGH or above, and only what the case allows."""

from __future__ import annotations

from pathlib import Path

import pytest
from corpus import benign

from mloops import scan_path
from mloops.core import Severity

from .conftest import worst


@pytest.mark.parametrize("case", benign.ALL, ids=lambda case: case.name)
def test_benign_model_is_not_flagged(case: benign.Benign, tmp_path: Path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    path = benign.write(case, corpus, tmp_path)
    report = scan_path(str(path))
    noisy = [
        f"{f.severity.name} {f.rule.id} {f.location}: {f.message}" for f in report.findings if f.severity > case.ceiling
    ]
    assert not noisy
    assert report.exit_code(Severity.HIGH) == 0
    assert any(asset.format != "other" for asset in report.assets)


def test_user_package_classes_are_reported_at_medium(tmp_path: Path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    case = next(c for c in benign.ALL if c.name == "torch-user-package")
    report = scan_path(str(benign.write(case, corpus, tmp_path)))
    assert worst(report) == Severity.MEDIUM
    assert {f.evidence.get("global") for f in report.findings if f.rule.id == "MLO120"} == {
        "userpkg.model.Net",
        "userpkg.model.Block",
    }


def test_pickle_formats_get_the_safe_format_advice(tmp_path: Path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    case = next(c for c in benign.ALL if c.name == "torch-state-dict")
    report = scan_path(str(benign.write(case, corpus, tmp_path)))
    info = [f for f in report.findings if f.rule.id == "MLO100"]
    assert len(info) == 1 and info[0].severity == Severity.INFO
    assert "safetensors" in info[0].remediation


def test_hand_built_legacy_tar_is_what_torch_loads(tmp_path: Path):
    """The legacy tar layout is written by test code; prove real torch reads it as intended."""
    import subprocess
    import sys

    path = tmp_path / "legacy.pt"
    path.write_bytes(benign.torch_legacy_tar(tmp_path))
    code = "import sys, torch; t = torch.load(sys.argv[1], weights_only=False)['weight']; print(t.tolist())"
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]]"
