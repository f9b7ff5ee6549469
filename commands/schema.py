"""`exdir schema export`: the Exchange schema subset, for preparing a lab server."""
from __future__ import annotations

import json
from typing import Optional

import typer

from exdir import dn as dnu
from exdir import schema
from exdir.errors import InputError

from .context import Options, options

app = typer.Typer(help="The Exchange schema subset exdir knows.", no_args_is_help=True)

DEFAULT_SCHEMA_NC = "CN=Schema,CN=Configuration,DC=fabrikam,DC=com"
FORMATS = ("openldap", "ad", "ldap3")


@app.command("export")
def export(
    ctx: typer.Context,
    format: str = typer.Option("openldap", "--format", help="openldap, ad or ldap3"),
    schema_nc: Optional[str] = typer.Option(
        None, "--schema-nc", metavar="DN",
        help="(ad) The forest's schema naming context; default: read from the directory "
             f"given with --url/--ldif, else {DEFAULT_SCHEMA_NC}."),
) -> None:
    """Print the schema: an OpenLDAP cn=config entry, Active Directory
    attributeSchema/classSchema change records (for a lab forest or Samba AD,
    applied with ldapmodify or ldifde), or ldap3's JSON.

    \b
    Example: exdir schema export --format ad --schema-nc "CN=Schema,CN=Configuration,DC=fabrikam,DC=com" > exchange-ad.ldif
    """
    opts = options(ctx)
    if format not in FORMATS:
        raise InputError(f"unknown format {format!r} (openldap, ad or ldap3)")
    if schema_nc is not None and format != "ad":
        raise InputError("--schema-nc applies to --format ad only")
    if format == "openldap":
        print(schema.openldap_schema_ldif(), end="")
    elif format == "ldap3":
        _dsa, info = schema.ldap3_schema()
        print(json.dumps(json.loads(info.to_json()), indent=1))
    else:
        print(schema.ad_schema_ldif(_schema_nc(opts, schema_nc)), end="")


def _schema_nc(opts: Options, given: str | None) -> str:
    """--schema-nc as given, else the directory's schema NC, else the sample forest's."""
    if given is not None:
        if not given.strip():
            raise InputError("--schema-nc must not be empty")
        return dnu.normalize(given)  # InputError on a malformed DN
    if not opts.url and not opts.ldif:
        return DEFAULT_SCHEMA_NC
    with opts.open() as directory:
        naming = directory.naming
    if naming.schema:
        return dnu.normalize(naming.schema)
    if naming.configuration:
        return "CN=Schema," + naming.configuration
    raise InputError("the directory names no configuration partition: give --schema-nc")
