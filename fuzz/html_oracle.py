"""The browser oracle for notebook outputs: mloops' verdict on each generated HTML output against what a real
browser engine ran when rendering it as JupyterLab renders a trusted output (fuzz/browser.py).

Verdict per case:

  rejected-ran      mloops reports HIGH or above, and script ran
  rejected-silent   mloops reports HIGH or above, and no marker ran (a carrier that needs a user, say)
  clean-agrees      mloops claims nothing runs (nothing at HIGH or above), and no marker ran
  bypass            mloops claims nothing runs, and a marker ran
  crash             mloops raised, reported a scanner error or hung
  browser-hang      the engine stopped answering on this case alone (its own bug; restarted, case recorded)
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import signal
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from mloops.core import Severity

from .oracle import ROOT, Scan, Scanner

BATCH = 100  # outputs rendered in one page update
BROWSER_GUARD = 4.0  # seconds a batch may take before the browser is restarted (a batch takes well under 1 s)


def notebook_with(output_html: str) -> bytes:
    """A notebook whose one code cell shows ``output_html`` as a text/html output."""
    output = {"output_type": "display_data", "data": {"text/html": output_html}, "metadata": {}}
    cell = {"cell_type": "code", "execution_count": 1, "id": "c0", "metadata": {}, "outputs": [output], "source": ""}
    notebook = {"cells": [cell], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    return json.dumps(notebook).encode()


class Browser:
    """One fuzz/browser.py process; restarted when it dies or stalls."""

    def __init__(self) -> None:
        self.process: subprocess.Popen[str] | None = None
        self.restarts = 0

    def _start(self) -> subprocess.Popen[str]:
        command = [sys.executable, "-m", "fuzz.browser"]
        return subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            cwd=ROOT,
            start_new_session=True,  # its own process group: the engine's helper processes die with it
        )

    def render(self, cases: list[tuple[int, str]]) -> dict[int, set[str]] | None:
        """The markers that ran, by case; None when the browser died or stalled on this batch (it is restarted)."""
        if self.process is None or self.process.poll() is not None:
            self.process = self._start()
        process = self.process
        # A hung engine stops reading its input too: the watchdog ends a write that would block for ever.
        watchdog = threading.Timer(BROWSER_GUARD, _kill_group, (process,))
        watchdog.start()
        try:
            return self._exchange(process, cases)
        except (OSError, ValueError, TimeoutError):
            _kill_group(process)
            process.wait()
            self.process = None
            self.restarts += 1
            return None
        finally:
            watchdog.cancel()

    def _exchange(self, process: subprocess.Popen[str], cases: list[tuple[int, str]]) -> dict[int, set[str]]:
        assert process.stdin is not None and process.stdout is not None
        process.stdin.write(json.dumps([[str(i), text] for i, text in cases]) + "\n")
        process.stdin.flush()
        line = _readline(process, BROWSER_GUARD)
        hits: dict[int, set[str]] = {}
        for case_id, marker in json.loads(line)["hits"]:
            hits.setdefault(int(case_id), set()).add(marker)
        return hits

    def close(self) -> None:
        if self.process is not None and self.process.poll() is None:
            assert self.process.stdin is not None
            self.process.stdin.close()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                _kill_group(self.process)
                self.process.wait()
        self.process = None


def _kill_group(process: subprocess.Popen[str]) -> None:
    with contextlib.suppress(OSError):
        os.killpg(process.pid, signal.SIGKILL)  # the browser this oracle started, and its helpers


def _readline(process: subprocess.Popen[str], timeout: float) -> str:
    assert process.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        if not selector.select(timeout):
            raise TimeoutError("the browser did not answer")
    line = process.stdout.readline()
    if not line:
        raise ValueError("the browser exited")
    return line


@dataclass
class Outcome:
    case_id: int
    verdict: str
    html: str
    scan: Scan
    ran: set[str]

    def record(self) -> dict[str, Any]:
        return {
            "id": self.case_id,
            "verdict": self.verdict,
            "html": self.html,
            "ran": sorted(self.ran),
            "mloops": [{"rule": r, "severity": s, "message": m} for r, s, m, _ in self.scan.findings],
            "mloops_error": self.scan.error,
        }


@dataclass
class Tally:
    counts: Counter = field(default_factory=Counter)

    def summary(self, seconds: float) -> dict[str, Any]:
        return summary_of(self.counts, seconds)


def summary_of(counts: Counter[str], seconds: float) -> dict[str, Any]:
    cases = sum(counts.values())
    return {
        "cases": cases,
        "seconds": round(seconds, 1),
        "cases_per_second": round(cases / max(seconds, 1e-9), 1),
        "verdicts": {verdict: counts[verdict] for verdict in VERDICTS},
    }


VERDICTS = ("rejected-ran", "rejected-silent", "clean-agrees", "bypass", "crash", "browser-hang")


class HtmlOracle:
    def __init__(self) -> None:
        self.scanner = Scanner()
        self.browser = Browser()
        self.tally = Tally()

    def verdict_of(self, html_output: str) -> Scan:
        return self.scanner.scan(notebook_with(html_output), "case.ipynb")

    def run(self, cases: Iterable[tuple[int, str]]) -> Iterator[Outcome]:
        batch: list[tuple[int, str]] = []
        for case in cases:
            batch.append(case)
            if len(batch) >= BATCH:
                yield from self._judge(batch)
                batch = []
        if batch:
            yield from self._judge(batch)

    def _judge(self, batch: list[tuple[int, str]]) -> Iterator[Outcome]:
        scans = [self.verdict_of(text) for _, text in batch]
        stalled: set[int] = set()
        hits = self._render_finding_stalls(batch, stalled)
        for (case_id, text), scan in zip(batch, scans, strict=True):
            ran = hits.get(case_id, set())
            verdict = "browser-hang" if case_id in stalled else _verdict(scan, ran)
            self.tally.counts[verdict] += 1
            yield Outcome(case_id, verdict, text, scan, ran)

    def _render_finding_stalls(self, cases: list[tuple[int, str]], stalled: set[int]) -> dict[int, set[str]]:
        """Markers that ran; when the engine hangs on a group, its tenths and then its cases are rendered apart
        to find the case it hangs on (rare, and a cost of one guard period each time)."""
        hits = self.browser.render(cases)
        if hits is not None:
            return hits
        if len(cases) == 1:
            stalled.add(cases[0][0])
            return {}
        found: dict[int, set[str]] = {}
        step = max(1, len(cases) // 10)
        for start in range(0, len(cases), step):
            found.update(self._render_finding_stalls(cases[start : start + step], stalled))
        return found

    def close(self) -> None:
        self.browser.close()


def _verdict(scan: Scan, ran: set[str]) -> str:
    if scan.error is not None:
        return "crash"
    if scan.worst >= Severity.HIGH:
        return "rejected-ran" if ran else "rejected-silent"
    return "bypass" if ran else "clean-agrees"
