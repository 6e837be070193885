"""Hostile Kubernetes manifests: a YAML alias bomb and a ConfigMap over the size bound."""

from __future__ import annotations


def alias_bomb() -> str:
    levels = ['a0: &a0 ["x", "x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    for level in range(1, 9):
        previous = f"*a{level - 1}"
        levels.append(f"a{level}: &a{level} [{', '.join([previous] * 10)}]")
    return "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: bomb}\ndata:\n" + "\n".join(
        "  " + line for line in levels
    )


def huge_config_map() -> str:
    return "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: big}\ndata:\n" + "  k: v\n" * 1_500_000
