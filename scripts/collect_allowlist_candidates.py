"""Print the globals that benign objects from real ML libraries use while loading.

A maintenance aid for the reviewed allowlists in src/mloops/picklevm/data/allow/:
it pickles typical objects with the libraries themselves (pickle protocols 0-5,
joblib, torch.save), emulates them with mloops' own engine, and prints each global
with how it is used (call, build, ref), grouped by top-level package. A human decides
what goes into the data files; nothing here writes them.

    python scripts/collect_allowlist_candidates.py   (needs the [test] extras)
"""

from __future__ import annotations

import collections
import datetime
import decimal
import fractions
import io
import pathlib
import pickle
import sys
import uuid

import joblib
import numpy as np

from mloops.context import Item, ScanContext
from mloops.core import Location
from mloops.limits import Limits
from mloops.picklevm.policy import default_policy
from mloops.scan import dispatch


def benign_objects() -> dict[str, object]:
    objects: dict[str, object] = {
        "stdlib": [
            collections.OrderedDict(a=1),
            collections.defaultdict(list),
            collections.Counter("ab"),
            collections.deque([1]),
            datetime.datetime.now(),
            datetime.date.today(),
            datetime.time(1),
            datetime.timedelta(3),
            datetime.UTC,
            decimal.Decimal("1.5"),
            fractions.Fraction(1, 3),
            uuid.uuid4(),
            pathlib.PurePosixPath("a"),
            pathlib.Path("a"),
            {1, 2},
            frozenset([3]),
            complex(1, 2),
            bytearray(b"x"),
            b"bytes",
            range(3),
            slice(1, 2),
            type(None),
            float("nan"),
        ],
        "numpy": [
            np.arange(3),
            np.float32(1),
            np.int64(2),
            np.array(["a"]),
            np.array([1, "a"], dtype=object),
            np.zeros((2, 2), dtype=[("a", "f4"), ("b", "i8")]),
            np.ma.masked_array([1, 2], mask=[0, 1]),
            np.random.RandomState(0),
            np.random.default_rng(0),
            np.dtype("M8[ns]"),
            np.datetime64("2020-01-01"),
            np.str_("s"),
            np.bool_(True),
            np.complex64(1j),
        ],
    }
    try:
        import pandas as pd

        frame = pd.DataFrame(
            {
                "i": [1, 2],
                "s": ["x", "y"],
                "t": pd.to_datetime(["2020-01-01", "2021-01-01"]),
                "c": pd.Categorical(["u", "v"]),
                "f": [1.5, 2.5],
                "b": [True, False],
            }
        )
        objects["pandas"] = [
            frame,
            frame.set_index("s"),
            frame["i"],
            pd.Series([1.0], index=pd.MultiIndex.from_tuples([(1, 2)])),
            pd.Timestamp("2020-01-01", tz="UTC"),
            pd.Timedelta("1D"),
            pd.Interval(0, 1),
            pd.Period("2020-01"),
            pd.date_range("2020", periods=3),
            pd.period_range("2020", periods=2, freq="M"),
            pd.Series([1, None], dtype="Int64"),
            pd.Series(["a"], dtype="string"),
            pd.NA,
            pd.NaT,
        ]
    except ImportError:
        pass
    objects.update(_sklearn())
    objects.update(_boosters())
    return objects


def _sklearn() -> dict[str, object]:
    try:
        from sklearn.utils import all_estimators
    except ImportError:
        return {}
    x = np.random.RandomState(0).rand(40, 4)
    y = (x[:, 0] > 0.5).astype(int)
    fitted = []
    for _, cls in all_estimators():
        try:
            est = cls()
            est.fit(x, y)
            fitted.append(est)
        except Exception:  # noqa: BLE001 - estimators needing special inputs are skipped
            continue
    return {"sklearn": fitted}


def _boosters() -> dict[str, object]:
    out: dict[str, object] = {}
    x = np.random.RandomState(0).rand(40, 4)
    y = (x[:, 0] > 0.5).astype(int)
    try:
        import xgboost

        out["xgboost"] = [
            xgboost.XGBClassifier(n_estimators=2).fit(x, y),
            xgboost.XGBRegressor(n_estimators=2).fit(x, y),
        ]
    except ImportError:
        pass
    try:
        import lightgbm

        out["lightgbm"] = [
            lightgbm.LGBMClassifier(n_estimators=2, verbose=-1).fit(x, y),
            lightgbm.LGBMRegressor(n_estimators=2, verbose=-1).fit(x, y),
        ]
    except ImportError:
        pass
    return out


def torch_blobs() -> list[bytes]:
    try:
        import torch
    except ImportError:
        return []
    model = torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3),
        torch.nn.BatchNorm2d(4),
        torch.nn.ReLU(),
        torch.nn.Flatten(),
        torch.nn.Dropout(),
        torch.nn.Linear(4, 2),
        torch.nn.LayerNorm(2),
        torch.nn.GELU(),
        torch.nn.Embedding(3, 2),
    )
    optimizer = torch.optim.AdamW(model.parameters())
    blobs = []
    for obj in (
        model,
        model.state_dict(),
        optimizer.state_dict(),
        {
            "t": torch.arange(3),
            "h": torch.ones(2, dtype=torch.float16),
            "b": torch.ones(2, dtype=torch.bfloat16),
            "q": torch.quantize_per_tensor(torch.ones(2), 0.1, 0, torch.qint8),
            "s": torch.ones(2, 2).to_sparse(),
            "size": torch.Size([2]),
            "dev": torch.device("cpu"),
            "dt": torch.float32,
        },
    ):
        for legacy in (False, True):
            buffer = io.BytesIO()
            torch.save(obj, buffer, _use_new_zipfile_serialization=not legacy)
            blobs.append(buffer.getvalue())
    return blobs


def serialize(obj: object) -> list[bytes]:
    blobs = []
    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
        try:
            blobs.append(pickle.dumps(obj, protocol=protocol))
        except Exception:  # noqa: BLE001 - some objects refuse old protocols
            continue
    buffer = io.BytesIO()
    joblib.dump(obj, buffer)
    blobs.append(buffer.getvalue())
    return blobs


_KIND_BY_RULE = {"MLO110": "call", "MLO120": "build", "MLO121": "ref", "MLO101": "call"}
_RANK = {"ref": 0, "build": 1, "call": 2}


def uses_of(blob: bytes) -> dict[str, str]:
    """Globals the allowlist does not cover yet, with how the blob uses them."""
    ctx = ScanContext("<candidate>", Limits(), default_policy(), dispatch)
    ctx.scan(Item(io.BytesIO(blob), Location("<candidate>"), len(blob), "candidate.pkl", 0))
    found: dict[str, str] = {}
    for finding in ctx.result.findings:
        kind = _KIND_BY_RULE.get(finding.rule.id)
        name = finding.evidence.get("callable") or finding.evidence.get("global")
        if kind and name:
            found[name] = max(found.get(name, kind), kind, key=_RANK.__getitem__)
    return found


def enumerated_classes() -> dict[str, str]:
    """Library objects pickles commonly rebuild or reference, found by walking the libraries:
    every nn.Module, optimizer, scheduler and scikit-learn estimator class, the functions of
    torch.nn.functional, and pandas' public classes."""
    import importlib
    import inspect
    import pkgutil

    found: dict[str, str] = {}

    def walk(package, keep) -> None:
        for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            if ".tests" in info.name or "._testing" in info.name or ".externals" in info.name:
                continue
            try:
                module = importlib.import_module(info.name)
            except Exception:  # noqa: BLE001 - optional submodules may not import
                continue
            for _, cls in inspect.getmembers(module, inspect.isclass):
                if cls.__module__ == info.name and keep(cls):
                    found[f"{cls.__module__}.{cls.__qualname__}"] = "build"

    try:
        import torch

        bases = (torch.nn.Module, torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler)
        for package in (torch.nn.modules, torch.optim):
            walk(package, lambda cls: issubclass(cls, bases))
        for name, func in inspect.getmembers(torch.nn.functional, callable):
            if getattr(func, "__module__", None) == "torch.nn.functional" and not name.startswith("_"):
                found[f"torch.nn.functional.{name}"] = "ref"
    except ImportError:
        pass
    try:
        import sklearn
        from sklearn.base import BaseEstimator

        walk(sklearn, lambda cls: issubclass(cls, BaseEstimator) and not cls.__name__.startswith("_"))
    except ImportError:
        pass
    import numpy

    for name, value in vars(numpy).items():
        if isinstance(value, numpy.ufunc) and not name.startswith("_"):
            found[f"numpy.{value.__name__}"] = "ref"  # pickled by their canonical name
    try:
        import pandas

        for name, _ in inspect.getmembers(pandas, inspect.isclass):
            found[f"pandas.{name}"] = "build"
    except ImportError:
        pass
    return found


def main() -> None:
    table: dict[str, str] = {}
    blobs = [blob for objs in benign_objects().values() for obj in objs for blob in serialize(obj)] + torch_blobs()
    for blob in blobs:
        for dotted, kind in uses_of(blob).items():
            table[dotted] = max(table.get(dotted, kind), kind, key=_RANK.__getitem__)
    policy = default_policy()
    for dotted, kind in enumerated_classes().items():
        if policy.judge((dotted, "")).status == "unknown":
            table.setdefault(dotted, kind)
    for dotted, kind in sorted(table.items()):
        print(f"{kind:5} {dotted}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
