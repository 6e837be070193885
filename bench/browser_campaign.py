"""The browser oracle's long campaign: generated notebook HTML outputs, each judged by mloops and rendered by
Chromium's engine (fuzz/browser.py) as JupyterLab renders a trusted output.

    .venv/bin/python bench/browser_campaign.py --cases 1000000 --seed 3 --jobs 3 \\
        --out bench/browser-parts/seed-3 --write

A bypass is an output mloops claims runs nothing (nothing at HIGH or above) on which a marker ran. Bypasses,
crashes and browser hangs are kept as JSON under --out, with each part's summary (and the commit it ran).
--write (or --rewrite alone) replaces BENCHMARKS.md's "Browser oracle" section with one row per campaign kept
under bench/browser-parts, each recorded bypass judged again by the current code. --start runs a later part
of the same seed.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import peers

ROOT = peers.ROOT  # importing peers put the repository root on the path

from bench import sections  # noqa: E402
from bench.parts import campaign_parts  # noqa: E402
from fuzz.html_cases import html_cases  # noqa: E402
from fuzz.html_oracle import VERDICTS, HtmlOracle, summary_of  # noqa: E402

KEPT = ("bypass", "crash", "browser-hang")
PARTS = ROOT / "bench" / "browser-parts"  # one folder per campaign kept in the repository: seed-N


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--start", type=int, default=0, help="index of the first case (to run a campaign in parts)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--jobs", type=int, default=1, help="shards run side by side, each with its own browser")
    parser.add_argument("--out", type=Path, default=Path("bench/work/browser-oracle"))
    parser.add_argument("--progress", type=float, default=30.0, help="seconds between progress lines")
    parser.add_argument("--write", action="store_true", help="replace BENCHMARKS.md's Browser oracle section")
    parser.add_argument("--rewrite", action="store_true", help="only rewrite that section from bench/browser-parts")
    return parser.parse_args()


def main() -> int:
    args = parse()
    if args.rewrite:
        write()
        return 0
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    context = multiprocessing.get_context("spawn")  # each shard starts clean: its own Qt and browser
    queue = context.Queue()
    shards = [context.Process(target=run_shard, args=(args, shard, queue)) for shard in range(args.jobs)]
    for process in shards:
        process.start()
    counts: Counter[str] = Counter()
    running, last = len(shards), started
    while running:
        kind, payload = queue.get()
        if kind == "case":
            path = args.out / f"{payload['verdict']}-{payload['id']}.json"
            path.write_text(json.dumps(payload, indent=1), encoding="utf-8")
        elif kind == "tally":
            counts.update(payload)
        elif kind == "done":
            counts.update(payload)
            running -= 1
        if time.perf_counter() - last > args.progress:
            last = time.perf_counter()
            print(json.dumps(summary_of(counts, last - started)), flush=True)
    for process in shards:
        process.join()
    summary = summary_of(counts, time.perf_counter() - started)
    summary.update(seed=args.seed, start=args.start, end=args.start + args.cases, jobs=args.jobs, commit=commit())
    (args.out / f"summary-{args.start}.json").write_text(json.dumps(summary, indent=1), encoding="utf-8")
    print(json.dumps(summary, indent=1))
    if args.write:
        write()
    return 1 if summary["verdicts"]["bypass"] or summary["verdicts"]["crash"] else 0


def run_shard(args: argparse.Namespace, shard: int, queue: Any) -> None:
    """Every ``jobs``-th case from ``start + shard``; tallies go back every 10,000 cases."""
    oracle = HtmlOracle()
    sent: Counter[str] = Counter()
    try:
        cases = html_cases(args.seed, args.start + args.cases, start=args.start, shard=shard, shards=args.jobs)
        for number, outcome in enumerate(oracle.run(cases), 1):
            if outcome.verdict in KEPT:
                queue.put(("case", outcome.record()))
            if not number % 10_000:
                queue.put(("tally", oracle.tally.counts - sent))
                sent = Counter(oracle.tally.counts)
    finally:
        oracle.close()
        queue.put(("done", oracle.tally.counts - sent))


def commit() -> str:
    """The commit whose code the campaign judged (the generator and mloops both)."""
    found = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    return found.stdout.strip() or "unknown"


def write() -> None:
    """BENCHMARKS.md's Browser oracle section: one row per campaign kept under bench/browser-parts (seed-N)."""
    campaigns = sorted((int(folder.name.split("-")[1]), folder) for folder in PARTS.glob("seed-*"))
    summaries = [combined(folder, seed) for seed, folder in campaigns]
    sections.write_section(section(summaries, [line for _, folder in campaigns for line in rechecked(folder)]))


def combined(out: Path, seed: int) -> dict:
    """The parts' summaries under ``out``, summed; they must cover cases 0..N without a gap."""
    total = {"cases": 0, "seconds": 0.0, "verdicts": dict.fromkeys(VERDICTS, 0), "seed": seed, "commit": set()}
    for part in campaign_parts(out, seed):
        total["commit"].add(part.get("commit", "unknown"))
        total["cases"] += part["cases"]
        total["seconds"] += part["seconds"]
        for verdict, count in part["verdicts"].items():
            total["verdicts"][verdict] += count
    return total


def rechecked(out: Path) -> list[str]:
    """Each recorded bypass judged again by the current mloops (the browser already showed that it runs)."""
    oracle = HtmlOracle()
    lines = []
    for path in sorted(out.glob("bypass-*.json")):
        case = json.loads(path.read_text())
        worst = oracle.verdict_of(case["html"]).worst.name
        lines.append(f"- case {case['id']}: markers {', '.join(case['ran'])} ran; mloops now says {worst}")
    oracle.close()
    return lines


def section(summaries: list[dict], rechecks: list[str]) -> list[str]:
    notes = ["", "Each recorded bypass, re-checked with the current code:", "", *rechecks] if rechecks else []
    rows = []
    for summary in summaries:
        verdicts = summary["verdicts"]
        ran = verdicts["rejected-ran"] + verdicts["bypass"]
        rows.append(
            f"| {summary['seed']} | {', '.join(sorted(summary['commit']))} | {summary['cases']} | "
            f"{summary['seconds']:.0f} | {summary['cases'] / max(summary['seconds'], 1e-9):.0f} | {ran} | "
            f"{verdicts['rejected-ran']} | {verdicts['rejected-silent']} | {verdicts['clean-agrees']} | "
            f"{verdicts['bypass']} | {verdicts['crash']} | {verdicts['browser-hang']} |"
        )
    return [
        "## Browser oracle",
        "",
        f"`bench/browser_campaign.py --cases N --seed S --jobs 3 --out bench/browser-parts/seed-S`, rewritten "
        f"{time.strftime('%Y-%m-%d')}: generated notebook HTML outputs (fuzz/html_cases.py: script carriers hidden "
        "in comments, raw text, foreign content, namespace games and odd syntax, and from the commit that "
        "added them, renderer-seeded cases: statements spliced into a folium page's reviewed calls, carriers "
        "inside that page, %tensorboard frame scripts), each judged by mloops and rendered by Chromium's engine "
        "(Qt WebEngine 6.11, Chrome 140) as JupyterLab renders a trusted output. A bypass is an output mloops "
        "claims runs nothing (nothing at HIGH or above) on which a marker ran. One row per campaign, with the "
        "commit whose generator and mloops it ran.",
        "",
        "| seed | commit | cases | seconds | cases/s | script ran | mloops HIGH, ran | mloops HIGH, nothing ran | "
        "claimed clean, nothing ran | bypass | crash | browser hang |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        *rows,
        "",
        '"Nothing ran" under HIGH is mostly handlers that need a user (onclick) and markup mloops reports '
        "because a browser may parse it as markup, though this engine's tree builder kept it as text here.",
        *notes,
    ]


if __name__ == "__main__":
    sys.exit(main())
