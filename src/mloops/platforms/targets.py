"""What the user named, turned into endpoints: a URL, ``host:port``, a host, or a CIDR network.

A URL or ``host:port`` is one endpoint, and failing to reach it is reported. A host or a network is probed
on each port of the list (by default every fingerprint's default ports); closed ports there are expected
and stay silent.
"""

from __future__ import annotations

import ipaddress
import re
from typing import NamedTuple
from urllib.parse import urlsplit

from ..core import UsageError

MAX_ENDPOINTS = 1 << 20  # a /16 on 16 ports; beyond that the user wants a dedicated port scanner first
_HOST = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$")


class TargetError(UsageError):
    """A target or port list that cannot be understood."""


class Endpoint(NamedTuple):
    base: str  # scheme://host:port, with the URL's path prefix when one was given
    explicit: bool  # named one by one: an unreachable endpoint is reported


def parse_ports(text: str, defaults: tuple[int, ...]) -> tuple[int, ...]:
    """``default``, or a comma-separated list of ports and ranges (``5000,8000-8010``)."""
    if text.strip() == "default":
        return defaults
    ports: set[int] = set()
    for part in text.split(","):
        part = part.strip()
        low, _, high = part.partition("-")
        try:
            first, last = int(low), int(high or low)
        except ValueError:
            raise TargetError(f"bad port list {text!r}: {part!r} is not a port or a range") from None
        if not 1 <= first <= last <= 65535:
            raise TargetError(f"bad port list {text!r}: ports run from 1 to 65535")
        ports.update(range(first, last + 1))
    return tuple(sorted(ports))


def expand(targets: list[str], ports: tuple[int, ...]) -> list[Endpoint]:
    """Endpoints in the order the targets were given, each once."""
    endpoints: dict[str, Endpoint] = {}
    for target in targets:
        for endpoint in _endpoints(target.strip(), ports):
            if endpoint.base not in endpoints or endpoint.explicit:
                endpoints[endpoint.base] = endpoint
            if len(endpoints) > MAX_ENDPOINTS:
                raise TargetError(f"more than {MAX_ENDPOINTS} endpoints; split the network or name fewer ports")
    return list(endpoints.values())


def _endpoints(target: str, ports: tuple[int, ...]) -> list[Endpoint]:
    if not target:
        raise TargetError("empty target")
    if "://" in target:
        return [_url(target)]
    if "/" in target:
        return [Endpoint(_base("http", str(host), port), False) for host in _network(target) for port in ports]
    host, port = _host_and_port(target)
    if port is not None:
        return [Endpoint(_base("http", host, port), True)]
    return [Endpoint(_base("http", host, port), False) for port in ports]


def _url(target: str) -> Endpoint:
    parts = urlsplit(target)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise TargetError(f"bad target {target!r}: only http:// and https:// URLs with a host")
    if parts.username or parts.password:
        raise TargetError(f"bad target {target!r}: mloops never sends credentials; drop them from the URL")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise TargetError(f"bad target {target!r}: bad port") from None
    return Endpoint(_base(parts.scheme, parts.hostname, port) + parts.path.rstrip("/"), True)


def _network(target: str) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    try:
        network = ipaddress.ip_network(target, strict=False)
    except ValueError:
        raise TargetError(f"bad target {target!r}: not a CIDR network") from None
    if network.num_addresses > MAX_ENDPOINTS:
        raise TargetError(f"bad target {target!r}: network larger than {MAX_ENDPOINTS} addresses")
    return list(network.hosts()) if network.num_addresses > 2 else list(network)


def _host_and_port(target: str) -> tuple[str, int | None]:
    host, port_text = target, None
    if target.startswith("["):  # [::1]:8080
        host, _, rest = target[1:].partition("]")
        port_text = rest[1:] if rest.startswith(":") else None
    elif target.count(":") == 1:
        host, port_text = target.split(":")
    if not _valid_host(host):
        raise TargetError(f"bad target {target!r}: not a URL, host, host:port or CIDR network")
    if port_text is None:
        return host, None
    if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise TargetError(f"bad target {target!r}: bad port")
    return host, int(port_text)


def _valid_host(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return bool(_HOST.match(host))


def _base(scheme: str, host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"{scheme}://{shown}:{port}"
