"""Paged searches on a real slapd read by exdir.backends.ber (LdapDirectory._search_paged).

The request is ldap3's, the message around it and the replies exdir's own; these tests
hold the result to what ldap3's own paged search returns for the same search, page by
page, and a connection lost between pages to one plain error.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Iterator

import pytest
from ldap3 import SUBTREE
from ldap3.core.exceptions import LDAPException

from exdir.backends import ldap as ldap_backend
from exdir.backends.ldap import LdapDirectory, open_url
from exdir.errors import DirectoryError

DATA = Path(__file__).parent / "data" / "scenario.ldif"
FILTERS = ("(objectClass=*)", "(|(legacyExchangeDN=*)(proxyAddresses=X500:*))",
           "(mailNickname=a*)", "(cn=nobody-has-this)")

pytestmark = pytest.mark.slapd


@pytest.fixture
def directory(slapd_factory) -> Iterator[LdapDirectory]:
    server = slapd_factory(DATA.read_text(encoding="utf-8"))
    d = open_url(server.url, server.bind_dn, server.password)
    try:
        yield d
    finally:
        d.close()


def _ldap3_paged(d: LdapDirectory, flt: str, attributes: list[str], size: int
                 ) -> list[tuple[str, dict[str, list[bytes]]]]:
    """ldap3's paged search, each page put back in the server's order: ldap3's generator
    yields a page's entries last first (it pops them off its list)."""
    out: list[tuple[str, dict[str, list[bytes]]]] = []
    for item in d.connection.extend.standard.paged_search(
            d.naming.domain, flt, SUBTREE, attributes=attributes, paged_size=size,
            generator=True):
        if item.get("type") == "searchResEntry":
            raw = {k.lower(): sorted(v) for k, v in item["raw_attributes"].items()
                   if k.lower() != "entrydn" and v}  # ldap3 lists the absent as []
            out.append((item["dn"], raw))
    return [e for i in range(0, len(out), size) for e in reversed(out[i:i + size])]


def _exdir(d: LdapDirectory, flt: str, attributes: list[str]
           ) -> list[tuple[str, dict[str, list[bytes]]]]:
    out = []
    for entry in d.search(None, flt, attributes):
        raw = {name.lower(): sorted(v if isinstance(v, bytes) else v.encode() for v in values)
               for name, values in entry.attributes.items()}
        out.append((entry.dn, raw))
    return out


@pytest.mark.parametrize("size", [1, 3, 1000])
def test_a_paged_search_reads_what_ldap3_reads(directory, monkeypatch, size):
    monkeypatch.setattr(ldap_backend, "PAGE_SIZE", size)
    assert directory._pipelines()
    pages = []
    real_send = ldap_backend._Pipe.send

    def send(pipe, build, tag):
        pages.append(tag)
        return real_send(pipe, build, tag)

    monkeypatch.setattr(ldap_backend._Pipe, "send", send)
    entries = sum(1 for _ in directory.search(None, "(objectClass=*)", ["cn"]))
    # a page per `size` entries (slapd ends with the last full page; a server may send
    # one more, empty)
    assert -(-entries // size) <= len(pages) <= entries // size + 1
    monkeypatch.setattr(ldap_backend._Pipe, "send", real_send)
    for flt in FILTERS:
        for attributes in (["*"], ["cn", "legacyExchangeDN", "proxyAddresses"]):
            assert _exdir(directory, flt, attributes) == _ldap3_paged(directory, flt,
                                                                      attributes, size)


def test_the_search_does_not_go_through_ldap3s_own_search(directory, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("ldap3's search was used")

    monkeypatch.setattr(directory.connection, "search", refuse)
    monkeypatch.setattr(ldap_backend, "PAGE_SIZE", 2)
    assert len(list(directory.search(None, "(objectClass=*)", ["cn"]))) > 4


def test_a_connection_lost_between_pages_is_one_plain_error(directory, monkeypatch):
    monkeypatch.setattr(ldap_backend, "PAGE_SIZE", 2)
    real_reply = ldap_backend._Pipe.reply
    calls = []

    def reply(pipe):
        calls.append(1)
        if len(calls) == 2:
            raise LDAPException("the server closed the connection")
        return real_reply(pipe)

    monkeypatch.setattr(ldap_backend._Pipe, "reply", reply)
    got = []
    with pytest.raises(DirectoryError, match="^search under " + re.escape(directory.naming.domain)
                       + " failed: the server closed the connection$"):
        for entry in directory.search(None, "(objectClass=*)", ["cn"]):
            got.append(entry)
    assert len(got) == 2  # the first page, then the error


def test_a_page_the_server_refuses_is_its_error(directory, monkeypatch):
    monkeypatch.setattr(ldap_backend, "PAGE_SIZE", 2)
    real_reply = ldap_backend._Pipe.reply
    calls = []

    def reply(pipe):
        tag, entries, result = real_reply(pipe)
        calls.append(1)
        if len(calls) == 2:  # the second page: a limit of the server's
            result = {**result, "result": 11, "description": "adminLimitExceeded",
                      "message": "too many"}
        return tag, entries, result

    monkeypatch.setattr(ldap_backend._Pipe, "reply", reply)
    with pytest.raises(DirectoryError, match=re.escape(directory.naming.domain)
                       + ": the server's administrative limit was exceeded \\(too many\\)$"):
        list(directory.search(None, "(objectClass=*)", ["cn"]))


def test_a_base_that_does_not_exist_yields_nothing(directory):
    assert list(directory.search("OU=Nowhere,DC=fabrikam,DC=com", "(objectClass=*)")) == []
