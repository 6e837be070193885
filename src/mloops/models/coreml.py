"""Apple Core ML models: a ``Model`` protobuf (``.mlmodel``, or ``Data/com.apple.CoreML/model.mlmodel`` inside
an ``.mlpackage`` folder) and the package's ``Manifest.json``.

Core ML runs no Python: neural networks, tree ensembles, GLMs, pipelines and ML programs run on Apple's
own kernels. Native code enters only where the model names it: a ``customModel`` or a neural network's
``custom`` layer names an Objective-C/Swift class that Core ML instantiates from the application. Files
enter where the model names a path: a package manifest's item paths, an ML program's weight blob files and
a linked model's file name, which are read relative to the model unless they are absolute or climb out.
Field numbers are those of Apple's published Model.proto, NeuralNetwork.proto and MIL.proto.
"""

from __future__ import annotations

import json
import posixpath
import re
from typing import Any

from .. import rules
from ..context import Item, ScanContext
from ..core import AttackClass, Capability, Rule, Severity
from ..limits import LimitExceeded, MiB
from ..parsers import protobuf
from ..parsers.protobuf import LEN, VARINT, DecodeError, Field, Message
from ..registry import Format

CUSTOM_MODEL = Rule(
    id="MLO135",
    name="coreml-custom-model",
    title="Core ML model is a custom model: native code the application supplies runs it",
    severity=Severity.HIGH,
    attack_class=AttackClass.MALICIOUS_MODEL,
    capability=Capability.CODE_EXECUTION,
    description=(
        "A Core ML customModel holds no computation of its own: it names a class (className) that Core ML "
        "instantiates from the loading application and hands the model's parameters. Whatever that native "
        "class does with the file's parameters runs in the application; the model is only as safe as the class."
    ),
    remediation=(
        "Load the model only in an application whose custom model class you wrote or reviewed, and only when "
        "you expected a custom model; otherwise ask for a model built from standard Core ML types."
    ),
    summary="A Core ML `customModel` names a native class the application must supply; Core ML runs it.",
)
CUSTOM_LAYER = Rule(
    id="MLO136",
    name="coreml-custom-layer",
    title="Core ML neural network has custom layers: native code the application supplies runs them",
    severity=Severity.HIGH,
    attack_class=AttackClass.MALICIOUS_MODEL,
    capability=Capability.CODE_EXECUTION,
    description=(
        "A neural network layer of type custom (CustomLayerParams) names a class that Core ML instantiates "
        "from the application to evaluate the layer, with weights and parameters from the file. Standard "
        "layers run on Core ML's own kernels; custom ones run native code outside Core ML."
    ),
    remediation=(
        "Check that each class name is an implementation you wrote or reviewed and that ships with the app; "
        "otherwise convert the model without custom layers."
    ),
    summary="A Core ML neural network layer (in any network, branch, loop or pipeline stage) is a custom layer "
    "naming native code.",
)
PATH_ESCAPE = Rule(
    id="MLO137",
    name="coreml-path-escape",
    title="Core ML model or package names a file outside itself",
    severity=Severity.HIGH,
    attack_class=AttackClass.MALICIOUS_MODEL,
    capability=Capability.FILE_ACCESS,
    description=(
        "An .mlpackage manifest's item path, an ML program's weight file (blobFileValue) or a linked model's "
        "file name is absolute or climbs out of the model with '..'. Loading the model reads that file as "
        "model data: local files leak into the model's weights and outputs, or loading fails in ways an "
        "attacker chooses. coremltools writes only paths inside the package (@model_path/weights/...)."
    ),
    remediation="Do not load the model. Rebuild the package so that every item and weight file sits inside it.",
    summary="An .mlpackage manifest path, ML program weight file or linked model path is absolute or climbs out "
    "with `..` (medium when it stays inside the package but leaves its place).",
    severities="medium, high",
)
UNKNOWN_TYPE = Rule(
    id="MLO138",
    name="coreml-unknown-model-type",
    title="Core ML model type unknown to mloops or opaque",
    severity=Severity.MEDIUM,
    attack_class=AttackClass.MALICIOUS_MODEL,
    capability=Capability.SCANNER_EVASION,
    description=(
        "The Model message holds a field, or a model type, that Apple's published specification used by "
        "mloops does not define, or a serializedModel whose bytes only a private Apple framework reads. "
        "mloops cannot tell whether it names native code or files."
    ),
    remediation=(
        "Inspect the model with coremltools (coremltools.utils.load_spec, without compiling it) on a machine "
        "without secrets, or ask for a model built from documented types."
    ),
    summary="A Core ML model type or field mloops does not know, or an opaque `serializedModel`, goes unchecked.",
)
LINKED_MODEL = Rule(
    id="MLO139",
    name="coreml-linked-model",
    title="Core ML model loads another compiled model at run time",
    severity=Severity.LOW,
    attack_class=AttackClass.MALICIOUS_MODEL,
    capability=Capability.FILE_ACCESS,
    description=(
        "A linkedModel holds no computation: Core ML loads the named compiled model (.mlmodelc) from the "
        "search path when the model is loaded. What that model does is not in this file."
    ),
    remediation="Scan the linked model as well, and ship it with the application rather than finding it at run time.",
    summary="A Core ML `linkedModel` loads another compiled model at run time; scan that model too.",
)

MAX_SPEC_VERSION = 64  # Core ML 8 (iOS 18) writes 9: far beyond is not a Core ML model
MAX_PIPELINE_DEPTH = 16  # pipelines of pipelines; converters write one or two levels
MAX_NETWORK_DEPTH = 32  # branch and loop layers nested in each other
MAX_DISTINCT = 10_000  # custom layer classes or weight files kept to report; converters write one or two
MAX_MANIFEST_BYTES = 4 * MiB  # coremltools writes a few hundred bytes
MAX_TEXT = 1024  # class names and paths longer than this are cut in messages
HEAD_BYTES = 64 * 1024
MANIFEST = "Manifest.json"
MODEL_PATH = "@model_path/"  # how an ML program's weight paths say "inside the package"

# Model fields (Model.proto) other than its model type.
SPEC_VERSION, DESCRIPTION, IS_UPDATABLE = 1, 2, 10
FIRST_TYPE = 200  # the model type oneof starts at field 200
# The model type oneof: field number -> name.
MODEL_TYPES = {
    200: "pipelineClassifier",
    201: "pipelineRegressor",
    202: "pipeline",
    300: "glmRegressor",
    301: "supportVectorRegressor",
    302: "treeEnsembleRegressor",
    303: "neuralNetworkRegressor",
    304: "bayesianProbitRegressor",
    400: "glmClassifier",
    401: "supportVectorClassifier",
    402: "treeEnsembleClassifier",
    403: "neuralNetworkClassifier",
    404: "kNearestNeighborsClassifier",
    500: "neuralNetwork",
    501: "itemSimilarityRecommender",
    502: "mlProgram",
    555: "customModel",
    556: "linkedModel",
    560: "classConfidenceThresholding",
    600: "oneHotEncoder",
    601: "imputer",
    602: "featureVectorizer",
    603: "dictVectorizer",
    604: "scaler",
    606: "categoricalMapping",
    607: "normalizer",
    609: "arrayFeatureExtractor",
    610: "nonMaximumSuppression",
    900: "identity",
    2000: "textClassifier",
    2001: "wordTagger",
    2002: "visionFeaturePrint",
    2003: "soundAnalysisPreprocessing",
    2004: "gazetteer",
    2005: "wordEmbedding",
    2006: "audioFeaturePrint",
    3000: "serializedModel",
}
PIPELINE_WRAPPERS = frozenset({200, 201})  # PipelineClassifier/Regressor: pipeline = 1
PIPELINE = 202  # Pipeline: models = 1
NEURAL_NETWORKS = frozenset({303, 403, 500})  # each: layers = 1
ML_PROGRAM, CUSTOM, LINKED, SERIALIZED = 502, 555, 556, 3000
# ModelDescription fields: input, output, predictedFeatureName, predictedProbabilitiesName, state,
# functions, defaultFunctionName, trainingInput, metadata (all length-delimited).
_DESCRIPTION_FIELDS = frozenset({1, 10, 11, 12, 13, 20, 21, 50, 100})
# NeuralNetworkLayer: name 1, custom 500, branch 605, loop 615; the nested networks of branch and loop.
LAYER_NAME, LAYER_CUSTOM, LAYER_BRANCH, LAYER_LOOP = 1, 500, 605, 615
_NESTED_NETWORKS = {
    LAYER_BRANCH: {1: "ifBranch", 2: "elseBranch"},
    LAYER_LOOP: {3: "conditionNetwork", 4: "bodyNetwork"},
}
# CustomModel and CustomLayerParams share className 10, parameters 30 (map entries: key 1), description 40.
CLASS_NAME, PARAMETERS, CLASS_DESCRIPTION = 10, 30, 40
_DRIVE = re.compile(r"[A-Za-z]:")


# --- detection ---


def detect(head: bytes, name: str) -> bool:
    """A Model message: specificationVersion first, then Model fields only. Protobuf has no magic, so a name
    other than .mlmodel also needs a known model type and a description that decodes as one."""
    fields, clean = protobuf.prefix_fields(head)
    if not clean or not fields:
        return False
    first = fields[0].field
    if first.number != SPEC_VERSION or first.wire != VARINT or not 1 <= first.value <= MAX_SPEC_VERSION:
        return False
    types: list[Field] = []
    for entry in fields[1:]:
        field = entry.field
        if field.number >= FIRST_TYPE:  # a type that is no message is for analysis to report
            types.append(field)
        elif (field.number, field.wire) not in ((DESCRIPTION, LEN), (IS_UPDATABLE, VARINT)):
            return False
    if _base_name(name).endswith(".mlmodel"):
        return True
    description = next((entry for entry in fields if entry.field.number == DESCRIPTION), None)
    if description is None or not any(field.number in MODEL_TYPES and field.wire == LEN for field in types):
        return False
    start = description.field.offset
    nested, clean = protobuf.prefix_fields(head[start : start + description.field.value], limit=16)
    return clean and all(e.field.number in _DESCRIPTION_FIELDS and e.field.wire == LEN for e in nested)


def detect_manifest(head: bytes, name: str) -> bool:
    """An .mlpackage's Manifest.json: the exact name, JSON text and the package's item table."""
    if _base_name(name) != MANIFEST.lower() or b"\x00" in head:
        return False
    return head.lstrip().startswith(b"{") and b'"itemInfoEntries"' in head


def _base_name(name: str) -> str:
    return name.replace("\\", "/").rsplit("/", 1)[-1].lower()


# --- the Model protobuf ---


def analyze(ctx: ScanContext, item: Item) -> None:
    ctx.record(item, "coreml")
    size = item.size if item.size is not None else item.stream.seek(0, 2)
    walker = _Walker(ctx, item)
    try:
        walker.model(Message.load(item.stream, size, ctx.budget.check_time), "Model", 0)
    except DecodeError as exc:
        message = f"Core ML protobuf is malformed or truncated: {exc.reason}; Core ML refuses the file"
        walker.report(rules.MALFORMED, exc.offset, message, {"offset": str(exc.offset)})
    finally:  # layers seen before a break or a limit are reported all the same
        walker.report_custom_layers()


class _CustomLayers:
    """The layers that name one class: how many, and where the first is."""

    __slots__ = ("count", "description", "layer", "offset", "where")

    def __init__(self, layer: str, where: str, offset: int, description: str) -> None:
        self.count = 0
        self.layer = layer
        self.where = where
        self.offset = offset
        self.description = description


class _Walker:
    """Walks a Model message: its model type, pipeline stages, network layers and ML program values."""

    def __init__(self, ctx: ScanContext, item: Item) -> None:
        self.ctx = ctx
        self.item = item
        self.custom_layers: dict[str, _CustomLayers] = {}
        self.blob_files: set[str] = set()

    def report(
        self, rule: Rule, offset: int, message: str, evidence: dict[str, str], severity: Severity | None = None
    ) -> None:
        self.ctx.report(rule.finding(self.item.location.at(offset), message, evidence, severity=severity))

    def model(self, msg: Message, where: str, depth: int) -> None:
        if depth > MAX_PIPELINE_DEPTH:
            raise LimitExceeded(f"Core ML pipelines nested deeper than {MAX_PIPELINE_DEPTH} levels")
        version: int | None = None
        types: list[Field] = []
        for field in msg.fields():
            if field.number in (SPEC_VERSION, IS_UPDATABLE, DESCRIPTION):
                if field.wire != (LEN if field.number == DESCRIPTION else VARINT):
                    raise DecodeError(f"{where} field {field.number} has wire type {field.wire}", field.offset)
                if field.number == SPEC_VERSION:
                    version = field.value
            elif field.number in MODEL_TYPES and field.wire != LEN:
                raise DecodeError(f"{where}.{MODEL_TYPES[field.number]} is not a message", field.offset)
            else:
                types.append(field)
        if depth == 0 and (version is None or not 1 <= version <= MAX_SPEC_VERSION):
            message = f"Core ML specificationVersion {version} is missing or out of range; Core ML refuses the model"
            self.report(rules.MALFORMED, msg.start, message, {"field": f"{where}.specificationVersion"})
        if not types:
            message = f"{where} has no model type; Core ML refuses a model without one"
            self.report(rules.MALFORMED, msg.start, message, {"field": where})
        for field in types:
            self.model_type(msg, field, where, depth)

    def model_type(self, msg: Message, field: Field, where: str, depth: int) -> None:
        number = field.number
        kind = MODEL_TYPES.get(number)
        if kind is None:
            self.unknown(field, where)
            return
        path = f"{where}.{kind}"
        if number in PIPELINE_WRAPPERS:
            for inner in _children(msg.child(field), 1):
                self.pipeline(inner, f"{path}.pipeline", depth)
        elif number == PIPELINE:
            self.pipeline(msg.child(field), path, depth)
        elif number in NEURAL_NETWORKS:
            self.network(msg.child(field), path, 0)
        elif number == CUSTOM:
            self.custom_model(msg.child(field), path)
        elif number == LINKED:
            self.linked_model(msg.child(field), path)
        elif number == ML_PROGRAM:
            _Program(self, msg.child(field), path).walk()
        elif number == SERIALIZED:
            identifier = _text_of(msg.child(field), 1)
            message = (
                f"{path} holds an opaque model for {identifier!r} that only a private Apple framework reads; "
                "mloops cannot check what it names"
            )
            self.report(UNKNOWN_TYPE, field.offset, message, {"field": path, "identifier": identifier})

    def unknown(self, field: Field, where: str) -> None:
        kind = "model type" if field.number >= FIRST_TYPE else "field"
        message = (
            f"{where} holds {kind} {field.number}, which Core ML's published specification does not define: "
            "mloops cannot check what it names"
        )
        evidence = {"field": f"{where}[{field.number}]", "wire_type": str(field.wire)}
        self.report(UNKNOWN_TYPE, field.offset, message, evidence)

    def pipeline(self, msg: Message, where: str, depth: int) -> None:
        """Pipeline: models 1 (each a whole Model), names 2."""
        index = 0
        for field in msg.fields():
            if field.number == 1 and field.wire == LEN:
                self.model(msg.child(field), f"{where}.models[{index}]", depth + 1)
                index += 1

    def network(self, msg: Message, where: str, depth: int) -> None:
        """NeuralNetwork, NeuralNetworkClassifier and NeuralNetworkRegressor all keep their layers in field 1."""
        if depth > MAX_NETWORK_DEPTH:
            raise LimitExceeded(f"Core ML branch and loop layers nested deeper than {MAX_NETWORK_DEPTH} levels")
        index = 0
        for field in msg.fields():
            if field.number == 1 and field.wire == LEN:
                self.layer(msg.child(field), f"{where}.layers[{index}]", depth)
                index += 1

    def layer(self, msg: Message, where: str, depth: int) -> None:
        name = ""
        for field in msg.fields():
            if field.wire != LEN:
                continue
            if field.number == LAYER_NAME:
                name = msg.text(field, MAX_TEXT)
            elif field.number == LAYER_CUSTOM:
                self.custom_layer(msg.child(field), name, where)
            elif field.number in _NESTED_NETWORKS:
                branches = _NESTED_NETWORKS[field.number]
                kind = "branch" if field.number == LAYER_BRANCH else "loop"
                inner = msg.child(field)
                for sub in inner.fields():
                    if sub.wire == LEN and sub.number in branches:
                        self.network(inner.child(sub), f"{where}.{kind}.{branches[sub.number]}", depth + 1)

    def custom_layer(self, msg: Message, layer: str, where: str) -> None:
        class_name = _text_of(msg, CLASS_NAME)
        use = self.custom_layers.get(class_name)
        if use is None:
            if len(self.custom_layers) >= MAX_DISTINCT:
                raise LimitExceeded(f"more than {MAX_DISTINCT} distinct Core ML custom layer classes")
            use = self.custom_layers[class_name] = _CustomLayers(
                layer, where, msg.start, _text_of(msg, CLASS_DESCRIPTION)
            )
        use.count += 1

    def report_custom_layers(self) -> None:
        for class_name, use in self.custom_layers.items():
            message = (
                f"custom layer class {class_name!r} ({use.count} layer(s), first {use.layer!r} at {use.where}): "
                "Core ML instantiates this class from the application to run the layer, that is native code"
            )
            evidence = {
                "class_name": class_name,
                "layers": str(use.count),
                "first_layer": use.layer,
                "field": f"{use.where}.custom.className",
                "description": use.description,
            }
            self.report(CUSTOM_LAYER, use.offset, message, evidence)

    def custom_model(self, msg: Message, where: str) -> None:
        class_name = _text_of(msg, CLASS_NAME)
        keys = [_text_of(entry, 1) for entry in _children(msg, PARAMETERS)]
        message = (
            f"{where} names class {class_name!r}: Core ML instantiates it from the application and hands it "
            f"the model's {len(keys)} parameter(s); the whole model is that native code"
        )
        evidence = {
            "class_name": class_name,
            "field": f"{where}.className",
            "description": _text_of(msg, CLASS_DESCRIPTION),
            "parameters": ", ".join(keys[:20]),
        }
        self.report(CUSTOM_MODEL, msg.start, message, evidence)

    def linked_model(self, msg: Message, where: str) -> None:
        """LinkedModel: linkedModelFile 1 (LinkedModelFile: fileName 1, searchPath 2, each a StringParameter)."""
        for linked in _children(msg, 1):
            values = {number: _text_of(param, 1) for number in (1, 2) for param in _children(linked, number)}
            file_name, search_path = values.get(1, ""), values.get(2, "")
            evidence = {"field": f"{where}.linkedModelFile", "file_name": file_name, "search_path": search_path}
            # The search path is a ':'-separated list; $BUNDLE_MAIN and the like name the app's own folders.
            escapes = [(p, _outside(p)) for p in [file_name, *search_path.split(":")] if p and _outside(p)]
            if escapes:
                path, problem = escapes[0]
                message = (
                    f"{where} loads the compiled model {file_name!r} from {search_path!r}: {path!r} {problem}, "
                    "so Core ML reads a model from outside the application"
                )
                self.report(PATH_ESCAPE, linked.start, message, evidence)
            else:
                message = f"{where} loads the compiled model {file_name!r} (search path {search_path!r}) at run time"
                self.report(LINKED_MODEL, linked.start, message, evidence)


class _Program:
    """An ML program (MIL.proto): functions, blocks and operations, down to each value's weight file."""

    def __init__(self, walker: _Walker, msg: Message, where: str) -> None:
        self.walker = walker
        self.msg = msg
        self.where = where

    def walk(self) -> None:
        """Program: functions 2 (map<string, Function>), attributes 4 (map<string, Value>)."""
        for entry in _children(self.msg, 2):
            name = _text_of(entry, 1)
            for function in _children(entry, 2):
                self.function(function, f"{self.where}.functions[{name!r}]")
        self.value_map(self.msg, 4, self.where)

    def function(self, msg: Message, where: str) -> None:
        """Function: block_specializations 3 (map<string, Block>), attributes 4."""
        for entry in _children(msg, 3):
            opset = _text_of(entry, 1)
            for block in _children(entry, 2):
                self.block(block, f"{where}[{opset!r}]", 0)
        self.value_map(msg, 4, where)

    def block(self, msg: Message, where: str, depth: int) -> None:
        """Block: operations 3, attributes 4; an operation's nested blocks (cond, while_loop) follow."""
        if depth > MAX_NETWORK_DEPTH:
            raise LimitExceeded(f"ML program blocks nested deeper than {MAX_NETWORK_DEPTH} levels")
        for index, operation in enumerate(_children(msg, 3)):
            self.operation(operation, f"{where}.operations[{index}]", depth)
        self.value_map(msg, 4, where)

    def operation(self, msg: Message, where: str, depth: int) -> None:
        """Operation: inputs 2 (map<string, Argument>), blocks 4, attributes 5 (map<string, Value>)."""
        for entry in _children(msg, 2):
            for argument in _children(entry, 2):
                for binding in _children(argument, 1):  # Argument.Binding: value 2
                    for value in _children(binding, 2):
                        self.value(value, f"{where}.inputs[{_text_of(entry, 1)!r}]")
        for index, block in enumerate(_children(msg, 4)):
            self.block(block, f"{where}.blocks[{index}]", depth + 1)
        self.value_map(msg, 5, where)

    def value_map(self, msg: Message, number: int, where: str) -> None:
        for entry in _children(msg, number):
            for value in _children(entry, 2):
                self.value(value, f"{where}.attributes[{_text_of(entry, 1)!r}]")

    def value(self, msg: Message, where: str) -> None:
        """Value: blobFileValue 5 (fileName 1, offset 2) names the file the weights are read from."""
        for blob in _children(msg, 5):
            file_name = _text_of(blob, 1)
            if file_name in self.walker.blob_files:
                continue
            if len(self.walker.blob_files) >= MAX_DISTINCT:
                raise LimitExceeded(f"more than {MAX_DISTINCT} distinct ML program weight files")
            self.walker.blob_files.add(file_name)
            self.judge_blob(blob, file_name, where)

    def judge_blob(self, blob: Message, file_name: str, where: str) -> None:
        problem = _outside(file_name.removeprefix(MODEL_PATH))
        inside = file_name.startswith(MODEL_PATH)
        if problem is None and inside:
            return
        evidence = {"file_name": file_name, "field": f"{where}.blobFileValue.fileName"}
        if problem is None:
            problem = f"is not under {MODEL_PATH}, so it is not read from the package"
            severity = Severity.MEDIUM
        else:
            severity = Severity.HIGH
        message = f"ML program weights at {where} are read from {file_name!r}, which {problem}"
        self.walker.report(PATH_ESCAPE, blob.start, message, evidence, severity=severity)


def _outside(path: str) -> str | None:
    """Why a relative path written into a model leaves the folder it is read from, or None when it stays."""
    if path.startswith(("/", "\\")) or _DRIVE.match(path):
        return "is absolute"
    if ".." in re.split(r"[/\\]", path):
        return "climbs out with '..'"
    return None


def _children(msg: Message, number: int) -> list[Message]:
    return [msg.child(field) for field in msg.fields() if field.number == number and field.wire == LEN]


def _text_of(msg: Message, number: int) -> str:
    """The last value of a string field (protobuf keeps the last), or ''."""
    text = ""
    for field in msg.fields():
        if field.number == number and field.wire == LEN:
            text = msg.text(field, MAX_TEXT)
    return text


# --- the .mlpackage manifest ---


def analyze_manifest(ctx: ScanContext, item: Item) -> None:
    """Manifest.json: itemInfoEntries {id: {path, name, author, description}} and rootModelIdentifier.
    Each path is read relative to the package's Data/ folder."""
    ctx.record(item, "coreml-manifest")
    data = ctx.read_all(item, MAX_MANIFEST_BYTES, "Core ML package manifest", severity=Severity.HIGH)
    if data is None:
        return
    try:
        manifest = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        _manifest_malformed(ctx, item, f"is not JSON ({exc})")
        return
    entries = manifest.get("itemInfoEntries") if isinstance(manifest, dict) else None
    if not isinstance(entries, dict):
        _manifest_malformed(ctx, item, "has no itemInfoEntries table")
        return
    for identifier, entry in entries.items():
        _check_entry(ctx, item, identifier, entry)
    root = manifest.get("rootModelIdentifier")
    if not isinstance(root, str) or root not in entries:
        _manifest_malformed(ctx, item, f"names root model {root!r}, which is no item of the package")


def _check_entry(ctx: ScanContext, item: Item, identifier: str, entry: Any) -> None:
    path = entry.get("path") if isinstance(entry, dict) else None
    field = f"itemInfoEntries[{identifier!r}].path"
    if not isinstance(path, str) or not path:
        _manifest_malformed(ctx, item, f"has no path for item {identifier!r}")
        return
    problem = _outside(path)
    if problem is None:
        return
    # Paths are relative to Data/: one '..' reaches the package root, more leave the package.
    normalized = posixpath.normpath(posixpath.join("Data", path.replace("\\", "/")))
    leaves = problem == "is absolute" or normalized == ".." or normalized.startswith("../")
    severity = Severity.HIGH if leaves else Severity.MEDIUM
    where = "outside the package" if leaves else "outside the package's Data folder"
    message = f"package item {identifier!r} is read from {path[:MAX_TEXT]!r}, which {problem}: {where}"
    evidence = {"field": field, "path": path[:MAX_TEXT], "name": str(entry.get("name", ""))[:MAX_TEXT]}
    ctx.report(PATH_ESCAPE.finding(item.location, message, evidence, severity=severity))


def _manifest_malformed(ctx: ScanContext, item: Item, problem: str) -> None:
    message = f"Core ML package manifest {problem}; Core ML refuses the package"
    ctx.report(rules.MALFORMED.finding(item.location, message, {"file": MANIFEST}))


FORMATS = (
    # After TensorFlow's .pb detector (110): a Core ML model is claimed by its own fields, never by a .pb name.
    Format("coreml", "safe", "Core ML model", handler=analyze, detect=detect, order=120, extensions=(".mlmodel",)),
    Format(
        "coreml-manifest",
        "other",
        "Core ML package manifest (.mlpackage Manifest.json)",
        handler=analyze_manifest,
        detect=detect_manifest,
        order=405,
    ),
)
