"""`exdir delegates audit|remove`: stale publicDelegates values (issue 16, item 4).

The sample seeds two stale delegates every backend can hold (jhay's names a disabled
account, jlew's a user without a mailbox); the in-memory directory and slapd also hold
values no Active Directory keeps (a DN naming nothing, a deleted object's name).  On
every backend the audit finds each seeded case, and running each printed fix takes it
away; the undo of a removal restores the value exactly.
"""
from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any

import pytest

from exdir import dn as dnu
from tests.plans import data_snapshot
from tests.labs import ALL_BACKENDS, LDIF_SLAPD, SAMPLE, Lab, new_lab, same_state, undo_files

TEXT = SAMPLE.read_text(encoding="utf-8")
STAFF = "OU=Staff,DC=fabrikam,DC=com"
KAKERS = f"CN=Kim Akers,{STAFF}"
JHAY = f"CN=Jeff Hay,{STAFF}"
JLEW = f"CN=Judy Lew,{STAFF}"
GONE = f"CN=Gone Person,{STAFF}"
DELETED = ("CN=Old Temp\\0ADEL:7d1b9c1e-3f0a-4a53-9e2b-5f1c2d3e4a5b,"
           "CN=Deleted Objects,DC=fabrikam,DC=com")
SAMPLE_FINDINGS = {("delegate-disabled", dnu.key(JHAY)), ("delegate-no-mailbox", dnu.key(JLEW))}


def audit(capsys: pytest.CaptureFixture[str], lab_: Lab) -> tuple[int, dict[str, Any]]:
    code, out, err = lab_.cli(capsys, "--json", "delegates", "audit")
    assert code in (0, 1), err
    return code, json.loads(out)


def found(data: dict[str, Any]) -> set[tuple[str, str]]:
    return {(f["code"], dnu.key(f["dn"])) for f in data["findings"]}


def with_dangling(text: str) -> str:
    """kakers also names a DN with no object and a deleted object's name (an export or
    slapd keeps them; Active Directory drops such a link by itself)."""
    anchor = f"publicDelegates: CN=Pat Coleman,{STAFF}\n"
    assert anchor in text
    return text.replace(anchor, anchor + f"publicDelegates: {GONE}\n"
                                          f"publicDelegates: {DELETED}\n")


def run_fixes(capsys: pytest.CaptureFixture[str], lab_: Lab, data: dict[str, Any]) -> None:
    for f in data["findings"]:
        argv = shlex.split(f["fix"])
        assert argv[:3] == ["exdir", "delegates", "remove"] and argv[-1] == "--apply", f
        code, _, err = lab_.cli(capsys, *argv[1:])
        assert code == 0, (argv, err)


@pytest.mark.parametrize("kind", ALL_BACKENDS)
def test_the_sample_cases_found_and_fixed_on_every_backend(
        kind: str, request: pytest.FixtureRequest, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    lab_ = new_lab(kind, TEXT, request, tmp_path, reader=data_snapshot)
    code, data = audit(capsys, lab_)
    assert code == 1 and found(data) == SAMPLE_FINDINGS, data
    for f in data["findings"]:
        assert f["meaning"] and f["details"]["delegate"] in f["fix"]
    # the text form: each finding with its meaning and fix, exit 1
    code, text, _ = lab_.cli(capsys, "delegates", "audit")
    assert code == 1 and "delegates audit: 2 finding(s)" in text
    run_fixes(capsys, lab_, data)
    code, data = audit(capsys, lab_)
    assert (code, data["findings"]) == (0, []), data
    with lab_.open() as d:  # the valid delegate stays
        kim = d.read(KAKERS, ("publicDelegates",))
        assert kim is not None and [dnu.key(v) for v in kim.texts("publicDelegates")] == [
            dnu.key(f"CN=Pat Coleman,{STAFF}")]


@pytest.mark.parametrize("kind", LDIF_SLAPD)
def test_values_naming_nothing_or_a_deleted_object(
        kind: str, request: pytest.FixtureRequest, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    lab_ = new_lab(kind, with_dangling(TEXT), request, tmp_path)
    code, data = audit(capsys, lab_)
    assert code == 1
    assert found(data) == SAMPLE_FINDINGS | {("delegate-missing", dnu.key(KAKERS)),
                                             ("delegate-deleted", dnu.key(KAKERS))}, data
    run_fixes(capsys, lab_, data)
    code, data = audit(capsys, lab_)
    assert (code, data["findings"]) == (0, []), data


@pytest.mark.samba
def test_active_directory_drops_a_deleted_delegate_by_itself(
        request: pytest.FixtureRequest, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    """What docs/exchange.md says of AD: the forward link goes with its object, so a
    deleted delegate is no finding there (the rule inside the mailbox is out of reach)."""
    lab_ = new_lab("samba", TEXT, request, tmp_path)
    with lab_.open() as d:
        d.delete(f"CN=Toni Poe,{STAFF}")
    code, data = audit(capsys, lab_)
    assert code == 1 and found(data) == {("delegate-no-mailbox", dnu.key(JLEW))}, data


@pytest.mark.parametrize("kind", ALL_BACKENDS)
def test_remove_then_undo_restores_the_value_as_spelled(
        kind: str, request: pytest.FixtureRequest, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    lab_ = new_lab(kind, TEXT, request, tmp_path, reader=data_snapshot)
    before = lab_.state()
    undo = tmp_path / "undo.ldif"
    # the owner by mailNickname, the delegate in another case than the directory's
    code, _, err = lab_.cli(capsys, "delegates", "remove", "kakers",
                            "cn=pat coleman,ou=staff,dc=fabrikam,dc=com", "--apply",
                            "--undo-file", str(undo))
    assert code == 0, err
    with lab_.open() as d:
        kim = d.read(KAKERS, ("publicDelegates",))
        assert kim is not None and kim.texts("publicDelegates") == []
    assert f"publicDelegates: CN=Pat Coleman,{STAFF}" in undo.read_text(encoding="utf-8")
    code, _, err = lab_.cli(capsys, "apply", str(undo), "--apply",
                            "--undo-file", str(tmp_path / "redo.ldif"))
    assert code == 0, err
    same_state(before, lab_.state())


def test_a_delegate_not_held_is_a_note_and_an_unknown_owner_one_line(
        request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    lab_ = new_lab("ldif", TEXT, request, tmp_path)
    before = lab_.file_bytes()
    code, out, err = lab_.cli(capsys, "delegates", "remove", "kakers", JHAY, "--apply")
    assert code == 0 and "has no delegate" in err and "0 step" not in out, err
    code, out, err = lab_.cli(capsys, "delegates", "remove", "nobody\x1b[2J", JHAY, "--apply")
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1, err
    assert "\x1b" not in err and "Traceback" not in err
    assert lab_.file_bytes() == before and undo_files(tmp_path) == []
