"""Docker Compose files: the same escapes as in Kubernetes, in Compose's own spelling, plus published ports.

A port published without a host address binds every interface of the machine; for an ML platform (most have
no authentication of their own) that is exposure.
"""

from __future__ import annotations

import re
from typing import Any

from ..context import Item, ScanContext
from ..core import Severity
from ..registry import Format
from . import deployment_checks as checks
from .k8s_manifest import MAX_MANIFEST_BYTES, load_text

_SERVICES = re.compile(rb"^services\s*:", re.MULTILINE)
_COMPOSE_NAME = re.compile(r"(^|/)(docker-)?compose[\w.-]*\.ya?ml$", re.IGNORECASE)


def detect(head: bytes, name: str) -> bool:
    """A top-level ``services:`` mapping whose entries name an image or a build."""
    if b"\x00" in head or not _SERVICES.search(head):
        return False
    return bool(_COMPOSE_NAME.search(name)) or (b"image:" in head or b"build:" in head)


def analyze(ctx: ScanContext, item: Item) -> None:
    ctx.record(item, "compose")
    data = ctx.read_all(item, MAX_MANIFEST_BYTES, "Compose file")
    if data is None:
        return
    documents = load_text(ctx, item, data)
    if not documents or not isinstance(documents[0], dict):
        return
    services = documents[0].get("services")
    for name, service in services.items() if isinstance(services, dict) else []:
        if isinstance(service, dict):
            _check_service(ctx, item, str(name), service)


def _check_service(ctx: ScanContext, item: Item, name: str, service: dict[str, Any]) -> None:
    workload = f"service/{name}"
    image = str(service.get("image", ""))
    report = checks.Reporter(ctx, item.location.child(workload), workload, checks.image_role([image, name]))
    if service.get("privileged") is True:
        report(checks.PRIVILEGED_CONTAINER, "runs privileged", {"field": "privileged"}, raise_for_role=True)
    for field, value in (("pid", "host"), ("ipc", "host"), ("network_mode", "host")):
        if str(service.get(field, "")) == value:
            report(checks.HOST_NAMESPACE, f"sets {field}: host", {"field": field}, raise_for_role=True)
    for volume in service.get("volumes") or []:
        source = _volume_source(volume)
        if source and source.startswith("/"):
            checks.check_host_path(report, source, "volume")
    checks.check_capabilities(report, service.get("cap_add"), name)
    for option in service.get("security_opt") or []:
        if re.fullmatch(r"(seccomp|apparmor)[:=]unconfined", str(option).strip()):
            report(checks.UNCONFINED_PROFILE, f"security_opt {option}", {"option": str(option)})
    if str(service.get("user", "")).split(":")[0] in ("root", "0"):
        report(checks.RUNS_AS_ROOT, "sets user: root", {"user": str(service["user"])}, severity=Severity.MEDIUM)
    literal_credentials = []
    for key, value in _environment(service.get("environment")):
        checks.check_gpu_env(report, key, value, name)
        if key in checks.table().model_uri_keys:
            checks.check_model_uri(report, key, value)
        if checks.is_credential_literal(key, value):
            literal_credentials.append(key)
    if literal_credentials:
        message = f"writes credentials into the file: {', '.join(literal_credentials[:10])} (values not shown)"
        report(checks.ENVIRONMENT_CREDENTIALS, message, {"names": ", ".join(literal_credentials)})
    words = checks.command_words(service.get("entrypoint")) + checks.command_words(service.get("command"))
    checks.check_platform_start(report, words, "command")
    _check_ports(report, service)


def _volume_source(volume: Any) -> str | None:
    if isinstance(volume, str):
        return volume.split(":", 1)[0] if ":" in volume else None
    if isinstance(volume, dict) and volume.get("type", "bind") == "bind":
        return str(volume.get("source", "")) or None
    return None


def _environment(environment: Any) -> list[tuple[str, str]]:
    if isinstance(environment, dict):
        return [(str(key), str(value)) for key, value in environment.items()]
    if isinstance(environment, list):
        return [
            (str(entry).split("=", 1)[0], str(entry).split("=", 1)[1] if "=" in str(entry) else "")
            for entry in environment
        ]
    return []


def _check_ports(report: checks.Reporter, service: dict[str, Any]) -> None:
    if report.role == "workload":
        return
    for port in service.get("ports") or []:
        if isinstance(port, dict):
            host_ip, published = str(port.get("host_ip", "")), str(port.get("published", ""))
        else:
            parts = str(port).split(":")
            host_ip, published = (parts[0], parts[1]) if len(parts) == 3 else ("", parts[0] if len(parts) == 2 else "")
        if published and host_ip in ("", "0.0.0.0", "::"):
            message = f"publishes port {published} on every interface of the host"
            report(checks.EXPOSED_ML_SERVICE, message, {"port": str(port)}, severity=Severity.MEDIUM)


FORMATS = (Format("compose", "other", "Docker Compose file", "deployment", handler=analyze, detect=detect, order=430),)
