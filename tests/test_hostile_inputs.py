"""Hostile input against the scanner itself: every bomb, flood and trap ends with a finding.

Each input of corpus/hostile.py goes through the real CLI in a child process. The run
must end (a hang guard of several minutes only, never a speed check: speed is in
bench/hostile_inputs.py) with exit 1 or 2, no traceback, a valid and small JSON report
holding the expected finding, no rule listed more than the per-rule cap in one file, and a
peak RSS under 1 GiB.
"""

from __future__ import annotations

import gzip
import io
import json
import zipfile
import zlib
from collections import Counter
from pathlib import Path

import pytest
from corpus import archives, hostile

from mloops import scan_path
from mloops.context import Item, ScanContext
from mloops.core import Location
from mloops.limits import Budget, LimitExceeded, Limits, MiB
from mloops.picklevm.policy import default_policy
from mloops.scan import dispatch
from mloops.sources.tar import resolve
from mloops.streams import Decompressed, InMemory, Window, random_access

from .conftest import rule_ids

HANG_GUARD = 300.0  # seconds: only a guard against a hang
MAX_JSON_BYTES = 1 * MiB
MAX_RSS_MIB = 1024
CAP = Limits().max_findings_per_rule


@pytest.fixture
def built(tmp_path: Path, request: pytest.FixtureRequest):
    """Build a hostile input into tmp_path; folder trees too deep for shutil.rmtree are removed here."""
    made: list[Path] = []

    def build(case: hostile.Hostile) -> Path:
        path = case.build(tmp_path)
        made.append(path)
        return path

    yield build
    for path in made:
        if path.is_dir():
            hostile.remove_tree(path)


def _findings(run: hostile.CliRun) -> list[dict]:
    return json.loads(run.stdout)["findings"]


@pytest.mark.parametrize("case", hostile.CASES, ids=[case.name for case in hostile.CASES])
def test_hostile_input_ends_with_a_finding(case: hostile.Hostile, built) -> None:
    run = hostile.run_cli(built(case), HANG_GUARD)
    assert run.exit_code in case.exit_codes, f"exit {run.exit_code}: {run.stderr[-2000:]}"
    assert "Traceback" not in run.stderr, run.stderr[-4000:]
    assert len(run.stdout) < MAX_JSON_BYTES, f"{len(run.stdout)} bytes of JSON"
    findings = _findings(run)
    found = {finding["rule_id"] for finding in findings}
    assert case.expected <= found, f"missing {case.expected - found}; found {sorted(found)}"
    per_file_rule = Counter((finding["location"]["path"], finding["rule_id"]) for finding in findings)
    assert max(per_file_rule.values()) <= CAP + 1  # the cap, plus the one summary of what was left out
    assert run.max_rss_mib < MAX_RSS_MIB, f"peak RSS {run.max_rss_mib:.0f} MiB"


def _case(name: str) -> hostile.Hostile:
    return next(case for case in hostile.CASES if case.name == name)


def _messages(run: hostile.CliRun, rule_id: str) -> list[str]:
    return [finding["message"] for finding in _findings(run) if finding["rule_id"] == rule_id]


def test_overlapping_members_are_reported_and_expanded_once(built) -> None:
    run = hostile.run_cli(built(_case("overlapping-zip")), HANG_GUARD)
    overlap = [message for message in _messages(run, "MLO901") if "overlap" in message]
    assert len(overlap) == 1 and overlap[0].startswith("999 members overlap"), _messages(run, "MLO901")


def test_nested_bomb_is_stopped_by_the_expansion_ratio_of_the_whole_file(built) -> None:
    run = hostile.run_cli(built(_case("nested-zip")), HANG_GUARD)
    assert any("decompression bomb" in message for message in _messages(run, "MLO901")), _messages(run, "MLO901")


def test_a_finding_flood_is_capped_with_one_summary(built) -> None:
    run = hostile.run_cli(built(_case("traversal-flood")), HANG_GUARD)
    escapes = [f for f in _findings(run) if f["rule_id"] == "MLO206"]
    summaries = [f for f in escapes if "not_listed" in f["evidence"]]
    assert len(escapes) == CAP + 1 and len(summaries) == 1
    assert summaries[0]["message"] == f"... and {1000 - CAP} more MLO206 findings in this file were not listed"
    assert summaries[0]["severity"] == "high" and summaries[0]["location"]["members"] == []


def test_a_too_deep_folder_tree_is_a_finding(built) -> None:
    run = hostile.run_cli(built(_case("deep-folders")), HANG_GUARD)
    limit = _messages(run, "MLO901")
    assert len(limit) == 1 and "deeper than 256 levels" in limit[0]


def test_members_written_through_an_escaping_symlink_are_path_escapes(built) -> None:
    run = hostile.run_cli(built(_case("tar-through-symlink")), HANG_GUARD)
    escapes = {tuple(f["location"]["members"]): f["message"] for f in _findings(run) if f["rule_id"] == "MLO206"}
    assert set(escapes) == {("link",), ("link/evil.pkl",)}
    assert "'link' -> '../../etc'" in escapes[("link/evil.pkl",)]


def test_links_that_stay_inside_the_archive_are_not_path_escapes(tmp_path: Path) -> None:
    run = hostile.run_cli(hostile.tar_inner_links(tmp_path), HANG_GUARD)
    assert run.exit_code == 0, run.stderr[-2000:]
    assert "MLO206" not in {finding["rule_id"] for finding in _findings(run)}


# ----------------------------------------------------------------- the pieces, in process


@pytest.mark.parametrize(
    ("path", "links", "follow_last", "escapes"),
    [
        ("a/b", {}, True, False),
        ("../x", {}, False, True),
        ("/etc/passwd", {}, False, True),
        ("link/evil.pkl", {"link": "../../etc"}, False, True),
        ("link/evil.pkl", {"link": "/tmp/x"}, False, True),
        ("link/evil.pkl", {"link": "models"}, False, False),
        ("sub/link/x", {"sub/link": "../other"}, False, False),
        ("sub/link/x", {"sub/link": "../../other"}, False, True),
        ("a/evil", {"a": "b/x", "b": "sub/../.."}, False, True),
        ("link", {"link": "../etc"}, False, False),  # the link itself is placed inside
        ("link", {"link": "../etc"}, True, True),  # a file written at its name follows it
        ("loop/x", {"loop": "loop"}, False, False),  # cannot be extracted at all
    ],
)
def test_paths_resolve_through_archive_symlinks(path, links, follow_last, escapes) -> None:
    assert resolve(path, links, follow_last).escapes is escapes


def test_findings_over_the_cap_keep_the_worst_severity(tmp_path: Path) -> None:
    evil = hostile.EVIL
    path = tmp_path / "many.zip"
    path.write_bytes(archives.make_zip({f"m{i}.pkl": evil for i in range(12)}))
    report = scan_path(str(path), limits=Limits(max_findings_per_rule=5))
    dangerous = [f for f in report.findings if f.rule.id == "MLO101"]
    assert len(dangerous) == 6
    summary = [f for f in dangerous if "not_listed" in f.evidence]
    assert len(summary) == 1 and summary[0].evidence["not_listed"] == "7"
    assert summary[0].severity == max(f.severity for f in dangerous)
    assert report.exit_code(summary[0].severity) == 1


def test_a_spent_budget_is_reported_once_and_stops_the_file(tmp_path: Path) -> None:
    path = tmp_path / "many.zip"
    members = {f"m{i}.tar.gz": gzip.compress(archives.make_tar({"zeros": bytes(2 * MiB)})) for i in range(20)}
    path.write_bytes(archives.make_zip(members))
    report = scan_path(str(path), limits=Limits(max_expanded_bytes=5 * MiB))
    limit = [f for f in report.findings if f.rule.id == "MLO901"]
    assert len(limit) == 1 and "the rest of this file was not checked" in limit[0].message


def test_a_zip_inside_a_compressed_stream_is_read_from_memory_within_the_bound(tmp_path: Path) -> None:
    inner = archives.make_zip({f"dir/m{i}.pkl": hostile.EVIL for i in range(30)})
    path = tmp_path / "inner.zip.gz"
    path.write_bytes(gzip.compress(inner))
    held = scan_path(str(path))
    streamed = scan_path(str(path), limits=Limits(max_held_bytes=1024))  # too small to hold: read in place
    for report in (held, streamed):
        assert len([f for f in report.findings if f.rule.id == "MLO101"]) == 30
    assert rule_ids(held) == rule_ids(streamed)


def test_random_access_copies_only_what_fits_and_gives_it_back() -> None:
    budget = Budget(Limits(max_held_bytes=4096))
    data = bytes(range(256)) * 8  # 2048 bytes
    compressed = Decompressed(io.BytesIO(gzip.compress(data)), "gzip", budget)
    with random_access(compressed, None, budget) as stream:
        assert isinstance(stream, InMemory) and budget.held == len(data)
        stream.seek(100)
        assert stream.read(10) == data[100:110]
    assert budget.held == 0
    window = Window(io.BytesIO(data), 0, len(data))
    with random_access(window, len(data), budget) as stream:
        assert stream is window  # a window on a file steps back for free
    big = Decompressed(io.BytesIO(gzip.compress(data * 4)), "gzip", budget)
    with random_access(big, None, budget) as stream:
        assert stream is big and stream.tell() == 0 and budget.held == 0
        assert stream.read() == data * 4


def test_a_short_step_back_in_a_compressed_stream_does_not_decompress_again() -> None:
    budget = Budget(Limits())
    data = bytes(range(256)) * 4096 * 4  # 4 MiB
    stream = Decompressed(io.BytesIO(zlib.compress(data)), "zlib", budget)
    assert stream.read(4096) == data[:4096]
    stream.seek(0)
    assert stream.read(8192) == data[:8192]
    assert budget.expanded == 8192  # the first 4096 bytes came from what was kept
    stream.seek(0, 2)
    stream.seek(10)  # further back than what is kept: decompressed again, and counted again
    assert stream.read(5) == data[10:15]
    assert budget.expanded > len(data)


def test_expansion_is_measured_against_the_size_of_the_file() -> None:
    budget = Budget(Limits(ratio_floor_bytes=1000, max_expansion_ratio=10), source_size=200)
    budget.add_expanded(1000)
    with pytest.raises(LimitExceeded) as raised:
        budget.add_expanded(1001)
    assert raised.value.whole_file and "decompression bomb" in raised.value.what
    with pytest.raises(LimitExceeded):
        budget.check_time()  # spent for the whole file


def test_overlapping_members_are_skipped_after_the_first(tmp_path: Path) -> None:
    path = hostile.same_offset_zip_bomb(tmp_path, entries=50, kernel=1 * MiB)
    with zipfile.ZipFile(path) as archive:  # a valid archive: zipfile reads all 50 members
        assert len(archive.infolist()) == 50
    ctx = ScanContext(str(path), Limits(), default_policy(), dispatch)
    with open(path, "rb") as handle:
        ctx.scan(Item(handle, Location(str(path)), path.stat().st_size, path.name, 0))
    overlap = [f for f in ctx.result.findings if f.rule.id == "MLO901"]
    assert len(overlap) == 1 and overlap[0].evidence["overlapping_members"] == "49"
    assert ctx.budget.expanded <= 2 * MiB  # one member read (and its CRC checked), not 50
