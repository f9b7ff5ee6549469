#!/usr/bin/env python3
"""What planning `exdir move --from-file` costs next to one full read of the directory.

Issue 6 asks for a 10,000-mailbox `--from-file` move planned "within a small
multiple of one full read": one bulk read of the recipients and an index in
memory, never a search per mailbox.  For each size a synthetic organisation is
generated with exdir.lab into a temporary file; then, median of --runs:

- open_ldif: loading the file into ldap3's in-memory directory;
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

import argparse
import gc
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence, TypeVar

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout

from exdir import dn as dnu  # noqa: E402
from exdir import lab  # noqa: E402
from exdir.directory import Directory, Entry, open_ldif  # noqa: E402
from exdir.move import (TARGETED_LIMIT, MovePlan, plan_move, read_identities,  # noqa: E402
                        read_mailboxes, resolve_mailboxes, resolve_store)
from exdir.topology import read_topology  # noqa: E402

T = TypeVar("T")


class CountingDirectory(Directory):
    """Passes searches through and counts them: planning must not search per mailbox."""

    def __init__(self, inner: Directory) -> None:
        self.inner = inner
        self.backend = inner.backend
        self.naming = inner.naming
        self.searches = 0
        self.reads = 0

    def search(self, base: str | None = None, filter: str = "(objectClass=*)",  # noqa: A002
               attributes: Sequence[str] = ("*",), scope: str = "subtree") -> Iterator[Entry]:
        self.searches += 1
        return self.inner.search(base, filter, attributes, scope)

    def read(self, dn: str, attributes: Sequence[str] = ("*",)) -> Entry | None:
        self.reads += 1
        return self.inner.read(dn, attributes)

    def read_many(self, dns: Iterable[str], attributes: Sequence[str] = ("*",)
                  ) -> dict[str, Entry]:
        self.reads += 1
        return self.inner.read_many(dns, attributes)


def timed(runs: int, action: Callable[[], T]) -> tuple[float, T]:
    """The median wall time of `runs` calls, and the last call's result."""
    times: list[float] = []
    result: T | None = None
    for _ in range(runs):
        result = None
        gc.collect()
        start = time.perf_counter()
        result = action()
        times.append(time.perf_counter() - start)
    assert result is not None
    return statistics.median(times), result


def full_read(directory: Directory) -> int:
    """Every entry of the directory through the paged search generator, each dropped."""
    return sum(1 for _ in directory.search(directory.naming.domain, "(objectClass=*)", ("*",)))


def full_read_kept(directory: Directory) -> int:
    """The same read, every entry kept (as anything that indexes them must)."""
    return len(list(directory.search(directory.naming.domain, "(objectClass=*)", ("*",))))


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


def measure(mailboxes: int, runs: int, workdir: Path, freeze: bool = False
            ) -> dict[str, float | int | str]:
    path = workdir / f"lab-{mailboxes}.ldif"
    start = time.perf_counter()
    with open(path, "w", encoding="utf-8", newline="\n") as fh:
        for chunk in lab.generate(mailboxes=mailboxes, dcs=3):
            fh.write(chunk)
    generated = time.perf_counter() - start
    quiet = lambda message: None  # noqa: E731
    t_open, directory = timed(runs, lambda: open_ldif(str(path), warn=quiet))
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
    row: dict[str, float | int | str] = {
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
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("sizes", nargs="*", type=int, default=[10000],
                        help="mailbox counts (default 10000)")
    parser.add_argument("--runs", type=int, default=3, help="runs per timing (median)")
    parser.add_argument("--gc-freeze", action="store_true",
                        help="gc.freeze() after loading: the collector skips the directory")
    args = parser.parse_args(argv)
    if args.runs < 1 or any(n < 1 for n in args.sizes):
        parser.error("sizes must be >= 1 and --runs >= 1")
    rows = []
    with tempfile.TemporaryDirectory(prefix="exdir-bench-") as tmp:
        for n in args.sizes:
            print(f"measuring {n} mailboxes ({args.runs} runs each)…", file=sys.stderr)
            rows.append(measure(n, args.runs, Path(tmp), args.gc_freeze))
    print(f"exdir move planning benchmark — Python {sys.version.split()[0]}, {os.cpu_count()} "
          f"CPUs, median of {args.runs} runs, seconds; TARGETED_LIMIT {TARGETED_LIMIT}"
          + ("; gc.freeze() after loading" if args.gc_freeze else ""))
    for r in rows:
        print(f"\n{r['mailboxes']} mailboxes, {r['entries']} entries, {r['mb']:.1f} MB; "
              f"target {r['store']}")
        print(f"  open_ldif {r['open']:.2f}   full read {r['full']:.2f} (entries dropped), "
              f"{r['kept']:.2f} (entries kept)")
        header = ("identities", "path", "plan", "/full", "/kept", "changes", "searches",
                  "reads")
        print("  " + "  ".join(f"{h:>10}" for h in header))
        for label in ("all", "100", "limit"):
            n = int(r[f"n_{label}"])
            path = "targeted" if n <= TARGETED_LIMIT else "read-all"
            t_plan = float(r[f"plan_{label}"])
            cells = (f"{n}", path, f"{t_plan:.2f}", f"{t_plan / float(r['full']):.1f}",
                     f"{t_plan / float(r['kept']):.1f}", f"{r[f'changes_{label}']}",
                     f"{r[f'searches_{label}']}", f"{r[f'reads_{label}']}")
            print("  " + "  ".join(f"{c:>10}" for c in cells))
    return 0


if __name__ == "__main__":
    sys.exit(main())
