#!/usr/bin/env python3
"""`exdir apply --apply` against `ldapmodify -f` on identical fresh Samba AD DCs (issue 14).

The Samba counterpart of apply_slapd.py.  A synthetic organisation
(`exdir.lab.generate`, as `exdir lab generate --mailboxes N` writes it) is loaded once
into a Samba DC template (tests/servers/samba.py, the suite's own fixture: provisioned,
exdir's schema extended, the data added over LDAP), `exdir rename org Contoso` is
planned once against a copy of it, and then, for each of `--runs` rounds, two fresh
copies of the template are started in turn (Samba listens on 127.0.0.1:389, so one at
a time): one gets the plan through OpenLDAP's `ldapmodify -f plan.ldif`, the other
through `exdir apply plan.ldif --apply --lab`, alternating which goes first; each timed
with time.perf_counter around the whole process, best of the rounds.  After each round
the two directories' dumps of the organisation must be equal (ldap3 reads, the
replication metadata left out), so the figure is of the same work done.

    flock /tmp/samba.lock nice -n 10 python3 benchmarks/apply_samba.py        # 500 mailboxes
    flock /tmp/samba.lock nice -n 10 python3 benchmarks/apply_samba.py 500 --runs 3

It needs Debian's samba and ldap-utils and the loopback address free (the suite's
Samba tests take /tmp/samba.lock; so should this).  The CPU column is the client
process's plus every Samba process's meanwhile (Samba serves LDAP from child
processes, so the whole process tree is counted).
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
from tests.servers.samba import SambaDC, SambaLab, require_samba  # noqa: E402

_ENV = {**os.environ, "LDAPNOINIT": "1", "PYTHONPATH": str(ROOT)}
_SKIP = ("replpropertymetadata", "usnchanged", "whenchanged", "dscorepropagationdata",
         "msds-replattributemetadata", "usncreated", "whencreated", "objectguid")


def exdir_argv(dc: SambaDC, *args: str) -> list[str]:
    return [sys.executable, "-m", "commands.main", "--url", dc.url, "--bind-dn", dc.bind_dn,
            "--password-file", str(dc.password_file), *args]


def tree_cpu(pid: int) -> float:
    """CPU seconds so far of pid and every process descending from it (from /proc)."""
    parents: dict[int, int] = {}
    cpu: dict[int, float] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # ended meanwhile
        parents[int(entry)] = int(fields[1])
        cpu[int(entry)] = (int(fields[11]) + int(fields[12])) / tick
    total = 0.0
    for p in cpu:
        q = p
        while q and q != pid:
            q = parents.get(q, 0)
        if q == pid:
            total += cpu[p]
    return total


def run_timed(argv: list[str], what: str, dc: SambaDC) -> tuple[float, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    s0 = tree_cpu(dc.pid or 0)
    t0 = time.perf_counter()
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, env=_ENV)
    took = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    cpu += tree_cpu(dc.pid or 0) - s0
    if done.returncode != 0:
        raise SystemExit(f"{what} failed (exit {done.returncode}):\n"
                         f"{(done.stderr + done.stdout)[-3000:]}")
    return took, cpu


def dump(dc: SambaDC, base: str) -> list[tuple[str, list[tuple[str, list[str]]]]]:
    """The organisation as (dn, sorted (attribute, sorted values)), sorted by DN."""
    with dc.connection() as conn:
        entries = conn.extend.standard.paged_search(base, "(objectClass=*)", attributes=["*"],
                                                    paged_size=1000, generator=True)
        out = []
        for e in entries:
            if e.get("type") != "searchResEntry":
                continue
            attrs = sorted((k.lower(), sorted(str(v) for v in vs))
                           for k, vs in e["raw_attributes"].items() if k.lower() not in _SKIP)
            out.append((e["dn"].lower(), attrs))
    return sorted(out)


def measure(mailboxes: int, runs: int, work: Path, samba: SambaLab) -> dict[str, object]:
    data = "".join(lab.generate(mailboxes=mailboxes))
    print(f"  loading {mailboxes} mailboxes into the template…", file=sys.stderr)
    dc = samba.start(data)
    try:
        done = subprocess.run(exdir_argv(dc, "rename", "org", "Contoso"), cwd=ROOT,
                              capture_output=True, env=_ENV)
        if done.returncode != 0:
            raise SystemExit(done.stderr.decode()[-3000:])
        config = dc.config_dn
    finally:
        samba.close_live()
    plan = work / f"plan-{mailboxes}.ldif"
    plan.write_bytes(done.stdout)
    records = sum(1 for line in plan.read_text(encoding="utf-8").splitlines()
                  if line.lower().startswith("changetype:"))
    best_l = best_e = cpu_l = cpu_e = float("inf")
    for round_ in range(runs):
        results: dict[str, tuple[float, float]] = {}
        dumps: dict[str, object] = {}
        order = ["ldapmodify", "exdir"] if round_ % 2 == 0 else ["exdir", "ldapmodify"]
        for who in order:
            dc = samba.start(data)
            try:
                if who == "ldapmodify":
                    argv = ["ldapmodify", "-x", "-H", dc.url, "-D", dc.bind_dn, "-y",
                            str(dc.password_file), "-f", str(plan)]
                else:
                    undo = work / f"undo-{mailboxes}-{round_}.ldif"
                    argv = exdir_argv(dc, "-q", "apply", str(plan), "--apply", "--lab",
                                      "--undo-file", str(undo))
                results[who] = run_timed(argv, who, dc)
                dumps[who] = dump(dc, config) + dump(dc, dc.domain_dn)
            finally:
                samba.close_live()
        if dumps["ldapmodify"] != dumps["exdir"]:
            raise SystemExit("ldapmodify and exdir left different directories")
        t_l, t_e = results["ldapmodify"], results["exdir"]
        print(f"  round {round_ + 1}: ldapmodify {t_l[0]:.2f} s ({t_l[1]:.2f} s CPU), "
              f"exdir {t_e[0]:.2f} s ({t_e[1]:.2f} s CPU), ratio {t_l[0] / t_e[0]:.3f} "
              f"(CPU {t_l[1] / t_e[1]:.3f})", file=sys.stderr)
        best_l, best_e = min(best_l, t_l[0]), min(best_e, t_e[0])
        cpu_l, cpu_e = min(cpu_l, t_l[1]), min(cpu_e, t_e[1])
    return {"mailboxes": mailboxes, "records": records, "ldapmodify": best_l, "exdir": best_e,
            "cpu_l": cpu_l, "cpu_e": cpu_e}


def main(argv: list[str] | None = None) -> int:
    parser = arguments(__doc__, [500])
    args = parser.parse_args(argv)
    require_samba()
    rows = []
    samba = SambaLab()
    try:
        with tempfile.TemporaryDirectory(prefix="exdir-bench-") as tmp:
            for n in args.sizes:
                print(f"measuring {n} mailboxes ({args.runs} rounds)…", file=sys.stderr)
                rows.append(measure(n, max(args.runs, 1), Path(tmp), samba))
    finally:
        samba.close()
    print(f"exdir apply vs ldapmodify -f on Samba AD — Python {sys.version.split()[0]}, "
          f"{os.cpu_count()} CPUs, best of {max(args.runs, 1)} rounds, seconds")
    print_apply_table(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
