"""The safety preflight: what `exdir check` prints and what every rename apply obeys.

legacydn.exe was supported only in a lab with a single domain controller: with
two, a rename replicates against changes made elsewhere.  A server that is not
Active Directory (nor an LDIF lab) may hold anything, so it needs --lab; mixed
mode and Active Directory Connector agreements are worth a warning before any
write.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from . import dn as dnu
from .backends.base import Directory
from .topology import ALLOW_RENAME, Topology

Severity = Literal["blocks", "warning"]
RENAME = "rename"  # rename org, rename admin-group
RENAME_WITHOUT_LAB = "rename without --lab"


@dataclass(frozen=True)
class Finding:
    """One fact the preflight found, in plain words, and the operations it stops."""

    code: str
    severity: Severity
    message: str
    blocks: tuple[str, ...] = field(default_factory=tuple)


def preflight(directory: Directory, topology: Topology) -> list[Finding]:
    """Every finding for this directory, blocking ones first."""
    found: list[Finding] = []
    dcs = topology.domain_controllers
    if len(dcs) > 1:
        listed = ", ".join(f"{d.name} ({d.site}{', read-only' if d.read_only else ''})"
                           for d in dcs)
        found.append(Finding(
            "several-dcs", "blocks",
            f"{len(dcs)} domain controllers: {listed}. Renames are only safe with a single "
            "domain controller (as legacydn.exe required): a rename replicates against "
            "changes made on the others", (RENAME,)))
    elif not dcs and directory.backend != "ldif":
        found.append(Finding(
            "no-dcs", "blocks",
            "no domain controller (nTDSDSA) found under CN=Sites: the single-DC rule cannot be "
            "checked", (RENAME,)))
    if directory.backend == "ldap" and not directory.is_active_directory:
        found.append(Finding(
            "not-ad", "blocks",
            f"{directory.describe()} is not Active Directory (its rootDSE lacks capability "
            "1.2.840.113556.1.4.800): renames are allowed only with --lab",
            (RENAME_WITHOUT_LAB,)))
    org = topology.organization
    for what, name, dn, flags in [("organisation", org.name, org.dn, org.system_flags)] + [
            ("administrative group", g.name, g.dn, g.system_flags)
            for g in topology.admin_groups]:
        if flags is None or not flags & ALLOW_RENAME:
            op = "rename org" if what == "organisation" else f"rename admin-group {name}"
            found.append(Finding(
                "no-rename-flag", "blocks",
                f"the {what} {name!r} lacks FLAG_CONFIG_ALLOW_RENAME in systemFlags "
                f"({'none' if flags is None else flags}): Active Directory refuses to rename "
                f"{dnu.rdn(dn)}", (op,)))
    if org.mixed_mode:
        found.append(Finding(
            "mixed-mode", "warning",
            f"the organisation {org.name!r} is in mixed mode: Exchange 5.5 servers and the "
            "Active Directory Connector may still copy recipients between the directories"))
    if topology.agreements:
        names = "; ".join(f"{a.name} ({a.direction})" for a in topology.agreements)
        found.append(Finding(
            "adc-agreements", "warning",
            f"{len(topology.agreements)} Active Directory Connector agreement(s): {names}. "
            "An agreement can write old values back over a change; stop the ADC first "
            "(a move between servers of one administrative group is refused in mixed mode "
            "unless --adc-stopped)"))
    found.sort(key=lambda f: f.severity != "blocks")
    return found


def blocking(findings: list[Finding], operation: str, *, lab: bool) -> list[Finding]:
    """The findings that stop `operation` (e.g. "rename", "rename org")."""
    out = []
    for f in findings:
        if f.severity != "blocks":
            continue
        for blocked in f.blocks:
            if blocked == RENAME_WITHOUT_LAB and not lab and operation.startswith(RENAME):
                out.append(f)
            elif blocked == operation or (blocked == RENAME and operation.startswith(RENAME)):
                out.append(f)
    return out


def adc_move_refusal(topology: Topology, same_group_moves: list[str], *,
                     adc_stopped: bool) -> str | None:
    """Why a move must be refused for the ADC, or None.

    In a mixed organisation with connection agreements, an agreement can write the
    old homeMDB back over a move between servers of the same administrative group
    (the advice was to stop the ADC for those moves)."""
    if adc_stopped or not same_group_moves:
        return None
    if not (topology.organization.mixed_mode and topology.agreements):
        return None
    names = "; ".join(a.name for a in topology.agreements)
    shown = ", ".join(same_group_moves[:5]) + (" …" if len(same_group_moves) > 5 else "")
    return (f"the organisation is in mixed mode with connection agreements ({names}), and "
            f"{len(same_group_moves)} mailbox(es) move between servers of one administrative "
            f"group ({shown}): an agreement can write the old home back. Stop the ADC and "
            "give --adc-stopped; nothing was planned")
