"""Compare mloops' generic pod checks with checkov on the manifest fixtures, and explain every disagreement.

    .venv/bin/python bench/checkov_crosscheck.py     (installs checkov into bench/.venv-checkov)

For each fixture resource and each generic check both tools have (privileged, host namespaces, runtime
socket, SYS_ADMIN, privilege escalation, root, seccomp, read-only root filesystem, service-account token,
Dockerfile USER), it records whether each tool flags it, then replaces the "Cross-check with checkov"
section of BENCHMARKS.md: agreement counts and every disagreement with the reason for it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import peers

ROOT = peers.ROOT  # importing peers put the repository root on the path

from bench.sections import replace_section  # noqa: E402

from mloops import scan_path  # noqa: E402
from mloops.core import Severity  # noqa: E402

FIXTURES = ROOT / "corpus" / "manifests"
VENV = ROOT / "bench" / ".venv-checkov"
SECTION = "## Cross-check with checkov"

# checkov check id -> (mloops rule, what both check)
PAIRS = {
    "CKV_K8S_16": ("MLO701", "privileged container"),
    "CKV_K8S_17": ("MLO702", "hostPID"),
    "CKV_K8S_18": ("MLO702", "hostIPC"),
    "CKV_K8S_19": ("MLO702", "hostNetwork"),
    "CKV_K8S_27": ("MLO703", "Docker socket mount"),
    "CKV_K8S_39": ("MLO705", "SYS_ADMIN added"),
    "CKV_K8S_20": ("MLO706", "allowPrivilegeEscalation"),
    "CKV_K8S_23": ("MLO707", "root allowed"),
    "CKV_K8S_31": ("MLO708", "seccomp"),
    "CKV_K8S_22": ("MLO709", "read-only root filesystem"),
    "CKV_K8S_38": ("MLO710", "service-account token"),
    "CKV_DOCKER_8": ("MLO707", "last USER is root"),
}
# Why the tools differ, by (mloops rule, which tool flagged it alone, kind of resource).
REASONS = {
    ("crd", "mloops"): "checkov reads only core workload kinds; the ML custom resources (KServe, Seldon, Kubeflow, "
    "KubeRay) hold pod specs it does not look into",
    ("MLO708", "checkov"): "checkov also fails a missing seccomp profile; mloops reports only an explicit "
    "Unconfined one (LOW-noise choice: a missing profile means the node's default)",
    ("MLO710", "checkov"): "mloops reports an automounted token only for model servers and notebooks, which run "
    "untrusted code; checkov fails every pod",
    ("MLO707", "checkov"): "checkov fails a pod that does not set runAsNonRoot even when runAsUser is non-zero, or "
    "that it cannot see as non-root; mloops accepts a non-zero runAsUser at pod or container level",
    ("MLO706", "checkov"): "checkov fails privileged containers too; mloops reports privilege escalation only for "
    "unprivileged ones (a privileged container already has every privilege, reported as MLO701)",
    ("MLO702", "mloops"): "same setting; checkov reports each namespace under its own id",
}


def install() -> Path:
    checkov = VENV / "bin" / "checkov"
    if not checkov.exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        subprocess.run([str(VENV / "bin" / "pip"), "install", "-q", "checkov"], check=True)
    return checkov


def checkov_results(checkov: Path, files: list[Path]) -> tuple[str, dict[tuple[str, str], set[str]]]:
    """(version, {(file, resource): failed check ids among PAIRS})."""
    version = subprocess.run([str(checkov), "--version"], capture_output=True, text=True).stdout.strip()
    failed: dict[tuple[str, str], set[str]] = {}
    for path in files:
        framework = "dockerfile" if path.name.startswith("Dockerfile") else "kubernetes"
        command = [str(checkov), "-f", str(path), "--framework", framework, "-o", "json", "--quiet", "--compact"]
        out = subprocess.run(command, capture_output=True, text=True, timeout=600).stdout
        documents = json.loads(out) if out.strip() else []
        for report in documents if isinstance(documents, list) else [documents]:
            if not isinstance(report, dict):
                continue
            for check in report.get("results", {}).get("failed_checks", []):
                if check["check_id"] in PAIRS:
                    failed.setdefault((path.name, _resource(check["resource"], path)), set()).add(check["check_id"])
    return version, failed


def _resource(checkov_resource: str, path: Path) -> str:
    """checkov's ``Deployment.default.triton`` as mloops' ``Deployment/triton``."""
    if path.name.startswith("Dockerfile"):
        return "image"
    parts = checkov_resource.split(".")
    return f"{parts[0]}/{parts[-1]}"


def mloops_results(files: list[Path]) -> dict[tuple[str, str], set[str]]:
    flagged: dict[tuple[str, str], set[str]] = {}
    wanted = {rule for rule, _ in PAIRS.values()}
    for path in files:
        for finding in scan_path(str(path)).findings:
            if finding.rule.id in wanted and finding.severity >= Severity.LOW:
                resource = finding.location.members[-1] if finding.location.members else "image"
                flagged.setdefault((path.name, resource), set()).add(finding.rule.id)
    return flagged


def compare(checkov: dict, ours: dict) -> tuple[dict[str, list[int]], dict[str, list[str]]]:
    """Per mloops rule [both, mloops only, checkov only], and the disagreements grouped by their reason."""
    counts: dict[str, list[int]] = {}
    reasons: dict[str, list[str]] = {}
    for key in sorted(set(checkov) | set(ours)):
        kind = key[1].split("/")[0]
        theirs = {PAIRS[check][0] for check in checkov.get(key, set())}
        for rule in sorted(theirs | ours.get(key, set())):
            in_ours, in_theirs = rule in ours.get(key, set()), rule in theirs
            row = counts.setdefault(rule, [0, 0, 0])
            row[0 if in_ours and in_theirs else 1 if in_ours else 2] += 1
            if in_ours and in_theirs:
                continue
            alone = "mloops" if in_ours else "checkov"
            core = kind in ("Pod", "Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob", "ReplicaSet", "image")
            reason = REASONS.get((rule, alone)) or (
                REASONS[("crd", "mloops")] if not core and alone == "mloops" else ""
            )
            reasons.setdefault(reason or "unexplained", []).append(f"{key[0]} {key[1]} {rule}")
    return counts, reasons


def main() -> None:
    checkov = install()
    files = sorted(p for p in FIXTURES.iterdir() if p.suffix in (".yaml", ".yml") and "compose" not in p.name)
    files += sorted(FIXTURES.glob("Dockerfile.*"))
    version, theirs = checkov_results(checkov, files)
    ours = mloops_results(files)
    counts, reasons = compare(theirs, ours)
    checks_by_rule: dict[str, list[str]] = {}
    for check, (rule, what) in PAIRS.items():
        checks_by_rule.setdefault(rule, []).append(f"{check} ({what})")
    rows = [
        f"| {rule} | {', '.join(checks_by_rule[rule])} | {both} | {alone} | {theirs_only} |"
        for rule, (both, alone, theirs_only) in sorted(counts.items())
    ]
    agree = sum(row[0] for row in counts.values())
    disagree = sum(row[1] + row[2] for row in counts.values())
    notes = [f"- {reason} ({len(items)}): {'; '.join(items)}" for reason, items in sorted(reasons.items())]
    lines = [
        "",
        SECTION,
        "",
        f"`bench/checkov_crosscheck.py`: the generic pod checks both tools have ({len(PAIRS)} checkov ids mapped to "
        f"mloops rules), on the {len(files)} Kubernetes and Dockerfile fixtures of `corpus/manifests`; "
        f"checkov {version}. A pair counts once per resource and rule (mloops at LOW or above). Compose files "
        "are left out: checkov has no Compose framework.",
        "",
        "| mloops rule | checkov | both flag | mloops only | checkov only |",
        "|---|---|---|---|---|",
        *rows,
        "",
        f"Agreements: {agree}. Disagreements: {disagree}, by reason:",
        "",
        *notes,
    ]
    path = ROOT / "BENCHMARKS.md"
    path.write_text(replace_section(path.read_text(), lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
