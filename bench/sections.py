"""BENCHMARKS.md is written by several scripts: each owns its sections (a "## " title and what follows)."""

from __future__ import annotations

from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parent.parent / "BENCHMARKS.md"


def split(text: str) -> dict[str, str]:
    """Section title line -> the section's text (title included), in file order."""
    sections: dict[str, str] = {}
    parts = text.split("\n## ")
    for part in parts[1:]:
        title = "## " + part.split("\n", 1)[0]
        sections[title] = "## " + part.rstrip("\n") + "\n"
    return sections


def replace_section(text: str, lines: list[str]) -> str:
    """``text`` with the section ``lines`` holds (its title is the first line starting with "## ") replaced,
    or added before the per-technique tables."""
    start_index = next(index for index, line in enumerate(lines) if line.startswith("## "))
    title = lines[start_index]
    block = "\n".join(lines[start_index:]).rstrip("\n") + "\n"
    if title in text:
        start = text.index(title)
        end = text.find("\n## ", start + len(title))
        return text[:start] + block + (text[end:] if end != -1 else "")
    anchor = text.find("\n## Per technique")
    if anchor == -1:
        return text.rstrip("\n") + "\n\n" + block
    return text[: anchor + 1] + block + "\n" + text[anchor + 1 :]


def keep_foreign_sections(new: str, old: str) -> str:
    """``new`` (a full rewrite) with the sections of ``old`` that other scripts own put back."""
    present = split(new)
    for title, block in split(old).items():
        if title not in present:
            new = replace_section(new, block.splitlines())
    return new


def write_section(lines: list[str]) -> None:
    BENCHMARKS.write_text(replace_section(BENCHMARKS.read_text(encoding="utf-8"), lines), encoding="utf-8")
