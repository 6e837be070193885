"""mloops on real public deployment trees of ML platforms, every finding at MEDIUM or above reviewed by hand.

    .venv/bin/python bench/deployment_trees.py [--trees bench/work/trees] [--write]

The trees are Kubernetes manifests and Helm charts of Kubeflow, KServe, KubeRay and Seldon Core, each file
fetched unchanged from GitHub as bench/deployment-trees/<tree>.sources lists it (repository, path, commit:
https://raw.githubusercontent.com/<repository>/<commit>/<path>), into <trees>/<tree>/<path>. Each tree is
scanned as one folder, so that whole-tree context (an authentication policy in a sibling file) counts. Every
finding at MEDIUM or above is matched to its review in bench/deployment-trees/reviewed.toml; the script
fails on a false finding at HIGH or above and on one nobody reviewed. --write replaces BENCHMARKS.md's
"Real deployment trees" section.
"""

from __future__ import annotations

import argparse
import fnmatch
import sys
import tomllib
from collections import Counter
from pathlib import Path
from typing import Any

import peers

ROOT = peers.ROOT  # importing peers put the repository root on the path

from bench import sections  # noqa: E402

from mloops import scan_path  # noqa: E402
from mloops.core import Severity  # noqa: E402

DATA = ROOT / "bench" / "deployment-trees"
TREES = ("kubeflow", "kserve", "kuberay", "seldon")


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trees", type=Path, default=ROOT / "bench" / "work" / "trees")
    parser.add_argument("--write", action="store_true", help="replace BENCHMARKS.md's Real deployment trees section")
    return parser.parse_args()


def review_for(tree: str, rule: str, path: str, workload: str, reviews: list[dict[str, Any]]) -> dict[str, Any] | None:
    for review in reviews:
        if (
            fnmatch.fnmatch(tree, review["tree"])
            and review["rule"] == rule
            and fnmatch.fnmatch(path, review["path"])
            and fnmatch.fnmatch(workload, review.get("workload", "*"))
        ):
            return review
    return None


def main() -> int:
    args = parse()
    reviews = tomllib.loads((DATA / "reviewed.toml").read_text(encoding="utf-8"))["finding"]
    rows: list[dict[str, Any]] = []
    totals: dict[str, Counter[str]] = {}
    files: dict[str, int] = {}
    for tree in TREES:
        folder = args.trees / tree
        listed = [line.split()[1] for line in (DATA / f"{tree}.sources").read_text().splitlines() if line.strip()]
        missing = [path for path in listed if not (folder / path).is_file()]
        if missing:
            raise SystemExit(f"{folder}: {len(missing)} listed files missing (first: {missing[0]}); fetch them first")
        files[tree] = len(listed)
        report = scan_path(str(folder))
        totals[tree] = Counter(Severity(f.severity).name for f in report.findings)
        for finding in report.findings:
            if finding.severity < Severity.MEDIUM:
                continue
            path = str(Path(finding.location.path).relative_to(folder))
            workload = finding.location.members[0] if finding.location.members else ""
            review = review_for(tree, finding.rule.id, path, workload, reviews)
            rows.append(
                {
                    "tree": tree,
                    "severity": Severity(finding.severity).name,
                    "rule": finding.rule.id,
                    "path": path,
                    "workload": workload,
                    "message": finding.message,
                    "verdict": review["verdict"] if review else "unreviewed",
                    "why": " ".join(review["why"].split()) if review else "",
                }
            )
    for row in rows:
        print(f"{row['verdict']:10} {row['severity']:8} {row['rule']} {row['tree']}/{row['path']} {row['workload']}")
    if args.write:
        sections.write_section(section(rows, totals, files))
    bad = [r for r in rows if r["verdict"] == "unreviewed" or (r["verdict"] == "false" and r["severity"] != "MEDIUM")]
    return 1 if bad else 0


def section(rows: list[dict[str, Any]], totals: dict[str, Counter[str]], files: dict[str, int]) -> list[str]:
    lines = [
        "## Real deployment trees",
        "",
        "`bench/deployment_trees.py`: the Kubernetes manifests and Helm charts of four ML platforms, "
        f"{sum(files.values())} files fetched unchanged from their public repositories (paths and commits in "
        "`bench/deployment-trees/*.sources`; the files come from different commits of each repository, so a "
        "tree does not build as one release), each tree scanned as one folder. Every finding at MEDIUM or above "
        "was reviewed against the manifests (`bench/deployment-trees/reviewed.toml`).",
        "",
        "| tree | files | critical | high | medium | low | HIGH+ true | HIGH+ false | MEDIUM true | MEDIUM false |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for tree, counts in totals.items():
        mine = [r for r in rows if r["tree"] == tree]
        high = [r for r in mine if r["severity"] in ("HIGH", "CRITICAL")]
        medium = [r for r in mine if r["severity"] == "MEDIUM"]
        lines.append(
            f"| {tree} | {files[tree]} | {counts['CRITICAL']} | {counts['HIGH']} | {counts['MEDIUM']} | "
            f"{counts['LOW']} | {sum(r['verdict'] == 'true' for r in high)} | "
            f"{sum(r['verdict'] != 'true' for r in high)} | {sum(r['verdict'] == 'true' for r in medium)} | "
            f"{sum(r['verdict'] != 'true' for r in medium)} |"
        )
    lines += ["", "Each finding at HIGH or above, and why it holds:", ""]
    for row in rows:
        if row["severity"] in ("HIGH", "CRITICAL"):
            lines.append(
                f"- {row['severity']} {row['rule']} {row['tree']}/{row['path']} ({row['workload']}): "
                f"{row['verdict']}. {row['why']}"
            )
    classes = Counter((r["rule"], r["verdict"], r["why"]) for r in rows if r["severity"] == "MEDIUM")
    lines += ["", "MEDIUM findings, by class:", ""]
    lines += [f"- {count} x {rule}: {verdict}. {why}" for (rule, verdict, why), count in classes.most_common()]
    lines += ["", *BEFORE]
    return lines


# What the first review of these trees found, before its fixes (commit 879e63c and the one after it).
BEFORE = [
    "The first review (mloops at 83bbafe) found the 5 HIGH/CRITICAL findings above true and one true HIGH "
    "missing (the oauth2-proxy secretGenerator: kustomizations were not read), one true MEDIUM missing (Dex's "
    "static password user), and 7 false MEDIUMs: "
    "SECRET_NAME-style variables taken for credentials (KServe's and Seldon's controllers), Kubeflow's "
    "jupyter-web-app taken for a notebook, Seldon's scheduler and Envoy and KServe's ko-built localmodel "
    "controller and node agent taken for model servers. Each was fixed at its root, with tests in "
    "tests/test_deployments.py.",
]


if __name__ == "__main__":
    sys.exit(main())
