"""The one vocabulary every part of mloops speaks: assets, findings and the report.

Analyzers, sources and reporters exchange only these types, so a new format, a
network probe or a manifest check plugs in without touching the others.
"""

from __future__ import annotations

import enum
import hashlib
from collections import Counter
from collections.abc import Mapping
from typing import NamedTuple


class ParseError(Exception):
    """An input breaks the rules of its format: the base of every parser's and analyzer's decode error, so
    that a caller can tell a malformed file (a finding) from a fault of the scanner (a crash)."""


class UsageError(Exception):
    """A problem with what the user asked for (a missing path, a bad target, an unreadable advisory dump):
    reported in one line, exit 2."""


class Severity(enum.IntEnum):
    INFO = 0
    LOW = 1
    MEDIUM = 2
    HIGH = 3
    CRITICAL = 4

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, text: str) -> Severity:
        return cls[text.strip().upper()]


class AttackClass(enum.Enum):
    """The research taxonomy ("From MLOps to MLOops"): where an attack enters, and where it leads."""

    MALICIOUS_MODEL = (
        "malicious-model",
        "a model file that runs code or touches the host when it is loaded",
        "A poisoned model runs code on whoever loads it. On a data scientist's machine it finds registry "
        "credentials, backdoors every model in the registry, and reaches every consumer that pulls them (the "
        "'ML worm'); uploaded to a serving platform it takes over the serving container, a step away from "
        "escaping to the node.",
    )
    MALICIOUS_DATASET = (
        "malicious-dataset",
        "a dataset whose loading runs code",
        "A dataset that runs code when loaded compromises every training job and notebook that uses it.",
    )
    NOTEBOOK_XSS = (
        "notebook-xss",
        "active content in a notebook, which runs with the user's kernel",
        "Script in a notebook output drives the kernel: cross-site scripting becomes code execution on the "
        "Jupyter host, which usually holds registry credentials.",
    )
    MISSING_AUTH = (
        "missing-auth",
        "an ML platform reachable without authentication",
        "An open registry lets anyone replace models; open pipelines and notebooks run code by design.",
    )
    CONTAINER_ESCAPE = (
        "container-escape",
        "a serving or pipeline container an attacker can leave",
        "Code running in a model server reaches the node or the cluster through the container's privileges.",
    )
    VULNERABLE_PLATFORM = (
        "vulnerable-platform",
        "an ML platform version with known vulnerabilities",
        "A known CVE in the platform gives the first foothold for the chains above.",
    )

    def __init__(self, slug: str, description: str, chain: str) -> None:
        self.slug = slug
        self.description = description
        self.chain = chain


class Capability(enum.Enum):
    """What a finding hands an attacker; attack chains are built from these links."""

    CODE_EXECUTION = ("code-execution", "runs attacker code on whoever loads the file")
    FILE_ACCESS = ("file-access", "reads or writes files on the machine that loads the file")
    NETWORK_ACCESS = ("network-access", "opens network connections from the machine that loads the file")
    SCANNER_EVASION = (
        "scanner-evasion",
        "hides content from scanners while a lenient loader may still run it",
    )
    DENIAL_OF_SERVICE = (
        "denial-of-service",
        "makes whoever loads the file hang or run out of memory",
    )
    CREDENTIAL_ACCESS = (
        "credential-access",
        "hands whoever reads the file a credential for a platform or cloud account",
    )
    # What an exposed platform hands whoever reaches its port.
    SERVER_CODE_EXECUTION = (
        "server-code-execution",
        "runs attacker code on the platform's hosts, workers or kernels",
    )
    MODEL_TAMPERING = (
        "model-tampering",
        "lets an attacker register, replace or delete the models other people and services load",
    )
    DATA_EXPOSURE = (
        "data-exposure",
        "hands anyone who asks the models, datasets, experiments or configuration the platform holds",
    )
    SERVER_FILE_ACCESS = ("server-file-access", "reads files on the platform's host")

    def __init__(self, slug: str, description: str) -> None:
        self.slug = slug
        self.description = description


class Location(NamedTuple):
    """Where something was found: a file, members nested inside it, and a byte offset.

    The offset is relative to the innermost member (or to the file when there are no members).
    """

    path: str
    members: tuple[str, ...] = ()
    offset: int | None = None

    def child(self, member: str) -> Location:
        return Location(self.path, (*self.members, member))

    def at(self, offset: int | None) -> Location:
        return Location(self.path, self.members, offset)

    @property
    def nested_name(self) -> str:
        """``outer.zip!inner.tar!data.pkl`` style name, without the offset."""
        return "!".join((self.path, *self.members))

    def __str__(self) -> str:
        if self.offset is None:
            return self.nested_name
        return f"{self.nested_name} @ byte {self.offset}"


class Rule(NamedTuple):
    """A stable check: its id never changes meaning, so users can suppress or track it."""

    id: str
    name: str
    title: str
    severity: Severity
    attack_class: AttackClass
    capability: Capability
    description: str
    remediation: str
    operational: bool = False  # the scan itself failed: the CLI exits 2
    shared: bool = False  # any analyzer may report it: its findings take the attack class of the surface
    summary: str = ""  # one line for the README's rule table
    severities: str = ""  # the severities its findings take, when not only ``severity`` (README)

    def finding(
        self,
        location: Location,
        message: str,
        evidence: Mapping[str, str] | None = None,
        *,
        severity: Severity | None = None,
        capability: Capability | None = None,
    ) -> Finding:
        return Finding(
            rule=self,
            severity=self.severity if severity is None else severity,
            location=location,
            message=message,
            evidence=dict(evidence or {}),
            capability=self.capability if capability is None else capability,
        )


_VOLATILE_EVIDENCE = frozenset({"line", "rule_severity"})  # rule_severity: set when a configuration overrides it
INLINE_SUPPRESSION = "inline"  # how the reason of a suppression written in the source starts


class Finding(NamedTuple):
    rule: Rule
    severity: Severity
    location: Location
    message: str
    evidence: dict[str, str]
    capability: Capability
    surface: AttackClass | None = None  # a shared rule's finding: the attack class of where it occurred
    suppressed: str | None = None  # why an accepted finding (a baseline, an inline ignore) is reported but not counted

    @property
    def attack_class(self) -> AttackClass:
        return self.surface or self.rule.attack_class

    @property
    def remediation(self) -> str:
        return self.rule.remediation

    def stable_key(self) -> str:
        """What identifies the finding across scans: rule, file, member and evidence, but no byte offset or
        line, which move when the file around it is edited."""
        evidence = sorted((key, value) for key, value in self.evidence.items() if key not in _VOLATILE_EVIDENCE)
        text = repr((self.rule.id, self.location.path, self.location.members, evidence))
        return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()

    def sort_key(self) -> tuple:
        loc = self.location
        return (loc.path, -self.severity, loc.members, -1 if loc.offset is None else loc.offset, self.rule.id)


class Asset(NamedTuple):
    """Something that was scanned: a file, an archive member or a nested stream."""

    location: Location
    format: str
    size: int | None = None


class FileResult:
    """Everything learned about one top-level file; ``origin`` names what it is a copy of, when its place says
    (a Hugging Face cache's snapshot file: its repository, commit and name)."""

    origin: str | None = None

    def __init__(self, path: str, findings: list[Finding] | None = None, assets: list[Asset] | None = None) -> None:
        self.path = path
        self.findings: list[Finding] = findings or []
        self.assets: list[Asset] = assets or []

    @property
    def formats(self) -> list[str]:
        return sorted({a.format for a in self.assets})


class RemoteResult(FileResult):
    """A remote object scanned where it is stored (``path``: its URI): its size, what the scan read of it, and
    its version (ETag or revision) when the store gives one."""

    size: int | None = None
    bytes_read = 0
    requests = 0
    version: str | None = None


class EndpointResult(FileResult):
    """What one answering endpoint of ``mloops probe`` showed; ``path`` is its URL."""


class EnvironmentResult(FileResult):
    """What ``audit-env`` found in one Python environment (``path``: its interpreter) or ``inspect-runtime`` in
    the running container (``path``: the root it read)."""


class Report:
    """The results of one ``mloops scan``: one per file, and per folder that could not be read."""

    subject = "files"  # what the results are about, as the reports name it
    excluded = 0  # local files the configuration left out

    def __init__(
        self, files: list[FileResult], duration_seconds: float, dataset_folders: list[str] | None = None
    ) -> None:
        self.files = files
        self.duration_seconds = duration_seconds
        self.dataset_folders = dataset_folders or []  # folders laid out as datasets (card, metadata, script)

    @property
    def findings(self) -> list[Finding]:
        return sorted((f for r in self.files for f in r.findings), key=Finding.sort_key)

    @property
    def assets(self) -> list[Asset]:
        return [a for r in self.files for a in r.assets]

    @property
    def has_operational_errors(self) -> bool:
        return any(f.rule.operational for r in self.files for f in r.findings)

    @property
    def suppressed_count(self) -> int:
        return sum(1 for r in self.files for f in r.findings if f.suppressed is not None)

    def counts(self) -> dict[Severity, int]:
        """Findings per severity, the accepted ones left out."""
        counter = Counter(f.severity for r in self.files for f in r.findings if f.suppressed is None)
        return {sev: counter.get(sev, 0) for sev in sorted(Severity, reverse=True)}

    def exit_code(self, fail_on: Severity) -> int:
        """0 clean, 1 findings at or above ``fail_on`` (accepted ones aside), 2 when some input could not be
        scanned."""
        if self.has_operational_errors:
            return 2
        if any(f.severity >= fail_on and f.suppressed is None for r in self.files for f in r.findings):
            return 1
        return 0


class ProbeReport(Report):
    """The answering endpoints of one ``mloops probe``, and how many it tried."""

    subject = "endpoints"

    def __init__(self, endpoints: list[EndpointResult], duration_seconds: float, probed: int) -> None:
        super().__init__(list(endpoints), duration_seconds)
        self.probed = probed  # endpoints tried, answering or not


class EnvironmentReport(Report):
    """``mloops audit-env`` of one Python environment."""

    subject = "environment"

    def __init__(self, environment: EnvironmentResult, duration_seconds: float) -> None:
        super().__init__([environment], duration_seconds)


class RuntimeReport(EnvironmentReport):
    """``mloops inspect-runtime`` of the container it runs in."""

    subject = "runtime"
