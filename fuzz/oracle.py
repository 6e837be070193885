"""The differential oracle: mloops' verdict on a case against what the real loaders do with it.

Each case is scanned by mloops in this process (ScanContext and dispatch on an in-memory item, as
``mloops scan`` does for one file). A case whose worst finding is HIGH or above is *rejected*: nobody
should load it, so it needs no real load. Every other case is *claimed clean*, and goes to a worker
forked from the recorder's zygote (fuzz/recorder.py), which loads it with the real unpicklers and
reports everything outside the claim. The verdict per case:

  rejected       mloops reports HIGH or above
  clean-agrees   claimed clean, and the real loads stayed within the claim
  bypass         claimed clean, and a real load did something outside the claim (with its events)
  crash          mloops raised, or reported MLO903 (scanner error)
  hang           mloops did not finish within the hang guard
  load-timeout   claimed clean, and the real loader did not finish (a denial of service, recorded apart)
  load-crash     claimed clean, and the worker died while loading (the C unpickler crashed)
"""

from __future__ import annotations

import contextlib
import io
import json
import marshal
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mloops.context import Item, ScanContext
from mloops.core import Location, Severity
from mloops.limits import Limits
from mloops.picklevm.policy import default_policy
from mloops.scan import dispatch

ROOT = Path(__file__).resolve().parent.parent
VERDICTS = ("rejected", "clean-agrees", "bypass", "crash", "hang", "load-timeout", "load-crash")
HANG_GUARD = 30.0  # seconds mloops may spend on one small case before it counts as hanging
LOAD_GUARD = 20.0  # seconds a worker may take for one case (its own timer stops Python-level loops at 2 s)
BATCH = 64  # claimed-clean cases sent to the worker at once
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")


class ScanHang(BaseException):
    """Raised by the hang guard's timer inside a scan."""


@dataclass
class Scan:
    """mloops' view of one case."""

    findings: list[tuple[str, str, str, dict[str, str]]]  # rule id, severity name, message, evidence
    worst: Severity
    error: str | None = None  # set when mloops crashed or hung
    hung: bool = False

    @property
    def claimed_clean(self) -> bool:
        return self.error is None and self.worst < Severity.HIGH

    def allowed_modules(self) -> list[str]:
        """Every dotted prefix of every name a finding's evidence gives: modules the file names."""
        names: set[str] = set()
        for _, _, _, evidence in self.findings:
            for value in evidence.values():
                for match in _NAME.findall(str(value)):
                    parts = match.split(".")
                    names.update(".".join(parts[:end]) for end in range(1, len(parts) + 1))
        return sorted(names)

    def medium_classes(self) -> list[str]:
        return sorted(
            evidence["global"]
            for rule, severity, _, evidence in self.findings
            if rule == "MLO120" and severity == "MEDIUM" and "global" in evidence
        )


@dataclass
class Outcome:
    case_id: Any
    verdict: str
    scan: Scan
    load: dict[str, Any] | None = None
    data: bytes = b""
    origin: str = ""

    def record(self) -> dict[str, Any]:
        """Everything needed to reproduce and understand the case, as JSON-ready data."""
        return {
            "id": self.case_id,
            "verdict": self.verdict,
            "origin": self.origin,
            "hex": self.data.hex(),
            "mloops": [
                {"rule": rule, "severity": severity, "message": message, "evidence": evidence}
                for rule, severity, message, evidence in self.scan.findings
            ],
            "mloops_error": self.scan.error,
            "load": self.load,
        }


# ------------------------------------------------------------------- scanning


class Scanner:
    """mloops on in-memory bytes, with a hang guard."""

    def __init__(self, limits: Limits | None = None, hang_guard: float = HANG_GUARD) -> None:
        self.limits = limits or Limits()
        self.policy = default_policy()
        self.hang_guard = hang_guard

    def scan(self, data: bytes, name: str = "case.pkl") -> Scan:
        ctx = ScanContext("<case>", self.limits, self.policy, dispatch)
        previous = signal.signal(signal.SIGALRM, _hang)
        signal.setitimer(signal.ITIMER_REAL, self.hang_guard)
        try:
            ctx.scan(Item(io.BytesIO(data), Location("<case>"), len(data), name, 0))
        except ScanHang:
            return Scan([], Severity.CRITICAL, "hang guard expired", hung=True)
        except RecursionError:
            return Scan([("MLO901", "HIGH", "nested too deeply", {})], Severity.HIGH)  # as scan_file reports it
        except Exception as exc:  # noqa: BLE001 - any exception escaping the engine is a crash
            return Scan([], Severity.CRITICAL, f"{type(exc).__name__}: {exc}")
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
        findings = [(f.rule.id, f.severity.name, f.message, dict(f.evidence)) for f in ctx.result.findings]
        worst = max((f.severity for f in ctx.result.findings), default=Severity.INFO)
        crashed = [message for rule, _, message, _ in findings if rule == "MLO903"]
        return Scan(findings, worst, crashed[0] if crashed else None)


def _hang(signum: int, frame: Any) -> None:
    raise ScanHang


# ------------------------------------------------------------------ workers


class Zygote:
    """The recorder's zygote process: preloads the libraries once and forks workers on demand."""

    def __init__(self, full: bool = True, recycle_every: int = 4000) -> None:
        self.folder = tempfile.mkdtemp(prefix="mloops-zygote-")
        self.path = os.path.join(self.folder, "zygote.sock")
        command = [sys.executable, "-m", "fuzz.recorder", "--zygote", self.path, "--recycle-every", str(recycle_every)]
        if not full:
            command.append("--minimal")
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
        env["OMP_NUM_THREADS"] = "1"
        env["PYTHONWARNINGS"] = "ignore"
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, cwd=ROOT)
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if line.strip() != b"ready":
            raise RuntimeError(f"the recorder's zygote did not start: {line!r}")

    def connect(self) -> Worker:
        return Worker(self.path)

    def close(self) -> None:
        if self.process.poll() is None:
            assert self.process.stdin is not None
            self.process.stdin.close()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()  # the zygote this oracle started, by its handle
                self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()
        shutil.rmtree(self.folder, ignore_errors=True)  # the socket, and folders of workers that were killed

    def __enter__(self) -> Zygote:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class WorkerGone(Exception):
    """The worker closed the connection or stopped answering."""


class Worker:
    """One forked worker: takes batches of cases, answers one result per case."""

    def __init__(self, path: str) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(LOAD_GUARD * 3)
        self.sock.connect(path)
        hello = self._read()
        self.pid = int(hello["pid"])
        self.sock.settimeout(LOAD_GUARD)
        self.cases = 0

    def send(self, cases: list[tuple[Any, bytes, list[str], list[str]]], strict: bool = False) -> None:
        payload = marshal.dumps({"cases": [(i, d, tuple(m), tuple(c)) for i, d, m, c in cases], "strict": strict})
        self.sock.sendall(struct.pack("<I", len(payload)) + payload)

    def results(self, count: int) -> Iterator[dict[str, Any]]:
        """Up to ``count`` results; stops early when the worker recycles itself (after that result)."""
        for _ in range(count):
            result = self._read()
            self.cases += 1
            yield result
            if result.get("recycle"):
                return
        done = self._read()
        if done.get("batch") != "done":
            raise WorkerGone(f"unexpected message {done!r}")

    def _read(self) -> dict[str, Any]:
        try:
            head = self._exact(4)
            return json.loads(self._exact(struct.unpack("<I", head)[0]))
        except (TimeoutError, OSError, ValueError) as exc:
            raise WorkerGone(str(exc) or type(exc).__name__) from None

    def _exact(self, size: int) -> bytes:
        chunks = []
        while size:
            chunk = self.sock.recv(min(size, 1 << 20))
            if not chunk:
                raise WorkerGone("connection closed")
            chunks.append(chunk)
            size -= len(chunk)
        return b"".join(chunks)

    def kill(self) -> None:
        with contextlib.suppress(OSError):
            os.kill(self.pid, signal.SIGKILL)  # a worker this oracle's zygote forked, by its id
        self.close()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()


# ------------------------------------------------------------------- oracle


@dataclass
class Tally:
    counts: Counter = field(default_factory=Counter)
    loaded: int = 0
    recycles: Counter = field(default_factory=Counter)
    notes: Counter = field(default_factory=Counter)
    started: float = field(default_factory=time.perf_counter)

    @property
    def cases(self) -> int:
        return sum(self.counts.values())

    def merge(self, other: Tally) -> None:
        self.counts.update(other.counts)
        self.loaded += other.loaded
        self.recycles.update(other.recycles)
        self.notes.update(other.notes)

    def summary(self, elapsed: float | None = None) -> dict[str, Any]:
        elapsed = elapsed if elapsed is not None else time.perf_counter() - self.started
        claimed = self.cases - self.counts["rejected"] - self.counts["crash"] - self.counts["hang"]
        return {
            "cases": self.cases,
            "seconds": round(elapsed, 1),
            "cases_per_second": round(self.cases / elapsed, 1) if elapsed else 0.0,
            "verdicts": {v: self.counts[v] for v in VERDICTS},
            "claimed_clean": claimed,
            "claimed_clean_share": round(claimed / self.cases, 4) if self.cases else 0.0,
            "really_loaded": self.loaded,
            "worker_recycles": dict(self.recycles),
            "notes": dict(self.notes.most_common(12)),
        }


class Oracle:
    """Scans cases, loads the claimed-clean ones in workers, and gives each its verdict."""

    def __init__(
        self, zygote: Zygote, scanner: Scanner | None = None, batch: int = BATCH, load_guard: float = LOAD_GUARD
    ) -> None:
        self.zygote = zygote
        self.scanner = scanner or Scanner()
        self.batch = batch
        self.load_guard = load_guard
        self.worker: Worker | None = None
        self.tally = Tally()

    def close(self) -> None:
        if self.worker is not None:
            self.worker.close()
            self.worker = None

    def run(self, cases: Iterable[tuple[Any, bytes, str]]) -> Iterator[Outcome]:
        """Verdicts for (id, bytes, origin) cases, in batches; yields every outcome."""
        pending: list[tuple[Any, bytes, str, Scan]] = []
        for case_id, data, origin in cases:
            scan = self.scanner.scan(data)
            if scan.claimed_clean:
                pending.append((case_id, data, origin, scan))
                if len(pending) >= self.batch:
                    yield from self._load(pending)
                    pending = []
                continue
            verdict = "hang" if scan.hung else "crash" if scan.error is not None else "rejected"
            self.tally.counts[verdict] += 1
            yield Outcome(case_id, verdict, scan, None, data, origin)
        if pending:
            yield from self._load(pending)

    def check(self, data: bytes, case_id: Any = 0, origin: str = "") -> Outcome:
        return next(iter(self.run([(case_id, data, origin)])))

    def force_load(self, data: bytes, modules: list[str] | None = None, medium: list[str] | None = None) -> dict:
        """Load a case in a worker whatever mloops says of it (to prove the recorder sees known-bad cases)."""
        scan = Scan([], Severity.INFO)
        results = self._run_batch([("forced", data, "forced", scan)], modules, medium)
        return results["forced"]

    # -------------------------------------------------------------- loading

    def _load(self, pending: list[tuple[Any, bytes, str, Scan]]) -> Iterator[Outcome]:
        results = self._run_batch(pending)
        suspects = [case_id for result in results.values() for case_id in result.get("sweep", {}).get("cases", [])]
        if suspects:
            results.update(self._strict(pending, set(suspects)))
        for case_id, data, origin, scan in pending:
            result = results[case_id]
            verdict = _verdict(result)
            self.tally.counts[verdict] += 1
            for note in result.get("notes", ()):
                self.tally.notes[note["kind"]] += 1
            yield Outcome(case_id, verdict, scan, result, data, origin)

    def _strict(self, pending: list[tuple[Any, bytes, str, Scan]], suspects: set[Any]) -> dict[Any, dict]:
        """Re-run the cases between two module fingerprints one by one, each fingerprinted, to find the culprit."""
        out = {}
        for case in pending:
            if case[0] not in suspects:
                continue
            result = self._run_batch([case], strict=True)[case[0]]
            if "sweep" in result:
                changed = ", ".join(result["sweep"]["modules"])
                if result["sweep"].get("imported"):  # importing a module the claim allows changed others
                    result.setdefault("notes", []).append({"kind": "import-side-effect", "what": changed, "run": "?"})
                else:
                    result.setdefault("violations", []).append(
                        {"kind": "mutation", "what": changed, "detail": "module namespaces changed (sweep)", "run": "?"}
                    )
            out[case[0]] = result
        return out

    def _run_batch(
        self,
        pending: list[tuple[Any, bytes, str, Scan]],
        modules: list[str] | None = None,
        medium: list[str] | None = None,
        strict: bool = False,
    ) -> dict[Any, dict[str, Any]]:
        results: dict[Any, dict[str, Any]] = {}
        todo = [
            (
                case_id,
                data,
                modules if modules is not None else scan.allowed_modules(),
                medium if medium is not None else scan.medium_classes(),
            )
            for case_id, data, _, scan in pending
        ]
        while todo:
            try:
                # Connecting and sending fail too when a worker dies between batches: the case is a loader crash.
                worker = self._worker()
                worker.send(todo, strict)
                for result in worker.results(len(todo)):
                    results[result["id"]] = result
                    self.tally.loaded += 1
                    if result.get("recycle"):
                        self.tally.recycles[result["recycle"]] += 1
                        self._drop_worker()
            except (WorkerGone, OSError) as exc:
                stuck = next(case for case in todo if case[0] not in results)
                timed_out = isinstance(exc.__context__, TimeoutError) or "timed out" in str(exc)
                results[stuck[0]] = {
                    "id": stuck[0],
                    "violations": [],
                    "notes": [],
                    "worker": "timeout" if timed_out else f"died: {exc}",
                }
                self.tally.recycles["worker-lost"] += 1
                if self.worker is not None:
                    self.worker.kill()
                    self.worker = None
            todo = [case for case in todo if case[0] not in results]
        return results

    def _worker(self) -> Worker:
        if self.worker is None:
            self.worker = self.zygote.connect()
            self.worker.sock.settimeout(self.load_guard)
        return self.worker

    def _drop_worker(self) -> None:
        if self.worker is not None:
            self.worker.close()
            self.worker = None


def _verdict(result: dict[str, Any]) -> str:
    if result.get("violations"):
        return "bypass"
    worker = result.get("worker")
    if worker == "timeout" or "timeout" in (result.get("py"), result.get("c")):
        return "load-timeout"
    if worker:
        return "load-crash"
    return "clean-agrees"


def write_case(folder: Path, outcome: Outcome) -> Path:
    """One JSON file per interesting case: the bytes, mloops' findings and the recorded events."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{outcome.verdict}-{outcome.case_id}.json"
    path.write_text(json.dumps(outcome.record(), indent=1, default=str), encoding="utf-8")
    return path


# ------------------------------------------------------------------ campaigns


class ZygoteAddress:
    """A running zygote, reached by its socket path (from a campaign's shard processes)."""

    def __init__(self, path: str) -> None:
        self.path = path

    def connect(self) -> Worker:
        return Worker(self.path)


INTERESTING = frozenset({"bypass", "crash", "hang", "load-crash"})


def is_mutant(seed: int, index: int, share: float) -> bool:
    """Whether case ``index`` is a mutant: a fixed function of (seed, index)."""
    return ((index * 2654435761 + seed * 40503) % 10007) < share * 10007


def campaign_cases(
    seed: int,
    count: int,
    shard: int = 0,
    shards: int = 1,
    seeds: dict[str, bytes] | None = None,
    mutant_share: float = 0.0,
    start: int = 0,
) -> Iterator[tuple[int, bytes, str]]:
    """Cases start..count-1 of a campaign (every ``shards``-th from ``shard``): generated or mutated."""
    from .generator import Generator
    from .mutate import Mutator

    generator = Generator(seed)
    mutator = Mutator(seeds, seed) if seeds and mutant_share > 0 else None
    for index in range(start + shard, count, shards):
        if mutator is not None and is_mutant(seed, index, mutant_share):
            data, origin = mutator.case(index)
        else:
            data, origin = generator.case(index)
        yield index, data, origin


def signature(outcome_record: dict[str, Any]) -> str:
    """A short class label for a bypass: its violations' kinds and what they were, without arguments."""
    load = outcome_record.get("load") or {}
    parts = sorted({f"{v['kind']}:{v['what'].split('(')[0]}" for v in load.get("violations", [])})
    if parts:
        return " | ".join(parts[:4])
    return outcome_record.get("mloops_error") or load.get("worker") or outcome_record["verdict"]


def run_shard(
    address: str,
    seed: int,
    count: int,
    shard: int,
    shards: int,
    seeds: dict[str, bytes] | None,
    mutant_share: float,
    queue: Any,
    start: int = 0,
    every: float = 5.0,
) -> None:
    """One shard of a campaign, in its own process: reports interesting cases and its tally to ``queue``."""
    oracle = Oracle(ZygoteAddress(address))  # type: ignore[arg-type]
    last = time.perf_counter()
    sent = Tally()
    try:
        for outcome in oracle.run(campaign_cases(seed, count, shard, shards, seeds, mutant_share, start)):
            if outcome.verdict in INTERESTING:
                queue.put(("case", outcome.record()))
            now = time.perf_counter()
            if now - last >= every:
                queue.put(("tally", _delta(oracle.tally, sent)))
                last = now
    finally:
        oracle.close()
        queue.put(("tally", _delta(oracle.tally, sent)))
        queue.put(("done", shard))


def _delta(tally: Tally, sent: Tally) -> Tally:
    """What ``tally`` gained since the last report (recorded in ``sent``)."""
    delta = Tally()
    delta.counts = tally.counts - sent.counts
    delta.loaded = tally.loaded - sent.loaded
    delta.recycles = tally.recycles - sent.recycles
    delta.notes = tally.notes - sent.notes
    sent.merge(delta)
    return delta
