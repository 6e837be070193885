"""What Kubernetes manifests and Compose files share: the check table, ML roles, and container checks.

A finding names the workload's ML role (model server, notebook, pipeline runner) because the role decides
how bad an escape is: a model server runs code from every uploaded model, a notebook from every user.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import Any, NamedTuple

from .. import rules
from ..context import ScanContext
from ..core import Location, Rule, Severity
from ..data import load_toml

MODEL_EXTENSIONS = (".pt", ".pth", ".bin", ".pkl", ".pickle", ".joblib", ".h5", ".keras", ".ckpt", ".safetensors",
                    ".onnx", ".gguf", ".pb", ".mar", ".tar.gz", ".zip")  # fmt: skip


class Table(NamedTuple):
    pod_specs: dict[str, tuple[str, ...]]
    container_lists: tuple[str, ...]
    container_keys: tuple[str, ...]
    roles: dict[str, str]
    image_roles: dict[str, tuple[str, ...]]
    raised_roles: frozenset[str]
    dangerous_capabilities: frozenset[str]
    sockets: frozenset[str]
    sensitive_paths: tuple[str, ...]
    gpu_notes: str
    gpu_resources: tuple[str, ...]
    service_names: tuple[str, ...]
    auth_annotations: tuple[str, ...]
    auth_kinds: frozenset[str]
    model_uri_keys: frozenset[str]


@functools.cache
def table() -> Table:
    data = load_toml("deployments.toml")
    return Table(
        {kind: tuple(paths) for kind, paths in data["pod_specs"].items()},
        tuple(data["container_lists"]),
        tuple(data["container_keys"]),
        dict(data["roles"]),
        {role: tuple(fragments) for role, fragments in data["image_roles"].items()},
        frozenset(data["raised_roles"]),
        frozenset(data["capabilities"]["dangerous"]),
        frozenset(data["host_paths"]["sockets"]),
        tuple(data["host_paths"]["sensitive"]),
        data["gpu"]["notes"],
        tuple(data["gpu"]["resource_names"]),
        tuple(data["exposure"]["service_names"]),
        tuple(data["exposure"]["auth_annotations"]),
        frozenset(data["exposure"]["auth_kinds"]),
        frozenset(data["model_uris"]["keys"]),
    )


def image_role(images: list[str]) -> str:
    for image in images:
        lowered = image.lower()
        for role, fragments in table().image_roles.items():
            if any(fragment in lowered for fragment in fragments):
                return role
    return "workload"


class Reporter:
    """Findings for one workload: its role and place are in every message; severity follows the role."""

    def __init__(self, ctx: ScanContext, location: Location, workload: str, role: str) -> None:
        self.ctx = ctx
        self.location = location
        self.workload = workload
        self.role = role
        self._seen: set[tuple[str, str]] = set()

    def __call__(
        self,
        rule: Rule,
        what: str,
        evidence: dict[str, str],
        severity: Severity | None = None,
        raise_for_role: bool = False,
    ) -> None:
        if (rule.id, what) in self._seen:
            return
        self._seen.add((rule.id, what))
        level = rule.severity if severity is None else severity
        if raise_for_role and self.role in table().raised_roles:
            level = Severity(min(level + 1, Severity.CRITICAL))
        message = f"{self.role} {self.workload}: {what}"
        evidence = {"workload": self.workload, "role": self.role, **evidence}
        self.ctx.report(rule.finding(self.location, message, evidence, severity=level))


def check_host_path(report: Reporter, path: str, where: str) -> None:
    normalized = "/" + path.strip().strip("/") if path.strip() not in ("", "/") else "/"
    if normalized in table().sockets or normalized.endswith(("/docker.sock", "/containerd.sock", "/crio.sock")):
        report(rules.RUNTIME_SOCKET, f"mounts the container runtime socket {path} ({where})", {"host_path": path})
        return
    for sensitive in table().sensitive_paths:
        if normalized == sensitive or (sensitive != "/" and normalized.startswith(sensitive + "/")):
            message = f"mounts the host folder {path} ({where})"
            report(rules.SENSITIVE_HOST_PATH, message, {"host_path": path}, raise_for_role=True)
            return


def check_capabilities(report: Reporter, added: Any, container: str) -> None:
    if not isinstance(added, list):
        return
    names = sorted({str(cap).upper().removeprefix("CAP_") for cap in added} & table().dangerous_capabilities)
    if names:
        message = f"container {container!r} adds {', '.join(names)}"
        report(rules.DANGEROUS_CAPABILITY, message, {"container": container, "capabilities": ", ".join(names)},
               raise_for_role=True)  # fmt: skip


def check_model_uri(report: Reporter, key: str, value: Any) -> None:
    if isinstance(value, str) and value.strip().lower().startswith("http://"):
        model_like = value.lower().split("?")[0].endswith(MODEL_EXTENSIONS)
        message = f"downloads its model over plain HTTP ({key}: {value[:200]})"
        severity = Severity.HIGH if model_like or report.role == "model server" else Severity.MEDIUM
        report(rules.MODEL_URI_PLAIN_HTTP, message, {"key": key, "uri": value[:200]}, severity=severity)


def check_gpu_env(report: Reporter, name: str, value: Any, container: str) -> None:
    if name == "NVIDIA_VISIBLE_DEVICES" and str(value).strip().lower() == "all":
        message = f"container {container!r} gets every GPU (NVIDIA_VISIBLE_DEVICES=all); {table().gpu_notes}"
        report(rules.GPU_ALL_DEVICES, message, {"container": container, "setting": "NVIDIA_VISIBLE_DEVICES=all"})


def walk_items(value: Any) -> Iterator[tuple[str, Any]]:
    """(key, value) of every mapping entry, at any depth (the data's expanded size was checked on load)."""
    stack = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            for key, child in node.items():
                yield str(key), child
                stack.append(child)
        elif isinstance(node, list):
            stack.extend(node)
