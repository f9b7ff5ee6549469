"""`exdir delegates …`: publicDelegates values that name nobody who can act."""
from __future__ import annotations

from typing import Optional

import typer

from exdir import operations

from . import options as o
from .apply import plan_and_execute
from .context import options
from .findings import report

app = typer.Typer(help="Stale delegates (publicDelegates, KB 312433).", no_args_is_help=True)


@app.command("audit")
def audit_cmd(ctx: typer.Context) -> None:
    """Every publicDelegates value that names nothing, a deleted object, a disabled
    account or an object without a mailbox, with what it means and the command that
    removes it. Exit 1 if any.

    \b
    Example: exdir --ldif samples/fabrikam.ldif delegates audit  # (exit 1: two stale delegates)
    """
    opts = options(ctx)
    with opts.open() as directory:
        checked = operations.delegates_audit(directory)
    org = checked.topology.organization
    report(opts, checked.findings, {"organisation": f"{org.name} ({org.legacy_dn})"},
           "delegates audit",
           {"organisation": {"name": org.name, "legacyExchangeDN": org.legacy_dn}})


@app.command("remove")
def remove_cmd(
    ctx: typer.Context,
    owner: str = typer.Argument(..., metavar="OWNER",
                                help="The mailbox: DN, mailNickname or legacyExchangeDN."),
    delegate: str = typer.Argument(..., metavar="DELEGATE",
                                   help="The publicDelegates value (a DN), as the audit prints it."),
    do_apply: bool = o.APPLY, undo_file: Optional[str] = o.UNDO_FILE,
    report_file: Optional[str] = o.REPORT,
    verify: bool = o.VERIFY_DCS, wait: float = o.VERIFY_WAIT,
) -> None:
    """Plan removing one delegate from a mailbox's publicDelegates (dry run; --apply to
    apply): the fix `exdir delegates audit` names.

    \b
    Example: exdir --ldif lab.ldif delegates remove jhay "CN=Toni Poe,OU=Staff,DC=fabrikam,DC=com" --apply
    """
    plan_and_execute(options(ctx), lambda d: operations.delegates_remove(d, owner, delegate),
                     do_apply=do_apply, undo_file=undo_file, report=report_file,
                     verify=o.verify(verify, wait))
