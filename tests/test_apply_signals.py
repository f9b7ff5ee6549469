"""SIGINT and SIGTERM during an apply (issue 10, item 14): a real `exdir apply --apply`
process, signalled once its journal shows some steps; on slapd the steps done are rolled
back and the directory is as before; on the LDIF file nothing is saved and the journal
never claims a step reached the file.  One line on stderr naming the undo file, exit 130
(SIGINT) or 143 (SIGTERM).
"""
from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from exdir.backends.ldap import open_url
from exdir.backends.memory import open_ldif
from exdir.lab import generate
from exdir.ldif_out import render
from tests.plans import moves_plan, snapshot

ROOT = Path(__file__).resolve().parent.parent
STEPS = 600


def _signal_when_journal_shows(argv: list[str], journal: Path, signum: int,
                               lines: int = 30) -> tuple[int, str]:
    proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if journal.exists() and journal.read_text(encoding="utf-8").count("\n") >= lines:
            proc.send_signal(signum)
            break
        time.sleep(0.005)
    _, err = proc.communicate(timeout=120)
    return proc.returncode, err.decode("utf-8", "replace")


@pytest.mark.slapd
@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_during_an_apply_on_slapd_rolls_back(slapd_factory, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                       signum: int, code: int) -> None:
    server = slapd_factory("".join(generate(mailboxes=STEPS)))
    with open_url(server.url, server.bind_dn, server.password) as d:
        plan = moves_plan(d, STEPS, x500_share=0.0)
        before = snapshot(d)
    plan_file, undo = tmp_path / "plan.ldif", tmp_path / "undo.ldif"
    plan_file.write_text(render(plan), encoding="utf-8")
    argv = [sys.executable, "-m", "commands.main", "--url", server.url, "--bind-dn",
            server.bind_dn, "--password-file", str(server.password_file), "apply",
            str(plan_file), "--apply", "--undo-file", str(undo)]
    rc, err = _signal_when_journal_shows(argv, Path(str(undo) + ".journal"), signum)
    assert rc == code, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert "interrupted" in lines[0] and str(undo) in lines[0], err
    assert "rolled back" in lines[0]
    with open_url(server.url, server.bind_dn, server.password) as d:
        assert snapshot(d) == before
    journal = Path(str(undo) + ".journal").read_text(encoding="utf-8")
    assert "interrupted by" in journal and "rolled back" in journal


@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_during_an_apply_on_an_ldif_file_saves_nothing(tmp_path: Path, signum: int,
                                                                code: int) -> None:
    path = tmp_path / "lab.ldif"
    path.write_text("".join(generate(mailboxes=STEPS)), encoding="utf-8")
    with open_ldif(str(path), warn=lambda m: None) as d:
        plan = moves_plan(d, STEPS, x500_share=0.0)
    original = path.read_bytes()
    plan_file, undo = tmp_path / "plan.ldif", tmp_path / "undo.ldif"
    plan_file.write_text(render(plan), encoding="utf-8")
    argv = [sys.executable, "-m", "commands.main", "--ldif", str(path), "apply",
            str(plan_file), "--apply", "--undo-file", str(undo)]
    rc, err = _signal_when_journal_shows(argv, Path(str(undo) + ".journal"), signum)
    assert rc == code, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert "interrupted" in lines[0] and "nothing was saved" in lines[0], err
    assert path.read_bytes() == original
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lab.ldif", "plan.ldif", "undo.ldif",
                                                          "undo.ldif.journal"]
    journal = Path(str(undo) + ".journal").read_text(encoding="utf-8")
    assert "\ndone " not in journal and "staged 1 " in journal and "saved" not in journal


def test_a_signal_right_after_the_save_says_saved_and_names_the_undo_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """SIGTERM the moment the file is replaced: held until the journal and the message
    are right, then reported as what it is (found by a hostile review: "nothing was
    saved" about a saved file)."""
    import os

    from commands.main import main
    from exdir.backends.memory import LdifDirectory
    from exdir.plan import Mod, Modify, Plan
    from tests.labs import SAMPLE

    path = tmp_path / "lab.ldif"
    path.write_bytes(SAMPLE.read_bytes())
    real_save = LdifDirectory.save

    def save_then_signal(self):  # type: ignore[no-untyped-def]
        real_save(self)
        os.kill(os.getpid(), signal.SIGTERM)

    monkeypatch.setattr(LdifDirectory, "save", save_then_signal)
    plan, undo = tmp_path / "plan.ldif", tmp_path / "undo.ldif"
    plan.write_text(render(Plan((Modify("CN=Kim Akers,OU=Staff,DC=fabrikam,DC=com",
                                        (Mod("add", "description", ("x",)),), "x"),))),
                    encoding="utf-8")
    code = main(["--ldif", str(path), "apply", str(plan), "--apply", "--undo-file", str(undo)])
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert code == 143 and len(lines) == 1, err
    assert "after the save" in lines[0] and "applied 1 step(s)" in lines[0]
    assert str(undo) in lines[0]
    assert b"description: x" in path.read_bytes()
    journal = Path(str(undo) + ".journal").read_text(encoding="utf-8")
    assert journal.splitlines()[-1] == "complete"
