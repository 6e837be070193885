"""The shared rules: format notes, and what any analyzer reports when a file is malformed, too large or
crashes the scanner. Every other rule is declared beside the code that emits it; ``registry.all_rules`` is
the catalog of them all, by id.

Ids are grouped by the attack surface they cover:
  MLO0xx  what kind of format a file is (notes, never failures)
  MLO10x-12x  code that runs while a pickle-family model is loaded
  MLO13x-19x  code, file or network access carried by other model formats
  MLO2xx  model files and containers that are malformed or hide content
  MLO3xx  datasets, notebooks and ML code
  MLO5xx  ML platforms reached over the network (mloops probe) and known-vulnerable versions
  MLO7xx  deployments (Kubernetes, Compose, Dockerfiles) and running containers an attacker can leave
  MLO8xx  the team's own decisions (a suppression past its expiry date)
  MLO9xx  the scan itself could not finish (fail closed)
"""

from __future__ import annotations

from .core import AttackClass, Capability, Rule, Severity

DO_NOT_LOAD = (
    "Do not load this file. Get the model from its original publisher, or ask for it in a format that "
    "cannot run code (safetensors, ONNX without custom ops). "
)

SAFE_FORMAT = Rule(
    id="MLO001",
    name="safe-format",
    title="Data-only format: loading it runs no code",
    severity=Severity.INFO,
    attack_class=AttackClass.MALICIOUS_MODEL,
    capability=Capability.SCANNER_EVASION,
    description=(
        "The file is in a format that holds data only (safetensors, ONNX with standard operators, GGUF, "
        "TFLite, XGBoost or LightGBM models, ...), and its structure checked out."
    ),
    remediation="Nothing to fix. Keep loading libraries up to date: parsers of safe formats have had their own bugs.",
    summary="A data-only format (safetensors, ONNX, GGUF, TFLite, ...) whose structure checked out.",
)
CODE_CAPABLE_FORMAT = Rule(
    id="MLO002",
    name="code-capable-format",
    title="Format can carry code or name callables by design",
    severity=Severity.INFO,
    attack_class=AttackClass.MALICIOUS_MODEL,
    capability=Capability.CODE_EXECUTION,
    description=(
        "Keras, TensorFlow SavedModel, TorchScript, NeMo and skops files can embed code or name arbitrary "
        "callables. No finding above this one means every reference in the file is on the reviewed allowlists."
    ),
    remediation=(
        "Prefer weights in a data-only format (safetensors) when the file comes from outside your organisation."
    ),
    summary=("A format that can carry code or name callables by design (Keras, TensorFlow, TorchScript, NeMo, skops)."),
)
PICKLE_FORMAT = Rule(
    id="MLO100",
    name="pickle-based-format",
    title="Pickle-based format: loading it executes code by design",
    severity=Severity.INFO,
    attack_class=AttackClass.MALICIOUS_MODEL,
    capability=Capability.CODE_EXECUTION,
    description=(
        "Pickle, PyTorch, joblib, dill and NumPy object files are programs for the pickle virtual machine. "
        "No finding above this one means every callable the file reaches is on the reviewed allowlist, "
        "but the format itself stays unsafe to accept from untrusted sources."
    ),
    remediation=(
        "Prefer safetensors for weights. If pickle is unavoidable, load with torch.load(weights_only=True) "
        "or a restricted unpickler, and keep scanning every model at the registry's door."
    ),
    summary="The file holds pickle streams: loading it runs code by design; prefer safetensors.",
)
MALFORMED = Rule(
    id="MLO201",
    name="malformed-model-file",
    title="Model file is malformed or truncated",
    severity=Severity.HIGH,
    attack_class=AttackClass.MALICIOUS_MODEL,
    capability=Capability.SCANNER_EVASION,
    description=(
        "The stream breaks the format's rules. Loaders execute everything before the break (a payload "
        "followed by a deliberately broken stream still runs), while many scanners give up silently."
    ),
    remediation="Do not load the file. Regenerate it from a trusted source; a healthy export is never truncated.",
    shared=True,
    summary=(
        "The stream is malformed or truncated (or loaders disagree on it: an opcode straddling a FRAME, overlapping "
        "or lying frames, an object array whose state is shorter than its shape); everything before the break is "
        "still reported."
    ),
)
TRAILING_DATA = Rule(
    id="MLO202",
    name="trailing-data",
    title="Unexplained bytes follow the end of the model data",
    severity=Severity.HIGH,
    attack_class=AttackClass.MALICIOUS_MODEL,
    capability=Capability.SCANNER_EVASION,
    description=(
        "Data after the last complete object is ignored by the usual loader but can carry a second payload "
        "for loaders that read on, or content smuggled past scanners."
    ),
    remediation="Do not load the file. Regenerate it from a trusted source.",
    shared=True,
    summary="Bytes after the last complete object that are not a pickle (whitespace padding excepted).",
)
UNRECOGNIZED = Rule(
    id="MLO203",
    name="unrecognized-model-file",
    title="File named like a model has content the scanner cannot identify",
    severity=Severity.HIGH,
    attack_class=AttackClass.MALICIOUS_MODEL,
    capability=Capability.SCANNER_EVASION,
    description=(
        "The extension names a model format (pickle, PyTorch, Keras, ONNX, GGUF, safetensors, ...), but the "
        "bytes match no supported layout. The "
        "scanner cannot vouch for it, and a lenient loader may still accept it."
    ),
    remediation="Find out what produced the file. Do not load it until it is identified.",
    shared=True,
    summary=(
        "Binary content under a model extension that matches no supported layout, or a Git LFS pointer instead of the"
        " model; low with the real type when the content is plainly no model (an image, a PDF, an HTML error page, "
        "text)."
    ),
    severities="high, low",
)
CONTAINER_ANOMALY = Rule(
    id="MLO204",
    name="container-anomaly",
    title="Archive metadata contradicts itself",
    severity=Severity.MEDIUM,
    attack_class=AttackClass.MALICIOUS_MODEL,
    capability=Capability.SCANNER_EVASION,
    description=(
        "A ZIP member has a wrong CRC, a local header name that differs from the central directory, or "
        "flag bits that claim encryption. PyTorch's reader ignores these, Python's zipfile refuses them; "
        "published scanner bypasses rely on exactly that difference."
    ),
    remediation="Rebuild the archive with a standard tool from trusted content.",
    shared=True,
    summary=(
        "ZIP metadata contradicts itself: bad CRC, local/central name mismatch, encryption flags, duplicate names, "
        "prepended data."
    ),
)
MALFORMED_CONTAINER = Rule(
    id="MLO205",
    name="malformed-container",
    title="Archive or compressed stream cannot be read completely",
    severity=Severity.HIGH,
    attack_class=AttackClass.MALICIOUS_MODEL,
    capability=Capability.SCANNER_EVASION,
    description="Part of the container could not be decoded, so some members were not scanned.",
    remediation="Do not load the file until it is rebuilt from a trusted source.",
    shared=True,
    summary="An archive or compressed stream cannot be read completely (or is 7z, which mloops cannot open).",
)
PATH_TRAVERSAL = Rule(
    id="MLO206",
    name="archive-path-traversal",
    title="Archive member path escapes the extraction folder",
    severity=Severity.HIGH,
    attack_class=AttackClass.MALICIOUS_MODEL,
    capability=Capability.FILE_ACCESS,
    description=(
        "A member name is absolute or climbs with '..'. Tools that extract the archive write it outside the "
        "target folder, overwriting files such as shell profiles, SSH keys or other models (zip slip)."
    ),
    remediation="Do not extract the archive. Rebuild it with relative member names.",
    shared=True,
    summary="An archive member name is absolute or climbs with `..` (zip slip).",
)
EXPIRED_SUPPRESSION = Rule(
    id="MLO801",
    name="expired-suppression",
    title="A suppression in the configuration has expired",
    severity=Severity.MEDIUM,
    attack_class=AttackClass.MALICIOUS_MODEL,
    capability=Capability.SCANNER_EVASION,
    description=(
        "A suppression's expiry date has passed. It no longer suppresses anything: the findings it accepted "
        "count again, and this finding says why they came back."
    ),
    remediation=(
        "Fix what the findings point at and delete the suppression, or review the decision and give it a new "
        "expiry date and reason."
    ),
    shared=True,
    summary="A `[[suppress]]` entry of the configuration is past its `expires` date; its findings count again.",
)
SCAN_LIMIT = Rule(
    id="MLO901",
    name="scan-limit-reached",
    title="A scan limit was reached before the content was fully checked",
    severity=Severity.HIGH,
    attack_class=AttackClass.MALICIOUS_MODEL,
    capability=Capability.SCANNER_EVASION,
    description=(
        "Nesting depth, decompressed size, compression ratio, memo size or time per file exceeded its bound. "
        "The rest of the content was not checked; oversized and bomb-like inputs are treated as hostile."
    ),
    remediation=(
        "Inspect the file by other means before loading it. If it is a known-good giant model, scan its "
        "weights in a safe format instead."
    ),
    shared=True,
    summary="A bound (depth, size, ratio, memo, stack, time) was hit; the rest was not checked.",
)
UNREADABLE = Rule(
    id="MLO902",
    name="unreadable-input",
    title="Input could not be read",
    severity=Severity.HIGH,
    attack_class=AttackClass.MALICIOUS_MODEL,
    capability=Capability.SCANNER_EVASION,
    description="The file could not be opened or read, so nothing in it was checked.",
    remediation="Fix the permissions or the path and scan again.",
    operational=True,
    shared=True,
    summary="A file or folder could not be read (exit 2).",
)
INTERNAL_ERROR = Rule(
    id="MLO903",
    name="scanner-error",
    title="The scanner failed on this input",
    severity=Severity.HIGH,
    attack_class=AttackClass.MALICIOUS_MODEL,
    capability=Capability.SCANNER_EVASION,
    description=(
        "An unexpected error stopped the analysis of this input. It is reported rather than passed, because "
        "crafted inputs that crash scanners are a known bypass."
    ),
    remediation=(
        "Report the error to the mloops maintainers with the file if you can share it; do not load the file meanwhile."
    ),
    operational=True,
    shared=True,
    summary="mloops failed on the input (exit 2); crafted crashes are a known bypass, so it is never a pass.",
)
