"""Hugging Face dataset loading scripts: Python that runs on the consumer's machine when the dataset loads.

A file is a loading script by its place (``<folder>/<folder>.py`` in a dataset folder, which
``load_dataset("<folder>")`` runs; other ``.py`` files at a dataset root, which the script imports or a user
loads by path) or by its content (a class deriving from a ``datasets`` builder). The finding lists what
the script imports and which process, network, file and eval calls it makes, from the syntax tree alone.
"""

from __future__ import annotations

import functools
import os

from ..context import Item
from ..core import AttackClass, Capability, Finding, Location, Rule, Severity
from ..registry import Format
from . import dataset_folder

DATASET_LOADING_SCRIPT = Rule(
    id="MLO340",
    name="dataset-loading-script",
    title="Dataset ships a loading script that runs when the dataset is loaded",
    severity=Severity.HIGH,
    attack_class=AttackClass.MALICIOUS_DATASET,
    capability=Capability.CODE_EXECUTION,
    description=(
        "Hugging Face datasets imports a dataset's loading script (<folder>/<folder>.py, or any module that "
        "defines a builder class) and runs it as ordinary Python: without asking before datasets 2.20, after "
        "trust_remote_code=True until 4.0. Whoever publishes the dataset, or a later revision of it, runs code "
        "on every machine that loads it; reverse shells and credential stealers have been found in such scripts "
        "on the Hub. A loading script is HIGH whatever it is seen to do, CRITICAL with process or eval calls or "
        "references; a helper file at the dataset root is one step lower."
    ),
    remediation=(
        "Publish the data as files (Parquet, JSON Lines, CSV) listed in the card's configs and delete the script. "
        "Until then, read the script, load it only at a pinned revision=, and keep datasets >= 4.0, which refuses "
        "loading scripts."
    ),
    summary=(
        "Dataset ships a loading script that runs when the dataset is loaded: high whatever it does, critical with "
        "process or eval calls or references; a helper at the dataset root, or a module named after a folder of code "
        "only, one step lower."
    ),
    severities="medium to critical",
)


DEFAULT = "default"  # what load_dataset(<folder>) runs, in a folder that looks like a dataset
NAMED = "named"  # <folder>/<folder>.py in a folder nothing else marks as a dataset: load_dataset runs it too
BUILDER = "builder"  # defines a datasets builder: a loading script wherever it lies
ROOT = "root"  # another Python file at a dataset root
MAX_LISTED = 20
CALL_KINDS = ("process", "code", "network", "filesystem")


def script_role(item: Item, builders: list[str]) -> str | None:
    """DEFAULT, BUILDER or ROOT when the file is a dataset loading script, else None."""
    at_root = dataset_folder.LAYOUT in item.layouts
    folder = os.path.dirname(item.location.path) or "."
    if item.name == dataset_folder.loading_script_name(folder):
        if at_root:
            return DEFAULT
        if _outside_a_package(item, folder):
            return NAMED
    if builders:
        return BUILDER
    return ROOT if at_root else None


def _outside_a_package(item: Item, folder: str) -> bool:
    """``<folder>/<folder>.py`` is what ``load_dataset("<folder>")`` runs, whatever else the folder holds (a
    downloaded dataset needs no card or data files for it). Only a Python package's own module of the
    same name (an ``__init__.py`` beside it) is left to the code rules."""
    return item.depth == 0 and not os.path.exists(os.path.join(folder, "__init__.py"))


def loading_script_finding(
    location: Location, role: str, capabilities: dict[str, list[str]], builders: list[str]
) -> Finding:
    folder = os.path.basename(os.path.abspath(os.path.dirname(location.path) or "."))
    if role == DEFAULT:
        runs = f"load_dataset('{folder}') runs this script"
    elif role == NAMED:
        runs = f"load_dataset('{folder}') runs this script (named after its folder; nothing else marks a dataset)"
    elif role == BUILDER:
        runs = f"defines the dataset builder {', '.join(builders[:3])}: load_dataset runs this script"
    else:
        runs = "a Python file at the root of a dataset folder: the loading script imports it, or users load it by path"
    said, calls = code_summary(capabilities)
    message = f"{runs}; {'; '.join(said)}"
    evidence = {"role": role, "imports": _listed(capabilities["imports"]), **calls}
    if builders:
        evidence["builders"] = ", ".join(builders[:MAX_LISTED])
    evidence["datasets_here"] = _installed_datasets()
    severity = code_severity(capabilities)
    # A helper at the root runs only through the loading script or an explicit path; a script named after a
    # folder of Python code only (utils/utils.py) that does not use datasets is rarely one: one step less.
    unlikely = role == NAMED and "datasets" not in capabilities["imports"] and _code_only(location.path)
    severity = Severity(severity - 1) if role == ROOT or unlikely else severity
    return DATASET_LOADING_SCRIPT.finding(location, message, evidence, severity=severity)


def _code_only(path: str) -> bool:
    """The file's folder holds Python code and project files only, no data a loading script would read."""
    try:
        names = os.listdir(os.path.dirname(path) or ".")
    except OSError:
        return False
    project = ("readme", "license", "__pycache__", ".")
    return all(name.endswith((".py", ".pyc")) or name.lower().startswith(project) for name in names)


def code_summary(capabilities: dict[str, list[str]]) -> tuple[list[str], dict[str, str]]:
    """What code that runs on load imports and does, as message parts and evidence entries (capabilities_of)."""
    calls = {kind: _listed(capabilities[kind]) for kind in CALL_KINDS if capabilities[kind]}
    said = [f"it imports {_listed(capabilities['imports']) or 'nothing'}"]
    said += [f"{kind}: {names}" for kind, names in calls.items()]
    if capabilities["unparsed"]:
        said.append(f"not analyzed ({capabilities['unparsed'][0]})")
    return said, calls


def code_severity(capabilities: dict[str, list[str]]) -> Severity:
    """Code that runs on load is HIGH whatever it is seen to do; CRITICAL with process or eval calls."""
    return Severity.CRITICAL if capabilities["process"] or capabilities["code"] else Severity.HIGH


def _listed(names: list[str]) -> str:
    more = f" (+{len(names) - MAX_LISTED} more)" if len(names) > MAX_LISTED else ""
    return ", ".join(names[:MAX_LISTED]) + more


@functools.cache
def _installed_datasets() -> str:
    """What the datasets library installed next to mloops would do with a loading script (metadata only)."""
    from importlib import metadata

    try:
        version = metadata.version("datasets")
    except metadata.PackageNotFoundError:
        return "datasets not installed here"
    release = tuple(int(part) for part in version.split(".")[:2] if part.isdigit())
    if release < (2, 20):
        return f"datasets {version} installed here runs it without asking"
    if release < (4, 0):
        return f"datasets {version} installed here runs it when trust_remote_code=True"
    return f"datasets {version} installed here refuses loading scripts"


FORMATS = (Format("dataset-script", "code", "Dataset loading script", "source"),)
