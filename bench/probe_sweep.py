"""Probe 1,000 loopback ports with a handful of real ML platforms listening among them.

    .venv/bin/python bench/probe_sweep.py      (needs the [test] extras: the platforms themselves)

Starts MLflow (open), Jupyter Server (open and with a token), TensorBoard and a Streamlit app on ports
inside 127.0.0.1:21000-21999, runs ``mloops probe 127.0.0.1 --ports 21000-21999`` as a user would, and
replaces the "Probe sweep" section of BENCHMARKS.md. bench/run.py includes the same section in a full run.
No peer runs here: nuclei, the usual tool for this, is a Go binary that is not installable on this machine.
"""

from __future__ import annotations

import contextlib
import json
import socket
import statistics
import tempfile
import time
from pathlib import Path

import peers

ROOT = peers.ROOT  # importing peers put the repository root on the path

from corpus import servers  # noqa: E402

FIRST, LAST = 21000, 21999
TARGET_SECONDS = 15
SECTION = "## Probe sweep"


def _free_in_range(count: int) -> list[int]:
    ports = []
    for candidate in range(FIRST + 37, LAST, 97):  # spread over the range
        with socket.socket() as probe_socket:
            try:
                probe_socket.bind(("127.0.0.1", candidate))
            except OSError:
                continue
        ports.append(candidate)
        if len(ports) == count:
            return ports
    raise RuntimeError("not enough free ports in the range")


def measure(mloops: str, measure_run, repeat: int) -> list[str]:
    """Start the platforms, probe the range ``repeat`` times; the BENCHMARKS.md lines."""
    mlflow, jupyter_open, jupyter_token, tensorboard, streamlit = _free_in_range(5)
    with tempfile.TemporaryDirectory(prefix="mloops-sweep-") as folder, contextlib.ExitStack() as stack:
        work = Path(folder)
        for name in ("mlflow", "open", "token", "tb", "st"):
            (work / name).mkdir()
        started = time.monotonic()
        stack.enter_context(servers.mlflow_server(work / "mlflow", mlflow))
        stack.enter_context(servers.jupyter(work / "open", jupyter_open, ""))
        stack.enter_context(servers.jupyter(work / "token", jupyter_token, "bench-token-0123456789"))
        tb_command = [str(servers.BIN / "tensorboard"), "--logdir", str(work / "tb"), "--host", "127.0.0.1"]
        stack.enter_context(
            servers.server(
                [*tb_command, "--port", str(tensorboard)],
                f"http://127.0.0.1:{tensorboard}/data/environment",
                work / "tb.log",
                work / "tb",
            )
        )
        (work / "st" / "app.py").write_text("import streamlit as st\nst.write('hello')\n")
        st_command = [str(servers.BIN / "streamlit"), "run", "app.py", "--server.address", "127.0.0.1"]
        st_options = ["--server.headless", "true", "--browser.gatherUsageStats", "false"]
        stack.enter_context(
            servers.server(
                [*st_command, "--server.port", str(streamlit), *st_options],
                f"http://127.0.0.1:{streamlit}/_stcore/health",
                work / "st.log",
                work / "st",
            )
        )
        startup = time.monotonic() - started
        output = work / "report.json"
        command = [mloops, "probe", "127.0.0.1", "--ports", f"{FIRST}-{LAST}", "--format", "json"]
        runs = [measure_run(command, output) for _ in range(repeat)]
        report = json.loads(output.read_text())
    seconds = statistics.median(run.seconds for run in runs)
    rss = max(run.rss_mb for run in runs)
    found = sorted(
        (f["location"]["path"], f["evidence"]["platform"]) for f in report["findings"] if f["rule_id"] == "MLO500"
    )
    verdicts = sorted({(f["location"]["path"], f["rule_id"]) for f in report["findings"] if f["rule_id"] != "MLO500"})
    return [
        "",
        SECTION,
        "",
        f"`bench/probe_sweep.py`: `mloops probe 127.0.0.1 --ports {FIRST}-{LAST}` (1,000 loopback ports) with five "
        "real platforms listening among them: MLflow (open), Jupyter Server (open, and with a token), TensorBoard "
        f"and a Streamlit app (started in {startup:.0f} s, not counted). Default concurrency (64) and timeout (3 s); "
        f"median of {repeat} runs. No peer ran: nuclei, the usual tool, is a Go binary not installable here.",
        "",
        "| endpoints probed | answered | platforms recognised | time | peak RSS | target |",
        "|---|---|---|---|---|---|",
        f"| {report['summary']['endpoints_probed']} | {report['summary']['files']} | {len(found)} | {seconds:.2f} s | "
        f"{rss:.0f} MB | under {TARGET_SECONDS} s: {'met' if seconds < TARGET_SECONDS else 'missed'} |",
        "",
        "Recognised: " + ", ".join(f"{platform} ({path})" for path, platform in found) + ".",
        "Verdicts: " + ", ".join(f"{path} {rule}" for path, rule in verdicts) + ".",
        f"Exit codes: {', '.join(str(run.exit) for run in runs)}.",
    ]


def main() -> None:
    from bench import peers, sections

    peers.install_tools()
    mloops = str(peers.PEERS / "bin" / "mloops")
    lines = measure(mloops, lambda command, output: peers.measure(command, stdout=output), repeat=3)
    sections.write_section(lines)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
