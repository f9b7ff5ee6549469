"""Active Directory's write rules that every file-backed directory shares.

The in-memory directory (exdir.backends.memory) and the indexed store
(exdir.backends.index) store entries differently but must write them alike; what
they share beyond exdir.backends.base.apply_mods (the modify rules) is here:

- a modify may not take away a naming (RDN) value: `check_naming_kept`;
- an add holds its RDN's values: `add_naming_values`;
- a rename drops the old naming values and adds the new ones: `swap_naming_values`;
- DN-valued attributes pointing into a renamed subtree follow it:
  `rewrite_dn_values` (with `reference_marker`, a cheap test before parsing);
- an entry cannot move below itself: `check_not_below_itself`.

Stored entries here are mappings of attribute name (compared case-insensitively
by the mapping: ldap3's CaseInsensitiveDict) to lists of bytes.
"""
from __future__ import annotations

from typing import MutableMapping

from .. import dn as dnu
from ..errors import Conflict, DirectoryError, InputError
from ..values import Value, _index_of, decode, values_equal


def check_naming_kept(dn: str, key: str, state: dict[str, list[Value]]) -> None:
    """Conflict (notAllowedOnRDN) where the new values (lower-case names) lose a value
    of the entry's RDN."""
    for rdn_attr, rdn_val in dnu.rdn_avas(key):
        kept = state.get(rdn_attr.lower(), [])
        if _index_of(rdn_attr, kept, rdn_val) < 0:
            raise Conflict(f"{dn}: the value {rdn_val!r} is part of the entry's name",
                           result="notAllowedOnRDN", dn=dn)


def add_naming_values(key: str, state: dict[str, list[Value]], names: dict[str, str]) -> None:
    """The RDN's values added to a new entry's values (lower-case names) where absent;
    names (lower -> as spelled) learns the RDN's attribute names."""
    for rdn_attr, rdn_val in dnu.rdn_avas(key):
        rdn_values = state.setdefault(rdn_attr.lower(), [])
        names.setdefault(rdn_attr.lower(), rdn_attr)
        if _index_of(rdn_attr, rdn_values, rdn_val) < 0:
            rdn_values.append(rdn_val)


def swap_naming_values(old_key: str, new_key: str,
                       target: MutableMapping[str, list[bytes]]) -> None:
    """The renamed entry's naming attribute: every old RDN value out (each AVA of a
    multi-valued RDN), the new ones in."""
    for old_attr, old_val in dnu.rdn_avas(old_key):
        if old_attr in target:
            kept = [v for v in target[old_attr]
                    if not values_equal(old_attr, decode(old_attr, v), old_val)]
            if kept:
                target[old_attr] = kept
            else:
                del target[old_attr]
    for new_attr, new_val in dnu.rdn_avas(new_key):
        values = target[new_attr] if new_attr in target else []
        if _index_of(new_attr, [decode(new_attr, v) for v in values], new_val) < 0:
            target[new_attr] = list(values) + [new_val.encode("utf-8")]


def check_not_below_itself(dn: str, key: str, parent: str) -> None:
    if dnu.is_within(parent, key):
        raise DirectoryError(f"{dn}: cannot move an entry below itself",
                             result="unwillingToPerform", dn=dn)


def reference_marker(old: str) -> bytes:
    """Bytes every raw value naming something within `old` contains (its RDN value,
    lower case, maybe escaped): values without it are not parsed."""
    return dnu.rdn_value(old).lower().encode("utf-8")


def may_refer(raw: bytes, marker: bytes) -> bool:
    lowered = raw.lower()
    return marker in lowered or marker in lowered.replace(b"\\", b"")


def rewrite_dn_values(entry: MutableMapping[str, list[bytes]], old: str, new: str,
                      marker: bytes, dn_attrs: frozenset[str] | set[str]) -> bool:
    """AD's behaviour: the entry's DN-valued attributes pointing into `old` (a renamed
    subtree) rebased onto `new`, in place; True if any value changed."""
    any_changed = False
    for name in list(entry.keys()):
        if name.lower() not in dn_attrs:
            continue
        values = entry[name]
        changed = False
        out: list[bytes] = []
        for raw in values:
            if may_refer(raw, marker):
                text = raw.decode("utf-8", "replace")
                try:
                    if dnu.is_within(text, old):
                        raw = dnu.rebase(text, old, new).encode("utf-8")
                        changed = True
                except InputError:
                    pass
            out.append(raw)
        if changed:
            entry[name] = out
            any_changed = True
    return any_changed
