"""`exdir move`: the directory side of mailbox moves, planned as one LDIF."""
from __future__ import annotations

import sys
from typing import List, Optional

import typer

from exdir.checks import adc_move_refusal
from exdir.errors import InputError, Refused
from exdir.move import (plan_move, read_identities, read_mailboxes, resolve_mailboxes,
                        resolve_store, same_admin_group_moves)
from exdir.report import check_report_path
from exdir.topology import read_topology

from . import options as o
from .apply import execute
from .context import fail, options


def move(
    ctx: typer.Context,
    mailboxes: Optional[List[str]] = typer.Argument(
        None, metavar="MAILBOX...",
        help="mailNickname, SMTP address, legacyExchangeDN or DN of each mailbox."),
    to: str = typer.Option(..., "--to", metavar="STORE",
                           help="Store DN, SERVER/STORAGE GROUP/STORE, or a unique store name."),
    from_file: Optional[str] = typer.Option(None, "--from-file", metavar="F",
                                            help="Identities, one per line ('-': stdin)."),
    assume_version: Optional[str] = typer.Option(
        None, "--assume-version", metavar="V",
        help="Exchange version of a target server whose serialNumber is unreadable."),
    keep_legacydn: bool = typer.Option(False, "--keep-legacydn",
                                       help="Keep legacyExchangeDN on a cross-group move."),
    adc_stopped: bool = typer.Option(False, "--adc-stopped",
                                     help="The ADC is stopped: allow moves it could undo."),
    do_apply: bool = o.APPLY, undo_file: Optional[str] = o.UNDO_FILE,
    report: Optional[str] = o.REPORT,
) -> None:
    """Set homeMDB, homeMTA and msExchHomeServerName of each mailbox to the target
    store's; remove the wireless attributes when the target server is older than
    Exchange 2003; across administrative groups rewrite legacyExchangeDN (old value
    kept as X500). Each mailbox changes all at once or not at all.

    Example: exdir --ldif lab.ldif move jsmith anna@fabrikam.com --to "EX1/First Storage Group/Mailbox Store (EX1)" --apply
    """
    opts = options(ctx)
    try:
        check_report_path(report)
        identities = list(mailboxes or [])
        if from_file:
            stdin = sys.stdin.read() if from_file == "-" else None
            identities += read_identities(from_file, stdin)
        if not identities:
            raise InputError("no mailbox given (name them, or --from-file F)")
        with opts.open() as directory:
            topology = read_topology(directory)
            target = resolve_store(topology, to, assume_version)
            resolved, warnings = resolve_mailboxes(identities,
                                                   read_mailboxes(directory, identities))
            for w in warnings:
                opts.warn(w)
            refusal = adc_move_refusal(topology, same_admin_group_moves(topology, resolved,
                                                                        target),
                                       adc_stopped=adc_stopped)
            if refusal:
                raise Refused(refusal)
            moved = plan_move(topology, resolved, target, directory.naming,
                              keep_legacydn=keep_legacydn)
            skipped = [m for m in moved.moves if not m.planned]
            if skipped:
                opts.warn(f"{len(skipped)} mailbox(es) already in {target.label}: skipped")
            execute(opts, directory, moved.plan, do_apply=do_apply, undo_file=undo_file,
                    report=report, moves=moved.moves)
    except typer.Exit:
        raise
    except Exception as exc:  # noqa: BLE001
        fail(opts, exc)
