"""One library call per command: read (exdir.readers), then plan or check.

The commands in commands/ parse options, open a directory, call one function
here and print what it returns; the planners and checks it calls import no
backend, so every rule is tested with model objects alone.  The plans returned
are not applied here: `exdir.apply.run` meets the safety gates on every path.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterable, Sequence

from . import delegates, imf, replication, x500, x500_history
from .checks import mode_unknown, preflight
from .errors import InputError
from .backends.base import Directory, Entry
from .findings import Finding
from .health import audit as audit_findings
from .health import mailbox_findings, reverted_findings
from .legacydn import check_value
from .move import (MovePlan, Target, check_home_mta, home_mta_dn, plan_move, resolve_mailboxes,
                   resolve_store)
from .plan import Plan
from .readers.recipients import (find_object, holders, read_affected, read_delegations,
                                 read_mailboxes, read_migration_side,
                                 read_moved, read_recipients, read_value_context)
from .readers.replication import read_attids
from .readers.topology import read_topology
from .gates import Gate, Safety, evaluate_ledger
from .ledger import PlanLedger, Step, in_order
from .rename import RenameScope, admin_group_scope, org_scope, plan_set, rename_steps
from .topology import Topology


@dataclass
class Planned:
    """A plan and what the user should read beside it (warnings, skipped objects).

    A planner that streams gives `steps` instead of a Plan: its changes as it makes
    them, each with its sort key or None (exdir.ledger).  They are taken once, either
    whole as `.plan` (what an apply checks before its first write) or into a ledger
    (`.ledger()`, what a dry run prints and gates without holding the plan)."""

    _plan: Plan | None = None
    notes: list[str] = field(default_factory=list)
    steps: Iterable[Step] | None = None

    @property
    def plan(self) -> Plan:
        if self._plan is None:
            self._plan = Plan(tuple(in_order(self._take())))
        return self._plan

    def ledger(self) -> PlanLedger:
        """The plan's ledger, with each step rendered (a dry run's output)."""
        ledger = PlanLedger(keep_text=True)
        try:
            if self._plan is not None:
                for change, origin in zip(self._plan.changes, self._plan.origins()):
                    ledger.add(change, origin=origin)
            else:
                for order, change in self._take():
                    ledger.add(change, order)
            ledger.finish()
        except BaseException:
            ledger.close()
            raise
        return ledger

    def _take(self) -> Iterable[Step]:
        steps, self.steps = self.steps, None
        if steps is None:
            raise RuntimeError("the planner's steps were taken already")
        return steps


@dataclass
class Checked:
    """What a check found, with the topology it found it in."""

    topology: Topology
    findings: list[Finding]
    warnings: list[str] = field(default_factory=list)  # what the check could not know


# --- checks ----------------------------------------------------------------------------------

def check(directory: Directory) -> Checked:
    """`exdir check`: the safety preflight."""
    topology = read_topology(directory)
    return Checked(topology, preflight(directory, topology))


def adc_check(directory: Directory, moved: Sequence[dict[str, object]] | None = None
              ) -> Checked:
    """`exdir adc check`: split and dangling mailboxes, and with a move report (read by
    exdir.health.read_move_report) the moved mailboxes that changed back."""
    topology = read_topology(directory)
    findings = mailbox_findings(topology, read_recipients(directory))
    if moved is not None:
        findings += reverted_findings(moved, read_moved(directory, moved), topology)
    return Checked(topology, findings, _mode_warnings(topology))


def _mode_warnings(topology: Topology) -> list[str]:
    """An organisation whose msExchMixedMode is not set: unknown, never taken as native."""
    return [mode_unknown(topology)] if topology.organization.mixed_mode is None else []


def audit(directory: Directory) -> Checked:
    """`exdir legacydn audit`."""
    topology = read_topology(directory)
    return Checked(topology, audit_findings(topology, lambda: read_recipients(directory)))


@dataclass
class Preview:
    """A dry run's plan in its ledger (rendered, in order) and the gates it fails here."""

    ledger: PlanLedger
    blocked: list[Gate]

    def __enter__(self) -> "Preview":
        return self

    def __exit__(self, *exc: object) -> None:
        self.ledger.close()


def preview(directory: Directory, planned: Planned, safety: Safety = Safety()) -> Preview:
    """What a dry run shows: the planner's steps taken into a ledger as they come (the
    plan is never held whole) and the safety gates met on that ledger, by the same
    code that meets them before an apply (exdir.gates)."""
    ledger = planned.ledger()
    try:
        return Preview(ledger, evaluate_ledger(directory, ledger, safety))
    except BaseException:
        ledger.close()
        raise


# --- renames ---------------------------------------------------------------------------------

def rename_org(directory: Directory, new_name: str, *, keep_x500: bool = True) -> Planned:
    """`exdir rename org NEW_NAME`: the plan; refused (Refused, InputError) where the
    organisation cannot be renamed at all.  The gates that depend on where the plan is
    applied (--lab, one DC) are met by the apply engine."""
    return _rename(directory, lambda t: org_scope(t, new_name), keep_x500)


def rename_admin_group(directory: Directory, old: str, new: str, *,
                       keep_x500: bool = True) -> Planned:
    """`exdir rename admin-group OLD NEW`: the plan (see rename_org)."""
    return _rename(directory, lambda t: admin_group_scope(t, old, new), keep_x500)


def _rename(directory: Directory, make_scope: Callable[[Topology], RenameScope],
            keep_x500: bool) -> Planned:
    topology = read_topology(directory)
    scope = make_scope(topology)
    notes = [f"warning: {f.message}" for f in preflight(directory, topology)
             if f.severity == "warning"]
    references = not directory.follows_dn_references
    entries = read_affected(directory, scope, references=references)
    return Planned(notes=notes, steps=rename_steps(scope, entries, directory.naming,
                                                   keep_x500=keep_x500,
                                                   rewrite_references=references))


def set_legacy_dn(directory: Directory, obj: str, new_value: str, *,
                  keep_x500: bool = True) -> Plan:
    """`exdir legacydn set OBJECT NEW_VALUE`."""
    check_value(new_value)
    entry = find_object(directory, obj)
    context = read_value_context(directory, entry, new_value)
    return plan_set(entry, new_value, context, directory.naming, keep_x500=keep_x500)


# --- moves -----------------------------------------------------------------------------------

@dataclass
class PlannedMove(Planned):
    """A move plan, its per-mailbox records and the target."""

    moved: MovePlan | None = None
    target: Target | None = None


def move(directory: Directory, identities: Sequence[str], to: str, *,
         assume_version: str | None = None, keep_legacydn: bool = False,
         home_mta: str | None = None) -> PlannedMove:
    """`exdir move MAILBOX... --to STORE [--home-mta DN]`: the plan; the ADC gate is met
    by the apply engine (a move plan given to `exdir apply` meets it too)."""
    topology = read_topology(directory)
    mta = None
    if home_mta is not None:
        found = directory.read(home_mta_dn(home_mta), ("objectClass",))
        mta = check_home_mta(topology, home_mta, found)
    target = resolve_store(topology, to, assume_version, mta)
    resolved, notes = resolve_mailboxes(identities, read_mailboxes(directory, identities))
    notes += [f"warning: {w}" for w in _mode_warnings(topology)]
    moved = plan_move(topology, resolved, target, directory.naming, keep_legacydn=keep_legacydn)
    skipped = [m for m in moved.moves if not m.planned]
    if skipped:
        notes.append(f"{len(skipped)} mailbox(es) already in {target.label}: skipped")
    return PlannedMove(moved.plan, notes, moved=moved, target=target)


# --- X500 proxies ----------------------------------------------------------------------------

def x500_add(directory: Directory, obj: str, value: str) -> Planned:
    """`exdir x500 add OBJECT VALUE`: VALUE an IMCEAEX address, `X500:…` or a bare value."""
    legacy = check_value(x500.legacy_value(value))
    entry = find_object(directory, obj)
    plan = x500.plan_add(entry, legacy, holders(directory, legacy))
    return Planned(plan, [] if plan else [f"{entry.dn} holds 'X500:{legacy}' already"])


def x500_remove(directory: Directory, obj: str, value: str) -> Planned:
    """`exdir x500 remove OBJECT VALUE`."""
    legacy = x500.legacy_value(value)
    entry = find_object(directory, obj)
    plan = x500.plan_remove(entry, legacy)
    return Planned(plan, [] if plan else [f"{entry.dn} holds no proxy X500:{legacy}"])


def x500_history_match(target: Directory, source: Directory, *, keys: Sequence[str] = (),
                       only: Sequence[str] | None = None) -> x500_history.Matching:
    """`exdir x500 sync|check --from SOURCE`: each target recipient matched to its source
    (one read of each side, matched in memory), with the X500 values it lacks; its
    .plan is what sync applies."""
    chosen = x500_history.match_keys(keys)
    return x500_history.match(read_migration_side(target), read_migration_side(source),
                              chosen, only)


def find_holders(directory: Directory, address: str) -> tuple[str, list[Entry]]:
    """`exdir x500 find ADDRESS`: the legacyExchangeDN it stands for, and who holds it."""
    value = x500.legacy_value(address)
    return value, holders(directory, value)


# --- delegates ----------------------------------------------------------------------------------

def delegates_audit(directory: Directory) -> Checked:
    """`exdir delegates audit`: every publicDelegates value naming nobody who can act."""
    topology = read_topology(directory)
    owners, named = read_delegations(directory)
    return Checked(topology, delegates.audit(owners, named))


def delegates_remove(directory: Directory, owner: str, delegate: str) -> Planned:
    """`exdir delegates remove OWNER DELEGATE`: the plan removing one value."""
    entry = find_object(directory, owner)  # its values read with it (rename.READ)
    plan = delegates.plan_remove(entry, delegate)
    return Planned(plan, [] if plan else [f"{entry.dn} has no delegate {delegate}"])


# --- the Intelligent Message Filter ------------------------------------------------------------

def imf_show(directory: Directory) -> imf.ImfSettings:
    """`exdir imf show`: the filter's thresholds and what they cannot tell on their own."""
    return imf.read_settings(directory, read_topology(directory))


def imf_set(directory: Directory, *, gateway: int | None = None, store: int | None = None,
            enabled: bool | None = None) -> Planned:
    """`exdir imf set`: the plan; nothing to change is a note, not an error."""
    plan = imf.plan_set(directory, read_topology(directory), gateway=gateway, store=store,
                        enabled=enabled)
    return Planned(plan, [] if plan else ["the IMF settings hold these values already"])


# --- replication -------------------------------------------------------------------------------

def replication_check(directory: Directory, plan: Plan, open_dc: replication.Opener, *,
                      dc_urls: Sequence[str] = (), base_url: str | None = None,
                      wait: float = 0.0) -> replication.Report:
    """`exdir replication check PLAN.ldif`: which of the plan's steps every DC shows.

    The DCs are dc_urls where given, else every nTDSDSA of the topology read from
    directory, at its server's dNSHostName with base_url's scheme and port (no
    base_url, an LDIF file: every DC is that file, url "").  open_dc opens one (the caller's
    credentials); a DC it cannot open is named in the report, not fatal."""
    topology = read_topology(directory)
    if dc_urls:
        dcs = [replication.Dc(url, url) for url in dc_urls]
    else:
        dcs = []
        for d in topology.domain_controllers:
            if base_url is None:
                url = ""  # an LDIF export: every DC in it is the file
            elif d.dns_host_name:
                url = replication.dc_url(base_url, d.dns_host_name)
            else:
                raise InputError(f"domain controller {d.name} has no dNSHostName: name the "
                                 "DCs with --dc URL")
            dcs.append(replication.Dc(d.name, url, d.read_only))
        if not dcs:
            raise InputError("the topology lists no domain controller: name them with --dc URL")
    written = {a for e in replication.expectations(plan) for a in e.attributes}
    attids = read_attids(directory, sorted(written))
    dc_names = {d.invocation_id: d.name for d in topology.domain_controllers
                if d.invocation_id}
    return replication.check_all(dcs, plan, open_dc, wait=wait, attids=attids,
                                 dc_names=dc_names,
                                 follows_references=directory.follows_dn_references)
