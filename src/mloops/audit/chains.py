"""Attack chains over the graph (the rules are data/chains.toml), and the fewest fixes that break them all."""

from __future__ import annotations

import functools
import itertools
from collections.abc import Iterator
from typing import NamedTuple

from ..core import Finding, Severity
from .graph import Edge, Graph, chain_data

MAX_CHAINS_PER_RULE = 500  # a dense estate has combinatorially many paths: past this, a count is reported
MAX_EXACT_FIXES = 20  # candidate fixes up to which the fewest are found exactly; above, greedily
MAX_EXACT_SETS = 250_000  # fix sets tried by the exact search before it gives way to the greedy one


class ChainRule(NamedTuple):
    id: str
    name: str
    severity: Severity
    entry: str
    jewel: str
    steps: tuple[frozenset[str], ...]
    after: str


FixKey = tuple[str, str, str]  # a finding as something to fix: rule id, location, message (findings hold dicts)


def fix_key(finding: Finding) -> FixKey:
    return finding.rule.id, str(finding.location), finding.message


class Chain(NamedTuple):
    rule: ChainRule
    edges: tuple[Edge, ...]

    def fixes(self) -> frozenset[FixKey]:
        """The findings whose fix removes a step of this chain."""
        fixable = set(chain_data()["fixable"])
        return frozenset(fix_key(edge.finding) for edge in self.edges if edge.kind in fixable)


class Cut(NamedTuple):
    fixes: tuple[Finding, ...]  # fix these, and no chain is left
    exact: bool  # the fewest possible; False when found greedily (a large estate)
    unbreakable: tuple[Chain, ...]  # chains with no fixable step


@functools.cache
def chain_rules() -> tuple[ChainRule, ...]:
    return tuple(
        ChainRule(
            entry["id"],
            entry["name"],
            Severity.parse(entry["severity"]),
            entry["entry"],
            entry["jewel"],
            tuple(frozenset(kinds) for kinds in entry["steps"]),
            entry["after"],
        )
        for entry in chain_data()["chain"]
    )


def find_chains(graph: Graph, rules: tuple[ChainRule, ...] | None = None) -> tuple[list[Chain], dict[str, int]]:
    """Every chain of every rule (no node visited twice in one chain), and per rule the chains left out
    past ``MAX_CHAINS_PER_RULE``."""
    chains: list[Chain] = []
    left_out: dict[str, int] = {}
    for rule in rules or chain_rules():
        found = 0
        for path in _paths(graph, rule.steps):
            found += 1
            if found <= MAX_CHAINS_PER_RULE:
                chains.append(Chain(rule, path))
        if found > MAX_CHAINS_PER_RULE:
            left_out[rule.id] = found - MAX_CHAINS_PER_RULE
    return chains, left_out


def _paths(graph: Graph, steps: tuple[frozenset[str], ...]) -> Iterator[tuple[Edge, ...]]:
    starts = [edge for edge in graph.edges if edge.kind in steps[0]]
    stack: list[tuple[Edge, ...]] = [(edge,) for edge in reversed(starts)]
    while stack:
        path = stack.pop()
        if len(path) == len(steps):
            yield path
            continue
        visited = {path[0].source, *(edge.target for edge in path)}
        following = [
            e for e in graph.leaving(path[-1].target) if e.kind in steps[len(path)] and e.target not in visited
        ]
        stack.extend((*path, edge) for edge in reversed(following))


def fewest_fixes(chains: list[Chain]) -> Cut:
    """The smallest set of findings to fix so that every chain loses a step (a minimum hitting set: exact for
    a handful of candidate fixes, greedy beyond)."""
    findings = {fix_key(edge.finding): edge.finding for chain in chains for edge in chain.edges}
    unbreakable = tuple(chain for chain in chains if not chain.fixes())
    sets = list({chain.fixes() for chain in chains if chain.fixes()})
    candidates = sorted({fix for fixes in sets for fix in fixes}, key=lambda fix: (-_hits(fix, sets), fix))
    chosen = _exact(sets, candidates) if len(candidates) <= MAX_EXACT_FIXES else None
    exact = chosen is not None
    if chosen is None:
        chosen = _greedy(sets, candidates)
    return Cut(tuple(findings[fix] for fix in chosen), exact, unbreakable)


def _hits(fix: FixKey, sets: list[frozenset[FixKey]]) -> int:
    return sum(fix in fixes for fixes in sets)


def _exact(sets: list[frozenset[FixKey]], candidates: list[FixKey]) -> tuple[FixKey, ...] | None:
    tried = 0
    for size in range(len(candidates) + 1):
        for chosen in itertools.combinations(candidates, size):
            tried += 1
            if tried > MAX_EXACT_SETS:
                return None
            if all(not fixes.isdisjoint(chosen) for fixes in sets):
                return chosen
    return None


def _greedy(sets: list[frozenset[FixKey]], candidates: list[FixKey]) -> tuple[FixKey, ...]:
    left, chosen = list(sets), []
    while left:
        best = max(candidates, key=lambda fix: _hits(fix, left))
        chosen.append(best)
        left = [fixes for fixes in left if best not in fixes]
    return tuple(chosen)


def broken_by(fix: Finding, chains: list[Chain]) -> int:
    return sum(fix_key(fix) in chain.fixes() for chain in chains)
