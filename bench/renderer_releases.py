"""Known-renderer fingerprints across releases: each of the last releases of each plotting library draws in a
fresh Jupyter kernel, and mloops scans the saved notebook. A release passes when nothing is at HIGH or above.

    .venv/bin/python bench/renderer_releases.py [--write] [--only plotly,bokeh]

Each release is installed with pip into its own folder under bench/work/releases (--no-deps: the rest of the
test environment serves as its dependencies) and put first on the kernel's PYTHONPATH. For a release that
fails, the unknown inline scripts' digests are printed with the release that made them: a reviewer adds them
to data/notebook_renderers.toml when they are the library's own files. --write replaces BENCHMARKS.md's
"Renderer releases" section.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import peers

ROOT = peers.ROOT  # importing peers put the repository root on the path

from bench import sections  # noqa: E402
from corpus import kernel_outputs  # noqa: E402
from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError  # noqa: E402

from mloops import scan_path  # noqa: E402
from mloops.core import Severity  # noqa: E402

WORK = ROOT / "bench" / "work" / "releases"
_SHA256 = re.compile(r"\b[0-9a-f]{64}\b")  # digests of carried widget code, named in the finding's message
SNIPPETS = kernel_outputs.SNIPPETS
# library -> (releases, the snippets that draw with it); releases newest first, the installed one included
LIBRARIES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "plotly": (
        ("7.1.0", "7.0.0", "6.9.0", "6.8.0", "6.7.0", "6.5.2", "6.3.1", "6.0.1", "5.24.1"),
        ("plotly notebook", "plotly notebook_connected", "plotly FigureWidget", "plotly iframe"),
    ),
    "bokeh": (("3.9.2", "3.9.1", "3.8.2", "3.7.3", "3.6.3", "3.5.2", "3.4.3"), ("bokeh show", "bokeh inline")),
    "altair": (("6.3.0", "6.2.2", "6.1.0", "6.0.0", "5.5.0", "5.4.1"), ("altair JupyterChart", "altair chart")),
    "itables": (("2.9.1", "2.9.0", "2.8.2", "2.7.3", "2.6.2", "2.5.2"), ("itables",)),
    "folium": (("0.20.0", "0.19.7", "0.18.0", "0.17.0", "0.16.0", "0.15.1"), ("folium",)),
    "pydeck": (("0.9.3", "0.9.1", "0.8.0"), ("pydeck",)),
    "panel": (("1.9.4", "1.9.3", "1.9.1", "1.9.0", "1.8.10", "1.8.5"), ("panel", "holoviews")),
}


def install(library: str, release: str) -> Path:
    folder = WORK / f"{library}-{release}"
    if not (folder / ".done").exists():
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(folder),
             f"{library}=={release}"],
            check=True,
        )  # fmt: skip
        (folder / ".done").write_text("")
    return folder


def judge(library: str, release: str, snippet: str) -> dict:
    """Run one snippet with ``library==release`` first on the kernel's path; what mloops says of the notebook."""
    folder = install(library, release)
    previous = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(folder), previous]))
    try:
        with tempfile.TemporaryDirectory() as scratch:
            source = f"import {library}\nprint({library}.__version__)\n" + SNIPPETS[snippet]
            try:
                saved = kernel_outputs.run_in_kernel(source, folder=scratch)
            except (CellExecutionError, CellTimeoutError, DeadKernelError) as exc:  # API or dependency drift
                return {"snippet": snippet, "status": "did not run", "why": type(exc).__name__}
            printed = json.loads(saved)["cells"][0]["outputs"][0].get("text", "")
            ran = "".join(printed).strip()
            path = Path(scratch) / "n.ipynb"
            path.write_bytes(saved)
            findings = scan_path(str(path)).findings
            loud = [f for f in findings if f.severity >= Severity.HIGH]
            known = [f for f in findings if f.rule.id == "MLO317"]  # a pass must have drawn something known
    finally:
        if previous is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = previous
    if ran != release:
        return {"snippet": snippet, "status": "did not run", "why": f"kernel imported {library} {ran}"}
    named = {f.evidence.get("sha256", "") for f in loud} | set(_SHA256.findall(" ".join(f.message for f in loud)))
    unknown = sorted(named - {""})
    files = _file_digests(folder) if unknown else {}
    return {
        "snippet": snippet,
        "status": "HIGH" if loud else "pass" if known else "nothing drawn",
        "high": len(loud),
        "unknown": {digest: files.get(digest, "not a file of the release") for digest in unknown},
        "messages": sorted({f.message[:100] for f in loud})[:3],
    }


def _file_digests(folder: Path) -> dict[str, str]:
    """sha256 -> path of each JavaScript file the release installed: where an unknown script came from."""
    return {
        hashlib.sha256(path.read_bytes()).hexdigest(): str(path.relative_to(folder))
        for path in folder.rglob("*.js")
        if path.is_file()
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default="", help="comma-separated libraries")
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    wanted = set(filter(None, args.only.split(","))) or set(LIBRARIES)
    started = time.perf_counter()
    rows = []
    for library, (releases, snippets) in LIBRARIES.items():
        if library not in wanted:
            continue
        for release in releases:
            for snippet in snippets:
                result = {"library": library, "release": release, **judge(library, release, snippet)}
                print(json.dumps(result), flush=True)
                rows.append(result)
    print(f"{len(rows)} runs in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    if args.write:
        sections.write_section(section(rows))
    return 1 if any(row["status"] == "HIGH" for row in rows) else 0


def section(rows: list[dict]) -> list[str]:
    lines = [
        "## Renderer releases",
        "",
        f"`bench/renderer_releases.py`, {time.strftime('%Y-%m-%d')}: each release drawn in a fresh Jupyter kernel "
        "(pip --no-deps into its own folder, first on the kernel's path), the saved notebook scanned by mloops. "
        "pass = a known renderer drew it and nothing is at HIGH or above; HIGH = a fingerprint does not cover "
        "that release; did not run = the "
        "release does not import or draw next to this environment's other libraries (not judged).",
        "",
        "| library | release | output | verdict |",
        "|---|---|---|---|",
    ]
    for row in rows:
        verdict = row["status"] if row["status"] != "did not run" else f"did not run ({row['why']})"
        lines.append(f"| {row['library']} | {row['release']} | {row['snippet']} | {verdict} |")
    passed = sum(row["status"] == "pass" for row in rows)
    judged = sum(row["status"] in ("pass", "HIGH", "nothing drawn") for row in rows)
    lines += ["", f"{passed} of {judged} judged runs pass."]
    return lines


if __name__ == "__main__":
    sys.exit(main())
