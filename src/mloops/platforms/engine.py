"""Probe endpoints concurrently, match fingerprints, and turn what answered into findings.

Per endpoint: ``GET /`` first (is anything there?), then every fingerprint's detection requests at once,
each distinct request sent once and its answer shared. A recognised platform then gets its version
request and one request per feature; the answers decide open, protected or unclear.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Awaitable, Callable, Iterable

from ..core import Asset, AttackClass, Capability, EndpointResult, Finding, Location, ProbeReport, Rule, Severity
from . import advisories
from . import fingerprints as fp
from .client import Client, Failure
from .targets import Endpoint

_AUTH_FIX = (
    "Turn on the platform's authentication (see its auth documentation) or put it behind an authenticating "
    "proxy, and bind it to a private interface."
)
PLATFORM_DETECTED = Rule(
    id="MLO500",
    name="platform-detected",
    title="ML platform found at this address",
    severity=Severity.INFO,
    attack_class=AttackClass.MISSING_AUTH,
    capability=Capability.DATA_EXPOSURE,
    description=(
        "A fingerprint matched: the platform, its version when it tells, and the features it exposes. Whether "
        "those features need a login is reported separately (MLO501, MLO502, MLO503)."
    ),
    remediation="Nothing to fix by itself; keep an inventory of where your ML platforms listen.",
    summary="`mloops probe` recognised an ML platform: version and features.",
)
PLATFORM_OPEN = Rule(
    id="MLO501",
    name="platform-unauthenticated",
    title="ML platform feature answers without authentication",
    severity=Severity.HIGH,
    attack_class=AttackClass.MISSING_AUTH,
    capability=Capability.SERVER_CODE_EXECUTION,
    description=(
        "A read-only request to a feature of the platform (registry, jobs, kernels, files, serving "
        "management) succeeded without credentials. Whoever reaches the port can use the feature: submit jobs "
        "or open kernels (code execution by design: critical), register or overwrite models, or read files "
        "(high), or read models, experiments and configuration (medium). The evidence shows the request and "
        "what it revealed; mloops never tried the attack itself."
    ),
    remediation=_AUTH_FIX,
    summary=(
        "A platform feature answers a read-only request without credentials; severity from the attack it enables (job"
        " or kernel execution critical, registry hijack and file reads high, data exposure medium, public apps low)."
    ),
    severities="critical to low",
)
PLATFORM_AUTH_ENFORCED = Rule(
    id="MLO502",
    name="platform-auth-enforced",
    title="ML platform requires authentication",
    severity=Severity.INFO,
    attack_class=AttackClass.MISSING_AUTH,
    capability=Capability.DATA_EXPOSURE,
    description="The platform's features answered 401/403, redirected to a login page or asked for a token.",
    remediation="Nothing to fix; make sure the credentials are not the defaults.",
    summary="Every feature checked asks for credentials (401/403, login redirect, token).",
)
PLATFORM_AUTH_UNKNOWN = Rule(
    id="MLO503",
    name="platform-auth-unknown",
    title="ML platform found, but whether it requires authentication is unclear",
    severity=Severity.LOW,
    attack_class=AttackClass.MISSING_AUTH,
    capability=Capability.DATA_EXPOSURE,
    description=(
        "The platform was recognised, but its feature requests gave answers that neither prove open access nor "
        "show a login (an error, a proxy page, an unexpected status). It may be open."
    ),
    remediation=("Check by hand whether the platform asks for credentials; " + _AUTH_FIX[0].lower() + _AUTH_FIX[1:]),
    summary="The platform was recognised but its answers neither prove open access nor show a login.",
)
TARGET_UNREACHABLE = Rule(
    id="MLO904",
    name="target-unreachable",
    title="A probe target could not be reached",
    severity=Severity.HIGH,
    attack_class=AttackClass.MISSING_AUTH,
    capability=Capability.SCANNER_EVASION,
    description=(
        "An address named explicitly (a URL or host:port) refused the connection, timed out or did not speak "
        "HTTP, so nothing there was checked. Ports found closed while sweeping a host or a network are not "
        "reported."
    ),
    remediation="Check the address, the port and the firewall between mloops and the target, and probe again.",
    operational=True,
    summary="A probe target named explicitly gave no HTTP answer (exit 2).",
)


Answer = fp.Response | Failure
Fetch = Callable[[fp.Request], Awaitable[Answer]]

ROOT = fp.Request("GET", "/")
_LOGIN_WORDS = ("login", "signin", "sign_in", "sign-in", "auth", "sso", "oauth")
OPEN, ENFORCED, UNKNOWN = "open", "enforced", "unknown"


def run(
    endpoints: list[Endpoint],
    catalog: tuple[fp.Fingerprint, ...],
    table: tuple[advisories.Advisory, ...],
    timeout: float,
    concurrency: int,
    progress: bool,
) -> ProbeReport:
    started = time.monotonic()
    results = asyncio.run(_run_all(endpoints, catalog, table, timeout, concurrency, progress))
    answered = [result for result in results if result is not None]
    return ProbeReport(answered, time.monotonic() - started, len(endpoints))


async def _run_all(
    endpoints: list[Endpoint],
    catalog: tuple[fp.Fingerprint, ...],
    table: tuple[advisories.Advisory, ...],
    timeout: float,
    concurrency: int,
    progress: bool,
) -> list[EndpointResult | None]:
    client = Client(timeout, concurrency)
    bar = _Progress(len(endpoints), progress)
    # Endpoints start in batches so that a /16 sweep does not hold a million coroutines at once.
    slots = asyncio.Semaphore(max(concurrency * 2, 16))

    async def one(endpoint: Endpoint) -> EndpointResult | None:
        async with slots:
            try:
                return await probe_endpoint(client, endpoint, catalog, table)
            finally:
                bar.advance()

    try:
        return list(await asyncio.gather(*(one(endpoint) for endpoint in endpoints)))
    finally:
        bar.close()
        await client.close()


async def probe_endpoint(
    client: Client, endpoint: Endpoint, catalog: tuple[fp.Fingerprint, ...], table: tuple[advisories.Advisory, ...]
) -> EndpointResult | None:
    base = endpoint.base
    first = await client.fetch(base, ROOT)
    if _wants_tls(first) and base.startswith("http://"):
        base = "https://" + base[len("http://") :]
        first = await client.fetch(base, ROOT)
    location = Location(base)
    if isinstance(first, Failure):
        if not endpoint.explicit:
            return None  # a closed port in a sweep
        message = f"no HTTP answer from {base}: {first.reason}"
        return EndpointResult(base, [TARGET_UNREACHABLE.finding(location, message)])
    fetch = _cached_fetch(client, base, first)
    result = EndpointResult(base, [], [Asset(location, "http-service")])
    for fingerprint in await recognise(fetch, catalog):
        result.assets.append(Asset(location, fingerprint.id))
        result.findings.extend(await assess(fetch, fingerprint, location, table))
    return result


def _wants_tls(answer: Answer) -> bool:
    """A TLS port spoken to in plain HTTP: a broken answer, or a 400 that says so."""
    if isinstance(answer, Failure):
        return not answer.reason.startswith("connection failed")
    return answer.status == 400 and "https" in answer.body.lower()


def _cached_fetch(client: Client, base: str, first: fp.Response) -> Fetch:
    """Each distinct request is sent once; every caller awaits the same future."""
    answered: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
    answered.set_result(first)
    answers: dict[fp.Request, asyncio.Future[Answer]] = {ROOT: answered}

    async def fetch(request: fp.Request) -> Answer:
        if request not in answers:
            answers[request] = asyncio.ensure_future(client.fetch(base, request))
        return await answers[request]

    return fetch


async def recognise(fetch: Fetch, catalog: Iterable[fp.Fingerprint]) -> list[fp.Fingerprint]:
    """The fingerprints whose detection matches; protocol-only ones give way to a product."""
    catalog = tuple(catalog)
    requests = {check.request for fingerprint in catalog for check in fingerprint.detect}
    answers = dict(zip(requests, await asyncio.gather(*(fetch(r) for r in requests)), strict=True))
    matched = [
        fingerprint
        for fingerprint in catalog
        if any(_matches(check.matcher, answers[check.request]) for check in fingerprint.detect)
    ]
    products = [fingerprint for fingerprint in matched if not fingerprint.generic]
    return products or matched


def _matches(matcher: fp.Matcher, answer: Answer) -> bool:
    return not isinstance(answer, Failure) and matcher.matches(answer)


async def assess(
    fetch: Fetch, fingerprint: fp.Fingerprint, location: Location, table: tuple[advisories.Advisory, ...]
) -> list[Finding]:
    version = None
    if fingerprint.version is not None:
        answer = await fetch(fingerprint.version.request)
        if not isinstance(answer, Failure):
            version = fp.read_version(fingerprint.version, answer)
    answers = await asyncio.gather(*(fetch(feature.check.request) for feature in fingerprint.features))
    verdicts = [
        (feature, answer, verdict(feature, answer))
        for feature, answer in zip(fingerprint.features, answers, strict=True)
    ]
    findings = [_detected(fingerprint, location, version, verdicts)]
    findings += [_open(fingerprint, location, feature, answer) for feature, answer, v in verdicts if v == OPEN]
    if verdicts and all(v == ENFORCED for _, _, v in verdicts):
        findings.append(_protected(fingerprint, location, verdicts))
    elif verdicts and not any(v == OPEN for _, _, v in verdicts):
        findings.append(_unclear(fingerprint, location, verdicts))
    findings += _vulnerable(fingerprint, location, version, table)
    return findings


def verdict(feature: fp.Feature, answer: Answer) -> str:
    if isinstance(answer, Failure):
        return UNKNOWN
    if feature.check.matcher.matches(answer):
        return OPEN
    if answer.status in (401, 403, 407) or (feature.enforced is not None and feature.enforced.matches(answer)):
        return ENFORCED
    if 300 <= answer.status < 400 and any(word in answer.headers.get("location", "").lower() for word in _LOGIN_WORDS):
        return ENFORCED
    return UNKNOWN


def _answered(answer: Answer) -> str:
    return answer.reason if isinstance(answer, Failure) else f"HTTP {answer.status}"


def _detected(
    fingerprint: fp.Fingerprint, location: Location, version: str | None, verdicts: list[tuple[fp.Feature, Answer, str]]
) -> Finding:
    shown = f"{fingerprint.name} {version}" if version else f"{fingerprint.name} (version not shown)"
    features = ", ".join(f"{feature.name}: {v}" for feature, _, v in verdicts) or "no features checked"
    evidence = {
        "platform": fingerprint.id,
        "category": fingerprint.category,
        "version": version or "unknown",
        "features": features,
        "fingerprint": f"{fingerprint.verified} ({fingerprint.verified_with})",
    }
    return PLATFORM_DETECTED.finding(location, f"{shown} at {location.path}; {features}", evidence)


def _open(fingerprint: fp.Fingerprint, location: Location, feature: fp.Feature, answer: Answer) -> Finding:
    attack = fp.attacks()[feature.attack]
    request = feature.check.request
    revealed = _revealed(feature, answer)
    message = (
        f"{fingerprint.name} {feature.name} answers without authentication ({request.method} {request.path}: "
        f"{_answered(answer)}{revealed}); without credentials, {attack.says}"
    )
    evidence = {
        "platform": fingerprint.id,
        "feature": feature.name,
        "attack": attack.slug,
        "request": f"{request.method} {location.path}{request.path}",
        "status": _answered(answer),
        "fix": fingerprint.remediation,
        "auth_docs": fingerprint.auth_docs,
    }
    if revealed:
        evidence["reveals"] = revealed.removeprefix(", ")
    return PLATFORM_OPEN.finding(location, message, evidence, severity=attack.severity, capability=attack.capability)


def _revealed(feature: fp.Feature, answer: Answer) -> str:
    if feature.count_path is None or isinstance(answer, Failure):
        return ""
    value = answer.json()
    items = fp.json_path(value, feature.count_path) if feature.count_path else value
    if items is None and isinstance(value, dict):
        items = []  # protobuf-style JSON leaves empty lists out
    if not isinstance(items, list | dict):
        return ""
    return f", {len(items)} {feature.reveals}"


def _statuses(verdicts: list[tuple[fp.Feature, Answer, str]]) -> str:
    return "; ".join(f"{feature.check.request.path}: {_answered(answer)}" for feature, answer, _ in verdicts)


def _protected(
    fingerprint: fp.Fingerprint, location: Location, verdicts: list[tuple[fp.Feature, Answer, str]]
) -> Finding:
    message = f"{fingerprint.name} asks for credentials on every feature checked ({_statuses(verdicts)})"
    evidence = {"platform": fingerprint.id, "answers": _statuses(verdicts)}
    return PLATFORM_AUTH_ENFORCED.finding(location, message, evidence)


def _unclear(
    fingerprint: fp.Fingerprint, location: Location, verdicts: list[tuple[fp.Feature, Answer, str]]
) -> Finding:
    message = f"{fingerprint.name}: could not tell whether features need credentials ({_statuses(verdicts)})"
    evidence = {
        "platform": fingerprint.id,
        "answers": _statuses(verdicts),
        "fix": fingerprint.remediation,
        "auth_docs": fingerprint.auth_docs,
    }
    return PLATFORM_AUTH_UNKNOWN.finding(location, message, evidence)


def _vulnerable(
    fingerprint: fp.Fingerprint, location: Location, version: str | None, table: tuple[advisories.Advisory, ...]
) -> list[Finding]:
    if not fingerprint.package or version is None:
        return []
    parsed = advisories.parse_version(version)
    if parsed is None:
        return []
    return advisories.findings(table, fingerprint.package, parsed, location, f"reported by {location.path}")


class _Progress:
    """A one-line counter on stderr, redrawn at most ten times a second, only on a terminal."""

    def __init__(self, total: int, enabled: bool) -> None:
        self.total = total
        self.done = 0
        self.enabled = enabled and sys.stderr.isatty()
        self._drawn = 0.0

    def advance(self) -> None:
        self.done += 1
        now = time.monotonic()
        if self.enabled and (now - self._drawn > 0.1 or self.done == self.total):
            self._drawn = now
            sys.stderr.write(f"\rmloops probe: {self.done}/{self.total} endpoints")
            sys.stderr.flush()

    def close(self) -> None:
        if self.enabled:
            sys.stderr.write("\n")
