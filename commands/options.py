"""Options every write command shares (docs/design.md, "Common write options")."""
from __future__ import annotations

from typing import Optional

import typer

APPLY = typer.Option(False, "--apply", help="Carry the plan out (default: print it as LDIF).")
LAB = typer.Option(False, "--lab", help="Confirm this is a lab: renames apply only with it.")
UNDO_FILE: Optional[str] = typer.Option(
    None, "--undo-file", metavar="PATH",
    help="A new file for the undo (never replaced; default exdir-undo-<UTC time>.ldif here).")
REPORT: Optional[str] = typer.Option(None, "--report", metavar="PATH",
                                     help="Write what happened to PATH (.json or .xml).")
KEEP_X500 = typer.Option(True, "--keep-x500/--no-keep-x500",
                         help="Keep each replaced legacyExchangeDN as an X500 proxy address.")
VERIFY_DCS = typer.Option(False, "--verify-dcs",
                          help="After a successful apply, check every domain controller "
                               "shows the changes (exdir replication check); the result "
                               "goes in --report.")
VERIFY_WAIT = typer.Option(0.0, "--wait", metavar="SECONDS", min=0,
                           help="With --verify-dcs: wait up to this long for every DC.")


def verify(verify_dcs: bool, wait: float) -> float | None:
    """How long --verify-dcs waits, or None without it."""
    return wait if verify_dcs else None
