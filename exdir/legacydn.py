"""legacyExchangeDN values: grammar, parts, prefixes on part boundaries, listing.

Values compare case-insensitively (`/O=`, `/CN=` occur in real data) and a
prefix only counts on a part boundary: `/o=Fabrikam` is not a prefix of
`/o=Fabrikam Archive`.  A rewritten value keeps the case of what follows the
prefix.  The grammar (MS-OXOABK, docs/exchange.md): `/o=<org>`, an
optional `/ou=<group>`, then up to 14 `/cn=` parts; each part 1-64 printable
ASCII characters without leading or trailing space; at most 256 characters of
values.  `ADCDisabledMail` is a literal, not a DN.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Iterable, Iterator

from . import values
from .entries import EntryLike
from .errors import InputError

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
    return _prefix_end(value, prefix) is not None


MAX_PART = 64
MAX_VALUES = 256
MAX_CN_PARTS = 14
# Characters a name inside a legacyExchangeDN cannot hold: the part separator and
# the type/value separator, and anything outside printable ASCII (Teletex syntax).
# An assumption kept here in one place: Exchange's own setup was stricter.
_FORBIDDEN_IN_NAME = frozenset("/=\\")


class InvalidLegacyDN(InputError):
    """A value or a name that breaks the legacyExchangeDN grammar (exit 2)."""


def is_adc_disabled(value: str) -> bool:
    return value.strip().lower() == ADC_DISABLED.lower()


def problems(value: str) -> list[str]:
    """What makes value break the grammar; [] for a valid legacyExchangeDN."""
    if is_adc_disabled(value):
        return [f"{ADC_DISABLED} is a marker, not a legacyExchangeDN"]
    found: list[str] = []
    if any(not (" " <= c <= "~") for c in value):
        found.append("only printable ASCII characters are allowed")
    ps = parts(value)
    if not ps:
        return found + ["it must start with /o="]
    types = [t for t, _ in ps]
    if types[0] != "o" or "o" in types[1:]:
        found.append("/o= must come first, once")
    rest = types[1:]
    if rest and rest[0] == "ou":
        rest = rest[1:]
    if any(t != "cn" for t in rest):
        found.append("after /o= and an optional /ou= only /cn= parts may follow")
    if len(rest) > MAX_CN_PARTS:
        found.append(f"at most {MAX_CN_PARTS} /cn= parts")
    for t, v in ps:
        if not v:
            found.append(f"an empty /{t}= part")
        elif len(v) > MAX_PART:
            found.append(f"/{t}={v[:20]}… is longer than {MAX_PART} characters")
        elif v != v.strip(" "):
            found.append(f"/{t}={v!r} has a leading or trailing space")
        elif "/" in v:
            found.append(f"/{t}={v!r} holds a '/', which separates parts")
        elif t in ("o", "ou") and name_problem(v):
            found.append(f"/{t}={v!r}: {name_problem(v)}")
    if sum(len(v) for _, v in ps) > MAX_VALUES:
        found.append(f"more than {MAX_VALUES} characters of values")
    return found


def check_value(value: str) -> str:
    """value if it is a valid legacyExchangeDN, else InvalidLegacyDN naming the first problem."""
    found = problems(value)
    if found:
        raise InvalidLegacyDN(f"invalid legacyExchangeDN {value!r}: {found[0]}")
    return value


def name_problem(name: str) -> str | None:
    """Why name cannot stand as an organisation, administrative group or server name
    inside legacyExchangeDN values, or None.  The one rule: renames (check_name), the
    lab generator and the audit of /o= and /ou= parts all use it."""
    if not name or name != name.strip(" "):
        return "empty, or a leading or trailing space"
    if len(name) > MAX_PART:
        return f"longer than {MAX_PART} characters"
    bad = sorted({c for c in name if c in _FORBIDDEN_IN_NAME or not (" " <= c <= "~")})
    if bad:
        return "legacyExchangeDN values cannot hold " + " ".join(repr(c) for c in bad)
    return None


def check_name(name: str, what: str) -> str:
    """A new organisation or administrative group name, as it will stand in values."""
    problem = name_problem(name)
    if problem is not None:
        raise InvalidLegacyDN(f"{what} name {name!r}: {problem}")
    return name


@lru_cache(maxsize=256)
def _whole_parts(prefix: str) -> str | None:
    """prefix lower-cased where it is a run of whole parts (starts with one), else None."""
    return prefix.lower() if parts(prefix) else None


def _prefix_end(value: str, prefix: str) -> int | None:
    """The offset in value where prefix's parts end, or None if prefix is not a prefix.

    On the text, without splitting value into parts (a rename asks this of every
    value in the directory): value begins with prefix, case aside, and a part
    starts right after it, or the value ends there.  The same as comparing the
    parts one by one, because parts differ only in case.
    """
    lowered = _whole_parts(prefix)
    if lowered is None:
        return None
    end = len(prefix)
    if value[:end].lower() != lowered:
        return None
    if end == len(value) or _PART.match(value, end):
        return end
    return None


def rewrite(value: str, old_prefix: str, new_prefix: str) -> str | None:
    """value with old_prefix replaced by new_prefix (the rest keeps its case), or None.

    `rewrite("/O=Fabrikam/OU=First/CN=x", "/o=fabrikam", "/o=Contoso")` →
    `/o=Contoso/OU=First/CN=x`.
    """
    end = _prefix_end(value, old_prefix)
    if end is None:
        return None
    return new_prefix + value[end:]


def key(value: str) -> str:
    """A legacyExchangeDN value as Exchange matches it: the one value rule
    (exdir.values) for the attribute, a string for dict keys."""
    return str(values.key("legacyExchangeDN", value))


def same(a: str, b: str) -> bool:
    """Equality of two values as Exchange compares them: the one value rule
    (exdir.values), which the schema makes case-insensitive for legacyExchangeDN."""
    return values.equal("legacyExchangeDN", a, b)


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


def listing(entries: Iterable[EntryLike], prefix: str | None = None) -> Iterator[LegacyValue]:
    """`legacydn list`'s rows of entries read with their legacyExchangeDN and objectClass
    (exdir.readers.recipients.list_values); with a prefix, only values under it on a
    part boundary (the server filtered on its leading characters only)."""
    for entry in entries:
        value = entry.text("legacyExchangeDN") or ""
        if prefix and not has_prefix(value, prefix):
            continue
        yield LegacyValue(entry.dn, _most_specific_class(entry.texts("objectClass")), value)
