"""`rename org` and `legacydn audit` on the indexed store, against one streaming parse.

For each size: a lab (exdir.lab.generate) written to a temporary file; the baseline is
one streaming parse of that file with the `ldif` package (every record read, nothing
kept), measured in this run; then each command runs as `exdir --store index` in a child
process of its own (its wall time, and its peak memory from resource.getrusage in the
child), first on a fresh index folder (the index is built), then again on the unchanged
file (the index reused); the in-memory store's run of the same command is the second
comparison (`--memory`, off by default at 100k: it takes minutes and 1.5 GB).

    python3 benchmarks/index_plan.py 100000            # the issue's 100k organisation
    python3 benchmarks/index_plan.py 20000 --memory    # with the in-memory store too

Ratios are against the parse of the same file in the same run, never absolute times.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout

from benchmarks.common import PEAK, arguments, parse, ratio, write_lab  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent

CHILD = PEAK + r"""
import json, resource, sys, time, io, contextlib
sys.argv = ["exdir"] + sys.argv[1:]
from commands.main import main
class Count(io.TextIOBase):  # the plan counted as it is written, not held
    n = 0
    def write(self, text):
        self.n += len(text)
        return len(text)
out = Count()
start = time.perf_counter()
with contextlib.redirect_stdout(out):
    code = main(sys.argv[1:])
took = time.perf_counter() - start
print(json.dumps({"code": code, "seconds": took, "bytes": out.n,
                  "peak_mb": peak_mb()}),
      file=sys.stderr)
"""

PARSE = PEAK + r"""
import json, resource, sys, time, ldif
start = time.perf_counter()
n = 0
with open(sys.argv[1], "rb") as fh:
    for _ in ldif.LDIFParser(fh).parse():
        n += 1
print(json.dumps({"records": n, "seconds": time.perf_counter() - start,
                  "peak_mb": peak_mb()}))
"""


def child(*args: str) -> dict[str, float]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EXDIR_")}
    env["PYTHONPATH"] = str(ROOT)
    done = subprocess.run([sys.executable, "-c", CHILD, "-q", *args], cwd=ROOT, env=env,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    line = done.stderr.strip().splitlines()[-1]
    result = json.loads(line)
    assert result["code"] == 0, done.stderr
    return result  # type: ignore[no-any-return]


def streaming_parse(path: Path) -> dict[str, float]:
    done = subprocess.run([sys.executable, "-c", PARSE, str(path)], capture_output=True,
                          text=True, check=True)
    return json.loads(done.stdout)  # type: ignore[no-any-return]


COMMANDS = {"rename org": ("rename", "org", "Contoso"), "legacydn audit": ("legacydn", "audit")}


def main(argv: list[str] | None = None) -> None:
    parser = arguments(__doc__ or "", (100000,))
    parser.add_argument("--memory", action="store_true",
                        help="also time the in-memory store (minutes and GBs at 100k)")
    parser.add_argument("--command", action="append", choices=sorted(COMMANDS),
                        help="only this command (repeatable; default: all)")
    args = parse(parser, argv, smallest=10)
    print(f"exdir indexed store — Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, "
          "one run each, seconds (ratio to one streaming parse in the same run)")
    with tempfile.TemporaryDirectory(prefix="exdir-bench-") as tmp:
        for n in args.sizes:
            print(f"generating {n} mailboxes…", file=sys.stderr)
            path, _ = write_lab(Path(tmp), n)
            size_mb = path.stat().st_size / 1e6
            base = streaming_parse(path)
            print(f"\n{n} mailboxes, {size_mb:.1f} MB, {base['records']} records; "
                  f"streaming parse (ldif package) {base['seconds']:.2f} s, "
                  f"peak {base['peak_mb']:.0f} MB")
            print(f"  {'command':<16}{'run':<22}{'seconds':>9}{'/parse':>8}{'peak MB':>9}")
            for name, command in COMMANDS.items():
                if args.command and name not in args.command:
                    continue
                folder = Path(tmp) / f"index-{n}-{name.replace(' ', '-')}"
                runs = [("index, first (build)", folder), ("index, second (reuse)", folder)]
                for label, where in runs:
                    print(f"  {name}: {label}…", file=sys.stderr)
                    r = child("--ldif", str(path), "--store", "index", "--index-dir",
                              str(where), *command)
                    print(f"  {name:<16}{label:<22}{r['seconds']:>9.2f}"
                          f"{ratio(r['seconds'], base['seconds'], 2):>8}{r['peak_mb']:>9.0f}")
                if args.memory:
                    r = child("--ldif", str(path), "--store", "memory", *command)
                    print(f"  {name:<16}{'memory':<22}{r['seconds']:>9.2f}"
                          f"{ratio(r['seconds'], base['seconds'], 2):>8}{r['peak_mb']:>9.0f}")
                index_mb = sum(p.stat().st_size for p in folder.iterdir()) / 1e6
                print(f"  {'':<16}{'index on disk':<22}{index_mb:>8.0f}M"
                      f"{ratio(index_mb, size_mb, 2):>8}")
            started = time.perf_counter()
            again = streaming_parse(path)
            print(f"  streaming parse again: {again['seconds']:.2f} s "
                  f"({time.perf_counter() - started:.1f} s with the interpreter's start)")


if __name__ == "__main__":
    main()
