"""The Ray executor against a real Ray cluster on this machine (a head and two one-CPU worker nodes, started
with Ray's own multi-node harness): its report equals the local scan's, through Ray Client and by joining the
cluster, for local files and remote objects alike, and a worker killed mid-scan loses nothing."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from corpus.range_server import RangeServer, range_server
from corpus.scanning import write_fixtures
from corpus.servers import QUIET, free_port, kill_processes_naming

import mloops
import mloops.core

ray_cluster_utils = pytest.importorskip("ray.cluster_utils")

HERMETIC = {**QUIET, "RAY_AUTH_MODE": "disabled"}  # no token of ~/.ray decides how the nodes talk


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    """Every fixture, copied into 12 folders: enough batches that one is running when a worker is killed."""
    first = tmp_path_factory.mktemp("tree") / "copy00"
    first.mkdir()
    write_fixtures(first, tmp_path_factory.mktemp("work"))
    for number in range(1, 12):
        shutil.copytree(first, first.parent / f"copy{number:02d}")
    return first.parent


@pytest.fixture(scope="module")
def served(tree: Path) -> Iterator[RangeServer]:
    with range_server(tree / "copy00") as running:
        yield running


@pytest.fixture(scope="module")
def cluster() -> Iterator[tuple[str, str]]:
    """(the cluster's address, its Ray Client address). One cluster at a time on this machine, whichever xdist
    worker runs this module: Ray Client gives every session a server on the ports from 23000 up, so two clusters'
    sessions collide."""
    client_port = free_port()
    lock_path = Path(tempfile.gettempdir()) / "mloops-ray-cluster.lock"
    with open(lock_path, "w") as lock, pytest.MonkeyPatch.context() as env:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        for key, value in HERMETIC.items():
            env.setenv(key, value)
        nodes = ray_cluster_utils.Cluster(
            initialize_head=True,
            head_node_args={"num_cpus": 0, "include_dashboard": False, "ray_client_server_port": client_port},
        )
        try:
            for _ in range(2):
                nodes.add_node(num_cpus=1)
            nodes.wait_for_nodes()
            yield nodes.address, f"ray://127.0.0.1:{client_port}"
        finally:
            nodes.shutdown()


def scan(targets: list[str], out: Path, *extra: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    command = [sys.executable, "-m", "mloops", "scan", *targets, "--no-cache", "--format", "json", "--output",
               str(out), *extra]  # fmt: skip
    return subprocess.Popen(command, env={**os.environ, **HERMETIC, **(env or {})}, stderr=subprocess.PIPE, text=True)


def report(out: Path) -> dict:
    document = json.loads(out.read_text())
    document["summary"].pop("duration_seconds")
    return document


@pytest.fixture(scope="module")
def local(tree: Path, served: RangeServer, tmp_path_factory) -> tuple[list[str], dict]:
    targets = [str(tree), served.url("files/os_system.pkl"), served.url("files/optimizer.pt")]
    out = tmp_path_factory.mktemp("local") / "local.json"
    assert scan(targets, out, "--jobs", "2").wait(timeout=600) == 1
    return targets, report(out)


def test_ray_client_and_a_joined_driver_write_the_local_report(cluster, local, tmp_path: Path):
    address, client = cluster
    targets, expected = local
    assert len(expected["files"]) > 1000 and any(f["path"].startswith("http://") for f in expected["files"])
    through_client = scan(targets, tmp_path / "client.json", "--executor", client)
    assert through_client.wait(timeout=600) == 1, through_client.stderr.read()[-2000:]
    assert report(tmp_path / "client.json") == expected
    joined = scan(targets, tmp_path / "joined.json", "--executor", "ray", env={"RAY_ADDRESS": address})
    assert joined.wait(timeout=600) == 1, joined.stderr.read()[-2000:]
    assert report(tmp_path / "joined.json") == expected


def test_a_worker_killed_mid_scan_loses_nothing(cluster, local, tmp_path: Path):
    _, client = cluster
    targets, expected = local
    running = scan(targets, tmp_path / "killed.json", "--executor", client)
    killed: list[int] = []
    deadline = time.monotonic() + 300
    while not killed and running.poll() is None and time.monotonic() < deadline:
        killed = kill_processes_naming("ray::scan_batch")  # a worker's title while it runs a batch
        time.sleep(0.02)
    assert killed, "no batch was seen running"
    assert running.wait(timeout=600) == 1, running.stderr.read()[-2000:]
    assert report(tmp_path / "killed.json") == expected  # every file once, each verdict as in the local scan


def test_an_unreachable_cluster_is_one_line_and_exit_2(tmp_path: Path):
    (tmp_path / "model.pkl").write_bytes(b"\x80\x04K\x01.")
    running = scan(
        [str(tmp_path / "model.pkl")], tmp_path / "none.json", "--executor", f"ray://127.0.0.1:{free_port()}"
    )
    assert running.wait(timeout=300) == 2
    lines = running.stderr.read().strip().splitlines()
    assert lines[-1].startswith("mloops: error: cannot reach the Ray cluster ray://127.0.0.1:"), lines[-5:]


def test_a_worker_of_another_mloops_version_refuses_its_batch(tmp_path: Path):
    from mloops.executors.ray_cluster import WrongVersion, scan_batch
    from mloops.limits import Limits

    (tmp_path / "model.pkl").write_bytes(b"\x80\x04K\x01.")
    units = [(str(tmp_path / "model.pkl"), ())]
    assert [r.path for r in scan_batch(units, Limits(), mloops.__version__)] == [str(tmp_path / "model.pkl")]
    with pytest.raises(WrongVersion, match="a Ray worker runs mloops"):
        scan_batch(units, Limits(), "0.0.0-other")


def test_an_unknown_executor_is_a_usage_error(tmp_path: Path):
    with pytest.raises(mloops.core.UsageError, match="expected process, ray or ray://HOST:PORT"):
        mloops.scan_path(str(tmp_path), executor="dask")


class _SessionsDying:
    """Stands in for the ray module: Ray Client's per-session server dies as it starts for the first ``dying``
    sessions (ray-project/ray#63202, seen here in a CI run), a race no test can provoke on demand."""

    def __init__(self, dying: int) -> None:
        self.dying = dying
        self.calls: list[str] = []

    def is_initialized(self) -> bool:
        return False

    def init(self, address: str, **_: object) -> None:
        self.calls.append(address)
        if self.calls.count(address) <= self.dying:
            raise ConnectionError("Initialization failure from server:\npsutil.ZombieProcess: PID still exists")

    def shutdown(self) -> None:
        self.calls.append("shutdown")


@pytest.mark.parametrize(("dying", "connected"), [(1, True), (2, True), (3, False)])
def test_a_ray_client_session_whose_server_died_is_asked_for_again(monkeypatch, dying: int, connected: bool):
    from mloops.executors import ray_cluster

    fake = _SessionsDying(dying)
    monkeypatch.setitem(sys.modules, "ray", fake)
    monkeypatch.setattr(ray_cluster, "SESSION_PAUSE", 0)
    with socket.socket() as listening:
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        address = f"ray://127.0.0.1:{listening.getsockname()[1]}"
        if connected:
            assert ray_cluster._connect(address) is fake
        else:
            with pytest.raises(mloops.core.UsageError, match="Initialization failure from server"):
                ray_cluster._connect(address)
    tries = min(dying + 1, ray_cluster.SESSION_ATTEMPTS)
    assert fake.calls == [address, "shutdown"] * (tries - 1) + [address]
