"""docs/ is the contract as built: docs/cli.md is what `--help` prints now, and no file
of the project points at a document outside the repository (a clone has only docs/)."""
from __future__ import annotations

import re

import pytest

from commands.main import main
from tests.docs_source import ROOT, make_docs, project_files

DOCS = ("design.md", "exchange.md", "servers.md", "cli.md")


def test_cli_md_is_what_the_generator_writes() -> None:
    """`python3 scripts/make_docs.py --check` passes: the reference has not drifted."""
    generator = make_docs()
    wanted = generator.render()
    current = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    assert current == wanted, "docs/cli.md is out of date: run python3 scripts/make_docs.py"
    assert generator.main(["--check"]) == 0
    assert "\x1b" not in wanted, "help rendered with colours"


def test_every_command_is_documented_as_its_help_prints(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """Each section of docs/cli.md is byte for byte what `COLUMNS=80 exdir ... --help`
    prints: the generator renders the help the user sees, not a copy of its own."""
    monkeypatch.setenv("COLUMNS", "80")
    text = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    sections = dict(re.findall(r"^## (exdir[^\n]*)\n\n```text\n(.*?)```\n", text, re.S | re.M))
    paths = [path for path, _ in make_docs().helps()]
    assert sorted(sections) == sorted(paths)
    assert len(paths) > 20
    for path in paths:
        assert main([*path.split()[1:], "--help"]) == 0
        shown = capsys.readouterr().out
        assert shown.rstrip() + "\n" == sections[path], path


def test_the_docs_exist() -> None:
    for name in DOCS:
        assert (ROOT / "docs" / name).stat().st_size > 500, name


# Names of documents that live outside this repository (spelled in pieces so that this
# file does not match itself).
_OUTSIDE = re.compile("|".join([
    r"DESIGN" r"\.md", r"EXCHANGE" r"\.md", r"REAL-SERVERS" r"\.md", r"(?<![\w-])shared" r"/",
]))


def test_no_file_refers_to_a_path_outside_the_repository() -> None:
    hits = []
    for path in project_files():
        rel = path.relative_to(ROOT).as_posix()
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue  # not a text file
        hits += [f"{rel}:{n}: {line.strip()}" for n, line in enumerate(text.splitlines(), 1)
                 if _OUTSIDE.search(line)]
    assert not hits, "point these at docs/ instead:\n" + "\n".join(hits)
