"""ldap3's MOCK_SYNC as measured: each gap docs/design.md lists, shown on the raw mock.

These tests call ldap3 directly, without exdir's Directory. They pass while the
gap exists; if ldap3 ever closes one, the test fails and tells us a guard in
exdir/directory.py may be simplified. The guards themselves are proven by
tests/test_fidelity.py, which runs the same scenarios on the in-memory directory
and on a real slapd.
"""
from __future__ import annotations

import pytest
from ldap3 import MODIFY_ADD, MODIFY_DELETE, MOCK_SYNC, Connection, Server

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
