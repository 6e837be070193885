"""A registry gate for MLflow: a small service that receives the model registry's webhooks, scans each new
model version where MLflow keeps it (the ``models:/`` source), tags the version with its verdict and a link to
its report, and takes an alias off again when it was set on a version that failed (or could not be scanned).

Only signed deliveries are taken: MLflow signs each one with the webhook's secret (HMAC-SHA256 over the
delivery id, its timestamp and the body); an unsigned, forged, stale or replayed delivery is refused with 401.
The payload only names the version: everything judged is read from the registry itself.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import queue
import sys
import threading
import time
import urllib.parse
from collections import OrderedDict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, NamedTuple

import httpx

from ..core import Severity
from ..reporters import reporter
from ..scan import scan_path
from ..sources.remote.mlflow import credential_headers

SIGNATURE_HEADER = "X-MLflow-Signature"
TIMESTAMP_HEADER = "X-MLflow-Timestamp"
DELIVERY_HEADER = "X-MLflow-Delivery-Id"
SECRET_VARIABLE = "MLOOPS_GATE_SECRET"
MAX_BODY = 1 << 20  # a registry event is a few hundred bytes
MAX_SKEW = 300  # seconds a delivery's timestamp may be off: older ones are replays
REMEMBERED = 10_000  # delivery ids kept to refuse a replay within the window
VERDICT, FINDINGS, REPORT, ALIAS_REMOVED = "mloops.verdict", "mloops.findings", "mloops.report", "mloops.alias_removed"


class Event(NamedTuple):
    kind: str  # "model_version.created" or "model_version_alias.created"
    name: str
    version: str
    alias: str = ""


class Registry:
    """The MLflow REST calls the gate makes: read a version's tags, set a tag, delete an alias."""

    def __init__(self, base: str, timeout: float = 30.0) -> None:
        self.base = base.rstrip("/")
        self.client = httpx.Client(
            base_url=f"{self.base}/api/2.0/mlflow/", headers=credential_headers(), timeout=timeout
        )

    def tags(self, name: str, version: str) -> dict[str, str]:
        answer = self.client.get("model-versions/get", params={"name": name, "version": version})
        answer.raise_for_status()
        found = answer.json().get("model_version", {}).get("tags", [])
        return {tag["key"]: tag.get("value", "") for tag in found}

    def set_tag(self, name: str, version: str, key: str, value: str) -> None:
        body = {"name": name, "version": version, "key": key, "value": value}
        self.client.post("model-versions/set-tag", json=body).raise_for_status()

    def delete_alias(self, name: str, alias: str) -> None:
        self.client.request("DELETE", "registered-models/alias", json={"name": name, "alias": alias}).raise_for_status()


class Gate:
    def __init__(self, registry: Registry, secret: str, reports: str, public_url: str, fail_on: Severity) -> None:
        self.registry = registry
        self.secret = secret.encode()
        self.reports = reports
        self.public_url = public_url.rstrip("/")
        self.fail_on = fail_on
        self.events: queue.Queue[Event] = queue.Queue()
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._lock = threading.Lock()

    def refusal(self, headers: Any, body: bytes, now: float | None = None) -> str | None:
        """Why a delivery is refused (unsigned, forged, stale, replayed), or None when MLflow signed it."""
        signature, stamp, delivery = (headers.get(h) for h in (SIGNATURE_HEADER, TIMESTAMP_HEADER, DELIVERY_HEADER))
        if not (signature and stamp and delivery):
            return "unsigned"
        if not stamp.isdigit() or abs((now or time.time()) - int(stamp)) > MAX_SKEW:
            return "stale or malformed timestamp"
        signed = f"{delivery}.{stamp}.".encode() + body
        expected = "v1," + base64.b64encode(hmac.new(self.secret, signed, hashlib.sha256).digest()).decode()
        if not hmac.compare_digest(expected.encode(), signature.encode()):
            return "bad signature"
        with self._lock:
            if delivery in self._seen:
                return "replayed"
            self._seen[delivery] = None
            if len(self._seen) > REMEMBERED:
                self._seen.popitem(last=False)
        return None

    def accept(self, body: bytes) -> Event | None:
        """The event a signed delivery names, queued for the worker; None for events the gate does not act on."""
        payload = json.loads(body)
        kind = f"{payload.get('entity')}.{payload.get('action')}"
        data = payload.get("data") or {}
        if kind not in ("model_version.created", "model_version_alias.created"):
            return None
        event = Event(kind, str(data["name"]), str(data["version"]), str(data.get("alias", "")))
        self.events.put(event)
        return event

    def start(self) -> None:
        threading.Thread(target=self._work, daemon=True, name="mloops-gate-worker").start()

    def _work(self) -> None:
        """Handles queued events one at a time, in the order MLflow sent them (a version is judged before an
        alias set on it right after)."""
        while True:
            event = self.events.get()
            try:
                if event.kind == "model_version.created":
                    self.judge(event.name, event.version)
                else:
                    self.gate_alias(event)
            except (httpx.HTTPError, OSError, ValueError) as exc:
                print(f"mloops gate: {event.kind} {event.name}/{event.version}: {exc}", file=sys.stderr)
            finally:
                self.events.task_done()

    def judge(self, name: str, version: str) -> str:
        """Scans the version, keeps its report, tags the version; returns the verdict."""
        report = scan_path(f"models:/{name}/{version}")
        code = report.exit_code(self.fail_on)
        verdict = {0: "pass", 1: "fail"}.get(code, "error")
        quoted = urllib.parse.quote(name, safe="")
        folder = os.path.join(self.reports, quoted)
        os.makedirs(folder, exist_ok=True)
        with open(os.path.join(folder, f"{version}.json"), "w", encoding="utf-8") as handle:
            handle.write(reporter("json")(report, self.fail_on))
        counts = ", ".join(f"{count} {sev.label}" for sev, count in report.counts().items() if count and sev)
        self.registry.set_tag(name, version, VERDICT, verdict)
        self.registry.set_tag(name, version, FINDINGS, counts or "none above info")
        self.registry.set_tag(name, version, REPORT, f"{self.public_url}/reports/{quoted}/{version}.json")
        print(f"mloops gate: {name}/{version}: {verdict} ({counts or 'none above info'})", file=sys.stderr)
        return verdict

    def gate_alias(self, event: Event) -> None:
        """An alias on a version that did not pass (or was never judged, and fails now) is removed again."""
        verdict = self.registry.tags(event.name, event.version).get(VERDICT) or self.judge(event.name, event.version)
        if verdict == "pass":
            return
        self.registry.delete_alias(event.name, event.alias)
        note = f"alias {event.alias} removed: the version's verdict is {verdict}"
        self.registry.set_tag(event.name, event.version, ALIAS_REMOVED, note)
        print(f"mloops gate: {event.name}/{event.version}: {note}", file=sys.stderr)


def serve(gate: Gate, host: str, port: int) -> ThreadingHTTPServer:
    """The gate's HTTP server, not yet serving: POST /webhook queues signed deliveries for the worker
    (``Gate.start``), GET /reports/NAME/VERSION.json gives reports, GET /health answers ok."""
    return ThreadingHTTPServer((host, port), _handler(gate))


def _handler(gate: Gate) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "mloops-gate"

        def do_POST(self) -> None:
            if self.path != "/webhook":
                return self._answer(404, {"error": "not found"})
            length = int(self.headers.get("Content-Length") or 0)
            if not 0 < length <= MAX_BODY:
                return self._answer(413 if length else 411, {"error": "body missing or too large"})
            body = self.rfile.read(length)
            refused = gate.refusal(self.headers, body)
            if refused:
                print(f"mloops gate: refused a delivery from {self.client_address[0]}: {refused}", file=sys.stderr)
                return self._answer(401, {"error": refused})
            try:
                event = gate.accept(body)
            except (ValueError, KeyError, TypeError, AttributeError):
                return self._answer(400, {"error": "not a model registry event"})
            self._answer(202 if event else 200, {"queued": event._asdict() if event else None})

        def do_GET(self) -> None:
            if self.path == "/health":
                return self._answer(200, {"status": "ok"})
            parts = self.path.split("/")
            if len(parts) == 4 and parts[1] == "reports" and parts[3].endswith(".json") and ".." not in self.path:
                path = os.path.join(gate.reports, parts[2], parts[3])
                if os.path.isfile(path):
                    with open(path, "rb") as handle:
                        return self._send(200, handle.read())
            self._answer(404, {"error": "not found"})

        def _answer(self, status: int, body: dict[str, Any]) -> None:
            self._send(status, json.dumps(body).encode())

        def _send(self, status: int, data: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # the gate logs what it decides, not every request

    return Handler
