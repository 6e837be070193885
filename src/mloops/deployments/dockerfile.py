"""Dockerfiles of ML images: who the final stage runs as, models fetched over plain HTTP, all-GPU settings."""

from __future__ import annotations

import json
import re

from ..context import Item, ScanContext
from ..core import Severity
from ..registry import Format
from . import deployment_checks as checks

MAX_DOCKERFILE_BYTES = 1 << 20
_NAME = re.compile(r"(^|/)(Dockerfile|Containerfile)([.\w-]*)$|\.(dockerfile|containerfile)$", re.IGNORECASE)
_FIRST_INSTRUCTION = re.compile(rb"\A(?:\s*(?:#[^\n]*)?\n)*\s*(FROM|ARG)\s+\S", re.IGNORECASE)
_HTTP_URL = re.compile(r"http://[^\s\"'\\]+")


def detect(head: bytes, name: str) -> bool:
    """Text that starts with FROM (or ARG then FROM) after comments; the name alone is not enough."""
    if b"\x00" in head or not _FIRST_INSTRUCTION.match(head):
        return False
    return bool(_NAME.search(name)) or re.search(rb"^\s*FROM\s+\S+", head, re.MULTILINE | re.IGNORECASE) is not None


def _instructions(text: str) -> list[tuple[int, str, str]]:
    """(line, INSTRUCTION, arguments) with continuation lines joined."""
    found, pending, start = [], "", 0
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if not pending:
            start = number
        pending += " " + stripped.rstrip("\\")
        if not stripped.endswith("\\"):
            keyword, _, rest = pending.strip().partition(" ")
            found.append((start, keyword.upper(), rest.strip()))
            pending = ""
    return found


def _command(arguments: str) -> list[str]:
    """An ENTRYPOINT or CMD's words: exec form (a JSON array) or shell form."""
    if arguments.startswith("["):
        try:
            words = json.loads(arguments)
        except ValueError:
            words = None
        if isinstance(words, list):
            return checks.command_words(words)
    return checks.command_words(arguments)


def analyze(ctx: ScanContext, item: Item) -> None:
    ctx.record(item, "dockerfile")
    data = ctx.read_all(item, MAX_DOCKERFILE_BYTES, "Dockerfile")
    if data is None:
        return
    instructions = _instructions(data.decode("utf-8", "replace"))
    images = [arguments.split()[0] for _, keyword, arguments in instructions if keyword == "FROM" and arguments]
    workload = f"image built from {images[-1]}" if images else "image"
    report = checks.Reporter(ctx, item.location, workload, checks.image_role(images))
    user = None
    start: dict[str, tuple[int, list[str]]] = {}  # the final stage's ENTRYPOINT and CMD
    baked: list[str] = []
    for line, keyword, arguments in instructions:
        if keyword == "FROM":
            user = None  # each stage starts as root again
            start.clear()
        elif keyword in ("ENTRYPOINT", "CMD"):
            start[keyword] = (line, _command(arguments))
        elif keyword == "ARG" and "=" in arguments:
            name, _, value = arguments.partition("=")
            if checks.is_credential_literal(name.strip(), value):
                baked.append(f"ARG {name.strip()} (line {line})")
        elif keyword == "USER":
            user = (line, arguments.split(":")[0])
        elif keyword in ("ADD", "RUN"):
            for url in _HTTP_URL.findall(arguments):
                checks.check_model_uri(report, f"{keyword} (line {line})", url)
        elif keyword == "ENV":
            for name, value in re.findall(r"(\w+)[= ]\"?([^\s\"]+)", arguments):
                checks.check_gpu_env(report, name, value, "image")
                if checks.is_credential_literal(name, value):
                    baked.append(f"ENV {name} (line {line})")
    if baked:
        # Every layer of the image keeps them: whoever pulls the image reads them with docker history.
        message = f"bakes credentials into the image: {', '.join(baked[:10])} (values not shown)"
        report(checks.ENVIRONMENT_CREDENTIALS, message, {"names": ", ".join(baked)}, severity=Severity.HIGH)
    if start:
        words = start.get("ENTRYPOINT", (0, []))[1] + start.get("CMD", (0, []))[1]
        lines = ", ".join(f"{keyword} line {line}" for keyword, (line, _) in start.items())
        checks.check_platform_start(report, words, lines)
    if user is None:
        report(checks.RUNS_AS_ROOT, "the final stage sets no USER: the container runs as root", {"field": "USER"})
    elif user[1] in ("root", "0"):
        report(checks.RUNS_AS_ROOT, f"the final stage switches to USER {user[1]} (line {user[0]})",
               {"line": str(user[0])}, severity=Severity.MEDIUM)  # fmt: skip


FORMATS = (Format("dockerfile", "other", "Dockerfile", "deployment", handler=analyze, detect=detect, order=440),)
