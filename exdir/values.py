"""Attribute values as exdir handles them, and equality as Active Directory sees it."""
from __future__ import annotations

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


def values_equal(attribute: str, a: Value, b: Value) -> bool:
    """Equality as the attribute's matching rule sees it (AD: strings and DNs ignore case)."""
    if isinstance(a, bytes) or isinstance(b, bytes) or schema.is_case_exact(attribute):
        return encode(a) == encode(b)
    if schema.kind_of(attribute) == "dn":
        try:
            return dnu.key(a) == dnu.key(b)
        except InputError:
            return a.lower() == b.lower()
    return a.lower() == b.lower()


def _index_of(attribute: str, values: Sequence[Value], wanted: Value) -> int:
    for i, v in enumerate(values):
        if values_equal(attribute, v, wanted):
            return i
    return -1
