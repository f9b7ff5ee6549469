"""LDAP search filters evaluated on the in-memory directory, with AD's matching rules.

ldap3's mock re-parses a filter from its wire form and loses escapes on the
way: an escaped parenthesis in a substring makes the search fail, and an escaped
`*` becomes a wildcard.  We parse the filter once with ldap3's own parser and
evaluate it here: equality by the attribute's matching rule (DNs as DNs, AD
strings ignoring case), substrings with escapes honoured.
"""
from __future__ import annotations

import re
from typing import Any, Callable, Mapping, Sequence

from ldap3.core.exceptions import LDAPException
from ldap3.operation.search import (AND, MATCH_APPROX, MATCH_EQUAL, MATCH_EXTENSIBLE,
                                    MATCH_GREATER_OR_EQUAL, MATCH_LESS_OR_EQUAL, MATCH_PRESENT,
                                    MATCH_SUBSTRING, NOT, OR, ROOT, parse_filter)
from ldap3.protocol.rfc4512 import SchemaInfo

from . import schema
from .errors import InputError
from .values import decode, values_equal

Stored = Mapping[str, Sequence[bytes]]  # an entry as the mock stores it: name -> raw values
Matcher = Callable[[Stored], bool]
_HEX = re.compile(rb"\\([0-9A-Fa-f]{2})")


def unescape(raw: bytes) -> bytes:
    """An assertion value with its \\XX escapes resolved."""
    return _HEX.sub(lambda m: bytes([int(m.group(1), 16)]), raw)


_unescape = unescape


def _values(entry: Stored, attribute: str) -> Sequence[bytes]:
    found = entry.get(attribute)
    return found if found is not None else ()


def parse(text: str, ldap_schema: SchemaInfo | None = None) -> Any:
    """ldap3's tree of an RFC 4515 filter (the indexed store plans from it too);
    InputError if malformed."""
    try:
        return parse_filter(text, ldap_schema, auto_escape=True, auto_encode=False,
                            validator=None, check_names=False)
    except LDAPException as exc:
        raise InputError(f"malformed search filter {text!r}: {exc}") from None


def compile_filter(text: str, ldap_schema: SchemaInfo | None = None) -> Matcher:
    """A predicate over stored entries for an RFC 4515 filter; InputError if malformed."""
    root = parse(text, ldap_schema)

    def build(node) -> Matcher:  # type: ignore[no-untyped-def]
        tag = node.tag
        if tag == ROOT:
            return build(node.elements[0])
        if tag in (AND, OR):
            parts = [build(e) for e in node.elements]
            if tag == AND:
                return lambda entry: all(p(entry) for p in parts)
            return lambda entry: any(p(entry) for p in parts)
        if tag == NOT:
            inner = build(node.elements[0])
            return lambda entry: not inner(entry)
        attr = node.assertion["attr"]
        if tag == MATCH_PRESENT:
            if attr.lower() == "objectclass":
                return lambda entry: True
            return lambda entry: bool(_values(entry, attr))
        if tag in (MATCH_EQUAL, MATCH_APPROX):
            wanted = decode(attr, _unescape(node.assertion["value"]))
            return lambda entry: any(values_equal(attr, decode(attr, v), wanted)
                                     for v in _values(entry, attr))
        if tag == MATCH_SUBSTRING:
            pattern = _substring_pattern(node.assertion, exact=schema.is_case_exact(attr))
            return lambda entry: any(
                isinstance(t := decode(attr, v), str) and pattern.fullmatch(t) is not None
                for v in _values(entry, attr))
        if tag in (MATCH_GREATER_OR_EQUAL, MATCH_LESS_OR_EQUAL):
            bound = _unescape(node.assertion["value"]).decode("utf-8", "replace")
            greater = tag == MATCH_GREATER_OR_EQUAL
            return lambda entry: any(_ordered(v.decode("utf-8", "replace"), bound, greater)
                                     for v in _values(entry, attr))
        if tag == MATCH_EXTENSIBLE:
            raise InputError(f"extensible matches are not supported on an LDIF directory: {text}")
        raise InputError(f"unsupported filter {text!r}")  # pragma: no cover

    return build(root)


def _substring_pattern(assertion: Mapping[str, Any], exact: bool) -> re.Pattern[str]:
    def piece(raw: bytes) -> str:
        return re.escape(_unescape(raw).decode("utf-8", "replace"))

    parts = [piece(assertion["initial"]) if assertion.get("initial") else ""]
    for middle in assertion.get("any") or ():
        parts.append(piece(middle))
    parts.append(piece(assertion["final"]) if assertion.get("final") else "")
    flags = re.DOTALL | (0 if exact else re.IGNORECASE)
    return re.compile(".*".join(parts), flags)


def _ordered(value: str, bound: str, greater: bool) -> bool:
    try:
        a, b = int(value), int(bound)
        return a >= b if greater else a <= b
    except ValueError:
        a_s, b_s = value.lower(), bound.lower()
        return a_s >= b_s if greater else a_s <= b_s
