"""Remote scans measured on 127.0.0.1: a large PyTorch checkpoint served by HTTP range requests, kept in an
MLflow artifact store and in a bucket of s3rver (time, bytes read, against modelaudit on the same URI);
registries of many model versions (artifacts behind MLflow's proxy, and in a bucket of moto's S3 server) and
a bucket of many objects, scanned whole, then again with the result cache.

    python bench/remote_scan.py [--gib 10] [--s3-copies 6] [--versions 200] [--write]

Everything it makes is kept under bench/work/remote (the checkpoint is written once, by torch).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import peers

ROOT = peers.ROOT  # importing peers put the repository root on the path

from bench.peers import PEERS, WORK, measure, scan_report, version_of  # noqa: E402
from bench.sections import BENCHMARKS, replace_section  # noqa: E402
from corpus.range_server import range_server  # noqa: E402
from corpus.scanning import write_fixtures  # noqa: E402
from corpus.servers import BIN, S3_CLIENT, S3_ENV, free_port, mlflow_artifact_root, s3_server, server  # noqa: E402
from corpus.tcp_meter import metered  # noqa: E402

HERE = WORK / "remote"

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


# The same model logged once to an S3 artifact root, then registered again and again, each version from its own
# copy of the files in the bucket, as versions logged one by one would be (log_model alone takes ~10 s here).
REGISTER_IN_STORE = """
import sys
import boto3, mlflow, numpy as np
from mlflow import MlflowClient
from sklearn.linear_model import LogisticRegression
count, name, endpoint = int(sys.argv[1]), sys.argv[2], sys.argv[3]
X, y = np.array([[0.0], [1.0]]), [0, 1]
mlflow.sklearn.log_model(LogisticRegression().fit(X, y), name="model", registered_model_name=name)
client = MlflowClient()
bucket, _, prefix = client.get_model_version_download_uri(name, "1").removeprefix("s3://").partition("/")
s3 = boto3.client("s3", endpoint_url=endpoint)
keys = [item["Key"] for item in s3.list_objects_v2(Bucket=bucket, Prefix=prefix.rstrip("/") + "/")["Contents"]]
for version in range(2, count + 1):
    copy = f"registry/{name}/{version}"
    for key in keys:
        place = f"{copy}/{key.removeprefix(prefix.rstrip('/') + '/')}"
        s3.copy_object(Bucket=bucket, Key=place, CopySource={"Bucket": bucket, "Key": key})
    client.create_model_version(name, f"s3://{bucket}/{copy}")
"""


def checkpoint(gib: int) -> Path:
    path = HERE / f"checkpoint-{gib}gib.pt"
    if not path.exists():
        subprocess.run([sys.executable, "-c", SAVE_CHECKPOINT, str(path), str(gib << 30)], check=True)
    return path


def scan_json(target: str, *extra: str, env: dict[str, str] | None = None) -> tuple[float, dict]:
    return scan_report([target], HERE / "report.json", *extra, env=env)


def verdicts(report: dict) -> list:
    return [(entry["path"], entry.get("findings")) for entry in report["files"]] + [report["findings"]]


def bytes_read(report: dict) -> int:
    return sum(entry.get("remote", {}).get("bytes_read", 0) for entry in report["files"])


def mlflow(folder: Path, port: int, *artifacts: str):
    """An MLflow server whose artifacts are on its own disk behind its proxy, or where ``artifacts`` says."""
    artifacts = artifacts or ("--artifacts-destination", str(folder / "a"))
    command = [
        str(BIN / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "2",
        "--backend-store-uri", f"sqlite:///{folder / 'mlflow.db'}", *artifacts,
    ]  # fmt: skip
    return server(command, f"http://127.0.0.1:{port}/health", folder / "mlflow.log", folder)


def register(uri: str, name: str, count: int) -> None:
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri}
    subprocess.run([sys.executable, "-c", REGISTER, str(count), name], env=env, check=True, capture_output=True)


def version_folder(uri: str, folder: Path, name: str) -> Path:
    """Where the artifact store keeps version 1 of ``name`` (the server's own disk)."""
    return folder / "a" / mlflow_artifact_root(uri, name, "1").removeprefix("mlflow-artifacts:/")


S3RVER = WORK / "s3rver"  # the npm package s3rver, installed here by the first run (needs Node.js and npm)
S3RVER_ENV = {"AWS_ACCESS_KEY_ID": "S3RVER", "AWS_SECRET_ACCESS_KEY": "S3RVER", "AWS_DEFAULT_REGION": "us-east-1"}


def s3rver(folder: Path, port: int, bucket: str):
    """s3rver, an S3 server keeping objects as files and answering a ranged GET by reading that range only."""
    script = S3RVER / "node_modules" / "s3rver" / "bin" / "s3rver.js"
    if not script.exists():
        subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--prefix", str(S3RVER), "s3rver@3.7.1"],
                       check=True, capture_output=True)  # fmt: skip
    command = ["node", str(script), "-d", str(folder), "-a", "127.0.0.1", "-p", str(port), "-s"]
    command += ["--configure-bucket", bucket]
    return server(command, f"http://127.0.0.1:{port}/{bucket}", folder.parent / "s3rver.log", folder.parent)


def big_object_scans(big: Path) -> tuple[list[tuple], str]:
    """The checkpoint in a bucket of s3rver (moto, which the tests use, reads a whole object for every ranged
    GET), scanned by mloops and by modelaudit."""
    folder = HERE / "s3rver" / "data"
    if folder.parent.exists():
        shutil.rmtree(folder.parent)
    folder.mkdir(parents=True)
    port = free_port()
    key = big.name
    with s3rver(folder, port, "bench"), metered(port) as relay:
        os.link(big, folder / "bench" / f"{key}._S3rver_object")  # s3rver's own layout: no 10 GiB upload
        env = {**os.environ, **S3RVER_ENV, "AWS_ENDPOINT_URL_S3": relay.endpoint}
        warm = [sys.executable, "-c", f"import s3fs; print(s3fs.S3FileSystem().info('bench/{key}')['ETag'])"]
        subprocess.run(warm, env=env, check=True, capture_output=True)  # s3rver computes the ETag (MD5) once
        before = relay.downstream
        seconds, report = scan_json(f"s3://bench/{key}", "--no-cache", env=env)
        sent = relay.downstream - before
        (entry,) = report["files"]
        requests = entry["remote"]["requests"]
        peer = measure([str(PEERS / "bin" / "modelaudit"), "scan", "--no-cache", f"s3://bench/{key}"], env_extra=env)
    where = f"s3rver {key} ({requests} requests, {sent:,} B on the wire)"
    audit = (f"modelaudit {version_of('modelaudit')}", f"s3://bench/{key} (exit {peer.exit})", peer.seconds, None)
    rows = [("mloops", where, seconds, bytes_read(report)), audit]
    return rows, f"s3rver {version_of_s3rver()}"


def version_of_s3rver() -> str:
    return json.loads((S3RVER / "node_modules" / "s3rver" / "package.json").read_text())["version"]


def bucket_scans(copies: int) -> list[str]:
    """``copies`` copies of every model fixture in a bucket of moto's S3 server, scanned twice with the cache."""
    import boto3

    folder = HERE / "s3"
    folder.mkdir(exist_ok=True)
    port = free_port()
    with s3_server(folder, port), metered(port) as relay:
        env = {**os.environ, **S3_ENV, "AWS_ENDPOINT_URL_S3": relay.endpoint}
        client = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{port}", **S3_CLIENT)
        client.create_bucket(Bucket="bench")
        fixtures = fixture_folder()
        names = sorted(path.name for path in fixtures.iterdir() if path.is_file())
        for copy in range(copies):
            for name in names:
                client.put_object(Bucket="bench", Key=f"many/{copy}/{name}", Body=(fixtures / name).read_bytes())
        cache = HERE / "cache" / f"s3-{time.strftime('%Y%m%d%H%M%S')}"
        cold, first = scan_json("s3://bench/many/", "--cache-dir", str(cache), env=env)
        before = relay.downstream
        warm, second = scan_json("s3://bench/many/", "--cache-dir", str(cache), env=env)
        listing = relay.downstream - before
    if verdicts(second) != verdicts(first):
        raise SystemExit("the bucket rescan's verdicts differ from the first scan's")
    return [
        f"A bucket of moto's S3 server holding {len(first['files'])} objects ({copies} copies of every model fixture "
        f"of the tests): {cold:.1f} s and {bytes_read(first) / (1 << 20):.1f} MiB read the first time; {warm:.2f} s "
        f"({100 * warm / cold:.0f}% of the first) again with the result cache, which took every verdict from the "
        f"listing's versions ({listing:,} B on the wire, the listing alone).",
    ]


def store_registry_scans(versions: int) -> tuple[int, float, float, int, float]:
    """A registry of ``versions`` versions whose artifacts are in a bucket of moto's S3 server
    (``--no-serve-artifacts``), scanned whole twice with the result cache: objects, first and second scan's
    seconds, bytes read, registering seconds."""
    import boto3

    folder = HERE / f"mlflow-s3-{time.strftime('%Y%m%d%H%M%S')}"
    folder.mkdir()
    store_port, port = free_port(), free_port()
    store = f"http://127.0.0.1:{store_port}"
    uri = f"http://127.0.0.1:{port}"
    with s3_server(folder, store_port):
        boto3.client("s3", endpoint_url=store, **S3_CLIENT).create_bucket(Bucket="mlflow")
        with mlflow(folder, port, "--default-artifact-root", "s3://mlflow/artifacts", "--no-serve-artifacts"):
            env = {**os.environ, **S3_ENV, "MLFLOW_TRACKING_URI": uri, "MLFLOW_S3_ENDPOINT_URL": store}
            started = time.perf_counter()
            command = [sys.executable, "-c", REGISTER_IN_STORE, str(versions), "stored", store]
            subprocess.run(command, env=env, check=True, capture_output=True)
            registering = time.perf_counter() - started
            env = {**os.environ, **S3_ENV, "AWS_ENDPOINT_URL_S3": store}
            cache = ["--cache-dir", str(HERE / "cache" / folder.name)]
            cold, first = scan_json(f"mlflow://{uri.removeprefix('http://')}", *cache, env=env)
            warm, second = scan_json(f"mlflow://{uri.removeprefix('http://')}", *cache, env=env)
    if verdicts(second) != verdicts(first):
        raise SystemExit("the rescan's verdicts differ from the first scan's")
    return len(first["files"]), cold, warm, bytes_read(first), registering


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
    s3_rows, s3_server_name = big_object_scans(big)
    rows += s3_rows
    bucket_note = bucket_scans(args.s3_copies)
    stored_objects, stored_cold, stored_warm, stored_read, stored_registering = store_registry_scans(args.versions)
    lines = [
        "## Remote scans",
        "",
        f"`bench/remote_scan.py` on {time.strftime('%Y-%m-%d')}, everything on 127.0.0.1: a {size / (1 << 30):.1f} GiB "
        "PyTorch checkpoint written by `torch.save` (one float32 tensor), served by HTTP range requests "
        "(`corpus/range_server.py`), kept as a model version's artifact in an MLflow 3 artifact store "
        f"(`--artifacts-destination`, read through the artifact proxy), and kept in a bucket of {s3_server_name} "
        "(an S3 server on Node.js that answers a ranged GET by reading that range of a file), read through s3fs "
        "and a relay that counts the bytes the server sent.",
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
        f"Registries of {args.versions} versions of a scikit-learn model (MLflow's default skops flavour, 5 artifact "
        "files each), scanned whole with `mloops scan mlflow://HOST`, then again with the result cache:",
        "",
        "| artifacts | objects | MiB read | first scan, s | rescan, s | rescan / first |",
        "|---|---|---|---|---|---|",
        f"| behind the artifact proxy (plus the checkpoint above) | {objects} | {cold_mib:.1f} | {cold:.2f} | "
        f"{warm:.2f} | {100 * warm / cold:.0f}% |",
        f"| in a bucket of moto's S3 server (`--no-serve-artifacts`) | {stored_objects} | "
        f"{stored_read / (1 << 20):.1f} | {stored_cold:.2f} | {stored_warm:.2f} | "
        f"{100 * stored_warm / stored_cold:.0f}% |",
        "",
        f"Behind the proxy (logged once, registered {args.versions} times in {registering:.0f} s), each object costs "
        f"its first request on a rescan ({warm_mib:.1f} MiB read): the proxy's listing gives no version, and a cache "
        "trusting the registry's own metadata would miss an artifact rewritten in place through the (often open) "
        "proxy, the ML worm's very step. In a bucket (logged once, then each version registered from its own copy "
        f"of the files, {stored_registering:.0f} s), the store's listing gives every object's version, so a rescan "
        "reads no artifact: it costs the registry's calls (one lookup of the artifact root per version), one "
        "listing per version and the process's start, the same whether the models are kilobytes or gigabytes.",
        "",
        *bucket_note,
    ]
    print("\n".join(lines))
    if args.write:
        BENCHMARKS.write_text(replace_section(BENCHMARKS.read_text(), lines))


if __name__ == "__main__":
    main()
