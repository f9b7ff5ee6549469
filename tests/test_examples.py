"""Every worked example runs as printed: the `Example:` that ends each command's
`--help`, and every `exdir ...` line of README.md's ```sh blocks.

How an example is run (the rules this test states):

- In a temporary folder holding a copy of samples/, the folder a reader of the README
  stands in (the repository root); `lab.ldif` is what the README's
  `cp samples/fabrikam.ldif lab.ldif` makes (made first for a help example that reads
  `--ldif lab.ldif`; the README's own `cp` line makes it there), so an example that
  writes changes a copy of the sample, never the sample.
- A line is split as a shell would (quotes, `#` comments); `A && B` runs B only when A
  exits 0, `> FILE` sends standard output to FILE.  Any other shell syntax fails the
  test: an example must copy cleanly.
- `exdir ARGS` runs exdir in this process (commands.main.main, what the console script
  calls); `cp SRC DST` copies a file; other commands (`pip install`, `scripts/test.sh`)
  are not examples of exdir and are left out.
- An example that names a real server (`--url`) is skipped: the suite has none at that
  address (tests/test_cli.py and the slapd tests run the same commands on loopback).
- The expected exit code is 0, or N where the line says `(exit N` in its comment.
- README blocks run top to bottom in one folder, as a reader pastes them; each help
  example runs alone in a fresh folder.
"""
from __future__ import annotations

import re
import shlex
import shutil
from pathlib import Path

import pytest

from commands.main import main
from tests.docs_source import ROOT, make_docs

ENV = ("EXDIR_LDIF", "EXDIR_URL", "EXDIR_BIND_DN", "EXDIR_PASSWORD")


def help_examples() -> list[tuple[str, str]]:
    """(command path, example line) for every `Example:` in every command's help."""
    found = []
    for path, text in make_docs().helps():
        found += [(path, m) for m in re.findall(r"^\s*Example: (.+)$", text, re.M)]
    return found


def readme_lines() -> list[str]:
    """The lines of README.md's ```sh blocks that hold an `exdir` command."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    lines = []
    for block in re.findall(r"^```sh\n(.*?)^```", text, re.S | re.M):
        lines += [line for line in block.splitlines()
                  if re.search(r"(^|&&\s*)(exdir|cp)\s", line.strip())]
    return lines


def _tokens(line: str) -> list[str]:
    lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    return list(lexer)


def _segments(line: str) -> list[tuple[list[str], str | None]]:
    """(argv, file standard output goes to) for each command of `A && B > F`."""
    segments: list[tuple[list[str], str | None]] = []
    argv: list[str] = []
    target: str | None = None
    tokens = _tokens(line)
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if token == "&&":
            segments.append((argv, target))
            argv, target = [], None
        elif token == ">":
            i += 1
            target = tokens[i]
        elif token and set(token) <= set("|&;<>()"):
            pytest.fail(f"example uses shell syntax {token!r} beyond && and >: {line}")
        else:
            argv.append(token)
        i += 1
    segments.append((argv, target))
    return segments


def expected_exit(line: str) -> int:
    comment = line.split(" #", 1)[1] if " #" in line else ""
    found = re.search(r"\(exit (\d+)", comment)
    return int(found.group(1)) if found else 0


def run_line(line: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """Run one example line in the current folder: (exit code, what it said on stderr)."""
    segments = _segments(line)
    if any("--url" in argv for argv, _ in segments if argv[:1] == ["exdir"]):
        pytest.skip(f"needs a real server (--url): {line}")
    code, err = 0, ""
    for argv, target in segments:
        if argv[:1] == ["cp"]:
            assert len(argv) == 3 and target is None, line
            shutil.copyfile(argv[1], argv[2])
            continue
        if argv[:1] != ["exdir"]:
            continue  # pip install, scripts/test.sh: not an exdir example
        capsys.readouterr()
        code = main(argv[1:])
        captured = capsys.readouterr()
        err = captured.err
        if target is not None:
            Path(target).write_text(captured.out, encoding="utf-8")
        if code != 0:
            break
    return code, err


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder like the repository root: a copy of samples/."""
    for name in ENV:
        monkeypatch.delenv(name, raising=False)
    shutil.copytree(ROOT / "samples", tmp_path / "samples")
    monkeypatch.chdir(tmp_path)
    return tmp_path


HELP_EXAMPLES = help_examples()


@pytest.mark.parametrize("path,line", HELP_EXAMPLES, ids=[p for p, _ in HELP_EXAMPLES])
def test_help_example_runs(path: str, line: str, folder: Path,
                           capsys: pytest.CaptureFixture[str]) -> None:
    assert line.startswith("exdir "), line
    words = path.split()[1:]
    last = [argv for argv, _ in _segments(line) if argv[:1] == ["exdir"]][-1]
    assert any(last[i:i + len(words)] == words for i in range(len(last))), \
        f"the example of {path} does not run {path}: {line}"
    if "--ldif lab.ldif" in line:  # the README's lab copy, for the examples that change it
        shutil.copyfile(folder / "samples" / "fabrikam.ldif", folder / "lab.ldif")
    code, err = run_line(line, capsys)
    assert code == expected_exit(line), f"{line}\nexit {code}\n{err}"


def test_every_command_ends_with_an_example() -> None:
    """Each command (not a group) ends its help with one worked example."""
    paths = {path for path, _ in HELP_EXAMPLES}
    leaves = {path for path, text in make_docs().helps() if "\nCommands:\n" not in text}
    assert leaves <= paths, sorted(leaves - paths)


def test_readme_examples_run(folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lines = readme_lines()
    assert "cp samples/fabrikam.ldif lab.ldif" in "\n".join(lines), \
        "the README must say where its lab.ldif comes from"
    ran = 0
    for line in lines:
        try:
            code, err = run_line(line, capsys)
        except pytest.skip.Exception:
            continue
        ran += 1
        assert code == expected_exit(line), f"{line}\nexit {code}\n{err}"
    assert ran >= 10
