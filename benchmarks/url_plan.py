#!/usr/bin/env python3
"""`exdir --url … rename org` against ldap3's own paged read of the same values (issue 13).

For each size a synthetic organisation (`exdir.lab.generate`) is bulk-loaded into a
fresh slapd on loopback (tests/servers/slapd.py, the suite's fixture; slapadd), and in
child processes of their own, each reporting its wall time (from its start, the
interpreter's aside) and peak RSS (`resource.getrusage`):

- the baseline: ldap3's paged search (1,000 a page, SYNC strategy, entries dropped as
  they come) of every legacyExchangeDN, msExchHomeServerName and proxyAddresses value —
  what the rename plan has to read;
- `exdir -q --url URL … rename org Contoso`, the dry run, its plan written to a counter
  (streamed, not held).

    nice -n 10 python3 benchmarks/url_plan.py 100000        # the issue's 100k organisation
    python3 benchmarks/url_plan.py 10000 --runs 1

Issue 13's target: the plan ≤ 2.0 × the baseline, peak ≤ 300 MB.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run from a checkout

from benchmarks.common import PEAK, arguments, parse, ratio  # noqa: E402
from benchmarks.index_plan import child  # noqa: E402
from exdir import lab  # noqa: E402
from tests.servers.slapd import Slapd, missing_tools  # noqa: E402

PAGED = PEAK + r"""
import json, resource, sys, time
from ldap3 import Connection, Server, SUBTREE
url, bind, password_file, base = sys.argv[1:5]
password = open(password_file).read().strip()
start = time.perf_counter()
conn = Connection(Server(url), user=bind, password=password, auto_bind=True)
values = 0
for e in conn.extend.standard.paged_search(
        base, "(|(legacyExchangeDN=*)(msExchHomeServerName=*)(proxyAddresses=*))", SUBTREE,
        attributes=["legacyExchangeDN", "msExchHomeServerName", "proxyAddresses"],
        paged_size=1000, generator=True):
    values += sum(len(v) for v in e.get("raw_attributes", {}).values())
print(json.dumps({"values": values, "seconds": time.perf_counter() - start,
                  "peak_mb": peak_mb()}))
"""


def paged_read(server: Slapd) -> dict[str, float]:
    done = subprocess.run([sys.executable, "-c", PAGED, server.url, server.bind_dn,
                           str(server.password_file), server.suffix],
                          capture_output=True, text=True, check=True)
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def main(argv: list[str] | None = None) -> None:
    parser = arguments(__doc__ or "", (100000,))
    args = parse(parser, argv, smallest=10)
    missing = missing_tools()
    if missing:
        raise SystemExit("missing: " + ", ".join(missing))
    print(f"exdir --url against ldap3's paged read — Python {sys.version.split()[0]}, "
          f"{os.cpu_count()} CPUs, one run each, seconds")
    for n in args.sizes:
        print(f"loading {n} mailboxes into slapd…", file=sys.stderr)
        with Slapd(data_ldif="".join(lab.generate(mailboxes=n))) as server:
            base = paged_read(server)
            r = child("--url", server.url, "--bind-dn", server.bind_dn, "--password-file",
                      str(server.password_file), "rename", "org", "Contoso")
            again = paged_read(server)
        print(f"\n{n} mailboxes: ldap3 paged read of {base['values']:.0f} values "
              f"{base['seconds']:.2f} s, peak {base['peak_mb']:.0f} MB "
              f"(again at the end: {again['seconds']:.2f} s)")
        print(f"  rename org over --url: {r['seconds']:.2f} s, "
              f"{ratio(r['seconds'], base['seconds'], 2)} × the paged read, "
              f"peak {r['peak_mb']:.0f} MB, plan {r['bytes'] / 1e6:.0f} MB")


if __name__ == "__main__":
    main()
