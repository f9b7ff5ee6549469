"""`exdir move`: the directory side of mailbox moves, planned as one LDIF."""
from __future__ import annotations

import sys
from typing import List, Optional

import typer

from exdir import operations
from exdir.gates import Safety
from exdir.errors import InputError
from exdir.move import read_identities
from exdir.report import check_report_path

from . import options as o
from .apply import execute
from .context import options


def move(
    ctx: typer.Context,
    mailboxes: Optional[List[str]] = typer.Argument(
        None, metavar="MAILBOX...",
        help="mailNickname, SMTP address, legacyExchangeDN or DN of each mailbox."),
    to: str = typer.Option(..., "--to", metavar="STORE",
                           help="Store DN, SERVER/STORAGE GROUP/STORE, a unique store name, "
                                "or a server with one mailbox store."),
    from_file: Optional[str] = typer.Option(None, "--from-file", metavar="F",
                                            help="Identities, one per line ('-': stdin)."),
    assume_version: Optional[str] = typer.Option(
        None, "--assume-version", metavar="V",
        help="Exchange version of a target server whose serialNumber is unreadable."),
    keep_legacydn: bool = typer.Option(False, "--keep-legacydn",
                                       help="Keep legacyExchangeDN on a cross-group move."),
    adc_stopped: bool = typer.Option(False, "--adc-stopped",
                                     help="The ADC is stopped: allow moves it could undo."),
    home_mta: Optional[str] = typer.Option(
        None, "--home-mta", metavar="DN",
        help="The MTA (objectClass mTA) homeMTA names, for a target server without one."),
    do_apply: bool = o.APPLY, undo_file: Optional[str] = o.UNDO_FILE,
    report: Optional[str] = o.REPORT,
    verify: bool = o.VERIFY_DCS, wait: float = o.VERIFY_WAIT,
) -> None:
    """Set homeMDB, homeMTA and msExchHomeServerName of each mailbox to the target
    store's; remove the wireless attributes when the target server is older than
    Exchange 2003; across administrative groups rewrite legacyExchangeDN (old value
    kept as X500). Each mailbox changes all at once or not at all.

    \b
    Example: exdir --ldif samples/fabrikam.ldif move jsmith kakers@fabrikam.com --to "EX2/First Storage Group/Mailbox Store (EX2)"
    """
    opts = options(ctx)
    check_report_path(report, undo_file)
    identities = list(mailboxes or [])
    if from_file:
        stdin = (getattr(sys.stdin, "buffer", sys.stdin).read()  # bytes: decoded by
                 if from_file == "-" else None)                    # read_identities
        identities += read_identities(from_file, stdin)
    if not identities:
        raise InputError("no mailbox given (name them, or --from-file F)")
    with opts.open(write=do_apply) as directory:
        planned = operations.move(directory, identities, to, assume_version=assume_version,
                                  keep_legacydn=keep_legacydn, home_mta=home_mta)
        for note in planned.notes:
            opts.warn(note)
        # the ADC gate (mixed mode, same-group moves) is met by the apply engine
        execute(opts, directory, planned.plan, do_apply=do_apply, undo_file=undo_file,
                report=report, moves=planned.moved.moves if planned.moved else None,
                safety=Safety(adc_stopped=adc_stopped), verify=o.verify(verify, wait))
