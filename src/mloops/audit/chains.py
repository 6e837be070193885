"""Attack chains over the graph (the rules are data/chains.toml), and the fewest fixes that break them all."""

from __future__ import annotations

import functools
import itertools
from collections import Counter, defaultdict
from collections.abc import Iterator
from typing import NamedTuple

from ..core import Finding, Severity
from .graph import Edge, Graph, chain_data

MAX_CHAINS_PER_RULE = 500  # a dense estate has combinatorially many paths: past this, a count is reported
MAX_COUNTED = 100_000  # chains of one rule counted at most: the count of those left out is a lower bound there
MAX_WALKED = 1_000_000  # partial paths one rule's search extends at most (dead ends included)
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


class ChainPath(NamedTuple):
    """Chains that walk the same nodes by the same kinds of step, told apart only by which finding proves a
    step, read as one path whose steps list every proof (a container both privileged and mounting the runtime
    socket: one path, two proofs of its escape)."""

    rule: ChainRule
    steps: tuple[tuple[str, str, str], ...]  # source, target, kind
    proofs: tuple[tuple[Finding, ...], ...]  # per step, in the order found


def paths(chains: list[Chain]) -> list[ChainPath]:
    grouped: dict[tuple[str, tuple[tuple[str, str, str], ...]], list[Chain]] = {}
    for chain in chains:
        steps = tuple((edge.source, edge.target, edge.kind) for edge in chain.edges)
        grouped.setdefault((chain.rule.id, steps), []).append(chain)
    found = []
    for (_, steps), members in grouped.items():
        proofs = tuple(
            tuple({fix_key(c.edges[i].finding): c.edges[i].finding for c in members}.values())
            for i in range(len(steps))
        )
        found.append(ChainPath(members[0].rule, steps, proofs))
    return found


class LeftOut(NamedTuple):
    """Chains of one rule found but not listed; ``at_least`` when the search stopped at its bound."""

    number: int
    at_least: bool


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


def find_chains(graph: Graph, rules: tuple[ChainRule, ...] | None = None) -> tuple[list[Chain], dict[str, LeftOut]]:
    """Every chain of every rule (no node visited twice in one chain), and per rule the chains left out past
    ``MAX_CHAINS_PER_RULE``. A dense estate has combinatorially many paths, so each rule's search is bounded."""
    chains: list[Chain] = []
    left_out: dict[str, LeftOut] = {}
    for rule in rules or chain_rules():
        found, stopped = 0, False
        for path in _paths(graph, rule.steps):
            if path is None or found >= MAX_COUNTED:
                stopped = True
                break
            found += 1
            if found <= MAX_CHAINS_PER_RULE:
                chains.append(Chain(rule, path))
        if found > MAX_CHAINS_PER_RULE or stopped:
            left_out[rule.id] = LeftOut(max(found - MAX_CHAINS_PER_RULE, 0), stopped)
    return chains, left_out


def _paths(graph: Graph, steps: tuple[frozenset[str], ...]) -> Iterator[tuple[Edge, ...] | None]:
    """Paths whose edges take the steps' kinds in order, depth first; None when the walk reached its bound."""
    starts = [edge for edge in graph.edges if edge.kind in steps[0]]
    stack: list[tuple[Edge, ...]] = [(edge,) for edge in reversed(starts)]
    walked = 0
    while stack:
        walked += 1
        if walked > MAX_WALKED:
            yield None
            return
        path = stack.pop()
        if len(path) == len(steps):
            yield path
            continue
        visited = {path[0].source, *(edge.target for edge in path)}
        kinds = steps[len(path)]
        following = [e for e in graph.leaving(path[-1].target) if e.kind in kinds and e.target not in visited]
        stack.extend((*path, edge) for edge in reversed(following))


def fewest_fixes(chains: list[Chain]) -> Cut:
    """The smallest set of findings to fix so that every chain loses a step (a minimum hitting set: exact for
    a handful of candidate fixes, greedy beyond)."""
    findings = {fix_key(edge.finding): edge.finding for chain in chains for edge in chain.edges}
    unbreakable = tuple(chain for chain in chains if not chain.fixes())
    sets = list({chain.fixes() for chain in chains if chain.fixes()})
    hits = Counter(fix for fixes in sets for fix in fixes)
    candidates = sorted(hits, key=lambda fix: (-hits[fix], fix))
    chosen = _exact(sets, candidates) if len(candidates) <= MAX_EXACT_FIXES else None
    exact = chosen is not None
    if chosen is None:
        chosen = _greedy(sets, hits)
    return Cut(tuple(findings[fix] for fix in chosen), exact, unbreakable)


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


def _greedy(sets: list[frozenset[FixKey]], hits: Counter[FixKey]) -> tuple[FixKey, ...]:
    """Take the fix that breaks the most chains still standing, until none stands; counts are kept as chains
    fall, so a large estate costs the size of its chains, not their square."""
    holding: dict[FixKey, list[int]] = defaultdict(list)
    for index, fixes in enumerate(sets):
        for fix in fixes:
            holding[fix].append(index)
    left, standing, chosen = Counter(hits), set(range(len(sets))), []
    while standing:
        best = max(left, key=lambda fix: (left[fix], fix))
        chosen.append(best)
        for index in holding[best]:
            if index in standing:
                standing.discard(index)
                for fix in sets[index]:
                    left[fix] -= 1
        del left[best]
    return tuple(chosen)


def broken_by(fix: Finding, chains: list[Chain]) -> int:
    return sum(fix_key(fix) in chain.fixes() for chain in chains)
