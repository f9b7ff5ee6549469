"""exdir.holders.ValueHolders against the dict it replaces in the audit (exdir.health).

The audit kept {value key: [holder DNs]} in memory; the holders now live in a private
SQLite database.  Generated holders and proxies — keys shared, DNs spelled in other
case, non-ASCII and lone surrogates, more than a batch — give the same shared keys in
the same order, the same membership and the same collisions, in the same order.
"""
from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from exdir import dn as dnu
from exdir.holders import ValueHolders

_KEYS = st.sampled_from(["/o=a/cn=x", "/o=a/cn=y", "/o=a/cn=é", "/o=a/cn=\ud800", "", "k"])
_DNS = st.sampled_from(["CN=A,DC=x", "cn=a,dc=X", "CN=B,DC=x", "CN=Ä,DC=x", "CN=ä,DC=x",
                        "CN=C\\,D,DC=x"])


def _reference(holders: list[tuple[str, str]], proxies: list[tuple[str, str, str]]
               ) -> tuple[list[str], list[tuple[str, str, str]]]:
    owners: dict[str, list[str]] = {}
    for key, dn in holders:
        owners.setdefault(key, []).append(dn)
    shared = [k for k, dns in owners.items() if len(dns) > 1]
    collisions = []
    for key, dn, proxy in proxies:
        others = [h for h in owners.get(key, []) if dnu.key(h) != dnu.key(dn)]
        if others:
            collisions.append((dn, proxy, others[0]))
    return shared, collisions


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(_KEYS, _DNS), max_size=30),
       st.lists(st.tuples(_KEYS, _DNS, st.text(max_size=5)), max_size=30),
       st.lists(_KEYS, max_size=5))
def test_the_holders_answer_as_the_dict_did(holders, proxies, asked):
    shared, collisions = _reference(holders, proxies)
    with ValueHolders() as owners:
        for key, dn in holders:
            owners.add(key, dn)
        assert owners.shared() == shared
        for key in asked:
            assert owners.holds(key) == any(k == key for k, _ in holders)
        for key, dn, proxy in proxies:
            owners.add_proxy(key, dn, "X500:" + proxy)
        assert list(owners.collisions()) == [(dn, "X500:" + p, h) for dn, p, h in collisions]


def test_more_holders_than_a_batch_are_all_kept():
    with ValueHolders() as owners:
        for i in range(10000):
            owners.add(f"/o=a/cn={i % 7000}", f"CN=U{i},DC=x")
        owners.add_proxy("/o=a/cn=6999", "CN=Other,DC=x", "X500:/o=a/cn=6999")
        shared = owners.shared()
        assert shared == [f"/o=a/cn={i}" for i in range(3000)]
        assert list(owners.collisions()) == [("CN=Other,DC=x", "X500:/o=a/cn=6999",
                                              "CN=U6999,DC=x")]
