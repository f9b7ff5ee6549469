"""The safety preflight: what `exdir check` prints and what every rename apply obeys.

legacydn.exe was supported only in a lab with a single domain controller: with
two, a rename replicates against changes made elsewhere.  A server that is not
Active Directory (nor an LDIF lab) may hold anything, so it needs --lab; mixed
mode and Active Directory Connector agreements are worth a warning before any
write.
"""
from __future__ import annotations

from typing import Protocol

from . import dn as dnu
from .findings import RENAMES, Finding, Operation
from .topology import ExchangeServer, Topology, renameable


class DirectoryFacts(Protocol):
    """What the preflight knows of the directory: its rootDSE facts, read when it was
    opened (every backend has them; a test can give a small object)."""

    @property
    def backend(self) -> str: ...  # "ldif" or "ldap"

    @property
    def is_active_directory(self) -> bool: ...

    def describe(self) -> str: ...


def preflight(directory: DirectoryFacts, topology: Topology) -> list[Finding]:
    """Every finding for this directory, blocking ones first."""
    found: list[Finding] = []
    dcs = topology.domain_controllers
    if len(dcs) > 1:
        listed = ", ".join(f"{d.name} ({d.site}{', read-only' if d.read_only else ''})"
                           for d in dcs)
        found.append(Finding(
            "several-dcs",
            f"{len(dcs)} domain controllers: {listed}. Renames are only safe with a single "
            "domain controller (as legacydn.exe required): a rename replicates against "
            "changes made on the others", "blocks", blocks=RENAMES))
    elif not dcs and directory.backend != "ldif":
        found.append(Finding(
            "no-dcs",
            "no domain controller (nTDSDSA) found under CN=Sites: the single-DC rule cannot be "
            "checked", "blocks", blocks=RENAMES))
    if directory.backend == "ldap" and not directory.is_active_directory:
        found.append(Finding(
            "not-ad",
            f"{directory.describe()} is not Active Directory (its rootDSE lacks capability "
            "1.2.840.113556.1.4.800): renames are allowed only with --lab", "blocks",
            blocks=RENAMES, lab_lifts=True))
    org = topology.organization
    for what, name, dn, flags in [("organisation", org.name, org.dn, org.system_flags)] + [
            ("administrative group", g.name, g.dn, g.system_flags)
            for g in topology.admin_groups]:
        if not renameable(flags):
            op = Operation.RENAME_ORG if what == "organisation" else Operation.RENAME_ADMIN_GROUP
            found.append(Finding(
                "no-rename-flag",
                f"the {what} {name!r} lacks FLAG_CONFIG_ALLOW_RENAME in systemFlags "
                f"({'none' if flags is None else flags}): Active Directory refuses to rename "
                f"{dnu.rdn(dn)}", "blocks", blocks=(op,), subject=dn))
    if org.mixed_mode is None:
        found.append(Finding("mixed-mode-unknown", mode_unknown(topology), "warning"))
    if org.mixed_mode:
        found.append(Finding(
            "mixed-mode",
            f"the organisation {org.name!r} is in mixed mode: Exchange 5.5 servers and the "
            "Active Directory Connector may still copy recipients between the directories",
            "warning"))
    if topology.agreements:
        names = "; ".join(f"{a.name} ({a.direction})" for a in topology.agreements)
        found.append(Finding(
            "adc-agreements",
            f"{len(topology.agreements)} Active Directory Connector agreement(s): {names}. "
            "An agreement can write old values back over a change; stop the ADC first "
            "(a move between servers of one administrative group is refused in mixed mode "
            "unless --adc-stopped)", "warning"))
    found.sort(key=lambda f: f.severity != "blocks")
    return found


def mode_unknown(topology: Topology) -> str:
    """The warning for an organisation without msExchMixedMode: what exdir assumes."""
    org = topology.organization
    assumed = ("with connection agreements present exdir assumes it may be mixed (a move "
               "between servers of one administrative group needs --adc-stopped)"
               if topology.agreements else
               "no connection agreement exists, so no ADC can write back and moves are not "
               "held; set msExchMixedMode (FALSE once the last Exchange 5.5 server is gone)")
    return (f"msExchMixedMode is not set on the organisation {org.name!r}: whether it is in "
            f"mixed mode is unknown; {assumed}")


def blocking(findings: list[Finding], operation: Operation, *, subject: str | None = None,
             lab: bool) -> list[Finding]:
    """The findings that stop `operation` on `subject` (the DN of the organisation or the
    administrative group renamed; None: whichever), given the administrator's `lab` word."""
    out = []
    for f in findings:
        if f.severity != "blocks" or operation not in f.blocks or (f.lab_lifts and lab):
            continue
        if f.subject is not None and subject is not None and dnu.key(f.subject) != dnu.key(subject):
            continue
        out.append(f)
    return out


def same_group_move(source: ExchangeServer | None, target: ExchangeServer | None) -> bool:
    """A move between two servers of one administrative group: the move an ADC agreement
    can undo in a mixed organisation (KB advice: stop the ADC first)."""
    return (source is not None and target is not None
            and dnu.key(source.dn) != dnu.key(target.dn)
            and dnu.key(source.admin_group or "") == dnu.key(target.admin_group or ""))


def adc_move_refusal(topology: Topology, same_group_moves: list[str], *,
                     adc_stopped: bool) -> str | None:
    """Why a move must be refused for the ADC, or None.

    In a mixed organisation with connection agreements, an agreement can write the
    old homeMDB back over a move between servers of the same administrative group
    (the advice was to stop the ADC for those moves).

    An organisation without msExchMixedMode (mode unknown) is taken as mixed when
    connection agreements exist: a gate that refuses in mixed mode must not let an
    unknown mode through where an ADC could write back.  Without agreements nothing
    can write back, so an unknown mode holds nothing (the preflight and the move
    warn, mode_unknown)."""
    if adc_stopped or not same_group_moves:
        return None
    org = topology.organization
    if not (org.might_be_mixed and topology.agreements):
        return None
    names = "; ".join(a.name for a in topology.agreements)
    shown = ", ".join(same_group_moves[:5]) + (" …" if len(same_group_moves) > 5 else "")
    mode = ("is in mixed mode" if org.mixed_mode else
            "may be in mixed mode (msExchMixedMode is not set)")
    return (f"the organisation {mode} with connection agreements ({names}), and "
            f"{len(same_group_moves)} mailbox(es) move between servers of one administrative "
            f"group ({shown}): an agreement can write the old home back. Stop the ADC and "
            "give --adc-stopped")
