"""Texts for the secret search: a 50 MB image output, hostile runs of key prefixes, and the runner
that searches a text as a notebook output."""

from __future__ import annotations

import base64
import os

from mloops.context import ScanContext
from mloops.core import Location
from mloops.limits import Limits
from mloops.mlcode.secrets import report_secrets
from mloops.picklevm.policy import default_policy
from mloops.scan import dispatch


def scan_text(text: str, where: dict[str, str] | None = None) -> ScanContext:
    ctx = ScanContext("nb.ipynb", Limits(), default_policy(), dispatch)
    report_secrets(ctx, Location("nb.ipynb"), text, where or {"cell": "3", "output": "0"})
    return ctx


def big_image_output() -> str:
    return base64.b64encode(os.urandom(38 * 1024 * 1024)).decode()  # about 50 MB of base64


def hostile_runs() -> list[str]:
    lines = "\n".join(base64.b64encode(os.urandom(57)).decode() for _ in range(30_000))  # ~2.3 MB
    return [lines, "eyJ-" * 250_000, "sk-" * 330_000, "aws key " * 125_000, "://a:" * 200_000]
