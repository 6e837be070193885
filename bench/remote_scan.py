"""Remote scans measured on 127.0.0.1: a large PyTorch checkpoint served by HTTP range requests, kept in an
MLflow artifact store and in a bucket of moto's S3 server (time, bytes read, against modelaudit on the same
URI), a registry of many model versions and a bucket of many objects scanned whole, then again with the
result cache.

    python bench/remote_scan.py [--gib 10] [--s3-gib 2] [--versions 200] [--write]

Everything it makes is kept under bench/work/remote (the checkpoint is written once, by torch).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import peers

ROOT = peers.ROOT  # importing peers put the repository root on the path

from bench.peers import PEERS, WORK, measure, version_of  # noqa: E402
from bench.sections import BENCHMARKS, replace_section  # noqa: E402
from corpus.range_server import range_server  # noqa: E402
from corpus.scanning import write_fixtures  # noqa: E402
from corpus.servers import BIN, S3_ENV, free_port, s3_server, server  # noqa: E402
from corpus.tcp_meter import metered  # noqa: E402

HERE = WORK / "remote"
MLOOPS = [sys.executable, "-m", "mloops"]

SAVE_CHECKPOINT = """
import sys, torch
torch.save({"weight": torch.zeros(int(sys.argv[2]) // 4, dtype=torch.float32)}, sys.argv[1])
"""

# One model logged by MLflow's sklearn flavour, then registered as many versions (log_model takes ~10 s here).
REGISTER = """
import sys
import mlflow, numpy as np
from mlflow import MlflowClient
from sklearn.linear_model import LogisticRegression
X, y = np.array([[0.0], [1.0]]), [0, 1]
info = mlflow.sklearn.log_model(LogisticRegression().fit(X, y), name="model", registered_model_name=sys.argv[2])
for _ in range(int(sys.argv[1]) - 1):
    MlflowClient().create_model_version(sys.argv[2], info.model_uri, model_id=info.model_id)
"""


def checkpoint(gib: int) -> Path:
    path = HERE / f"checkpoint-{gib}gib.pt"
    if not path.exists():
        subprocess.run([sys.executable, "-c", SAVE_CHECKPOINT, str(path), str(gib << 30)], check=True)
    return path


def scan_json(target: str, *extra: str, env: dict[str, str] | None = None) -> tuple[float, dict]:
    out = HERE / "report.json"
    started = time.perf_counter()
    result = subprocess.run([*MLOOPS, "scan", target, "--format", "json", "--output", str(out), *extra], env=env)
    seconds = time.perf_counter() - started
    if result.returncode not in (0, 1):
        raise SystemExit(f"mloops scan {target} exited {result.returncode}")
    return seconds, json.loads(out.read_text())


def bytes_read(report: dict) -> int:
    return sum(entry.get("remote", {}).get("bytes_read", 0) for entry in report["files"])


def mlflow(folder: Path, port: int):
    command = [
        str(BIN / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "2",
        "--backend-store-uri", f"sqlite:///{folder / 'mlflow.db'}", "--artifacts-destination", str(folder / "a"),
    ]  # fmt: skip
    return server(command, f"http://127.0.0.1:{port}/health", folder / "mlflow.log", folder)


def register(uri: str, name: str, count: int) -> None:
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri}
    subprocess.run([sys.executable, "-c", REGISTER, str(count), name], env=env, check=True, capture_output=True)


def version_folder(uri: str, folder: Path, name: str) -> Path:
    """Where the artifact store keeps version 1 of ``name`` (the server's own disk)."""
    query = f"{uri}/api/2.0/mlflow/model-versions/get-download-uri?name={name}&version=1"
    import urllib.request

    with urllib.request.urlopen(query) as answer:
        root = json.load(answer)["artifact_uri"].removeprefix("mlflow-artifacts:/")
    return folder / "a" / root


def s3_scans(gib: int, copies: int) -> tuple[list[tuple], list[str]]:
    """The checkpoint of ``gib`` GiB in a bucket (moto reads a whole object for every ranged GET, and holds it in
    memory: bigger objects measure moto), and ``copies`` copies of every model fixture, scanned twice."""
    import boto3

    big = checkpoint(gib)
    folder = HERE / "s3"
    folder.mkdir(exist_ok=True)
    port = free_port()
    rows: list[tuple] = []
    with s3_server(folder, port), metered(port) as relay:
        env = {**os.environ, **S3_ENV, "AWS_ENDPOINT_URL_S3": relay.endpoint}
        os.environ.update(S3_ENV)
        client = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{port}")
        client.create_bucket(Bucket="bench")
        client.upload_file(str(big), "bench", big.name)
        started = time.perf_counter()
        for _ in range(3):
            client.get_object(Bucket="bench", Key=big.name, Range="bytes=0-0")["Body"].read()
        per_get = (time.perf_counter() - started) / 3
        before = relay.downstream
        seconds, report = scan_json(f"s3://bench/{big.name}", "--no-cache", env=env)
        (entry,) = report["files"]
        requests = entry["remote"]["requests"]
        sent = relay.downstream - before
        where = f"moto S3 server, s3://bench/{big.name} ({requests} requests, {sent:,} B on the wire)"
        rows.append(("mloops", where, seconds, bytes_read(report)))
        audit = [str(PEERS / "bin" / "modelaudit"), "scan", "--no-cache", f"s3://bench/{big.name}"]
        peer = measure(audit, env_extra=env)
        rows.append((f"modelaudit {version_of('modelaudit')}", f"s3://bench/{big.name} (exit {peer.exit})",
                     peer.seconds, None))  # fmt: skip
        fixtures = fixture_folder()
        names = sorted(path.name for path in fixtures.iterdir() if path.is_file())
        for copy in range(copies):
            for name in names:
                client.put_object(Bucket="bench", Key=f"many/{copy}/{name}", Body=(fixtures / name).read_bytes())
        cache = HERE / "cache" / f"s3-{time.strftime('%Y%m%d%H%M%S')}"
        cold, first = scan_json("s3://bench/many/", "--cache-dir", str(cache), env=env)
        before = relay.downstream
        warm, _ = scan_json("s3://bench/many/", "--cache-dir", str(cache), env=env)
        listing = relay.downstream - before
    note = [
        f"moto reads the whole {gib} GiB object to answer each ranged GET: {per_get:.2f} s a GET, measured alone. "
        f"The scan sent {requests} requests (the object's metadata, its first block and its last), so moto's reads "
        "are nearly all of the mloops time above.",
        "",
        f"A bucket of {len(first['files'])} objects ({copies} copies of every model fixture of the tests): "
        f"{cold:.1f} s and {bytes_read(first) / (1 << 20):.1f} MiB read the first time; {warm:.2f} s "
        f"({100 * warm / cold:.0f}% of the first) again with the result cache, which took every verdict from the "
        f"listing's ETags ({listing:,} B on the wire, the listing alone).",
    ]
    return rows, note


def fixture_folder() -> Path:
    folder = HERE / "fixtures"
    if not folder.exists():
        folder.mkdir()
        (HERE / "fixture-work").mkdir(exist_ok=True)
        write_fixtures(folder, HERE / "fixture-work")
    return folder


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--gib", type=int, default=10)
    parser.add_argument("--s3-gib", type=int, default=2)
    parser.add_argument("--s3-copies", type=int, default=6)
    parser.add_argument("--versions", type=int, default=200)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    HERE.mkdir(parents=True, exist_ok=True)
    big = checkpoint(args.gib)
    size = big.stat().st_size
    rows = []
    with range_server(HERE) as files:
        url = files.url(f"files/{big.name}")
        seconds, report = scan_json(url, "--no-cache")
        rows.append(("mloops", f"HTTP range requests ({url.split('/files/')[0]})", seconds, bytes_read(report)))
    registry_folder = HERE / f"mlflow-{time.strftime('%Y%m%d%H%M%S')}"
    registry_folder.mkdir()
    port = free_port()
    uri = f"http://127.0.0.1:{port}"
    with mlflow(registry_folder, port):
        register(uri, "big", 1)
        stored = version_folder(uri, registry_folder, "big")
        (stored / "model.skops").unlink()
        os.link(big, stored / "model.pt")  # the artifact store now holds the checkpoint (same disk, no copy)
        env = {**os.environ, "MLFLOW_TRACKING_URI": uri}
        seconds, report = scan_json("models:/big/1", "--no-cache", env=env)
        rows.append(("mloops", "MLflow artifact proxy, models:/big/1", seconds, bytes_read(report)))
        proxy = f"{uri}/api/2.0/mlflow-artifacts/artifacts"  # modelaudit fetches only from allowlisted stores
        audit_env = {"MLFLOW_TRACKING_URI": uri, "MODELAUDIT_MLFLOW_ALLOWED_ARTIFACT_URIS": proxy}
        peer = measure([str(PEERS / "bin" / "modelaudit"), "scan", "--no-cache", "models:/big/1"], env_extra=audit_env)
        rows.append((f"modelaudit {version_of('modelaudit')}", f"models:/big/1 (exit {peer.exit})", peer.seconds, None))
        started = time.perf_counter()
        register(uri, "many", args.versions)
        registering = time.perf_counter() - started
        cache = HERE / "cache"
        host = uri.removeprefix("http://")
        cold, first = scan_json(f"mlflow://{host}", "--cache-dir", str(cache / registry_folder.name))
        warm, second = scan_json(f"mlflow://{host}", "--cache-dir", str(cache / registry_folder.name))
    s3_rows, s3_note = s3_scans(args.s3_gib, args.s3_copies)
    rows += s3_rows
    lines = [
        "## Remote scans",
        "",
        f"`bench/remote_scan.py` on {time.strftime('%Y-%m-%d')}, everything on 127.0.0.1: a {size / (1 << 30):.1f} GiB "
        "PyTorch checkpoint written by `torch.save` (one float32 tensor), served by HTTP range requests "
        "(`corpus/range_server.py`) and kept as a model version's artifact in an MLflow 3 artifact store "
        "(`--artifacts-destination`, read through the artifact proxy); and a "
        f"{args.s3_gib} GiB one in a bucket of moto's S3 server, read through s3fs and a relay that counts the "
        "bytes the server sent.",
        "",
        "| tool | where | seconds | bytes read |",
        "|---|---|---|---|",
    ]
    for tool, where, seconds, read in rows:
        lines.append(f"| {tool} | {where} | {seconds:.2f} | {'-' if read is None else f'{read:,}'} |")
    objects = len(first["files"])
    cold_mib, warm_mib = bytes_read(first) / (1 << 20), bytes_read(second) / (1 << 20)
    lines += [
        "",
        f"A registry of {args.versions} versions of a scikit-learn model (MLflow's default skops flavour, "
        f"5 artifact files each; logged once and registered {args.versions} times in {registering:.0f} s) plus the "
        f"checkpoint above, scanned whole with `mloops scan mlflow://HOST`: {objects} objects, {cold:.1f} s and "
        f"{cold_mib:.1f} MiB read the first time; {warm:.1f} s ({100 * warm / cold:.0f}% of the first) and "
        f"{warm_mib:.1f} MiB again with the result cache, "
        "where each object costs its first request (the ETag) and the registry's listing calls are made again: "
        "the artifact proxy's listing gives no version, and a cache trusting the registry's own metadata would "
        "miss an artifact rewritten in place through the (often open) proxy, the ML worm's very step.",
        "",
        *s3_note,
    ]
    print("\n".join(lines))
    if args.write:
        BENCHMARKS.write_text(replace_section(BENCHMARKS.read_text(), lines))


if __name__ == "__main__":
    main()
