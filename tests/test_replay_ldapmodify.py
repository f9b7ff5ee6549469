"""The dry-run LDIF replayed with OpenLDAP's real ldapmodify ends where `exdir apply` ends.

Two slapd servers with the same data: A gets the dry run through `ldapmodify`, B gets
`exdir apply --apply`; their end states must be identical entry by entry (and equal to
the state the plan describes), and the undo file replayed with ldapmodify must bring A
back to where it started.  Values only base64 keeps intact (a newline, a leading space)
must survive both paths.
"""
from __future__ import annotations

import shlex
from pathlib import Path
from typing import Callable

import pytest

from commands.main import main
from exdir.backends.base import Directory
from exdir.backends.ldap import open_url
from exdir.lab import generate
from exdir.ldif_out import render
from exdir.plan import Plan, Rename
from tests.plans import (Snapshot, differences, mailboxes, mixed_plan, moves_plan, simulate,
                         slapd_state, snapshot, tricky_values_plan)
from tests.servers.slapd import MakeSlapd, Slapd

pytestmark = pytest.mark.slapd

SAMPLE = Path(__file__).resolve().parent.parent / "samples" / "fabrikam.ldif"


def options(server: Slapd) -> list[str]:
    return ["--url", server.url, "--bind-dn", server.bind_dn,
            "--password-file", str(server.password_file)]


def same(expected: Snapshot, actual: Snapshot, where: str) -> None:
    assert expected == actual, f"{where}:\n" + "\n".join(differences(expected, actual))


def replay(server: Slapd, text: str, what: str) -> str:
    """ldapmodify the text into the server; its output, for the record."""
    done = server.ldapmodify(text)
    command = ["ldapmodify", "-x", "-H", server.url, "-D", server.bind_dn, "-y",
               str(server.password_file)]
    assert done.returncode == 0, f"ldapmodify of the {what} failed ({done.returncode}): " \
                                 f"{done.stderr}"
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    shown = "\n    ".join(lines[:4] + (["..."] if len(lines) > 4 else []))
    print(f"\n$ {shlex.join(command)} < {what}\n    {shown}\n    ({len(lines)} lines, exit 0)")
    return done.stdout


def lab_data() -> str:
    return "".join(generate(mailboxes=80))


PLANS: dict[str, tuple[Callable[[], str], Callable[[Directory], Plan]]] = {
    "fabrikam: moves, admin-group rename, add, delete, X500": (
        lambda: SAMPLE.read_text(encoding="utf-8"), lambda d: mixed_plan(d)),
    "lab: 60 moves and X500 adds": (lab_data, lambda d: moves_plan(d, 60)),
}


@pytest.mark.parametrize("name", list(PLANS))
def test_ldapmodify_of_the_dry_run_and_exdir_apply_end_in_the_same_state(
        slapd_factory: MakeSlapd, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        name: str) -> None:
    data, build = PLANS[name]
    text = data()
    a, b = slapd_factory(text), slapd_factory(text)
    with open_url(a.url, a.bind_dn, a.password) as d:
        plan = build(d)
        before = snapshot(d)
    same(before, slapd_state(b), "A and B start alike")
    plan_file, undo = tmp_path / "plan.ldif", tmp_path / "undo.ldif"
    plan_file.write_text(render(plan), encoding="utf-8")

    capsys.readouterr()
    assert main([*options(a), "apply", str(plan_file)]) == 0  # the dry run, against A
    dry_run = capsys.readouterr().out
    assert dry_run.startswith("version: 1\n")
    assert ("changetype: modrdn" in dry_run) == any(isinstance(c, Rename) for c in plan)
    with capsys.disabled():
        output = replay(a, dry_run, "the dry run")
    assert output.count("modifying entry") + output.count("adding new entry") + \
        output.count("deleting entry") + output.count("modifying rdn of entry") == len(plan)

    assert main([*options(b), "-q", "apply", str(plan_file), "--apply", "--lab", "--undo-file",
                 str(undo)]) == 0
    after_a, after_b = slapd_state(a), slapd_state(b)
    same(after_a, after_b, "ldapmodify (A) and exdir apply (B)")
    same(simulate(before, plan, follows_references=False), after_b, "the planned state")
    assert after_b != before

    with capsys.disabled():
        replay(a, undo.read_text(encoding="utf-8"), "the undo file")
    same(before, slapd_state(a), "the undo file replayed with ldapmodify")


def test_a_newline_and_a_leading_space_round_trip_through_both(
        slapd_factory: MakeSlapd, tmp_path: Path) -> None:
    text = SAMPLE.read_text(encoding="utf-8")
    a, b = slapd_factory(text), slapd_factory(text)
    with open_url(a.url, a.bind_dn, a.password) as d:
        plan, values = tricky_values_plan(d)
        boxes = [box.dn for box in mailboxes(d)[:2]]
        before = snapshot(d)
    assert any("\n" in v for v in values) and any(v.startswith(" ") for v in values)
    dry_run = render(plan)
    assert "description::" in dry_run  # the unsafe values went out as base64
    plan_file, undo = tmp_path / "plan.ldif", tmp_path / "undo.ldif"
    plan_file.write_text(dry_run, encoding="utf-8")
    replay(a, dry_run, "the dry run")
    assert main([*options(b), "-q", "apply", str(plan_file), "--apply", "--lab", "--undo-file",
                 str(undo)]) == 0
    for server in (a, b):
        with open_url(server.url, server.bind_dn, server.password) as d:
            held = [v for dn in boxes for v in (d.read(dn) or _none(dn)).texts("description")]
        assert sorted(held) == sorted(values), server  # exdir's reader sees them intact
        seen = [v for attributes in server.entries().values()
                for v in attributes.get("description", [])]
        for value in values:  # and so does OpenLDAP's ldapsearch
            assert value in seen, (server, value)
    same(slapd_state(a), slapd_state(b), "ldapmodify (A) and exdir apply (B)")
    replay(a, undo.read_text(encoding="utf-8"), "the undo file")
    same(before, slapd_state(a), "the undo file replayed with ldapmodify")


def _none(dn: str):  # type: ignore[no-untyped-def]
    raise AssertionError(f"{dn} is gone")
