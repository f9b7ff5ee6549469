"""Printing health findings the same way for every check command."""
from __future__ import annotations

from typing import Sequence

import typer

from exdir.findings import Finding
from exdir.text import printable

from .context import Options, print_json


def report(opts: Options, findings: Sequence[Finding], context: dict[str, object],
           title: str, json_context: dict[str, object] | None = None) -> None:
    """Findings as text (what, meaning, fix) or JSON; exit 1 while any remain.

    json_context: what --json shows beside the findings (typed values for scripts);
    the text context by default."""
    if opts.json:
        print_json({**(context if json_context is None else json_context),
                    "finding_count": len(findings),
                    "findings": [{"code": f.code, "dn": f.dn, "message": f.message,
                                  "meaning": f.meaning, "fix": f.fix, "details": f.details}
                                 for f in findings]})
    else:
        for key, value in context.items():
            if isinstance(value, list):
                print(f"{key}: {len(value)}")
                for item in value:
                    print(f"  {printable(str(item))}")
            else:
                print(f"{key}: {printable(str(value))}")
        print(f"{title}: {len(findings)} finding(s)")
        for f in findings:  # they quote directory values: escaped
            print(f"- [{f.code}] {printable(f.message)}")
            print(f"    means: {printable(f.meaning)}")
            print(f"    fix:   {printable(f.fix)}")
    if findings:
        raise typer.Exit(1)
