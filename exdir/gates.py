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
- a plan that gives an object a legacyExchangeDN or an X500 proxy meets the
  uniqueness gate: no other object may hold that value in either form, or mail
  to it is misdelivered.

Each gate reads what it needs in bulk (one search per partition, or chunked
filters), never one search per step.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

from ldap3.utils.conv import escape_filter_chars

from . import dn as dnu
from .checks import adc_move_refusal, blocking, preflight
from .directory import Directory, Entry
from .errors import ExdirError
from .legacydn import has_prefix
from .plan import Add, Change, Modify, Plan, Rename, Value
from .topology import Topology, read_topology

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

    code: str  # rename | stale | adc | unique
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
    renames = [c for c in plan.changes if isinstance(c, Rename)]
    homes = [c for c in plan.changes if isinstance(c, Modify)
             and any(m.attribute.lower() == "homemdb" for m in c.mods)]
    if not renames and not homes and not _named_values(plan):
        return []
    if topology is None and (renames or homes):
        try:
            topology = read_topology(directory)
        except ExdirError:
            topology = None  # not an Exchange organisation: no rename or move gate applies
    gates: list[Gate] = []
    renamed = _renamed_containers(topology, renames) if topology else []
    if renamed and topology is not None:
        gates += _rename_gates(directory, topology, plan, renamed, safety)
    if homes and topology is not None:
        gates += _adc_gate(directory, topology, homes, safety)
    if not renamed:
        writes = plan if pending is None else Plan(tuple(
            c for n, c in enumerate(plan.changes, start=1) if n in set(pending)))
        gates += _unique_gate(directory, writes)
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


def _rename_gates(directory: Directory, topology: Topology, plan: Plan,
                  renamed: list[_Renamed], safety: Safety) -> list[Gate]:
    gates: list[Gate] = []
    if not safety.lab:
        gates.append(Gate("rename", "renames apply only in a lab: add --lab (legacydn.exe was "
                                    "supported only there)"))
    findings = preflight(directory, topology)
    for r in renamed:
        operation = "rename org" if r.what == "organisation" else f"rename admin-group {r.name}"
        for f in blocking(findings, operation, lab=safety.lab):
            if Gate("rename", f.message) not in gates:  # one finding may stop two renames
                gates.append(Gate("rename", f.message))
        gates += _stale_gate(directory, plan, r)
    return gates


def _stale_gate(directory: Directory, plan: Plan, r: _Renamed) -> list[Gate]:
    """Values under the old prefix that the plan does not rewrite: the plan is stale
    (made before they existed) or incomplete (cut by hand)."""
    esc = escape_filter_chars(r.old_prefix)
    flt = f"(|(legacyExchangeDN={esc}*)(msExchHomeServerName={esc}*))"
    deleted: set[tuple[str, str, str]] = set()
    for change, origin in zip(plan.changes, plan.origins()):
        if isinstance(change, Modify):
            for mod in change.mods:
                if mod.op in ("delete", "replace"):
                    for v in mod.values:
                        if isinstance(v, str):
                            deleted.add((dnu.key(origin), mod.attribute.lower(), v.lower()))
                    if mod.op == "delete" and not mod.values or mod.op == "replace":
                        deleted.add((dnu.key(origin), mod.attribute.lower(), "*"))
        # values the plan itself gives (an add after the rename, run again): its own
        for attribute, values in _added(change):
            for v in values:
                if isinstance(v, str):
                    deleted.add((dnu.key(change.dn), attribute, v.lower()))
    missed: list[str] = []
    for entry in directory.search_partitions(flt, ("legacyExchangeDN", "msExchHomeServerName")):
        key = dnu.key(entry.dn)
        for attribute in ("legacyExchangeDN", "msExchHomeServerName"):
            for value in entry.texts(attribute):
                if not has_prefix(value, r.old_prefix):
                    continue
                if ((key, attribute.lower(), value.lower()) in deleted
                        or (key, attribute.lower(), "*") in deleted):
                    continue
                missed.append(f"{entry.dn} ({attribute})")
    if not missed:
        return []
    shown = "; ".join(missed[:3]) + (" …" if len(missed) > 3 else "")
    return [Gate("stale", f"the plan is stale: {len(missed)} value(s) under {r.old_prefix} "
                          f"that it does not rewrite ({shown}); make the plan again")]


# --- moves ----------------------------------------------------------------------------

def _adc_gate(directory: Directory, topology: Topology, homes: Sequence[Modify],
              safety: Safety) -> list[Gate]:
    same_group: list[str] = []
    for change in homes:
        old = [v for m in change.mods if m.attribute.lower() == "homemdb" and m.op == "delete"
               for v in m.values if isinstance(v, str)]
        new = [v for m in change.mods if m.attribute.lower() == "homemdb"
               and m.op in ("add", "replace") for v in m.values if isinstance(v, str)]
        if not old or not new:
            continue
        source, target = _server(topology, old[0]), _server(topology, new[0])
        if (source is not None and target is not None
                and dnu.key(source.dn) != dnu.key(target.dn)
                and dnu.key(source.admin_group or "") == dnu.key(target.admin_group or "")):
            same_group.append(change.dn)
    if safety.adc_stopped or not same_group:
        return []
    # named as administrators name them: by mailNickname (one bulk read)
    found = directory.read_many(same_group, ("mailNickname",))
    names = [(found.get(dnu.key(d)) and found[dnu.key(d)].text("mailNickname"))
             or dnu.rdn_value(d) for d in same_group]
    refusal = adc_move_refusal(topology, names, adc_stopped=safety.adc_stopped)
    if refusal is None:
        return []
    return [Gate("adc", refusal.replace("; nothing was planned", ""))]


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
                if not isinstance(v, str):
                    continue
                if attribute == "legacyexchangedn":
                    out.append((origin, change.dn, v))
                elif attribute == "proxyaddresses" and v[:5].upper() == "X500:":
                    out.append((origin, change.dn, v[5:]))
    return out


def _added(change: Change) -> Iterable[tuple[str, Sequence[Value]]]:
    if isinstance(change, Modify):
        return [(m.attribute.lower(), m.values) for m in change.mods if m.op in ("add", "replace")]
    if isinstance(change, Add):
        return [(n.lower(), v) for n, v in change.attributes]
    return []


def _freed(plan: Plan) -> set[tuple[str, str]]:
    """(entry key before the plan, lower-case legacy value) the plan takes away."""
    out: set[tuple[str, str]] = set()
    for change, origin in zip(plan.changes, plan.origins()):
        if not isinstance(change, Modify):
            continue
        for m in change.mods:
            for v in m.values if m.op == "delete" else ():
                if not isinstance(v, str):
                    continue
                if m.attribute.lower() == "legacyexchangedn":
                    out.add((dnu.key(origin), v.lower()))
                elif m.attribute.lower() == "proxyaddresses" and v[:5].upper() == "X500:":
                    out.add((dnu.key(origin), v[5:].lower()))
    return out


def _holders(directory: Directory, values: list[str]) -> list[Entry]:
    """Objects holding any of the values as legacyExchangeDN or X500 proxy: chunked OR
    filters, or for many values one read of every holder."""
    attributes = ("legacyExchangeDN", "proxyAddresses")
    if len(values) > _INDEX_FROM:
        wanted = {v.lower() for v in values}
        return [e for e in directory.search_partitions(
                    "(|(legacyExchangeDN=*)(proxyAddresses=X500:*))", attributes)
                if any(v.lower() in wanted for v in _legacy_forms(e))]
    out: list[Entry] = []
    for i in range(0, len(values), _CHUNK):
        terms = "".join(f"(legacyExchangeDN={escape_filter_chars(v)})"
                        f"(proxyAddresses=X500:{escape_filter_chars(v)})"
                        for v in values[i:i + _CHUNK])
        out += directory.search_partitions(f"(|{terms})", attributes)
    return out


def _legacy_forms(entry: Entry) -> list[str]:
    return entry.texts("legacyExchangeDN") + [p[5:] for p in entry.texts("proxyAddresses")
                                              if p[:5].upper() == "X500:"]


def _unique_gate(directory: Directory, plan: Plan) -> list[Gate]:
    named = _named_values(plan)
    if not named:
        return []
    freed = _freed(plan)
    owners: dict[str, set[str]] = {}  # lower value -> names of the plan's entry getting it
    for origin, step_dn, value in named:
        owners.setdefault(value.lower(), set()).update((dnu.key(origin), dnu.key(step_dn)))
    gates: list[Gate] = []
    for holder in _holders(directory, sorted({v for _, _, v in named}, key=str.lower)):
        key = dnu.key(holder.dn)
        for held in _legacy_forms(holder):
            owner = owners.get(held.lower())
            if owner is None or key in owner or (key, held.lower()) in freed:
                continue
            gates.append(Gate("unique", f"{held!r} is already held by {holder.dn}: two objects "
                                        "with one legacyExchangeDN or X500 proxy misdeliver mail"))
    for value, group in _group(named).items():
        keys = {dnu.key(o) for o, _, _ in group}
        if len(keys) > 1:
            gates.append(Gate("unique", f"the plan gives {group[0][2]!r} to "
                                        f"{len(keys)} objects: " + "; ".join(
                                            sorted({d for _, d, _ in group})[:3])))
    return gates


def _group(named: list[tuple[str, str, str]]) -> dict[str, list[tuple[str, str, str]]]:
    out: dict[str, list[tuple[str, str, str]]] = {}
    for item in named:
        out.setdefault(item[2].lower(), []).append(item)
    return out

