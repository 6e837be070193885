"""Measure mloops against picklescan, modelscan, fickling, modelaudit, bandit and detect-secrets in one run.

    .venv/bin/python bench/run.py            (needs the [test] extras, which build the corpus)

1. Builds the corpora: every malicious and benign pickle-family fixture of the test suite
   (bench/work/corpus), the other model formats (bench/work/formats, see formats_corpus.py),
   PyTorch-style ZIP checkpoints of 256 MiB and 2 GiB, a 512 MiB raw pickle of a NumPy
   array, and a 2 GiB safetensors and a 2 GiB ONNX file.
2. Installs the peer tools, and mloops itself, into bench/.venv-peers: every tool runs
   from the same kind of install (regular, byte-compiled), never from a source tree.
3. Runs every tool on every file (verdicts: recall and false positives), on the whole
   corpus folder in one invocation (wall time, peak RSS), and on the big checkpoints.
4. Scans a tree of 10,000 Python files and notebooks (code_tree.py) with mloops, bandit,
   detect-secrets and modelaudit, and probes 1,000 loopback ports with real platforms
   listening among them (probe_sweep.py).
5. Writes the figures to BENCHMARKS.md, keeping the sections other bench scripts write.

Each measured command is started by a small launcher process, so its peak RSS is its own
(a child exec'd straight from this process would inherit this process's high-water mark).
Nothing is loaded: the peers and mloops only read the files.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import peers

ROOT = peers.ROOT  # importing peers put the repository root on the path

from bench import code_tree, formats_corpus, probe_sweep, sections  # noqa: E402
from bench.peers import PEERS, WORK, Run, install_tools, measure, median_run, version_of  # noqa: E402
from corpus import benign, malicious  # noqa: E402


@dataclass
class Tool:
    name: str
    command: list[str]
    version: str
    folders: bool = True  # can scan a folder in one invocation
    verdicts: dict[str, int] = field(default_factory=dict)


# ---------------------------------------------------------------- corpus


def build_corpus() -> dict[Path, str]:
    corpus = WORK / "corpus"
    aux = WORK / "aux"
    for folder in (corpus, aux):
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
    labels: dict[Path, str] = {}
    for case in malicious.ALL:
        work = aux / case.name
        target = corpus / "malicious" / case.name
        work.mkdir()
        target.mkdir(parents=True)
        # The pickle-family corpus holds model files only: the attacker modules some fixtures import stay aside.
        labels[malicious.write(case, target, work, work / "marker", companions_to=work)] = f"malicious:{case.name}"
    for case in benign.ALL:
        work = aux / f"benign-{case.name}"
        target = corpus / "benign" / case.name
        work.mkdir()
        target.mkdir(parents=True)
        labels[benign.write(case, target, work)] = f"benign:{case.name}"
    return labels


def build_formats_corpus() -> dict[Path, str]:
    """Keras, TensorFlow, ONNX, GGUF, safetensors, skops, TorchScript and the other formats."""
    corpus = WORK / "formats"
    aux = WORK / "formats-aux"
    for folder in (corpus, aux):
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
    labels: dict[Path, str] = {}
    for index, case in enumerate(formats_corpus.ALL):
        kind = "malicious" if case.malicious else "benign"
        target = corpus / kind / f"{index:02d}"
        work = aux / f"{index:02d}"
        target.mkdir(parents=True)
        work.mkdir()
        labels[case.write(target, work)] = f"{kind}:{case.name}"
    return labels


def build_safetensors(path: Path, tensor_bytes: int) -> Path:
    """A safetensors file with one F32 tensor; the data section is a hole, written in no time."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        header = json.dumps({"w": {"dtype": "F32", "shape": [tensor_bytes // 4], "data_offsets": [0, tensor_bytes]}})
        raw = header.encode().ljust(-(-len(header) // 8) * 8)
        with open(path, "wb") as handle:
            handle.write(len(raw).to_bytes(8, "little") + raw)
            handle.truncate(8 + len(raw) + tensor_bytes)
    return path


def build_onnx(path: Path, tensor_bytes: int) -> Path:
    from corpus import protobuf_models

    return path if path.exists() else protobuf_models.big_onnx(path, tensor_bytes)


def build_checkpoint(path: Path, tensor_bytes: int) -> Path:
    """A torch.save-style ZIP: a small data.pkl and one stored tensor storage of the given size."""
    if path.exists() and path.stat().st_size > tensor_bytes:
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    floats = (tensor_bytes // 4).to_bytes(4, "little")
    data_pkl = (
        b"\x80\x02ccollections\nOrderedDict\n)R(X\x06\x00\x00\x00weightctorch._utils\n_rebuild_tensor_v2\n"
        b"((X\x07\x00\x00\x00storagectorch\nFloatStorage\nX\x01\x00\x00\x000X\x03\x00\x00\x00cpuJ"
        + floats
        + b"tQK\x00J"
        + floats
        + b"\x85K\x01\x85\x89ccollections\nOrderedDict\n)RtRu."
    )
    chunk = b"\x00" * (16 << 20)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("archive/data.pkl", data_pkl)
        archive.writestr("archive/byteorder", "little")
        with archive.open("archive/data/0", "w", force_zip64=True) as handle:
            for _ in range(tensor_bytes // len(chunk)):
                handle.write(chunk)
        archive.writestr("archive/version", "3\n")
    return path


def build_array_pickle(path: Path, array_bytes: int) -> Path:
    """pickle.dump of a float64 NumPy array: one large byte payload inside a raw pickle."""
    import pickle

    import numpy as np

    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as handle:
            pickle.dump(np.zeros(array_bytes // 8), handle, protocol=4)
    return path


# ---------------------------------------------------------------- tools


def tools() -> list[Tool]:
    def exe(name: str) -> str:
        return str(PEERS / "bin" / name)

    return [
        Tool("mloops", [exe("mloops"), "scan", "--jobs", "1"], version_of("mloops")),
        Tool("mloops --jobs 2", [exe("mloops"), "scan", "--jobs", "2"], version_of("mloops")),
        Tool("picklescan", [exe("picklescan"), "-p"], version_of("picklescan")),
        Tool("picklescan --strict", [exe("picklescan"), "--strict", "-p"], version_of("picklescan")),
        Tool("modelscan", [exe("modelscan"), "scan", "-p"], version_of("modelscan")),
        Tool("fickling", [exe("fickling"), "--check-safety"], version_of("fickling"), folders=False),
        Tool("modelaudit", [exe("modelaudit"), "scan"], version_of("modelaudit")),
    ]


# ---------------------------------------------------------------- code tree


@dataclass
class TreeTool:
    name: str
    command: list[str]  # the tree's path is appended
    version: str
    reads: str  # what the tool looks at in such a tree
    flagged: Callable[[str, Path], set[str]]  # paths (relative to the tree) its report names


def _relative(name: str, root: Path) -> str:
    path = Path(name) if os.path.isabs(name) else WORK / name
    return os.path.relpath(path, root)


def _mloops_flagged(report: str, root: Path) -> set[str]:
    findings = json.loads(report)["findings"]
    return {_relative(f["location"]["path"], root) for f in findings if f["severity"] != "info"}


def _bandit_flagged(report: str, root: Path) -> set[str]:
    return {_relative(result["filename"], root) for result in json.loads(report)["results"]}


def _detect_secrets_flagged(report: str, root: Path) -> set[str]:
    return {_relative(name, root) for name in json.loads(report)["results"]}


def _modelaudit_flagged(report: str, root: Path) -> set[str]:
    document = json.loads(report[report.index("{") :])  # skip anything printed before the JSON
    found = set()
    for issue in document.get("issues", []):
        location = str(issue.get("location") or "")
        if location.startswith(str(root)):
            found.add(_relative(location.split(" ")[0].split(":")[0], root))
    return found


def tree_tools() -> list[TreeTool]:
    def exe(name: str) -> str:
        return str(PEERS / "bin" / name)

    mloops = version_of("mloops")
    every = ".py and .ipynb"
    return [
        TreeTool("mloops", [exe("mloops"), "scan", "--jobs", "1", "--format", "json"], mloops, every, _mloops_flagged),
        TreeTool(
            "mloops --jobs 2",
            [exe("mloops"), "scan", "--jobs", "2", "--format", "json"],
            mloops,
            every,
            _mloops_flagged,
        ),
        TreeTool("bandit", [exe("bandit"), "-r", "-q", "-f", "json"], version_of("bandit"), ".py", _bandit_flagged),
        TreeTool(
            "detect-secrets",
            [exe("detect-secrets"), "scan", "--all-files"],
            version_of("detect-secrets"),
            "every text file, secrets only",
            _detect_secrets_flagged,
        ),
        TreeTool(
            "modelaudit",
            [exe("modelaudit"), "scan", "--format", "json"],
            version_of("modelaudit"),
            every,
            _modelaudit_flagged,
        ),
    ]


@dataclass
class TreeResult:
    run: Run
    flagged: set[str]


def measure_tree(root: Path) -> dict[str, TreeResult]:
    results = {}
    for tool in tree_tools():
        print(f"code tree: {tool.name}", flush=True)
        output = WORK / f"tree-{tool.name.replace(' ', '')}.out"
        run = measure([*tool.command, str(root)], stdout=output)
        try:
            flagged = tool.flagged(output.read_text(), root)
        except (ValueError, KeyError) as exc:  # a report that cannot be read counts as nothing found
            print(f"  unreadable report from {tool.name}: {exc}", flush=True)
            flagged = set()
        results[tool.name] = TreeResult(run, flagged)
    return results


def render_tree(results: dict[str, TreeResult], planted: dict[str, str], files: int) -> list[str]:
    versions = {tool.name: (tool.version, tool.reads) for tool in tree_tools()}
    kinds = list(code_tree.NB_KINDS)
    totals = {kind: sum(1 for k in planted.values() if k == kind) for kind in kinds}
    lines = [
        "",
        "## A tree of 10,000 Python files and notebooks",
        "",
        f"`bench/code_tree.py` writes {files} small files from a fixed seed: training scripts (half) and notebooks "
        "with ordinary outputs (stream text, a PNG, a pandas-style table). One file in twenty-five carries a "
        "planted problem: an unsafe artifact load (pickle.load, torch.load(weights_only=False)), "
        "trust_remote_code=True, yaml.load with the unsafe Loader, a Hugging Face token or AWS key in the "
        "source, or (notebooks) a `<script>` in an HTML output. A tool finds a planted file when its report "
        "names that file (mloops: at low severity or above; the others: any result). Each tool ran once on "
        "the whole tree (these runs take minutes).",
        "",
        "| tool | version | reads | time | peak RSS | "
        + " | ".join(f"{kind} ({totals[kind]})" for kind in kinds)
        + f" | other files flagged ({files - len(planted)}) |",
        "|---|---|---|---|---|" + "---|" * (len(kinds) + 1),
    ]
    for name, result in results.items():
        found = {kind: sum(1 for path, k in planted.items() if k == kind and path in result.flagged) for kind in kinds}
        noise = len(result.flagged - set(planted))
        version, reads = versions[name]
        lines.append(
            f"| {name} | {version} | {reads} | {_cell(result.run)} | "
            + " | ".join(str(found[kind]) for kind in kinds)
            + f" | {noise} |"
        )
    return lines


# ---------------------------------------------------------------- report


def counts(tool: Tool, labels: dict[Path, str]) -> dict[str, int]:
    out = dict.fromkeys(("malicious", "detected", "missed", "errors_bad", "benign", "false_pos", "errors_good"), 0)
    for path, label in labels.items():
        code = tool.verdicts[str(path)]
        if label.startswith("malicious"):
            out["malicious"] += 1
            out["detected" if code == 1 else "missed" if code == 0 else "errors_bad"] += 1
        else:
            out["benign"] += 1
            out["false_pos"] += code == 1
            out["errors_good"] += code not in (0, 1)
    return out


def _cell(run: Run | None) -> str:
    return "n/a | n/a" if run is None else f"{run.seconds:.2f} s | {run.rss_mb:.0f} MB"


def render(
    all_tools: list[Tool],
    labels: dict[Path, str],
    format_labels: dict[Path, str],
    corpus: dict[str, Run],
    formats_run: dict[str, Run],
    big: dict[str, dict[str, Run]],
    tree: list[str],
) -> str:
    bad = sum(label.startswith("malicious") for label in labels.values())
    good = len(labels) - bad
    lines = [
        "# Benchmarks",
        "",
        f"Measured by `bench/run.py` on {time.strftime('%Y-%m-%d')}: {platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}. All tools ran in the same session, on the same files, each installed "
        "from its package (byte-compiled) in one virtual environment. Times are medians of repeated runs; peak "
        "RSS is the largest process of a run. Peers are installed as `pip install` gives them, plus h5py and "
        "onnx, which their Keras H5 and ONNX scanners need (no torch or TensorFlow in their environment).",
        "",
        "Exit codes read as: 1 = flagged, 0 = clean, anything else = error (modelscan's 3 means \"nothing "
        'scanned"). Detection counts only exit 1: a CI job that tests for 1 lets errors through.',
        "",
        "## Detection on the test fixtures",
        "",
        f"{bad} malicious fixtures, one per published technique, each proven by the test suite to run its payload "
        f"under the real loader; {good} benign models saved by the real libraries (PyTorch, scikit-learn, XGBoost, "
        "LightGBM, NumPy, pandas, dill, cloudpickle, transformers).",
        "",
        "| tool | version | detected | missed (exit 0) | errors on malicious | false positives | errors on benign |",
        "|---|---|---|---|---|---|---|",
    ]
    lines += _detection_rows(all_tools, labels)
    bad = sum(label.startswith("malicious") for label in format_labels.values())
    lines += [
        "",
        "## Detection on the other model formats",
        "",
        f"{bad} malicious or hostile files (Keras H5 and .keras Lambdas and foreign references, TensorFlow file "
        "and Python ops, ONNX custom domains and traversing external data, GGUF chat-template injection, skops "
        "payloads, TorchScript, .pt2 and NeMo payloads, PMML XXE, TFLite Flex ops) and "
        f"{len(format_labels) - bad} benign files saved by the real libraries (Keras with the torch backend, "
        "torch.onnx, the gguf writer, safetensors, skops, torch.jit, torch.export, XGBoost, LightGBM) or built "
        "to the documented structure where the library is not installable here (TensorFlow, TFLite, Flax). "
        "Fixtures marked proven are loaded by the test suite with the real library, in a subprocess, and run "
        "their payload; the others are structural.",
        "",
        "| tool | version | detected | missed (exit 0) | errors on malicious | false positives | errors on benign |",
        "|---|---|---|---|---|---|---|",
    ]
    lines += _detection_rows(all_tools, format_labels)
    header = " | ".join(f"{name}: time | peak RSS" for name in big)
    lines += [
        "",
        "## Speed and memory",
        "",
        f"| tool | pickle corpus: time | peak RSS | formats corpus: time | peak RSS | {header} |",
    ]
    lines.append("|---|---|---|---|---|" + "---|---|" * len(big))
    for tool in all_tools:
        cells = " | ".join(_cell(big[name][tool.name]) for name in big)
        lines.append(
            f"| {tool.name} | {_cell(corpus.get(tool.name))} | {_cell(formats_run.get(tool.name))} | {cells} |"
        )
    lines += _targets(corpus, formats_run, big)
    lines += [
        "",
        "Exit codes on the big files (benign): "
        + "; ".join(f"{tool.name} {'/'.join(str(big[name][tool.name].exit) for name in big)}" for tool in all_tools),
    ]
    lines += tree
    names = " | ".join(t.name for t in all_tools)
    lines += [
        "",
        "## Per technique",
        "",
        "Exit code of each tool on each malicious fixture.",
        "",
        f"| fixture | {names} |",
    ]
    lines.append("|---|" + "---|" * len(all_tools))
    every = {**labels, **format_labels}
    for path, label in sorted(every.items(), key=lambda item: item[1]):
        if label.startswith("malicious"):
            codes = " | ".join(str(t.verdicts[str(path)]) for t in all_tools)
            lines.append(f"| {label.split(':', 1)[1]} | {codes} |")
    lines += ["", "Benign fixtures a tool flagged or failed on:", ""]
    for path, label in sorted(every.items(), key=lambda item: item[1]):
        noisy = [f"{t.name} exit {t.verdicts[str(path)]}" for t in all_tools if t.verdicts[str(path)] != 0]
        if label.startswith("benign") and noisy:
            lines.append(f"- {label.split(':', 1)[1]}: " + ", ".join(noisy))
    return "\n".join(lines) + "\n"


def _detection_rows(all_tools: list[Tool], labels: dict[Path, str]) -> list[str]:
    rows = []
    for tool in all_tools:
        c = counts(tool, labels)
        rows.append(
            f"| {tool.name} | {tool.version} | {c['detected']}/{c['malicious']} | {c['missed']} | {c['errors_bad']} "
            f"| {c['false_pos']}/{c['benign']} | {c['errors_good']} |"
        )
    return rows


def _targets(corpus: dict[str, Run], formats_run: dict[str, Run], big: dict[str, dict[str, Run]]) -> list[str]:
    """The speed and memory targets of the scanner issues, checked against this run."""
    ours, small, large = corpus["mloops"], big["256 MiB checkpoint"]["mloops"], big["2 GiB checkpoint"]["mloops"]
    ratio = corpus["modelaudit"].seconds / ours.seconds
    formats_ratio = formats_run["modelaudit"].seconds / formats_run["mloops"].seconds
    return [
        "",
        "Targets:",
        f"- whole corpus at least 3x faster than modelaudit: {ratio:.0f}x "
        f"({ours.seconds:.2f} s against {corpus['modelaudit'].seconds:.2f} s)",
        f"- whole corpus no slower than picklescan: {ours.seconds:.2f} s against {corpus['picklescan'].seconds:.2f} s",
        f"- 2 GiB checkpoint under 0.5 s and 150 MB: {large.seconds:.2f} s, {large.rss_mb:.0f} MB",
        f"- time independent of tensor bytes: {small.seconds:.2f} s for 256 MiB, {large.seconds:.2f} s for 2 GiB",
        f"- formats corpus against modelaudit: {formats_ratio:.0f}x faster ({formats_run['mloops'].seconds:.2f} s "
        f"against {formats_run['modelaudit'].seconds:.2f} s)",
        f"- 2 GiB safetensors and 2 GiB ONNX: {big['2 GiB safetensors']['mloops'].seconds:.2f} s and "
        f"{big['2 GiB ONNX']['mloops'].seconds:.2f} s",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per measurement (median)")
    parser.add_argument("--output", default=str(ROOT / "BENCHMARKS.md"))
    args = parser.parse_args()

    WORK.mkdir(parents=True, exist_ok=True)
    print("building corpus and checkpoints", flush=True)
    labels = build_corpus()
    format_labels = build_formats_corpus()
    checkpoints = {
        "256 MiB checkpoint": build_checkpoint(WORK / "big" / "checkpoint_256m.pt", 256 << 20),
        "2 GiB checkpoint": build_checkpoint(WORK / "big" / "checkpoint_2g.pt", 2 << 30),
        "512 MiB NumPy pickle": build_array_pickle(WORK / "big" / "array_512m.pkl", 512 << 20),
        "2 GiB safetensors": build_safetensors(WORK / "big" / "weights_2g.safetensors", 2 << 30),
        "2 GiB ONNX": build_onnx(WORK / "big" / "model_2g.onnx", 2 << 30),
    }
    print("installing tools", flush=True)
    install_tools()
    all_tools = tools()
    for tool in all_tools:
        print(f"verdicts: {tool.name}", flush=True)
        for path in [*labels, *format_labels]:
            tool.verdicts[str(path)] = measure([*tool.command, str(path)]).exit
    corpus: dict[str, Run] = {}
    formats_run: dict[str, Run] = {}
    for tool in all_tools:
        if tool.folders:
            print(f"corpus: {tool.name}", flush=True)
            corpus[tool.name] = median_run([*tool.command, str(WORK / "corpus")], args.repeat)
            formats_run[tool.name] = median_run([*tool.command, str(WORK / "formats")], args.repeat)
    big: dict[str, dict[str, Run]] = {name: {} for name in checkpoints}
    for name, path in checkpoints.items():
        for tool in all_tools:
            print(f"{name}: {tool.name}", flush=True)
            big[name][tool.name] = median_run([*tool.command, str(path)], args.repeat)
    tree_root = WORK / "code-tree"
    shutil.rmtree(tree_root, ignore_errors=True)
    planted = code_tree.build(tree_root)
    tree = render_tree(measure_tree(tree_root), planted, code_tree.FILES)
    print("probe sweep", flush=True)
    sweep = probe_sweep.measure(str(PEERS / "bin" / "mloops"), lambda command, out: measure(command, out), 3)
    report = render(all_tools, labels, format_labels, corpus, formats_run, big, tree + sweep)
    output = Path(args.output)
    if output.exists():  # the sections other scripts own (checkov, library sweep, oracle ...) stay
        report = sections.keep_foreign_sections(report, output.read_text(encoding="utf-8"))
    output.write_text(report)
    raw = {t.name: {"version": t.version, "verdicts": t.verdicts} for t in all_tools}
    (WORK / "results.json").write_text(json.dumps(raw, indent=2))
    print(report)


if __name__ == "__main__":
    main()
