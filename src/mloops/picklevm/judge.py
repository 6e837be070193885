"""Turn what the machine observed into findings, judged against the policy.

Each global gets one finding per asset, at its strongest use (called, then
instantiated, then merely imported), located at the first offset of that use.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .. import rules
from ..core import Finding, Location, Severity
from .calls import is_stdlib
from .policy import BUILD_ONLY, DANGEROUS, INTROSPECTION, SAFE, Policy, Verdict
from .values import Attr, Ext, Global, Live, describe
from .vm import Name, Observer


class Use:
    """How one global is used in an asset: first reference, first call, first instantiation."""

    __slots__ = ("called", "count", "instantiated", "name", "offset", "opcode", "spelled")

    def __init__(self, name: Name, offset: int, opcode: str) -> None:
        self.name = name
        self.offset = offset
        self.opcode = opcode
        self.spelled: str | None = None
        self.called: tuple[int, str, str] | None = None  # offset, how, arguments
        self.instantiated: tuple[int, str] | None = None  # offset, how
        self.count = 0


NestedScan = Callable[[bytes, int, str], None]


class Judge(Observer):
    """The machine's observer for one asset; collects findings as the stream is emulated."""

    def __init__(self, policy: Policy, location: Location, scan_nested: NestedScan) -> None:
        self.policy = policy
        self.location = location
        self.scan_nested = scan_nested
        self.uses: dict[Name, Use] = {}
        self.findings: list[Finding] = []
        self.computed: dict[str, Finding] = {}
        self.touched: dict[tuple[str, int], Finding] = {}  # one finding per live value
        self.reported: set[tuple[str, str]] = set()
        self.anomalies: dict[str, Finding] = {}
        self.events = 0  # references and calls seen, to tell a later pickle from trailing garbage

    def _use(self, name: Name, offset: int, opcode: str) -> Use:
        use = self.uses.get(name)
        if use is None:
            use = self.uses[name] = Use(name, offset, opcode)
        return use

    # ----------------------------------------------------------- observer API

    def reference(self, name: Name, offset: int, opcode: str, spelled: str | None) -> None:
        self.events += 1
        use = self._use(name, offset, opcode)
        use.count += 1
        if spelled and not use.spelled:
            use.spelled = spelled

    def call(self, name: Name | None, callee: Any, args: Any, offset: int, opcode: str) -> None:
        self.events += 1
        if name is None:
            self._computed_call(callee, args, offset, opcode)
            return
        use = self._use(name, offset, opcode)
        if use.called is None:
            use.called = (offset, opcode, "" if args is None else describe(args))

    def instantiate(self, name: Name | None, cls: Any, offset: int, opcode: str) -> None:
        self.events += 1
        if name is None:
            self._computed_call(cls, None, offset, opcode)
            return
        use = self._use(name, offset, opcode)
        if use.instantiated is None:
            use.instantiated = (offset, opcode)

    def build(self, target: Any, name: Name | None, offset: int, opcode: str) -> None:
        if isinstance(target, (Global, Ext)) or (isinstance(target, Attr) and target.name is not None and name):
            what = describe(target)
            self._add(
                rules.GLOBAL_MUTATION.finding(
                    self.location.at(offset),
                    f"{opcode} changes the imported object {what} instead of a new object",
                    {"target": what, "opcode": opcode},
                )
            )
        elif name is not None:
            use = self._use(name, offset, opcode)
            if use.instantiated is None and use.called is None:
                use.instantiated = (offset, opcode)

    def extension(self, code: int, offset: int) -> None:
        self.events += 1
        self._add(
            rules.EXTENSION_REGISTRY.finding(
                self.location.at(offset),
                f"EXT opcode fetches the global registered under extension code {code}",
                {"extension_code": str(code), "opcode": "EXT"},
            )
        )

    def computed_global(self, offset: int, detail: str) -> None:
        self.events += 1
        self._add(rules.COMPUTED_CALL.finding(self.location.at(offset), detail, {"opcode": "STACK_GLOBAL"}))

    def computed_name(self, offset: int, detail: str) -> None:
        self._add_once(
            ("computed-name", detail),
            lambda: rules.COMPUTED_CALL.finding(self.location.at(offset), detail, {"opcode": "REDUCE"}),
        )

    def touch(self, live: Live, use: str, offset: int, opcode: str) -> None:
        self.events += 1
        key = (live.what, live.offset)
        earlier = self.touched.get(key)
        if earlier is not None:  # one finding per live value, counting its uses
            earlier.evidence["uses"] = str(int(earlier.evidence.get("uses", "1")) + 1)
            return
        evidence = {"value": live.what, "use": use, "opcode": opcode, "made_at": str(live.offset)}
        severity = Severity.CRITICAL if live.critical else None
        finding = rules.UNTRUSTED_VALUE_USED.finding(
            self.location.at(offset), f"a value is {use}: {live.what}", evidence, severity=severity
        )
        self.touched[key] = finding
        self._add(finding)

    def misuse(self, via: str, message: str, offset: int, opcode: str) -> None:
        evidence = {"callable": via, "opcode": opcode}
        self._add_once(
            (via, message), lambda: rules.SIGNATURE_VIOLATION.finding(self.location.at(offset), message, evidence)
        )

    def mutation(self, message: str, evidence: dict[str, str], offset: int) -> None:
        self._add_once(
            ("mutation", message), lambda: rules.GLOBAL_MUTATION.finding(self.location.at(offset), message, evidence)
        )

    def expansion(self, message: str, offset: int) -> None:
        self._add_once(("expansion", message), lambda: rules.LOAD_EXPANSION.finding(self.location.at(offset), message))

    def _add_once(self, key: tuple[str, str], make: Callable[[], Finding]) -> None:
        """One finding per kind of event and message, however often the file repeats it."""
        self.events += 1
        if key not in self.reported:
            self.reported.add(key)
            self._add(make())

    def nested(self, data: bytes | None, offset: int, via: Name) -> None:
        verdict = self.policy.judge(via)
        if data is not None:
            self.scan_nested(data, offset, verdict.name)
        elif verdict.status == SAFE:  # a denied loader is reported anyway; an allowed one must not hide a payload
            self._add(
                rules.COMPUTED_CALL.finding(
                    self.location.at(offset),
                    f"{verdict.name} deserializes a payload that is computed at load time and cannot be checked",
                    {"callable": verdict.name},
                )
            )

    def anomaly(self, offset: int, message: str, kind: str) -> None:
        """A structural oddity the loaders disagree on; one finding per kind, counting the rest."""
        earlier = self.anomalies.get(kind)
        if earlier is not None:
            earlier.evidence["occurrences"] = str(int(earlier.evidence.get("occurrences", "1")) + 1)
            return
        finding = rules.MALFORMED.finding(self.location.at(offset), message, {"anomaly": kind})
        self.anomalies[kind] = finding
        self._add(finding)

    # ---------------------------------------------------------------- verdicts

    def _computed_call(self, callee: Any, args: Any, offset: int, opcode: str) -> None:
        what = describe(callee)
        earlier = self.computed.get(what)
        if earlier is not None:  # one finding per computed callable, counting its calls
            earlier.evidence["calls"] = str(int(earlier.evidence.get("calls", "1")) + 1)
            return
        evidence = {"callable": what, "opcode": opcode}
        if args is not None:
            evidence["arguments"] = describe(args)
        finding = rules.COMPUTED_CALL.finding(
            self.location.at(offset), f"calls {what}, a value computed while loading", evidence
        )
        self.computed[what] = finding
        self._add(finding)

    def _add(self, finding: Finding) -> None:
        self.findings.append(finding)

    def judged(self) -> list[Finding]:
        """The collected findings plus one per non-allowlisted global."""
        out = list(self.findings)
        for use in self.uses.values():
            finding = self._judge_use(use)
            if finding is not None:
                out.append(finding)
        return out

    def _judge_use(self, use: Use) -> Finding | None:
        verdict = self.policy.judge(use.name)
        if verdict.status == SAFE or (verdict.status == BUILD_ONLY and not use.called):
            return None
        if use.called:
            offset, how, args = use.called
            verb = "called"
        elif use.instantiated:
            offset, how = use.instantiated
            args = ""
            verb = "instantiated"
        else:
            offset, how, args = use.offset, use.opcode, ""
            verb = "imported"
        evidence = {"callable" if verb == "called" else "global": verdict.name, "opcode": how}
        if args:
            evidence["arguments"] = args
        if use.spelled:
            evidence["spelled"] = use.spelled
        if verdict.reached:
            evidence["reaches"] = verdict.reached
        if use.count > 1:
            evidence["references"] = str(use.count)
        location = self.location.at(offset)
        if verdict.status in (DANGEROUS, INTROSPECTION):
            return self._dangerous(verdict, verb, location, evidence)
        if verb == "called":
            if verdict.status == BUILD_ONLY:
                message = f"{verdict.name} is called while loading; the allowlist admits it only as a class to rebuild"
            else:
                message = f"{verdict.name} is called while loading and is not on the allowlist"
            return rules.UNLISTED_CALL.finding(location, message, evidence)
        if verb == "instantiated":
            if is_stdlib(use.name):  # not a user's own class: a standard-library __new__ doing real work (map)
                message = f"{verdict.name}.__new__ runs while loading: a standard-library class outside the allowlist"
                return rules.UNLISTED_CALL.finding(location, message, evidence)
            return rules.UNLISTED_CLASS.finding(
                location, f"{verdict.name} is instantiated while loading and is not on the allowlist", evidence
            )
        return rules.UNLISTED_REFERENCE.finding(
            location, f"{verdict.name} is imported while loading and is not on the allowlist", evidence
        )

    def _dangerous(self, verdict: Verdict, verb: str, location: Location, evidence: dict[str, str]) -> Finding:
        category = verdict.category
        assert category is not None
        rule = rules.INTROSPECTION if verdict.status == INTROSPECTION else rules.DANGEROUS_CALLABLE
        evidence["category"] = category.key
        reached = f" (reaches {verdict.reached})" if verdict.reached else ""
        message = f"{verdict.name}{reached} is {verb} while loading: it {category.why}"
        severity = category.severity
        if category.severity < Severity.CRITICAL and verb == "imported":
            severity = Severity.MEDIUM
        return rule.finding(location, message, evidence, severity=severity, capability=category.capability)
