"""The attack graph of an estate: assets and platform features as nodes, and as edges only what a finding
proves, each edge keeping that finding.

Cross-references meet through normalised addresses (``host:port``): the server a notebook's tracking URI
names, the endpoint a probe found open and the registry a scan walked are one node.
"""

from __future__ import annotations

import copy
import functools
import os
import urllib.parse
from collections import defaultdict
from collections.abc import Iterable
from typing import Any, NamedTuple

from .. import formats
from ..core import Capability, FileResult, Finding, Severity
from ..data import load_toml
from ..deployments.deployment_checks import CLUSTER_WIDE_RBAC, EXPOSED_ML_SERVICE, MODEL_SOURCE
from ..mlcode.python_code import (
    CODE_HARDCODED_CREDENTIAL,
    CODE_LOADS_DATASET,
    CODE_MLFLOW_PICKLE,
    CODE_PICKLE_LOAD,
    CODE_PLATFORM_ADDRESS,
    CODE_TORCH_LOAD,
    CODE_TRUST_REMOTE_CODE,
    CODE_UNSAFE_FALLBACK,
)
from ..mlcode.secrets import EXPOSED_SECRET
from ..platforms.engine import PLATFORM_OPEN

ATTACKER = "attacker"  # anyone who reaches the network, or reads a file that leaked
_DEFAULT_PORTS = {"http": 80, "https": 443}
_LOOPBACK = {"localhost", "::1", "[::1]"}


class Node(NamedTuple):
    id: str
    kind: str  # attacker, registry, model-version, model-file, dataset, host, credential, workload,
    # service-account, node, jobs, cluster
    label: str


class Edge(NamedTuple):
    source: str
    target: str
    kind: str  # one of the edge kinds of data/chains.toml
    finding: Finding  # what proves the edge


ANYONE = Node(ATTACKER, "attacker", "anyone on the network, or who reads a leaked file")


class Graph:
    def __init__(self) -> None:
        self.nodes: dict[str, Node] = {ATTACKER: ANYONE}
        self.edges: list[Edge] = []
        self._out: dict[str, list[Edge]] = defaultdict(list)
        self._seen: set[tuple[str, ...]] = set()

    def add(self, source: Node, target: Node, kind: str, finding: Finding) -> None:
        """One edge per source, target, kind and proving finding: two findings that each prove a step (a
        privileged container that also mounts the runtime socket) are two ways through it, and fixing one of
        them leaves the other. A step no fix removes (a registry stores a version) is one edge, its first proof
        kept."""
        self.nodes.setdefault(source.id, source)
        self.nodes.setdefault(target.id, target)
        key: tuple[str, ...] = (source.id, target.id, kind)
        if kind in chain_data()["fixable"]:
            key += (finding.rule.id, str(finding.location), finding.message)
        if key in self._seen:
            return
        self._seen.add(key)
        edge = Edge(source.id, target.id, kind, finding)
        self.edges.append(edge)
        self._out[source.id].append(edge)

    def leaving(self, node: str) -> list[Edge]:
        return self._out.get(node, [])


def address(text: str) -> str | None:
    """``host:port`` of a URL or ``mlflow://HOST:PORT/...``; loopback names are one host."""
    parsed = urllib.parse.urlsplit(text if "://" in text else f"http://{text}")
    try:
        host, port = parsed.hostname, parsed.port
    except ValueError:
        return None
    if not host:
        return None
    host = "127.0.0.1" if host in _LOOPBACK else _service(host.lower())
    scheme = parsed.scheme.lower()
    return f"{host}:{port or _DEFAULT_PORTS.get(scheme, 80 if scheme == 'mlflow' else 0)}"


def _service(host: str) -> str:
    """A Kubernetes Service's DNS name as ``name.namespace``: ``mlflow.ml.svc.cluster.local`` and
    ``mlflow.ml.svc`` name what ``mlflow.ml`` names. A bare ``mlflow`` stays bare: its namespace is the caller's."""
    for suffix in (".svc.cluster.local", ".svc"):
        if host.endswith(suffix) and host.count(".") >= suffix.count(".") + 1:
            return host.removesuffix(suffix)
    return host


@functools.cache
def chain_data() -> dict[str, Any]:
    return load_toml("chains.toml")


def registry(where: str) -> Node:
    return Node(f"registry:{where}", "registry", f"MLflow model registry at {where}")


def version(where: str, name: str, which: str) -> Node:
    return Node(f"mlflow://{where}/{name}/{which}", "model-version", f"model {name} version {which} at {where}")


def model_file(path: str) -> Node:
    where = os.path.normpath(os.path.abspath(path))
    return Node(f"file:{where}", "model-file", f"model file {where}")


def dataset(folder: str) -> Node:
    where = os.path.normpath(os.path.abspath(folder))
    return Node(f"dataset:{where}", "dataset", f"dataset {where}")


def credential(finding: Finding) -> Node:
    """A credential found: what it is (its variable or kind) and where, never its value."""
    what = finding.evidence.get("variable") or finding.evidence.get("kind") or "credential"
    return Node(f"credential:{finding.location}", "credential", f"{what} at {finding.location}")


def host(path: str) -> Node:
    return Node(f"host:{path}", "host", f"the machine that runs {path}")


KUBERNETES = Node("cluster:kubernetes", "cluster", "the Kubernetes cluster, through a cluster-wide role")


def jobs(where: str) -> Node:
    return Node(f"jobs:{where}", "jobs", f"jobs API at {where}")


def cluster(where: str) -> Node:
    return Node(f"cluster:{where}", "cluster", f"the cluster that runs the jobs of {where}")


def workload(where: str, role: str = "workload") -> Node:
    """A workload by its manifest and object (``deploy.yaml!Kind/name``), labelled by its ML role."""
    return Node(f"workload:{where}", "workload", f"{role} {where}")


def workload_of(finding: Finding) -> Node:
    return workload(finding.location.nested_name, finding.evidence.get("role", "workload"))


def node_under(finding: Finding) -> Node:
    where = finding.location.nested_name
    return Node(f"node:{where}", "node", f"the node that runs {where}")


def build(files: Iterable[FileResult], tracking: str | None = None) -> Graph:
    """The graph of every result of an audit, accepted (suppressed) findings left out; ``tracking`` is the server
    ``models:/`` results were read from."""
    graph = Graph()
    results = [_unsuppressed(result) for result in files]
    addresses = {result.path: _addresses(result) for result in results}
    for result in results:
        for finding in result.findings:
            _link(graph, result, finding, addresses[result.path], tracking)
    _link_aliases(graph)
    findings = [finding for result in results for finding in result.findings]
    sources = [finding for finding in findings if finding.rule.id == MODEL_SOURCE.id]
    _link_exposure(graph, [finding for finding in findings if finding.rule.id == EXPOSED_ML_SERVICE.id], sources)
    return graph


def _unsuppressed(result: FileResult) -> FileResult:
    kept = copy.copy(result)
    kept.findings = [finding for finding in result.findings if finding.suppressed is None]
    return kept


def _addresses(result: FileResult) -> dict[str, set[str]]:
    """platform -> servers the file's code points its clients at (MLO329)."""
    found: dict[str, set[str]] = defaultdict(set)
    for finding in result.findings:
        if finding.rule.id == CODE_PLATFORM_ADDRESS.id:
            where = address(finding.evidence.get("address", ""))
            if where:
                found[finding.evidence.get("platform", "")].add(where)
    return found


def _link(
    graph: Graph, result: FileResult, finding: Finding, servers: dict[str, set[str]], tracking: str | None
) -> None:
    rule = finding.rule.id  # compared by id: a finding may come back from a worker process or the cache
    attack = finding.evidence.get("attack") if rule == PLATFORM_OPEN.id else None
    if attack in chain_data()["registry_write"]["attacks"]:
        where = address(finding.location.path)
        if where and finding.evidence.get("platform") == "mlflow":
            graph.add(ANYONE, registry(where), "unauthenticated", finding)
    elif attack in chain_data()["jobs"]["attacks"]:
        where = address(finding.location.path) or finding.location.path
        graph.add(ANYONE, jobs(where), "unauthenticated", finding)
        graph.add(jobs(where), cluster(where), "runs-code", finding)
    elif rule == CODE_LOADS_DATASET.id:
        graph.add(
            dataset(_beside(result.path, finding.evidence.get("path", ""))), host(result.path), "trains-on", finding
        )
    elif rule == CODE_TRUST_REMOTE_CODE.id:
        graph.add(ANYONE, host(result.path), "remote-code", finding)
    elif _poisons_dataset(result, finding):
        # The folder of the loading script or data file is the dataset load_dataset names.
        graph.add(ANYONE, dataset(os.path.dirname(os.path.abspath(result.path))), "poisoned-dataset", finding)
    elif (
        finding.attack_class.slug == chain_data()["active_content"]["attack_class"]
        and finding.severity >= Severity.HIGH
    ):
        graph.add(ANYONE, host(result.path), "active-content", finding)
    elif rule in (CODE_HARDCODED_CREDENTIAL.id, EXPOSED_SECRET.id):
        platform = _credential_platform(finding)
        for where in servers.get(platform or "", ()):  # code that points the platform's client somewhere
            graph.add(host(result.path), credential(finding), "holds", finding)
            graph.add(credential(finding), registry(where), "opens", finding)
            graph.add(ANYONE, registry(where), "leaked-credential", finding)
            graph.add(host(result.path), registry(where), "holds-credential", finding)
    elif rule == CODE_MLFLOW_PICKLE.id:
        _link_load(graph, result, finding, servers.get("mlflow", set()))
    elif rule == CODE_PICKLE_LOAD.id or (
        rule in (CODE_TORCH_LOAD.id, CODE_UNSAFE_FALLBACK.id) and finding.severity >= Severity.HIGH
    ):
        if finding.evidence.get("path"):
            graph.add(model_file(_beside(result.path, finding.evidence["path"])), host(result.path), "loads", finding)
    elif rule == MODEL_SOURCE.id:
        uri = finding.evidence.get("uri", "")
        where = address(uri) if uri.lower().startswith(("http://", "https://")) else None
        if where:
            graph.add(registry(where), workload_of(finding), "feeds", finding)
    elif rule in chain_data()["escape"]["rules"]:
        graph.add(workload_of(finding), node_under(finding), "escape", finding)
    elif rule == CLUSTER_WIDE_RBAC.id:
        account = f"{finding.location.path}!{finding.evidence.get('subject', '?')}"
        bound = Node(f"service-account:{account}", "service-account", f"{finding.evidence.get('subject')} in {account}")
        graph.add(bound, KUBERNETES, "bound-to", finding)
        if finding.evidence.get("ml_workload"):
            runner = workload(f"{finding.location.path}!{finding.evidence['ml_workload']}")
            graph.add(runner, bound, "runs-as", finding)
            graph.add(runner, KUBERNETES, "cluster-admin", finding)
    elif finding.capability is Capability.CODE_EXECUTION and finding.severity >= Severity.HIGH:
        stored = _stored_version(result.path, tracking)
        if stored:
            graph.add(registry(stored[0]), version(*stored), "stores", finding)
            graph.add(ANYONE, version(*stored), "poisoned", finding)
        elif formats.info(formats.primary_format(result)).inventory_group == "model":
            graph.add(ANYONE, model_file(result.path), "poisoned", finding)


def _beside(code: str, relative: str) -> str:
    """A path that code names, read from the code's own folder (where a notebook runs); an absolute one as is."""
    return os.path.join(os.path.dirname(os.path.abspath(code)), relative)


def _poisons_dataset(result: FileResult, finding: Finding) -> bool:
    """A dataset's own file (its loading script, a data file) that runs code when the dataset is loaded."""
    if finding.attack_class.slug != chain_data()["poisoned_dataset"]["attack_class"]:
        return False
    fmt = formats.primary_format(result)
    return finding.severity >= Severity.HIGH and (
        fmt == "dataset-script" or formats.info(fmt).inventory_group == "data"
    )


def _link_load(graph: Graph, result: FileResult, finding: Finding, servers: set[str]) -> None:
    uri = finding.evidence.get("uri", "")
    if not uri.startswith("models:/"):
        return
    head, _, rest = uri.removeprefix("models:/").strip("/").partition("/")
    name, _, alias = head.partition("@")
    which = f"@{alias}" if alias else rest.split("/", 1)[0]
    for where in servers:
        node = version(where, name, which or "latest")
        graph.add(registry(where), node, "stores", finding)
        graph.add(node, host(result.path), "loads", finding)


def _link_exposure(graph: Graph, exposures: list[Finding], sources: list[Finding]) -> None:
    """A Service exposes the workloads of its file whose pod labels hold its selector (a workload's model
    source names its labels); anything else the finding names is exposed itself (a Ray head's service type)."""
    for exposure in exposures:
        selects = _pairs(exposure.evidence.get("selects", ""))
        if not selects:
            graph.add(ANYONE, workload_of(exposure), "exposed", exposure)
            continue
        for source in sources:
            same_file = source.location.path == exposure.location.path
            if same_file and selects <= _pairs(source.evidence.get("labels", "")):
                graph.add(ANYONE, workload_of(source), "exposed", exposure)


def _pairs(text: str) -> set[str]:
    return {pair.strip() for pair in text.split(",") if pair.strip()}


def _link_aliases(graph: Graph) -> None:
    """An alias (or no version) is resolved when the code runs: any version of the model may be the one
    loaded, so every numbered version of it the graph knows is loaded by that code too. Versions are grouped
    by model once, so the cost is the size of the graph, not loads times nodes."""
    numbered: dict[str, list[Node]] = defaultdict(list)  # "mlflow://HOST:PORT/NAME" -> its numbered versions
    for node in graph.nodes.values():
        model, _, which = node.id.rpartition("/")
        if node.kind == "model-version" and which.isdigit():
            numbered[model].append(node)
    for edge in [e for e in graph.edges if e.kind == "loads" and graph.nodes[e.source].kind == "model-version"]:
        model, _, which = edge.source.rpartition("/")
        if not which.isdigit():
            for node in numbered.get(model, []):
                graph.add(node, graph.nodes[edge.target], "loads", edge.finding)


def _credential_platform(finding: Finding) -> str | None:
    named = finding.evidence.get("variable") or finding.evidence.get("kind") or ""
    for platform, names in chain_data()["credentials"].items():
        if named.upper() in (name.upper() for name in names):
            return str(platform)
    return None


def _stored_version(path: str, tracking: str | None) -> tuple[str, str, str] | None:
    """(server, model, version) of a registry artifact: ``mlflow://HOST/NAME/VERSION/FILE``, or
    ``models:/NAME/VERSION/FILE`` read from ``tracking``."""
    if path.startswith("mlflow://"):
        host_port, _, rest = path.removeprefix("mlflow://").partition("/")
        where = address(f"mlflow://{host_port}")
    elif path.startswith("models:/") and tracking:
        rest, where = path.removeprefix("models:/"), address(tracking)
    else:
        return None
    parts = rest.split("/")
    if not where or len(parts) < 2 or not parts[0] or not parts[1]:
        return None
    return where, parts[0], parts[1]
