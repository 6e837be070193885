"""Reporters: one module a format, each with ``render(report, fail_on) -> str``."""

from __future__ import annotations

from collections.abc import Callable

from ..core import Report, Severity
from . import json_report, sarif, text

Render = Callable[[Report, Severity], str]

REPORTERS: dict[str, Render] = {"text": text.render, "json": json_report.render, "sarif": sarif.render}
