"""exdir's entry point: global options and the command groups."""
from __future__ import annotations

import os
import sys
import traceback
from typing import Optional

import typer

from exdir.errors import ExdirError

from . import adc as adc_cmd
from . import apply as apply_cmd
from . import check as check_cmd
from . import lab as lab_cmd
from . import legacydn as legacydn_cmd
from . import move as move_cmd
from . import rename as rename_cmd
from . import schema as schema_cmd
from . import topology as topology_cmd
from . import x500 as x500_cmd
from .context import Options

app = typer.Typer(
    name="exdir",
    help="Keep the Active Directory side of an Exchange organisation correct.\n\n"
         "Example: exdir --ldif samples/fabrikam.ldif topology",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


@app.callback()
def root(
    ctx: typer.Context,
    ldif: Optional[str] = typer.Option(None, "--ldif", envvar="EXDIR_LDIF", metavar="PATH",
                                       help="The directory is this LDIF file (held in memory)."),
    url: Optional[str] = typer.Option(None, "--url", envvar="EXDIR_URL",
                                      help="The directory is this LDAP server (ldap:// or ldaps://)."),
    bind_dn: Optional[str] = typer.Option(None, "--bind-dn", envvar="EXDIR_BIND_DN",
                                          help="Bind as this DN."),
    password_file: Optional[str] = typer.Option(
        None, "--password-file", metavar="PATH",
        help="Read the bind password from this file (or set EXDIR_PASSWORD)."),
    starttls: bool = typer.Option(False, "--starttls", help="Upgrade ldap:// with StartTLS."),
    ca_file: Optional[str] = typer.Option(None, "--ca-file", metavar="PATH",
                                          help="CA certificates to verify the server with."),
    insecure: bool = typer.Option(False, "--insecure",
                                  help="Do not verify the server's certificate."),
    auth: str = typer.Option("simple", "--auth", metavar="simple|ntlm",
                             help="Bind with a DN and password (simple; use ldaps or "
                                  "--starttls), or NTLM as DOMAIN\\user."),
    json_out: bool = typer.Option(False, "--json", help="Read commands print JSON."),
    quiet: bool = typer.Option(False, "-q", "--quiet", help="No progress or notes on stderr."),
    debug: bool = typer.Option(False, "--debug", help="Show the traceback behind an error."),
) -> None:
    """Keep the Active Directory side of an Exchange organisation correct.

    Example: exdir --ldif samples/fabrikam.ldif topology
    """
    ctx.obj = Options(ldif=ldif, url=url, bind_dn=bind_dn, password_file=password_file,
                      starttls=starttls, ca_file=ca_file, insecure=insecure, auth=auth,
                      json=json_out,
                      quiet=quiet, debug=debug)


app.command("topology")(topology_cmd.topology)
app.command("apply")(apply_cmd.apply_cmd)
app.command("check")(check_cmd.check)
app.command("move")(move_cmd.move)
app.add_typer(rename_cmd.app, name="rename")
app.add_typer(legacydn_cmd.app, name="legacydn")
app.add_typer(lab_cmd.app, name="lab")
app.add_typer(schema_cmd.app, name="schema")
app.add_typer(adc_cmd.app, name="adc")
app.add_typer(x500_cmd.app, name="x500")


class _ClosedPipeSafe:
    """stdout that stops writing once the reader has gone (`exdir … | head`).

    click would exit 1 on the broken pipe, which the contract reserves for refusals."""

    def __init__(self, stream):  # type: ignore[no-untyped-def]
        self._stream = stream
        self._closed = False

    def write(self, text: str) -> int:
        if not self._closed:
            try:
                return self._stream.write(text)
            except BrokenPipeError:
                self._closed = True
                os.dup2(os.open(os.devnull, os.O_WRONLY), self._stream.fileno())
        return len(text)

    def flush(self) -> None:
        if not self._closed:
            try:
                self._stream.flush()
            except BrokenPipeError:
                self._closed = True
                os.dup2(os.open(os.devnull, os.O_WRONLY), self._stream.fileno())

    def __getattr__(self, name: str):  # type: ignore[no-untyped-def]
        return getattr(self._stream, name)


def main(argv: list[str] | None = None) -> int:
    """Run exdir; usage errors become one line and exit 2."""
    if not isinstance(sys.stdout, _ClosedPipeSafe) and hasattr(sys.stdout, "fileno"):
        try:
            sys.stdout.fileno()
            sys.stdout = _ClosedPipeSafe(sys.stdout)  # type: ignore[assignment]
        except (OSError, ValueError):
            pass  # not a real file (a test's capture): nothing to guard
    try:
        result = app(args=argv, prog_name="exdir", standalone_mode=False)
    except SystemExit as exc:
        return int(exc.code or 0)
    except ExdirError as exc:  # re-raised by fail() under --debug: show it, keep the exit code
        traceback.print_exc()
        return exc.exit_code
    except Exception as exc:  # typer vendors click: match its exceptions by shape
        code = getattr(exc, "exit_code", None)
        if hasattr(exc, "format_message"):  # a usage error
            print(f"exdir: {exc.format_message()}", file=sys.stderr)
            return int(code if code is not None else 2)
        if isinstance(code, int):  # Exit
            return code
        if type(exc).__name__ == "Abort":
            print("exdir: aborted", file=sys.stderr)
            return 130
        raise
    return result if isinstance(result, int) else 0


def run() -> None:
    """The console script: one command per process."""
    from . import context

    context.FREEZE_AFTER_LOAD = True
    sys.exit(main())


if __name__ == "__main__":
    run()
