"""legacyExchangeDN values: parts, prefixes on part boundaries, listing.

Values compare case-insensitively (`/O=`, `/CN=` occur in real data) and a
prefix only counts on a part boundary: `/o=Fabrikam` is not a prefix of
`/o=Fabrikam Archive`.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterator

from ldap3.utils.conv import escape_filter_chars

from . import dn as dnu
from .directory import Directory

ADC_DISABLED = "ADCDisabledMail"  # stamped on mailboxes deleted in a mixed organisation
_PART = re.compile(r"/(o|ou|cn)=", re.IGNORECASE)


def parts(value: str) -> list[tuple[str, str]]:
    """The (type, value) parts of a legacyExchangeDN, types lower-cased.

    `/o=Fabrikam/ou=First Administrative Group/cn=Recipients/cn=jsmith` →
    [('o','Fabrikam'), ('ou','First Administrative Group'), ('cn','Recipients'), ('cn','jsmith')].
    A value that does not start with a part (ADCDisabledMail) gives [].
    """
    starts = [m for m in _PART.finditer(value)]
    if not starts or starts[0].start() != 0:
        return []
    out: list[tuple[str, str]] = []
    for i, m in enumerate(starts):
        end = starts[i + 1].start() if i + 1 < len(starts) else len(value)
        out.append((m.group(1).lower(), value[m.end():end]))
    return out


def has_prefix(value: str, prefix: str) -> bool:
    """True where prefix's parts begin value's parts (case-insensitive, whole parts)."""
    p = [(t, v.lower()) for t, v in parts(prefix)]
    if not p:
        return False
    v = [(t, x.lower()) for t, x in parts(value)]
    return v[: len(p)] == p


@dataclass(frozen=True)
class LegacyValue:
    """One object's legacyExchangeDN as `legacydn list` shows it."""

    dn: str
    object_class: str
    value: str


def _most_specific_class(classes: list[str]) -> str:
    generic = {"top", "container", "person", "organizationalperson", "server", "msexchmdb"}
    specific = [c for c in classes if c.lower() not in generic]
    return (specific or classes or ["?"])[-1]


def list_values(directory: Directory, prefix: str | None = None) -> Iterator[LegacyValue]:
    """Every object holding a legacyExchangeDN, one paged search per partition.

    With a prefix, the server filters on its leading characters and the part
    boundary rule is applied here.
    """
    flt = "(legacyExchangeDN=*)"
    if prefix:
        flt = f"(legacyExchangeDN={escape_filter_chars(prefix)}*)"
    config = directory.naming.configuration
    bases = [b for b in (config, directory.naming.domain) if b]
    for base in bases:
        for entry in directory.search(base, flt, ("objectClass", "legacyExchangeDN")):
            if base != config and config and dnu.is_within(entry.dn, config):
                continue  # already listed from the configuration partition
            value = entry.text("legacyExchangeDN") or ""
            if prefix and not has_prefix(value, prefix):
                continue
            yield LegacyValue(entry.dn, _most_specific_class(entry.texts("objectClass")), value)
