"""The Plan: what a write command will do, as pure data with an exact inverse.

Every write command builds a Plan, prints it as LDIF (exdir.ldif_out) and, with
--apply, executes exactly that Plan; `exdir apply` reads one back
(exdir.ldif_in).  Nothing here touches a directory: planners stay pure and every
rule is a fast unit test.

Values are canonical at construction so that equality is equality of meaning
and `parse(render(plan)) == plan` holds: values of binary attributes are bytes,
other values are str unless their bytes are not UTF-8; DNs keep their escapes
and case but lose stray spaces around `,`, `+` and `=`; a reason is one line.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Literal, TypeAlias

from . import dn as dnu
from . import values as vals
from .errors import InputError, Refused
from .values import Value

Attributes: TypeAlias = tuple[tuple[str, tuple[Value, ...]], ...]
"""An entry's attributes in order: ((name, values), ...), each name once."""

ModOp: TypeAlias = Literal["add", "delete", "replace"]

_OPS: frozenset[str] = frozenset(("add", "delete", "replace"))
_SWAP: dict[str, ModOp] = {"add": "delete", "delete": "add"}
_ATTRIBUTE_DESCRIPTION = re.compile(
    r"^(?:[A-Za-z][A-Za-z0-9-]*|[0-9]+(?:\.[0-9]+)*)(?:;[A-Za-z0-9-]+)*$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class InvalidChange(InputError):
    """A change that cannot exist (bad DN, bad attribute name, add without values)."""


class NotInvertible(Refused):
    """A plan whose undo cannot be computed from the plan alone; apply refuses it.

    A `replace` or a value-less `delete` needs the values it overwrites
    (Plan.resolve_replace), a Delete needs the entry it removes (Plan.resolve_deletes).
    """


# --- DNs ---------------------------------------------------------------------------

DnKey: TypeAlias = tuple[str, ...]
"""A DN's comparison key per RDN, leaf first (exdir.dn.Dn.rdn_keys)."""


def _dn(dn: str) -> dnu.Dn:
    """The parsed DN (exdir.dn, cached); InvalidChange when empty or malformed."""
    if not isinstance(dn, str) or not dn.strip():
        raise InvalidChange(f"empty or missing DN: {dn!r}")
    try:
        parsed = dnu.parse(dn)
    except InputError as exc:
        raise InvalidChange(exc.message) from None
    if not parsed:
        raise InvalidChange(f"empty or missing DN: {dn!r}")
    return parsed


def canonical_dn(dn: str) -> str:
    """The DN as plans hold it: the same escapes and case, no spaces around separators."""
    return _dn(dn).spelled


def dn_key(dn: str) -> DnKey:
    """A DN's comparison key: equal for names Active Directory treats as equal."""
    return _dn(dn).rdn_keys


def rdn_and_parent(dn: str) -> tuple[str, str]:
    """(leaf RDN, parent DN) in canonical text; the parent of a one-RDN DN is ''."""
    parsed = _dn(dn)
    return parsed.rdn, parsed.parent.spelled


def canonical_rdn(rdn: str) -> str:
    """A new RDN as plans hold it; InvalidChange unless it is exactly one (maybe multi-valued) RDN."""
    parsed = _dn(rdn)
    if len(parsed) != 1:
        raise InvalidChange(f"new RDN {rdn!r} must be one RDN, not a DN")
    return parsed.spelled


# --- values and reasons ----------------------------------------------------------

def _check_attribute(attribute: str) -> None:
    if not isinstance(attribute, str) or not _ATTRIBUTE_DESCRIPTION.match(attribute):
        raise InvalidChange(f"invalid attribute name {attribute!r}")


def canonical_value(attribute: str, value: Value) -> Value:
    """The one form a value has in a plan (exdir.values.form): bytes for binary
    attributes or non-UTF-8 data, text otherwise."""
    try:
        return vals.form(attribute, value)
    except InputError as exc:
        raise InvalidChange(exc.message) from None


def _values(attribute: str, values: Sequence[Value]) -> tuple[Value, ...]:
    if isinstance(values, (str, bytes)):
        raise InvalidChange(f"{attribute}: values must be a sequence, not one {type(values).__name__}")
    return tuple(canonical_value(attribute, v) for v in values)


def _attributes(attributes: Sequence[tuple[str, Sequence[Value]]], what: str) -> Attributes:
    """Attributes in order, each name once (case-insensitively), each with values."""
    merged: dict[str, tuple[str, list[Value]]] = {}
    for name, values in attributes:
        _check_attribute(name)
        slot = merged.setdefault(name.lower(), (name, []))
        slot[1].extend(_values(name, values))
    for name, values in merged.values():
        if not values:
            raise InvalidChange(f"{what}: attribute {name} has no values")
    if not merged:
        raise InvalidChange(f"{what}: an entry needs at least one attribute")
    return tuple((name, tuple(values)) for name, values in merged.values())


def value_key(attribute: str, value: Value) -> Value:
    """How the directory compares a value (exdir.values.key: DN values by DN key,
    strings without case unless the schema says exact, binary byte for byte)."""
    try:
        return vals.key(attribute, value)
    except InputError as exc:
        raise InvalidChange(exc.message) from None


def _written_key(attribute: str, value: Value) -> Value:
    """A value as a change writes it (exdir.values.written_key): its case is data
    (`SMTP:` is the primary address), so deleting `SMTP:a` and adding `smtp:a` is a
    change, not nothing; DN values by DN key (a server spells a reference as its
    target's DN)."""
    try:
        return vals.written_key(attribute, value)
    except InputError as exc:
        raise InvalidChange(exc.message) from None


def one_line(reason: str) -> str:
    """A reason as LDIF comments carry it: control characters and runs of spaces become one space."""
    return " ".join(_CONTROL.sub(" ", reason).split())


_UNDO = re.compile(r"undo:(?: |$)")


def _undo_reason(reason: str) -> str:
    """The reason of an inverse change: `undo: <reason>`, and back again.

    Undo depth pairs up (0<->1, 2<->3...), so inverting twice gives the original
    reason whatever text it holds.
    """
    depth, rest = 0, reason
    while (m := _UNDO.match(rest)) is not None:
        depth += 1
        rest = rest[m.end():]
    if depth % 2:
        return reason[reason.index(":") + 1:].lstrip(" ")
    return ("undo: " + reason).rstrip(" ")


# --- changes -----------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Mod:
    """One block of a modify record: add, delete or replace values of one attribute.

    A delete with no values removes the whole attribute; a replace with none
    removes it too.  An add needs at least one value.
    """

    op: ModOp
    attribute: str
    values: tuple[Value, ...] = ()

    def __post_init__(self) -> None:
        if self.op not in _OPS:
            raise InvalidChange(f"unknown modify operation {self.op!r} (add, delete or replace)")
        _check_attribute(self.attribute)
        object.__setattr__(self, "values", _values(self.attribute, self.values))
        if self.op == "add" and not self.values:
            raise InvalidChange(f"add: {self.attribute} needs at least one value")

    @property
    def needs_current(self) -> bool:
        """True where the values this block overwrites are not in the plan."""
        return self.op == "replace" or (self.op == "delete" and not self.values)


@dataclass(frozen=True, slots=True)
class Modify:
    """Change attribute values of one entry, in the order of its blocks."""

    dn: str
    mods: tuple[Mod, ...]
    reason: str = ""
    # is_noop's answer, found once: every Plan made of the change asks (a plan's check
    # makes several), and the blocks never change
    _noop: bool = field(init=False, repr=False, compare=False, default=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "dn", canonical_dn(self.dn))
        mods = tuple(self.mods)
        if not all(isinstance(m, Mod) for m in mods):
            raise InvalidChange(f"{self.dn}: mods must be Mod instances")
        object.__setattr__(self, "mods", mods)
        object.__setattr__(self, "reason", one_line(self.reason))
        object.__setattr__(self, "_noop", self._cancels())

    @property
    def new_dn(self) -> str:
        return self.dn

    def is_noop(self) -> bool:
        """True where applying the blocks to any entry holding the deleted values changes
        nothing (see _cancels)."""
        return self._noop

    def _cancels(self) -> bool:
        """True where applying the blocks to any entry holding the deleted values changes nothing.

        A delete undone by an add of the same value (or the reverse) cancels, values
        compared as written (DN values as the schema says); replaces and value-less
        deletes never cancel.
        """
        # Each value added either cancels a deleted one or stays added (and the other
        # way round), so an attribute with more values added than deleted, or fewer,
        # cannot cancel: counted first, without a key per value (a rename's steps add
        # an X500 proxy beside each rewrite; keying every value was 5 % of its plan).
        balance: dict[str, int] = {}
        for mod in self.mods:
            if mod.needs_current:
                return False
            name = mod.attribute.lower()
            balance[name] = balance.get(name, 0) + (len(mod.values) if mod.op == "add"
                                                    else -len(mod.values))
        if any(balance.values()):
            return False
        added: dict[str, set[Value]] = {}
        removed: dict[str, set[Value]] = {}
        for mod in self.mods:
            name = mod.attribute.lower()
            plus, minus = added.setdefault(name, set()), removed.setdefault(name, set())
            mine, theirs = (minus, plus) if mod.op == "delete" else (plus, minus)
            for value in mod.values:
                key = _written_key(mod.attribute, value)
                if key in theirs:
                    theirs.remove(key)
                elif key in mine:
                    return False  # the same value twice: the step fails, it is not nothing
                else:
                    mine.add(key)
        return not any(added.values()) and not any(removed.values())

    def inverse(self) -> Modify:
        for mod in self.mods:
            if mod.needs_current:
                raise NotInvertible(
                    f"{self.dn}: '{mod.op}: {mod.attribute}' cannot be undone without the values it "
                    "overwrites; resolve it against the directory first")
        mods = tuple(Mod(_SWAP[m.op], m.attribute, m.values) for m in reversed(self.mods))
        return Modify(self.dn, mods, _undo_reason(self.reason))


@dataclass(frozen=True, slots=True)
class Rename:
    """modrdn: give an entry a new RDN and, optionally, a new parent; the old RDN value goes."""

    dn: str
    new_rdn: str
    new_superior: str | None = None
    reason: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "dn", canonical_dn(self.dn))
        object.__setattr__(self, "new_rdn", canonical_rdn(self.new_rdn))
        if self.new_superior is not None:
            object.__setattr__(self, "new_superior", canonical_dn(self.new_superior))
        object.__setattr__(self, "reason", one_line(self.reason))

    @property
    def new_dn(self) -> str:
        parent = self.new_superior if self.new_superior is not None else rdn_and_parent(self.dn)[1]
        return f"{self.new_rdn},{parent}" if parent else self.new_rdn

    def inverse(self) -> Rename:
        old_rdn, old_parent = rdn_and_parent(self.dn)
        if self.new_superior is not None and not old_parent:
            raise NotInvertible(f"{self.dn}: a top-level entry moved under a parent cannot be moved back")
        return Rename(self.new_dn, old_rdn,
                      old_parent if self.new_superior is not None else None,
                      _undo_reason(self.reason))


@dataclass(frozen=True, slots=True)
class Add:
    """Create an entry with these attributes."""

    dn: str
    attributes: Attributes
    reason: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "dn", canonical_dn(self.dn))
        object.__setattr__(self, "attributes", _attributes(self.attributes, f"add {self.dn}"))
        object.__setattr__(self, "reason", one_line(self.reason))

    @property
    def new_dn(self) -> str:
        return self.dn

    def inverse(self) -> Delete:
        return Delete(self.dn, _undo_reason(self.reason), self.attributes)


@dataclass(frozen=True, slots=True)
class Delete:
    """Remove a leaf entry; `old` is the entry as it was, which the inverse re-creates.

    LDIF delete records carry no attributes, so a parsed Delete has old=None
    until Plan.resolve_deletes fills it in.
    """

    dn: str
    reason: str = ""
    old: Attributes | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "dn", canonical_dn(self.dn))
        if self.old is not None:
            object.__setattr__(self, "old", _attributes(self.old, f"delete {self.dn}"))
        object.__setattr__(self, "reason", one_line(self.reason))

    @property
    def new_dn(self) -> str:
        """The DN the entry had; after the change there is none."""
        return self.dn

    def inverse(self) -> Add:
        if self.old is None:
            raise NotInvertible(f"{self.dn}: a delete cannot be undone without the entry it removes")
        return Add(self.dn, self.old, _undo_reason(self.reason))


Change: TypeAlias = Modify | Rename | Add | Delete
_CHANGE_TYPES = (Modify, Rename, Add, Delete)


# --- helpers planners use ------------------------------------------------------------

def replace_value(dn: str, attribute: str, old: Sequence[Value], new: Sequence[Value],
                  reason: str) -> Modify:
    """Change `old` values to `new` as `delete: old` then `add: new`.

    Never LDAP's replace: a replay against a directory that changed since the
    plan was made fails on the delete instead of overwriting the change.  No old
    values: only the add (a value-less delete would remove the whole attribute).
    """
    mods: list[Mod] = []
    if old:
        mods.append(Mod("delete", attribute, tuple(old)))
    if new:
        mods.append(Mod("add", attribute, tuple(new)))
    return Modify(dn, tuple(mods), reason)


def add_values(dn: str, attribute: str, values: Sequence[Value], reason: str) -> Modify:
    """Add values; the step fails if one is already there. No values: nothing to do."""
    return Modify(dn, (Mod("add", attribute, tuple(values)),) if values else (), reason)


def remove_values(dn: str, attribute: str, values: Sequence[Value], reason: str) -> Modify:
    """Remove exactly these values; the step fails if one is missing. No values: nothing to do."""
    return Modify(dn, (Mod("delete", attribute, tuple(values)),) if values else (), reason)


# --- the plan ------------------------------------------------------------------------

class RenameTracker:
    """Maps the DN a step addresses back to the DN its entry has before the plan.

    Steps after a rename address entries by their new DNs (also entries below a
    renamed one, which a non-leaf rename moves with it).  `located` holds, for the
    current key of every renamed entry, its pre-plan RDN texts.
    """

    def __init__(self) -> None:
        self.located: dict[DnKey, tuple[str, ...]] = {}

    def origin(self, dn: str) -> str:
        parsed = _dn(dn)
        texts, key = parsed.rdn_texts, parsed.rdn_keys
        for i in range(len(key)):
            found = self.located.get(key[i:])
            if found is not None:
                return ",".join(texts[:i] + found)
        return dn

    def _move(self, old: DnKey, new: DnKey | None) -> None:
        n = len(old)
        moved = {k: v for k, v in self.located.items() if len(k) >= n and k[len(k) - n:] == old}
        for k in moved:
            del self.located[k]
        if new is not None:
            for k, v in moved.items():
                self.located[k[:len(k) - n] + new] = v

    def step(self, change: Change) -> str:
        origin = self.origin(change.dn)
        if isinstance(change, Rename):
            new_key = dn_key(change.new_dn)
            self._move(dn_key(change.dn), new_key)
            self.located[new_key] = _dn(origin).rdn_texts
        elif isinstance(change, Delete):
            self._move(dn_key(change.dn), None)
        return origin


@dataclass(frozen=True, slots=True)
class Plan:
    """An ordered tuple of changes; modifies that change nothing are dropped."""

    changes: tuple[Change, ...] = ()
    # origins' answer, found on first use: the check and every gate ask for it, and the
    # changes never change (six walks of a 100,000-step plan were 16 s of its gates)
    _origins: tuple[str, ...] | None = field(init=False, repr=False, compare=False,
                                             default=None)

    def __post_init__(self) -> None:
        changes = tuple(self.changes)
        for c in changes:
            if not isinstance(c, _CHANGE_TYPES):
                raise TypeError(f"not a change: {c!r}")
        object.__setattr__(self, "changes", tuple(
            c for c in changes if not (isinstance(c, Modify) and c.is_noop())))

    def __len__(self) -> int:
        return len(self.changes)

    def __iter__(self) -> Iterator[Change]:
        return iter(self.changes)

    def inverse(self) -> Plan:
        """The plan that undoes this one: each change inverted, newest first.

        Raises NotInvertible (naming the step) for a replace, a value-less delete or a
        Delete without its old entry: resolve those against the directory first.
        """
        inverted: list[Change] = []
        for number, change in enumerate(reversed(self.changes)):
            try:
                inverted.append(change.inverse())
            except NotInvertible as exc:
                step = len(self.changes) - number
                raise NotInvertible(f"step {step}: {exc.message}") from None
        return Plan(tuple(inverted))

    def origins(self) -> tuple[str, ...]:
        """For each change, the DN its entry has before the plan runs (renames tracked)."""
        if self._origins is None:
            tracker = RenameTracker()
            object.__setattr__(self, "_origins", tuple(tracker.step(c) for c in self.changes))
        assert self._origins is not None
        return self._origins

    def targets(self) -> tuple[str, ...]:
        """The entries the plan touches, by their DNs before it runs, each once, in order.

        What apply re-reads before the first write: a step after a rename addresses
        its entry by the new DN, which is traced back through the renames here.
        """
        seen: set[DnKey] = set()
        out: list[str] = []
        for dn in self.origins():
            key = dn_key(dn)
            if key not in seen:
                seen.add(key)
                out.append(dn)
        return tuple(out)

    def resolve_replace(self, current: Callable[[str, str], Sequence[Value]]) -> Plan:
        """The plan with each replace and value-less delete spelled out as delete-old/add-new.

        current(dn, attribute) gives an attribute's values in the directory before the
        plan runs, `dn` being the entry's DN before the plan (see origins()).  Each
        replace resolves against the values the plan's earlier steps leave (adds,
        deletes, renames and their RDN values, earlier replaces), never the stale
        pre-plan ones: an entry the plan adds is never looked up.  A replace that would
        change nothing disappears.
        """
        if not any(isinstance(c, Modify) and any(m.needs_current for m in c.mods)
                   for c in self.changes):
            return self
        origins = self.origins()
        # Only attributes that some replace needs are looked up and tracked through the plan.
        wanted = {(dn_key(o), m.attribute.lower()) for c, o in zip(self.changes, origins)
                  if isinstance(c, Modify) for m in c.mods if m.needs_current}
        state = _PlannedValues(current, wanted)
        out: list[Change] = []
        for change, origin in zip(self.changes, origins):
            if isinstance(change, Add):
                state.added(change)
            elif isinstance(change, Delete):
                state.deleted(change.dn)
            elif isinstance(change, Rename):
                state.renamed(change, origin)
            if not isinstance(change, Modify):
                out.append(change)
                continue
            mods: list[Mod] = []
            for mod in change.mods:
                held = state.values(change.dn, origin, mod.attribute)
                if mod.needs_current:
                    assert held is not None  # a replace's own attribute is always wanted
                    if held:
                        mods.append(Mod("delete", mod.attribute, tuple(held)))
                    new = mod.values if mod.op == "replace" else ()
                    if new:
                        mods.append(Mod("add", mod.attribute, new))
                    held[:] = list(new)
                else:
                    mods.append(mod)
                    if held is not None:
                        _apply_values(held, mod)
            out.append(Modify(change.dn, tuple(mods), change.reason))
        return Plan(tuple(out))

    def resolve_deletes(self, current: Callable[[str], Attributes | None]) -> Plan:
        """The plan with each Delete carrying the entry it removes, so it can be undone.

        current(dn) gives the entry's attributes before the plan runs (dn as in
        origins()); None where it does not exist, which leaves the Delete as it is.
        """
        if not any(isinstance(c, Delete) and c.old is None for c in self.changes):
            return self
        out: list[Change] = []
        for change, origin in zip(self.changes, self.origins()):
            if isinstance(change, Delete) and change.old is None:
                old = current(origin)
                if old is not None:
                    change = Delete(change.dn, change.reason, old)
            out.append(change)
        return Plan(tuple(out))


class _PlannedValues:
    """The values entries hold at one point of a plan, for the attributes replaces need.

    Keyed by the DN an entry has at that point: a rename moves the entry and its
    subtree (and swaps its RDN value), so an entry the plan adds at a name another
    entry left is another entry.  An entry the plan adds or deletes holds exactly
    what the plan gave it; only entries the plan found are looked up, by their DN
    before the plan (`origin`), the first time a wanted attribute is touched.
    """

    def __init__(self, current: Callable[[str, str], Sequence[Value]],
                 wanted: set[tuple[DnKey, str]]) -> None:
        self.current = current
        self.wanted = wanted
        self.known: dict[DnKey, dict[str, list[Value]]] = {}
        self.made: set[DnKey] = set()  # entries whose every value the plan gave (added, deleted)

    def values(self, dn: str, origin: str, attribute: str) -> list[Value] | None:
        """The live list of values `attribute` of `dn` holds now; None when not tracked."""
        key, name = dn_key(dn), attribute.lower()
        entry = self.known.setdefault(key, {})
        if name not in entry:
            if key in self.made:
                entry[name] = []
            elif (dn_key(origin), name) in self.wanted:
                entry[name] = [canonical_value(attribute, v) for v in self.current(origin, attribute)]
            else:
                return None
        return entry[name]

    def added(self, change: Add) -> None:
        key = dn_key(change.dn)
        self.known[key] = {name.lower(): list(values) for name, values in change.attributes}
        self.made.add(key)

    def deleted(self, dn: str) -> None:
        key = dn_key(dn)
        self.known[key] = {}
        self.made.add(key)

    def renamed(self, change: Rename, origin: str) -> None:
        """The entry and its subtree now answer to the new DN; deleteoldrdn: 1 takes the
        old RDN's values out of the entry and puts the new RDN's in."""
        old, new = dn_key(change.dn), dn_key(change.new_dn)
        known = {k: self.known.pop(k) for k in list(self.known) if _under(k, old)}
        made = {k for k in self.made if _under(k, old)}
        self.made -= made
        for k in [k for k in self.known if _under(k, new)]:
            del self.known[k]  # what stood at the new name, the plan deleted
        self.made = {k for k in self.made if not _under(k, new)}
        for k, entry in known.items():
            self.known[k[:len(k) - len(old)] + new] = entry
        self.made |= {k[:len(k) - len(old)] + new for k in made}
        for attribute, value in _dn(change.dn).rdn_avas:
            held = self.values(change.new_dn, origin, attribute)
            if held is not None:
                _apply_values(held, Mod("delete", attribute, (value,)))
        for attribute, value in _dn(change.new_rdn).rdn_avas:
            held = self.values(change.new_dn, origin, attribute)
            add = Mod("add", attribute, (value,))
            if held is not None and value_key(attribute, add.values[0]) not in {
                    value_key(attribute, v) for v in held}:
                _apply_values(held, add)


def _under(key: DnKey, base: DnKey) -> bool:
    """True where `key` is `base` or below it."""
    return len(key) >= len(base) and key[len(key) - len(base):] == base


def _apply_values(held: list[Value], mod: Mod) -> None:
    """Apply an add or a delete-of-values block to a list of values (schema comparison)."""
    if mod.op == "add":
        held.extend(mod.values)
        return
    gone = {value_key(mod.attribute, v) for v in mod.values}
    held[:] = [v for v in held if value_key(mod.attribute, v) not in gone]
