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


def _module_imports(path: pathlib.Path, module: str, is_package: bool, known: set[str]) -> set[str]:
    """The mloops modules a module imports at its top level (imports inside functions are deferred on purpose)."""
    import ast

    base = module.split(".") if is_package else module.split(".")[:-1]
    found = set()
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.ImportFrom):
            parent = base[: len(base) - node.level + 1] if node.level else []
            target = ".".join([*parent, *([node.module] if node.module else [])])
            found |= {f"{target}.{a.name}" if f"{target}.{a.name}" in known else target for a in node.names}
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
    return (found & known) - {module}


def test_the_package_has_no_import_circles():
    src = ROOT / "src"
    paths = {}
    for path in (src / "mloops").rglob("*.py"):
        parts = path.relative_to(src).with_suffix("").parts
        is_package = parts[-1] == "__init__"
        paths[".".join(parts[:-1] if is_package else parts)] = (path, is_package)
    known = set(paths)
    graph = {name: _module_imports(path, name, is_package, known) for name, (path, is_package) in paths.items()}
    state: dict[str, int] = {}  # 1: on the path being walked, 2: done

    def circle_from(name: str, trail: list[str]) -> list[str] | None:
        state[name] = 1
        for target in sorted(graph[name]):
            if state.get(target) == 1:
                return [*trail, name, target]
            if target not in state and (found := circle_from(target, [*trail, name])):
                return found
        state[name] = 2
        return None

    circles = [found for name in sorted(graph) if name not in state and (found := circle_from(name, []))]
    assert len(graph) > 90 and circles == []
