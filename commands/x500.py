"""`exdir x500 …`: IMCEAEX addresses, X500 proxies, and who holds a legacyExchangeDN."""
from __future__ import annotations

import os
from typing import Optional

import typer

from exdir import operations, x500, x500_history
from exdir.backends.base import Directory
from exdir.errors import InputError
from exdir.gates import evaluate
from exdir.legacydn import same
from exdir.report import check_report_path
from exdir.text import printable

from . import options as o
from .apply import blocked_note, execute, plan_and_execute
from .context import Options, options, print_json

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
    plan_and_execute(options(ctx), lambda d: operations.x500_add(d, obj, value),
                     do_apply=do_apply, undo_file=undo_file, report=report,
                     verify=o.verify(verify, wait))


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
    plan_and_execute(options(ctx), lambda d: operations.x500_remove(d, obj, value),
                     do_apply=do_apply, undo_file=undo_file, report=report,
                     verify=o.verify(verify, wait))


# --- X500 history across forests ------------------------------------------------------

FROM = typer.Option(None, "--from", metavar="PATH",
                    help="The source organisation as an LDIF export.")
FROM_URL = typer.Option(None, "--from-url", metavar="URL",
                        help="The source directory's server, e.g. ldap://dc1.source.local.")
FROM_BIND_DN = typer.Option(None, "--from-bind-dn", metavar="DN",
                            help="Bind DN for --from-url.")
FROM_PASSWORD_FILE = typer.Option(
    None, "--from-password-file", metavar="PATH",
    help="File holding the --from-url password (or set EXDIR_FROM_PASSWORD).")
FROM_STARTTLS = typer.Option(False, "--from-starttls", help="StartTLS on --from-url.")
FROM_CA_FILE = typer.Option(None, "--from-ca-file", metavar="PATH",
                            help="CA certificate to verify --from-url's server.")
MATCH = typer.Option([], "--match", metavar="KEY",
                     help="After msExchMailboxGuid, match by nickname, smtp or upn "
                          "(repeat or comma-separate; default: nickname,smtp,upn).")
ONLY = typer.Option(None, "--only", metavar="FILE",
                    help="Only the target recipients FILE names, one DN, mailNickname, SMTP "
                         "address or legacyExchangeDN per line.")


def _same_file(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False  # one of them does not exist: opening it says so


def _source(opts: Options, path: str | None, url: str | None, bind_dn: str | None,
            password_file: str | None, starttls: bool, ca_file: str | None) -> Options:
    """The source directory's options: an LDIF export or a server with its own bind."""
    if bool(path) == bool(url):
        raise InputError("name the source directory: --from PATH or --from-url URL (one)")
    if path and opts.ldif and _same_file(path, opts.ldif):
        raise InputError(f"--from {path} is the target's own file: the source is the "
                         "organisation the recipients came from")
    return Options(ldif=path, url=url, bind_dn=bind_dn, password_file=password_file,
                   starttls=starttls, ca_file=ca_file, insecure=opts.insecure, quiet=opts.quiet,
                   wait_lock=opts.wait_lock, store=opts.store, index_dir=opts.index_dir,
                   password_variable="EXDIR_FROM_PASSWORD")


def _matching(opts: Options, source: Options, directory: Directory, match: list[str],
              only: str | None) -> x500_history.Matching:
    with source.open() as source_directory:
        identities = x500_history.read_only_file(only) if only else None
        return operations.x500_history_match(directory, source_directory, keys=match,
                                             only=identities)


def _unmatched_json(matching: x500_history.Matching) -> list[dict[str, object]]:
    return [{"target": u.target, "reason": u.reason, "candidates": list(u.candidates)}
            for u in matching.unmatched]


def _skipped_json(matching: x500_history.Matching) -> list[dict[str, str]]:
    return [{"target": dn, "value": value, "reason": why}
            for dn, value, why in matching.skipped]


def _say_skipped(opts: Options, matching: x500_history.Matching) -> None:
    for dn, value, why in matching.skipped:  # hostile values: opts.warn escapes them
        opts.warn(f"warning: {dn}: source value {value!r} skipped: {why}")


def _say_unmatched(opts: Options, matching: x500_history.Matching) -> None:
    for u in matching.unmatched:
        shown = f" ({'; '.join(u.candidates[:3])})" if u.candidates else ""
        opts.warn(f"{'ambiguous' if u.ambiguous else 'unmatched'}: {u.target}: {u.reason}{shown}")


@app.command("check")
def check_cmd(
    ctx: typer.Context,
    source_path: Optional[str] = FROM, source_url: Optional[str] = FROM_URL,
    source_bind_dn: Optional[str] = FROM_BIND_DN,
    source_password_file: Optional[str] = FROM_PASSWORD_FILE,
    source_starttls: bool = FROM_STARTTLS, source_ca_file: Optional[str] = FROM_CA_FILE,
    match: list[str] = MATCH, only: Optional[str] = ONLY,
) -> None:
    """Which migrated recipients lack their source's legacyExchangeDN or X500 proxies
    (the IMCEAEX bounces after a cross-forest move). Read-only; exit 1 if any lacks one
    or any recipient is unmatched or ambiguous.

    \b
    Example: exdir --ldif samples/fabrikam.ldif x500 check --from samples/litware.ldif  # (exit 1: not synced yet)
    """
    opts = options(ctx)
    source = _source(opts, source_path, source_url, source_bind_dn, source_password_file,
                     source_starttls, source_ca_file)
    with opts.open() as directory:
        matching = _matching(opts, source, directory, match, only)
    if opts.json:
        print_json({"matched": len(matching.matches),
                    "missing": [{"dn": m.target.dn, "source": m.source.dn, "matched_by": m.by,
                                 "missing": [f"X500:{v}" for v in m.missing]}
                                for m in matching.missing],
                    "unmatched": _unmatched_json(matching),
                    "skipped": _skipped_json(matching)})
    else:
        print(f"matched: {len(matching.matches)}")
        print(f"lacking X500 history: {len(matching.missing)}")
        for m in matching.missing:
            print(printable(f"- {m.target.dn} (source {m.source.dn}, by {m.by})"))
            for v in m.missing:
                print(printable(f"    X500:{v}"))
        print(f"unmatched or ambiguous: {len(matching.unmatched)}")
        for u in matching.unmatched:
            print(printable(f"- {u.target}: {u.reason}"
                            + (f" ({'; '.join(u.candidates)})" if u.candidates else "")))
    _say_skipped(opts, matching)
    if matching.missing or matching.unmatched:
        raise typer.Exit(1)


@app.command("sync")
def sync_cmd(
    ctx: typer.Context,
    source_path: Optional[str] = FROM, source_url: Optional[str] = FROM_URL,
    source_bind_dn: Optional[str] = FROM_BIND_DN,
    source_password_file: Optional[str] = FROM_PASSWORD_FILE,
    source_starttls: bool = FROM_STARTTLS, source_ca_file: Optional[str] = FROM_CA_FILE,
    match: list[str] = MATCH, only: Optional[str] = ONLY,
    do_apply: bool = o.APPLY, undo_file: Optional[str] = o.UNDO_FILE,
    report: Optional[str] = o.REPORT,
    verify: bool = o.VERIFY_DCS, wait: float = o.VERIFY_WAIT,
) -> None:
    """Plan adding to each migrated recipient its source's legacyExchangeDN and every
    source X500 it lacks, as X500 proxies (dry run; --apply to apply). Recipients are
    matched by msExchMailboxGuid, then by --match; unmatched and ambiguous ones are
    listed on stderr (with --json, on stdout instead of the plan) and make the exit 1;
    a source value that is no legacyExchangeDN is skipped with a warning.

    \b
    Example: exdir --ldif lab.ldif x500 sync --from samples/litware.ldif --apply
    """
    opts = options(ctx)
    check_report_path(report, undo_file)
    source = _source(opts, source_path, source_url, source_bind_dn, source_password_file,
                     source_starttls, source_ca_file)
    with opts.open(write=do_apply) as directory:
        matching = _matching(opts, source, directory, match, only)
        plan = matching.plan
        if opts.json and not do_apply:
            print_json({"matched": len(matching.matches),
                        "planned": [{"dn": m.target.dn, "source": m.source.dn,
                                     "matched_by": m.by,
                                     "add": [f"X500:{v}" for v in m.missing]}
                                    for m in matching.missing],
                        "unmatched": _unmatched_json(matching),
                        "skipped": _skipped_json(matching)})
            _say_skipped(opts, matching)
            blocked_note(evaluate(directory, plan))
        else:
            _say_unmatched(opts, matching)
            _say_skipped(opts, matching)
            if not plan:
                opts.warn("every matched recipient holds its X500 history already")
            execute(opts, directory, plan, do_apply=do_apply, undo_file=undo_file,
                    report=report, verify=o.verify(verify, wait))
    if matching.unmatched:
        raise typer.Exit(1)
