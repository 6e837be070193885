"""The configuration (.mloops.toml, pyproject's [tool.mloops]): fail threshold, skipped formats, excludes,
severity overrides and suppressions with reasons and expiry dates; a typo is an error, never a silently
disabled check, and an accepted finding stays in the report, marked suppressed."""

from __future__ import annotations

import datetime
import json
from pathlib import Path

import pytest

from mloops.cli import main
from mloops.picklevm.assemble import PickleBuilder

EVIL = PickleBuilder(2).call("os", "system", "id").stop().build()
LOADER = "import pickle\n\nmodel = pickle.load(open('model.pkl', 'rb'))\n"
TOMORROW = datetime.date.today() + datetime.timedelta(days=1)
YESTERDAY = datetime.date.today() - datetime.timedelta(days=1)


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "project"
    (root / "vendor" / "old").mkdir(parents=True)
    (root / "models").mkdir()
    (root / "models" / "legacy.pkl").write_bytes(EVIL)
    (root / "vendor" / "old" / "trap.pkl").write_bytes(EVIL)
    (root / "train.py").write_text(LOADER)
    monkeypatch.chdir(root)
    return root


def scan(capsys, *arguments: str) -> tuple[int, dict]:
    code = main(["scan", ".", "--format", "json", "--no-cache", *arguments])
    return code, json.loads(capsys.readouterr().out)


def by_rule(report: dict) -> dict[str, list[dict]]:
    found: dict[str, list[dict]] = {}
    for finding in report["findings"]:
        found.setdefault(finding["rule_id"], []).append(finding)
    return found


def test_without_a_configuration_everything_counts(project: Path, capsys):
    code, report = scan(capsys)
    assert code == 1 and report["summary"]["excluded"] == 0
    assert {f["location"]["path"] for f in by_rule(report)["MLO101"]} == {
        "./models/legacy.pkl",
        "./vendor/old/trap.pkl",
    }


def test_excluded_paths_are_left_out_and_counted(project: Path, capsys):
    (project / ".mloops.toml").write_text('exclude = ["vendor/**"]\n')
    code, report = scan(capsys)
    assert {f["location"]["path"] for f in by_rule(report)["MLO101"]} == {"./models/legacy.pkl"}
    assert report["summary"]["excluded"] == 1 and code == 1
    main(["scan", ".", "--no-cache"])
    assert "Excluded: 1 file(s)" in capsys.readouterr().out


def test_a_pattern_without_a_slash_matches_a_name_in_any_folder(project: Path, capsys):
    (project / ".mloops.toml").write_text('exclude = ["*.pkl"]\n')
    _, report = scan(capsys)
    assert "MLO101" not in by_rule(report) and report["summary"]["excluded"] == 2


def test_a_live_suppression_accepts_matching_findings_with_its_reason(project: Path, capsys):
    (project / "pyproject.toml").write_text(
        "[project]\nname = 'x'\n\n[tool.mloops]\n\n[[tool.mloops.suppress]]\nrule = 'MLO101'\n"
        f"path = 'models/*.pkl'\nreason = 'quarantined, ticket SEC-12'\nexpires = {TOMORROW}\n"
    )
    code, report = scan(capsys)
    found = by_rule(report)["MLO101"]
    legacy = next(f for f in found if f["location"]["path"] == "./models/legacy.pkl")
    trap = next(f for f in found if f["location"]["path"] == "./vendor/old/trap.pkl")
    assert legacy["suppressed"] == f"quarantined, ticket SEC-12 ({project / 'pyproject.toml'}, until {TOMORROW})"
    assert trap["suppressed"] is None and code == 1
    (project / "vendor" / "old" / "trap.pkl").unlink()
    assert scan(capsys)[0] == 0


def test_an_expired_suppression_is_a_finding_and_suppresses_nothing(project: Path, capsys):
    (project / "vendor" / "old" / "trap.pkl").unlink()
    (project / ".mloops.toml").write_text(
        f"[[suppress]]\nrule = 'MLO101'\nreason = 'until the retrain'\nexpires = {YESTERDAY}\n"
    )
    code, report = scan(capsys, "--fail-on", "medium")
    found = by_rule(report)
    assert code == 1 and found["MLO101"][0]["suppressed"] is None
    (expired,) = found["MLO801"]
    assert expired["severity"] == "medium" and expired["location"]["path"] == str(project / ".mloops.toml")
    assert expired["evidence"] == {
        "rule": "MLO101",
        "path": "every file",
        "expires": str(YESTERDAY),
        "reason": "until the retrain",
    }


def test_severity_overrides_and_the_fail_threshold_come_from_the_configuration(project: Path, capsys):
    (project / "models" / "legacy.pkl").unlink()
    (project / "vendor" / "old" / "trap.pkl").unlink()
    assert scan(capsys)[0] == 0  # the loader in train.py is medium
    (project / ".mloops.toml").write_text('fail-on = "medium"\n')
    code, report = scan(capsys)
    assert code == 1 and report["fail_on"] == "medium"
    assert scan(capsys, "--fail-on", "high")[0] == 0  # the command line wins
    (project / ".mloops.toml").write_text('fail-on = "medium"\n[severity]\nMLO320 = "low"\n')
    code, report = scan(capsys)
    (loader,) = by_rule(report)["MLO320"]
    assert code == 0 and loader["severity"] == "low" and loader["evidence"]["rule_severity"] == "medium"


def test_a_skipped_format_is_reported_as_suppressed_unless_a_container_holds_another(project: Path, capsys):
    (project / ".mloops.toml").write_text('skip-formats = ["pickle"]\n')
    code, report = scan(capsys)
    assert all(f["suppressed"] for f in by_rule(report)["MLO101"]) and code == 0
    import zipfile

    with zipfile.ZipFile(project / "bundle.zip", "w") as bundle:
        bundle.writestr("inner.pkl", EVIL)
    code, report = scan(capsys)
    inner = [f for f in by_rule(report)["MLO101"] if f["location"]["path"] == "./bundle.zip"]
    assert code == 1 and inner and all(f["suppressed"] is None for f in inner)


def test_the_nearest_configuration_above_the_working_folder_is_used(project: Path, capsys, monkeypatch):
    (project / ".mloops.toml").write_text('exclude = ["vendor"]\n')
    monkeypatch.chdir(project / "models")
    main(["scan", str(project), "--format", "json", "--no-cache"])
    assert json.loads(capsys.readouterr().out)["summary"]["excluded"] == 1


def test_an_explicit_configuration_and_an_empty_one_replace_the_discovered_one(project: Path, tmp_path, capsys):
    (project / ".mloops.toml").write_text('exclude = ["vendor"]\n')
    other = tmp_path / "ci.toml"
    other.write_text('exclude = ["models"]\n')
    _, report = scan(capsys, "--config", str(other))
    assert {f["location"]["path"] for f in by_rule(report)["MLO101"]} == {"./vendor/old/trap.pkl"}
    _, report = scan(capsys, "--config", "/dev/null")
    assert report["summary"]["excluded"] == 0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('exclud = ["x"]\n', "unknown key(s) exclud"),
        ('[severity]\nMLO999 = "low"\n', "'MLO999' is not a rule id"),
        ('[severity]\nMLO101 = "fatal"\n', "'fatal' is not a severity"),
        ("[[suppress]]\nrule = 'MLO101'\n", "every suppression needs a reason"),
        ("[[suppress]]\nrule = 'MLO903'\nreason = 'noise'\n", "MLO903 says a scan failed"),
        ("[[suppress]]\nrule = 'MLO101'\nreason = 'r'\nexpires = 'soon'\n", "expires must be a date"),
        ('fail-on = "info"\n', "fail-on: 'info' is not a fail threshold"),
        ("exclude = [\n", "not valid TOML"),
        ('skip-formats = ["csv"]\n', "skip-formats: csv: not a format of this mloops"),
    ],
)
def test_a_mistake_in_the_configuration_is_one_line_and_exit_2(project: Path, capsys, text: str, message: str):
    (project / ".mloops.toml").write_text(text)
    assert main(["scan", ".", "--no-cache"]) == 2
    error = capsys.readouterr().err
    assert message in error and error.count("\n") == 1 and "Traceback" not in error


def test_a_missing_explicit_configuration_is_a_usage_error(project: Path, capsys):
    assert main(["scan", ".", "--config", "absent.toml"]) == 2
    assert "absent.toml: no such configuration file" in capsys.readouterr().err


def test_audit_draws_no_chain_through_a_suppressed_finding(tmp_path: Path, monkeypatch, capsys):
    (tmp_path / "legacy.pkl").write_bytes(EVIL)
    (tmp_path / "train.py").write_text(LOADER.replace("model.pkl", "legacy.pkl"))
    monkeypatch.chdir(tmp_path)
    main(["audit", ".", "--format", "json", "--no-cache"])
    assert json.loads(capsys.readouterr().out)["chains"]
    (tmp_path / ".mloops.toml").write_text("[[suppress]]\nrule = 'MLO101'\nreason = 'quarantined'\n")
    code = main(["audit", ".", "--format", "json", "--no-cache"])
    report = json.loads(capsys.readouterr().out)
    assert report["chains"] == [] and code == 0
    assert {f["suppressed"] for f in report["findings"] if f["rule_id"] == "MLO101"} == {
        f"quarantined ({tmp_path / '.mloops.toml'})"
    }
