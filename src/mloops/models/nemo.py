"""NVIDIA NeMo archives (.nemo): a tar of model_config.yaml, a torch checkpoint and tokenizer files.

Restoring the model extracts the tar, loads model_weights.ckpt with torch.load (a pickle, scanned
by the pickle engine like every other member) and instantiates the config: Hydra imports and calls
every ``_target_``, NeMo imports the class named by ``target``. The config therefore names code to
run; every such name is read from the YAML (never loaded) and judged against an allowlist.
"""

from __future__ import annotations

import functools
import re
from typing import NamedTuple

from .. import rules
from ..context import Handler, Item, ScanContext
from ..core import AttackClass, Capability, Rule, Severity
from ..data import load_toml
from ..limits import MiB
from ..parsers.yaml_keys import KeyValue, YamlError, find_keys
from ..picklevm.policy import DANGEROUS, INTROSPECTION, Category, Policy
from ..registry import Format, Layout

CONFIG_INSTANTIATION_TARGET = Rule(
    id="MLO151",
    name="config-instantiation-target",
    title="Model config instantiates a class or function outside the framework (Hydra _target_)",
    severity=Severity.HIGH,
    attack_class=AttackClass.MALICIOUS_MODEL,
    capability=Capability.CODE_EXECUTION,
    description=(
        "Restoring a NeMo model instantiates its config: Hydra imports the module of every _target_ and "
        "calls the object with the config's arguments, and NeMo imports the class named by target. A name "
        "outside NeMo, torch.nn/optim and OmegaConf, one that loads further models or imports classes by "
        "name, or one computed at load time (interpolation, alias) runs code the config chooses."
    ),
    remediation=(
        "Check that every listed target is NeMo or your own reviewed code; do not restore the model otherwise."
    ),
    summary="A NeMo config's Hydra `_target_` names a callable outside the framework.",
)


MAX_CONFIG_BYTES = 4 * MiB  # real configs are tens of kB; every token is held in memory
CONFIG_NAME = "model_config.yaml"
# Hydra's key, NeMo's top-level class key, and the legacy Hydra 0.11 key (beside `params`).
TARGET_KEYS = frozenset({"_target_", "target", "cls"})
_DOTTED = re.compile(r"^[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+$")


class TargetPolicy(NamedTuple):
    allowed: tuple[str, ...]
    loaders: dict[str, Category]


@functools.cache
def target_policy() -> TargetPolicy:
    data = load_toml("nemo_targets.toml")
    spec = data["loader"]
    loader = Category("loader", Severity.parse(spec["severity"]), Capability[spec["capability"].upper()], spec["why"])
    return TargetPolicy(tuple(data["allowed"]), dict.fromkeys(spec["names"], loader))


def member_handler(name: str) -> Handler | None:
    if name.rsplit("/", 1)[-1] == CONFIG_NAME:
        return analyze_config
    return None  # the checkpoint, tokenizer files and nested archives are identified by content


def analyze_config(ctx: ScanContext, item: Item) -> None:
    ctx.record(item, "nemo-config")
    data = ctx.read_all(item, MAX_CONFIG_BYTES, "model config")
    if data is None:
        return
    try:
        entries = list(find_keys(data.decode("utf-8"), TARGET_KEYS))
    except (UnicodeDecodeError, YamlError) as exc:
        ctx.report(rules.MALFORMED.finding(item.location, f"model config is not valid YAML: {exc}"))
        return
    for entry in entries:
        ctx.budget.check_time()
        _judge_entry(ctx, item, entry)


def _judge_entry(ctx: ScanContext, item: Item, entry: KeyValue) -> None:
    strict = entry.key == "_target_"  # `target` and `cls` are also ordinary words in configs
    evidence = {"key": entry.key, "line": str(entry.line)}
    value = (entry.value or "").strip()
    if entry.problem:
        evidence["note"] = entry.problem
    if entry.value is None:
        if strict:
            message = f"{entry.key} cannot be read statically ({entry.problem}); Hydra resolves it at load time"
            ctx.report(CONFIG_INSTANTIATION_TARGET.finding(item.location, message, evidence))
        return
    if "${" in value:
        evidence["target"] = value
        message = f"{entry.key} {value!r} is an interpolation: the class to instantiate is computed at load time"
        ctx.report(CONFIG_INSTANTIATION_TARGET.finding(item.location, message, evidence))
        return
    if not value or (not strict and not _DOTTED.match(value)):
        return
    evidence["target"] = value
    _judge_target(ctx, item, entry.key, value, evidence)


def _judge_target(ctx: ScanContext, item: Item, key: str, target: str, evidence: dict[str, str]) -> None:
    category, reached = _dangerous(ctx.policy, target.split("."))
    if category is not None:
        if reached != target:
            evidence["reaches"] = reached
        evidence["category"] = category.key
        message = f"{key} {target} is instantiated when the model is restored: it {category.why}"
        finding = CONFIG_INSTANTIATION_TARGET.finding(
            item.location, message, evidence, severity=category.severity, capability=category.capability
        )
        ctx.report(finding)
        return
    policy = target_policy()
    if not any(target == prefix or target.startswith(prefix + ".") for prefix in policy.allowed):
        message = f"{key} {target} is instantiated when the model is restored and is outside the allowed namespaces"
        ctx.report(CONFIG_INSTANTIATION_TARGET.finding(item.location, message, evidence))


def _dangerous(policy: Policy, parts: list[str]) -> tuple[Category | None, str]:
    """The category of a denied or loader name reached along the dotted path. Hydra imports a
    module and walks attributes, so nemo.utils.os.system is os.system (the policy follows the
    modules code usually imports at top level) and nemo.x.torch.load is torch.load."""
    starts = [0] + [index for index, part in enumerate(parts) if index and part == "torch"]
    for start in starts:
        verdict = policy.judge(policy.canonical(parts[start], ".".join(parts[start + 1 :])))
        if verdict.status in (DANGEROUS, INTROSPECTION) and verdict.category is not None:
            return verdict.category, verdict.reached or ".".join(parts[start:])
    loaders = target_policy().loaders
    if parts[-1] in loaders:
        return loaders[parts[-1]], ".".join(parts)
    return None, ".".join(parts)


FORMATS = (
    Format(
        "nemo",
        "code",
        "NVIDIA NeMo archive",
        extensions=(".nemo",),
        layout=Layout(
            "tar", 20, lambda names: any(name.rsplit("/", 1)[-1] == CONFIG_NAME for name in names), member_handler
        ),
    ),
    Format("nemo-config", "code", "NeMo model config (Hydra targets)"),
)
