"""Write src/mloops/picklevm/data/aliases.txt: module attributes that are another module or object.

A pickle can reach ``builtins.exec`` as ``enum.bltns.exec`` or ``os.system`` as
``tempfile._os.system``: the unpickler resolves the dotted name by attribute lookup, so any
module attribute that *is* a dangerous module or function is a spelling of it. This script
imports the modules loaders import (the standard library and the ML libraries of the test
extras), walks every module attribute, and keeps those whose object, compared by identity,
is a module the deny list covers (or holds denied names), or is a denied callable defined
elsewhere. The scanner reads the table; it never imports anything itself.

    python scripts/generate_aliases.py        (needs the [test] extras; rewrites the data file)
"""

from __future__ import annotations

import importlib
import io
import sys
import types
import warnings
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

from mloops.picklevm.policy import DATA, default_policy

# Modules that open windows, print, start threads or change the interpreter when imported.
SKIP = {
    "antigravity",
    "this",
    "idlelib",
    "turtle",
    "turtledemo",
    "tkinter",
    "_tkinter",
    "lib2to3",
    "pydoc_data",
    "ensurepip",
    "venv",
    "msilib",
    "winreg",
    "winsound",
    "_winapi",
    "msvcrt",
    "nt",
    "_msi",
    "_overlapped",
    "_scproxy",
    "_osx_support",
    "__phello__",
    "__hello__",
    "test",
    "idle",
}
ML_PACKAGES = ["numpy", "scipy", "pandas", "sklearn", "joblib", "torch", "dill", "cloudpickle", "xgboost", "lightgbm"]


def import_everything() -> None:
    for name in sorted(sys.stdlib_module_names - SKIP):
        _quiet_import(name)
    for name in ML_PACKAGES:
        _quiet_import(name)
    policy = default_policy()
    for dotted in sorted(policy.allow_call | policy.allow_build):
        parts = dotted.split(".")
        for end in range(len(parts) - 1, 0, -1):
            if _quiet_import(".".join(parts[:end])):
                break


def _quiet_import(name: str) -> bool:
    try:
        with warnings.catch_warnings(), redirect_stdout(io.StringIO()), redirect_stderr(io.StringIO()):
            warnings.simplefilter("ignore")
            importlib.import_module(name)
    except BaseException:  # noqa: BLE001 - optional modules fail in every way, even SystemExit
        return False
    return True


def watched_modules() -> set[str]:
    """Standard-library modules that are denied or hold denied names (os, builtins, subprocess, ...)."""
    policy = default_policy()
    watched = set()
    for name in policy.deny:
        top = name.split(".")[0]
        if top in sys.stdlib_module_names:
            module = name if name in sys.modules else top
            watched.add(module)
            watched.add(top)
    watched |= {"builtins", "os", "sys"}
    # Private modules that names.toml folds into a watched one (posix is os, _io is io).
    return watched | {private for private, public in policy.aliases.items() if public in watched}


def denied_objects() -> dict[int, str]:
    """id -> 'module:qualname' of every denied callable that can be resolved in this interpreter."""
    policy = default_policy()
    found: dict[int, str] = {}
    for name in sorted(policy.deny, key=lambda dotted: (dotted.count("."), dotted), reverse=True):
        module_name, _, attr = name.rpartition(".")
        module = sys.modules.get(module_name)
        obj = getattr(module, attr, None) if module is not None else None
        if obj is not None and not isinstance(obj, types.ModuleType) and callable(obj):
            found[id(obj)] = f"{module_name}:{attr}"
    return found


def aliases() -> dict[str, dict[str, str]]:
    watched = watched_modules()
    denied = denied_objects()
    table: dict[str, dict[str, str]] = {"modules": {}, "callables": {}}
    # The name a module is imported under, by identity: _io calls itself "io", but "io" is another module.
    registered = {id(module): name for name, module in sorted(sys.modules.items(), reverse=True)}
    for module_name, module in sorted(sys.modules.items()):
        if not isinstance(module, types.ModuleType):
            continue
        try:
            members = dict(vars(module))
        except TypeError:
            continue
        for attr, obj in members.items():
            if attr.startswith("__") and attr.endswith("__"):
                continue  # dunder paths are judged as introspection whatever they reach
            dotted = f"{module_name}.{attr}"
            if isinstance(obj, types.ModuleType):
                target = getattr(obj, "__name__", None)
                if sys.modules.get(target) is not obj:
                    target = registered.get(id(obj), target)
                if target in watched and dotted != target and not dotted.startswith(f"{target}."):
                    table["modules"][dotted] = target
            elif id(obj) in denied:
                target = denied[id(obj)]
                if dotted != target.replace(":", "."):
                    table["callables"][dotted] = target
    return table


def render(table: dict[str, dict[str, str]]) -> str:
    lines = [
        "# Attributes that are another module or object, found by identity. Generated by",
        "# scripts/generate_aliases.py; do not edit by hand. One alias a line: the dotted spelling, then",
        "# what it is: a module name, or module:qualname for an object inside a module.",
        f"# Python {sys.version.split()[0]}; packages: "
        + ", ".join(
            f"{name} {getattr(sys.modules[name], '__version__', '?')}" for name in ML_PACKAGES if name in sys.modules
        ),
    ]
    for section, entries in table.items():
        lines.append(f"# {section}")
        lines.extend(f"{name} {target}" for name, target in sorted(entries.items()))
    return "\n".join(lines) + "\n"


def main() -> None:
    import_everything()
    table = aliases()
    out = Path(DATA) / "aliases.txt"
    out.write_text(render(table), encoding="utf-8")
    print(f"{out}: {len(table['modules'])} module aliases, {len(table['callables'])} callable aliases")


if __name__ == "__main__":
    main()
