"""`exdir rename org|admin-group`: legacydn.exe-style renames, planned as one LDIF."""
from __future__ import annotations

from typing import Callable, Optional

import typer

from exdir import operations
from exdir.backends.base import Directory
from exdir.gates import Safety

from . import options as o
from .apply import plan_and_execute
from .context import Options, options

app = typer.Typer(help="Rename the organisation or an administrative group (lab only).",
                  no_args_is_help=True)


def _rename(opts: Options, make_plan: Callable[[Directory], operations.Planned], *,
            do_apply: bool, lab: bool, undo_file: Optional[str], report: Optional[str]) -> None:
    # the single-DC, --lab and systemFlags gates are met by the apply engine
    # (exdir.gates), for this plan as for the same plan given to `exdir apply`
    plan_and_execute(opts, make_plan, do_apply=do_apply, undo_file=undo_file, report=report,
                     safety=Safety(lab=lab))


@app.command("org")
def rename_org(
    ctx: typer.Context,
    new_name: str = typer.Argument(..., metavar="NEW_NAME", help="The organisation's new name."),
    do_apply: bool = o.APPLY, lab: bool = o.LAB, undo_file: Optional[str] = o.UNDO_FILE,
    report: Optional[str] = o.REPORT, keep_x500: bool = o.KEEP_X500,
) -> None:
    """Rename the organisation and rewrite every value under its /o= prefix: the
    organisation object, every legacyExchangeDN and msExchHomeServerName, each
    recipient's old value kept as X500. Applies only with --lab and one DC.

    \b
    Example: exdir --ldif lab.ldif rename org Contoso > rename.ldif && exdir --ldif lab.ldif rename org Contoso --apply --lab
    """
    opts = options(ctx)
    _rename(opts, lambda d: operations.rename_org(d, new_name, keep_x500=keep_x500),
            do_apply=do_apply, lab=lab, undo_file=undo_file, report=report)


@app.command("admin-group")
def rename_admin_group(
    ctx: typer.Context,
    old: str = typer.Argument(..., metavar="OLD", help="The group's current name."),
    new: str = typer.Argument(..., metavar="NEW", help="Its new name."),
    do_apply: bool = o.APPLY, lab: bool = o.LAB, undo_file: Optional[str] = o.UNDO_FILE,
    report: Optional[str] = o.REPORT, keep_x500: bool = o.KEEP_X500,
) -> None:
    """Rename an administrative group and rewrite every value under /o=Org/ou=OLD.

    \b
    Example: exdir --ldif lab.ldif rename admin-group "Europe" "EMEA" --apply --lab
    """
    opts = options(ctx)
    _rename(opts, lambda d: operations.rename_admin_group(d, old, new, keep_x500=keep_x500),
            do_apply=do_apply, lab=lab, undo_file=undo_file, report=report)
