"""Platform fingerprints: one reviewed TOML file per platform under data/platforms/.

A fingerprint says how to recognise the platform (detect), how to read its version, and which features
it exposes: for each, a read-only request that succeeds only without authentication, and the attack an
open feature enables (data/platform_attacks.toml). Requests are GET, HEAD or OPTIONS by construction:
loading refuses anything else, so no fingerprint can change state on a target.
"""

from __future__ import annotations

import functools
import json
import os
import re
import tomllib
from typing import Any, NamedTuple

from ..core import Capability, Severity
from ..data import FOLDER, load_toml

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
PLATFORMS = os.path.join(FOLDER, "platforms")
VERIFIED = ("real", "replayed")


class FingerprintError(ValueError):
    """A fingerprint file that does not follow the schema."""


class Request(NamedTuple):
    method: str
    path: str
    headers: tuple[tuple[str, str], ...] = ()


class Response(NamedTuple):
    status: int
    headers: dict[str, str]  # lower-case names
    body: str  # decoded, capped

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError:
            return None


class Matcher(NamedTuple):
    status: frozenset[int]  # empty: any status
    body_all: tuple[str, ...]
    body_any: tuple[str, ...]
    headers: tuple[tuple[str, str], ...]  # (lower-case name, substring), all must match
    json_keys: tuple[str, ...]  # the body is a JSON object holding all of these keys
    json: bool  # the body parses as JSON (object or array)
    regex: re.Pattern[str] | None

    def matches(self, response: Response) -> bool:
        if self.status and response.status not in self.status:
            return False
        body = response.body
        if any(text not in body for text in self.body_all):
            return False
        if self.body_any and not any(text in body for text in self.body_any):
            return False
        for name, text in self.headers:  # the header must be there; "" asks for nothing more
            if name not in response.headers or text.lower() not in response.headers[name].lower():
                return False
        if self.json or self.json_keys:
            value = response.json()
            if not isinstance(value, dict | list):
                return False
            if self.json_keys and not (isinstance(value, dict) and all(key in value for key in self.json_keys)):
                return False
        return self.regex is None or self.regex.search(body) is not None


class Check(NamedTuple):
    request: Request
    matcher: Matcher


class Version(NamedTuple):
    request: Request
    matcher: Matcher  # the answer must match before the version is read from it
    json: str | None  # dotted path to the version in a JSON body
    header: str | None  # or a response header
    regex: re.Pattern[str] | None  # applied to the value (or the body); group 1 is the version


class Feature(NamedTuple):
    name: str
    attack: str
    check: Check  # matches only when the feature answers without credentials
    enforced: Matcher | None  # a platform-specific "login required" answer, beyond 401/403/login redirects
    count_path: str | None  # dotted JSON path of the list whose length the finding reveals
    reveals: str  # what is counted ("registered models")


class Fingerprint(NamedTuple):
    id: str
    name: str
    category: str
    package: str  # advisory-table name of the product ("" when it has none)
    ports: tuple[int, ...]
    generic: bool  # a protocol many products speak (OpenAI API, KServe v2): dropped when a product matches
    verified: str  # "real": tested against the real server; "replayed": against its documented responses
    verified_with: str
    auth_docs: str
    remediation: str
    detect: tuple[Check, ...]
    version: Version | None
    features: tuple[Feature, ...]


class Attack(NamedTuple):
    slug: str
    severity: Severity
    capability: Capability
    says: str


@functools.cache
def attacks() -> dict[str, Attack]:
    capabilities = {capability.slug: capability for capability in Capability}
    return {
        slug: Attack(slug, Severity.parse(spec["severity"]), capabilities[spec["capability"]], spec["says"])
        for slug, spec in load_toml("platform_attacks.toml").items()
        if isinstance(spec, dict)  # not the table's rule field
    }


@functools.cache
def fingerprints() -> tuple[Fingerprint, ...]:
    """Every fingerprint file, validated; sorted by id."""
    found = []
    for name in sorted(os.listdir(PLATFORMS)):
        if name.endswith(".toml"):
            path = os.path.join(PLATFORMS, name)
            with open(path, "rb") as handle:
                found.append(parse(name[: -len(".toml")], tomllib.load(handle)))
    return tuple(found)


def default_ports() -> tuple[int, ...]:
    return tuple(sorted({port for fingerprint in fingerprints() for port in fingerprint.ports}))


def parse(platform_id: str, data: dict[str, Any]) -> Fingerprint:
    """One fingerprint from its TOML table; FingerprintError names what is wrong."""
    try:
        return _parse(platform_id, data)
    except (KeyError, TypeError, ValueError, re.error) as exc:
        raise FingerprintError(f"platforms/{platform_id}.toml: {type(exc).__name__}: {exc}") from None


def _parse(platform_id: str, data: dict[str, Any]) -> Fingerprint:
    if data["verified"] not in VERIFIED:
        raise ValueError(f"verified must be one of {VERIFIED}")
    detect = tuple(_check(spec) for spec in data["detect"])
    if not detect:
        raise ValueError("no detect checks")
    features = tuple(_feature(spec) for spec in data.get("features", []))
    version = data.get("version")
    return Fingerprint(
        platform_id,
        data["name"],
        data["category"],
        data.get("package", ""),
        tuple(int(port) for port in data["ports"]),
        bool(data.get("generic", False)),
        data["verified"],
        data["verified_with"],
        data["auth_docs"],
        data["remediation"],
        detect,
        None if version is None else _version(version),
        features,
    )


def _request(spec: dict[str, Any]) -> Request:
    method = spec.get("method", "GET").upper()
    if method not in SAFE_METHODS:
        raise ValueError(f"method {method} could change state; only {sorted(SAFE_METHODS)} are allowed")
    path = spec["path"]
    if not path.startswith("/"):
        raise ValueError(f"path {path!r} must start with /")
    headers = tuple(sorted((str(k), str(v)) for k, v in spec.get("headers", {}).items()))
    return Request(method, path, headers)


_MATCHER_KEYS = {"status", "body_all", "body_any", "headers", "json_keys", "json", "regex"}


def _matcher(spec: dict[str, Any]) -> Matcher:
    unknown = set(spec) - _MATCHER_KEYS - {"method", "path", "headers_sent"}
    if unknown:
        raise ValueError(f"unknown matcher keys {sorted(unknown)}")
    regex = spec.get("regex")
    return Matcher(
        frozenset(int(code) for code in spec.get("status", [])),
        tuple(spec.get("body_all", [])),
        tuple(spec.get("body_any", [])),
        tuple((name.lower(), str(text)) for name, text in spec.get("headers", {}).items()),
        tuple(spec.get("json_keys", [])),
        bool(spec.get("json", False)),
        None if regex is None else re.compile(regex),
    )


def _check(spec: dict[str, Any]) -> Check:
    if {"body", "data"} & set(spec):
        raise ValueError("requests carry no body")
    # Headers to send are "headers_sent"; "headers" is what the answer must carry.
    request = _request(
        {"path": spec["path"], "method": spec.get("method", "GET"), "headers": spec.get("headers_sent", {})}
    )
    return Check(request, _matcher(spec))


def _version(spec: dict[str, Any]) -> Version:
    spec = dict(spec)
    regex = spec.pop("version_regex", None)
    json_path = spec.pop("version_json", None)
    header = spec.pop("version_header", None)
    if json_path is None and header is None and regex is None:
        raise ValueError("version needs version_json, version_header or version_regex")
    check = _check(spec)
    return Version(check.request, check.matcher, json_path, header and header.lower(), regex and re.compile(regex))


def _feature(spec: dict[str, Any]) -> Feature:
    if spec["attack"] not in attacks():
        raise ValueError(f"unknown attack {spec['attack']!r}")
    enforced = spec.get("enforced")
    return Feature(
        spec["name"],
        spec["attack"],
        _check(spec["open"] | {"path": spec["path"], "method": spec.get("method", "GET")}),
        None if enforced is None else _matcher(enforced),
        spec.get("count"),
        spec.get("reveals", ""),
    )


def json_path(value: Any, path: str) -> Any:
    """``a.b.0.c`` in a parsed JSON value; None when any step is missing."""
    for step in path.split("."):
        if isinstance(value, dict):
            value = value.get(step)
        elif isinstance(value, list) and step.isdigit() and int(step) < len(value):
            value = value[int(step)]
        else:
            return None
    return value


def read_version(version: Version, response: Response) -> str | None:
    """The version the answer states, or None."""
    if not version.matcher.matches(response):
        return None
    if version.json is not None:
        value = json_path(response.json(), version.json)
        text = value if isinstance(value, str) else None
    elif version.header is not None:
        text = response.headers.get(version.header)
    else:
        text = response.body
    if text is None:
        return None
    if version.regex is None:
        return text.strip()[:64] or None
    match = version.regex.search(text)
    return match.group(1)[:64] if match else None
