"""mloops audit's graph on a synthetic estate: building the attack graph, finding its chains and the fewest
fixes, timed apart from scanning (the findings are made here, as the analyzers would report them).

The estate: notebooks that point MLflow at one of the registries and load a version, some with a leaked
token; registry versions, some booby-trapped; model servers fed by a registry, some escapable, some behind a
LoadBalancer; and probed endpoints, some open.

    python bench/audit_graph.py [--assets 10000] [--write]
"""

from __future__ import annotations

import argparse
import random
import time
import tracemalloc

import peers

ROOT = peers.ROOT  # importing peers put the repository root on the path

from bench.sections import BENCHMARKS, replace_section  # noqa: E402

from mloops.audit.chains import fewest_fixes, find_chains  # noqa: E402
from mloops.audit.graph import build  # noqa: E402
from mloops.core import EndpointResult, FileResult, Location, Severity  # noqa: E402
from mloops.deployments.deployment_checks import EXPOSED_ML_SERVICE, MODEL_SOURCE, PRIVILEGED_CONTAINER  # noqa: E402
from mloops.mlcode.python_code import CODE_HARDCODED_CREDENTIAL, CODE_MLFLOW_PICKLE, CODE_PLATFORM_ADDRESS  # noqa: E402
from mloops.picklevm.judge import DANGEROUS_CALLABLE  # noqa: E402
from mloops.platforms.engine import PLATFORM_OPEN  # noqa: E402

REGISTRIES = 20
MODELS = 50  # model names per registry


def estate(assets: int, seed: int = 7) -> list[FileResult]:
    """``assets`` results: 40% notebooks, 40% registry versions, 15% manifests, the rest endpoints."""
    rng = random.Random(seed)
    servers = [f"http://10.0.{n // 250}.{n % 250}:5000" for n in range(REGISTRIES)]
    results: list[FileResult] = []
    for n in range(assets * 2 // 5):
        path, server = f"ws/{n}.ipynb", rng.choice(servers)
        cell = Location(path, ("cell 0",))
        uri = f"models:/m{rng.randrange(MODELS)}/{rng.randrange(1, 5)}"
        findings = [
            CODE_PLATFORM_ADDRESS.finding(cell, "address", {"platform": "mlflow", "address": server}),
            CODE_MLFLOW_PICKLE.finding(cell.at(50), "loads", {"uri": uri}),
        ]
        if rng.random() < 0.05:
            evidence = {"variable": "MLFLOW_TRACKING_TOKEN", "value": "redacted"}
            findings.append(CODE_HARDCODED_CREDENTIAL.finding(cell.at(20), "token", evidence))
        results.append(FileResult(path, findings))
    for n in range(assets * 2 // 5):
        host = servers[n % REGISTRIES].removeprefix("http://")
        path = f"mlflow://{host}/m{rng.randrange(MODELS)}/{rng.randrange(1, 5)}/model.pkl"
        bad = rng.random() < 0.01
        findings = [DANGEROUS_CALLABLE.finding(Location(path), "os.system", severity=Severity.CRITICAL)] if bad else []
        results.append(FileResult(path, findings))
    for n in range(assets * 3 // 20):
        path, server = f"deploy/{n}.yaml", rng.choice(servers)
        workload = Location(path, (f"InferenceService/s{n}",))
        labels = f"serving.kserve.io/inferenceservice=s{n}"
        evidence = {"role": "model server", "uri": f"{server}/api/2.0/mlflow-artifacts/artifacts/{n}/model.pkl"}
        findings = [MODEL_SOURCE.finding(workload, "source", {**evidence, "labels": labels})]
        if rng.random() < 0.2:
            findings.append(PRIVILEGED_CONTAINER.finding(workload, "privileged", {"role": "model server"}))
        if rng.random() < 0.1:
            exposure = {"role": "network entry", "selects": labels}
            findings.append(EXPOSED_ML_SERVICE.finding(Location(path, (f"Service/s{n}",)), "exposed", exposure))
        results.append(FileResult(path, findings))
    while len(results) < assets:
        server = rng.choice(servers)
        attack = "registry-hijack" if rng.random() < 0.3 else "data-exposure"
        evidence = {"platform": "mlflow", "attack": attack}
        results.append(EndpointResult(server, [PLATFORM_OPEN.finding(Location(server), "open", evidence)]))
    return results


def measure(assets: int) -> dict[str, float]:
    results = estate(assets)
    tracemalloc.start()
    started = time.perf_counter()
    graph = build(results)
    built = time.perf_counter()
    chains, left_out = find_chains(graph)
    found = time.perf_counter()
    cut = fewest_fixes(chains)
    done = time.perf_counter()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return {
        "assets": assets,
        "nodes": len(graph.nodes),
        "edges": len(graph.edges),
        "chains": len(chains),
        "left_out": sum(left.number for left in left_out.values()),
        "fixes": len(cut.fixes),
        "exact": cut.exact,
        "build": built - started,
        "chains_s": found - built,
        "cut_s": done - found,
        "total": done - started,
        "peak_mib": peak / (1 << 20),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--assets", type=int, default=10_000)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    rows = [measure(size) for size in sorted({1_000, args.assets, args.assets * 5})]
    lines = [
        "## Audit graph",
        "",
        f"`bench/audit_graph.py` on {time.strftime('%Y-%m-%d')}: mloops audit's attack graph on synthetic estates "
        f"(40% notebooks loading a version from one of {REGISTRIES} MLflow registries, 5% of them with a leaked "
        "token; 40% registry versions, 1% booby-trapped; 15% model-server manifests fed by a registry, 20% "
        "privileged, 10% behind a LoadBalancer; the rest probed endpoints, 30% with an open registry). Scanning "
        "is not timed: the findings are made by the script. One process, tracemalloc on (it slows Python "
        "down by about a third). Past 500 chains a rule, chains are counted, not listed, and the fixes are "
        "chosen over the listed ones; past 20 candidate fixes they are chosen greedily.",
        "",
        "| assets | nodes | edges | chains listed | left out | fixes | build, s | chains, s | fixes, s | total, s "
        "| peak MiB |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        fixes = f"{row['fixes']}{'' if row['exact'] else ' (greedy)'}"
        lines.append(
            f"| {row['assets']:,} | {row['nodes']:,} | {row['edges']:,} | {row['chains']:,} | {row['left_out']:,} | "
            f"{fixes} | {row['build']:.2f} | {row['chains_s']:.2f} | {row['cut_s']:.2f} | {row['total']:.2f} | "
            f"{row['peak_mib']:.0f} |"
        )
    print("\n".join(lines))
    if args.write:
        BENCHMARKS.write_text(replace_section(BENCHMARKS.read_text(), lines))


if __name__ == "__main__":
    main()
