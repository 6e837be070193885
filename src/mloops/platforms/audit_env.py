"""``mloops audit-env``: installed ML platform packages checked against the advisory table.

The package list comes from the environment's own metadata (``importlib.metadata`` run by the chosen
interpreter, in isolated mode); no package is imported and nothing is sent anywhere.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

from ..core import Asset, EnvironmentReport, EnvironmentResult, Location, UsageError
from . import advisories

# Run by the audited interpreter: names and versions of every installed distribution, as JSON.
_LIST_PACKAGES = (
    "import importlib.metadata as m, json, sys\n"
    "json.dump(sorted({(d.metadata['Name'] or '', d.version) for d in m.distributions()}), sys.stdout)\n"
)


class AuditError(UsageError):
    """The interpreter could not be run or did not list its packages."""


def installed_packages(python: str) -> list[tuple[str, str]]:
    try:
        done = subprocess.run(
            [python, "-I", "-c", _LIST_PACKAGES], capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise AuditError(f"{python}: cannot run it ({exc})") from None
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise AuditError(f"{python}: listing its packages failed: {last}")
    try:
        return [(str(name), str(version)) for name, version in json.loads(done.stdout)]
    except (ValueError, TypeError) as exc:
        raise AuditError(f"{python}: unexpected package list ({exc})") from None


def audit(python: str | None, table: tuple[advisories.Advisory, ...]) -> EnvironmentReport:
    """One result for the environment: an asset per audited package, an MLO510 per advisory that applies."""
    started = time.monotonic()
    interpreter = python or sys.executable
    path = os.path.abspath(interpreter) if os.sep in interpreter else interpreter
    result = EnvironmentResult(path)
    audited = {advisory.package for advisory in table}
    for name, version in installed_packages(interpreter):
        package = advisories.normalize(name)
        if package not in audited:
            continue
        location = Location(path, (f"{name} {version}",))
        result.assets.append(Asset(location, "python-package"))
        parsed = advisories.parse_version(version)
        if parsed is not None:
            result.findings += advisories.findings(table, name, parsed, location, f"installed for {path}")
    return EnvironmentReport(result, time.monotonic() - started)
