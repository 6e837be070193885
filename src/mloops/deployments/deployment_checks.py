"""What Kubernetes manifests and Compose files share: the check table, ML roles, and container checks.

A finding names the workload's ML role (model server, notebook, pipeline runner) because the role decides
how bad an escape is: a model server runs code from every uploaded model, a notebook from every user.
"""

from __future__ import annotations

import functools
import re
import shlex
from collections.abc import Iterator
from typing import Any, NamedTuple

from .. import rules
from ..context import ScanContext
from ..core import Location, Rule, Severity
from ..data import load_toml

MODEL_EXTENSIONS = (".pt", ".pth", ".bin", ".pkl", ".pickle", ".joblib", ".h5", ".keras", ".ckpt", ".safetensors",
                    ".onnx", ".gguf", ".pb", ".mar", ".tar.gz", ".zip")  # fmt: skip


class PlatformStart(NamedTuple):
    platform: str
    role: str
    programs: tuple[tuple[str, ...], ...]
    empty_auth: frozenset[str]
    empty_password: frozenset[str]
    bind: frozenset[str]
    bind_flags: frozenset[str]
    auth_options: frozenset[str]
    open_severity: Severity | None
    exposed_severity: Severity | None
    bind_severity: Severity | None


class Table(NamedTuple):
    pod_specs: dict[str, tuple[str, ...]]
    container_lists: tuple[str, ...]
    container_keys: tuple[str, ...]
    roles: dict[str, str]
    image_roles: dict[str, tuple[str, ...]]
    control_plane: tuple[str, ...]
    control_plane_prefixes: tuple[str, ...]
    raised_roles: frozenset[str]
    dangerous_capabilities: frozenset[str]
    sockets: frozenset[str]
    sensitive_paths: tuple[str, ...]
    gpu_notes: str
    gpu_resources: tuple[str, ...]
    service_names: tuple[str, ...]
    auth_annotations: tuple[str, ...]
    auth_kinds: frozenset[str]
    in_cluster_gateways: frozenset[str]
    auth_proxies: tuple[str, ...]
    model_uri_keys: frozenset[str]
    platform_starts: tuple[PlatformStart, ...]


def _severity(name: str) -> Severity | None:
    return Severity[name.upper()] if name else None


def _platform_start(entry: dict[str, Any]) -> PlatformStart:
    return PlatformStart(
        entry["platform"],
        entry["role"],
        tuple(tuple(program.split()) for program in entry["programs"]),
        frozenset(entry.get("empty_auth", ())),
        frozenset(entry.get("empty_password", ())),
        frozenset(entry.get("bind", ())),
        frozenset(entry.get("bind_flags", ())),
        frozenset(entry.get("auth_options", ())),
        _severity(entry.get("open_severity", "")),
        _severity(entry.get("exposed_severity", "")),
        _severity(entry.get("bind_severity", "")),
    )


@functools.cache
def table() -> Table:
    data = load_toml("deployments.toml")
    return Table(
        {kind: tuple(paths) for kind, paths in data["pod_specs"].items()},
        tuple(data["container_lists"]),
        tuple(data["container_keys"]),
        dict(data["roles"]),
        {role: tuple(fragments) for role, fragments in data["image_roles"].items()},
        tuple(data["control_plane"]["fragments"]),
        tuple(data["control_plane"]["prefixes"]),
        frozenset(data["raised_roles"]),
        frozenset(data["capabilities"]["dangerous"]),
        frozenset(data["host_paths"]["sockets"]),
        tuple(data["host_paths"]["sensitive"]),
        data["gpu"]["notes"],
        tuple(data["gpu"]["resource_names"]),
        tuple(data["exposure"]["service_names"]),
        tuple(data["exposure"]["auth_annotations"]),
        frozenset(data["exposure"]["auth_kinds"]),
        frozenset(data["exposure"]["in_cluster_gateways"]),
        tuple(data["exposure"]["auth_proxies"]),
        frozenset(data["model_uris"]["keys"]),
        tuple(_platform_start(entry) for entry in data["platform_starts"]),
    )


def is_auth_proxy(image: str) -> bool:
    return any(fragment in image.lower() for fragment in table().auth_proxies)


def image_role(images: list[str]) -> str:
    for image in images:
        lowered = image.lower()
        segment = lowered.rsplit("/", 1)[-1].split(":", 1)[0].split("@", 1)[0]
        if lowered.startswith(table().control_plane_prefixes) or any(f in segment for f in table().control_plane):
            continue
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


_ALL_INTERFACES = frozenset({"0.0.0.0", "::", "[::]", "*", ""})
_OPTION = re.compile(r"--?([\w.-]+)(?:=(.*))?\Z", re.DOTALL)


def command_words(command: Any) -> list[str]:
    """A command as its words: exec form (a list) or shell form (a string); ``sh -c "..."`` is opened too."""
    if isinstance(command, list):
        parts = [str(part) for part in command]
    elif isinstance(command, str):
        parts = _split(command)
    else:
        return []
    words: list[str] = []
    for part in parts:
        words += _split(part) if " " in part.strip() else [part]
    return words


def _split(text: str) -> list[str]:
    try:
        return shlex.split(text)
    except ValueError:  # an unbalanced quote: the shell would fail too; read what is there
        return text.split()


def check_platform_start(report: Reporter, words: list[str], where: str) -> None:
    """Findings for an ML platform that the command starts with its authentication off (platform_starts)."""
    for start in table().platform_starts:
        position = _program_at(words, start.programs)
        if position is None:
            continue
        options = _options(words[position:])
        token_off = any(options.get(name) == "" for name in start.empty_auth)
        password_set = any(options.get(name) for name in start.empty_password)
        everywhere = start.bind_flags & options.keys() or any(
            name in options and options[name] in _ALL_INTERFACES for name in start.bind
        )
        authenticated = bool(start.auth_options & options.keys())
        command = " ".join(words[position : position + 12])[:300]
        evidence = {"platform": start.platform, "command": command, "where": where}
        if token_off and not password_set and start.open_severity is not None:
            exposed = everywhere and start.exposed_severity is not None
            severity = start.exposed_severity if exposed else start.open_severity
            bound = " and listens on every interface" if everywhere else ""
            root = " as root (--allow-root)" if "allow-root" in options else ""
            what = f"starts {start.platform}{root} with its token empty and no password{bound} ({where})"
        elif everywhere and not authenticated and start.bind_severity is not None:
            severity = start.bind_severity
            what = f"starts {start.platform} on every interface without authentication ({where})"
        else:
            continue
        report(rules.PLATFORM_STARTED_OPEN, what, {**evidence, "platform_role": start.role}, severity=severity)


def _program_at(words: list[str], programs: tuple[tuple[str, ...], ...]) -> int | None:
    names = [word.rsplit("/", 1)[-1] for word in words]
    for index in range(len(names)):
        for program in programs:
            if tuple(names[index : index + len(program)]) == program:
                return index
    return None


def _options(words: list[str]) -> dict[str, str]:
    """``--name=value``, ``--name value`` and bare ``--flag`` (stored as "true")."""
    options: dict[str, str] = {}
    for index, word in enumerate(words):
        match = _OPTION.match(word)
        if match is None:
            continue
        name, value = match.group(1), match.group(2)
        if value is None:
            following = words[index + 1] if index + 1 < len(words) else "-"
            value = following if not following.startswith("-") else "true"
        options[name] = value
    return options


CREDENTIAL_NAME = re.compile(r"(^|_)(TOKEN|SECRET|PASSWORD|PASSWD|API_KEY|ACCESS_KEY|PRIVATE_KEY|CREDENTIALS?)($|_)")
_REFERENCE = re.compile(r"\A\$(\{[^}]*\}|\w+)\Z")  # ${VAR}, $VAR: filled in from elsewhere at run time
# Names that say where a credential is, not what it is: SECRET_NAME names a Kubernetes Secret, TOKEN_FILE a path.
_NAMES_A_PLACE = re.compile(r"_(NAME|FILE|PATH|DIR|REF|NAMESPACE|URL|URI|ENDPOINT|MOUNT|LOCATION|KEY_NAME)$")


def is_credential_literal(name: str, value: Any) -> bool:
    """A variable named like a credential whose value is written out here (not empty, not a ${reference})."""
    upper = name.upper()
    text = "" if value is None else str(value).strip().strip("'\"")
    credential = bool(CREDENTIAL_NAME.search(upper)) and not _NAMES_A_PLACE.search(upper)
    return credential and bool(text) and not _REFERENCE.match(text)
