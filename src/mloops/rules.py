"""The rule catalog: every finding mloops can emit, with a stable id.

Ids are grouped by the attack surface they cover:
  MLO1xx  code that runs while a pickle-family model is loaded
  MLO2xx  model files and containers that are malformed or hide content
  MLO9xx  the scan itself could not finish (fail closed)
"""

from __future__ import annotations

from .core import AttackClass, Capability, Rule, Severity

_MODEL = AttackClass.MALICIOUS_MODEL
_RCE = Capability.CODE_EXECUTION
_EVADE = Capability.SCANNER_EVASION

_DO_NOT_LOAD = (
    "Do not load this file. Get the model from its original publisher, or ask for it in a format that "
    "cannot run code (safetensors, ONNX without custom ops). "
)

PICKLE_FORMAT = Rule(
    "MLO100",
    "pickle-based-format",
    "Pickle-based format: loading it executes code by design",
    Severity.INFO,
    _MODEL,
    _RCE,
    "Pickle, PyTorch, joblib, dill and NumPy object files are programs for the pickle virtual machine. "
    "No finding above this one means every callable the file reaches is on the reviewed allowlist, "
    "but the format itself stays unsafe to accept from untrusted sources.",
    "Prefer safetensors for weights. If pickle is unavoidable, load with torch.load(weights_only=True) "
    "or a restricted unpickler, and keep scanning every model at the registry's door.",
)

DANGEROUS_CALLABLE = Rule(
    "MLO101",
    "dangerous-callable",
    "A known dangerous primitive is reached while loading",
    Severity.CRITICAL,
    _MODEL,
    _RCE,
    "The file imports a callable that starts processes, evaluates code, imports modules, touches files "
    "or the network, loads native code or deserializes a further payload. Loading the file hands that "
    "primitive to whoever crafted it.",
    _DO_NOT_LOAD + "Treat any machine that already loaded it as compromised and rotate the credentials "
    "it held (model registry, cloud, Hugging Face tokens).",
)

INTROSPECTION = Rule(
    "MLO102",
    "introspection-escape",
    "Dunder attribute path reaches interpreter internals",
    Severity.CRITICAL,
    _MODEL,
    _RCE,
    "The file walks attributes such as __globals__, __builtins__, __subclasses__ or __self__ to reach "
    "builtins like eval from an innocent-looking name. No benign model does this.",
    _DO_NOT_LOAD,
)

UNLISTED_CALL = Rule(
    "MLO110",
    "unlisted-callable-invoked",
    "A callable outside the allowlist is invoked while loading",
    Severity.HIGH,
    _MODEL,
    _RCE,
    "Loading the file calls a function or class that is not on the reviewed allowlist of callables known "
    "to be safe during unpickling. Whatever that callable does runs on the loading machine.",
    "Verify where the callable comes from. If it is your own trusted code, save the model's weights "
    "(state_dict, safetensors) instead of pickled objects; otherwise do not load the file.",
)

COMPUTED_CALL = Rule(
    "MLO111",
    "computed-callable-invoked",
    "A callable computed at load time is invoked",
    Severity.HIGH,
    _MODEL,
    _RCE,
    "The file calls a value that is itself the result of a call, an attribute fetched at run time or "
    "a name built on the stack. The scanner cannot name what runs, and benign models do not need it.",
    _DO_NOT_LOAD,
)

EXTENSION_REGISTRY = Rule(
    "MLO112",
    "extension-registry-reference",
    "A callable is fetched through the copyreg extension registry (EXT opcode)",
    Severity.HIGH,
    _MODEL,
    _RCE,
    "EXT1/EXT2/EXT4 name a global by a number registered in the loading process, which a file scanner "
    "cannot see. Standard libraries register no such codes; the opcode hides the callable's name.",
    _DO_NOT_LOAD,
)

GLOBAL_MUTATION = Rule(
    "MLO113",
    "global-state-mutation",
    "Loading the file changes a module-level object",
    Severity.HIGH,
    _MODEL,
    _RCE,
    "BUILD, SETITEM or APPEND is applied to an imported global rather than to a freshly built object. "
    "This rewires interpreter state (for example a module's builtins or the copyreg registry) so that "
    "later, innocent-looking names run attacker code.",
    _DO_NOT_LOAD,
)

UNLISTED_CLASS = Rule(
    "MLO120",
    "unlisted-class-instantiated",
    "A class outside the allowlist is instantiated and given state",
    Severity.MEDIUM,
    _MODEL,
    _RCE,
    "The class is created with __new__ only (NEWOBJ or a copyreg reconstructor) and then gets its state "
    "by BUILD, which may call its __setstate__. Typical of a whole-model torch.save with your own "
    "nn.Module classes: the class's code runs only if it is importable on the loading machine.",
    "Check that the class comes from code you trust. Prefer saving a state_dict or safetensors, which "
    "needs no classes at load time.",
)

UNLISTED_REFERENCE = Rule(
    "MLO121",
    "unlisted-global-referenced",
    "A global outside the allowlist is imported but never called",
    Severity.MEDIUM,
    _MODEL,
    _RCE,
    "Loading the file imports the named module and fetches the object. Importing a module runs its "
    "top-level code, and the object may be called later by code that uses the loaded model.",
    "Check that the module is trusted and installed from a known source on every machine that loads the file.",
)

MALFORMED = Rule(
    "MLO201",
    "malformed-model-file",
    "Model file is malformed or truncated",
    Severity.HIGH,
    _MODEL,
    _EVADE,
    "The stream breaks the format's rules. Loaders execute everything before the break (a payload "
    "followed by a deliberately broken stream still runs), while many scanners give up silently.",
    "Do not load the file. Regenerate it from a trusted source; a healthy export is never truncated.",
)

TRAILING_DATA = Rule(
    "MLO202",
    "trailing-data",
    "Unexplained bytes follow the end of the model data",
    Severity.HIGH,
    _MODEL,
    _EVADE,
    "Data after the last complete object is ignored by the usual loader but can carry a second payload "
    "for loaders that read on, or content smuggled past scanners.",
    "Do not load the file. Regenerate it from a trusted source.",
)

UNRECOGNIZED = Rule(
    "MLO203",
    "unrecognized-model-file",
    "File named like a model has content the scanner cannot identify",
    Severity.HIGH,
    _MODEL,
    _EVADE,
    "The extension says pickle, PyTorch, joblib or NumPy, but the bytes match no supported layout. The "
    "scanner cannot vouch for it, and a lenient loader may still accept it.",
    "Find out what produced the file. Do not load it until it is identified.",
)

CONTAINER_ANOMALY = Rule(
    "MLO204",
    "container-anomaly",
    "Archive metadata contradicts itself",
    Severity.MEDIUM,
    _MODEL,
    _EVADE,
    "A ZIP member has a wrong CRC, a local header name that differs from the central directory, or "
    "flag bits that claim encryption. PyTorch's reader ignores these, Python's zipfile refuses them; "
    "published scanner bypasses rely on exactly that difference.",
    "Rebuild the archive with a standard tool from trusted content.",
)

MALFORMED_CONTAINER = Rule(
    "MLO205",
    "malformed-container",
    "Archive or compressed stream cannot be read completely",
    Severity.HIGH,
    _MODEL,
    _EVADE,
    "Part of the container could not be decoded, so some members were not scanned.",
    "Do not load the file until it is rebuilt from a trusted source.",
)

SCAN_LIMIT = Rule(
    "MLO901",
    "scan-limit-reached",
    "A scan limit was reached before the content was fully checked",
    Severity.HIGH,
    _MODEL,
    _EVADE,
    "Nesting depth, decompressed size, compression ratio, memo size or time per file exceeded its bound. "
    "The rest of the content was not checked; oversized and bomb-like inputs are treated as hostile.",
    "Inspect the file by other means before loading it. If it is a known-good giant model, scan its "
    "weights in a safe format instead.",
)

UNREADABLE = Rule(
    "MLO902",
    "unreadable-input",
    "Input could not be read",
    Severity.HIGH,
    _MODEL,
    _EVADE,
    "The file could not be opened or read, so nothing in it was checked.",
    "Fix the permissions or the path and scan again.",
    operational=True,
)

INTERNAL_ERROR = Rule(
    "MLO903",
    "scanner-error",
    "The scanner failed on this input",
    Severity.HIGH,
    _MODEL,
    _EVADE,
    "An unexpected error stopped the analysis of this input. It is reported rather than passed, because "
    "crafted inputs that crash scanners are a known bypass.",
    "Report the error to the mloops maintainers with the file if you can share it; do not load the file meanwhile.",
    operational=True,
)

ALL_RULES: tuple[Rule, ...] = (
    PICKLE_FORMAT,
    DANGEROUS_CALLABLE,
    INTROSPECTION,
    UNLISTED_CALL,
    COMPUTED_CALL,
    EXTENSION_REGISTRY,
    GLOBAL_MUTATION,
    UNLISTED_CLASS,
    UNLISTED_REFERENCE,
    MALFORMED,
    TRAILING_DATA,
    UNRECOGNIZED,
    CONTAINER_ANOMALY,
    MALFORMED_CONTAINER,
    SCAN_LIMIT,
    UNREADABLE,
    INTERNAL_ERROR,
)
