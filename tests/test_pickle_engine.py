"""The symbolic pickle machine: opcode semantics, name resolution, severities and bounds."""

from __future__ import annotations

import collections
import datetime
import decimal
import fractions
import io
import pickle
import struct

import pytest

from mloops.context import Item, ScanContext
from mloops.core import Location, Severity
from mloops.limits import Limits
from mloops.picklevm.assemble import PickleBuilder
from mloops.picklevm.policy import default_policy
from mloops.scan import dispatch

from .conftest import rule_ids, worst


def by_rule(report, rule_id):
    return [f for f in report.findings if f.rule.id == rule_id]


# ------------------------------------------------------------ every real pickle parses


class Plain:
    def __init__(self):
        self.values = [1, 2.5, "x", b"y", None, True]


SAMPLES = [
    {"a": [1, 2, (3, 4)], "b": {1, 2}, "c": frozenset([5]), "d": b"\x00" * 300, "e": "é" * 10},
    collections.OrderedDict(z=1),
    [datetime.datetime(2024, 1, 2, 3, 4, 5), datetime.date(2020, 1, 1), datetime.timedelta(1)],
    decimal.Decimal("-1.25"),
    [2**70, -(2**70), 1.5e300, float("inf"), complex(1, -1)],
    bytearray(b"abc"),
    ["shared"] * 3,
    list(range(1000)),
]


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
@pytest.mark.parametrize("index", range(len(SAMPLES)))
def test_every_cpython_pickle_parses_cleanly(scan, protocol, index):
    report = scan("sample.pkl", pickle.dumps(SAMPLES[index], protocol=protocol))
    assert worst(report) == Severity.INFO, [f.message for f in report.findings]
    assert [a.format for a in report.assets] == ["pickle"]


def test_recursive_structures_do_not_hang(scan):
    looped: list = []
    looped.append(looped)
    report = scan("loop.pkl", pickle.dumps({"loop": looped, "self": [looped] * 3}, protocol=2))
    assert worst(report) == Severity.INFO


# ------------------------------------------------------------ names and resolution


def test_posix_spelling_is_judged_as_os(scan):
    report = scan("x.pkl", PickleBuilder(2).call("posix", "system", "id").stop().build())
    (finding,) = by_rule(report, "MLO101")
    assert finding.severity == Severity.CRITICAL
    assert finding.evidence["callable"] == "os.system"
    assert finding.evidence["spelled"] == "posix.system"
    assert finding.evidence["arguments"] == "('id',)"
    assert finding.evidence["opcode"] == "REDUCE"


def test_python2_names_are_mapped_like_the_unpickler(scan):
    report = scan("x.pkl", PickleBuilder(2).call("__builtin__", "eval", "1").stop().build())
    assert by_rule(report, "MLO101")[0].evidence["callable"] == "builtins.eval"


def test_dotted_attribute_path_reaches_the_real_object(scan):
    report = scan("x.pkl", PickleBuilder(4).stack_global("pathlib", "os.system").push(("id",)).reduce().stop().build())
    (finding,) = by_rule(report, "MLO101")
    assert finding.evidence["callable"] == "os.system"
    assert finding.evidence["spelled"] == "pathlib.os.system"


def test_dunder_path_is_introspection(scan):
    report = scan(
        "x.pkl", PickleBuilder(4).stack_global("collections", "OrderedDict.__init__.__globals__").stop().build()
    )
    assert by_rule(report, "MLO102")[0].severity == Severity.CRITICAL


def test_getattr_on_a_global_is_resolved_and_judged(scan):
    b = PickleBuilder(2).global_("builtins", "getattr").mark().global_("builtins", "print")
    data = b.push("__self__").tuple_from_mark().reduce().stop().build()
    report = scan("x.pkl", data)
    assert by_rule(report, "MLO102")[0].evidence["global"] == "builtins.print.__self__"
    assert "MLO110" not in rule_ids(report)  # getattr itself is a resolver, not an unknown call


def test_method_of_an_allowlisted_class_instance_is_judged_by_class(scan):
    b = PickleBuilder(2).global_("builtins", "getattr").mark().global_("pathlib", "PosixPath").push(("x",)).reduce()
    data = b.push("touch").tuple_from_mark().reduce().push(()).reduce().stop().build()
    (finding,) = by_rule(scan("x.pkl", data), "MLO101")
    assert finding.evidence["callable"] == "pathlib.PosixPath.touch"
    assert finding.evidence["category"] == "file-access"


def test_getattr_with_a_computed_name_then_called_is_a_computed_call(scan):
    b = PickleBuilder(2).global_("builtins", "getattr").mark().global_("collections", "OrderedDict")
    b.global_("builtins", "str").push(("fromkeys",)).reduce().tuple_from_mark().reduce()
    report = scan("x.pkl", b.push(([1],)).reduce().stop().build())
    assert "MLO111" in rule_ids(report)


def test_stack_global_on_computed_strings_is_reported(scan):
    b = PickleBuilder(4).call("builtins", "str", "os").call("builtins", "str", "system").op(b"\x93")
    report = scan("x.pkl", b.stop().build())
    assert any(f.evidence.get("opcode") == "STACK_GLOBAL" for f in by_rule(report, "MLO111"))


def test_stack_global_on_bytes_stops_like_the_real_unpickler(scan):
    b = PickleBuilder(4).call("os", "system", "id").pop().push(b"os").push(b"system").op(b"\x93").stop()
    report = scan("x.pkl", b.build())
    assert {"MLO101", "MLO201"} <= rule_ids(report)


def test_memo_indirection_of_stack_global_names(scan):
    b = PickleBuilder(4).push("os").memoize().pop().push("system").put(300).pop()
    data = b.push("decoy").memoize().pop().get(0).get(300).op(b"\x93").push(("id",)).reduce().stop().build()
    assert by_rule(scan("x.pkl", data), "MLO101")[0].evidence["callable"] == "os.system"


def test_text_memo_and_global_opcodes(scan):
    data = b"(S'os'\np1\n0S'system'\np2\n0cposix\nsystem\n(g1\ntR."
    report = scan("x.txt", data)
    assert by_rule(report, "MLO101")[0].evidence["callable"] == "os.system"


def test_ext_opcodes_are_reported_high(scan):
    for code in (5, 300, 70000):
        report = scan("x.pkl", PickleBuilder(2).ext(code).push(("id",)).reduce().stop().build())
        assert by_rule(report, "MLO112")[0].evidence["extension_code"] == str(code)
        assert worst(report) == Severity.HIGH


def test_inst_and_obj_are_calls(scan):
    inst = b"(S'id'\nios\nsystem\n."
    obj = PickleBuilder(2).mark().global_("mypkg.tools", "Runner").push("x").op(b"o").stop().build()
    assert by_rule(scan("a.pkl", inst), "MLO101")[0].evidence["opcode"] == "INST"
    assert by_rule(scan("b.pkl", obj), "MLO110")[0].evidence["callable"] == "mypkg.tools.Runner"


# ------------------------------------------------------------ severity ladder


def test_unlisted_callable_called_is_high(scan):
    report = scan("x.pkl", PickleBuilder(2).call("mypkg.hooks", "on_load", 1).stop().build())
    (finding,) = by_rule(report, "MLO110")
    assert finding.severity == Severity.HIGH


def test_unlisted_class_built_by_newobj_is_medium(scan):
    b = PickleBuilder(2).global_("mypkg.models", "Net").push(()).newobj().push({"w": 1}).build_state().stop()
    report = scan("x.pkl", b.build())
    assert by_rule(report, "MLO120")[0].severity == Severity.MEDIUM
    assert worst(report) == Severity.MEDIUM


def test_unlisted_reference_only_is_medium(scan):
    report = scan("x.pkl", PickleBuilder(2).push({"fn": None}).global_("mypkg.losses", "focal").pop().stop().build())
    assert by_rule(report, "MLO121")[0].severity == Severity.MEDIUM


def test_allowlisted_build_only_class_called_is_high(scan):
    report = scan("x.pkl", PickleBuilder(2).call("torch.nn.modules.linear", "Linear", 2, 2).stop().build())
    (finding,) = by_rule(report, "MLO110")
    assert "only as a class to rebuild" in finding.message


def test_reconstructor_with_a_foreign_base_calls_that_base(scan):
    b = PickleBuilder(2).global_("copyreg", "_reconstructor").mark().global_("mypkg", "Thing")
    data = b.global_("mypkg.base", "Loader").push(None).tuple_from_mark().reduce().stop().build()
    report = scan("x.pkl", data)
    called = {f.evidence.get("callable") for f in by_rule(report, "MLO110")}
    assert called == {"mypkg.base.Loader"}
    assert by_rule(report, "MLO120")[0].evidence["global"] == "mypkg.Thing"


def test_partial_is_judged_by_what_it_wraps(scan):
    safe = PickleBuilder(2).global_("functools", "partial").mark().global_("collections", "OrderedDict")
    safe_data = safe.tuple_from_mark().reduce().push(()).reduce().stop().build()
    assert worst(scan("safe.pkl", safe_data)) == Severity.INFO
    swapped = PickleBuilder(2).global_("functools", "partial").mark().global_("collections", "OrderedDict")
    swapped.tuple_from_mark().reduce().mark().global_("mypkg", "hook").push(()).push({}).push(None)
    swapped_data = swapped.tuple_from_mark().build_state().push(()).reduce().stop().build()
    assert "MLO111" in rule_ids(scan("swapped.pkl", swapped_data))


def test_build_on_an_imported_global_is_a_mutation(scan):
    b = PickleBuilder(2).global_("collections", "OrderedDict").push({"__init__": 1}).build_state().stop()
    assert by_rule(scan("x.pkl", b.build()), "MLO113")[0].severity == Severity.HIGH


def test_setitem_into_the_extension_registry_is_caught(scan):
    b = PickleBuilder(2).global_("copyreg", "_inverted_registry").push(66).push(("os", "system")).op(b"s")
    report = scan("x.pkl", b.pop().ext(66).push(("id",)).reduce().stop().build())
    assert {"MLO101", "MLO112", "MLO113"} <= rule_ids(report)


# ------------------------------------------------------------ several and nested pickles


def test_nested_pickle_in_bytes_is_scanned_with_its_own_location(scan):
    inner = PickleBuilder(2).call("os", "system", "id").stop().build()
    report = scan("x.pkl", PickleBuilder(2).call("pickle", "loads", inner).stop().build())
    nested = [f for f in by_rule(report, "MLO101") if f.location.members]
    assert nested and nested[0].location.members[0].startswith("<bytes@")
    assert nested[0].evidence["callable"] == "os.system"


def test_nested_payload_hidden_by_latin1_encoding_is_folded(scan):
    inner = PickleBuilder(2).call("subprocess", "run", "id").stop().build()
    outer = (
        PickleBuilder(2).global_("pickle", "loads").mark().call("_codecs", "encode", inner.decode("latin-1"), "latin1")
    )
    report = scan("x.pkl", outer.tuple_from_mark().reduce().stop().build())
    assert any(f.evidence.get("callable") == "subprocess.run" for f in report.findings)


def test_torch_load_from_bytes_of_a_clean_checkpoint_is_clean(scan):
    inner = pickle.dumps({"epoch": 3}, protocol=2)
    report = scan("x.pkl", PickleBuilder(2).call("torch.storage", "_load_from_bytes", inner).stop().build())
    assert worst(report) == Severity.INFO
    assert any(a.location.members for a in report.assets)


def test_concatenated_pickles_are_all_checked(scan):
    clean = pickle.dumps([1, 2], protocol=2)
    report = scan("x.pkl", clean * 3 + PickleBuilder(2).call("os", "system", "id").stop().build())
    assert "MLO101" in rule_ids(report) and "MLO202" not in rule_ids(report)


def test_trailing_garbage_is_reported(scan):
    report = scan("x.pkl", pickle.dumps([1], protocol=2) + b"\x00\x00junk")
    (finding,) = by_rule(report, "MLO202")
    assert finding.severity == Severity.HIGH and finding.location.offset == len(pickle.dumps([1], protocol=2))


def test_truncation_is_reported_with_its_offset(scan):
    data = pickle.dumps({"k": "v" * 50}, protocol=2)[:-10]
    (finding,) = by_rule(scan("x.pkl", data), "MLO201")
    assert "truncated" in finding.message


def test_unsupported_protocol_and_invalid_opcode_fail_closed(scan):
    for data in (b"\x80\x07N.", b"\x80\x02N\xff."):
        report = scan("a.pkl", data)
        assert worst(report) == Severity.HIGH and rule_ids(report) & {"MLO201", "MLO203"}
    report = scan("b.pkl", PickleBuilder(2).call("mypkg", "f").op(b"\xff").build())
    assert {"MLO110", "MLO201"} <= rule_ids(report)


def test_frame_longer_than_the_file_is_reported_but_scanning_goes_on(scan):
    body = PickleBuilder(None).call("os", "system", "id").stop().build()
    data = b"\x80\x04\x95" + struct.pack("<Q", 10**6) + body
    assert {"MLO201", "MLO101"} <= rule_ids(scan("x.pkl", data))


def test_legacy_torch_storage_bytes_are_not_mistaken_for_trailing_data(scan):
    from corpus.malicious import legacy_torch

    data = legacy_torch(pickle.dumps({"w": 1}, protocol=2)) + b"\x06" + b"\x00" * 7 + b"\xff" * 24
    report = scan("model.pt", data)
    assert worst(report) == Severity.INFO
    assert [a.format for a in report.assets] == ["pytorch-legacy"]


# ------------------------------------------------------------ joblib inline arrays


def test_joblib_object_array_inside_joblib_is_emulated(tmp_path):
    import joblib
    import numpy as np

    class Payload:
        def __reduce__(self):
            return (eval, ("1",))

    path = tmp_path / "x.joblib"
    joblib.dump({"w": np.zeros(50), "objs": np.array([Payload()], dtype=object), "after": np.ones(3)}, path)
    from mloops import scan_path

    report = scan_path(str(path))
    assert by_rule(report, "MLO101")[0].evidence["callable"] == "builtins.eval"
    assert "MLO201" not in rule_ids(report)


def test_joblib_wrapper_without_a_usable_state_is_malformed(scan):
    b = PickleBuilder(2).global_("joblib.numpy_pickle", "NumpyArrayWrapper").push(()).newobj()
    report = scan("x.joblib", b.push({"shape": "nonsense"}).build_state().stop().build())
    assert "MLO201" in rule_ids(report)


# ------------------------------------------------------------ bounds


def _scan_with(data: bytes, limits: Limits):
    ctx = ScanContext("x.pkl", limits, default_policy(), dispatch)
    ctx.scan(Item(io.BytesIO(data), Location("x.pkl"), len(data), "x.pkl", 0))
    return ctx.result


def test_memo_growth_is_bounded():
    data = b"\x80\x04" + b"N\x94" * 5000 + b"."
    result = _scan_with(data, Limits(max_memo_entries=1000))
    assert any(f.rule.id == "MLO901" and "memo" in f.message for f in result.findings)


def test_billion_laughs_through_the_memo_is_reported_and_stays_small(scan):
    def nested(levels: int) -> bytes:
        # each tuple holds the previous one twice: loading is cheap, walking the result is not
        b = PickleBuilder(2).push(None).memoize().pop()
        for index in range(levels):
            b.get(index).get(index).op(b"\x86").memoize().pop()
        return b.get(levels).stop().build()

    (finding,) = by_rule(scan("x.pkl", nested(200)), "MLO116")
    assert "billion laughs" in finding.message
    assert worst(scan("y.pkl", nested(20))) == Severity.INFO


def test_deep_marks_and_nesting_do_not_crash(scan):
    data = b"\x80\x02" + b"(" * 200_000 + b"N" + b"t" * 200_000 + b"."
    assert worst(scan("x.pkl", data)) == Severity.INFO


def test_long_getattr_chains_are_bounded(scan):
    b = PickleBuilder(2).call("mypkg", "factory")
    for _ in range(3000):
        b = PickleBuilder(None).global_("builtins", "getattr").mark().op(b.build()).push("x").tuple_from_mark().reduce()
    report = scan("x.pkl", b.push(()).reduce().stop().build())
    assert "MLO903" not in rule_ids(report)
    assert worst(report) >= Severity.HIGH


class CountingStream(io.BytesIO):
    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.bytes_read = 0

    def read(self, size: int = -1) -> bytes:
        data = super().read(size)
        self.bytes_read += len(data)
        return data


def test_large_payloads_are_stepped_over_not_read():
    payload = 64 * 1024 * 1024
    data = b"\x80\x04\x8e" + struct.pack("<Q", payload) + b"\x00" * payload + b"\x94."
    stream = CountingStream(data)
    ctx = ScanContext("x.pkl", Limits(), default_policy(), dispatch)
    ctx.scan(Item(stream, Location("x.pkl"), len(data), "x.pkl", 0))
    assert not [f for f in ctx.result.findings if f.severity > Severity.INFO]
    assert stream.bytes_read < 4 * 1024 * 1024


def test_allowlisted_loader_of_a_computed_payload_fails_closed(scan):
    b = PickleBuilder(2).global_("torch.storage", "_load_from_bytes").mark().call("mypkg", "fetch")
    report = scan("x.pkl", b.tuple_from_mark().reduce().stop().build())
    assert any("cannot be checked" in f.message for f in by_rule(report, "MLO111"))


def test_repeated_computed_calls_are_one_finding_with_a_count(scan):
    b = PickleBuilder(2).call("mypkg", "factory").put(1).pop()
    b.get(1).push(()).reduce().pop().get(1).push(()).reduce()
    (finding,) = by_rule(scan("x.pkl", b.stop().build()), "MLO111")
    assert finding.evidence["calls"] == "2"


def test_put_with_an_index_too_long_to_parse_is_malformed_not_a_crash(scan):
    report = scan("x.pkl", b"\x80\x02c__builtin__\nset\n)Rp" + b"9" * 5000 + b"\n.")
    assert "MLO201" in rule_ids(report) and "MLO903" not in rule_ids(report)


# ------------------------------------------------------------ provenance: values the machine cannot vouch for


def _computed_getattr(b: PickleBuilder, base, name: str) -> PickleBuilder:
    """getattr(base, str(name)): the name is the result of a call, computed at load time."""
    b.global_("builtins", "getattr").mark()
    base(b)
    return b.global_("builtins", "str").push((name,)).reduce().tuple_from_mark().reduce()


def _builtins_module(b: PickleBuilder) -> PickleBuilder:
    return _computed_getattr(b, lambda b: b.global_("builtins", "getattr"), "__self__")


def test_getattr_with_a_computed_name_is_reported_even_when_never_called(scan):
    report = scan("x.pkl", _builtins_module(PickleBuilder(2)).stop().build())
    (finding,) = by_rule(report, "MLO111")
    assert "computed" in finding.message and finding.severity == Severity.HIGH


def test_map_object_drained_by_list_is_reported(scan):
    b = PickleBuilder(2).global_("builtins", "list").mark().global_("builtins", "map").mark()
    b.global_("builtins", "len").push(["ab"]).tuple_from_mark().newobj()
    report = scan("x.pkl", b.tuple_from_mark().reduce().stop().build())
    iterated = [f for f in by_rule(report, "MLO114") if "iterated by builtins.list" in f.message]
    assert iterated and "builtins.map" in iterated[0].evidence["value"]
    # a standard-library class built with __new__ is no user's own class: its __new__ does real work
    assert any(f.evidence.get("global") == "builtins.map" for f in by_rule(report, "MLO110"))


def test_newobj_arguments_of_an_allowlisted_class_are_checked(scan):
    b = PickleBuilder(2).global_("pathlib", "PurePosixPath").mark().global_("mypkg", "P").push(()).newobj()
    report = scan("x.pkl", b.tuple_from_mark().newobj().stop().build())
    assert any("pathlib.PurePosixPath.__new__" in f.message for f in by_rule(report, "MLO114"))
    # an unlisted class's own __new__ gets its arguments: reported with the class, medium
    b = PickleBuilder(2).global_("mypkg", "Point").push((1, 2.5, "x")).newobj().stop()
    assert worst(scan("y.pkl", b.build())) == Severity.MEDIUM


def test_build_on_a_computed_module_is_reported(scan):
    b = _builtins_module(PickleBuilder(2)).push({"str": 1}).build_state().stop()
    report = scan("x.pkl", b.build())
    assert any("__setstate__" in f.message for f in by_rule(report, "MLO114"))


def test_setitem_on_a_computed_value_is_reported(scan):
    b = _computed_getattr(PickleBuilder(2), _builtins_module, "__dict__").push("str").push(1).op(b"s").stop()
    assert any("__setitem__" in f.message for f in by_rule(scan("x.pkl", b.build()), "MLO114"))


def test_unlisted_instance_as_a_dictionary_key_is_reported(scan):
    b = PickleBuilder(2).mark().global_("mypkg", "Key").push(()).newobj().push(1).op(b"d").stop()
    report = scan("x.pkl", b.build())
    (finding,) = by_rule(report, "MLO114")
    assert "__hash__" in finding.message and finding.severity == Severity.HIGH


def test_unlisted_instance_given_state_stays_medium(scan):
    # your own nn.Module in a whole-model save: its own __setstate__ runs, reported as the instantiation
    b = PickleBuilder(2).global_("mypkg.models", "Net").push(()).newobj().push({"w": 1}).build_state()
    report = scan("x.pkl", b.stop().build())
    assert worst(report) == Severity.MEDIUM, [f.message for f in report.findings]


def test_items_put_into_an_unlisted_instance_run_its_methods(scan):
    b = PickleBuilder(2).global_("mypkg", "Store").push(()).newobj().push("k").push(1).op(b"s")
    (finding,) = by_rule(scan("x.pkl", b.stop().build()), "MLO114")
    assert "__setitem__" in finding.message


def test_method_stored_by_an_earlier_build_is_what_the_loader_calls(scan):
    b = PickleBuilder(2).global_("types", "SimpleNamespace").push(()).reduce()
    b.op(b"}").push("__setstate__").global_("mypkg", "hook").op(b"s")
    report = scan("x.pkl", b.build_state().push("x").build_state().stop().build())
    assert any(f.evidence.get("callable") == "mypkg.hook" for f in by_rule(report, "MLO110"))


def test_three_argument_type_is_outside_its_signature(scan):
    report = scan("x.pkl", PickleBuilder(2).call("builtins", "type", "X", (), {}).stop().build())
    (finding,) = by_rule(report, "MLO115")
    assert finding.evidence["callable"] == "builtins.type"
    assert worst(scan("y.pkl", PickleBuilder(2).call("builtins", "type", None).stop().build())) == Severity.INFO


def test_type_of_a_value_given_state_is_a_class_mutation(scan):
    b = PickleBuilder(2).call("builtins", "type", "text").push((None, {"join": 1})).build_state().stop()
    assert "MLO113" in rule_ids(scan("x.pkl", b.build()))


@pytest.mark.parametrize("module", ["numpy.core.multiarray", "numpy._core.multiarray", "numpy.core._internal"])
def test_numpy_reconstruct_of_an_unlisted_subclass_is_a_call(scan, module):
    b = PickleBuilder(2).global_(module, "_reconstruct").mark().global_("mypkg", "Arr")
    report = scan("x.pkl", b.push((0,)).push(b"b").tuple_from_mark().reduce().stop().build())
    (finding,) = by_rule(report, "MLO110")
    assert finding.evidence["callable"] == "mypkg.Arr" and "constructed by" in finding.evidence["opcode"]


def test_module_alias_is_resolved_by_identity(scan):
    report = scan("x.pkl", PickleBuilder(4).stack_global("enum", "bltns.exec").pop().push(1).stop().build())
    (finding,) = by_rule(report, "MLO101")
    assert finding.evidence["global"] == "builtins.exec" and finding.evidence["spelled"] == "enum.bltns.exec"
    report = scan(
        "y.pkl", PickleBuilder(4).stack_global("tempfile", "_os.system").push(("id",)).reduce().stop().build()
    )
    assert {f.evidence.get("callable") for f in by_rule(report, "MLO101")} >= {"os.system"}
    # the module the path passes through is imported first: tempfile is judged too
    assert any(f.evidence.get("global") == "tempfile" for f in by_rule(report, "MLO101"))


def test_harmless_builtins_within_their_signature_are_allowed(scan):
    for name, args in (("len", ([1, 2],)), ("abs", (-3,)), ("max", ([1, 2],)), ("round", (1.5, 0))):
        report = scan("x.pkl", PickleBuilder(2).call("builtins", name, *args).stop().build())
        assert worst(report) == Severity.INFO, (name, [f.message for f in report.findings])


def test_bytes_of_an_unlisted_object_runs_its_dunder(scan):
    b = PickleBuilder(2).global_("builtins", "bytes").mark().global_("mypkg", "Blob").push(()).newobj()
    report = scan("x.pkl", b.tuple_from_mark().reduce().stop().build())
    assert any("builtins.bytes" in f.message for f in by_rule(report, "MLO114"))


def test_path_of_an_unlisted_object_runs_its_fspath(scan):
    b = PickleBuilder(2).global_("pathlib", "PurePosixPath").mark().global_("mypkg", "P").push(()).newobj()
    report = scan("x.pkl", b.tuple_from_mark().reduce().stop().build())
    assert "MLO114" in rule_ids(report)


def test_partial_of_a_computed_callable_called_later_is_reported(scan):
    b = PickleBuilder(2).global_("functools", "partial").mark()
    _computed_getattr(b, _builtins_module, "exec").tuple_from_mark().reduce().push(("1",)).reduce().stop()
    assert {"MLO111"} <= rule_ids(scan("x.pkl", b.build()))


def test_slot_state_naming_a_dunder_is_outside_the_signature(scan):
    b = PickleBuilder(2).call("collections", "OrderedDict").push((None, {"__class__": 1})).build_state().stop()
    assert "MLO115" in rule_ids(scan("x.pkl", b.build()))


# ------------------------------------------------------------ expansion through shared references


def test_hashing_a_key_of_shared_references_is_an_expansion_attack(scan):
    b = PickleBuilder(2).push(None).memoize()
    for index in range(60):
        b.get(index).get(index).op(b"\x86").memoize()
    report = scan("x.pkl", b.op(b"}").get(60).push(1).op(b"s").stop().build())
    assert by_rule(report, "MLO116")[0].severity == Severity.HIGH


def test_small_tuple_keys_hash_quietly(scan):
    assert worst(scan("x.pkl", pickle.dumps({(1, (2, 3)): 1, frozenset({(4, 5)}): 2}, protocol=2))) == Severity.INFO


@pytest.mark.parametrize("call", [("bytes", 10**12), ("bytearray", 10**12)])
def test_huge_allocations_are_expansions(scan, call):
    assert "MLO116" in rule_ids(scan("x.pkl", PickleBuilder(2).call("builtins", *call).stop().build()))


def test_draining_a_huge_range_is_an_expansion(scan):
    b = PickleBuilder(2).global_("builtins", "list").mark().call("builtins", "range", 10**12)
    report = scan("x.pkl", b.tuple_from_mark().reduce().stop().build())
    assert "MLO116" in rule_ids(report)
    small = PickleBuilder(2).global_("builtins", "list").mark().call("builtins", "range", 10)
    assert worst(scan("y.pkl", small.tuple_from_mark().reduce().stop().build())) == Severity.INFO


def test_text_of_shared_references_is_an_expansion(scan):
    b = PickleBuilder(2).global_("builtins", "str").mark().push(None).memoize().pop()
    for index in range(60):
        b.get(index).get(index).op(b"\x86").memoize().pop()
    b.get(60).tuple_from_mark().reduce().stop()
    assert "MLO116" in rule_ids(scan("x.pkl", b.build()))


# ------------------------------------------------------------ frames


def test_real_framed_pickles_have_no_frame_anomaly(scan):
    data = pickle.dumps([b"x" * 70_000, list(range(30_000)), "y" * 100_000], protocol=5)
    assert data.count(b"\x95") >= 1 and worst(scan("x.pkl", data)) == Severity.INFO


def test_opcode_straddling_a_frame_boundary_is_reported_and_still_emulated(scan):
    body = PickleBuilder(None).call("os", "system", "id").stop().build()
    data = b"\x80\x04\x95" + struct.pack("<Q", 5) + body  # the frame ends inside the GLOBAL's operands
    report = scan("x.pkl", data)
    assert any(f.evidence.get("anomaly") == "frame-straddle" for f in by_rule(report, "MLO201"))
    assert by_rule(report, "MLO101")[0].evidence["callable"] == "os.system"


def test_a_flood_of_lying_frames_is_one_finding(scan):
    data = b"\x80\x04" + (b"\x95" + struct.pack("<Q", 2**63)) * 20_000 + b"N."
    findings = by_rule(scan("x.pkl", data), "MLO201")
    assert {f.evidence["anomaly"] for f in findings} == {"frame-too-long", "frame-overlap"}
    assert [f.evidence["occurrences"] for f in findings if f.evidence["anomaly"] == "frame-too-long"] == ["20000"]


def test_a_numeral_with_a_huge_exponent_is_an_expansion(scan):
    huge = PickleBuilder(2).call("fractions", "Fraction", "1e99999999").stop().build()
    assert "MLO116" in rule_ids(scan("x.pkl", huge))
    assert worst(scan("y.pkl", pickle.dumps(fractions.Fraction("1e300"), protocol=2))) == Severity.INFO


# ------------------------------------------------------------ found by the differential oracle


@pytest.mark.parametrize(
    "data",
    [
        # NEWOBJ(type, ('X', (base,), {})): type.__new__ builds a class and runs the base's hooks
        PickleBuilder(2).global_("builtins", "type").push(("X", (), {})).newobj().stop().build(),
        PickleBuilder(2)
        .global_("copyreg", "__newobj__")
        .push(("x",))
        .op(b"0")
        .mark()
        .global_("builtins", "type")
        .push("X")
        .push(())
        .push({})
        .tuple_from_mark()
        .reduce()
        .stop()
        .build(),
    ],
)
def test_three_argument_type_through_newobj_is_outside_its_signature(scan, data):
    assert "MLO115" in rule_ids(scan("x.pkl", data))


@pytest.mark.parametrize(("module", "name", "args"), [("plistlib", "PlistFormat", (1,)), ("pandas", "Period", ())])
def test_state_set_on_a_shared_object_is_a_mutation(scan, module, name, args):
    # an enum member, or pandas.Period() which is the NaT singleton: every user of it is changed
    b = PickleBuilder(2).global_(module, name).push(args).newobj().push((None, {"x": 1})).build_state()
    (finding,) = by_rule(scan("x.pkl", b.stop().build()), "MLO113")
    assert "shared" in finding.message


def test_time_zones_made_fresh_by_newobj_are_no_shared_objects(scan):
    b = PickleBuilder(2).global_("dateutil.tz.tz", "tzutc").push(()).newobj().push({}).build_state()
    assert worst(scan("x.pkl", b.stop().build())) == Severity.INFO


def test_state_of_an_unlisted_instance_is_touched_by_build(scan):
    b = PickleBuilder(2).global_("mypkg", "Outer").push(()).newobj()
    b.global_("mypkg", "Inner").push(()).newobj().build_state()
    assert any("state" in f.message for f in by_rule(scan("x.pkl", b.stop().build()), "MLO114"))


def test_an_argument_tuple_is_unpacked_before_the_callee_is_checked(scan):
    # _rebuild_from_type(func, type, args, state) runs func(*args): args is iterated even if func is no callable
    b = PickleBuilder(2).global_("torch._tensor", "_rebuild_from_type").mark().op(b"]").op(b"]")
    b.global_("mypkg", "Rows").push(()).newobj().push({}).tuple_from_mark().reduce()
    assert any("unpacked" in f.message for f in by_rule(scan("x.pkl", b.stop().build()), "MLO114"))


def test_a_class_allowlisted_as_called_is_not_made_by_new_alone(scan):
    # torch._C.Generator.__new__ without its constructor leaves the C object unset: the real loader crashes
    b = PickleBuilder(2).global_("torch._C", "Generator").push(()).newobj().stop()
    assert "MLO115" in rule_ids(scan("x.pkl", b.build()))
    uuid_pickle = pickle.dumps(__import__("uuid").UUID(int=7), protocol=2)
    assert worst(scan("y.pkl", uuid_pickle)) == Severity.INFO


def test_object_array_state_shorter_than_its_shape_is_malformed(scan):
    import numpy as np

    data = pickle.dumps(np.array([1, "a", None, 2.5], dtype=object), protocol=2)
    assert worst(scan("ok.pkl", data)) == Severity.INFO
    # the list of four items cut to one: ndarray.__setstate__ reads past it (the real loader crashes)
    start = data.index(b"X\x01\x00\x00\x00a")  # keep the first item, drop 'a', None and 2.5
    short = data[:start] + data[data.index(b"e", start) :]
    findings = by_rule(scan("short.pkl", short), "MLO201")
    assert any(f.evidence.get("anomaly") == "array-state" for f in findings), [f.message for f in findings]


def test_three_argument_type_through_newobj_ex_is_outside_its_signature(scan):
    b = PickleBuilder(4).global_("builtins", "type").push(("X", (), {})).push({}).op(b"\x92").stop()
    assert "MLO115" in rule_ids(scan("x.pkl", b.build()))


def test_state_handed_to_build_is_touched_even_when_the_target_cannot_take_it(scan):
    # pure-Python unpickler: "if state:" runs before it finds the tuple has no __dict__ (oracle case 147921)
    b = PickleBuilder(2).push((1, 2)).global_("mypkg", "Progress").push(()).newobj().build_state().stop()
    (finding,) = by_rule(scan("x.pkl", b.build()), "MLO114")
    assert "truth" in finding.message
    pair = PickleBuilder(2).push((1, 2)).mark().global_("mypkg", "Progress").push(()).newobj().push(None)
    assert "MLO114" in rule_ids(scan("y.pkl", pair.tuple_from_mark().build_state().stop().build()))


def test_state_entries_a_library_setstate_uses_at_once_are_checked(scan):
    # torch's Module.__setstate__ tests names against _parameters through __setattr__ (oracle case 485254)
    b = PickleBuilder(2).global_("torch.nn.modules.linear", "Identity").push(()).newobj().op(b"}")
    b.push("_parameters").global_("mypkg", "Config").push(()).newobj().op(b"s").build_state().stop()
    (finding,) = by_rule(scan("x.pkl", b.build()), "MLO114")
    assert "_parameters" in finding.message


def test_state_a_pybind11_setstate_rejects_is_printed_with_repr(scan):
    # pybind11 writes every argument's repr into the TypeError of a call it cannot match: a joblib
    # Parallel in the state of a torch enum member ran Parallel.__repr__ (campaign case 7327054).
    def member() -> PickleBuilder:
        return PickleBuilder(2).global_("torch.nn.functional", "ScalingType").push(()).newobj()

    parallel = member().mark().push(None).op(b"}").push("a")
    parallel.global_("joblib.parallel", "Parallel").push(()).newobj().op(b"s").tuple_from_mark()
    (finding,) = by_rule(scan("x.pkl", parallel.build_state().stop().build()), "MLO114")
    assert "pybind11" in finding.message and "joblib.parallel.Parallel" in finding.evidence["value"]
    assert "MLO114" not in rule_ids(scan("y.pkl", member().push(1).build_state().stop().build()))


def test_an_enum_called_with_more_than_a_value_builds_a_class(scan):
    # ExplicitEnum('b', 'latin1') is the functional API: a new enum class (oracle case 751702)
    b = PickleBuilder(2).call("transformers.utils.generic", "ExplicitEnum", "b", "latin1").stop()
    assert "MLO115" in rule_ids(scan("x.pkl", b.build()))
    member = PickleBuilder(2).call("transformers.utils.generic", "ExplicitEnum", "x").stop()
    assert "MLO115" not in rule_ids(scan("y.pkl", member.build()))


def test_the_module_an_alias_passes_through_is_judged_too(scan):
    # webbrowser.os.stat_result is os.stat_result, but the loader imports webbrowser first (oracle case 682398)
    report = scan("x.pkl", PickleBuilder(2).global_("webbrowser", "os.stat_result").pop().push(1).stop().build())
    assert any(f.evidence.get("global") == "webbrowser" for f in by_rule(report, "MLO101"))


def test_unhashable_state_keys_do_not_crash_the_scanner(scan):
    # a bytearray key in a torch module's state (oracle case 1909648: the scanner raised TypeError)
    b = PickleBuilder(4).global_("torch.nn.modules.linear", "Identity").push(()).newobj().op(b"}")
    b.op(b"\x96" + (1).to_bytes(8, "little") + b"x").push(1).op(b"s").build_state().stop()
    assert "MLO903" not in rule_ids(scan("x.pkl", b.build()))


def test_the_reconstructor_base_must_be_a_builtin_type(scan):
    # copyreg._reconstructor(cls, base, state) runs base.__new__(cls, state): with an enum as the base,
    # Enum.__new__ ran on csr_matrix (oracle case 4958683). Protocol 0/1 name object or a C type there.
    dateutil_tz = pytest.importorskip("dateutil.tz")
    real = pickle.dumps(dateutil_tz.tzutc(), protocol=0)  # _reconstructor(tzutc, datetime.tzinfo, tzinfo())
    assert b"cdatetime\ntzinfo\n" in real
    assert "MLO115" not in rule_ids(scan("real.pkl", real))
    forged = real.replace(b"cdatetime\ntzinfo\n", b"ctransformers.trainer_utils\nHubStrategy\n", 1)
    messages = [f.message for f in by_rule(scan("forged.pkl", forged), "MLO115")]
    assert any("only built-in types are reviewed bases" in message for message in messages), messages


def test_a_global_whose_name_line_is_cut_by_the_end_still_imports_its_module(scan):
    # Both unpicklers take a last line without its newline, drop its last byte and import the module
    # (oracle case 4986770: matplotlib.figure was imported, mloops saw plain text).
    report = scan("x.pkl", b"cmatplotlib.figure\nFig")
    assert any(f.evidence.get("global") == "matplotlib.figure.Fi" for f in by_rule(report, "MLO121"))
    assert "MLO201" in rule_ids(report)
    assert "MLO101" in rule_ids(scan("y.pkl", b"(ios\nsystem"))  # INST's lines are read alike
    # Nothing of the name left: pickle._Unpickler still imports the module (campaign case 7210622).
    report = scan("z.pkl", b"cmatplotlib.figure\n")
    assert any(f.evidence.get("global", "").startswith("matplotlib.figure") for f in by_rule(report, "MLO121"))
