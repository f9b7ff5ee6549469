"""`exdir rename org|admin-group`: legacydn.exe-style renames, planned as one LDIF."""
from __future__ import annotations

from typing import Optional

import typer

from exdir.checks import blocking, preflight
from exdir.directory import Directory
from exdir.errors import Refused
from exdir.rename import RenameScope, admin_group_scope, org_scope, plan_rename, read_affected
from exdir.report import check_report_path
from exdir.topology import Topology, read_topology

from . import options as o
from .apply import execute
from .context import Options, fail, options

app = typer.Typer(help="Rename the organisation or an administrative group (lab only).",
                  no_args_is_help=True)


def _rename(opts: Options, make_scope, operation: str, *, do_apply: bool,  # type: ignore[no-untyped-def]
            lab: bool, undo_file: Optional[str], report: Optional[str], keep_x500: bool) -> None:
    check_report_path(report)
    with opts.open() as directory:
        topology = read_topology(directory)
        scope: RenameScope = make_scope(topology)
        findings = preflight(directory, topology)
        stops = blocking(findings, operation, lab=lab)
        for f in findings:
            if f.severity == "warning":
                opts.warn(f"warning: {f.message}")
        if do_apply:
            if not lab:
                raise Refused("renames apply only in a lab: add --lab (legacydn.exe was "
                              "supported only there); nothing was written")
            if stops:
                raise Refused("refused, nothing written: " + " | ".join(f.message for f in stops))
        elif stops:
            for f in stops:
                opts.warn(f"this plan cannot be applied here: {f.message}")
        plan = _plan(directory, topology, scope, keep_x500)
        execute(opts, directory, plan, do_apply=do_apply, undo_file=undo_file, report=report)


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

    Example: exdir --ldif lab.ldif rename org Contoso > rename.ldif && exdir --ldif lab.ldif rename org Contoso --apply --lab
    """
    opts = options(ctx)
    try:
        _rename(opts, lambda t: org_scope(t, new_name), "rename org", do_apply=do_apply,
                lab=lab, undo_file=undo_file, report=report, keep_x500=keep_x500)
    except typer.Exit:
        raise
    except Exception as exc:  # noqa: BLE001
        fail(opts, exc)


@app.command("admin-group")
def rename_admin_group(
    ctx: typer.Context,
    old: str = typer.Argument(..., metavar="OLD", help="The group's current name."),
    new: str = typer.Argument(..., metavar="NEW", help="Its new name."),
    do_apply: bool = o.APPLY, lab: bool = o.LAB, undo_file: Optional[str] = o.UNDO_FILE,
    report: Optional[str] = o.REPORT, keep_x500: bool = o.KEEP_X500,
) -> None:
    """Rename an administrative group and rewrite every value under /o=Org/ou=OLD.

    Example: exdir --ldif lab.ldif rename admin-group "Europe" "EMEA" --apply --lab
    """
    opts = options(ctx)
    try:
        _rename(opts, lambda t: admin_group_scope(t, old, new), f"rename admin-group {old}",
                do_apply=do_apply, lab=lab, undo_file=undo_file, report=report,
                keep_x500=keep_x500)
    except typer.Exit:
        raise
    except Exception as exc:  # noqa: BLE001
        fail(opts, exc)
