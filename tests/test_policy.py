"""The reviewed policy data: consistent, and judging the published primitive families right."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from mloops.picklevm.policy import BUILD_ONLY, DANGEROUS, DATA, INTROSPECTION, SAFE, UNKNOWN, default_policy

POLICY = default_policy()


def judge(dotted: str):
    module, _, qualname = dotted.partition(":")
    return POLICY.judge(POLICY.canonical(module, qualname))


OVERRIDES = tomllib.loads((Path(DATA) / "allow" / "overrides.toml").read_text())


def test_nothing_denied_is_allowed_outside_the_reviewed_overrides():
    for name in POLICY.allow_call | POLICY.allow_build:
        if POLICY._denied(name.split(".")) is not None:
            assert name in OVERRIDES, f"{name} is denied and allowlisted, but not in allow/overrides.toml"


def test_every_override_is_denied_and_says_why():
    for name, spec in OVERRIDES.items():
        assert POLICY._denied(name.split(".")) is not None, f"{name} needs no override: list it in its ecosystem file"
        assert spec["tier"] in ("call", "build") and len(spec["why"]) > 40, name


def test_call_and_build_tiers_do_not_overlap():
    assert not POLICY.allow_call & POLICY.allow_build


def test_every_signature_names_a_listed_callable():
    for name in POLICY.signatures:
        listed = name in POLICY.allow_call or POLICY._denied(name.split(".")) is not None
        assert listed, f"{name} has a signature but is neither allowed nor denied"


def test_allowlist_files_are_sorted_and_unique():
    for entry in sorted((Path(DATA) / "allow" / "build").iterdir()):
        names = [line for line in entry.read_text().splitlines() if line and not line.startswith("#")]
        assert names == sorted(set(names)), f"build/{entry.name} is not sorted and unique"
    for entry in sorted((Path(DATA) / "allow" / "call").iterdir()):
        names = list(tomllib.loads(entry.read_text()))
        assert names == sorted(names), f"call/{entry.name} is not sorted"


def test_enum_members_are_data_and_other_attributes_are_not():
    assert judge("optuna.trial._state:TrialState.COMPLETE").status == BUILD_ONLY
    assert judge("optuna.trial._state:TrialState._missing_").status == UNKNOWN


@pytest.mark.parametrize(
    ("spelled", "canonical"),
    [
        ("enum:bltns.exec", "builtins.exec"),
        ("tempfile:_os.system", "os.system"),
        ("io:_io.open", "io.open"),
        ("random:_os.popen", "os.popen"),
        ("_frozen_importlib_external:_os.system", "os.system"),
    ],
)
def test_aliases_found_by_identity_name_the_real_object(spelled, canonical):
    verdict = judge(spelled)
    assert verdict.status == DANGEROUS and verdict.name == canonical


# Every primitive family from the published gadget research, spelled as the gadgets spell them.
PRIMITIVES = [
    "os:system",
    "posix:system",
    "nt:system",
    "os:execv",
    "posix:execvp",
    "os:spawnlp",
    "os:popen",
    "os:fork",
    "subprocess:Popen",
    "subprocess:check_output",
    "_posixsubprocess:fork_exec",
    "pty:spawn",
    "builtins:exec",
    "builtins:eval",
    "builtins:compile",
    "builtins:__import__",
    "__builtin__:eval",
    "importlib:import_module",
    "importlib.machinery:SourceFileLoader",
    "runpy:_run_code",
    "runpy:run_path",
    "pydoc:locate",
    "pydoc:pipepager",
    "pkgutil:resolve_name",
    "operator:attrgetter",
    "_operator:methodcaller",
    "code:InteractiveInterpreter.runcode",
    "code:InteractiveConsole",
    "codeop:compile_command",
    "timeit:timeit",
    "timeit:Timer",
    "cProfile:run",
    "cProfile:runctx",
    "profile:run",
    "profile:Profile.runctx",
    "trace:Trace.runctx",
    "bdb:Bdb.run",
    "pdb:run",
    "doctest:debug_script",
    "idlelib.pyshell:ModifiedInterpreter.runcode",
    "idlelib.autocomplete:AutoComplete.get_entity",
    "lib2to3.pgen2.grammar:Grammar.loads",
    "asyncio.unix_events:_UnixSubprocessTransport._start",
    "asyncio.subprocess:create_subprocess_shell",
    "webbrowser:open",
    "shutil:copyfile",
    "shutil:rmtree",
    "os:remove",
    "io:FileIO",
    "_io:FileIO",
    "builtins:open",
    "logging:FileHandler",
    "distutils.file_util:write_file",
    "socket:socket",
    "socket:create_connection",
    "urllib.request:urlopen",
    "ssl:get_server_certificate",
    "http.client:HTTPConnection",
    "requests.api:get",
    "ctypes:CDLL",
    "ctypes.util:find_library",
    "_ctypes:dlopen",
    "pip:main",
    "pip._internal.cli.main:main",
    "ensurepip:_run_pip",
    "venv:create",
    "numpy.testing._private.utils:runstring",
    "numpy.f2py.crackfortran:getlincoef",
    "torch.hub:load",
    "torch.hub:_load_local",
    "torch:load",
    "torch.serialization:load",
    "torch._inductor.codecache:compile_file",
    "torch.utils.bottleneck.__main__:run_cprofile",
    "torch._dynamo.guards:GuardBuilder.get",
    "torch.fx.experimental.symbolic_shapes:ShapeEnv.evaluate_guards_expression",
    "torch.utils.collect_env:run",
    "torch.jit.unsupported_tensor_ops:execWrapper",
    "torch.utils._config_module:ConfigModule.load_config",
    "torch.utils.data.datapipes.utils.decoder:basichandlers",
    "multiprocessing.util:spawnv_passfds",
    "uuid:_get_command_stdout",
    "_osx_support:_read_output",
    "_aix_support:_read_cmd_output",
    "imaplib:IMAP4_stream",
    "_pyrepl.pager:pipe_pager",
    "test.support.script_helper:assert_python_ok",
    "mlflow.projects.backend.local:_run_entry_point",
    "pandas.io.parsers.readers:read_csv",
    "pandas:read_pickle",
    "pickle:loads",
    "_pickle:loads",
    "marshal:loads",
    "dill:loads",
    "joblib:load",
    "numpy:load",
    "yaml:unsafe_load",
    "sys:modules",
    "gc:get_objects",
    "builtins:setattr",
    "builtins:globals",
    "copyreg:add_extension",
    "modelscan.scanners:SavedModelScan",
]


@pytest.mark.parametrize("name", PRIMITIVES)
def test_published_primitives_are_dangerous(name):
    verdict = judge(name)
    assert verdict.status == DANGEROUS, (name, verdict)
    assert verdict.category is not None and verdict.category.severity.name == "CRITICAL"


@pytest.mark.parametrize(
    "name,reached",
    [
        ("pathlib:os.system", "os.system"),
        ("numpy:os.system", "os.system"),
        ("posixpath:os.popen", "os.popen"),
        ("mymodule:subprocess.Popen", "subprocess.Popen"),
        ("mymodule:os.posix.system", "os.posix.system"),
    ],
)
def test_attribute_paths_through_modules_reach_the_primitive(name, reached):
    # named directly when the alias table knows the attribute, through reach_through otherwise
    verdict = judge(name)
    assert verdict.status == DANGEROUS and reached in (verdict.name, verdict.reached)


@pytest.mark.parametrize(
    "name",
    [
        "builtins:print.__self__",
        "numpy:__builtins__",
        "collections:OrderedDict.__init__.__globals__",
        "builtins:object.__subclasses__",
        "torch.nn:Module.__reduce__",
    ],
)
def test_dunder_paths_are_introspection(name):
    assert judge(name).status == INTROSPECTION


@pytest.mark.parametrize(
    "name",
    [
        "torch._utils:_rebuild_tensor_v2",
        "collections:OrderedDict",
        "copyreg:__newobj__",
        "numpy.core.multiarray:_reconstruct",
        "numpy._core.multiarray:_reconstruct",
        "__builtin__:set",
        "copy_reg:_reconstructor",
        "sklearn.tree._tree:Tree",
        "builtins:getattr",
        "datetime:datetime",
        "decimal:Decimal",
        "argparse:Namespace",
    ],
)
def test_known_safe_callables(name):
    assert judge(name).status == SAFE


@pytest.mark.parametrize(
    "name",
    [
        "torch.nn.modules.linear:Linear",
        "sklearn.ensemble._forest:RandomForestClassifier",
        "numpy:ndarray",
        "pandas:DataFrame",
        "xgboost.sklearn:XGBClassifier",
        "torch:float32",
        "numpy:log1p",
    ],
)
def test_library_classes_are_build_only(name):
    assert judge(name).status == BUILD_ONLY


@pytest.mark.parametrize(
    "name", ["myproject.trace:Model", "myproject.code.layers:Block", "__main__:Net", "test_utils:Helper"]
)
def test_user_modules_named_like_stdlib_are_unknown_not_dangerous(name):
    assert judge(name).status == UNKNOWN
