"""The reviewed policy data: consistent, and judging the published primitive families right."""

from __future__ import annotations

import pytest

from mloops.picklevm.policy import BUILD_ONLY, DANGEROUS, INTROSPECTION, SAFE, UNKNOWN, default_policy

POLICY = default_policy()


def judge(dotted: str):
    module, _, qualname = dotted.partition(":")
    return POLICY.judge(POLICY.canonical(module, qualname))


def test_no_allowlisted_name_is_also_denied():
    for name in POLICY.allow_call | POLICY.allow_build:
        parts = name.split(".")
        assert POLICY._denied(parts) is None, name


def test_call_and_build_tiers_do_not_overlap():
    assert not POLICY.allow_call & POLICY.allow_build


def test_every_semantics_entry_names_a_listed_callable():
    for name in POLICY.semantics:
        listed = name in POLICY.allow_call or POLICY._denied(name.split(".")) is not None
        assert listed, f"{name} has semantics but is neither allowed nor denied"


def test_allowlist_files_are_sorted_and_unique():
    from importlib import resources

    base = resources.files("mloops.picklevm").joinpath("data", "allow")
    for tier in ("call", "build"):
        for entry in base.joinpath(tier).iterdir():
            names = [line for line in entry.read_text().splitlines() if line and not line.startswith("#")]
            assert names == sorted(set(names)), f"{tier}/{entry.name} is not sorted and unique"


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
    verdict = judge(name)
    assert verdict.status == DANGEROUS and verdict.reached == reached


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
