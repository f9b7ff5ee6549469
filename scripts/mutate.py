#!/usr/bin/env python3
"""Mutation testing for exdir: do the fast tests notice when the engine is broken?

Each mutant is a one-place change to a module, made with Python's ast and written
back as text (the rest of the file stays byte for byte): `==`/`!=`, `<`/`<=`,
`>`/`>=`, `in`/`not in`, `is`/`is not`, `and`/`or`, `not x` -> `x`,
True/False, 0/1, n -> n+1 and n-1 on other integers, `return X` -> `return
None`, `all(...)`/`any(...)`, and a statement of an if/else/for/while body
replaced by `pass`.  A mutant is *killed* when the tests that cover its module
fail, *survives* when they pass, *timeout* when they run past --timeout.

The repository is copied once per job into a temporary directory (no .git, no
caches); mutants are written there only, so a run never touches the working
tree other people edit.  Every module's tests are run once unmutated first: a
red baseline would make every mutant look killed, so the run stops.

    scripts/mutate.py                                   # the five default modules
    scripts/mutate.py --modules exdir/plan.py --sample 60 --seed 1 --jobs 2
    scripts/mutate.py --modules exdir/checks.py --list  # the mutants, nothing run
    scripts/mutate.py --json > mutants.json             # machine-readable result
    scripts/mutate.py --rerun mutants.json              # only the earlier survivors

Survivors print as `file:line: original -> mutant`.  Exit 0 when nothing
survived, 1 when something did, 2 on bad arguments or a red baseline.  Not in
CI: a full run takes many minutes.  No dependency beyond pytest.
"""
from __future__ import annotations

import argparse
import ast
import glob
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MODULES = ["exdir/apply.py", "exdir/plan.py", "exdir/ldif_out.py",
                   "exdir/ldif_in.py", "exdir/checks.py"]
# The fast tests that cover each module (globs, relative to the repository root).
TESTS: dict[str, list[str]] = {
    "exdir/apply.py": ["tests/test_apply*.py", "tests/test_plan.py", "tests/test_mutants.py",
                       "tests/test_index_store.py"],
    "exdir/plan.py": ["tests/test_plan.py", "tests/test_ldif_roundtrip.py",
                      "tests/test_mutants.py"],
    "exdir/ldif_out.py": ["tests/test_ldif_roundtrip.py", "tests/test_plan.py",
                          "tests/test_mutants.py"],
    "exdir/ldif_in.py": ["tests/test_ldif_roundtrip.py", "tests/test_plan.py",
                         "tests/test_mutants.py", "tests/test_loading.py",
                         "tests/test_hostile_input.py"],
    "exdir/checks.py": ["tests/test_check.py", "tests/test_move.py", "tests/test_mutants.py",
                        "tests/test_planners_pure.py"],
}
FALLBACK_TESTS = ["tests"]
PYTEST = [sys.executable, "-m", "pytest", "-x", "-q", "-m", "not slow and not samba and not slapd",
          "-p", "no:cacheprovider"]
IGNORE = shutil.ignore_patterns(".git", "__pycache__", "*.pyc", ".mypy_cache", ".pytest_cache",
                                "*.egg-info", ".venv", "build", "dist")

_COMPARE_SWAP = {ast.Eq: ast.NotEq, ast.NotEq: ast.Eq, ast.Lt: ast.LtE, ast.LtE: ast.Lt,
                 ast.Gt: ast.GtE, ast.GtE: ast.Gt, ast.In: ast.NotIn, ast.NotIn: ast.In,
                 ast.Is: ast.IsNot, ast.IsNot: ast.Is}


@dataclass
class Mutant:
    module: str
    line: int
    original: str   # the source line(s), whitespace collapsed
    mutant: str     # the same line(s) mutated
    kind: str
    start: tuple[int, int]   # (line, col) of the replaced text, 1-based line, 0-based col
    end: tuple[int, int]
    replacement: str
    status: str = "pending"  # killed, survived, timeout, error
    seconds: float = 0.0

    def where(self) -> str:
        return f"{self.module}:{self.line}: {_short(self.original)} -> {_short(self.mutant)}"


def _short(text: str, limit: int = 110) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "…"


# --- generating mutants ----------------------------------------------------------------

def _docstring_nodes(tree: ast.AST) -> set[int]:
    """ids of docstring expressions: mutating them changes no behaviour."""
    out: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                    and isinstance(body[0].value.value, str):
                out.add(id(body[0]))
    return out


def _skipped_nodes(tree: ast.AST) -> set[int]:
    """ids of every node inside an annotation, a decorator (declarations, not logic) or
    an f-string (positions unreliable there)."""
    out: set[int] = set()
    roots: list[ast.AST] = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            roots.extend(a.annotation for a in node.args.args + node.args.kwonlyargs
                         + node.args.posonlyargs if a.annotation is not None)
            if node.returns is not None:
                roots.append(node.returns)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            roots.extend(node.decorator_list)
        elif isinstance(node, ast.AnnAssign):
            roots.append(node.annotation)
        elif isinstance(node, ast.JoinedStr):
            roots.append(node)
    for root in roots:
        out.update(id(n) for n in ast.walk(root))
    return out


def _copy_with(node: ast.AST, **changes: object) -> ast.AST:
    new = type(node)(**{f: getattr(node, f) for f in node._fields})
    for k, v in changes.items():
        setattr(new, k, v)
    return ast.copy_location(new, node)


def _candidates(tree: ast.Module) -> list[tuple[ast.AST, str, str]]:
    """(node whose source text is replaced, replacement text, kind) for every mutation."""
    skip = _skipped_nodes(tree)
    docs = _docstring_nodes(tree)
    out: list[tuple[ast.AST, str, str]] = []

    def expr(node: ast.AST, new: ast.AST, kind: str) -> None:
        out.append((node, "(" + ast.unparse(new) + ")", kind))

    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Compare):
            for i, op in enumerate(node.ops):
                swap = _COMPARE_SWAP.get(type(op))
                if swap is not None:
                    ops = list(node.ops)
                    ops[i] = swap()
                    expr(node, _copy_with(node, ops=ops), "compare")
        elif isinstance(node, ast.BoolOp):
            other = ast.Or() if isinstance(node.op, ast.And) else ast.And()
            expr(node, _copy_with(node, op=other), "boolop")
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            expr(node, node.operand, "not")
        elif isinstance(node, ast.Constant) and not isinstance(node.value, (str, bytes)):
            value = node.value
            if value is True or value is False:
                expr(node, ast.Constant(not value), "constant")
            elif isinstance(value, int):
                news = {1 - value} if value in (0, 1) else {value + 1, value - 1}
                for n in sorted(news):
                    expr(node, ast.Constant(n), "constant")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) \
                and node.func.id in ("all", "any"):
            out.append((node.func, "any" if node.func.id == "all" else "all", "all/any"))
        elif isinstance(node, ast.Return) and node.value is not None and not (
                isinstance(node.value, ast.Constant) and node.value.value is None):
            out.append((node.value, "None", "return"))
        if isinstance(node, (ast.If, ast.For, ast.While)):
            for body in (node.body, node.orelse):
                for stmt in body:
                    if isinstance(stmt, ast.Pass) or id(stmt) in docs:
                        continue
                    out.append((stmt, "pass", "statement"))
    return out


def _lines(source: str) -> list[str]:
    """Physical lines as ast numbers them: split at \\n only (str.splitlines also splits
    at \\f, \\x1c, U+2028..., which would shift every later line)."""
    parts = source.split("\n")
    return [part + "\n" for part in parts[:-1]] + [parts[-1]]


def _offset(lines: list[str], line: int, col: int) -> int:
    """Character offset of (1-based line, 0-based UTF-8 byte column) in the joined source."""
    text = lines[line - 1]
    char_col = len(text.encode("utf-8")[:col].decode("utf-8", "replace"))
    return sum(len(lines[i]) for i in range(line - 1)) + char_col


def mutants_of(module: str, source: str) -> list[Mutant]:
    tree = ast.parse(source)
    lines = _lines(source)
    reference = ast.dump(tree)
    seen: set[str] = set()
    out: list[Mutant] = []
    for node, replacement, kind in _candidates(tree):
        start = (node.lineno, node.col_offset)
        end = (node.end_lineno, node.end_col_offset)
        a, b = _offset(lines, *start), _offset(lines, *end)
        mutated = source[:a] + replacement + source[b:]
        try:
            dumped = ast.dump(ast.parse(mutated))
        except SyntaxError:
            continue
        if dumped == reference or dumped in seen:
            continue
        seen.add(dumped)
        first, last = start[0], end[0]
        before = "".join(lines[first - 1:last])
        line_start = _offset(lines, first, 0)
        after = before[:a - line_start] + replacement + before[b - line_start:]
        out.append(Mutant(module, first, " ".join(before.split()), " ".join(after.split()),
                          kind, start, end, replacement))
    out.sort(key=lambda m: (m.line, m.start[1], m.kind, m.replacement))
    return out


def apply_mutant(source: str, m: Mutant) -> str:
    lines = _lines(source)
    a, b = _offset(lines, *m.start), _offset(lines, *m.end)
    return source[:a] + m.replacement + source[b:]


# --- running ---------------------------------------------------------------------------

def test_files(root: Path, module: str, override: list[str] | None) -> list[str]:
    patterns = override or TESTS.get(module, FALLBACK_TESTS)
    files: list[str] = []
    for pattern in patterns:
        for f in sorted(glob.glob(str(root / pattern))):
            rel = os.path.relpath(f, root)
            if rel not in files:
                files.append(rel)
    return files


def run_tests(tree: Path, files: list[str], timeout: float,
              log: Path | None = None) -> tuple[str, float]:
    """('passed'|'failed'|'timeout'|'error', seconds) of the fast tests in `tree`;
    pytest's output goes to `log` (baseline runs) or nowhere."""
    # EXDIR_FIGURE_PLANS: figure (b) of tests/test_apply_figures.py with 20 plans per
    # backend, not 100, so one mutant of apply.py costs seconds, not a minute
    env = dict(os.environ, PYTHONPATH=str(tree), PYTHONDONTWRITEBYTECODE="1",
               EXDIR_FIGURE_PLANS=os.environ.get("EXDIR_FIGURE_PLANS", "20"))
    env.pop("CI", None)  # a skipped server test must not turn into a failure here
    started = time.monotonic()
    sink = open(log, "wb") if log is not None else subprocess.DEVNULL
    try:
        proc = subprocess.Popen(PYTEST + files, cwd=tree, env=env, stdout=sink,
                                stderr=subprocess.STDOUT, start_new_session=True)
    finally:
        if log is not None:
            sink.close()
    try:
        rc = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        return "timeout", time.monotonic() - started
    seconds = time.monotonic() - started
    if rc == 0:
        return "passed", seconds
    if rc in (1, 2, 3):  # test failed, collection/import error, internal error: the mutant broke it
        return "failed", seconds
    return "error", seconds  # 4 usage error, 5 no tests: the selection is wrong, not the mutant


def make_tree(source_root: Path, parent: Path, n: int) -> Path:
    tree = parent / f"tree{n}"
    shutil.copytree(source_root, tree, ignore=IGNORE, symlinks=True)
    probe = subprocess.run([sys.executable, "-c", "import exdir; print(exdir.__file__)"],
                           cwd=tree, env=dict(os.environ, PYTHONPATH=str(tree)),
                           capture_output=True, text=True)
    where = Path(probe.stdout.strip() or "/nonexistent").resolve()
    if tree.resolve() not in where.parents:
        raise SystemExit(f"mutate: the copy imports exdir from {where}, not from {tree}")
    return tree


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Mutation testing of exdir modules against the fast tests.")
    p.add_argument("--modules", nargs="+", default=DEFAULT_MODULES, metavar="PATH")
    p.add_argument("--tests", nargs="+", metavar="GLOB",
                   help="test files for every module (default: the built-in mapping)")
    p.add_argument("--limit", type=int, help="the first N mutants of each module")
    p.add_argument("--sample", type=int, help="N mutants of each module, chosen at random")
    p.add_argument("--seed", type=int, default=0, help="seed for --sample (default 0)")
    p.add_argument("--jobs", type=int, default=1, help="mutants run in parallel (one tree each)")
    p.add_argument("--timeout", type=float,
                   help="seconds per mutant (default: 3 x the baseline run + 10)")
    p.add_argument("--root", type=Path, default=ROOT, help="repository to copy (default: this one)")
    p.add_argument("--list", action="store_true", help="list the mutants, run nothing")
    p.add_argument("--json", action="store_true", help="the result as JSON on stdout")
    p.add_argument("--rerun", type=Path, metavar="JSON",
                   help="only the mutants that survived in this earlier --json result (matched "
                        "by module and text, so edits that move lines keep them)")
    args = p.parse_args(argv)
    again: set[tuple[str, str, str]] | None = None
    if args.rerun is not None:
        try:
            earlier = json.loads(args.rerun.read_text(encoding="utf-8"))["modules"]
        except (OSError, ValueError, KeyError) as exc:
            print(f"mutate: cannot read {args.rerun}: {exc}", file=sys.stderr)
            return 2
        again = {(m["module"], m["original"], m["mutant"]) for r in earlier.values()
                 for m in r["results"] if m["status"] == "survived"}
    root = args.root.resolve()

    plan: dict[str, list[Mutant]] = {}
    sources: dict[str, str] = {}
    for module in args.modules:
        path = root / module
        if not path.is_file():
            print(f"mutate: no such module {module}", file=sys.stderr)
            return 2
        sources[module] = path.read_text(encoding="utf-8")
        ms = mutants_of(module, sources[module])
        total = len(ms)
        if again is not None:
            ms = [m for m in ms if (m.module, m.original, m.mutant) in again]
        if args.sample is not None and args.sample < len(ms):
            ms = sorted(random.Random(args.seed).sample(ms, args.sample),
                        key=lambda m: (m.line, m.start[1]))
        if args.limit is not None:
            ms = ms[:args.limit]
        plan[module] = ms
        print(f"{module}: {len(ms)} of {total} mutants", file=sys.stderr)
    if args.list:
        for ms in plan.values():
            for m in ms:
                print(f"{m.where()}  [{m.kind}]")
        return 0

    with tempfile.TemporaryDirectory(prefix="exdir-mutate-") as tmp:
        trees = [make_tree(root, Path(tmp), n) for n in range(max(1, args.jobs))]
        free = list(trees)
        lock = threading.Lock()
        results: dict[str, dict[str, object]] = {}
        for module, ms in plan.items():
            files = test_files(trees[0], module, args.tests)
            if not files:
                print(f"mutate: no test files for {module}", file=sys.stderr)
                return 2
            log = Path(tmp) / "baseline.log"
            outcome, base = run_tests(trees[0], files, timeout=600, log=log)
            if outcome != "passed":
                tail = [ln for ln in log.read_text(errors="replace").splitlines()
                        if ln.startswith(("FAILED", "ERROR"))][:5]
                print(f"mutate: the tests for {module} do not pass unmutated ({outcome}): "
                      f"{' '.join(files)}" + "".join(f"\n  {t}" for t in tail)
                      + "\n(a tree mid-edit? --root DIR runs on another copy, e.g. a "
                      "`git archive` of a commit)", file=sys.stderr)
                return 2
            timeout = args.timeout or 3 * base + 10

            def one(m: Mutant) -> Mutant:
                with lock:
                    tree = free.pop()
                target = tree / m.module
                try:
                    target.write_text(apply_mutant(sources[m.module], m), encoding="utf-8")
                    outcome, m.seconds = run_tests(tree, files, timeout)
                    m.status = {"failed": "killed", "passed": "survived"}.get(outcome, outcome)
                finally:
                    target.write_text(sources[m.module], encoding="utf-8")
                    with lock:
                        free.append(tree)
                print(f"  {m.status:8} {m.where()}", file=sys.stderr, flush=True)
                return m

            pool = ThreadPoolExecutor(max_workers=len(trees))
            try:
                done = list(pool.map(one, ms))
            finally:  # ^C: drop the queued mutants, let the running ones end, clean up
                pool.shutdown(wait=True, cancel_futures=True)
            counts = {s: sum(m.status == s for m in done)
                      for s in ("killed", "survived", "timeout", "error")}
            results[module] = {"tests": files, "baseline_seconds": round(base, 2),
                               "timeout_seconds": round(timeout, 1), "mutants": len(done),
                               **counts, "results": [asdict(m) for m in done]}

    if args.json:
        json.dump({"modules": results}, sys.stdout, indent=1)
        print()
    else:
        for module, r in results.items():
            n = r["mutants"]
            detected = r["killed"] + r["timeout"]
            pct = 100.0 * detected / n if n else 100.0
            print(f"{module}: {r['killed']} killed, {r['survived']} survived, "
                  f"{r['timeout']} timeout, {r['error']} error of {n} ({pct:.1f}% detected)")
        for r in results.values():
            for m in r["results"]:
                if m["status"] == "survived":
                    print(Mutant(**{**m, "start": tuple(m["start"]), "end": tuple(m["end"])}).where())
    survived = any(r["survived"] for r in results.values())
    return 1 if survived else 0


if __name__ == "__main__":
    sys.exit(main())
