"""`exdir x500 …`: IMCEAEX addresses, X500 proxies, and who holds a legacyExchangeDN."""
from __future__ import annotations

from typing import Optional

import typer

from exdir import operations, x500
from exdir.legacydn import same
from exdir.report import check_report_path
from exdir.text import printable

from . import options as o
from .apply import execute
from .context import options, print_json

app = typer.Typer(help="IMCEAEX addresses and X500 proxy addresses.", no_args_is_help=True)


@app.command("decode")
def decode_cmd(ctx: typer.Context, address: str = typer.Argument(..., metavar="ADDRESS")) -> None:
    """The X500 address inside an IMCEAEX non-delivery address.

    \b
    Example: exdir x500 decode "IMCEAEX-_O=FABRIKAM_OU=FIRST+20ADMINISTRATIVE+20GROUP_CN=RECIPIENTS_CN=JSMITH@fabrikam.com"
    """
    opts = options(ctx)
    value = x500.decode(address)
    if opts.json:
        print_json({"address": address, "decoded": value})
    else:
        print(printable(value))  # a hostile bounce address must not drive the terminal


@app.command("encode")
def encode_cmd(ctx: typer.Context, value: str = typer.Argument(..., metavar="VALUE"),
               domain: str = typer.Option(..., "--domain", help="The SMTP domain, e.g. fabrikam.com")
               ) -> None:
    """The IMCEAEX form of an X500 address or a legacyExchangeDN.

    \b
    Example: exdir x500 encode "/o=Fabrikam/ou=First Administrative Group/cn=Recipients/cn=jsmith" --domain fabrikam.com
    """
    opts = options(ctx)
    encoded = x500.encode(value, domain)
    if opts.json:
        print_json({"value": value, "encoded": encoded})
    else:
        print(printable(encoded))


@app.command("find")
def find_cmd(ctx: typer.Context, address: str = typer.Argument(..., metavar="ADDRESS")) -> None:
    """The object whose legacyExchangeDN or X500 proxy is ADDRESS (IMCEAEX, X500:… or a
    bare value; case-insensitive). Exit 1 when no object holds it.

    \b
    Example: exdir --ldif samples/fabrikam.ldif x500 find "X500:/o=Fabrikam/ou=First Administrative Group/cn=Recipients/cn=jsmith"
    """
    opts = options(ctx)
    with opts.open() as directory:
        value, found = operations.find_holders(directory, address)
    rows = []
    for e in found:
        how = "legacyExchangeDN" if any(same(v, value) for v in e.texts("legacyExchangeDN")) \
            else "X500 proxy"
        rows.append({"dn": e.dn, "mailNickname": e.text("mailNickname"), "matched": how})
    if opts.json:
        print_json({"value": value, "objects": rows})
    else:
        for r in rows:
            print(printable(f"{r['dn']}  ({r['matched']})"))
    if not rows:
        print(f"exdir: no object holds '{printable(value)}'", file=__import__("sys").stderr)
        raise typer.Exit(1)


@app.command("add")
def add_cmd(
    ctx: typer.Context,
    obj: str = typer.Argument(..., metavar="OBJECT", help="DN, mailNickname or legacyExchangeDN."),
    value: str = typer.Argument(..., metavar="VALUE", help="X500:… , IMCEAEX-… or a bare value."),
    do_apply: bool = o.APPLY, undo_file: Optional[str] = o.UNDO_FILE,
    report: Optional[str] = o.REPORT,
    verify: bool = o.VERIFY_DCS, wait: float = o.VERIFY_WAIT,
) -> None:
    """Plan adding an X500 proxy address to an object (dry run; --apply to apply).

    \b
    Example: exdir --ldif lab.ldif x500 add jsmith "IMCEAEX-_O=FABRIKAM_CN=JSMITH@fabrikam.com" --apply
    """
    opts = options(ctx)
    check_report_path(report, undo_file)
    with opts.open(write=do_apply) as directory:
        planned = operations.x500_add(directory, obj, value)
        for note in planned.notes:
            opts.warn(note)
        execute(opts, directory, planned.plan, do_apply=do_apply, undo_file=undo_file,
                report=report, verify=o.verify(verify, wait))


@app.command("remove")
def remove_cmd(
    ctx: typer.Context,
    obj: str = typer.Argument(..., metavar="OBJECT", help="DN, mailNickname or legacyExchangeDN."),
    value: str = typer.Argument(..., metavar="VALUE", help="X500:… , IMCEAEX-… or a bare value."),
    do_apply: bool = o.APPLY, undo_file: Optional[str] = o.UNDO_FILE,
    report: Optional[str] = o.REPORT,
    verify: bool = o.VERIFY_DCS, wait: float = o.VERIFY_WAIT,
) -> None:
    """Plan removing an X500 proxy address from an object (dry run; --apply to apply):
    the fix `exdir legacydn audit` names for a proxy equal to another object's value.

    \b
    Example: exdir --ldif lab.ldif x500 remove kberg "X500:/o=Fabrikam/ou=Europe/cn=Recipients/cn=kberg" --apply
    """
    opts = options(ctx)
    check_report_path(report, undo_file)
    with opts.open(write=do_apply) as directory:
        planned = operations.x500_remove(directory, obj, value)
        for note in planned.notes:
            opts.warn(note)
        execute(opts, directory, planned.plan, do_apply=do_apply, undo_file=undo_file,
                report=report, verify=o.verify(verify, wait))
