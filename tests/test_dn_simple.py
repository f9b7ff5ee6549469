"""exdir.dn's fast split of plain DNs gives what the full parser gives.

`_simple_parts` answers for DNs without escapes, quotes, '+', '#', ';' or angle
brackets (nearly every DN of an export); the full path (ldap3's parser, then RFC
4514's lenient split) stays the reference for everything, and these tests hold the
two to the same answer: the same parts where the fast split answers, and no answer
from it where the full path refuses the text.
"""
from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exdir import dn as dnu
from exdir.lab import generate

ROOT = Path(__file__).resolve().parent.parent


def stripped(parts: list[tuple[str, str, str]]) -> list[tuple[str, str, str]]:
    """Parts as exdir.dn keeps them: spaces around each value stripped (the parsers
    differ there only, and _parse strips them after either)."""
    return [(a, dnu._strip_value(v), sep) for a, v, sep in parts]


def full(text: str) -> list[tuple[str, str, str]] | None:
    try:
        return stripped(dnu._parsed_parts(text, text))
    except dnu.MalformedDn:
        return None


def agree(text: str) -> None:
    simple = dnu._simple_parts(text)
    if simple is not None:
        assert full(text) == stripped(simple), text
    elif text.isprintable() and not dnu._NOT_SIMPLE.search(text):
        assert full(text) is None, text  # the fast split gave up only on what is no DN


def corpus() -> list[str]:
    names = []
    for path in sorted((ROOT / "samples").glob("*.ldif")):
        names += [line[4:].strip() for line in path.read_text(encoding="utf-8").splitlines()
                  if line.startswith("dn: ")]
    names += [line[4:].strip() for line in "".join(generate(mailboxes=50)).splitlines()
              if line.startswith("dn: ")]
    return names


def test_every_dn_of_the_samples_and_a_lab_splits_the_same() -> None:
    names = corpus()
    assert len(names) > 100
    fast = [n for n in names if dnu._simple_parts(n) is not None]
    assert len(fast) > len(names) // 2  # the fast split is the common case
    for name in names:
        agree(name)


@pytest.mark.parametrize("text", [
    "CN=John Smith,OU=Users, DC=x,DC=com", "CN= a ,DC=x", "CN=a=b,DC=x", "cn=,DC=x",
    "1cn=a,DC=x", "CN=a,,DC=x", "=a,DC=x", "CN=a,DC=x,", "2.5.4.3=a,DC=x", "CN=a\tb,DC=x",
    "OID.2.5.4.3=a", "my_attr=a,DC=x", "CN=é,DC=x", "CN", "CN=a, ,DC=x",
])
def test_edge_cases_split_the_same(text: str) -> None:
    agree(text)


_ALPHABET = st.sampled_from(list("aZ09 =,.-_é\t\x00\u2003") + ["CN=", "DC=", ",OU=", "2.5"])


@settings(max_examples=3000, deadline=None)
@given(st.lists(_ALPHABET, max_size=24).map("".join))
def test_random_text_splits_the_same(text: str) -> None:
    agree(text)


def test_the_fast_split_keeps_spelling_and_keys() -> None:
    d = dnu.parse("cn=John Smith , OU=Users,dc=Fabrikam,DC=com")
    assert d.spelled == "cn=John Smith,OU=Users,dc=Fabrikam,DC=com"
    assert d.key == "cn=john smith,ou=users,dc=fabrikam,dc=com"
    assert d.rdn_avas == [("cn", "John Smith")]


_DN_ALPHABET = st.sampled_from(list("aZ0 =,+\\#\"é") + ["CN=", "DC=", ",OU=", "+CN=", "\\2C",
                                                         "<GUID=1>;"])


def _same_name(text: str) -> None:
    try:
        cached = dnu.parse(text)
    except dnu.MalformedDn:
        with pytest.raises(dnu.MalformedDn):
            dnu.parse_once(text)
        return
    once = dnu.parse_once(text)
    assert (once.text, once.extended, once.avas, once.rdn_keys, once.key, once.spelled) == (
        cached.text, cached.extended, cached.avas, cached.rdn_keys, cached.key, cached.spelled)
    assert dnu.normalize_once(text) == cached.normal


@settings(max_examples=2000, deadline=None)
@given(st.lists(_DN_ALPHABET, max_size=16).map("".join))
def test_a_name_parsed_once_is_the_name_parsed(text: str) -> None:
    """parse_once/normalize_once (the index build's, kept out of the caches) give what
    parse/normalize give, for the names of the corpus and random text."""
    _same_name(text)


def test_the_corpus_parsed_once_is_the_corpus_parsed() -> None:
    for name in corpus():
        _same_name(name)
