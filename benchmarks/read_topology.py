#!/usr/bin/env python3
"""How fast exdir reads an organisation from an LDIF file, and what Topology costs.

For each size, a synthetic organisation is generated with exdir.lab into a
temporary file; then open_ldif, read_topology, a full paged read of every entry
and legacydn.list_values are each timed over several runs (time.perf_counter,
median).  read_topology should cost a small fraction of a full read: it searches
the Exchange configuration and the Sites container, never the mailboxes.

    python3 benchmarks/read_topology.py                 # 10000 and 50000 mailboxes
    python3 benchmarks/read_topology.py 1000 5000 --runs 5
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
from typing import Callable, Iterator, Sequence, TypeVar

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout

from exdir import lab  # noqa: E402
from exdir.directory import Directory, Entry, open_ldif  # noqa: E402
from exdir.legacydn import list_values  # noqa: E402
from exdir.topology import read_topology  # noqa: E402

T = TypeVar("T")


class CountingDirectory(Directory):
    """Passes searches through and counts them, to show how many read_topology makes."""

    def __init__(self, inner: Directory) -> None:
        self.inner = inner
        self.backend = inner.backend
        self.naming = inner.naming
        self.searches = 0
        self.entries = 0

    def search(self, base: str | None = None, filter: str = "(objectClass=*)",
               attributes: Sequence[str] = ("*",), scope: str = "subtree") -> Iterator[Entry]:
        self.searches += 1
        for entry in self.inner.search(base, filter, attributes, scope):
            self.entries += 1
            yield entry


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
    """Every entry of the directory through the paged search generator."""
    return sum(1 for _ in directory.search(directory.naming.domain, "(objectClass=*)", ("*",)))


def measure(mailboxes: int, runs: int, workdir: Path) -> dict[str, float | int]:
    path = workdir / f"lab-{mailboxes}.ldif"
    start = time.perf_counter()
    with open(path, "w", encoding="utf-8", newline="\n") as fh:
        for chunk in lab.generate(mailboxes=mailboxes, dcs=3, adc=True):
            fh.write(chunk)
    generated = time.perf_counter() - start
    quiet = lambda message: None  # noqa: E731
    t_open, directory = timed(runs, lambda: open_ldif(str(path), warn=quiet))
    t_topo, topo = timed(runs, lambda: read_topology(directory))
    counting = CountingDirectory(directory)
    read_topology(counting)
    t_full, entries = timed(runs, lambda: full_read(directory))
    t_list, values = timed(runs, lambda: sum(1 for _ in list_values(directory)))
    row: dict[str, float | int] = {
        "mailboxes": mailboxes, "entries": entries, "mb": path.stat().st_size / 1e6,
        "generate": generated, "open": t_open, "topology": t_topo, "full": t_full,
        "list": t_list, "values": values, "servers": len(topo.servers),
        "searches": counting.searches, "topo_entries": counting.entries,
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
    with tempfile.TemporaryDirectory(prefix="exdir-bench-") as tmp:
        for n in args.sizes:
            print(f"measuring {n} mailboxes ({args.runs} runs each)…", file=sys.stderr)
            rows.append(measure(n, args.runs, Path(tmp)))
    print(f"exdir read benchmark — Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, "
          f"median of {args.runs} runs, seconds")
    header = ("mailboxes", "entries", "file MB", "open_ldif", "read_topology", "full read",
              "list_values", "topology/full", "topology searches")
    print("  ".join(f"{h:>13}" for h in header))
    for r in rows:
        cells = (f"{r['mailboxes']}", f"{r['entries']}", f"{r['mb']:.1f}", f"{r['open']:.2f}",
                 f"{r['topology']:.3f}", f"{r['full']:.2f}", f"{r['list']:.2f}",
                 f"{r['topology'] / r['full']:.3f}" if r["full"] else "-",
                 f"{r['searches']} ({r['topo_entries']} entries)")
        print("  ".join(f"{c:>13}" for c in cells))
    return 0


if __name__ == "__main__":
    sys.exit(main())
