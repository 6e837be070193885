"""YAML documents loaded with PyYAML's safe loader, within limits a hostile file cannot stretch.

The safe loader builds only plain data (no tags that construct Python objects). On top of it: a cap on
nodes and aliases while composing, and a check that the loaded data, with every alias expanded, stays
small; alias bombs ("billion laughs") and self-referencing documents stop with YamlLimit.
"""

from __future__ import annotations

import json
from typing import Any

import yaml

from ..core import ParseError

MAX_NODES = 200_000  # nodes written in the text
MAX_ALIASES = 1_000
MAX_EXPANDED = 1_000_000  # nodes once every alias is expanded (what a consumer walking the data would visit)


class YamlLimit(ValueError):
    """The text is too big or expands too much to be analyzed."""


class Unreadable(ParseError, ValueError):
    """The text is neither valid JSON nor valid YAML; the message is the parser's first line."""


def parse_documents(data: bytes, as_json: bool) -> list[Any]:
    """The documents of a JSON (``as_json``) or YAML text: YamlLimit for hostile sizes, Unreadable for bad text."""
    text = data.decode("utf-8", "replace")
    try:
        if as_json:
            documents = [json.loads(text)]
            check_expansion(documents)
            return documents
        return load_documents(text)
    except YamlLimit:
        raise
    except (yaml.YAMLError, ValueError, RecursionError) as exc:  # RecursionError: nesting deeper than the stack
        raise Unreadable(str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__) from None


class _LimitedLoader(yaml.SafeLoader):
    nodes = 0
    aliases = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        self.nodes += 1
        if self.check_event(yaml.AliasEvent):
            self.aliases += 1
            if self.aliases > MAX_ALIASES:
                raise YamlLimit(f"more than {MAX_ALIASES} aliases")
        if self.nodes > MAX_NODES:
            raise YamlLimit(f"more than {MAX_NODES} nodes")
        return super().compose_node(parent, index)


def load_documents(text: str) -> list[Any]:
    """Every document of the stream; yaml.YAMLError for bad YAML, YamlLimit for hostile sizes."""
    loader = _LimitedLoader(text)
    documents = []
    try:
        while loader.check_data():
            documents.append(loader.get_data())
    finally:
        loader.dispose()
    check_expansion(documents)
    return documents


def check_expansion(value: Any) -> None:
    """YamlLimit when ``value`` with aliases expanded exceeds MAX_EXPANDED nodes, or refers to itself."""
    sizes: dict[int, int] = {}
    in_progress: set[int] = set()
    stack: list[tuple[Any, bool]] = [(value, False)]
    while stack:
        node, children_done = stack.pop()
        if not isinstance(node, dict | list):
            continue
        key = id(node)
        if children_done:
            in_progress.discard(key)
            children = node.values() if isinstance(node, dict) else node
            size = 1 + sum(sizes.get(id(child), 1) for child in children)
            if size > MAX_EXPANDED:
                raise YamlLimit(f"expands to more than {MAX_EXPANDED} nodes through aliases")
            sizes[key] = size
            continue
        if key in sizes:
            continue
        if key in in_progress:
            raise YamlLimit("a node contains itself through an alias")
        in_progress.add(key)
        stack.append((node, True))
        children = node.values() if isinstance(node, dict) else node
        stack.extend((child, False) for child in children if isinstance(child, dict | list))
