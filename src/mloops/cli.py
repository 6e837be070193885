"""Command line: ``mloops scan``, ``probe``, ``audit``, ``audit-env``, ``inspect-runtime``, ``sanitize``,
``convert``, ``gate`` and ``demo``."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Sequence
from typing import TYPE_CHECKING

from . import __version__
from .config import Config
from .config import load as load_config
from .core import Report, Severity, UsageError
from .limits import Limits
from .reporters import FORMATS, reporter
from .scan import scan_path
from .streams import atomic_file

if TYPE_CHECKING:
    from .cache import ResultCache

FAIL_ON = ("critical", "high", "medium", "low")
LISTED = 20  # lines a command prints of a long list


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mloops",
        description="Find the attack surface of ML platforms: model files, datasets, notebooks and code (scan), "
        "exposed services (probe) and vulnerable packages (audit-env), without executing anything; and close it: "
        "convert models off pickle (convert), neutralise notebooks (sanitize), gate an MLflow registry (gate).",
    )
    parser.add_argument("--version", action="version", version=f"mloops {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    scan = commands.add_parser("scan", help="scan files, folders and remote models")
    scan.add_argument(
        "paths",
        nargs="+",
        metavar="PATH",
        help="a file, a folder, an http(s) URL, models:/, runs:/, mlflow://, hf://, s3://, gs:// or az://",
    )
    _output_options(scan)
    scan.add_argument(
        "--jobs",
        type=_positive,
        help="files scanned in parallel processes (default: all CPUs when there are more than 256 files)",
    )
    scan.add_argument(
        "--executor",
        default="process",
        metavar="NAME",
        help="where files are scanned: process (this machine, default), ray (RAY_ADDRESS or a local cluster) "
        "or ray://HOST:PORT (Ray Client)",
    )
    _source_options(scan)

    probe = commands.add_parser("probe", help="find exposed, unauthenticated and vulnerable ML platforms (read-only)")
    probe.add_argument("targets", nargs="*", metavar="TARGET", help="URL, host:port, host or CIDR network")
    probe.add_argument("--targets-file", metavar="F", help="more targets, one per line (# starts a comment)")
    probe.add_argument(
        "--ports", default="default", metavar="LIST", help="ports for hosts and networks: default, or 5000,8000-8100"
    )
    probe.add_argument("--concurrency", type=_positive, default=64, help="requests in flight (default 64)")
    probe.add_argument("--timeout", type=_seconds, default=3.0, help="seconds per request (default 3)")
    _advisory_option(probe)
    _output_options(probe)

    estate = commands.add_parser(
        "audit",
        help="scan, probe and walk registries in one run, and chain the findings into attack paths with the fewest "
        "fixes that break them",
    )
    estate.add_argument("paths", nargs="*", metavar="PATH", help="files and folders (workspaces, manifests, models)")
    estate.add_argument("--endpoint", action="append", default=[], metavar="URL", help="a platform to probe (repeat)")
    estate.add_argument(
        "--registry",
        action="append",
        default=[],
        metavar="URI",
        help="a registry to scan (repeat): mlflow://HOST:PORT, models:/NAME",
    )
    estate.add_argument("--runtime", action="store_true", help="also inspect the container mloops runs in")
    estate.add_argument("--timeout", type=_seconds, default=3.0, help="seconds per probe request (default 3)")
    _source_options(estate)
    _output_options(estate)

    audit = commands.add_parser("audit-env", help="check installed ML platform packages against known advisories")
    audit.add_argument(
        "--python", metavar="PATH", help="the environment's interpreter (default: the one running mloops)"
    )
    _advisory_option(audit)
    _output_options(audit)

    runtime = commands.add_parser(
        "inspect-runtime", help="what code running in this container could reach on the host (reads only)"
    )
    runtime.add_argument("--root", default="/", metavar="PATH", help="a tree standing in for / (default: /)")
    _output_options(runtime)

    sanitize = commands.add_parser(
        "sanitize", help="neutralise notebooks' active content (scripts, HTML, widget state), keeping plain outputs"
    )
    sanitize.add_argument("notebooks", nargs="+", metavar="NOTEBOOK", help="a notebook; - reads one from stdin")
    written = sanitize.add_mutually_exclusive_group()
    written.add_argument("--in-place", action="store_true", help="rewrite each notebook that changes")
    written.add_argument(
        "--output", metavar="PATH", help="write the copy here (a folder when several notebooks are named)"
    )
    sanitize.add_argument(
        "--keep-known-renderers",
        action="store_true",
        help="keep outputs the scanner identifies as a reviewed renderer's (plotly, bokeh, widgets, ...)",
    )

    convert = commands.add_parser(
        "convert",
        help="rewrite a PyTorch checkpoint or NumPy or joblib arrays as safetensors, without running the pickle",
    )
    convert.add_argument(
        "model",
        metavar="MODEL",
        help="a PyTorch checkpoint (ZIP or legacy), a .npy or .npz, or a joblib dump of arrays",
    )
    convert.add_argument("--to", choices=["safetensors"], default="safetensors", help="the format written")
    convert.add_argument("--output", metavar="FILE", help="where (default: MODEL with the suffix .safetensors)")
    convert.add_argument(
        "--fail-on", choices=FAIL_ON, default="high", help="refuse a file with findings at or above this severity"
    )

    gate = commands.add_parser(
        "gate",
        help="a service for MLflow's registry webhooks: scan each new version, tag its verdict, and remove an "
        "alias set on a failing one (the webhook secret is read from MLOOPS_GATE_SECRET)",
    )
    gate.add_argument("--mlflow-uri", required=True, metavar="URI", help="the tracking server whose registry it gates")
    gate.add_argument("--listen", default="127.0.0.1:8900", metavar="HOST:PORT", help="default 127.0.0.1:8900")
    gate.add_argument("--public-url", metavar="URL", help="how MLflow users reach the gate, for report links")
    gate.add_argument("--reports-dir", metavar="DIR", help="where reports are kept (default: a temporary folder)")
    gate.add_argument("--fail-on", choices=FAIL_ON, default="high", help="lowest severity that fails a version")

    demo = commands.add_parser(
        "demo", help="build a demo workspace of benign and malicious models, datasets, code and notebooks and scan it"
    )
    demo.add_argument("directory", nargs="?", help="build the workspace here and keep it (default: a temporary folder)")
    _output_options(demo)
    return parser


def _source_options(command: argparse.ArgumentParser) -> None:
    """What scan and audit share: where models:/ and runs:/ are read, and the result cache."""
    command.add_argument("--mlflow-uri", metavar="URI", help="the MLflow tracking server of models:/ and runs:/")
    command.add_argument("--no-cache", action="store_true", help="scan everything again, and keep no results")
    command.add_argument("--cache-dir", metavar="DIR", help="where results are kept (default: ~/.cache/mloops/results)")


def _output_options(command: argparse.ArgumentParser) -> None:
    command.add_argument("--format", choices=sorted(FORMATS), default="text")
    command.add_argument(
        "--baseline", metavar="FILE", help="findings this baseline accepted are reported as suppressed and not counted"
    )
    command.add_argument("--write-baseline", metavar="FILE", help="record every finding of this run as accepted")
    command.add_argument("--output", metavar="FILE", help="write the report here (atomically) instead of stdout")
    command.add_argument(
        "--fail-on",
        choices=FAIL_ON,
        help="lowest severity that makes the exit code 1 (default: the configuration's, else high)",
    )
    command.add_argument(
        "--config", metavar="FILE", help="a .mloops.toml or pyproject.toml (default: the nearest one from here up)"
    )


def _advisory_option(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--advisories",
        metavar="PATH",
        help="an OSV dump (folder of OSV JSON files, or all.zip) instead of the bundled table",
    )


def _seconds(text: str) -> float:
    value = float(text)
    if not 0 < value <= 600:
        raise argparse.ArgumentTypeError("must be between 0 and 600 seconds")
    return value


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def write_atomically(path: str, text: str) -> None:
    with atomic_file(path) as handle:
        handle.write(text.encode("utf-8"))


def _judge(report: Report, args: argparse.Namespace, config: Config) -> None:
    """The team's decisions: the configuration's, then the baseline's."""
    from .baseline import accept_baseline

    config.apply(report)
    if args.baseline:
        accept_baseline(report, args.baseline)


def _emit(report: Report, args: argparse.Namespace, config: Config, judged: bool = False) -> int:
    from .baseline import baseline_text

    if not judged:
        _judge(report, args, config)
    if args.write_baseline:
        write_atomically(args.write_baseline, baseline_text(report))
    fail_on = Severity.parse(args.fail_on) if args.fail_on else config.fail_on or Severity.HIGH
    text = reporter(args.format)(report, fail_on)
    if args.output:
        write_atomically(args.output, text)
    else:
        sys.stdout.write(text)
    return report.exit_code(fail_on)


def _cache(args: argparse.Namespace) -> ResultCache | None:
    from .cache import ResultCache, default_folder  # --help and the other commands never need it

    if args.no_cache:
        return None
    return ResultCache(args.cache_dir or default_folder(), Limits())


def _demo(args: argparse.Namespace) -> int:
    from .demo import build_workspace  # scanning never needs the demo builders

    with tempfile.TemporaryDirectory(prefix="mloops-demo-") as temporary:
        root = args.directory or temporary
        expected = build_workspace(root)
        report = scan_path(root)
        _emit(report, args, Config("", root))  # the demo is judged as built, whatever the configuration here
        flagged = {
            os.path.relpath(r.path, root) for r in report.files if any(f.severity >= Severity.HIGH for f in r.findings)
        }
        missed = sorted(path for path, bad in expected.items() if bad and path not in flagged)
        false_alarms = sorted(path for path, bad in expected.items() if not bad and path in flagged)
        trapped = sum(expected.values())
        print(
            f"\ndemo: {trapped} booby-trapped and {len(expected) - trapped} benign files in {root}; "
            f"flagged {len(flagged)}, missed {len(missed)}, false alarms {len(false_alarms)}",
            file=sys.stderr,
        )
        return 0 if not missed and not false_alarms else 1


def _advisory_table(args: argparse.Namespace) -> tuple:
    from .platforms import advisories

    return advisories.load_osv(args.advisories) if args.advisories else advisories.bundled()


def _probe(args: argparse.Namespace, config: Config) -> int:
    from .platforms import engine, fingerprints, targets

    named = list(args.targets)
    if args.targets_file:
        with open(args.targets_file, encoding="utf-8") as handle:
            named += [line.split("#", 1)[0].strip() for line in handle if line.split("#", 1)[0].strip()]
    if not named:
        raise UsageError("probe: name at least one TARGET or a --targets-file")
    catalog = fingerprints.fingerprints()
    ports = targets.parse_ports(args.ports, fingerprints.default_ports())
    endpoints = targets.expand(named, ports)
    report = engine.run(endpoints, catalog, _advisory_table(args), args.timeout, args.concurrency, progress=True)
    return _emit(report, args, config)


def _audit(args: argparse.Namespace, config: Config) -> int:
    from .audit.run import audit

    if not (args.paths or args.endpoint or args.registry or args.runtime):
        raise UsageError("audit: name a PATH, an --endpoint, a --registry or --runtime")
    report = audit(
        args.paths,
        args.endpoint,
        args.registry,
        args.timeout,
        _cache(args),
        args.runtime,
        exclude=config.excluded,
        judge=lambda gathered: _judge(gathered, args, config),
    )
    return _emit(report, args, config, judged=True)


def _audit_env(args: argparse.Namespace, config: Config) -> int:
    from .platforms.audit_env import audit

    return _emit(audit(args.python, _advisory_table(args)), args, config)


def _inspect_runtime(args: argparse.Namespace, config: Config) -> int:
    from .deployments.inspect_runtime import inspect

    if not os.path.isdir(args.root):
        raise UsageError(f"{args.root}: not a folder")
    return _emit(inspect(args.root), args, config)


def _sanitize(args: argparse.Namespace) -> int:
    from .mitigations.sanitize import SanitizeError, sanitize

    several = len(args.notebooks) > 1
    if several and not (args.in_place or (args.output and os.path.isdir(args.output))):
        raise UsageError("sanitize: with several notebooks, give --in-place or an existing folder as --output")
    if args.in_place and "-" in args.notebooks:
        raise UsageError("sanitize: standard input cannot be rewritten in place")
    for name in args.notebooks:
        data = sys.stdin.buffer.read() if name == "-" else _read(name)
        try:
            done = sanitize(data, args.keep_known_renderers)
        except SanitizeError as exc:
            raise UsageError(f"{name}: {exc}") from None
        if args.in_place:
            if done.removed:
                write_atomically(name, done.text)
        elif args.output:
            target = os.path.join(args.output, os.path.basename(name)) if os.path.isdir(args.output) else args.output
            write_atomically(target, done.text)
        else:
            sys.stdout.write(done.text)
        what = "; ".join(f"{r.path}: {r.what} ({r.why})" for r in done.removed[:5])
        more = f"; and {len(done.removed) - 5} more" if len(done.removed) > 5 else ""
        print(f"{name}: {f'removed {len(done.removed)}: {what}{more}' if done.removed else 'nothing active'}",
              file=sys.stderr)  # fmt: skip
    return 0


def _convert(args: argparse.Namespace) -> int:
    from .mitigations.convert import ConvertError, convert
    from .mitigations.safe_load import UnsafeModelError

    output = args.output or os.path.splitext(args.model)[0] + ".safetensors"
    if os.path.abspath(output) == os.path.abspath(args.model):
        raise UsageError(f"{output}: the output would overwrite the model")
    try:
        done = convert(args.model, output, Severity.parse(args.fail_on))
    except UnsafeModelError as exc:
        print(f"mloops: {args.model}: {exc}", file=sys.stderr)
        return 1
    except ConvertError as exc:
        raise UsageError(f"{args.model}: {exc}") from None
    for entry in done.left_out[:LISTED]:
        print(f"mloops: warning: left out (not a tensor): {entry}", file=sys.stderr)
    if len(done.left_out) > LISTED:
        print(f"mloops: warning: and {len(done.left_out) - LISTED} more entries left out", file=sys.stderr)
    print(f"{output}: {done.tensors} tensor(s), {done.size} bytes of data", file=sys.stderr)
    return 0


def _gate(args: argparse.Namespace) -> int:
    from .mitigations.gate import SECRET_VARIABLE, Gate, Registry, serve

    secret = os.environ.get(SECRET_VARIABLE)
    if not secret:
        raise UsageError(
            f"gate: set {SECRET_VARIABLE} to the secret of the MLflow webhook (unsigned deliveries are refused)"
        )
    host, _, port = args.listen.rpartition(":")
    if not host or not port.isdigit():
        raise UsageError(f"gate: --listen {args.listen}: expected HOST:PORT")
    if not args.mlflow_uri.startswith(("http://", "https://")):
        raise UsageError(f"gate: --mlflow-uri {args.mlflow_uri}: expected the tracking server's http(s) address")
    reports = args.reports_dir or tempfile.mkdtemp(prefix="mloops-gate-")
    gate = Gate(Registry(args.mlflow_uri), secret, reports, args.public_url or f"http://{args.listen}",
                Severity.parse(args.fail_on))  # fmt: skip
    server = serve(gate, host, int(port))
    gate.start()
    print(f"mloops gate: listening on http://{args.listen}/webhook for {args.mlflow_uri}", file=sys.stderr)
    try:
        server.serve_forever()
    finally:
        server.server_close()
    return 0


def _read(path: str) -> bytes:
    with open(path, "rb") as handle:
        return handle.read()


def _scan(args: argparse.Namespace, config: Config) -> int:
    report = scan_path(*args.paths, jobs=args.jobs, cache=_cache(args), executor=args.executor, exclude=config.excluded)
    return _emit(report, args, config)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if getattr(args, "mlflow_uri", None):
            os.environ["MLFLOW_TRACKING_URI"] = args.mlflow_uri  # read as MLflow's own clients read it
        tools = {"demo": _demo, "sanitize": _sanitize, "convert": _convert, "gate": _gate}
        if args.command in tools:
            return tools[args.command](args)
        commands = {"probe": _probe, "audit": _audit, "audit-env": _audit_env, "inspect-runtime": _inspect_runtime}
        return commands.get(args.command, _scan)(args, load_config(args.config))
    except UsageError as exc:
        print(f"mloops: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"mloops: error: {exc.filename or ''}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
