"""Known-vulnerable versions: the bundled advisory table, or an OSV dump the user points to.

Shared by ``mloops probe`` (the version a platform reports) and ``mloops audit-env`` (packages installed in
a Python environment). Versions compare by PEP 440 (``packaging``); a version that does not parse matches
nothing and says so in the finding's evidence.
"""

from __future__ import annotations

import functools
import json
import os
import re
import zipfile
from collections.abc import Iterable, Iterator
from typing import Any, NamedTuple

from packaging.version import InvalidVersion, Version

from ..core import AttackClass, Capability, Finding, Location, Rule, Severity, UsageError
from ..data import load_toml

VULNERABLE_VERSION = Rule(
    id="MLO510",
    name="known-vulnerable-version",
    title="ML platform version with a known vulnerability",
    severity=Severity.HIGH,
    attack_class=AttackClass.VULNERABLE_PLATFORM,
    capability=Capability.SERVER_CODE_EXECUTION,
    description=(
        "The version a platform reports, or a package installed in a Python environment, falls in the affected "
        "range of a published advisory (mloops' bundled table, data/advisories.toml, or the OSV dump given with "
        "--advisories). Severity comes from the advisory."
    ),
    remediation="Upgrade to the fixed version named in the finding, or newer.",
    summary=(
        "A probed platform's version, or an installed package (`audit-env`), is inside an advisory's affected range."
    ),
    severities="per advisory",
)


MAX_OSV_FILE_BYTES = 4 << 20  # one advisory; the PyPI dump's largest is far below
_OSV_SEVERITY = {"CRITICAL": Severity.CRITICAL, "HIGH": Severity.HIGH, "MODERATE": Severity.MEDIUM, "LOW": Severity.LOW}


class AdvisoryError(UsageError):
    """An advisory source that cannot be read."""


class Range(NamedTuple):
    introduced: Version
    fixed: Version | None
    last_affected: Version | None

    def contains(self, version: Version) -> bool:
        if version < self.introduced:
            return False
        if self.fixed is not None:
            return version < self.fixed
        if self.last_affected is not None:
            return version <= self.last_affected
        return True  # no fix published


class Advisory(NamedTuple):
    package: str  # normalized name
    id: str
    aliases: tuple[str, ...]
    ranges: tuple[Range, ...]
    versions: frozenset[str]  # explicitly listed affected versions (OSV)
    severity: Severity
    capability: Capability
    summary: str
    source: str

    def affects(self, version: Version) -> bool:
        return str(version) in self.versions or any(r.contains(version) for r in self.ranges)

    @property
    def fixed_in(self) -> str:
        fixes = sorted({str(r.fixed) for r in self.ranges if r.fixed is not None}, key=Version)
        return ", ".join(fixes) if fixes else "no fixed version published"


def normalize(name: str) -> str:
    """PEP 503 name: ``Jupyter_Server`` and ``jupyter-server`` are one package."""
    return re.sub(r"[-_.]+", "-", name).lower()


def parse_version(text: str) -> Version | None:
    try:
        return Version(text.strip().lstrip("vV"))
    except InvalidVersion:
        return None


@functools.cache
def bundled() -> tuple[Advisory, ...]:
    capabilities = {capability.slug: capability for capability in Capability}
    table = []
    for row in load_toml("advisories.toml")["advisory"]:
        ranges = tuple(
            Range(
                Version(span["introduced"]),
                Version(span["fixed"]) if "fixed" in span else None,
                Version(span["last_affected"]) if "last_affected" in span else None,
            )
            for span in row["affected"]
        )
        table.append(
            Advisory(
                normalize(row["package"]),
                row["id"],
                tuple(row.get("aliases", [])),
                ranges,
                frozenset(),
                Severity.parse(row["severity"]),
                capabilities[row["impact"]],
                row["summary"],
                row["source"],
            )
        )
    return tuple(table)


def load_osv(path: str) -> tuple[Advisory, ...]:
    """Advisories of the PyPI ecosystem from an OSV dump: a folder of OSV JSON files or an ``all.zip``."""
    if os.path.isdir(path):
        documents: Iterable[tuple[str, bytes]] = _folder_documents(path)
    elif zipfile.is_zipfile(path):
        documents = _zip_documents(path)
    else:
        raise AdvisoryError(f"{path}: not a folder of OSV JSON files or an OSV all.zip")
    found: list[Advisory] = []
    for name, raw in documents:
        try:
            found.extend(_osv_advisories(json.loads(raw), name))
        except (ValueError, TypeError, KeyError) as exc:
            raise AdvisoryError(f"{path}: {name} is not an OSV record ({type(exc).__name__}: {exc})") from None
    if not found:
        raise AdvisoryError(f"{path}: no PyPI advisories in it")
    return tuple(found)


def _folder_documents(path: str) -> Iterator[tuple[str, bytes]]:
    for folder, _dirs, files in os.walk(path):
        for name in sorted(files):
            if name.endswith(".json"):
                full = os.path.join(folder, name)
                if os.path.getsize(full) > MAX_OSV_FILE_BYTES:
                    raise AdvisoryError(f"{full}: larger than {MAX_OSV_FILE_BYTES} bytes")
                with open(full, "rb") as handle:
                    yield name, handle.read()


def _zip_documents(path: str) -> Iterator[tuple[str, bytes]]:
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            if info.filename.endswith(".json"):
                if info.file_size > MAX_OSV_FILE_BYTES:
                    raise AdvisoryError(f"{path}: {info.filename} larger than {MAX_OSV_FILE_BYTES} bytes")
                yield info.filename, archive.read(info)


def _osv_advisories(record: dict[str, Any], name: str) -> Iterator[Advisory]:
    severity = _OSV_SEVERITY.get(str(record.get("database_specific", {}).get("severity", "")).upper(), Severity.HIGH)
    summary = record.get("summary") or (record.get("details") or "").split("\n", 1)[0][:200] or record["id"]
    for affected in record.get("affected", []):
        package = affected.get("package", {})
        if package.get("ecosystem") != "PyPI":
            continue
        ranges: list[Range] = []
        for span in affected.get("ranges", []):
            if span.get("type") == "ECOSYSTEM":
                ranges.extend(_osv_ranges(span.get("events", [])))
        yield Advisory(
            normalize(package["name"]),
            record["id"],
            tuple(record.get("aliases", [])),
            tuple(ranges),
            frozenset(str(v) for v in affected.get("versions", [])),
            severity,
            Capability.SERVER_CODE_EXECUTION,
            summary,
            f"OSV {name}",
        )


def _osv_ranges(events: list[dict[str, str]]) -> Iterator[Range]:
    """OSV events in order: each ``introduced`` opens a range that the next ``fixed``/``last_affected`` closes."""
    introduced: Version | None = None
    for event in events:
        if "introduced" in event:
            introduced = parse_version(event["introduced"]) or Version("0")
        elif introduced is not None and ("fixed" in event or "last_affected" in event):
            fixed = parse_version(event["fixed"]) if "fixed" in event else None
            last = parse_version(event["last_affected"]) if "last_affected" in event else None
            yield Range(introduced, fixed, last)
            introduced = None
    if introduced is not None:
        yield Range(introduced, None, None)


def matching(table: Iterable[Advisory], package: str, version: Version) -> list[Advisory]:
    wanted = normalize(package)
    return sorted(
        (advisory for advisory in table if advisory.package == wanted and advisory.affects(version)),
        key=lambda advisory: (-advisory.severity, advisory.id),
    )


def findings(
    table: Iterable[Advisory], package: str, version: Version, location: Location, where: str
) -> list[Finding]:
    """One MLO510 per advisory affecting ``package`` at ``version``; ``where`` says where the version was seen."""
    found = []
    for advisory in matching(table, package, version):
        message = f"{package} {version} ({where}) is affected by {advisory.id}: {advisory.summary}"
        evidence = {
            "package": package,
            "version": str(version),
            "advisory": advisory.id,
            "fixed_in": advisory.fixed_in,
            "source": advisory.source,
        }
        if advisory.aliases:
            evidence["aliases"] = ", ".join(advisory.aliases)
        found.append(
            VULNERABLE_VERSION.finding(
                location, message, evidence, severity=advisory.severity, capability=advisory.capability
            )
        )
    return found
