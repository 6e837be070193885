"""Long campaigns run in parts (--start N): each part leaves summary-<start>.json under the output folder."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def campaign_parts(out: Path, seed: int) -> list[dict[str, Any]]:
    """The summaries of one seed's parts under ``out``, in order; they must cover cases 0..N, each in full."""
    parts = sorted(
        (part for path in out.glob("summary-*.json") if (part := json.loads(path.read_text()))["seed"] == seed),
        key=lambda part: part["start"],
    )
    covered = 0
    for part in parts:
        if part["start"] != covered or part["cases"] != part["end"] - part["start"]:
            raise SystemExit(f"{out}: the parts do not cover cases 0..{part['end']} (a part is missing or unfinished)")
        covered = part["end"]
    return parts
