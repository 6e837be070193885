"""Start-up time of the command line: ``mloops --help`` and ``mloops scan`` of one small pickle, for two
commits side by side (default: the commit before issue 13's restructuring, and the working tree).

Each commit is checked out as a git worktree under bench/work/ and run with this interpreter, its ``src``
first on the path; runs of the two alternate, so that a busy machine slows both alike.

    python bench/startup.py [--before REF] [--repeat N] [--write]
"""

from __future__ import annotations

import argparse
import compileall
import os
import pickle
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from peers import ROOT, WORK, measure
from sections import BENCHMARKS, replace_section

BEFORE = "b5d7346"  # the last commit before issue 13 (one registry, folders by attack surface)


def source_of(ref: str) -> Path:
    """The ``src`` folder of ``ref`` ("." is the working tree)."""
    if ref == ".":
        return ROOT / "src"
    tree = WORK / f"startup-{ref}"
    if not tree.exists():
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(tree), ref], check=True)
    return tree / "src"


def commands(sample: Path) -> dict[str, dict[str, list[str]]]:
    """Name -> the arguments each commit runs (the commit before has no result cache to turn off)."""
    scan = ["scan", str(sample)]
    return {
        "mloops --help": {"before": ["--help"], "after": ["--help"]},
        "mloops scan (one pickle)": {"before": scan, "after": scan},
        "mloops scan --no-cache (one pickle)": {"before": scan, "after": [*scan, "--no-cache"]},
    }


def timed(src: Path, arguments: list[str]) -> tuple[float, float]:
    code = f"import sys; sys.path.insert(0, {str(src)!r}); from mloops.cli import main; sys.exit(main())"
    # An empty result cache each run: a scan pays its lookup and its write, never a hit.
    run = measure([sys.executable, "-c", code, *arguments], env_extra={"MLOOPS_CACHE_DIR": tempfile.mkdtemp(dir=WORK)})
    if run.exit not in (0, 1):
        raise SystemExit(f"{src}: mloops {' '.join(arguments)} exited {run.exit}")
    return run.seconds, run.rss_mb


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--before", default=BEFORE)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--write", action="store_true", help="write the figures into BENCHMARKS.md")
    args = parser.parse_args()
    WORK.mkdir(parents=True, exist_ok=True)
    sample = WORK / "startup-sample.pkl"
    sample.write_bytes(pickle.dumps({"weights": [0.5] * 64, "name": "model"}, protocol=4))
    refs = {"before": args.before, "after": "."}
    sources = {label: source_of(ref) for label, ref in refs.items()}
    # As installed: with the bytecode compiled (pip does), not compiling every module on every start.
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    for src in sources.values():
        compileall.compile_dir(str(src), quiet=1)
    seconds: dict[tuple[str, str], list[float]] = {}
    memory: dict[tuple[str, str], float] = {}
    for _ in range(args.repeat):
        for name, arguments in commands(sample).items():
            for label, src in sources.items():
                spent, rss = timed(src, arguments[label])
                seconds.setdefault((name, label), []).append(spent)
                memory[(name, label)] = max(memory.get((name, label), 0.0), rss)
    head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    lines = [
        "## Start-up",
        "",
        f"`bench/startup.py`: median of {args.repeat} runs each, the two commits alternating, bytecode compiled as",
        "pip installs it, an empty result cache each run (a lookup and a write, never a hit); peak memory is the "
        "largest of the runs. Before = "
        f"{args.before} (the last commit before issue 13's restructuring), after = the tree at {head.stdout.strip()}.",
        "",
        "| command | before (ms) | after (ms) | before (MiB) | after (MiB) |",
        "|---|---|---|---|---|",
    ]
    for name in commands(sample):
        before, after = (statistics.median(seconds[(name, label)]) * 1000 for label in refs)
        peak = [memory[(name, label)] for label in refs]
        lines.append(f"| `{name}` | {before:.0f} | {after:.0f} | {peak[0]:.1f} | {peak[1]:.1f} |")
    print("\n".join(lines))
    if args.write:
        BENCHMARKS.write_text(replace_section(BENCHMARKS.read_text(), lines))


if __name__ == "__main__":
    main()
