"""Reporters: one module a format, each with a ``render`` function that is a ``Render``."""

from __future__ import annotations

from importlib import import_module
from typing import Protocol

from ..core import Report, Severity


class Render(Protocol):
    """The interface of a report format: the whole report as text, given the severity that fails the run
    (which the report states, with the exit code it leads to)."""

    def __call__(self, report: Report, fail_on: Severity, /) -> str: ...


FORMATS = {
    "text": "text",
    "json": "json_report",
    "sarif": "sarif",
    "html": "html_report",
    "cyclonedx": "cyclonedx_report",
}  # format -> module in this package


def reporter(name: str) -> Render:
    """The render function of a format; its module is imported only when that format is asked for."""
    render: Render = import_module(f"{__name__}.{FORMATS[name]}").render
    return render
