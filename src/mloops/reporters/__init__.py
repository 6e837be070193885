"""Reporters: one module a format, each with ``render(report, fail_on) -> str``."""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module

from ..core import Report, Severity

Render = Callable[[Report, Severity], str]

FORMATS = {"text": "text", "json": "json_report", "sarif": "sarif"}  # format -> module in this package


def reporter(name: str) -> Render:
    """The render function of a format; its module is imported only when that format is asked for."""
    return import_module(f"{__name__}.{FORMATS[name]}").render
