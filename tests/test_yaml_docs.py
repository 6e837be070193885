"""The one JSON/YAML reader behind manifests, template configs and model packages: hostile sizes stop with
YamlLimit, every other unreadable text with Unreadable and the parser's first line."""

from __future__ import annotations

import pytest

from mloops.parsers.yaml_docs import Unreadable, YamlLimit, parse_documents


def test_yaml_and_json_texts_give_their_documents():
    assert parse_documents(b"a: 1\n---\nb: [x, y]\n", as_json=False) == [{"a": 1}, {"b": ["x", "y"]}]
    assert parse_documents(b'{"auto_map": {"AutoModel": "m.M"}}', as_json=True) == [{"auto_map": {"AutoModel": "m.M"}}]


@pytest.mark.parametrize(
    ("data", "as_json", "first_line"),
    [
        (b"a: [1, 2\n", False, "while parsing a flow sequence"),
        (b'{"a": 1,}', True, "Expecting property name"),
        (b"[" * 200_000 + b"]" * 200_000, True, "maximum recursion depth"),
    ],
)
def test_unreadable_text_names_the_parser_first_line(data: bytes, as_json: bool, first_line: str):
    with pytest.raises(Unreadable) as caught:
        parse_documents(data, as_json)
    assert str(caught.value).startswith(first_line) and "\n" not in str(caught.value)


def test_hostile_sizes_are_limits_not_unreadable_text():
    levels = ['a0: &a0 ["x", "x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    levels += [f"a{n}: &a{n} [{', '.join([f'*a{n - 1}'] * 10)}]" for n in range(1, 9)]
    with pytest.raises(YamlLimit):
        parse_documents("\n".join(levels).encode(), as_json=False)
    with pytest.raises(YamlLimit):  # JSON has no aliases, but a consumer walking it visits every node
        parse_documents(b"[" + b"0," * 1_100_000 + b"0]", as_json=True)
