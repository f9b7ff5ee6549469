#!/usr/bin/env python3
"""How long `exdir rename org` takes to plan, against one full read of the directory.

Issue 5: "a 100k-mailbox organisation must plan in time comparable to one full
read".  For each size a synthetic organisation is generated with exdir.lab into a
temporary file and loaded with open_ldif; then a full paged read of every entry
and the planning of `rename org` (read_topology + read_affected + plan_rename, what
the command does before it prints) are each timed over several runs
(time.perf_counter, median), and so are the two halves of the planning (the
reads, the pure planner) and rendering the plan as LDIF.  A full read is timed
twice: streamed (each entry dropped once counted) and kept in a list, as a
planner keeps what it plans from (Python's garbage collector then walks the
growing heap, which a streamed read never makes it do).

    python3 benchmarks/rename_plan.py                 # 10000 and 50000 mailboxes
    python3 benchmarks/rename_plan.py 1000 5000 --runs 5
"""
from __future__ import annotations

import sys
import time
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout

from benchmarks.common import (CountingDirectory, Row, arguments, banner,  # noqa: E402
                               full_read, full_read_kept, measure_sizes, parse, print_table,
                               ratio, timed, timed_open, write_lab)
from exdir.backends.base import Directory, Entry  # noqa: E402
from exdir.ldif_out import render  # noqa: E402
from exdir.plan import Plan  # noqa: E402
from exdir.readers.recipients import read_affected  # noqa: E402
from exdir.rename import RenameScope, org_scope, plan_rename  # noqa: E402
from exdir.readers.topology import read_topology  # noqa: E402

NEW_NAME = "Contoso"


def affected(directory: Directory) -> tuple[RenameScope, list[Entry]]:
    """read_topology + read_affected: the reads of `exdir rename org Contoso`."""
    scope = org_scope(read_topology(directory), NEW_NAME)
    return scope, read_affected(directory, scope,
                                references=not directory.follows_dn_references)


def plan_org_rename(directory: Directory) -> Plan:
    """What `exdir rename org Contoso` computes before printing (commands/rename.py)."""
    scope, entries = affected(directory)
    return plan_rename(scope, entries, directory.naming,
                       rewrite_references=not directory.follows_dn_references)


def measure(mailboxes: int, runs: int, workdir: Path) -> Row:
    path, _ = write_lab(workdir, mailboxes)
    t_open, directory = timed_open(runs, path)
    t_full, entries = timed(runs, lambda: full_read(directory))
    t_kept, _ = timed(runs, lambda: full_read_kept(directory))
    t_read, (scope, found) = timed(runs, lambda: affected(directory))
    # a partial, not a lambda: no closure keeps `found` alive past the del below
    t_pure, _ = timed(runs, partial(plan_rename, scope, found, directory.naming))
    del found
    t_plan, plan = timed(runs, lambda: plan_org_rename(directory))
    t_render, text = timed(runs, lambda: render(plan))
    counting = CountingDirectory(directory)
    plan_org_rename(counting)
    row: Row = {
        "mailboxes": mailboxes, "entries": entries, "mb": path.stat().st_size / 1e6,
        "open": t_open, "full": t_full, "kept": t_kept, "read": t_read, "pure": t_pure,
        "plan": t_plan, "render": t_render,
        "changes": len(plan), "ldif_mb": len(text.encode("utf-8")) / 1e6,
        "searches": counting.searches, "returned": counting.entries,
    }
    directory.close()
    path.unlink()
    return row


def main(argv: list[str] | None = None) -> int:
    args = parse(arguments(__doc__, [10000, 50000]), argv)
    began = time.perf_counter()
    rows = measure_sizes(args.sizes, args.runs, lambda n, tmp: measure(n, args.runs, tmp))
    print(banner("rename-plan benchmark", args.runs)
          + f" ({time.perf_counter() - began:.0f} s in all)")
    header = ("mailboxes", "entries", "file MB", "open_ldif", "full read", "read kept",
              "affected", "planner", "plan org", "plan/full", "plan/kept", "render", "changes",
              "searches")
    print_table(header, [(f"{r['mailboxes']}", f"{r['entries']}", f"{r['mb']:.1f}",
                          f"{r['open']:.2f}", f"{r['full']:.2f}", f"{r['kept']:.2f}",
                          f"{r['read']:.2f}", f"{r['pure']:.2f}", f"{r['plan']:.2f}",
                          ratio(r["plan"], r["full"], 1), ratio(r["plan"], r["kept"], 1),
                          f"{r['render']:.2f}", f"{r['changes']}",
                          f"{r['searches']} ({r['returned']})") for r in rows], 9)
    return 0


if __name__ == "__main__":
    sys.exit(main())
