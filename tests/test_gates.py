"""Safety gates derived from what a plan changes (issue 10, items 9 and 17), met by every
path: the command that plans, `exdir apply` of a saved or hand-cut plan, and a library
caller.  On the in-memory directory and on slapd, the same samples.

Each refusal is checked for its exit code (1), its one plain line, and that nothing was
written: the directory as before, no undo file.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from exdir.ldif_in import parse
from exdir.ldif_out import render
from exdir.plan import Mod, Modify, Plan, Rename
from tests.labs import LDIF_SLAPD, SAMPLES, Lab, new_lab, same_state, undo_files

ORG = "CN=Fabrikam,CN=Microsoft Exchange,CN=Services,CN=Configuration,DC=fabrikam,DC=com"
JSMITH = "CN=Smith\\, John,OU=Staff,DC=fabrikam,DC=com"


@pytest.fixture(params=LDIF_SLAPD)
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def lab_of(kind: str, sample: str, request: pytest.FixtureRequest, tmp_path: Path,
           monkeypatch: pytest.MonkeyPatch) -> Lab:
    monkeypatch.chdir(tmp_path)
    return new_lab(kind, (SAMPLES / sample).read_text(encoding="utf-8"), request, tmp_path)


def refused_and_untouched(lab: Lab, code: int, err: str, before: object,
                          original: bytes | None, *words: str) -> None:
    assert code == 1, err
    lines = [ln for ln in err.strip().splitlines() if not ln.startswith("exdir: warning:")]
    assert len(lines) == 1, err
    for w in words:  # DNs as the backend spells them: compared without case
        assert w.lower() in lines[0].lower(), (w, lines[0])
    assert lab.file_bytes() == original
    assert undo_files(lab.tmp) == []
    same_state(before, lab.state())  # type: ignore[arg-type]


def dry_run(lab: Lab, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[Path, str]:
    code, out, err = lab.cli(capsys, "-q", *args)
    assert code == 0, err
    plan = lab.tmp / "plan.ldif"
    plan.write_text(out, encoding="utf-8")
    return plan, err


# --- item 9: rename gates on `exdir apply` ---------------------------------------------

def test_a_saved_rename_plan_meets_the_single_dc_rule_through_apply(
        kind: str, request: pytest.FixtureRequest, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    lab = lab_of(kind, "fabrikam-multidc.ldif", request, tmp_path, monkeypatch)
    before, original = lab.state(), lab.file_bytes()
    plan, err = dry_run(lab, capsys, "rename", "org", "Contoso")
    # -q silences notes, never "this plan cannot be applied here"
    assert "cannot be applied here" in err and "3 domain controllers" in err
    for extra in ([], ["--lab"]):
        code, out, err = lab.cli(capsys, "apply", str(plan), "--apply", *extra)
        refused_and_untouched(lab, code, err, before, original, "3 domain controllers",
                              "nothing written")
    code, out, err = lab.cli(capsys, "apply", str(plan))  # its dry run says so too
    assert code == 0 and "cannot be applied here" in err


def test_a_saved_rename_plan_needs_lab_through_apply(
        kind: str, request: pytest.FixtureRequest, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    lab = lab_of(kind, "fabrikam.ldif", request, tmp_path, monkeypatch)
    before, original = lab.state(), lab.file_bytes()
    plan, _ = dry_run(lab, capsys, "rename", "admin-group", "Europe", "EMEA")
    code, _, err = lab.cli(capsys, "apply", str(plan), "--apply")
    refused_and_untouched(lab, code, err, before, original, "--lab")
    code, _, err = lab.cli(capsys, "apply", str(plan), "--apply", "--lab")
    assert code == 0, err


def test_a_hand_cut_plan_renaming_only_the_organisation_is_stale(
        kind: str, request: pytest.FixtureRequest, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    lab = lab_of(kind, "fabrikam.ldif", request, tmp_path, monkeypatch)
    before, original = lab.state(), lab.file_bytes()
    plan = lab.tmp / "cut.ldif"
    plan.write_text(render(Plan((Rename(ORG, "CN=Contoso"),))), encoding="utf-8")
    code, _, err = lab.cli(capsys, "apply", str(plan), "--apply", "--lab")
    refused_and_untouched(lab, code, err, before, original, "stale", "/o=Fabrikam",
                          "does not rewrite")


def test_a_rename_plan_made_before_a_mailbox_was_added_is_stale(
        kind: str, request: pytest.FixtureRequest, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    lab = lab_of(kind, "fabrikam.ldif", request, tmp_path, monkeypatch)
    plan, _ = dry_run(lab, capsys, "rename", "org", "Contoso")
    newcomer = "CN=New Hire,OU=Staff,DC=fabrikam,DC=com"
    with lab.open() as d:
        d.add(newcomer, {"objectClass": ["top", "person", "organizationalPerson", "contact"],
                         "cn": ["New Hire"], "sn": ["Hire"], "mailNickname": ["nhire"],
                         "legacyExchangeDN": ["/o=Fabrikam/ou=First Administrative Group/"
                                              "cn=Recipients/cn=nhire"]})
        d.save()
    before, original = lab.state(), lab.file_bytes()
    code, _, err = lab.cli(capsys, "apply", str(plan), "--apply", "--lab")
    refused_and_untouched(lab, code, err, before, original, "stale", "1 value(s)",
                          "CN=New Hire")
    # made again, the plan covers the newcomer and applies
    plan, _ = dry_run(lab, capsys, "rename", "org", "Contoso")
    code, _, err = lab.cli(capsys, "apply", str(plan), "--apply", "--lab")
    assert code == 0, err


def test_the_rename_command_and_apply_refuse_alike(
        kind: str, request: pytest.FixtureRequest, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    lab = lab_of(kind, "fabrikam-multidc.ldif", request, tmp_path, monkeypatch)
    before, original = lab.state(), lab.file_bytes()
    code, out, err = lab.cli(capsys, "rename", "org", "Contoso", "--apply", "--lab")
    assert out == ""
    refused_and_untouched(lab, code, err, before, original, "3 domain controllers")


# --- item 9: the move gate on `exdir apply` ----------------------------------------------

def test_a_same_group_move_plan_meets_the_adc_gate_through_apply(
        kind: str, request: pytest.FixtureRequest, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    lab = lab_of(kind, "fabrikam-mixed.ldif", request, tmp_path, monkeypatch)
    before, original = lab.state(), lab.file_bytes()
    plan, err = dry_run(lab, capsys, "move", "jsmith", "--to", "Mailbox Store (EX2)")
    assert "cannot be applied here" in err and "--adc-stopped" in err
    code, _, err = lab.cli(capsys, "apply", str(plan), "--apply")
    refused_and_untouched(lab, code, err, before, original, "mixed mode", "jsmith",
                          "--adc-stopped")
    code, _, err = lab.cli(capsys, "apply", str(plan), "--apply", "--adc-stopped")
    assert code == 0, err


def test_a_cross_group_move_in_mixed_mode_is_not_held_by_the_adc_gate(
        kind: str, request: pytest.FixtureRequest, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    lab = lab_of(kind, "fabrikam-mixed.ldif", request, tmp_path, monkeypatch)
    plan, err = dry_run(lab, capsys, "move", "jsmith", "--to", "Mailbox Store (EUR2)")
    assert "cannot be applied here" not in err
    code, _, err = lab.cli(capsys, "apply", str(plan), "--apply")
    assert code == 0, err


# --- item 17: one holder per legacyExchangeDN --------------------------------------------

KBERG_X500 = "/o=Fabrikam/ou=Europe/cn=Recipients/cn=kberg"


def test_legacydn_set_to_another_objects_x500_is_refused(
        kind: str, request: pytest.FixtureRequest, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    lab = lab_of(kind, "fabrikam.ldif", request, tmp_path, monkeypatch)
    before, original = lab.state(), lab.file_bytes()
    code, out, err = lab.cli(capsys, "legacydn", "set", "jsmith", KBERG_X500, "--apply")
    assert (code, out) == (1, ""), err  # a safety refusal, as through `exdir apply`
    assert "X500 proxy" in err and "Karen Berg" in err and len(err.strip().splitlines()) == 1
    assert lab.file_bytes() == original and undo_files(lab.tmp) == []
    same_state(before, lab.state())


@pytest.mark.parametrize("attribute, value", [
    ("legacyExchangeDN", KBERG_X500),  # the mirror of `x500 add`'s refusal
    ("proxyAddresses", "X500:/o=Fabrikam/ou=First Administrative Group/cn=Recipients/cn=kberg"),
    ("proxyAddresses", "x500:" + KBERG_X500.upper()),  # compared case-insensitively
])
def test_a_hand_plan_giving_a_held_value_is_refused_through_apply(
        kind: str, request: pytest.FixtureRequest, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        attribute: str, value: str) -> None:
    lab = lab_of(kind, "fabrikam.ldif", request, tmp_path, monkeypatch)
    before, original = lab.state(), lab.file_bytes()
    mods = [Mod("add", attribute, (value,))]
    if attribute == "legacyExchangeDN":  # single-valued: the old value goes first
        with lab.open() as d:
            mods.insert(0, Mod("delete", attribute, tuple(
                d.read(JSMITH, (attribute,)).texts(attribute))))  # type: ignore[union-attr]
    plan = lab.tmp / "hand.ldif"
    plan.write_text(render(Plan((Modify(JSMITH, tuple(mods), "hand"),))), encoding="utf-8")
    code, _, err = lab.cli(capsys, "apply", str(plan), "--apply")
    refused_and_untouched(lab, code, err, before, original, "Karen Berg", "misdeliver")


def test_a_value_the_plan_frees_first_may_be_given(
        kind: str, request: pytest.FixtureRequest, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """Moving an X500 from Karen Berg to John Smith in one plan is no collision."""
    lab = lab_of(kind, "fabrikam.ldif", request, tmp_path, monkeypatch)
    kberg = "CN=Karen Berg,OU=Staff,DC=fabrikam,DC=com"
    with lab.open() as d:
        held = [p for p in d.read(kberg, ("proxyAddresses",)).texts("proxyAddresses")  # type: ignore[union-attr]
                if p.upper().startswith("X500:")]
    plan = lab.tmp / "hand.ldif"
    plan.write_text(render(Plan((
        Modify(kberg, (Mod("delete", "proxyAddresses", tuple(held)),), "free"),
        Modify(JSMITH, (Mod("add", "proxyAddresses", tuple(held)),), "give")))),
        encoding="utf-8")
    code, _, err = lab.cli(capsys, "apply", str(plan), "--apply")
    assert code == 0, err
    assert parse(plan.read_text(encoding="utf-8"), "plan")  # the file itself is untouched


# --- found by a hostile review after the first round -----------------------------------

AGS = "CN=Administrative Groups," + ORG
KBERG = "CN=Karen Berg,OU=Staff,DC=fabrikam,DC=com"


def hand_plan(lab: Lab, *changes: object) -> Path:
    path = lab.tmp / "hand.ldif"
    path.write_text(render(Plan(tuple(changes))), encoding="utf-8")  # type: ignore[arg-type]
    return path


@pytest.mark.parametrize("container", [ORG.split(",", 1)[1], AGS])
def test_renaming_what_holds_the_organisation_is_refused_even_in_a_lab(
        kind: str, request: pytest.FixtureRequest, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        container: str) -> None:
    lab = lab_of(kind, "fabrikam.ldif", request, tmp_path, monkeypatch)
    before, original = lab.state(), lab.file_bytes()
    plan = hand_plan(lab, Rename(container, "CN=Elsewhere"))
    code, _, err = lab.cli(capsys, "apply", str(plan), "--apply", "--lab")
    refused_and_untouched(lab, code, err, before, original, "holds the organisation")


def test_a_new_org_legacydn_without_a_rename_meets_the_rename_gates(
        kind: str, request: pytest.FixtureRequest, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    lab = lab_of(kind, "fabrikam-multidc.ldif", request, tmp_path, monkeypatch)
    before, original = lab.state(), lab.file_bytes()
    plan = hand_plan(lab, Modify(ORG, (Mod("delete", "legacyExchangeDN", ("/o=Fabrikam",)),
                                       Mod("add", "legacyExchangeDN", ("/o=Contoso",))), "x"))
    code, _, err = lab.cli(capsys, "apply", str(plan), "--apply")
    refused_and_untouched(lab, code, err, before, original, "--lab", "3 domain controllers",
                          "stale")


def test_a_rename_plan_that_writes_the_old_prefix_back_is_stale(
        kind: str, request: pytest.FixtureRequest, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    lab = lab_of(kind, "fabrikam.ldif", request, tmp_path, monkeypatch)
    before, original = lab.state(), lab.file_bytes()
    made, _ = dry_run(lab, capsys, "rename", "org", "Contoso")
    plan = parse(made.read_text(encoding="utf-8"), "plan")
    back = Plan(tuple(  # every rewrite writes its value under /o=Fabrikam again
        Modify(c.dn, tuple(Mod(m.op, m.attribute, tuple(
            v.replace("/o=Contoso", "/o=Fabrikam") if isinstance(v, str) and m.op == "add"
            and m.attribute.lower() != "proxyaddresses" else v for v in m.values))
            for m in c.mods), c.reason) if isinstance(c, Modify) else c
        for c in plan.changes))
    path = lab.tmp / "back.ldif"
    path.write_text(render(back), encoding="utf-8")
    code, _, err = lab.cli(capsys, "apply", str(path), "--apply", "--lab")
    refused_and_untouched(lab, code, err, before, original, "stale", "written by the plan")


def test_a_same_group_move_split_over_two_steps_meets_the_adc_gate(
        kind: str, request: pytest.FixtureRequest, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    lab = lab_of(kind, "fabrikam-mixed.ldif", request, tmp_path, monkeypatch)
    made, _ = dry_run(lab, capsys, "move", "jsmith", "--to", "Mailbox Store (EX2)")
    [move] = parse(made.read_text(encoding="utf-8"), "plan").changes
    assert isinstance(move, Modify)
    deletes = tuple(m for m in move.mods if m.op == "delete")
    adds = tuple(m for m in move.mods if m.op == "add")
    before, original = lab.state(), lab.file_bytes()
    plan = hand_plan(lab, Modify(move.dn, deletes, "one"), Modify(move.dn, adds, "two"))
    code, _, err = lab.cli(capsys, "apply", str(plan), "--apply")
    refused_and_untouched(lab, code, err, before, original, "--adc-stopped", "jsmith")


def test_an_unreadable_mixed_mode_is_taken_as_mixed(tmp_path: Path) -> None:
    from exdir.backends.memory import open_ldif
    from exdir.readers.topology import read_topology

    text = (SAMPLES / "fabrikam-mixed.ldif").read_text(encoding="utf-8")
    assert "msExchMixedMode: TRUE" in text
    for spelled in ("1", "yes", "maybe", "TRUE", "true"):
        path = tmp_path / f"m-{spelled}.ldif"
        path.write_text(text.replace("msExchMixedMode: TRUE", f"msExchMixedMode: {spelled}"),
                        encoding="utf-8")
        with open_ldif(str(path), warn=lambda m: None) as d:
            assert read_topology(d).organization.mixed_mode, spelled
    path = tmp_path / "native.ldif"
    path.write_text(text.replace("msExchMixedMode: TRUE", "msExchMixedMode: FALSE"),
                    encoding="utf-8")
    with open_ldif(str(path), warn=lambda m: None) as d:
        assert not read_topology(d).organization.mixed_mode


def test_renaming_one_object_onto_anothers_name_does_not_inherit_its_values(
        kind: str, request: pytest.FixtureRequest, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    lab = lab_of(kind, "fabrikam.ldif", request, tmp_path, monkeypatch)
    with lab.open() as d:
        legacy = d.read(KBERG, ("legacyExchangeDN",)).texts("legacyExchangeDN")[0]  # type: ignore[union-attr]
    before, original = lab.state(), lab.file_bytes()
    plan = hand_plan(lab, Rename(KBERG, "CN=Karen Away"), Rename(JSMITH, "CN=Karen Berg"),
                     Modify(KBERG, (Mod("add", "proxyAddresses", (f"X500:{legacy}",)),), "x"))
    code, _, err = lab.cli(capsys, "apply", str(plan), "--apply")
    refused_and_untouched(lab, code, err, before, original, "already held", "misdeliver")


def test_freeing_the_proxy_leaves_the_legacydn_held(
        kind: str, request: pytest.FixtureRequest, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    lab = lab_of(kind, "fabrikam.ldif", request, tmp_path, monkeypatch)
    with lab.open() as d:
        legacy = d.read(KBERG, ("legacyExchangeDN",)).texts("legacyExchangeDN")[0]  # type: ignore[union-attr]
    code, _, err = lab.cli(capsys, "x500", "add", "kberg", f"X500:{legacy}", "--apply",
                           "--undo-file", str(tmp_path / "u0.ldif"))
    assert code == 0, err
    before, original = lab.state(), lab.file_bytes()
    plan = hand_plan(lab, Modify(KBERG, (Mod("delete", "proxyAddresses", (f"X500:{legacy}",)),),
                                 "free the proxy"),
                     Modify(JSMITH, (Mod("add", "proxyAddresses", (f"X500:{legacy}",)),), "x"))
    code, _, err = lab.cli(capsys, "apply", str(plan), "--apply")
    assert code == 1, err
    assert "already held" in err and lab.file_bytes() == original
    same_state(before, lab.state())


def test_a_rename_plan_meets_the_uniqueness_gate_too(
        kind: str, request: pytest.FixtureRequest, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    lab = lab_of(kind, "fabrikam.ldif", request, tmp_path, monkeypatch)
    before, original = lab.state(), lab.file_bytes()
    made, _ = dry_run(lab, capsys, "rename", "admin-group", "Europe", "EMEA")
    plan = parse(made.read_text(encoding="utf-8"), "plan")
    extra = Modify(JSMITH, (Mod("add", "proxyAddresses", ("X500:" + KBERG_X500,)),), "x")
    path = lab.tmp / "plus.ldif"
    path.write_text(render(Plan((*plan.changes, extra))), encoding="utf-8")
    code, _, err = lab.cli(capsys, "apply", str(path), "--apply", "--lab")
    refused_and_untouched(lab, code, err, before, original, "Karen Berg", "misdeliver")


# --- issue 15, item 5: a read-only domain controller is never written ---------------------

def test_a_read_only_dc_is_never_written_on_any_path(
        kind: str, request: pytest.FixtureRequest, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """The directory says it is a read-only DC (on AD: its nTDSDSA is an nTDSDSARO;
    tests/test_samba_rodc.py shows a real one): the command, `exdir apply` and a library
    caller are refused before anything is written, and the plan may still be shown."""
    from exdir import apply
    from exdir.backends.ldap import LdapDirectory
    from exdir.backends.memory import LdifDirectory
    lab = lab_of(kind, "fabrikam.ldif", request, tmp_path, monkeypatch)
    before, original = lab.state(), lab.file_bytes()
    plan, _ = dry_run(lab, capsys, "x500", "add", "jsmith", "X500:/o=Old/cn=jsmith")
    for cls in (LdifDirectory, LdapDirectory):
        monkeypatch.setattr(cls, "read_only", property(lambda self: True))
    code, out, err = lab.cli(capsys, "x500", "add", "jsmith", "X500:/o=Old/cn=jsmith")
    assert code == 0 and "X500:/o=Old/cn=jsmith" in out, err  # the dry run is still shown
    assert "read-only domain controller" in err
    code, _, err = lab.cli(capsys, "x500", "add", "jsmith", "X500:/o=Old/cn=jsmith", "--apply")
    refused_and_untouched(lab, code, err, before, original, "read-only domain controller")
    code, _, err = lab.cli(capsys, "apply", str(plan), "--apply")
    refused_and_untouched(lab, code, err, before, original, "read-only domain controller")
    with lab.open() as directory:
        result = apply.run(directory, parse(plan.read_text(encoding="utf-8")), apply=True,
                           undo_file=str(tmp_path / "library-undo.ldif"))
        assert [g.code for g in result.blocked] == ["read-only"]
    assert not (tmp_path / "library-undo.ldif").exists()
    same_state(before, lab.state())
