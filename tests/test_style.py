"""Lint and formatting are part of the suite, so CI enforces them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGETS = ["src", "tests", "corpus", "scripts", "bench", "fuzz"]


def test_ruff_check():
    result = subprocess.run([sys.executable, "-m", "ruff", "check", *TARGETS], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_format():
    command = [sys.executable, "-m", "ruff", "format", "--check", *TARGETS]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
