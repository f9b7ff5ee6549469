"""`exdir imf …`: the Intelligent Message Filter's thresholds (Exchange 2003)."""
from __future__ import annotations

from typing import Optional

import typer

from exdir import operations
from exdir.text import printable

from . import options as o
from .apply import plan_and_execute
from .context import options, print_json

app = typer.Typer(help="The Intelligent Message Filter's thresholds (UCE Content Filter).",
                  no_args_is_help=True)


def _shown(value: object) -> str:
    return "not set" if value is None else str(value)


@app.command("show")
def show_cmd(ctx: typer.Context) -> None:
    """The filter's settings: on or off, the gateway threshold (msExchUceBlockThreshold)
    and the store's Junk E-mail threshold (msExchUceStoreActionThreshold), with what the
    directory alone cannot tell (warnings on stderr).

    \b
    Example: exdir --ldif samples/fabrikam.ldif imf show
    """
    opts = options(ctx)
    with opts.open() as directory:
        settings = operations.imf_show(directory)
    if opts.json:
        print_json({"dn": settings.dn, "exists": settings.exists, "enabled": settings.enabled,
                    "gateway_threshold": settings.gateway_threshold,
                    "store_threshold": settings.store_threshold, "values": settings.raw,
                    "warnings": settings.warnings})
    else:
        print(f"object: {printable(settings.dn)}")
        if settings.exists:
            enabled = None if settings.enabled is None else ("yes" if settings.enabled else "no")
            print(f"enabled: {_shown(enabled)}")
            print(f"gateway threshold: {_shown(settings.gateway_threshold)}")
            print(f"store threshold: {_shown(settings.store_threshold)}")
    for warning in settings.warnings:
        opts.warn(f"warning: {printable(warning)}")


@app.command("set")
def set_cmd(
    ctx: typer.Context,
    gateway: Optional[int] = typer.Option(
        None, "--gateway-threshold", metavar="N",
        help="Gateway blocking threshold, 0-9 (spam confidence level)."),
    store: Optional[int] = typer.Option(
        None, "--store-threshold", metavar="N",
        help="Store Junk E-mail threshold, 0-9 (Exchange 2003 and later stores)."),
    enabled: Optional[bool] = typer.Option(None, "--enable/--disable",
                                           help="Turn the filter on or off."),
    do_apply: bool = o.APPLY, undo_file: Optional[str] = o.UNDO_FILE,
    report: Optional[str] = o.REPORT,
    verify: bool = o.VERIFY_DCS, wait: float = o.VERIFY_WAIT,
) -> None:
    """Plan changing the filter's settings (dry run; --apply to apply); the objects on
    the path are created when the filter was never configured.

    \b
    Example: exdir --ldif lab.ldif imf set --store-threshold 6 --enable --apply
    """
    plan_and_execute(options(ctx), lambda d: operations.imf_set(d, gateway=gateway, store=store,
                                                                enabled=enabled),
                     do_apply=do_apply, undo_file=undo_file, report=report,
                     verify=o.verify(verify, wait))
