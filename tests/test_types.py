"""The type annotations of src/ are checked, not only written: mypy passes on the package."""

from __future__ import annotations

import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent


def test_mypy_passes_on_the_package():
    result = subprocess.run(
        [sys.executable, "-m", "mypy"], cwd=ROOT, capture_output=True, text=True, timeout=900, check=False
    )  # files and Python version come from [tool.mypy] in pyproject.toml
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "Success" in result.stdout


def test_every_parser_error_is_a_parse_error():
    # A caller tells a malformed file (a finding) from a scanner fault by one base class.
    import importlib
    import inspect
    import pkgutil

    import mloops.parsers
    from mloops.core import ParseError
    from mloops.models import keras_config
    from mloops.notebooks import notebook
    from mloops.picklevm import vm

    errors = [vm.Malformed, notebook.Malformed, keras_config.ConfigError]
    for module_info in pkgutil.iter_modules(mloops.parsers.__path__):
        module = importlib.import_module(f"mloops.parsers.{module_info.name}")
        errors += [
            cls
            for _, cls in inspect.getmembers(module, inspect.isclass)
            if issubclass(cls, Exception) and cls.__module__ == module.__name__ and not cls.__name__.startswith("_")
        ]  # private ones are control flow that never leaves their module
    limits = {"YamlLimit"}  # a bound reached, not a broken file: reported as a scan limit
    outside = [cls.__qualname__ for cls in errors if not issubclass(cls, ParseError) and cls.__name__ not in limits]
    assert len(errors) >= 9
    assert not outside, outside
