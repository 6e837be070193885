"""Credentials in notebooks and source files: cloud keys, private keys and ML-platform tokens.

A token pasted into a cell or printed into an output travels with every copy of the notebook and every
commit of the repository; whoever reads it gets the registry, tracking server or cloud account it guards.
Detection runs Yelp's detect-secrets plugins for well-known token formats, plus the reviewed ML-platform
patterns of data/secret_patterns.toml registered as detect-secrets regex plugins. Findings carry the kind,
the line and a redacted form: the value itself never leaves this module.
"""

from __future__ import annotations

import functools
import importlib
import re
from collections.abc import Callable, Collection, Iterator, Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

from .. import rules
from ..core import AttackClass, Capability, Finding, Location, Rule, Severity
from ..data import load_toml

if TYPE_CHECKING:
    from ..context import ScanContext


EXPOSED_SECRET = Rule(
    id="MLO330",
    name="exposed-secret",
    title="Credential exposed in a notebook or source file",
    severity=Severity.HIGH,
    attack_class=AttackClass.MISSING_AUTH,
    capability=Capability.CREDENTIAL_ACCESS,
    description=(
        "A cloud key, private key or ML-platform token (Hugging Face, OpenAI, Anthropic, W&B, MLflow, "
        "Databricks, ...) sits in a cell, an output or a source file. Notebooks and repositories are shared, "
        "so whoever reads the file gets past the authentication that guards the registry, the tracking server "
        "or the cloud account. The value is shown redacted."
    ),
    remediation=(
        "Revoke and rotate the credential now, then remove it from the file and its history (clear the "
        "notebook's outputs too); read credentials from the environment or a secret manager at run time."
    ),
    summary="Credential exposed in a notebook or source file.",
)


MAX_TEXT_CHARS = 4 * 1024 * 1024  # per text (a cell, an output, a source file); the rest is reported unsearched
WINDOW_CHARS = 4096  # long lines are searched in windows, so no regex ever works on more than this at once
OVERLAP_CHARS = 512  # longer than any token format, so a token cut by one window is whole in the next
# Unbroken base64 runs of 1 KiB or more (an image or binary in an output): no token can be told apart inside
# one, and blanking them keeps image data cheap. Shorter runs are searched, so a lone key still is.
_BASE64_BLOB = re.compile(r"[A-Za-z0-9+/=]{1024,}")

# detect-secrets plugins for token formats with a fixed shape: (module in detect_secrets.plugins, class).
# Left out: the entropy plugins on their own (every quoted base64 image, sha256 digest and git SHA in a
# notebook is "high entropy"; they run only behind a secret-named key, see _keyword_entropy_secrets), the
# keyword plugin (flags any `password = x`, names included), NPM (its `//.+/:_authToken` regex backtracks
# quadratically on hostile lines), public IPs (not secrets) and vendors unrelated to ML platforms.
_LIBRARY_PLUGINS = (
    ("aws", "AWSKeyDetector"),
    ("azure_storage_key", "AzureStorageKeyDetector"),
    ("private_key", "PrivateKeyDetector"),
    ("slack", "SlackDetector"),
    ("github_token", "GitHubTokenDetector"),
    ("gitlab_token", "GitLabTokenDetector"),
    ("basic_auth", "BasicAuthDetector"),
    ("openai", "OpenAIDetector"),
    ("pypi_token", "PypiTokenDetector"),
    ("stripe", "StripeDetector"),
    ("sendgrid", "SendGridDetector"),
)

# Plugins whose match is the whole token although their regex has a group (findall would give the group).
_WHOLE_MATCH = frozenset({"GitHub Token"})
# Plugins searched only when a literal every match contains is present: their regex backtracks badly on
# hostile runs of its prefix ("sk-sk-sk-...").
_REQUIRED_LITERAL = {"OpenAI Token": "T3BlbkFJ"}

# A quoted literal assigned to a secret-named key; its value must also pass detect-secrets' entropy limit.
_SECRET_KEY_ASSIGNMENT = re.compile(
    r"(?i)(?:secret|passw(?:or)?d|api_?key|access_?key|private_?key|auth_?token|access_?token)"
    r"[A-Za-z0-9_]{0,20}['\"\]]{0,2}\s{0,8}(?::=|=|:)\s{0,8}(['\"][^'\"\s]{16,200}['\"])"
)


class Secret(NamedTuple):
    kind: str
    line: int  # 1-based, within the text that was searched
    redacted: str


def redact(value: str) -> str:
    """At most the first 4 characters (fewer for short values) and the length; never the value."""
    shown = min(4, len(value) // 4)
    return f"{value[:shown]}… ({len(value)} characters)"


@functools.cache
def _plugins() -> tuple[Any, ...]:
    """detect-secrets plugin instances, imported on first use: the library costs ~150 ms to import.

    Plugins are instantiated directly and only their ``analyze_string`` is called: that is a pure regex
    search. detect-secrets' settings, custom-plugin loading from paths, git helpers and the ``verify``
    methods (which call vendors' APIs over the network) are never reached.
    """
    from detect_secrets.plugins.base import RegexBasedDetector
    from detect_secrets.plugins.jwt import JwtTokenDetector

    found = [getattr(importlib.import_module(f"detect_secrets.plugins.{m}"), c)() for m, c in _LIBRARY_PLUGINS]
    # The plugin's own regex may start at every "eyJ" inside a run and rescan it (quadratic on "eyJ-eyJ-...");
    # this one starts only at a token boundary. The plugin still validates header and payload as JSON.
    jwt = {"denylist": (re.compile(r"(?<![A-Za-z0-9_=-])eyJ[A-Za-z0-9_=-]+\.[A-Za-z0-9_=-]+(?:\.[A-Za-z0-9_=-]+)?"),)}
    found.append(type("BoundedJwtTokenDetector", (JwtTokenDetector,), jwt)())
    for entry in load_toml("secret_patterns.toml")["pattern"]:
        attributes = {"secret_type": entry["kind"], "denylist": (re.compile(entry["regex"]),)}
        found.append(type("MloopsPatternDetector", (RegexBasedDetector,), attributes)())
    return tuple(found)


@functools.cache
def _entropy_plugins() -> tuple[Any, ...]:
    from detect_secrets.plugins.high_entropy_strings import Base64HighEntropyString, HexHighEntropyString

    # Behind a secret-named key a lower base64 limit than the library's 4.5 is safe: random 32-character keys
    # score about 4.6 with some spread, words and placeholders ("change-me-before-deploying") stay under 4.
    return (HexHighEntropyString(), Base64HighEntropyString(limit=4.0))


def _is_placeholder(value: str) -> bool:
    from detect_secrets.filters.heuristic import is_potential_uuid, is_sequential_string, is_templated_secret

    return is_templated_secret(value) or is_sequential_string(value) or is_potential_uuid(value)


def _keyword_entropy_secrets(chunk: str) -> Iterator[str]:
    """Random-looking literals assigned to secret-named keys, judged by detect-secrets' entropy limits."""
    for match in _SECRET_KEY_ASSIGNMENT.finditer(chunk):
        quoted = match.group(1)
        for plugin in _entropy_plugins():
            for value in plugin.analyze_string(quoted):
                if plugin.calculate_shannon_entropy(value) > plugin.entropy_limit:
                    yield value
                    break


def _windows(text: str) -> Iterator[tuple[int, str]]:
    """(offset, chunk) pairs covering ``text``: whole lines up to WINDOW_CHARS, long lines cut with overlap."""
    start, size = 0, len(text)
    while start < size:
        end = min(start + WINDOW_CHARS, size)
        following = end
        if end < size:
            cut = text.rfind("\n", start, end)
            if cut > start:
                end = following = cut + 1
            else:
                following = end - OVERLAP_CHARS
        yield start, text[start:end]
        start = following


_NUCLEOTIDES = frozenset("ACGTUN")


def _standalone_key_id(chunk: str, value: str) -> bool:
    """An AWS key id stands alone (its 20 characters are not cut from a longer run of letters and digits)
    and is not a nucleotide sequence: the library's pattern (ACCA, AKIA, ... then 16 of A-Z0-9) has no
    boundaries, so DNA (ACCA...) and protein sequences (...AKIA...) match it."""
    if set(value) <= _NUCLEOTIDES:
        return False
    for match in re.finditer(re.escape(value), chunk):
        before = chunk[match.start() - 1] if match.start() else " "
        after = chunk[match.end()] if match.end() < len(chunk) else " "
        if not before.isalnum() and not after.isalnum():
            return True
    return False


def _candidates(chunk: str) -> Iterator[tuple[str, str]]:
    """(kind, value) pairs the plugins find in one chunk."""
    for plugin in _plugins():
        if plugin.secret_type in _REQUIRED_LITERAL and _REQUIRED_LITERAL[plugin.secret_type] not in chunk:
            continue
        if plugin.secret_type in _WHOLE_MATCH:
            values: Iterator[str] = (m.group(0) for regex in plugin.denylist for m in regex.finditer(chunk))
        else:
            values = plugin.analyze_string(chunk)
        for value in values:
            if plugin.secret_type != "AWS Access Key" or _standalone_key_id(chunk, value):
                yield plugin.secret_type, value
    for value in _keyword_entropy_secrets(chunk):
        yield "High-entropy secret value", value


def find_secrets(
    text: str, check_time: Callable[[], None] | None = None, known: Collection[str] = frozenset()
) -> list[Secret]:
    """Secrets in the first MAX_TEXT_CHARS characters of ``text``: one per distinct value, at its first line.

    ``check_time`` is called between windows (pass ``ctx.budget.check_time``); values in ``known`` were
    already reported by another rule and are left out.
    """
    text = text[:MAX_TEXT_CHARS]
    seen: set[str] = set(known)
    found: list[Secret] = []
    line_at_start, previous = 1, 0
    for offset, chunk in _windows(text):
        if check_time is not None:
            check_time()
        line_at_start += text.count("\n", previous, offset)
        previous = offset
        for kind, value in _candidates(_BASE64_BLOB.sub(" ", chunk)):
            if value and value not in seen and not _is_placeholder(value):
                seen.add(value)
                line = line_at_start + chunk.count("\n", 0, max(chunk.find(value), 0))
                found.append(Secret(kind, line, redact(value)))
    return sorted(found, key=lambda secret: secret.line)


def report_secrets(
    ctx: ScanContext,
    location: Location,
    text: str,
    where: Mapping[str, str],
    known: Collection[str] = frozenset(),
    accept: Callable[[list[Finding]], list[Finding]] = list,
) -> None:
    """One MLO330 finding per secret in ``text`` and not in ``known`` (values MLO327 already reported);
    ``where`` (e.g. {"cell": "3", "output": "0"}) says where; ``accept`` marks those the source's own
    ignore comments accept."""
    place = ", ".join(f"{key} {value}" for key, value in where.items())
    prefix = f"{place}, " if place else ""
    found = []
    for secret in find_secrets(text, ctx.budget.check_time, known):
        message = f"{secret.kind} exposed ({prefix}line {secret.line}): {secret.redacted}"
        evidence = {"kind": secret.kind, "line": str(secret.line), "redacted": secret.redacted, **where}
        found.append(EXPOSED_SECRET.finding(location, message, evidence))
    for finding in accept(found):
        ctx.report(finding)
    if len(text) > MAX_TEXT_CHARS:
        # Large outputs are nearly always data (images, tables); a note rather than a failure.
        message = f"secrets searched in the first {MAX_TEXT_CHARS} of {len(text)} characters only ({place or 'text'})"
        ctx.report(rules.SCAN_LIMIT.finding(location, message, dict(where), severity=Severity.LOW))
