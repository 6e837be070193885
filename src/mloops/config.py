"""A team's standing decisions, kept in ``.mloops.toml`` or ``pyproject.toml``'s ``[tool.mloops]``: the fail
threshold, formats and paths left out, severity overrides and suppressions (each with a reason, and an expiry
that turns into a finding of its own once passed). A misspelt key or an unknown rule id is an error, never a
silently ignored line: a typo must not switch a check off."""

from __future__ import annotations

import datetime
import functools
import os
import re
import tomllib
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, NamedTuple

from . import rules
from .core import FileResult, Finding, Location, Report, Severity, UsageError
from .sources.remote import is_remote

FILE_NAME = ".mloops.toml"
_KEYS = frozenset({"fail-on", "skip-formats", "exclude", "severity", "suppress"})
_SUPPRESS_KEYS = frozenset({"rule", "path", "reason", "expires"})


class Suppression(NamedTuple):
    rule: str
    path: str | None  # a glob relative to the configuration's folder; None: everywhere
    reason: str
    expires: datetime.date | None


class Config(NamedTuple):
    source: str  # the file it was read from ("" for none)
    root: str  # the folder its globs are relative to
    fail_on: Severity | None = None
    skip_formats: frozenset[str] = frozenset()
    exclude: tuple[str, ...] = ()
    severity: Mapping[str, Severity] = MappingProxyType({})
    suppress: tuple[Suppression, ...] = ()

    def excluded(self, path: str) -> bool:
        return any(_matches(pattern, self._relative(path)) for pattern in self.exclude)

    def _relative(self, path: str) -> str:
        if is_remote(path):  # a URL, models:/, runs:/: matched as written
            return path
        return os.path.relpath(os.path.abspath(path), self.root).replace(os.sep, "/")

    def apply(self, report: Report) -> None:
        """Overrides severities, and marks what a skipped format or a live suppression accepts as suppressed;
        a suppression past its date suppresses nothing and is reported."""
        today = datetime.date.today()
        live = [s for s in self.suppress if s.expires is None or s.expires >= today]
        for result in report.files:
            skipped = self._skipped_formats(result)
            result.findings = [self._decide(finding, skipped, live) for finding in result.findings]
        expired = [s for s in self.suppress if s not in live]
        if expired:
            report.files.append(FileResult(self.source, [self._expired(s) for s in expired]))

    def _skipped_formats(self, result: FileResult) -> str | None:
        """The formats of a file whose every part is of a skipped format (a skipped container holding another
        format is still judged)."""
        found = result.formats
        return ", ".join(found) if found and self.skip_formats.issuperset(found) else None

    def _decide(self, finding: Finding, skipped: str | None, live: list[Suppression]) -> Finding:
        if finding.rule.operational:  # a scan that failed is never accepted
            return finding
        override = self.severity.get(finding.rule.id)
        if override is not None and override != finding.severity:
            evidence = {**finding.evidence, "rule_severity": finding.severity.label}
            finding = finding._replace(severity=override, evidence=evidence)
        if finding.suppressed is not None:
            return finding
        if skipped:
            return finding._replace(suppressed=f"format {skipped} skipped in {self.source}")
        for suppression in live:
            if suppression.rule == finding.rule.id and (
                suppression.path is None or _matches(suppression.path, self._relative(finding.location.path))
            ):
                until = f", until {suppression.expires}" if suppression.expires else ""
                return finding._replace(suppressed=f"{suppression.reason} ({self.source}{until})")
        return finding

    def _expired(self, suppression: Suppression) -> Finding:
        where = suppression.path or "every file"
        return rules.EXPIRED_SUPPRESSION.finding(
            Location(self.source),
            f"the suppression of {suppression.rule} in {where} expired on {suppression.expires}; "
            "its findings count again",
            {
                "rule": suppression.rule,
                "path": where,
                "expires": str(suppression.expires),
                "reason": suppression.reason,
            },
        )


def load(explicit: str | None, start: str = ".") -> Config:
    """The configuration named, else the nearest ``.mloops.toml`` or ``pyproject.toml`` with ``[tool.mloops]``
    in ``start`` or a folder above it; none found is an empty configuration."""
    if explicit:
        return _read(explicit, required=True) or Config("", os.path.abspath("."))
    folder = os.path.abspath(start)
    while True:
        for name in (FILE_NAME, "pyproject.toml"):
            found = _read(os.path.join(folder, name), required=False)
            if found:
                return found
        parent = os.path.dirname(folder)
        if parent == folder:
            return Config("", os.path.abspath(start))
        folder = parent


def _read(path: str, required: bool) -> Config | None:
    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except FileNotFoundError:
        if required:
            raise UsageError(f"{path}: no such configuration file") from None
        return None
    except OSError as exc:
        raise UsageError(f"{path}: cannot read the configuration ({exc.strerror or exc})") from None
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{path}: not valid TOML ({exc})") from None
    if os.path.basename(path) == "pyproject.toml":
        tool = data.get("tool", {})
        if "mloops" not in tool:
            if required:
                raise UsageError(f"{path}: has no [tool.mloops] table")
            return None
        data = tool["mloops"]
    return _parse(data, path)


def _parse(data: dict[str, Any], path: str) -> Config:
    unknown = sorted(set(data) - _KEYS)
    if unknown:
        raise UsageError(f"{path}: unknown key(s) {', '.join(unknown)} (known: {', '.join(sorted(_KEYS))})")
    by_id = _rules()
    fail_on = data.get("fail-on")
    if fail_on is not None and _severity(fail_on, path, "fail-on") == Severity.INFO:
        raise UsageError(f"{path}: fail-on: 'info' is not a fail threshold (critical, high, medium or low)")
    severity = {
        _rule_id(rule, by_id, path, "severity"): _severity(value, path, f"severity.{rule}")
        for rule, value in _table(data.get("severity", {}), path, "severity").items()
    }
    return Config(
        source=path,
        root=os.path.dirname(os.path.abspath(path)),
        fail_on=None if fail_on is None else _severity(fail_on, path, "fail-on"),
        skip_formats=frozenset(_formats(data.get("skip-formats", []), path)),
        exclude=tuple(_strings(data.get("exclude", []), path, "exclude")),
        severity=MappingProxyType(severity),
        suppress=tuple(_suppression(entry, by_id, path) for entry in _entries(data.get("suppress", []), path)),
    )


def _rules() -> dict[str, Any]:
    from .registry import all_rules

    return {rule.id: rule for rule in all_rules()}


def _rule_id(value: object, by_id: dict[str, Any], path: str, key: str) -> str:
    if not isinstance(value, str) or value not in by_id:
        raise UsageError(
            f"{path}: {key}: {value!r} is not a rule id of this mloops (the README's rule table lists them)"
        )
    if by_id[value].operational:
        raise UsageError(f"{path}: {key}: {value} says a scan failed; it cannot be overridden or suppressed")
    return value


def _severity(value: object, path: str, key: str) -> Severity:
    try:
        return Severity.parse(str(value))
    except (KeyError, ValueError):
        raise UsageError(f"{path}: {key}: {value!r} is not a severity (critical, high, medium, low, info)") from None


def _table(value: object, path: str, key: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise UsageError(f"{path}: {key}: expected a table")
    return value


def _strings(value: object, path: str, key: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(item, str) and item for item in value):
        raise UsageError(f"{path}: {key}: expected a list of strings")
    return value


def _formats(value: object, path: str) -> list[str]:
    from .registry import catalog

    names = _strings(value, path, "skip-formats")
    unknown = sorted(set(names) - set(catalog()))
    if unknown:
        raise UsageError(f"{path}: skip-formats: {', '.join(unknown)}: not a format of this mloops (the JSON "
                         "report's summary.formats names them)")  # fmt: skip
    return names


def _entries(value: object, path: str) -> list[dict[str, Any]]:
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise UsageError(f"{path}: suppress: expected [[suppress]] tables")
    return value


def _suppression(entry: dict[str, Any], by_id: dict[str, Any], path: str) -> Suppression:
    unknown = sorted(set(entry) - _SUPPRESS_KEYS)
    if unknown:
        raise UsageError(f"{path}: suppress: unknown key(s) {', '.join(unknown)}")
    reason = entry.get("reason")
    if not isinstance(reason, str) or not reason.strip():
        raise UsageError(f"{path}: suppress: every suppression needs a reason")
    glob = entry.get("path")
    if glob is not None and (not isinstance(glob, str) or not glob):
        raise UsageError(f"{path}: suppress: path must be a glob")
    expires = entry.get("expires")
    if expires is not None and not (isinstance(expires, datetime.date) and not isinstance(expires, datetime.datetime)):
        raise UsageError(f"{path}: suppress: expires must be a date (expires = 2027-01-31)")
    return Suppression(_rule_id(entry.get("rule"), by_id, path, "suppress.rule"), glob, reason.strip(), expires)


def _matches(pattern: str, path: str) -> bool:
    return _glob(pattern)(path) is not None


@functools.cache
def _glob(pattern: str) -> Callable[[str], re.Match[str] | None]:
    """gitignore-like: ``*`` and ``?`` stay within a folder, ``**`` crosses folders, and a pattern without a
    slash matches a name in any folder; a folder's pattern covers what it holds."""
    anchored = "/" in pattern.rstrip("/")
    body = ""
    index = 0
    text = pattern.strip("/")
    while index < len(text):
        if text.startswith("**/", index):
            body += "(?:.*/)?"
            index += 3
        elif text.startswith("**", index):
            body += ".*"
            index += 2
        elif text[index] == "*":
            body += "[^/]*"
            index += 1
        elif text[index] == "?":
            body += "[^/]"
            index += 1
        else:
            body += re.escape(text[index])
            index += 1
    prefix = "" if anchored else "(?:.*/)?"
    return re.compile(f"{prefix}{body}(?:/.*)?").fullmatch
