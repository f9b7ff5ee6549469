"""Safety gates derived from what a plan changes, for every path that applies one.

A plan reaches `apply.run` from a command that just made it, from `exdir apply`
(an earlier dry run, a hand-cut file, an undo file) or from a library caller.
The rules cannot live in the commands that plan, or the other two paths skip
them: a rename plan saved by a dry run and applied with `exdir apply` once went
through on a directory with three domain controllers.  So the gates look at the
plan itself:

- a plan that renames the organisation object or an administrative group object
  meets the rename gates (legacydn.exe's: a lab, one domain controller, Active
  Directory or --lab, FLAG_CONFIG_ALLOW_RENAME) and is refused as *stale* when
  the directory holds legacyExchangeDN or msExchHomeServerName values under the
  old prefix that the plan does not rewrite (a hand-cut plan, or one made before
  a mailbox was added);
- a plan that changes homeMDB between two servers of one administrative group
  meets the ADC gate (mixed mode with connection agreements: stop the ADC);
- any plan meets the read-only gate: a read-only domain controller is read and
  checked, never written (it would refer the write elsewhere, and exdir writes to
  the one DC it names);
- a plan that gives an object a legacyExchangeDN or an X500 proxy meets the
  uniqueness gate: no other object may hold that value in either form, or mail
  to it is misdelivered.

Each gate reads what it needs in bulk (one search per partition, or chunked
filters), never one search per step.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Iterator, Mapping, Sequence

from ldap3.utils.conv import escape_filter_chars

from . import dn as dnu
from . import values as vals
from .checks import adc_move_refusal, blocking, preflight, same_group_move
from .backends.base import Directory, Entry
from .errors import ExdirError
from .findings import Operation
from .legacydn import has_prefix
from .plan import Add, Change, Modify, Plan, Rename
from .readers.topology import read_topology
from .topology import Topology
from .values import Value

_CHUNK = 100  # values per OR filter in the uniqueness gate
_INDEX_FROM = 400  # above this many values, read every holder once and index them


@dataclass(frozen=True)
class Safety:
    """What the administrator vouched for on the command line (the default: nothing)."""

    lab: bool = False  # --lab: this is a lab; renames may apply
    adc_stopped: bool = False  # --adc-stopped: the ADC cannot write old homes back


@dataclass(frozen=True)
class Gate:
    """One reason the plan must not be applied here, in plain words."""

    code: str  # read-only | rename | stale | adc | unique
    message: str


def evaluate(directory: Directory, plan: Plan, safety: Safety = Safety(),
             topology: Topology | None = None, pending: Iterable[int] | None = None
             ) -> list[Gate]:
    """Every gate the plan fails on this directory; empty when it may be applied.

    `pending` (step numbers from 1) limits the uniqueness gate to the steps this run
    writes: a value a step gave an object before this run is not this run's doing.
    The rename and move gates look at every step: a rename plan run again after an
    interruption is still a rename plan.
    """
    if plan.changes and directory.read_only:
        return [Gate("read-only", f"{directory.describe()} is a read-only domain controller: "
                                  "it takes no writes (they are referred to a writable DC); "
                                  "give --url a writable DC")]
    renames = [c for c in plan.changes if isinstance(c, Rename)]
    homes = [c for c in plan.changes if isinstance(c, Modify)
             and any(m.attribute.lower() == "homemdb" for m in c.mods)]
    named = _named_values(plan)
    if not renames and not homes and not named:
        return []
    if topology is None:
        try:
            topology = read_topology(directory)
        except ExdirError:
            topology = None  # not an Exchange organisation: no rename or move gate applies
    gates: list[Gate] = []
    if topology is not None:
        gates += _holding_containers(topology, renames)
        renamed = _renamed_containers(topology, renames)
        relabelled = [r for r in _relabelled_containers(topology, plan)
                      if all(dnu.key(r.dn) != dnu.key(x.dn) for x in renamed)]
        held = _held_under(directory, plan, [r.old_prefix for r in renamed + relabelled])
        # a new legacyExchangeDN without a rename: a change of prefix when other values
        # sit under the old one (then the rename gates apply); a correction when none do
        renamed += [r for r in relabelled if _stale_gate(plan, r, held)]
        if renamed:
            gates += _rename_gates(directory, topology, plan, renamed, safety, held)
        if homes:
            gates += _adc_gate(directory, topology, plan, safety)
    _DELETED.clear()  # the stale gate's: not held through the uniqueness gate
    chosen = None if pending is None else set(pending)
    if chosen is None:
        gates += _unique_gate(directory, plan, named)
    else:
        gates += _unique_gate(directory, Plan(tuple(
            c for n, c in enumerate(plan.changes, start=1) if n in chosen)))
    return gates


# --- renames ---------------------------------------------------------------------------

@dataclass(frozen=True)
class _Renamed:
    what: str  # "organisation" | "administrative group"
    dn: str
    name: str
    flags: int | None
    old_prefix: str
    new_prefix: str


def _renamed_containers(topology: Topology, renames: Sequence[Rename]) -> list[_Renamed]:
    """The organisation or administrative group objects the plan renames, with the
    legacyExchangeDN prefixes before and after (as the rename planner computes them)."""
    org = topology.organization
    org_prefix = org.legacy_dn or f"/o={org.name}"
    out: list[_Renamed] = []
    for change in renames:
        # a plan run again after an interruption finds the container renamed already:
        # it is still a rename plan, and its rewrites still meet the gates
        keys = (dnu.key(change.dn), dnu.key(change.new_dn))
        old_name, new_name = dnu.rdn_value(change.dn), dnu.rdn_value(change.new_dn)
        done = keys[0] != dnu.key(org.dn) and keys[1] == dnu.key(org.dn)
        if dnu.key(org.dn) in keys:
            old = f"/o={old_name}" if done else org_prefix
            out.append(_Renamed("organisation", org.dn, org.name, org.system_flags, old,
                                f"/o={new_name}"))
            continue
        for group in topology.admin_groups:
            if dnu.key(group.dn) in keys:
                renamed_already = keys[1] == dnu.key(group.dn) and keys[0] != keys[1]
                old = (f"{org_prefix}/ou={old_name}" if renamed_already
                       else group.legacy_dn or f"{org_prefix}/ou={group.name}")
                out.append(_Renamed("administrative group", group.dn, group.name,
                                    group.system_flags, old, f"{org_prefix}/ou={new_name}"))
    return out


def _holding_containers(topology: Topology, renames: Sequence[Rename]) -> list[Gate]:
    """Renames of what holds the organisation or the administrative groups (CN=Microsoft
    Exchange, CN=Administrative Groups, CN=Services...): Exchange finds its organisation
    by those names, and no legacyExchangeDN rewrite follows them.  Never applied."""
    org = dnu.key(topology.organization.dn)
    groups = [dnu.key(g.dn) for g in topology.admin_groups]
    gates: list[Gate] = []
    for change in renames:
        key = dnu.key(change.dn)
        if key == org or key in groups:
            continue  # the organisation or a group itself: the rename gates below
        held = [k for k in (org, *groups) if k.endswith("," + key)]
        if held:
            gates.append(Gate("rename", f"the plan renames {change.dn}, which holds the "
                                        "organisation or its administrative groups: exdir "
                                        "renames only the organisation or an administrative "
                                        "group object itself"))
    return gates


def _relabelled_containers(topology: Topology, plan: Plan) -> list[_Renamed]:
    """The organisation's or a group's legacyExchangeDN changed without a rename: the
    same change of prefix as a rename, with the same gates (lab, one DC, stale values)."""
    org = topology.organization
    owners = {dnu.key(org.dn): ("organisation", org.dn, org.name, org.system_flags)}
    for g in topology.admin_groups:
        owners[dnu.key(g.dn)] = ("administrative group", g.dn, g.name, g.system_flags)
    out: list[_Renamed] = []
    for change, origin in zip(plan.changes, plan.origins()):
        owner = owners.get(dnu.key(origin))
        if owner is None or not isinstance(change, Modify):
            continue
        old = [v for m in change.mods if m.attribute.lower() == "legacyexchangedn"
               and m.op == "delete" for v in m.values if isinstance(v, str)]
        new = [v for m in change.mods if m.attribute.lower() == "legacyexchangedn"
               and m.op in ("add", "replace") for v in m.values if isinstance(v, str)]
        if old and new and not vals.equal("legacyExchangeDN", old[0], new[0]):
            out.append(_Renamed(owner[0], owner[1], owner[2], owner[3], old[0], new[0]))
    return out


def _rename_gates(directory: Directory, topology: Topology, plan: Plan,
                  renamed: list[_Renamed], safety: Safety, held: list[tuple[str, str, str]]
                  ) -> list[Gate]:
    gates: list[Gate] = []
    if not safety.lab:
        gates.append(Gate("rename", "renames apply only in a lab: add --lab (legacydn.exe was "
                                    "supported only there)"))
    findings = preflight(directory, topology)
    for r in renamed:
        operation = (Operation.RENAME_ORG if r.what == "organisation"
                     else Operation.RENAME_ADMIN_GROUP)
        for f in blocking(findings, operation, subject=r.dn, lab=safety.lab):
            if Gate("rename", f.message) not in gates:  # one finding may stop two renames
                gates.append(Gate("rename", f.message))
        gates += _stale_gate(plan, r, held)
    return gates


_PREFIXED = ("legacyExchangeDN", "msExchHomeServerName")


def _held_under(directory: Directory, plan: Plan, prefixes: Sequence[str]
                ) -> list[tuple[str, str, str]]:
    """(entry DN, attribute, value) of every legacyExchangeDN and msExchHomeServerName
    value under any of the prefixes that the plan does not delete or replace (a fresh
    rename plan rewrites nearly all): one search per partition for all of them (a
    rename of the organisation relabels it and each administrative group, and every
    one of those asks the stale gate)."""
    unique = sorted({p.lower(): p for p in prefixes if p}.values(), key=str.lower)
    if not unique:
        return []
    terms = "".join(f"({a}={escape_filter_chars(p)}*)" for p in unique for a in _PREFIXED)
    deleted = _deleted(plan)
    held: list[tuple[str, str, str]] = []
    for entry in directory.search_partitions(f"(|{terms})", _PREFIXED):
        key = dnu.key(entry.dn)
        for attribute in _PREFIXED:
            lower = attribute.lower()
            if (key, lower, "*") in deleted:
                continue
            held += [(entry.dn, attribute, value) for value in entry.texts(attribute)
                     if (key, lower, _key(attribute, value)) not in deleted
                     and any(has_prefix(value, p) for p in unique)]
    return held


def _stale_gate(plan: Plan, r: _Renamed, held: list[tuple[str, str, str]]) -> list[Gate]:
    """Values under the old prefix that the plan does not rewrite: the plan is stale
    (made before they existed) or incomplete (cut by hand).  `held` is _held_under's
    reading, for every prefix at once."""
    missed: list[str] = []
    for change in plan.changes:  # a value the plan itself writes under the old prefix
        for attribute, values in _added(change):
            if attribute not in ("legacyexchangedn", "msexchhomeservername"):
                continue
            missed += [f"{change.dn} ({attribute}, written by the plan)" for v in values
                       if isinstance(v, str) and has_prefix(v, r.old_prefix)]
    missed += [f"{dn} ({attribute})" for dn, attribute, value in held
               if has_prefix(value, r.old_prefix)]
    if not missed:
        return []
    shown = "; ".join(missed[:3]) + (" …" if len(missed) > 3 else "")
    return [Gate("stale", f"the plan is stale: {len(missed)} value(s) under {r.old_prefix} "
                          f"that it does not rewrite ({shown}); make the plan again")]


_DELETED: dict[int, tuple[Plan, set[tuple[str, str, str]]]] = {}


def _deleted(plan: Plan) -> set[tuple[str, str, str]]:
    """(entry key before the plan, attribute, value key or "*") of every value the plan
    deletes or replaces; computed once per plan (the stale gate asks once per rename)."""
    held = _DELETED.get(id(plan))
    if held is not None and held[0] is plan:
        return held[1]
    deleted: set[tuple[str, str, str]] = set()
    for change, origin in zip(plan.changes, plan.origins()):
        if isinstance(change, Modify):
            for mod in change.mods:
                if mod.op in ("delete", "replace"):
                    for v in mod.values:
                        if isinstance(v, str):
                            deleted.add((dnu.key(origin), mod.attribute.lower(),
                                         _key(mod.attribute, v)))
                    if mod.op == "delete" and not mod.values or mod.op == "replace":
                        deleted.add((dnu.key(origin), mod.attribute.lower(), "*"))
    _DELETED.clear()  # one plan at a time: nothing held past the next
    _DELETED[id(plan)] = (plan, deleted)
    return deleted


# --- moves ----------------------------------------------------------------------------

def _adc_gate(directory: Directory, topology: Topology, plan: Plan,
              safety: Safety) -> list[Gate]:
    """Per mailbox over the whole plan (a move split over two steps is one move): the
    first homeMDB it loses, the last it gains."""
    lost: dict[str, str] = {}
    gained: dict[str, str] = {}
    names: dict[str, str] = {}
    for change, origin in zip(plan.changes, plan.origins()):
        if not isinstance(change, Modify):
            continue
        key = dnu.key(origin)
        for m in change.mods:
            if m.attribute.lower() != "homemdb":
                continue
            for v in m.values:
                if isinstance(v, str) and m.op == "delete":
                    lost.setdefault(key, v)
                elif isinstance(v, str):
                    gained[key] = v
                    names[key] = change.dn
    same_group: list[str] = []
    servers: dict[str, object] = {}  # a plan names few stores: each looked up once

    def server(store: str):  # type: ignore[no-untyped-def]
        if store not in servers:
            servers[store] = _server(topology, store)
        return servers[store]

    for key, new in gained.items():
        if key not in lost:
            continue
        if same_group_move(server(lost[key]), server(new)):  # type: ignore[arg-type]
            same_group.append(names[key])
    if safety.adc_stopped or not same_group:
        return []
    # named as administrators name them: by mailNickname (one bulk read)
    found = directory.read_many(same_group, ("mailNickname",))
    nicknames = [(found.get(dnu.key(d)) and found[dnu.key(d)].text("mailNickname"))
                 or dnu.rdn_value(d) for d in same_group]
    refusal = adc_move_refusal(topology, nicknames, adc_stopped=safety.adc_stopped)
    if refusal is None:
        return []
    return [Gate("adc", refusal)]


def _server(topology: Topology, store_dn: str):  # type: ignore[no-untyped-def]
    try:
        return topology.server_of(store_dn)
    except ExdirError:
        return None


# --- one holder per name ------------------------------------------------------------

def _named_values(plan: Plan) -> list[tuple[str, str, str]]:
    """(entry's DN before the plan, step's DN, legacyExchangeDN value) for each
    legacyExchangeDN or X500 proxy the plan gives an object."""
    out: list[tuple[str, str, str]] = []
    for change, origin in zip(plan.changes, plan.origins()):
        for attribute, values in _added(change):
            for v in values:
                form = _form(attribute, v)
                if form is not None:
                    out.append((origin, change.dn, form[1]))
    return out


def _key(attribute: str, value: str) -> str:
    """A text value as the directory compares it (exdir.values.key)."""
    return str(vals.key(attribute, value))


def _legacy(value: str) -> str:
    """A legacyExchangeDN value (or an X500 proxy's) as Active Directory compares it."""
    return _key("legacyExchangeDN", value)


def _added(change: Change) -> Iterable[tuple[str, Sequence[Value]]]:
    if isinstance(change, Modify):
        return [(m.attribute.lower(), m.values) for m in change.mods if m.op in ("add", "replace")]
    if isinstance(change, Add):
        return [(n.lower(), v) for n, v in change.attributes]
    return []


def _freed(plan: Plan) -> set[tuple[str, str, str]]:
    """(entry key before the plan, form, lower-case legacy value) the plan takes away;
    form is "legacy" (legacyExchangeDN) or "x500" (a proxy): an object that loses its
    X500 still holds the same value as its legacyExchangeDN."""
    out: set[tuple[str, str, str]] = set()
    for change, origin in zip(plan.changes, plan.origins()):
        if not isinstance(change, Modify):
            continue
        for m in change.mods:
            for v in m.values if m.op == "delete" else ():
                form = _form(m.attribute, v)
                if form is not None:
                    out.add((dnu.key(origin), form[0], _legacy(form[1])))
    return out


def _form(attribute: str, value: Value) -> tuple[str, str] | None:
    """("legacy" | "x500", the legacyExchangeDN value) of a value, or None."""
    if not isinstance(value, str):
        return None
    if attribute.lower() == "legacyexchangedn":
        return "legacy", value
    if attribute.lower() == "proxyaddresses" and value[:5].upper() == "X500:":
        return "x500", value[5:]
    return None


def _holders(directory: Directory, wanted: Mapping[str, tuple[str, str, str]]
             ) -> Iterator[Entry]:
    """Objects holding any of the values (wanted: by _legacy of each, the plan's first
    (origin, step DN, value) giving it) as
    legacyExchangeDN or X500 proxy: chunked OR filters, or for many values one read of
    every holder, each kept only while it is looked at (at 100,000 values a list of
    the holders was 120 MB of the dry run)."""
    attributes = ("legacyExchangeDN", "proxyAddresses")
    if len(wanted) > _INDEX_FROM:
        for e in directory.search_partitions(
                "(|(legacyExchangeDN=*)(proxyAddresses=X500:*))", attributes):
            if any(_legacy(v) in wanted for _, v in _legacy_forms(e)):
                yield e
        return
    values = sorted((item[2] for item in wanted.values()), key=str.lower)  # as spelled
    for i in range(0, len(values), _CHUNK):
        terms = "".join(f"(legacyExchangeDN={escape_filter_chars(v)})"
                        f"(proxyAddresses=X500:{escape_filter_chars(v)})"
                        for v in values[i:i + _CHUNK])
        yield from directory.search_partitions(f"(|{terms})", attributes)


def _legacy_forms(entry: Entry) -> list[tuple[str, str]]:
    return [f for f in (_form("legacyExchangeDN", v) for v in entry.texts("legacyExchangeDN"))
            if f] + [f for f in (_form("proxyAddresses", p) for p in entry.texts("proxyAddresses"))
                     if f]


def _unique_gate(directory: Directory, plan: Plan,
                 named: list[tuple[str, str, str]] | None = None) -> list[Gate]:
    """No value the plan gives may be held, in either form, by another object.

    Holders are read before the plan runs, so they are named by their DNs before it:
    the plan's entry is the holder when its DN before the plan is the holder's, or,
    for a rename already done by an earlier run, when the step's DN is, unless that
    name is another entry's before the plan (a plan that renames one object away and
    another onto its name is not given the first one's values).

    named: _named_values(plan) where the caller has it.  Held per value: the one name
    of the entry getting it (a set only for the rare value two names get), and the
    first (origin, step DN, value) with the values that several objects get; at
    100,000 values a set and a list per value were 60 MB of a dry run."""
    if named is None:
        named = _named_values(plan)
    if not named:
        return []
    origin_keys = {dnu.key(o) for o in plan.origins()}
    owners: dict[str, str | set[str]] = {}  # lower value -> name(s) of the plan's entry
    first: dict[str, tuple[str, str, str]] = {}  # lower value -> its first giving
    given: dict[str, list[tuple[str, str, str]]] = {}  # values several objects get
    for item in named:
        origin, step_dn, value = item
        lower = _legacy(value)
        origin_key = dnu.key(origin)
        names = {origin_key}
        if dnu.key(step_dn) not in origin_keys:
            names.add(dnu.key(step_dn))
        held = owners.get(lower)
        if held is None and len(names) == 1:
            owners[lower] = origin_key
        else:
            merged = {held} if isinstance(held, str) else set(held or ())
            owners[lower] = merged | names
        if lower not in first:
            first[lower] = item
        elif dnu.key(first[lower][0]) != origin_key or lower in given:
            given.setdefault(lower, [first[lower]]).append(item)
    del origin_keys
    freed = _freed(plan)
    gates: list[Gate] = []
    for holder in _holders(directory, first):
        key = dnu.key(holder.dn)
        for form, held_value in _legacy_forms(holder):
            lower = _legacy(held_value)
            owner = owners.get(lower)
            if owner is None or (key == owner if isinstance(owner, str) else key in owner) \
                    or (key, form, lower) in freed:
                continue
            gate = Gate("unique", f"{held_value!r} is already held by {holder.dn}: two objects "
                                  "with one legacyExchangeDN or X500 proxy misdeliver mail")
            if gate not in gates:
                gates.append(gate)
    for lower in first:  # in the order the plan first gives each value
        group = given.get(lower)
        if group is None:
            continue
        keys = {dnu.key(o) for o, _, _ in group}
        if len(keys) > 1:
            gates.append(Gate("unique", f"the plan gives {group[0][2]!r} to "
                                        f"{len(keys)} objects: " + "; ".join(
                                            sorted({d for _, d, _ in group})[:3])))
    return gates
