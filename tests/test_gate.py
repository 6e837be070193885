"""mloops gate against a real MLflow server that sends real, signed registry webhooks: a benign version is
tagged pass, a booby-trapped one fail with a link to its report, an alias set on the failing version is taken
off again, and deliveries without MLflow's signature are refused."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import httpx
import pytest
from corpus.servers import free_port, mlflow_proxied

from mloops.core import Severity
from mloops.mitigations.gate import Gate, Registry, serve

SECRET = "s3cret-for-tests"
REGISTER = """
import os, sys
import mlflow
import numpy as np
from sklearn.linear_model import LogisticRegression

class Booby(mlflow.pyfunc.PythonModel):
    def __reduce__(self):  # loading the model runs a command
        return (os.system, (f"touch {sys.argv[1]}",))

mlflow.sklearn.log_model(LogisticRegression().fit(np.array([[0.0], [1.0]]), [0, 1]), name="model",
                         registered_model_name="benign")
mlflow.pyfunc.log_model(name="model", python_model=Booby(), registered_model_name="booby")
"""
WEBHOOKS = {"MLFLOW_WEBHOOK_ALLOWED_SCHEMES": "http,https", "MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS": "true"}


@pytest.fixture
def registry(tmp_path: Path):
    port, running = mlflow_proxied(tmp_path, env=WEBHOOKS)
    with running:
        yield f"http://127.0.0.1:{port}"


@pytest.fixture
def gate(registry: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", registry)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    service = Gate(Registry(registry), SECRET, str(tmp_path / "reports"), url, Severity.HIGH)
    server = serve(service, "127.0.0.1", port)
    service.start()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield service, url
    server.shutdown()
    server.server_close()


def tags(registry: str, name: str, version: str) -> dict[str, str]:
    return Registry(registry).tags(name, version)


def wait_for_tag(registry: str, name: str, version: str, key: str, seconds: float = 120) -> dict[str, str]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = tags(registry, name, version)
        if key in found:
            return found
        time.sleep(0.3)
    raise AssertionError(f"{name}/{version} never got the tag {key}: {tags(registry, name, version)}")


def mlflow_client(registry: str, cwd: Path, code: str, *arguments: str) -> str:
    """Runs ``code`` with MLflow's own client, as a registry's user would."""
    env = {**os.environ, "MLFLOW_TRACKING_URI": registry}
    done = subprocess.run([sys.executable, "-c", code, *arguments], env=env, capture_output=True, text=True,
                          timeout=300, cwd=cwd)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_the_gate_tags_verdicts_and_takes_an_alias_off_a_failing_version(registry, gate, tmp_path: Path):
    service, url = gate
    mlflow_client(
        registry,
        tmp_path,
        "import sys; from mlflow import MlflowClient; MlflowClient().create_webhook(name='mloops', url=sys.argv[1], "
        "events=['model_version.created', 'model_version_alias.created'], secret=sys.argv[2])",
        f"{url}/webhook",
        SECRET,
    )
    # MLflow's own client loads the model while logging it: the marker says nothing about the gate
    mlflow_client(registry, tmp_path, REGISTER, str(tmp_path / "marker"))

    benign = wait_for_tag(registry, "benign", "1", "mloops.verdict")
    booby = wait_for_tag(registry, "booby", "1", "mloops.verdict")
    assert benign["mloops.verdict"] == "pass" and booby["mloops.verdict"] == "fail"
    assert "critical" in booby["mloops.findings"] and "critical" not in benign["mloops.findings"]
    report = httpx.get(booby["mloops.report"], timeout=10).json()
    assert report["exit_code"] == 1 and any(f["rule_id"] == "MLO101" for f in report["findings"])

    mlflow_client(
        registry,
        tmp_path,
        "from mlflow import MlflowClient; c = MlflowClient(); c.set_registered_model_alias('booby', 'champion', '1'); "
        "c.set_registered_model_alias('benign', 'champion', '1')",
    )
    removed = wait_for_tag(registry, "booby", "1", "mloops.alias_removed")
    assert removed["mloops.alias_removed"] == "alias champion removed: the version's verdict is fail"
    aliases = httpx.get(f"{registry}/api/2.0/mlflow/registered-models/get", params={"name": "booby"}).json()
    assert "aliases" not in aliases["registered_model"]
    service.events.join()
    benign_model = httpx.get(f"{registry}/api/2.0/mlflow/registered-models/get", params={"name": "benign"}).json()
    assert [a["alias"] for a in benign_model["registered_model"]["aliases"]] == ["champion"]


def signed(body: bytes, secret: str = SECRET, stamp: int | None = None, delivery: str | None = None) -> dict:
    delivery = delivery or str(uuid.uuid4())
    stamp_text = str(int(time.time()) if stamp is None else stamp)
    digest = hmac.new(secret.encode(), f"{delivery}.{stamp_text}.".encode() + body, hashlib.sha256).digest()
    return {
        "X-MLflow-Signature": "v1," + base64.b64encode(digest).decode(),
        "X-MLflow-Timestamp": stamp_text,
        "X-MLflow-Delivery-Id": delivery,
    }


def test_unsigned_forged_stale_and_replayed_deliveries_are_refused(tmp_path: Path):
    service = Gate(Registry("http://127.0.0.1:9"), SECRET, str(tmp_path), "http://gate", Severity.HIGH)
    port = free_port()
    server = serve(service, "127.0.0.1", port)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{port}/webhook"
    body = json.dumps({"entity": "model_version", "action": "created", "data": {"name": "m", "version": "1"}}).encode()
    try:
        assert httpx.post(url, content=body).json() == {"error": "unsigned"}
        forged = httpx.post(url, content=body, headers=signed(body, secret="guess"))
        assert forged.status_code == 401 and forged.json() == {"error": "bad signature"}
        tampered = httpx.post(url, content=body.replace(b'"1"', b'"2"'), headers=signed(body))
        assert tampered.status_code == 401
        stale = httpx.post(url, content=body, headers=signed(body, stamp=int(time.time()) - 3600))
        assert stale.json() == {"error": "stale or malformed timestamp"}
        headers = signed(body)
        # the worker is not started: what is queued stays for the test to see
        first = httpx.post(url, content=body, headers=headers)
        assert first.status_code == 202 and service.events.get_nowait().name == "m"
        again = httpx.post(url, content=body, headers=headers)
        assert again.status_code == 401 and again.json() == {"error": "replayed"}
        other = json.dumps({"entity": "model_version_tag", "action": "set", "data": {}}).encode()
        assert httpx.post(url, content=other, headers=signed(other)).status_code == 200
        assert service.events.empty()
        assert httpx.get(f"http://127.0.0.1:{port}/reports/../../etc/passwd").status_code == 404
    finally:
        server.shutdown()
        server.server_close()


def test_the_command_needs_the_secret_and_a_tracking_server(capsys, monkeypatch):
    from mloops.cli import main

    monkeypatch.delenv("MLOOPS_GATE_SECRET", raising=False)
    assert main(["gate", "--mlflow-uri", "http://127.0.0.1:5000"]) == 2
    assert "set MLOOPS_GATE_SECRET" in capsys.readouterr().err
    monkeypatch.setenv("MLOOPS_GATE_SECRET", SECRET)
    assert main(["gate", "--mlflow-uri", "file:///tmp/mlruns"]) == 2
    assert "expected the tracking server's http(s) address" in capsys.readouterr().err
