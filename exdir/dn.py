"""Distinguished names: parsing, comparing, rebasing — on top of ldap3.utils.dn.

Active Directory compares DNs case-insensitively and accepts several escapings
of the same name (`\\,` or `\\2C`); `key()` gives one form per name so that
dictionaries of entries can be indexed by DN.
"""
from __future__ import annotations

import re
from functools import lru_cache
from typing import Sequence

from ldap3.core.exceptions import LDAPInvalidDnError
from ldap3.utils.dn import escape_rdn, parse_dn

from .errors import InputError

_EXTENDED_PART = re.compile(r"^<(GUID|SID|WKGUID)=[^>]*>;?", re.IGNORECASE)
_HEX_PAIR = re.compile(r"\\([0-9A-Fa-f]{2})")


def strip_extended(dn: str) -> str:
    """Reduce Active Directory's extended form `<GUID=…>;<SID=…>;CN=…` to the plain DN."""
    text = dn.strip()
    while True:
        m = _EXTENDED_PART.match(text)
        if not m:
            return text
        text = text[m.end():]


def unescape(value: str) -> str:
    """Turn an escaped RDN value into the value itself (`\\2C` and `\\,` both give `,`)."""
    if "\\" not in value:
        return value
    def hexes(s: str) -> str:
        raw = bytearray()
        out: list[str] = []
        i = 0
        while i < len(s):
            m = _HEX_PAIR.match(s, i)
            if m:
                raw.append(int(m.group(1), 16))
                i = m.end()
                continue
            if raw:
                out.append(raw.decode("utf-8", "replace"))
                raw.clear()
            if s[i] == "\\" and i + 1 < len(s):
                out.append(s[i + 1])
                i += 2
            else:
                out.append(s[i])
                i += 1
        if raw:
            out.append(raw.decode("utf-8", "replace"))
        return "".join(out)

    return hexes(value)


class Rdn(tuple):  # type: ignore[type-arg]
    """A multi-valued RDN (`CN=a+SN=b`) among split()'s parts.

    It unpacks as its first (attribute, value), as a single-valued RDN does, so that
    `attr, value = split(dn)[0]` keeps working; `avas` holds every AVA, build() writes
    them all back joined by '+', and equality and hashing see every AVA (it is never
    equal to its first AVA alone).  Single-valued RDNs stay plain tuples.
    """

    avas: tuple[tuple[str, str], ...]

    def __new__(cls, avas: Sequence[tuple[str, str]]) -> "Rdn":
        self = super().__new__(cls, avas[0])
        self.avas = tuple(avas)
        return self

    def __getnewargs__(self) -> tuple[tuple[tuple[str, str], ...]]:  # type: ignore[override]
        return (self.avas,)  # copy and pickle rebuild it from every AVA

    def __eq__(self, other: object) -> bool:
        return isinstance(other, tuple) and self.avas == _avas(other)

    def __ne__(self, other: object) -> bool:
        return not self == other

    def __hash__(self) -> int:
        return hash(self.avas)

    def __repr__(self) -> str:
        return f"Rdn({self.avas!r})"


def _avas(part: tuple[str, str]) -> tuple[tuple[str, str], ...]:
    return part.avas if type(part) is Rdn else (part,)  # type: ignore[attr-defined]


def split(dn: str) -> list[tuple[str, str]]:
    """The RDNs of a DN as (attribute, unescaped value) pairs, leaf first (a new list);
    a multi-valued RDN is one Rdn part."""
    return list(_split(dn))


MAX_PARTS = 256  # attribute=value parts in one DN; Active Directory nests far less


def shorten(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[:limit] + "…"


@lru_cache(maxsize=1 << 16)
def _split(dn: str) -> tuple[tuple[str, str], ...]:
    """The RDNs of a DN as (attribute, unescaped value) pairs, leaf first.

    A multi-valued RDN (`CN=a+SN=b`) is one part, an Rdn holding every AVA: ldap3's
    parse_dn reports the separator after each AVA, and '+' joins AVAs of one RDN where
    ',' starts the next (splitting on both made `CN=a` a child of an invented
    `SN=b,...`).  Raises InputError on a malformed DN.
    """
    text = strip_extended(dn)
    if not text:
        return ()
    if text.count("=") > MAX_PARTS:
        # ldap3's parser and every walk up a DN cost more than linearly: a 14 KB DN of
        # 2,000 components took 12 s and 500 MB; no directory nests that deep
        raise InputError(f"a DN of more than {MAX_PARTS} parts ({shorten(text)})")
    try:
        components = parse_dn(text, escape=False, strip=True)
    except (LDAPInvalidDnError, IndexError, ValueError) as exc:
        # ldap3 refuses an unescaped '=' or a '#' inside a value, which RFC 4514 allows
        # and Active Directory writes; accept those, refuse what is really broken
        lenient = lenient_parts(text)
        if lenient is None:
            raise InputError(f"malformed DN {dn!r}: {exc}") from None
        components = lenient
    parts: list[tuple[str, str]] = []
    avas: list[tuple[str, str]] = []
    for attr, value, separator in components:
        avas.append((attr, unescape(_strip_value(value))))
        if separator != "+":
            parts.append(avas[0] if len(avas) == 1 else Rdn(avas))
            avas = []
    if avas:  # a trailing '+' names no AVA
        raise InputError(f"malformed DN {dn!r}: nothing after '+'")
    return tuple(parts)


def _strip_value(value: str) -> str:
    """Strip spaces around an RDN value, keeping an escaped trailing space (`\\ `)."""
    text = value.lstrip()
    while text.endswith(" ") and not text.endswith("\\ "):
        text = text[:-1]
    return text


_ATTR_TYPE = re.compile(r"^\s*([A-Za-z][A-Za-z0-9-]*|[0-9]+(?:\.[0-9]+)*)\s*$")


def lenient_parts(text: str) -> list[tuple[str, str, str]] | None:
    """RFC 4514 split on unescaped ',' and '+', each part on its first '=':
    (attribute, value as written, separator after it), or None if it is no DN."""
    out: list[tuple[str, str, str]] = []
    current: list[str] = []
    i = 0
    pieces: list[tuple[str, str]] = []
    while i < len(text):
        c = text[i]
        if c == "\\" and i + 1 < len(text):
            current.append(text[i:i + 2])
            i += 2
            continue
        if c in ",+":
            pieces.append(("".join(current), c))
            current = []
        else:
            current.append(c)
        i += 1
    pieces.append(("".join(current), ""))
    for piece, sep in pieces:
        attr, eq, value = piece.partition("=")
        m = _ATTR_TYPE.match(attr)
        if not eq or not m or not value.strip():
            return None
        out.append((m.group(1), value, sep))
    return out


def build(parts: list[tuple[str, str]]) -> str:
    """A DN from (attribute, value) pairs, values escaped as RFC 4514 asks; an Rdn part
    is written whole, its AVAs joined by '+'."""
    return ",".join(f"{p[0]}={escape_rdn(p[1])}" if type(p) is not Rdn
                    else "+".join(f"{a}={escape_rdn(v)}" for a, v in _avas(p))
                    for p in parts)


@lru_cache(maxsize=1 << 16)
def normalize(dn: str) -> str:
    """The DN with canonical escaping and no stray spaces, case kept."""
    return build(split(dn))


@lru_cache(maxsize=1 << 16)
def key(dn: str) -> str:
    """The form used to compare DNs: canonical escaping, lower case."""
    return normalize(dn).lower()


def rdn(dn: str) -> str:
    """The leaf RDN as `CN=value` (escaped)."""
    parts = split(dn)
    return build(parts[:1])


def rdn_avas(dn: str) -> list[tuple[str, str]]:
    """Every (attribute, unescaped value) of the leaf RDN: one, or several for a
    multi-valued RDN (the naming values an entry must hold)."""
    parts = _split(dn)
    return list(_avas(parts[0])) if parts else []


def rdn_value(dn: str) -> str:
    """The unescaped value of the leaf RDN (an object's name)."""
    parts = split(dn)
    return parts[0][1] if parts else ""


def parent(dn: str) -> str:
    """The parent DN ('' for a one-RDN DN)."""
    return build(split(dn)[1:])


def join(rdn_text: str, parent_dn: str) -> str:
    """The DN of the entry `rdn_text` under `parent_dn`."""
    leaf = split(rdn_text)
    return build(leaf + split(parent_dn)) if parent_dn else build(leaf)


def is_within(dn: str, base: str) -> bool:
    """True where dn is base itself or lies below it (compared on RDN boundaries)."""
    d, b = split(dn), split(base)
    if len(d) < len(b):
        return False
    tail = d[len(d) - len(b):] if b else []
    return [_fold(p) for p in tail] == [_fold(p) for p in b]


def _fold(part: tuple[str, str]) -> tuple[tuple[str, str], ...]:
    """An RDN part as compared: every AVA, lower case."""
    return tuple((a.lower(), v.lower()) for a, v in _avas(part))


def rebase(dn: str, old_base: str, new_base: str) -> str:
    """dn with its old_base suffix replaced by new_base; dn must lie within old_base."""
    d, b = split(dn), split(old_base)
    if not is_within(dn, old_base):
        raise ValueError(f"{dn} is not within {old_base}")
    return build(d[: len(d) - len(b)] + split(new_base))


def depth(dn: str) -> int:
    return len(split(dn))


def ancestors(dn: str) -> list[str]:
    """Every ancestor DN, nearest first."""
    parts = split(dn)
    return [build(parts[i:]) for i in range(1, len(parts))]
