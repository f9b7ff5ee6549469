"""`exdir legacydn …`: view legacyExchangeDN values."""
from __future__ import annotations

from typing import Optional

import typer

from exdir.legacydn import list_values

from .context import fail, options, print_json, print_table

app = typer.Typer(help="View and maintain legacyExchangeDN values.", no_args_is_help=True)


@app.command("list")
def list_cmd(
    ctx: typer.Context,
    prefix: Optional[str] = typer.Option(None, "--prefix", metavar="P",
                                         help="Only values under this prefix (whole parts)."),
) -> None:
    """List every object with a legacyExchangeDN: DN, class, value.

    Example: exdir --ldif samples/fabrikam.ldif legacydn list --prefix "/o=Fabrikam/ou=Europe"
    """
    opts = options(ctx)
    try:
        with opts.open() as directory:
            rows = sorted(list_values(directory, prefix), key=lambda r: (r.value.lower(), r.dn))
    except Exception as exc:  # noqa: BLE001
        fail(opts, exc)
        return
    if opts.json:
        print_json([{"dn": r.dn, "class": r.object_class, "legacyExchangeDN": r.value}
                    for r in rows])
    else:
        print_table(["legacyExchangeDN", "class", "DN"],
                    [(r.value, r.object_class, r.dn) for r in rows])
