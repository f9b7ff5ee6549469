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

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout

from benchmarks.read_topology import CountingDirectory, full_read, timed  # noqa: E402
from exdir import lab  # noqa: E402
from exdir.directory import Directory, Entry, open_ldif  # noqa: E402
from exdir.ldif_out import render  # noqa: E402
from exdir.plan import Plan  # noqa: E402
from exdir.rename import RenameScope, org_scope, plan_rename, read_affected  # noqa: E402
from exdir.topology import read_topology  # noqa: E402

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


def full_read_kept(directory: Directory) -> int:
    """Every entry, held in a list as a planner holds what it plans from."""
    return len(list(directory.search(directory.naming.domain, "(objectClass=*)", ("*",))))


def measure(mailboxes: int, runs: int, workdir: Path) -> dict[str, float | int]:
    path = workdir / f"lab-{mailboxes}.ldif"
    with open(path, "w", encoding="utf-8", newline="\n") as fh:
        for chunk in lab.generate(mailboxes=mailboxes):
            fh.write(chunk)
    quiet = lambda message: None  # noqa: E731
    t_open, directory = timed(runs, lambda: open_ldif(str(path), warn=quiet))
    t_full, entries = timed(runs, lambda: full_read(directory))
    t_kept, _ = timed(runs, lambda: full_read_kept(directory))
    t_read, (scope, found) = timed(runs, lambda: affected(directory))
    t_pure, _ = timed(runs, lambda: plan_rename(scope, found, directory.naming))
    del found
    t_plan, plan = timed(runs, lambda: plan_org_rename(directory))
    t_render, text = timed(runs, lambda: render(plan))
    counting = CountingDirectory(directory)
    plan_org_rename(counting)
    row: dict[str, float | int] = {
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
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("sizes", nargs="*", type=int, default=[10000, 50000],
                        help="mailbox counts (default 10000 50000)")
    parser.add_argument("--runs", type=int, default=3, help="runs per timing (median)")
    args = parser.parse_args(argv)
    if args.runs < 1 or any(n < 0 for n in args.sizes):
        parser.error("sizes must be >= 0 and --runs >= 1")
    rows = []
    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="exdir-bench-") as tmp:
        for n in args.sizes:
            print(f"measuring {n} mailboxes ({args.runs} runs each)…", file=sys.stderr)
            rows.append(measure(n, args.runs, Path(tmp)))
    print(f"exdir rename-plan benchmark — Python {sys.version.split()[0]}, {os.cpu_count()} "
          f"CPUs, median of {args.runs} runs, seconds ({time.perf_counter() - began:.0f} s "
          "in all)")
    header = ("mailboxes", "entries", "file MB", "open_ldif", "full read", "read kept",
              "affected", "planner", "plan org", "plan/full", "plan/kept", "render", "changes",
              "searches")
    print("  ".join(f"{h:>9}" for h in header))
    for r in rows:
        cells = (f"{r['mailboxes']}", f"{r['entries']}", f"{r['mb']:.1f}", f"{r['open']:.2f}",
                 f"{r['full']:.2f}", f"{r['kept']:.2f}", f"{r['read']:.2f}", f"{r['pure']:.2f}",
                 f"{r['plan']:.2f}", f"{r['plan'] / r['full']:.1f}" if r["full"] else "-",
                 f"{r['plan'] / r['kept']:.1f}" if r["kept"] else "-",
                 f"{r['render']:.2f}", f"{r['changes']}", f"{r['searches']} ({r['returned']})")
        print("  ".join(f"{c:>9}" for c in cells))
    return 0


if __name__ == "__main__":
    sys.exit(main())
