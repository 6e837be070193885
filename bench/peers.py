"""What the benchmark scripts share: the peer tools' environment and how one run of a tool is measured
(exit code, seconds, peak memory), so that no script reaches into another script for them."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The scripts import the repository's own packages (corpus: the input makers shared with the tests; fuzz;
# bench) from here: this is the one place that puts the repository root on the path.
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
WORK = ROOT / "bench" / "work"
PEERS = ROOT / "bench" / ".venv-peers"
# h5py and onnx: the peers' Keras H5 and ONNX scanners need them, and a user of those formats has them.
PEER_PACKAGES = ["picklescan", "modelscan", "fickling", "modelaudit", "h5py", "onnx", "bandit", "detect-secrets"]
PEER_PACKAGES += ["mlflow-skinny==3.17.2"]  # modelaudit's models:/ scans download through MLflow's client
PEER_PACKAGES += ["s3fs"]  # and its s3:// scans through fsspec
QUIET_ENV = {"PROMPTFOO_DISABLE_TELEMETRY": "1", "NO_ANALYTICS": "1", "DO_NOT_TRACK": "1"}
TIMEOUT = 900

# Forks the tool from a small process and reports [exit code, seconds, peak RSS in MiB].
LAUNCHER = """
import json, os, sys, time
started = time.perf_counter()
pid = os.fork()
if pid == 0:
    devnull = os.open(os.devnull, os.O_WRONLY)
    out = os.environ.get("BENCH_STDOUT")  # kept when the report itself is needed
    os.dup2(os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC) if out else devnull, 1)
    os.dup2(devnull, 2)
    os.execv(sys.argv[1], sys.argv[1:])
_, status, usage = os.wait4(pid, 0)
print(json.dumps([os.waitstatus_to_exitcode(status), time.perf_counter() - started, usage.ru_maxrss / 1024]))
"""


@dataclass
class Run:
    exit: int
    seconds: float
    rss_mb: float


def measure(command: list[str], stdout: Path | None = None, env_extra: dict[str, str] | None = None) -> Run:
    env = {**os.environ, **QUIET_ENV, **({"BENCH_STDOUT": str(stdout)} if stdout else {}), **(env_extra or {})}
    try:
        out = subprocess.run(
            [sys.executable, "-S", "-c", LAUNCHER, *command],
            capture_output=True,
            text=True,
            env=env,
            cwd=WORK,
            timeout=TIMEOUT,
            check=True,
        ).stdout
    except subprocess.TimeoutExpired:
        return Run(-9, TIMEOUT, 0.0)
    code, seconds, rss = json.loads(out)
    return Run(code, seconds, rss)


def median_run(command: list[str], repeat: int) -> Run:
    runs = [measure(command) for _ in range(repeat)]
    return Run(runs[0].exit, statistics.median(r.seconds for r in runs), max(r.rss_mb for r in runs))


def scan_report(targets: list[str], out: Path, *extra: str, env: dict[str, str] | None = None) -> tuple[float, dict]:
    """Seconds and JSON report of one ``mloops scan`` of ``targets`` in a process of its own, as a user runs it;
    an exit other than 0 or 1 stops the bench."""
    command = [sys.executable, "-m", "mloops", "scan", *targets, "--format", "json", "--output", str(out), *extra]
    started = time.perf_counter()
    result = subprocess.run(command, env=env)
    seconds = time.perf_counter() - started
    if result.returncode not in (0, 1):
        raise SystemExit(f"mloops scan {' '.join(targets)[:200]} {' '.join(extra)} exited {result.returncode}")
    return seconds, json.loads(out.read_text())


def install_tools() -> None:
    pip = PEERS / "bin" / "pip"
    if not pip.exists():
        subprocess.run([sys.executable, "-m", "venv", str(PEERS)], check=True)
    subprocess.run([str(pip), "install", "-q", *PEER_PACKAGES], check=True)
    subprocess.run([str(pip), "install", "-q", "--force-reinstall", "--no-deps", str(ROOT)], check=True)
    subprocess.run([str(pip), "install", "-q", str(ROOT)], check=True)  # mloops' own dependencies


def version_of(package: str) -> str:
    code = f"import importlib.metadata as m; print(m.version({package!r}))"
    return subprocess.run([str(PEERS / "bin" / "python"), "-c", code], capture_output=True, text=True).stdout.strip()
