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
from typing import Iterable, Iterator, Sequence

from ldap3.utils.conv import escape_filter_chars

from . import dn as dnu
from . import values as vals
from .checks import adc_move_refusal, blocking, preflight, same_group_move
from .backends.base import Directory, Entry
from .errors import ExdirError
from .findings import Operation
from .legacydn import has_prefix
from .ledger import PlanLedger, legacy_form, legacy_key
from .plan import Plan, Rename
from .readers.topology import read_topology
from .topology import Topology

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
    if not plan.changes:
        return []
    with PlanLedger.of(plan) as ledger:
        if pending is None:
            return evaluate_ledger(directory, ledger, safety, topology)
        chosen = set(pending)
        with PlanLedger.of(Plan(tuple(c for n, c in enumerate(plan.changes, start=1)
                                      if n in chosen))) as mine:
            return evaluate_ledger(directory, ledger, safety, topology, unique=mine)


def evaluate_ledger(directory: Directory, ledger: PlanLedger, safety: Safety = Safety(),
                    topology: Topology | None = None, unique: PlanLedger | None = None
                    ) -> list[Gate]:
    """evaluate() on a plan's ledger: what a dry run that streams its plan asks (the
    plan is never held whole), and what evaluate() asks of a Plan in memory.

    unique: the ledger of the steps the uniqueness gate looks at (default: all)."""
    if ledger.count and directory.read_only:
        return [Gate("read-only", f"{directory.describe()} is a read-only domain controller: "
                                  "it takes no writes (they are referred to a writable DC); "
                                  "give --url a writable DC")]
    mine = unique if unique is not None else ledger
    renames = ledger.renames
    named = ledger.given_values()
    if not renames and not ledger.has_homes and not named:
        return []
    if topology is None:
        try:
            topology = read_topology(directory)
        except ExdirError:
            topology = None  # not an Exchange organisation: no rename or move gate applies
    gates: list[Gate] = []
    renamed: list[_Renamed] = []
    relabelled: list[_Renamed] = []
    if topology is not None:
        gates += _holding_containers(topology, renames)
        renamed = _renamed_containers(topology, renames)
        relabelled = [r for r in _relabelled_containers(topology, ledger)
                      if all(dnu.key(r.dn) != dnu.key(x.dn) for x in renamed)]
    _read(directory, ledger, mine, [r.old_prefix for r in renamed + relabelled])
    if topology is not None:
        held = ledger.kept_under()
        # a new legacyExchangeDN without a rename: a change of prefix when other values
        # sit under the old one (then the rename gates apply); a correction when none do
        renamed += [r for r in relabelled if _stale_gate(ledger, r, held)]
        if renamed:
            gates += _rename_gates(directory, topology, ledger, renamed, safety, held)
        if ledger.has_homes:
            gates += _adc_gate(directory, topology, ledger, safety)
    gates += _unique_gate(directory, mine)
    return gates


_PREFIXED = ("legacyExchangeDN", "msExchHomeServerName")
_HELD = ("legacyExchangeDN", "proxyAddresses")


def _read(directory: Directory, ledger: PlanLedger, mine: PlanLedger,
          prefixes: Sequence[str]) -> None:
    """What the stale and the uniqueness gates look up, read in bulk: the values under
    the old prefixes (into ledger) and the holders of the values the plan gives (into
    mine).  Where the plan gives many values both come from one read of every holder
    (a rename: at 100,000 mailboxes the two reads were 48 s of a 61 s gate check)."""
    unique = sorted({p.lower(): p for p in prefixes if p}.values(), key=str.lower)
    if _read_indexed(directory, ledger, mine, unique):
        return
    terms = "".join(f"({a}={escape_filter_chars(p)}*)" for p in unique for a in _PREFIXED)
    count = mine.given_values()
    if count > _INDEX_FROM:
        for entry in directory.search_partitions(
                f"(|(legacyExchangeDN=*)(proxyAddresses=X500:*){terms})", _HELD + _PREFIXED[1:]):
            mine.note_holder(entry.dn, _legacy_forms(entry))
            if unique:
                ledger.note_under(entry.dn, _under(entry, unique))
        return
    if unique:
        for entry in directory.search_partitions(f"(|{terms})", _PREFIXED):
            ledger.note_under(entry.dn, _under(entry, unique))
    values = sorted(mine.given_spellings(), key=str.lower)  # as spelled
    for i in range(0, len(values), _CHUNK):
        chunk = "".join(f"(legacyExchangeDN={escape_filter_chars(v)})"
                        f"(proxyAddresses=X500:{escape_filter_chars(v)})"
                        for v in values[i:i + _CHUNK])
        for entry in directory.search_partitions(f"(|{chunk})", _HELD):
            mine.note_holder(entry.dn, _legacy_forms(entry))


def _read_indexed(directory: Directory, ledger: PlanLedger, mine: PlanLedger,
                  prefixes: Sequence[str]) -> bool:
    """_read from the store's own index of values (Directory.indexed_values), False where
    it has none: the holders of the values given looked up by key, the values under
    the prefixes by a range of keys, no entry read (a 100,000-mailbox rename's gates on
    a reused index: 12-15 s reading every holder, 8-9 s so).  A key that is not ASCII may compare
    otherwise than its spelling under has_prefix (case folding changes lengths): those
    entries are read."""
    if not all(p.isascii() for p in prefixes):
        return False
    legacy = directory.indexed_values("legacyExchangeDN", keys=mine.given_keys())
    x500 = directory.indexed_values("proxyAddresses",
                                    keys=("x500:" + k for k in mine.given_keys()))
    under = [directory.indexed_values(a, prefixes=[p.lower() for p in prefixes])
             for a in _PREFIXED] if prefixes else []
    if legacy is None or x500 is None or any(u is None for u in under):
        return False
    mine.note_held_rows("legacy", legacy)
    mine.note_held_rows("x500", x500, strip=len("x500:"))
    spelled: dict[str, int] = {}  # DN -> place: entries read for their spelling

    def kept(attribute: str, rows: Iterable[tuple[int, str, str, str]]
             ) -> Iterator[tuple[int, str, str, str, str]]:
        for place, dn, dn_key, key in rows:
            if not key.isascii():
                spelled.setdefault(dn, place)
            elif any(has_prefix(key, p) for p in prefixes):
                yield place, dn, dn_key, attribute, key

    for attribute, rows in zip(_PREFIXED, under):
        ledger.note_keys_under(kept(attribute, rows))  # type: ignore[arg-type]
    if spelled:
        found = directory.read_many(spelled, _PREFIXED)
        for dn, place in spelled.items():
            entry = found.get(dnu.key(dn))
            if entry is not None:
                ledger.note_under(dn, [(a, v) for a, v in _under(entry, prefixes)
                                       if not v.lower().isascii()], place)
    return True


def _under(entry: Entry, prefixes: Sequence[str]) -> list[tuple[str, str]]:
    return [(attribute, value) for attribute in _PREFIXED for value in entry.texts(attribute)
            if any(has_prefix(value, p) for p in prefixes)]


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


def _relabelled_containers(topology: Topology, ledger: PlanLedger) -> list[_Renamed]:
    """The organisation's or a group's legacyExchangeDN changed without a rename: the
    same change of prefix as a rename, with the same gates (lab, one DC, stale values)."""
    org = topology.organization
    owners = {dnu.key(org.dn): ("organisation", org.dn, org.name, org.system_flags)}
    for g in topology.admin_groups:
        owners[dnu.key(g.dn)] = ("administrative group", g.dn, g.name, g.system_flags)
    out: list[_Renamed] = []
    for key, old, new in ledger.relabels(owners):
        owner = owners[key]
        if not vals.equal("legacyExchangeDN", old, new):
            out.append(_Renamed(owner[0], owner[1], owner[2], owner[3], old, new))
    return out


def _rename_gates(directory: Directory, topology: Topology, ledger: PlanLedger,
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
        gates += _stale_gate(ledger, r, held)
    return gates


def _stale_gate(ledger: PlanLedger, r: _Renamed, held: list[tuple[str, str, str]]
                ) -> list[Gate]:
    """Values under the old prefix that the plan does not rewrite: the plan is stale
    (made before they existed) or incomplete (cut by hand).  `held` is what the
    directory holds under the old prefixes that the plan neither deletes nor replaces
    (PlanLedger.kept_under: a fresh rename plan rewrites nearly all)."""
    missed = list(ledger.written_under(r.old_prefix))
    missed += [f"{dn} ({attribute})" for dn, attribute, value in held
               if has_prefix(value, r.old_prefix)]
    if not missed:
        return []
    shown = "; ".join(missed[:3]) + (" …" if len(missed) > 3 else "")
    return [Gate("stale", f"the plan is stale: {len(missed)} value(s) under {r.old_prefix} "
                          f"that it does not rewrite ({shown}); make the plan again")]


# --- moves ----------------------------------------------------------------------------

def _adc_gate(directory: Directory, topology: Topology, ledger: PlanLedger,
              safety: Safety) -> list[Gate]:
    """Per mailbox over the whole plan (a move split over two steps is one move): the
    first homeMDB it loses, the last it gains."""
    same_group: list[str] = []
    servers: dict[str, object] = {}  # a plan names few stores: each looked up once

    def server(store: str):  # type: ignore[no-untyped-def]
        if store not in servers:
            servers[store] = _server(topology, store)
        return servers[store]

    for _, lost, new, name in ledger.homes():
        if same_group_move(server(lost), server(new)):  # type: ignore[arg-type]
            same_group.append(name)
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

def _legacy_forms(entry: Entry) -> list[tuple[str, str]]:
    return [f for f in (legacy_form("legacyExchangeDN", v) for v in entry.texts("legacyExchangeDN"))
            if f] + [f for f in (legacy_form("proxyAddresses", p)
                                 for p in entry.texts("proxyAddresses")) if f]


def _unique_gate(directory: Directory, ledger: PlanLedger) -> list[Gate]:
    """No value the plan gives may be held, in either form, by another object (the
    holders were read into the ledger by _read; PlanLedger.taken says which of them
    the plan's own entries are), nor given by the plan to two objects."""
    gates: list[Gate] = []
    for value, holder in _spelled(directory, ledger.taken()):
        gate = Gate("unique", f"{value!r} is already held by {holder}: two objects "
                              "with one legacyExchangeDN or X500 proxy misdeliver mail")
        if gate not in gates:
            gates.append(gate)
    for value, count, dns in ledger.shared():
        gates.append(Gate("unique", f"the plan gives {value!r} to {count} objects: "
                                    + "; ".join(dns[:3])))
    return gates


def _spelled(directory: Directory, taken: Sequence[tuple[str | None, str, str, str]]
             ) -> Iterator[tuple[str, str]]:
    """(value as held, holder) of PlanLedger.taken's rows, the values noted by key alone
    (_read_indexed) spelled from their holders, read for it (a handful: only the
    values the gate refuses), each holder's in the order it holds them."""
    unspelled = [dn for value, dn, _, _ in taken if value is None]
    found = directory.read_many(unspelled, _HELD) if unspelled else {}
    i = 0
    while i < len(taken):
        value, dn, form, low = taken[i]
        if value is not None:
            yield value, dn
            i += 1
            continue
        wanted: set[tuple[str, str]] = set()
        while i < len(taken) and taken[i][0] is None and taken[i][1] == dn:
            wanted.add((taken[i][2], taken[i][3]))
            i += 1
        entry = found.get(dnu.key(dn))
        forms = [(f, v) for f, v in (_legacy_forms(entry) if entry is not None else ())
                 if (f, legacy_key(v)) in wanted]
        yield from ((v, dn) for _, v in forms) if forms else ((k, dn) for _, k in sorted(wanted))
