"""`exdir rename org|admin-group`: legacydn.exe-style renames, planned as one LDIF."""
from __future__ import annotations

from typing import Optional

import typer

from exdir.checks import preflight
from exdir.backends.base import Directory
from exdir.gates import Safety
from exdir.rename import RenameScope, admin_group_scope, org_scope, plan_rename, read_affected
from exdir.report import check_report_path
from exdir.topology import Topology, read_topology

from . import options as o
from .apply import execute
from .context import Options, options

app = typer.Typer(help="Rename the organisation or an administrative group (lab only).",
                  no_args_is_help=True)


def _rename(opts: Options, make_scope, operation: str, *, do_apply: bool,  # type: ignore[no-untyped-def]
            lab: bool, undo_file: Optional[str], report: Optional[str], keep_x500: bool) -> None:
    check_report_path(report, undo_file)
    with opts.open(write=do_apply) as directory:
        topology = read_topology(directory)
        scope: RenameScope = make_scope(topology)
        for f in preflight(directory, topology):
            if f.severity == "warning":
                opts.warn(f"warning: {f.message}")
        # the single-DC, --lab and systemFlags gates are met by the apply engine
        # (exdir.gates), for this plan as for the same plan given to `exdir apply`
        plan = _plan(directory, topology, scope, keep_x500)
        execute(opts, directory, plan, do_apply=do_apply, undo_file=undo_file, report=report,
                safety=Safety(lab=lab))


def _plan(directory: Directory, topology: Topology, scope: RenameScope, keep_x500: bool):  # type: ignore[no-untyped-def]
    references = not directory.follows_dn_references
    entries = read_affected(directory, scope, references=references)
    return plan_rename(scope, entries, directory.naming, keep_x500=keep_x500,
                       rewrite_references=references)


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
    _rename(opts, lambda t: org_scope(t, new_name), "rename org", do_apply=do_apply,
            lab=lab, undo_file=undo_file, report=report, keep_x500=keep_x500)


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
    _rename(opts, lambda t: admin_group_scope(t, old, new), f"rename admin-group {old}",
            do_apply=do_apply, lab=lab, undo_file=undo_file, report=report,
            keep_x500=keep_x500)
