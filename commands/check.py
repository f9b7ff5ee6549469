"""`exdir check`: the safety preflight — what it found and which operations it blocks."""
from __future__ import annotations

import dataclasses

import typer

from exdir import operations
from exdir.text import printable

from .context import options, print_json


def check(ctx: typer.Context) -> None:
    """Count domain controllers, spot ADC agreements and mixed mode, and say which
    operations each finding blocks. Exit 1 while anything blocks.

    \b
    Example: exdir --url ldaps://dc1.fabrikam.com --bind-dn ADMIN_DN --password-file pw check
    """
    opts = options(ctx)
    with opts.open() as directory:
        checked = operations.check(directory)
        where = directory.describe()
    findings = checked.findings
    dcs = checked.topology.domain_controllers
    if opts.json:
        print_json({"directory": where,
                    "domain_controllers": [dataclasses.asdict(d) for d in dcs],
                    "findings": [{"code": f.code, "severity": f.severity, "message": f.message,
                                  "blocks": f.blocks_shown} for f in findings]})
    else:
        print(printable(f"{where}: {len(dcs)} domain controller(s)"
                        + (": " + ", ".join(d.name + (" (read-only)" if d.read_only else "")
                                            for d in dcs) if dcs else "")))
        if not findings:
            print("no findings: nothing blocks a rename or a move")
        for f in findings:
            label = "BLOCKS " + ", ".join(f.blocks_shown) if f.severity == "blocks" else "warning"
            print(f"[{label}] {printable(f.message)}")
    if any(f.severity == "blocks" for f in findings):
        raise typer.Exit(1)
