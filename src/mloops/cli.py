"""Command line: ``mloops scan`` and ``mloops demo``."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Sequence

from . import __version__
from .core import Report, Severity
from .reporters import FORMATS, reporter
from .scan import UsageError, scan_path

FAIL_ON = ("critical", "high", "medium", "low")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mloops", description="Find the code-execution attack surface in ML model files, without loading them."
    )
    parser.add_argument("--version", action="version", version=f"mloops {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    scan = commands.add_parser("scan", help="scan files and folders")
    scan.add_argument("paths", nargs="+", metavar="PATH")
    _output_options(scan)
    scan.add_argument(
        "--jobs",
        type=_positive,
        help="files scanned in parallel processes (default: all CPUs when there are more than 256 files)",
    )

    demo = commands.add_parser(
        "demo", help="build a demo workspace of benign and malicious models, datasets, code and notebooks and scan it"
    )
    demo.add_argument("directory", nargs="?", help="build the workspace here and keep it (default: a temporary folder)")
    _output_options(demo)
    return parser


def _output_options(command: argparse.ArgumentParser) -> None:
    command.add_argument("--format", choices=sorted(FORMATS), default="text")
    command.add_argument("--output", metavar="FILE", help="write the report here (atomically) instead of stdout")
    command.add_argument(
        "--fail-on", choices=FAIL_ON, default="high", help="lowest severity that makes the exit code 1"
    )


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def write_atomically(path: str, text: str) -> None:
    folder = os.path.dirname(os.path.abspath(path))
    fd, temporary = tempfile.mkstemp(prefix=".mloops-", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise


def _emit(report: Report, args: argparse.Namespace) -> int:
    fail_on = Severity.parse(args.fail_on)
    text = reporter(args.format)(report, fail_on)
    if args.output:
        write_atomically(args.output, text)
    else:
        sys.stdout.write(text)
    return report.exit_code(fail_on)


def _demo(args: argparse.Namespace) -> int:
    from .demo import build_workspace  # scanning never needs the demo builders

    with tempfile.TemporaryDirectory(prefix="mloops-demo-") as temporary:
        root = args.directory or temporary
        expected = build_workspace(root)
        report = scan_path(root)
        _emit(report, args)
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


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "demo":
            return _demo(args)
        return _emit(scan_path(*args.paths, jobs=args.jobs), args)
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
