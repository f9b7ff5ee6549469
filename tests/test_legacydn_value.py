"""The legacyExchangeDN value type (issue 5, Deliver 1): parts, prefixes on part
boundaries, case, rewrite, the grammar of docs/exchange.md, new names.

Expected results are written from docs/exchange.md's rules, never read back from the
code; the property tests state the rule on the text and let hypothesis look for a
value that breaks it.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from commands.main import main
from exdir.errors import InputError
from exdir.legacydn import (ADC_DISABLED, InvalidLegacyDN, check_name, check_value, has_prefix,
                            is_adc_disabled, parts, problems, rewrite, same)

SAMPLE = Path(__file__).resolve().parent.parent / "samples" / "fabrikam.ldif"
FAG = "/o=Fabrikam/ou=First Administrative Group"
JSMITH = f"{FAG}/cn=Recipients/cn=jsmith"
E2007_GROUP = "Exchange Administrative Group (FYDIBOHF23SPDLT)"
HEX32 = "6ed4e1680c4a4a9b9e3c2d7f0a1b2c3d"
E2007_RECIPIENT = f"/o=Fabrikam/ou={E2007_GROUP}/cn=Recipients/cn={HEX32}-jsmith"
ONLINE = f"/o=ExchangeLabs/ou={E2007_GROUP}/cn=Recipients/cn={HEX32}-User6ed4e168"
OAB = "/o=Fabrikam/cn=addrlists/cn=oabs/cn=Default Offline Address List"


# --- parts --------------------------------------------------------------------------------

def test_parts_of_a_recipient() -> None:
    assert parts(JSMITH) == [("o", "Fabrikam"), ("ou", "First Administrative Group"),
                             ("cn", "Recipients"), ("cn", "jsmith")]


def test_parts_lower_the_types_and_keep_the_values() -> None:
    assert parts("/O=Fabrikam/OU=First Administrative Group/CN=RECIPIENTS/CN=tadams") == [
        ("o", "Fabrikam"), ("ou", "First Administrative Group"), ("cn", "RECIPIENTS"),
        ("cn", "tadams")]


def test_parts_of_the_2007_and_online_forms() -> None:
    assert parts(E2007_RECIPIENT)[1] == ("ou", E2007_GROUP)
    assert parts(E2007_RECIPIENT)[-1] == ("cn", f"{HEX32}-jsmith")
    assert parts(ONLINE)[0] == ("o", "ExchangeLabs")
    assert [t for t, _ in parts(OAB)] == ["o", "cn", "cn", "cn"]


@pytest.mark.parametrize("value", [ADC_DISABLED, "", "Fabrikam", "o=Fabrikam", " /o=Fabrikam",
                                   "X500:/o=Fabrikam"])
def test_parts_of_what_is_not_a_legacy_dn(value: str) -> None:
    assert parts(value) == []


# --- prefixes: part boundaries and case ---------------------------------------------------------

@pytest.mark.parametrize("value, prefix, expected", [
    ("/o=Fabrikam Archive/ou=X/cn=Recipients/cn=a", "/o=Fabrikam", False),
    ("/o=Fabrikam/ou=X/cn=Recipients/cn=a", "/o=Fabrikam", True),
    ("/o=Fabrikam", "/o=Fabrikam", True),
    ("/o=Fabrikam", "/o=Fabrikam Archive", False),
    ("/o=Fabrikam/ou=Europe West/cn=Recipients/cn=a", "/o=Fabrikam/ou=Europe", False),
    ("/o=Fabrikam/ou=Europe/cn=Recipients/cn=a", "/o=Fabrikam/ou=Europe", True),
    ("/O=FABRIKAM/OU=EUROPE/CN=RECIPIENTS/CN=A", "/o=fabrikam/ou=europe", True),
    ("/o=fabrikam/ou=europe/cn=recipients/cn=a", "/O=FABRIKAM/OU=EUROPE", True),
    ("/o=Fabrikam/cn=Europe/cn=a", "/o=Fabrikam/ou=Europe", False),  # the type counts
    ("/o=Contoso/ou=Fabrikam", "/o=Fabrikam", False),
    (OAB, "/o=Fabrikam", True),
    (OAB, "/o=Fabrikam/ou=First Administrative Group", False),
    (E2007_RECIPIENT, f"/o=Fabrikam/ou={E2007_GROUP}", True),
    (E2007_RECIPIENT, "/o=Fabrikam/ou=Exchange Administrative Group", False),
    (ONLINE, "/o=Fabrikam", False),
    (ADC_DISABLED, "/o=Fabrikam", False),
])
def test_prefix_only_on_part_boundaries_and_whatever_the_case(value: str, prefix: str,
                                                              expected: bool) -> None:
    assert has_prefix(value, prefix) is expected
    assert (rewrite(value, prefix, "/o=Contoso") is not None) is expected


def test_same_ignores_case_only() -> None:
    assert same("/O=FABRIKAM/OU=X/CN=A", "/o=fabrikam/ou=x/cn=a")
    assert not same("/o=Fabrikam/ou=X/cn=A", "/o=Fabrikam/ou=X/cn=A ")
    assert not same("/o=Fabrikam", "/o=Fabrikam Archive")


# --- rewrite --------------------------------------------------------------------------------

def test_rewrite_keeps_the_case_of_the_remainder() -> None:
    value = "/O=Fabrikam/OU=First Administrative Group/CN=RECIPIENTS/CN=tadams"
    assert rewrite(value, "/o=fabrikam", "/o=Contoso") == (
        "/o=Contoso/OU=First Administrative Group/CN=RECIPIENTS/CN=tadams")
    assert rewrite(value, "/o=Fabrikam/ou=first administrative group",
                   "/o=Fabrikam/ou=Head Office") == "/o=Fabrikam/ou=Head Office/CN=RECIPIENTS/CN=tadams"


def test_rewrite_of_the_prefix_itself_and_of_other_forms() -> None:
    assert rewrite("/o=Fabrikam", "/o=Fabrikam", "/o=Contoso") == "/o=Contoso"
    assert rewrite(OAB, "/o=Fabrikam", "/o=Contoso") == (
        "/o=Contoso/cn=addrlists/cn=oabs/cn=Default Offline Address List")
    assert rewrite(E2007_RECIPIENT, "/o=Fabrikam", "/o=Contoso") == (
        f"/o=Contoso/ou={E2007_GROUP}/cn=Recipients/cn={HEX32}-jsmith")


@pytest.mark.parametrize("value", [
    "/o=Fabrikam Archive/ou=X/cn=a", "/o=Contoso/ou=X", ADC_DISABLED, ONLINE, ""])
def test_rewrite_leaves_what_is_not_under_the_prefix(value: str) -> None:
    assert rewrite(value, "/o=Fabrikam", "/o=Contoso") is None


# --- the grammar ------------------------------------------------------------------------------

@pytest.mark.parametrize("value", [
    "/o=Fabrikam",
    "/o=Fabrikam/ou=First Administrative Group",
    JSMITH,
    "/O=Fabrikam/OU=First Administrative Group/CN=RECIPIENTS/CN=tadams",
    "/o=Fabrikam/ou=Europe/cn=Configuration/cn=Servers/cn=EUR1/cn=Microsoft Private MDB",
    E2007_RECIPIENT,
    ONLINE,
    OAB,  # organisation level: /cn= parts straight after /o=
    "/o=Fabrikam/ou=Europe/cn=Distribution Lists/cn=sales",  # a 5.5 site's container
    "/o=" + "F" * 64 + "/ou=" + "G" * 64 + "/cn=" + "R" * 64 + "/cn=" + "a" * 64,  # 256
    "/o=F/ou=G" + "/cn=x" * 14,
    "/o=a b/ou=(x) & y's -.+,;:#<>\"?!*@%^_~`{}[]|$",
])
def test_valid_values(value: str) -> None:
    assert problems(value) == []
    assert check_value(value) == value


@pytest.mark.parametrize("value, why", [
    ("/o=Müller/ou=X", "printable ASCII"),
    ("/o=Fabrikam/ou=X/cn=Recipients/cn=j\tsmith", "printable ASCII"),
    ("/o=Fabrikam/ou=X/cn=" + "a" * 65, "longer than 64"),
    ("/o=" + "F" * 64 + "/ou=" + "G" * 64 + "/cn=" + "R" * 64 + "/cn=" + "a" * 64 + "/cn=b",
     "more than 256 characters"),
    ("/o=F/ou=G" + "/cn=x" * 15, "at most 14"),
    ("/o=F" + "/cn=x" * 15, "at most 14"),
    ("/o=Fabrikam/ou=/cn=a", "empty"),
    ("/o=", "empty"),
    ("/o=Fabrikam/ou=X/cn=", "empty"),
    ("/o= Fabrikam/ou=X", "leading or trailing space"),
    ("/o=Fabrikam/ou=X /cn=a", "leading or trailing space"),
    ("/o=Fabrikam/ou=X/cn=Recipients/cn=a/b", "'/'"),
    ("/o=Fabrikam//ou=X", "'/'"),
    ("/ou=X/o=Fabrikam", "/o= must come first"),
    ("/o=Fabrikam/o=Contoso", "/o= must come first"),
    ("/o=Fabrikam/cn=Recipients/ou=X", "only /cn= parts"),
    ("/o=Fabrikam/ou=X/ou=Y", "only /cn= parts"),
    ("o=Fabrikam", "must start with /o="),
    ("", "must start with /o="),
    (ADC_DISABLED, "marker"),
    ("adcdisabledmail", "marker"),
])
def test_invalid_values(value: str, why: str) -> None:
    found = problems(value)
    assert any(why in p for p in found), found
    with pytest.raises(InvalidLegacyDN) as raised:
        check_value(value)
    assert raised.value.exit_code == 2
    assert isinstance(raised.value, InputError)


def test_adc_disabled_is_recognised_and_never_a_dn() -> None:
    for value in (ADC_DISABLED, ADC_DISABLED.upper(), f" {ADC_DISABLED} "):
        assert is_adc_disabled(value)
        assert parts(value) == []
        assert not has_prefix(value, "/o=Fabrikam")
    assert not is_adc_disabled(JSMITH)
    assert not is_adc_disabled("/o=ADCDisabledMail")


# --- new names -------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["Contoso", "EMEA", "Fabrikam Europe (West) & Co.", "x" * 64,
                                  "Smith, Jones + Partners", "#1", "a;b<c>d\"e"])
def test_valid_names(name: str) -> None:
    assert check_name(name, "organisation") == name


@pytest.mark.parametrize("name, why", [
    ("Fab/rikam", "'/'"), ("Fab=rikam", "'='"), ("Fab\\rikam", "'\\\\'"),
    ("Müller", "'ü'"), ("Tab\there", "'\\t'"), ("x" * 65, "longer than 64"),
    ("", "empty"), ("   ", "empty"), (" Contoso", "leading or trailing space"),
    ("Contoso ", "leading or trailing space"),
])
def test_invalid_names(name: str, why: str) -> None:
    with pytest.raises(InvalidLegacyDN) as raised:
        check_name(name, "organisation")
    assert why in raised.value.message
    assert raised.value.exit_code == 2


@pytest.mark.parametrize("args", [
    ["rename", "org"], ["rename", "admin-group", "Europe"]])
@pytest.mark.parametrize("name", ["Fab/rikam", "Fab=rikam", "Fab\\rikam", "Müller", "x" * 65,
                                  "", "  ", "EMEA "])
def test_invalid_names_through_the_cli_exit_2_in_one_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], name: str) -> None:
    lab = tmp_path / "lab.ldif"
    lab.write_bytes(SAMPLE.read_bytes())
    code = main(["--ldif", str(lab), *args, name])
    out, err = capsys.readouterr()
    assert code == 2, err
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("exdir: "), err
    assert "name" in lines[0] and "Traceback" not in err
    assert lab.read_bytes() == SAMPLE.read_bytes()


# --- properties ----------------------------------------------------------------------------------

_NAME_CHARS = st.characters(min_codepoint=0x20, max_codepoint=0x7E, blacklist_characters="/=\\")
names = st.text(_NAME_CHARS, min_size=1, max_size=20).filter(lambda s: s == s.strip(" "))
_part = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E, blacklist_characters="/"),
                min_size=1, max_size=16).filter(lambda s: s == s.strip(" "))
tails = st.lists(_part, max_size=6).map(lambda ps: "".join(f"/cn={p}" for p in ps))


@st.composite
def prefixes(draw: st.DrawFn) -> tuple[str, str]:
    """Two prefixes of the same shape: /o=A and /o=B, or /o=O/ou=A and /o=O/ou=B."""
    a, b = draw(names), draw(names)
    if draw(st.booleans()):
        return f"/o={a}", f"/o={b}"
    org = draw(names)
    return f"/o={org}/ou={a}", f"/o={org}/ou={b}"


@given(prefixes(), tails)
@settings(max_examples=300)
def test_rewrite_there_and_back_is_the_identity(pair: tuple[str, str], tail: str) -> None:
    a, b = pair
    value = a + tail
    there = rewrite(value, a, b)
    assert there is not None and there == b + tail  # the remainder kept exactly
    assert rewrite(rewrite(value, a, b) or "", b, a) == value


@given(prefixes(), tails, st.sampled_from([str.upper, str.lower, str.swapcase]))
@settings(max_examples=200)
def test_a_prefix_in_another_case_is_found_and_the_remainder_keeps_its_case(
        pair: tuple[str, str], tail: str, fold: Callable[[str], str]) -> None:
    a, b = pair
    value = fold(a) + tail
    assert has_prefix(value, a)
    assert rewrite(value, a, b) == b + tail


@given(names, names, tails)
def test_a_longer_name_is_never_under_the_shorter(a: str, extra: str, tail: str) -> None:
    value = f"/o={a}{extra}" + tail  # extra holds no '/': no part boundary after a
    assert not has_prefix(value, f"/o={a}")
    assert rewrite(value, f"/o={a}", "/o=Contoso") is None


def _by_parts(value: str, prefix: str) -> bool:
    """The definition: prefix's (type, value) parts begin value's, compared lower-cased."""
    p = [(t, v.lower()) for t, v in parts(prefix)]
    v = [(t, x.lower()) for t, x in parts(value)]
    return bool(p) and v[: len(p)] == p


_noise = st.lists(st.sampled_from(["/", "o", "ou", "cn", "=", "O", "CN", "a", "A", " ", "Fab",
                                   "/o=", "/cn=", "/OU=", "/ou="]), max_size=12).map("".join)


@given(_noise, _noise, st.sampled_from(["", "/"]), st.booleans())
@settings(max_examples=500)
@example("a", "/o=Fab", "/", True)  # '/' after the prefix, but no part starts there
@example("/cn=x", "/o=Fab", "/", True)
@example("", "/o=Fab", "/", True)
@example("/o=Fab", "/o=Fab/", "", False)
def test_prefix_on_the_text_is_prefix_by_parts(value: str, prefix: str, sep: str,
                                               glue: bool) -> None:
    """has_prefix works on the text (fast); on any ASCII text, well formed or not, it must
    agree with comparing the parts, and rewrite must cut where the parts end."""
    if glue:
        value = prefix.swapcase() + sep + value
    assert has_prefix(value, prefix) is _by_parts(value, prefix)
    new = rewrite(value, prefix, "/o=X")
    if _by_parts(value, prefix):
        rest = value[len(prefix):]
        assert new == "/o=X" + rest
        assert parts(value)[len(parts(prefix)):] == parts("/o=X" + rest)[1:]
    else:
        assert new is None


# --- one rule for names: renames, the lab generator and the audit ------------------------------

@pytest.mark.parametrize("value, flagged", [
    ("/o=Fab=rikam/ou=First Administrative Group/cn=Recipients/cn=jsmith", True),
    ("/o=Fabrikam/ou=Eu\\rope/cn=Recipients/cn=jsmith", True),
    ("/o=Fabrikam/ou=Europe/cn=Recipients/cn=a=b", False),  # an alias: not a name of the rule
])
def test_the_audit_grammar_flags_organisation_and_group_names_a_rename_refuses(
        value: str, flagged: bool) -> None:
    from exdir.legacydn import name_problem, problems, parts

    assert bool(problems(value)) is flagged
    for t, v in parts(value):
        if t in ("o", "ou"):
            assert (name_problem(v) is not None) is (v in ("Fab=rikam", "Eu\\rope"))
