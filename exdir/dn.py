"""Distinguished names: parsing, comparing, rebasing — on top of ldap3.utils.dn.

Active Directory compares DNs case-insensitively and accepts several escapings
of the same name (`\\,` or `\\2C`); `key()` gives one form per name so that
dictionaries of entries can be indexed by DN.
"""
from __future__ import annotations

import re
from functools import lru_cache

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


def split(dn: str) -> list[tuple[str, str]]:
    """The RDNs of a DN as (attribute, unescaped value) pairs, leaf first (a new list)."""
    return list(_split(dn))


@lru_cache(maxsize=1 << 16)
def _split(dn: str) -> tuple[tuple[str, str], ...]:
    """The RDNs of a DN as (attribute, unescaped value) pairs, leaf first.

    Multi-valued RDNs (`CN=a+OU=b`) are kept as one pair per component; exdir's
    data never uses them, but they parse.  Raises InputError on a malformed DN.
    """
    text = strip_extended(dn)
    if not text:
        return ()
    try:
        parts = [(attr, value) for attr, value, _sep in parse_dn(text, escape=False, strip=True)]
    except (LDAPInvalidDnError, IndexError, ValueError) as exc:
        # ldap3 refuses an unescaped '=' or a '#' inside a value, which RFC 4514 allows
        # and Active Directory writes; accept those, refuse what is really broken
        lenient = _lenient_parts(text)
        if lenient is None:
            raise InputError(f"malformed DN {dn!r}: {exc}") from None
        parts = lenient
    return tuple((attr, unescape(_strip_value(value))) for attr, value in parts)


def _strip_value(value: str) -> str:
    """Strip spaces around an RDN value, keeping an escaped trailing space (`\\ `)."""
    text = value.lstrip()
    while text.endswith(" ") and not text.endswith("\\ "):
        text = text[:-1]
    return text


_ATTR_TYPE = re.compile(r"^\s*([A-Za-z][A-Za-z0-9-]*|[0-9]+(?:\.[0-9]+)*)\s*$")


def _lenient_parts(text: str) -> list[tuple[str, str]] | None:
    parts = lenient_parts(text)
    return None if parts is None else [(attr, value) for attr, value, _sep in parts]


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
    """A DN from (attribute, value) pairs, values escaped as RFC 4514 asks."""
    return ",".join(f"{attr}={escape_rdn(value)}" for attr, value in parts)


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
    return [(a.lower(), v.lower()) for a, v in tail] == [(a.lower(), v.lower()) for a, v in b]


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
