"""The apply engine (issue 3, DESIGN "Apply"), on the in-memory directory and on real slapd.

Every plan comes from the directory's own data (tests/plans.py); every expected end
state is derived from the plan by an independent model (plans.simulate) or is the
state before the plan, compared entry by entry.
"""
from __future__ import annotations

from functools import partial

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from commands.main import main
from exdir import dn as dnu
from exdir import apply as apply_engine
from exdir.gates import Safety
from exdir.backends.base import Directory, Entry
from exdir.errors import DirectoryError
from exdir.ldif_in import parse, read_plan
from exdir.ldif_out import render, value_line
from exdir.plan import Add, Change, Delete, Mod, Modify, Plan, Rename
from tests.labs import LDIF_SLAPD, Lab, same_state, sample_lab, undo_files
from tests.plans import (Faulty, fail_at, homes, mailboxes, mixed_plan, simulate, snapshot,
                         write_by_hand)

# The engine's own tests run in a lab with the ADC stopped: the safety gates have
# their tests in tests/test_gates.py.
run = partial(apply_engine.run, safety=Safety(lab=True, adc_stopped=True))


@pytest.fixture(params=LDIF_SLAPD)
def lab(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Lab:
    return sample_lab(request, tmp_path, monkeypatch)


def first_delete(plan: Plan) -> tuple[int, Modify]:
    """The first modify step that deletes a value (number from 1, the step)."""
    for number, change in enumerate(plan.changes, start=1):
        if isinstance(change, Modify) and any(m.op == "delete" and m.values for m in change.mods):
            return number, change
    raise AssertionError("the plan deletes no value")


# --- dry run, apply, re-run ---------------------------------------------------------------

def test_dry_run_writes_nothing_and_reports_every_step_pending(lab: Lab) -> None:
    original = lab.file_bytes()
    undo = lab.tmp / "undo.ldif"
    with lab.open() as d:
        plan = mixed_plan(d)
        before = snapshot(d)
        result = run(d, plan, apply=False, undo_file=str(undo))
        assert snapshot(d) == before
    assert (result.outcome, result.exit_code) == ("checked", 0)
    assert len(result.steps) == len(plan)
    assert {s.status for s in result.steps} == {"pending"}
    assert {s.outcome for s in result.steps} == {"not run"}
    assert [s.kind for s in result.steps].count("modrdn") == 1
    assert result.undo_file is None and undo_files(lab.tmp) == []
    same_state(before, lab.state())
    assert lab.file_bytes() == original


def test_apply_reaches_the_planned_state_and_a_rerun_does_nothing(lab: Lab) -> None:
    original = lab.file_bytes()
    with lab.open() as d:
        plan = mixed_plan(d)
        before = snapshot(d)
        expected = simulate(before, plan, d.follows_dn_references)
        result = run(d, plan, apply=True, undo_file=str(lab.tmp / "undo.ldif"))
    assert (result.outcome, result.exit_code) == ("applied", 0), result.message
    assert {s.outcome for s in result.steps} == {"applied"}
    assert expected != before
    same_state(expected, lab.state())
    if lab.kind == "ldif":
        assert lab.file_bytes() != original  # rewritten: a fresh load saw the new state
    saved = lab.file_bytes()
    with lab.open() as d:
        checked = run(d, plan, apply=False)
        assert {s.status for s in checked.steps} == {"done"}
        again = run(d, plan, apply=True, undo_file=str(lab.tmp / "undo2.ldif"))
    assert (again.outcome, again.exit_code) == ("nothing to do", 0)
    assert {s.outcome for s in again.steps} == {"skipped"}
    assert not (lab.tmp / "undo2.ldif").exists()
    same_state(expected, lab.state())
    assert lab.file_bytes() == saved


def test_the_undo_file_restores_the_exact_prior_state(lab: Lab) -> None:
    undo, redo = lab.tmp / "undo.ldif", lab.tmp / "redo.ldif"
    with lab.open() as d:
        plan = mixed_plan(d)
        before = snapshot(d)
        expected = simulate(before, plan, d.follows_dn_references)
        assert run(d, plan, apply=True, undo_file=str(undo)).exit_code == 0
    with lab.open() as d:
        result = run(d, read_plan(undo), apply=True, undo_file=str(redo))
    assert (result.outcome, result.exit_code) == ("applied", 0), result.message
    same_state(before, lab.state())
    with lab.open() as d:  # the undo of the undo is the plan again
        assert run(d, read_plan(redo), apply=True, undo_file=str(lab.tmp / "u3.ldif")
                   ).exit_code == 0
    same_state(expected, lab.state())


def test_the_undo_file_is_on_disk_before_the_first_write(lab: Lab) -> None:
    original = lab.file_bytes()
    undo = lab.tmp / "undo.ldif"
    seen: dict[str, object] = {}

    def at_first_write(n: int, what: str, dn: str) -> None:
        if n == 1:
            seen["exists"] = undo.exists()
            seen["text"] = undo.read_text(encoding="utf-8")
            seen["journal"] = Path(str(undo) + ".journal").exists()
            raise DirectoryError(f"{dn}: injected failure at the first write", dn=dn)

    with lab.open() as d:
        plan = mixed_plan(d)
        before = snapshot(d)
        result = run(Faulty(d, before_write=at_first_write), plan, apply=True,
                     undo_file=str(undo))
        same_state(before, snapshot(d))
    assert result.exit_code == 3, result.message
    assert seen["exists"] is True and seen["journal"] is True
    assert result.plan is not None
    inverse = parse(str(seen["text"]), str(undo))  # it parses, and it is the exact inverse
    assert render(inverse) == render(result.plan.inverse())
    assert len(inverse) == len(plan)
    same_state(before, lab.state())
    assert lab.file_bytes() == original


# --- refusals: a directory that changed since the plan -----------------------------------

def test_a_value_changed_since_the_plan_is_refused_and_nothing_written(lab: Lab) -> None:
    with lab.open() as d:
        plan = mixed_plan(d)
    number, step = first_delete(plan)
    mod = next(m for m in step.mods if m.op == "delete" and m.values)
    with lab.open() as d:  # someone else edits the target between plan and apply
        other = unused_store(d, step)
        assert mod.attribute == "homeMDB"
        d.modify(step.dn, [mod, Mod("add", mod.attribute, (other,))])
        d.save()
    changed, original = lab.state(), lab.file_bytes()
    undo = lab.tmp / "undo.ldif"
    with lab.open() as d:
        result = run(d, plan, apply=True, undo_file=str(undo))
    assert (result.outcome, result.exit_code) == ("refused", 1)
    assert [s.number for s in result.steps if s.status == "conflict"] == [number]
    assert len(result.refusals) == 1 and f"step {number}" in result.refusals[0]
    assert "homeMDB" in result.refusals[0]
    assert not undo.exists()
    same_state(changed, lab.state())  # the other change is kept, nothing of the plan written
    assert lab.file_bytes() == original


def test_an_entry_created_since_the_plan_is_refused_not_overwritten(lab: Lab) -> None:
    with lab.open() as d:
        plan = mixed_plan(d)
    number, add = next((n, c) for n, c in enumerate(plan.changes, start=1) if isinstance(c, Add))
    with lab.open() as d:  # the same name, other values
        attributes = {n: list(v) for n, v in add.attributes}
        attributes["displayName"] = ["Someone Else"]
        d.add(add.dn, attributes)
        d.save()
    changed = lab.state()
    with lab.open() as d:
        result = run(d, plan, apply=True, undo_file=str(lab.tmp / "undo.ldif"))
    assert (result.outcome, result.exit_code) == ("refused", 1)
    assert [s.number for s in result.steps if s.status == "conflict"] == [number]
    assert not (lab.tmp / "undo.ldif").exists()
    same_state(changed, lab.state())
    assert changed[dnu.key(add.dn)]["displayname"] == [b"Someone Else"]


@pytest.mark.parametrize("race", ["value", "entry"])
def test_a_change_racing_the_apply_fails_its_step_and_is_kept(lab: Lab, race: str) -> None:
    """Between the check and the write (a value moved away, or the entry to add created by
    someone else): the write fails, the rollback undoes the plan's steps and keeps the
    other change (exit 3)."""
    original = lab.file_bytes()
    with lab.open() as d:
        plan = mixed_plan(d)
        before = snapshot(d)
        follows = d.follows_dn_references
    if race == "value":
        number, step = first_delete(plan)
        mod = next(m for m in step.mods if m.op == "delete" and m.values)
    else:
        number, add = next((n, c) for n, c in enumerate(plan.changes, start=1)
                           if isinstance(c, Add))
    with lab.open() as d:
        if race == "value":
            racing: Change = Modify(step.dn, (mod, Mod("add", mod.attribute,
                                                       (unused_store(d, step),))))
        else:
            racing = Add(add.dn, tuple((n, v) for n, v in add.attributes if n != "displayName")
                         + (("displayName", ("Someone Else",)),))

        def racer(n: int, what: str, dn: str) -> None:
            if n == number:
                write_by_hand(d, racing)

        result = run(Faulty(d, before_write=racer), plan, apply=True,
                     undo_file=str(lab.tmp / "undo.ldif"))
        assert (result.outcome, result.exit_code) == ("rolled back", 3), result.message
        assert result.steps[number - 1].outcome == "failed"
        assert [s.outcome for s in result.steps[:number - 1]] == ["undone"] * (number - 1)
        now = snapshot(d)
    # every step the plan made was undone: the racing change is all that remains
    same_state(simulate(before, [racing], follows), now)
    if lab.kind == "slapd":
        same_state(now, lab.state())
    else:
        assert lab.file_bytes() == original


def unused_store(directory: Directory, step: Modify) -> str:
    """A mailbox store the step neither removes nor adds: a third home for the mailbox."""
    named = {dnu.key(str(v)) for m in step.mods if m.attribute.lower() == "homemdb"
             for v in m.values}
    return next(h.store for h in homes(directory) if dnu.key(h.store) not in named)


# --- interrupted runs ----------------------------------------------------------------------

def test_an_interrupted_plan_finishes_and_its_undo_rolls_back_what_it_wrote(lab: Lab) -> None:
    undo = lab.tmp / "undo.ldif"
    calls: list[tuple[int, int]] = []
    with lab.open() as d:
        plan = mixed_plan(d)
        before = snapshot(d)
        expected = simulate(before, plan, d.follows_dn_references)
        half = len(plan) // 2
        assert any(isinstance(c, Rename) for c in plan.changes[:half])
        for change in plan.changes[:half]:
            write_by_hand(d, change)
        d.save()
    with lab.open() as d:
        halfway = snapshot(d)
        result = run(d, plan, apply=True, undo_file=str(undo),
                     progress=lambda done, total: calls.append((done, total)))
    assert result.exit_code == 0, result.message
    assert [s.outcome for s in result.steps] == ["skipped"] * half + ["applied"] * (
        len(plan) - half)
    pending = len(plan) - half
    assert calls == [(i, pending) for i in range(1, pending + 1)]  # once per applied step
    same_state(expected, lab.state())
    with lab.open() as d:
        back = run(d, read_plan(undo), apply=True, undo_file=str(lab.tmp / "redo.ldif"))
    assert back.exit_code == 0, back.message
    # exactly what this run wrote: the steps done before it (by hand here) stay, and
    # the undo file never inverts a step this run skipped
    assert {s.outcome for s in back.steps} == {"applied"}
    assert len(back.steps) == pending
    same_state(halfway, lab.state())
    assert halfway != before


def test_an_interrupted_plan_file_whose_delete_was_done_still_finishes(lab: Lab) -> None:
    """A plan file's delete carries no entry: once done, its undo cannot be computed from the
    file; the run must still finish the plan (the entry is in the first run's undo file)."""
    plan_file = lab.tmp / "plan.ldif"
    with lab.open() as d:
        plan = mixed_plan(d)
        before = snapshot(d)
        expected = simulate(before, plan, d.follows_dn_references)
        plan_file.write_text(render(plan), encoding="utf-8")
        cut = next(n for n, c in enumerate(plan.changes, start=1) if isinstance(c, Delete))
        for change in plan.changes[:cut]:
            write_by_hand(d, change)
        d.save()
    code = main([*lab.options(), "-q", "apply", str(plan_file), "--apply", "--lab",
                 "--undo-file", str(lab.tmp / "undo.ldif")])
    assert code == 0
    same_state(expected, lab.state())


# --- failures after the first write -------------------------------------------------------

def test_a_read_back_that_disagrees_rolls_back(lab: Lab) -> None:
    original = lab.file_bytes()

    def lie(found: dict[str, Entry], writes: int) -> dict[str, Entry]:
        if not writes:
            return found
        return dict(list(found.items())[1:])  # one written entry "missing" after the writes

    with lab.open() as d:
        plan = mixed_plan(d)
        before = snapshot(d)
        faulty = Faulty(d, lie=lie)
        result = run(faulty, plan, apply=True, undo_file=str(lab.tmp / "undo.ldif"))
        assert (result.outcome, result.exit_code) == ("rolled back", 3), result.message
        assert "read-back" in result.message
        assert faulty.writes == 2 * len(plan)  # every step written, then undone
        assert {s.outcome for s in result.steps} == {"undone"}
        same_state(before, snapshot(d))
    same_state(before, lab.state())
    assert lab.file_bytes() == original
    journal = Path(str(lab.tmp / "undo.ldif") + ".journal").read_text(encoding="utf-8")
    assert "rolled back" in journal.splitlines()[-1]


def test_a_failed_rollback_exits_4_and_its_undo_file_finishes_the_job(lab: Lab) -> None:
    original = lab.file_bytes()
    undo = lab.tmp / "undo.ldif"
    with lab.open() as d:
        plan = mixed_plan(d)
        before = snapshot(d)
        n = len(plan) // 2
        # write n is step n (fails); write n+1 is the first inverse write (fails too)
        result = run(Faulty(d, before_write=fail_at(n, n + 1)), plan, apply=True,
                     undo_file=str(undo))
        assert (result.outcome, result.exit_code) == ("rollback incomplete", 4), result.message
        assert str(undo) in result.message
        assert result.resume_from == n - 1
        assert result.undo_file == str(undo)
        half_done = snapshot(d)
        assert half_done != before
        assert lab.file_bytes() == original  # an LDIF file is only saved after success
        finish = run(d, read_plan(undo), apply=True, undo_file=str(lab.tmp / "redo.ldif"))
        assert finish.exit_code == 0, finish.message
        outcomes = [s.outcome for s in finish.steps]
        # the undo plan runs newest first: steps n.. were never done, so their undo is skipped
        assert outcomes == ["skipped"] * (len(plan) - n + 1) + ["applied"] * (n - 1)
        same_state(before, snapshot(d))
    same_state(before, lab.state())


# --- hand-written plans --------------------------------------------------------------------

def test_replace_and_valueless_delete_are_resolved_so_the_undo_has_the_old_values(
        lab: Lab) -> None:
    with lab.open() as d:
        box = mailboxes(d)[0]
        box_entry = d.read(box.dn)
        assert box_entry is not None
        old_name = box_entry.text("displayName")
        ou = f"OU=Staff,{d.naming.domain}"
        ou_entry = d.read(ou)
        assert ou_entry is not None and old_name
        old_descriptions = ou_entry.texts("description")
        assert old_descriptions
        before = snapshot(d)
    plan_file, undo = lab.tmp / "hand.ldif", lab.tmp / "undo.ldif"
    plan_file.write_text("\n".join([
        "version: 1", "",
        "# a new display name, written by hand", value_line("dn", box.dn),
        "changetype: modify", "replace: displayName", value_line("displayName", "Renamed Person"),
        "-", "",
        value_line("dn", ou), "changetype: modify", "delete: description", "", ""]),
        encoding="utf-8")
    assert main([*lab.options(), "-q", "apply", str(plan_file), "--apply", "--lab",
                 "--undo-file", str(undo)]) == 0
    after = lab.state()
    assert after[dnu.key(box.dn)]["displayname"] == [b"Renamed Person"]
    assert "description" not in after[dnu.key(ou)]
    inverse = read_plan(undo)
    adds = {(dnu.key(c.dn), m.attribute.lower()): list(m.values) for c in inverse
            if isinstance(c, Modify) for m in c.mods if m.op == "add"}
    assert adds[(dnu.key(box.dn), "displayname")] == [old_name]
    assert sorted(adds[(dnu.key(ou), "description")]) == sorted(old_descriptions)
    assert main([*lab.options(), "-q", "apply", str(undo), "--apply", "--lab",
                 "--undo-file", str(lab.tmp / "redo.ldif")]) == 0
    same_state(before, lab.state())


# --- the command line ---------------------------------------------------------------------

def test_cli_dry_run_apply_rerun_and_undo(lab: Lab, capsys: pytest.CaptureFixture[str]) -> None:
    plan_file, undo = lab.tmp / "plan.ldif", lab.tmp / "undo.ldif"
    with lab.open() as d:
        plan = mixed_plan(d)
        before = snapshot(d)
        expected = simulate(before, plan, d.follows_dn_references)
    plan_file.write_text(render(plan), encoding="utf-8")
    capsys.readouterr()

    assert main([*lab.options(), "apply", str(plan_file)]) == 0
    out, err = capsys.readouterr()
    assert parse(out) == read_plan(plan_file) and out.startswith("version: 1\n")
    assert f"{len(plan)} step(s): {len(plan)} to do" in err
    same_state(before, lab.state())
    assert not undo.exists()

    assert main([*lab.options(), "apply", str(plan_file), "--apply", "--lab", "--undo-file",
                 str(undo)]) == 0
    out, err = capsys.readouterr()
    assert out == "" and f"applied {len(plan)} step(s)" in err and str(undo) in err
    same_state(expected, lab.state())

    assert main([*lab.options(), "apply", str(plan_file), "--apply", "--lab", "--undo-file",
                 str(lab.tmp / "again.ldif")]) == 0
    _, err = capsys.readouterr()
    assert "already done" in err and "nothing was written" in err
    assert not (lab.tmp / "again.ldif").exists()

    assert main([*lab.options(), "apply", str(undo), "--apply", "--lab", "--undo-file",
                 str(lab.tmp / "redo.ldif")]) == 0
    same_state(before, lab.state())


def test_cli_failures_exit_3_and_4_naming_the_undo_file(
        lab: Lab, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    import commands.context as context

    plan_file, undo = lab.tmp / "plan.ldif", lab.tmp / "undo.ldif"
    with lab.open() as d:
        plan = mixed_plan(d)
        before = snapshot(d)
    plan_file.write_text(render(plan), encoding="utf-8")
    original = lab.file_bytes()
    real_open = context.Options.open
    fail = [3]
    monkeypatch.setattr(context.Options, "open",
                        lambda self, write=False: Faulty(real_open(self, write=write),
                                                         before_write=fail_at(*fail)))
    capsys.readouterr()
    assert main([*lab.options(), "apply", str(plan_file), "--apply", "--lab", "--undo-file",
                 str(undo)]) == 3
    _, err = capsys.readouterr()
    assert "rolled back" in err and "injected failure at write 3" in err
    same_state(before, lab.state())
    assert lab.file_bytes() == original

    fail[:] = [3, 4]
    undo = lab.tmp / "undo2.ldif"  # the first run's undo file is kept: never replaced
    assert main([*lab.options(), "apply", str(plan_file), "--apply", "--lab", "--undo-file",
                 str(undo)]) == 4
    _, err = capsys.readouterr()
    assert f"exdir apply {undo} --apply" in err
    assert lab.file_bytes() == original
    fail[:] = []
    assert main([*lab.options(), "apply", str(undo), "--apply", "--lab", "--undo-file",
                 str(lab.tmp / "redo.ldif")]) == 0
    same_state(before, lab.state())


@pytest.mark.parametrize("suffix", [".json", ".xml"])
def test_reports_hold_steps_outcome_timings_and_refusals(
        lab: Lab, suffix: str, capsys: pytest.CaptureFixture[str]) -> None:
    plan_file = lab.tmp / "plan.ldif"
    with lab.open() as d:
        plan = mixed_plan(d)
        number, step = first_delete(plan)
    plan_file.write_text(render(plan), encoding="utf-8")
    report = lab.tmp / f"report{suffix}"
    assert main([*lab.options(), "-q", "apply", str(plan_file), "--apply", "--lab", "--undo-file",
                 str(lab.tmp / "undo.ldif"), "--report", str(report)]) == 0
    steps, outcome, timings, refusals = read_report(report)
    assert outcome == "applied"
    assert [(s["number"], s["outcome"]) for s in steps] == [
        (str(i), "applied") for i in range(1, len(plan) + 1)]
    assert [s["dn"] for s in steps] == [c.dn for c in plan]
    assert {"check", "write", "verify"} <= set(timings)
    assert all(float(v) >= 0 for v in timings.values())
    assert refusals == []

    # the same plan again, after someone moved one mailbox elsewhere: the step holds
    # neither its old nor its new value, so the run is refused, and the report says why
    change = plan.changes[number - 1]
    assert isinstance(change, Modify)
    added = next(m for m in change.mods if m.op == "add" and m.attribute == "homeMDB")
    with lab.open() as d:
        d.modify(change.dn, [Mod("delete", "homeMDB", added.values),
                             Mod("add", "homeMDB", ("CN=Elsewhere," + d.naming.domain,))])
        d.save()
    report = lab.tmp / f"report2{suffix}"  # a report is never replaced
    assert main([*lab.options(), "-q", "apply", str(plan_file), "--apply", "--lab", "--undo-file",
                 str(lab.tmp / "undo2.ldif"), "--report", str(report)]) == 1
    steps, outcome, timings, refusals = read_report(report)
    assert outcome == "refused"
    assert len(refusals) == 1 and f"step {number}" in refusals[0]
    assert [s["status"] for s in steps].count("conflict") == 1


def read_report(path: Path) -> tuple[list[dict[str, str]], str, dict[str, str], list[str]]:
    """(steps, outcome, timings, refusals) of a JSON or XML report, values as text."""
    if path.suffix == ".json":
        data = json.loads(path.read_text(encoding="utf-8"))
        steps = [{k: str(v) for k, v in s.items()} for s in data["steps"]]
        return steps, data["outcome"], {k: str(v) for k, v in data["timings"].items()}, \
            data["refusals"]
    root = ET.parse(path).getroot()
    assert root.tag == "exdirApply"
    steps = [dict(el.attrib, dn=el.findtext("dn") or "") for el in root.iter("step")]
    timings = {el.attrib["phase"]: el.attrib["seconds"] for el in root.iter("timing")}
    refusals = [el.text or "" for el in root.iter("refusal")]
    return steps, root.attrib["outcome"], timings, refusals


def test_a_bad_report_name_exits_2_before_anything_runs(
        lab: Lab, capsys: pytest.CaptureFixture[str]) -> None:
    plan_file = lab.tmp / "plan.ldif"
    with lab.open() as d:
        plan_file.write_text(render(mixed_plan(d)), encoding="utf-8")
        before = snapshot(d)
    original = lab.file_bytes()
    capsys.readouterr()
    assert main([*lab.options(), "apply", str(plan_file), "--apply", "--lab", "--undo-file",
                 str(lab.tmp / "undo.ldif"), "--report", str(lab.tmp / "report.txt")]) == 2
    _, err = capsys.readouterr()
    assert ".json or .xml" in err and "Traceback" not in err
    assert not (lab.tmp / "undo.ldif").exists() and not (lab.tmp / "report.txt").exists()
    same_state(before, lab.state())
    assert lab.file_bytes() == original


def test_a_malformed_plan_exits_2_naming_the_line(
        lab: Lab, capsys: pytest.CaptureFixture[str]) -> None:
    plan_file = lab.tmp / "plan.ldif"
    with lab.open() as d:
        text = render(mixed_plan(d))
        before = snapshot(d)
    lines = text.split("\n")
    bad = next(i for i, line in enumerate(lines) if line == "changetype: modrdn")
    lines[bad] = "changetype: frobnicate"
    plan_file.write_text("\n".join(lines), encoding="utf-8")
    capsys.readouterr()
    assert main([*lab.options(), "apply", str(plan_file), "--apply", "--lab", "--undo-file",
                 str(lab.tmp / "undo.ldif")]) == 2
    _, err = capsys.readouterr()
    assert f"line {bad + 1}" in err and "frobnicate" in err and "Traceback" not in err
    assert not (lab.tmp / "undo.ldif").exists()
    same_state(before, lab.state())


def test_progress_is_called_once_per_applied_step(lab: Lab) -> None:
    calls: list[tuple[int, int]] = []
    with lab.open() as d:
        plan = mixed_plan(d)
        result = run(d, plan, apply=True, undo_file=str(lab.tmp / "undo.ldif"),
                     progress=lambda done, total: calls.append((done, total)))
    assert result.exit_code == 0
    assert calls == [(i, len(plan)) for i in range(1, len(plan) + 1)]


# --- the report counts what happened (issue 12) ---------------------------------------------

def _report_counts(path: Path) -> dict[str, int]:
    if path.suffix == ".json":
        return json.loads(path.read_text(encoding="utf-8"))["counts"]
    root = ET.parse(path).getroot()
    return {el.attrib["outcome"]: int(el.attrib["steps"]) for el in root.iter("count")}


@pytest.mark.parametrize("suffix", [".json", ".xml"])
def test_the_report_counts_outcomes_of_a_successful_and_a_partly_done_apply(
        lab: Lab, suffix: str, capsys: pytest.CaptureFixture[str]) -> None:
    plan_file = lab.tmp / "plan.ldif"
    with lab.open() as d:
        plan = mixed_plan(d)
    plan_file.write_text(render(plan), encoding="utf-8")
    report = lab.tmp / f"report{suffix}"
    assert main([*lab.options(), "-q", "apply", str(plan_file), "--apply", "--lab", "--undo-file",
                 str(lab.tmp / "undo.ldif"), "--report", str(report)]) == 0
    assert _report_counts(report) == {"applied": len(plan), "skipped": 0, "failed": 0,
                                      "undone": 0}
    # undo the last two steps by hand: the plan run again applies them, skips the rest
    undo = read_plan(lab.tmp / "undo.ldif")
    with lab.open() as d:
        for change in undo.changes[:2]:
            write_by_hand(d, change)
        d.save()
    report = lab.tmp / f"again{suffix}"
    assert main([*lab.options(), "-q", "apply", str(plan_file), "--apply", "--lab", "--undo-file",
                 str(lab.tmp / "undo2.ldif"), "--report", str(report)]) == 0
    assert _report_counts(report) == {"applied": 2, "skipped": len(plan) - 2, "failed": 0,
                                      "undone": 0}


def test_the_report_counts_outcomes_of_a_rolled_back_apply(lab: Lab) -> None:
    from exdir.report import as_dict

    with lab.open() as d:
        plan = mixed_plan(d)
        n = len(plan) // 2 + 1
        result = run(Faulty(d, before_write=fail_at(n)), plan, apply=True,
                     undo_file=str(lab.tmp / "undo.ldif"))
    assert result.exit_code == 3, result.message
    counts = as_dict(result)["counts"]
    assert counts == {"applied": 0, "skipped": 0, "failed": 1, "undone": n - 1,
                      "not run": len(plan) - n}
    assert as_dict(result)["checked"] == {"pending": len(plan)}
