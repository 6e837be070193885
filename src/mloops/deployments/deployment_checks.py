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

from .. import registry
from ..context import ScanContext
from ..core import AttackClass, Capability, Location, Rule, Severity
from ..data import load_toml

_ROLE_NOTE = (
    " Severity is one step higher in model servers and notebooks, which run code from uploaded models or users."
)
PRIVILEGED_CONTAINER = Rule(
    id="MLO701",
    name="privileged-container",
    title="Container runs privileged",
    severity=Severity.HIGH,
    attack_class=AttackClass.CONTAINER_ESCAPE,
    capability=Capability.SERVER_CODE_EXECUTION,
    description=(
        "A privileged container sees every host device and holds every capability: code that runs in it (a "
        "malicious model's payload) mounts the host disk and takes the node. checkov CKV_K8S_16, trivy KSV-0017."
        + _ROLE_NOTE
    ),
    remediation="Remove privileged: true; grant the one capability the workload really needs instead.",
    summary="A container runs privileged (or, at run time, holds every capability or a writable release_agent).",
    severities="high, critical",
)
HOST_NAMESPACE = Rule(
    id="MLO702",
    name="host-namespace",
    title="Workload shares the host's PID, network or IPC namespace",
    severity=Severity.HIGH,
    attack_class=AttackClass.CONTAINER_ESCAPE,
    capability=Capability.SERVER_CODE_EXECUTION,
    description=(
        "hostPID lets the container see and signal every process on the node (and read their environments); "
        "hostNetwork puts it on the node's interfaces, including the kubelet and cloud metadata; hostIPC shares "
        "memory with host processes. checkov CKV_K8S_17/18/19." + _ROLE_NOTE
    ),
    remediation="Remove hostPID, hostNetwork and hostIPC (or pid/network_mode/ipc: host in Compose).",
    summary="hostPID, hostNetwork or hostIPC (Compose: pid/network_mode/ipc host).",
)
RUNTIME_SOCKET = Rule(
    id="MLO703",
    name="runtime-socket-mount",
    title="Container runtime socket mounted into the workload",
    severity=Severity.CRITICAL,
    attack_class=AttackClass.CONTAINER_ESCAPE,
    capability=Capability.SERVER_CODE_EXECUTION,
    description=(
        "The Docker, containerd or CRI-O socket lets whoever talks to it start a privileged container on the node: "
        "code execution in this workload becomes root on the node. checkov CKV_K8S_27, trivy KSV-0006."
    ),
    remediation="Do not mount the runtime socket; build images with rootless builders (kaniko, buildah) instead.",
    summary="The Docker, containerd or CRI-O socket is mounted (or reachable at run time).",
)
SENSITIVE_HOST_PATH = Rule(
    id="MLO704",
    name="sensitive-host-path",
    title="Sensitive host folder mounted into the workload",
    severity=Severity.HIGH,
    attack_class=AttackClass.CONTAINER_ESCAPE,
    capability=Capability.SERVER_CODE_EXECUTION,
    description=(
        "A hostPath of /, /proc, /sys, /etc, /var/lib/kubelet and the like lets the container read node "
        "credentials (kubelet keys, service-account tokens of other pods) or write where the node executes "
        "code. trivy KSV-0121." + _ROLE_NOTE
    ),
    remediation="Use persistent volumes or object storage for models and data; never mount host system folders.",
    summary="A host system folder (`/`, `/proc`, `/etc`, `/var/lib/kubelet`...) is mounted.",
)
DANGEROUS_CAPABILITY = Rule(
    id="MLO705",
    name="dangerous-capability",
    title="Container adds a capability that breaks isolation",
    severity=Severity.HIGH,
    attack_class=AttackClass.CONTAINER_ESCAPE,
    capability=Capability.SERVER_CODE_EXECUTION,
    description=(
        "SYS_ADMIN (mounts, cgroup release_agent), SYS_PTRACE (other processes), SYS_MODULE (kernel modules), "
        "DAC_READ_SEARCH (open_by_handle_at host reads), NET_ADMIN and ALL are the usual container escapes. "
        "checkov CKV_K8S_39, trivy KSV-0005." + _ROLE_NOTE
    ),
    remediation="Drop ALL capabilities and add back only harmless ones (NET_BIND_SERVICE).",
    summary="SYS_ADMIN, SYS_PTRACE, SYS_MODULE, DAC_READ_SEARCH, NET_ADMIN, BPF or ALL is added (or held).",
)
PRIVILEGE_ESCALATION = Rule(
    id="MLO706",
    name="privilege-escalation",
    title="Container may gain privileges (allowPrivilegeEscalation)",
    severity=Severity.LOW,
    attack_class=AttackClass.CONTAINER_ESCAPE,
    capability=Capability.SERVER_CODE_EXECUTION,
    description=(
        "Without allowPrivilegeEscalation: false, setuid binaries in the image can raise the attacker's "
        "privileges inside the container (LOW when left to the default, MEDIUM when set to true). checkov CKV_K8S_20."
    ),
    remediation="Set securityContext.allowPrivilegeEscalation: false on every container.",
    summary="allowPrivilegeEscalation is not false (medium when set to true).",
    severities="low, medium",
)
RUNS_AS_ROOT = Rule(
    id="MLO707",
    name="runs-as-root",
    title="Container runs as root",
    severity=Severity.LOW,
    attack_class=AttackClass.CONTAINER_ESCAPE,
    capability=Capability.SERVER_CODE_EXECUTION,
    description=(
        "Root in the container is one kernel bug or one mounted path away from root on the node. LOW when "
        "nothing forbids root (the image decides), MEDIUM when root is asked for explicitly. checkov CKV_K8S_23/40, "
        "CKV_DOCKER_8."
    ),
    remediation="Set runAsNonRoot: true and a runAsUser above 10000 (USER in the Dockerfile).",
    summary="Nothing forbids root (low), or root is asked for (medium).",
    severities="low, medium",
)
UNCONFINED_PROFILE = Rule(
    id="MLO708",
    name="unconfined-profile",
    title="Seccomp or AppArmor is explicitly unconfined",
    severity=Severity.MEDIUM,
    attack_class=AttackClass.CONTAINER_ESCAPE,
    capability=Capability.SERVER_CODE_EXECUTION,
    description=(
        "An Unconfined seccomp or AppArmor profile removes the syscall filter that blocks most container-escape "
        "exploits (unshare, keyctl, bpf). checkov CKV_K8S_31, trivy KSV-0104/KSV-0002."
    ),
    remediation="Use seccompProfile type RuntimeDefault and the runtime's default AppArmor profile.",
    summary="Seccomp or AppArmor is Unconfined.",
)
WRITABLE_ROOT_FS = Rule(
    id="MLO709",
    name="writable-root-filesystem",
    title="Container root filesystem is writable",
    severity=Severity.LOW,
    attack_class=AttackClass.CONTAINER_ESCAPE,
    capability=Capability.SERVER_CODE_EXECUTION,
    description=(
        "A writable root filesystem lets a payload persist tools and replace the server's own code or models "
        "between requests. checkov CKV_K8S_22."
    ),
    remediation="Set readOnlyRootFilesystem: true and give the server an emptyDir for scratch space.",
    summary="readOnlyRootFilesystem is not true.",
)
SERVICE_ACCOUNT_TOKEN = Rule(
    id="MLO710",
    name="service-account-token",
    title="Model server or notebook gets a Kubernetes API token",
    severity=Severity.MEDIUM,
    attack_class=AttackClass.CONTAINER_ESCAPE,
    capability=Capability.CREDENTIAL_ACCESS,
    description=(
        "The pod's service-account token is mounted by default. A malicious model or notebook user reads it and "
        "talks to the Kubernetes API with the pod's rights: the first step from a model upload to the cluster. "
        "checkov CKV_K8S_38."
    ),
    remediation=(
        "Set automountServiceAccountToken: false on the pod (or its service account) unless it calls the API."
    ),
    summary="A model server or notebook mounts a Kubernetes API token (at run time: a token is readable).",
    severities="medium, high",
)
CLUSTER_WIDE_RBAC = Rule(
    id="MLO711",
    name="cluster-wide-rbac",
    title="A service account is given cluster-wide rights",
    severity=Severity.HIGH,
    attack_class=AttackClass.CONTAINER_ESCAPE,
    capability=Capability.CREDENTIAL_ACCESS,
    description=(
        "A ClusterRoleBinding to cluster-admin, or to a role with wildcard verbs or resources, gives every pod "
        "running as that service account the whole cluster; CRITICAL when an ML workload in the same file uses it."
    ),
    remediation="Bind namespaced Roles with the few verbs and resources the workload needs.",
    summary=(
        "A service account is bound to cluster-admin or a wildcard ClusterRole; a wildcard over named API groups only"
        " (kubeflow.org, serving.kserve.io) is medium, over the core group, `*`, RBAC, apps or batch high."
    ),
    severities="medium to critical",
)
GPU_ALL_DEVICES = Rule(
    id="MLO712",
    name="gpu-all-devices",
    title="All GPUs are handed to the container (NVIDIA toolkit escapes apply)",
    severity=Severity.LOW,
    attack_class=AttackClass.CONTAINER_ESCAPE,
    capability=Capability.SERVER_CODE_EXECUTION,
    description=(
        "NVIDIA_VISIBLE_DEVICES=all or a GPU resource puts the NVIDIA Container Toolkit hooks in the container's "
        "start; known toolkit bugs turn a crafted image into host access. A version note: check the node's toolkit."
    ),
    remediation=(
        "Keep the NVIDIA Container Toolkit and GPU Operator patched (toolkit 1.17.8+, GPU Operator 25.3.1+), use "
        "CDI mode, and request GPUs by count rather than all."
    ),
    summary="GPUs are handed to the container; NVIDIA Container Toolkit escape CVEs as a version note.",
    severities="info, low",
)
MODEL_URI_PLAIN_HTTP = Rule(
    id="MLO713",
    name="model-uri-plain-http",
    title="Model is downloaded over plain HTTP",
    severity=Severity.HIGH,
    attack_class=AttackClass.CONTAINER_ESCAPE,
    capability=Capability.SERVER_CODE_EXECUTION,
    description=(
        "A model fetched over http:// can be swapped on the way; pickle, PyTorch or Keras models run code when the "
        "server loads them, so whoever sits on the path runs code in the server."
    ),
    remediation=(
        "Serve models over https:// or s3://, gs://, pvc:// with integrity checks, and prefer safetensors/ONNX."
    ),
    summary="A model is downloaded over http://.",
    severities="medium, high",
)
EXPOSED_ML_SERVICE = Rule(
    id="MLO714",
    name="exposed-ml-service",
    title="ML platform exposed outside the cluster without an auth layer",
    severity=Severity.HIGH,
    attack_class=AttackClass.CONTAINER_ESCAPE,
    capability=Capability.DATA_EXPOSURE,
    description=(
        "A LoadBalancer or NodePort Service, or an Ingress or Istio Gateway with wildcard hosts and no "
        "authentication, puts an ML platform (dashboards, pipelines, notebooks, model servers, most without "
        "authentication of their own) on the network; exposed Kubeflow dashboards were used for cryptomining."
    ),
    remediation=(
        "Keep ML services ClusterIP behind an authenticating gateway (oauth2-proxy/Dex, Istio "
        "RequestAuthentication with an AuthorizationPolicy), with explicit hosts."
    ),
    summary=("An ML platform is exposed by a LoadBalancer/NodePort, wildcard Ingress or Gateway, or a published port."),
    severities="medium to critical",
)
MULTI_MODEL_CONTAINER = Rule(
    id="MLO715",
    name="multi-model-container",
    title="Several models share one serving container",
    severity=Severity.MEDIUM,
    attack_class=AttackClass.CONTAINER_ESCAPE,
    capability=Capability.MODEL_TAMPERING,
    description=(
        "Models served from one container (Seldon multi-model graphs, Seldon Core 2 Servers, KServe multi-model "
        "runtimes) share memory, files and credentials: one malicious model reads, poisons or replaces its "
        "neighbours, unlike KServe's one-pod-per-model default."
    ),
    remediation=(
        "Serve untrusted or third-party models in their own pods; keep multi-model servers for models you built."
    ),
    summary=(
        "Several models share one serving container (Seldon graphs, Seldon Core 2 Servers, multi-model runtimes)."
    ),
)
MANIFEST_UNREADABLE = Rule(
    id="MLO716",
    name="manifest-unreadable",
    title="Deployment file could not be parsed",
    severity=Severity.LOW,
    attack_class=AttackClass.CONTAINER_ESCAPE,
    capability=Capability.SCANNER_EVASION,
    description=(
        "The file looks like a Kubernetes, Compose or container manifest but is not valid YAML/JSON (a Helm "
        "template, say), so its settings were not checked."
    ),
    remediation="Render templates first (helm template) and scan the output, or fix the file.",
    summary="A deployment file is not valid YAML/JSON (a template).",
)
CLOUD_METADATA = Rule(
    id="MLO717",
    name="cloud-metadata-endpoint",
    title="Cloud instance metadata is one request away",
    severity=Severity.MEDIUM,
    attack_class=AttackClass.CONTAINER_ESCAPE,
    capability=Capability.CREDENTIAL_ACCESS,
    description=(
        "On a cloud VM, code in a container can ask 169.254.169.254 for the node's cloud credentials unless the "
        "endpoint is blocked for pods or hop-limited (IMDSv2 with hop limit 1, GKE metadata concealment). "
        "inspect-runtime tells the cloud from /sys and does not send the request."
    ),
    remediation=(
        "Block the metadata endpoint for pods (network policy, IMDSv2 hop limit 1, Workload Identity / IRSA)."
    ),
    summary="inspect-runtime: a cloud VM whose metadata endpoint hands out credentials.",
)
ENVIRONMENT_CREDENTIALS = Rule(
    id="MLO718",
    name="credentials-in-environment",
    title="Platform credentials sit in the process environment",
    severity=Severity.MEDIUM,
    attack_class=AttackClass.CONTAINER_ESCAPE,
    capability=Capability.CREDENTIAL_ACCESS,
    description=(
        "Variables named like tokens, keys and passwords are readable by any code in the container (a model's "
        "payload reads os.environ first). Only the names are reported; values are never read."
    ),
    remediation=(
        "Mount credentials as files readable only by the server, scope them to the model server's needs, and "
        "keep registry-write credentials out of serving containers."
    ),
    summary=(
        "Credential-like environment variables (names only): inspect-runtime, Compose literals; high when baked into "
        "an image by a Dockerfile's ENV/ARG."
    ),
    severities="medium to high",
)
MODEL_SOURCE = Rule(
    id="MLO720",
    name="workload-model-source",
    title="Workload loads its model from this address",
    severity=Severity.INFO,
    attack_class=AttackClass.CONTAINER_ESCAPE,
    capability=Capability.CODE_EXECUTION,
    description=(
        "Where a model server or job downloads its model from (storageUri, modelUri, MODEL_URI, ...), with the "
        "pod labels that Services select it by. Not a risk by itself: mloops audit uses it to join the workload "
        "to the registry or store that address names, and to the Services that expose it."
    ),
    remediation="Nothing to fix by itself; make sure only trusted writers can change what the address serves.",
    summary="Where a workload downloads its model from, and its pod labels (a fact for mloops audit).",
)
PLATFORM_STARTED_OPEN = Rule(
    id="MLO719",
    name="platform-started-open",
    title="ML platform started with its authentication off or on every interface without it",
    severity=Severity.HIGH,
    attack_class=AttackClass.MISSING_AUTH,
    capability=Capability.CODE_EXECUTION,
    description=(
        "The command that starts the platform turns its protection off: Jupyter with an empty token (and no "
        "password) runs anyone's code in its kernels, MLflow without --app-name basic-auth lets anyone replace "
        "registered models, Ray's dashboard Jobs API runs any command, TensorBoard shows every run's data. "
        "Bound to 0.0.0.0 (every interface) it answers whoever reaches the host or the pod. Severity follows "
        "the platform (data/deployments.toml, platform_starts)."
    ),
    remediation=(
        "Keep the platform's authentication on (a Jupyter token or password, MLflow basic-auth or an "
        "authenticating proxy), bind it to 127.0.0.1 and publish it only through an authenticating gateway."
    ),
    summary=(
        "An ML platform's start command turns its authentication off (Jupyter's empty token and password) or binds it"
        " to every interface without any (MLflow, Ray dashboard, TensorBoard)."
    ),
    severities="medium to critical",
)


# Besides the formats' own model extensions: what model URIs often end with (weights, packed archives).
_URI_EXTENSIONS = (".bin", ".tar.gz", ".zip")


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
    controller_labels: dict[str, str]
    registry_variables: frozenset[str]
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
        dict(data["controller_labels"]),
        frozenset(data["model_uris"]["registry_variables"]),
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

    def __call__(
        self,
        rule: Rule,
        what: str,
        evidence: dict[str, str],
        severity: Severity | None = None,
        raise_for_role: bool = False,
    ) -> None:
        level = rule.severity if severity is None else severity
        if raise_for_role and self.role in table().raised_roles:
            level = Severity(min(level + 1, Severity.CRITICAL))
        message = f"{self.role} {self.workload}: {what}"
        evidence = {"workload": self.workload, "role": self.role, **evidence}
        finding = rule.finding(self.location, message, evidence, severity=level)
        self.ctx.report(finding, key=(self.location, self.workload, what))


def check_host_path(report: Reporter, path: str, where: str) -> None:
    normalized = "/" + path.strip().strip("/") if path.strip() not in ("", "/") else "/"
    if normalized in table().sockets or normalized.endswith(("/docker.sock", "/containerd.sock", "/crio.sock")):
        report(RUNTIME_SOCKET, f"mounts the container runtime socket {path} ({where})", {"host_path": path})
        return
    for sensitive in table().sensitive_paths:
        if normalized == sensitive or (sensitive != "/" and normalized.startswith(sensitive + "/")):
            message = f"mounts the host folder {path} ({where})"
            report(SENSITIVE_HOST_PATH, message, {"host_path": path}, raise_for_role=True)
            return


def check_capabilities(report: Reporter, added: Any, container: str) -> None:
    if not isinstance(added, list):
        return
    names = sorted({str(cap).upper().removeprefix("CAP_") for cap in added} & table().dangerous_capabilities)
    if names:
        message = f"container {container!r} adds {', '.join(names)}"
        report(DANGEROUS_CAPABILITY, message, {"container": container, "capabilities": ", ".join(names)},
               raise_for_role=True)  # fmt: skip


def check_model_uri(report: Reporter, key: str, value: Any, labels: str = "") -> None:
    if isinstance(value, str) and value.strip():
        evidence = {"key": key, "uri": value.strip()[:200], **({"labels": labels} if labels else {})}
        report(MODEL_SOURCE, f"loads its model from {value.strip()[:200]} ({key})", evidence)
    if key in table().registry_variables:
        return  # the registry its models:/ URIs name; the artifacts' own addresses are the registry's to give
    if isinstance(value, str) and value.strip().lower().startswith("http://"):
        model_like = value.lower().split("?")[0].endswith((*registry.model_extensions(), *_URI_EXTENSIONS))
        message = f"downloads its model over plain HTTP ({key}: {value[:200]})"
        severity = Severity.HIGH if model_like or report.role == "model server" else Severity.MEDIUM
        report(MODEL_URI_PLAIN_HTTP, message, {"key": key, "uri": value[:200]}, severity=severity)


def check_gpu_env(report: Reporter, name: str, value: Any, container: str) -> None:
    if name == "NVIDIA_VISIBLE_DEVICES" and str(value).strip().lower() == "all":
        message = f"container {container!r} gets every GPU (NVIDIA_VISIBLE_DEVICES=all); {table().gpu_notes}"
        report(GPU_ALL_DEVICES, message, {"container": container, "setting": "NVIDIA_VISIBLE_DEVICES=all"})


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
        report(PLATFORM_STARTED_OPEN, what, {**evidence, "platform_role": start.role}, severity=severity)


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
