#!/usr/bin/env python3
"""In-memory `exdir rename org --apply` against its own dry run (issue 14).

For each size a synthetic organisation (`exdir.lab.generate`) is written to a file;
then, for each of `--runs` rounds, `exdir --ldif LAB rename org Contoso` (the dry run:
the plan printed, to /dev/null) and `exdir --ldif COPY rename org Contoso --apply --lab`
(on a fresh copy of the file: check, write, read back, save) run as separate processes,
alternating which goes first; best of the rounds, wall and CPU seconds (the process's
user + system time: on a loaded machine the CPU is the work, the wall time mostly the
wait for a core).  The target is apply / dry run <= 1.5.

    nice -n 10 python3 benchmarks/apply_memory.py                # 10000 mailboxes, 3 rounds
    nice -n 10 python3 benchmarks/apply_memory.py 10000 --profile prof.out
"""
from __future__ import annotations

import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run from a checkout

from benchmarks.common import arguments, print_table, write_lab  # noqa: E402

_ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def run(argv: list[str], what: str) -> tuple[float, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    done = subprocess.run(argv, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                          env=_ENV)
    took = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{what} failed (exit {done.returncode}):\n"
                         f"{done.stderr.decode()[-3000:]}")
    return took, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def exdir(lab: Path, *args: str, profile: str | None = None) -> list[str]:
    head = [sys.executable] + (["-m", "cProfile", "-o", profile] if profile else [])
    return [*head, "-m", "commands.main", "-q", "--ldif", str(lab), "rename", "org", "Contoso",
            *args]


def measure(mailboxes: int, runs: int, work: Path, profile: str | None) -> dict[str, float]:
    lab, _ = write_lab(work, mailboxes)
    best = {"dry": float("inf"), "apply": float("inf"), "dry_cpu": float("inf"),
            "apply_cpu": float("inf")}
    for round_ in range(runs):
        copy = work / f"copy-{round_}.ldif"
        shutil.copyfile(lab, copy)
        undo = work / f"undo-{round_}.ldif"

        def dry() -> tuple[float, float]:
            return run(exdir(lab), "dry run")

        def apply() -> tuple[float, float]:
            return run(exdir(copy, "--apply", "--lab", "--undo-file", str(undo)), "apply")
        if round_ % 2 == 0:
            d, a = dry(), apply()
        else:
            a, d = apply(), dry()
        print(f"  round {round_ + 1}: dry run {d[0]:.2f} s ({d[1]:.2f} CPU), apply {a[0]:.2f} s "
              f"({a[1]:.2f} CPU), apply/dry {a[0] / d[0]:.2f} (CPU {a[1] / d[1]:.2f})",
              file=sys.stderr)
        best = {"dry": min(best["dry"], d[0]), "apply": min(best["apply"], a[0]),
                "dry_cpu": min(best["dry_cpu"], d[1]), "apply_cpu": min(best["apply_cpu"], a[1])}
        copy.unlink()
    if profile:
        copy = work / "copy-prof.ldif"
        shutil.copyfile(lab, copy)
        run(exdir(copy, "--apply", "--lab", "--undo-file", str(work / "undo-prof.ldif"),
                  profile=profile), "apply (profiled)")
        import pstats
        stats = pstats.Stats(profile)
        stats.sort_stats("cumulative").print_stats(30)
        stats.sort_stats("tottime").print_stats(20)
    return best


def main(argv: list[str] | None = None) -> int:
    parser = arguments(__doc__, [10000])
    parser.add_argument("--profile", metavar="FILE", help="also profile one apply")
    args = parser.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory(prefix="exdir-bench-") as tmp:
        for n in args.sizes:
            print(f"measuring {n} mailboxes ({args.runs} rounds)…", file=sys.stderr)
            rows.append((n, measure(n, args.runs, Path(tmp), args.profile)))
    print(f"exdir rename org --apply vs its dry run, in memory — Python "
          f"{sys.version.split()[0]}, {os.cpu_count()} CPUs, best of {args.runs}, seconds")
    print_table(["mailboxes", "dry run", "apply", "apply/dry", "CPU dry", "CPU apply", "CPU a/d"],
                [[str(n), f"{b['dry']:.2f}", f"{b['apply']:.2f}", f"{b['apply'] / b['dry']:.2f}",
                  f"{b['dry_cpu']:.2f}", f"{b['apply_cpu']:.2f}",
                  f"{b['apply_cpu'] / b['dry_cpu']:.2f}"] for n, b in rows], 10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
