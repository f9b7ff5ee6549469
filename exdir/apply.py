"""Apply a Plan: verify first, write the undo file, journal each step, read back, roll back.

One path for every backend and every command (the dry run calls the same
`run()` with apply=False).  The rules (docs/design.md, "Apply: nothing lost, nothing
half-done"):

1. Re-read every entry the plan touches in one bulk read and walk the plan over
   that copy: each step is *pending* (its target holds what it expects), *done*
   (its target already holds its result: an interrupted run, or an undo file
   applied where the step never ran) or a *conflict*.  Any conflict refuses the
   plan before the first write (exit 1).
2. Write the undo file (the exact inverse, as LDIF) before the first write, and a
   journal line after each step, fsynced per batch (exdir.journal says why a journal
   that lags by a batch loses nothing: the undo file is the recovery path).
3. Apply through Directory.write_many (a server keeps several modifies in flight;
   renames, adds and deletes go alone, in order); each modify carries its old values,
   so a concurrent change fails the step instead of being overwritten.
4. Read back what was written.  On any failure apply the inverse of the steps done,
   newest first (exit 3); if that fails too, exit 4 naming the undo file and the
   step to resume from.  An LDIF directory is saved only after full success.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Callable, Literal, Mapping, Sequence

from . import dn as dnu
from . import schema
from . import values as vals
from .backends.base import Directory, Write, apply_mods
from .errors import (Conflict, EntryExists, ExdirError, InputError, Interrupted, NoSuchEntry,
                     Refused)
from .gates import Gate, Safety, evaluate as evaluate_gates
from .files import check_new_path as _check_new, stamp, write_new, write_new_unique
from .journal import Journal
from .ldif_out import render
from .plan import Add, Change, Delete, Mod, Modify, NotInvertible, Plan, Rename, Value
from .replication import WRITTEN_TO, written_to

Status = Literal["pending", "done", "conflict"]
Progress = Callable[[int, int], None]
State = dict[str, dict[str, list[Value]]]  # dn.key -> lower-case attribute -> values

EXIT_OK, EXIT_REFUSED, EXIT_ROLLED_BACK, EXIT_INCOMPLETE = 0, 1, 3, 4
#: what a run did to a step: written; already done, so skipped; its write failed;
#: written, then rolled back after a later failure
OUTCOMES = ("applied", "skipped", "failed", "undone")


@dataclass
class StepRecord:
    """What happened to one change: checked status, then outcome and time taken."""

    number: int
    kind: str
    dn: str
    reason: str
    status: Status = "pending"
    outcome: str = "not run"  # applied | skipped (already done) | failed | undone | not run
    seconds: float = 0.0
    detail: str = ""


@dataclass
class ApplyResult:
    """The whole run, for the CLI's messages and for --report."""

    outcome: str  # checked | applied | nothing to do | refused | rolled back | rollback incomplete
    exit_code: int
    steps: list[StepRecord]
    refusals: list[str] = field(default_factory=list)
    message: str = ""
    undo_file: str | None = None
    journal_file: str | None = None
    resume_from: int | None = None
    started: str = ""
    timings: dict[str, float] = field(default_factory=dict)
    plan: Plan | None = None  # the plan as applied (replaces and deletes resolved)
    blocked: list[Gate] = field(default_factory=list)  # safety gates the plan fails here
    changed_since_check: list[int] = field(default_factory=list)  # steps others changed
    written_to: str = ""  # the DC (URL, no credentials) or LDIF file: exdir.replication
    replication: dict[str, object] | None = None  # --verify-dcs: replication.Report.as_dict

    @property
    def checked(self) -> dict[str, int]:
        """Steps by what the check before any write found: pending, done, conflict."""
        out: dict[str, int] = {}
        for s in self.steps:
            out[s.status] = out.get(s.status, 0) + 1
        return out

    @property
    def counts(self) -> dict[str, int]:
        """Steps by what the run did to them (OUTCOMES, each present, 0 when none), and
        "not run" for steps it never reached (a dry run, a refusal, after a failure)."""
        out = {o: 0 for o in OUTCOMES}
        for s in self.steps:
            out[s.outcome] = out.get(s.outcome, 0) + 1
        if not out.get("not run"):
            out.pop("not run", None)
        return out


class _Failed(Exception):
    def __init__(self, number: int, error: BaseException) -> None:
        super().__init__(str(error))
        self.number = number
        self.error = error


def default_undo_path(now: datetime | None = None) -> str:
    """exdir-undo-<UTC time to the microsecond>.ldif here: two runs in the same second
    no longer share a name (and _write_undo adds -2, -3... if they ever do)."""
    return os.path.abspath(f"exdir-undo-{stamp(now)}.ldif")


def _kind(change: Change) -> str:
    return {Modify: "modify", Rename: "modrdn", Add: "add", Delete: "delete"}[type(change)]


# --- the simulated directory -------------------------------------------------------------

def _entry_state(values: Mapping[str, list[Value]]) -> dict[str, list[Value]]:
    return {k.lower(): list(v) for k, v in values.items() if v}


def _holds(attribute: str, have: list[Value], value: Value) -> bool:
    return any(vals.equal(attribute, h, value) for h in have)


def _holds_as_written(attribute: str, have: list[Value], value: Value) -> bool:
    """The value is there as the plan writes it.  The directory compares proxyAddresses
    and most strings without case, but the case is data: `SMTP:` marks the primary
    address, so a plan that swaps `SMTP:a`/`smtp:b` is not done while the old case
    shows.  DN values are the exception: a server spells a reference as its target's
    DN, whatever the case it was written in."""
    wanted = vals.written_key(attribute, value)
    return any(vals.written_key(attribute, h) == wanted for h in have)


def _modify_done(entry: Mapping[str, list[Value]], change: Modify) -> bool:
    """True where the entry already shows the modify's result."""
    final: dict[str, tuple[set[int], list[Value], list[Value]]] = {}
    for mod in change.mods:  # the values each attribute ends with / must not hold
        name = mod.attribute.lower()
        _, added, removed = final.setdefault(name, (set(), [], []))
        if mod.op == "delete":
            if not mod.values:
                added.clear()
                removed.append(b"\0*")  # marker: the attribute must be absent
            for v in mod.values:
                added[:] = [a for a in added if not vals.equal(mod.attribute, a, v)]
                removed.append(v)
        elif mod.op == "add":
            for v in mod.values:
                removed[:] = [r for r in removed if not (r != b"\0*" and
                                                         vals.equal(mod.attribute, r, v))]
                added.append(v)
        else:  # replace: exactly these values
            added[:] = list(mod.values)
            removed[:] = [b"\0*"] if not mod.values else []
    for name, (_, added, removed) in final.items():
        have = entry.get(name, [])
        if b"\0*" in removed and any(not _holds(name, added, h) for h in have):
            return False  # cleared, then the added values: the attribute holds nothing else
        for v in added:
            if not _holds_as_written(name, have, v):
                return False
        for v in removed:
            if v != b"\0*" and _holds(name, have, v):
                return False
    return True


def _move(state: State, old: str, new: str, follow_references: bool) -> None:
    """Rename in the simulated copy: the subtree moves; references follow where the server
    makes them follow."""
    old_dn, new_dn = dnu.parse(old), dnu.parse(new)
    for k in [k for k in state if dnu.parse(k).is_within(old_dn)]:
        state[dnu.parse(k).rebase(old_dn, new_dn).key] = state.pop(k)
    if not follow_references:
        return
    dn_attrs = schema.dn_attributes()
    for entry in state.values():
        for name, values in entry.items():
            if name in dn_attrs:
                entry[name] = [dnu.rebase(v, old, new) if isinstance(v, str) and _within(v, old)
                               else v for v in values]


def _within(value: str, base: str) -> bool:
    try:
        return dnu.is_within(value, base)
    except InputError:
        return False


def _forward(dn: str, later: tuple[Change, ...], state: State) -> str | None:
    """Where the entry `dn` names is, if renames later in the plan are already done.

    An undo plan addresses entries by their names after the original plan's renames;
    where the original run stopped before a rename, those names do not exist yet and
    the entries sit under the names the (done) inverse renames further down give
    them.  None where no later rename moves `dn`, or one that does is not done.
    """
    at = dnu.parse(dn)
    moved = False
    for c in later:
        if not isinstance(c, Rename):
            continue
        old, new = dnu.parse(c.dn), dnu.parse(c.new_dn)
        if at.is_within(old):
            if old.key in state or new.key not in state:
                return None
            at = at.rebase(old, new)
            moved = True
    return at.key if moved else None


def _parent_there(dn: str, state: State, roots: frozenset[str]) -> bool:
    """True where dn's parent exists in the simulated copy, or dn is a naming context
    (whose parent is no entry: DC=com above DC=fabrikam,DC=com)."""
    at = dnu.parse(dn)
    if at.key in roots or not roots:
        return True
    return at.parent.key in state or not any(at.is_within(dnu.parse(r)) for r in roots)


def _classify(change: Change, state: State, follow_references: bool,
              later: tuple[Change, ...] = (), roots: frozenset[str] = frozenset()
              ) -> tuple[Status, str]:
    """The step's status against the simulated directory, which it then updates."""
    key = dnu.key(change.dn)
    if isinstance(change, Modify):
        entry = state.get(key)
        if entry is None:
            later_key = _forward(change.dn, later, state)
            if later_key is not None and later_key in state and _modify_done(state[later_key],
                                                                             change):
                return "done", "already holds the planned values (under a later name)"
            return "conflict", "the entry does not exist"
        try:
            state[key] = apply_mods(change.dn, entry, change.mods)
            return "pending", ""
        except Conflict as exc:
            if _modify_done(entry, change):
                return "done", "already holds the planned values"
            return "conflict", exc.message.split(": ", 1)[-1]
    if isinstance(change, Rename):
        new_key = dnu.key(change.new_dn)
        here, there = key in state, new_key in state
        if here and not there and not _parent_there(change.new_dn, state, roots):
            return "conflict", f"the new parent {dnu.parent(change.new_dn)} does not exist"
        if here and (not there or new_key == key):
            _move(state, change.dn, change.new_dn, follow_references)
            return "pending", ""
        if there and not here:
            return "done", "already renamed"
        if here and there:
            return "conflict", f"both {change.dn} and {change.new_dn} exist"
        old_later, new_later = (_forward(change.dn, later, state),
                                _forward(change.new_dn, later, state))
        if new_later is not None and new_later in state and (
                old_later is None or old_later not in state):
            return "done", "already renamed (under a later name)"
        return "conflict", "the entry does not exist under either name"
    if isinstance(change, Add):
        if key not in state and not _parent_there(change.dn, state, roots):
            return "conflict", f"its parent {dnu.parent(change.dn)} does not exist"
        if key not in state:
            elsewhere = _forward(change.dn, later, state)
            if elsewhere is not None and elsewhere in state and _holds_all(
                    state[elsewhere], change):
                return "done", "already exists with the planned values (under a later name)"
            try:  # one value twice, or two on a single-valued attribute: the server refuses
                state[key] = apply_mods(change.dn, {}, [Mod("add", n, v)
                                                        for n, v in change.attributes])
            except Conflict as exc:
                return "conflict", exc.message.split(": ", 1)[-1]
            return "pending", ""
        if _holds_all(state[key], change):
            return "done", "already exists with the planned values"
        return "conflict", "an entry with that name exists with other values"
    if isinstance(change, Delete):
        if key in state:
            del state[key]
            return "pending", ""
        return "done", "already gone"
    raise TypeError(change)  # pragma: no cover


def _holds_all(entry: Mapping[str, list[Value]], change: Add) -> bool:
    return all(_holds(n, entry.get(n.lower(), []), v) for n, values in change.attributes
               for v in values)


# --- checking --------------------------------------------------------------------------

@dataclass
class Checked:
    plan: Plan  # replaces resolved, deletes carrying the entry they remove
    steps: list[StepRecord]
    expected: State  # the simulated directory after the plan
    refusals: list[str]


def check(directory: Directory, plan: Plan) -> Checked:
    """Read every touched entry in one bulk read and classify every step.

    The entries DN values of the plan's modifies name are read too: a value added is
    written as the directory names its target (what Active Directory, which holds a
    reference as a link, reads back), and a rename or delete names its entry as the
    directory spells it, so a plan spelled in another case or with other spaces
    changes the same entries and values, and its undo file puts back the directory's
    own spelling.
    """
    origins = plan.origins()
    wanted: dict[str, str] = {}

    def want(dn: str) -> None:
        wanted.setdefault(dnu.key(dn), dn)

    renames = [(i, c) for i, c in enumerate(plan.changes) if isinstance(c, Rename)]
    for i, (change, origin) in enumerate(zip(plan.changes, origins)):
        want(origin)
        want(change.dn)
        if isinstance(change, (Rename, Add)):
            want(change.new_dn)
            want(dnu.parent(change.new_dn))
        if isinstance(change, Modify):
            for dn_value in _dn_values_added(change):
                want(dn_value)
        later = [c for j, c in renames if j > i]
        if later:  # where the entry is if the later renames are done (see _forward)
            for dn in (change.dn, change.new_dn):
                for c in later:
                    if dnu.is_within(dn, c.dn):
                        dn = dnu.rebase(dn, c.dn, c.new_dn)
                want(dn)
    found = directory.read_many(list(wanted.values()), ("*",))
    before: State = {k: _entry_state(e.attributes) for k, e in found.items()}

    def current(dn: str, attribute: str) -> list[Value]:
        return list(before.get(dnu.key(dn), {}).get(attribute.lower(), []))

    def whole(dn: str) -> tuple[tuple[str, tuple[Value, ...]], ...] | None:
        entry = found.get(dnu.key(dn))
        if entry is None:
            return None
        return tuple((n, tuple(v)) for n, v in entry.attributes.items())

    names = {k: e.dn for k, e in found.items()}  # the directory's own spelling
    resolved = plan.resolve_replace(current).resolve_deletes(whole)
    state: State = {k: {a: list(v) for a, v in e.items()} for k, e in before.items()}
    roots = frozenset(dnu.key(r) for r in directory.naming.all if r)
    steps: list[StepRecord] = []
    refusals: list[str] = []
    changes = list(resolved.changes)
    for number, (change, origin) in enumerate(zip(changes, resolved.origins()), start=1):
        change = changes[number - 1] = _as_named(change, origin, names)
        if isinstance(change, Modify) and dnu.key(change.dn) in state:
            change = changes[number - 1] = _as_stored(change, state[dnu.key(change.dn)], names)
        status, detail = _classify(change, state, directory.follows_dn_references,
                                   tuple(changes[number:]), roots)
        steps.append(StepRecord(number, _kind(change), change.dn, change.reason, status,
                                detail=detail))
        if status == "conflict":
            refusals.append(f"step {number} ({_kind(change)} {change.dn}): {detail}")
    return Checked(Plan(tuple(changes)), steps, state, refusals)


def _dn_values_added(change: Modify) -> list[str]:
    """The DN values a modify adds (or replaces with): the entries they name."""
    out: list[str] = []
    for mod in change.mods:
        if mod.op != "delete" and vals.is_dn(mod.attribute):
            for v in mod.values:
                if isinstance(v, str):
                    try:
                        if dnu.parse(v):
                            out.append(v)
                    except InputError:
                        pass  # no DN: written as it is
    return out


def _as_named(change: Change, origin: str, names: Mapping[str, str]) -> Change:
    """A rename or a delete naming its entry as the directory spells the entry's DN.

    Their undo is made from this DN (the old RDN a rename gives back, the entry a delete
    re-creates), so it must be the directory's spelling, not the plan's: a rename
    spelled `cn=kim akers,…` undone must not leave the entry named in lower case.  Only
    where the step names the entry by its name before the plan (no earlier rename moved
    it) and the entry was read.  A modify keeps the plan's name: it only addresses."""
    if not isinstance(change, (Rename, Delete)):
        return change
    key = dnu.key(change.dn)
    stored = names.get(key)
    if stored is None or key != dnu.key(origin) or stored == change.dn:
        return change
    if isinstance(change, Rename):
        return Rename(stored, change.new_rdn, change.new_superior, change.reason)
    return Delete(stored, change.reason, change.old)


def _as_stored(change: Modify, entry: Mapping[str, list[Value]],
               names: Mapping[str, str] | None = None) -> Modify:
    """The modify with each value it deletes spelled as the directory holds it, and each
    DN value it adds spelled as the directory names its target.

    `delete: proxyAddresses` of `x500:/O=FABRIKAM/…` removes `X500:/o=Fabrikam/…` (values
    compare case-insensitively), and the undo must add back what was there, as the
    directory spelled it, not the plan's spelling.  Values the entry does not hold stay
    as they are (the step is then done or a conflict).  An added `homeMDB: cn=mailbox
    store (ex2), …` is written `CN=Mailbox Store (EX2),…` where that entry was read; what
    other values add is data (`SMTP:` is the primary address) and stays as written."""
    mods = []
    changed = False
    for mod in change.mods:
        if mod.op == "delete" and mod.values:
            have = entry.get(mod.attribute.lower(), [])
            values = []
            for v in mod.values:
                stored = next((h for h in have if vals.equal(mod.attribute, h, v)), v)
                changed = changed or stored != v
                values.append(stored)
            mod = Mod("delete", mod.attribute, tuple(values))
        elif names and mod.values and vals.is_dn(mod.attribute):
            values = []
            for v in mod.values:
                named = v
                if isinstance(v, str):
                    try:
                        named = names.get(dnu.key(v), v)
                    except InputError:
                        pass
                changed = changed or named != v
                values.append(named)
            mod = Mod(mod.op, mod.attribute, tuple(values))
        mods.append(mod)
    return Modify(change.dn, tuple(mods), change.reason) if changed else change


# --- writing ---------------------------------------------------------------------------

def _as_write(change: Change) -> Write:
    """The change as one of Directory.write_many's writes."""
    if isinstance(change, Modify):
        return ("modify", change.dn, change.mods)
    if isinstance(change, Rename):
        return ("rename", change.dn, change.new_rdn, change.new_superior)
    if isinstance(change, Add):
        return ("add", change.dn, {n: list(v) for n, v in change.attributes})
    return ("delete", change.dn)


def _write_all(directory: Directory, checked: Checked, journal: Journal, did: str,
               done: list[int], progress: Progress | None, total: int) -> None:
    """Write every pending step through Directory.write_many; `done` gets the number of
    every step that landed, in step order.  Raises _Failed for the first step that
    failed, once nothing is in flight any more.

    A server backend keeps several writes in flight (exdir.backends.ldap: consecutive
    modifies of distinct entries overlap; renames, adds and deletes go alone, in plan
    order), so when a step fails, later ones may have been sent already: no new write
    starts after the first failure, those in flight are waited for, and every one that
    landed is in `done`, so the rollback undoes it, newest first.  A write whose reply
    was lost (anything but the server's refusal) is read back: if its result shows, it
    landed and is rolled back with the others.

    SIGINT and SIGTERM are held for the whole write phase, not acted on inside the client
    library (a write the server made would be neither recorded nor rolled back); one
    that arrives stops new writes like a failure, and acts once the writes in flight
    are in and recorded (the caller rolls back).
    """
    todo = [r for r in checked.steps if r.status != "done"]
    changes = checked.plan.changes
    failed: list[tuple[int, BaseException]] = []
    last = time.perf_counter()

    def on_result(i: int, error: BaseException | None) -> bool:
        nonlocal last
        record = todo[i]
        now = time.perf_counter()
        record.seconds, last = now - last, now
        if error is None:
            record.outcome = "applied"
            done.append(record.number)
            journal.step(record.number, did, record.dn)
        else:
            record.outcome, record.detail = "failed", _message(error)
            failed.append((record.number, error))
        if progress:
            progress(len(done), total)
        return not failed and not _signal_waiting()

    held = _hold_signals()
    try:
        directory.write_many([_as_write(changes[r.number - 1]) for r in todo], on_result)
        for number, error in sorted(failed, key=lambda f: f[0]):
            change = changes[number - 1]
            if not isinstance(error, (Conflict, NoSuchEntry, EntryExists)) and (
                    _landed(directory, change)):
                done.append(number)  # rolled back with the others
                checked.steps[number - 1].detail += " (the change was made nonetheless)"
                journal.step(number, f"{did} despite an error", checked.steps[number - 1].dn)
        done.sort()
        if failed:
            number, error = min(failed, key=lambda f: f[0])
            raise _Failed(number, error)
    finally:
        done.sort()
        _release_signals(held)  # a signal that came meanwhile acts here


def _signal_waiting() -> bool:
    """True where a SIGINT or SIGTERM is pending (held by _hold_signals)."""
    import signal

    try:
        return bool(signal.sigpending() & {signal.SIGINT, signal.SIGTERM})
    except (AttributeError, OSError):
        return False


def _write(directory: Directory, change: Change) -> None:
    if isinstance(change, Modify):
        directory.modify(change.dn, change.mods)
    elif isinstance(change, Rename):
        directory.rename(change.dn, change.new_rdn, change.new_superior)
    elif isinstance(change, Add):
        directory.add(change.dn, {n: list(v) for n, v in change.attributes})
    elif isinstance(change, Delete):
        directory.delete(change.dn)


def _landed(directory: Directory, change: Change) -> bool:
    """True where a write that reported failure was made all the same.

    A connection dropped after the server committed reports an error for a change that
    is in the directory; the rollback must undo it too, or "as before" would be false.
    The step was pending, so its result showing now means this write made it.  Not
    asked after a refusal by the server (a conflict): that write made nothing, and the
    result showing would be someone else's change, which the rollback must keep.
    """
    try:
        if isinstance(change, Modify):
            entry = directory.read(change.dn)
            return entry is not None and _modify_done(_entry_state(entry.attributes), change)
        if isinstance(change, Rename):
            if dnu.key(change.dn) == dnu.key(change.new_dn):
                return False
            return (directory.read(change.new_dn, ("objectClass",)) is not None
                    and directory.read(change.dn, ("objectClass",)) is None)
        if isinstance(change, Add):
            return directory.read(change.dn, ("objectClass",)) is not None
        if isinstance(change, Delete):
            return directory.read(change.dn, ("objectClass",)) is None
    except Exception:  # noqa: BLE001 - cannot tell: the rollback of the others goes on
        return False
    return False


def _shows(directory: Directory, change: Change) -> bool:
    """True where the directory already shows the change's whole result (read afresh)."""
    try:
        if isinstance(change, Add):
            entry = directory.read(change.dn)
            return entry is not None and _holds_all(_entry_state(entry.attributes), change)
        return _landed(directory, change)
    except Exception:  # noqa: BLE001 - cannot tell: not shown
        return False


def _write_file(path: str, text: str) -> None:
    """The undo file, on disk before the first directory write; atomically, so a run
    killed while writing it leaves no undo file rather than half of one, and
    exclusively: an existing file, device or symlink of that name is refused (exit 2),
    never replaced, and no folder is created."""
    write_new(path, text.encode("utf-8"), "undo file")


def _write_undo(path: str, text: str, *, default: bool) -> str:
    """The undo file, written whole before the first directory write; its path.

    A name the user gave is written or refused (exit 2).  A default name that is taken
    (another run in the same microsecond, or its journal left behind) becomes -2, -3...,
    race-free (the name is claimed by link(), which fails if another run got it first);
    the header's `exdir apply NAME --apply` then names the file actually written."""
    if not default:
        _write_file(path, text)
        return path
    folder, name = os.path.split(path)
    stem, suffix = os.path.splitext(name)
    said = f"`exdir apply {name} --apply`"

    def content(chosen: str) -> bytes:
        return text.replace(said, f"`exdir apply {os.path.basename(chosen)} --apply`",
                            1).encode("utf-8")

    return write_new_unique(folder, stem, suffix, content, what="undo file",
                            also=(".journal",))


def check_new_path(path: str) -> None:
    """Refuse an --undo-file name up front (exit 2), before the directory is touched:
    it, or its journal (the name + .journal), exists as anything (a file, /dev/null, a
    symlink, the --ldif file itself), or its folder is missing."""
    _check_new(path, "undo file")
    _check_new(path + ".journal", "journal")


def _verify(directory: Directory, checked: Checked, applied: list[int]) -> list[str]:
    """Read back the entries the applied steps wrote and compare with the expected state."""
    changes = checked.plan.changes
    final_dns: dict[str, Change] = {}
    for n in applied:
        c = changes[n - 1]
        final_dns[dnu.key(c.new_dn)] = c
    # entries renamed later in the plan are looked up under their final names
    moved = {k: k for k in final_dns}
    for n in applied:
        c = changes[n - 1]
        if isinstance(c, Rename):
            old, new = dnu.parse(c.dn), dnu.parse(c.new_dn)
            for k, now in list(moved.items()):
                at = dnu.parse(now)
                if at.is_within(old):
                    moved[k] = at.rebase(old, new).key
    # only what is compared: the values of the attributes the modifies name (an add, a
    # rename or a delete is checked by the entry's presence alone)
    compared = sorted({m.attribute.lower() for c in final_dns.values() if isinstance(c, Modify)
                       for m in c.mods}) or ["objectClass"]
    found = directory.read_many(list(set(moved.values())), compared)
    problems: list[str] = []
    for k, c in final_dns.items():
        now = moved[k]
        entry = found.get(now)
        expected = checked.expected.get(now)
        if isinstance(c, Delete):
            if entry is not None and expected is None:
                problems.append(f"{c.dn} still exists after its delete")
            continue
        if expected is None:
            continue  # deleted again later in the plan
        if entry is None:
            problems.append(f"{now} is missing after the plan")
            continue
        if isinstance(c, Modify):
            have = _entry_state(entry.attributes)
            for mod in c.mods:
                name = mod.attribute.lower()
                want, got = expected.get(name, []), have.get(name, [])
                if len(want) != len(got) or not all(_holds(name, got, v) for v in want):
                    problems.append(f"{c.dn}: {mod.attribute} reads back as {got!r}, "
                                    f"expected {want!r}")
                    break
    return problems


def run(directory: Directory, plan: Plan, *, apply: bool, undo_file: str | None = None,
        progress: Progress | None = None, save: bool = True,
        safety: Safety | None = None) -> ApplyResult:
    """Check the plan against the directory and, with apply=True, carry it out.

    The safety gates (exdir.gates) are met here, derived from what the plan changes,
    so a plan from a command, from `exdir apply` or from a library caller meets the
    same rules; `safety` is what the administrator vouched for (--lab, --adc-stopped).
    On a dry run the gates a plan fails are in result.blocked and change nothing else.
    """
    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    t0 = time.perf_counter()
    if apply and undo_file:
        check_new_path(undo_file)  # refused before the directory is touched (exit 2)
    checked = check(directory, plan)
    timings = {"check": time.perf_counter() - t0}
    result = ApplyResult("checked", EXIT_OK, checked.steps, checked.refusals, started=started,
                         timings=timings, plan=checked.plan, written_to=written_to(directory))
    result.blocked = evaluate_gates(directory, checked.plan, safety or Safety(),
                                    pending=[r.number for r in checked.steps
                                             if r.status == "pending"])
    timings["gates"] = time.perf_counter() - t0 - timings["check"]
    if checked.refusals:
        result.outcome, result.exit_code = "refused", EXIT_REFUSED
        result.message = (f"refused: {len(checked.refusals)} step(s) do not match the directory; "
                          "nothing was written")
        return result
    if apply and result.blocked:
        result.outcome, result.exit_code = "refused", EXIT_REFUSED
        result.message = ("refused, nothing written: "
                          + " | ".join(g.message for g in result.blocked))
        return result
    pending = [s.number for s in checked.steps if s.status == "pending"]
    if not apply:
        return result
    if not pending:
        result.outcome = "nothing to do"
        result.message = "every step is already done; nothing was written"
        for s in checked.steps:
            s.outcome = "skipped"
        return result

    inverse = _undo_plan(checked)
    undo_path = undo_file or default_undo_path()
    header = [f"undo file written by exdir at {started} before the first write;",
              f"`exdir apply {os.path.basename(undo_path)} --apply` rolls back what was done",
              f"{WRITTEN_TO}{result.written_to}"]
    undo_path = _write_undo(undo_path, render(inverse, header=header), default=undo_file is None)
    result.undo_file = undo_path
    journal = Journal(undo_path + ".journal", undo_path, len(checked.steps))
    result.journal_file = journal.path
    # On the in-memory directory a step changes nothing on disk until the save: the
    # journal says "staged", and "saved" once the file is rewritten.
    did = "staged" if directory.backend == "ldif" else "done"
    held_signals: set[int] | None = None
    done: list[int] = []
    t1 = time.perf_counter()
    try:
        try:
            for record in checked.steps:
                if record.status == "done":
                    record.outcome = "skipped"
                    journal.step(record.number, "skipped", record.dn)
            _write_all(directory, checked, journal, did, done, progress, len(pending))
            timings["write"] = time.perf_counter() - t1
            t2 = time.perf_counter()
            problems = _verify(directory, checked, done)
            timings["verify"] = time.perf_counter() - t2
            if problems:
                raise _Failed(done[-1] if done else 0, ExdirError("read-back: " + "; ".join(
                    problems[:5])))
            if save and directory.backend == "ldif":
                # From here to the journal's last line a signal is held, not acted on: a
                # SIGTERM after the file is replaced but before the journal and the result
                # say so would report "nothing was saved" about a saved file.
                held_signals = _hold_signals()
                try:
                    directory.save()
                except (OSError, ExdirError) as exc:
                    said = exc.message if isinstance(exc, ExdirError) else (
                        f"cannot save {directory.describe()}: {exc.strerror or exc}; the "
                        "file is unchanged")
                    journal.note(f"failed saving: {said}")
                    for number in done:  # staged in memory only: dropped, never written
                        checked.steps[number - 1].outcome = "undone"
                    # the file changed under us (Refused: exit 1) or could not be
                    # written (exit 3); either way the in-memory steps are dropped
                    result.outcome, result.exit_code = (
                        ("refused", EXIT_REFUSED) if isinstance(exc, Refused)
                        else ("rolled back", EXIT_ROLLED_BACK))
                    result.message = (f"{said} (nothing was written: the undo file "
                                      f"{undo_path} is not needed)")
                    try:
                        _release_signals(held_signals)
                    except (KeyboardInterrupt, Interrupted):
                        pass  # nothing was saved either way: the message above is true
                    return result
                journal.note(f"saved {len(done)} step(s) to {directory.describe()}")
            elif save:
                directory.save()
        except _Failed as failure:
            journal.note(f"failed {failure.number}: {_message(failure.error)}")
            if isinstance(failure.error, Conflict):
                _also_changed(directory, checked, failure.number, result, done)
            return _roll_back(directory, checked, done, failure, result, journal, timings)
        except (KeyboardInterrupt, Interrupted) as stop:
            name = getattr(stop, "name", "SIGINT")
            try:
                _release_signals(held_signals)  # blocked if it came during the save
            except (KeyboardInterrupt, Interrupted):
                pass  # the same signal, held: it is being handled
            journal.note(f"interrupted by {name}")
            halted = _Failed(done[-1] if done else 0, ExdirError(f"interrupted by {name}"))
            _roll_back(directory, checked, done, halted, result, journal, timings)
            if result.exit_code == EXIT_ROLLED_BACK:
                result.exit_code = 128 + getattr(stop, "signum", 2)
                result.outcome = "interrupted"
                result.message = (f"interrupted by {name}: " + (
                    "nothing was saved, the file is as before" if directory.backend == "ldif"
                    else f"the {len(done)} step(s) done were rolled back, the directory is as "
                         "before") + f" (undo file {undo_path})")
            return result
        journal.note("complete")
    finally:
        journal.close()
    result.outcome = "applied"
    result.message = (f"applied {len(done)} step(s)"
                      + (f", {len(checked.steps) - len(done)} already done" if
                         len(done) < len(checked.steps) else "")
                      + f"; undo file {undo_path}")
    try:
        _release_signals(held_signals)
    except (KeyboardInterrupt, Interrupted) as stop:  # it came during the save: all saved
        name = getattr(stop, "name", "SIGINT")
        result.exit_code = 128 + getattr(stop, "signum", 2)
        result.message = f"interrupted by {name} after the save: " + result.message
    return result


def _hold_signals() -> set[int] | None:
    """Block SIGINT and SIGTERM (they stay pending); what was blocked before, or None
    where signals cannot be blocked here."""
    import signal

    try:
        return signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    except (AttributeError, OSError, ValueError):
        return None


def _release_signals(previous: set[int] | None) -> None:
    """Unblock what _hold_signals blocked: a pending signal is acted on now."""
    import signal

    if previous is not None:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _also_changed(directory: Directory, checked: Checked, failed: int,
                  result: ApplyResult, written: Sequence[int] = ()) -> None:
    """After a step failed because its entry changed since the check: which later steps
    no longer match either, so the administrator sees every concurrent change at once,
    not one per run.  One bulk read of the remaining steps' entries."""
    # steps on entries the run had reached are left out: they "no longer match" only
    # because of this run's own writes (or the failed one), not someone else's
    reached = {dnu.key(c.dn) for c in checked.plan.changes[:failed]} | {
        dnu.key(c.new_dn) for c in checked.plan.changes[:failed]}
    # and so are later steps this run wrote itself: pipelined, they were in flight when
    # the failure came, and landed
    mine = set(written)
    rest = [r.number for r in checked.steps if r.number > failed and r.status == "pending"
            and r.number not in mine
            and not {dnu.key(checked.plan.changes[r.number - 1].dn),
                     dnu.key(checked.plan.changes[r.number - 1].new_dn)} & reached]
    if not rest:
        return
    try:
        again = check(directory, Plan(tuple(checked.plan.changes[n - 1] for n in rest)))
    except Exception:  # noqa: BLE001 - only a better message is lost
        return
    moved = [rest[s.number - 1] for s in again.steps if s.status != "pending"]
    result.changed_since_check = [failed, *moved]
    for n in moved:
        checked.steps[n - 1].detail = "changed since the check"


def _changed_note(result: ApplyResult) -> str:
    """The part of the one-line message that names every step someone else changed."""
    changed = result.changed_since_check
    if len(changed) < 2:
        return ""
    return (f"; {len(changed)} step(s) no longer match the directory (changed since the "
            "check): steps " + ", ".join(str(n) for n in changed[:10])
            + (" …" if len(changed) > 10 else ""))


def _undo_plan(checked: Checked) -> Plan:
    """The inverse of exactly the steps this run will make (the pending ones), newest first.

    A step already done before this run is not this run's to undo: an `add` of an
    entry that exists, or a modify whose values are there, inverted, would delete a
    real mailbox or a proxy it had all along.  Applying the undo file therefore
    restores the state before this run, whatever the plan contained; the steps a
    previous run made are undone by that run's own undo file.
    """
    inverted: list[Change] = []
    for record, change in zip(reversed(checked.steps), reversed(checked.plan.changes)):
        if record.status != "pending":
            continue
        try:
            inverted.append(change.inverse())
        except NotInvertible as exc:
            raise NotInvertible(f"step {record.number}: {exc.message}") from None
    return Plan(tuple(inverted))


def _message(exc: BaseException) -> str:
    return exc.message if isinstance(exc, ExdirError) else f"{type(exc).__name__}: {exc}"


def _roll_back(directory: Directory, checked: Checked, done: list[int], failure: _Failed,
               result: ApplyResult, journal: Journal, timings: dict[str, float]) -> ApplyResult:
    """Apply the inverse of the steps done, newest first (what Exchange 2003's move did)."""
    t0 = time.perf_counter()
    changes = checked.plan.changes
    undone: list[int] = []
    for number in reversed(done):
        inverse = changes[number - 1].inverse()
        try:
            try:
                _write(directory, inverse)
            except Exception:
                # the step did not take (a server that answered success and did not
                # delete, say): where its inverse's result already shows there is
                # nothing to undo; anything else is a real failure of the rollback
                if not _shows(directory, inverse):
                    raise
        except Exception as exc:  # noqa: BLE001
            journal.note(f"rollback failed at {number}: {_message(exc)}")
            remaining = [n for n in done if n not in undone]
            result.outcome, result.exit_code = "rollback incomplete", EXIT_INCOMPLETE
            result.resume_from = max(remaining)
            result.message = (f"step {failure.number} failed ({_message(failure.error)}) and the "
                              f"rollback failed at step {number} ({_message(exc)}); run "
                              f"`exdir apply {result.undo_file} --apply` to finish undoing "
                              f"(steps {min(remaining)}-{max(remaining)} are still applied)"
                              + _changed_note(result)
                              + ("; the LDIF file on disk was not rewritten"
                                 if directory.backend == "ldif" else ""))
            timings["rollback"] = time.perf_counter() - t0
            return result
        undone.append(number)
        checked.steps[number - 1].outcome = "undone"
        journal.step(number, "undone", changes[number - 1].new_dn)
    journal.note("rolled back")
    timings["rollback"] = time.perf_counter() - t0
    result.outcome, result.exit_code = "rolled back", EXIT_ROLLED_BACK
    result.message = (f"step {failure.number} failed: {_message(failure.error)}; "
                      f"the {len(undone)} step(s) done were rolled back, the directory is as before"
                      + _changed_note(result))
    return result
