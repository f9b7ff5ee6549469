"""The few LDAP messages exdir pipelines, encoded and decoded directly (RFC 4511, BER).

Why not ldap3's own codec: ldap3 builds a tree of pyasn1 objects for every request
and walks it to encode, about 2 ms of client CPU per modify or base read here — for
a plan of 5,000 steps, checked, written and read back, more than the whole of
`ldapmodify`'s run (benchmarks/apply_slapd.py's profile: pyasn1's encoder and ldap3's
request builders were 35 of 70 profiled seconds, its response decoder 10 more).  The
messages exdir sends in bulk are only two shapes — a base-scope read of one entry and
a modify — and the replies it reads in bulk only four (an entry, a reference, a
result, the notice of disconnection), so this module writes and reads those bytes
itself.  A paged search is the third shape: its request is encoded by ldap3 once
(filters are ldap3's to compile) and only the message around it, with the paged
results control, is written here per page; its entries are read here — ldap3's
decoder was 40% of a 20,000-mailbox `rename org` over --url.  Everything else (binds,
renames, adds, deletes, other controls, SASL layers) stays with ldap3.
tests/test_ber.py checks every encoding against ldap3's for generated requests, and
the decoder against ldap3's.
"""
from __future__ import annotations

from typing import Mapping, Sequence

from ldap3.core.results import RESULT_CODES

# tags (X.690 identifier octets) of what is sent and read
_SEQUENCE, _SET, _INTEGER, _OCTETS, _ENUMERATED, _BOOLEAN = 0x30, 0x31, 0x02, 0x04, 0x0A, 0x01
_SEARCH_REQUEST, _MODIFY_REQUEST = 0x63, 0x66  # [APPLICATION 3] and [6], constructed
_PRESENT = 0x87  # Filter's present [7], primitive
_CONTROLS = 0xA0  # LDAPMessage's controls [0], constructed
PAGED_RESULTS = "1.2.840.113556.1.4.319"  # RFC 2696's simple paged results control
SEARCH_ENTRY, SEARCH_DONE, SEARCH_REFERENCE = 0x64, 0x65, 0x73
MODIFY_RESPONSE, EXTENDED_RESPONSE, INTERMEDIATE = 0x67, 0x78, 0x79
_RESULTS = {SEARCH_DONE: "searchResDone", MODIFY_RESPONSE: "modifyResponse",
            EXTENDED_RESPONSE: "extendedResp", 0x61: "bindResponse", 0x69: "addResponse",
            0x6B: "delResponse", 0x6D: "modDNResponse", 0x6F: "compareResponse"}
MODIFY_OPERATIONS = {"add": 0, "delete": 1, "replace": 2}


def _length(n: int) -> bytes:
    if n < 0x80:
        return bytes((n,))
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes((0x80 | len(body),)) + body


def _tlv(tag: int, body: bytes) -> bytes:
    return bytes((tag,)) + _length(len(body)) + body


def _integer(tag: int, n: int) -> bytes:
    """A non-negative INTEGER or ENUMERATED in its shortest two's complement form."""
    return _tlv(tag, n.to_bytes(n.bit_length() // 8 + 1, "big"))


def _message(message_id: int, op: bytes) -> bytes:
    return _tlv(_SEQUENCE, _integer(_INTEGER, message_id) + op)


def search_base(message_id: int, dn: str, attributes: Sequence[str]) -> bytes:
    """A base-scope search of `dn` for `attributes` with filter (objectClass=*), no
    alias dereferencing, no limits: what ldap3's `search(dn, '(objectClass=*)', BASE)`
    sends."""
    body = (_tlv(_OCTETS, dn.encode("utf-8")) + _integer(_ENUMERATED, 0)
            + _integer(_ENUMERATED, 0) + _integer(_INTEGER, 0) + _integer(_INTEGER, 0)
            + _tlv(_BOOLEAN, b"\x00") + _tlv(_PRESENT, b"objectClass")
            + _tlv(_SEQUENCE, b"".join(_tlv(_OCTETS, a.encode("utf-8")) for a in attributes)))
    return _message(message_id, _tlv(_SEARCH_REQUEST, body))


def modify(message_id: int, dn: str,
           changes: Sequence[tuple[str, str, Sequence[bytes]]]) -> bytes:
    """A modify of `dn`: (operation, attribute, values) in order, operation one of
    add, delete, replace."""
    items = b"".join(
        _tlv(_SEQUENCE, _integer(_ENUMERATED, MODIFY_OPERATIONS[op])
             + _tlv(_SEQUENCE, _tlv(_OCTETS, attribute.encode("utf-8"))
                    + _tlv(_SET, b"".join(_tlv(_OCTETS, v) for v in values))))
        for op, attribute, values in changes)
    return _message(message_id, _tlv(_MODIFY_REQUEST,
                                     _tlv(_OCTETS, dn.encode("utf-8")) + _tlv(_SEQUENCE, items)))


def paged_search(message_id: int, op: bytes, size: int, cookie: bytes) -> bytes:
    """A search request `op` (its encoded [APPLICATION 3] element) with the simple
    paged results control asking for `size` entries after `cookie` (b"" for the
    first page), not critical: what ldap3's `search(…, paged_size=size,
    paged_cookie=cookie)` sends."""
    value = _tlv(_SEQUENCE, _integer(_INTEGER, size) + _tlv(_OCTETS, cookie))
    control = _tlv(_SEQUENCE, _tlv(_OCTETS, PAGED_RESULTS.encode()) + _tlv(_OCTETS, value))
    return _tlv(_SEQUENCE, _integer(_INTEGER, message_id) + op + _tlv(_CONTROLS, control))


def paged_cookie(value: bytes | None) -> bytes:
    """The cookie in a paged results control's value (RFC 2696: SEQUENCE { size
    INTEGER, cookie OCTET STRING }); b"" (no more pages) where there is none."""
    if not value:
        return b""
    tag, start, end = _read(value, 0, len(value))
    fields = _children(value, start, end) if tag == _SEQUENCE else []
    if len(fields) != 2 or fields[0][0] != _INTEGER or fields[1][0] != _OCTETS:
        raise BerError("bad paged results control")
    return value[fields[1][1]:fields[1][2]]


def message_size(data: bytes | bytearray) -> int:
    """The length of the first whole LDAPMessage in `data`, or -1 if not all of its
    header has arrived yet."""
    if len(data) < 2:
        return -1
    first = data[1]
    if first < 0x80:
        return first + 2
    count = first & 0x7F
    if len(data) < 2 + count:
        return -1
    return 2 + count + int.from_bytes(data[2:2 + count], "big")


class BerError(ValueError):
    """A reply that is not the BER exdir expects: the connection is not trusted further."""


def _read(data: bytes, at: int, end: int) -> tuple[int, int, int]:
    """The element at `at`: its tag, where its contents start and where they end."""
    if at + 2 > end:
        raise BerError("truncated element")
    tag, first = data[at], data[at + 1]
    at += 2
    if first < 0x80:
        size = first
    else:
        count = first & 0x7F
        if count == 0 or at + count > end:
            raise BerError("bad length")
        size = int.from_bytes(data[at:at + count], "big")
        at += count
    if at + size > end:
        raise BerError("element longer than its message")
    return tag, at, at + size


def _children(data: bytes, start: int, end: int) -> list[tuple[int, int, int]]:
    out = []
    while start < end:
        element = _read(data, start, end)
        out.append(element)
        start = element[2]
    return out


def _entry(message: bytes, at: int, end: int) -> tuple[str, dict[str, list[bytes]]]:
    """A SearchResultEntry's contents: its DN and {attribute: [values]}.  Its values
    are most of a paged search's bytes, so they are read in the loop itself where
    their length is in short form (under 128 octets), by _read otherwise."""
    _, name, name_end = _read(message, at, end)
    _, a, attrs_end = _read(message, name_end, end)
    raw: dict[str, list[bytes]] = {}
    while a < attrs_end:
        _, t, a_end = _read(message, a, attrs_end)
        _, t, t_end = _read(message, t, a_end)
        values = raw.setdefault(message[t:t_end].decode("utf-8", "replace"), [])
        _, v, v_end = _read(message, t_end, a_end)
        while v < v_end:
            size = message[v + 1] if v + 1 < v_end else 0x80
            if size < 0x80:
                start, v = v + 2, v + 2 + size
                if v > v_end:
                    raise BerError("element longer than its message")
            else:
                _, start, v = _read(message, v, v_end)
            values.append(message[start:v])
        a = a_end
    return message[name:name_end].decode("utf-8", "replace"), raw


def decode(message: bytes) -> tuple[int, dict[str, object]]:
    """One whole LDAPMessage: its message ID and the reply in the shape ldap3's fast
    decoder gives (`type`; an entry's `dn` and `raw_attributes`; a result's `result`,
    `description`, `message`, `dn`), so the rest of the backend reads either."""
    tag, start, end = _read(message, 0, len(message))
    if tag != _SEQUENCE:
        raise BerError("not an LDAP message")
    parts = _children(message, start, end)
    if len(parts) < 2 or parts[0][0] != _INTEGER:
        raise BerError("no message ID")
    message_id = int.from_bytes(message[parts[0][1]:parts[0][2]], "big", signed=True)
    op, body, body_end = parts[1]
    if op == SEARCH_ENTRY:
        dn, raw = _entry(message, body, body_end)
        return message_id, {"type": "searchResEntry", "dn": dn, "raw_attributes": raw}
    if op == SEARCH_REFERENCE:
        return message_id, {"type": "searchResRef"}
    if op == INTERMEDIATE:
        return message_id, {"type": "intermediateResponse"}
    if op in _RESULTS:
        fields = _children(message, body, body_end)
        if len(fields) < 3:
            raise BerError("short result")
        code = int.from_bytes(message[fields[0][1]:fields[0][2]], "big")
        return message_id, {"type": _RESULTS[op], "result": code,
                            "description": RESULT_CODES.get(code, "other"),
                            "dn": message[fields[1][1]:fields[1][2]].decode("utf-8", "replace"),
                            "message": message[fields[2][1]:fields[2][2]].decode("utf-8",
                                                                                 "replace"),
                            # only a search's end carries a control exdir reads (the
                            # paged cookie); other replies' controls are not looked at
                            "controls": (_controls(message, parts[2:]) if op == SEARCH_DONE
                                         else {})}
    raise BerError(f"unexpected reply (tag {op:#x})")


def _controls(message: bytes, rest: list[tuple[int, int, int]]) -> dict[str, bytes]:
    """A reply's controls (Control ::= SEQUENCE { controlType, criticality BOOLEAN
    DEFAULT FALSE, controlValue OCTET STRING OPTIONAL }) by OID: their values, b""
    where a control has none."""
    out: dict[str, bytes] = {}
    for tag, start, end in rest:
        if tag != _CONTROLS:
            continue
        for kind, c_start, c_end in _children(message, start, end):
            fields = _children(message, c_start, c_end) if kind == _SEQUENCE else []
            if not fields or fields[0][0] != _OCTETS:
                raise BerError("bad control")
            oid = message[fields[0][1]:fields[0][2]].decode("ascii", "replace")
            value = next((message[f[1]:f[2]] for f in fields[1:] if f[0] == _OCTETS), b"")
            out[oid] = value
    return out


def changes_of(changes: Mapping[str, Sequence[tuple[str, Sequence[bytes]]]]
               ) -> list[tuple[str, str, Sequence[bytes]]]:
    """ldap3's {attribute: [(operation, values)]} modify argument, flattened in order."""
    return [(op, attribute, values) for attribute, ops in changes.items()
            for op, values in ops]
