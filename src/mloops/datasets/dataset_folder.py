"""Dataset folders: the layout that gives a Python file the role of a Hugging Face loading script.

``load_dataset("<folder>")`` runs ``<folder>/<folder>.py`` when it exists: without asking before datasets
2.20, after ``trust_remote_code=True`` until 4.0. A folder is taken for a dataset when it holds what
``datasets`` writes or reads next to the data (data/datasets.toml): a card whose front matter has dataset
keys, ``dataset_infos.json`` and friends, or data files beside a script named after the folder. Only folder
listings and the card's front matter are read here; the scripts themselves are analyzed like any file.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Iterable
from typing import NamedTuple

from ..data import load_toml

LAYOUT = "dataset-root"  # Item.layouts of a file that sits at the root of a dataset folder
CARD_HEAD_BYTES = 64 * 1024  # front matter comes first; a card's body is not needed
_TOP_LEVEL_KEY = re.compile(r"^([A-Za-z_][\w-]*)\s*:", re.MULTILINE)


class _Table(NamedTuple):
    cards: frozenset[str]
    card_keys: frozenset[str]
    metadata_files: frozenset[str]
    data_suffixes: tuple[str, ...]
    data_folders: tuple[str, ...]


@functools.cache
def _table() -> _Table:
    data = load_toml("datasets.toml")
    return _Table(
        frozenset(data["cards"]),
        frozenset(data["card_keys"]),
        frozenset(data["metadata_files"]),
        tuple(data["data_suffixes"]),
        tuple(data["data_folders"]),
    )


class DatasetFolder(NamedTuple):
    path: str
    reason: str  # what made it a dataset, for the report


def dataset_folders(files: Iterable[str]) -> list[DatasetFolder]:
    """The dataset folders among the folders that directly hold one of ``files``, in path order
    (spelled as the files' paths spell them)."""
    folders = sorted({os.path.dirname(path) or "." for path in files})
    return [DatasetFolder(folder, reason) for folder in folders if (reason := _dataset_reason(folder))]


def loading_script_name(folder: str) -> str:
    """The script ``load_dataset(folder)`` runs: ``<folder name>.py``."""
    return os.path.basename(os.path.abspath(folder)) + ".py"


def _dataset_reason(folder: str) -> str | None:
    try:
        names = set(os.listdir(folder))
    except OSError:
        return None  # the walk reports unreadable folders
    table = _table()
    metadata = sorted(names & table.metadata_files)
    if metadata:
        return f"has {metadata[0]}"
    for card in sorted(names & table.cards):
        keys = _card_keys(os.path.join(folder, card)) & table.card_keys
        if keys:
            return f"{card} front matter has dataset keys ({', '.join(sorted(keys)[:3])})"
    script = loading_script_name(folder)
    if script in names and _has_data_files(folder, names):
        return f"{script} sits next to data files"
    return None


def _card_keys(path: str) -> set[str]:
    """Top-level keys of the YAML front matter between the leading ``---`` lines; empty when there is none."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(CARD_HEAD_BYTES).decode("utf-8", "replace")
    except OSError:
        return set()
    head = head.lstrip("\ufeff")
    if not head.startswith("---"):
        return set()
    end = head.find("\n---", 3)
    return set(_TOP_LEVEL_KEY.findall(head[3 : end if end != -1 else len(head)]))


def _has_data_files(folder: str, names: set[str]) -> bool:
    suffixes = _table().data_suffixes
    if any(name.lower().endswith(suffixes) for name in names):
        return True
    for sub in _table().data_folders:
        if sub in names:
            try:
                if any(name.lower().endswith(suffixes) for name in os.listdir(os.path.join(folder, sub))):
                    return True
            except OSError:
                continue
    return False
