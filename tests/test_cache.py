"""The result cache: an unchanged file or remote object is not read again, and any change to the file, the
limits, or mloops' code, rules and allowlists is a miss. What a cached scan reports equals a fresh scan."""

from __future__ import annotations

import json
import os
import pickle
import time
from pathlib import Path

import pytest
from corpus import malicious
from corpus.range_server import range_server

from mloops import cache as cache_module
from mloops import scan_path
from mloops.cache import ResultCache
from mloops.core import Report, Severity
from mloops.limits import Limits
from mloops.reporters import reporter


def stable(report: Report) -> dict:
    document = json.loads(reporter("json")(report, Severity.HIGH))
    document["summary"].pop("duration_seconds")
    for entry in document["files"]:
        entry.pop("remote", None)  # what this scan read of a remote object differs by design
    return document


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    folder = tmp_path / "models"
    folder.mkdir()
    for case in malicious.ALL[:20]:
        malicious.write(case, folder, tmp_path, tmp_path / "marker", companions_to=tmp_path)
    (folder / "notes.txt").write_text("not a model")
    return folder


def test_a_rescan_of_an_unchanged_tree_reads_no_file_and_reports_the_same(tree: Path, tmp_path: Path):
    cache = ResultCache(str(tmp_path / "cache"), Limits())
    first = scan_path(str(tree), cache=cache)
    assert cache.hits == 0
    again = ResultCache(str(tmp_path / "cache"), Limits())
    second = scan_path(str(tree), cache=again)
    assert again.hits == len(first.files) > 20
    assert stable(second) == stable(first) == stable(scan_path(str(tree)))


def test_a_changed_file_or_other_limits_miss(tree: Path, tmp_path: Path):
    folder = str(tmp_path / "cache")
    scan_path(str(tree), cache=ResultCache(folder, Limits()))
    changed = sorted(tree.iterdir())[0]
    changed.write_bytes(changed.read_bytes() + b"\x00")
    after_edit = ResultCache(folder, Limits())
    scan_path(str(tree), cache=after_edit)
    assert after_edit.hits == len(list(tree.iterdir())) - 1
    other_limits = ResultCache(folder, Limits(max_findings_per_rule=3))
    scan_path(str(tree), cache=other_limits)
    assert other_limits.hits == 0


def test_new_rules_or_allowlists_miss(tree: Path, tmp_path: Path, monkeypatch):
    folder = str(tmp_path / "cache")
    scan_path(str(tree), cache=ResultCache(folder, Limits()))
    data = Path(cache_module.PACKAGE) / "data" / "keras.toml"
    before = cache_module.package_fingerprint.__wrapped__()
    meta = data.stat()
    try:
        os.utime(data, ns=(meta.st_atime_ns, meta.st_mtime_ns + 1_000_000_000))  # an edited allowlist
        assert cache_module.package_fingerprint.__wrapped__() != before
    finally:
        os.utime(data, ns=(meta.st_atime_ns, meta.st_mtime_ns))
    monkeypatch.setattr(cache_module, "package_fingerprint", lambda: "other rules")
    edited = ResultCache(folder, Limits())
    scan_path(str(tree), cache=edited)
    assert edited.hits == 0


def test_a_damaged_entry_is_a_miss_and_a_failed_read_is_never_kept(tree: Path, tmp_path: Path):
    folder = tmp_path / "cache"
    scan_path(str(tree), cache=ResultCache(str(folder), Limits()))
    for entry in folder.iterdir():
        entry.write_text('{"path": 1')
    damaged = ResultCache(str(folder), Limits())
    assert stable(scan_path(str(tree), cache=damaged)) == stable(scan_path(str(tree)))
    assert damaged.hits == 0
    with range_server(tmp_path) as server:
        url = server.url("files/missing.pkl")
        for _ in range(2):
            remote = ResultCache(str(folder), Limits())
            assert scan_path(url, cache=remote).files[0].findings[0].rule.id == "MLO902"
    assert remote.hits == 0


def test_a_remote_object_with_the_same_etag_costs_one_request(tmp_path: Path):
    case = malicious.ALL[0]
    malicious.write(case, tmp_path, tmp_path, tmp_path / "marker")
    folder = str(tmp_path / "cache")
    with range_server(tmp_path) as server:
        url = server.url(f"files/{case.filename}")
        first = scan_path(url, cache=ResultCache(folder, Limits()))
        again = ResultCache(folder, Limits())
        second = scan_path(url, cache=again)
    assert again.hits == 1 and second.files[0].requests == 1
    assert stable(second) == stable(first)


def test_an_object_rewritten_under_the_same_etag_is_read_again(tmp_path: Path):
    """An S3 ETag is the content's MD5, so whoever can write the bucket can put a colliding object in place of a
    clean one; the time of the write is part of the version, and the rewrite is judged again. A server that tells
    no time keeps no result."""
    (tmp_path / "model.pkl").write_bytes(pickle.dumps({"weights": [0.1, 0.2]}, protocol=4))
    cache = ResultCache(str(tmp_path / "cache"), Limits())
    with range_server(tmp_path) as server:
        url = server.url("md5/model.pkl")
        assert scan_path(url, cache=cache).exit_code(Severity.HIGH) == 0
        case = malicious.ALL[0]
        malicious.write(case, tmp_path, tmp_path, tmp_path / "marker")
        os.replace(tmp_path / case.filename, tmp_path / "model.pkl")
        later = time.time() + 2  # the attacker's write comes after the scan
        os.utime(tmp_path / "model.pkl", (later, later))
        assert scan_path(url, cache=cache).exit_code(Severity.HIGH) == 1 and cache.hits == 0
        untimed = scan_path(server.url("untimed/model.pkl"), cache=cache)
    assert untimed.files[0].version is None and cache.hits == 0


def test_the_cli_keeps_results_unless_told_not_to(tree: Path, tmp_path: Path):
    import subprocess
    import sys

    folder = tmp_path / "cli-cache"

    def run(*extra: str) -> dict:
        command = [sys.executable, "-m", "mloops", "scan", str(tree), "--format", "json", "--cache-dir", str(folder)]
        document = json.loads(subprocess.run([*command, *extra], capture_output=True, text=True, timeout=120).stdout)
        document["summary"].pop("duration_seconds")
        return document

    first = run()
    kept = len(list(folder.iterdir()))
    assert kept == first["summary"]["files"] > 20
    assert run() == first == run("--no-cache")
    assert len(list(folder.iterdir())) == kept
