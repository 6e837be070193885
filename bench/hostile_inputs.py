"""Run every hostile input of corpus/hostile.py through the CLI and print a Markdown table.

    .venv/bin/python bench/hostile_inputs.py [--only NAME ...] [--hang-guard SECONDS]

For each input: wall time, peak RSS of the scanning process, exit code, size of the JSON
report, and the findings per rule. Targets (checked, exit 1 when missed): every input ends
within the default per-file budget and well under 60 s on a 2-core machine, under 1 GiB of
RSS, with exit code 1 or 2 and a valid JSON report.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import peers

ROOT = peers.ROOT  # importing peers put the repository root on the path

from bench import sections  # noqa: E402
from corpus import hostile  # noqa: E402

TARGET_SECONDS = 60.0
TARGET_RSS_MIB = 1024.0


def _rules(run: hostile.CliRun) -> str:
    try:
        counts = run.counts_by_rule()
    except (ValueError, KeyError):
        return "(no valid JSON)"
    return ", ".join(f"{rule} {count}" for rule, count in sorted(counts.items())) or "-"


def _row(case: hostile.Hostile, run: hostile.CliRun) -> tuple[str, bool]:
    valid_json = True
    try:
        json.loads(run.stdout)
    except ValueError:
        valid_json = False
    missing = case.expected - set(run.counts_by_rule()) if valid_json else case.expected
    ok = (
        run.exit_code in case.exit_codes
        and valid_json
        and not missing
        and "Traceback" not in run.stderr
        and run.seconds < TARGET_SECONDS
        and run.max_rss_mib < TARGET_RSS_MIB
    )
    exit_text = "killed" if run.exit_code == -9 else str(run.exit_code)
    cells = [
        case.name,
        case.about,
        f"{run.seconds:.1f}",
        f"{run.max_rss_mib:.0f}",
        exit_text,
        f"{len(run.stdout) / 1024:.1f}",
        _rules(run),
        "yes" if ok else "NO" + (f" (missing {', '.join(sorted(missing))})" if missing else ""),
    ]
    return "| " + " | ".join(cells) + " |", ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--only", nargs="*", help="names of the inputs to run (default: all)")
    parser.add_argument("--hang-guard", type=float, default=300.0, help="kill a scan after this many seconds")
    parser.add_argument("--write", action="store_true", help="replace the Hostile inputs section of BENCHMARKS.md")
    args = parser.parse_args()
    cases = [case for case in hostile.CASES if not args.only or case.name in args.only]
    header = [
        "| input | what | seconds | max RSS (MiB) | exit | JSON (KiB) | findings per rule | on target |",
        "|---|---|---:|---:|---:|---:|---|---|",
    ]
    print("\n".join(header))
    rows = []
    all_ok = True
    for case in cases:
        with tempfile.TemporaryDirectory(prefix="mloops-bench-hostile-") as work:
            path = case.build(Path(work))
            run = hostile.run_cli(path, args.hang_guard)
            if path.is_dir():
                hostile.remove_tree(path)  # deeper than shutil.rmtree can recurse
        row, ok = _row(case, run)
        all_ok &= ok
        rows.append(row)
        print(row, flush=True)
    if args.write:
        intro = (
            f"`bench/hostile_inputs.py` on {time.strftime('%Y-%m-%d')}: each input of `corpus/hostile.py` "
            f"through `mloops scan --format json` with the default limits. Targets: under {TARGET_SECONDS:.0f} s and "
            f"{TARGET_RSS_MIB:.0f} MiB, a valid JSON report, no traceback, the expected finding."
        )
        sections.write_section(["## Hostile inputs", "", intro, "", *header, *rows])
    return 0 if all_ok else 1


if __name__ == "__main__":
    sys.exit(main())
