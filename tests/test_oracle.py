"""The differential oracle (fuzz/): the recorder sees what real loads do, and a short seeded campaign of
generated and mutated pickles finds no case that mloops claims clean while a real load does something
outside that claim.

The recorder's zygote imports the allowlisted libraries once (about 15 s); the campaign then scans a few
thousand cases with mloops and loads the claimed-clean ones in sandboxed workers.
"""

from __future__ import annotations

import importlib
import os
import pickle
import types
from collections import Counter, OrderedDict

import pytest
from fuzz.generator import Generator
from fuzz.mutate import Mutator, seeds_from_child
from fuzz.oracle import Oracle, Zygote, campaign_cases, signature

from mloops.picklevm.assemble import PickleBuilder
from mloops.picklevm.policy import default_policy

# One xdist worker runs this whole module: each zygote costs 15 s and 1.5 GB (see conftest.py).
pytestmark = pytest.mark.xdist_group("oracle")

CASES = 30_000  # under a minute of one shard on a CI machine, after the zygote's start
MUTANT_SHARE = 0.2
SEED = 20240611


@pytest.fixture(scope="module")
def zygote():
    with Zygote() as running:
        yield running


@pytest.fixture(scope="module")
def seeds():
    return seeds_from_child()


@pytest.fixture
def oracle(zygote):
    # A generous guard for a load that never returns (C loops the worker's own timer cannot stop).
    instance = Oracle(zygote, load_guard=30.0)
    yield instance
    instance.close()


def kinds(result: dict) -> set[str]:
    return {violation["kind"] for violation in result["violations"]}


# ------------------------------------------------------------------ the recorder


def test_recorder_blocks_and_reports_a_process(oracle):
    result = oracle.force_load(PickleBuilder(2).call("os", "system", "true").stop().build())
    assert {"process", "call"} <= kinds(result)
    assert result["py"].startswith("Blocked")
    assert result["recycle"] == "violation"


def test_recorder_reports_build_on_a_module(oracle):
    data = PickleBuilder(2).global_("os", "path").push({"sep": "X"}).build_state().stop().build()
    result = oracle.force_load(data)
    mutations = [v for v in result["violations"] if v["kind"] == "mutation"]
    assert mutations and "posixpath" in mutations[0]["what"]


def test_a_killed_worker_leaves_nothing_that_stops_later_workers():
    # Workers' folders were named after their process id in /tmp; killed workers left theirs, and a later
    # worker given the same id died making its own (counted as a loader crash, and a flaky test here).
    with Zygote(full=False) as minimal:
        first = minimal.connect()
        (folder,) = [entry for entry in os.listdir(minimal.folder) if entry.startswith("worker-")]
        first.kill()
        oracle = Oracle(minimal)
        data = PickleBuilder(2).push([1, 2]).stop().build()
        assert oracle.force_load(data)["py"] == "ok"
        oracle.close()
        assert os.path.isdir(os.path.join(minimal.folder, folder)), "the killed worker's folder is still there"
    assert not os.path.exists(minimal.folder), "closing the zygote removes every worker's folder"


def test_the_outcome_of_a_load_is_told_without_running_what_it_made(oracle):
    # KeyError(module) formats the module's repr, which raised here and killed the worker (campaign case
    # 7825738: 155 generated cases were recorded as loader crashes this way).
    layout = PickleBuilder(4).stack_global("torch", "serialization._get_layout").mark()
    layout.global_("copyreg", "__newobj_ex__").mark().stack_global("torch.nn.modules.activation", "ReLU6")
    layout.push(()).push({}).tuple_from_mark().reduce().tuple_from_mark().reduce().stop()
    result = oracle.force_load(layout.build())
    assert "worker" not in result, result
    assert result["py"].startswith("KeyError: (message not formatted"), result["py"]


def test_recorder_blocks_eval_reached_through_a_module_alias(oracle):
    data = PickleBuilder(4).stack_global("enum", "bltns.eval").push(("0",)).reduce().stop().build()
    result = oracle.force_load(data)
    assert {"exec", "call"} <= kinds(result)


def test_recorder_blocks_writing_a_file(oracle):
    data = PickleBuilder(2).call("builtins", "open", "oracle-marker", "w").stop().build()
    assert "file-write" in kinds(oracle.force_load(data))


def unlisted_class_with(method: str) -> tuple[str, str]:
    """A standard-library class on neither allowlist whose own namespace defines ``method`` in Python."""
    policy = default_policy()
    for module_name in ("typing", "http.cookies", "email.message", "configparser", "xml.dom.minidom", "tarfile"):
        module = importlib.import_module(module_name)
        for name, value in sorted(vars(module).items()):
            dotted = f"{module_name}.{name}"
            if not isinstance(value, type) or value.__module__ != module_name or name.startswith("_"):
                continue
            if dotted in policy.allow_call or dotted in policy.allow_build:
                continue
            if isinstance(vars(value).get(method), types.FunctionType):
                return module_name, name
    pytest.skip(f"every candidate class with a Python {method} is allowlisted")


def rebuilt(module: str, name: str) -> PickleBuilder:
    """copyreg._reconstructor(module.name, object, None): an instance made with __new__ only."""
    b = PickleBuilder(2).global_("copyreg", "_reconstructor").mark().global_(module, name)
    return b.global_("builtins", "object").push(None).tuple_from_mark().reduce()


def test_recorder_reports_an_implicit_dunder_of_an_unlisted_class(oracle):
    # An instance of an unlisted class used as a dict key: its Python __hash__ runs.
    module, name = unlisted_class_with("__hash__")
    b = PickleBuilder(2).op(b"}")
    b.parts.extend(rebuilt(module, name).parts[1:])
    data = b.push(1).op(b"s").stop().build()
    result = oracle.force_load(data, medium=[f"{module}.{name}"])
    hooks = [v["what"] for v in result["violations"] if v["kind"] == "python-call"]
    assert any(what.endswith(".__hash__") for what in hooks), result


def test_recorder_allows_the_own_setstate_of_a_class_reported_medium(oracle):
    module, name = unlisted_class_with("__setstate__")
    data = rebuilt(module, name).push({"key": "k", "value": "v", "coded_value": "v"}).build_state().stop().build()
    result = oracle.force_load(data, medium=[f"{module}.{name}"])
    assert result["violations"] == [], result


def test_recorder_blocks_the_import_of_a_module_the_file_does_not_name(oracle):
    data = PickleBuilder(2).global_("tabnanny", "check").stop().build()
    assert "import" in kinds(oracle.force_load(data, modules=[]))
    assert "import" not in kinds(oracle.force_load(data, modules=["tabnanny"]))


def test_recorder_bounds_memory(oracle):
    data = PickleBuilder(2).call("builtins", "bytes", 16 * 2**30).stop().build()
    result = oracle.force_load(data)
    assert "MemoryError" in result["py"]


@pytest.mark.parametrize(
    "obj",
    [
        {"a": [1, 2.5, (3, "x")], "b": {1, 2}, "c": frozenset([3]), "d": b"\x00" * 10},
        OrderedDict(z=1),
        __import__("datetime").datetime(2024, 1, 2, 3, 4, 5),
        __import__("decimal").Decimal("-1.25"),
        __import__("fractions").Fraction(1, 3),
    ],
)
def test_recorder_finds_nothing_in_benign_pickles(oracle, obj):
    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
        result = oracle.force_load(pickle.dumps(obj, protocol=protocol))
        assert result["violations"] == [], (protocol, result)
        assert result["py"] == "ok" and result["c"] == "ok", result


def test_recorder_finds_nothing_in_the_real_library_seeds(oracle, seeds):
    for name, data in seeds.items():
        outcome = oracle.check(data, case_id=name)
        assert outcome.verdict == "clean-agrees", (name, outcome.record())
        assert outcome.load is not None and outcome.load["py"] == "ok", (name, outcome.load)


# ------------------------------------------------------------------ generation


def test_generation_and_mutation_are_reproducible(seeds):
    first, second = Generator(7), Generator(7)
    assert [first.case(i) for i in range(50)] == [second.case(i) for i in range(50)]
    assert Generator(8).case(3) != first.case(3)
    mutants = Mutator(seeds, 7)
    assert [mutants.case(i) for i in range(30)] == [Mutator(seeds, 7).case(i) for i in range(30)]


def test_generator_covers_every_protocol():
    generator = Generator(3)
    labels = Counter(generator.case(i)[1].split(":")[1] for i in range(300))
    assert set(labels) == {"p0", "p1", "p2", "p3", "p4", "p5"}


# ------------------------------------------------------------------ the campaign


def test_short_campaign_finds_no_bypass_and_no_crash(oracle, seeds):
    total = CASES
    bad = []
    for outcome in oracle.run(campaign_cases(SEED, total, seeds=seeds, mutant_share=MUTANT_SHARE)):
        if outcome.verdict in ("bypass", "crash", "hang"):
            bad.append(f"{outcome.case_id} {outcome.origin} {signature(outcome.record())} {outcome.data.hex()}")
    summary = oracle.tally.summary()
    print(summary)
    assert summary["cases"] == total
    # Not vacuous: hundreds of cases were claimed clean and really loaded by both unpicklers.
    assert summary["verdicts"]["clean-agrees"] >= 300, summary
    assert summary["really_loaded"] >= 300, summary
    assert summary["verdicts"]["rejected"] >= 300, summary
    assert bad == [], "\n".join(bad[:40])


def test_a_static_method_given_a_class_is_not_that_class_running(oracle):
    # ipaddress's static _split_scope_id got the str class as its argument: not str's code running
    # (campaign case 5249492).
    data = b"cipaddress\nIPv6Interface\n(}cbuiltins\ntype\n(S'rot13'\ntRI65535\nstR."
    assert "python-call" not in kinds(oracle.force_load(data))


def test_library_state_of_a_class_the_file_only_names_is_not_the_file_running(oracle):
    # The file names pathlib._Flavour, then PosixPath('a') runs pathlib's own _posix_flavour.parse_parts:
    # library state, the same for any caller (campaign case 5045590).
    data = b"\x80\x04cpathlib\n_Flavour\n0cpathlib\nPosixPath\n(U\x01atR."
    result = oracle.force_load(data)
    assert "python-call" not in kinds(result)
    assert any(note["kind"] == "library-state" for note in result["notes"])


def test_the_harness_timer_firing_inside_the_profiler_is_no_violation(monkeypatch):
    # Oracle finding: a 2 s import under load let the harness's timer fire inside its own profiler; the
    # interpreter then turns the profiler off (audited as sys.setprofile), which is not the file's doing.
    from fuzz import recorder

    case = recorder.Case("timer", [], [])
    monkeypatch.setattr(recorder, "_CASE", case)
    monkeypatch.setattr(recorder, "_TIMED_OUT", False)  # restored after the test
    with pytest.raises(recorder.CaseTimeout):
        recorder._timeout_handler(0, None)
    recorder._audit("sys.setprofile", ())
    assert case.violations == []
    assert [note["kind"] for note in case.notes] == ["profiler-lost"]
    recorder._TIMED_OUT = False
    with pytest.raises(recorder.Blocked, match=r"sys\.setprofile"):  # any other call still is blocked
        recorder._audit("sys.setprofile", ())
