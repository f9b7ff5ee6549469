"""The CLI's one error boundary (commands.main._outcome) and its shell completion.

Every failure reaches the user the same way, whichever command raised it: one line on
stderr and the exit code of README's table; --debug puts the traceback before that same
line and keeps the code.  The commands themselves never catch to print.
"""
from __future__ import annotations

import ast
import subprocess
from pathlib import Path

import pytest

from commands.main import main
from tests.labs import SAMPLE, exdir_argv, process_env

ROOT = Path(__file__).resolve().parent.parent
COMMANDS = ROOT / "commands"


def _err_lines(capsys: pytest.CaptureFixture[str]) -> list[str]:
    return capsys.readouterr().err.strip().splitlines()


def test_debug_ends_with_the_same_one_line_and_code(capsys: pytest.CaptureFixture[str],
                                                     tmp_path: Path) -> None:
    args = ["--ldif", str(tmp_path / "nowhere.ldif"), "topology"]
    code = main(args)
    plain = _err_lines(capsys)
    debug_code = main(["--debug", *args])
    debug = _err_lines(capsys)
    assert code == debug_code == 2 and len(plain) == 1, plain
    assert debug[0].startswith("Traceback") and debug[-1] == plain[0], debug


@pytest.mark.parametrize("debug", [False, True])
def test_an_internal_error_ends_with_one_line_naming_it(
        debug: bool, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    import commands.topology as topology_cmd

    def broken(directory):  # type: ignore[no-untyped-def]
        raise RuntimeError("a bug\x1b[2J")

    monkeypatch.setattr(topology_cmd, "read_topology", broken)
    code = main([*(["--debug"] if debug else []), "--ldif", str(SAMPLE), "topology"])
    lines = _err_lines(capsys)
    assert code == 70
    assert lines[-1].startswith("exdir: internal error: RuntimeError: a bug\\x1b[2J"), lines
    assert (len(lines) == 1) != debug, lines


@pytest.mark.parametrize("args", [[], ["legacydn"], ["x500"]])
def test_a_group_without_a_command_shows_its_help_as_written(
        args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    code = main(args)
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("Usage: exdir") and "\\x0a" not in err and "\nCommands:\n" in err


def test_no_command_catches_to_print() -> None:
    """The boundary is one place: no module of commands/ but main.py catches every
    exception (`except Exception`, `except BaseException`, a bare except)."""
    broad = []
    for path in sorted(COMMANDS.glob("*.py")):
        if path.name == "main.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ExceptHandler) and (
                    node.type is None
                    or (isinstance(node.type, ast.Name)
                        and node.type.id in ("Exception", "BaseException"))):
                broad.append(f"{path.name}:{node.lineno}")
    assert not broad, broad
    assert not hasattr(__import__("commands.context").context, "fail")


# --- shell completion (typer's) -------------------------------------------------------------

def _in_bash(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`exdir ARGS` run from bash (typer detects the shell from the parent process); the
    `; exit` keeps bash from exec'ing python in its own place."""
    command = " ".join(f"'{a}'" for a in exdir_argv(*args)) + "; exit $?"
    return subprocess.run(["bash", "-c", command], capture_output=True, text=True, cwd=ROOT,
                          env={**process_env(), **(env or {})}, timeout=60)


def test_show_completion_prints_the_bash_script() -> None:
    done = _in_bash("--show-completion")
    assert done.returncode == 0, done.stderr
    assert "_EXDIR_COMPLETE=complete_bash" in done.stdout
    assert "complete -o default -F _exdir_completion exdir" in done.stdout


def test_install_completion_writes_into_the_users_home(tmp_path: Path) -> None:
    done = _in_bash("--install-completion", env={"HOME": str(tmp_path)})
    assert done.returncode == 0, done.stderr
    script = tmp_path / ".bash_completions" / "exdir.sh"
    assert "_EXDIR_COMPLETE=complete_bash" in script.read_text(encoding="utf-8")
    assert str(script) in (tmp_path / ".bashrc").read_text(encoding="utf-8")


@pytest.mark.parametrize("words, cword, expected", [
    ("exdir legacy", 1, ["legacydn"]),
    ("exdir legacydn ", 2, ["list", "set", "audit"]),
    ("exdir --ldif x.ldif rename a", 4, ["admin-group"]),
])
def test_bash_completes_command_names(words: str, cword: int, expected: list[str]) -> None:
    env = {**process_env(), "_EXDIR_COMPLETE": "complete_bash", "COMP_WORDS": words,
           "COMP_CWORD": str(cword)}
    done = subprocess.run(exdir_argv(), capture_output=True, text=True, cwd=ROOT, env=env,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == expected
