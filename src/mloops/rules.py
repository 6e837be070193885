"""The rule catalog: every finding mloops can emit, with a stable id.

Ids are grouped by the attack surface they cover:
  MLO0xx  what kind of format a file is (notes, never failures)
  MLO10x-12x  code that runs while a pickle-family model is loaded
  MLO13x-19x  code, file or network access carried by other model formats
  MLO2xx  model files and containers that are malformed or hide content
  MLO3xx  datasets, notebooks and ML code
  MLO5xx  ML platforms reached over the network (mloops probe) and known-vulnerable versions
  MLO7xx  deployments (Kubernetes, Compose, Dockerfiles) and running containers an attacker can leave
  MLO9xx  the scan itself could not finish (fail closed)
"""

from __future__ import annotations

from .core import AttackClass, Capability, Rule, Severity

_MODEL = AttackClass.MALICIOUS_MODEL
_RCE = Capability.CODE_EXECUTION
_EVADE = Capability.SCANNER_EVASION
_FILES = Capability.FILE_ACCESS

_DO_NOT_LOAD = (
    "Do not load this file. Get the model from its original publisher, or ask for it in a format that "
    "cannot run code (safetensors, ONNX without custom ops). "
)

SAFE_FORMAT = Rule(
    "MLO001",
    "safe-format",
    "Data-only format: loading it runs no code",
    Severity.INFO,
    _MODEL,
    _EVADE,
    "The file is in a format that holds data only (safetensors, ONNX with standard operators, GGUF, "
    "TFLite, XGBoost or LightGBM models, ...), and its structure checked out.",
    "Nothing to fix. Keep loading libraries up to date: parsers of safe formats have had their own bugs.",
)

CODE_CAPABLE_FORMAT = Rule(
    "MLO002",
    "code-capable-format",
    "Format can carry code or name callables by design",
    Severity.INFO,
    _MODEL,
    _RCE,
    "Keras, TensorFlow SavedModel, TorchScript, NeMo and skops files can embed code or name arbitrary "
    "callables. No finding above this one means every reference in the file is on the reviewed allowlists.",
    "Prefer weights in a data-only format (safetensors) when the file comes from outside your organisation.",
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

UNTRUSTED_VALUE_USED = Rule(
    "MLO114",
    "untrusted-value-used",
    "Loading the file runs the code of a value the scanner cannot vouch for",
    Severity.HIGH,
    _MODEL,
    _RCE,
    "The loader uses a value without a call opcode: it hashes a dictionary key, iterates an argument, "
    "converts it, sets its state or its items, or looks up an attribute on it. The value is an instance of "
    "an unlisted class, an unknown object or something computed at load time, so its own __hash__, __iter__, "
    "__setstate__, __setitem__ or __getattr__ runs: a map or filter object drained by list() calls functions, "
    "a module given state by BUILD has its globals rewritten. Benign models do not need this.",
    _DO_NOT_LOAD,
)

SIGNATURE_VIOLATION = Rule(
    "MLO115",
    "callable-outside-signature",
    "An allowlisted callable is used in a form outside its reviewed signature",
    Severity.HIGH,
    _MODEL,
    _RCE,
    "The callable is safe only in the forms listed in its reviewed signature. Here it gets another number "
    "of arguments (three-argument type() builds a class and runs its bases' hooks), arguments the scanner "
    "cannot see, or attributes set by name that rewire the object (__class__ through slot state).",
    _DO_NOT_LOAD,
)

LOAD_EXPANSION = Rule(
    "MLO116",
    "load-expansion",
    "Loading the file does work far beyond its size",
    Severity.HIGH,
    _MODEL,
    Capability.DENIAL_OF_SERVICE,
    "A few bytes make the loader allocate or compute without bound: a key built from shared references "
    "(each tuple hash visits its items again), text made from such a structure, a huge range drained into a "
    "list, bytes(n) for a huge n. Every consumer that loads the file hangs or runs out of memory.",
    "Do not load the file; report it to whoever published it. A benign model never needs this.",
)

UNLISTED_CLASS = Rule(
    "MLO120",
    "unlisted-class-instantiated",
    "A class outside the allowlist is instantiated and given state",
    Severity.MEDIUM,
    _MODEL,
    _RCE,
    "The class is created with __new__ only (NEWOBJ or a copyreg reconstructor) and then gets its state "
    "by BUILD, which may call its __setstate__: the class's own code, run when its module is imported on the "
    "loading machine. Typical of a whole-model torch.save with your own nn.Module classes. Anything more (items "
    "put into it, its instances hashed or iterated, objects handed to its __new__, a standard-library class) "
    "is reported high.",
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

KERAS_LAMBDA = Rule(
    "MLO130",
    "keras-lambda-layer",
    "Keras Lambda layer carries Python code",
    Severity.HIGH,
    _MODEL,
    _RCE,
    "A Lambda layer stores marshalled Python bytecode that Keras rebuilds and runs when the model is "
    "loaded or called. Legacy H5 loading runs it without asking; safe_mode has been bypassed repeatedly "
    "(CVE-2024-3660, CVE-2025-1550, CVE-2025-8747). Critical when the code names processes, files, "
    "the network or eval.",
    _DO_NOT_LOAD + "Rebuild the model with the Lambda replaced by a registered custom layer from your own "
    "reviewed code, and save it in the .keras format.",
)

KERAS_FOREIGN_OBJECT = Rule(
    "MLO131",
    "keras-foreign-reference",
    "Keras config names a module or class outside Keras",
    Severity.HIGH,
    _MODEL,
    _RCE,
    "Deserializing a Keras config imports the named module and calls the named object. Layers, losses, "
    "metrics, initializers and activations from outside the Keras and TensorFlow namespaces run whatever "
    "code that module holds; this is how safe_mode was bypassed (CVE-2025-1550).",
    "Check that the module is your own reviewed code, installed on every loading machine; otherwise do "
    "not load the file.",
)

KERAS_DANGEROUS_FUNCTION = Rule(
    "MLO132",
    "keras-dangerous-function",
    "Keras config calls a function that touches files, the network or safety settings",
    Severity.CRITICAL,
    _MODEL,
    _RCE,
    "The config references a function inside the allowed namespaces that downloads, reads or writes "
    "files, or switches off safe deserialization (keras.utils.get_file in CVE-2025-8747). Loading the "
    "model calls it with attacker-chosen arguments.",
    _DO_NOT_LOAD,
)

TENSORFLOW_DANGEROUS_OP = Rule(
    "MLO140",
    "tensorflow-dangerous-op",
    "TensorFlow graph contains an operation that reaches files, processes or Python",
    Severity.HIGH,
    _MODEL,
    _FILES,
    "Graph operations such as ReadFile, WriteFile, MatchingFiles or PyFunc run with the privileges of "
    "the serving process whenever the graph executes: they read secrets, overwrite files or call into "
    "Python. Benign inference graphs do not need them.",
    "Do not serve the model. Re-export it from trusted code, and serve it where the process can reach "
    "no secrets or writable paths.",
)

TORCHSCRIPT_DANGEROUS_CODE = Rule(
    "MLO150",
    "torchscript-dangerous-code",
    "TorchScript code calls an operation that reaches files, processes or native code",
    Severity.HIGH,
    _MODEL,
    _FILES,
    "The serialized TorchScript program (the archive's code/ folder) runs when the module is called. "
    "Operations that open files, save or load other archives, or call custom native operators reach "
    "beyond tensor math.",
    "Do not run the module. Re-export it from reviewed model code.",
)

CONFIG_INSTANTIATION_TARGET = Rule(
    "MLO151",
    "config-instantiation-target",
    "Model config instantiates a class or function outside the framework (Hydra _target_)",
    Severity.HIGH,
    _MODEL,
    _RCE,
    "Restoring a NeMo model instantiates its config: Hydra imports the module of every _target_ and "
    "calls the object with the config's arguments, and NeMo imports the class named by target. A name "
    "outside NeMo, torch.nn/optim and OmegaConf, one that loads further models or imports classes by "
    "name, or one computed at load time (interpolation, alias) runs code the config chooses.",
    "Check that every listed target is NeMo or your own reviewed code; do not restore the model otherwise.",
)

ONNX_CUSTOM_OPERATOR = Rule(
    "MLO160",
    "onnx-custom-operator",
    "ONNX graph uses operators from a non-standard domain",
    Severity.HIGH,
    _MODEL,
    _RCE,
    "Operators outside the standard ONNX domains are implemented by custom operator libraries, that is "
    "native code that the runtime must load to execute the graph. The model is only as safe as that "
    "library.",
    "Verify that the domain belongs to a runtime you trust (for example com.microsoft for ONNX Runtime "
    "contrib ops) and never load custom op libraries that arrive with the model.",
)

ONNX_EXTERNAL_DATA_ESCAPE = Rule(
    "MLO161",
    "onnx-external-data-escape",
    "ONNX external data points outside the model folder",
    Severity.HIGH,
    _MODEL,
    _FILES,
    "A tensor's external_data location is absolute or climbs out of the model folder with '..'. Loading "
    "the model reads that file into the tensor, leaking local files (keys, credentials) into model "
    "outputs, or fails in ways an attacker controls.",
    "Do not load the model. External data files must sit next to the model, with relative names.",
)

TFLITE_CUSTOM_OPERATOR = Rule(
    "MLO162",
    "tflite-custom-operator",
    "TFLite model needs custom operators",
    Severity.INFO,
    _MODEL,
    _RCE,
    "Custom operators are not part of TensorFlow Lite: the interpreter runs them only with native kernels "
    "the application registered, so the model cannot bring its own code. Flex operators are the exception "
    "worth knowing: the Flex delegate runs the TensorFlow op named in each operator's NodeDef; those that "
    "reach files, the network or Python are reported as tensorflow-dangerous-op.",
    "Check that each listed operator is one your runtime provides on purpose (for example "
    "TFLite_Detection_PostProcess), and link the Flex delegate only into applications that need it.",
)

TEMPLATE_INJECTION = Rule(
    "MLO170",
    "template-injection",
    "Chat template reaches Python internals through Jinja2",
    Severity.CRITICAL,
    _MODEL,
    _RCE,
    "The Jinja2 chat template walks dunder attributes (__class__, __globals__, __subclasses__, "
    "__builtins__, __import__) or known gadget objects. Runtimes that render templates outside Jinja2's "
    "sandbox run it as code on the inference server (CVE-2024-34359 in llama-cpp-python).",
    _DO_NOT_LOAD + "Render chat templates only with jinja2.sandbox.ImmutableSandboxedEnvironment.",
)

SKOPS_UNTRUSTED_TYPE = Rule(
    "MLO180",
    "skops-untrusted-type",
    "skops file needs a type outside skops' trusted set",
    Severity.HIGH,
    _MODEL,
    _RCE,
    "skops refuses to load such types unless the caller trusts them. Users routinely pass every reported "
    "type to trusted=..., which hands the file the power to import and call them.",
    "Review each listed type; trust only those from libraries you already depend on.",
)

XML_EXTERNAL_ENTITY = Rule(
    "MLO190",
    "xml-external-entity",
    "XML model declares a DOCTYPE or external entity",
    Severity.HIGH,
    _MODEL,
    _FILES,
    "A DOCTYPE with entities lets the file make the parser read local files or fetch URLs (XXE), or "
    "expand entities until memory runs out. PMML written by model tools never needs one.",
    "Do not load the file with a parser that resolves entities; regenerate it from the training tool.",
)

_CODE_FIX_SAFETENSORS = "Store weights as safetensors and load them with safetensors.torch.load_file. "

CODE_PICKLE_LOAD = Rule(
    "MLO320",
    "code-pickle-load",
    "Code loads an artifact with a pickle-family loader",
    Severity.MEDIUM,
    _MODEL,
    _RCE,
    "pickle, dill, cloudpickle, joblib, shelve and pandas.read_pickle run the pickle virtual machine on the "
    "file they read: whoever wrote the file chooses the code that runs. MEDIUM because the code is only as "
    "dangerous as the files it is given, and a static scan cannot tell where they come from.",
    _CODE_FIX_SAFETENSORS + "Keep pickle for files your own process wrote; scan every other one with mloops "
    "before loading it.",
)

CODE_TORCH_LOAD = Rule(
    "MLO321",
    "code-torch-load-unrestricted",
    "torch.load without weights_only=True",
    Severity.HIGH,
    _MODEL,
    _RCE,
    "torch.load(weights_only=False) unpickles the checkpoint with the full pickle machine: a crafted "
    "checkpoint runs code (HIGH, the safe mode was turned off on purpose). Without the argument, PyTorch "
    "before 2.6 also used the full machine, and code pinned to those versions still does (MEDIUM).",
    "Pass weights_only=True (add reviewed classes with torch.serialization.add_safe_globals), or store the "
    "weights as safetensors.",
)

CODE_NUMPY_PICKLE = Rule(
    "MLO322",
    "code-numpy-allow-pickle",
    "numpy.load with allow_pickle=True",
    Severity.HIGH,
    _MODEL,
    _RCE,
    "allow_pickle=True lets numpy.load unpickle object arrays, so a crafted .npy/.npz file runs code. NumPy "
    "refuses them by default since 1.16.3; the argument turns that protection off.",
    "Drop allow_pickle=True and store numeric arrays only; keep structured data in JSON, Parquet or safetensors.",
)

CODE_KERAS_UNSAFE = Rule(
    "MLO323",
    "code-keras-unsafe-mode",
    "Keras safe mode is turned off",
    Severity.HIGH,
    _MODEL,
    _RCE,
    "load_model(safe_mode=False) and keras.config.enable_unsafe_deserialization() let a .keras file "
    "deserialize Lambda layers, whose bytecode runs when the model is loaded or called.",
    "Keep safe_mode on; rebuild Lambda layers as registered custom layers defined in your own code.",
)

CODE_YAML_UNSAFE = Rule(
    "MLO324",
    "code-yaml-unsafe-load",
    "YAML loaded without a safe loader",
    Severity.HIGH,
    _MODEL,
    _RCE,
    "yaml.unsafe_load and yaml.load with Loader/UnsafeLoader build arbitrary Python objects from "
    "!!python/object tags, which runs code (HIGH). yaml.load without a Loader was unsafe before PyYAML 5.1 "
    "and a variable loader cannot be checked (MEDIUM); FullLoader had bypasses before PyYAML 5.4 (LOW).",
    "Use yaml.safe_load, or yaml.load(..., Loader=yaml.SafeLoader).",
)

CODE_MLFLOW_PICKLE = Rule(
    "MLO325",
    "code-mlflow-pickle-flavor",
    "MLflow model loaded through a pickle-based flavor",
    Severity.MEDIUM,
    _MODEL,
    _RCE,
    "The pyfunc, sklearn, pytorch, statsmodels and similar MLflow flavors store the model with pickle, "
    "cloudpickle or torch.save; load_model unpickles whatever the model URI points to. Anyone who can write "
    "to that registry or artifact store runs code in every consumer (the 'ML worm').",
    "Load models only from registries with strict write access, scan their artifacts with mloops, and prefer "
    "flavors that store data-only formats (ONNX, safetensors through transformers).",
)

CODE_TRUST_REMOTE_CODE = Rule(
    "MLO326",
    "code-trust-remote-code",
    "trust_remote_code=True runs code from the model or dataset repository",
    Severity.HIGH,
    AttackClass.MALICIOUS_DATASET,
    _RCE,
    "transformers' from_pretrained/pipeline and datasets' load_dataset import and run Python files from the "
    "Hub repository when trust_remote_code=True. Whoever controls the repository, or a later revision of it, "
    "runs code on the loading machine.",
    "Drop trust_remote_code=True; if the architecture needs it, review the code and pin revision= to the "
    "reviewed commit hash.",
)

CODE_HARDCODED_CREDENTIAL = Rule(
    "MLO327",
    "code-hardcoded-credential",
    "ML platform credential hard-coded in source",
    Severity.HIGH,
    _MODEL,
    Capability.NETWORK_ACCESS,
    "A token or password for MLflow, Weights & Biases, Hugging Face, OpenAI or AWS is written in the source. "
    "Anyone who reads the file or notebook can push poisoned models to the registry it guards.",
    "Revoke and rotate the credential now; read it from the environment or a secret manager at run time.",
)

CODE_UNSAFE_FALLBACK = Rule(
    "MLO328",
    "code-weights-only-fallback",
    "torch.load falls back to weights_only=False when the safe load fails",
    Severity.HIGH,
    _MODEL,
    _RCE,
    "The safe load fails exactly when the checkpoint references callables outside the weights-only "
    "allowlist, which is what a malicious checkpoint does; the fallback then unpickles it with the full "
    "pickle machine. The check protects nothing.",
    "Let the safe load fail; allow the few reviewed classes a legitimate checkpoint needs with "
    "torch.serialization.add_safe_globals.",
)

EXPOSED_SECRET = Rule(
    "MLO330",
    "exposed-secret",
    "Credential exposed in a notebook or source file",
    Severity.HIGH,
    AttackClass.MISSING_AUTH,
    Capability.CREDENTIAL_ACCESS,
    "A cloud key, private key or ML-platform token (Hugging Face, OpenAI, Anthropic, W&B, MLflow, "
    "Databricks, ...) sits in a cell, an output or a source file. Notebooks and repositories are shared, "
    "so whoever reads the file gets past the authentication that guards the registry, the tracking server "
    "or the cloud account. The value is shown redacted.",
    "Revoke and rotate the credential now, then remove it from the file and its history (clear the "
    "notebook's outputs too); read credentials from the environment or a secret manager at run time.",
)

DATASET_LOADING_SCRIPT = Rule(
    "MLO340",
    "dataset-loading-script",
    "Dataset ships a loading script that runs when the dataset is loaded",
    Severity.HIGH,
    AttackClass.MALICIOUS_DATASET,
    _RCE,
    "Hugging Face datasets imports a dataset's loading script (<folder>/<folder>.py, or any module that "
    "defines a builder class) and runs it as ordinary Python: without asking before datasets 2.20, after "
    "trust_remote_code=True until 4.0. Whoever publishes the dataset, or a later revision of it, runs code "
    "on every machine that loads it; reverse shells and credential stealers have been found in such scripts "
    "on the Hub. A loading script is HIGH whatever it is seen to do, CRITICAL with process or eval calls or "
    "references; a helper file at the dataset root is one step lower.",
    "Publish the data as files (Parquet, JSON Lines, CSV) listed in the card's configs and delete the script. "
    "Until then, read the script, load it only at a pinned revision=, and keep datasets >= 4.0, which refuses "
    "loading scripts.",
)

MODEL_PACKAGE_CODE = Rule(
    "MLO350",
    "model-package-code",
    "Model package names Python code that runs when the model is loaded",
    Severity.HIGH,
    AttackClass.MALICIOUS_MODEL,
    _RCE,
    "Some model packages name their own code, which the loader imports: MLflow's MLmodel (a pyfunc "
    "loader_module found in the model's code paths, imported by mlflow.pyfunc.load_model) and Hugging Face's "
    "config.json auto_map (modules of the repository, or of another repository with 'repo--module', imported "
    "with trust_remote_code=True), TorchServe's .mar (every .py member is on the handler's import path). That "
    "code runs with the loader's rights before any weights are read. HIGH "
    "whatever it is seen to do, CRITICAL with process or eval calls or references, and HIGH when the named "
    "code is not in the package (it cannot be checked).",
    "Load the model without its code: a built-in MLflow flavor, or a transformers architecture without "
    "trust_remote_code. Otherwise read the named modules, pin the revision, and load them only from a "
    "repository you control.",
)

PICKLED_EXTENSION_TYPE = Rule(
    "MLO302",
    "pickled-extension-type",
    "Arrow/Parquet column has a pickled extension type",
    Severity.CRITICAL,
    AttackClass.MALICIOUS_DATASET,
    _RCE,
    "A field's extension type is arrow.py_extension_type (pyarrow's PyExtensionType), whose parameters "
    "are a pickle. pyarrow before 14.0.1 unpickles them as soon as the file is read (CVE-2023-47248), "
    "so opening the dataset runs whatever the pickle calls.",
    "Do not read the file with pyarrow older than 14.0.1 (or without pyarrow_hotfix). Ask for the data "
    "without the Python extension type, or with a registered pa.ExtensionType that serializes plain data.",
)

_NOTEBOOK = AttackClass.NOTEBOOK_XSS
_NOTEBOOK_FIX = (
    "Do not open or trust the notebook as it is. Clear its outputs (jupyter nbconvert --clear-output, or "
    "nbstripout) and rerun the cells you have read, or view it with the outputs sandboxed. "
)

NOTEBOOK_SCRIPT = Rule(
    "MLO310",
    "notebook-script",
    "Notebook output or Markdown holds script from no known renderer",
    Severity.HIGH,
    _NOTEBOOK,
    _RCE,
    "A <script> in an HTML, SVG or Markdown output runs in the Jupyter page with the user's session: it can "
    "start a kernel and run code on the Jupyter host. Known plotting libraries are recognised by full-match "
    "fingerprints; this script matched none.",
    _NOTEBOOK_FIX,
)

NOTEBOOK_EVENT_HANDLER = Rule(
    "MLO311",
    "notebook-event-handler",
    "Notebook markup has an event handler or a command attribute",
    Severity.HIGH,
    _NOTEBOOK,
    _RCE,
    "on*= attributes (onerror, onload, onmouseover, ...) run script without a <script> tag; "
    "data-commandlinker-* attributes run JupyterLab commands on click. No plotting library writes them into "
    "saved outputs.",
    _NOTEBOOK_FIX,
)

NOTEBOOK_SCRIPT_URL = Rule(
    "MLO312",
    "notebook-script-url",
    "Notebook markup has a javascript: URL",
    Severity.HIGH,
    _NOTEBOOK,
    _RCE,
    "A javascript: (or vbscript:) URL runs script when the link is followed or the frame loads. Entities, "
    "whitespace and control characters inside the scheme are ignored by browsers and were decoded here.",
    _NOTEBOOK_FIX,
)

NOTEBOOK_EMBEDDED_DOCUMENT = Rule(
    "MLO313",
    "notebook-embedded-document",
    "Notebook markup embeds a document (iframe, object, embed)",
    Severity.HIGH,
    _NOTEBOOK,
    _RCE,
    "An iframe, object or embed loads another document into the page; srcdoc frames and data: URLs "
    "inherit or imitate the Jupyter origin and carry script past output sanitizers, and a frame of the Jupyter "
    "server's own origin (a relative or local address) drives its API. A document of another https origin "
    "is walled off by the same-origin policy: MEDIUM, LOW when sandboxed without popups or top navigation.",
    _NOTEBOOK_FIX,
)

NOTEBOOK_NAVIGATION = Rule(
    "MLO314",
    "notebook-navigation",
    "Notebook markup redirects the page or posts a form elsewhere",
    Severity.HIGH,
    _NOTEBOOK,
    _RCE,
    "<meta http-equiv=refresh> navigates to an attacker page, <base> re-points every relative URL of the "
    "Jupyter page, and a form with an action sends what the user types to another address.",
    _NOTEBOOK_FIX,
)

NOTEBOOK_JAVASCRIPT_OUTPUT = Rule(
    "MLO315",
    "notebook-javascript-output",
    "Notebook has an application/javascript output",
    Severity.HIGH,
    _NOTEBOOK,
    _RCE,
    "Jupyter evaluates application/javascript outputs of a trusted notebook in the page, with full access "
    "to the kernel. Known renderer scripts are recognised by full-match fingerprints; this one matched none.",
    _NOTEBOOK_FIX,
)

NOTEBOOK_WIDGET_CODE = Rule(
    "MLO316",
    "notebook-widget-code",
    "Saved widget state loads a widget module outside ipywidgets",
    Severity.HIGH,
    _NOTEBOOK,
    _RCE,
    "Widget state saved in the notebook metadata is rendered on open. A model from a module other than "
    "ipywidgets' own makes the widget manager fetch and run that module's JavaScript.",
    "Remove metadata.widgets (or clear the outputs) unless you know the widget library and its version.",
)

NOTEBOOK_KNOWN_RENDERER = Rule(
    "MLO317",
    "notebook-known-renderer",
    "Notebook output holds active content from a known renderer",
    Severity.LOW,
    _NOTEBOOK,
    _RCE,
    "The output's scripts all match fingerprints of a widely used rendering library (plotly, altair/vega, "
    "bokeh, ipywidgets): CDN script URLs, full script templates with only JSON data inside, or hashes of "
    "the library bundles. They still run in the page and load code from the library's CDN.",
    "Nothing to fix if you expected this chart or widget. Clear the outputs before sharing notebooks "
    "from unknown sources.",
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
    "The extension names a model format (pickle, PyTorch, Keras, ONNX, GGUF, safetensors, ...), but the "
    "bytes match no supported layout. The "
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

PATH_TRAVERSAL = Rule(
    "MLO206",
    "archive-path-traversal",
    "Archive member path escapes the extraction folder",
    Severity.HIGH,
    _MODEL,
    _FILES,
    "A member name is absolute or climbs with '..'. Tools that extract the archive write it outside the "
    "target folder, overwriting files such as shell profiles, SSH keys or other models (zip slip).",
    "Do not extract the archive. Rebuild it with relative member names.",
)

_EXPOSED = AttackClass.MISSING_AUTH
_AUTH_FIX = (
    "Turn on the platform's authentication (see its auth documentation) or put it behind an authenticating "
    "proxy, and bind it to a private interface."
)

PLATFORM_DETECTED = Rule(
    "MLO500",
    "platform-detected",
    "ML platform found at this address",
    Severity.INFO,
    _EXPOSED,
    Capability.DATA_EXPOSURE,
    "A fingerprint matched: the platform, its version when it tells, and the features it exposes. Whether "
    "those features need a login is reported separately (MLO501, MLO502, MLO503).",
    "Nothing to fix by itself; keep an inventory of where your ML platforms listen.",
)

PLATFORM_OPEN = Rule(
    "MLO501",
    "platform-unauthenticated",
    "ML platform feature answers without authentication",
    Severity.HIGH,
    _EXPOSED,
    Capability.SERVER_CODE_EXECUTION,
    "A read-only request to a feature of the platform (registry, jobs, kernels, files, serving "
    "management) succeeded without credentials. Whoever reaches the port can use the feature: submit jobs "
    "or open kernels (code execution by design: critical), register or overwrite models, or read files "
    "(high), or read models, experiments and configuration (medium). The evidence shows the request and "
    "what it revealed; mloops never tried the attack itself.",
    _AUTH_FIX,
)

PLATFORM_AUTH_ENFORCED = Rule(
    "MLO502",
    "platform-auth-enforced",
    "ML platform requires authentication",
    Severity.INFO,
    _EXPOSED,
    Capability.DATA_EXPOSURE,
    "The platform's features answered 401/403, redirected to a login page or asked for a token.",
    "Nothing to fix; make sure the credentials are not the defaults.",
)

PLATFORM_AUTH_UNKNOWN = Rule(
    "MLO503",
    "platform-auth-unknown",
    "ML platform found, but whether it requires authentication is unclear",
    Severity.LOW,
    _EXPOSED,
    Capability.DATA_EXPOSURE,
    "The platform was recognised, but its feature requests gave answers that neither prove open access nor "
    "show a login (an error, a proxy page, an unexpected status). It may be open.",
    "Check by hand whether the platform asks for credentials; " + _AUTH_FIX[0].lower() + _AUTH_FIX[1:],
)

VULNERABLE_VERSION = Rule(
    "MLO510",
    "known-vulnerable-version",
    "ML platform version with a known vulnerability",
    Severity.HIGH,
    AttackClass.VULNERABLE_PLATFORM,
    Capability.SERVER_CODE_EXECUTION,
    "The version a platform reports, or a package installed in a Python environment, falls in the affected "
    "range of a published advisory (mloops' bundled table, data/advisories.toml, or the OSV dump given with "
    "--advisories). Severity comes from the advisory.",
    "Upgrade to the fixed version named in the finding, or newer.",
)

TARGET_UNREACHABLE = Rule(
    "MLO904",
    "target-unreachable",
    "A probe target could not be reached",
    Severity.HIGH,
    _EXPOSED,
    _EVADE,
    "An address named explicitly (a URL or host:port) refused the connection, timed out or did not speak "
    "HTTP, so nothing there was checked. Ports found closed while sweeping a host or a network are not "
    "reported.",
    "Check the address, the port and the firewall between mloops and the target, and probe again.",
    operational=True,
)

_ESCAPE = AttackClass.CONTAINER_ESCAPE
_NODE = Capability.SERVER_CODE_EXECUTION
_ROLE_NOTE = (
    " Severity is one step higher in model servers and notebooks, which run code from uploaded models or users."
)


def _deployment_rule(
    rule_id: str, name: str, title: str, severity: Severity, why: str, fix: str, capability: Capability = _NODE
) -> Rule:
    return Rule(rule_id, name, title, severity, _ESCAPE, capability, why, fix)


PRIVILEGED_CONTAINER = _deployment_rule(
    "MLO701",
    "privileged-container",
    "Container runs privileged",
    Severity.HIGH,
    "A privileged container sees every host device and holds every capability: code that runs in it (a "
    "malicious model's payload) mounts the host disk and takes the node. checkov CKV_K8S_16, trivy KSV-0017."
    + _ROLE_NOTE,
    "Remove privileged: true; grant the one capability the workload really needs instead.",
)
HOST_NAMESPACE = _deployment_rule(
    "MLO702",
    "host-namespace",
    "Workload shares the host's PID, network or IPC namespace",
    Severity.HIGH,
    "hostPID lets the container see and signal every process on the node (and read their environments); "
    "hostNetwork puts it on the node's interfaces, including the kubelet and cloud metadata; hostIPC shares "
    "memory with host processes. checkov CKV_K8S_17/18/19." + _ROLE_NOTE,
    "Remove hostPID, hostNetwork and hostIPC (or pid/network_mode/ipc: host in Compose).",
)
RUNTIME_SOCKET = _deployment_rule(
    "MLO703",
    "runtime-socket-mount",
    "Container runtime socket mounted into the workload",
    Severity.CRITICAL,
    "The Docker, containerd or CRI-O socket lets whoever talks to it start a privileged container on the node: "
    "code execution in this workload becomes root on the node. checkov CKV_K8S_27, trivy KSV-0006.",
    "Do not mount the runtime socket; build images with rootless builders (kaniko, buildah) instead.",
)
SENSITIVE_HOST_PATH = _deployment_rule(
    "MLO704",
    "sensitive-host-path",
    "Sensitive host folder mounted into the workload",
    Severity.HIGH,
    "A hostPath of /, /proc, /sys, /etc, /var/lib/kubelet and the like lets the container read node "
    "credentials (kubelet keys, service-account tokens of other pods) or write where the node executes "
    "code. trivy KSV-0121." + _ROLE_NOTE,
    "Use persistent volumes or object storage for models and data; never mount host system folders.",
)
DANGEROUS_CAPABILITY = _deployment_rule(
    "MLO705",
    "dangerous-capability",
    "Container adds a capability that breaks isolation",
    Severity.HIGH,
    "SYS_ADMIN (mounts, cgroup release_agent), SYS_PTRACE (other processes), SYS_MODULE (kernel modules), "
    "DAC_READ_SEARCH (open_by_handle_at host reads), NET_ADMIN and ALL are the usual container escapes. "
    "checkov CKV_K8S_39, trivy KSV-0005." + _ROLE_NOTE,
    "Drop ALL capabilities and add back only harmless ones (NET_BIND_SERVICE).",
)
PRIVILEGE_ESCALATION = _deployment_rule(
    "MLO706",
    "privilege-escalation",
    "Container may gain privileges (allowPrivilegeEscalation)",
    Severity.LOW,
    "Without allowPrivilegeEscalation: false, setuid binaries in the image can raise the attacker's "
    "privileges inside the container (LOW when left to the default, MEDIUM when set to true). checkov CKV_K8S_20.",
    "Set securityContext.allowPrivilegeEscalation: false on every container.",
)
RUNS_AS_ROOT = _deployment_rule(
    "MLO707",
    "runs-as-root",
    "Container runs as root",
    Severity.LOW,
    "Root in the container is one kernel bug or one mounted path away from root on the node. LOW when "
    "nothing forbids root (the image decides), MEDIUM when root is asked for explicitly. checkov CKV_K8S_23/40, "
    "CKV_DOCKER_8.",
    "Set runAsNonRoot: true and a runAsUser above 10000 (USER in the Dockerfile).",
)
UNCONFINED_PROFILE = _deployment_rule(
    "MLO708",
    "unconfined-profile",
    "Seccomp or AppArmor is explicitly unconfined",
    Severity.MEDIUM,
    "An Unconfined seccomp or AppArmor profile removes the syscall filter that blocks most container-escape "
    "exploits (unshare, keyctl, bpf). checkov CKV_K8S_31, trivy KSV-0104/KSV-0002.",
    "Use seccompProfile type RuntimeDefault and the runtime's default AppArmor profile.",
)
WRITABLE_ROOT_FS = _deployment_rule(
    "MLO709",
    "writable-root-filesystem",
    "Container root filesystem is writable",
    Severity.LOW,
    "A writable root filesystem lets a payload persist tools and replace the server's own code or models "
    "between requests. checkov CKV_K8S_22.",
    "Set readOnlyRootFilesystem: true and give the server an emptyDir for scratch space.",
)
SERVICE_ACCOUNT_TOKEN = _deployment_rule(
    "MLO710",
    "service-account-token",
    "Model server or notebook gets a Kubernetes API token",
    Severity.MEDIUM,
    "The pod's service-account token is mounted by default. A malicious model or notebook user reads it and "
    "talks to the Kubernetes API with the pod's rights: the first step from a model upload to the cluster. "
    "checkov CKV_K8S_38.",
    "Set automountServiceAccountToken: false on the pod (or its service account) unless it calls the API.",
    Capability.CREDENTIAL_ACCESS,
)
CLUSTER_WIDE_RBAC = _deployment_rule(
    "MLO711",
    "cluster-wide-rbac",
    "A service account is given cluster-wide rights",
    Severity.HIGH,
    "A ClusterRoleBinding to cluster-admin, or to a role with wildcard verbs or resources, gives every pod "
    "running as that service account the whole cluster; CRITICAL when an ML workload in the same file uses it.",
    "Bind namespaced Roles with the few verbs and resources the workload needs.",
    Capability.CREDENTIAL_ACCESS,
)
GPU_ALL_DEVICES = _deployment_rule(
    "MLO712",
    "gpu-all-devices",
    "All GPUs are handed to the container (NVIDIA toolkit escapes apply)",
    Severity.LOW,
    "NVIDIA_VISIBLE_DEVICES=all or a GPU resource puts the NVIDIA Container Toolkit hooks in the container's "
    "start; known toolkit bugs turn a crafted image into host access. A version note: check the node's toolkit.",
    "Keep the NVIDIA Container Toolkit and GPU Operator patched (toolkit 1.17.8+, GPU Operator 25.3.1+), use "
    "CDI mode, and request GPUs by count rather than all.",
)
MODEL_URI_PLAIN_HTTP = _deployment_rule(
    "MLO713",
    "model-uri-plain-http",
    "Model is downloaded over plain HTTP",
    Severity.HIGH,
    "A model fetched over http:// can be swapped on the way; pickle, PyTorch or Keras models run code when the "
    "server loads them, so whoever sits on the path runs code in the server.",
    "Serve models over https:// or s3://, gs://, pvc:// with integrity checks, and prefer safetensors/ONNX.",
)
EXPOSED_ML_SERVICE = _deployment_rule(
    "MLO714",
    "exposed-ml-service",
    "ML platform exposed outside the cluster without an auth layer",
    Severity.HIGH,
    "A LoadBalancer or NodePort Service, or an Ingress or Istio Gateway with wildcard hosts and no "
    "authentication, puts an ML platform (dashboards, pipelines, notebooks, model servers, most without "
    "authentication of their own) on the network; exposed Kubeflow dashboards were used for cryptomining.",
    "Keep ML services ClusterIP behind an authenticating gateway (oauth2-proxy/Dex, Istio "
    "RequestAuthentication with an AuthorizationPolicy), with explicit hosts.",
    Capability.DATA_EXPOSURE,
)
MULTI_MODEL_CONTAINER = _deployment_rule(
    "MLO715",
    "multi-model-container",
    "Several models share one serving container",
    Severity.MEDIUM,
    "Models served from one container (Seldon multi-model graphs, Seldon Core 2 Servers, KServe multi-model "
    "runtimes) share memory, files and credentials: one malicious model reads, poisons or replaces its "
    "neighbours, unlike KServe's one-pod-per-model default.",
    "Serve untrusted or third-party models in their own pods; keep multi-model servers for models you built.",
    Capability.MODEL_TAMPERING,
)
CLOUD_METADATA = _deployment_rule(
    "MLO717",
    "cloud-metadata-endpoint",
    "Cloud instance metadata is one request away",
    Severity.MEDIUM,
    "On a cloud VM, code in a container can ask 169.254.169.254 for the node's cloud credentials unless the "
    "endpoint is blocked for pods or hop-limited (IMDSv2 with hop limit 1, GKE metadata concealment). "
    "inspect-runtime tells the cloud from /sys and does not send the request.",
    "Block the metadata endpoint for pods (network policy, IMDSv2 hop limit 1, Workload Identity / IRSA).",
    Capability.CREDENTIAL_ACCESS,
)
ENVIRONMENT_CREDENTIALS = _deployment_rule(
    "MLO718",
    "credentials-in-environment",
    "Platform credentials sit in the process environment",
    Severity.MEDIUM,
    "Variables named like tokens, keys and passwords are readable by any code in the container (a model's "
    "payload reads os.environ first). Only the names are reported; values are never read.",
    "Mount credentials as files readable only by the server, scope them to the model server's needs, and "
    "keep registry-write credentials out of serving containers.",
    Capability.CREDENTIAL_ACCESS,
)
PLATFORM_STARTED_OPEN = Rule(
    "MLO719",
    "platform-started-open",
    "ML platform started with its authentication off or on every interface without it",
    Severity.HIGH,
    _EXPOSED,
    _RCE,
    "The command that starts the platform turns its protection off: Jupyter with an empty token (and no "
    "password) runs anyone's code in its kernels, MLflow without --app-name basic-auth lets anyone replace "
    "registered models, Ray's dashboard Jobs API runs any command, TensorBoard shows every run's data. "
    "Bound to 0.0.0.0 (every interface) it answers whoever reaches the host or the pod. Severity follows "
    "the platform (data/deployments.toml, platform_starts).",
    "Keep the platform's authentication on (a Jupyter token or password, MLflow basic-auth or an "
    "authenticating proxy), bind it to 127.0.0.1 and publish it only through an authenticating gateway.",
)
MANIFEST_UNREADABLE = _deployment_rule(
    "MLO716",
    "manifest-unreadable",
    "Deployment file could not be parsed",
    Severity.LOW,
    "The file looks like a Kubernetes, Compose or container manifest but is not valid YAML/JSON (a Helm "
    "template, say), so its settings were not checked.",
    "Render templates first (helm template) and scan the output, or fix the file.",
    _EVADE,
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

# Every rule defined above, by id: a new rule cannot be left out of the SARIF catalog.
ALL_RULES: tuple[Rule, ...] = tuple(sorted((v for v in globals().values() if isinstance(v, Rule)), key=lambda r: r.id))
