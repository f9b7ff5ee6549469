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

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout

from benchmarks.common import (CountingDirectory, Row, arguments, banner,  # noqa: E402
                               full_read, measure_sizes, parse, print_table, ratio, timed,
                               timed_open, write_lab)
from exdir.readers.recipients import list_values  # noqa: E402
from exdir.readers.topology import read_topology  # noqa: E402


def measure(mailboxes: int, runs: int, workdir: Path) -> Row:
    path, generated = write_lab(workdir, mailboxes, dcs=3, adc=True)
    t_open, directory = timed_open(runs, path)
    t_topo, topo = timed(runs, lambda: read_topology(directory))
    counting = CountingDirectory(directory)
    read_topology(counting)
    t_full, entries = timed(runs, lambda: full_read(directory))
    t_list, values = timed(runs, lambda: sum(1 for _ in list_values(directory)))
    row: Row = {
        "mailboxes": mailboxes, "entries": entries, "mb": path.stat().st_size / 1e6,
        "generate": generated, "open": t_open, "topology": t_topo, "full": t_full,
        "list": t_list, "values": values, "servers": len(topo.servers),
        "searches": counting.searches, "topo_entries": counting.entries,
    }
    directory.close()
    path.unlink()
    return row


def main(argv: list[str] | None = None) -> int:
    args = parse(arguments(__doc__, [10000, 50000]), argv)
    rows = measure_sizes(args.sizes, args.runs, lambda n, tmp: measure(n, args.runs, tmp))
    print(banner("read benchmark", args.runs))
    header = ("mailboxes", "entries", "file MB", "open_ldif", "read_topology", "full read",
              "list_values", "topology/full", "topology searches")
    print_table(header, [(f"{r['mailboxes']}", f"{r['entries']}", f"{r['mb']:.1f}",
                          f"{r['open']:.2f}", f"{r['topology']:.3f}", f"{r['full']:.2f}",
                          f"{r['list']:.2f}", ratio(r["topology"], r["full"], 3),
                          f"{r['searches']} ({r['topo_entries']} entries)") for r in rows], 13)
    return 0


if __name__ == "__main__":
    sys.exit(main())
