"""Models scanned in a real MLflow registry started on 127.0.0.1: registered through MLflow's own client as a
user would, read back by models:/, an alias, every version, runs:/ and the whole registry (mlflow://), with
artifacts read by range requests through the artifact proxy; basic auth with and without credentials."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import boto3
import pytest
from corpus.scanning import verdict
from corpus.servers import S3_CLIENT, S3_ENV, free_port, mlflow_artifact_root, mlflow_registered, s3_server
from corpus.servers import mlflow_proxied as start

from mloops import scan_path
from mloops.cache import ResultCache
from mloops.core import RemoteResult, Severity
from mloops.limits import Limits

REGISTER = """
import os, sys
import mlflow
import numpy as np
from mlflow import MlflowClient
from sklearn.linear_model import LogisticRegression

marker = sys.argv[1]

class Booby(mlflow.pyfunc.PythonModel):
    def __reduce__(self):  # what an attacker uploads: loading the model runs a command
        return (os.system, (f"touch {marker}",))

X, y = np.array([[0.0], [1.0]]), [0, 1]
for C in (1.0, 0.5):  # two versions of the benign model
    mlflow.sklearn.log_model(LogisticRegression(C=C).fit(X, y), name="model", registered_model_name="benign")
with mlflow.start_run() as run:
    mlflow.pyfunc.log_model(name="model", python_model=Booby(), registered_model_name="booby")
    with open("weights.npy", "wb") as handle:
        np.save(handle, np.zeros(3))
    mlflow.log_artifact("weights.npy", "extra")
MlflowClient().set_registered_model_alias("booby", "champion", "1")
print(run.info.run_id)
"""


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    with mlflow_registered(tmp_path_factory.mktemp("mlflow"), REGISTER) as (uri, printed):
        yield uri, printed.strip().splitlines()[-1]


@pytest.fixture
def tracking(registry, monkeypatch):
    uri, run_id = registry
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    return uri, run_id


def paths(report) -> list[str]:
    return [result.path for result in report.files]


def worst(report) -> Severity:
    return max(f.severity for f in report.findings)


def test_a_benign_version_is_clean_and_a_booby_trapped_one_critical(tracking):
    benign = scan_path("models:/benign/1")
    assert "models:/benign/1/MLmodel" in paths(benign) and worst(benign) < Severity.HIGH
    booby = scan_path("models:/booby/1")
    (pickled,) = [r for r in booby.files if r.path.endswith("python_model.pkl")]
    assert max(f.severity for f in pickled.findings) == Severity.CRITICAL
    assert all(0 < r.bytes_read <= (r.size or 0) + 64 * 1024 for r in booby.files)


def test_an_alias_every_version_and_a_run_path(tracking):
    _, run_id = tracking
    assert paths(scan_path("models:/booby@champion")) == paths(scan_path("models:/booby/1"))
    every = paths(scan_path("models:/benign"))
    assert any(p.startswith("models:/benign/1/") for p in every) and any(
        p.startswith("models:/benign/2/") for p in every
    )
    (weights,) = scan_path(f"runs:/{run_id}/extra").files
    assert weights.path == f"runs:/{run_id}/extra/weights.npy" and weights.assets[0].format == "npy"


def test_the_whole_registry(registry):
    uri, _ = registry
    host = uri.removeprefix("http://")
    report = scan_path(f"mlflow://{host}")
    models = {path.split("/")[3] + "/" + path.split("/")[4] for path in paths(report)}
    assert models == {"benign/1", "benign/2", "booby/1"}
    assert report.exit_code(Severity.HIGH) == 1


def test_the_cli_takes_the_tracking_server_as_an_option(registry):
    uri, _ = registry
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    command = [sys.executable, "-m", "mloops", "scan", "models:/booby/1", "--mlflow-uri", uri, "--format", "json"]
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
    document = json.loads(result.stdout)
    assert result.returncode == 1 and {f["severity"] for f in document["findings"]} >= {"critical"}
    without = subprocess.run(command[:5], capture_output=True, text=True, env=env, timeout=120)
    assert without.returncode == 2 and "MLFLOW_TRACKING_URI" in without.stdout


def test_basic_auth_without_and_with_credentials(tmp_path: Path, monkeypatch):
    password = "a-Long-test-passw0rd"
    env = {"MLFLOW_AUTH_ADMIN_PASSWORD": password, "MLFLOW_FLASK_SERVER_SECRET_KEY": "test-only"}
    port, running = start(tmp_path, "--app-name", "basic-auth", env=env)
    with running:
        monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{port}")
        for name in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_TOKEN"):
            monkeypatch.delenv(name, raising=False)
        (refused,) = scan_path("models:/anything/1").findings
        assert (
            refused.rule.id == "MLO902" and "HTTP 401" in refused.message and "MLFLOW_TRACKING_TOKEN" in refused.message
        )
        monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "admin")
        monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", password)
        (missing,) = scan_path("models:/anything/1").findings  # authenticated: the model does not exist
        assert missing.rule.id == "MLO902" and "HTTP 401" not in missing.message


def test_one_file_of_a_version(tracking):
    (result,) = scan_path("models:/booby/1/python_model.pkl").files
    assert result.path == "models:/booby/1/python_model.pkl"
    assert max(f.severity for f in result.findings) == Severity.CRITICAL


@pytest.fixture(scope="module")
def s3_registry(tmp_path_factory):
    """A registry whose artifact root is a bucket of moto's S3 server (``--no-serve-artifacts``): MLflow's client
    writes the artifacts straight to the store, and mloops reads them there, with their listed ETags."""
    tmp_path = tmp_path_factory.mktemp("mlflow-s3")
    moto_port = free_port()
    with pytest.MonkeyPatch.context() as env, s3_server(tmp_path, moto_port):
        store = f"http://127.0.0.1:{moto_port}"
        boto3.client("s3", endpoint_url=store, **S3_CLIENT).create_bucket(Bucket="mlflow")
        port, running = start(tmp_path, "--default-artifact-root", "s3://mlflow/artifacts", "--no-serve-artifacts")
        with running:
            uri = f"http://127.0.0.1:{port}"
            client_env = {**os.environ, **S3_ENV, "MLFLOW_TRACKING_URI": uri, "MLFLOW_S3_ENDPOINT_URL": store}
            registered = subprocess.run(
                [sys.executable, "-c", REGISTER, str(tmp_path / "marker")],
                cwd=tmp_path, env=client_env, capture_output=True, text=True, timeout=300, check=True,
            )  # fmt: skip
            for key, value in {**S3_ENV, "MLFLOW_TRACKING_URI": uri, "AWS_ENDPOINT_URL_S3": store}.items():
                env.setenv(key, value)
            yield uri, store, registered.stdout.strip().splitlines()[-1]


def test_artifacts_in_an_object_store_are_read_there_with_their_etags(s3_registry):
    booby = scan_path("models:/booby/1")
    (pickled,) = [r for r in booby.files if r.path == "models:/booby/1/python_model.pkl"]
    assert max(f.severity for f in pickled.findings) == Severity.CRITICAL
    assert all(isinstance(r, RemoteResult) and r.version and 0 < r.bytes_read <= r.size for r in booby.files)
    assert paths(scan_path("models:/booby@champion")) == paths(booby)
    benign = scan_path("models:/benign/2")
    assert "models:/benign/2/MLmodel" in paths(benign) and worst(benign) < Severity.HIGH
    (one,) = scan_path("models:/booby/1/python_model.pkl").files
    assert one.path == pickled.path and verdict(one) == verdict(pickled)
    (weights,) = scan_path(f"runs:/{s3_registry[2]}/extra").files
    assert weights.path == f"runs:/{s3_registry[2]}/extra/weights.npy" and weights.assets[0].format == "npy"


def test_the_store_mlflow_s_own_clients_use_is_honoured(s3_registry, monkeypatch):
    """A self-hosted MLflow keeps its artifacts in MinIO or the like and tells its clients where with
    MLFLOW_S3_ENDPOINT_URL: mloops reads there too, before botocore's own settings."""
    _, store, _ = s3_registry
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", f"http://127.0.0.1:{free_port()}")  # nothing listens there
    assert scan_path("models:/booby/1").exit_code(Severity.HIGH) == 2
    monkeypatch.setenv("MLFLOW_S3_ENDPOINT_URL", store)
    assert scan_path("models:/booby/1").exit_code(Severity.HIGH) == 1


def test_a_registry_rescan_from_an_object_store_reads_no_artifact(s3_registry, tmp_path: Path):
    """The rescan costs the registry's listing calls and the store's listings; an artifact rewritten in the bucket
    in between (the ML worm's step) has a new ETag and is read and judged again."""
    uri, store, _ = s3_registry
    target = f"mlflow://{uri.removeprefix('http://')}"
    cache = ResultCache(str(tmp_path / "cache"), Limits())
    first = scan_path(target, cache=cache)
    assert len(first.files) > 10 and first.exit_code(Severity.HIGH) == 1
    again = scan_path(target, cache=cache)
    assert cache.hits == len(first.files) and all(r.requests == 0 for r in again.files)
    assert [verdict(r) for r in again.files] == [verdict(r) for r in first.files]

    (clean,) = [r for r in first.files if r.path.endswith("/benign/1/MLmodel")]
    assert max(f.severity for f in clean.findings) < Severity.HIGH
    payload = {"Bucket": "mlflow", "Key": _key_of("booby", "1", "python_model.pkl")}  # the worm copies its pickle
    boto3.client("s3", endpoint_url=store, **S3_CLIENT).copy_object(
        Bucket="mlflow", Key=_key_of("benign", "1", "MLmodel"), CopySource=payload
    )
    third = {r.path: r for r in scan_path(target, cache=cache).files}
    rewritten = third[clean.path]
    assert rewritten.requests > 0 and max(f.severity for f in rewritten.findings) == Severity.CRITICAL


def _key_of(name: str, version: str, file: str) -> str:
    """The bucket key of a version's file, from where the registry says the version is stored."""
    root = mlflow_artifact_root(os.environ["MLFLOW_TRACKING_URI"], name, version)
    return f"{root.removeprefix('s3://mlflow/').rstrip('/')}/{file}"


def test_a_version_whose_files_are_gone_is_a_finding_and_the_others_are_scanned(s3_registry):
    uri, store, _ = s3_registry
    s3 = boto3.client("s3", endpoint_url=store, **S3_CLIENT)
    prefix = _key_of("benign", "2", "")
    keys = [item["Key"] for item in s3.list_objects_v2(Bucket="mlflow", Prefix=prefix)["Contents"]]
    for key in keys:  # the version's files moved away, as a cleanup job or an attacker's mistake leaves them
        s3.copy_object(Bucket="mlflow", Key=f"moved/{key}", CopySource={"Bucket": "mlflow", "Key": key})
        s3.delete_object(Bucket="mlflow", Key=key)
    try:
        report = scan_path(f"mlflow://{uri.removeprefix('http://')}")
    finally:
        for key in keys:
            s3.copy_object(Bucket="mlflow", Key=key, CopySource={"Bucket": "mlflow", "Key": f"moved/{key}"})
    gone = [r for r in report.files if "/benign/2" in r.path]
    assert [r.path for r in gone] == [f"mlflow://{uri.removeprefix('http://')}/benign/2"]
    (finding,) = gone[0].findings
    assert finding.rule.id == "MLO902" and "no object under this prefix" in finding.message
    assert any(r.path.endswith("/benign/1/MLmodel") for r in report.files)
    assert any(r.path.endswith("/booby/1/python_model.pkl") for r in report.files)
    assert report.exit_code(Severity.HIGH) == 2
