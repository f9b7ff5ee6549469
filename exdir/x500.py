"""X500 proxies and IMCEA encapsulated addresses (MS-OXCMAIL 2.1.3.1.8).

When a legacyExchangeDN changes, replies to old mail bounce with an
`IMCEAEX-…@domain` address nobody can read.  Decoding it gives the X500 value an
administrator adds back as a proxy (`X500:/o=…`).  Encoding: letters, digits,
`-` and `=` stand as they are, `/` is written `_`, every other byte `+HH`.
"""
from __future__ import annotations

import re
from typing import TYPE_CHECKING, Sequence

from .errors import InputError, Refused

if TYPE_CHECKING:
    from .entries import EntryLike as Entry
    from .plan import Plan

# the IMCEA marker in any case: some gateways and NDR renderings lower-case it
_ENCAPSULATED = re.compile(r"^(?i:IMCEA)([A-Za-z0-9]+)-(.+)$", re.DOTALL)
_HEX = re.compile(r"\+([0-9A-Fa-f]{2})")
_PLAIN = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-=")


class NotEncapsulated(InputError):
    """The text is not an IMCEA encapsulated address (exit 2)."""


def decode(address: str) -> str:
    """`IMCEAEX-_O=MMS_OU=…@domain` → `X500:/O=MMS/OU=…`; other IMCEA types → `TYPE:…`.

    Tolerates `\\@` before the domain (some NDR renderings escape it) and
    surrounding angle brackets or `SMTP:`.
    """
    text = address.strip().strip("<>")
    if text.lower().startswith("smtp:"):
        text = text[5:]
    m = _ENCAPSULATED.match(text)
    if not m:
        raise NotEncapsulated(f"{address!r} is not an IMCEA encapsulated address "
                              "(IMCEAEX-…@domain)")
    kind, rest = m.group(1).upper(), m.group(2)
    at = rest.rfind("@")
    if at <= 0:
        raise NotEncapsulated(f"{address!r} has no @domain after the encoded address")
    encoded = rest[:at]
    if encoded.endswith("\\"):
        encoded = encoded[:-1]
    # `_` stands for `/` and is turned back first; `+HH` then gives the bytes
    raw = bytearray()
    i = 0
    text_part = encoded.replace("_", "/")
    while i < len(text_part):
        hx = _HEX.match(text_part, i)
        if hx:
            raw.append(int(hx.group(1), 16))
            i = hx.end()
            continue
        if text_part[i] == "+":
            raise NotEncapsulated(f"{address!r}: '+' at offset {i} is not followed by two hex "
                                  "digits")
        raw += text_part[i].encode("utf-8")
        i += 1
    try:
        value = raw.decode("utf-8")
    except UnicodeDecodeError:
        value = raw.decode("latin-1")
    return f"{'X500' if kind == 'EX' else kind}:{value}"


def encode(value: str, domain: str) -> str:
    """`X500:/o=…` (or a bare legacyExchangeDN) → `IMCEAEX-…@domain`."""
    if not domain or "@" in domain or any(c.isspace() for c in domain):
        raise InputError(f"a domain like fabrikam.com is needed, not {domain!r}")
    kind = "EX"
    text = value
    if ":" in value and not value.startswith("/"):
        prefix, text = value.split(":", 1)
        kind = "EX" if prefix.upper() == "X500" else prefix.upper()
    if not text:
        raise InputError(f"nothing to encode in {value!r}: an empty address has no IMCEA form")
    out: list[str] = []
    for byte in text.encode("utf-8"):
        c = chr(byte)
        if c == "/":
            out.append("_")
        elif c in _PLAIN:
            out.append(c)
        else:
            out.append(f"+{byte:02X}")
    return f"IMCEA{kind}-{''.join(out)}@{domain}"


def legacy_value(address: str) -> str:
    """The legacyExchangeDN an address stands for: IMCEAEX, `X500:…` or a bare value."""
    text = address.strip()
    unwrapped = text.strip("<>")  # as a mail header or an NDR shows it
    if unwrapped.upper().startswith(("IMCEA", "SMTP:IMCEA")):
        decoded = decode(text)
        if not decoded.upper().startswith("X500:"):
            raise InputError(f"{address!r} encapsulates a {decoded.split(':', 1)[0]} address, "
                             "not an Exchange one")
        return decoded[5:]
    if text.upper().startswith("X500:"):
        return text[5:]
    if text.startswith("/"):
        return text
    raise InputError(f"{address!r} is neither IMCEAEX-…, X500:… nor a legacyExchangeDN")


# --- X500 proxy plans (who holds a value: exdir.readers.recipients.holders) -----------------------------------------------

def plan_add(entry: "Entry", legacy: str, others: Sequence["Entry"]) -> "Plan":
    """Add `X500:legacy` to entry; refused (Refused, exit 1) when another object holds that
    value as its legacyExchangeDN or proxy.  An empty plan when it is there already."""
    from . import dn as dnu
    from .legacydn import check_value, same
    from .plan import Mod, Modify, Plan

    check_value(legacy)
    for other in others:
        if dnu.key(other.dn) != dnu.key(entry.dn):
            raise Refused(f"{legacy!r} belongs to {other.dn}: an X500 proxy equal to "
                          "another object's value misdelivers its mail")
    proxy = f"X500:{legacy}"
    if any(same(p, proxy) for p in entry.texts("proxyAddresses")):
        return Plan(())
    return Plan((Modify(entry.dn, (Mod("add", "proxyAddresses", (proxy,)),),
                        f"add the X500 proxy {proxy}"),))


def plan_remove(entry: "Entry", legacy: str) -> "Plan":
    """Remove `X500:legacy` from entry, as stored (its case), so the delete matches on
    every backend.  An empty plan when the entry does not hold it."""
    from .legacydn import same
    from .plan import Mod, Modify, Plan

    held = tuple(p for p in entry.texts("proxyAddresses") if same(p, f"X500:{legacy}"))
    if not held:
        return Plan(())
    return Plan((Modify(entry.dn, (Mod("delete", "proxyAddresses", held),),
                        f"remove the X500 proxy {held[0]}"),))
