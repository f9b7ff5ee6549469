"""`exdir replication check`: has every domain controller got a plan's changes yet?"""
from __future__ import annotations

import sys
from typing import List, Optional

import typer

from exdir import operations
from exdir.ldif_in import read_plan
from exdir.replication import summary_lines
from exdir.text import printable

from .context import options, print_json

app = typer.Typer(help="Replication between domain controllers.", no_args_is_help=True)


@app.command("check")
def check(
    ctx: typer.Context,
    plan_file: str = typer.Argument(..., metavar="PLAN.ldif",
                                    help="The plan that was applied (a dry run's LDIF)."),
    dc: Optional[List[str]] = typer.Option(
        None, "--dc", metavar="URL",
        help="A DC to check (repeatable; default: every DC of the topology at its "
             "dNSHostName, with --url's scheme, port and credentials)."),
    wait: float = typer.Option(0.0, "--wait", metavar="SECONDS", min=0,
                               help="Check again, backing off, until every DC shows every "
                                    "step or this many seconds have passed."),
) -> None:
    """Read every domain controller and say, per DC, how many of the plan's steps
    show their result there (renamed entries at their new DN, values added there,
    values removed gone) and which do not. On Active Directory the replication
    metadata of each written attribute is shown too (version, originating DC and
    time); a DC holding an older version than another is behind. A DC that cannot
    be reached is named. Exit 0 when every DC shows every step, 1 otherwise. With
    --ldif every DC of the topology reads that file (or give each --dc as a file).

    \b
    Example: exdir --ldif lab.ldif move jsmith --to "EX2/First Storage Group/Mailbox Store (EX2)" > plan.ldif && exdir --ldif lab.ldif apply plan.ldif --apply && exdir --ldif lab.ldif replication check plan.ldif
    """
    opts = options(ctx)
    plan = read_plan(plan_file)
    with opts.open() as directory:
        report = operations.replication_check(
            directory, plan, lambda d: opts.open_dc(d.url), dc_urls=list(dc or []),
            base_url=opts.url if not opts.ldif else None, wait=wait)
    if opts.json:
        print_json(report.as_dict())
    else:
        for line in summary_lines(report):
            print(printable(line))
    if not report.converged:
        names = ", ".join(r.name for r in report.lagging)
        print(f"exdir: not converged: {printable(names)}", file=sys.stderr)
        raise typer.Exit(1)
