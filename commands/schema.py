"""`exdir schema export`: the Exchange schema subset, for preparing a lab server."""
from __future__ import annotations

import json

import typer

from exdir import schema

from .context import InputError, fail, options

app = typer.Typer(help="The Exchange schema subset exdir knows.", no_args_is_help=True)


@app.command("export")
def export(
    ctx: typer.Context,
    format: str = typer.Option("openldap", "--format", help="openldap or ldap3"),
) -> None:
    """Print the schema: an OpenLDAP cn=config entry, or ldap3's JSON.

    Example: exdir schema export --format openldap > exchange.ldif
    """
    opts = options(ctx)
    try:
        if format == "openldap":
            print(schema.openldap_schema_ldif(), end="")
        elif format == "ldap3":
            _dsa, info = schema.ldap3_schema()
            print(json.dumps(json.loads(info.to_json()), indent=1))
        else:
            raise InputError(f"unknown format {format!r} (openldap or ldap3; ad comes later)")
    except Exception as exc:  # noqa: BLE001
        fail(opts, exc)
