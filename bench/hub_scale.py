"""Files per second on a 100,000-file mixed tree: the process pool, and a Ray cluster of this machine with one
and with two one-CPU worker nodes; what a remote object costs to judge; from those, the cluster that would
scan every public model of the Hugging Face Hub in a day.

    python bench/hub_scale.py [--copies 10] [--write]

The tree (bench/work/hub-scale) is 10 copies, as hard links, of the code tree of bench/code_tree.py (10,000
training scripts and notebooks) and of every malicious and benign model fixture of the test suite. Every run
scans it whole with --no-cache; the reports must agree.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import peers

ROOT = peers.ROOT  # importing peers put the repository root on the path

from bench import code_tree  # noqa: E402
from bench.peers import WORK, scan_report  # noqa: E402
from bench.sections import BENCHMARKS, replace_section  # noqa: E402
from corpus.range_server import range_server  # noqa: E402
from corpus.scanning import write_fixtures  # noqa: E402
from corpus.servers import QUIET, free_port  # noqa: E402

from mloops.executors.local import REMOTE_WORKERS as THREADS_PER_WORKER  # noqa: E402

HERE = WORK / "hub-scale"
ENV = {**os.environ, **QUIET, "RAY_AUTH_MODE": "disabled"}
HUB_REPOSITORIES = 2_000_000
SECONDS_PER_DAY = 86_400
FILES_PER_REPOSITORY = (10, 30)  # assumed: a config, a tokenizer, weights (often sharded), a README, ...
ROUND_TRIP = 0.05  # seconds per request from a cloud region to the Hub's CDN, assumed


def build(copies: int) -> Path:
    base, tree = HERE / "base", HERE / f"tree-{copies}"
    if not base.exists():
        (base / "models").mkdir(parents=True)
        (HERE / "fixture-work").mkdir(exist_ok=True)
        write_fixtures(base / "models", HERE / "fixture-work")
        code_tree.build(base / "code")
    if not tree.exists():
        for number in range(copies):
            for path in sorted(p for p in base.rglob("*") if p.is_file()):
                target = tree / f"copy{number:02d}" / path.relative_to(base)
                target.parent.mkdir(parents=True, exist_ok=True)
                os.link(path, target)
    return tree


def scan(tree: Path, *extra: str) -> tuple[float, dict]:
    seconds, document = scan_report([str(tree)], HERE / "report.json", "--no-cache", *extra, env=ENV)
    document["summary"].pop("duration_seconds")
    return seconds, document


def on_ray(tree: Path, workers: int) -> tuple[float, dict]:
    from ray.cluster_utils import Cluster

    client_port = free_port()
    os.environ.update({key: ENV[key] for key in ("RAY_AUTH_MODE", "RAY_USAGE_STATS_ENABLED")})
    nodes = Cluster(
        initialize_head=True,
        head_node_args={"num_cpus": 0, "include_dashboard": False, "ray_client_server_port": client_port},
    )
    try:
        for _ in range(workers):
            nodes.add_node(num_cpus=1)
        nodes.wait_for_nodes()
        return scan(tree, "--executor", f"ray://127.0.0.1:{client_port}")
    finally:
        nodes.shutdown()


SAVE_CHECKPOINT = "import sys, torch; torch.save({'w': torch.zeros(16 << 20)}, sys.argv[1])"  # 64 MiB


def remote_costs(models: Path) -> list[tuple[str, float, float]]:
    """(what, mean bytes read, mean requests) of a remote object, scanned by HTTP range requests: the model
    fixtures (mostly small files, like a repository's configs and tokenizers) and a 64 MiB torch checkpoint
    (a weights file: its directory and pickle are read, its tensors are not)."""
    checkpoint = HERE / "weights" / "pytorch_model.bin"
    if not checkpoint.exists():
        checkpoint.parent.mkdir(parents=True)
        subprocess.run([sys.executable, "-c", SAVE_CHECKPOINT, str(checkpoint)], check=True)
    costs = []
    for what, folder in (("a model fixture", models), ("a 64 MiB PyTorch checkpoint", checkpoint.parent)):
        names = sorted(path.name for path in folder.iterdir() if path.is_file())
        with range_server(folder) as server:
            urls = [server.url(f"files/{name}") for name in names]
            _, report = scan_report(urls, HERE / "remote.json", "--no-cache", env=ENV)
        entries = [entry["remote"] for entry in report["files"] if "remote" in entry]
        read = sum(entry["bytes_read"] for entry in entries) / len(entries)
        costs.append((what, read, sum(entry["requests"] for entry in entries) / len(entries)))
    return costs


def section(
    files: int, copies: int, runs: list[tuple[str, float, bool]], costs: list[tuple[str, float, float]]
) -> list[str]:
    per_cpu = files / runs[0][1]  # one process, local files: the CPU cost of a verdict
    agree = all(same for _, _, same in runs)
    return [
        "## Hub scale",
        "",
        f"`bench/hub_scale.py` on {time.strftime('%Y-%m-%d')}, this machine (2 CPUs): a tree of {files:,} files, "
        f"{copies} hard-linked copies of the 10,000-file code tree and of every model fixture of the tests "
        "(pickles, PyTorch, Keras, ONNX, safetensors, GGUF, notebooks...), scanned whole with --no-cache. Ray runs "
        "use Ray's own multi-node harness (a head with no CPU, worker nodes of one CPU each) through Ray Client; "
        "the cluster's start is not counted, the driver's connection is.",
        "",
        "| executor | seconds | files/s |",
        "|---|---|---|",
        *(f"| {label} | {seconds:.1f} | {files / seconds:,.0f} |" for label, seconds, _ in runs),
        "",
        f"The four reports are {'identical' if agree else 'NOT identical'} (every file, finding and exit code).",
        "",
        "What a remote object costs, scanned by HTTP range requests: "
        + "; ".join(f"{what}, {read / 1024:,.1f} KiB in {requests:.1f} requests" for what, read, requests in costs)
        + ".",
        "",
        *estimate(per_cpu, costs[-1][1], costs[-1][2]),
    ]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--copies", type=int, default=10)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    tree = build(args.copies)
    files = sum(1 for p in tree.rglob("*") if p.is_file())
    measured: list[tuple[str, float, dict]] = []
    for label, extra in (("process pool, --jobs 1", ["--jobs", "1"]), ("process pool, --jobs 2", ["--jobs", "2"])):
        measured.append((label, *scan(tree, *extra)))
    for workers in (1, 2):
        measured.append((f"Ray, {workers} worker node{'s' if workers > 1 else ''} of 1 CPU", *on_ray(tree, workers)))
    runs = [(label, seconds, document == measured[0][2]) for label, seconds, document in measured]
    lines = section(files, args.copies, runs, remote_costs(build(1) / "copy00" / "models"))
    print("\n".join(lines))
    if args.write:
        BENCHMARKS.write_text(replace_section(BENCHMARKS.read_text(), lines))


def estimate(per_cpu: float, mean_read: float, mean_requests: float) -> list[str]:
    """The Hub in a day, at the measured per-CPU rate, every object costing what a weights file costs (an upper
    bound: configs and tokenizers cost one request)."""
    rows = []
    for per_repo in FILES_PER_REPOSITORY:
        objects = HUB_REPOSITORIES * per_repo
        rate = objects / SECONDS_PER_DAY
        cpus = rate / per_cpu
        per_worker_io = THREADS_PER_WORKER / (mean_requests * ROUND_TRIP)  # objects/s one worker's threads wait for
        workers = rate / per_worker_io
        rows.append(
            f"| {per_repo} | {objects / 1e6:.0f} M | {rate:,.0f} | {cpus:.1f} | {workers:.0f} | "
            f"{objects * mean_read / 1e12:.2f} TB |"
        )
    return [
        f"Estimate for the whole Hub ({HUB_REPOSITORIES:,} public repositories) in one day. Parsing costs "
        f"{1000 / per_cpu:.2f} ms of one CPU per file (the --jobs 1 run above); every object is taken to cost what "
        f"the checkpoint costs (an upper bound), {mean_requests:.1f} round trips of {ROUND_TRIP * 1000:.0f} ms "
        f"(assumed, from a cloud region), with {THREADS_PER_WORKER} objects read at a time per worker. Files per "
        "repository are assumed, not measured.",
        "",
        "| files per repository | objects | objects/s needed | CPUs (parsing) | workers (round trips) | bytes read |",
        "|---|---|---|---|---|---|",
        *rows,
        "",
        "Round trips, not CPU, size the cluster, and it is small: the limit is the Hub's own API rate limits for "
        "one token, which a scan of the whole Hub would have to negotiate, not mloops. A rescan with the result "
        "cache costs only the Hub's listings (one request per repository), since every file is pinned to its "
        "commit.",
    ]


if __name__ == "__main__":
    main()
