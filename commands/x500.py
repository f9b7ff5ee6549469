"""`exdir x500 …`: IMCEAEX addresses, X500 proxies, and who holds a legacyExchangeDN."""
from __future__ import annotations

from typing import Optional

import typer
from ldap3.utils.conv import escape_filter_chars

from exdir import dn as dnu
from exdir import x500
from exdir.errors import InputError
from exdir.legacydn import check_value, same
from exdir.plan import Mod, Modify, Plan
from exdir.rename import find_object
from exdir.report import check_report_path

from . import options as o
from .apply import execute
from .context import fail, options, print_json

app = typer.Typer(help="IMCEAEX addresses and X500 proxy addresses.", no_args_is_help=True)


@app.command("decode")
def decode_cmd(ctx: typer.Context, address: str = typer.Argument(..., metavar="ADDRESS")) -> None:
    """The X500 address inside an IMCEAEX non-delivery address.

    Example: exdir x500 decode "IMCEAEX-_O=FABRIKAM_OU=FIRST+20ADMINISTRATIVE+20GROUP_CN=RECIPIENTS_CN=JSMITH@fabrikam.com"
    """
    opts = options(ctx)
    try:
        value = x500.decode(address)
    except Exception as exc:  # noqa: BLE001
        fail(opts, exc)
        return
    if opts.json:
        print_json({"address": address, "decoded": value})
    else:
        print(value)


@app.command("encode")
def encode_cmd(ctx: typer.Context, value: str = typer.Argument(..., metavar="VALUE"),
               domain: str = typer.Option(..., "--domain", help="The SMTP domain, e.g. fabrikam.com")
               ) -> None:
    """The IMCEAEX form of an X500 address or a legacyExchangeDN.

    Example: exdir x500 encode "/o=Fabrikam/ou=First Administrative Group/cn=Recipients/cn=jsmith" --domain fabrikam.com
    """
    opts = options(ctx)
    try:
        encoded = x500.encode(value, domain)
    except Exception as exc:  # noqa: BLE001
        fail(opts, exc)
        return
    if opts.json:
        print_json({"value": value, "encoded": encoded})
    else:
        print(encoded)


def _owners(directory, value: str):  # type: ignore[no-untyped-def]
    flt = (f"(|(legacyExchangeDN={escape_filter_chars(value)})"
           f"(proxyAddresses=X500:{escape_filter_chars(value)}))")
    config = directory.naming.configuration
    out = []
    for base in [b for b in (config, directory.naming.domain) if b]:
        for e in directory.search(base, flt, ("legacyExchangeDN", "proxyAddresses",
                                              "mailNickname", "objectClass")):
            if base != config and config and dnu.is_within(e.dn, config):
                continue
            out.append(e)
    return out


@app.command("find")
def find_cmd(ctx: typer.Context, address: str = typer.Argument(..., metavar="ADDRESS")) -> None:
    """The object whose legacyExchangeDN or X500 proxy is ADDRESS (IMCEAEX, X500:… or a
    bare value; case-insensitive). Exit 1 when no object holds it.

    Example: exdir --ldif samples/fabrikam.ldif x500 find "X500:/o=Fabrikam/ou=First Administrative Group/cn=Recipients/cn=jsmith"
    """
    opts = options(ctx)
    try:
        value = x500.legacy_value(address)
        with opts.open() as directory:
            found = _owners(directory, value)
    except Exception as exc:  # noqa: BLE001
        fail(opts, exc)
        return
    rows = []
    for e in found:
        how = "legacyExchangeDN" if any(same(v, value) for v in e.texts("legacyExchangeDN")) \
            else "X500 proxy"
        rows.append({"dn": e.dn, "mailNickname": e.text("mailNickname"), "matched": how})
    if opts.json:
        print_json({"value": value, "objects": rows})
    else:
        for r in rows:
            print(f"{r['dn']}  ({r['matched']})")
    if not rows:
        print(f"exdir: no object holds {value!r}", file=__import__("sys").stderr)
        raise typer.Exit(1)


@app.command("add")
def add_cmd(
    ctx: typer.Context,
    obj: str = typer.Argument(..., metavar="OBJECT", help="DN, mailNickname or legacyExchangeDN."),
    value: str = typer.Argument(..., metavar="VALUE", help="X500:… , IMCEAEX-… or a bare value."),
    do_apply: bool = o.APPLY, undo_file: Optional[str] = o.UNDO_FILE,
    report: Optional[str] = o.REPORT,
) -> None:
    """Plan adding an X500 proxy address to an object (dry run; --apply to apply).

    Example: exdir --ldif lab.ldif x500 add jsmith "IMCEAEX-_O=FABRIKAM_CN=JSMITH@fabrikam.com" --apply
    """
    opts = options(ctx)
    try:
        check_report_path(report)
        legacy = check_value(x500.legacy_value(value))
        with opts.open() as directory:
            entry = find_object(directory, obj)
            for other in _owners(directory, legacy):
                if dnu.key(other.dn) == dnu.key(entry.dn):
                    continue
                raise InputError(f"{legacy!r} belongs to {other.dn}: an X500 proxy equal to "
                                 "another object's value misdelivers its mail")
            proxy = f"X500:{legacy}"
            if any(same(p, proxy) for p in entry.texts("proxyAddresses")):
                plan = Plan(())
                opts.warn(f"{entry.dn} holds {proxy!r} already")
            else:
                plan = Plan((Modify(entry.dn, (Mod("add", "proxyAddresses", (proxy,)),),
                                    f"add the X500 proxy {proxy}"),))
            execute(opts, directory, plan, do_apply=do_apply, undo_file=undo_file,
                    report=report)
    except typer.Exit:
        raise
    except Exception as exc:  # noqa: BLE001
        fail(opts, exc)


@app.command("remove")
def remove_cmd(
    ctx: typer.Context,
    obj: str = typer.Argument(..., metavar="OBJECT", help="DN, mailNickname or legacyExchangeDN."),
    value: str = typer.Argument(..., metavar="VALUE", help="X500:… , IMCEAEX-… or a bare value."),
    do_apply: bool = o.APPLY, undo_file: Optional[str] = o.UNDO_FILE,
    report: Optional[str] = o.REPORT,
) -> None:
    """Plan removing an X500 proxy address from an object (dry run; --apply to apply):
    the fix `exdir legacydn audit` names for a proxy equal to another object's value.

    Example: exdir --ldif lab.ldif x500 remove jsmith "X500:/o=Fabrikam/ou=First Administrative Group/cn=Recipients/cn=kakers" --apply
    """
    opts = options(ctx)
    try:
        check_report_path(report)
        legacy = x500.legacy_value(value)
        with opts.open() as directory:
            entry = find_object(directory, obj)
            held = [p for p in entry.texts("proxyAddresses") if same(p, f"X500:{legacy}")]
            if held:
                # the values as stored (their case), so the delete matches on every backend
                plan = Plan((Modify(entry.dn, (Mod("delete", "proxyAddresses", tuple(held)),),
                                    f"remove the X500 proxy {held[0]}"),))
            else:
                plan = Plan(())
                opts.warn(f"{entry.dn} holds no proxy X500:{legacy}")
            execute(opts, directory, plan, do_apply=do_apply, undo_file=undo_file,
                    report=report)
    except typer.Exit:
        raise
    except Exception as exc:  # noqa: BLE001
        fail(opts, exc)
