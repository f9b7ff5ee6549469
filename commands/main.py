"""exdir's entry point: global options and the command groups."""
from __future__ import annotations

import os
import signal
import sys
import threading
import traceback
from typing import Optional

import typer

from exdir.errors import ExdirError, Interrupted
from exdir.text import printable

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
         "\b\nExample: exdir --ldif samples/fabrikam.ldif topology",  # \b: click keeps it whole
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
    wait_lock: float = typer.Option(5.0, "--wait-lock", metavar="SECONDS", min=0,
                                    help="Wait this long for another exdir run using the "
                                         "--ldif file, then refuse (exit 1)."),
) -> None:
    """Keep the Active Directory side of an Exchange organisation correct.

    \b
    Example: exdir --ldif samples/fabrikam.ldif topology
    """
    ctx.obj = Options(ldif=ldif, url=url, bind_dn=bind_dn, password_file=password_file,
                      starttls=starttls, ca_file=ca_file, insecure=insecure, auth=auth,
                      json=json_out,
                      quiet=quiet, debug=debug, wait_lock=wait_lock)


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


class OutputFailed(ExdirError):
    """stdout cannot take the output (a full disk, an I/O error): exit 2.

    Not 70: nothing in exdir is broken.  Not 1: a script reads 1 as "refused" or
    "problems found", and a check whose findings never arrived found nothing.  The
    destination the user chose (a redirection) cannot be written, which is the same
    class as an unwritable --report or --undo-file path: bad input, exit 2."""

    exit_code = 2


class _ClosedPipeSafe:
    """stdout that stops writing once the reader has gone (`exdir … | head`), and turns
    a failed write (ENOSPC, EIO, …) into one OutputFailed instead of a traceback.

    click would exit 1 on the broken pipe, which the contract reserves for refusals.
    After either, the descriptor points at /dev/null so that what is still buffered,
    and the interpreter's last flush, go nowhere instead of failing again."""

    def __init__(self, stream):  # type: ignore[no-untyped-def]
        self._stream = stream
        self._closed = False

    def _give_up(self, exc: OSError) -> None:
        self._closed = True
        os.dup2(os.open(os.devnull, os.O_WRONLY), self._stream.fileno())
        if not isinstance(exc, BrokenPipeError):
            raise OutputFailed(f"cannot write to standard output: "
                               f"{exc.strerror or type(exc).__name__}") from None

    def write(self, text: str) -> int:
        if not isinstance(text, str):  # click probes with b"": let it see the TypeError
            return self._stream.write(text)
        if not self._closed and text:  # (click probes with "" too: nothing to write)
            try:
                return self._stream.write(text)
            except OSError as exc:
                self._give_up(exc)
        return len(text)

    def flush(self) -> None:
        if not self._closed:
            try:
                self._stream.flush()
            except OSError as exc:
                self._give_up(exc)

    def __getattr__(self, name: str):  # type: ignore[no-untyped-def]
        return getattr(self._stream, name)


class _StderrSafe(_ClosedPipeSafe):
    """stderr that, when it cannot be written, stays silent: there is nowhere left to
    say so, and the exit code still tells (Python would exit 120 at its last flush)."""

    def _give_up(self, exc: OSError) -> None:
        self._closed = True
        os.dup2(os.open(os.devnull, os.O_WRONLY), self._stream.fileno())


def _guard(stream, guard):  # type: ignore[no-untyped-def]
    """The stream guarded, where it is a real file (not a test's capture).

    Characters its encoding lacks (PYTHONIOENCODING=ascii, a latin-1 terminal) are
    written as backslash escapes instead of ending the run with UnicodeEncodeError."""
    if isinstance(stream, _ClosedPipeSafe) or not hasattr(stream, "fileno"):
        return stream
    try:
        stream.fileno()
    except (OSError, ValueError):
        return stream  # not a real file (a test's capture): nothing to guard
    if hasattr(stream, "reconfigure"):
        stream.reconfigure(errors="backslashreplace")
    return guard(stream)


def _raise_interrupted(signum: int, frame: object) -> None:
    """SIGTERM/SIGINT become exdir.errors.Interrupted, raised where the program is, so
    every `finally` runs: temporary files removed, the lock released, the apply rolled
    back.  A second signal while that cleanup runs is ignored (SIGKILL still works)."""
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, signal.SIG_IGN)
    raise Interrupted(signum)


def _install_signal_handlers() -> dict[int, object] | None:
    """Our handlers for SIGTERM and SIGINT (in the main thread only, signal.signal's
    rule); the previous ones, put back when main() returns."""
    if threading.current_thread() is not threading.main_thread():
        return None
    return {sig: signal.signal(sig, _raise_interrupted)
            for sig in (signal.SIGTERM, signal.SIGINT)}


def _interrupted(stop: BaseException) -> int:
    """One line on stderr, exit 128 + the signal number (143 SIGTERM, 130 SIGINT)."""
    signum = stop.signum if isinstance(stop, Interrupted) else int(signal.SIGINT)
    print(f"exdir: interrupted by {signal.Signals(signum).name}", file=sys.stderr)
    return 128 + signum


def main(argv: list[str] | None = None) -> int:
    """Run exdir; usage errors become one line and exit 2, and so does output that
    cannot be written (OutputFailed), even when it fails only at the last flush."""
    sys.stdout = _guard(sys.stdout, _ClosedPipeSafe)
    sys.stderr = _guard(sys.stderr, _StderrSafe)
    bad = _not_text(sys.argv[1:] if argv is None else argv)
    if bad is not None:
        print(f"exdir: {bad}", file=sys.stderr)
        return 2
    previous = _install_signal_handlers()
    try:
        code = _dispatch(argv)
    except OutputFailed as exc:
        print(f"exdir: {exc.message}", file=sys.stderr)
        return exc.exit_code
    except (Interrupted, KeyboardInterrupt) as stop:
        return _interrupted(stop)
    finally:
        for sig, handler in (previous or {}).items():
            signal.signal(sig, handler)  # type: ignore[arg-type]
    try:
        sys.stdout.flush()  # a redirection to a full disk often fails only here
    except OutputFailed as exc:
        print(f"exdir: {exc.message}", file=sys.stderr)
        return code or exc.exit_code  # 1 (found problems), 3 or 4 tell more: kept
    return code


def _not_text(args: list[str]) -> str | None:
    """Why an argument (or an EXDIR_* variable) is unusable: bytes that are not UTF-8
    arrive as lone surrogates, which no directory value or file name can hold."""
    named = [(f"argument {i}", a) for i, a in enumerate(args, start=1)]
    named += [(k, v) for k, v in os.environ.items() if k.startswith("EXDIR_")]
    for what, text in named:
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            return (f"{what} is not UTF-8 text ({printable(text)}): give names and values "
                    "in UTF-8")
    return None


def _dispatch(argv: list[str] | None) -> int:
    try:
        result = app(args=argv, prog_name="exdir", standalone_mode=False)
    except SystemExit as exc:
        return int(exc.code or 0)
    except OutputFailed:
        raise  # one line in main, with or without --debug: the traceback tells nothing more
    except ExdirError as exc:  # re-raised by fail() under --debug: show it, keep the exit code
        traceback.print_exc()
        return exc.exit_code
    except Exception as exc:  # typer vendors click: match its exceptions by shape
        code = getattr(exc, "exit_code", None)
        if hasattr(exc, "format_message"):  # a usage error
            print(f"exdir: {printable(exc.format_message())}", file=sys.stderr)
            return int(code if code is not None else 2)
        if isinstance(code, int):  # Exit
            return code
        if type(exc).__name__ == "Abort":
            print("exdir: aborted", file=sys.stderr)
            return 130
        # an internal error re-raised by fail() under --debug: the traceback, and the
        # same exit code as without --debug (70), never Python's 1 ("refused")
        traceback.print_exc()
        return 70
    return result if isinstance(result, int) else 0


def run() -> None:
    """The console script: one command per process."""
    from . import context

    context.FREEZE_AFTER_LOAD = True
    sys.exit(main())


if __name__ == "__main__":
    run()
