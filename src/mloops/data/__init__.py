"""Reviewed data files: format catalog, allow and deny lists, op tables.

Read with plain ``open``: importlib.resources costs more start-up time than every scan of a
small file, and these files always sit next to this module.
"""

from __future__ import annotations

import os
import tomllib
from typing import Any

FOLDER = os.path.dirname(__file__)


def read_text(name: str) -> str:
    with open(os.path.join(FOLDER, name), encoding="utf-8") as handle:
        return handle.read()


def load_toml(name: str) -> dict[str, Any]:
    return tomllib.loads(read_text(name))
