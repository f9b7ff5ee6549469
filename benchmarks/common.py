"""What every benchmark here shares: the command line, the synthetic lab file, the
median timing, the counting directory and the table printing.

One copy, so that the figures of different benchmarks are measured the same way
(gc.collect() before each run, time.perf_counter, median) and can be set side by side.
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
from typing import Any, Callable, Iterable, Iterator, Sequence, TypeVar

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout

from exdir import lab  # noqa: E402
from exdir.backends.base import Directory, Entry  # noqa: E402
from exdir.backends.memory import open_ldif  # noqa: E402

T = TypeVar("T")
Row = dict[str, Any]

PEAK = r'''
def peak_mb():
    # this process's own peak RSS: VmHWM, which exec resets; Linux carries ru_maxrss
    # over from the parent across fork and exec, so a child of a parent holding a
    # 100k-mailbox lab (600 MB) reported the parent's peak as its own
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
'''
"""Code a child process's script starts with: peak_mb(), its own peak RSS in MB."""


class CountingDirectory(Directory):
    """Passes reads through and counts them: searches, the entries they return, and
    single or bulk reads — planning must not search per object."""

    def __init__(self, inner: Directory) -> None:
        self.inner = inner
        self.backend = inner.backend
        self.naming = inner.naming
        self.searches = 0
        self.entries = 0
        self.reads = 0

    def search(self, base: str | None = None, filter: str = "(objectClass=*)",  # noqa: A002
               attributes: Sequence[str] = ("*",), scope: str = "subtree") -> Iterator[Entry]:
        self.searches += 1
        for entry in self.inner.search(base, filter, attributes, scope):
            self.entries += 1
            yield entry

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
    """The same read, every entry held in a list (as a planner holds what it plans from)."""
    return len(list(directory.search(directory.naming.domain, "(objectClass=*)", ("*",))))


def write_lab(workdir: Path, mailboxes: int, **options: Any) -> tuple[Path, float]:
    """A synthetic organisation from exdir.lab written to workdir, and the seconds it took."""
    path = workdir / f"lab-{mailboxes}.ldif"
    start = time.perf_counter()
    with open(path, "w", encoding="utf-8", newline="\n") as fh:
        for chunk in lab.generate(mailboxes=mailboxes, **options):
            fh.write(chunk)
    return path, time.perf_counter() - start


def timed_open(runs: int, path: Path) -> tuple[float, Directory]:
    """open_ldif timed like the rest (its warnings silenced), and the last directory opened."""
    return timed(runs, lambda: open_ldif(str(path), warn=lambda message: None))


def arguments(doc: str, default_sizes: Sequence[int]) -> argparse.ArgumentParser:
    """The common command line: mailbox counts, then --runs; a benchmark may add its own."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    sizes = " ".join(str(n) for n in default_sizes)
    parser.add_argument("sizes", nargs="*", type=int, default=list(default_sizes),
                        help=f"mailbox counts (default {sizes})")
    parser.add_argument("--runs", type=int, default=3, help="runs per timing (median)")
    return parser


def parse(parser: argparse.ArgumentParser, argv: list[str] | None, smallest: int = 0
          ) -> argparse.Namespace:
    """Parsed arguments; sizes under `smallest` or --runs under 1 are usage errors."""
    args = parser.parse_args(argv)
    if args.runs < 1 or any(n < smallest for n in args.sizes):
        parser.error(f"sizes must be >= {smallest} and --runs >= 1")
    return args


def measure_sizes(sizes: Iterable[int], runs: int, measure: Callable[[int, Path], Row]
                  ) -> list[Row]:
    """measure(mailboxes, workdir) for each size, in one temporary directory, progress on
    stderr (stdout carries the table only)."""
    rows = []
    with tempfile.TemporaryDirectory(prefix="exdir-bench-") as tmp:
        for n in sizes:
            print(f"measuring {n} mailboxes ({runs} runs each)…", file=sys.stderr)
            rows.append(measure(n, Path(tmp)))
    return rows


def banner(title: str, runs: int) -> str:
    """The first line of every report: what ran, on which Python and how many CPUs."""
    return (f"exdir {title} — Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, "
            f"median of {runs} runs, seconds")


def ratio(part: float, whole: float, digits: int) -> str:
    """part / whole to `digits` places, '-' where whole is zero."""
    return f"{part / whole:.{digits}f}" if whole else "-"


def print_row(cells: Sequence[str], width: int, indent: str = "") -> None:
    """One table line: every cell right-aligned in `width`, two spaces between cells."""
    print(indent + "  ".join(f"{c:>{width}}" for c in cells))


def print_table(header: Sequence[str], rows: Iterable[Sequence[str]], width: int,
                indent: str = "") -> None:
    print_row(header, width, indent)
    for cells in rows:
        print_row(cells, width, indent)


def print_apply_table(rows: Iterable[dict[str, Any]]) -> None:
    """The table apply_slapd.py and apply_samba.py print: best seconds of each client,
    the throughput ratio exdir / ldapmodify in wall and in CPU time."""
    print_table(["mailboxes", "records", "ldapmodify", "exdir", "exdir/ldapm", "CPU ldapm",
                 "CPU exdir", "CPU ratio"],
                [[str(r["mailboxes"]), str(r["records"]), f"{r['ldapmodify']:.2f}",
                  f"{r['exdir']:.2f}", f"{r['ldapmodify'] / r['exdir']:.3f}",
                  f"{r['cpu_l']:.2f}", f"{r['cpu_e']:.2f}", f"{r['cpu_l'] / r['cpu_e']:.3f}"]
                 for r in rows], 11)
