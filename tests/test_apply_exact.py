"""The apply engine does exactly what it says (issue 10, items 1, 20-26), on the in-memory
directory and on slapd: the undo file inverts only the steps this run made; a step is
"done" only where its whole result shows; clashes are found at check time; the read-back
and the rollback are checked on their unhappy paths.

Every expected state is the state before (or a snapshot taken by the test), compared
entry by entry; faults come from tests.plans.Faulty, a wrapper around the real backend.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from exdir.apply import run
from exdir.backends.base import Directory
from exdir.errors import DirectoryError
from exdir.gates import Safety
from exdir.ldif_in import read_plan
from exdir.ldif_out import render
from exdir.plan import Add, Delete, Mod, Modify, Plan, Rename
from tests.labs import LDIF_SLAPD, Lab, same_state, sample_lab
from tests.plans import Faulty, fail_at, snapshot

KIM = "CN=Kim Akers,OU=Staff,DC=fabrikam,DC=com"
PAT = "CN=Pat Coleman,OU=Staff,DC=fabrikam,DC=com"
STAFF = "OU=Staff,DC=fabrikam,DC=com"
CONTACT = ["top", "person", "organizationalPerson", "contact"]


@pytest.fixture(params=LDIF_SLAPD)
def lab(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Lab:
    return sample_lab(request, tmp_path, monkeypatch)


def contact(name: str, parent: str = STAFF) -> Add:
    return Add(f"CN={name},{parent}", (
        ("objectClass", ("top", "person", "organizationalPerson", "contact")), ("cn", (name,)),
        ("sn", (name,)), ("displayName", (name,))), f"add {name}")


def kim_again(d: Directory) -> Add:
    """An add of Kim Akers, who exists, with values she holds: a step already done."""
    kim = d.read(KIM, ("objectClass", "cn", "sn", "mailNickname"))
    assert kim is not None
    return Add(KIM, tuple((n, tuple(v)) for n, v in kim.attributes.items()), "add Kim")


def apply_then_undo(lab: Lab, plan: Plan) -> tuple[object, object]:
    undo = lab.tmp / "undo.ldif"
    with lab.open() as d:
        first = run(d, plan, apply=True, undo_file=str(undo))
    assert first.exit_code == 0, first.message
    with lab.open() as d:
        back = run(d, read_plan(str(undo)), apply=True, undo_file=str(lab.tmp / "redo.ldif"))
    assert back.exit_code == 0, back.message
    return first, back


# --- item 1: the undo file inverts exactly the pending steps ------------------------------

def test_an_undo_file_never_deletes_an_entry_the_run_did_not_add(lab: Lab) -> None:
    with lab.open() as d:
        before = snapshot(d)
        plan = Plan((kim_again(d), contact("Partner Desk")))
    first, _ = apply_then_undo(lab, plan)
    assert [s.status for s in first.steps] == ["done", "pending"]  # type: ignore[attr-defined]
    undo_text = (lab.tmp / "undo.ldif").read_text(encoding="utf-8")
    assert "Kim Akers" not in undo_text and "Partner Desk" in undo_text
    same_state(before, lab.state())  # Kim Akers is still there; the contact is gone


def test_an_undo_file_never_removes_a_value_the_entry_had(lab: Lab) -> None:
    with lab.open() as d:
        before = snapshot(d)
        proxies = d.read(KIM, ("proxyAddresses",)).texts("proxyAddresses")  # type: ignore[union-attr]
        plan = Plan((Modify(KIM, (Mod("add", "proxyAddresses", (proxies[0],)),), "had it"),
                     Modify(PAT, (Mod("add", "description", ("new",)),), "new")))
    first, _ = apply_then_undo(lab, plan)
    assert [s.status for s in first.steps] == ["done", "pending"]  # type: ignore[attr-defined]
    same_state(before, lab.state())


def test_the_undo_restores_a_deleted_value_as_the_directory_spelled_it(lab: Lab) -> None:
    """The plan names the value in another case; the undo adds back the stored spelling."""
    with lab.open() as d:
        before = snapshot(d)
        stored = [p for p in d.read(KIM, ("proxyAddresses",)).texts("proxyAddresses")  # type: ignore[union-attr]
                  if p.startswith("smtp:")][0]
        plan = Plan((Modify(KIM, (Mod("delete", "proxyAddresses", (stored.upper(),)),), "x"),))
    apply_then_undo(lab, plan)
    assert stored.upper() not in (lab.tmp / "undo.ldif").read_text(encoding="utf-8")
    same_state(before, lab.state())


# --- item 20: an add under a missing parent is refused at check time -----------------------

def test_an_add_under_a_missing_parent_is_refused_before_any_write(lab: Lab) -> None:
    with lab.open() as d:
        before = snapshot(d)
        plan = Plan((contact("Partner Desk"), contact("Orphan", "OU=Nowhere,DC=fabrikam,DC=com")))
        result = run(d, plan, apply=True, undo_file=str(lab.tmp / "undo.ldif"))
    assert result.exit_code == 1
    assert any("OU=Nowhere" in r and "does not exist" in r for r in result.refusals)
    assert not (lab.tmp / "undo.ldif").exists()
    same_state(before, lab.state())


def test_an_add_under_a_parent_the_plan_adds_first_is_fine(lab: Lab) -> None:
    ou = Add("OU=Partners,DC=fabrikam,DC=com", (("objectClass", ("top", "organizationalUnit")),
                                                ("ou", ("Partners",))), "add OU")
    with lab.open() as d:
        before = snapshot(d)
        result = run(d, Plan((ou, contact("Desk", "OU=Partners,DC=fabrikam,DC=com"))),
                     apply=False)
    assert result.exit_code == 0 and {s.status for s in result.steps} == {"pending"}
    same_state(before, lab.state())


# --- item 21: done means the whole result shows -------------------------------------------

def test_a_modify_is_not_done_while_the_old_value_is_still_there(lab: Lab) -> None:
    """The entry holds the new value *and* the old one: a conflict, never "done"."""
    with lab.open() as d:
        d.modify(PAT, [Mod("add", "description", ("old", "new"))])
        d.save()
    with lab.open() as d:
        before = snapshot(d)
        plan = Plan((Modify(PAT, (Mod("delete", "description", ("old",)),
                                  Mod("add", "description", ("new",))), "swap"),))
        result = run(d, plan, apply=True, undo_file=str(lab.tmp / "undo.ldif"))
    assert [s.status for s in result.steps] == ["conflict"]
    assert result.exit_code == 1
    same_state(before, lab.state())


def test_a_modify_whose_result_shows_is_done_and_skipped(lab: Lab) -> None:
    with lab.open() as d:
        d.modify(PAT, [Mod("add", "description", ("new",))])
        d.save()
    with lab.open() as d:
        plan = Plan((Modify(PAT, (Mod("delete", "description", ("old",)),
                                  Mod("add", "description", ("new",))), "swap"),))
        result = run(d, plan, apply=True, undo_file=str(lab.tmp / "undo.ldif"))
    assert [s.status for s in result.steps] == ["done"]
    assert result.outcome == "nothing to do"


def test_a_clear_then_add_is_done_only_when_nothing_else_is_left(lab: Lab) -> None:
    """`delete: description` (every value) then `add: description new` ends with exactly
    [new]: an entry holding new *and* old has not got there (a mutant of the check found
    it counted done, leaving old in place), one holding only new has."""
    with lab.open() as d:
        d.modify(PAT, [Mod("add", "description", ("old", "new"))])
        d.save()
    plan = Plan((Modify(PAT, (Mod("delete", "description", ()),
                              Mod("add", "description", ("new",))), "clear, then new"),))
    with lab.open() as d:
        result = run(d, plan, apply=True, undo_file=str(lab.tmp / "undo.ldif"))
    assert [s.status for s in result.steps] == ["pending"] and result.exit_code == 0, result.message
    with lab.open() as d:
        pat = d.read(PAT, ("description",))
        assert pat is not None and pat.texts("description") == ["new"]
        again = run(d, plan, apply=True, undo_file=str(lab.tmp / "undo2.ldif"))
    assert again.exit_code == 0 and again.outcome == "nothing to do", again.message


def test_a_step_that_clears_an_attribute_is_done_only_without_other_values() -> None:
    """The done test of a modify whose delete could not be resolved to values (the entry
    is found only under a later name, as an undo after a partial run sees it): a cleared
    attribute ends with exactly the values added after the clear, so one still holding
    another value is not done (both spellings of "clear": a value-less delete and an
    empty replace)."""
    from exdir.apply import _modify_done
    for clear in (Mod("delete", "description", ()), Mod("replace", "description", ())):
        step = Modify(PAT, (clear, Mod("add", "description", ("new",))), "clear, then new")
        assert _modify_done({"description": ["new"]}, step)
        assert not _modify_done({"description": ["new", "old"]}, step)
        assert not _modify_done({"description": ["old"]}, step)
        bare = Modify(PAT, (clear,), "clear")
        assert _modify_done({}, bare) and not _modify_done({"description": ["old"]}, bare)


def test_an_add_moved_later_in_the_plan_is_done_under_its_later_name(lab: Lab) -> None:
    """[add X, move X to another OU] run again after it all landed (a rerun after a kill):
    the add is found done where the move put it, not re-added, and the journal records
    every step it skipped.  (With a new RDN the rerun is refused instead, nothing
    written: the add's naming value is gone from the renamed entry.)"""
    europe = "OU=Europe,DC=fabrikam,DC=com"
    plan = Plan((contact("Zed Ames"), Rename(f"CN=Zed Ames,{STAFF}", "CN=Zed Ames", europe,
                                             "move Zed")))
    with lab.open() as d:
        first = run(d, plan, apply=True, undo_file=str(lab.tmp / "undo.ldif"))
    assert first.exit_code == 0, first.message
    before = lab.state()
    with lab.open() as d:
        again = run(d, plan, apply=True, undo_file=str(lab.tmp / "again.ldif"))
    assert again.exit_code == 0 and again.outcome == "nothing to do", again.message
    same_state(before, lab.state())
    with lab.open() as d:
        third = run(d, Plan((*plan.changes, Modify(f"CN=Zed Ames,{europe}", (
            Mod("add", "description", ("new",)),), "describe"))), apply=True,
            undo_file=str(lab.tmp / "third.ldif"))
    assert third.exit_code == 0, third.message
    journal = (lab.tmp / "third.ldif.journal").read_text(encoding="utf-8").splitlines()
    assert sum(1 for line in journal if "skipped" in line) == 2, journal


# --- item 22: a rename onto an existing name ----------------------------------------------

def test_a_rename_onto_an_existing_entry_is_a_conflict_at_check_time(lab: Lab) -> None:
    """A->B with both present: never "done" (later steps aimed at B would modify someone
    else's entry) and never left for the server to refuse mid-run."""
    plan = Plan((Modify(KIM, (Mod("add", "description", ("x",)),), "first"),
                 Rename(KIM, "CN=Pat Coleman"),
                 Modify(PAT, (Mod("add", "description", ("y",)),), "aimed at the new name")))
    with lab.open() as d:
        before = snapshot(d)
        result = run(d, plan, apply=True, undo_file=str(lab.tmp / "undo.ldif"))
    assert [s.status for s in result.steps][1] == "conflict"
    assert result.exit_code == 1 and not (lab.tmp / "undo.ldif").exists()
    assert any("both" in r for r in result.refusals)
    same_state(before, lab.state())


# --- item 23: undo files after a partial run, the unhappy paths ---------------------------

def test_an_undo_whose_entry_is_under_neither_name_is_refused(lab: Lab) -> None:
    """The undo addresses the renamed entry; it is gone under both names: refuse."""
    plan = Plan((Rename(KIM, "CN=Kim A"),
                 Modify("CN=Kim A,OU=Staff,DC=fabrikam,DC=com",
                        (Mod("add", "description", ("x",)),), "after")))
    with lab.open() as d:
        first = run(d, plan, apply=True, undo_file=str(lab.tmp / "undo.ldif"))
    assert first.exit_code == 0
    with lab.open() as d:
        d.delete("CN=Kim A,OU=Staff,DC=fabrikam,DC=com")
        d.save()
    with lab.open() as d:
        before = snapshot(d)
        back = run(d, read_plan(str(lab.tmp / "undo.ldif")), apply=True,
                   undo_file=str(lab.tmp / "redo.ldif"))
    assert back.exit_code == 1 and {s.status for s in back.steps} == {"conflict"}
    same_state(before, lab.state())


def test_an_undo_after_a_partial_run_with_a_changed_value_is_refused(lab: Lab) -> None:
    """A run stopped after its first step, before its rename; its undo file addresses
    the entry by the later name.  Found under the earlier name with the value someone
    changed meanwhile, the modify must be a conflict, not "done (under a later name)"."""
    kim_a = "CN=Kim A,OU=Staff,DC=fabrikam,DC=com"
    with lab.open() as d:
        mail = d.read(KIM, ("mail",)).texts("mail")  # type: ignore[union-attr]
    plan = Plan((Modify(KIM, (Mod("add", "description", ("x",)),), "first"),
                 Rename(KIM, "CN=Kim A"),
                 Modify(kim_a, (Mod("delete", "mail", tuple(mail)),
                                Mod("add", "mail", ("kim.a@fabrikam.com",))), "new mail")))
    undo = plan.inverse()
    with lab.open() as d:
        assert run(d, Plan(plan.changes[:1]), apply=True,
                   undo_file=str(lab.tmp / "u1.ldif")).exit_code == 0
    with lab.open() as d:
        ok = run(d, undo, apply=False)
    assert [s.status for s in ok.steps] == ["done", "done", "pending"]  # the happy path
    with lab.open() as d:
        d.modify(KIM, [Mod("delete", "mail", tuple(mail)),
                       Mod("add", "mail", ("someone.else@fabrikam.com",))])
        d.save()
    with lab.open() as d:
        before = snapshot(d)
        back = run(d, undo, apply=True, undo_file=str(lab.tmp / "redo.ldif"))
    assert back.steps[0].status == "conflict" and back.exit_code == 1
    same_state(before, lab.state())


# --- item 24: the read-back -----------------------------------------------------------------

class _Lying(Faulty):
    """A backend that reports success for a write it did not make as asked."""

    def __init__(self, inner: Directory, lie: str) -> None:
        super().__init__(inner)
        self.lie = lie

    def delete(self, dn: str) -> None:
        if self.lie == "delete":
            return  # "success", the entry stays
        self.inner.delete(dn)

    def modify(self, dn: str, mods):  # type: ignore[no-untyped-def]
        self.inner.modify(dn, mods)
        if self.lie == "extra":  # once: the rollback's own write is told the truth
            self.lie = ""
            self.inner.modify(dn, [Mod("add", mods[-1].attribute, ("an extra value",))])


@pytest.mark.parametrize("lie", ["delete", "extra"])
def test_the_read_back_catches_what_the_server_did_not_do(lab: Lab, lie: str) -> None:
    with lab.open() as d:
        d.add("CN=Gone,OU=Staff,DC=fabrikam,DC=com", {"objectClass": CONTACT,
                                                        "cn": ["Gone"], "sn": ["Gone"]})
        d.save()
    plan = Plan((Modify(PAT, (Mod("add", "description", ("one",)),), "one"),
                 Delete("CN=Gone,OU=Staff,DC=fabrikam,DC=com", "gone")))
    with lab.open() as inner:
        before = snapshot(inner)
        result = run(_Lying(inner, lie), plan, apply=True, undo_file=str(lab.tmp / "u.ldif"))
        assert result.exit_code == 3, result.message
        assert "read-back" in result.message
        if lie == "extra":  # the liar's own extra value is not exdir's to remove
            inner.modify(PAT, [Mod("delete", "description", ("an extra value",))])
            inner.save()
        assert snapshot(inner) == before if lab.kind == "slapd" else True
    same_state(before, lab.state())


def test_a_child_modified_then_its_parent_renamed_reads_back_fine(lab: Lab) -> None:
    ou = Add("OU=Partners,DC=fabrikam,DC=com", (("objectClass", ("top", "organizationalUnit")),
                                                ("ou", ("Partners",))), "add OU")
    child = contact("Desk", "OU=Partners,DC=fabrikam,DC=com")
    with lab.open() as d:
        run(d, Plan((ou, child)), apply=True, undo_file=str(lab.tmp / "u0.ldif"))
    plan = Plan((Modify(child.dn, (Mod("add", "description", ("moved",)),), "child"),
                 Rename("OU=Partners,DC=fabrikam,DC=com", "OU=Suppliers")))
    with lab.open() as d:
        result = run(d, plan, apply=True, undo_file=str(lab.tmp / "u.ldif"))
    assert (result.outcome, result.exit_code) == ("applied", 0), result.message
    with lab.open() as d:
        moved = d.read("CN=Desk,OU=Suppliers,DC=fabrikam,DC=com", ("description",))
        assert moved is not None and moved.texts("description") == ["moved"]


# --- item 25: a rename that reported failure ------------------------------------------------

class _SomeoneElse(Faulty):
    """The rename fails; meanwhile someone else created an entry at the new name."""

    def rename(self, dn: str, new_rdn: str, new_superior: str | None = None) -> str:
        name = new_rdn.split("=", 1)[1]
        self.inner.add(f"{new_rdn},{STAFF}", {"objectClass": CONTACT, "cn": [name],
                                              "sn": [name]})
        raise DirectoryError(f"{dn}: connection reset", dn=dn, result="unavailable")


def test_a_failed_rename_is_not_taken_as_landed_when_the_old_name_remains(lab: Lab) -> None:
    plan = Plan((Modify(PAT, (Mod("add", "description", ("one",)),), "one"),
                 Rename(KIM, "CN=Kim A")))
    with lab.open() as inner:
        result = run(_SomeoneElse(inner), plan, apply=True, undo_file=str(lab.tmp / "u.ldif"))
        assert result.exit_code == 3, result.message
        # the other entry at the new name is kept, Kim is where she was, Pat as before
        assert inner.read("CN=Kim A,OU=Staff,DC=fabrikam,DC=com") is not None
        assert inner.read(KIM) is not None
        assert inner.read(PAT, ("description",)).texts("description") == []  # type: ignore[union-attr]
    assert result.steps[1].outcome == "failed"
    assert "made nonetheless" not in result.steps[1].detail


# --- item 26: a rollback that fails at its second step --------------------------------------

def test_a_rollback_failing_at_its_second_step_names_what_is_still_applied(lab: Lab) -> None:
    plan = Plan(tuple(Modify(d, (Mod("add", "description", (f"v{i}",)),), f"s{i}")
                      for i, d in enumerate((PAT, KIM, PAT.replace("Pat Coleman", "Ted Bremer")),
                                            start=1)))
    with lab.open() as inner:
        before = snapshot(inner)
        # writes 1, 2 land; 3 fails; rollback write 4 (undo step 2) lands, 5 (step 1) fails
        faulty = Faulty(inner, before_write=fail_at(3, 5))
        result = run(faulty, plan, apply=True, undo_file=str(lab.tmp / "u.ldif"))
        assert result.exit_code == 4, result.message
        assert result.resume_from == 1
        assert "steps 1-1 are still applied" in result.message
        assert str(lab.tmp / "u.ldif") in result.message
        assert [s.outcome for s in result.steps] == ["applied", "undone", "failed"]
        if lab.kind == "ldif":
            inner.save()  # what a later run would find had the file been saved
    with lab.open() as d:
        back = run(d, read_plan(str(lab.tmp / "u.ldif")), apply=True,
                   undo_file=str(lab.tmp / "redo.ldif"))
    assert back.exit_code == 0, back.message
    same_state(before, lab.state())


# --- library callers meet the gates too ----------------------------------------------------

def test_a_library_caller_meets_the_rename_gate_without_safety(lab: Lab) -> None:
    with lab.open() as d:
        before = snapshot(d)
        org = d.search(d.naming.configuration, "(objectClass=msExchOrganizationContainer)",
                       ("cn",))
        plan = Plan((Rename(next(iter(org)).dn, "CN=Contoso"),))
        refused = run(d, plan, apply=True, undo_file=str(lab.tmp / "u.ldif"))
        assert refused.exit_code == 1 and "--lab" in refused.message
        stale = run(d, plan, apply=True, undo_file=str(lab.tmp / "u.ldif"),
                    safety=Safety(lab=True))
        assert stale.exit_code == 1 and "stale" in stale.message
    same_state(before, lab.state())


# --- item 11: every exit path names the undo file once anything was written --------------

def test_a_report_that_cannot_be_written_after_the_apply_names_the_undo_file(
        lab: Lab, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    import commands.apply as cmd

    report = lab.tmp / "report.json"
    real = cmd.run

    def run_then_take_the_name(*args, **kwargs):  # type: ignore[no-untyped-def]
        result = real(*args, **kwargs)
        report.write_text("someone else's file\n", encoding="utf-8")
        return result

    monkeypatch.setattr(cmd, "run", run_then_take_the_name)
    plan = lab.tmp / "plan.ldif"
    plan.write_text(render(Plan((Modify(PAT, (Mod("add", "description", ("x",)),), "x"),))),
                    encoding="utf-8")
    code, _, err = lab.cli(capsys, "apply", str(plan), "--apply", "--undo-file",
                           str(lab.tmp / "undo.ldif"), "--report", str(report))
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1, err
    assert "report" in lines[0] and "applied 1 step(s)" in lines[0]
    assert str(lab.tmp / "undo.ldif") in lines[0] and "internal error" not in err
    assert report.read_text(encoding="utf-8") == "someone else's file\n"  # never replaced
    with lab.open() as d:
        assert d.read(PAT, ("description",)).texts("description") == ["x"]  # type: ignore[union-attr]


def test_a_full_disk_during_the_save_leaves_the_file_and_says_so(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    import errno

    from exdir import files
    from tests.labs import SAMPLE, cli

    monkeypatch.chdir(tmp_path)
    path = tmp_path / "lab.ldif"
    path.write_bytes(SAMPLE.read_bytes())
    original = path.read_bytes()

    class Full(files._HashingWriter):  # type: ignore[misc,name-defined]
        def write(self, data) -> int:  # type: ignore[no-untyped-def]
            if self.size > 4096:
                raise OSError(errno.ENOSPC, "No space left on device")
            return super().write(data)

    monkeypatch.setattr(files, "_HashingWriter", Full)
    plan = tmp_path / "plan.ldif"
    plan.write_text(render(Plan((Modify(PAT, (Mod("add", "description", ("x",)),), "x"),))),
                    encoding="utf-8")
    code, _, err = cli(capsys, "--ldif", str(path), "apply", str(plan), "--apply",
                       "--undo-file", str(tmp_path / "undo.ldif"))
    lines = err.strip().splitlines()
    assert code == 3 and len(lines) == 1, err
    assert "no space left on device" in lines[0].lower() and "unchanged" in lines[0]
    assert path.read_bytes() == original
    journal = (tmp_path / "undo.ldif.journal").read_text(encoding="utf-8")
    assert journal.splitlines()[-1].startswith("failed saving")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lab.ldif", "plan.ldif", "undo.ldif",
                                                          "undo.ldif.journal"]


def test_a_change_of_case_alone_is_a_change(lab: Lab) -> None:
    """Swapping `SMTP:` (the primary address) and `smtp:` changes only case, and the
    directory compares proxyAddresses without case; the plan must still apply it."""
    jsmith = "CN=Smith\\, John,OU=Staff,DC=fabrikam,DC=com"
    with lab.open() as d:
        before = snapshot(d)
        held = d.read(jsmith, ("proxyAddresses",)).texts("proxyAddresses")  # type: ignore[union-attr]
        primary = next(p for p in held if p.startswith("SMTP:"))
        other = next(p for p in held if p.startswith("smtp:"))
        swapped = ("smtp:" + primary[5:], "SMTP:" + other[5:])
        plan = Plan((Modify(jsmith, (Mod("delete", "proxyAddresses", (primary, other)),
                                     Mod("add", "proxyAddresses", swapped)), "swap"),))
    assert len(plan) == 1
    first, _ = apply_then_undo(lab, plan)
    assert [s.status for s in first.steps] == ["pending"]  # type: ignore[attr-defined]
    same_state(before, lab.state())


def test_two_steps_changed_meanwhile_are_both_named(lab: Lab) -> None:
    """Someone changes the targets of steps 2 and 3 after the check: step 2 fails, and
    the one message names both (the smallest case of 'every concurrent change')."""
    ted = "CN=Ted Bremer,OU=Staff,DC=fabrikam,DC=com"
    with lab.open() as d:
        for dn in (PAT, KIM, ted):
            d.modify(dn, [Mod("add", "description", ("old",))])
        d.save()
    plan = Plan(tuple(Modify(dn, (Mod("delete", "description", ("old",)),
                                  Mod("add", "description", ("new",))), "swap")
                      for dn in (PAT, KIM, ted)))
    with lab.open() as inner:
        def meanwhile(n: int, what: str, dn: str) -> None:
            if n == 2:
                for target in (KIM, ted):
                    inner.modify(target, [Mod("delete", "description", ("old",)),
                                          Mod("add", "description", ("theirs",))])

        result = run(Faulty(inner, before_write=meanwhile), plan, apply=True,
                     undo_file=str(lab.tmp / "u.ldif"))
        assert result.exit_code == 3, result.message
        assert result.changed_since_check == [2, 3]
        assert "2 step(s) no longer match the directory" in result.message
        assert "steps 2, 3" in result.message
        for target in (KIM, ted):
            assert inner.read(target, ("description",)).texts("description") == ["theirs"]  # type: ignore[union-attr]
        assert inner.read(PAT, ("description",)).texts("description") == ["old"]  # type: ignore[union-attr]


# --- the simulation, the rollback's own failure and the read-back under a renamed parent -----

TED = "CN=Ted Bremer,OU=Staff,DC=fabrikam,DC=com"


def test_a_reference_that_follows_a_rename_is_checked_under_its_new_name(lab: Lab) -> None:
    """Where the server rewrites references on a rename (AD, the LDIF lab), a later step
    that deletes the reference by its new spelling is pending, not a conflict."""
    if lab.kind != "ldif":
        pytest.skip("slapd leaves references as they were: a plan carries the rewrite itself")
    pat_c = "CN=Pat C,OU=Staff,DC=fabrikam,DC=com"
    plan = Plan((Modify(KIM, (Mod("add", "manager", (PAT,)),), "manager"),
                 Rename(PAT, "CN=Pat C"),
                 Modify(KIM, (Mod("delete", "manager", (pat_c,)), Mod("add", "manager", (TED,))),
                        "new manager")))
    with lab.open() as d:
        result = run(d, plan, apply=True, undo_file=str(lab.tmp / "u.ldif"))
    assert (result.outcome, result.exit_code) == ("applied", 0), result.refusals
    with lab.open() as d:
        assert d.read(KIM, ("manager",)).texts("manager") == [TED]  # type: ignore[union-attr]


class _Unreadable(Faulty):
    """Reads fail once the given number of writes has been made (a DC gone mid-rollback)."""

    def __init__(self, inner: Directory, after: int, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(inner, **kwargs)
        self.after = after

    def read(self, dn, attributes=("*",)):  # type: ignore[no-untyped-def]
        if self.writes >= self.after:
            raise DirectoryError("connection reset", dn=dn, result="unavailable")
        return self.inner.read(dn, attributes)


def test_a_rollback_write_that_fails_unverifiably_is_a_failed_rollback(lab: Lab) -> None:
    """Write 2 fails, the rollback's write 3 fails too, and the directory cannot be read to
    tell whether it took: the run must say the rollback is incomplete, not "as before"."""
    gone = contact("Gone")
    with lab.open() as d:
        run(d, Plan((gone,)), apply=True, undo_file=str(lab.tmp / "u0.ldif"))
    for first in (Modify(PAT, (Mod("add", "description", ("v1",)),), "s1"),
                  Delete(gone.dn, "s1")):  # undone by a modify, then by an add
        plan = Plan((first, Modify(KIM, (Mod("add", "description", ("v2",)),), "s2")))
        with lab.open() as inner:
            faulty = _Unreadable(inner, 3, before_write=fail_at(2, 3))
            result = run(faulty, plan, apply=True, undo_file=str(lab.tmp / f"u-{type(first).__name__}.ldif"))
            assert (result.outcome, result.exit_code) == ("rollback incomplete", 4), \
                result.message
            assert result.resume_from == 1
        with lab.open() as d:
            assert run(d, read_plan(str(lab.tmp / f"u-{type(first).__name__}.ldif")), apply=True,
                       undo_file=str(lab.tmp / f"r-{type(first).__name__}.ldif")).exit_code == 0


class _SkipsOne(Faulty):
    """Answers success for a modify of `dn` and does not make it."""

    def __init__(self, inner: Directory, dn: str) -> None:
        super().__init__(inner)
        self.skip = dn

    def modify(self, dn: str, mods):  # type: ignore[no-untyped-def]
        if dn == self.skip:
            self.skip = ""  # once: the rollback is told the truth
            return
        self.inner.modify(dn, mods)


def test_the_read_back_checks_a_child_under_its_renamed_parent(lab: Lab) -> None:
    ou = Add("OU=Partners,DC=fabrikam,DC=com", (("objectClass", ("top", "organizationalUnit")),
                                                ("ou", ("Partners",))), "add OU")
    child = contact("Desk", "OU=Partners,DC=fabrikam,DC=com")
    with lab.open() as d:
        run(d, Plan((ou, child)), apply=True, undo_file=str(lab.tmp / "u0.ldif"))
    plan = Plan((Modify(child.dn, (Mod("add", "description", ("moved",)),), "child"),
                 Rename("OU=Partners,DC=fabrikam,DC=com", "OU=Suppliers")))
    with lab.open() as inner:
        before = snapshot(inner)
        result = run(_SkipsOne(inner, child.dn), plan, apply=True,
                     undo_file=str(lab.tmp / "u.ldif"))
        assert result.exit_code == 3, result.message
        assert "read-back" in result.message and "Desk" in result.message
        assert snapshot(inner) == before
