"""Judge a Keras config: the Python code it carries and the callables it makes the loader resolve.

Keras rebuilds a model from JSON, resolving every {"module", "class_name", "config", "registered_name"}
object to a class or function and calling it. Lambda layers carry marshalled Python bytecode that runs
when the model is built; other objects can name modules outside Keras (imported by Keras 3 before 3.9,
CVE-2025-1550) or Keras functions that reach files or switch safe mode off (CVE-2025-8747, CVE-2025-9906).
Shared by legacy H5 files (model_config, training_config) and .keras archives (config.json).
"""

from __future__ import annotations

import base64
import binascii
import functools
import io
import json
from typing import NamedTuple

from .. import rules
from ..context import Item, ScanContext
from ..core import AttackClass, Capability, ParseError, Rule, Severity
from ..data import load_toml
from ..limits import LimitExceeded
from ..parsers import pymarshal

KERAS_LAMBDA = Rule(
    id="MLO130",
    name="keras-lambda-layer",
    title="Keras Lambda layer carries Python code",
    severity=Severity.HIGH,
    attack_class=AttackClass.MALICIOUS_MODEL,
    capability=Capability.CODE_EXECUTION,
    description=(
        "A Lambda layer stores marshalled Python bytecode that Keras rebuilds and runs when the model is "
        "loaded or called. Legacy H5 loading runs it without asking; safe_mode has been bypassed repeatedly "
        "(CVE-2024-3660, CVE-2025-1550, CVE-2025-8747). Critical when the code names processes, files, "
        "the network or eval."
    ),
    remediation=(
        rules.DO_NOT_LOAD + "Rebuild the model with the Lambda replaced by a registered custom layer from your own "
        "reviewed code, and save it in the .keras format."
    ),
    summary=(
        "A Keras Lambda layer carries Python bytecode; critical when it names process, file, network or eval "
        "primitives."
    ),
    severities="high, critical",
)
KERAS_FOREIGN_OBJECT = Rule(
    id="MLO131",
    name="keras-foreign-reference",
    title="Keras config names a module or class outside Keras",
    severity=Severity.HIGH,
    attack_class=AttackClass.MALICIOUS_MODEL,
    capability=Capability.CODE_EXECUTION,
    description=(
        "Deserializing a Keras config imports the named module and calls the named object. Layers, losses, "
        "metrics, initializers and activations from outside the Keras and TensorFlow namespaces run whatever "
        "code that module holds; this is how safe_mode was bypassed (CVE-2025-1550)."
    ),
    remediation=(
        "Check that the module is your own reviewed code, installed on every loading machine; otherwise do "
        "not load the file."
    ),
    summary=(
        "A Keras config names a module or class outside Keras/TensorFlow (critical for known primitives, medium for "
        "bare custom names)."
    ),
)
KERAS_DANGEROUS_FUNCTION = Rule(
    id="MLO132",
    name="keras-dangerous-function",
    title="Keras config calls a function that touches files, the network or safety settings",
    severity=Severity.CRITICAL,
    attack_class=AttackClass.MALICIOUS_MODEL,
    capability=Capability.CODE_EXECUTION,
    description=(
        "The config references a function inside the allowed namespaces that downloads, reads or writes "
        "files, or switches off safe deserialization (keras.utils.get_file in CVE-2025-8747). Loading the "
        "model calls it with attacker-chosen arguments."
    ),
    remediation=rules.DO_NOT_LOAD,
    summary=(
        "A Keras function that downloads, reads or writes files, or disables safe mode (`get_file`, "
        "`enable_unsafe_deserialization`)."
    ),
)


MAX_CONFIG_BYTES = 64 << 20
MAX_EVIDENCE = 400  # characters of names or constants quoted in a finding
TIME_CHECK_EVERY = 4096  # containers walked between time checks

# Serialized values that are data, not callables: tensors, numpy arrays, bytes, slices, tuples.
DATA_OBJECTS = frozenset(
    {
        "__keras_tensor__",
        "__tensor__",
        "__numpy__",
        "__bytes__",
        "__ellipsis__",
        "__slice__",
        "__tuple__",
        "TensorShape",
    }
)


class ConfigError(ParseError):
    """The config is not JSON Keras could read."""


class _Lists(NamedTuple):
    allowed: tuple[str, ...]
    registered_packages: frozenset[str]
    functions: dict[str, str]
    modules: dict[str, str]
    tf_api: tuple[str, ...]
    file_arguments: dict[str, str]
    primitives: frozenset[str]
    keras_functions: frozenset[str]
    class_names: frozenset[str]


@functools.cache
def _lists() -> _Lists:
    data = load_toml("keras.toml")
    return _Lists(
        allowed=tuple(data["namespaces"]["allowed"]),
        registered_packages=frozenset(data["namespaces"]["registered_packages"]),
        functions=dict(data["dangerous"]["functions"]),
        modules=dict(data["dangerous"]["modules"]),
        tf_api=tuple(data["dangerous"]["tf_api"]["prefixes"]),
        file_arguments=dict(data["file_arguments"]),
        primitives=frozenset(data["lambda"]["primitives"]),
        keras_functions=frozenset(data["builtins"]["keras_functions"]),
        class_names=frozenset(data["legacy"]["class_names"]),
    )


def parse(text: str | bytes) -> object:
    """The config as Keras' json.loads reads it; ConfigError when Keras could not."""
    if len(text) > MAX_CONFIG_BYTES:
        raise LimitExceeded(f"Keras config larger than {MAX_CONFIG_BYTES} bytes")
    try:
        return json.loads(text)
    except RecursionError:
        raise ConfigError("nested too deeply to parse") from None
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, over-long integers
        raise ConfigError(str(exc)[:200]) from None


def judge(ctx: ScanContext, item: Item, config: object, source: str) -> None:
    """Report Lambda code, foreign references and dangerous Keras functions anywhere in ``config``."""
    _Judge(ctx, item, source).walk(config)


def _in_namespace(module: str, namespaces: tuple[str, ...]) -> bool:
    return any(module == space or module.startswith(space + ".") for space in namespaces)


def _clip(values: list[str] | tuple[str, ...], quote: bool = False) -> str:
    text = ", ".join(repr(v) if quote else v for v in values)
    return text if len(text) <= MAX_EVIDENCE else text[:MAX_EVIDENCE] + "..."


def _function_bytes(code: str) -> bytes:
    """The marshalled bytes, decoded the way Keras' func_load does: base64, else raw_unicode_escape."""
    try:
        return binascii.a2b_base64(code.encode("ascii"))
    except (UnicodeEncodeError, binascii.Error):
        return code.encode("raw_unicode_escape")


class _Judge:
    def __init__(self, ctx: ScanContext, item: Item, source: str) -> None:
        self.ctx = ctx
        self.item = item
        self.source = source
        self.lists = _lists()

    def walk(self, config: object) -> None:
        """Every Keras object in the tree, with its path and the nearest named object around it."""
        pending: list[tuple[object, str, str]] = [(config, "", "")]
        walked = 0
        while pending:
            node, path, owner = pending.pop()
            walked += 1
            if walked % TIME_CHECK_EVERY == 0:
                self.ctx.budget.check_time()
            if isinstance(node, dict):
                if isinstance(node.get("class_name"), str):
                    owner = self.keras_object(node, path, owner)
                children: list[tuple[object, str, str]] = [
                    (value, f"{path}.{key}" if path else str(key), owner) for key, value in node.items()
                ]
            elif isinstance(node, list):
                children = [(value, f"{path}[{i}]", owner) for i, value in enumerate(node)]
            else:  # a bare value at the top: nothing below it
                continue
            pending.extend(child for child in reversed(children) if isinstance(child[0], (dict, list)))

    # ------------------------------------------------------------------ one object

    def keras_object(self, node: dict, path: str, owner: str) -> str:
        """Judge one object; return how to name it to the objects nested in it."""
        class_name: str = node["class_name"]
        inner = node.get("config")
        settings = inner if isinstance(inner, dict) else {}
        name = settings.get("name") if isinstance(settings.get("name"), str) else None
        evidence = {"config": self.source, "path": path or "(root)", "class_name": class_name}
        if name:
            evidence["name"] = name
        elif owner:
            evidence["inside"] = owner
        if class_name == "__lambda__":
            code = settings.get("code", settings.get("value"))
            self.lambda_code(code, evidence)
        elif class_name not in DATA_OBJECTS:
            self.callable_object(node, settings, path, evidence)
        return f"{class_name} {name!r}" if name else owner

    def callable_object(self, node: dict, settings: dict, path: str, evidence: dict[str, str]) -> None:
        class_name = evidence["class_name"]
        if class_name == "Lambda":
            self.legacy_lambda(settings, evidence)
        if class_name in ("TFOpLambda", "SlicingOpLambda"):
            self.tf_api(settings.get("function"), evidence)
        if class_name == "TorchModuleWrapper" and isinstance(settings.get("module"), str):
            self.torch_module(settings["module"], path, evidence)
        argument = self.lists.file_arguments.get(class_name)
        if argument and isinstance(settings.get(argument), str):
            self.report_file_argument(argument, settings[argument], evidence)
        self.reference(node, class_name, evidence)

    def reference(self, node: dict, class_name: str, evidence: dict[str, str]) -> None:
        """Where the loader resolves this object from, and whether that is Keras."""
        inner = node.get("config")
        symbol = inner if class_name == "function" and isinstance(inner, str) else class_name
        if class_name == "__typespec__" and isinstance(node.get("spec_name"), str):
            symbol = node["spec_name"]
        module = node.get("module") if isinstance(node.get("module"), str) else None
        registered = node.get("registered_name") if isinstance(node.get("registered_name"), str) else None
        evidence = {**evidence, "symbol": symbol}
        if module is not None:
            evidence["module"] = module
        if registered is not None:
            evidence["registered_name"] = registered
        keras_builtin = module == "builtins" and class_name == "function" and symbol in self.lists.keras_functions
        if module is None:
            if not self.known_class(symbol):
                self.report_foreign(symbol, None, evidence, imported=False)
            elif registered and ">" in registered and not self.known_registered(registered):
                self.report_foreign(registered, None, evidence, imported=False)
        elif not keras_builtin and (module == "builtins" or not _in_namespace(module, self.lists.allowed)):
            self.report_foreign(symbol, module, evidence, imported=True)
            return
        elif registered and ">" in registered and not self.known_registered(registered):
            self.report_foreign(registered, module, evidence, imported=False)
        if not keras_builtin:
            self.check_dangerous(module, symbol, evidence)

    def known_class(self, name: str) -> bool:
        return name in self.lists.class_names or (">" in name and self.known_registered(name))

    def known_registered(self, registered: str) -> bool:
        package, _, name = registered.partition(">")
        if package == "Custom":
            return name in self.lists.class_names
        return package in self.lists.registered_packages

    def is_primitive(self, module: str | None, symbol: str) -> bool:
        parts = {symbol, *(module.split(".") if module else ())}
        return not parts.isdisjoint(self.lists.primitives)

    # ------------------------------------------------------------------ findings

    def label(self, evidence: dict[str, str]) -> str:
        what = "a Python lambda" if evidence["class_name"] == "__lambda__" else evidence["class_name"]
        if "name" in evidence:
            return f"{what} {evidence['name']!r}"
        if "inside" in evidence:
            return f"{what} in {evidence['inside']}"
        return f"{what} at {evidence['path']}"

    def report_foreign(self, symbol: str, module: str | None, evidence: dict[str, str], imported: bool) -> None:
        dotted = f"{module}.{symbol}" if module else symbol
        if self.is_primitive(module, symbol):
            severity = Severity.CRITICAL
        else:
            severity = Severity.HIGH if imported else Severity.MEDIUM
        how = (
            "the loader imports that module to rebuild the model"
            if imported
            else "it resolves only to a custom object that the loading code registers"
        )
        message = f"{self.label(evidence)} names {dotted}, outside Keras: {how}"
        self.ctx.report(KERAS_FOREIGN_OBJECT.finding(self.item.location, message, evidence, severity=severity))

    def check_dangerous(self, module: str | None, symbol: str, evidence: dict[str, str]) -> None:
        why = self.lists.functions.get(symbol)
        if why is None and module is not None:
            why = next((why for space, why in self.lists.modules.items() if _in_namespace(module, (space,))), None)
        if why is None:
            return
        dotted = f"{module}.{symbol}" if module else symbol
        message = f"{self.label(evidence)} references {dotted}, which {why}"
        self.ctx.report(KERAS_DANGEROUS_FUNCTION.finding(self.item.location, message, evidence))

    def tf_api(self, function: object, evidence: dict[str, str]) -> None:
        if not isinstance(function, str):
            return
        for prefix in self.lists.tf_api:
            if function == prefix.rstrip(".") or function.startswith(prefix if prefix.endswith(".") else prefix + "."):
                message = f"{self.label(evidence)} calls tf.{function}, which reaches files or Python callables"
                evidence = {**evidence, "function": f"tf.{function}"}
                self.ctx.report(KERAS_DANGEROUS_FUNCTION.finding(self.item.location, message, evidence))
                return

    def report_file_argument(self, argument: str, value: str, evidence: dict[str, str]) -> None:
        message = f"{self.label(evidence)} reads {value!r} (its {argument!r}) when the model is rebuilt"
        evidence = {**evidence, "argument": argument, "value": value[:MAX_EVIDENCE]}
        finding = KERAS_DANGEROUS_FUNCTION.finding(
            self.item.location, message, evidence, severity=Severity.HIGH, capability=Capability.FILE_ACCESS
        )
        self.ctx.report(finding)

    # ------------------------------------------------------------------ code

    def legacy_lambda(self, settings: dict, evidence: dict[str, str]) -> None:
        """tf.keras 2 Lambda: the code (function_type "lambda") or a function name and its module."""
        for field, kind_key, module_key in (
            ("function", "function_type", "module"),
            ("output_shape", "output_shape_type", "output_shape_module"),
        ):
            kind, value = settings.get(kind_key), settings.get(field)
            module = settings.get(module_key) if isinstance(settings.get(module_key), str) else None
            where = {**evidence, "field": field}
            if kind == "lambda":
                self.lambda_code(value, where, module)
            elif kind == "function" and isinstance(value, str) and module:
                where["module"] = module
                if _in_namespace(module, self.lists.allowed):
                    self.check_dangerous(module, value, where)
                else:
                    self.report_foreign(value, module, where, imported=False)

    def lambda_code(self, code: object, evidence: dict[str, str], module: str | None = None) -> None:
        if isinstance(code, list) and code:
            code = code[0]  # [code, defaults, closure], as func_dump returned it
        decoded = pymarshal.code_strings(_function_bytes(code)) if isinstance(code, str) else []
        names = list(dict.fromkeys(n for result in decoded for n in result.names))
        constants = list(dict.fromkeys(c for result in decoded for c in result.constants))
        hits = sorted({text for text in (*names, *constants) if text in self.lists.primitives})
        if module and self.is_primitive(module, ""):
            hits.append(f"module {module}")
        evidence = dict(evidence)
        if names:
            evidence["names"] = _clip(names)
        if constants:
            evidence["constants"] = _clip(constants, quote=True)
        if module:
            evidence["module"] = module
        if decoded:
            evidence["python"] = ", ".join(result.layout for result in decoded)
        if hits:
            evidence["dangerous"] = ", ".join(hits)
            what = f"that uses {', '.join(hits)}"
        elif decoded:
            what = f"(names used: {_clip(names) or 'none'})"
        else:
            what = "that mloops could not decode"
        message = f"{self.label(evidence)} carries Python bytecode {what}; it runs when the model is built"
        severity = Severity.CRITICAL if hits else Severity.HIGH
        self.ctx.report(KERAS_LAMBDA.finding(self.item.location, message, evidence, severity=severity))

    def torch_module(self, encoded: str, path: str, evidence: dict[str, str]) -> None:
        """TorchModuleWrapper keeps a whole torch.save() archive, base64, in its config: scan it as such."""
        if len(encoded) > self.ctx.limits.max_nested_bytes:
            raise LimitExceeded(f"TorchModuleWrapper payload larger than {self.ctx.limits.max_nested_bytes} bytes")
        try:
            raw = base64.b64decode(encoded.encode("ascii"))
        except (UnicodeEncodeError, binascii.Error) as exc:
            message = f"{self.label(evidence)}: the pickled torch module is not base64 ({exc})"
            self.ctx.report(rules.MALFORMED.finding(self.item.location, message, evidence))
            return
        member = f"{path}.module" if path else "module"
        self.ctx.scan(self.item.child(io.BytesIO(raw), member, len(raw), name="nested"))
