"""exdir.backends.ber against ldap3's own codec: the same bytes out, the same replies in.

The pipelined reads and writes on a real server (exdir.backends.ldap._Pipe) send what
exdir.backends.ber encodes; a difference from what ldap3 sends for the same request
would be a different request.  Generated requests and replies cover message IDs across
the length-form boundaries, non-ASCII DNs, empty and long values.
"""
from __future__ import annotations

import ldap3
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ldap3.operation.modify import modify_operation
from ldap3.operation.search import search_operation
from ldap3.protocol.convert import build_controls_list
from ldap3.protocol.rfc2696 import Cookie, RealSearchControlValue, Size, paged_search_control
from ldap3.protocol.rfc4511 import (LDAPDN, AttributeDescription, AttributeValue,
                                    LDAPMessage, LDAPString, MessageID,
                                    PartialAttribute, PartialAttributeList, ProtocolOp,
                                    ResultCode, SearchResultEntry, Vals)
from ldap3.utils.asn1 import decode_message_fast
from pyasn1.codec.ber.encoder import encode

from exdir.backends import ber

message_ids = st.one_of(st.integers(1, 300), st.integers(1, 2**31 - 1))
texts = st.text(st.characters(blacklist_categories=("Cs",)), max_size=300)
names = st.text("abcdefghijklmnopqrstuvwxyzABCXYZ-0123456789", min_size=1, max_size=30)
values = st.lists(st.binary(max_size=400), max_size=4)
_OPS = {"add": ldap3.MODIFY_ADD, "delete": ldap3.MODIFY_DELETE, "replace": ldap3.MODIFY_REPLACE}


def _ldap3_bytes(message_id: int, kind: str, request: object) -> bytes:
    message = LDAPMessage()
    message["messageID"] = MessageID(message_id)
    message["protocolOp"] = ProtocolOp().setComponentByName(kind, request)
    return bytes(encode(message))


@settings(max_examples=300, deadline=None)
@given(message_ids, texts, st.lists(names, max_size=6))
def test_a_base_read_is_encoded_as_ldap3_encodes_it(message_id, dn, attributes):
    request = search_operation(dn, "(objectClass=*)", ldap3.BASE, ldap3.DEREF_NEVER,
                               attributes, 0, 0, False, True, None, None, None, False)
    assert ber.search_base(message_id, dn, attributes) == _ldap3_bytes(
        message_id, "searchRequest", request)


@settings(max_examples=300, deadline=None)
@given(message_ids, texts,
       st.dictionaries(names, st.lists(st.tuples(st.sampled_from(sorted(_OPS)), values),
                                       min_size=1, max_size=3), min_size=1, max_size=4))
def test_a_modify_is_encoded_as_ldap3_encodes_it(message_id, dn, changes):
    theirs = {a: [(_OPS[op], list(v)) for op, v in ops] for a, ops in changes.items()}
    request = modify_operation(dn, theirs, None, None, None, False)
    assert ber.modify(message_id, dn, ber.changes_of(changes)) == _ldap3_bytes(
        message_id, "modifyRequest", request)


def _entry_bytes(message_id: int, dn: str, attributes: dict[str, list[bytes]]) -> bytes:
    entry = SearchResultEntry()
    entry["object"] = LDAPDN(dn)
    attrs = PartialAttributeList()
    for i, (name, vals) in enumerate(attributes.items()):
        attr = PartialAttribute()
        attr["type"] = AttributeDescription(name)
        vs = Vals()
        for j, v in enumerate(vals):
            vs.setComponentByPosition(j, AttributeValue(v))
        attr["vals"] = vs
        attrs.setComponentByPosition(i, attr)
    entry["attributes"] = attrs
    return _ldap3_bytes(message_id, "searchResEntry", entry)


def _ldap3_reads(message: bytes) -> tuple[int, dict]:
    decoded = decode_message_fast(message)
    strategy = ldap3.Connection(ldap3.Server("localhost"), client_strategy=ldap3.SYNC).strategy
    return int(decoded["messageID"]), strategy.decode_response_fast(decoded)


@settings(max_examples=300, deadline=None)
@given(message_ids, texts, st.dictionaries(names, values, max_size=5))
def test_an_entry_reply_reads_as_ldap3_reads_it(message_id, dn, attributes):
    message = _entry_bytes(message_id, dn, attributes)
    got_id, got = ber.decode(message)
    want_id, want = _ldap3_reads(message)
    assert got_id == want_id == message_id
    assert got["type"] == want["type"] == "searchResEntry"
    assert got["dn"] == want["dn"]
    assert got["raw_attributes"] == {k: list(v or []) for k, v in want["raw_attributes"].items()}
    assert ber.message_size(message + b"tail") == len(message)


@settings(max_examples=200, deadline=None)
@given(message_ids, st.sampled_from(["searchResDone", "modifyResponse"]),
       st.sampled_from([0, 16, 20, 32, 50, 53, 68, 80]), texts, texts)
def test_a_result_reply_reads_as_ldap3_reads_it(message_id, kind, code, matched, text):
    op = ProtocolOp()
    component = op.getComponentByName(kind).clone()
    component["resultCode"] = ResultCode(code)
    component["matchedDN"] = LDAPDN(matched)
    component["diagnosticMessage"] = LDAPString(text)
    message = _ldap3_bytes(message_id, kind, component)
    got_id, got = ber.decode(message)
    want_id, want = _ldap3_reads(message)
    assert got_id == want_id == message_id
    for field in ("type", "result", "description", "dn", "message"):
        assert got[field] == want[field], field


@pytest.mark.parametrize("junk", [b"", b"\x30", b"\x30\x05\x02\x01", b"\x04\x00",
                                  b"\x30\x03\x02\x01\x01", b"\x30\x84\xff\xff\xff\xff",
                                  b"\x30\x06\x02\x01\x01\x64\x01\x00"])
def test_a_reply_that_is_not_ldap_is_refused_not_misread(junk):
    with pytest.raises(ber.BerError):
        ber.decode(junk)


# --- paged searches: the request around ldap3's own search, the cookie in the reply ------

filters = st.sampled_from(["(objectClass=*)", "(|(legacyExchangeDN=/o=A*)(proxyAddresses=*))",
                           "(&(mailNickname=j\\2a)(!(cn=x)))", "(cn=*a*b*)"])
cookies = st.one_of(st.just(b""), st.binary(max_size=300))
sizes = st.one_of(st.integers(1, 127), st.integers(128, 2**31 - 1))


@settings(max_examples=300, deadline=None)
@given(message_ids, texts, filters, st.lists(names, max_size=6), sizes, cookies)
def test_a_paged_search_is_encoded_as_ldap3_encodes_it(message_id, dn, flt, attributes,
                                                       size, cookie):
    request = search_operation(dn, flt, ldap3.SUBTREE, ldap3.DEREF_ALWAYS,
                               attributes or ["*"], 0, 0, False, True, None, None, None,
                               False)
    message = LDAPMessage()
    message["messageID"] = MessageID(message_id)
    message["protocolOp"] = ProtocolOp().setComponentByName("searchRequest", request)
    message["controls"] = build_controls_list([paged_search_control(False, size, cookie)])
    op = bytes(encode(ProtocolOp().setComponentByName("searchRequest", request)))
    assert ber.paged_search(message_id, op, size, cookie) == bytes(encode(message))


def _done_with_controls(message_id: int, controls: list[tuple[str, bool, bytes | None]],
                        kind: str = "searchResDone") -> bytes:
    op = ProtocolOp()
    done = op.getComponentByName(kind).clone()
    done["resultCode"] = ResultCode(0)
    done["matchedDN"] = LDAPDN("")
    done["diagnosticMessage"] = LDAPString("")
    message = LDAPMessage()
    message["messageID"] = MessageID(message_id)
    message["protocolOp"] = ProtocolOp().setComponentByName(kind, done)
    if controls:
        message["controls"] = build_controls_list(list(controls))
    return bytes(encode(message))


@settings(max_examples=200, deadline=None)
@given(message_ids, sizes, cookies, st.booleans(), st.booleans())
def test_the_cookie_of_a_page_reads_as_ldap3_reads_it(message_id, size, cookie, critical,
                                                      other_first):
    value = RealSearchControlValue()
    value["size"] = Size(size)
    value["cookie"] = Cookie(cookie)
    controls = [(ber.PAGED_RESULTS, critical, bytes(encode(value)))]
    if other_first:  # another control, without a value, before the paged one
        controls.insert(0, ("1.2.3.4", True, None))
    message = _done_with_controls(message_id, controls)
    got_id, got = ber.decode(message)
    _, want = _ldap3_reads(message)
    assert got_id == message_id
    assert set(got["controls"]) == set(want["controls"])
    theirs = want["controls"][ber.PAGED_RESULTS]["value"]["cookie"]
    assert ber.paged_cookie(got["controls"][ber.PAGED_RESULTS]) == theirs == cookie
    if other_first:
        assert got["controls"]["1.2.3.4"] == b""


def test_a_result_without_controls_has_no_cookie():
    _, got = ber.decode(_done_with_controls(7, []))
    assert got["controls"] == {}
    assert ber.paged_cookie(got["controls"].get(ber.PAGED_RESULTS)) == b""


@pytest.mark.parametrize("junk", [b"\x30", b"\x04\x00", b"\x30\x03\x02\x01\x01",
                                  b"\x30\x05\x04\x00\x02\x01\x01", b"\x30\x02\x04\x00"])
def test_a_paged_control_that_is_not_rfc_2696_is_refused(junk):
    with pytest.raises(ber.BerError):
        ber.paged_cookie(junk)


def test_controls_are_read_only_at_the_end_of_a_search():
    """A modify's reply with a control exdir does not read (even one it could not parse)
    reads as before: only a search's end is looked at for its paged cookie."""
    def with_odd_control(reply: bytes) -> bytes:  # [0] { INTEGER }: no control at all
        return reply[:1] + bytes([reply[1] + 4]) + reply[2:] + b"\xa0\x02\x02\x00"

    _, got = ber.decode(with_odd_control(_done_with_controls(9, [], "modifyResponse")))
    assert got["result"] == 0 and got["controls"] == {}
    with pytest.raises(ber.BerError):  # the same at a search's end is refused
        ber.decode(with_odd_control(_done_with_controls(9, [])))
