"""TorchScript archives, torch.export (.pt2) archives and NeMo (.nemo) archives.

Benign files come from torch itself. Malicious ones are real archives with edited members;
where the real loader can run them, a child process proves it (the payload creates a marker).
"""

from __future__ import annotations

import io
import pickle
import re
import tarfile
from pathlib import Path

import pytest
from corpus import torch_archives as T
from corpus.torch_archives import (
    LARGE_CODE_BODY,
    LARGE_NEMO_CONFIGS,
    OVERSIZED_CODE_BODY,
    edit_code,
    scripted_with_code,
)

from mloops import scan_path
from mloops.core import Report, Severity
from mloops.parsers.yaml_keys import find_keys

from .conftest import findings_at_least, rule_ids, worst

torch = pytest.importorskip("torch")


def scan(path: Path, data: bytes | None = None) -> Report:
    if data is not None:
        path.write_bytes(data)
    return scan_path(str(path))


def above_info(report: Report) -> list[str]:
    return [
        f"{f.severity.label} {f.rule.id} {f.location}: {f.message}" for f in findings_at_least(report, Severity.LOW)
    ]


def mlo150(report: Report) -> list:
    return [f for f in report.findings if f.rule.id == "MLO150"]


def formats(report: Report) -> set[str]:
    return {asset.format for asset in report.assets}


# ====================================================================== TorchScript: benign


@pytest.mark.parametrize("name", sorted(T.SCRIPTED))
def test_scripted_module_has_no_finding_above_info(tmp_path: Path, name: str):
    report = scan(tmp_path / "m.pt", T.scripted(name, tmp_path / "m.pt"))
    assert not above_info(report), above_info(report)
    assert {"torchscript-zip", "torchscript-code"} <= formats(report)


@pytest.mark.parametrize("name", ["control_flow", "transformer", "quantized"])
def test_frozen_scripted_module_has_no_finding_above_info(tmp_path: Path, name: str):
    report = scan(tmp_path / "m.pt", T.scripted(name, tmp_path / "m.pt", frozen=True))
    assert not above_info(report), above_info(report)


@pytest.mark.parametrize("name", sorted(T.TRACED))
def test_traced_module_has_no_finding_above_info(tmp_path: Path, name: str):
    report = scan(tmp_path / "m.pt", T.traced(name, tmp_path / "m.pt"))
    assert not above_info(report), above_info(report)


def test_traced_transformers_model_has_no_finding_above_info(tmp_path: Path):
    report = scan(tmp_path / "bert.pt", T.traced_bert(tmp_path / "bert.pt"))
    assert not above_info(report), above_info(report)


def test_lite_interpreter_archive_has_no_finding_above_info(tmp_path: Path):
    report = scan(tmp_path / "m.ptl", T.lite_interpreter(tmp_path / "m.ptl"))
    assert not above_info(report), above_info(report)


def test_torchscript_class_globals_are_judged_strictly_outside_torchscript(tmp_path: Path):
    """The same data.pkl in a torch.save-style archive (no constants.pkl) is read by Python's
    pickle, which cannot import __torch__: it keeps the ordinary judgement."""
    entries = T.members(T.scripted("linear", tmp_path / "m.pt"))
    plain = [(name, body) for name, body in entries if not name.endswith(("constants.pkl", ".py", ".debug_pkl"))]
    report = scan(tmp_path / "plain.pt", T.write_zip(plain))
    assert "torchscript-zip" not in formats(report)
    assert "MLO120" in rule_ids(report)


# ====================================================================== TorchScript: malicious


def test_setstate_calling_torch_save_runs_inside_torch_jit_load(tmp_path: Path):
    """__setstate__ is compiled from code/ and called by torch.jit.load's unpickler for the
    module object in data.pkl: the malicious pickle of a TorchScript archive. torch.load of the
    same file dispatches to torch.jit.load and runs it too; weights_only=True refuses the archive."""
    marker = tmp_path / "marker"
    path = tmp_path / "saves.pt"
    T.saves_on_load(path, marker)
    report = scan(path)
    assert not marker.exists(), "scanning ran the payload"
    saves = [f for f in mlo150(report) if f.evidence.get("spelled") == "torch.save"]
    assert saves and saves[0].severity == Severity.HIGH
    assert saves[0].evidence["category"] == "file-access" and "line" in saves[0].evidence
    assert "/code/__torch__" in saves[0].location.members[-1]
    assert report.exit_code(Severity.HIGH) == 1

    ran, stderr = T.runs(f"import torch; torch.jit.load({str(path)!r})", marker)
    assert ran, stderr
    marker.unlink()
    ran, stderr = T.runs(f"import torch; torch.load({str(path)!r}, weights_only=False)", marker)
    assert ran, stderr
    marker.unlink()
    ran, stderr = T.runs(f"import torch; torch.load({str(path)!r}, weights_only=True)", marker)
    assert not ran and "weights_only=True" in stderr


def test_decoy_torchscript_layout_is_unpickled_by_torch_load(tmp_path: Path):
    """A checkpoint with a code/ folder and a constants.pkl below the archive folder looks like
    TorchScript to name-based scanners; torch.load only dispatches to torch.jit.load for a
    top-level constants.pkl, so it unpickles data.pkl with Python's pickle and runs the payload."""
    marker = tmp_path / "marker"
    path = tmp_path / "decoy.pt"
    report = scan(path, T.decoy_torchscript(marker))
    assert "torchscript-zip" not in formats(report)
    assert worst(report) == Severity.CRITICAL and "MLO101" in rule_ids(report)
    assert not marker.exists()
    ran, stderr = T.runs(f"import torch; torch.load({str(path)!r}, weights_only=False)", marker)
    assert ran, stderr


def test_python_global_in_real_torchscript_pickle_stays_reported(tmp_path: Path):
    """In an archive torch.load hands to torch.jit.load, the C++ unpickler cannot import Python
    (the load fails, the payload does not run), but only __torch__ names are judged its way."""
    marker = tmp_path / "marker"
    path = tmp_path / "ts.pt"
    report = scan(path, T.torchscript_with_pickle(path, T.touch(marker)))
    assert "torchscript-zip" in formats(report)
    assert worst(report) == Severity.CRITICAL and "MLO101" in rule_ids(report)
    ran, stderr = T.runs(f"import torch; torch.load({str(path)!r}, weights_only=False)", marker)
    assert not ran and "system" in stderr


# Statements added to a real module's __setstate__ (code/__torch__.py); "{marker}" is filled in.
RUNS_IN_JIT_LOAD = {
    "ops-spelling": ('ops.aten.save(torch.zeros([1]), "{marker}")', "file-access"),
    "namespace-alias": ('_t = torch\n    _t.save(torch.zeros([1]), "{marker}")', "namespace-alias"),
    "getattr": ('getattr(torch, "save")(torch.zeros([1]), "{marker}")', "file-access"),
}


@pytest.mark.parametrize("variant", sorted(RUNS_IN_JIT_LOAD))
def test_edited_code_calling_file_operators_is_reported_and_runs(tmp_path: Path, variant: str):
    marker = tmp_path / "marker"
    statement, category = RUNS_IN_JIT_LOAD[variant]
    path = tmp_path / "edited.pt"
    report = scan(path, T.with_state_code(path, statement.format(marker=marker)))
    flagged = mlo150(report)
    assert any(f.evidence["category"] == category and f.severity >= Severity.HIGH for f in flagged), above_info(report)
    ran, stderr = T.runs(f"import torch; torch.jit.load({str(path)!r})", marker)
    assert ran, stderr


# Structural only: torch.jit.load refuses these without the native library (custom namespaces)
# or because TorchScript cannot compile Python; mloops reports them all the same.
STRUCTURAL = {
    "custom-operator": ("_x = ops.evil_ns.run(self.weight)", "custom-operator", Severity.HIGH),
    "torch-ops-spelling": ("_x = torch.ops.evil_ns.run(self.weight)", "custom-operator", Severity.HIGH),
    "custom-class": ("_x = __torch__.torch.classes.evil_ns.Loader()", "custom-class", Severity.HIGH),
    "from-file": ('_x = torch.from_file("/etc/passwd", False, 64)', "file-access", Severity.HIGH),
    "python-bridge": ("_x = ops.prim.PythonOp()", "python-bridge", Severity.CRITICAL),
    "distributed": ("_x = ops.c10d.broadcast_(self.weight)", "distributed", Severity.MEDIUM),
    "import": ("import os", "python-escape", Severity.HIGH),
    "eval": ('_x = eval("1")', "python-escape", Severity.HIGH),
    "os-module": ('_x = os.system("id")', "python-escape", Severity.HIGH),
    "dunder": ("_x = self.tag.__class__.__subclasses__()", "introspection", Severity.HIGH),
    "ops-alias": ("_x = ops.aten", "namespace-alias", Severity.HIGH),
}


@pytest.mark.parametrize("variant", sorted(STRUCTURAL))
def test_edited_code_outside_benign_torchscript_is_reported(tmp_path: Path, variant: str):
    statement, category, severity = STRUCTURAL[variant]
    path = tmp_path / "edited.pt"
    report = scan(path, T.with_state_code(path, statement))
    matching = [f for f in mlo150(report) if f.evidence["category"] == category]
    assert matching and matching[0].severity == severity, above_info(report)
    assert matching[0].evidence["line"].isdigit()


def test_custom_class_in_torchscript_pickle_is_reported(tmp_path: Path):
    def rename(body: bytes) -> bytes:
        renamed = re.sub(rb"c__torch__[\w.]*\nWithState\n", b"c__torch__.torch.classes.evil_ns\nWithState\n", body)
        assert renamed != body
        return renamed

    path = tmp_path / "m.pt"
    data = T.edit_member(T.scripted("with_state", path), "/data.pkl", rename)
    report = scan(path, data)
    assert "MLO120" in rule_ids(report), above_info(report)


def test_path_traversal_member_names_in_torchscript_archive(tmp_path: Path):
    data = T.scripted("linear", tmp_path / "m.pt")
    folder = T.archive_folder(data)
    entries = [*T.members(data), (f"{folder}/code/../../../../home/user/.bashrc", b"x"), ("/etc/cron.d/x", b"x")]
    report = scan(tmp_path / "m.pt", T.write_zip(entries))
    assert "torchscript-zip" in formats(report)
    traversal = [f for f in report.findings if f.rule.id == "MLO206"]
    assert len(traversal) == 2 and all(f.severity == Severity.HIGH for f in traversal)


# ------------------------------------------------------------------ malformed and hostile code


@pytest.mark.parametrize(
    "body",
    [b"class M(Module:\n  pass\n", b"\xff\xfe not utf-8", b"x = 1\x00\n", b"x = " + b"(" * 5000 + b")" * 5000],
    ids=["syntax", "not-utf8", "nul-byte", "deep-nesting"],
)
def test_unparseable_code_is_malformed_not_a_crash(tmp_path: Path, body: bytes):
    path = tmp_path / "m.pt"
    report = scan(path, edit_code(T.scripted("linear", path), body))
    assert "MLO201" in rule_ids(report) and "MLO903" not in rule_ids(report)


def test_deeply_nested_expression_that_parses_is_analyzed_without_recursion(tmp_path: Path):
    body = ("x = " + " + ".join(["torch.save"] * 20000) + "\n").encode()
    path = tmp_path / "m.pt"
    report = scan(path, edit_code(T.scripted("linear", path), body))
    assert "MLO903" not in rule_ids(report)
    assert "MLO201" in rule_ids(report) or any(f.evidence.get("uses") == "20000" for f in mlo150(report))


def test_garbage_data_pkl_in_torchscript_archive_is_malformed(tmp_path: Path):
    path = tmp_path / "m.pt"
    report = scan(path, T.edit_member(T.scripted("linear", path), "/data.pkl", lambda _: b"PK\x03\x04 not a pickle"))
    assert "MLO201" in rule_ids(report)


# How fast these scan (linearly: about 3 s on an idle machine) is measured by bench/unit_speed.py.
def test_large_code_file_is_parsed(tmp_path: Path):
    path = tmp_path / "m.pt"
    report = scan(path, scripted_with_code(path, LARGE_CODE_BODY))
    assert len(LARGE_CODE_BODY) > 1_000_000 and not above_info(report)


def test_code_beyond_the_size_bound_is_not_parsed(tmp_path: Path):
    path = tmp_path / "m.pt"
    assert "MLO901" in rule_ids(scan(path, scripted_with_code(path, OVERSIZED_CODE_BODY)))


# ====================================================================== torch.export (.pt2)


def test_exported_program_has_no_finding_above_info(tmp_path: Path):
    report = scan(tmp_path / "m.pt2", T.exported(tmp_path / "m.pt2"))
    assert not above_info(report), above_info(report)
    assert {"pytorch-pt2", "pytorch-export-graph"} <= formats(report)
    # the sample inputs are a torch.save checkpoint: reached by content, judged by the pickle engine
    assert "pytorch-pickle" in formats(report) and "MLO100" in rule_ids(report)


def test_custom_operator_in_real_export_is_reported(tmp_path: Path):
    report = scan(tmp_path / "c.pt2", T.exported_custom_op(tmp_path / "c.pt2"))
    custom = [f for f in mlo150(report) if f.evidence["category"] == "custom-operator"]
    assert custom and custom[0].severity == Severity.HIGH
    assert "mloops_demo::scale" in custom[0].message and custom[0].evidence["node"]


def test_opaque_constant_pickle_runs_inside_torch_export_load(tmp_path: Path):
    """torch.export.load pickle.loads every constant its config marks as an opaque object."""
    marker = tmp_path / "marker"
    path = tmp_path / "opaque.pt2"
    report = scan(path, T.with_opaque_constant(T.exported(tmp_path / "m.pt2"), T.touch(marker)))
    critical = findings_at_least(report, Severity.CRITICAL)
    assert critical and critical[0].location.members[-1].endswith("data/constants/opaque_obj_0")
    assert not marker.exists()
    ran, stderr = T.runs(f"import torch; torch.export.load({str(path)!r})", marker)
    assert ran, stderr


GRAPH_TARGETS = {
    # a Python function reached through torch's attributes; torch's verifier refuses it at load
    "python-function": ("torch.serialization.os.system", Severity.CRITICAL, "process"),
    "unlisted-function": ("torch.utils.data.get_worker_info", Severity.HIGH, "graph-function"),
    "file-operator": ("torch.ops.aten.save.default", Severity.HIGH, "file-access"),
    "extension-operator": ("#evil_ns:run", Severity.HIGH, "custom-operator"),
}


@pytest.mark.parametrize("variant", sorted(GRAPH_TARGETS))
def test_graph_targets_beyond_operators_are_reported(tmp_path: Path, variant: str):
    """Structural: the node target is edited in a real exported graph."""
    target, severity, category = GRAPH_TARGETS[variant]
    arguments = [{"name": "command", "arg": {"as_string": "id"}, "kind": 1}]
    data = T.edit_graph(T.exported(tmp_path / "m.pt2"), T.retarget_first_node(target, arguments))
    report = scan(tmp_path / "edited.pt2", data)
    matching = [f for f in mlo150(report) if f.evidence["category"] == category]
    assert matching and matching[0].severity == severity, above_info(report)


def test_python_function_target_is_refused_by_torch_verifier(tmp_path: Path):
    """Why a Python-function target is structural only: torch.export.load's verifier rejects it."""
    marker = tmp_path / "marker"
    arguments = [{"name": "command", "arg": {"as_string": f"touch {marker}"}, "kind": 1}]
    edit = T.retarget_first_node("torch.serialization.os.system", arguments)
    path = tmp_path / "edited.pt2"
    path.write_bytes(T.edit_graph(T.exported(tmp_path / "m.pt2"), edit))
    ran, stderr = T.runs(f"import torch; torch.export.load({str(path)!r}).module()(torch.randn(2, 4))", marker)
    assert not ran and "Valid builtin ops" in stderr


def test_operator_passed_as_argument_is_checked(tmp_path: Path):
    def edit(program: dict) -> None:
        node = program["graph_module"]["graph"]["nodes"][0]
        node["inputs"].append({"name": "fn", "arg": {"as_operator": "torch.ops.evil_ns.run.default"}, "kind": 1})

    report = scan(tmp_path / "e.pt2", T.edit_graph(T.exported(tmp_path / "m.pt2"), edit))
    assert any(f.evidence.get("argument") == "as_operator" for f in mlo150(report)), above_info(report)


@pytest.mark.parametrize(
    "body", [b"{not json", b"[" * 100_000 + b"]" * 100_000, b"\xff\xfe"], ids=["syntax", "deep", "binary"]
)
def test_malformed_graph_is_malformed_not_a_crash(tmp_path: Path, body: bytes):
    data = T.edit_member(T.exported(tmp_path / "m.pt2"), "models/model.json", lambda _: body)
    report = scan(tmp_path / "bad.pt2", data)
    assert "MLO201" in rule_ids(report) and "MLO903" not in rule_ids(report)


def test_export_graph_inside_a_torchscript_archive_is_still_checked(tmp_path: Path):
    """torch.load reads a TorchScript archive, torch.export.load the same file's .pt2 members."""
    graph = dict(T.members(T.exported_custom_op(tmp_path / "c.pt2")))
    script = T.scripted("linear", tmp_path / "m.pt")
    folder = T.archive_folder(script)
    model = next(body for name, body in graph.items() if name.endswith("models/model.json"))
    entries = [*T.members(script), (f"{folder}/archive_format", b"pt2"), (f"{folder}/models/model.json", model)]
    report = scan(tmp_path / "both.pt", T.write_zip(entries))
    assert "torchscript-zip" in formats(report)
    assert any(f.evidence["category"] == "custom-operator" for f in mlo150(report)), above_info(report)


def test_aotinductor_native_library_is_reported(tmp_path: Path):
    """Structural: AOTInductor packages carry data/aotinductor/<model>/*.so (and .cpp sources)."""
    data = T.exported(tmp_path / "m.pt2")
    folder = T.archive_folder(data)
    library = (f"{folder}/data/aotinductor/model/c2abc.wrapper.so", b"\x7fELF\x02\x01\x01" + bytes(64))
    report = scan(tmp_path / "aoti.pt2", T.write_zip([*T.members(data), library]))
    native = mlo150(report)
    assert native and native[0].severity == Severity.HIGH and "aotinductor" in native[0].location.members[-1]


# ====================================================================== NeMo


@pytest.mark.parametrize("compress", [True, False], ids=["tar.gz", "tar"])
def test_benign_nemo_archive_has_no_finding_above_info(tmp_path: Path, compress: bool):
    report = scan(tmp_path / "asr.nemo", T.nemo_archive(T.NEMO_CONFIG, T.nemo_weights(), compress))
    assert not above_info(report), above_info(report)
    assert {"nemo", "nemo-config", "pytorch-pickle"} <= formats(report)


def test_nemo_with_malicious_checkpoint_is_reported_and_runs(tmp_path: Path):
    """Restoring a .nemo extracts model_weights.ckpt and loads it with torch.load; proven here
    with torch.load(weights_only=False) on the member, as a restore that unpickles it runs it."""
    marker = tmp_path / "marker"
    path = tmp_path / "evil.nemo"
    report = scan(path, T.nemo_archive(T.NEMO_CONFIG, T.torch_save_bytes({"w": T.touch(marker)})))
    critical = findings_at_least(report, Severity.CRITICAL)
    assert critical and "model_weights.ckpt" in str(critical[0].location)
    code = (
        "import io, tarfile, torch\n"
        f"archive = tarfile.open({str(path)!r})\n"
        "torch.load(io.BytesIO(archive.extractfile('./model_weights.ckpt').read()), weights_only=False)\n"
    )
    ran, stderr = T.runs(code, marker)
    assert ran, stderr


# Config snippets appended to a benign config: (YAML, expected severity or None for no finding).
# Structural: Hydra and NeMo are not installed here; hydra.utils.instantiate imports and calls
# every _target_ with the sibling keys as arguments.
NEMO_TARGETS = {
    "os-system": ("evil:\n  _target_: os.system\n  command: id\n", Severity.CRITICAL),
    "builtins-eval": ("evil:\n  _target_: builtins.eval\n", Severity.CRITICAL),
    "quoted": ('evil:\n  _target_: "subprocess.Popen"\n', Severity.CRITICAL),
    "escaped": ('evil:\n  "_tar\\x67et_": "os.sys\\u0074em"\n', Severity.CRITICAL),
    "flow": ("evil: {_target_: os.system, command: id}\n", Severity.CRITICAL),
    "json-style": ('evil: {"_target_":"posix.system"}\n', Severity.CRITICAL),
    "next-line": ("evil:\n  _target_:\n    os.system\n", Severity.CRITICAL),
    "block-scalar": ("evil:\n  _target_: >-\n    os.system\n", Severity.CRITICAL),
    "alias": ("name: &cmd os.system\nevil:\n  _target_: *cmd\n", Severity.CRITICAL),
    "tagged": ("evil:\n  _target_: !!str os.system\n", Severity.CRITICAL),
    "through-nemo-module": ("evil:\n  _target_: nemo.utils.os.system\n", Severity.CRITICAL),
    "through-torch": ("evil:\n  _target_: nemo.core.torch.load\n", Severity.CRITICAL),
    "torch-hub": ("evil:\n  _target_: torch.hub.load\n", Severity.CRITICAL),
    "dunder": ("evil:\n  _target_: nemo.core.__class__\n", Severity.CRITICAL),
    "legacy-cls": ("evil:\n  cls: os.system\n  params: {}\n", Severity.CRITICAL),
    "foreign-package": ("evil:\n  _target_: mypackage.layers.Evil\n", Severity.HIGH),
    "foreign-top-level-target": ("target: mypackage.models.Evil\n", Severity.HIGH),
    "loader-in-nemo": ("evil:\n  _target_: nemo.collections.asr.models.ASRModel.from_pretrained\n", Severity.HIGH),
    "interpolation": ("evil:\n  _target_: ${oc.env:EVIL_CLASS}\n", Severity.HIGH),
    "unknown-alias": ("evil:\n  _target_: *nowhere\n", Severity.HIGH),
    "complex-key": ("? _target_\n: os.system\n", Severity.HIGH),
    "mapping-value": ("evil:\n  _target_:\n    nested: 1\n", Severity.HIGH),
    "nemo-module": ("extra:\n  _target_: nemo.collections.asr.modules.ConvASREncoder\n", None),
    "torch-layer": ("extra:\n  _target_: torch.nn.Identity\n", None),
    "plain-word-target": ("extra:\n  target: text\n", None),
}


@pytest.mark.parametrize("variant", sorted(NEMO_TARGETS))
def test_nemo_config_targets(tmp_path: Path, variant: str):
    snippet, severity = NEMO_TARGETS[variant]
    report = scan(tmp_path / "m.nemo", T.nemo_archive(T.NEMO_CONFIG + snippet, T.nemo_weights()))
    targets = [f for f in report.findings if f.rule.id == "MLO151"]
    if severity is None:
        assert not above_info(report), above_info(report)
        return
    assert targets and max(f.severity for f in targets) == severity, above_info(report)
    assert targets[0].location.members[-1].endswith("model_config.yaml") and targets[0].evidence["line"]


@pytest.mark.parametrize("config", [b'a: "unterminated\n', b"\xff\xfe\x00bad"], ids=["unterminated-quote", "not-utf8"])
def test_malformed_nemo_config_is_malformed(tmp_path: Path, config: bytes):
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as archive:
        info = tarfile.TarInfo("./model_config.yaml")
        info.size = len(config)
        archive.addfile(info, io.BytesIO(config))
    report = scan(tmp_path / "bad.nemo", out.getvalue())
    assert "MLO201" in rule_ids(report) and "MLO903" not in rule_ids(report)


@pytest.mark.parametrize("name", LARGE_NEMO_CONFIGS)
def test_large_nemo_config_is_parsed(tmp_path: Path, name: str):
    config = T.NEMO_CONFIG + LARGE_NEMO_CONFIGS[name]  # linear: a few seconds; bench/unit_speed.py measures it
    report = scan(tmp_path / "big.nemo", T.nemo_archive(config, T.nemo_weights()))
    assert len(config) > 3_000_000 and not above_info(report)


def test_nemo_config_beyond_the_size_bound_is_a_scan_limit(tmp_path: Path):
    config = T.NEMO_CONFIG + "# padding\n" * 500_000
    report = scan(tmp_path / "big.nemo", T.nemo_archive(config, T.nemo_weights()))
    assert "MLO901" in rule_ids(report)


# ------------------------------------------------------------------ the YAML reader against PyYAML

YAML_DOCUMENTS = [
    "_target_: os.system",
    "a:\n  _target_: 'os.system'\n  b: 1",
    'x: {"_target_":"os.system", y: 2}',
    '"_tar\\x67et_": "os.sys\\u0074em"',
    "'_target_': 'it''s'",
    "_target_:\n  os.system\nb: 2",
    "_target_: >-\n  os.system\nb: 2",
    "_target_: |\n  os.system\n",
    "a: &x os.system\nb:\n  _target_: *x",
    "_target_: !!str os.system",
    "- _target_: os.system\n- {_target_: nemo.foo.Bar}",
    "_target_: os.system # comment",
    '_target_: "os.\n  system"',
    "_target_: os.\n  system",
    "k: [a, {_target_: os.system}]",
    "doc: |\n  _target_: not.a.key\n_target_: real.key",
    "_target_: a.b\n---\n_target_: c.d",
    "_target_: 'a:b#c'",
    '_target_: "line\\\n  joined"',
]


def _targets(value: object) -> list[str]:
    found: list[str] = []
    pending = [value]
    while pending:
        item = pending.pop(0)
        if isinstance(item, dict):
            found.extend(str(v) for k, v in item.items() if k == "_target_")
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return found


@pytest.mark.parametrize("document", YAML_DOCUMENTS)
def test_yaml_reader_agrees_with_pyyaml(document: str):
    yaml = pytest.importorskip("yaml")
    expected = sorted(t.strip() for doc in yaml.safe_load_all(document) for t in _targets(doc))
    found = sorted((kv.value or "").strip() for kv in find_keys(document, frozenset({"_target_"})))
    assert found == expected


def test_pickle_member_names_never_decide_the_format(tmp_path: Path):
    """A NeMo checkpoint stored under another name still reaches the pickle engine by content."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as archive:
        for name, data in (
            ("./model_config.yaml", T.NEMO_CONFIG.encode()),
            ("./weights.bin", pickle.dumps(T.touch(tmp_path / "m"))),
        ):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    report = scan(tmp_path / "m.nemo", out.getvalue())
    assert worst(report) == Severity.CRITICAL
