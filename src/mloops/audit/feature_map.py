"""The feature -> attack map of an audit (data/feature_map.toml): each platform feature found, where, what an
attacker can do with it, what follows, and the victims the graph shows."""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

from ..core import FileResult
from ..data import load_toml
from ..platforms.engine import PLATFORM_OPEN
from .graph import Graph, address


class FeatureEntry(NamedTuple):
    feature: str  # the feature's name in the map
    where: str  # a registry's host:port, a probed URL, a workload or a notebook
    can: str
    after: str
    victims: tuple[str, ...]  # labels of graph nodes, or what the map says when the graph shows none


@functools.cache
def features() -> tuple[dict[str, Any], ...]:
    return tuple(load_toml("feature_map.toml")["feature"])


def feature_map(graph: Graph, files: list[FileResult]) -> list[FeatureEntry]:
    entries: list[FeatureEntry] = []
    for feature in features():
        places = _places(feature, graph, files)
        for where in sorted(places):
            entries.append(FeatureEntry(feature["name"], where, feature["can"], feature["after"], places[where]))
    return entries


def _places(feature: dict[str, Any], graph: Graph, files: list[FileResult]) -> dict[str, tuple[str, ...]]:
    """Where the feature was found, each with its victims."""
    places: dict[str, tuple[str, ...]] = {}
    for result in files:
        for finding in result.findings:
            if finding.rule.id == PLATFORM_OPEN.id and finding.evidence.get("attack") in feature["attacks"]:
                where = address(finding.location.path) or finding.location.path
                places[where] = _victims(feature["victims"], graph, where)
    for node in graph.nodes.values():
        if node.kind == "workload" and any(node.label.startswith(role + " ") for role in feature["roles"]):
            places[node.id.removeprefix("workload:")] = _victims(feature["victims"], graph, node.id)
        elif node.kind == "registry" and feature["victims"] == "consumers":
            where = node.id.removeprefix("registry:")
            places[where] = _victims("consumers", graph, where)
        elif node.kind == "host" and "notebook" in feature["roles"] and node.id.endswith(".ipynb"):
            places[node.id.removeprefix("host:")] = _victims("holders", graph, node.id)
    return places


def _victims(kind: str, graph: Graph, where: str) -> tuple[str, ...]:
    nodes = graph.nodes
    if kind == "consumers":
        versions = [e.target for e in graph.leaving(f"registry:{where}") if e.kind == "stores"]
        found = {nodes[e.target].label for e in graph.leaving(f"registry:{where}") if e.kind == "feeds"}
        found |= {nodes[e.target].label for v in versions for e in graph.leaving(v) if e.kind == "loads"}
    elif kind == "clients":
        found = {"whoever calls the served models"}
        found |= {nodes[e.target].label for e in graph.leaving(where) if e.kind == "escape"}
    elif kind == "holders":
        found = {"the user who runs it"} | {
            nodes[e.target].label for e in graph.leaving(where) if e.kind == "holds-credential"
        }
    else:
        found = {"the cluster the jobs run on"}
    return tuple(sorted(found))
