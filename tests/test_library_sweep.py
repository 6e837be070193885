"""Never cry wolf, swept from the libraries themselves: every object a library's catalog builds
(corpus/library_objects.py), saved as its users save it, scans with nothing above MEDIUM.

The libraries are imported directly: they are in the test extras, and a missing one must fail
the sweep rather than let it pass with nothing scanned.
"""

from __future__ import annotations

import pkgutil
from pathlib import Path

import catboost  # noqa: F401
import cloudpickle  # noqa: F401
import dill  # noqa: F401
import gensim  # noqa: F401
import lightgbm  # noqa: F401
import networkx  # noqa: F401
import numpy  # noqa: F401
import optuna  # noqa: F401
import pandas  # noqa: F401
import prophet  # noqa: F401
import pytest
import pytz  # noqa: F401
import scipy  # noqa: F401
import sklearn  # noqa: F401
import spacy  # noqa: F401
import statsmodels  # noqa: F401
import torch  # noqa: F401
import xgboost  # noqa: F401
from corpus import library_objects as lo

from mloops.core import Severity
from mloops.picklevm.policy import default_policy

# Objects each catalog builds today, less a margin: far fewer means the enumeration broke.
MINIMUM_OBJECTS = {
    "stdlib": 150,
    "numpy": 120,
    "pandas": 350,
    "scipy": 180,
    "sklearn": 220,
    "torch": 250,
    "xgboost": 10,
    "lightgbm": 5,
    "catboost": 20,
    "statsmodels": 25,
    "optuna": 40,
    "prophet": 2,
    "spacy": 30,
    "gensim": 8,
    "networkx": 15,
    "dill": 15,
    "cloudpickle": 15,
}


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("library-sweep")


def describe(flags: list[lo.Flagged]) -> str:
    lines = sorted({f"{Severity(f.severity).name} {f.rule} [{f.entry.label}] {f.where}: {f.message}" for f in flags})
    shown = lines[:60]
    more = f"\n... and {len(lines) - len(shown)} more" if len(lines) > len(shown) else ""
    return "\n".join(shown) + more


@pytest.mark.parametrize("library", sorted(MINIMUM_OBJECTS))
def test_library_objects_scan_below_high(library: str, workdir: Path):
    catalog = lo.CATALOGS[library](workdir)
    skipped = "; ".join(f"{s.label} ({s.stage}): {s.reason}" for s in catalog.skipped[:20])
    assert catalog.objects >= MINIMUM_OBJECTS[library], f"only {catalog.objects} objects built; skipped: {skipped}"
    assert len(catalog.entries) >= catalog.objects, "every object is saved at least once"
    flagged = [f for f in lo.scan_catalog(catalog) if f.severity > Severity.MEDIUM]
    assert not flagged, f"{library}: benign library files flagged above MEDIUM:\n{describe(flagged)}"


def _resolve(dotted: str) -> object | None:
    try:
        return pkgutil.resolve_name(dotted)
    except (ImportError, AttributeError, ValueError):
        return None  # a library not installed here, or a name of another release


def _is_pybind11_class(obj: object) -> bool:
    return isinstance(obj, type) and any(base.__module__ == "pybind11_builtins" for base in obj.__mro__)


def test_every_allowlisted_pybind11_class_has_its_state_checked_as_printed():
    # pybind11 reprs a state its __setstate__ rejects (names.toml repr_state): the list must hold every
    # such class the allowlists let a file build, found in the installed libraries themselves.
    policy = default_policy()
    found = {
        name
        for name in policy.allow_build | policy.allow_call
        if _is_pybind11_class(_resolve(name)) and hasattr(_resolve(name), "__setstate__")
    }
    assert found, "torch's pybind11 enums are allowlisted: the check must see them"
    assert found <= policy.repr_state, sorted(found - policy.repr_state)
