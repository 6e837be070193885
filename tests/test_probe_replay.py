"""mloops probe against local servers that replay each platform's documented answers (127.0.0.1 only)."""

from __future__ import annotations

import pytest
from corpus import replay_server
from corpus.probing import of, platforms, probe

from mloops.core import Severity
from mloops.platforms import engine, fingerprints
from mloops.platforms.targets import Endpoint

REPLAYED = [f.id for f in fingerprints.fingerprints() if f.verified == "replayed"]
PROTECTED = [platform for platform in REPLAYED if "protected" in replay_server.load(platform)]


def test_every_replayed_fingerprint_has_a_replay_file():
    assert sorted(p.stem for p in replay_server.REPLAYS.glob("*.toml")) == sorted(REPLAYED)


@pytest.mark.parametrize("platform", REPLAYED)
def test_open_platform_is_recognised_alone_with_its_open_features(platform: str):
    replay = replay_server.load(platform)
    with replay_server.serving(replay_server.routes(replay["open"])) as (base, log):
        report = probe(base)
    assert platforms(report) == [platform]  # no other fingerprint claims these answers
    (detected,) = of(report, "MLO500")
    assert detected.evidence["version"] == replay.get("version", "unknown")
    opened = of(report, "MLO501")
    assert {f.evidence["feature"] for f in opened} == set(replay["open_features"])
    attacks = fingerprints.attacks()
    for finding in opened:
        attack = attacks[finding.evidence["attack"]]
        assert finding.severity == attack.severity and finding.capability is attack.capability
        assert attack.says in finding.message and finding.evidence["fix"]
    assert sorted(f.evidence["advisory"] for f in of(report, "MLO510")) == sorted(replay.get("advisories", []))
    assert {method for method, _ in log} <= fingerprints.SAFE_METHODS


@pytest.mark.parametrize("platform", PROTECTED)
def test_protected_platform_is_reported_as_enforcing_auth(platform: str):
    replay = replay_server.load(platform)
    with replay_server.serving(replay_server.routes(replay["protected"])) as (base, log):
        report = probe(base)
    assert platforms(report) == [platform]
    assert of(report, "MLO501") == []
    (enforced,) = of(report, "MLO502")
    assert enforced.severity == Severity.INFO
    assert report.exit_code(Severity.LOW) == 0 or of(report, "MLO510")
    assert {method for method, _ in log} <= fingerprints.SAFE_METHODS


def test_unclear_answers_are_low_not_silent():
    replay = replay_server.load("ollama")
    table = replay_server.routes(replay["open"])
    table["/api/tags"] = {"path": "/api/tags", "status": 500, "body": "upstream error", "content_type": "text/plain"}
    with replay_server.serving(table) as (base, _):
        report = probe(base)
    (unclear,) = of(report, "MLO503")
    assert unclear.severity == Severity.LOW and "500" in unclear.message


def test_an_http_server_that_is_no_platform_gives_no_finding():
    with replay_server.serving({"/": {"path": "/", "content_type": "text/html", "body": "<h1>It works</h1>"}}) as (
        base,
        _,
    ):
        report = probe(base)
    assert report.findings == [] and platforms(report) == []
    assert [asset.format for asset in report.files[0].assets] == ["http-service"]


def test_named_endpoint_that_refuses_is_an_operational_error():
    with replay_server.serving({}) as (base, _):
        closed = base  # the port is free again once the server stops
    report = probe(closed)
    (finding,) = report.findings
    assert finding.rule.id == "MLO904" and report.exit_code(Severity.CRITICAL) == 2


def test_closed_ports_in_a_sweep_are_silent():
    with replay_server.serving({}) as (base, _):
        closed = base
    report = engine.run([Endpoint(closed, False)], fingerprints.fingerprints(), (), 2.0, 4, progress=False)
    assert report.files == [] and report.probed == 1 and report.exit_code(Severity.LOW) == 0
