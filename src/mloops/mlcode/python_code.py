"""ML code rules: Python source that loads untrusted artifacts unsafely or hard-codes platform credentials.

The model file is only half of a pickle attack; the other half is the code that calls ``torch.load``,
``pickle.load`` or ``load_dataset(..., trust_remote_code=True)`` on what it downloaded. The source is
parsed with ``ast.parse`` and never executed; import aliases and simple assignments are followed so
``import torch as T; T.load(f)`` is seen as ``torch.load``.
"""

from __future__ import annotations

import ast
import functools
import re
from collections.abc import Iterator
from typing import Any, NamedTuple

from .. import rules
from ..context import Item, ScanContext
from ..core import INLINE_SUPPRESSION, AttackClass, Capability, Finding, Location, Rule, Severity
from ..data import load_toml
from ..datasets import dataset_folder, dataset_script
from ..registry import Format
from . import secrets

_CODE_FIX_SAFETENSORS = "Store weights as safetensors and load them with safetensors.torch.load_file. "
CODE_PICKLE_LOAD = Rule(
    id="MLO320",
    name="code-pickle-load",
    title="Code loads an artifact with a pickle-family loader",
    severity=Severity.MEDIUM,
    attack_class=AttackClass.MALICIOUS_MODEL,
    capability=Capability.CODE_EXECUTION,
    description=(
        "pickle, dill, cloudpickle, joblib, shelve and pandas.read_pickle run the pickle virtual machine on the "
        "file they read: whoever wrote the file chooses the code that runs. MEDIUM because the code is only as "
        "dangerous as the files it is given, and a static scan cannot tell where they come from."
    ),
    remediation=(
        _CODE_FIX_SAFETENSORS + "Keep pickle for files your own process wrote; scan every other one with mloops "
        "before loading it."
    ),
    summary="Code loads an artifact with a pickle-family loader.",
)
CODE_TORCH_LOAD = Rule(
    id="MLO321",
    name="code-torch-load-unrestricted",
    title="torch.load without weights_only=True",
    severity=Severity.HIGH,
    attack_class=AttackClass.MALICIOUS_MODEL,
    capability=Capability.CODE_EXECUTION,
    description=(
        "torch.load(weights_only=False) unpickles the checkpoint with the full pickle machine: a crafted "
        "checkpoint runs code (HIGH, the safe mode was turned off on purpose). Without the argument, PyTorch "
        "before 2.6 also used the full machine, and code pinned to those versions still does (MEDIUM)."
    ),
    remediation=(
        "Pass weights_only=True (add reviewed classes with torch.serialization.add_safe_globals), or store the "
        "weights as safetensors."
    ),
    summary="torch.load without weights_only=True.",
)
CODE_NUMPY_PICKLE = Rule(
    id="MLO322",
    name="code-numpy-allow-pickle",
    title="numpy.load with allow_pickle=True",
    severity=Severity.HIGH,
    attack_class=AttackClass.MALICIOUS_MODEL,
    capability=Capability.CODE_EXECUTION,
    description=(
        "allow_pickle=True lets numpy.load unpickle object arrays, so a crafted .npy/.npz file runs code. NumPy "
        "refuses them by default since 1.16.3; the argument turns that protection off."
    ),
    remediation=(
        "Drop allow_pickle=True and store numeric arrays only; keep structured data in JSON, Parquet or safetensors."
    ),
    summary="numpy.load with allow_pickle=True.",
)
CODE_KERAS_UNSAFE = Rule(
    id="MLO323",
    name="code-keras-unsafe-mode",
    title="Keras safe mode is turned off",
    severity=Severity.HIGH,
    attack_class=AttackClass.MALICIOUS_MODEL,
    capability=Capability.CODE_EXECUTION,
    description=(
        "load_model(safe_mode=False) and keras.config.enable_unsafe_deserialization() let a .keras file "
        "deserialize Lambda layers, whose bytecode runs when the model is loaded or called."
    ),
    remediation="Keep safe_mode on; rebuild Lambda layers as registered custom layers defined in your own code.",
    summary="Keras safe mode is turned off.",
)
CODE_YAML_UNSAFE = Rule(
    id="MLO324",
    name="code-yaml-unsafe-load",
    title="YAML loaded without a safe loader",
    severity=Severity.HIGH,
    attack_class=AttackClass.MALICIOUS_MODEL,
    capability=Capability.CODE_EXECUTION,
    description=(
        "yaml.unsafe_load and yaml.load with Loader/UnsafeLoader build arbitrary Python objects from "
        "!!python/object tags, which runs code (HIGH). yaml.load without a Loader was unsafe before PyYAML 5.1 "
        "and a variable loader cannot be checked (MEDIUM); FullLoader had bypasses before PyYAML 5.4 (LOW)."
    ),
    remediation="Use yaml.safe_load, or yaml.load(..., Loader=yaml.SafeLoader).",
    summary="YAML loaded without a safe loader.",
)
CODE_MLFLOW_PICKLE = Rule(
    id="MLO325",
    name="code-mlflow-pickle-flavor",
    title="MLflow model loaded through a pickle-based flavor",
    severity=Severity.MEDIUM,
    attack_class=AttackClass.MALICIOUS_MODEL,
    capability=Capability.CODE_EXECUTION,
    description=(
        "The pyfunc, sklearn, pytorch, statsmodels and similar MLflow flavors store the model with pickle, "
        "cloudpickle or torch.save; load_model unpickles whatever the model URI points to. Anyone who can write "
        "to that registry or artifact store runs code in every consumer (the 'ML worm')."
    ),
    remediation=(
        "Load models only from registries with strict write access, scan their artifacts with mloops, and prefer "
        "flavors that store data-only formats (ONNX, safetensors through transformers)."
    ),
    summary="MLflow model loaded through a pickle-based flavor.",
)
CODE_TRUST_REMOTE_CODE = Rule(
    id="MLO326",
    name="code-trust-remote-code",
    title="trust_remote_code=True runs code from the model or dataset repository",
    severity=Severity.HIGH,
    attack_class=AttackClass.MALICIOUS_DATASET,
    capability=Capability.CODE_EXECUTION,
    description=(
        "transformers' from_pretrained/pipeline and datasets' load_dataset import and run Python files from the "
        "Hub repository when trust_remote_code=True. Whoever controls the repository, or a later revision of it, "
        "runs code on the loading machine."
    ),
    remediation=(
        "Drop trust_remote_code=True; if the architecture needs it, review the code and pin revision= to the "
        "reviewed commit hash."
    ),
    summary="trust_remote_code=True runs code from the model or dataset repository.",
)
CODE_HARDCODED_CREDENTIAL = Rule(
    id="MLO327",
    name="code-hardcoded-credential",
    title="ML platform credential hard-coded in source",
    severity=Severity.HIGH,
    attack_class=AttackClass.MALICIOUS_MODEL,
    capability=Capability.NETWORK_ACCESS,
    description=(
        "A token or password for MLflow, Weights & Biases, Hugging Face, OpenAI or AWS is written in the source. "
        "Anyone who reads the file or notebook can push poisoned models to the registry it guards."
    ),
    remediation="Revoke and rotate the credential now; read it from the environment or a secret manager at run time.",
    summary="ML platform credential hard-coded in source.",
)
CODE_PLATFORM_ADDRESS = Rule(
    id="MLO329",
    name="code-platform-address",
    title="Code points a platform client at a server",
    severity=Severity.INFO,
    attack_class=AttackClass.MISSING_AUTH,
    capability=Capability.NETWORK_ACCESS,
    description=(
        "A literal address handed to an ML platform's client (mlflow.set_tracking_uri, MlflowClient, "
        "MLFLOW_TRACKING_URI): the server whose models this code loads and to which its credentials are sent. "
        "Not a risk by itself; mloops audit uses it to join the code to that server's other findings."
    ),
    remediation="Nothing to fix by itself; make sure the server it names requires authentication.",
    summary="Code points an ML platform client at a literal server address (a fact for mloops audit).",
)
CODE_LOADS_DATASET = Rule(
    id="MLO341",
    name="code-loads-dataset",
    title="Code loads a dataset by a literal name or folder",
    severity=Severity.INFO,
    attack_class=AttackClass.MALICIOUS_DATASET,
    capability=Capability.CODE_EXECUTION,
    description=(
        "datasets.load_dataset with a literal path or Hub name: the dataset this code trains or evaluates on. "
        "Not a risk by itself; mloops audit joins it to a dataset folder whose loading script runs code."
    ),
    remediation="Nothing to fix by itself; load datasets from reviewed revisions, without loading scripts.",
    summary="Code loads a dataset by a literal name or folder (a fact for mloops audit).",
)
CODE_UNSAFE_FALLBACK = Rule(
    id="MLO328",
    name="code-weights-only-fallback",
    title="torch.load falls back to weights_only=False when the safe load fails",
    severity=Severity.HIGH,
    attack_class=AttackClass.MALICIOUS_MODEL,
    capability=Capability.CODE_EXECUTION,
    description=(
        "The safe load fails exactly when the checkpoint references callables outside the weights-only "
        "allowlist, which is what a malicious checkpoint does; the fallback then unpickles it with the full "
        "pickle machine. The check protects nothing."
    ),
    remediation=(
        "Let the safe load fail; allow the few reviewed classes a legitimate checkpoint needs with "
        "torch.serialization.add_safe_globals."
    ),
    summary="torch.load falls back to weights_only=False when the safe load fails.",
)


MAX_SOURCE_BYTES = 512 * 1024  # hand-written scripts stay far below; ast.parse takes ~2 s on 512 KiB of dense calls
MAX_NODES = 400_000
MAX_NAME_CHARS = 256  # qualified names built through alias chains (a = b.x; c = a.x; ...) stay short
MAX_CAPABILITY_NAMES = 100
_MIN_SECRET_CHARS = 8  # shorter literals are placeholders ("xxx", "changeme")
_PLACEHOLDER_HINTS = ("<", "${", "your", "xxxx", "***", "...", "changeme", "placeholder")


class _Table(NamedTuple):
    pickle_loaders: frozenset[str]
    torch_loaders: frozenset[str]
    numpy_loaders: frozenset[str]
    keras_loaders: frozenset[str]
    keras_unsafe_switches: frozenset[str]
    yaml_loaders: frozenset[str]
    yaml_unsafe: frozenset[str]
    yaml_full: frozenset[str]
    yaml_safe_classes: frozenset[str]
    yaml_full_classes: frozenset[str]
    mlflow_pickle_loaders: frozenset[str]
    credential_names: frozenset[str]
    environment_setters: frozenset[str]
    credential_arguments: dict[str, str]
    address_calls: dict[str, str]
    address_variables: dict[str, str]
    dataset_loaders: frozenset[str]
    capabilities: dict[str, tuple[str, ...]]
    filesystem_methods: frozenset[str]
    dataset_builder_bases: frozenset[str]


@functools.cache
def _table() -> _Table:
    data: dict[str, Any] = load_toml("code_rules.toml")
    capabilities = dict(data["capabilities"])
    methods = frozenset(capabilities.pop("filesystem_methods"))
    return _Table(
        frozenset(data["pickle_loaders"]),
        frozenset(data["torch_loaders"]),
        frozenset(data["numpy_loaders"]),
        frozenset(data["keras_loaders"]),
        frozenset(data["keras_unsafe_switches"]),
        frozenset(data["yaml_loaders"]),
        frozenset(data["yaml_unsafe"]),
        frozenset(data["yaml_full"]),
        frozenset(data["yaml_safe_loader_classes"]),
        frozenset(data["yaml_full_loader_classes"]),
        frozenset(data["mlflow_pickle_loaders"]),
        frozenset(name.upper() for name in data["credential_names"]),
        frozenset(data["environment_setters"]),
        dict(data["credential_arguments"]),
        dict(data["address_calls"]),
        {name.upper(): platform for name, platform in data["address_variables"].items()},
        frozenset(data["dataset_loaders"]),
        {kind: tuple(names) for kind, names in capabilities.items()},
        methods,
        frozenset(data["dataset_builder_bases"]),
    )


# ------------------------------------------------------------ parsing and name resolution


class _Parsed(NamedTuple):
    tree: ast.Module
    nodes: list[ast.AST]
    names: dict[str, str]  # local name -> qualified name it stands for


_OPAQUE = ""  # a name bound to a value that cannot be named statically


class _TooLarge(Exception):
    pass


def _parse(source: str) -> _Parsed | None:
    """The syntax tree, or None when the text is not Python 3 (templates, Python 2): not a finding."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):  # ValueError: NUL bytes
        return None
    except (RecursionError, MemoryError) as exc:  # pathological nesting: the text is not checked
        raise _TooLarge("nested too deeply to parse") from exc
    nodes: list[ast.AST] = []
    for node in ast.walk(tree):
        nodes.append(node)
        if len(nodes) > MAX_NODES:
            raise _TooLarge(f"more than {MAX_NODES} syntax nodes")
    return _Parsed(tree, nodes, _bind_names(nodes))


def _bind_names(nodes: list[ast.AST]) -> dict[str, str]:
    """Imports and plain ``x = a.b`` assignments, wherever they are (scopes are merged: a static guess)."""
    names: dict[str, str] = {}
    stars: list[str] = []
    for node in nodes:
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    names[alias.asname] = alias.name
                else:
                    head = alias.name.split(".", 1)[0]
                    names[head] = head
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for alias in node.names:
                if alias.name != "*":
                    names[alias.asname or alias.name] = f"{node.module}.{alias.name}"
                else:
                    stars.append(node.module)
    if stars:
        _bind_star_imports(nodes, names, stars)
    imported = set(names)
    assignments = [n for n in nodes if isinstance(n, ast.Assign | ast.AnnAssign) and n.value is not None]
    for _ in range(2):  # a second round follows one alias of an alias defined later in the file
        for node in assignments:
            if node.value is None:  # kept out above; the check tells the type checker
                continue
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            value = _qualified(node.value, names)
            for target in targets:
                if not isinstance(target, ast.Name) or target.id == value:
                    continue
                if value is not None:
                    names[target.id] = value
                elif target.id not in imported:  # yaml = YAML(): an object, not the module of that name
                    names[target.id] = _OPAQUE
    return names


def _bind_star_imports(nodes: list[ast.AST], names: dict[str, str], stars: list[str]) -> None:
    """``from os import *`` then ``system(...)``: a free name that a star-imported module would supply and
    that some rule knows (``os.system``) is bound to it; which names a module exports is not read."""
    for node in nodes:
        if isinstance(node, ast.Name) and node.id not in names:
            for module in stars:
                if _known(f"{module}.{node.id}"):
                    names[node.id] = f"{module}.{node.id}"
                    break


def _known(name: str) -> bool:
    """Whether a rule of this module has something to say about the qualified name."""
    table = _table()
    loaders = (table.pickle_loaders, table.torch_loaders, table.numpy_loaders, table.keras_loaders)
    if any(name in group for group in (*loaders, table.yaml_loaders, table.mlflow_pickle_loaders)):
        return True
    return any(_matches(name, pattern) for patterns in table.capabilities.values() for pattern in patterns)


def _qualified(expr: ast.expr, names: dict[str, str]) -> str | None:
    """``T.serialization.load`` -> ``torch.serialization.load``; None for what cannot be named statically."""
    parts: list[str] = []
    while True:  # iterative: attribute chains can be as long as the attacker likes
        if isinstance(expr, ast.Attribute):
            parts.append(expr.attr)
            expr = expr.value
        elif isinstance(expr, ast.Name):
            resolved = names.get(expr.id, expr.id)  # unbound names stay as written: builtins, other cells' imports
            if resolved == _OPAQUE:
                return None
            parts.append(resolved)
            break
        elif isinstance(expr, ast.Call) and expr.args:
            func = _call_name(expr.func, names)
            if func == "getattr" and len(expr.args) == 2 and _constant_str(expr.args[1]) is not None:
                parts.append(_constant_str(expr.args[1]) or "")  # getattr(pickle, "loads")
                expr = expr.args[0]
            elif func in ("importlib.import_module", "__import__") and _constant_str(expr.args[0]) is not None:
                parts.append(_constant_str(expr.args[0]) or "")  # importlib.import_module("pickle")
                break
            else:
                return None
        else:
            return None
    name = ".".join(reversed(parts))
    return name if len(name) <= MAX_NAME_CHARS else None


def _call_name(func: ast.expr, names: dict[str, str]) -> str | None:
    """The name of a called builtin or ``module.function``, without following further calls."""
    if isinstance(func, ast.Name):
        return names.get(func.id, func.id)
    if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
        return f"{names.get(func.value.id, func.value.id)}.{func.attr}"
    return None


def _constant_str(expr: ast.expr) -> str | None:
    return expr.value if isinstance(expr, ast.Constant) and isinstance(expr.value, str) else None


def _keyword(call: ast.Call, name: str) -> ast.expr | None:
    """The argument passed as ``name=``, also through a literal ``**{"name": ...}``."""
    for keyword in call.keywords:
        if keyword.arg == name:
            return keyword.value
        if keyword.arg is None and isinstance(keyword.value, ast.Dict):
            for key, value in zip(keyword.value.keys, keyword.value.values, strict=True):
                if key is not None and _constant_str(key) == name:
                    return value
    return None


def _is_constant(expr: ast.expr | None, value: object) -> bool:
    return isinstance(expr, ast.Constant) and expr.value is value


# ------------------------------------------------------------ the rules


class _Emitter:
    """Builds findings with the resolved callable, the spelling in the source and the line."""

    def __init__(self, source: str, location: Location) -> None:
        self.location = location
        self.findings: list[Finding] = []
        self.credentials: set[str] = set()
        self._line_offsets = _line_byte_offsets(source)
        self._encoded = source.encode("utf-8", "surrogatepass")

    def text(self, node: ast.expr) -> str:
        """The node as written in the source, cut to a readable length."""
        if node.end_lineno is None or node.end_col_offset is None or node.end_lineno > len(self._line_offsets):
            return ""
        start = self._line_offsets[node.lineno - 1] + node.col_offset
        end = self._line_offsets[node.end_lineno - 1] + node.end_col_offset
        return self._encoded[start : min(end, start + 120)].decode("utf-8", "replace")

    def emit(
        self,
        rule: Rule,
        node: ast.expr | ast.stmt,
        message: str,
        evidence: dict[str, str],
        severity: Severity | None = None,
    ) -> None:
        line = node.lineno
        offset = self._line_offsets[line - 1] + node.col_offset if line <= len(self._line_offsets) else None
        evidence = {**evidence, "line": str(line)}
        self.findings.append(
            rule.finding(self.location.at(offset), f"{message} (line {line})", evidence, severity=severity)
        )


def _line_byte_offsets(source: str) -> list[int]:
    offsets = [0]
    total = 0
    for line in source.splitlines(keepends=True):
        total += len(line.encode("utf-8", "surrogatepass"))
        offsets.append(total)
    return offsets


class SourceCheck(NamedTuple):
    findings: list[Finding]
    # Literal values MLO327 reported: the secret search skips them, so one secret gives one finding.
    credentials: frozenset[str]
    parsed: _Parsed | None  # kept for what a loading script can do; None when the text is not Python 3


def check_source(source: str, location: Location) -> SourceCheck:
    """The ML code rules applied to one Python source text (a file or a notebook cell)."""
    if len(source) > MAX_SOURCE_BYTES:
        message = f"Python source longer than {MAX_SOURCE_BYTES} characters; code rules not applied"
        return SourceCheck([rules.SCAN_LIMIT.finding(location, message)], frozenset(), None)
    try:
        parsed = _parse(source)
    except _TooLarge as exc:
        message = f"Python source {exc}; code rules not applied"
        return SourceCheck([rules.SCAN_LIMIT.finding(location, message)], frozenset(), None)
    if parsed is None:
        return SourceCheck([], frozenset(), None)
    emitter = _Emitter(source, location)
    fallbacks = _weights_only_fallbacks(parsed)
    for node in parsed.nodes:
        if isinstance(node, ast.Call):
            _check_call(emitter, node, parsed.names, fallbacks)
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            _check_assignment(emitter, node, parsed.names)
    findings = sorted(emitter.findings, key=lambda finding: finding.location.offset or 0)
    return SourceCheck(inline_suppressed(findings, source), frozenset(emitter.credentials), parsed)


# `# mloops: ignore[MLO321] why` on the finding's line accepts it there; without a reason it does not count.
_IGNORE = re.compile(r"#\s*mloops:\s*ignore\[([A-Z0-9,\s]+)\]\s*(\S.*)?$")


def inline_suppressed(findings: list[Finding], source: str) -> list[Finding]:
    """The findings, those a reasoned ``# mloops: ignore[RULE] why`` on their own line accepts marked so."""
    lines = source.splitlines()
    marked = []
    for finding in findings:
        number = int(finding.evidence.get("line", "0") or 0)
        found = _IGNORE.search(lines[number - 1]) if 0 < number <= len(lines) else None
        rules = {rule.strip() for rule in found.group(1).split(",")} if found else set()
        if found and found.group(2) and finding.rule.id in rules:
            finding = finding._replace(
                suppressed=f"{INLINE_SUPPRESSION} at line {number}: {found.group(2).strip()[:200]}"
            )
        marked.append(finding)
    return marked


def _check_call(emitter: _Emitter, call: ast.Call, names: dict[str, str], fallbacks: set[int]) -> None:
    table = _table()
    name = _qualified(call.func, names)
    evidence = {"callable": name or "", "written": emitter.text(call.func)}
    if name in table.pickle_loaders or name in table.torch_loaders:
        loaded = _loaded_path(call, names)
        evidence.update({"path": loaded[:200]} if loaded else {})
    if name in table.pickle_loaders:
        emitter.emit(CODE_PICKLE_LOAD, call, f"{name} runs the pickle machine on its input", evidence)
    elif name in table.torch_loaders:
        _check_torch_load(emitter, call, evidence, id(call) in fallbacks)
    elif name in table.numpy_loaders and _is_constant(_keyword(call, "allow_pickle"), True):
        emitter.emit(CODE_NUMPY_PICKLE, call, f"{name}(allow_pickle=True) unpickles object arrays", evidence)
    elif name in table.keras_loaders and _is_constant(_keyword(call, "safe_mode"), False):
        emitter.emit(CODE_KERAS_UNSAFE, call, f"{name}(safe_mode=False) deserializes Lambda code", evidence)
    elif name in table.keras_unsafe_switches:
        emitter.emit(CODE_KERAS_UNSAFE, call, f"{name}() turns Keras safe mode off process-wide", evidence)
    elif name in table.yaml_loaders or name in table.yaml_unsafe or name in table.yaml_full:
        _check_yaml(emitter, call, name, names, evidence)
    elif name in table.mlflow_pickle_loaders:
        argument = call.args[0] if call.args else _keyword(call, "model_uri")
        uri = _constant_str(argument) if argument is not None else None
        emitter.emit(
            CODE_MLFLOW_PICKLE,
            call,
            f"{name} unpickles the model stored at its URI",
            {**evidence, "uri": uri[:200] if uri else "(computed at run time)"},
        )
    elif name in table.environment_setters and len(call.args) >= 2:
        _check_credential(emitter, call, _constant_str(call.args[0]), call.args[1], f"{name}()")
    elif name == "os.environ.update" and call.args and isinstance(call.args[0], ast.Dict):
        for key, value in zip(call.args[0].keys, call.args[0].values, strict=True):
            if key is not None:
                _check_credential(emitter, call, _constant_str(key), value, f"{name}()")
    if name in table.address_calls:
        _check_address_call(emitter, call, name, table.address_calls[name])
    if name in table.dataset_loaders:
        argument = call.args[0] if call.args else _keyword(call, "path")
        dataset = _constant_str(argument) if argument is not None else None
        if dataset:
            message = f"{name} loads the dataset {dataset[:200]}"
            emitter.emit(CODE_LOADS_DATASET, call, message, {**evidence, "path": dataset[:200]})
    if name in table.credential_arguments:
        keyword = table.credential_arguments[name]
        secret = _keyword(call, keyword)
        if secret is not None:
            _check_credential(emitter, call, keyword, secret, f"{name}({keyword}=...)", always=True)
    if _is_constant(_keyword(call, "trust_remote_code"), True):
        emitter.emit(
            CODE_TRUST_REMOTE_CODE,
            call,
            f"{name or 'a call'} with trust_remote_code=True runs code from the repository",
            evidence,
        )


def _loaded_path(call: ast.Call, names: dict[str, str]) -> str | None:
    """The file a loader reads when the code writes it: ``load("m.pkl")`` or ``load(open("m.pkl", "rb"))``."""
    argument = call.args[0] if call.args else None
    if isinstance(argument, ast.Call) and _qualified(argument.func, names) in ("open", "builtins.open", "io.open"):
        argument = argument.args[0] if argument.args else None
    return _constant_str(argument) if argument is not None else None


def _check_torch_load(emitter: _Emitter, call: ast.Call, evidence: dict[str, str], fallback: bool) -> None:
    name = evidence["callable"]
    weights_only = _keyword(call, "weights_only")
    if _is_constant(weights_only, True):
        return
    if fallback:
        message = f"{name}(weights_only=False) retries a load that the safe mode refused"
        emitter.emit(CODE_UNSAFE_FALLBACK, call, message, evidence)
    elif _is_constant(weights_only, False):
        emitter.emit(CODE_TORCH_LOAD, call, f"{name}(weights_only=False) unpickles the checkpoint", evidence)
    elif weights_only is None:
        message = f"{name} without weights_only=True unpickles the checkpoint on PyTorch < 2.6"
        emitter.emit(CODE_TORCH_LOAD, call, message, evidence, Severity.MEDIUM)
    else:
        message = f"{name} with weights_only decided at run time"
        emitter.emit(
            CODE_TORCH_LOAD,
            call,
            message,
            {**evidence, "weights_only": emitter.text(weights_only)},
            Severity.MEDIUM,
        )


def _check_yaml(emitter: _Emitter, call: ast.Call, name: str, names: dict[str, str], evidence: dict[str, str]) -> None:
    table = _table()
    if name in table.yaml_unsafe:
        emitter.emit(CODE_YAML_UNSAFE, call, f"{name} builds arbitrary Python objects", evidence)
        return
    if name in table.yaml_full:
        emitter.emit(CODE_YAML_UNSAFE, call, f"{name} uses FullLoader", evidence, Severity.LOW)
        return
    loader = _keyword(call, "Loader") or (call.args[1] if len(call.args) >= 2 else None)
    if loader is None:
        message = f"{name} without Loader= used the unsafe loader before PyYAML 5.1"
        emitter.emit(CODE_YAML_UNSAFE, call, message, evidence, Severity.MEDIUM)
        return
    loader_name = _qualified(loader, names)
    short = loader_name.rsplit(".", 1)[-1] if loader_name else ""
    evidence = {**evidence, "loader": loader_name or emitter.text(loader)}
    if short in table.yaml_safe_classes:
        return
    if short in table.yaml_full_classes:
        emitter.emit(CODE_YAML_UNSAFE, call, f"{name} with {short}", evidence, Severity.LOW)
    elif short in ("Loader", "UnsafeLoader", "CLoader", "CUnsafeLoader"):
        emitter.emit(CODE_YAML_UNSAFE, call, f"{name} with {short} builds arbitrary Python objects", evidence)
    else:
        message = f"{name} with a loader that cannot be checked statically"
        emitter.emit(CODE_YAML_UNSAFE, call, message, evidence, Severity.MEDIUM)


def _weights_only_fallbacks(parsed: _Parsed) -> set[int]:
    """Ids of torch.load(weights_only=False) calls in the handler of a try whose body loads safely."""
    torch_loaders = _table().torch_loaders
    safe: set[int] = set()
    unsafe: list[ast.Call] = []
    for node in parsed.nodes:
        if isinstance(node, ast.Call) and _qualified(node.func, parsed.names) in torch_loaders:
            weights_only = _keyword(node, "weights_only")
            if _is_constant(weights_only, True):
                safe.add(id(node))
            elif _is_constant(weights_only, False):
                unsafe.append(node)
    if not safe or not unsafe:  # the usual case: no try statement needs a second look
        return set()
    found: set[int] = set()
    for node in parsed.nodes:
        if isinstance(node, ast.Try | ast.TryStar) and any(id(n) in safe for n in _walk_all(node.body)):
            found.update(id(n) for n in _walk_all(node.handlers) if isinstance(n, ast.Call))
    return {id(call) for call in unsafe} & found


def _walk_all(statements: list[Any]) -> Iterator[ast.AST]:
    for statement in statements:
        yield from ast.walk(statement)


def _check_assignment(emitter: _Emitter, node: ast.Assign | ast.AnnAssign, names: dict[str, str]) -> None:
    if node.value is None:
        return
    targets = node.targets if isinstance(node, ast.Assign) else [node.target]
    for target in targets:
        if isinstance(target, ast.Name):
            _check_credential(emitter, node, target.id, node.value, target.id)
        elif isinstance(target, ast.Subscript) and _qualified(target.value, names) == "os.environ":
            key = _constant_str(target.slice)
            _check_credential(emitter, node, key, node.value, f"os.environ[{key!r}]")


def _check_address_call(emitter: _Emitter, call: ast.Call, name: str, platform: str) -> None:
    uris = [keyword.value for keyword in call.keywords if keyword.arg and keyword.arg.endswith("uri")]
    for argument in call.args[:1] + uris:
        _check_address(emitter, call, platform, argument, f"{name}()")


def _check_address(emitter: _Emitter, node: ast.expr | ast.stmt, platform: str, value: ast.expr, where: str) -> None:
    address = _constant_str(value)
    if address and "://" in address:
        evidence = {"platform": platform, "address": address[:200]}
        emitter.emit(CODE_PLATFORM_ADDRESS, node, f"{where} points the {platform} client at {address[:200]}", evidence)


def _check_credential(
    emitter: _Emitter,
    node: ast.expr | ast.stmt,
    key: str | None,
    value: ast.expr,
    where: str,
    always: bool = False,  # the place itself says it is a credential (a login call's argument)
) -> None:
    if key is not None and key.upper() in _table().address_variables:
        _check_address(emitter, node, _table().address_variables[key.upper()], value, where)
    secret = _constant_str(value)
    if key is None or secret is None or not (always or key.upper() in _table().credential_names):
        return
    lowered = secret.lower()
    if len(secret) < _MIN_SECRET_CHARS or any(hint in lowered for hint in _PLACEHOLDER_HINTS) or " " in secret:
        return
    emitter.credentials.add(secret)
    emitter.emit(
        CODE_HARDCODED_CREDENTIAL,
        node,
        f"{key if always else key.upper()} is set to a literal value in {where}",
        {"variable": key, "value": secrets.redact(secret)},
    )


# ------------------------------------------------------------ capabilities of a script


def capabilities_of(parsed: _Parsed | None) -> dict[str, list[str]]:
    """What a parsed script imports and which process, network, file-system and code-evaluation calls it makes.

    Keys: imports, process, network, filesystem, code, and unparsed (why the text could not be read, empty
    when it could; ``parsed`` is None for text that is not Python 3). Each list holds distinct qualified
    names in order of first appearance.
    """
    if parsed is None:
        return _no_capabilities("not valid Python 3")
    result = _no_capabilities(None)
    kinds = ast.Import | ast.ImportFrom | ast.Call | ast.Attribute | ast.Name
    # Prefixes of longer names (urllib.request in urllib.request.urlopen) and called names are no references.
    inner = {id(n.value) for n in parsed.nodes if isinstance(n, ast.Attribute)}
    inner |= {id(n.func) for n in parsed.nodes if isinstance(n, ast.Call)}
    relevant = [
        node
        for node in parsed.nodes
        if isinstance(node, kinds) and not (isinstance(node, ast.Attribute | ast.Name) and id(node) in inner)
    ]
    for node in sorted(relevant, key=lambda node: (node.lineno, node.col_offset)):  # source order
        if isinstance(node, ast.Import):
            for alias in node.names:
                _add(result["imports"], alias.name)
        elif isinstance(node, ast.ImportFrom):
            _add(result["imports"], "." * node.level + (node.module or ""))
        elif isinstance(node, ast.Call):
            _classify_call(result, node, parsed.names)
        elif isinstance(node.ctx, ast.Load):
            # A reference runs as surely as a call: map(os.system, commands), Thread(target=os.system),
            # run = subprocess.run. Calls are classified above (open's mode needs the call).
            name = _qualified(node, parsed.names)
            if name is not None and name not in ("open", "io.open", "builtins.open"):
                _classify_name(result, name)
    return result


def _no_capabilities(unparsed: str | None) -> dict[str, list[str]]:
    result: dict[str, list[str]] = {key: [] for key in ("imports", "process", "network", "filesystem", "code")}
    result["unparsed"] = [] if unparsed is None else [unparsed]
    return result


def dataset_builders(parsed: _Parsed | None) -> list[str]:
    """Classes deriving from a Hugging Face datasets builder: what makes a file a loading script by content."""
    if parsed is None:
        return []
    bases = _table().dataset_builder_bases
    return [
        node.name
        for node in parsed.nodes
        if isinstance(node, ast.ClassDef) and any(_qualified(base, parsed.names) in bases for base in node.bases)
    ]


def _classify_call(result: dict[str, list[str]], call: ast.Call, names: dict[str, str]) -> None:
    table = _table()
    name = _qualified(call.func, names)
    if name is None:
        if isinstance(call.func, ast.Attribute) and call.func.attr in table.filesystem_methods:
            _add(result["filesystem"], f"*.{call.func.attr}")
        return
    if name == "open" or name in ("io.open", "builtins.open"):
        mode = _keyword(call, "mode") or (call.args[1] if len(call.args) >= 2 else None)
        mode_text = _constant_str(mode) if mode is not None else "r"
        if mode_text is None or any(flag in mode_text for flag in "wax+"):
            _add(result["filesystem"], f"{name}(mode={mode_text if mode_text is not None else '?'})")
        return
    _classify_name(result, name)


def _classify_name(result: dict[str, list[str]], name: str) -> None:
    table = _table()
    for kind, patterns in table.capabilities.items():
        if any(_matches(name, pattern) for pattern in patterns):
            _add(result[kind], name)
            return
    if name.rsplit(".", 1)[-1] in table.filesystem_methods and "." in name:
        _add(result["filesystem"], name)


def _matches(name: str, pattern: str) -> bool:
    return name.startswith(pattern[:-1]) if pattern.endswith("*") else name == pattern


def _add(names: list[str], name: str) -> None:
    if name not in names and len(names) < MAX_CAPABILITY_NAMES:
        names.append(name)


# ------------------------------------------------------------ file analyzer


def detect(head: bytes, name: str) -> bool:
    """A ``.py`` file whose start is text: Python has no magic bytes, so the name decides."""
    if not name.lower().endswith(".py") or b"\x00" in head:
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.start >= len(head) - 3  # a multi-byte character cut by the end of the head
    return True


def analyze(ctx: ScanContext, item: Item) -> None:
    # Generated sources (protobuf modules, vendored libraries) pass the limit: a note, unless the file
    # sits where a dataset loader would run it unchecked.
    severity = None if dataset_folder.LAYOUT in item.layouts else Severity.LOW
    data = ctx.read_all(item, MAX_SOURCE_BYTES, "Python source", severity)
    source = "" if data is None else data.decode("utf-8", "replace")
    checked = check_source(source, item.location)
    builders = dataset_builders(checked.parsed)
    role = dataset_script.script_role(item, builders)
    ctx.record(item, "python-source" if role is None else "dataset-script")
    for finding in checked.findings:
        ctx.report(finding)
    if role is not None:
        capabilities = capabilities_of(checked.parsed) if data is not None else _no_capabilities("too large")
        ctx.report(dataset_script.loading_script_finding(item.location, role, capabilities, builders))
    accept = functools.partial(inline_suppressed, source=source)
    secrets.report_secrets(ctx, item.location, source, {}, checked.credentials, accept)


FORMATS = (Format("python-source", "other", "Python source", "source", handler=analyze, detect=detect, order=410),)
