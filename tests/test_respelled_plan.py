"""A plan that spells names otherwise than the directory does is the same plan (issue, item 1).

Active Directory compares DNs without case, spaces or escape choices, and most strings
without case, so a move plan written in lower case with spaces after the commas names the
same entries and the same values.  It must apply to them, and its undo must put back what
the directory held as the directory spelled it — byte for byte, not a lower-cased copy.
Runs on the in-memory directory and on slapd.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from exdir import dn as dnu
from exdir import schema
from exdir.apply import run
from exdir.backends.base import Directory
from exdir.gates import Safety
from exdir.ldif_in import parse, read_plan
from exdir.plan import Mod, Modify, Plan
from tests.labs import LDIF_SLAPD, SAMPLE, Lab, new_lab
from tests.plans import dn_form

SAFE = Safety(lab=True, adc_stopped=True)
JSMITH = r"CN=Smith\, John,OU=Staff,DC=fabrikam,DC=com"
KIM = "CN=Kim Akers,OU=Staff,DC=fabrikam,DC=com"
LEGACY_JSMITH = "/o=Fabrikam/ou=First Administrative Group/cn=Recipients/cn=jsmith"

Exact = dict[str, dict[str, list[bytes]]]
"""The directory as it spells itself: DN text -> attribute -> sorted raw values."""


def exact(directory: Directory) -> Exact:
    """Every entry with its DN exactly as the directory returns it (not a key) and every
    value's bytes; DN values in tests.plans.dn_form (slapd lower-cases the attribute
    types of DN values written over LDAP, and nothing else)."""
    out: Exact = {}
    for entry in directory.search(directory.naming.domain, "(objectClass=*)", ("*",)):
        attrs: dict[str, list[bytes]] = {}
        for name, values in entry.attributes.items():
            if name.lower() in {"entrydn", "entryuuid", "entrycsn", "createtimestamp",
                                "modifytimestamp", "creatorsname", "modifiersname",
                                "structuralobjectclass", "subschemasubentry",
                                "hassubordinates"}:
                continue
            raw = [(dn_form(v) if isinstance(v, str) and schema.kind_of(name) == "dn" else v)
                   for v in values]
            attrs[name.lower()] = sorted(v if isinstance(v, bytes) else v.encode() for v in raw)
        out[entry.dn] = attrs
    return out


def by_key(state: Exact) -> Exact:
    """The state with DN values as DN keys: what the directory compares, not its spelling."""
    return {dn: {a: sorted(dnu.key(v.decode()).encode() if schema.kind_of(a) == "dn" else v
                           for v in values) for a, values in attrs.items()}
            for dn, attrs in state.items()}


def respelled_dn(text: str) -> str:
    """The same name in lower case with a space after every RDN separator."""
    return ", ".join(_rdn_texts(text)).lower()


def _rdn_texts(text: str) -> list[str]:
    return [dnu.build([p]) for p in dnu.split(text)]


def respelled_value(attribute: str, value: object, op: str) -> object:
    """DN values respelled; the values a delete names lower-cased where the directory
    compares them without case (what an added string says is data, left as written)."""
    if not isinstance(value, str):
        return value
    if schema.kind_of(attribute) == "dn":
        return respelled_dn(value)
    if op == "delete" and not schema.is_case_exact(attribute):
        return value.lower()
    return value


def respell(plan: Plan) -> Plan:
    out = []
    for change in plan:
        assert isinstance(change, Modify)
        mods = tuple(Mod(m.op, m.attribute,
                         tuple(respelled_value(m.attribute, v, m.op) for v in m.values))
                     for m in change.mods)
        out.append(Modify(respelled_dn(change.dn), mods, change.reason))
    return Plan(tuple(out))


def upper_legacy(text: str) -> str:
    """The sample with jsmith's legacyExchangeDN stored as /O=FABRIKAM/OU=…"""
    line = f"legacyExchangeDN: {LEGACY_JSMITH}\n"
    assert line in text
    return text.replace(line, f"legacyExchangeDN: {LEGACY_JSMITH.upper()}\n", 1)


@pytest.fixture(params=LDIF_SLAPD)
def lab(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Lab:
    monkeypatch.chdir(tmp_path)
    return new_lab(request.param, upper_legacy(SAMPLE.read_text(encoding="utf-8")), request,
                   tmp_path)


def move_plan(lab: Lab, capsys: pytest.CaptureFixture[str]) -> Plan:
    """What `exdir move jsmith kakers --to EUR1` prints: a cross-group move (homeMDB,
    homeMTA, msExchHomeServerName, legacyExchangeDN, an X500 proxy, wireless values)."""
    code, out, err = lab.cli(capsys, "move", "jsmith", "kakers", "--to", "EUR1")
    assert code == 0, err
    return parse(out)


def test_the_respelling_changes_every_name_and_dn_value(lab: Lab,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    plan = move_plan(lab, capsys)
    again = respell(plan)
    assert [c.dn for c in again] != [c.dn for c in plan]
    for change in again:
        assert change.dn == change.dn.lower()  # the plan drops the spaces of its own DNs
        for mod in change.mods:
            if schema.kind_of(mod.attribute) == "dn":
                assert all(v == v.lower() and ", " in v for v in mod.values)
    legacy = [v for c in again for m in c.mods if m.attribute == "legacyExchangeDN"
              and m.op == "delete" for v in m.values]
    assert LEGACY_JSMITH.lower() in legacy  # the directory holds /O=FABRIKAM/OU=…


def test_a_respelled_move_applies_to_the_same_entries_and_its_undo_restores_the_spelling(
        lab: Lab, capsys: pytest.CaptureFixture[str]) -> None:
    plan = move_plan(lab, capsys)
    with lab.open() as d:
        before = exact(d)
    # the plan as exdir printed it, applied and undone: the reference end state
    with lab.open() as d:
        straight = run(d, plan, apply=True, undo_file=str(lab.tmp / "straight-undo.ldif"),
                       safety=SAFE)
    assert straight.exit_code == 0, straight.message
    with lab.open() as d:
        after_straight = exact(d)
    with lab.open() as d:
        back = run(d, read_plan(lab.tmp / "straight-undo.ldif"), apply=True,
                   undo_file=str(lab.tmp / "straight-redo.ldif"), safety=SAFE)
    assert back.exit_code == 0, back.message
    with lab.open() as d:
        assert exact(d) == before

    # the same plan respelled: the same entries and values change, the same way
    undo = lab.tmp / "undo.ldif"
    with lab.open() as d:
        first = run(d, respell(plan), apply=True, undo_file=str(undo), safety=SAFE)
    assert first.exit_code == 0, first.message
    assert [s.status for s in first.steps] == ["pending", "pending"]
    with lab.open() as d:
        after = exact(d)
    assert set(after) == set(before)  # no entry renamed by its respelling
    assert by_key(after) == by_key(after_straight)  # the same values changed, the same way
    undo_plan = read_plan(undo)
    assert LEGACY_JSMITH.upper() in [v for c in undo_plan for m in c.mods  # type: ignore[union-attr]
                                     if m.attribute == "legacyExchangeDN" and m.op == "add"
                                     for v in m.values]  # added back as the directory spelled it
    with lab.open() as d:
        second = run(d, read_plan(undo), apply=True, undo_file=str(lab.tmp / "redo.ldif"),
                     safety=SAFE)
    assert second.exit_code == 0, second.message
    with lab.open() as d:
        restored = exact(d)
    changed = {k: (before[k], restored.get(k)) for k in before if before[k] != restored.get(k)}
    assert restored == before, changed
    if lab.path is not None:
        assert f"dn: {KIM}\n" in lab.path.read_text(encoding="utf-8")


def test_a_respelled_move_writes_dn_values_as_the_directory_names_their_targets(
        lab: Lab, capsys: pytest.CaptureFixture[str]) -> None:
    plan = move_plan(lab, capsys)
    with lab.open() as d:
        straight = run(d, plan, apply=False, safety=SAFE)
        respelled = run(d, respell(plan), apply=False, safety=SAFE)
    assert straight.plan is not None and respelled.plan is not None
    added = [[v for m in c.mods if m.op == "add" for v in m.values]  # type: ignore[union-attr]
             for c in respelled.plan]
    assert added == [[v for m in c.mods if m.op == "add" for v in m.values]  # type: ignore[union-attr]
                     for c in straight.plan]


def test_a_respelled_undo_file_adds_back_the_names_as_the_directory_spells_them(
        lab: Lab, capsys: pytest.CaptureFixture[str]) -> None:
    """The undo file's adds of the old homeMDB and homeMTA, respelled in lower case: the
    values put back name their targets as the directory names them (as Active Directory,
    which holds a reference as a link to its target, reads them back)."""
    plan = move_plan(lab, capsys)
    with lab.open() as d:
        before = exact(d)
    undo = lab.tmp / "undo.ldif"
    with lab.open() as d:
        first = run(d, plan, apply=True, undo_file=str(undo), safety=SAFE)
    assert first.exit_code == 0, first.message
    with lab.open() as d:
        second = run(d, respell(read_plan(undo)), apply=True,
                     undo_file=str(lab.tmp / "redo.ldif"), safety=SAFE)
    assert second.exit_code == 0, second.message
    with lab.open() as d:
        restored = exact(d)
    changed = {k: (before[k], restored.get(k)) for k in before if before[k] != restored.get(k)}
    assert restored == before, changed
