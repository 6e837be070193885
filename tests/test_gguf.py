"""GGUF: the header is validated as strictly as ggml loads it, and every chat template is parsed, never rendered."""

from __future__ import annotations

import gzip
from pathlib import Path

import gguf
import jinja2
import pytest
from corpus import gguf_models as models
from corpus.gguf_models import (
    HOSTILE,
    HUGE_VALUE_TEMPLATES,
    TEMPLATE_KEY,
    F32x4,
    gguf_file,
    kv_str,
    tensor_info,
)
from jinja2.sandbox import ImmutableSandboxedEnvironment

from mloops import scan_path
from mloops.core import Capability, Severity
from mloops.mlcode import chat_template
from mloops.models.gguf import GGML_TYPES, detect

from .conftest import findings_at_least, rule_ids


def only_notes(report) -> list[str]:
    """Findings above INFO, printed for a readable assertion."""
    return [f"{f.severity.name} {f.rule.id} {f.location}: {f.message}" for f in findings_at_least(report, Severity.LOW)]


def injections(report) -> list:
    return [f for f in report.findings if f.rule.id == "MLO170"]


# ---------------------------------------------------------------------- benign files from the writer


@pytest.mark.parametrize("name", models.BENIGN_TEMPLATES)
def test_realistic_chat_template_is_clean(tmp_path: Path, name: str):
    path = models.write_gguf(tmp_path / f"{name}.gguf", models.BENIGN_TEMPLATES[name])
    report = scan_path(str(path))
    assert only_notes(report) == []
    assert [a.format for a in report.assets] == ["gguf"]
    assert rule_ids(report) == {"MLO001"}


def test_default_and_named_templates_together_are_clean(tmp_path: Path):
    templates = {"default": models.LLAMA3, **models.BENIGN_TEMPLATES}
    path = models.write_gguf(tmp_path / "multi.gguf", templates)  # the writer turns "command-r" into "command_r"
    keys = {field for field in gguf.GGUFReader(path).fields if "chat_template" in field}
    assert "tokenizer.chat_template.command_r" in keys and TEMPLATE_KEY in keys
    assert only_notes(scan_path(str(path))) == []


@pytest.mark.parametrize(
    "options",
    [
        {"endianess": gguf.GGUFEndian.BIG},
        {"alignment": 64},
        {"quantized": True},
        {"vocab_size": 5},
    ],
    ids=["big-endian", "alignment-64", "quantized-q8_0-q4_k", "tiny-vocab"],
)
def test_writer_variants_are_clean(tmp_path: Path, options: dict):
    path = models.write_gguf(tmp_path / "variant.gguf", models.CHATML, **options)
    assert gguf.GGUFReader(path).tensors  # the real reader accepts the file
    assert only_notes(scan_path(str(path))) == []


def test_file_without_template_or_tensors_is_clean(tmp_path: Path):
    writer = gguf.GGUFWriter(str(tmp_path / "vocab.gguf"), "llama")
    writer.add_token_list(["<s>", "</s>", "a"])
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    assert only_notes(scan_path(str(tmp_path / "vocab.gguf"))) == []


def test_benign_templates_really_render_in_a_sandbox():
    """The benign templates are working templates, not strings that merely look like them."""
    environment = ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=["jinja2.ext.loopcontrols", chat_template.GenerationTag]
    )

    def raise_exception(message: str) -> None:
        raise jinja2.TemplateError(message)

    environment.globals.update(raise_exception=raise_exception, strftime_now=lambda fmt: "01 Jan 2025")
    tools = [{"name": "get_weather", "description": "Weather", "parameter_definitions": {"city": {"type": "str"}}}]
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Weather in Oslo?"},
        {"role": "assistant", "content": "<think>look it up</think>Let me check."},
        {"role": "user", "content": "Thanks"},
    ]
    for name, text in models.BENIGN_TEMPLATES.items():
        for extra in ({}, {"tools": tools}):
            rendered = environment.from_string(text).render(
                messages=messages, add_generation_prompt=True, bos_token="<s>", eos_token="</s>", **extra
            )
            assert "Weather in Oslo?" in rendered and "Thanks" in rendered, name
    call = {"role": "assistant", "content": "", "tool_calls": [{"function": {"name": "f", "arguments": {"x": 1}}}]}
    tool_turn = [messages[1], call, {"role": "tool", "content": "sunny"}]
    for name in ("llama3", "chatml"):
        rendered = environment.from_string(models.BENIGN_TEMPLATES[name]).render(messages=tool_turn, tools=tools)
        assert '"name": "f"' in rendered and "sunny" in rendered, name


def test_ggml_type_table_agrees_with_the_gguf_package():
    ours = {type_id: (layout.block, layout.size) for type_id, (_, layout) in GGML_TYPES.items()}
    theirs = {int(kind): sizes for kind, sizes in gguf.GGML_QUANT_SIZES.items()}
    assert ours == theirs
    assert {name for name, _ in GGML_TYPES.values()} == {kind.name for kind in gguf.GGML_QUANT_SIZES}


@pytest.fixture(scope="module")
def big_vocab(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("vocab") / "big-vocab.gguf"
    return models.write_gguf(path, models.LLAMA3, vocab_size=150_000)


def test_large_vocabulary_parses_clean(big_vocab: Path):
    assert only_notes(scan_path(str(big_vocab))) == []  # its speed: bench/unit_speed.py


# ---------------------------------------------------------------------- malicious templates

SANDBOX_ERRORS = {"attr-concat": "UndefinedError"}  # |attr answers an unsafe name with an undefined value


@pytest.mark.parametrize("name", models.PAYLOADS)
def test_template_payload_is_found_at_its_line(tmp_path: Path, name: str):
    template = models.payload(name, tmp_path / "marker")
    path = models.write_gguf(tmp_path / f"{name}.gguf", template)
    report = scan_path(str(path))
    found = injections(report)
    assert len(found) == 1, only_notes(report)
    finding = found[0]
    assert finding.severity == Severity.CRITICAL
    assert finding.evidence["key"] == TEMPLATE_KEY
    assert "__globals__" in finding.evidence["names"] or "__subclasses__" in finding.evidence["names"]
    line = template.split("\n")[int(finding.evidence["line"]) - 1]
    assert path.read_bytes()[finding.location.offset :].startswith(line.encode())
    assert report.exit_code(Severity.HIGH) == 1


@pytest.mark.parametrize("name", models.PAYLOADS)
def test_template_payload_really_runs_without_the_sandbox(tmp_path: Path, name: str):
    marker = tmp_path / "marker"
    path = models.write_gguf(tmp_path / f"{name}.gguf", models.payload(name, marker))
    assert models.render_in_subprocess(path, TEMPLATE_KEY, sandboxed=False) == "rendered"
    assert marker.exists()


@pytest.mark.parametrize("name", models.PAYLOADS)
def test_the_sandbox_stops_the_same_payload(tmp_path: Path, name: str):
    """Why the fix is ImmutableSandboxedEnvironment: the same render raises instead of running."""
    marker = tmp_path / "marker"
    path = models.write_gguf(tmp_path / f"{name}.gguf", models.payload(name, marker))
    assert models.render_in_subprocess(path, TEMPLATE_KEY, sandboxed=True) == SANDBOX_ERRORS.get(name, "SecurityError")
    assert not marker.exists()


def test_named_template_is_analysed_and_runs(tmp_path: Path):
    marker = tmp_path / "marker"
    templates = {"default": models.CHATML, "tool_use": models.payload("cycler-globals", marker)}
    path = models.write_gguf(tmp_path / "named.gguf", templates)
    found = injections(scan_path(str(path)))
    assert [f.evidence["key"] for f in found] == ["tokenizer.chat_template.tool_use"]
    assert models.render_in_subprocess(path, "tokenizer.chat_template.tool_use", sandboxed=False) == "rendered"
    assert marker.exists()


def test_any_key_ending_in_chat_template_is_analysed(scan):
    data = gguf_file([kv_str("custom.rag.chat_template", "{{ lipsum.__globals__.os }}")])
    assert [f.evidence["key"] for f in injections(scan("custom.gguf", data))] == ["custom.rag.chat_template"]


def test_compressed_gguf_is_analysed_without_a_known_size(tmp_path: Path):
    path = models.write_gguf(tmp_path / "m.gguf", models.payload("lipsum", tmp_path / "marker"))
    packed = tmp_path / "scan" / "m.gguf.gz"
    packed.parent.mkdir()
    packed.write_bytes(gzip.compress(path.read_bytes()))
    report = scan_path(str(packed))
    assert [f.severity for f in injections(report)] == [Severity.CRITICAL]
    assert "MLO903" not in rule_ids(report)


def test_version_1_file_with_32_bit_lengths_is_parsed(scan):
    kvs = [kv_str("general.name", "old", width=4), kv_str(TEMPLATE_KEY, "{{ cycler.__init__.__globals__ }}", width=4)]
    infos = [tensor_info("w", [4], 0, 0, width=4)]
    report = scan("old.gguf", gguf_file(kvs, infos, b"\0" * 32, version=1))
    assert [f.severity for f in injections(report)] == [Severity.CRITICAL]
    assert rule_ids(report) == {"MLO170"}


def test_special_token_text_that_is_a_dunder_is_reported(tmp_path: Path):
    path = models.write_gguf(tmp_path / "tok.gguf", models.CHATML, special_tokens={1: "__globals__"})
    found = injections(scan_path(str(path)))
    assert [(f.severity, f.evidence["token"]) for f in found] == [(Severity.HIGH, "__globals__")]


def test_template_loading_other_templates_is_reported_as_file_access(scan):
    data = gguf_file([kv_str(TEMPLATE_KEY, "{% include '/etc/passwd' %}{% import 'macros.j2' as m %}")])
    (finding,) = injections(scan("inc.gguf", data))
    assert finding.severity == Severity.HIGH and finding.capability == Capability.FILE_ACCESS
    assert "include '/etc/passwd'" in finding.message and "import 'macros.j2'" in finding.message


def test_unparsable_template_is_medium(scan):
    report = scan("bad.gguf", gguf_file([kv_str(TEMPLATE_KEY, "{% for m in messages %}{{ m.content }")]))
    (finding,) = [f for f in report.findings if f.rule.id == "MLO201"]
    assert finding.severity == Severity.MEDIUM and "parse_error" in finding.evidence


def test_overlong_template_is_a_scan_limit(scan):
    text = "{{ 'x' }}" * (chat_template.MAX_SOURCE_CHARS // 9 + 1)
    report = scan("long.gguf", gguf_file([kv_str(TEMPLATE_KEY, text)]))
    assert "MLO901" in rule_ids(report)


# ---------------------------------------------------------------------- the template analysis itself

ESCAPES = [
    ("{{ ().__class__.__mro__[1].__subclasses__() }}", Severity.CRITICAL),
    ("{{ x|attr('__class__') }}", Severity.CRITICAL),
    ("{{ x|attr('__cl' ~ 'ass__') }}", Severity.CRITICAL),
    ("{{ x|attr('__CLASS__'|lower) }}", Severity.CRITICAL),
    ("{{ x|attr('__ssalc__'|reverse) }}", Severity.CRITICAL),
    ("{{ x|attr(['_', '_class', '__']|join) }}", Severity.CRITICAL),
    ("{{ x|attr('%sclass%s' % ('__', '__')) }}", Severity.CRITICAL),
    ("{{ x|attr('{}class{}'.format('__', '__')) }}", Severity.CRITICAL),
    ("{{ x|attr('__xclass__'.replace('x', '')) }}", Severity.CRITICAL),
    ("{{ x|attr('___class___'[1:-1]) }}", Severity.CRITICAL),
    ("{{ x|attr('_' * 2 ~ 'class' ~ '_' * 2) }}", Severity.CRITICAL),
    ("{{ x['__globals__'] }}", Severity.CRITICAL),
    ("{{ x['\\x5f\\x5fglobals\\x5f\\x5f'] }}", Severity.CRITICAL),
    ("{% set n %}__class__{% endset %}{{ x[n] }}", Severity.CRITICAL),
    ("{% for n in ['__init__'] %}{{ x|attr(n) }}{% endfor %}", Severity.CRITICAL),
    ("{% set ns = namespace(a='__glo') %}{% set ns.b = ns.a ~ 'bals__' %}{{ x[ns.b] }}", Severity.CRITICAL),
    ("{% with k = '__init__' %}{{ x[k] }}{% endwith %}", Severity.CRITICAL),
    ("{{ x if true else y.__class__ }}", Severity.CRITICAL),
    ("{{ x|map(attribute='__class__.__name__')|list }}", Severity.CRITICAL),
    ("{{ x|map('attr', '__class__')|list }}", Severity.CRITICAL),
    ("{{ x|selectattr('__class__')|list }}", Severity.CRITICAL),
    ("{{ x|sort(attribute='name,__class__') }}", Severity.CRITICAL),
    ("{{ getattr(x, '__class__') }}", Severity.CRITICAL),
    ("{{ '{0.__class__.__mro__}'.format(x) }}", Severity.CRITICAL),
    ("{% set f %}{0.__globals__}{% endset %}{{ f.format(x) }}", Severity.CRITICAL),
    ("{{ x|attr('format')('{0.__init__}', y) }}", Severity.CRITICAL),
    ("{{ (x|map('upper')).gi_frame.f_globals }}", Severity.CRITICAL),
    ("{{ self._TemplateReference__context }}", Severity.CRITICAL),
    ("{{ cycler._private }}", Severity.CRITICAL),
    ("{% set ns.__class__ = 1 %}", Severity.CRITICAL),
    ("{{ x._private }}", Severity.HIGH),
    ("{{ x|attr(messages[0].content) }}", Severity.HIGH),
    ("{{ x|map(attribute=name)|list }}", Severity.HIGH),
    ("{% set p = 'os.__builtins__' %}{{ p }}", Severity.HIGH),
]


@pytest.mark.parametrize("source,severity", ESCAPES, ids=[source for source, _ in ESCAPES])
def test_escape_is_found(source: str, severity: Severity):
    issues = chat_template.template_findings(source)
    assert [(issue.kind, issue.severity) for issue in issues] == [("escape", severity)], issues


LEGITIMATE = [
    "{{ messages[0]['role'] }}{{ loop.last }}{{ message.content.strip().split('\\n')[0].upper() }}",
    "{{ message['content'] | trim | tojson }}{{ x.startswith('<') }}{{ raise_exception('roles must alternate') }}",
    "{% set ns = namespace(index=0, sep='__') %}{% set ns.index = ns.index + 1 %}{{ ns.sep }}",
    "{{ strftime_now('%d %b %Y') }}{{ range(3)|list }}{{ dict(a=1) }}{{ cycler('odd', 'even').next() }}",
    "{{ tools|map(attribute='function.name')|join(', ') }}{{ messages|selectattr('role', 'equalto', 'user')|list }}",
    "{{ '%-10s|%5d' | format('name', 3) }}{{ 'Call {0}'.format(name) }}{{ '____' }}{{ x['_meta'] }}",
    "{% generation %}{{ content }}{% endgeneration %}{% for m in messages %}{% break %}{% endfor %}",
    "Python answers often start with {{ '__init__.py files mark packages' }} and {0.__class__} prose.",
    "{% macro render(m) %}{{ m.content }}{% endmacro %}{% call render(x) %}{% endcall %}{{ render(x) }}",
]


@pytest.mark.parametrize("source", LEGITIMATE)
def test_legitimate_constructs_are_not_flagged(source: str):
    assert chat_template.template_findings(source) == []


def test_one_issue_per_line_names_the_whole_chain():
    source = "line one\n{{ cycler.__init__.__globals__.os.popen('id').read() }}\n{{ lipsum.__globals__ }}"
    issues = chat_template.template_findings(source)
    assert [issue.line for issue in issues] == [2, 3]
    assert issues[0].evidence["names"] == "__globals__, __init__"
    assert issues[0].evidence["expression"].startswith("cycler.__init__.__globals__")


@pytest.mark.parametrize("name", HUGE_VALUE_TEMPLATES)
def test_folding_never_computes_huge_values(name: str):
    source, computed_attr = HUGE_VALUE_TEMPLATES[name]
    issues = chat_template.template_findings(source)  # bounded folding; its speed: bench/unit_speed.py
    assert [issue.evidence.get("via") for issue in issues] == (["a computed name"] if computed_attr else [])


def test_deep_nesting_is_unparsable_not_a_crash():
    (issue,) = chat_template.template_findings("{{ " + "(" * 5000 + "1" + ")" * 5000 + " }}")
    assert issue.kind == "unparsable" and issue.severity == Severity.MEDIUM


def test_huge_integer_literal_is_unparsable_not_a_crash():
    (issue,) = chat_template.template_findings("{{ " + "9" * 5000 + " }}")
    assert issue.kind == "unparsable"


def test_node_limit_reports_and_keeps_what_it_saw(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(chat_template, "MAX_NODES", 50)
    source = "{{ x.__class__ }}" + "{{ a }}" * 100
    kinds = [(issue.kind, issue.severity) for issue in chat_template.template_findings(source)]
    assert kinds == [("escape", Severity.CRITICAL), ("limit", Severity.HIGH)]


# ---------------------------------------------------------------------- hostile and malformed headers


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_header_is_malformed(scan, name: str):
    report = scan("model.gguf", HOSTILE[name])  # its speed: bench/unit_speed.py
    ids = rule_ids(report)
    assert "MLO201" in ids and "MLO903" not in ids, only_notes(report)
    assert any(f.rule.id == "MLO201" and f.severity >= Severity.HIGH for f in report.findings)


def test_truncation_anywhere_is_malformed(tmp_path: Path):
    whole = models.write_gguf(tmp_path / "whole.gguf", models.CHATML, vocab_size=50).read_bytes()
    folder = tmp_path / "cuts"
    folder.mkdir()
    for cut in sorted({*range(4, 64, 3), *range(64, len(whole), max(1, len(whole) // 60)), len(whole) - 1}):
        path = folder / f"cut{cut}.gguf"
        path.write_bytes(whole[:cut])
        report = scan_path(str(path))
        assert "MLO201" in rule_ids(report) and "MLO903" not in rule_ids(report), (cut, only_notes(report))


def test_unknown_tensor_type_is_only_a_note(scan):
    report = scan("future.gguf", gguf_file([], [tensor_info("w", [4], 200, 0)], b"\0" * 32))
    (note,) = [f for f in report.findings if f.rule.id == "MLO201"]
    assert note.severity == Severity.INFO and "unknown to mloops" in note.message
    assert only_notes(report) == []


def test_bytes_after_the_last_tensor_are_trailing_data(scan):
    report = scan("tail.gguf", gguf_file([], [F32x4], b"\0" * 32 + b"PK\x05\x06" + b"\0" * 60))
    (finding,) = [f for f in report.findings if f.rule.id == "MLO202"]
    assert finding.location.offset is not None


def test_text_starting_with_gguf_is_not_taken_for_a_model(scan):
    assert not detect(b"GGUF is the file format of llama.cpp", "README.md")
    assert scan("README.md", b"GGUF is the file format of llama.cpp\n").findings == []
    assert detect(b"GGUF\x03\x00\x00\x00", "x") and detect(b"GGUF\x00\x00\x00\x03", "x")
