"""Python sources that stress the code analyzer: deep nesting, long chains, many calls."""

from __future__ import annotations


def deep_sources() -> list[str]:
    return [
        "x = " + "a." * 50_000 + "b\n",
        "x = " + "a + " * 50_000 + "a\n",
        "x = " + "-" * 50_000 + "1\n",
        "a0 = m\n" + "".join(f"a{i + 1} = a{i}.x\n" for i in range(20_000)),  # alias chain, quadratic if unbounded
        "import torch as T\n" + "T.load(f)\n" * 20_000,
    ]
