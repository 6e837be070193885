"""Long differential-oracle campaign: generated and mutated pickles, mloops' verdict against real loads.

    python bench/oracle_campaign.py --cases 10000000 --seed 1 --jobs 2 --out oracle-out/

A long campaign can run in parts: ``--start N`` runs cases N..N+cases-1 of the same seed, and
``--write`` sums the parts' summaries (``summary-<start>.json`` under ``--out``) into one section.
``--recheck`` re-runs the bypasses, crashes and hangs recorded under ``--out`` with the current code
(after a fix) and keeps then-and-now verdicts in ``recheck.json``, which the section lists.

Starts the recorder's zygote (which imports the allowlisted libraries once), makes the benign seed
checkpoints with the real libraries (in a child process), and runs ``--jobs`` shard processes, each
scanning its share of the cases with mloops and loading the claimed-clean ones in forked workers.
Prints cases/s, counts per verdict and the claimed-clean share as it goes, and writes every bypass,
crash, hang and loader crash under ``--out`` (one JSON file per case: hex bytes, mloops' findings,
the recorded events) with ``summary-<start>.json``. Cases are a function of (seed, index): rerun one with
``--only INDEX``. Exit code 1 when any bypass, crash or hang was found.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import sys
import time
from collections import Counter
from pathlib import Path

import peers

ROOT = peers.ROOT  # importing peers put the repository root on the path

from bench import sections  # noqa: E402 - needs the repository on sys.path first
from bench.parts import campaign_parts  # noqa: E402
from fuzz.mutate import seeds_from_child  # noqa: E402
from fuzz.oracle import (  # noqa: E402
    Oracle,
    Tally,
    Zygote,
    campaign_cases,
    run_shard,
    signature,
)


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--start", type=int, default=0, help="index of the first case (to run a campaign in parts)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("oracle-out"))
    parser.add_argument("--mutants", type=float, default=0.15, help="share of cases that are mutants (0 to 1)")
    parser.add_argument("--progress", type=float, default=10.0, help="seconds between progress lines")
    parser.add_argument("--only", type=int, help="run the single case with this index, and print its record")
    parser.add_argument(
        "--recheck",
        action="store_true",
        help="re-run every bypass, crash and hang case recorded under --out with the current code (recheck.json)",
    )
    parser.add_argument("--write", action="store_true", help="replace BENCHMARKS.md's Differential oracle section")
    return parser.parse_args()


def main() -> int:
    args = parse()
    started = time.perf_counter()
    seeds = seeds_from_child() if args.mutants > 0 else {}
    with Zygote() as zygote:
        print(f"zygote and seeds ready in {time.perf_counter() - started:.1f} s", flush=True)
        if args.only is not None:
            return run_one(zygote, args, seeds)
        if args.recheck:
            return recheck(zygote, args, seeds)
        return run_campaign(zygote, args, seeds)


def run_one(zygote: Zygote, args: argparse.Namespace, seeds: dict[str, bytes]) -> int:
    oracle = Oracle(zygote)
    case = next(campaign_cases(args.seed, args.only + 1, seeds=seeds, mutant_share=args.mutants, start=args.only))
    outcome = next(iter(oracle.run([case])))
    print(json.dumps(outcome.record(), indent=1, default=str))
    oracle.close()
    return 0


def recheck(zygote: Zygote, args: argparse.Namespace, seeds: dict[str, bytes]) -> int:
    """The recorded disagreements and loader crashes, re-run after fixes: their verdicts then and now, in
    recheck.json. A loader crash hides what the load would have done, so it is re-run too."""
    oracle = Oracle(zygote)
    results = []
    for path in sorted(args.out.glob("*.json")):
        verdict, _, index = path.stem.rpartition("-")
        if verdict not in RECHECKED or not index.isdigit():
            continue
        case = next(campaign_cases(args.seed, int(index) + 1, seeds=seeds, mutant_share=args.mutants, start=int(index)))
        now = next(iter(oracle.run([case]))).verdict
        results.append({"id": int(index), "was": verdict, "now": now, "class": signature(json.loads(path.read_text()))})
        if verdict != "load-crash" or now != verdict:
            print(json.dumps(results[-1]), flush=True)
    oracle.close()
    (args.out / "recheck.json").write_text(json.dumps(results, indent=1), encoding="utf-8")
    if args.write:
        sections.write_section(section(combined(args.out, args.seed)))
    return 1 if any(entry["now"] in ("bypass", "crash", "hang") for entry in results) else 0


RECHECKED = ("bypass", "crash", "hang", "load-crash")


def run_campaign(zygote: Zygote, args: argparse.Namespace, seeds: dict[str, bytes]) -> int:
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    shards = [
        context.Process(
            target=run_shard,
            args=(
                zygote.path,
                args.seed,
                args.start + args.cases,
                shard,
                args.jobs,
                seeds,
                args.mutants,
                queue,
                args.start,
            ),
            daemon=True,
        )
        for shard in range(args.jobs)
    ]
    start = time.perf_counter()
    for process in shards:
        process.start()
    tally = Tally()
    classes: Counter[str] = Counter()
    examples: dict[str, str] = {}
    args.out.mkdir(parents=True, exist_ok=True)
    running = len(shards)
    last = start
    while running:
        kind, payload = queue.get()
        if kind == "tally":
            tally.merge(payload)
        elif kind == "case":
            label = f"{payload['verdict']}: {signature(payload)}"
            classes[label] += 1
            path = args.out / f"{payload['verdict']}-{payload['id']}.json"
            path.write_text(json.dumps(payload, indent=1, default=str), encoding="utf-8")
            examples.setdefault(label, path.name)
        elif kind == "done":
            running -= 1
        now = time.perf_counter()
        if now - last >= args.progress or not running:
            print(json.dumps(tally.summary(now - start)), flush=True)
            last = now
    for process in shards:
        process.join()
    summary = tally.summary(time.perf_counter() - start)
    summary["classes"] = [
        {"class": label, "count": n, "example": examples[label]} for label, n in classes.most_common()
    ]
    summary.update(seed=args.seed, start=args.start, end=args.start + args.cases, jobs=args.jobs, mutants=args.mutants)
    (args.out / f"summary-{args.start}.json").write_text(json.dumps(summary, indent=1), encoding="utf-8")
    print(json.dumps(summary, indent=1))
    if args.write:
        sections.write_section(section(combined(args.out, args.seed)))
    bad = sum(summary["verdicts"][v] for v in ("bypass", "crash", "hang"))
    return 1 if bad else 0


def combined(out: Path, seed: int) -> dict:
    """The summaries of a campaign's parts under ``out``, summed; they must cover cases 0..N without a gap."""
    parts = campaign_parts(out, seed)
    total: dict = {"parts": parts, "cases": 0, "seconds": 0.0, "claimed_clean": 0, "really_loaded": 0}
    verdicts: Counter[str] = Counter()
    classes: Counter[str] = Counter()
    examples: dict[str, str] = {}
    for part in parts:
        for key in ("cases", "seconds", "claimed_clean", "really_loaded"):
            total[key] += part[key]
        verdicts.update(part["verdicts"])
        for entry in part["classes"]:
            classes[entry["class"]] += entry["count"]
            examples.setdefault(entry["class"], entry["example"])
    total["verdicts"] = dict(verdicts)
    recheck_file = out / "recheck.json"
    total["rechecked"] = json.loads(recheck_file.read_text()) if recheck_file.exists() else []
    total["classes"] = [{"class": c, "count": n, "example": examples[c]} for c, n in classes.most_common()]
    return total


def section(summary: dict) -> list[str]:
    verdicts = summary["verdicts"]
    commands = "; ".join(
        f"`bench/oracle_campaign.py --start {part['start']} --cases {part['end'] - part['start']} "
        f"--seed {part['seed']} "
        f"--jobs {part['jobs']}`"
        for part in summary["parts"]
    )
    share = summary["claimed_clean"] / max(summary["cases"], 1)
    lines = [
        "## Differential oracle",
        "",
        f"{commands}, last part on {time.strftime('%Y-%m-%d')}: generated pickles (allowlisted callables composed "
        "with memo and stack games, computed names, aliases and dunder hooks) and mutants of real checkpoints "
        f"({summary['parts'][0]['mutants']:.0%}), each scanned "
        "by mloops; every case mloops claims clean (nothing at HIGH or above) is loaded by the real loaders "
        "(pure-Python and C unpicklers) in sandboxed workers under an audit hook and a profiler. A bypass is a real "
        "load doing something outside mloops' claim; a crash is mloops failing on the input.",
        "",
        "| cases | seconds | cases/s | claimed clean | really loaded | bypass | crash | hang | loader crash "
        "| loader timeout |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        f"| {summary['cases']} | {summary['seconds']:.0f} | {summary['cases'] / max(summary['seconds'], 1e-9):.0f} | "
        f"{summary['claimed_clean']} ({share:.1%}) | {summary['really_loaded']} | "
        f"{verdicts.get('bypass', 0)} | {verdicts.get('crash', 0)} | {verdicts.get('hang', 0)} | "
        f"{verdicts.get('load-crash', 0)} | {verdicts.get('load-timeout', 0)} |",
    ]
    rechecked = summary["rechecked"]
    shown = [e for e in rechecked if e["was"] != "load-crash" or e["now"] in ("bypass", "crash", "hang")]
    if shown:
        lines += [
            "",
            "Re-checked with the current code (`--recheck`): what each recorded disagreement was and is now:",
            "",
        ]
        lines += [f"- case {e['id']}: {e['was']} ({e['class']}), now {e['now']}" for e in shown]
    crashes = Counter(e["now"] for e in rechecked if e["was"] == "load-crash")
    if crashes:
        now = ", ".join(f"{n} {verdict}" for verdict, n in crashes.most_common())
        lines += [
            "",
            f"Loader crashes re-run with the current code and harness: {crashes.total()}, now {now}. Those that "
            "agree now were the harness dying, not the loader (a worker tripping over a killed worker's folder, "
            "an exception message formatted with a loaded object's repr). Those still crashing kill a plain "
            "`pickle.load` too, with SIGSEGV in library C code on crafted state (scikit-learn's tree state above "
            "all): mloops claims that no code of the file's choosing runs, not that the libraries are "
            "memory-safe, so they are counted apart.",
        ]
    classes = summary.get("classes", [])
    if classes:
        lines += ["", "Disagreements by class (one reproducible case each under the output folder):", ""]
        lines += [f"- {entry['count']} x {entry['class']}" for entry in classes[:20]]
    return lines


if __name__ == "__main__":
    sys.exit(main())
