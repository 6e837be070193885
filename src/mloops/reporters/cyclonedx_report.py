"""CycloneDX 1.6 ML-BOM (``--format cyclonedx``), made with cyclonedx-python-lib: every model, dataset and
notebook scanned as a component with its hash, format and origin (any other file with findings too), and every
finding above info as a vulnerability that affects its component.

A local file's SHA-256 is of its bytes now (the file is read once more, outside the scan's budget: a BOM
names exactly what it describes); a remote object's identity is its URI and the version its store gave.
"""

from __future__ import annotations

import hashlib
import os

from cyclonedx.model import HashAlgorithm, HashType, Property
from cyclonedx.model.bom import Bom
from cyclonedx.model.component import Component, ComponentType
from cyclonedx.model.vulnerability import (
    BomTarget,
    Vulnerability,
    VulnerabilityRating,
    VulnerabilitySeverity,
    VulnerabilitySource,
)
from cyclonedx.output.json import JsonV1Dot6

from .. import __version__, formats
from ..core import FileResult, Finding, RemoteResult, Report, Severity

_TYPES = {"model": ComponentType.MACHINE_LEARNING_MODEL, "data": ComponentType.DATA, "notebook": ComponentType.FILE}
_SEVERITY = {
    Severity.CRITICAL: VulnerabilitySeverity.CRITICAL,
    Severity.HIGH: VulnerabilitySeverity.HIGH,
    Severity.MEDIUM: VulnerabilitySeverity.MEDIUM,
    Severity.LOW: VulnerabilitySeverity.LOW,
    Severity.INFO: VulnerabilitySeverity.INFO,
}
_SOURCE = VulnerabilitySource(name="mloops")
_CHUNK = 1 << 20


def render(report: Report, fail_on: Severity) -> str:
    bom = Bom()
    bom.metadata.tools.components.add(Component(type=ComponentType.APPLICATION, name="mloops", version=__version__))
    bom.metadata.properties.add(Property(name="mloops:exit_code", value=str(report.exit_code(fail_on))))
    components: dict[str, Component] = {}
    for result in report.files:
        component = _component(result)
        if component is not None:
            components[result.path] = component
            bom.components.add(component)
    for folder in report.dataset_folders:
        name = os.path.basename(os.path.normpath(folder)) or folder
        dataset = Component(type=ComponentType.DATA, name=name, bom_ref=f"dataset:{folder}")
        dataset.properties.add(Property(name="mloops:origin", value=os.path.abspath(folder)))
        bom.components.add(dataset)
    for index, finding in enumerate(report.findings):
        if finding.severity > Severity.INFO and finding.suppressed is None and finding.location.path in components:
            bom.vulnerabilities.add(_vulnerability(index, finding, components[finding.location.path]))
    return str(JsonV1Dot6(bom).output_as_string(indent=2)) + "\n"


def _component(result: FileResult) -> Component | None:
    """A model, data file or notebook as a component; any other file (a source, a manifest, an endpoint) only
    when it has findings, so that every finding affects a component."""
    fmt = formats.primary_format(result)
    kind = _TYPES.get(formats.info(fmt).inventory_group)
    if kind is None and not any(finding.severity > Severity.INFO for finding in result.findings):
        return None
    name = os.path.basename(result.path.rstrip("/")) or result.path
    component = Component(type=kind or ComponentType.FILE, name=name, bom_ref=result.path)
    component.properties.add(Property(name="mloops:format", value=fmt))
    component.properties.add(Property(name="mloops:verdict", value=formats.verdict(result)))
    component.properties.add(Property(name="mloops:origin", value=_origin(result)))
    if isinstance(result, RemoteResult):
        if result.version:
            component.properties.add(Property(name="mloops:version", value=result.version))
    else:
        digest = _sha256(result.path)
        if digest:
            component.hashes.add(HashType(alg=HashAlgorithm.SHA_256, content=digest))
    return component


def _origin(result: FileResult) -> str:
    """Where the component comes from: a hub repository and revision, a registry version, or a local path."""
    if result.origin:
        return result.origin
    if isinstance(result, RemoteResult):
        return result.path
    return os.path.abspath(result.path)


def _sha256(path: str) -> str | None:
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as handle:
            while chunk := handle.read(_CHUNK):
                digest.update(chunk)
    except OSError:
        return None  # unreadable now: the scan reported why
    return digest.hexdigest()


def _vulnerability(index: int, finding: Finding, component: Component) -> Vulnerability:
    vulnerability = Vulnerability(
        bom_ref=f"finding-{index}",
        id=finding.rule.id,
        source=_SOURCE,
        description=f"{finding.rule.title}: {finding.message} (at {finding.location})",
        detail=finding.rule.description,
        recommendation=finding.remediation,
        ratings=[VulnerabilityRating(source=_SOURCE, severity=_SEVERITY[finding.severity])],
        affects=[BomTarget(ref=component.bom_ref.value or finding.location.path)],
    )
    vulnerability.properties.add(Property(name="mloops:attack_class", value=finding.attack_class.slug))
    vulnerability.properties.add(Property(name="mloops:capability", value=finding.capability.slug))
    return vulnerability
