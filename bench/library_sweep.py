"""The "never cry wolf" library sweep: every catalog of corpus/library_objects.py, scanned.

For each library (those the test extras install, and the bench-only ones when installed):
objects built, skipped (build, save, import), entries and files scanned, entries with findings at
each severity, and the distinct offending globals with how the file uses them and the rule id.

    .venv/bin/python bench/library_sweep.py [--only pandas,torch] [--medium] [--keep DIR]
"""

from __future__ import annotations

import argparse
import collections
import importlib.metadata
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

import peers

ROOT = peers.ROOT  # importing peers put the repository root on the path

from bench import sections  # noqa: E402
from corpus import library_objects as lo  # noqa: E402

from mloops.core import Severity  # noqa: E402

_VERB = re.compile(r" is (called|instantiated|imported) ")
_SHOWN_SKIPS = 8


def usage(flag: lo.Flagged) -> str:
    match = _VERB.search(flag.message)
    verb = {"imported": "referenced"}.get(match.group(1), match.group(1)) if match else "-"
    return f"{verb:12} {flag.rule}"


def count_files(catalog: lo.Catalog) -> int:
    return sum(
        1 if entry.path.is_file() else sum(1 for p in entry.path.rglob("*") if p.is_file()) for entry in catalog.entries
    )


def report(name: str, catalog: lo.Catalog, flagged: list[lo.Flagged], seconds: float, medium: bool) -> str:
    """Print the library's figures and offending globals; return its BENCHMARKS.md row."""
    stages = collections.Counter(skip.stage for skip in catalog.skipped)
    print(f"== {name}  ({seconds:.1f} s)")
    print(
        f"   objects built {catalog.objects}, skipped: build {stages['build']}, save {stages['save']}, "
        f"import {stages['import']}; entries scanned {len(catalog.entries)} ({count_files(catalog)} files)"
    )
    worst_by_entry: dict[Path, set[int]] = collections.defaultdict(set)
    for flag in flagged:
        worst_by_entry[flag.entry.path].add(flag.severity)
    per_severity = {
        sev.name: sum(1 for sevs in worst_by_entry.values() if sev in sevs)
        for sev in (Severity.CRITICAL, Severity.HIGH, Severity.MEDIUM, Severity.LOW)
    }
    failing = sum(1 for sevs in worst_by_entry.values() if max(sevs) >= Severity.HIGH)
    print(
        "   entries with findings at "
        + ", ".join(f"{k} {v}" for k, v in per_severity.items())
        + f"; failing (>= HIGH) {failing}"
    )
    shown: dict[tuple[str, str, str], tuple[int, int, str]] = {}
    for flag in flagged:
        if flag.severity < Severity.HIGH and not (medium and flag.severity == Severity.MEDIUM):
            continue
        key = (flag.name or flag.message[:110], usage(flag), Severity(flag.severity).name)
        count, _, example = shown.get(key, (0, 0, flag.entry.label))
        shown[key] = (count + 1, flag.severity, example)
    for (what, how, sev), (count, _, example) in sorted(shown.items(), key=lambda kv: (-kv[1][1], kv[0])):
        print(f"   {sev:8} {how}  {what}  [{count}x, e.g. {example}]")
    for skip in catalog.skipped[:_SHOWN_SKIPS]:
        print(f"   skipped ({skip.stage}) {skip.label}: {skip.reason}")
    if len(catalog.skipped) > _SHOWN_SKIPS:
        print(f"   ... {len(catalog.skipped) - _SHOWN_SKIPS} more skipped")
    return (
        f"| {name} | {_version(name)} | {catalog.objects} | {len(catalog.skipped)} | {len(catalog.entries)} "
        f"| {count_files(catalog)} | {per_severity['MEDIUM']} | {failing} | {seconds:.1f} |"
    )


def _version(name: str) -> str:
    if name == "stdlib":
        return sys.version.split()[0]
    try:
        return importlib.metadata.version({"sklearn": "scikit-learn"}.get(name, name))
    except importlib.metadata.PackageNotFoundError:
        return "?"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", help="comma-separated libraries (default: all)")
    parser.add_argument("--medium", action="store_true", help="also list MEDIUM findings")
    parser.add_argument("--keep", help="write the catalogs here and keep them")
    parser.add_argument("--skips", action="store_true", help="list every skip")
    parser.add_argument("--write", action="store_true", help="replace the Library sweep section of BENCHMARKS.md")
    args = parser.parse_args()
    names = args.only.split(",") if args.only else list(lo.CATALOGS)
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="mloops-sweep-"))
    totals = collections.Counter()
    rows = []
    try:
        for name in names:
            started = time.monotonic()
            try:
                catalog = lo.CATALOGS[name](work)
            except ImportError as exc:
                print(f"== {name}: not installed ({exc})")
                continue
            flagged = lo.scan_catalog(catalog)
            rows.append(report(name, catalog, flagged, time.monotonic() - started, args.medium))
            if args.skips:
                for skip in catalog.skipped[_SHOWN_SKIPS:]:
                    print(f"   skipped ({skip.stage}) {skip.label}: {skip.reason}")
            totals["objects"] += catalog.objects
            totals["entries"] += len(catalog.entries)
            totals["failing"] += len({f.entry.path for f in flagged if f.severity >= Severity.HIGH})
            sys.stdout.flush()
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    print(f"== total: {totals['objects']} objects, {totals['entries']} entries, {totals['failing']} failing (>= HIGH)")
    if args.write:
        sections.write_section(section(rows, totals))
    return 0


def section(rows: list[str], totals: collections.Counter[str]) -> list[str]:
    return [
        "## Library sweep",
        "",
        f"`bench/library_sweep.py` on {time.strftime('%Y-%m-%d')}: every public picklable type the catalogs of "
        "`corpus/library_objects.py` construct from each library (enum members found by walking modules, "
        "every pandas dtype, array, index, offset and time zone, every scikit-learn estimator fitted, torch modules, "
        "optimizers, schedulers and distributed checkpoints, ...), saved with pickle protocols 0-5, joblib and the "
        "library's own save function, scanned with `mloops.scan_path`. An entry is a file or a saved folder; "
        '"failing" is an entry with a finding at HIGH or above (the default fail threshold). Skips are objects a '
        "library cannot build or save in a form (each recorded with its reason by the catalog).",
        "",
        "| library | version | objects | skipped | entries | files | entries at MEDIUM | failing | seconds |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
        *rows,
        f"| total | | {totals['objects']} | | {totals['entries']} | | | {totals['failing']} | |",
    ]


if __name__ == "__main__":
    sys.exit(main())
