#!/usr/bin/env python3
"""What planning `exdir move --from-file` costs next to one full read of the directory.

Issue 6 asks for a 10,000-mailbox `--from-file` move planned "within a small
multiple of one full read": one bulk read of the recipients and an index in
memory, never a search per mailbox.  For each size a synthetic organisation is
generated with exdir.lab into a temporary file; then, median of --runs:

- open_ldif: loading the file into the in-memory backend;
- full read: one paged search returning every entry with all its attributes;
- plan N: the whole planning of a move of N mailboxes named in a file, as the
  command does it: read_identities, read_topology, resolve_store, read_mailboxes,
  resolve_mailboxes, plan_move (the identities mix mailNicknames, SMTP addresses,
  legacyExchangeDNs and DNs);

and the ratio plan / full read.  N is every mailbox, 100 (over TARGETED_LIMIT: the
read-all path too) and TARGETED_LIMIT (one OR-filter of the identities).

    python3 benchmarks/move_plan.py                      # 10000 mailboxes, 3 runs
    python3 benchmarks/move_plan.py 2000 10000 --runs 5
"""
from __future__ import annotations

import gc
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout

from benchmarks.common import (CountingDirectory, Row, arguments, banner,  # noqa: E402
                               full_read, full_read_kept, measure_sizes, parse, print_row,
                               ratio, timed, timed_open, write_lab)
from exdir import dn as dnu  # noqa: E402
from exdir.backends.base import Directory  # noqa: E402
from exdir.move import (MovePlan, plan_move, read_identities,  # noqa: E402
                        resolve_mailboxes, resolve_store)
from exdir.readers.recipients import TARGETED_LIMIT, read_mailboxes  # noqa: E402
from exdir.readers.topology import read_topology  # noqa: E402


def identities(directory: Directory, store_dn: str) -> list[str]:
    """Every mailbox, named four ways in turn; those not on the target first (so that the
    shorter lists are all moves; the mailboxes already there are skipped by the plan)."""
    out: list[str] = []
    found = directory.search(directory.naming.domain, "(homeMDB=*)",
                             ("mailNickname", "proxyAddresses", "legacyExchangeDN", "homeMDB"))
    there = lambda e: dnu.key(e.text("homeMDB") or "") == dnu.key(store_dn)  # noqa: E731
    for i, e in enumerate(sorted(found, key=lambda e: (there(e), dnu.key(e.dn)))):
        smtp = next((p[5:] for p in e.texts("proxyAddresses") if p.startswith("SMTP:")), None)
        forms = [e.text("mailNickname"), smtp, e.text("legacyExchangeDN"), e.dn]
        out.append(forms[i % 4] or e.dn)
    return out


def plan(directory: Directory, listing: Path, store: str) -> MovePlan:
    """What `exdir move --from-file LISTING --to STORE` does before printing or applying."""
    names = read_identities(str(listing))
    topology = read_topology(directory)
    target = resolve_store(topology, store)
    resolved, _ = resolve_mailboxes(names, read_mailboxes(directory, names))
    return plan_move(topology, resolved, target, directory.naming)


def measure(mailboxes: int, runs: int, workdir: Path, freeze: bool = False) -> Row:
    path, generated = write_lab(workdir, mailboxes, dcs=3)
    t_open, directory = timed_open(runs, path)
    if freeze:  # the loaded directory out of the collector's way (see README)
        gc.collect()
        gc.freeze()
    t_full, entries = timed(runs, lambda: full_read(directory))
    t_kept, _ = timed(runs, lambda: full_read_kept(directory))
    topology = read_topology(directory)
    # the Exchange 5.5 server's store: every mailbox from elsewhere loses its wireless
    # attributes, and those of other groups get a new legacyExchangeDN and an X500
    legacy_server = next(s for s in topology.servers if s.version == "5.5")
    store = next(s for s in topology.stores
                 if not s.public and dnu.key(s.server) == dnu.key(legacy_server.dn))
    names = identities(directory, store.dn)
    row: Row = {
        "mailboxes": mailboxes, "entries": entries, "mb": path.stat().st_size / 1e6,
        "generate": generated, "open": t_open, "full": t_full, "kept": t_kept,
        "store": store.name}
    for label, count in (("all", len(names)), ("100", 100), ("limit", TARGETED_LIMIT)):
        listing = workdir / f"ids-{label}.txt"
        listing.write_text("\n".join(names[:count]) + "\n", encoding="utf-8")
        t_plan, moved = timed(runs, lambda: plan(directory, listing, store.dn))
        counting = CountingDirectory(directory)
        plan(counting, listing, store.dn)
        row[f"n_{label}"] = min(count, len(names))
        row[f"plan_{label}"] = t_plan
        row[f"changes_{label}"] = len(moved.plan)
        row[f"searches_{label}"] = counting.searches
        row[f"reads_{label}"] = counting.reads
    directory.close()
    path.unlink()
    if freeze:
        gc.unfreeze()
    return row


def main(argv: list[str] | None = None) -> int:
    parser = arguments(__doc__, [10000])
    parser.add_argument("--gc-freeze", action="store_true",
                        help="gc.freeze() after loading: the collector skips the directory")
    args = parse(parser, argv, smallest=1)
    rows = measure_sizes(args.sizes, args.runs,
                         lambda n, tmp: measure(n, args.runs, tmp, args.gc_freeze))
    print(banner("move planning benchmark", args.runs) + f"; TARGETED_LIMIT {TARGETED_LIMIT}"
          + ("; gc.freeze() after loading" if args.gc_freeze else ""))
    for r in rows:
        print(f"\n{r['mailboxes']} mailboxes, {r['entries']} entries, {r['mb']:.1f} MB; "
              f"target {r['store']}")
        print(f"  open_ldif {r['open']:.2f}   full read {r['full']:.2f} (entries dropped), "
              f"{r['kept']:.2f} (entries kept)")
        header = ("identities", "path", "plan", "/full", "/kept", "changes", "searches",
                  "reads")
        print_row(header, 10, indent="  ")
        for label in ("all", "100", "limit"):
            n = int(r[f"n_{label}"])
            path = "targeted" if n <= TARGETED_LIMIT else "read-all"
            t_plan = float(r[f"plan_{label}"])
            print_row((f"{n}", path, f"{t_plan:.2f}", ratio(t_plan, r["full"], 1),
                       ratio(t_plan, r["kept"], 1), f"{r[f'changes_{label}']}",
                       f"{r[f'searches_{label}']}", f"{r[f'reads_{label}']}"), 10, indent="  ")
    return 0


if __name__ == "__main__":
    sys.exit(main())
