"""exdir's entry point: global options and the command groups."""
from __future__ import annotations

import functools
import os
import re
import signal
import sys
import threading
import traceback
from typing import Callable, Optional, TextIO

import typer

from exdir.errors import ExdirError, Interrupted
from exdir.text import printable

from . import adc as adc_cmd
from . import apply as apply_cmd
from . import check as check_cmd
from . import delegates as delegates_cmd
from . import imf as imf_cmd
from . import lab as lab_cmd
from . import legacydn as legacydn_cmd
from . import move as move_cmd
from . import rename as rename_cmd
from . import replication as replication_cmd
from . import schema as schema_cmd
from . import topology as topology_cmd
from . import x500 as x500_cmd
from .context import Options

app = typer.Typer(
    name="exdir",
    help="Keep the Active Directory side of an Exchange organisation correct.\n\n"
         "\b\nExample: exdir --ldif samples/fabrikam.ldif topology",  # \b: click keeps it whole
    add_completion=True,  # --install-completion, --show-completion (typer: bash, zsh, fish, pwsh)
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


@app.callback()
def root(
    ctx: typer.Context,
    ldif: Optional[str] = typer.Option(None, "--ldif", envvar="EXDIR_LDIF", metavar="PATH",
                                       help="The directory is this LDIF file (see --store)."),
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
    auth: str = typer.Option("simple", "--auth", metavar="simple|ntlm|kerberos",
                             help="Bind with a DN and password (simple; use ldaps or "
                                  "--starttls), NTLM as DOMAIN\\user, or Kerberos with "
                                  "your ticket (kinit first; no password)."),
    sasl_host: Optional[str] = typer.Option(
        None, "--sasl-host", metavar="HOST",
        help="With --auth kerberos: the DC's host name for its service principal "
             "(ldap/HOST), where --url names it by address."),
    json_out: bool = typer.Option(False, "--json", help="Read commands print JSON."),
    quiet: bool = typer.Option(False, "-q", "--quiet", help="No progress or notes on stderr."),
    debug: bool = typer.Option(False, "--debug", help="Show the traceback behind an error."),
    wait_lock: float = typer.Option(5.0, "--wait-lock", metavar="SECONDS", min=0,
                                    help="Wait this long for another exdir run using the "
                                         "--ldif file, then refuse (exit 1)."),
    store: str = typer.Option("auto", "--store", envvar="EXDIR_STORE",
                              metavar="memory|index|auto",
                              help="Hold the --ldif file in memory, or read it through its "
                                   "on-disk index (built once, reused while the file is "
                                   "unchanged); auto: the index for files over 32 MB."),
    index_dir: Optional[str] = typer.Option(None, "--index-dir", envvar="EXDIR_INDEX_DIR",
                                            metavar="PATH",
                                            help="Where --store index keeps its indexes "
                                                 "(default $XDG_CACHE_HOME/exdir or "
                                                 "~/.cache/exdir)."),
) -> None:
    """Keep the Active Directory side of an Exchange organisation correct.

    \b
    Example: exdir --ldif samples/fabrikam.ldif topology
    """
    if store not in ("memory", "index", "auto"):
        raise typer.BadParameter(f"{store!r} is not memory, index or auto",
                                 param_hint="'--store'")
    opts = Options(ldif=ldif, url=url, bind_dn=bind_dn, password_file=password_file,
                   starttls=starttls, ca_file=ca_file, insecure=insecure, auth=auth,
                   sasl_host=sasl_host, json=json_out, quiet=quiet, debug=debug, wait_lock=wait_lock,
                   store=store, index_dir=index_dir)
    if isinstance(ctx.obj, Seen):  # main() passes one: its error boundary reads --debug
        ctx.obj.options = opts
    ctx.obj = opts


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
app.add_typer(replication_cmd.app, name="replication")
app.add_typer(imf_cmd.app, name="imf")
app.add_typer(delegates_cmd.app, name="delegates")


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

    def __init__(self, stream: TextIO) -> None:
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
            return int(self._stream.write(text))
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


def _guard(stream: TextIO, guard: type[_ClosedPipeSafe]) -> TextIO:
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
    return guard(stream)  # type: ignore[return-value]  # a TextIO by delegation


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


@functools.cache
def _command() -> Callable[..., object]:
    """The click command typer makes of `app`, made once per process: typer rebuilds
    it from every command's signature on each call (17 ms, a third of a small
    command's run when main() is called again in one process, as the tests and a
    library caller do).  Calling it directly also leaves sys.excepthook alone: every
    error is _outcome's to report."""
    return typer.main.get_command(app)


def main(argv: list[str] | None = None) -> int:
    """Run exdir: the exit code of the contract (README, "Exit codes"), every failure
    turned into it by one error boundary (_outcome), the last flush of stdout included
    (a redirection to a full disk often fails only there)."""
    sys.stdout = _guard(sys.stdout, _ClosedPipeSafe)
    sys.stderr = _guard(sys.stderr, _StderrSafe)
    bad = _not_text(sys.argv[1:] if argv is None else argv)
    if bad is not None:
        print(f"exdir: {bad}", file=sys.stderr)
        return 2
    previous = _install_signal_handlers()
    seen = Seen()
    try:
        code = _outcome(lambda: _command()(args=argv, prog_name="exdir",
                                           standalone_mode=False, obj=seen), seen)
        flushed = _outcome(sys.stdout.flush, seen)
        return code or flushed  # 1 (found problems), 3 or 4 tell more than 2: kept
    finally:
        for sig, handler in (previous or {}).items():
            signal.signal(sig, handler)  # type: ignore[arg-type]


def _not_text(args: list[str]) -> str | None:
    """Why an argument (or an EXDIR_* variable) is unusable: bytes that are not UTF-8
    arrive as lone surrogates, which no directory value or file name can hold."""
    named = [(f"argument {i}", a) for i, a in enumerate(args, start=1)]
    named += [(k, v) for k, v in os.environ.items() if k.startswith("EXDIR_")]
    for what, text in named:
        if _SURROGATE.search(text):
            return (f"{what} is not UTF-8 text ({printable(text)}): give names and values "
                    "in UTF-8")
    return None


_SURROGATE = re.compile("[\ud800-\udfff]")


class Seen:
    """What the root callback parsed, for the error boundary: whether --debug was given
    (an error before the options are parsed is a usage error, shown without traceback)."""

    options: Options | None = None

    @property
    def debug(self) -> bool:
        return self.options is not None and self.options.debug


def _outcome(call: Callable[[], object], seen: Seen) -> int:
    """The one error boundary: whatever call() raises becomes one line on stderr (user
    input in it escaped) and the exit code of the contract; --debug adds the traceback
    before that line and keeps the code.  Commands raise and never catch to print.

    typer.Exit: a command's own exit code (1: found problems).  typer.TyperException:
    what typer raises for bad usage (its vendored click's ClickException; UsageError is
    exit 2).  ExdirError: its message and exit_code.  Interrupted and Ctrl-C: 128 + the
    signal.  Anything else is a bug: exit 70, with or without --debug."""
    try:
        result = call()
    except typer.Exit as exc:  # (typer returns most; a KeyboardInterrupt is its Exit(130))
        return exc.exit_code
    except typer.Abort:  # end of input at a prompt
        print("exdir: aborted", file=sys.stderr)
        return 130
    except typer.TyperException as exc:
        if _is_help(exc):  # `exdir`, `exdir legacydn`: the help as written, not one line
            print(exc.format_message(), file=sys.stderr)
        else:
            print(f"exdir: {printable(exc.format_message())}", file=sys.stderr)
        return exc.exit_code
    except (Interrupted, KeyboardInterrupt) as stop:
        return _interrupted(stop)
    except SystemExit as exc:  # shell completion (`--install-completion`, _EXDIR_COMPLETE)
        if isinstance(exc.__context__, OSError):  # typer's exit 1 on EPIPE: no refusal
            return _internal_error(exc.__context__, seen)
        return exc.code if isinstance(exc.code, int) else 0 if exc.code is None else 1
    except OutputFailed as exc:  # the traceback would tell nothing more, and stdout is gone
        print(f"exdir: {printable(exc.message)}", file=sys.stderr)
        return exc.exit_code
    except ExdirError as exc:
        if seen.debug:
            traceback.print_exception(exc)
        print(f"exdir: {printable(exc.message)}", file=sys.stderr)
        return exc.exit_code
    except Exception as exc:  # noqa: BLE001 - a bug
        return _internal_error(exc, seen)
    return result if isinstance(result, int) else 0


INTERNAL_ERROR = 70  # EX_SOFTWARE (sysexits.h): "an internal software error"


def _internal_error(exc: BaseException, seen: Seen) -> int:
    """A bug: one line naming it, the traceback with --debug, and 70 either way (never
    Python's 1, which a script reads as "refused")."""
    if seen.debug:
        traceback.print_exception(exc)
    print(f"exdir: internal error: {type(exc).__name__}: {printable(str(exc))}"
          + ("" if seen.debug else " (run with --debug for details)"), file=sys.stderr)
    return INTERNAL_ERROR


def _is_help(exc: typer.TyperException) -> bool:
    """A group run without a command (no_args_is_help): typer raises a usage error whose
    message is the group's help (its NoArgsIsHelpError is not public API)."""
    ctx = getattr(exc, "ctx", None)
    return ctx is not None and exc.format_message() == ctx.get_help()


def run() -> None:
    """The console script: one command per process."""
    from . import context

    context.FREEZE_AFTER_LOAD = True
    sys.exit(main())


if __name__ == "__main__":
    run()
