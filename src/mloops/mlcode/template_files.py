"""Chat templates outside GGUF: standalone template files, and the JSON or YAML configs that carry them.

Runtimes render these with Jinja2 on every request: transformers reads ``chat_template`` from
tokenizer_config.json (a string, or a list of ``{name, template}``), chat_template.jinja and
chat_template.json; serving stacks take ``--chat-template`` files (.jinja, .j2, .template) and YAML or
JSON configs holding a template. Each template gets the analysis GGUF templates get (chat_template.py,
imported on first use: it imports Jinja2).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from types import ModuleType
from typing import Any

from .. import rules
from ..context import Item, ScanContext
from ..core import AttackClass, Capability, Rule, Severity
from ..registry import Format

TEMPLATE_INJECTION = Rule(
    id="MLO170",
    name="template-injection",
    title="Chat template reaches Python internals through Jinja2",
    severity=Severity.CRITICAL,
    attack_class=AttackClass.MALICIOUS_MODEL,
    capability=Capability.CODE_EXECUTION,
    description=(
        "The Jinja2 chat template walks dunder attributes (__class__, __globals__, __subclasses__, "
        "__builtins__, __import__) or known gadget objects. Runtimes that render templates outside Jinja2's "
        "sandbox run it as code on the inference server (CVE-2024-34359 in llama-cpp-python)."
    ),
    remediation=rules.DO_NOT_LOAD + "Render chat templates only with jinja2.sandbox.ImmutableSandboxedEnvironment.",
    summary=(
        "A Jinja2 chat template (GGUF, tokenizer config, template file, YAML/JSON config) reaches Python internals: "
        "dunders, gadget globals, attribute filters."
    ),
)


# Files that hold one template; ".template" and ".tmpl" are also used for other text, so they count only
# when they contain Jinja2 syntax.
TEMPLATE_SUFFIXES = (".jinja", ".jinja2", ".j2")
LOOSE_TEMPLATE_SUFFIXES = (".template", ".tmpl")
CONFIG_SUFFIXES = (".json", ".yaml", ".yml")
# Configs a runtime reads a chat template from, whatever their first bytes hold (a tokenizer config
# often puts its template after a long added-tokens table).
TEMPLATE_CONFIGS = frozenset({"tokenizer_config.json", "chat_template.json", "processor_config.json"})
MAX_CONFIG_BYTES = 16 * 1024 * 1024  # real tokenizer configs stay under a few MiB
MAX_VALUES = 1_000_000  # values walked in one config
_JINJA = re.compile(rb"\{\{|\{%|\{#")
# What every chat template renders: the conversation (``messages``) or the generation prompt flag.
_CHAT_MARKERS = re.compile(rb"\bmessages\b|\badd_generation_prompt\b")
_TEMPLATE_KEY = re.compile(rb"""["']?[\w.-]*template[\w.-]*["']?\s*:""", re.IGNORECASE)


def detect_template(head: bytes, name: str) -> bool:
    """A file holding one Jinja2 template, by its name (templates have no magic bytes)."""
    lower = name.lower()
    if b"\x00" in head:
        return False
    return lower.endswith(TEMPLATE_SUFFIXES) or (lower.endswith(LOOSE_TEMPLATE_SUFFIXES) and bool(_JINJA.search(head)))


def detect_config(head: bytes, name: str) -> bool:
    """A JSON or YAML config that names a chat template, or holds a template under a "template" key."""
    lower = name.lower()
    if b"\x00" in head or not lower.endswith(CONFIG_SUFFIXES):
        return False
    if os.path.basename(lower) in TEMPLATE_CONFIGS:
        return True
    return bool(_TEMPLATE_KEY.search(head)) and bool(_JINJA.search(head))


def _chat_template() -> ModuleType:
    from . import chat_template

    return chat_template


def analyze_template(ctx: ScanContext, item: Item) -> None:
    module = _chat_template()
    data = ctx.read_all(item, module.MAX_SOURCE_CHARS * 4, "template file", severity=Severity.HIGH)
    chat = "chat_template" in os.path.basename(item.name.lower()) or (
        data is not None and bool(_CHAT_MARKERS.search(data))
    )
    ctx.record(item, "chat-template" if chat else "jinja-template")
    if data is None:
        return
    source = data.decode("utf-8", "replace")
    # Other Jinja2 templates may use their application's extensions: one Jinja2 cannot parse is a note.
    unparsable = Severity.MEDIUM if chat else Severity.LOW
    module.report(ctx, item.location, source, {"file": os.path.basename(item.name)}, 0, unparsable, chat)


def analyze_config(ctx: ScanContext, item: Item) -> None:
    data = ctx.read_all(item, MAX_CONFIG_BYTES, "template config", severity=Severity.HIGH)
    named = os.path.basename(item.name.lower()) in TEMPLATE_CONFIGS
    documents = None if data is None else _documents(ctx, item, data, named)
    ctx.record(item, "template-config" if documents is not None or named else "other")
    if documents is None:
        return
    from ..models import model_package  # a tokenizer's auto_map names code like a model config's does

    model_package.check_auto_map(ctx, item, documents[0] if documents else None)
    module = _chat_template()
    for key, source in _templates(ctx, item, documents):
        # A key a runtime reads as a chat template is Jinja2 for sure: a template it cannot parse is
        # reported as such. Other "template" keys may hold another engine's syntax (Go, Mustache).
        strict = named or key.split(".")[-1].split("[")[0] == "chat_template"
        unparsable = Severity.MEDIUM if strict else Severity.LOW
        module.report(ctx, item.location, source, {"key": key}, None, unparsable)


def _documents(ctx: ScanContext, item: Item, data: bytes, named: bool) -> list[Any] | None:
    """The config's documents; None when it cannot be read. Unreadable is a finding for the configs a
    runtime reads templates from; any other file that fails to parse (a Helm template, say) is read by
    no runtime as a config, so it holds no template that runs."""
    from ..parsers.yaml_docs import Unreadable, YamlLimit, parse_documents  # most scans meet no config

    try:
        return parse_documents(data, item.name.lower().endswith(".json"))
    except YamlLimit as exc:
        ctx.report(rules.SCAN_LIMIT.finding(item.location, f"template config {exc}; not analyzed"))
    except Unreadable as exc:
        if named:
            message = f"template config is not valid JSON or YAML ({exc}); the runtime that reads it fails too"
            evidence = {"error": str(exc)}
            ctx.report(rules.MALFORMED.finding(item.location, message, evidence, severity=Severity.MEDIUM))
    return None


def _templates(ctx: ScanContext, item: Item, documents: list[Any]) -> Iterator[tuple[str, str]]:
    """(key path, text) of every string under a key naming a template, with Jinja2 syntax or a chat template."""
    pending: list[tuple[str, Any, bool]] = [("", document, False) for document in reversed(documents)]
    walked = 0
    while pending:
        path, value, under_template = pending.pop()
        walked += 1
        if not walked % 4096:
            ctx.budget.check_time()
            if walked > MAX_VALUES:
                ctx.report(rules.SCAN_LIMIT.finding(item.location, f"template config over {MAX_VALUES} values"))
                return
        if isinstance(value, str):
            if under_template and ("{" in value or path.endswith("chat_template")):
                yield path, value
        elif isinstance(value, dict):
            for key, child in reversed(list(value.items())):
                name = str(key)
                child_path = f"{path}.{name}" if path else name
                pending.append((child_path, child, under_template or "template" in name.lower()))
        elif isinstance(value, list):
            for index in reversed(range(len(value))):
                pending.append((f"{path}[{index}]", value[index], under_template))


FORMATS = (
    Format(
        "chat-template",
        "safe",
        "Jinja2 chat template file",
        handler=analyze_template,
        detect=detect_template,
        order=450,
    ),
    Format("jinja-template", "other", "Jinja2 template (not a chat template)", "source"),
    Format(
        "template-config",
        "safe",
        "config holding chat templates (tokenizer_config.json, YAML)",
        handler=analyze_config,
        detect=detect_config,
        order=460,
    ),
)
