"""Hugging Face cache folders (``HF_HUB_CACHE``, ``~/.cache/huggingface/hub``), recognised by their layout.

``huggingface_hub`` keeps a repository as ``models--ORG--NAME`` (or ``datasets--``, ``spaces--``) with the
file contents in ``blobs/`` and, per commit, ``snapshots/COMMIT/FILE`` pointing at them. A snapshot's file is
reported by its repository and commit (``hf://ORG/NAME@COMMIT/FILE``, what a loader of that revision reads),
and the blob it points at is scanned once, under that name (a blob's own name is a hash: its file name is
what tells a ``.py`` loading script from a ``.bin``). Blobs no snapshot points at are scanned as themselves.
"""

from __future__ import annotations

import os
import re

# Repository ids never contain "--" (huggingface_hub refuses them), so the folder name splits back.
_SNAPSHOT_FILE = re.compile(r"(?:^|/)(models|datasets|spaces)--([^/]+)/snapshots/([0-9a-f]{40})/(.+)$")
_PREFIX = {"models": "hf://", "datasets": "hf://datasets/", "spaces": "hf://spaces/"}


def hub_origins(files: list[str]) -> dict[str, str]:
    """For each file in a snapshot of a Hugging Face cache, the repository file it is: ``hf://ORG/NAME@COMMIT/FILE``."""
    origins = {}
    for path in files:
        found = _SNAPSHOT_FILE.search(path.replace(os.sep, "/"))
        if found:
            kind, folder, commit, name = found.groups()
            origins[path] = f"{_PREFIX[kind]}{folder.replace('--', '/')}@{commit}/{name}"
    return origins


def scanned_as_snapshots(files: list[str], origins: dict[str, str]) -> set[str]:
    """The blobs among ``files`` that a snapshot file points at: scanning the snapshot file scans them."""
    if not origins:
        return set()
    targets = {os.path.realpath(path) for path in origins}
    return {path for path in files if path not in origins and os.path.realpath(path) in targets}
