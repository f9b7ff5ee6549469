"""ldap3's MOCK_SYNC as measured: each gap exdir works around, shown on the raw mock.

These tests call ldap3 directly, without exdir's Directory. They pass while the
gap exists; if ldap3 ever closes one, the test fails and tells us a guard in
exdir/backends/mock_gaps.py (its table names each test) may be simplified. The guards themselves are proven by
tests/test_fidelity.py, which runs the same scenarios on the in-memory directory
and on a real slapd.
"""
from __future__ import annotations

import pytest
from ldap3 import LEVEL, MODIFY_ADD, MODIFY_DELETE, MOCK_SYNC, SUBTREE, Connection, Server
from ldap3.core.exceptions import LDAPInvalidFilterError

from exdir import schema


@pytest.fixture
def raw() -> Connection:
    dsa, info = schema.ldap3_schema()
    conn = Connection(Server.from_definition("raw", dsa, info), user="cn=x", password="x",
                      client_strategy=MOCK_SYNC, raise_exceptions=False)
    conn.bind()
    s = conn.strategy
    s.add_entry("DC=lab,DC=local", {"objectClass": ["top", "domain"], "dc": ["lab"]})
    s.add_entry("OU=Old,DC=lab,DC=local", {"objectClass": ["top", "organizationalUnit"],
                                           "ou": ["Old"]})
    s.add_entry("CN=Child,OU=Old,DC=lab,DC=local",
                {"objectClass": ["top", "container"], "cn": ["Child"]})
    s.add_entry("CN=User,DC=lab,DC=local",
                {"objectClass": ["top", "container"], "cn": ["User"],
                 "proxyAddresses": ["SMTP:a@lab.local", "smtp:b@lab.local"],
                 "mailNickname": ["user"]})
    return conn


def test_rename_of_non_leaf_leaves_children_behind(raw: Connection) -> None:
    assert raw.modify_dn("OU=Old,DC=lab,DC=local", "OU=New")
    dit = raw.server.dit
    assert "OU=New,DC=lab,DC=local" in dit
    assert "CN=Child,OU=Old,DC=lab,DC=local" in dit  # AD would have moved it
    assert "CN=Child,OU=New,DC=lab,DC=local" not in dit


def test_failed_modify_is_half_applied(raw: Connection) -> None:
    ok = raw.modify("CN=User,DC=lab,DC=local", {
        "proxyAddresses": [(MODIFY_ADD, ["X500:/o=lab/cn=user"])],
        "mailNickname": [(MODIFY_DELETE, ["not-there"])],
    })
    assert not ok
    stored = raw.server.dit["CN=User,DC=lab,DC=local"]["proxyAddresses"]
    assert b"X500:/o=lab/cn=user" in stored  # AD applies nothing of a failed modify


def test_case_differing_delete_raises(raw: Connection) -> None:
    with pytest.raises(ValueError):
        raw.modify("CN=User,DC=lab,DC=local",
                   {"proxyAddresses": [(MODIFY_DELETE, ["smtp:B@LAB.LOCAL"])]})


def test_duplicate_value_accepted(raw: Connection) -> None:
    assert raw.modify("CN=User,DC=lab,DC=local",
                      {"proxyAddresses": [(MODIFY_ADD, ["SMTP:a@lab.local"])]})
    stored = raw.server.dit["CN=User,DC=lab,DC=local"]["proxyAddresses"]
    assert stored.count(b"SMTP:a@lab.local") == 2


def test_add_under_missing_parent_accepted(raw: Connection) -> None:
    assert raw.add("CN=Orphan,OU=Nowhere,DC=lab,DC=local", ["top", "container"],
                   {"cn": "Orphan"})


def test_move_with_new_superior_ignores_new_rdn(raw: Connection) -> None:
    raw.modify_dn("CN=User,DC=lab,DC=local", "CN=Renamed", new_superior="OU=Old,DC=lab,DC=local")
    assert "CN=User,OU=Old,DC=lab,DC=local" in raw.server.dit
    assert "CN=Renamed,OU=Old,DC=lab,DC=local" not in raw.server.dit


def test_delete_of_non_leaf_accepted(raw: Connection) -> None:
    assert raw.delete("OU=Old,DC=lab,DC=local")  # AD refuses: notAllowedOnNonLeaf
    assert "CN=Child,OU=Old,DC=lab,DC=local" in raw.server.dit  # left orphaned


def test_rename_onto_existing_entry_overwrites(raw: Connection) -> None:
    assert raw.modify_dn("CN=User,DC=lab,DC=local", "OU=Old")  # AD: entryAlreadyExists
    assert raw.server.dit["OU=Old,DC=lab,DC=local"]["mailNickname"] == [b"user"]


def test_add_entry_rewrites_object_classes(raw: Connection) -> None:
    raw.strategy.add_entry("CN=Person,DC=lab,DC=local", {"objectClass": ["user"], "cn": ["Person"]})
    stored = raw.server.dit["CN=Person,DC=lab,DC=local"]["objectClass"]
    # the superclass chain the file did not list is added, in a set's (unstable) order
    assert sorted(stored) == [b"organizationalPerson", b"person", b"top", b"user"]


def test_filter_escaped_star_is_a_wildcard(raw: Connection) -> None:
    assert raw.search("DC=lab,DC=local", r"(mailNickname=u\2a*)", SUBTREE, attributes=["cn"])
    # no value starts with a literal "u*", yet "user" matches
    assert [e["dn"] for e in raw.response] == ["CN=User,DC=lab,DC=local"]


def test_filter_escaped_parenthesis_refused(raw: Connection) -> None:
    with pytest.raises(LDAPInvalidFilterError):
        raw.search("DC=lab,DC=local", r"(cn=\28*)", SUBTREE, attributes=["cn"])


def test_one_level_search_includes_base_misses_escaped_comma(raw: Connection) -> None:
    raw.strategy.add_entry("CN=Smith\\, John,OU=Old,DC=lab,DC=local",
                           {"objectClass": ["top", "container"], "cn": ["Smith, John"]})
    assert raw.search("OU=Old,DC=lab,DC=local", "(objectClass=*)", LEVEL, attributes=["cn"])
    found = {e["dn"] for e in raw.response}
    assert "OU=Old,DC=lab,DC=local" in found  # the base is not one level below itself
    assert "CN=Smith\\, John,OU=Old,DC=lab,DC=local" not in found  # a child all the same
