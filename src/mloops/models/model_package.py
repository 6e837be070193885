"""Model packages that name their own Python code, which the loader imports.

- MLflow's ``MLmodel``: the ``python_function`` flavor's ``loader_module`` (imported from the model's code
  paths by ``mlflow.pyfunc.load_model``) and a ``python_model`` given as a ``.py`` file (models from code,
  run on load). Built-in loaders (``mlflow.*``) read model files that are scanned on their own.
- Hugging Face ``config.json``: ``auto_map`` entries ``module.Class`` (``modeling_x.py`` of the repository)
  or ``repo--module.Class`` (another repository's), imported with ``trust_remote_code=True``.
- BentoML's ``bento.yaml``: ``service: "module:attribute"``, imported from the bundle's ``src/`` by
  ``bentoml serve``.
- TorchServe's ``.mar``: every ``.py`` member is on the handler's import path (mar_member_handler).

The named module is judged as code that runs on load (dataset_script.code_severity), from the files next
to the package; code that is not there cannot be checked, and says so.
"""

from __future__ import annotations

import os
import re
from typing import Any

from .. import rules
from ..context import Handler, Item, ScanContext
from ..core import AttackClass, Capability, Location, Rule, Severity
from ..datasets import dataset_script
from ..mlcode import python_code
from ..registry import Format, Layout

MODEL_PACKAGE_CODE = Rule(
    id="MLO350",
    name="model-package-code",
    title="Model package names Python code that runs when the model is loaded",
    severity=Severity.HIGH,
    attack_class=AttackClass.MALICIOUS_MODEL,
    capability=Capability.CODE_EXECUTION,
    description=(
        "Some model packages name their own code, which the loader imports: MLflow's MLmodel (a pyfunc "
        "loader_module found in the model's code paths, imported by mlflow.pyfunc.load_model) and Hugging Face's "
        "config.json auto_map (modules of the repository, or of another repository with 'repo--module', imported "
        "with trust_remote_code=True), TorchServe's .mar (every .py member is on the handler's import path). That "
        "code runs with the loader's rights before any weights are read. HIGH "
        "whatever it is seen to do, CRITICAL with process or eval calls or references, and HIGH when the named "
        "code is not in the package (it cannot be checked)."
    ),
    remediation=(
        "Load the model without its code: a built-in MLflow flavor, or a transformers architecture without "
        "trust_remote_code. Otherwise read the named modules, pin the revision, and load them only from a "
        "repository you control."
    ),
    summary=(
        "A model package names Python code its loader imports (MLflow `loader_module` or a model-from-code script, "
        "Hugging Face `auto_map` with `trust_remote_code`, TorchServe `.mar` code): high whatever it does, critical "
        "with process or eval calls or references; a module the environment provides is medium."
    ),
    severities="medium to critical",
)


MAX_CONFIG_BYTES = 4 * 1024 * 1024
_MODULE = re.compile(r"[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*")


def detect_mlmodel(head: bytes, name: str) -> bool:
    return os.path.basename(name) == "MLmodel" and b"flavors" in head and b"\x00" not in head


def detect_remote_code_config(head: bytes, name: str) -> bool:
    return name.lower().endswith(".json") and b'"auto_map"' in head and b"\x00" not in head


def detect_bento(head: bytes, name: str) -> bool:
    return os.path.basename(name) == "bento.yaml" and b"service:" in head and b"\x00" not in head


def analyze_bento(ctx: ScanContext, item: Item) -> None:
    """A built Bento: ``bentoml serve`` imports ``service: "module:attribute"`` from the bundle's src/."""
    ctx.record(item, "bento")
    config = _load(ctx, item, "bento.yaml")
    service = config.get("service") if isinstance(config, dict) else None
    if not isinstance(service, str) or not service:
        return
    module = service.split(":", 1)[0]
    folder = os.path.dirname(item.location.path) or "."
    how = f"bentoml serve imports the service module {module!r}"
    _judge(ctx, item, how, _module_files([os.path.join(folder, "src")], module), installed_is_possible=False)


def analyze_mlmodel(ctx: ScanContext, item: Item) -> None:
    ctx.record(item, "mlflow-model")
    config = _load(ctx, item, "MLmodel")
    flavor = (config.get("flavors") or {}).get("python_function") if isinstance(config, dict) else None
    if not isinstance(flavor, dict):
        return
    folder = os.path.dirname(item.location.path) or "."
    code = flavor.get("code")
    loader = flavor.get("loader_module")
    if isinstance(loader, str) and not loader.startswith("mlflow."):
        paths = [os.path.join(folder, code)] if isinstance(code, str) else []
        how = f"mlflow.pyfunc.load_model imports loader_module {loader!r}"
        _judge(ctx, item, how, _module_files(paths, loader), installed_is_possible=True)
    python_model = flavor.get("python_model")
    if isinstance(python_model, str) and python_model.endswith(".py"):
        how = f"mlflow.pyfunc.load_model runs the python_model script {python_model!r} (a model from code)"
        _judge(ctx, item, how, [os.path.join(folder, python_model)], installed_is_possible=False)


def analyze_remote_code_config(ctx: ScanContext, item: Item) -> None:
    ctx.record(item, "remote-code-config")
    check_auto_map(ctx, item, _load(ctx, item, "config"))


def check_auto_map(ctx: ScanContext, item: Item, config: Any) -> None:
    """The modules a config's auto_map names (config.json, tokenizer_config.json, processor configs)."""
    auto_map = config.get("auto_map") if isinstance(config, dict) else None
    if not isinstance(auto_map, dict):
        return
    folder = os.path.dirname(item.location.path) or "."
    modules: dict[str, list[str]] = {}
    for auto_class, references in auto_map.items():
        for reference in references if isinstance(references, list) else [references]:
            if isinstance(reference, str):
                modules.setdefault(reference.rsplit(".", 1)[0], []).append(str(auto_class))
    for module, classes in modules.items():
        how = f"with trust_remote_code=True, transformers imports {module!r} for {', '.join(classes[:3])}"
        repository, _, local = module.rpartition("--")
        if repository:
            message = f"{how}: code from another repository ({repository}), not in this folder, unchecked"
            evidence = {"module": module, "repository": repository}
            ctx.report(MODEL_PACKAGE_CODE.finding(item.location, message, evidence))
            continue
        _judge(ctx, item, how, _module_files([folder], local), installed_is_possible=False)


def _load(ctx: ScanContext, item: Item, what: str) -> Any:
    from ..parsers.yaml_docs import Unreadable, YamlLimit, parse_documents  # most scans meet no package

    data = ctx.read_all(item, MAX_CONFIG_BYTES, what, severity=Severity.HIGH)
    if data is None:
        return None
    try:
        documents = parse_documents(data, item.name.lower().endswith(".json"))
    except (Unreadable, YamlLimit) as exc:
        message = f"{what} cannot be parsed ({exc}); the loader fails too, and what it names went unchecked"
        ctx.report(rules.MALFORMED.finding(item.location, message, {"error": str(exc)}, severity=Severity.MEDIUM))
        return None
    return documents[0] if documents else None


def _module_files(paths: list[str], module: str) -> list[str]:
    """Where ``import module`` finds the module under ``paths``: ``a/b.py`` or ``a/b/__init__.py``."""
    if not _MODULE.fullmatch(module):
        return []
    relative = module.replace(".", os.sep)
    return [
        candidate
        for path in paths
        for candidate in (os.path.join(path, relative + ".py"), os.path.join(path, relative, "__init__.py"))
    ]


def _judge(ctx: ScanContext, item: Item, how: str, candidates: list[str], installed_is_possible: bool) -> None:
    found = next((path for path in candidates if item.depth == 0 and os.path.isfile(path)), None)
    if found is None:
        # A module the environment provides is the environment's code, not the package's: a note.
        severity = Severity.MEDIUM if installed_is_possible and item.depth == 0 else Severity.HIGH
        where = "inside an archive" if item.depth else "not in the package"
        message = f"{how}: the code is {where}, so it went unchecked"
        ctx.report(
            MODEL_PACKAGE_CODE.finding(
                item.location, message, {"looked_for": ", ".join(candidates[:4])}, severity=severity
            )
        )
        return
    try:
        with open(found, "rb") as handle:
            data = handle.read(python_code.MAX_SOURCE_BYTES + 1)
    except OSError as exc:
        ctx.report(MODEL_PACKAGE_CODE.finding(item.location, f"{how}: {found} cannot be read ({exc})"))
        return
    source = data.decode("utf-8", "replace")
    checked = python_code.check_source(source, Location(found))
    capabilities = python_code.capabilities_of(checked.parsed)
    if len(data) > python_code.MAX_SOURCE_BYTES:
        capabilities["unparsed"] = ["too large"]
    said, calls = dataset_script.code_summary(capabilities)
    message = f"{how} ({os.path.relpath(found, os.path.dirname(item.location.path) or '.')}); {'; '.join(said)}"
    evidence = {"module_file": found, "imports": ", ".join(capabilities["imports"][:20]), **calls}
    severity = dataset_script.code_severity(capabilities)
    ctx.report(MODEL_PACKAGE_CODE.finding(item.location, message, evidence, severity=severity))


# TorchServe .mar: a ZIP with MAR-INF/MANIFEST.json. TorchServe puts every file of the archive on the
# import path and imports the handler (and, in eager mode, the model file): any .py member may run.
MAR_MANIFEST = "MAR-INF/MANIFEST.json"
TORCHSERVE_HANDLERS = frozenset({"image_classifier", "image_segmenter", "object_detector", "text_classifier"})


def mar_member_handler(name: str) -> Handler | None:
    if name == MAR_MANIFEST:
        return _analyze_mar_manifest
    if name.lower().endswith(".py"):
        return _analyze_mar_code
    return None  # weights and extra files are identified by content


def _analyze_mar_manifest(ctx: ScanContext, item: Item) -> None:
    ctx.record(item, "torchserve-manifest")
    manifest = _load(ctx, item, "TorchServe manifest")
    model = manifest.get("model") if isinstance(manifest, dict) else None
    if not isinstance(model, dict):
        return
    handler = model.get("handler")
    if isinstance(handler, str) and handler.split(":")[0] not in TORCHSERVE_HANDLERS and not handler.endswith(".py"):
        message = f"TorchServe imports handler {handler!r}, which is not in the archive: the serving image's code"
        ctx.report(MODEL_PACKAGE_CODE.finding(item.location, message, {"handler": handler}, severity=Severity.MEDIUM))
    requirements = model.get("requirementsFile")
    if isinstance(requirements, str) and requirements:
        message = (
            f"the archive ships {requirements!r}: with install_py_dep_per_model=true TorchServe pip-installs it "
            "when the model loads (package install scripts run)"
        )
        ctx.report(
            MODEL_PACKAGE_CODE.finding(item.location, message, {"requirements": requirements}, severity=Severity.MEDIUM)
        )


def _analyze_mar_code(ctx: ScanContext, item: Item) -> None:
    ctx.record(item, "python-source")
    data = ctx.read_all(item, python_code.MAX_SOURCE_BYTES, "TorchServe handler code", severity=Severity.HIGH)
    if data is None:
        return
    checked = python_code.check_source(data.decode("utf-8", "replace"), item.location)
    for finding in checked.findings:
        ctx.report(finding)
    capabilities = python_code.capabilities_of(checked.parsed)
    said, calls = dataset_script.code_summary(capabilities)
    how = "TorchServe puts the archive's files on the import path and imports its handler and model file"
    message = f"{how}: this module may run on load; {'; '.join(said)}"
    evidence = {"imports": ", ".join(capabilities["imports"][:20]), **calls}
    severity = dataset_script.code_severity(capabilities)
    ctx.report(MODEL_PACKAGE_CODE.finding(item.location, message, evidence, severity=severity))


FORMATS = (
    Format("mlflow-model", "code", "MLflow model (MLmodel)", handler=analyze_mlmodel, detect=detect_mlmodel, order=470),
    Format("bento", "code", "BentoML bundle (bento.yaml)", handler=analyze_bento, detect=detect_bento, order=480),
    Format(
        "remote-code-config",
        "code",
        "Hugging Face config with auto_map (trust_remote_code)",
        handler=analyze_remote_code_config,
        detect=detect_remote_code_config,
        order=490,
    ),
    Format(
        "torchserve-mar",
        "code",
        "TorchServe model archive (.mar)",
        extensions=(".mar",),
        layout=Layout("zip", 60, lambda names: MAR_MANIFEST in names, mar_member_handler),
    ),
    Format("torchserve-manifest", "other", "TorchServe archive manifest"),
)
