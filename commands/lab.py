"""`exdir lab generate`: a synthetic organisation for tests and benchmarks."""
from __future__ import annotations

import sys
from typing import Optional

import typer

from exdir.errors import InputError

app = typer.Typer(help="Synthetic lab directories.", no_args_is_help=True)


@app.command("generate")
def generate(
    ctx: typer.Context,
    mailboxes: int = typer.Option(..., "--mailboxes", min=0, help="How many mailbox users."),
    org: str = typer.Option("Fabrikam", "--org", help="Organisation name."),
    admin_groups: int = typer.Option(2, "--admin-groups", min=1, help="Administrative groups."),
    dcs: int = typer.Option(1, "--dcs", min=1, help="Domain controllers (nTDSDSA objects)."),
    adc: bool = typer.Option(False, "--adc", help="Mixed mode with a connection agreement."),
    seed: int = typer.Option(0, "--seed", help="Same seed, same directory."),
    output: Optional[str] = typer.Option(None, "--output", "-o", metavar="PATH",
                                         help="Write here instead of stdout."),
) -> None:
    """Write a synthetic Exchange organisation as LDIF: servers of every version,
    stores, MTAs, DCs and mailboxes spread over them.

    \b
    Example: exdir lab generate --mailboxes 10000 --admin-groups 3 -o lab.ldif
    """
    from exdir import lab

    if not org.strip():
        raise InputError("--org must not be empty")
    if output:  # a new file only, linked into place when complete
        lab.write(output, mailboxes=mailboxes, org=org, admin_groups=admin_groups, dcs=dcs,
                  adc=adc, seed=seed)
    else:
        for chunk in lab.generate(mailboxes=mailboxes, org=org, admin_groups=admin_groups,
                                  dcs=dcs, adc=adc, seed=seed):
            sys.stdout.write(chunk)
