"""`exdir adc check`: mailboxes split or at risk in an organisation with an ADC."""
from __future__ import annotations

from typing import Optional

import typer

from exdir import operations
from exdir.health import read_move_report

from .context import options
from .findings import report

# activationStyle (docs/exchange.md, samples/README.md): when an agreement runs
ACTIVATION = {0: "never", 1: "selected times", 2: "always"}

app = typer.Typer(help="Active Directory Connector checks.", no_args_is_help=True)


@app.command("check")
def adc_check(
    ctx: typer.Context,
    since_report: Optional[str] = typer.Option(
        None, "--since-report", metavar="R",
        help="An exdir move report (.json/.xml): say which moved mailboxes changed back."),
) -> None:
    """List split mailboxes (homeMDB, homeMTA and msExchHomeServerName naming different
    servers), home attributes naming nothing, mixed mode and the connection
    agreements, and moves an agreement wrote over. Exit 1 if any finding.

    \b
    Example: exdir --ldif lab.ldif move jsmith --to "EX2/First Storage Group/Mailbox Store (EX2)" --apply --report move.json && exdir --ldif lab.ldif adc check --since-report move.json
    """
    opts = options(ctx)
    moved = read_move_report(since_report) if since_report else None
    with opts.open() as directory:
        checked = operations.adc_check(directory, moved)
    topology, findings = checked.topology, checked.findings
    org = topology.organization
    agreements = [{"name": a.name, "direction": a.direction,
                   "activation": ACTIVATION.get(a.activation_style, "unknown")
                   if a.activation_style is not None else "unknown"}
                  for a in topology.agreements]
    context: dict[str, object] = {
        "organisation": f"{org.name} (" + ("mode unknown: msExchMixedMode not set"
                                           if org.mixed_mode is None else f"{org.mode} mode")
                        + ")",
        "connection agreements": [f"{a['name']}: {a['direction']}, activation {a['activation']}"
                                  for a in agreements],
    }
    data: dict[str, object] = {
        "organisation": {"name": org.name, "legacyExchangeDN": org.legacy_dn,
                         "mixed_mode": org.mixed_mode},
        "connection_agreements": agreements,
        "warnings": checked.warnings,
    }
    for warning in checked.warnings:
        opts.warn(f"warning: {warning}")
    if moved is not None:
        applied = sum(1 for b in moved if b.get("outcome") == "applied")
        context["moves checked"] = f"{applied} applied in {since_report} (of {len(moved)} listed)"
        data["moves_checked"] = applied
    report(opts, findings, context, "ADC check", data)
