"""Turn what the machine observed into findings, judged against the policy.

Each global gets one finding per asset, at its strongest use (called, then
instantiated, then merely imported), located at the first offset of that use.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .. import rules
from ..core import AttackClass, Capability, Finding, Location, Rule, Severity
from .calls import is_stdlib
from .policy import BUILD_ONLY, DANGEROUS, INTROSPECTION, SAFE, Policy, Verdict
from .values import Attr, Ext, Global, Live, describe
from .vm import Name, Observer

DANGEROUS_CALLABLE = Rule(
    id="MLO101",
    name="dangerous-callable",
    title="A known dangerous primitive is reached while loading",
    severity=Severity.CRITICAL,
    attack_class=AttackClass.MALICIOUS_MODEL,
    capability=Capability.CODE_EXECUTION,
    description=(
        "The file imports a callable that starts processes, evaluates code, imports modules, touches files "
        "or the network, loads native code or deserializes a further payload. Loading the file hands that "
        "primitive to whoever crafted it."
    ),
    remediation=(
        rules.DO_NOT_LOAD + "Treat any machine that already loaded it as compromised and rotate the credentials "
        "it held (model registry, cloud, Hugging Face tokens)."
    ),
    summary=(
        "A process, exec/eval, import, file, network, native-code or nested-deserialization primitive is reached "
        "(category in `evidence.category`; code-object construction by dill/cloudpickle is high)."
    ),
)
INTROSPECTION_ESCAPE = Rule(
    id="MLO102",
    name="introspection-escape",
    title="Dunder attribute path reaches interpreter internals",
    severity=Severity.CRITICAL,
    attack_class=AttackClass.MALICIOUS_MODEL,
    capability=Capability.CODE_EXECUTION,
    description=(
        "The file walks attributes such as __globals__, __builtins__, __subclasses__ or __self__ to reach "
        "builtins like eval from an innocent-looking name. No benign model does this."
    ),
    remediation=rules.DO_NOT_LOAD,
    summary=(
        "A dunder attribute path (`__globals__`, `__builtins__`, `__subclasses__`, `__self__`...) reaches interpreter"
        " internals."
    ),
)
UNLISTED_CALL = Rule(
    id="MLO110",
    name="unlisted-callable-invoked",
    title="A callable outside the allowlist is invoked while loading",
    severity=Severity.HIGH,
    attack_class=AttackClass.MALICIOUS_MODEL,
    capability=Capability.CODE_EXECUTION,
    description=(
        "Loading the file calls a function or class that is not on the reviewed allowlist of callables known "
        "to be safe during unpickling. Whatever that callable does runs on the loading machine."
    ),
    remediation=(
        "Verify where the callable comes from. If it is your own trusted code, save the model's weights "
        "(state_dict, safetensors) instead of pickled objects; otherwise do not load the file."
    ),
    summary=(
        "A callable that is not on the allowlist is called while loading (REDUCE, INST, OBJ, or a reconstructor that "
        "calls it)."
    ),
)
COMPUTED_CALL = Rule(
    id="MLO111",
    name="computed-callable-invoked",
    title="A callable computed at load time is invoked",
    severity=Severity.HIGH,
    attack_class=AttackClass.MALICIOUS_MODEL,
    capability=Capability.CODE_EXECUTION,
    description=(
        "The file calls a value that is itself the result of a call, an attribute fetched at run time or "
        "a name built on the stack. The scanner cannot name what runs, and benign models do not need it."
    ),
    remediation=rules.DO_NOT_LOAD,
    summary=(
        "A value computed at load time (a call's result, a runtime attribute, a name built on the stack) is called."
    ),
)
EXTENSION_REGISTRY = Rule(
    id="MLO112",
    name="extension-registry-reference",
    title="A callable is fetched through the copyreg extension registry (EXT opcode)",
    severity=Severity.HIGH,
    attack_class=AttackClass.MALICIOUS_MODEL,
    capability=Capability.CODE_EXECUTION,
    description=(
        "EXT1/EXT2/EXT4 name a global by a number registered in the loading process, which a file scanner "
        "cannot see. Standard libraries register no such codes; the opcode hides the callable's name."
    ),
    remediation=rules.DO_NOT_LOAD,
    summary="EXT1/2/4 fetch a callable by a copyreg code the scanner cannot see.",
)
GLOBAL_MUTATION = Rule(
    id="MLO113",
    name="global-state-mutation",
    title="Loading the file changes a module-level object",
    severity=Severity.HIGH,
    attack_class=AttackClass.MALICIOUS_MODEL,
    capability=Capability.CODE_EXECUTION,
    description=(
        "BUILD, SETITEM or APPEND is applied to an imported global rather than to a freshly built object. "
        "This rewires interpreter state (for example a module's builtins or the copyreg registry) so that "
        "later, innocent-looking names run attacker code."
    ),
    remediation=rules.DO_NOT_LOAD,
    summary=(
        "BUILD/SETITEM/APPEND change an imported global (builtins, the copyreg registry...) or a shared object (an "
        "enum member, a singleton such as pandas' NaT, a cached time zone)."
    ),
)
UNTRUSTED_VALUE_USED = Rule(
    id="MLO114",
    name="untrusted-value-used",
    title="Loading the file runs the code of a value the scanner cannot vouch for",
    severity=Severity.HIGH,
    attack_class=AttackClass.MALICIOUS_MODEL,
    capability=Capability.CODE_EXECUTION,
    description=(
        "The loader uses a value without a call opcode: it hashes a dictionary key, iterates an argument, "
        "converts it, sets its state or its items, or looks up an attribute on it. The value is an instance of "
        "an unlisted class, an unknown object or something computed at load time, so its own __hash__, __iter__, "
        "__setstate__, __setitem__ or __getattr__ runs: a map or filter object drained by list() calls functions, "
        "a module given state by BUILD has its globals rewritten. Benign models do not need this."
    ),
    remediation=rules.DO_NOT_LOAD,
    summary=(
        "The loader uses a value without a call opcode (hashes a key, iterates or converts an argument, sets state or"
        " items, looks up an attribute) and the value is an unlisted object, an unknown global or computed at load "
        "time, so its own code runs."
    ),
    severities="high, critical",
)
SIGNATURE_VIOLATION = Rule(
    id="MLO115",
    name="callable-outside-signature",
    title="An allowlisted callable is used in a form outside its reviewed signature",
    severity=Severity.HIGH,
    attack_class=AttackClass.MALICIOUS_MODEL,
    capability=Capability.CODE_EXECUTION,
    description=(
        "The callable is safe only in the forms listed in its reviewed signature. Here it gets another number "
        "of arguments (three-argument type() builds a class and runs its bases' hooks), arguments the scanner "
        "cannot see, or attributes set by name that rewire the object (__class__ through slot state)."
    ),
    remediation=rules.DO_NOT_LOAD,
    summary=(
        "An allowlisted callable is used outside its reviewed signature (three-argument `type()`, arguments the "
        "scanner cannot see, dunder attributes set through slot state)."
    ),
)
LOAD_EXPANSION = Rule(
    id="MLO116",
    name="load-expansion",
    title="Loading the file does work far beyond its size",
    severity=Severity.HIGH,
    attack_class=AttackClass.MALICIOUS_MODEL,
    capability=Capability.DENIAL_OF_SERVICE,
    description=(
        "A few bytes make the loader allocate or compute without bound: a key built from shared references "
        "(each tuple hash visits its items again), text made from such a structure, a huge range drained into a "
        "list, bytes(n) for a huge n. Every consumer that loads the file hangs or runs out of memory."
    ),
    remediation="Do not load the file; report it to whoever published it. A benign model never needs this.",
    summary=(
        "Loading does work far beyond the file's size: a key of shared references hashed, such a structure turned "
        'into text, a huge range drained, `bytes(n)` for a huge `n`, `Fraction("1e99999999")`, or a loaded object '
        "that expands past 2^30 items when walked (billion laughs)."
    ),
)
UNLISTED_CLASS = Rule(
    id="MLO120",
    name="unlisted-class-instantiated",
    title="A class outside the allowlist is instantiated and given state",
    severity=Severity.MEDIUM,
    attack_class=AttackClass.MALICIOUS_MODEL,
    capability=Capability.CODE_EXECUTION,
    description=(
        "The class is created with __new__ only (NEWOBJ or a copyreg reconstructor) and then gets its state "
        "by BUILD, which may call its __setstate__: the class's own code, run when its module is imported on the "
        "loading machine. Typical of a whole-model torch.save with your own nn.Module classes. Anything more (items "
        "put into it, its instances hashed or iterated, objects handed to its __new__, a standard-library class) "
        "is reported high."
    ),
    remediation=(
        "Check that the class comes from code you trust. Prefer saving a state_dict or safetensors, which "
        "needs no classes at load time."
    ),
    summary=(
        "A class outside the allowlist is only created with `__new__` and given state (your own `nn.Module` in a "
        "whole-model save)."
    ),
)
UNLISTED_REFERENCE = Rule(
    id="MLO121",
    name="unlisted-global-referenced",
    title="A global outside the allowlist is imported but never called",
    severity=Severity.MEDIUM,
    attack_class=AttackClass.MALICIOUS_MODEL,
    capability=Capability.CODE_EXECUTION,
    description=(
        "Loading the file imports the named module and fetches the object. Importing a module runs its "
        "top-level code, and the object may be called later by code that uses the loaded model."
    ),
    remediation=(
        "Check that the module is trusted and installed from a known source on every machine that loads the file."
    ),
    summary="A global outside the allowlist is imported but never called.",
)


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
                GLOBAL_MUTATION.finding(
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
            EXTENSION_REGISTRY.finding(
                self.location.at(offset),
                f"EXT opcode fetches the global registered under extension code {code}",
                {"extension_code": str(code), "opcode": "EXT"},
            )
        )

    def computed_global(self, offset: int, detail: str) -> None:
        self.events += 1
        self._add(COMPUTED_CALL.finding(self.location.at(offset), detail, {"opcode": "STACK_GLOBAL"}))

    def computed_name(self, offset: int, detail: str) -> None:
        self._add_once(
            ("computed-name", detail),
            lambda: COMPUTED_CALL.finding(self.location.at(offset), detail, {"opcode": "REDUCE"}),
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
        finding = UNTRUSTED_VALUE_USED.finding(
            self.location.at(offset), f"a value is {use}: {live.what}", evidence, severity=severity
        )
        self.touched[key] = finding
        self._add(finding)

    def misuse(self, via: str, message: str, offset: int, opcode: str) -> None:
        evidence = {"callable": via, "opcode": opcode}
        self._add_once((via, message), lambda: SIGNATURE_VIOLATION.finding(self.location.at(offset), message, evidence))

    def mutation(self, message: str, evidence: dict[str, str], offset: int) -> None:
        self._add_once(
            ("mutation", message), lambda: GLOBAL_MUTATION.finding(self.location.at(offset), message, evidence)
        )

    def expansion(self, message: str, offset: int) -> None:
        self._add_once(("expansion", message), lambda: LOAD_EXPANSION.finding(self.location.at(offset), message))

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
                COMPUTED_CALL.finding(
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
        finding = COMPUTED_CALL.finding(
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
            return UNLISTED_CALL.finding(location, message, evidence)
        if verb == "instantiated":
            if is_stdlib(use.name):  # not a user's own class: a standard-library __new__ doing real work (map)
                message = f"{verdict.name}.__new__ runs while loading: a standard-library class outside the allowlist"
                return UNLISTED_CALL.finding(location, message, evidence)
            return UNLISTED_CLASS.finding(
                location, f"{verdict.name} is instantiated while loading and is not on the allowlist", evidence
            )
        return UNLISTED_REFERENCE.finding(
            location, f"{verdict.name} is imported while loading and is not on the allowlist", evidence
        )

    def _dangerous(self, verdict: Verdict, verb: str, location: Location, evidence: dict[str, str]) -> Finding:
        category = verdict.category
        assert category is not None
        rule = INTROSPECTION_ESCAPE if verdict.status == INTROSPECTION else DANGEROUS_CALLABLE
        evidence["category"] = category.key
        reached = f" (reaches {verdict.reached})" if verdict.reached else ""
        message = f"{verdict.name}{reached} is {verb} while loading: it {category.why}"
        severity = category.severity
        if category.severity < Severity.CRITICAL and verb == "imported":
            severity = Severity.MEDIUM
        return rule.finding(location, message, evidence, severity=severity, capability=category.capability)
