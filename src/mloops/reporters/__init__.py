"""Reporters: one module a format, each with a ``render`` function that is a ``Render``."""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Protocol

from ..core import Report, Severity

if TYPE_CHECKING:
    from ..audit.run import AuditReport


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


def audit_of(report: Report) -> AuditReport | None:
    """The report as an audit's, or None: the audit's modules (graph, probe engine, HTTP client) are imported
    only to render an audit, so a scan's start-up never pays for them."""
    if report.subject != "estate":
        return None
    from ..audit.run import AuditReport

    return report if isinstance(report, AuditReport) else None


def reporter(name: str) -> Render:
    """The render function of a format; its module is imported only when that format is asked for."""
    render: Render = import_module(f"{__name__}.{FORMATS[name]}").render
    return render
