"""Containers that hold other assets: archives and compressed streams."""

from __future__ import annotations

import re

_DRIVE = re.compile(r"^[A-Za-z]:")


def escapes_extraction(name: str) -> bool:
    """True when extracting a member of this name writes outside the target folder (zip slip)."""
    if name.startswith(("/", "\\")) or _DRIVE.match(name):
        return True
    return ".." in re.split(r"[/\\]", name)
