"""legacyExchangeDN values: parts, prefixes on part boundaries, and listing them.

The listing is checked on both backends against the sample files as the `ldif`
package reads them; the prefix rule is restated here independently (docs/exchange.md:
case-insensitive, whole parts only, ADCDisabledMail is no DN).
"""
from __future__ import annotations

import io
from collections import Counter
from pathlib import Path
from typing import Iterator

import ldif
import pytest
from hypothesis import given
from hypothesis import strategies as st

from exdir import dn as dnu
from exdir.backends.base import Directory
from exdir.backends.memory import open_ldif
from exdir.backends.ldap import open_url
from exdir.legacydn import ADC_DISABLED, LegacyValue, has_prefix, parts
from exdir.readers.recipients import list_values
from tests.servers.slapd import SlapdFactory, require_slapd

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples"
SAMPLE_NAMES = ("fabrikam", "fabrikam-multidc", "fabrikam-mixed")
VALUE = "/o=Fabrikam/ou=First Administrative Group/cn=Recipients/cn=jsmith"


# --- parts ---------------------------------------------------------------------------------

def test_parts_of_a_recipient_value() -> None:
    assert parts(VALUE) == [("o", "Fabrikam"), ("ou", "First Administrative Group"),
                            ("cn", "Recipients"), ("cn", "jsmith")]


def test_parts_lower_case_the_types_and_keep_the_values() -> None:
    assert parts("/O=Fabrikam/OU=First Administrative Group/CN=RECIPIENTS/CN=tadams") == [
        ("o", "Fabrikam"), ("ou", "First Administrative Group"), ("cn", "RECIPIENTS"),
        ("cn", "tadams")]


def test_parts_keep_a_slash_inside_a_value() -> None:
    assert parts("/o=Fabrikam/ou=Sales/Marketing/cn=x") == [
        ("o", "Fabrikam"), ("ou", "Sales/Marketing"), ("cn", "x")]


@pytest.mark.parametrize("value", [ADC_DISABLED, "", "o=Fabrikam/ou=X", "x/o=Fabrikam",
                                   "/x=Fabrikam"])
def test_no_parts_in_what_is_not_a_legacy_dn(value: str) -> None:
    assert parts(value) == []


# --- has_prefix ------------------------------------------------------------------------------

@pytest.mark.parametrize(("value", "prefix", "expected"), [
    (VALUE, "/o=Fabrikam", True),
    (VALUE, "/O=FABRIKAM", True),
    (VALUE, "/o=fabrikam/OU=first administrative group", True),
    (VALUE, VALUE, True),
    (VALUE.upper(), VALUE.lower(), True),
    ("/o=Fabrikam", "/o=Fabrikam", True),
    ("/o=Fabrikam Archive/ou=First Administrative Group/cn=Recipients/cn=a", "/o=Fabrikam", False),
    ("/o=Fabrikam/ou=Europe2/cn=Recipients/cn=a", "/o=Fabrikam/ou=Europe", False),
    (VALUE + "x", VALUE, False),
    ("/o=Fabrikam", VALUE, False),  # the prefix is longer than the value
    ("/o=Fabrikam/cn=Europe/cn=a", "/o=Fabrikam/ou=Europe", False),  # part types count
    ("/o=Contoso/ou=Fabrikam", "/o=Fabrikam", False),
    (ADC_DISABLED, "/o=Fabrikam", False),
    (ADC_DISABLED, ADC_DISABLED, False),
    (VALUE, "", False),
    (VALUE, "Fabrikam", False),
])
def test_has_prefix(value: str, prefix: str, expected: bool) -> None:
    assert has_prefix(value, prefix) is expected


_part_value = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E,
                                    blacklist_characters="/="), min_size=1, max_size=12
                      ).filter(lambda s: s == s.strip())
_parts = st.lists(st.tuples(st.sampled_from(["ou", "cn"]), _part_value), max_size=5)


def _join(org: str, tail: list[tuple[str, str]]) -> str:
    return f"/o={org}" + "".join(f"/{t}={v}" for t, v in tail)


@given(_part_value, _parts, _parts, st.sampled_from(["upper", "lower", "same"]))
def test_leading_parts_are_a_prefix_and_a_longer_last_part_is_not(
        org: str, head: list[tuple[str, str]], tail: list[tuple[str, str]], case: str) -> None:
    value = _join(org, head + tail)
    prefix = _join(org, head)
    prefix = {"upper": prefix.upper(), "lower": prefix.lower(), "same": prefix}[case]
    assert has_prefix(value, prefix)
    assert not has_prefix(value, prefix + "Z")  # not on a part boundary any more


def _independent(value: str, prefix: str) -> bool:
    """The part-boundary rule stated on the text: equal, or equal up to a `/`; a
    legacyExchangeDN starts with `/` (ADCDisabledMail is a stamp, not a DN)."""
    v, p = value.lower(), prefix.lower()
    return p.startswith("/o=") and (v == p or v.startswith(p + "/"))


@given(_part_value, _parts, st.integers(0, 5), st.text(alphabet="aZ /=ocu", max_size=5))
def test_prefix_matches_the_text_rule(org: str, value_parts: list[tuple[str, str]], keep: int,
                                      noise: str) -> None:
    value = _join(org, value_parts)
    prefix = _join(org, value_parts[:keep]) + noise
    assert has_prefix(value, prefix) is _independent(value, prefix)


# --- list_values on both backends ------------------------------------------------------------

def file_values(path: Path) -> dict[str, tuple[str, str]]:
    """dn key -> (value, most specific class) for every entry of the file with a value."""
    out = {}
    parser = ldif.LDIFParser(io.BytesIO(path.read_bytes()), encoding=None, strict=True)
    for dn, record in parser.parse():
        attrs = {k.lower(): v for k, v in record.items()}
        if dn and "legacyexchangedn" in attrs:
            # Active Directory lists objectClass from top down to the structural class
            out[dnu.key(dn)] = (attrs["legacyexchangedn"][0].decode("utf-8"),
                                attrs["objectclass"][-1].decode("utf-8"))
    return out


@pytest.fixture(scope="module", params=[
    pytest.param((s, b), id=f"{s}-{b}", marks=[pytest.mark.slapd] if b == "slapd" else [])
    for s in SAMPLE_NAMES for b in ("ldif", "slapd")])
def opened(request: pytest.FixtureRequest) -> Iterator[tuple[Path, Directory]]:
    sample, backend = request.param
    path = SAMPLES / f"{sample}.ldif"
    if backend == "ldif":
        directory: Directory = open_ldif(str(path), warn=lambda m: None)
        yield path, directory
        return
    require_slapd()
    factory = SlapdFactory()
    try:
        server = factory(path.read_text(encoding="utf-8").replace("version: 1\n", "", 1))
        directory = open_url(server.url, server.bind_dn, server.password)
        try:
            yield path, directory
        finally:
            directory.close()
    finally:
        factory.close()


def _listed(rows: list[LegacyValue]) -> dict[str, tuple[str, str]]:
    return {dnu.key(r.dn): (r.value, r.object_class) for r in rows}


def test_every_value_listed_once(opened: tuple[Path, Directory]) -> None:
    path, directory = opened
    rows = list(list_values(directory))
    counts = Counter(dnu.key(r.dn) for r in rows)
    assert [k for k, n in counts.items() if n > 1] == []
    assert _listed(rows) == file_values(path)
    config = [r for r in rows if dnu.is_within(r.dn, directory.naming.configuration)]
    assert config and any(r.object_class == "msExchOrganizationContainer" for r in config)


@pytest.mark.parametrize("prefix", [
    "/o=Fabrikam", "/O=FABRIKAM", "/o=Fabrikam/ou=Europe", "/o=fabrikam/OU=EUROPE/cn=recipients",
    "/o=Fabrikam/ou=First Administrative Group/cn=Configuration/cn=Servers/cn=EX1",
    "/o=Fabrikam/ou=Eur", "/o=Contoso", ADC_DISABLED])
def test_values_under_a_prefix(opened: tuple[Path, Directory], prefix: str) -> None:
    path, directory = opened
    want = {k: v for k, v in file_values(path).items() if _independent(v[0], prefix)}
    assert _listed(list(list_values(directory, prefix))) == want


def test_adc_disabled_mail_listed_without_a_prefix(opened: tuple[Path, Directory]) -> None:
    path, directory = opened
    stamped = {k for k, v in file_values(path).items() if v[0] == ADC_DISABLED}
    listed = {dnu.key(r.dn) for r in list_values(directory) if r.value == ADC_DISABLED}
    assert listed == stamped
    assert bool(stamped) is (path.stem == "fabrikam-mixed")


@pytest.mark.parametrize("backend", ["ldif", pytest.param("slapd", marks=pytest.mark.slapd)])
def test_prefix_with_parentheses(backend: str, tmp_path: Path,
                                 request: pytest.FixtureRequest) -> None:
    """Exchange 2007+ values hold `(FYDIBOHF23SPDLT)`: a filter must escape them."""
    from exdir import lab

    text = "".join(lab.generate(mailboxes=40))
    path = tmp_path / "lab.ldif"
    path.write_text(text, encoding="utf-8")
    if backend == "ldif":
        directory: Directory = open_ldif(str(path), warn=lambda m: None)
    else:
        server = request.getfixturevalue("slapd_factory")(text)
        directory = open_url(server.url, server.bind_dn, server.password)
    try:
        everything = file_values(path)
        for prefix in ("/o=Fabrikam/ou=Exchange Administrative Group (FYDIBOHF23SPDLT)",
                       "/O=FABRIKAM/OU=EXCHANGE ADMINISTRATIVE GROUP (FYDIBOHF23SPDLT)/CN=RECIPIENTS",
                       "/o=Fabrikam/ou=Exchange Administrative Group (FYDIBOHF23SPDLT",
                       "/o=Fabrikam/ou=*"):
            want = {k: v for k, v in everything.items() if _independent(v[0], prefix)}
            assert _listed(list(list_values(directory, prefix))) == want, prefix
            if prefix.endswith(")"):
                assert want
    finally:
        directory.close()


def test_ldif_search_with_escaped_parentheses_in_a_substring(tmp_path: Path) -> None:
    from exdir import lab

    path = tmp_path / "lab.ldif"
    path.write_text("".join(lab.generate(mailboxes=5)), encoding="utf-8")
    directory = open_ldif(str(path), warn=lambda m: None)
    found = list(directory.search(directory.naming.configuration,
                                  "(legacyExchangeDN=*\\28FYDIBOHF23SPDLT\\29*)",
                                  ("legacyExchangeDN",)))
    assert found


def test_ldif_search_escaped_asterisk_is_literal(tmp_path: Path) -> None:
    path = tmp_path / "s.ldif"
    path.write_text((SAMPLES / "fabrikam.ldif").read_text(encoding="utf-8"), encoding="utf-8")
    directory = open_ldif(str(path), warn=lambda m: None)
    found = list(directory.search(None, "(legacyExchangeDN=/o=Fabrikam\\2a*)", ("cn",)))
    assert found == []
