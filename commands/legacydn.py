"""`exdir legacydn …`: view legacyExchangeDN values."""
from __future__ import annotations

from typing import Optional

import typer

from exdir import operations
from exdir.legacydn import check_value
from exdir.readers.recipients import list_values
from exdir.report import check_report_path

from . import options as o
from .apply import execute
from .findings import report

from .context import options, print_json, print_table

app = typer.Typer(help="View and change legacyExchangeDN values.", no_args_is_help=True)


@app.command("list")
def list_cmd(
    ctx: typer.Context,
    prefix: Optional[str] = typer.Option(None, "--prefix", metavar="P",
                                         help="Only values under this prefix (whole parts)."),
) -> None:
    """List every object with a legacyExchangeDN: DN, class, value.

    \b
    Example: exdir --ldif samples/fabrikam.ldif legacydn list --prefix "/o=Fabrikam/ou=Europe"
    """
    opts = options(ctx)
    with opts.open() as directory:
        rows = sorted(list_values(directory, prefix), key=lambda r: (r.value.lower(), r.dn))
    if opts.json:
        print_json([{"dn": r.dn, "class": r.object_class, "legacyExchangeDN": r.value}
                    for r in rows])
    else:
        print_table(["legacyExchangeDN", "class", "DN"],
                    [(r.value, r.object_class, r.dn) for r in rows])


@app.command("set")
def set_cmd(
    ctx: typer.Context,
    obj: str = typer.Argument(..., metavar="OBJECT",
                              help="A DN, a mailNickname or the current legacyExchangeDN."),
    new_value: str = typer.Argument(..., metavar="NEW_VALUE", help="The new legacyExchangeDN."),
    do_apply: bool = o.APPLY, undo_file: Optional[str] = o.UNDO_FILE,
    report: Optional[str] = o.REPORT,
    verify: bool = o.VERIFY_DCS, wait: float = o.VERIFY_WAIT, keep_x500: bool = o.KEEP_X500,
) -> None:
    """Change one object's legacyExchangeDN; a recipient keeps its old value as X500,
    a server's mailboxes get the new value in msExchHomeServerName.

    \b
    Example: exdir --ldif lab.ldif legacydn set jsmith "/o=Fabrikam/ou=Europe/cn=Recipients/cn=jsmith" --apply
    """
    opts = options(ctx)
    check_report_path(report, undo_file)
    check_value(new_value)
    with opts.open(write=do_apply) as directory:
        plan = operations.set_legacy_dn(directory, obj, new_value, keep_x500=keep_x500)
        execute(opts, directory, plan, do_apply=do_apply, undo_file=undo_file,
                report=report, verify=o.verify(verify, wait))


@app.command("audit")
def audit_cmd(ctx: typer.Context) -> None:
    """Duplicate values, values outside the organisation's prefix, malformed values,
    ADCDisabledMail leftovers, group and server values that do not match their names,
    X500 proxies equal to another object's value, home attributes naming nothing.
    Exit 1 if any.

    \b
    Example: exdir --ldif samples/fabrikam.ldif legacydn audit
    """
    opts = options(ctx)
    with opts.open() as directory:
        checked = operations.audit(directory)
    org = checked.topology.organization
    report(opts, checked.findings, {"organisation": f"{org.name} ({org.legacy_dn})"},
           "legacyExchangeDN audit",
           {"organisation": {"name": org.name, "legacyExchangeDN": org.legacy_dn,
                             "mixed_mode": org.mixed_mode}})
