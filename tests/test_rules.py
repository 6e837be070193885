"""The rule catalog: every rule is declared with keywords beside the code that emits it, data tables name the
rules they decide in fields (never in comments), and ids are unique."""

from __future__ import annotations

import ast
import pathlib
import re
import tomllib

from mloops.registry import all_rules

SRC = pathlib.Path(__file__).resolve().parent.parent / "src" / "mloops"
DATA = SRC / "data"


def _rule_calls() -> list[tuple[pathlib.Path, ast.Call]]:
    calls = []
    for path in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "Rule":
                calls.append((path, node))
    return calls


def test_every_rule_is_declared_with_keywords_and_found_by_the_catalog():
    calls = _rule_calls()
    assert len(calls) == len(all_rules()) >= 80
    positional = [f"{path.name}:{call.lineno}" for path, call in calls if call.args]
    assert positional == []
    ids = [rule.id for rule in all_rules()]
    assert len(ids) == len(set(ids))


def _named_rules(table: dict) -> list[str]:
    """A table's `rule = "id"`, `rules = [ids]` or `[rules]` (list name -> id)."""
    named = [table["rule"]] if isinstance(table.get("rule"), str) else []
    rules = table.get("rules", [])
    return named + list(rules.values() if isinstance(rules, dict) else rules)


def test_data_tables_name_their_rules_in_fields_and_the_loading_package_emits_them():
    by_id = {rule.id: rule for rule in all_rules()}
    constants = {}
    for path, call in _rule_calls():
        rule_id = next(k.value.value for k in call.keywords if k.arg == "id" and isinstance(k.value, ast.Constant))
        constants[rule_id] = path
    checked = 0
    for path in sorted(DATA.glob("*.toml")):
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"#[^\n]*\bMLO\d{3}", text), f"{path.name} names a rule in a comment"
        named = _named_rules(tomllib.loads(text))
        loaders = [p for p in SRC.rglob("*.py") if f'load_toml("{path.name}")' in p.read_text(encoding="utf-8")]
        for rule_id in named:
            assert rule_id in by_id, (path.name, rule_id)
            # the loader sits beside the rule's module, or calls into it
            home = constants[rule_id]
            assert any(p.parent == home.parent or home.stem in p.read_text() for p in loaders), (path.name, rule_id)
            checked += 1
    assert checked >= 12
