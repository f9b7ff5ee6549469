#!/usr/bin/env python3
"""`exdir apply --apply` against `ldapmodify -f` on identical fresh slapds (issue 14).

For each size a synthetic organisation (`exdir.lab.generate`, as `exdir lab generate
--mailboxes N` writes it) is bulk-loaded into fresh OpenLDAP slapds on loopback
(tests/servers/slapd.py, the suite's own fixture), `exdir rename org Contoso` is planned
once against one of them and written as a plan file, and then, for each of `--runs`
rounds, two fresh servers are loaded with the same data: one gets the plan through
OpenLDAP's `ldapmodify -f plan.ldif`, the other through `exdir apply plan.ldif --apply
--lab` (a separate process, as an administrator runs it).  The two go first in turn
(alternating), each timed with time.perf_counter around the whole process; best of the
rounds.  After each round both servers must hold the same entries (ldapsearch dumps
compared), so the figure is of the same work done.

    nice -n 10 python3 benchmarks/apply_slapd.py               # 5000 mailboxes, 3 rounds
    nice -n 10 python3 benchmarks/apply_slapd.py 5000 50000 --runs 3
    nice -n 10 python3 benchmarks/apply_slapd.py 5000 --profile prof.out  # + cProfile

`--profile FILE` runs one more exdir apply under cProfile (on its own fresh server) and
prints its 25 costliest functions by cumulative and by own time.  The ratio printed is
throughput exdir / ldapmodify (= ldapmodify's time over exdir's), in wall time and in CPU
time (the client process's plus slapd's meanwhile): on a shared, loaded machine the wall
time is mostly waiting for a core, and the CPU ratio says what each run cost.
"""
from __future__ import annotations

import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run from a checkout

from benchmarks.common import arguments, print_apply_table  # noqa: E402
from exdir import lab  # noqa: E402
from tests.servers.slapd import Slapd, require_slapd  # noqa: E402, F401

_ENV = {**os.environ, "LDAPNOINIT": "1", "PYTHONPATH": str(ROOT)}


def exdir_argv(server: Slapd, *args: str, profile: str | None = None) -> list[str]:
    head = [sys.executable]
    if profile:
        head += ["-m", "cProfile", "-o", profile]
    head += ["-m", "commands.main"]
    return [*head, "--url", server.url, "--bind-dn", server.bind_dn,
            "--password-file", str(server.password_file), *args]


def server_cpu(server: Slapd) -> float:
    """slapd's CPU seconds so far (user + system, from /proc)."""
    fields = Path(f"/proc/{server.pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_timed(argv: list[str], what: str, server: Slapd | None = None) -> tuple[float, float]:
    """Wall seconds, and CPU seconds of the client process plus the server's meanwhile:
    on a loaded machine the wall time is mostly waiting for a core, the CPU is the work."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    s0 = server_cpu(server) if server else 0.0
    t0 = time.perf_counter()
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, env=_ENV)
    took = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if server:
        cpu += server_cpu(server) - s0
    if done.returncode != 0:
        raise SystemExit(f"{what} failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    return took, cpu


def ldapmodify_argv(server: Slapd, plan: Path) -> list[str]:
    from tests.servers.slapd import _tool
    return [_tool("ldapmodify"), "-x", "-H", server.url, "-D", server.bind_dn, "-y",
            str(server.password_file), "-f", str(plan)]


def measure(mailboxes: int, runs: int, work: Path, profile: str | None) -> dict[str, object]:
    data = "".join(lab.generate(mailboxes=mailboxes))
    plan = work / f"plan-{mailboxes}.ldif"
    with Slapd(data_ldif=data) as server:
        argv = exdir_argv(server, "rename", "org", "Contoso")
        done = subprocess.run(argv, cwd=ROOT, capture_output=True, env=_ENV)
        if done.returncode != 0:
            raise SystemExit(done.stderr.decode()[-3000:])
        plan.write_bytes(done.stdout)
    records = sum(1 for line in plan.read_text(encoding="utf-8").splitlines()
                  if line.lower().startswith("changetype:"))
    best_l = best_e = cpu_l = cpu_e = float("inf")
    for round_ in range(runs if runs > 0 else 0):
        with Slapd(data_ldif=data) as a, Slapd(data_ldif=data) as b:
            def by_ldapmodify() -> tuple[float, float]:
                return run_timed(ldapmodify_argv(a, plan), "ldapmodify", a)

            def by_exdir() -> tuple[float, float]:
                undo = work / f"undo-{mailboxes}-{round_}.ldif"
                return run_timed(exdir_argv(b, "-q", "apply", str(plan), "--apply", "--lab",
                                            "--undo-file", str(undo)), "exdir apply", b)
            if round_ % 2 == 0:
                t_l, t_e = by_ldapmodify(), by_exdir()
            else:
                t_e, t_l = by_exdir(), by_ldapmodify()
            if a.dump() != b.dump():
                raise SystemExit("ldapmodify and exdir left different directories")
            print(f"  round {round_ + 1}: ldapmodify {t_l[0]:.2f} s ({t_l[1]:.2f} s CPU), "
                  f"exdir {t_e[0]:.2f} s ({t_e[1]:.2f} s CPU), ratio {t_l[0] / t_e[0]:.3f} "
                  f"(CPU {t_l[1] / t_e[1]:.3f})", file=sys.stderr)
            best_l, best_e = min(best_l, t_l[0]), min(best_e, t_e[0])
            cpu_l, cpu_e = min(cpu_l, t_l[1]), min(cpu_e, t_e[1])
    if profile:
        with Slapd(data_ldif=data) as c:
            run_timed(exdir_argv(c, "-q", "apply", str(plan), "--apply", "--lab", "--undo-file",
                                 str(work / f"undo-prof-{mailboxes}.ldif"), profile=profile),
                      "exdir apply (profiled)")
        import pstats
        stats = pstats.Stats(profile)
        stats.sort_stats("cumulative").print_stats(25)
        stats.sort_stats("tottime").print_stats(25)
    return {"mailboxes": mailboxes, "records": records, "ldapmodify": best_l, "exdir": best_e,
            "cpu_l": cpu_l, "cpu_e": cpu_e}


def main(argv: list[str] | None = None) -> int:
    parser = arguments(__doc__, [5000])
    parser.add_argument("--profile", metavar="FILE", help="also profile one exdir apply")
    args = parser.parse_args(argv)  # --runs 0 with --profile: the profile alone
    require = __import__("tests.servers.slapd", fromlist=["missing_tools"]).missing_tools()
    if require:
        raise SystemExit("missing: " + ", ".join(require))
    rows = []
    with tempfile.TemporaryDirectory(prefix="exdir-bench-") as tmp:
        for n in args.sizes:
            print(f"measuring {n} mailboxes ({args.runs} rounds)…", file=sys.stderr)
            rows.append(measure(n, args.runs, Path(tmp), args.profile))
    print(f"exdir apply vs ldapmodify -f on slapd — Python {sys.version.split()[0]}, "
          f"{os.cpu_count()} CPUs, best of {args.runs} rounds, seconds")
    print_apply_table(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
