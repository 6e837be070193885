"""Remote scans over HTTP range requests, against a file server on 127.0.0.1: the verdict equals the local one
for every fixture, only the bytes a verdict needs are read, and every remote failure is one clear finding."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from corpus.range_server import RangeServer, range_server
from corpus.scanning import verdict, write_fixtures
from safetensors.numpy import save_file

from mloops import scan_path
from mloops.core import RemoteResult, Severity, UsageError
from mloops.sources.remote.http import get_json
from mloops.sources.remote.interface import RemoteError

MiB = 1 << 20


@pytest.fixture(scope="module")
def fixtures(tmp_path_factory) -> Path:
    return write_fixtures(tmp_path_factory.mktemp("served"), tmp_path_factory.mktemp("work"))


@pytest.fixture(scope="module")
def server(fixtures: Path):
    with range_server(fixtures) as running:
        yield running


def test_every_fixture_scans_the_same_remotely_as_locally(fixtures: Path, server: RangeServer):
    names = sorted(path.name for path in fixtures.iterdir() if path.is_file())
    assert len(names) > 100
    for name in names:
        local = scan_path(str(fixtures / name))
        remote = scan_path(server.url(f"files/{name}"))
        assert verdict(remote) == verdict(local), name
        (result,) = remote.files
        assert isinstance(result, RemoteResult) and result.size == (fixtures / name).stat().st_size
        assert [a.format for a in result.assets] == [a.format for a in local.files[0].assets], name


def test_a_large_checkpoint_is_judged_from_its_directory_and_pickle(tmp_path: Path):
    torch.save({"weight": torch.zeros(16 * MiB)}, tmp_path / "big.pt")  # 16 Mi floats: a 64 MiB ZIP checkpoint
    size = (tmp_path / "big.pt").stat().st_size
    with range_server(tmp_path) as server:
        remote = scan_path(server.url("files/big.pt"))
        sent = server.sent["/files/big.pt"]
    (result,) = remote.files
    assert size > 60 * MiB and result.bytes_read < MiB and sent == result.bytes_read
    assert verdict(remote) == verdict(scan_path(str(tmp_path / "big.pt")))
    assert max(f.severity for f in remote.findings) == Severity.INFO


def test_a_large_safetensors_file_costs_its_header(tmp_path: Path):
    save_file({f"t{i}": np.zeros(MiB, dtype=np.float32) for i in range(8)}, str(tmp_path / "w.safetensors"))
    with range_server(tmp_path) as server:
        (result,) = scan_path(server.url("files/w.safetensors")).files
    assert result.size > 32 * MiB and result.bytes_read <= 64 * 1024 and result.requests <= 2
    assert result.version and [f.rule.id for f in result.findings] == ["MLO001"]


@pytest.mark.parametrize(
    ("path", "said"),
    [
        ("files/missing.pkl", "not found (HTTP 404)"),
        ("private/model.pkl", "asks for credentials or refuses them (HTTP 401)"),
        ("norange/model.pkl", "does not serve byte ranges (HTTP 200)"),
        ("liar/model.pkl", "the server sent 5 bytes for a range of"),  # it claimed a terabyte
    ],
)
def test_remote_failures_are_one_clear_finding_and_exit_2(tmp_path: Path, path: str, said: str):
    (tmp_path / "model.pkl").write_bytes(b"\x80\x04K\x01.")
    with range_server(tmp_path) as server:
        report = scan_path(server.url(path))
    (finding,) = report.findings
    assert finding.rule.id == "MLO902" and said in finding.message and "\n" not in finding.message
    assert report.exit_code(Severity.HIGH) == 2


def test_a_rate_limited_object_is_read_after_its_retry_after(tmp_path: Path):
    (tmp_path / "model.pkl").write_bytes(pickle.dumps([1, 2], protocol=4))
    with range_server(tmp_path) as server:
        report = scan_path(server.url("busy/model.pkl"))
    assert [f.rule.id for f in report.findings] == ["MLO100"]


def test_an_unreachable_server_is_a_finding():
    with range_server(Path(".")) as server:
        url = server.url("files/model.pkl")
    (finding,) = scan_path(url).findings  # the server is gone: nothing listens on the port
    assert finding.rule.id == "MLO902" and "unreachable" in finding.message


def test_a_store_mloops_cannot_read_is_a_usage_error():
    with pytest.raises(UsageError, match="no remote store of this kind"):
        scan_path("ftp://example.invalid/model.pkl")


def test_the_cli_reports_what_a_remote_scan_read(fixtures: Path, server: RangeServer):
    url = server.url("files/os_system.pkl")
    command = [sys.executable, "-m", "mloops", "scan", url, "--format", "json"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    document = json.loads(result.stdout)
    (entry,) = document["files"]
    size = (fixtures / "os_system.pkl").stat().st_size
    assert result.returncode == 1 and entry["path"] == url and entry["max_severity"] == "critical"
    assert entry["remote"]["size"] == size and 0 < entry["remote"]["bytes_read"] <= size


def test_an_empty_object_scans_like_an_empty_file(tmp_path: Path):
    (tmp_path / "empty.pkl").write_bytes(b"")
    with range_server(tmp_path) as server:
        remote = scan_path(server.url("files/empty.pkl"))
    assert verdict(remote) == verdict(scan_path(str(tmp_path / "empty.pkl"))) != []
    assert remote.files[0].size == 0


def test_a_rate_limited_store_api_is_asked_again_after_its_retry_after(tmp_path: Path):
    (tmp_path / "listing.json").write_text('{"files": []}')
    with range_server(tmp_path) as server:
        document, _ = get_json(server.url("busy/listing.json"), {}, 10.0)
        assert document == {"files": []} and "/busy/listing.json" in server.busy_seen
        with pytest.raises(RemoteError, match=r"not found \(HTTP 404\)"):
            get_json(server.url("files/missing.json"), {}, 10.0)
