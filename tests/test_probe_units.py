"""mloops probe and audit-env pieces: read-only fingerprints, targets, advisory ranges, OSV dumps, the CLI."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest
from corpus import replay_server

from mloops.core import Location, Severity
from mloops.platforms import advisories
from mloops.platforms import fingerprints as fp
from mloops.platforms.audit_env import audit
from mloops.platforms.client import Client
from mloops.platforms.targets import Endpoint, TargetError, expand, parse_ports

# ------------------------------------------------------------ fingerprints are data, and read-only


def _requests(table: dict) -> list[dict]:
    """Every request table of a raw fingerprint file: detect checks, version, features."""
    found = list(table.get("detect", []))
    if "version" in table:
        found.append(table["version"])
    found += table.get("features", [])
    return found


def test_every_fingerprint_request_is_read_only():
    files = sorted(Path(fp.PLATFORMS).glob("*.toml"))
    assert len(files) >= 25
    for path in files:
        raw = tomllib.loads(path.read_text())
        for request in _requests(raw):
            assert request.get("method", "GET").upper() in fp.SAFE_METHODS, path.name
            assert not {"body", "data", "json_body"} & set(request), path.name
    loaded = fp.fingerprints()
    assert len(loaded) == len(files)
    for fingerprint in loaded:
        for check in [*fingerprint.detect, *(f.check for f in fingerprint.features)]:
            assert check.request.method in fp.SAFE_METHODS
        assert fingerprint.auth_docs.startswith("https://") and fingerprint.remediation
        assert fingerprint.verified in fp.VERIFIED and fingerprint.verified_with
    categories = {f.category for f in loaded}
    assert categories == {
        "tracking and registry",
        "notebooks and jobs",
        "model serving",
        "orchestration and apps",
        "LLM serving and builders",
    }


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE", "post"])
def test_a_fingerprint_that_could_change_state_is_refused(method: str):
    raw = tomllib.loads((Path(fp.PLATFORMS) / "mlflow.toml").read_text())
    raw["features"][0]["method"] = method
    with pytest.raises(fp.FingerprintError, match="could change state"):
        fp.parse("mlflow", raw)


def test_a_fingerprint_request_with_a_body_is_refused():
    raw = tomllib.loads((Path(fp.PLATFORMS) / "ollama.toml").read_text())
    raw["detect"][0]["body"] = "{}"
    with pytest.raises(fp.FingerprintError, match="no body"):
        fp.parse("ollama", raw)


def test_the_client_refuses_unsafe_methods_whatever_it_is_given():
    async def attempt() -> None:
        client = Client(1.0, 1)
        try:
            await client.fetch("http://127.0.0.1:9", fp.Request("DELETE", "/api/jobs/1"))
        finally:
            await client.close()

    with pytest.raises(ValueError, match="read-only"):
        asyncio.run(attempt())


def test_header_matchers_need_the_header():
    matcher = fp.Matcher(frozenset(), (), (), (("x-h2o-build-project-version", ""),), (), False, None)
    assert not matcher.matches(fp.Response(200, {}, ""))
    assert matcher.matches(fp.Response(200, {"x-h2o-build-project-version": "3.46.0.1"}, ""))


# ------------------------------------------------------------ targets


def test_ports_lists():
    assert parse_ports("default", (5000, 8888)) == (5000, 8888)
    assert parse_ports("8000-8002, 5000", ()) == (5000, 8000, 8001, 8002)
    for bad in ("0", "70000", "a", "10-5", ""):
        with pytest.raises(TargetError):
            parse_ports(bad, ())


def test_targets_expand_to_endpoints():
    endpoints = expand(
        ["http://127.0.0.1:5000/mlflow/", "localhost:8888", "[::1]:8265", "10.0.0.0/30", "gpu-box"], (80, 8080)
    )
    assert endpoints == [
        Endpoint("http://127.0.0.1:5000/mlflow", True),
        Endpoint("http://localhost:8888", True),
        Endpoint("http://[::1]:8265", True),
        Endpoint("http://10.0.0.1:80", False),
        Endpoint("http://10.0.0.1:8080", False),
        Endpoint("http://10.0.0.2:80", False),
        Endpoint("http://10.0.0.2:8080", False),
        Endpoint("http://gpu-box:80", False),
        Endpoint("http://gpu-box:8080", False),
    ]
    assert expand(["https://mlflow.internal"], ())[0] == Endpoint("https://mlflow.internal:443", True)


@pytest.mark.parametrize(
    "target",
    ["ftp://host", "http://user:secret@host/", "host:99999", "bad host", "10.0.0.0/33", "10.0.0.0/4", "", "a:b:c:d"],
)
def test_bad_targets_are_usage_errors(target: str):
    with pytest.raises(TargetError):
        expand([target], (80,))


# ------------------------------------------------------------ advisory ranges


def _advisory(*spans: dict[str, str]) -> advisories.Advisory:
    ranges = tuple(
        advisories.Range(
            advisories.Version(span["introduced"]),
            advisories.Version(span["fixed"]) if "fixed" in span else None,
            advisories.Version(span["last_affected"]) if "last_affected" in span else None,
        )
        for span in spans
    )
    return advisories.Advisory(
        "pkg", "X-1", (), ranges, frozenset(), Severity.HIGH, fp.Capability.DATA_EXPOSURE, "", ""
    )


@pytest.mark.parametrize(
    ("spans", "version", "affected"),
    [
        ([{"introduced": "0", "fixed": "2.2.1"}], "2.2.0", True),
        ([{"introduced": "0", "fixed": "2.2.1"}], "2.2.1", False),  # fixed is exclusive
        ([{"introduced": "0", "fixed": "2.2.1"}], "2.2.1rc1", True),  # a pre-release of the fix is older
        ([{"introduced": "0", "fixed": "2.2.1"}], "2.2.1.post1", False),
        ([{"introduced": "1.24.0", "last_affected": "2.14.1"}], "1.23.9", False),  # introduced is inclusive
        ([{"introduced": "1.24.0", "last_affected": "2.14.1"}], "1.24.0", True),
        ([{"introduced": "1.24.0", "last_affected": "2.14.1"}], "2.14.1", True),  # last_affected is inclusive
        ([{"introduced": "1.24.0", "last_affected": "2.14.1"}], "2.14.2", False),
        ([{"introduced": "0", "fixed": "6.3.0a0"}], "6.2.9", True),
        ([{"introduced": "0", "fixed": "6.3.0a0"}], "6.3.0", False),
        ([{"introduced": "0", "fixed": "5.7.11"}, {"introduced": "6.0.0", "fixed": "6.4.1"}], "5.7.12", False),
        ([{"introduced": "0", "fixed": "5.7.11"}, {"introduced": "6.0.0", "fixed": "6.4.1"}], "6.4.0", True),
        ([{"introduced": "0.43.0", "last_affected": "0.43.0"}], "0.43.0", True),
        ([{"introduced": "0.43.0", "last_affected": "0.43.0"}], "0.43.1", False),
        ([{"introduced": "0", "fixed": "3.46.0.10"}], "3.46.0.9", True),  # four-part H2O versions
        ([{"introduced": "0", "fixed": "3.46.0.10"}], "3.46.0.10", False),
    ],
)
def test_range_edges(spans, version, affected):
    assert _advisory(*spans).affects(advisories.Version(version)) is affected


def test_versions_parse_leniently_and_never_raise():
    assert advisories.parse_version("v2.8.0") == advisories.Version("2.8.0")
    assert advisories.parse_version(" 2.41.0\n") == advisories.Version("2.41.0")
    assert advisories.parse_version("nightly-abc") is None


def test_bundled_table_is_valid_and_matches():
    table = advisories.bundled()
    assert len(table) >= 50
    assert {a.package for a in table} >= {"mlflow", "ray", "gradio", "bentoml", "zenml", "torchserve", "vllm"}
    ids = [a.id for a in advisories.matching(table, "MLflow", advisories.Version("2.2.0"))]
    assert "CVE-2023-1177" in ids and "CVE-2023-2780" in ids
    assert advisories.matching(table, "mlflow", advisories.Version("3.18.0")) == []


# ------------------------------------------------------------ OSV dumps


OSV_RECORD = {
    "id": "GHSA-test-0001",
    "aliases": ["CVE-2099-0001"],
    "summary": "Registry hijack in exampleplatform",
    "database_specific": {"severity": "CRITICAL"},
    "affected": [
        {
            "package": {"ecosystem": "PyPI", "name": "Example_Platform"},
            "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1.5.0"}]}],
            "versions": ["2.0.0"],
        },
        {"package": {"ecosystem": "npm", "name": "example-platform"}, "ranges": []},
    ],
}


def test_osv_folder_and_zip_replace_the_bundled_table(tmp_path: Path):
    folder = tmp_path / "osv"
    folder.mkdir()
    (folder / "GHSA-test-0001.json").write_text(json.dumps(OSV_RECORD))
    dump = tmp_path / "all.zip"
    with zipfile.ZipFile(dump, "w") as archive:
        archive.writestr("GHSA-test-0001.json", json.dumps(OSV_RECORD))
    for source in (folder, dump):
        (advisory,) = advisories.load_osv(str(source))
        assert advisory.package == "example-platform" and advisory.severity == Severity.CRITICAL
        found = advisories.findings((advisory,), "example-platform", advisories.Version("1.4"), Location("x"), "here")
        assert [f.evidence["advisory"] for f in found] == ["GHSA-test-0001"]
        assert advisory.affects(advisories.Version("2.0.0")) and not advisory.affects(advisories.Version("1.5.0"))


def test_unreadable_osv_sources_are_one_line_errors(tmp_path: Path):
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(advisories.AdvisoryError):
        advisories.load_osv(str(tmp_path))
    with pytest.raises(advisories.AdvisoryError):
        advisories.load_osv(str(tmp_path / "missing"))


# ------------------------------------------------------------ audit-env, in a real virtual environment


@pytest.fixture(scope="module")
def old_environment(tmp_path_factory) -> Path:
    """A venv whose metadata says mlflow 2.2.1 and gradio 4.12.0 are installed (no code, only dist-info)."""
    root = tmp_path_factory.mktemp("venv")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root)], check=True)
    site = next(root.glob("lib/python3*/site-packages"))
    for name, version in (("mlflow", "2.2.1"), ("gradio", "4.12.0"), ("requests", "2.0.0")):
        info = site / f"{name}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    return root / "bin" / "python"


def test_audit_env_flags_old_platform_packages(old_environment: Path):
    report = audit(str(old_environment), advisories.bundled())
    found = {(f.evidence["package"], f.evidence["advisory"]) for f in report.findings}
    assert ("mlflow", "CVE-2023-2780") in found and ("mlflow", "CVE-2023-1177") not in found  # 2.2.1 has that fix
    assert ("gradio", "CVE-2024-1561") in found and ("gradio", "CVE-2023-51449") not in found
    assert all(f.rule.id == "MLO510" for f in report.findings)
    assert sorted(a.location.members[0] for a in report.files[0].assets) == ["gradio 4.12.0", "mlflow 2.2.1"]
    assert report.exit_code(Severity.HIGH) == 1


def test_audit_env_cli_and_its_errors(old_environment: Path, tmp_path: Path):
    ok = _cli("audit-env", "--python", str(old_environment), "--format", "json")
    assert ok.returncode == 1 and json.loads(ok.stdout)["summary"]["subject"] == "environment"
    for args in (("--python", str(tmp_path / "nope")), ("--advisories", str(tmp_path / "nope"))):
        bad = _cli("audit-env", *args)
        assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "Traceback" not in bad.stderr


# ------------------------------------------------------------ the probe command


def _cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "NO_PROXY": "*"}
    return subprocess.run([sys.executable, "-m", "mloops", *args], capture_output=True, text=True, timeout=120, env=env)


def test_probe_cli_reports_and_exits_like_scan(tmp_path: Path):
    replay = replay_server.load("ollama")
    targets = tmp_path / "targets.txt"
    with replay_server.serving(replay_server.routes(replay["open"])) as (base, _):
        targets.write_text(f"# lab hosts\n{base}  # ollama\n")
        result = _cli("probe", "--targets-file", str(targets), "--format", "json")
        text = _cli("probe", base)
    document = json.loads(result.stdout)
    assert result.returncode == 1
    assert document["summary"]["subject"] == "endpoints" and document["summary"]["endpoints_probed"] == 1
    assert {f["rule_id"] for f in document["findings"]} >= {"MLO500", "MLO501", "MLO510"}
    assert "Platforms: ollama at http://127.0.0.1:" in text.stdout and "1 endpoint(s) probed, 1 answered" in text.stdout


@pytest.mark.parametrize(
    "args", [("probe",), ("probe", "ftp://x"), ("probe", "h", "--ports", "0"), ("probe", "--targets-file", "/nope")]
)
def test_probe_usage_errors_are_one_line(args):
    result = _cli(*args)
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


def test_readme_lists_every_platform_with_how_it_was_verified():
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    real_tests = (Path(__file__).parent / "test_probe_real.py").read_text()
    for fingerprint in fp.fingerprints():
        status = "real server" if fingerprint.verified == "real" else "replayed"
        row = next((line for line in readme.splitlines() if f"(`{fingerprint.id}`)" in line), "")
        assert row.endswith(f"| {status} |"), fingerprint.id
        if fingerprint.verified == "real":  # a real-server test asserts this platform, and only it, is found
            assert f'platforms(report) == ["{fingerprint.id}"]' in real_tests, fingerprint.id


def test_probe_reports_are_valid_sarif_with_url_locations():
    import jsonschema

    from mloops.platforms import engine
    from mloops.reporters import reporter

    from .test_cli_and_reports import _sarif_schema

    replay = replay_server.load("ollama")
    with replay_server.serving(replay_server.routes(replay["open"])) as (base, _):
        report = engine.run([Endpoint(base, True)], fp.fingerprints(), advisories.bundled(), 5.0, 8, progress=False)
    document = json.loads(reporter("sarif")(report, Severity.HIGH))
    jsonschema.validate(document, _sarif_schema())
    uris = {r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] for r in document["runs"][0]["results"]}
    assert uris == {base}
