"""What the loader runs when a pickle calls, creates, fills or sets the state of an object.

Calls go through reviewed signatures (data/signatures.toml): each argument of an allowlisted
callable has a role, and a role says what the callable's library code does with it. The
loader also runs code without a call opcode: BUILD runs ``__setstate__`` (or updates
``__dict__`` and calls ``setattr``), a dictionary key runs ``__hash__`` and ``__eq__``, SETITEM
on anything but a dict runs ``__setitem__``. Each of those uses is checked against the
value's provenance: using a live value is reported (values.py).
"""

from __future__ import annotations

import builtins
import re
import sys
from typing import TYPE_CHECKING, Any

from .liveness import CONSTANT_TYPES, MAX_EXPANSION, own_live
from .policy import BUILD_ONLY, DANGEROUS, INTROSPECTION, SAFE, Signature, dotted
from .values import Attr, Call, Ext, Global, Instance, Live, Opaque, Persistent, Seq, describe, is_constant

if TYPE_CHECKING:
    from .vm import Machine, Name

_DATA_ROLES = frozenset({"data", "drain", "keys", "pairs", "text", "object", "store"})  # constants pass these
MAX_NUMERAL_EXPONENT = 10_000  # Fraction("1e10000") takes a millisecond; each tenfold costs ~30x more
_NUMERAL_EXPONENT = re.compile(r"[eE]\s*([+-]?\d{1,40})")
# dill's _eval_repr evaluates the repr of a range or slice: only that literal form is reviewed.
_LITERAL_REPR = re.compile(r"(?:range|slice)\((?:-?\d{1,30}|None)(?:, (?:-?\d{1,30}|None)){0,2}\)")
MAX_INDIRECT_CALLS = 32  # a callable calling an argument calling an argument ...
MAX_NAME_DEPTH = 64  # attribute chains deeper than this are left unnamed (and judged as such)
STDLIB = frozenset(sys.stdlib_module_names)
_BUILTIN_CLASSES = {
    type(None): ("types", "NoneType"),
    bool: ("builtins", "bool"),
    int: ("builtins", "int"),
    float: ("builtins", "float"),
    str: ("builtins", "str"),
    bytes: ("builtins", "bytes"),
    bytearray: ("builtins", "bytearray"),
}


# The interpreter's own builtin type names (read from this interpreter, never from the input).
_BUILTIN_TYPE_NAMES = frozenset(name for name, value in vars(builtins).items() if isinstance(value, type))


def is_stdlib(name: Name) -> bool:
    return name[0].partition(".")[0] in STDLIB


# ------------------------------------------------------------------- calls


def invoke(m: Machine, func: Any, args: Any, opcode: str, how: str | None = None, depth: int = 0) -> Any:
    """``func(*args)`` as the loader runs it; returns the symbolic result."""
    offset = m.offset
    name = m.target_name(func)
    m.observer.call(name, func, args, offset, how or opcode)
    if name is None:
        return Call(func, args, offset, opcode, Live(f"the result of calling {describe(func)}", offset))
    verdict = m.policy.judge(name)
    signature = m.policy.signature_of(name)
    safe = verdict.status == SAFE
    live = None if safe else Live(f"the result of calling {verdict.name}", offset, _is_denied(verdict.status))
    if not safe and not signature.restrictive:
        return Call(func, args, offset, opcode, live)  # the call itself is reported; its arguments are its own
    if not isinstance(args, Seq) or args.kind != "tuple":
        if safe:
            _unseen_arguments(m, verdict.name, signature, args, opcode)
        return Call(func, args, offset, opcode, live)
    if safe and not signature.accepts(args.count):
        m.observer.misuse(
            verdict.name,
            f"{verdict.name} is called with {args.count} argument(s), a form outside its reviewed "
            f"signature ({_arity(signature)})",
            offset,
            opcode,
        )
    made = _apply_roles(m, name, verdict.name, signature, args, opcode, safe, depth)
    if signature.resolves:
        resolved = resolve(m, signature.resolves, args)
        if resolved is not None:
            return resolved
    if made is not None:
        return new_instance(m, made, opcode)
    result = Call(func, args, offset, opcode, live)
    if signature.resolves == "class" and safe:
        return class_of(m, _arg(args, 0), result)
    return result


def _unseen_arguments(m: Machine, via: str, signature: Signature, args: Any, opcode: str) -> None:
    """The argument tuple is itself computed: only a callable taking any data may get it."""
    if signature.restrictive:
        message = f"{via} is called with arguments computed at load time, which its signature cannot be checked against"
        m.observer.misuse(via, message, m.offset, opcode)
        return
    check_data(m, args, f"used as the argument tuple of {via}", opcode)


def _apply_roles(
    m: Machine, name: Name, via: str, signature: Signature, args: Seq, opcode: str, checked: bool, depth: int
) -> Any:
    """Check every argument against its role; return the class the result is an instance of, if any."""
    made = None
    for index, value in enumerate((*args.items, *args.extra)):
        role, ref = signature.role(index)
        if role in _DATA_ROLES and type(value) in CONSTANT_TYPES:
            if role in ("drain", "keys") and checked:
                check_length(m, value, via)
            continue
        if role in ("new", "construct"):
            if made is None:
                made = value
            _create(m, value, via, role)
            if role == "new":
                _check_new_arguments(m, value, _new_arguments(args, index, ref) if ref else None, opcode)
        elif role == "base":
            _check_base(m, value, via, opcode)
            _indirect_call(m, value, "init", ref, args, via, opcode, depth)
        elif role in ("call", "init"):
            _indirect_call(m, value, role, ref, args, via, opcode, depth)
        elif role == "payload":
            m.observer.nested(m.materialize(value), m.offset, name)
        elif role == "name":
            if checked and not isinstance(value, str):
                m.observer.computed_name(m.offset, f"{via} resolves a name computed at load time")
        elif checked:
            _check_role(m, role, value, via, opcode)
    return made


def _check_role(m: Machine, role: str, value: Any, via: str, opcode: str) -> None:
    if role == "store":
        return
    if role == "object":
        check_own(m, value, f"searched for an attribute by {via}", opcode)
    elif role == "drain":
        check_own(m, value, f"iterated by {via}", opcode)
        check_length(m, value, via)
    elif role == "pairs":
        _check_pairs(m, value, via, opcode)
    elif role == "none":
        if value is not None:
            m.observer.misuse(via, f"{via} gets {describe(value)} where its reviewed form takes None", m.offset, opcode)
    elif role == "repr":
        if not (isinstance(value, str) and _LITERAL_REPR.fullmatch(value)):
            message = f"{via} evaluates {describe(value)}, which is not the repr of a range or slice"
            m.observer.misuse(via, message, m.offset, opcode)
    elif role == "numeral":
        check_data(m, value, f"passed to {via}, which reads it", opcode)
        exponent = _NUMERAL_EXPONENT.search(value) if isinstance(value, str) else None
        if exponent is not None and abs(int(exponent.group(1))) > MAX_NUMERAL_EXPONENT:
            m.observer.expansion(f"{via} computes a power of ten with {exponent.group(1)} digits", m.offset)
    elif role == "text":
        check_data(m, value, f"turned into text by {via}", opcode)
        if m.walker.expansion(value, tuples_only=False) > MAX_EXPANSION:
            m.observer.expansion(f"{via} turns a structure of shared references into text of unbounded size", m.offset)
    else:  # data, keys
        check_data(m, value, f"passed to {via}, which reads it", opcode)
        if role == "keys":
            check_length(m, value, via)


# What copyreg's protocol 0/1 reduction names as the base: object, or the first C type a class extends,
# whose C __new__ builds an instance of any subclass (tz classes extend datetime.tzinfo). Any other base
# runs its own Python __new__ on the class.
_BASE_TYPES = "object int float complex str bytes bytearray tuple list dict set frozenset".split()
_RECONSTRUCTOR_BASES = frozenset(
    {
        *(("builtins", name) for name in _BASE_TYPES),
        *(("datetime", name) for name in ("tzinfo", "date", "datetime", "time", "timedelta")),
        *(("collections", name) for name in ("OrderedDict", "defaultdict", "deque")),
        ("decimal", "Decimal"),
    }
)


def _check_base(m: Machine, base: Any, via: str, opcode: str) -> None:
    """copyreg._reconstructor(cls, base, state) calls base.__new__(cls, state): only built-in bases are inert."""
    if not _is_object(base):
        return  # a constant in a class's place: the loader fails
    name = m.target_name(base)
    if name not in _RECONSTRUCTOR_BASES:
        shown = dotted(name) if name else describe(base)
        message = f"{via} runs {shown}.__new__ on another class: only built-in types are reviewed bases"
        m.observer.misuse(via, message, m.offset, opcode)


def _check_pairs(m: Machine, value: Any, via: str, opcode: str) -> None:
    """dict(x): x's own iteration, each pair's unpacking, each key's hash; the values are only kept."""
    if not isinstance(value, Seq):
        check_data(m, value, f"iterated by {via} for key/value pairs", opcode)
        return
    if value.kind == "dict":
        hash_keys(m, value.items[0::2], opcode)
        for item in value.extra:  # beyond the kept items keys and values are no longer told apart
            check_data(m, item, f"iterated by {via} for key/value pairs", opcode)
        return
    for pair in (*value.items, *value.extra):
        if isinstance(pair, Seq) and pair.kind in ("tuple", "list") and pair.items:
            hash_keys(m, pair.items[:1], opcode)
        else:
            check_data(m, pair, f"unpacked into a key and a value by {via}", opcode)


def _create(m: Machine, cls: Any, via: str, role: str) -> None:
    name = m.target_name(cls)
    if not _is_object(cls):
        return  # a constant in a class's place: the loader fails
    how = f"instantiated by {via}" if role == "new" else f"constructed by {via}"
    if role == "construct" and name is not None and m.policy.judge(name).status not in (SAFE, BUILD_ONLY):
        m.observer.call(name, cls, None, m.offset, how)  # its hooks run: as good as calling it
        return
    m.observer.instantiate(name, cls, m.offset, how)


def _new_arguments(args: Seq, index: int, ref: str) -> Any:
    """The arguments a class's __new__ gets: those after it ("rest"), or the tuple at position ``ref``."""
    if ref == "rest":
        return Seq("tuple", [*args.items[index + 1 :], *args.extra])
    return _arg(args, int(ref))


def _check_new_arguments(m: Machine, cls: Any, new_args: Any, opcode: str) -> None:
    name = m.target_name(cls)
    if name is None or m.policy.judge(name).status != SAFE:
        return  # unlisted classes are reported as such; build-only ones get their arguments as data
    via = f"{dotted(name)}.__new__"
    _check_new_alone(m, name, via, opcode)
    if new_args is None:
        return  # the reconstructor passes no arguments of the file's (newObj), or checks them itself
    if isinstance(new_args, Seq) and new_args.kind == "tuple":
        _check_signature(m, name, via, new_args, opcode)
    else:
        m.observer.misuse(via, f"{via} gets arguments computed at load time", m.offset, opcode)


def _indirect_call(m: Machine, callee: Any, role: str, ref: str, args: Seq, via: str, opcode: str, depth: int) -> None:
    if role == "call" and ref:
        # func(*args): the argument tuple is unpacked (iterated) before the callee is even looked at.
        check_own(m, _arg(args, int(ref)), f"unpacked as the arguments of a call by {via}", opcode)
    if not _is_object(callee):
        return
    how = f"called by {via}"
    if depth >= MAX_INDIRECT_CALLS:
        m.observer.misuse(via, f"{via} nests indirect calls deeper than {MAX_INDIRECT_CALLS}", m.offset, opcode)
        return
    given: Any = None
    if ref:
        item = _arg(args, int(ref))
        if role == "init":
            name = m.target_name(callee)
            given = Seq("tuple") if name == ("builtins", "object") else Seq("tuple", [item])
        else:
            given = item if isinstance(item, Seq) else None
    if given is None:
        name = m.target_name(callee)
        if name is not None and m.policy.judge(name).status == SAFE and m.policy.signature_of(name).restrictive:
            message = f"{via} calls {'.'.join(p for p in name if p)} with arguments the scanner cannot see"
            m.observer.misuse(via, message, m.offset, opcode)
        m.observer.call(name, callee, None, m.offset, how)
        return
    invoke(m, callee, given, opcode, how, depth + 1)


# ------------------------------------------------------------ creating objects


def new_object(m: Machine, cls: Any, args: Any, kwargs: Any, opcode: str) -> Instance:
    """NEWOBJ/NEWOBJ_EX: ``cls.__new__(cls, *args, **kwargs)``.

    An allowlisted class's __new__ is library code reading its arguments as data. An unlisted
    class's __new__ is its own code, reported with the class (a standard-library one high).
    """
    name = m.target_name(cls)
    m.observer.instantiate(name, cls, m.offset, opcode)
    status = m.policy.judge(name).status if name is not None else None
    if name is not None and status not in (SAFE, BUILD_ONLY):
        return new_instance(m, cls, opcode)
    via = f"{'.'.join(p for p in name if p)}.__new__" if name else "a computed class's __new__"
    if status == SAFE:
        assert name is not None
        _check_new_alone(m, name, via, opcode)
    if status == SAFE and isinstance(args, Seq) and args.kind == "tuple":
        # A class called while loading gets the same arguments from its __new__: type.__new__ with three
        # of them builds a class exactly as type() would.
        assert name is not None
        _check_signature(m, name, via, args, opcode)
        if kwargs is not None and not (isinstance(kwargs, Seq) and kwargs.kind == "dict" and not kwargs.count):
            m.observer.misuse(
                via, f"{via} gets keyword arguments, a form its signature does not review", m.offset, opcode
            )
    else:
        for value in (args, kwargs):
            if value is not None:
                check_data(m, value, f"passed to {via}", opcode)
    return new_instance(m, cls, opcode)


def _check_new_alone(m: Machine, name: Name, via: str, opcode: str) -> None:
    if not m.policy.signature_of(name).new:
        message = f"{via} runs alone, without the constructor the class is reviewed with (it is allowlisted as called)"
        m.observer.misuse(via, message, m.offset, opcode)


def _check_signature(m: Machine, name: Name, via: str, args: Seq, opcode: str) -> None:
    signature = m.policy.signature_of(name)
    if not signature.accepts(args.count):
        message = f"{via} gets {args.count} argument(s), a form outside its reviewed signature ({_arity(signature)})"
        m.observer.misuse(via, message, m.offset, opcode)
    for index, value in enumerate((*args.items, *args.extra)):
        role, _ = signature.role(index)
        if role in _DATA_ROLES or role in ("numeral", "none", "repr", "text"):
            _check_role(m, role, value, via, opcode)
        elif type(value) not in CONSTANT_TYPES:
            check_data(m, value, f"passed to {via}", opcode)


def new_instance(m: Machine, cls: Any, opcode: str) -> Instance:
    name = m.target_name(cls)
    live: Live | None
    if name is None:
        live = Live(f"an instance of {describe(cls)}, a class computed at load time", m.offset)
    else:
        verdict = m.policy.judge(name)
        if verdict.status in (SAFE, BUILD_ONLY):
            live = None
        else:
            live = Live(f"an instance of {verdict.name}, which is not on the allowlist", m.offset)
    return Instance(cls, m.offset, opcode, live)


def class_of(m: Machine, value: Any, fallback: Call) -> Any:
    """type(value): the class itself, so that setting state on it is judged as changing a class."""
    builtin = _BUILTIN_CLASSES.get(type(value))
    if isinstance(value, Seq):
        builtin = ("builtins", value.kind)
    name = builtin or m.class_name(value)
    if name is None:
        fallback.live = Live(f"the class of {describe(value)}, computed at load time", m.offset)
        return fallback
    return m.synthesized_global(name, "type")


# --------------------------------------------------------------- resolving


def resolve(m: Machine, how: str, args: Any) -> Any:
    first = _arg(args, 0)
    if how == "attribute":
        return _attribute(m, first, _arg(args, 1))
    if not isinstance(first, str):
        return None
    if how == "module":
        return m.make_global(first, "", "import")
    if how == "object":
        module, _, qualname = first.partition(":")
        return m.make_global(module, qualname, "resolve")
    if how == "builtin-type":  # dill and cloudpickle name builtins' own types and those of the types module
        return m.make_global("builtins" if first in _BUILTIN_TYPE_NAMES else "types", first, "resolve")
    return None


def _attribute(m: Machine, base: Any, attr: Any) -> Any:
    offset = m.offset
    if not isinstance(attr, str):
        return Attr(base, None, offset, Live("an attribute whose name is computed at load time", offset))
    name = m.target_name(base) if isinstance(base, (Global, Attr)) else None
    if name is not None and name[1].count(".") < MAX_NAME_DEPTH:
        module, qualname = name
        return m.make_global(module, f"{qualname}.{attr}" if qualname else attr, "getattr")
    live = own_live(base)
    if live is not None:
        return Attr(base, attr, offset, Live(f"attribute {attr!r} of {live.what}", offset, live.critical))
    value = Attr(base, attr, offset, None)
    name = m.target_name(value)
    if name is None:
        value.live = Live(f"attribute {attr!r} of {describe(base)}", offset)
        return value
    m.observer.reference(name, offset, "getattr", None)
    verdict = m.policy.judge(name)
    if verdict.status not in (SAFE, BUILD_ONLY):
        value.live = Live(f"{verdict.name}, which is not on the allowlist", offset, _is_denied(verdict.status))
    return value


# ------------------------------------------------------- state and items


# Methods the C unpickler looks up on the object itself, so an attribute an earlier BUILD put in
# the object's __dict__ under that name is what gets called.
_LOADER_METHODS = {"BUILD": ("__setstate__",), "APPEND": ("extend", "append"), "APPENDS": ("extend", "append")}
_LOADER_METHODS["ADDITEMS"] = ("add",)
_MISSING = object()


def set_state(m: Machine, target: Any, state: Any, name: Name | None) -> None:
    """BUILD: ``target.__setstate__(state)``, or a ``__dict__`` update and ``setattr`` for slot state.
    ``name`` is the target's class (or the target itself, for an imported object)."""
    m.observer.build(target, name, m.offset, "BUILD")
    # Without a __setstate__ the pure-Python unpickler tests the state's truth (or that of both halves of a
    # (state, slot state) pair) before it even finds the target has no __dict__: the state's own code runs.
    halves = state.items if isinstance(state, Seq) and state.kind == "tuple" and len(state.items) == 2 else [state]
    for half in halves:
        check_own(m, half, "handed to BUILD as an object's state, whose truth the loader tests", "BUILD")
    if isinstance(target, (Global, Ext, Seq)) or (isinstance(target, Attr) and target.name is not None and name):
        return  # an imported object (reported as a mutation), or a built-in container (the load fails)
    if target.state is not None and _call_stored_method(m, target, [state], "BUILD"):
        return
    if _is_shared(m, target, name):
        _report_shared_mutation(m, name, "BUILD")
    live = own_live(target)
    if live is None:
        _check_state(m, state)
        if name is not None:
            _check_used_state(m, state, m.policy.state_used(name))
            if dotted(name) in m.policy.repr_state:
                use = "handed as state to a pybind11 __setstate__, which writes the repr of a state it rejects"
                check_data(m, state, use, "BUILD")
    elif not _own_class_code(target, name):
        m.observer.touch(live, "given state by BUILD, which runs its __setstate__", m.offset, "BUILD")


def _is_shared(m: Machine, target: Any, name: Name | None) -> bool:
    """Made by a class that hands back an existing object (an enum member, a singleton, a cached time zone)."""
    if name is None:
        return False
    cls = dotted(name)
    policy = m.policy
    return (
        cls in policy.enums or cls in policy.shared or (isinstance(target, Call) and cls in policy.shared_when_called)
    )


def _report_shared_mutation(m: Machine, name: Name | None, opcode: str) -> None:
    cls = dotted(name) if name else "?"
    message = (
        f"{opcode} changes an object made by {cls}, which hands out one shared object (a singleton, an enum "
        "member or a cached value): every user of that object in the process is changed"
    )
    m.observer.mutation(message, {"class": cls, "opcode": opcode}, m.offset)


def _check_state(m: Machine, state: Any) -> None:
    """State handed to a library class: data it keeps, but keys are hashed and slot state is setattr'd."""
    if not isinstance(state, Seq):
        return  # a constant, or an object whose own code set_state already judged
    if state.kind == "tuple" and len(state.items) == 2:
        dict_state, slot_state = state.items
        if isinstance(dict_state, Seq) and dict_state.kind == "dict":
            hash_keys(m, [key for key in dict_state.items[0::2] if not isinstance(key, str)], "BUILD")
        if isinstance(slot_state, Seq) and slot_state.kind == "dict":
            _check_slot_names(m, slot_state)
    elif state.kind == "dict":
        hash_keys(m, [key for key in state.items[0::2] if not isinstance(key, str)], "BUILD")


def _check_used_state(m: Machine, state: Any, keys: frozenset[str]) -> None:
    """The entries a library __setstate__ uses at once must not be objects with code of their own."""
    if not keys:
        return
    parts = state.items if isinstance(state, Seq) and state.kind == "tuple" and len(state.items) == 2 else [state]
    for part in parts:
        if isinstance(part, Seq) and part.kind == "dict":
            items = part.items
            for index in range(0, len(items) - 1, 2):
                if isinstance(items[index], str) and items[index] in keys:
                    use = f"handed as the state entry {items[index]!r}, which the class's __setstate__ uses at once"
                    check_own(m, items[index + 1], use, "BUILD")


def _check_slot_names(m: Machine, slot_state: Seq) -> None:
    for key in slot_state.items[0::2]:
        if not isinstance(key, str):
            hash_keys(m, [key], "BUILD")
        elif key.startswith("__") and key.endswith("__"):
            message = f"BUILD sets the attribute {key} with setattr (slot state), rewiring the object itself"
            m.observer.misuse("BUILD", message, m.offset, "BUILD")


def add_items(m: Machine, target: Any, items: list[Any], opcode: str) -> None:
    """APPEND(S), SETITEM(S), ADDITEMS: into a built-in container, or through the object's own methods."""
    keys = items[0::2] if opcode.startswith("SETITEM") else items if opcode == "ADDITEMS" else []
    if isinstance(target, Seq):
        if target.kind != "list" or keys:
            hash_keys(m, keys, opcode)
        target.extend(items)
        return
    name = m.class_name(target) or m.target_name(target)
    m.observer.build(target, name, m.offset, opcode)
    if isinstance(target, (Global, Ext)) or (isinstance(target, Attr) and target.name is not None and name):
        return
    if target.state is not None and _call_stored_method(m, target, items, opcode):
        return
    if _is_shared(m, target, name):
        _report_shared_mutation(m, name, opcode)
    live = own_live(target)
    if live is not None:  # even an unlisted class's own __setitem__/append: a call with the file's arguments
        method = {"APPEND": "append", "APPENDS": "extend", "ADDITEMS": "add"}.get(opcode, "__setitem__")
        m.observer.touch(live, f"given items by {opcode}, which runs its {method}", m.offset, opcode)
    hash_keys(m, keys, opcode)
    if isinstance(target, (Call, Instance)):
        kept = [item for item in items if not is_constant(item)]
        if kept:
            if target.added is None:
                target.added = kept
            else:
                target.added.extend(kept)


def _call_stored_method(m: Machine, target: Any, items: list[Any], opcode: str) -> bool:
    """When an earlier BUILD stored an attribute named like the method this opcode looks up, call it."""
    for method in _LOADER_METHODS.get(opcode, ()):
        stored = _stored_attribute(target.state, method)
        if stored is _MISSING:
            continue
        argument = Seq("list", items) if method == "extend" else items[0] if items else None
        invoke(m, stored, Seq("tuple", [argument]), opcode, f"called as the object's own {method} by {opcode}")
        return True
    if target.state is not None and not is_constant(target.state) and not isinstance(target.state, Seq):
        message = f"{opcode} runs after state the scanner cannot see was set, which may define the method it calls"
        m.observer.misuse(opcode, message, m.offset, opcode)
    return False


def _stored_attribute(state: Any, attribute: str) -> Any:
    """The value ``attribute`` got from a BUILD state (its __dict__ part or its slot part), if any."""
    if not isinstance(state, Seq):
        return _MISSING
    parts = [state]
    if state.kind == "tuple" and len(state.items) == 2:
        parts = [part for part in state.items if isinstance(part, Seq)]
    for part in parts:
        if part.kind == "dict":
            items = part.items
            for index in range(0, len(items) - 1, 2):
                if items[index] == attribute:
                    return items[index + 1]
    return _MISSING


def _own_class_code(target: Any, name: Name | None) -> bool:
    """An object made with __new__ from a named class: its __setstate__ and item methods are that class's own
    code, which the instantiation finding already reports."""
    return isinstance(target, Instance) and name is not None


# ------------------------------------------------------------------ checks


def hash_keys(m: Machine, keys: list[Any], opcode: str) -> None:
    for key in keys:
        if type(key) in CONSTANT_TYPES:
            continue
        check_data(m, key, "used as a key, which runs its __hash__ and __eq__", opcode)
        if m.walker.expansion(key, tuples_only=True) > MAX_EXPANSION:
            message = "a key built from shared references takes unbounded time to hash (expansion attack)"
            m.observer.expansion(message, m.offset)


def check_data(m: Machine, value: Any, use: str, opcode: str) -> None:
    live = m.walker.first_live(value)
    if live is not None:
        m.observer.touch(live, use, m.offset, opcode)


def check_own(m: Machine, value: Any, use: str, opcode: str) -> None:
    live = own_live(value)
    if live is not None:
        m.observer.touch(live, use, m.offset, opcode)


def check_length(m: Machine, value: Any, via: str) -> None:
    """Draining a huge range, or bytes(n) for a huge n, allocates far beyond the file."""
    length = None
    if isinstance(value, int) and not isinstance(value, bool):
        length = value
    elif isinstance(value, Call) and m.target_name(value.func) == ("builtins", "range"):
        length = _range_length(value.args)
    if length is not None and length > MAX_EXPANSION:
        m.observer.expansion(f"{via} would build {length} items from a few bytes of the file", m.offset)


def _range_length(args: Any) -> int | None:
    if not isinstance(args, Seq) or not all(isinstance(item, int) for item in args.items) or args.dropped:
        return None
    try:
        return len(range(*args.items))
    except (TypeError, ValueError, OverflowError):
        return MAX_EXPANSION + 1  # beyond sys.maxsize


# ------------------------------------------------------------------- helpers


def _arg(args: Any, index: int) -> Any:
    if isinstance(args, Seq) and index < len(args.items):
        return args.items[index]
    return None


def _arity(signature: Signature) -> str:
    assert signature.arity is not None
    least, most = signature.arity
    if most < 0:
        return f"{least} or more arguments"
    return f"{least} argument(s)" if least == most else f"{least} to {most} arguments"


def _is_denied(status: str) -> bool:
    return status in (DANGEROUS, INTROSPECTION)


def _is_object(value: Any) -> bool:
    """An argument that can be a callable; constants and containers are passed as data."""
    return isinstance(value, (Global, Attr, Call, Instance, Ext, Opaque, Persistent))
