"""R serialized objects (.rds, .RData): promises, functions, package references and ALTREP classes are
found by walking the stream, never by loading it; benign data and models stay quiet.

Files under tests/data/r/ were written by R 4.2.2 (bench/make_r_fixtures.R); the rest is built byte
by byte in corpus/r_objects.py. No test needs R.
"""

from __future__ import annotations

import gzip
import pickle
from pathlib import Path

import pytest
from corpus import r_objects as r

from mloops import scan_path
from mloops.core import Severity
from mloops.models import r_serialized
from mloops.models.r_serialized import detect
from mloops.sniff import sniff

from .conftest import findings_at_least, rule_ids, worst

DATA = Path(__file__).resolve().parent / "data" / "r"
BENIGN_REAL = [
    "data_frame.rds",
    "data_frame_gzip.rds",
    "data_frame_xz.rds",
    "data_frame_v2.rds",
    "data_frame_ascii.rds",
    "factor.rds",
    "list.rds",
    "lm.rds",
    "lm_small.rds",
    "glm.rds",
    "workspace.RData",
    "workspace_ascii.rda",
]
ENCODINGS = [r.XDR, r.NATIVE, r.ASCII]
PROMISE, FUNCTION, PACKAGE, ALTREP, NATIVE_REF = "MLO145", "MLO146", "MLO147", "MLO148", "MLO149"
MALFORMED, TRAILING, LIMIT = "MLO201", "MLO202", "MLO901"


def above_info(report) -> list[str]:
    return [f"{f.severity.name} {f.rule.id} {f.location}: {f.message}" for f in findings_at_least(report, Severity.LOW)]


def of_rule(report, rule_id: str) -> list:
    return [f for f in report.findings if f.rule.id == rule_id]


def system_closure(e: r.Encoding = r.XDR) -> bytes:
    formals = r.pairlist([("x", r.special(r.MISSINGARG, e))], e=e)
    return r.closure(formals, r.call("system", r.strings("echo x", e=e), e=e), r.special(r.GLOBALENV, e), e=e)


# ---------------------------------------------------------------------- real files written by R


@pytest.mark.parametrize("name", BENIGN_REAL)
def test_real_benign_r_files_have_nothing_above_info(name: str):
    report = scan_path(str(DATA / name))
    assert above_info(report) == []
    assert "r-serialized" in [a.format for a in report.assets]
    assert "MLO002" in rule_ids(report)  # the format note: R objects can carry code


def test_real_gzip_rds_is_scanned_through_the_gzip_layer():
    report = scan_path(str(DATA / "data_frame_gzip.rds"))
    assert [a.format for a in report.assets] == ["gzip", "r-serialized"]


def test_real_glm_family_functions_are_notes_of_the_stats_namespace():
    functions = of_rule(scan_path(str(DATA / "glm.rds")), FUNCTION)
    assert len(functions) >= 5  # linkfun, linkinv, variance, aic, simulate, ...
    assert {f.severity for f in functions} == {Severity.INFO}
    assert all("namespace:stats" in f.evidence["environment"] for f in functions)
    assert any(".Call" in f.evidence["calls"] for f in functions)


def test_real_promise_written_by_r_is_critical():
    report = scan_path(str(DATA / "promise_env.rds"))
    (finding,) = of_rule(report, PROMISE)
    assert finding.severity == Severity.CRITICAL
    assert finding.evidence["calls"] == "file.create, tempfile"
    assert finding.evidence["environment"] == "R_GlobalEnv"
    assert finding.location.offset is not None


def test_real_closure_calling_system_is_high():
    (finding,) = of_rule(scan_path(str(DATA / "closure_system.rds")), FUNCTION)
    assert finding.severity == Severity.HIGH
    assert finding.evidence["dangerous"] == "system"
    assert finding.evidence["environment"] == "R_GlobalEnv"


# ---------------------------------------------------------------------- byte-built benign objects


@pytest.mark.parametrize("version", [2, 3])
@pytest.mark.parametrize("e", ENCODINGS, ids=lambda e: e.form)
def test_benign_objects_in_every_format_are_clean(scan, e: r.Encoding, version: int):
    report = scan("data.rds", r.rds(r.benign_list(e), e, version))
    assert above_info(report) == []
    assert [a.format for a in report.assets] == ["r-serialized"]


def test_formula_with_global_environment_is_no_finding(scan):
    report = scan("terms.rds", r.rds(r.formula()))
    assert rule_ids(report) == {"MLO002"}


def test_workspace_rdx3_is_walked(scan):
    workspace = r.pairlist([("model", r.factor()), ("hook", system_closure())])
    report = scan("session.RData", r.rdata(workspace))
    assert [f.severity for f in of_rule(report, FUNCTION)] == [Severity.HIGH]
    assert report.findings[0].location.offset is not None


def test_gzip_compressed_rds_is_unwrapped_and_judged(scan):
    report = scan("model.rds", gzip.compress(r.rds(r.vector([r.data_frame(), system_closure()]))))
    assert [a.format for a in report.assets] == ["gzip", "r-serialized"]
    (finding,) = of_rule(report, FUNCTION)
    assert finding.severity == Severity.HIGH and finding.location.members == ("<gzip>",)


def test_base_altrep_compact_sequence_is_no_finding(scan):
    report = scan("seq.rds", r.rds(r.altrep("compact_intseq", "base", r.INTSXP, r.doubles([1e6, 1, 1]))))
    assert above_info(report) == [] and ALTREP not in rule_ids(report)


# ---------------------------------------------------------------------- promises


@pytest.mark.parametrize("e", ENCODINGS, ids=lambda e: e.form)
def test_unevaluated_promise_is_critical_in_every_format(scan, e: r.Encoding):
    payload = r.promise(r.call("system", r.strings("id", e=e), e=e), e=e)
    env = r.environment(r.pairlist([("x", payload)], e=e), e=e)
    report = scan("env.rds", r.rds(env, e))
    (finding,) = of_rule(report, PROMISE)
    assert finding.severity == Severity.CRITICAL and finding.evidence["calls"] == "system"
    assert worst(report) == Severity.CRITICAL


def test_forced_promise_is_only_a_note(scan):
    forced = r.promise(r.call("system", r.strings("id")), env=r.nil(), value=r.doubles([1.0]))
    (finding,) = of_rule(scan("env.rds", r.rds(forced)), PROMISE)
    assert finding.severity == Severity.INFO and "already forced" in finding.evidence["state"]


@pytest.mark.parametrize("code", [r.strings("logit"), r.sym("link")], ids=["constant", "symbol"])
def test_promise_of_a_constant_or_variable_runs_nothing(scan, code: bytes):
    report = scan("family.rds", r.rds(r.promise(code)))
    assert PROMISE not in rule_ids(report) and above_info(report) == []


def test_promise_in_a_truncated_stream_is_still_reported(scan):
    data = r.rds(r.promise(r.call("system", r.strings("id"))))
    report = scan("cut.rds", data[:-4])  # the last argument list's NULL is missing
    assert of_rule(report, PROMISE)[0].evidence["incomplete"]
    assert of_rule(report, MALFORMED)


# ---------------------------------------------------------------------- functions


@pytest.mark.parametrize("e", ENCODINGS, ids=lambda e: e.form)
def test_closure_calling_system_is_high_and_names_its_calls(scan, e: r.Encoding):
    (finding,) = of_rule(scan("f.rds", r.rds(system_closure(e), e)), FUNCTION)
    assert finding.severity == Severity.HIGH
    assert finding.evidence["calls"] == "system" and finding.evidence["dangerous"] == "system"


def test_plain_closure_is_medium_and_argument_names_are_not_calls(scan):
    # function(file) paste(file, 1): "file" is an argument and a variable here, never called
    formals = r.pairlist([("file", r.special(r.MISSINGARG))])
    body = r.call("paste", r.sym("file"), r.doubles([1.0]))
    (finding,) = of_rule(scan("f.rds", r.rds(r.closure(formals, body, r.special(r.GLOBALENV)))), FUNCTION)
    assert finding.severity == Severity.MEDIUM
    assert finding.evidence["calls"] == "paste" and "dangerous" not in finding.evidence


def test_dangerous_name_passed_as_a_string_or_reference_is_high(scan):
    # function(x) { do.call("system", list("id")); lapply(x, system) } with `system` a reference the second time
    body = r.call(
        "{",
        r.call("do.call", r.strings("system"), r.call("list", r.strings("id"))),
        r.call("lapply", r.sym("x"), r.sym("system")),
    )
    closure = r.closure(r.pairlist([("x", r.special(r.MISSINGARG))]), body, r.special(r.GLOBALENV))
    (finding,) = of_rule(scan("f.rds", r.rds(closure)), FUNCTION)
    assert finding.severity == Severity.HIGH
    assert finding.evidence["dangerous"] == "do.call, system"


def test_symbol_reached_through_the_reference_table_counts_as_a_call(scan):
    # refs: 1 = x (formal), 2 = "{", 3 = system: the second call names its function by REFSXP 3
    body = r.call("{", r.call("system", r.strings("a")), r.call(r.ref(3), r.strings("b")))
    closure = r.closure(r.pairlist([("x", r.special(r.MISSINGARG))]), body, r.special(r.GLOBALENV))
    (finding,) = of_rule(scan("f.rds", r.rds(closure)), FUNCTION)
    assert finding.evidence["calls"] == "{, system"  # ref 3 is system: listed once


def test_native_call_outside_a_reviewed_namespace_is_high(scan):
    body = r.call(".Call", r.sym("C_logit_link"), r.sym("mu"))
    closure = r.closure(r.pairlist([("mu", r.special(r.MISSINGARG))]), body, r.namespace("evilpkg", "1.0"))
    report = scan("f.rds", r.rds(closure))
    assert of_rule(report, FUNCTION)[0].severity == Severity.HIGH
    assert of_rule(report, PACKAGE)[0].evidence["package"] == "evilpkg"


def test_active_binding_function_is_at_least_high(scan):
    function = r.closure(r.nil(), r.call("Sys.time"), r.special(r.GLOBALENV))
    frame = r.pairlist([("x", function)], levels=r.ACTIVE_BINDING)
    (finding,) = of_rule(scan("env.rds", r.rds(r.environment(frame))), FUNCTION)
    assert finding.severity == Severity.HIGH and "active_binding" in finding.evidence


def test_bytecode_constants_are_searched_for_calls(scan):
    code = r.bytecode([r.bc_call("system", r.strings("echo x")), r.bc_const(r.sym("system"), r.SYMSXP)])
    closure = r.closure(r.pairlist([("x", r.special(r.MISSINGARG))]), code, r.special(r.GLOBALENV))
    report = scan("f.rds", r.rds(closure))
    (finding,) = of_rule(report, FUNCTION)
    assert finding.severity == Severity.HIGH and finding.evidence["calls"] == "system"
    assert MALFORMED not in rule_ids(report)


def test_bytecode_on_its_own_is_judged(scan):
    (finding,) = of_rule(scan("bc.rds", r.rds(r.bytecode([r.bc_call("mean", r.sym("x"))]))), FUNCTION)
    assert finding.severity == Severity.MEDIUM and finding.evidence["kind"] == "byte code"


# ---------------------------------------------------------------------- packages, ALTREP, pointers


def test_namespace_of_a_foreign_package_is_low_and_base_packages_are_not(scan):
    refs = r.vector([r.namespace("evilpkg", "0.1"), r.namespace("stats", "4.2.2"), r.package_env("package:utils")])
    report = scan("ns.rds", r.rds(refs))
    (finding,) = of_rule(report, PACKAGE)
    assert finding.severity == Severity.LOW
    assert finding.evidence == {**finding.evidence, "package": "evilpkg", "version": "0.1"}


def test_attached_package_environment_outside_the_allowlist_is_reported(scan):
    (finding,) = of_rule(scan("pkg.rds", r.rds(r.package_env("package:mytools"))), PACKAGE)
    assert finding.evidence["package"] == "mytools"


def test_allowlist_is_the_reviewed_data_file():
    trusted = r_serialized.trusted_packages()
    assert {"base", "stats", "utils", "methods", "Matrix", "MASS"} <= trusted
    assert "tcltk" not in trusted and "evilpkg" not in trusted


def test_foreign_altrep_class_is_medium(scan):
    report = scan("alt.rds", r.rds(r.altrep("arrow_vec", "arrow", r.INTSXP, r.strings("state"))))
    (finding,) = of_rule(report, ALTREP)
    assert finding.severity == Severity.MEDIUM
    assert (finding.evidence["class"], finding.evidence["package"]) == ("arrow_vec", "arrow")


def test_external_pointers_are_one_note(scan):
    report = scan("ptr.rds", r.rds(r.vector([r.external_pointer(), r.external_pointer()])))
    (finding,) = of_rule(report, NATIVE_REF)
    assert finding.severity == Severity.INFO and finding.evidence["count"] == "2"


# ---------------------------------------------------------------------- broken and hostile streams


def test_every_truncation_of_a_benign_object_is_malformed(tmp_path: Path):
    data = r.rds(r.benign_list())
    header = len(r.header())
    for cut in range(header, len(data), 7):
        path = tmp_path / f"cut{cut}.rds"
        path.write_bytes(data[:cut])
        report = scan_path(str(path))
        assert any(f.rule.id == MALFORMED and f.severity >= Severity.HIGH for f in report.findings), cut


@pytest.mark.parametrize(
    ("item", "words"),
    [
        (r.XDR.int(30), "unknown SEXP type 30"),
        (r.ref(5), "reference 5"),
        (r.XDR.int(r.INTSXP) + r.XDR.int(-7), "negative length"),
        (r.XDR.int(r.SYMSXP) + r.integers([1]), "not a string"),
        (r.XDR.int(r.INTSXP) + r.XDR.int(1 << 30), "past the end"),
        (r.XDR.int(r.NAMESPACESXP) + r.XDR.int(1), "names in a persistent string vector"),
    ],
    ids=["unknown-type", "dangling-ref", "negative-length", "symbol-not-string", "huge-vector", "namespace-names"],
)
def test_malformed_streams_fail_closed(scan, item: bytes, words: str):
    report = scan("bad.rds", r.rds(item))
    malformed = of_rule(report, MALFORMED)
    assert malformed and malformed[0].severity >= Severity.HIGH
    assert words in malformed[0].message


def test_trailing_bytes_are_reported(scan):
    report = scan("x.rds", r.rds(r.factor()) + b"payload")
    assert TRAILING in rule_ids(report)


def test_deeply_nested_list_hits_the_limit_without_crashing(scan):
    report = scan("deep.rds", r.rds(r.nested_lists(r_serialized.MAX_DEPTH + 50)))
    limits = of_rule(report, LIMIT)
    assert limits and "nested deeper" in limits[0].message
    assert "MLO903" not in rule_ids(report)


def test_long_pairlist_is_not_nesting(scan):
    cells = [(None, r.integers([i])) for i in range(r_serialized.MAX_DEPTH + 100)]
    report = scan("long.rds", r.rds(r.pairlist(cells)))
    assert above_info(report) == []


# ---------------------------------------------------------------------- detection


@pytest.mark.parametrize(
    "data",
    [
        b"A\nhello world\n",
        b"A\n3\n4\n5\n\nsome text\n",  # versions that R never wrote
        b"X\nmarks the spot",
        b"B\n" + b"\x00" * 20,
        b"RDX3\nA\n",  # workspace letter and format disagree
        pickle.dumps({"a": 1}, protocol=0),
        pickle.dumps("X" * 40, protocol=2),
        b"\x80\x04X\x02\x00\x00\x00hi\x94.",
    ],
    ids=["text", "ascii-bad-versions", "xdr-text", "native-zeros", "rdata-mismatch", "pickle0", "pickle2", "pickle4"],
)
def test_non_r_content_is_not_detected(data: bytes):
    assert not detect(data, "file.rds")
    assert "r-serialized" not in sniff(data, "file.rds")


def test_header_variants_are_detected():
    for e in ENCODINGS:
        for version in (2, 3):
            data = r.rds(r.nil(e), e, version)
            assert detect(data, "x") and sniff(data, "x") == ["r-serialized"]
        assert detect(r.rdata(r.nil(e), e), "x")
    assert not detect(r.header()[:-3], "x")  # the encoding name is cut short


def test_text_file_named_rds_is_not_an_r_object(scan):
    report = scan("notes.rds", b"A\nthis is just text\n")
    assert "r-serialized" not in [a.format for a in report.assets]
