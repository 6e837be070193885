"""Chat templates outside GGUF: tokenizer configs, template files and YAML/JSON configs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from corpus.gguf_models import BENIGN_TEMPLATES, PAYLOADS, payload
from corpus.template_carriers import CARRIERS, Carrier, render_plain

from mloops.core import Severity
from mloops.scan import scan_path

CARRIER_IDS = [carrier.name for carrier in CARRIERS]


def _findings(path: Path) -> list[tuple[str, Severity]]:
    report = scan_path(str(path))
    return [(f.rule.id, f.severity) for result in report.files for f in result.findings]


def _formats(path: Path) -> list[str]:
    return [asset.format for result in scan_path(str(path)).files for asset in result.assets]


@pytest.mark.parametrize("carrier", CARRIERS, ids=CARRIER_IDS)
@pytest.mark.parametrize("name", sorted(PAYLOADS))
def test_a_malicious_template_is_critical_in_every_carrier(tmp_path: Path, carrier: Carrier, name: str) -> None:
    path = carrier.write(tmp_path, payload(name, tmp_path / "marker"))
    findings = _findings(path)
    assert any(rule == "MLO170" and severity >= Severity.HIGH for rule, severity in findings), findings


@pytest.mark.parametrize("carrier", CARRIERS, ids=CARRIER_IDS)
def test_the_carried_payload_really_runs_when_rendered_unsandboxed(tmp_path: Path, carrier: Carrier) -> None:
    marker = tmp_path / "marker"
    path = carrier.write(tmp_path, payload("cycler-globals", marker))
    assert render_plain(carrier, path) == "rendered"
    assert marker.exists()


@pytest.mark.parametrize("carrier", CARRIERS, ids=CARRIER_IDS)
@pytest.mark.parametrize("name", sorted(BENIGN_TEMPLATES))
def test_real_templates_are_quiet_in_every_carrier(tmp_path: Path, carrier: Carrier, name: str) -> None:
    path = carrier.write(tmp_path, BENIGN_TEMPLATES[name])
    assert _formats(path) == ["chat-template" if path.suffix in {".jinja", ".j2", ".template"} else "template-config"]
    assert [f for f in _findings(path) if f[1] >= Severity.LOW] == []


def test_a_tokenizer_saved_by_transformers_is_quiet(tmp_path: Path) -> None:
    tokenizers = pytest.importorskip("tokenizers")
    transformers = pytest.importorskip("transformers")
    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2, "hello": 3}
    backend = tokenizers.Tokenizer(tokenizers.models.WordLevel(vocab, unk_token="<unk>"))
    tokenizer = transformers.PreTrainedTokenizerFast(tokenizer_object=backend, bos_token="<s>", eos_token="</s>")
    tokenizer.chat_template = BENIGN_TEMPLATES["chatml"]
    tokenizer.save_pretrained(tmp_path)
    rendered = tokenizer.apply_chat_template([{"role": "user", "content": "hello"}], tokenize=False)
    assert "hello" in rendered
    written = sorted(p.name for p in tmp_path.iterdir())
    assert {"chat_template.jinja", "tokenizer_config.json"} & set(written), written
    report = scan_path(str(tmp_path))
    formats = {Path(r.path).name: [a.format for a in r.assets] for r in report.files}
    assert any("chat-template" in f or "template-config" in f for f in formats.values()), formats
    assert [f.rule.id for r in report.files for f in r.findings if f.severity >= Severity.LOW] == []


def test_an_unparsable_tokenizer_template_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "tokenizer_config.json"
    path.write_text(json.dumps({"chat_template": "{% for m in messages %}{{ m.content }"}))
    assert ("MLO201", Severity.MEDIUM) in _findings(path)


def test_a_broken_tokenizer_config_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "tokenizer_config.json"
    path.write_text('{"chat_template": "{{ messages }}"')
    assert ("MLO201", Severity.MEDIUM) in _findings(path)


def test_a_helm_template_is_not_taken_for_a_chat_template_config(tmp_path: Path) -> None:
    path = tmp_path / "deployment.yaml"
    path.write_text("spec:\n  template:\n    metadata:\n      name: {{ .Release.Name }}\n  {{- if .Values.x }}\n")
    assert _findings(path) == []
    assert _formats(path) == ["other"]


def test_other_engines_templates_under_a_template_key_are_at_most_low(tmp_path: Path) -> None:
    path = tmp_path / "values.yaml"
    path.write_text("notification:\n  template: 'Deployed {{ .Release.Name }} to {{ .Values.env }}'\n")
    assert all(severity <= Severity.LOW for _, severity in _findings(path))


def test_text_named_like_a_template_without_jinja_is_not_a_template(tmp_path: Path) -> None:
    path = tmp_path / "email.template"
    path.write_text("Dear {name}, your job finished.")
    assert _formats(path) == ["other"]


@pytest.mark.parametrize("name", sorted(PAYLOADS))
def test_a_bare_payload_in_a_jinja_file_is_still_reported(tmp_path: Path, name: str) -> None:
    # No "messages" in it, so not recognisably a chat template: its escapes are reported all the same.
    path = tmp_path / "prompt.jinja"
    path.write_text(PAYLOADS[name].replace("{cmd}", "id"))
    assert _formats(path) == ["jinja-template"]
    assert any(rule == "MLO170" and severity >= Severity.HIGH for rule, severity in _findings(path))


def test_a_web_template_that_extends_and_imports_its_siblings_is_quiet(tmp_path: Path) -> None:
    path = tmp_path / "page.html.jinja"
    path.write_text(
        "{% extends 'base.html.jinja' %}{% from 'macros.html.jinja' import embed with context %}"
        "{% include 'footer.html.jinja' %}{% block body %}{{ embed(roots.x) }}"
        "{% set nan = '__NOT_A_NUMBER__' %}{{ nan }}{% endblock %}"
    )
    assert _formats(path) == ["jinja-template"]
    assert _findings(path) == []


def test_the_same_loads_in_a_chat_template_are_high(tmp_path: Path) -> None:
    path = tmp_path / "chat.jinja"
    path.write_text("{% include 'other.jinja' %}{% for m in messages %}{{ m['content'] }}{% endfor %}")
    assert _formats(path) == ["chat-template"]
    assert ("MLO170", Severity.HIGH) in _findings(path)
