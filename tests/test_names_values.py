"""Every comparison of names and values agrees (issue, item 1): one DN model, one value model.

Generated names are spelled many ways — escaped commas as `\\,` or `\\2C`, plus signs,
`#`, quotes, spaces after commas and around `+`, any case, the AVAs of a multi-valued
RDN in any order — and every place exdir compares names must see one name:
exdir.dn.key, the Plan's dn_key, apply's simulated directory (its state keys, the steps
it finds), exdir.values for DN-syntax attributes, Plan.is_noop and the in-memory
directory's lookups.  Two different names must stay two names everywhere.
"""
from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exdir import dn as dnu
from exdir import values
from exdir.apply import check
from exdir.backends.base import Directory
from exdir.backends.memory import open_ldif
from exdir.plan import Mod, Modify, Plan, dn_key, value_key

SAMPLE = Path(__file__).resolve().parent.parent / "samples" / "fabrikam.ldif"
KIM = "CN=Kim Akers,OU=Staff,DC=fabrikam,DC=com"
X = "CN=Pat Coleman,OU=Staff,DC=fabrikam,DC=com"

Name = tuple[tuple[tuple[str, str], ...], ...]
"""RDNs leaf first, each a tuple of (attribute type, unescaped value)."""

SPECIAL = ',+"\\<>;=#'
_chars = st.sampled_from(list("aBcDé xY0" + SPECIAL))
_value = st.text(_chars, min_size=1, max_size=8).filter(lambda v: v.strip() == v and v != "")
_types = ("CN", "OU", "SN", "DC", "uid")


@st.composite
def names(draw: st.DrawFn) -> Name:
    out = []
    for _ in range(draw(st.integers(1, 4))):
        types = draw(st.lists(st.sampled_from(_types), min_size=1, max_size=3, unique=True))
        out.append(tuple((t, draw(_value)) for t in types))
    return tuple(out)


def _escape(value: str, draw: st.DrawFn) -> str:
    """One RFC 4514 escaping of value, chosen per character: `\\,` or `\\2C`, a `#` or a
    space escaped where it must be and at will elsewhere, any other character as it is
    or as hex pairs."""
    out = []
    for i, c in enumerate(value):
        must = c in ',+"\\<>;=' or (i == 0 and c in "# ") or (i == len(value) - 1 and c == " ")
        style = draw(st.sampled_from(("plain", "backslash", "hex"))) if must or c in "# " else (
            draw(st.sampled_from(("plain", "plain", "hex"))))
        if style == "plain" and must:
            style = "backslash"
        if style == "plain":
            out.append(c)
        elif style == "backslash":
            out.append("\\" + c)
        else:
            out.append("".join(f"\\{b:02X}" for b in c.encode("utf-8")))
    return "".join(out)


def _case(text: str, draw: st.DrawFn) -> str:
    how = draw(st.sampled_from(("as is", "lower", "upper", "swap")))
    return {"as is": text, "lower": text.lower(), "upper": text.upper(),
            "swap": text.swapcase()}[how]


@st.composite
def spellings(draw: st.DrawFn, name: Name, reorder: bool = True) -> str:
    """One way to write name: escapes, case, spaces and AVA order drawn at random."""
    rdns = []
    for rdn in name:
        avas = list(rdn)
        if reorder:
            avas = draw(st.permutations(avas))
        plus = draw(st.sampled_from(("+", " + ", "+ ")))
        rdns.append(plus.join(
            f"{_case(t, draw)}{draw(st.sampled_from(('=', ' = ')))}{_case(_escape(v, draw), draw)}"
            for t, v in avas))
    comma = draw(st.sampled_from((",", ", ", " , ")))
    return comma.join(rdns)


def _same_name(a: Name, b: Name) -> bool:
    """What Active Directory would say: per RDN the same AVAs, without case."""
    def fold(n: Name) -> tuple[frozenset[tuple[str, str]], ...]:
        return tuple(frozenset((t.lower(), v.lower()) for t, v in rdn) for rdn in n)
    return fold(a) == fold(b)


def _every_key_agrees(a: str, b: str) -> None:
    assert dnu.key(a) == dnu.key(b)
    assert dnu.parse(a) == dnu.parse(b) and hash(dnu.parse(a)) == hash(dnu.parse(b))
    assert dn_key(a) == dn_key(b)
    assert values.equal("homeMDB", a, b) and values.key("manager", a) == values.key("manager", b)
    assert value_key("homeMDB", a) == value_key("homeMDB", b)
    assert Modify(KIM, (Mod("delete", "manager", (a,)), Mod("add", "manager", (b,)))).is_noop()
    assert len(Plan((Modify(a, (Mod("add", "description", ("x",)),)),
                     Modify(b, (Mod("add", "description", ("y",)),)))).targets()) == 1
    assert dnu.is_within(a, b) and dnu.is_within(b, a)
    assert dnu.parse(a).parent == dnu.parse(b).parent


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_every_spelling_of_a_name_is_one_name_everywhere(data: st.DataObject) -> None:
    name = data.draw(names())
    a, b = data.draw(spellings(name)), data.draw(spellings(name))
    _every_key_agrees(a, b)
    # the spelling itself survives: the plan keeps the escapes and case it was given
    assert Modify(a, ()).dn == dnu.parse(a).spelled


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_two_names_stay_two_names_everywhere(data: st.DataObject) -> None:
    first, second = data.draw(names()), data.draw(names())
    a, b = data.draw(spellings(first)), data.draw(spellings(second))
    same = _same_name(first, second)
    assert (dnu.key(a) == dnu.key(b)) is same
    assert (dn_key(a) == dn_key(b)) is same
    assert values.equal("homeMDB", a, b) is same
    assert (value_key("homeMDB", a) == value_key("homeMDB", b)) is same
    assert Modify(KIM, (Mod("delete", "manager", (a,)),
                        Mod("add", "manager", (b,)))).is_noop() is same
    assert (dnu.is_within(a, b) and dnu.is_within(b, a)) is same
    # a child is within its parent, compared on RDN boundaries (never by a string suffix)
    assert dnu.is_within(f"CN=c,{a}", b) is (same or dnu.is_within(a, b))


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(("homeMDB", "manager", "description", "proxyAddresses",
                        "legacyExchangeDN", "objectGUID", "mailNickname")),
       st.text(min_size=0, max_size=12), st.text(min_size=0, max_size=12))
def test_equal_is_key_equality_for_every_attribute(attribute: str, a: str, b: str) -> None:
    """values.equal, values.key and the plan's value_key are one rule by construction."""
    assert values.equal(attribute, a, b) == (values.key(attribute, a) == values.key(attribute, b))
    assert values.key(attribute, a) == value_key(attribute, a)
    assert values.equal(attribute, a, b) == values.equal(attribute, b, a)


def test_the_rule_per_syntax() -> None:
    assert values.equal("description", "Kim", "KIM")  # strings: no case
    assert not values.equal("objectGUID", b"\x01A", b"\x01a")  # binary: exact
    assert values.equal("homeMDB", "CN=a\\,b,DC=x", "cn=A\\2Cb, dc=X")  # DN: by DN key
    assert values.equal("legacyExchangeDN", "/o=fabrikam/ou=x", "/O=FABRIKAM/OU=X")
    assert not values.equal("homeMDB", "CN=a\\,b,DC=x", "CN=a,CN=b,DC=x")
    # a plan compares what it writes as written, DN values by DN key
    assert not Modify(KIM, (Mod("delete", "proxyAddresses", ("SMTP:a@x",)),
                            Mod("add", "proxyAddresses", ("smtp:a@x",)))).is_noop()
    assert Modify(KIM, (Mod("delete", "manager", (X,)),
                        Mod("add", "manager", (X.lower().replace(",", ", "),)))).is_noop()


def test_the_cases_the_issue_names() -> None:
    for key in (dnu.key, dn_key):
        assert key("CN=a+OU=b,DC=x") == key("OU=b+CN=a,DC=x")
        assert key("<GUID=0123abcd>;CN=a,DC=x") == key("CN=a,DC=x")
        assert key("<GUID=0123abcd>;<SID=S-1-5-21-1>;cn=A, dc=X") == key("CN=a,DC=x")
        assert key("CN=a\\,b,DC=x") == key("CN=a\\2Cb,DC=x")
    assert values.values_equal("homeMDB", "CN=a, DC=x", "cn=a,dc=x")
    assert value_key("homeMDB", "CN=a, DC=x") == value_key("homeMDB", "cn=a,dc=x")
    assert dnu.parse("<GUID=0123abcd>;CN=a,DC=x").extended == "<GUID=0123abcd>;"
    assert not dnu.is_within("CN=a\\,DC=x", "DC=x")  # one RDN holding a comma
    assert dnu.parse("CN=a\\,DC=x").parent.key == ""


# --- the in-memory directory and apply's simulated copy -----------------------------------

@pytest.fixture(scope="module")
def directory() -> Directory:
    return open_ldif(str(SAMPLE), warn=lambda m: None)


@pytest.fixture(scope="module")
def stored(directory: Directory) -> list[str]:
    return [e.dn for e in directory.search(directory.naming.domain, "(objectClass=*)", ("cn",))]


def _name_of(dn: str) -> Name:
    d = dnu.parse(dn)
    return tuple(tuple((a, v) for a, _, v in rdn) for rdn in d.avas)


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_the_directory_and_apply_find_an_entry_by_any_spelling(
        data: st.DataObject, directory: Directory, stored: list[str]) -> None:
    dn = data.draw(st.sampled_from(stored))
    # the sample's RDNs are single-valued: AVA order has nothing to change here
    respelled = data.draw(spellings(_name_of(dn)))
    _every_key_agrees(dn, respelled)
    entry = directory.read(respelled, ("cn",))
    assert entry is not None and dnu.key(entry.dn) == dnu.key(dn)
    assert dnu.key(respelled) in directory.read_many([respelled], ("cn",))
    checked = check(directory, Plan((Modify(respelled, (Mod("add", "description",
                                                            ("property test",)),)),)))
    assert [s.status for s in checked.steps] == ["pending"], checked.refusals
    assert dnu.key(dn) in checked.expected  # apply's state key is the one key


def test_names_under_one_parent_share_its_rdns_and_keep_their_own() -> None:
    """The parsed names of 100,000 mailboxes under one OU hold that OU's RDNs once
    (the memory of a dry run at scale), and sharing never changes a name or its key."""
    a = dnu.parse("CN=Ann,OU=Staff,DC=fabrikam,DC=com")
    b = dnu.parse("cn=Bob,ou=Staff,dc=fabrikam,dc=com")
    c = dnu.parse("CN=Cy,OU=Staff,DC=fabrikam,DC=com")
    assert a.avas[1] is c.avas[1] and a.avas[2] is c.avas[2]  # the same spelling: shared
    assert a.avas[1] is not b.avas[1]  # another spelling keeps its own
    assert (a.key, b.key, c.key) == ("cn=ann,ou=staff,dc=fabrikam,dc=com",
                                     "cn=bob,ou=staff,dc=fabrikam,dc=com",
                                     "cn=cy,ou=staff,dc=fabrikam,dc=com")
    assert b.spelled == "cn=Bob,ou=Staff,dc=fabrikam,dc=com"
