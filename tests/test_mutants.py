"""Behaviours the rest of the suite left unchecked, found by scripts/mutate.py.

Each test here kills at least one mutant that survived the fast tests (a one-line
change to exdir/plan.py, ldif_out.py, ldif_in.py or checks.py that broke real
behaviour without a test noticing), and is named for the behaviour it pins, not
for the mutant.  Also here: Plan.resolve_replace against the values earlier
steps leave, `fold` at its boundaries, and the single-DC and ADC gates at their
edges (issue 10, items 27-29).
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import cast

import pytest

from exdir.checks import adc_move_refusal, blocking, preflight
from exdir.findings import RENAMES, Finding, Operation
from exdir.backends.base import Directory
from exdir.backends.memory import open_ldif
from exdir.ldif_in import entry_records, parse
from exdir.ldif_out import WIDTH, fold, render, value_line
from exdir.errors import InputError
from exdir.plan import (Add, Delete, InvalidChange, Mod, Modify, NotInvertible, Plan, Rename, Value,
                        canonical_dn, canonical_value, dn_key)
from exdir.readers.topology import read_topology
from exdir.topology import Topology
from tests.labs import SAMPLES

STAFF = "OU=Staff,DC=fabrikam,DC=com"
KIM = f"CN=Kim Akers,{STAFF}"
NEW = f"CN=New Contact,{STAFF}"
CONTACT: tuple[tuple[str, tuple[Value, ...]], ...] = (("objectClass", ("top", "contact")),)


def _directory(table: dict[tuple[str, str], Sequence[Value]]
               ) -> tuple[Callable[[str, str], Sequence[Value]], list[tuple[str, str]]]:
    """current(dn, attribute) over `table` (pre-plan values), recording each question."""
    asked: list[tuple[str, str]] = []

    def current(dn: str, attribute: str) -> Sequence[Value]:
        asked.append((dn, attribute.lower()))
        return table.get((dn, attribute.lower()), ())
    return current, asked


def _mods(plan: Plan, number: int) -> tuple[Mod, ...]:
    change = plan.changes[number]
    assert isinstance(change, Modify), change
    return change.mods


# --- item 27: a replace resolves against what the plan's earlier steps leave ---------

def test_replace_after_an_add_deletes_the_added_values_without_asking_the_directory() -> None:
    plan = Plan((Add(NEW, CONTACT + (("mail", ("a@x",)),)),
                 Modify(NEW, (Mod("replace", "mail", ("b@x",)),
                              Mod("replace", "description", ("new",))))))
    current, asked = _directory({(NEW, "mail"): ["stale@x"], (NEW, "description"): ["stale"]})
    resolved = plan.resolve_replace(current)
    assert _mods(resolved, 1) == (Mod("delete", "mail", ("a@x",)), Mod("add", "mail", ("b@x",)),
                                  Mod("add", "description", ("new",)))
    assert asked == []  # the plan created the entry: the directory knows nothing of it


def test_second_replace_of_one_attribute_deletes_what_the_first_wrote() -> None:
    plan = Plan((Modify(KIM, (Mod("replace", "mail", ("b@x", "c@x")),)),
                 Modify(KIM, (Mod("replace", "mail", ("d@x",)),)),
                 Modify(KIM, (Mod("delete", "mail", ()),))))
    current, asked = _directory({(KIM, "mail"): ["a@x"]})
    resolved = plan.resolve_replace(current)
    assert _mods(resolved, 0) == (Mod("delete", "mail", ("a@x",)),
                                  Mod("add", "mail", ("b@x", "c@x")))
    assert _mods(resolved, 1) == (Mod("delete", "mail", ("b@x", "c@x")), Mod("add", "mail", ("d@x",)))
    assert _mods(resolved, 2) == (Mod("delete", "mail", ("d@x",)),)
    assert asked == [(KIM, "mail")]


def test_entry_added_where_a_renamed_entry_was_is_another_entry() -> None:
    """Rename Kim away, add a new entry at her old DN: each replace resolves against its
    own entry (Kim's by her pre-plan DN, the new one against what the add gave it)."""
    moved = f"CN=Kim Akers (old),{STAFF}"
    plan = Plan((Rename(KIM, "CN=Kim Akers (old)"),
                 Add(KIM, CONTACT + (("mail", ("new@x",)),)),
                 Modify(moved, (Mod("replace", "mail", ("moved@x",)),)),
                 Modify(KIM, (Mod("replace", "mail", ("fresh@x",)),
                              Mod("replace", "info", ("i",))))))
    current, asked = _directory({(KIM, "mail"): ["kim@x"], (KIM, "info"): ["kim's note"]})
    resolved = plan.resolve_replace(current)
    assert _mods(resolved, 2) == (Mod("delete", "mail", ("kim@x",)), Mod("add", "mail", ("moved@x",)))
    assert _mods(resolved, 3) == (Mod("delete", "mail", ("new@x",)), Mod("add", "mail", ("fresh@x",)),
                                  Mod("add", "info", ("i",)))
    assert asked == [(KIM, "mail")]


def test_replace_after_delete_and_re_add_sees_only_the_new_entry() -> None:
    plan = Plan((Delete(KIM, "gone"), Add(KIM, CONTACT + (("cn", ("Kim Akers",)),)),
                 Modify(KIM, (Mod("replace", "mail", ("b@x",)),))))
    current, asked = _directory({(KIM, "mail"): ["kim@x"]})
    assert _mods(plan.resolve_replace(current), 2) == (Mod("add", "mail", ("b@x",)),)
    assert asked == []


def test_replace_of_the_naming_attribute_after_a_rename_sees_the_new_rdn_value() -> None:
    """deleteoldrdn: 1 takes the old RDN value out and puts the new one in."""
    renamed = f"CN=Kim Berg,{STAFF}"
    plan = Plan((Rename(KIM, "CN=Kim Berg"), Modify(renamed, (Mod("replace", "cn", ("Kim B",)),))))
    current, _ = _directory({(KIM, "cn"): ["Kim Akers"]})
    assert _mods(plan.resolve_replace(current), 1) == (Mod("delete", "cn", ("Kim Berg",)),
                                                       Mod("add", "cn", ("Kim B",)))


def test_replace_below_a_renamed_parent_asks_by_the_pre_plan_dn() -> None:
    child = f"CN=Kim Akers,OU=Team,{STAFF}"
    moved_child = f"CN=Kim Akers,OU=Crew,{STAFF}"
    plan = Plan((Modify(child, (Mod("add", "mail", ("two@x",)),)),
                 Rename(f"OU=Team,{STAFF}", "OU=Crew"),
                 Modify(moved_child, (Mod("replace", "mail", ("three@x",)),))))
    current, asked = _directory({(child, "mail"): ["one@x"]})
    assert _mods(plan.resolve_replace(current), 2) == (
        Mod("delete", "mail", ("one@x", "two@x")), Mod("add", "mail", ("three@x",)))
    assert asked == [(child, "mail")]


# --- item 28: folding never makes a line an editor would strip; no control characters --

def _unfold(physical: list[str]) -> str:
    return physical[0] + "".join(p[1:] for p in physical[1:])


def _check_folded(line: str, physical: list[str]) -> None:
    assert _unfold(physical) == line
    assert all(p.startswith(" ") for p in physical[1:])
    for p in physical[1:]:
        assert p.strip(" "), f"a continuation line of spaces only: {physical!r}"
    for p in physical[:-1]:
        assert not p.endswith(" "), f"a physical line ending in a space: {p!r}"


@pytest.mark.parametrize("k", [0, 1, 2, 5])
@pytest.mark.parametrize("extra", [-1, 0, 1])
def test_fold_at_exactly_76_plus_75k_characters(k: int, extra: int) -> None:
    """A line of 76 + 75k characters fills its physical lines exactly: k continuations,
    none of them empty (a lone ' ' continuation is an empty line to an editor)."""
    length = WIDTH + 75 * k + extra
    line = "description: " + "v" * (length - len("description: "))
    physical = fold(line)
    _check_folded(line, physical)
    assert [len(p) for p in physical[:-1]] == [WIDTH] * (len(physical) - 1)
    assert len(physical) == 1 + k + (extra > 0)
    assert len(physical[-1]) == (WIDTH + extra if extra <= 0 else 1 + extra)


@pytest.mark.parametrize("run", [73, 74, 75, 76, 150, 300])
def test_fold_never_writes_a_continuation_of_spaces_only(run: int) -> None:
    """A value with a run of spaces about a line long: every continuation still carries
    a character besides its leading space, whichever way the run falls."""
    for before in range(0, 80, 7):
        line = "description: " + "a" * before + " " * run + "b"
        _check_folded(line, fold(line))


@pytest.mark.parametrize("run", [40, 75, 150])
def test_values_with_long_runs_of_spaces_are_base64_and_fold_within_the_width(run: int) -> None:
    value = "x" + " " * run + "y"
    line = value_line("description", value)
    assert line.startswith("description:: ")
    assert all(len(p) <= WIDTH for p in fold(line))
    assert parse(render(Plan((Modify(KIM, (Mod("add", "description", (value,)),)),)))) \
        .changes[0] == Modify(KIM, (Mod("add", "description", (value,)),))


@pytest.mark.parametrize("char", ["\x7f", "\x00", "\x1b", "\x85", "\u2028"])
def test_control_characters_are_never_written_raw(char: str) -> None:
    """DEL (0x7f) and the C0/C1 controls go base64 in values, DNs and new RDNs, and
    become a space in comments, so no terminal or tool sees them."""
    dn = f"CN=a{char}b,{STAFF}"
    plan = Plan((Modify(dn, (Mod("add", "description", (f"v{char}w",)),), f"why{char}not"),
                 Rename(dn, f"CN=c{char}d")))
    text = render(plan, header=[f"head{char}er"])
    assert char not in text
    assert "# why not" in text and "# head er" in text
    assert parse(text).changes[1] == Rename(dn, f"CN=c{char}d", None, "")


# --- item 29: the single-DC rule and the ADC move refusal at their edges -------------

def _sample_without(tmp_path: Path, name: str, drop: Callable[[str], bool] = lambda r: False,
                    edit: Callable[[str], str] = lambda r: r) -> tuple[Directory, Topology]:
    """A sample with some records dropped or edited (records are blank-line separated)."""
    records = (SAMPLES / name).read_text(encoding="utf-8").split("\n\n")
    path = tmp_path / name
    path.write_text("\n\n".join(edit(r) for r in records if not drop(r)), encoding="utf-8")
    directory = open_ldif(str(path))
    return directory, read_topology(directory)


def _is_dsa_of(server: str) -> Callable[[str], bool]:
    return lambda record: record.startswith(f"dn: CN=NTDS Settings,CN={server},")


def _rename_blocks(directory: Directory, topology: Topology) -> list[str]:
    return [f.code for f in blocking(preflight(directory, topology), Operation.RENAME_ORG, lab=True)]


def test_two_domain_controllers_block_renames_one_does_not(tmp_path: Path) -> None:
    directory, two = _sample_without(tmp_path, "fabrikam-multidc.ldif", _is_dsa_of("DC3"))
    assert len(two.domain_controllers) == 2
    assert _rename_blocks(directory, two) == ["several-dcs"]
    (finding,) = [f for f in preflight(directory, two) if f.code == "several-dcs"]
    assert finding.message.startswith("2 domain controllers: ")
    one = dataclasses.replace(two, domain_controllers=two.domain_controllers[:1])
    assert _rename_blocks(directory, one) == []
    assert blocking(preflight(directory, two), Operation.MOVE, lab=True) == []  # moves are not renames


class _Server:
    """What preflight asks of a directory, for a server backend (no server needed)."""

    def __init__(self, active_directory: bool) -> None:
        self.backend = "ldap"
        self.is_active_directory = active_directory

    def describe(self) -> str:
        return "ldap://dc.example"


def test_a_server_without_domain_controllers_blocks_renames(tmp_path: Path) -> None:
    """In an LDIF lab no DC entry is fine; on a server the single-DC rule cannot be
    checked without one, so renames stop."""
    directory, topology = _sample_without(tmp_path, "fabrikam.ldif")
    none = dataclasses.replace(topology, domain_controllers=[])
    assert _rename_blocks(directory, none) == []
    server = cast(Directory, _Server(active_directory=True))
    assert _rename_blocks(server, none) == ["no-dcs"]
    assert _rename_blocks(server, topology) == []


def test_a_server_that_is_not_active_directory_needs_lab_for_renames(tmp_path: Path) -> None:
    _, topology = _sample_without(tmp_path, "fabrikam.ldif")
    other = cast(Directory, _Server(active_directory=False))
    findings = preflight(other, topology)
    assert [f.code for f in blocking(findings, Operation.RENAME_ORG, lab=False)] == ["not-ad"]
    assert blocking(findings, Operation.RENAME_ORG, lab=True) == []
    assert blocking(findings, Operation.MOVE, lab=False) == []
    assert _rename_blocks(cast(Directory, _Server(active_directory=True)), topology) == []


def test_blocking_findings_come_first_and_warnings_never_block(tmp_path: Path) -> None:
    directory, topology = _sample_without(tmp_path, "fabrikam-mixed.ldif")
    several = dataclasses.replace(topology, domain_controllers=topology.domain_controllers * 2)
    findings = preflight(directory, several)
    severities = [f.severity for f in findings]
    assert "warning" in severities and "blocks" in severities
    assert severities == sorted(severities, key=lambda s: s != "blocks")
    loud = Finding("loud", "a warning naming an operation", "warning",
                   blocks=(*RENAMES, Operation.MOVE))
    assert blocking([loud], Operation.RENAME_ORG, lab=False) == []
    assert blocking([loud], Operation.MOVE, lab=False) == []


def _not_mixed(record: str) -> str:
    return record.replace("msExchMixedMode: TRUE", "msExchMixedMode: FALSE")


def _is_agreement(record: str) -> bool:
    return "objectClass: msExchConnectionAgreement" in record


MOVES = ["jsmith", "kberg", "kakers", "dlee", "mchan", "pwong"]


def test_adc_refuses_a_same_group_move_only_in_mixed_mode_with_agreements(tmp_path: Path) -> None:
    for sub in "abc":
        (tmp_path / sub).mkdir()
    _, both = _sample_without(tmp_path / "a", "fabrikam-mixed.ldif")
    _, mixed_only = _sample_without(tmp_path / "b", "fabrikam-mixed.ldif", _is_agreement)
    _, agreements_only = _sample_without(tmp_path / "c", "fabrikam-mixed.ldif", edit=_not_mixed)
    assert both.organization.mixed_mode and both.agreements
    assert mixed_only.organization.mixed_mode and not mixed_only.agreements
    assert agreements_only.agreements and not agreements_only.organization.mixed_mode
    assert adc_move_refusal(mixed_only, MOVES[:1], adc_stopped=False) is None
    assert adc_move_refusal(agreements_only, MOVES[:1], adc_stopped=False) is None
    refusal = adc_move_refusal(both, MOVES[:1], adc_stopped=False)
    assert refusal is not None
    assert all(a.name in refusal for a in both.agreements)
    assert "1 mailbox(es)" in refusal and "(jsmith)" in refusal
    assert adc_move_refusal(both, MOVES[:1], adc_stopped=True) is None
    assert adc_move_refusal(both, [], adc_stopped=False) is None


def test_adc_refusal_names_at_most_five_mailboxes(tmp_path: Path) -> None:
    _, both = _sample_without(tmp_path, "fabrikam-mixed.ldif")
    five = adc_move_refusal(both, MOVES[:5], adc_stopped=False)
    six = adc_move_refusal(both, MOVES, adc_stopped=False)
    assert five is not None and six is not None
    assert f"({', '.join(MOVES[:5])})" in five and "…" not in five
    assert f"({', '.join(MOVES[:5])} …)" in six and "pwong" not in six
    assert "6 mailbox(es)" in six


# --- plan.py: behaviours the plan tests left open ----------------------------------

def test_an_escaped_trailing_space_survives_spaces_around_the_comma() -> None:
    """`CN=a\\ , DC=x` names the entry `a ` (trailing space): stripping the space the
    backslash escapes would make `CN=a\\,DC=x`, one RDN holding a comma."""
    assert canonical_dn("CN=a\\ , DC=x") == "CN=a\\ ,DC=x"
    assert dn_key("CN=a\\ , DC=x") == dn_key("CN=a\\20,DC=x")
    assert canonical_dn("CN=a , DC=x") == "CN=a,DC=x"


def test_attribute_options_binary_makes_values_bytes() -> None:
    assert canonical_value("description;binary", "abc") == b"abc"
    assert canonical_value("description;lang-en", "abc") == "abc"


def test_an_add_refuses_an_invalid_attribute_name() -> None:
    with pytest.raises(InvalidChange, match="invalid attribute name"):
        Add(NEW, CONTACT + (("bad name", ("x",)),))


def test_modify_holds_only_mod_blocks_and_a_plan_only_changes() -> None:
    with pytest.raises(InvalidChange, match="Mod instances"):
        Modify(KIM, ("add: mail",))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="not a change"):
        Plan(("dn: x",))  # type: ignore[arg-type]


def test_undo_reasons_pair_up_at_every_depth() -> None:
    reasons = ["move", "undo: move", "undo: undo: move", "undo: undo: undo: move"]
    for depth, reason in enumerate(reasons):
        change = Modify(KIM, (Mod("add", "mail", ("a@x",)),), reason)
        flipped = change.inverse().reason
        assert flipped == (reasons[depth - 1] if depth % 2 else reasons[depth + 1])
        assert change.inverse().inverse().reason == reason


def test_rename_new_superior_is_canonical() -> None:
    assert Rename(KIM, "CN=Kim", "OU=Other , DC=fabrikam, DC=com").new_superior == \
        "OU=Other,DC=fabrikam,DC=com"


def test_a_top_level_entry_renamed_in_place_inverts_moved_under_a_parent_does_not() -> None:
    assert Rename("DC=com", "DC=org").inverse() == Rename("DC=org", "DC=com", None, "undo:")
    with pytest.raises(NotInvertible, match="top-level"):
        Rename("DC=com", "DC=org", "DC=example").inverse()


def test_adds_and_deletes_are_addressed_by_their_own_dn() -> None:
    assert Add(NEW, CONTACT).new_dn == NEW
    assert Delete(KIM).new_dn == KIM


def test_a_modify_mixing_a_replace_with_other_blocks_is_resolved() -> None:
    plan = Plan((Modify(KIM, (Mod("add", "info", ("i",)), Mod("replace", "mail", ("b@x",)))),))
    current, _ = _directory({(KIM, "mail"): ["a@x"]})
    assert _mods(plan.resolve_replace(current), 0) == (
        Mod("add", "info", ("i",)), Mod("delete", "mail", ("a@x",)), Mod("add", "mail", ("b@x",)))


def test_resolve_deletes_leaves_a_plan_without_deletes_as_it_is() -> None:
    plan = Plan((Add(NEW, CONTACT),))
    assert plan.resolve_deletes(lambda dn: pytest.fail("no lookup needed")) is plan


# --- ldif_out.py / ldif_in.py ------------------------------------------------------

def test_tilde_is_printable_ascii_and_written_as_is() -> None:
    assert value_line("description", "a~b") == "description: a~b"


def _refusal(text: str) -> str:
    with pytest.raises(InputError) as caught:
        parse(text)
    return str(caught.value)


def test_plan_reader_names_what_is_wrong() -> None:
    head = f"version: 1\n\ndn: {KIM}\n"
    assert "'increment:' is not supported" in _refusal(head + "changetype: modify\nincrement: n\n")
    assert "'-' belongs in modify records" in _refusal(
        head + "changetype: modrdn\nnewrdn: CN=K\n-\ndeleteoldrdn: 1\n")
    assert "newsuperior is empty" in _refusal(
        head + "changetype: modrdn\nnewrdn: CN=K\ndeleteoldrdn: 1\nnewsuperior:\n")
    assert "newsuperior is empty" in _refusal(
        head + "changetype: modrdn\nnewrdn: CN=K\ndeleteoldrdn: 1\nnewsuperior:: IA==\n")
    assert "expected 'attribute: value'" in _refusal(head + "changetype: delete\n\ndn\n")


def test_plan_reader_shows_at_most_40_characters_of_a_bad_line() -> None:
    bad = "x" * 39 + "yz" + "w" * 20
    message = _refusal(f"version: 1\n\ndn: {KIM}\n{bad}\n")
    assert repr(bad[:40] + "...") in message


def test_blank_lines_before_the_first_record_do_not_merge_records() -> None:
    text = f"\n\nversion: 1\n\ndn: {KIM}\nchangetype: delete\n\ndn: {NEW}\nchangetype: delete\n"
    assert [c.dn for c in parse(text.replace("version: 1\n\n", ""))] == [KIM, NEW]


def test_a_shorter_run_of_spaces_stays_readable_text() -> None:
    assert value_line("description", "x" + " " * 30 + "y") == "description: x" + " " * 30 + "y"


def test_a_break_moved_past_a_run_of_spaces_ends_right_after_it() -> None:
    """Only the piece holding the run is longer than the width, by no more than the run;
    a line ending in spaces (no value does) still folds back whole."""
    line = "description: a" + " " * 100 + "b" + "cdefg" * 40
    physical = fold(line)
    _check_folded(line, physical)
    assert sorted(len(p) for p in physical)[-2] <= WIDTH
    assert max(len(p) for p in physical) <= 100 + 2
    trailing = "description: a" + " " * 100
    assert _unfold(fold(trailing)) == trailing


# --- plan.py: the value rules and the replace tracker at their edges -------------------

def test_a_dn_of_exactly_max_parts_is_read_one_more_is_refused() -> None:
    from exdir.dn import MAX_PARTS
    at_limit = ",".join(f"OU=p{i}" for i in range(MAX_PARTS - 2)) + ",DC=fabrikam,DC=com"
    assert at_limit.count("=") == MAX_PARTS
    assert dn_key(at_limit)  # read
    with pytest.raises(InvalidChange, match=f"more than {MAX_PARTS} parts"):
        dn_key("OU=extra," + at_limit)


def test_a_delete_of_one_value_keeps_the_others_for_a_later_replace() -> None:
    plan = Plan((Modify(KIM, (Mod("delete", "description", ("A",)),)),
                 Modify(KIM, (Mod("replace", "description", ("c",)),))))
    current, _ = _directory({(KIM, "description"): ["a", "b"]})
    assert _mods(plan.resolve_replace(current), 1) == (Mod("delete", "description", ("b",)),
                                                       Mod("add", "description", ("c",)))


def test_binary_values_differ_by_their_bytes() -> None:
    assert not Modify(KIM, (Mod("delete", "objectGUID", (b"\x01",)),
                            Mod("add", "objectGUID", (b"\x02",)))).is_noop()
    assert Modify(KIM, (Mod("delete", "objectGUID", (b"\x01",)),
                        Mod("add", "objectGUID", (b"\x01",)))).is_noop()


def test_dn_values_compare_as_dns_and_others_as_written() -> None:
    other = f"CN=Pat Coleman,{STAFF}"
    assert not Modify(KIM, (Mod("delete", "manager", (other,)),
                            Mod("add", "manager", (f"CN=Ted Bremer,{STAFF}",)))).is_noop()
    assert Modify(KIM, (Mod("delete", "manager", (other,)),
                        Mod("add", "manager", (other.lower(),)))).is_noop()


def test_values_a_step_added_are_tracked_through_a_rename_of_their_entry() -> None:
    renamed = f"CN=Kim A,{STAFF}"
    plan = Plan((Modify(KIM, (Mod("add", "description", ("x",)),)), Rename(KIM, "CN=Kim A"),
                 Modify(renamed, (Mod("replace", "description", ("y",)),))))
    current, _ = _directory({(KIM, "description"): ["orig"]})
    assert _mods(plan.resolve_replace(current), 2) == (Mod("delete", "description", ("orig", "x")),
                                                       Mod("add", "description", ("y",)))


def test_an_entry_the_plan_added_is_never_looked_up_after_an_unrelated_rename() -> None:
    plan = Plan((Add(NEW, CONTACT), Rename(KIM, "CN=Kim A"),
                 Modify(NEW, (Mod("replace", "description", ("d",)),))))
    current, asked = _directory({(NEW, "description"): ["stale"]})
    assert _mods(plan.resolve_replace(current), 2) == (Mod("add", "description", ("d",)),)
    assert asked == []


def test_a_replace_after_its_entry_was_deleted_resolves_against_nothing() -> None:
    plan = Plan((Delete(NEW, "gone"), Modify(NEW, (Mod("replace", "description", ("d",)),))))
    current, asked = _directory({(NEW, "description"): ["stale"]})
    assert _mods(plan.resolve_replace(current), 1) == (Mod("add", "description", ("d",)),)
    assert asked == []


def test_a_rename_to_an_rdn_of_another_type_puts_the_value_in_that_attribute() -> None:
    renamed = f"OU=Kim,{STAFF}"
    plan = Plan((Rename(KIM, "OU=Kim"), Modify(renamed, (Mod("replace", "ou", ("K2",)),))))
    current, _ = _directory({(KIM, "cn"): ["Kim Akers"]})
    assert _mods(plan.resolve_replace(current), 1) == (Mod("delete", "ou", ("Kim",)),
                                                       Mod("add", "ou", ("K2",)))


def test_a_delete_of_one_binary_value_keeps_the_others_for_a_later_replace() -> None:
    plan = Plan((Modify(KIM, (Mod("delete", "userCertificate", (b"\x01",)),)),
                 Modify(KIM, (Mod("replace", "userCertificate", (b"\x03",)),))))
    current, _ = _directory({(KIM, "usercertificate"): [b"\x01", b"\x02"]})
    assert _mods(plan.resolve_replace(current), 1) == (
        Mod("delete", "userCertificate", (b"\x02",)), Mod("add", "userCertificate", (b"\x03",)))


# --- ldif_in.py: the export reader's refusals name what is wrong ------------------------

def _export_refusal(text: str) -> str:
    with pytest.raises(InputError) as caught:
        list(entry_records(text, "export.ldif"))
    return caught.value.message


def test_a_version_line_after_the_first_record_is_named_as_such() -> None:
    message = _export_refusal(f"version: 1\n\ndn: {KIM}\ncn: Kim\n\nversion: 1\n\n")
    assert "'version:' must be the first line of the file" in message


def test_a_dash_line_in_an_export_is_named_as_a_modify_line() -> None:
    assert "'-' belongs in modify records" in _export_refusal(f"dn: {KIM}\ncn: Kim\n-\n")


def test_ldb_special_records_come_with_no_fields() -> None:
    records = list(entry_records(f"dn: @INDEXLIST\n@IDXATTR: cn\n\ndn: {KIM}\ncn: Kim\n",
                                 "export.ldif"))
    assert [(r.dn, r.fields) for r in records][0] == ("@INDEXLIST", ())
    assert records[1].dn == KIM and [f[1:] for f in records[1].fields] == [("cn", "Kim")]


def test_a_bad_line_of_exactly_40_characters_is_shown_whole() -> None:
    bad = "x" * 40
    message = _refusal(f"version: 1\n\ndn: {KIM}\n{bad}\n")
    assert repr(bad) in message and "..." not in message


def test_the_last_line_of_a_file_without_a_final_newline_is_read() -> None:
    records = list(entry_records(f"dn: {KIM}\ncn: Kim", "export.ldif"))
    assert [f[1:] for f in records[0].fields] == [("cn", "Kim")]
    with pytest.raises(InputError) as caught:
        list(entry_records(f"dn: {KIM}\nno colon here", "export.ldif"))
    assert caught.value.line == 2
