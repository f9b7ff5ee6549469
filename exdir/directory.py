"""A directory with Active Directory's write semantics, whatever is underneath.

Two backends share this interface: an LDIF file held in ldap3's MOCK_SYNC
(``open_ldif``) and a real LDAP server over ldap3 SYNC (``open_url``).  ldap3's
mock is not Active Directory (DESIGN.md, "Backends"); ``LdifDirectory`` guards
every difference so that planners and the apply engine see one behaviour:

- renaming a non-leaf entry moves its subtree, and DN-valued attributes that
  point into it follow (AD rewrites references; slapd does not, and
  ``follows_dn_references`` says so, so plans carry those rewrites themselves);
- a modify is atomic and checks the values it deletes, case-insensitively where
  the syntax is; a missing value fails the whole modify with ``Conflict``;
- no duplicate values, no add under a missing parent, no rename onto an existing
  DN, no delete of an entry with children.
"""
from __future__ import annotations

import os
import re
import sys
import uuid
from dataclasses import dataclass, field
from typing import IO, Callable, Iterable, Iterator, Mapping, Protocol, Sequence

import ldap3
from ldap3 import ALL_ATTRIBUTES, BASE, LEVEL, MOCK_SYNC, SUBTREE, Connection, Server
from ldap3.core.exceptions import LDAPException
from ldap3.utils.ciDict import CaseInsensitiveDict
from ldap3.utils.conv import escape_filter_chars

from . import dn as dnu
from . import schema
from . import files
from .filters import compile_filter
from .values import Value, _index_of, decode, encode, values_equal
from .errors import (
    Conflict,
    ConnectionFailed,
    DirectoryError,
    EntryExists,
    InputError,
    NoSuchEntry,
    plain,
)

Warn = Callable[[str], None]

AD_CAPABILITY = "1.2.840.113556.1.4.800"
AD_LDS_CAPABILITY = "1.2.840.113556.1.4.1851"
PAGE_SIZE = 1000  # Active Directory's MaxPageSize
_SCOPES = {"base": BASE, "one": LEVEL, "subtree": SUBTREE}


def _stderr(message: str) -> None:
    print(message, file=sys.stderr)


class ModLike(Protocol):
    """One block of a modify: what exdir.plan.Mod holds (read-only here)."""

    @property
    def op(self) -> str: ...

    @property
    def attribute(self) -> str: ...

    @property
    def values(self) -> tuple[Value, ...]: ...


class Entry:
    """An entry as read: its DN and values, attribute names compared case-insensitively."""

    __slots__ = ("dn", "_attrs")

    def __init__(self, dn: str, attributes: Mapping[str, Sequence[Value]]) -> None:
        self.dn = dn
        self._attrs: dict[str, tuple[str, list[Value]]] = {
            name.lower(): (name, list(values)) for name, values in attributes.items() if values
        }

    def get(self, name: str) -> list[Value]:
        found = self._attrs.get(name.lower())
        return list(found[1]) if found else []

    def first(self, name: str) -> Value | None:
        found = self._attrs.get(name.lower())
        return found[1][0] if found and found[1] else None

    def text(self, name: str) -> str | None:
        """The first value as text (None if absent)."""
        value = self.first(name)
        if value is None:
            return None
        return value if isinstance(value, str) else value.decode("utf-8", "replace")

    def texts(self, name: str) -> list[str]:
        return [v if isinstance(v, str) else v.decode("utf-8", "replace") for v in self.get(name)]

    def has(self, name: str) -> bool:
        return name.lower() in self._attrs

    @property
    def attributes(self) -> dict[str, list[Value]]:
        return {name: list(values) for name, values in self._attrs.values()}

    @property
    def object_classes(self) -> frozenset[str]:
        return frozenset(v.lower() for v in self.texts("objectClass"))

    def __repr__(self) -> str:
        return f"Entry({self.dn!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Entry):
            return NotImplemented
        return dnu.key(self.dn) == dnu.key(other.dn) and _comparable(self) == _comparable(other)


def _comparable(entry: Entry) -> dict[str, list[Value]]:
    return {k: sorted(v[1], key=lambda x: x if isinstance(x, bytes) else x.encode())
            for k, v in entry._attrs.items()}


@dataclass(frozen=True)
class NamingContexts:
    """Where the domain, configuration and schema partitions start."""

    domain: str
    configuration: str
    schema: str | None = None
    all: tuple[str, ...] = ()


def apply_mods(dn: str, current: Mapping[str, list[Value]], mods: Sequence[ModLike]
               ) -> dict[str, list[Value]]:
    """The attribute values after mods, or Conflict — Active Directory's modify rules.

    `current` maps lower-case attribute names to values. Deletes must find every
    value (matching rule aware); adds must not duplicate; single-valued
    attributes hold at most one value. Nothing is changed in place.
    """
    state: dict[str, list[Value]] = {k.lower(): list(v) for k, v in current.items()}
    for mod in mods:
        name = mod.attribute.lower()
        have = state.get(name, [])
        if mod.op == "delete":
            if not mod.values:
                if not have:
                    raise Conflict(f"{dn}: cannot remove {mod.attribute}: it has no values",
                                   result="noSuchAttribute", dn=dn)
                state.pop(name, None)
                continue
            for value in mod.values:
                i = _index_of(mod.attribute, have, value)
                if i < 0:
                    raise Conflict(f"{dn}: {mod.attribute} does not hold {_show(value)} "
                                   "(changed since the plan was made?)",
                                   result="noSuchAttribute", dn=dn)
                have = have[:i] + have[i + 1:]
            state[name] = have
        elif mod.op == "add":
            for value in mod.values:
                if _index_of(mod.attribute, have, value) >= 0:
                    raise Conflict(f"{dn}: {mod.attribute} already holds {_show(value)}",
                                   result="attributeOrValueExists", dn=dn)
                have = have + [value]
            state[name] = have
        elif mod.op == "replace":
            fresh: list[Value] = []
            for value in mod.values:
                if _index_of(mod.attribute, fresh, value) >= 0:
                    raise Conflict(f"{dn}: {mod.attribute} given {_show(value)} twice",
                                   result="attributeOrValueExists", dn=dn)
                fresh.append(value)
            state[name] = fresh
        else:
            raise InputError(f"unknown modify operation {mod.op!r}")
        if schema.is_single_valued(mod.attribute) and len(state.get(name, [])) > 1:
            raise Conflict(f"{dn}: {mod.attribute} is single-valued",
                           result="constraintViolation", dn=dn)
    return {k: v for k, v in state.items() if v}


def _show(value: Value) -> str:
    if isinstance(value, bytes):
        return "<" + value.hex() + ">"
    return repr(value)


class Directory:
    """What every backend offers: paged reads, AD-semantics writes, rootDSE facts."""

    backend: str = "abstract"
    is_active_directory: bool = False
    naming: NamingContexts

    @property
    def follows_dn_references(self) -> bool:
        """True where a rename makes DN-valued attributes follow (AD and the LDIF lab)."""
        return self.is_active_directory or self.backend == "ldif"

    # -- reads --------------------------------------------------------------------
    def search(self, base: str | None = None, filter: str = "(objectClass=*)",
               attributes: Sequence[str] = ("*",), scope: str = "subtree") -> Iterator[Entry]:
        raise NotImplementedError

    def read(self, dn: str, attributes: Sequence[str] = ("*",)) -> Entry | None:
        raise NotImplementedError

    def search_partitions(self, filter: str, attributes: Sequence[str] = ("*",), *,
                          domain_only: bool = False) -> Iterator[Entry]:
        """One paged search per partition (configuration, then domain), each entry once.

        On slapd and in an LDIF file the configuration NC lies inside the domain's
        tree; on AD it does not: entries of the configuration partition found from the
        domain are skipped either way."""
        config = self.naming.configuration
        if not domain_only and config:
            yield from self.search(config, filter, attributes)
        if self.naming.domain:
            for entry in self.search(self.naming.domain, filter, attributes):
                if not (config and dnu.is_within(entry.dn, config)):
                    yield entry

    def read_many(self, dns: Iterable[str], attributes: Sequence[str] = ("*",)
                  ) -> dict[str, Entry]:
        """Entries by dn.key(); DNs that do not exist are absent from the result."""
        raise NotImplementedError

    def exists(self, dn: str) -> bool:
        return self.read(dn, ("objectClass",)) is not None

    # -- writes -------------------------------------------------------------------
    def modify(self, dn: str, mods: Sequence[ModLike]) -> None:
        raise NotImplementedError

    def add(self, dn: str, attributes: Mapping[str, Sequence[Value]]) -> None:
        raise NotImplementedError

    def delete(self, dn: str) -> None:
        raise NotImplementedError

    def rename(self, dn: str, new_rdn: str, new_superior: str | None = None) -> str:
        raise NotImplementedError

    def save(self) -> None:
        """Make writes durable (the LDIF backend rewrites its file; servers need nothing)."""

    def close(self) -> None:
        pass

    def __enter__(self) -> "Directory":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def describe(self) -> str:
        raise NotImplementedError


def _attributes_arg(attributes: Sequence[str]) -> list[str] | str:
    if not attributes or "*" in attributes:
        return ALL_ATTRIBUTES
    return list(attributes)


def _entry_from_response(item: Mapping[str, object]) -> Entry:
    raw = item.get("raw_attributes") or {}
    assert isinstance(raw, Mapping)
    values: dict[str, list[Value]] = {}
    for name, vals in raw.items():
        if name.lower() == "entrydn":
            continue
        values[name] = [decode(name, v) for v in vals]  # type: ignore[union-attr]
    return Entry(str(item["dn"]), values)


# ======================================================================================
# The LDIF file in ldap3's MOCK_SYNC
# ======================================================================================

class LdifDirectory(Directory):
    """An LDIF export loaded into ldap3's in-memory server, with AD's write rules."""

    backend = "ldif"

    def __init__(self, path: str, connection: Connection, order: list[str],
                 implied: set[str], naming: NamingContexts, *,
                 held: files.HeldFile | None = None,
                 fingerprint: files.Fingerprint | None = None,
                 warn: Warn | None = None, wait_lock: float = 5.0) -> None:
        self.path = path
        # the file's lock (held until close) and what it was when read: the save
        # refuses to overwrite a file another program changed meanwhile
        self._held = held
        self._fingerprint = fingerprint
        self._warn = warn
        self._wait_lock = wait_lock
        self.connection = connection
        self.naming = naming
        self._order: dict[str, None] = dict.fromkeys(order)  # file order, then adds
        self._implied = implied  # dit keys of parents the file did not hold
        self.dirty = False

    @property
    def _dit(self) -> CaseInsensitiveDict:
        return self.connection.server.dit

    def describe(self) -> str:
        return f"LDIF file {self.path} (in memory)"

    def __len__(self) -> int:
        return len(self._dit) - 1 - len(self._implied)  # cn=schema is the mock's own

    # -- reads ------------------------------------------------------------------
    def search(self, base: str | None = None, filter: str = "(objectClass=*)",
               attributes: Sequence[str] = ("*",), scope: str = "subtree") -> Iterator[Entry]:
        """Entries under base matching filter, one at a time, in the file's order.

        The filter is evaluated by exdir.filters (ldap3's mock loses escapes); the
        keys are listed first so that writes between two results are safe.
        """
        base_dn = dnu.normalize(base) if base else self.naming.domain
        matcher = compile_filter(filter, self.connection.server.schema)
        if base_dn not in self._dit:
            return iter(())
        return self._scan(base_dn, matcher, attributes, scope)

    def _scan(self, base: str, matcher: Callable[[Mapping[str, Sequence[bytes]]], bool],
              attributes: Sequence[str], scope: str) -> Iterator[Entry]:
        base_lower = base.lower()
        suffix = "," + base_lower
        if scope == "base":
            keys = [base]
        elif scope == "one":
            keys = [k for k in self._dit.keys() if k.lower().endswith(suffix)
                    and dnu.key(dnu.parent(k)) == dnu.key(base)]
        else:
            keys = [k for k in self._dit.keys() if k.lower() == base_lower
                    or k.lower().endswith(suffix)]
        implied = self._implied
        for key in keys:
            stored = self._dit.get(key)
            if stored is None or key in implied or key == "cn=schema":
                continue
            if matcher(stored):
                yield self._entry(key, stored, attributes)

    def read(self, dn: str, attributes: Sequence[str] = ("*",)) -> Entry | None:
        key = dnu.normalize(dn)
        stored = self._dit.get(key)
        if stored is None or key in self._implied:
            return None
        return self._entry(key, stored, attributes)

    def _entry(self, key: str, stored: Mapping[str, list[bytes]], attributes: Sequence[str]
               ) -> Entry:
        wanted = None if (not attributes or "*" in attributes) else {a.lower() for a in attributes}
        vals: dict[str, list[Value]] = {}
        for name, raw in stored.items():
            if name.lower() == "entrydn":
                continue
            if wanted is not None and name.lower() not in wanted:
                continue
            vals[name] = [decode(name, v) for v in raw]
        return Entry(key, vals)

    def read_many(self, dns: Iterable[str], attributes: Sequence[str] = ("*",)
                  ) -> dict[str, Entry]:
        out: dict[str, Entry] = {}
        for d in dns:
            entry = self.read(d, attributes)
            if entry is not None:
                out[dnu.key(d)] = entry
        return out

    # -- writes -----------------------------------------------------------------
    def _current(self, key: str) -> dict[str, list[Value]]:
        stored = self._dit[key]
        return {name.lower(): [decode(name, v) for v in raw]
                for name, raw in stored.items() if name.lower() != "entrydn"}

    def _require(self, dn: str) -> str:
        key = dnu.normalize(dn)
        if key not in self._dit or key in self._implied:
            raise NoSuchEntry(f"{dn}: no such entry", result="noSuchObject", dn=dn)
        return key

    def modify(self, dn: str, mods: Sequence[ModLike]) -> None:
        key = self._require(dn)
        stored = self._dit[key]
        names = {n.lower(): n for n in stored.keys()}
        new_state = apply_mods(dn, self._current(key), mods)  # raises Conflict: nothing done
        for rdn_attr, rdn_val in dnu.rdn_avas(key):
            kept = new_state.get(rdn_attr.lower(), [])
            if _index_of(rdn_attr, kept, rdn_val) < 0:
                raise Conflict(f"{dn}: the value {rdn_val!r} is part of the entry's name",
                               result="notAllowedOnRDN", dn=dn)
        # ldap3's mock applies half a failed modify, raises on a case-differing delete
        # and re-parses the DN strictly: the modify was worked out above with AD's
        # rules (apply_mods), and its result replaces the entry's values at once.
        for mod in mods:
            names.setdefault(mod.attribute.lower(), mod.attribute)
        entry = CaseInsensitiveDict()
        for lower, values in new_state.items():
            entry[names.get(lower, lower)] = [encode(v) for v in values]
        entry["entryDN"] = [key.encode("utf-8")]
        self._dit[key] = entry
        self.dirty = True

    def add(self, dn: str, attributes: Mapping[str, Sequence[Value]]) -> None:
        key = dnu.normalize(dn)
        if key in self._dit and key not in self._implied:
            raise EntryExists(f"{dn}: an entry with that name already exists",
                              result="entryAlreadyExists", dn=dn)
        parent = dnu.parent(key)
        if parent and parent not in self._dit:
            raise NoSuchEntry(f"{dn}: the parent {parent} does not exist",
                              result="noSuchObject", dn=dn)
        state = apply_mods(dn, {}, [_Mod("add", a, tuple(v)) for a, v in attributes.items()])
        names = {a.lower(): a for a in attributes}
        for rdn_attr, rdn_val in dnu.rdn_avas(key):
            rdn_values = state.setdefault(rdn_attr.lower(), [])
            names.setdefault(rdn_attr.lower(), rdn_attr)
            if _index_of(rdn_attr, rdn_values, rdn_val) < 0:
                rdn_values.append(rdn_val)
        self._store(key, {names[k]: v for k, v in state.items()})
        self._implied.discard(key)
        self._order.setdefault(key, None)
        self.dirty = True

    def _store(self, key: str, values: Mapping[str, Sequence[Value]]) -> None:
        entry = CaseInsensitiveDict()
        for name, vals in values.items():
            entry[name] = [encode(v) for v in vals]
        entry["entryDN"] = [key.encode("utf-8")]
        self._dit[key] = entry

    def _children(self, key: str) -> list[str]:
        suffix = "," + key.lower()
        return [k for k in self._dit.keys() if k.lower().endswith(suffix)]

    def delete(self, dn: str) -> None:
        key = self._require(dn)
        if self._children(key):
            raise DirectoryError(f"{dn}: the entry has children", result="notAllowedOnNonLeaf",
                                 dn=dn)
        del self._dit[key]
        self._order.pop(key, None)
        self.dirty = True

    def rename(self, dn: str, new_rdn: str, new_superior: str | None = None) -> str:
        """Move the entry and its subtree; DN references follow, as on AD."""
        key = self._require(dn)
        parent = dnu.normalize(new_superior) if new_superior else dnu.parent(key)
        if new_superior and (parent not in self._dit):
            raise NoSuchEntry(f"{dn}: the new parent {new_superior} does not exist",
                              result="noSuchObject", dn=dn)
        new_key = dnu.join(new_rdn, parent)
        if dnu.key(new_key) == dnu.key(key):
            if new_key == key:
                return key
        elif new_key in self._dit and new_key not in self._implied:
            raise EntryExists(f"{dn}: cannot rename onto {new_key}: it exists",
                              result="entryAlreadyExists", dn=dn)
        if dnu.is_within(parent, key):
            raise DirectoryError(f"{dn}: cannot move an entry below itself",
                                 result="unwillingToPerform", dn=dn)
        moved = [key] + self._children(key)
        tail = len(key)
        renames: dict[str, str] = {key: new_key}
        for old in moved[1:]:
            renames[old] = old[: len(old) - tail] + new_key
        entries = {old: self._dit.pop(old) for old in moved}
        for old, entry in entries.items():
            entry["entryDN"] = [renames[old].encode("utf-8")]
            self._dit[renames[old]] = entry
        # the renamed entry's naming attribute: old RDN value out, new one in
        target = self._dit[new_key]
        for old_attr, old_val in dnu.rdn_avas(key):  # every AVA of a multi-valued RDN
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
        self._order = dict.fromkeys(renames.get(k, k) for k in self._order)
        self._implied = {renames.get(k, k) for k in self._implied}
        self._rewrite_references(key, new_key)
        self.dirty = True
        return new_key

    def _rewrite_references(self, old: str, new: str) -> None:
        """AD's behaviour: DN-valued attributes pointing into a renamed subtree follow it."""
        dn_attrs = schema.dn_attributes()
        marker = dnu.rdn_value(old).lower().encode("utf-8")
        for entry in self._dit.values():
            for name in list(entry.keys()):
                if name.lower() not in dn_attrs:
                    continue
                values = entry[name]
                changed = False
                out: list[bytes] = []
                for raw in values:
                    if marker in raw.lower() or marker in _unescaped_lower(raw):
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

    def save(self) -> None:
        """Rewrite the LDIF file atomically (exdir.files.rewrite: through a symlink to
        its target, owner and mode kept), under an exclusive lock, and only if the file
        is still what was read (else Refused, exit 1, nothing written).

        A directory opened without a lock (a library caller) locks the file for the
        check and the rewrite only; one opened shared is upgraded for them and goes
        back to shared; one opened exclusive (a command that will --apply) holds it."""
        held, before = self._held, (self._held.exclusive if self._held else None)
        if held is None:
            held = files.lock(self.path, exclusive=True, wait=self._wait_lock)
        elif not held.exclusive:
            held.relock(True, self._wait_lock)
        try:
            if self._fingerprint is not None:
                files.check_unchanged(held, self._fingerprint)
            self._fingerprint = save_ldif(self, self.path, warn=self._warn, held=held)
        finally:
            if self._held is None:
                held.release()
            elif before is not True and held.fd is not None:
                held.relock(before)
        self.dirty = False

    def iter_stored(self) -> Iterator[tuple[str, dict[str, list[Value]]]]:
        """Every entry the file holds (implied parents aside), parents before children."""
        position = {k: i for i, k in enumerate(self._order)}
        keys = [k for k in self._dit.keys() if k != "cn=schema" and k not in self._implied]
        keys.sort(key=lambda k: (dnu.depth(k), position.get(k, len(position))))
        for k in keys:
            stored = self._dit[k]
            yield k, {name: [decode(name, v) for v in raw] for name, raw in stored.items()
                      if name.lower() != "entrydn"}

    def close(self) -> None:
        try:
            self.connection.unbind()
        except Exception:
            pass
        if self._held is not None:
            self._held.release()  # the lock ends with the directory


def _unescaped_lower(raw: bytes) -> bytes:
    return raw.replace(b"\\", b"").lower()


@dataclass
class _Mod:
    op: str
    attribute: str
    values: tuple[Value, ...] = field(default_factory=tuple)


def _error_for(dn: str, result: Mapping[str, object]) -> DirectoryError:
    name = str(result.get("description") or "error")
    message = str(result.get("message") or "").strip()
    text = f"{dn}: {plain(name)}" + (f" ({message})" if message else "")
    if name in ("noSuchAttribute", "attributeOrValueExists", "constraintViolation",
                "notAllowedOnRDN"):
        return Conflict(text, result=name, dn=dn)
    if name == "noSuchObject":
        return NoSuchEntry(text, result=name, dn=dn)
    if name == "entryAlreadyExists":
        return EntryExists(text, result=name, dn=dn)
    return DirectoryError(text, result=name, dn=dn)


# --------------------------------------------------------------------------------------
# Loading and saving LDIF files
# --------------------------------------------------------------------------------------

def _needs_base64(value: str) -> bool:
    if not value:
        return False
    if value[0] in " :<" or value[-1] == " ":
        return True
    return any(ord(c) > 126 or c in "\0\r\n" for c in value)


def save_ldif(directory: LdifDirectory, path: str, *, warn: Warn | None = None,
              held: files.HeldFile | None = None) -> files.Fingerprint:
    """Write every entry to path atomically (exdir.files.rewrite); the new file's
    fingerprint."""
    import ldif as ldif_pkg

    def write(fh: IO[bytes]) -> None:
        fh.write(b"version: 1\n\n")
        writer = ldif_pkg.LDIFWriter(fh, cols=76)
        for key, values in directory.iter_stored():
            record: dict[str, list[bytes | str]] = {}
            for name, vals in values.items():
                record[name] = [v if isinstance(v, bytes) or not _needs_base64(v)
                                else v.encode("utf-8") for v in vals]
            writer.unparse(key, record)

    return files.rewrite(path, write, warn, held=held)


def _read_export(stream: IO[bytes], source: str) -> Iterator[tuple[str, dict[str, list[Value]]]]:
    """Entry records of an export (ldifde and friends) as (plain DN, values).

    Read with the plan reader's own line reader (exdir.ldif_in.entry_records), so both
    agree on the grammar and every error names the bad line itself.  Attribute names
    are case-insensitive in LDIF: `ProxyAddresses:` and `proxyAddresses:` lines are
    one attribute, spelled as first written, holding every value.
    """
    from .ldif_in import decode, entry_records

    binaries: dict[str, bool] = {}
    for record in entry_records(decode(stream.read(), source), source):
        dn_text = record.dn
        if not dn_text or dn_text.startswith("@"):
            # the rootDSE ("" or Samba's @ROOTDSE) and ldb's other special records
            root: dict[str, list[Value]] = {}
            for _, name, value in record.fields:
                root.setdefault(name.lower(), []).append(_text_value(value, False))
            yield ("" if dn_text.upper() in ("", "@ROOTDSE") else dn_text), root
            continue
        try:
            key = dnu.normalize(dn_text)  # extended form accepted
        except InputError as exc:
            raise InputError(exc.message, source=source, line=record.number) from None
        values: dict[str, list[Value]] = {}
        spelled: dict[str, str] = {}
        for _, name, value in record.fields:
            lower = name.lower()
            name = spelled.setdefault(lower, name)
            binary = binaries.get(lower)
            if binary is None:
                binary = binaries[lower] = schema.is_binary(lower)
            values.setdefault(name, []).append(_text_value(value, binary))
        yield key, values


def _text_value(value: Value, binary: bool) -> Value:
    """A value as loaded: bytes for binary attributes and for base64 that is not UTF-8
    text, else str (a plain value loses trailing spaces, as the `ldif` package did)."""
    if isinstance(value, bytes):
        if binary:
            return value
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return value
    value = value.rstrip(" ")
    return value.encode("utf-8") if binary else value


def _domain_root(keys: Iterable[str]) -> str:
    """The most common all-DC suffix of the DNs: the forest/domain root."""
    counts: dict[str, int] = {}
    for k in keys:
        parts = dnu.split(k)
        i = len(parts)
        while i > 0 and parts[i - 1][0].lower() == "dc":
            i -= 1
        if i < len(parts):
            root = dnu.build(parts[i:])
            counts[root] = counts.get(root, 0) + 1
    if not counts:
        return ""
    return max(counts.items(), key=lambda kv: (kv[1], -len(kv[0])))[0]


def open_ldif(path: str, warn: Warn = _stderr, *, lock: bool | None = None,
              wait_lock: float = 5.0) -> LdifDirectory:
    """Load an LDIF export into ldap3's in-memory server.

    Accepts what ldifde writes: `changetype: add` lines, folding, base64, children
    before parents, partial exports (missing parents are implied and reported),
    extended-form DNs, attributes no schema knows (kept as opaque strings).

    Only a regular file is read (a FIFO, a device, a folder: exit 2, nothing read).
    lock: None takes no lock (a library caller; save() still locks and checks),
    False holds a shared lock until close() (read-only commands), True an exclusive
    one (a command that will --apply: its whole read-plan-write).  Another holder is
    waited for up to wait_lock seconds, then Refused (exit 1) naming it.
    """
    held = files.open_held(path, lock, wait_lock)
    try:
        directory = _load_ldif(path, warn, held)
    except BaseException:
        held.release()
        raise
    if lock is None:
        held.release()  # the fingerprint is kept; save() locks again
        directory._held = None
    directory._wait_lock = wait_lock
    return directory


def _load_ldif(path: str, warn: Warn, held: files.HeldFile) -> LdifDirectory:
    """open_ldif's reading: the records, through the held file's hashing reader."""
    stream = held.reader()
    with stream:
        records: list[tuple[str, dict[str, list[Value]]]] = []
        seen: set[str] = set()
        root_dse: dict[str, list[Value]] = {}
        for key, values in _read_export(stream, path):
            if not key or key.startswith("@"):
                if not key:
                    root_dse = values
                else:
                    warn(f"{path}: skipped the special record {key}")
                continue
            if key.lower() in seen:
                raise InputError(f"{key} appears twice", source=path)
            seen.add(key.lower())
            records.append((key, values))
    if not records:  # nothing to be a directory of (empty, comments, a rootDSE only)
        raise InputError("no entries", source=path)
    unknown_attrs = sorted({name for _, vals in records for name in vals
                            if not schema.known_to_mock(name) and name.lower() != "objectclass"},
                           key=str.lower)
    unknown_classes = sorted({str(c) for _, vals in records
                              for c in next((v for n, v in vals.items()
                                             if n.lower() == "objectclass"), [])
                              if not schema.known_class(str(c))}, key=str.lower)
    if unknown_attrs:
        warn(f"{path}: kept as opaque values (no schema we ship knows them): "
             + ", ".join(unknown_attrs))
    if unknown_classes:
        warn(f"{path}: unknown object classes kept as they are: " + ", ".join(unknown_classes))
    dsa, sch = schema.ldap3_schema(unknown_attrs, unknown_classes)
    server = Server.from_definition("exdir-ldif", dsa, sch)
    connection = Connection(server, user="cn=exdir", password="exdir", client_strategy=MOCK_SYNC,
                            raise_exceptions=False)
    connection.bind()
    dit = connection.server.dit
    order: list[str] = []
    records.reverse()
    while records:  # pop as we go: the file's data is never held twice
        key, values = records.pop()
        entry = CaseInsensitiveDict()
        for name, vals in values.items():
            entry[name] = [encode(v) for v in vals]
        for rdn_attr, rdn_val in dnu.rdn_avas(key):
            if rdn_attr not in entry:
                entry[rdn_attr] = [rdn_val.encode("utf-8")]
        entry["entryDN"] = [key.encode("utf-8")]
        dit[key] = entry
        order.append(key)
    declared = {k.lower(): str(v[0]) for k, v in root_dse.items() if v}
    domain = dnu.normalize(declared["defaultnamingcontext"]) if declared.get(
        "defaultnamingcontext") else _domain_root(order)
    implied: set[str] = set()
    domain_key = dnu.key(domain) if domain else ""
    for key in order:
        parent = dnu.parent(key)
        while parent and parent not in dit and parent not in implied and domain_key and (
                parent.lower() == domain_key or parent.lower().endswith("," + domain_key)):
            implied.add(parent)
            parent = dnu.parent(parent)
    for anc in sorted(implied, key=dnu.depth):
        entry = CaseInsensitiveDict()
        for attr, val in dnu.rdn_avas(anc):
            entry[attr] = [val.encode("utf-8")]
        entry["objectClass"] = [b"top"]
        entry["entryDN"] = [anc.encode("utf-8")]
        dit[anc] = entry
    if implied:
        shown = sorted(implied, key=dnu.depth)
        warn(f"{path}: {len(shown)} parent entries not in the file were implied: "
             + "; ".join(shown[:5]) + (" …" if len(shown) > 5 else ""))
    config = next((k for k in dit.keys() if dnu.key(k) == dnu.key("CN=Configuration," + domain)),
                  "CN=Configuration," + domain if domain else "")
    if declared.get("configurationnamingcontext"):
        config = dnu.normalize(declared["configurationnamingcontext"])
    schema_nc = "CN=Schema," + config if config else None
    naming = NamingContexts(domain=domain, configuration=config,
                            schema=schema_nc if schema_nc and schema_nc in dit else None,
                            all=tuple(x for x in (domain, config) if x))
    return LdifDirectory(path, connection, order, implied, naming, held=held,
                         fingerprint=held.fingerprint(), warn=warn)


# ======================================================================================
# A real LDAP server
# ======================================================================================

# a DN value that followed its target into Deleted Objects: `CN=Old MTA\0ADEL:<guid>,…`
_TOMBSTONE = re.compile(rb"^[^,]*\\0ADEL:([0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}),",
                        re.IGNORECASE)


class LdapDirectory(Directory):
    """A real server through ldap3 SYNC; the server enforces the rules itself."""

    backend = "ldap"

    def __init__(self, url: str, connection: Connection) -> None:
        self.url = url
        self.connection = connection
        self._guids: dict[str, bytes | None] = {}
        other = _root_dse(connection)
        caps = {str(c) for c in other.get("supportedcapabilities", [])}
        self.is_active_directory = AD_CAPABILITY in caps and AD_LDS_CAPABILITY not in caps
        contexts = [str(c) for c in other.get("namingcontexts", [])]
        default = _first(other.get("defaultnamingcontext"))
        config = _first(other.get("configurationnamingcontext"))
        schema_nc = _first(other.get("schemanamingcontext"))
        if not default:
            plain_contexts = [c for c in contexts if not c.lower().startswith("cn=")]
            default = plain_contexts[0] if plain_contexts else (contexts[0] if contexts else "")
        if not config and default:
            config = "CN=Configuration," + default
        self.naming = NamingContexts(domain=dnu.normalize(default) if default else "",
                                     configuration=dnu.normalize(config) if config else "",
                                     schema=schema_nc, all=tuple(contexts))

    def describe(self) -> str:
        kind = "Active Directory" if self.is_active_directory else "LDAP server"
        return f"{kind} at {self.url}"

    def _raise(self, dn: str) -> None:
        raise _error_for(dn, self.connection.result or {})

    def search(self, base: str | None = None, filter: str = "(objectClass=*)",
               attributes: Sequence[str] = ("*",), scope: str = "subtree") -> Iterator[Entry]:
        base_dn = base or self.naming.domain
        try:
            results = self.connection.extend.standard.paged_search(
                base_dn, filter, search_scope=_SCOPES[scope],
                attributes=_attributes_arg(attributes), paged_size=PAGE_SIZE, generator=True)
            for item in results:
                if item.get("type") == "searchResEntry":
                    yield _entry_from_response(item)
        except LDAPException as exc:
            raise DirectoryError(f"search under {base_dn} failed: {exc}") from None
        result = self.connection.result or {}
        if result.get("description") not in (None, "success", "noSuchObject"):
            raise _error_for(base_dn, result)

    def read(self, dn: str, attributes: Sequence[str] = ("*",)) -> Entry | None:
        try:
            ok = self.connection.search(dn, "(objectClass=*)", search_scope=BASE,
                                        attributes=_attributes_arg(attributes))
        except LDAPException as exc:
            raise DirectoryError(f"{dn}: read failed: {exc}") from None
        if not ok:
            # success with no entry: a tombstone, invisible without the Show Deleted control
            if (self.connection.result or {}).get("description") in ("noSuchObject", "success"):
                return None
            self._raise(dn)
        for item in self.connection.response or []:
            if item.get("type") == "searchResEntry":
                return _entry_from_response(item)
        return None

    def read_many(self, dns: Iterable[str], attributes: Sequence[str] = ("*",)
                  ) -> dict[str, Entry]:
        """Bulk read: OR-filters of up to 100 DNs per search, one search per partition."""
        wanted = {dnu.key(d): d for d in dns}
        out: dict[str, Entry] = {}
        if not wanted:
            return out
        dn_attr = "distinguishedName" if self.is_active_directory else "entryDN"
        bases = sorted({c for c in self.naming.all} | {self.naming.domain}, key=len, reverse=True)
        groups: dict[str, list[str]] = {}
        for k, d in wanted.items():
            base = next((b for b in bases if b and dnu.is_within(d, b)), None)
            if base is None:
                entry = self.read(d, attributes)
                if entry is not None:
                    out[k] = entry
                continue
            groups.setdefault(base, []).append(d)
        attrs = list(attributes) if attributes and "*" not in attributes else ["*"]
        for base, members in groups.items():
            for i in range(0, len(members), 100):
                chunk = members[i:i + 100]
                flt = "(|" + "".join(f"({dn_attr}={escape_filter_chars(dnu.normalize(d))})"
                                     for d in chunk) + ")"
                for entry in self.search(base, flt, attrs):
                    k = dnu.key(entry.dn)
                    if k in wanted:
                        out[k] = entry
        return out

    def modify(self, dn: str, mods: Sequence[ModLike]) -> None:
        changes: dict[str, list[tuple[str, list[bytes]]]] = {}
        for mod in mods:
            op = {"add": ldap3.MODIFY_ADD, "delete": ldap3.MODIFY_DELETE,
                  "replace": ldap3.MODIFY_REPLACE}[mod.op]
            values = [encode(v) for v in mod.values]
            if (mod.op == "delete" and self.is_active_directory and values
                    and schema.kind_of(mod.attribute) == "dn"):
                values = [self._by_guid(v) for v in values]
            changes.setdefault(mod.attribute, []).append((op, values))
        try:
            ok = self.connection.modify(dn, changes)
        except LDAPException as exc:
            raise DirectoryError(f"{dn}: modify failed: {exc}", dn=dn) from None
        if not ok:
            self._raise(dn)

    def _by_guid(self, value: bytes) -> bytes:
        """A DN value to delete, named by its target's objectGUID where the target exists.

        Active Directory shows a non-linked DN value (homeMTA, publicDelegates) under
        its target's current name after a rename, but Samba matches a delete only
        against the string it stored, which names nothing any more; `<GUID=…>` names
        the object itself and matches on both.  Targets are few (stores, MTAs): the
        GUIDs are cached."""
        tomb = _TOMBSTONE.search(value)
        if tomb:  # a value that followed its target into Deleted Objects
            return b"<GUID=" + tomb.group(1) + b">"
        try:
            text = dnu.normalize(value.decode("utf-8", "replace"))
        except InputError:
            return value
        key = text.lower()
        if key not in self._guids:
            entry = self.read(text, ("objectGUID",))
            guid = entry.first("objectGUID") if entry is not None else None
            self._guids[key] = (f"<GUID={uuid.UUID(bytes_le=guid)}>".encode()
                                if isinstance(guid, bytes) and len(guid) == 16 else None)
        return self._guids[key] or value

    def add(self, dn: str, attributes: Mapping[str, Sequence[Value]]) -> None:
        attrs = {k: [encode(v) for v in vals] for k, vals in attributes.items()}
        classes = attrs.pop("objectClass", None) or attrs.pop("objectclass", None)
        try:
            ok = self.connection.add(dn, [c.decode() for c in classes] if classes else None, attrs)
        except LDAPException as exc:
            raise DirectoryError(f"{dn}: add failed: {exc}", dn=dn) from None
        if not ok:
            self._raise(dn)

    def delete(self, dn: str) -> None:
        try:
            ok = self.connection.delete(dn)
        except LDAPException as exc:
            raise DirectoryError(f"{dn}: delete failed: {exc}", dn=dn) from None
        if not ok:
            self._raise(dn)

    def rename(self, dn: str, new_rdn: str, new_superior: str | None = None) -> str:
        self._guids.clear()  # names change; GUIDs do not, but the keys are names
        try:
            ok = self.connection.modify_dn(dn, new_rdn, delete_old_dn=True,
                                           new_superior=new_superior)
        except LDAPException as exc:
            raise DirectoryError(f"{dn}: rename failed: {exc}", dn=dn) from None
        if not ok:
            self._raise(dn)
        return dnu.join(new_rdn, new_superior or dnu.parent(dn))

    def close(self) -> None:
        try:
            self.connection.unbind()
        except Exception:
            pass


_ROOT_DSE_ATTRIBUTES = ("namingContexts", "supportedCapabilities", "defaultNamingContext",
                        "configurationNamingContext", "schemaNamingContext")


def _root_dse(connection: Connection) -> dict[str, list[str]]:
    """The rootDSE facts exdir uses, read directly (ldap3 folds supportedCapabilities
    into supportedFeatures, where AD's capabilities cannot be told apart)."""
    try:
        ok = connection.search("", "(objectClass=*)", search_scope=BASE,
                               attributes=list(_ROOT_DSE_ATTRIBUTES))
    except LDAPException as exc:
        raise ConnectionFailed(f"cannot read the rootDSE: {exc}") from None
    if not ok or not connection.response:
        raise ConnectionFailed("the server did not return its rootDSE")
    raw = connection.response[0].get("raw_attributes") or {}
    return {k.lower(): [v.decode("utf-8", "replace") for v in vals] for k, vals in raw.items()}


def _first(value: object) -> str | None:
    if isinstance(value, (list, tuple)):
        return str(value[0]) if value else None
    return str(value) if value else None


def read_password(password_file: str | None, environ: Mapping[str, str] = os.environ
                  ) -> str | None:
    """The bind password from a file or EXDIR_PASSWORD.

    A file loses every trailing CR and LF (editors add one, `echo` another, Windows
    CRLF): none of them can be meant, since LDAP passwords cannot hold control
    characters.  An empty file, or a control character inside the password, is
    refused in plain words here rather than as ldap3's "SASLprep error" or "password
    is mandatory in simple bind"; the password itself is never shown.
    """
    if password_file:
        try:
            with open(password_file, "rb") as fh:
                data = fh.read()
        except OSError as exc:
            raise InputError(f"cannot read password file: {exc.strerror}",
                             source=password_file) from None
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise InputError("the password file is not UTF-8 text",
                             source=password_file) from None
        text = text.rstrip("\r\n")
        if not text:
            raise InputError("the password file is empty", source=password_file)
        check_password(text, "the password file", source=password_file)
        return text
    from_env = environ.get("EXDIR_PASSWORD")
    if from_env:
        check_password(from_env, "EXDIR_PASSWORD")
    return from_env


_CONTROL_CHARACTER = re.compile(r"[\x00-\x1f\x7f]")


def check_password(password: str, where: str = "the password", *,
                   source: str | None = None) -> None:
    """InputError when the password holds a control character (a line break or tab in
    the middle of a password file, say): ldap3's SASLprep refuses them with its own
    jargon, and a plain refusal naming where the password came from is clearer."""
    if _CONTROL_CHARACTER.search(password):
        raise InputError(f"{where} holds a control character (a line break or tab inside "
                         "the password?): LDAP passwords cannot contain one", source=source)


AUTH_METHODS = ("simple", "ntlm")


def md4_available() -> bool:
    """True where hashlib can compute MD4, which NTLM's password hash needs (OpenSSL 3
    moved MD4 to its legacy provider, so many platforms have none)."""
    import hashlib

    try:
        hashlib.new("md4", b"")
    except ValueError:
        return False
    return True


def _ntlm_user(bind_dn: str | None) -> str:
    if not bind_dn or "\\" not in bind_dn or bind_dn.startswith("\\") or bind_dn.endswith("\\"):
        raise InputError("--auth ntlm needs --bind-dn DOMAIN\\user")
    return bind_dn


def _certificate_names(message: str) -> list[str]:
    """The names in ldap3's "certificate {...} doesn't match any name" message."""
    import re

    names = re.findall(r"\('DNS', '([^']+)'\)", message)
    return names or re.findall(r"\('commonName', '([^']+)'\)", message)


def open_url(url: str, bind_dn: str | None = None, password: str | None = None, *,
             starttls: bool = False, ca_file: str | None = None, insecure: bool = False,
             timeout: int = 10, auth: str = "simple") -> LdapDirectory:
    """Connect and bind; ldaps and StartTLS verify the server's certificate (and that
    it names the host in the URL) unless insecure.

    auth: "simple" (a DN and password; use ldaps or StartTLS) or "ntlm" (DOMAIN\\user,
    Microsoft's Sicily NTLM bind as ldap3 makes it; needs MD4 in hashlib).
    """
    import ssl
    from urllib.parse import urlsplit

    from ldap3 import NONE, NTLM, SIMPLE, Tls
    from ldap3.core.exceptions import LDAPSessionTerminatedByServerError, LDAPStartTLSError

    if auth not in AUTH_METHODS:
        raise InputError(f"unknown --auth {auth!r} (simple or ntlm)")
    if auth == "ntlm":
        bind_dn = _ntlm_user(bind_dn)
        if not password:
            raise InputError("--auth ntlm needs a password (--password-file or EXDIR_PASSWORD)")
        if not md4_available():
            raise ConnectionFailed(
                "NTLM is not available here: this Python's hashlib has no MD4 (OpenSSL 3 "
                "keeps it in the legacy provider); bind with --auth simple over ldaps:// "
                "or --starttls instead")
    _check_port(url)
    if password:
        check_password(password)
    elif bind_dn and auth == "simple":
        raise InputError(f"--bind-dn {bind_dn} needs a password "
                         "(--password-file or EXDIR_PASSWORD)")
    tls = None
    if url.lower().startswith("ldaps://") or starttls:
        tls = Tls(validate=ssl.CERT_NONE if insecure else ssl.CERT_REQUIRED,
                  ca_certs_file=ca_file)
    try:
        server = Server(url, get_info=NONE, tls=tls, connect_timeout=int(timeout))
        connection = Connection(server, user=bind_dn, password=password,
                                authentication=NTLM if auth == "ntlm" else SIMPLE,
                                auto_referrals=False, raise_exceptions=False,
                                receive_timeout=int(timeout * 6))
        connection.open(read_server_info=False)
        if connection.closed:
            raise ConnectionFailed(f"cannot reach {url}")
        if starttls:
            try:
                started = connection.start_tls(read_server_info=False)
            except LDAPStartTLSError:
                started = False
            if not started:
                raise ConnectionFailed(f"{url}: the server refused StartTLS (it has no TLS "
                                       "certificate set up?): use ldaps:// if it offers that, "
                                       "or have TLS enabled on the server")
        if bind_dn or password:
            try:
                bound = connection.bind(read_server_info=False)
            except LDAPSessionTerminatedByServerError:
                if auth != "ntlm":
                    raise
                raise ConnectionFailed(
                    f"{url}: the server closed the connection at the NTLM bind: it does not "
                    "accept Microsoft's Sicily NTLM bind, the only NTLM ldap3 makes (Samba "
                    "AD does not implement it); bind with --auth simple over ldaps:// or "
                    "--starttls instead") from None
            if not bound:
                result = connection.result or {}
                raise ConnectionFailed(
                    f"{url}: bind as {bind_dn} refused: {plain(str(result.get('description')))}")
    except ConnectionFailed:
        raise
    except LDAPException as exc:
        text = str(exc)
        if "doesn't match any name" in text:
            names = _certificate_names(text)
            raise ConnectionFailed(
                f"{url}: the server's certificate is not issued to "
                f"{urlsplit(url).hostname or url}"
                + (f" (it names {', '.join(names)}): connect by that name" if names else "")
                + ", or give --insecure to skip verification") from None
        if "CERTIFICATE_VERIFY_FAILED" in text:
            raise ConnectionFailed(
                f"{url}: the server's certificate could not be verified (self-signed, or "
                "issued by a CA not trusted here): give --ca-file with the CA that issued "
                "it, or --insecure to skip verification") from None
        if "socket ssl wrapping error" in text:
            raise ConnectionFailed(
                f"{url}: the TLS handshake failed: the server closed the connection or does "
                "not speak TLS on this port (ldaps:// needs the TLS port, usually 636)") from None
        raise ConnectionFailed(f"cannot reach {url}: {text}") from None
    return LdapDirectory(url, connection)


def _check_port(url: str) -> None:
    """InputError for a URL whose port is no port (ldap3 says "Source port must in
    range", or raises on a word)."""
    from urllib.parse import urlsplit

    if "://" not in url:
        return
    try:
        port = urlsplit(url).port
    except ValueError:
        port = 0
    if port == 0:
        raise InputError(f"{url}: the port must be a number from 1 to 65535")
