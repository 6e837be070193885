"""s3:// sources against moto's S3 server on 127.0.0.1, reached through a relay that counts every byte the
server sends: verdicts equal the local ones, a multi-GiB checkpoint costs under a MiB, a rescan with the
cache reads only the listing, and failures are one clear line."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
import torch
from corpus.scanning import verdict, write_fixtures
from corpus.servers import S3_ENV, free_port, s3_server
from corpus.tcp_meter import MeteredRelay, metered

from mloops import scan_path
from mloops.cache import ResultCache
from mloops.core import RemoteResult, Severity
from mloops.limits import Limits

MiB, GiB = 1 << 20, 1 << 30
BUCKET = "models"


@pytest.fixture(scope="module")
def fixtures(tmp_path_factory) -> Path:
    return write_fixtures(tmp_path_factory.mktemp("fixtures"), tmp_path_factory.mktemp("work"))


@pytest.fixture(scope="module")
def store(tmp_path_factory, fixtures: Path) -> Iterator[MeteredRelay]:
    """A bucket holding every fixture under fixtures/ and a 2 GiB torch checkpoint, big/model.pt."""
    folder = tmp_path_factory.mktemp("s3")
    port = free_port()
    with pytest.MonkeyPatch.context() as env, s3_server(folder, port), metered(port) as relay:
        for key, value in S3_ENV.items():
            env.setenv(key, value)
        env.setenv("AWS_ENDPOINT_URL_S3", relay.endpoint)
        client = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{port}")
        client.create_bucket(Bucket=BUCKET)
        for path in sorted(fixtures.iterdir()):
            if path.is_file():
                client.put_object(Bucket=BUCKET, Key=f"fixtures/{path.name}", Body=path.read_bytes())
        big = folder / "model.pt"
        torch.save({"weight": torch.zeros(2 * GiB // 4)}, big)
        client.upload_file(str(big), BUCKET, "big/model.pt")
        yield relay


def test_every_fixture_scans_the_same_from_a_bucket_prefix(fixtures: Path, store: MeteredRelay):
    report = scan_path(f"s3://{BUCKET}/fixtures/")
    names = sorted(path.name for path in fixtures.iterdir() if path.is_file())
    assert len(names) > 100 and [r.path for r in report.files] == [f"s3://{BUCKET}/fixtures/{n}" for n in names]
    for name, result in zip(names, report.files, strict=True):
        (local,) = scan_path(str(fixtures / name)).files
        assert isinstance(result, RemoteResult) and result.size == (fixtures / name).stat().st_size
        assert verdict(result) == verdict(local), name
        assert result.version and result.bytes_read <= result.size


def test_a_two_gib_checkpoint_is_judged_from_under_a_mib(store: MeteredRelay, tmp_path: Path):
    before = store.downstream
    report = scan_path(f"s3://{BUCKET}/big/model.pt")
    sent = store.downstream - before  # everything the server sent: listing, metadata, ranges, headers
    (result,) = report.files
    assert result.size > 2 * GiB and sent < MiB and result.bytes_read < sent
    torch.save({"weight": torch.zeros(16)}, tmp_path / "model.pt")  # the same checkpoint, small
    assert [(f.rule.id, f.severity) for f in result.findings] == [
        (f.rule.id, f.severity) for f in scan_path(str(tmp_path / "model.pt")).findings
    ]
    assert max(f.severity for f in result.findings) == Severity.INFO


def test_a_rescan_with_the_cache_reads_only_the_listing(fixtures: Path, store: MeteredRelay, tmp_path: Path):
    cache = ResultCache(str(tmp_path / "cache"), Limits())
    first = scan_path(f"s3://{BUCKET}/fixtures/", cache=cache)
    before = store.downstream
    again = scan_path(f"s3://{BUCKET}/fixtures/", cache=cache)
    listing = store.downstream - before
    assert cache.hits == len(first.files) and all(r.requests == 0 for r in again.files)
    assert [verdict(r) for r in again.files] == [verdict(r) for r in first.files]
    assert listing < sum(r.bytes_read for r in first.files) / 10

    # A clean object rewritten in place with a malicious one has a new ETag: it is read and judged again.
    clean = next(r for r in first.files if max(f.severity for f in r.findings) == Severity.INFO)
    name = clean.path.rsplit("/", 1)[1]
    payload = (fixtures / "os_system.pkl").read_bytes()
    boto3.client("s3").put_object(Bucket=BUCKET, Key=f"fixtures/{name}", Body=payload)
    try:
        third = {r.path: r for r in scan_path(f"s3://{BUCKET}/fixtures/", cache=cache).files}
    finally:
        boto3.client("s3").put_object(Bucket=BUCKET, Key=f"fixtures/{name}", Body=(fixtures / name).read_bytes())
    assert third[clean.path].requests > 0 and max(f.severity for f in third[clean.path].findings) == Severity.CRITICAL


@pytest.mark.parametrize(
    ("target", "said"),
    [
        (f"s3://{BUCKET}/nothing-here/", "no object under this prefix"),
        ("s3://no-such-bucket/model.pkl", "not found"),
    ],
)
def test_store_failures_are_one_clear_finding(store: MeteredRelay, target: str, said: str):
    report = scan_path(target)
    (finding,) = report.findings
    assert finding.rule.id == "MLO902" and said in finding.message and "\n" not in finding.message
    assert report.exit_code(Severity.HIGH) == 2


def test_an_unreachable_store_is_a_finding(monkeypatch: pytest.MonkeyPatch):
    for key, value in S3_ENV.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", f"http://127.0.0.1:{free_port()}")  # nothing listens there
    report = scan_path(f"s3://{BUCKET}/model.pkl")
    (finding,) = report.findings
    assert finding.rule.id == "MLO902" and "\n" not in finding.message and report.exit_code(Severity.HIGH) == 2


def test_a_store_whose_backend_is_not_installed_is_a_usage_error():
    hide = "import sys; sys.modules['gcsfs'] = None; from mloops.cli import main; sys.exit(main(sys.argv[1:]))"
    result = subprocess.run(
        [sys.executable, "-c", hide, "scan", "gs://bucket/model.pkl"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2 and result.stderr.strip().splitlines() == [
        "mloops: error: gs://bucket/model.pkl: reading gs:// needs gcsfs: pip install 'mloops[gcs]'"
    ]


def test_an_object_version_moves_with_every_write():
    """A listing's ETag alone would let a colliding rewrite (an S3 ETag is often the content's MD5) keep a clean
    verdict: the second of the write is part of the version; GCS's generation is one by itself."""
    from datetime import UTC, datetime

    from mloops.sources.remote.objectstore import _version

    written = {"ETag": '"0cc175b9c0f1b6a831c399e269772661"', "LastModified": datetime(2026, 12, 7, 18, tzinfo=UTC)}
    rewritten = {**written, "LastModified": datetime(2026, 12, 7, 18, 0, 1, tzinfo=UTC)}
    assert _version(written) and _version(written) != _version(rewritten)
    assert _version({"ETag": written["ETag"]}) is None  # no time told, nothing kept
    assert _version({"md5Hash": "x", "generation": "17"}) != _version({"md5Hash": "x", "generation": "18"})
