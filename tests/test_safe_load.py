"""mloops.safe_load and safe_torch_load: real checkpoints of torch, transformers, scikit-learn, XGBoost and
LightGBM load and equal what their own loaders return; every malicious fixture is refused before its payload
runs; and the restricted unpickler refuses a name off the allowlist even when the scan let the file through."""

from __future__ import annotations

import io
import json
import pickle
import subprocess
import sys
from pathlib import Path

import numpy
import pytest
from corpus import malicious

import mloops
from mloops import Severity, UnsafeModelError
from mloops.mitigations.safe_load import RestrictedUnpickler
from mloops.picklevm.assemble import PickleBuilder

X = numpy.random.RandomState(0).rand(60, 4)
Y = (X[:, 0] + X[:, 1] > 1).astype(int)


def torch_equal(left: object, right: object) -> bool:
    import torch

    return left.keys() == right.keys() and all(torch.equal(left[k], right[k]) for k in left)  # type: ignore[attr-defined]


def test_torch_state_dicts_and_whole_modules_load_as_torch_loads_them(tmp_path: Path):
    import torch

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.BatchNorm1d(8), torch.nn.ReLU(), torch.nn.Linear(8, 1))
    torch.save(net.state_dict(), tmp_path / "zip.pt")
    torch.save(net.state_dict(), tmp_path / "legacy.pt", _use_new_zipfile_serialization=False)
    torch.save(net, tmp_path / "module.pt")
    for name in ("zip.pt", "legacy.pt"):
        expected = torch.load(tmp_path / name, weights_only=True)
        assert torch_equal(mloops.safe_torch_load(tmp_path / name), expected)
        assert torch_equal(mloops.safe_load(str(tmp_path / name)), expected)
    with open(tmp_path / "module.pt", "rb") as handle:
        module = mloops.safe_torch_load(handle)
    sample = torch.rand(5, 4)
    assert torch.equal(module.eval()(sample), net.eval()(sample))


def test_a_transformers_checkpoint_loads_tensor_for_tensor(tmp_path: Path):
    import torch
    from transformers import BertConfig, BertModel

    config = BertConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=37, vocab_size=99)
    checkpoint = tmp_path / "pytorch_model.bin"  # transformers 5 writes safetensors only; 4 wrote this
    torch.save(BertModel(config).state_dict(), checkpoint)
    expected = torch.load(checkpoint, weights_only=True)
    assert len(expected) > 20 and torch_equal(mloops.safe_torch_load(checkpoint, map_location="cpu"), expected)


def test_scikit_learn_xgboost_and_lightgbm_models_predict_as_the_originals(tmp_path: Path):
    import joblib
    import lightgbm
    import xgboost
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    models = {
        "sklearn": make_pipeline(StandardScaler(), RandomForestClassifier(n_estimators=5, random_state=0)),
        "xgboost": xgboost.XGBClassifier(n_estimators=4),
        "lightgbm": lightgbm.LGBMClassifier(n_estimators=4, verbose=-1),
    }
    for name, model in models.items():
        model.fit(X, Y)
        joblib.dump(model, tmp_path / f"{name}.joblib", compress=3)
        (tmp_path / f"{name}.pkl").write_bytes(pickle.dumps(model))
        for path in (tmp_path / f"{name}.joblib", tmp_path / f"{name}.pkl"):
            loaded = mloops.safe_load(str(path))
            assert type(loaded) is type(model) and (loaded.predict_proba(X) == model.predict_proba(X)).all(), path


def test_numpy_arrays_and_object_arrays_load(tmp_path: Path):
    numpy.save(tmp_path / "plain.npy", numpy.arange(7.0))
    numpy.save(tmp_path / "objects.npy", numpy.array([{"k": 1}, "text", 3], dtype=object), allow_pickle=True)
    numpy.savez(tmp_path / "both.npz", plain=numpy.arange(3), objects=numpy.array([None, "x"], dtype=object))
    assert (mloops.safe_load(str(tmp_path / "plain.npy")) == numpy.arange(7.0)).all()
    assert list(mloops.safe_load(str(tmp_path / "objects.npy"))) == [{"k": 1}, "text", 3]
    both = mloops.safe_load(str(tmp_path / "both.npz"))
    assert (both["plain"] == numpy.arange(3)).all() and list(both["objects"]) == [None, "x"]


def test_a_refusal_names_the_finding(tmp_path: Path):
    marker = tmp_path / "marker"
    payload = PickleBuilder(2).call("os", "system", f"touch {marker}").stop().build()
    with pytest.raises(UnsafeModelError) as refused:
        mloops.safe_load(io.BytesIO(payload))
    assert "MLO101 dangerous-callable (critical)" in str(refused.value) and "os.system" in str(refused.value)
    assert refused.value.findings[0].rule.id == "MLO101" and not marker.exists()


def test_the_restricted_unpickler_refuses_what_the_scan_let_through(tmp_path: Path):
    (tmp_path / "victim_lib.py").write_text("class Thing:\n    pass\n")
    sys.path.insert(0, str(tmp_path))
    try:
        import victim_lib

        data = pickle.dumps(victim_lib.Thing())
        path = tmp_path / "thing.pkl"
        path.write_bytes(data)
        with pytest.raises(UnsafeModelError, match=r"victim_lib.Thing: not on the allowlist of mloops \(unknown\)"):
            mloops.safe_load(str(path), fail_on=Severity.CRITICAL)  # the scan's finding is below the threshold
        with pytest.raises(UnsafeModelError):
            RestrictedUnpickler(io.BytesIO(data)).load()
        assert isinstance(pickle.loads(data), victim_lib.Thing)  # the same bytes the plain loader takes
    finally:
        sys.path.remove(str(tmp_path))


REFUSE_ALL = r"""
import json, os, sys
import mloops
results = {}
for name, path in json.loads(sys.argv[1]).items():
    os.chdir(os.path.dirname(path))
    sys.path.insert(0, os.path.dirname(path))  # the victim's own modules import, as under the real loader
    try:
        mloops.safe_load(path)
        results[name] = "loaded"
    except mloops.UnsafeModelError as exc:
        results[name] = "refused" if exc.findings else "refused by the unpickler"
    sys.path.pop(0)
print(json.dumps(results))
"""


def test_every_malicious_fixture_is_refused_and_no_payload_runs(tmp_path: Path):
    paths, markers = {}, []
    for index, case in enumerate(malicious.ALL):
        folder = tmp_path / f"case{index}"
        folder.mkdir()
        marker = folder / "marker"
        paths[case.name] = str(malicious.write(case, folder, folder, marker))
        markers.append(marker)
    run = subprocess.run(
        [sys.executable, "-c", REFUSE_ALL, json.dumps(paths)], capture_output=True, text=True, timeout=600
    )
    assert run.returncode == 0, run.stderr[-3000:]
    results = json.loads(run.stdout)
    assert len(results) == len(malicious.ALL) >= 50
    assert {name: how for name, how in results.items() if how != "refused"} == {}
    assert [str(marker) for marker in markers if marker.exists()] == []
