"""Hugging Face repositories scanned where they are stored, against a stand-in for the Hub on 127.0.0.1
(HF_ENDPOINT) answering its documented revision, listing and resolve endpoints: revisions pinned to their commit,
organisation walks with pagination, private repositories with and without HF_TOKEN, offline mode."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys

import numpy as np
import pytest
from corpus import malicious
from corpus.hub_server import TOKEN, commit_of, hub_server
from safetensors.numpy import save_file

from mloops import scan_path
from mloops.cache import ResultCache
from mloops.core import Severity
from mloops.limits import Limits
from mloops.reporters import reporter


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    root = tmp_path_factory.mktemp("hub")
    good = root / "models" / "acme" / "good"
    good.mkdir(parents=True)
    (good / "config.json").write_text('{"model_type": "bert", "hidden_size": 8}')
    save_file({"w": np.zeros((4, 4), dtype=np.float32)}, str(good / "model.safetensors"))
    (good / "README.md").write_text("# good\n")
    evil = root / "models" / "acme" / "evil"
    evil.mkdir(parents=True)
    case = next(case for case in malicious.ALL if case.name == "os-system")
    work = tmp_path_factory.mktemp("work")
    (evil / "pytorch_model.bin").write_bytes(malicious.write(case, work, work, work / "marker").read_bytes())
    (root / "models" / "acme" / "third").mkdir(parents=True)
    (root / "models" / "acme" / "third" / "weights.pkl").write_bytes(pickle.dumps({"w": [0.5]}, protocol=4))
    private = root / "models" / "acme" / "private-x"
    private.mkdir(parents=True)
    (private / "weights.pkl").write_bytes(pickle.dumps([1, 2], protocol=4))
    data = root / "datasets" / "acme" / "data"
    (data / "nested").mkdir(parents=True)
    (data / "nested" / "cache.pkl").write_bytes(case.build(work, work / "marker"))
    with hub_server(root) as running:
        yield running


@pytest.fixture
def endpoint(hub, monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    return hub


def worst(report) -> Severity:
    return max(f.severity for f in report.findings)


def test_a_repository_is_pinned_to_its_commit_and_judged_file_by_file(endpoint):
    commit = commit_of("acme/good")
    report = scan_path("hf://acme/good")
    assert [r.path for r in report.files] == [f"hf://acme/good@{commit}/{name}" for name in
                                              ("README.md", "config.json", "model.safetensors")]  # fmt: skip
    assert worst(report) < Severity.HIGH
    assert [r.path for r in scan_path(f"hf://acme/good@{commit}").files] == [r.path for r in report.files]


def test_a_booby_trapped_model_and_dataset(endpoint):
    (model,) = scan_path("hf://acme/evil@main").files
    assert model.path.endswith("/pytorch_model.bin") and max(f.severity for f in model.findings) == Severity.CRITICAL
    (data,) = scan_path("hf://datasets/acme/data").files
    assert data.path == f"hf://datasets/acme/data@{commit_of('acme/data')}/nested/cache.pkl"
    assert max(f.severity for f in data.findings) == Severity.CRITICAL


def test_an_organisation_is_walked_page_by_page(endpoint):
    report = scan_path("hf://acme")
    repositories = {result.path.split("@")[0] for result in report.files}
    assert repositories == {"hf://acme/evil", "hf://acme/good", "hf://acme/third", "hf://acme/private-x",
                            "hf://datasets/acme/data"}  # fmt: skip
    assert any("cursor=2" in path for path in endpoint.paths)  # the listing's second page was followed
    (private,) = [r for r in report.files if r.path.startswith("hf://acme/private-x")]
    assert private.findings[0].rule.id == "MLO902" and "HF_TOKEN" in private.findings[0].message
    assert report.exit_code(Severity.HIGH) == 2  # a repository that could not be read is never a pass


def test_a_private_repository_needs_the_token(endpoint, monkeypatch):
    (refused,) = scan_path("hf://acme/private-x").findings
    assert refused.rule.id == "MLO902" and "HTTP 401" in refused.message
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    (result,) = scan_path("hf://acme/private-x").files
    assert [f.rule.id for f in result.findings] == ["MLO100"]


def test_offline_mode_and_an_unknown_revision_are_findings(endpoint, monkeypatch):
    (missing,) = scan_path("hf://acme/good@v9").findings
    assert missing.rule.id == "MLO902" and "HTTP 404" in missing.message
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    (offline,) = scan_path("hf://acme/good").findings
    assert offline.rule.id == "MLO902" and "HF_HUB_OFFLINE" in offline.message


def test_a_rescan_with_the_cache_opens_no_file_of_a_pinned_commit(endpoint, tmp_path):
    cache = ResultCache(str(tmp_path / "cache"), Limits())
    first = scan_path("hf://acme/evil", "hf://acme/good", cache=cache)
    asked = len(endpoint.paths)
    again = scan_path("hf://acme/evil", "hf://acme/good", cache=cache)
    resolved = [path for path in endpoint.paths[asked:] if "/resolve/" in path]
    assert resolved == [] and cache.hits == len(first.files) == 4  # only the revisions were asked for
    assert [(r.path, [f.rule.id for f in r.findings]) for r in again.files] == [
        (r.path, [f.rule.id for f in r.findings]) for r in first.files
    ]


# huggingface_hub reads HF_ENDPOINT and HF_HOME when it is imported: a process of its own sees the stand-in Hub.
DOWNLOAD = "import sys, huggingface_hub; huggingface_hub.snapshot_download(sys.argv[1], cache_dir=sys.argv[2])"


def test_a_cache_folder_laid_out_by_huggingface_hub_is_reported_by_repository_and_commit(endpoint, tmp_path):
    hub_cache = tmp_path / "hub"
    env = {**os.environ, "HF_ENDPOINT": endpoint.endpoint, "HF_HOME": str(tmp_path / "home"), "NO_PROXY": "*"}
    for repo in ("acme/good", "acme/evil"):  # the library's own download code lays the folder out
        subprocess.run([sys.executable, "-c", DOWNLOAD, repo, str(hub_cache)], env=env, check=True, timeout=120)
    orphan = hub_cache / "models--acme--evil" / "blobs" / ("0" * 40)  # a blob no snapshot points at
    (snapshot,) = (hub_cache / "models--acme--evil" / "snapshots").glob("*/pytorch_model.bin")
    orphan.write_bytes(snapshot.read_bytes())
    report = scan_path(str(hub_cache))
    by_origin = {r.origin: r for r in report.files if r.origin}
    commit = commit_of("acme/evil")
    evil = by_origin[f"hf://acme/evil@{commit}/pytorch_model.bin"]
    assert evil.path.endswith(f"models--acme--evil/snapshots/{commit}/pytorch_model.bin")
    assert max(f.severity for f in evil.findings) == Severity.CRITICAL
    good = commit_of("acme/good")
    assert {f"hf://acme/good@{good}/{name}" for name in ("README.md", "config.json", "model.safetensors")} <= set(
        by_origin
    )
    blobs = [r.path for r in report.files if "/blobs/" in r.path]
    assert blobs == [str(orphan)]  # each pointed-at blob is scanned once, under its snapshot name
    assert max(f.severity for f in report.files[[r.path for r in report.files].index(str(orphan))].findings) == (
        Severity.CRITICAL
    )
    document = json.loads(reporter("json")(report, Severity.HIGH))
    assert {entry.get("origin") for entry in document["files"]} >= {f"hf://acme/evil@{commit}/pytorch_model.bin"}
    assert f"({'hf://acme/evil@' + commit}/pytorch_model.bin)" in reporter("text")(report, Severity.HIGH)


def test_the_same_file_and_commit_on_another_endpoint_is_another_object(endpoint, tmp_path, monkeypatch):
    mirror = tmp_path / "mirror" / "models" / "acme" / "evil"  # same repository and commit, harmless content
    mirror.mkdir(parents=True)
    (mirror / "pytorch_model.bin").write_bytes(pickle.dumps({"w": [0.5]}, protocol=4))
    cache = ResultCache(str(tmp_path / "cache"), Limits())
    with hub_server(tmp_path / "mirror") as other:
        monkeypatch.setenv("HF_ENDPOINT", other.endpoint)
        (clean,) = scan_path("hf://acme/evil", cache=cache).files
    monkeypatch.setenv("HF_ENDPOINT", endpoint.endpoint)
    (evil,) = scan_path("hf://acme/evil", cache=cache).files
    assert evil.path == clean.path and cache.hits == 0  # a cached verdict of the mirror never stands for the Hub
    assert max(f.severity for f in clean.findings) < Severity.HIGH <= max(f.severity for f in evil.findings)
