"""Kubernetes manifests of ML deployments: container escapes and exposure, named by the workload's ML role.

Pods, the workload controllers and the ML custom resources (KServe, Seldon Core 1 and 2, Kubeflow Notebook
and training jobs, KubeRay, Argo Workflows) are read for their pod specs (data/deployments.toml); Services,
Ingresses and Istio Gateways for exposure; RBAC bindings for cluster-wide rights. YAML is loaded with the
safe loader within node, alias and expansion limits (parsers/yaml_docs.py).
"""

from __future__ import annotations

import re
from typing import Any, NamedTuple

from .. import rules
from ..context import Item, ScanContext
from ..core import Severity
from ..registry import Format
from . import deployment_checks as checks
from . import deployment_tree

MAX_MANIFEST_BYTES = 8 << 20
_API_VERSION = re.compile(rb'^\s*(?:-\s+)?"?apiVersion"?\s*:', re.MULTILINE)
_KIND = re.compile(rb'^\s*"?kind"?\s*:', re.MULTILINE)
_JSON_API = re.compile(rb'"apiVersion"\s*:')
_ML_GROUPS = ("serving.kserve.io", "machinelearning.seldon.io", "mlops.seldon.io", "kubeflow.org", "ray.io",
              "argoproj.io")  # fmt: skip
_EXPOSED_TYPES = ("LoadBalancer", "NodePort")
_ENTRY_KINDS = ("Service", "Ingress", "Gateway", "VirtualService")


def _mapping(value: Any) -> dict[str, Any]:
    """A manifest field that should hold a mapping: the mapping, or {} for anything else."""
    return value if isinstance(value, dict) else {}


def detect(head: bytes, name: str) -> bool:
    """YAML or JSON text with apiVersion and kind at the top of a document."""
    if b"\x00" in head:
        return False
    stripped = head.lstrip()
    if stripped.startswith((b"{", b"[")):
        return bool(_JSON_API.search(head)) and b'"kind"' in head
    return bool(_API_VERSION.search(head) and _KIND.search(head))


def analyze(ctx: ScanContext, item: Item) -> None:
    ctx.record(item, "kubernetes-manifest")
    data = ctx.read_all(item, MAX_MANIFEST_BYTES, "Kubernetes manifest")
    if data is None:
        return
    objects = load_objects(ctx, item, data)
    if objects is None:
        return
    # An authentication policy in this file or anywhere in the scanned tree (sources/deployment_tree.py).
    auth_layer = deployment_tree.LAYOUT in item.layouts or any(
        obj.get("kind") in checks.table().auth_kinds for obj in objects
    )
    internal = frozenset(
        _name(obj) for obj in objects if obj.get("kind") == "Gateway" and _in_cluster(obj.get("spec") or {})
    )
    surroundings = Surroundings(auth_layer, internal | checks.table().in_cluster_gateways, _proxied(objects))
    ml_accounts: dict[str, str] = {}  # service account -> the ML workload that runs as it
    for obj in objects:
        check_object(ctx, item, obj, surroundings, ml_accounts)
    for obj in objects:
        if obj.get("kind") in ("ClusterRoleBinding", "RoleBinding"):
            _check_binding(ctx, item, obj, objects, ml_accounts)


def load_objects(ctx: ScanContext, item: Item, data: bytes) -> list[dict[str, Any]] | None:
    """Every object of every document (List items included); None, reported, when the text cannot be read."""
    documents = load_text(ctx, item, data)
    if documents is None:
        return None
    objects: list[dict[str, Any]] = []
    for document in documents:
        for obj in document if isinstance(document, list) else [document]:
            if isinstance(obj, dict) and obj.get("kind") == "List" and isinstance(obj.get("items"), list):
                objects.extend(o for o in obj["items"] if isinstance(o, dict))
            elif isinstance(obj, dict):
                objects.append(obj)
    return objects


def load_text(ctx: ScanContext, item: Item, data: bytes) -> list[Any] | None:
    """The documents of a YAML or JSON text; None, reported, when it cannot be read within the limits."""
    from ..parsers.yaml_docs import Unreadable, YamlLimit, parse_documents  # most scans meet no manifest

    try:
        return parse_documents(data, data.lstrip().startswith((b"{", b"[")))
    except YamlLimit as exc:
        ctx.report(rules.SCAN_LIMIT.finding(item.location, f"manifest {exc}; not analyzed"))
    except Unreadable as exc:
        ctx.report(checks.MANIFEST_UNREADABLE.finding(item.location, f"not valid YAML/JSON: {exc}"))
    return None


def _name(obj: dict[str, Any]) -> str:
    metadata = obj.get("metadata")
    return str(metadata.get("name", "?")) if isinstance(metadata, dict) else "?"


def _role(obj: dict[str, Any], images: list[str]) -> str:
    kind = str(obj.get("kind", ""))
    group = str(obj.get("apiVersion", "")).split("/")[0]
    if kind in checks.table().roles and group in _ML_GROUPS:
        return checks.table().roles[kind]
    if kind in _ENTRY_KINDS:
        return "network entry"
    return checks.image_role(images)


def check_object(
    ctx: ScanContext, item: Item, obj: dict[str, Any], surroundings: Surroundings, ml_accounts: dict[str, str]
) -> None:
    kind = str(obj.get("kind", ""))
    workload = f"{kind}/{_name(obj)}"
    location = item.location.child(workload)
    pod_specs = [(spec, _containers(spec)) for spec in _pod_specs(obj)]
    containers = [pair for _, spec_containers in pod_specs for pair in spec_containers]
    images = [str(container.get("image", "")) for _, container in containers]
    group = str(obj.get("apiVersion", "")).split("/")[0]
    if kind == "Model" and group == "mlops.seldon.io":
        images.append("seldonio/")
    report = checks.Reporter(ctx, location, workload, _role(obj, images))
    for spec, spec_containers in pod_specs:
        _check_pod(report, obj, spec)
        _check_pod_defaults(report, spec, spec_containers)
        account = spec.get("serviceAccountName") or spec.get("serviceAccount")
        if report.role != "workload":
            ml_accounts.setdefault(str(account or "default"), workload)
    for name, container in containers:
        _check_container(report, name, container)
    labels = _labels(obj, kind)
    for key, value in checks.walk_items(obj.get("spec")):
        if key in checks.table().model_uri_keys:
            for uri in value if isinstance(value, list) else [value]:
                checks.check_model_uri(report, key, uri, labels)
    for _, container in containers:
        for variable in container.get("env") or []:
            name = str(variable.get("name", "")) if isinstance(variable, dict) else ""
            if name in checks.table().model_uri_keys or name in checks.table().registry_variables:
                checks.check_model_uri(report, name, variable.get("value"), labels)
    _check_multi_model(report, obj, kind, group)
    _check_exposure(report, obj, kind, group, surroundings)
    if kind == "Kustomization":
        _check_generators(report, obj)
    elif kind == "ConfigMap":
        _check_static_logins(report, obj)


def _labels(obj: dict[str, Any], kind: str) -> str:
    """The labels of the workload's pods, as ``k=v, ...``: its pod template's, and the one its controller adds
    (KServe, Seldon: data/deployments.toml), by which Services select it."""
    spec = _mapping(obj.get("spec"))
    template = _mapping(_mapping(spec.get("template")).get("metadata")).get("labels")
    labels = {str(k): str(v) for k, v in _mapping(template).items()}
    controller = checks.table().controller_labels.get(kind)
    if controller:
        labels[controller] = _name(obj)
    return ", ".join(f"{k}={v}" for k, v in sorted(labels.items()))


def _pod_specs(obj: dict[str, Any]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for path in checks.table().pod_specs.get(str(obj.get("kind", "")), ()):
        found.extend(node for node in _select(obj, path.split(".")) if isinstance(node, dict))
    return found


def _select(node: Any, steps: list[str]) -> list[Any]:
    nodes = [node]
    for step in steps:
        following: list[Any] = []
        for current in nodes:
            if step == "*":
                following.extend(
                    current.values() if isinstance(current, dict) else current if isinstance(current, list) else []
                )
            elif isinstance(current, dict) and step in current:
                following.append(current[step])
        nodes = following
    return nodes


def _containers(spec: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    found = []
    for key in checks.table().container_lists:
        for container in spec.get(key) or []:
            if isinstance(container, dict):
                found.append((str(container.get("name", key)), container))
    for key in checks.table().container_keys:
        container = spec.get(key)
        if isinstance(container, dict):
            found.append((str(container.get("name", key)), container))
    return found


def _check_pod(report: checks.Reporter, obj: dict[str, Any], spec: dict[str, Any]) -> None:
    for field in ("hostPID", "hostNetwork", "hostIPC"):
        if spec.get(field) is True:
            report(checks.HOST_NAMESPACE, f"sets {field}: true", {"field": field}, raise_for_role=True)
    for volume in spec.get("volumes") or []:
        host_path = volume.get("hostPath") if isinstance(volume, dict) else None
        if isinstance(host_path, dict) and isinstance(host_path.get("path"), str):
            checks.check_host_path(report, host_path["path"], f"volume {volume.get('name', '?')!r}")
    if report.role in checks.table().raised_roles and spec.get("automountServiceAccountToken") is not False:
        account = spec.get("serviceAccountName") or "default"
        message = f"mounts the {account!r} service-account token (automountServiceAccountToken is not false)"
        report(checks.SERVICE_ACCOUNT_TOKEN, message, {"service_account": str(account)})
    context = _mapping(spec.get("securityContext"))
    if _unconfined(context):
        report(checks.UNCONFINED_PROFILE, "pod securityContext sets an Unconfined profile", {"level": "pod"})
    annotations = (obj.get("metadata") or {}).get("annotations") or {}
    for key, value in annotations.items() if isinstance(annotations, dict) else []:
        if str(key).startswith("container.apparmor.security.beta.kubernetes.io/") and str(value) == "unconfined":
            report(checks.UNCONFINED_PROFILE, f"annotation {key}: unconfined", {"annotation": str(key)})


def _unconfined(context: dict[str, Any]) -> bool:
    for field in ("seccompProfile", "appArmorProfile"):
        profile = context.get(field)
        if isinstance(profile, dict) and str(profile.get("type", "")).lower() == "unconfined":
            return True
    return False


def _check_container(report: checks.Reporter, name: str, container: dict[str, Any]) -> None:
    context = _mapping(container.get("securityContext"))
    evidence = {"container": name}
    if context.get("privileged") is True:
        report(checks.PRIVILEGED_CONTAINER, f"container {name!r} runs privileged", evidence, raise_for_role=True)
    capabilities = _mapping(context.get("capabilities"))
    checks.check_capabilities(report, capabilities.get("add"), name)
    escalation = context.get("allowPrivilegeEscalation")
    if escalation is True:
        report(checks.PRIVILEGE_ESCALATION, f"container {name!r} sets allowPrivilegeEscalation: true", evidence,
               severity=Severity.MEDIUM)  # fmt: skip
    elif escalation is not False and context.get("privileged") is not True:
        report(
            checks.PRIVILEGE_ESCALATION, f"container {name!r} does not set allowPrivilegeEscalation: false", evidence
        )
    if context.get("runAsUser") == 0:
        report(checks.RUNS_AS_ROOT, f"container {name!r} sets runAsUser: 0", evidence, severity=Severity.MEDIUM)
    if _unconfined(context):
        report(checks.UNCONFINED_PROFILE, f"container {name!r} sets an Unconfined profile", evidence)
    literal = []
    for variable in container.get("env") or []:
        if isinstance(variable, dict):
            checks.check_gpu_env(report, str(variable.get("name", "")), variable.get("value", ""), name)
            if "valueFrom" not in variable and checks.is_credential_literal(
                str(variable.get("name", "")), variable.get("value")
            ):
                literal.append(str(variable.get("name")))
    if literal:
        proxy = checks.is_auth_proxy(str(container.get("image", "")))
        why = "; with it anyone forges the proxy's sessions" if proxy else ""
        message = f"container {name!r} has credentials written into the manifest: {', '.join(literal[:10])}{why}"
        severity = Severity.HIGH if proxy else Severity.MEDIUM
        report(checks.ENVIRONMENT_CREDENTIALS, message, {**evidence, "names": ", ".join(literal)}, severity=severity)
    words = checks.command_words(container.get("command")) + checks.command_words(container.get("args"))
    checks.check_platform_start(report, words, f"container {name!r} command")
    limits = (
        ((container.get("resources") or {}).get("limits") or {}) if isinstance(container.get("resources"), dict) else {}
    )
    gpus = [resource for resource in checks.table().gpu_resources if resource in limits]
    if gpus:
        message = f"container {name!r} requests {', '.join(gpus)}; {checks.table().gpu_notes}"
        report(checks.GPU_ALL_DEVICES, message, {**evidence, "resource": ", ".join(gpus)}, severity=Severity.INFO)


def _check_pod_defaults(report: checks.Reporter, spec: dict[str, Any], containers: list[tuple[str, dict]]) -> None:
    """Settings left to defaults that a hardened workload sets: non-root user, read-only root filesystem."""
    pod = _mapping(spec.get("securityContext"))
    for name, container in containers:
        context = _mapping(container.get("securityContext"))
        non_root = context.get("runAsNonRoot", pod.get("runAsNonRoot")) is True
        user = context.get("runAsUser", pod.get("runAsUser"))
        if not non_root and not (isinstance(user, int) and user > 0):
            report(checks.RUNS_AS_ROOT, f"container {name!r} may run as root (no runAsNonRoot or runAsUser)",
                   {"container": name})  # fmt: skip
        if context.get("readOnlyRootFilesystem") is not True:
            report(checks.WRITABLE_ROOT_FS, f"container {name!r} has a writable root filesystem", {"container": name})


def _check_multi_model(report: checks.Reporter, obj: dict[str, Any], kind: str, group: str) -> None:
    spec = _mapping(obj.get("spec"))
    if kind == "SeldonDeployment" and group == "machinelearning.seldon.io":
        for predictor in spec.get("predictors") or []:
            models = _graph_models(predictor.get("graph") if isinstance(predictor, dict) else None)
            if len(models) >= 2:
                where = f"predictor {predictor.get('name', '?')!r}"
                message = f"{where} serves {len(models)} models in one pod ({', '.join(models[:5])})"
                report(checks.MULTI_MODEL_CONTAINER, message, {"models": ", ".join(models[:20])})
    elif kind in ("ServingRuntime", "ClusterServingRuntime") and spec.get("multiModel") is True:
        report(checks.MULTI_MODEL_CONTAINER, "serving runtime sets multiModel: true", {"field": "spec.multiModel"})
    elif kind == "Server" and group == "mlops.seldon.io":
        report(checks.MULTI_MODEL_CONTAINER, "Seldon Core 2 Server loads every Model scheduled on it", {"kind": kind})


def _check_generators(report: checks.Reporter, obj: dict[str, Any]) -> None:
    """kustomize builds Secrets from literals written in the kustomization: every install built from this tree
    shares those values, and a public repository's are known to all (Kubeflow's oauth2-proxy cookie secret)."""
    for kind, key in (("secretGenerator", "secret"), ("configMapGenerator", "config map")):
        for generator in obj.get(kind) or []:
            if not isinstance(generator, dict):
                continue
            names = [
                name
                for literal in generator.get("literals") or []
                for name, _, value in [str(literal).partition("=")]
                if (kind == "secretGenerator" and value.strip()) or checks.is_credential_literal(name, value)
            ]
            if names:
                target = str(generator.get("name", "?"))
                message = (
                    f"{key} {target!r} is generated from values written in the kustomization: {', '.join(names[:10])}; "
                    "every install built from this tree shares them"
                )
                evidence = {"generator": target, "names": ", ".join(names)}
                severity = Severity.HIGH if kind == "secretGenerator" else Severity.MEDIUM
                report(checks.ENVIRONMENT_CREDENTIALS, message, evidence, severity=severity)


def _check_static_logins(report: checks.Reporter, obj: dict[str, Any]) -> None:
    """A Dex configuration with static password users: a login every install of this tree shares (Kubeflow's
    default user@example.com keeps a published password until someone changes it)."""
    from ..parsers.yaml_docs import Unreadable, YamlLimit, parse_documents

    for key, text in (obj.get("data") or {}).items():
        if not isinstance(text, str) or "staticPasswords" not in text:
            continue
        try:
            documents = parse_documents(text.encode(), as_json=False)
        except (Unreadable, YamlLimit):
            continue  # not Dex's YAML: nothing to say about it here
        for config in documents:
            users = config.get("staticPasswords") if isinstance(config, dict) else None
            if config and isinstance(users, list) and users and config.get("enablePasswordDB") is True:
                emails = [str(user.get("email", "?")) for user in users if isinstance(user, dict)]
                message = (
                    f"Dex config {key!r} logs in static users whose password hashes are written in the manifest: "
                    f"{', '.join(emails[:10])}; every install that keeps them shares those logins"
                )
                report(checks.ENVIRONMENT_CREDENTIALS, message, {"config": str(key), "names": ", ".join(emails)})


def _graph_models(graph: Any) -> list[str]:
    models, stack = [], [graph]
    while stack:
        node = stack.pop()
        if not isinstance(node, dict):
            continue
        if str(node.get("type", "MODEL")).upper() == "MODEL":
            models.append(str(node.get("name", "?")))
        stack.extend(node.get("children") or [])
    return models


class Surroundings(NamedTuple):
    """What the rest of the file and tree tell about one object's exposure."""

    auth_layer: bool  # an authentication policy in the file or the scanned tree
    internal_gateways: frozenset[str]  # Gateway names that serve the cluster only
    proxied: list[tuple[dict[str, str], frozenset[str]]]  # pod labels -> ports of their authenticating proxies


def _proxied(objects: list[dict[str, Any]]) -> list[tuple[dict[str, str], frozenset[str]]]:
    """Per workload of the file, its pod labels and the ports (numbers and names) its auth-proxy containers serve."""
    found = []
    for obj in objects:
        for spec in _pod_specs(obj):
            template = (obj.get("spec") or {}).get("template") if isinstance(obj.get("spec"), dict) else None
            labels = ((template or {}).get("metadata") or {}).get("labels") if isinstance(template, dict) else None
            ports = {
                str(port.get(field))
                for _, container in _containers(spec)
                if checks.is_auth_proxy(str(container.get("image", "")))
                for port in container.get("ports") or []
                if isinstance(port, dict)
                for field in ("containerPort", "name")
                if port.get(field) is not None
            }
            if isinstance(labels, dict) and ports:
                found.append(({str(k): str(v) for k, v in labels.items()}, frozenset(ports)))
    return found


def _check_exposure(
    report: checks.Reporter, obj: dict[str, Any], kind: str, group: str, surroundings: Surroundings
) -> None:
    auth_layer = surroundings.auth_layer
    spec = _mapping(obj.get("spec"))
    ml_named = _ml_name(_name(obj))
    if kind == "Service" and spec.get("type") in _EXPOSED_TYPES and not _behind_proxy(spec, surroundings):
        _check_service(report, spec, ml_named, auth_layer)
    elif kind == "Ingress":
        _check_ingress(report, obj, spec, ml_named)
    elif kind == "Gateway" and group == "networking.istio.io" and not _in_cluster(spec):
        for server in spec.get("servers") or []:
            hosts = [str(h) for h in (server.get("hosts") or [])] if isinstance(server, dict) else []
            if any(h == "*" or h.endswith("/*") for h in hosts):
                where = "an authentication policy is in the scanned tree" if auth_layer else "no authentication policy"
                message = f"Istio Gateway accepts any host ({', '.join(hosts)}); {where}"
                severity = Severity.LOW if auth_layer else Severity.HIGH
                report(checks.EXPOSED_ML_SERVICE, message, {"hosts": ", ".join(hosts)}, severity=severity)
    elif kind == "VirtualService" and group == "networking.istio.io":
        _check_virtual_service(report, spec, surroundings)
    elif kind in ("RayCluster", "RayService", "RayJob") and group == "ray.io":
        cluster = spec.get("rayClusterSpec") or spec.get("rayClusterConfig") or spec
        head = cluster.get("headGroupSpec") if isinstance(cluster, dict) else None
        if isinstance(head, dict) and head.get("serviceType") in _EXPOSED_TYPES:
            message = (
                f"Ray head service of type {head['serviceType']} exposes the dashboard and Jobs API (code execution)"
            )
            evidence = {"serviceType": str(head["serviceType"])}
            report(checks.EXPOSED_ML_SERVICE, message, evidence, severity=Severity.CRITICAL)


def _behind_proxy(spec: dict[str, Any], surroundings: Surroundings) -> bool:
    """Every target port of the Service lands on an authenticating proxy container of the pods it selects."""
    selector = _mapping(spec.get("selector"))
    targets = {str(p.get("targetPort", p.get("port"))) for p in spec.get("ports") or [] if isinstance(p, dict)}
    if not selector or not targets:
        return False
    wanted = {str(k): str(v) for k, v in selector.items()}
    return any(wanted.items() <= labels.items() and targets <= ports for labels, ports in surroundings.proxied)


def _in_cluster(spec: dict[str, Any]) -> bool:
    """A Gateway served by an in-cluster gateway deployment (its selector names one)."""
    selector = _mapping(spec.get("selector"))
    return any(str(value) in checks.table().in_cluster_gateways for value in selector.values())


def _check_virtual_service(report: checks.Reporter, spec: dict[str, Any], surroundings: Surroundings) -> None:
    hosts = [str(h) for h in spec.get("hosts") or []]
    if not any(h == "*" or h.startswith("*.") for h in hosts):
        return
    # Without gateways a VirtualService routes the mesh's own traffic ("mesh"); in-cluster gateways too.
    gateways = [str(g).rsplit("/", 1)[-1] for g in spec.get("gateways") or ["mesh"]]
    if all(g == "mesh" or g in surroundings.internal_gateways for g in gateways):
        return
    auth_layer = surroundings.auth_layer
    routes = [route for key in ("http", "tcp", "tls") for route in spec.get(key) or [] if isinstance(route, dict)]
    targets = [
        str((destination.get("destination") or {}).get("host", ""))
        for route in routes
        for destination in route.get("route") or []
        if isinstance(destination, dict)
    ]
    ml_targets = [target for target in targets if _ml_name(target)]
    if ml_targets:
        message = f"VirtualService for any host ({', '.join(hosts)}) routes to {', '.join(ml_targets[:5])}"
        severity = Severity.LOW if auth_layer else Severity.HIGH
        report(checks.EXPOSED_ML_SERVICE, message, {"hosts": ", ".join(hosts), "destinations": ", ".join(ml_targets)},
               severity=severity)  # fmt: skip


def _ml_name(name: str) -> bool:
    return any(fragment in name.lower() for fragment in checks.table().service_names)


def _check_service(report: checks.Reporter, spec: dict[str, Any], ml_named: bool, auth_layer: bool) -> None:
    from ..platforms.fingerprints import default_ports  # the platforms' own ports, from their fingerprints

    ports = {p.get(field) for p in spec.get("ports") or [] if isinstance(p, dict) for field in ("port", "targetPort")}
    if ml_named or ports & set(default_ports()):
        what = "an ML platform" if ml_named else "an ML platform port"
        message = f"Service of type {spec['type']} puts {what} on the network"
        evidence = {"type": str(spec["type"]), "ports": ", ".join(sorted(map(str, ports - {None})))}
        selector = _mapping(spec.get("selector"))
        if selector:
            evidence["selects"] = ", ".join(f"{k}={v}" for k, v in sorted(selector.items()))
        report(checks.EXPOSED_ML_SERVICE, message, evidence, severity=Severity.MEDIUM if auth_layer else Severity.HIGH)


def _check_ingress(report: checks.Reporter, obj: dict[str, Any], spec: dict[str, Any], ml_named: bool) -> None:
    annotations = (obj.get("metadata") or {}).get("annotations") or {}
    if any(key in annotations for key in checks.table().auth_annotations):
        return
    for rule in spec.get("rules") or []:
        if not isinstance(rule, dict):
            continue
        host = str(rule.get("host", ""))
        paths = (rule.get("http") or {}).get("paths") or []
        backends = [
            str(((p.get("backend") or {}).get("service") or {}).get("name", "")) for p in paths if isinstance(p, dict)
        ]
        if (ml_named or any(_ml_name(b) for b in backends)) and (host in ("", "*") or host.startswith("*.")):
            target = ", ".join(backends) or "an ML service"
            message = f"Ingress routes host {host or '(any)'!r} to {target} without an auth annotation"
            report(checks.EXPOSED_ML_SERVICE, message, {"host": host or "*", "backends": ", ".join(backends)})


def _check_binding(
    ctx: ScanContext, item: Item, obj: dict[str, Any], objects: list[dict[str, Any]], ml_accounts: dict[str, str]
) -> None:
    role_ref = _mapping(obj.get("roleRef"))
    role_name = str(role_ref.get("name", ""))
    groups = {"*"} if role_name == "cluster-admin" else _wildcard_groups(role_name, objects)
    if not groups or obj.get("kind") != "ClusterRoleBinding":
        return
    # A wildcard over named API groups controls those resources only; over the core group, "*", RBAC itself
    # or the workload groups (apps, batch) it creates pods, reads secrets or grants itself the rest.
    takeover = bool(groups & _TAKEOVER_GROUPS)
    scope = "the cluster-wide role" if takeover else f"full control of {', '.join(sorted(groups))} resources through"
    workload = f"ClusterRoleBinding/{_name(obj)}"
    for subject in obj.get("subjects") or []:
        if not isinstance(subject, dict):
            continue
        subject_name = str(subject.get("name", "?"))
        user = ml_accounts.get(subject_name) if subject.get("kind") == "ServiceAccount" else None
        anonymous = subject_name in ("system:anonymous", "system:unauthenticated")
        severity = Severity.CRITICAL if user or anonymous else Severity.HIGH
        if not takeover:
            severity = Severity.HIGH if anonymous else Severity.MEDIUM
        used = f"; the ML workload {user} runs as it" if user else ""
        message = f"{workload} gives {subject.get('kind', '?')} {subject_name!r} {scope} {role_name!r}{used}"
        evidence = {
            "role": role_name,
            "subject": f"{subject.get('kind', '?')}/{subject_name}",
            "api_groups": ", ".join(sorted(groups)),
            **({"ml_workload": user} if user and takeover else {}),  # the workload that holds the whole cluster
        }
        ctx.report(
            checks.CLUSTER_WIDE_RBAC.finding(item.location.child(workload), message, evidence, severity=severity)
        )


_TAKEOVER_GROUPS = frozenset({"*", "", "rbac.authorization.k8s.io", "apps", "batch"})


def _wildcard_groups(name: str, objects: list[dict[str, Any]]) -> set[str]:
    """The API groups over which the ClusterRole allows every verb on every resource ("" is the core group)."""
    groups: set[str] = set()
    for obj in objects:
        if obj.get("kind") == "ClusterRole" and _name(obj) == name:
            for rule in obj.get("rules") or []:
                if isinstance(rule, dict) and "*" in (rule.get("verbs") or []) and "*" in (rule.get("resources") or []):
                    named = rule.get("apiGroups")
                    groups |= {str(group) for group in named} if isinstance(named, list) and named else {""}
    return groups


FORMATS = (
    Format(
        "kubernetes-manifest", "other", "Kubernetes manifest", "deployment", handler=analyze, detect=detect, order=420
    ),
)
