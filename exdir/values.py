"""Attribute values as exdir handles them, and equality as Active Directory sees it.

One model for every comparison of values (the in-memory directory's modify rules,
apply's simulated directory, a Plan's steps, the gates): `key(attribute, value)` is
the value as the attribute's matching rule sees it, and `equal` compares keys, so
the two cannot disagree.  The rule is the schema's (exdir.schema):

- binary attributes (octet strings, or the `;binary` option) and the case-exact
  ones compare byte for byte;
- DN-syntax attributes compare by DN key (exdir.dn: case, spaces around separators,
  escapes and the order of a multi-valued RDN's AVAs do not count); a value that is
  no DN compares as a case-insensitive string;
- every other string compares without case.

`written_key` is the other rule a Plan needs: what a change *writes* is data, its
case included (`SMTP:` marks the primary address), so values are compared as
written — except DN values, which a server spells as their target's name.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Sequence

from . import dn as dnu
from . import schema
from .errors import InputError

Value = str | bytes
"""An attribute value: bytes only for binary attributes or data that is not UTF-8.
The one alias: plan, lab, the backends and the planners all take it from here."""


def decode(attribute: str, raw: bytes) -> Value:
    """A stored value as exdir handles it: bytes for binary attributes, text otherwise."""
    if schema.is_binary(attribute):
        return raw
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw


def encode(value: Value) -> bytes:
    return value if isinstance(value, bytes) else value.encode("utf-8")


@lru_cache(maxsize=4096)
def is_binary(attribute: str) -> bool:
    """Values are bytes: the schema says octets, or the description carries `;binary`."""
    base, *options = attribute.split(";")
    return schema.is_binary(base) or any(o.lower() == "binary" for o in options)


@lru_cache(maxsize=4096)
def _rule(attribute: str) -> str:
    """'exact', 'dn' or 'text': how values of the attribute (options ignored) compare."""
    base = attribute.split(";")[0]
    if is_binary(attribute) or schema.is_case_exact(base):
        return "exact"
    return "dn" if schema.kind_of(base) == "dn" else "text"


def is_dn(attribute: str) -> bool:
    """True for DN-syntax attributes (homeMDB, member, objectCategory...)."""
    return _rule(attribute) == "dn"


def form(attribute: str, value: Value) -> Value:
    """The one form a value has in exdir: bytes for binary attributes or non-UTF-8 data,
    text otherwise.  InputError for what is neither text nor bytes, or not Unicode."""
    if isinstance(value, bytes):
        if is_binary(attribute):
            return value
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return value
    if isinstance(value, str):
        if value.isascii() and not is_binary(attribute):
            return value  # ASCII is valid Unicode: no encoding to find that out
        try:
            encoded = value.encode("utf-8")
        except UnicodeEncodeError:
            raise InputError(f"{attribute}: value {value!r} is not valid Unicode") from None
        return encoded if is_binary(attribute) else value
    raise InputError(f"{attribute}: value {value!r} is neither text nor bytes")


def key(attribute: str, value: Value) -> Value:
    """The value as the attribute's matching rule sees it: two values are equal in the
    directory exactly where their keys are equal."""
    value = form(attribute, value)
    if isinstance(value, bytes):
        return value
    rule = _rule(attribute)
    if rule == "exact":
        return value.encode("utf-8")
    if rule == "dn":
        try:
            return dnu.key(value)
        except InputError:
            pass  # no DN: compared as a string
    return value.lower()


def equal(attribute: str, a: Value, b: Value) -> bool:
    """Equality as the attribute's matching rule sees it (key(a) == key(b))."""
    return a == b or key(attribute, a) == key(attribute, b)


values_equal = equal  # the name the backends import


def written_key(attribute: str, value: Value) -> Value:
    """A value as a change writes it: exactly as written (its case is data), but a DN
    value by its DN key (a server spells a reference as its target's name)."""
    if _rule(attribute) == "dn":
        return key(attribute, value)
    return form(attribute, value)


def _index_of(attribute: str, values: Sequence[Value], wanted: Value) -> int:
    """The position of the first value equal to wanted, or -1."""
    wanted_key = key(attribute, wanted)
    for i, v in enumerate(values):
        if v == wanted or key(attribute, v) == wanted_key:
            return i
    return -1
