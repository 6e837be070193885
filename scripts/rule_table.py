"""Write the README's rule table from the rule catalog (``registry.all_rules``): one row per rule, its severity
(or the range its findings take) and its one-line summary. ``--check`` only reports whether README is current.

    python scripts/rule_table.py [--check]
"""

from __future__ import annotations

import sys
from pathlib import Path

from mloops.registry import all_rules

README = Path(__file__).resolve().parent.parent / "README.md"
HEADER = "| id | name | severity | meaning |\n|---|---|---|---|\n"


def table() -> str:
    rows = (f"| {r.id} | {r.name} | {r.severities or r.severity.name.lower()} | {r.summary} |" for r in all_rules())
    return HEADER + "\n".join(rows) + "\n"


def with_table(readme: str) -> str:
    """``readme`` with the table after HEADER replaced (it ends at the first line not starting with "|")."""
    start = readme.index(HEADER)
    end = start + len(HEADER)
    while end < len(readme) and readme.startswith("|", end):
        end = readme.index("\n", end) + 1
    return readme[:start] + table() + readme[end:]


if __name__ == "__main__":
    text = README.read_text()
    current = with_table(text) == text
    if "--check" in sys.argv[1:]:
        sys.exit(0 if current else "README's rule table is out of date: run python scripts/rule_table.py")
    README.write_text(with_table(text))
