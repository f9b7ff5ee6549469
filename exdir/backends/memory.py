"""The in-memory backend: an LDIF export held in ldap3's MOCK_SYNC, with AD's write rules.

`open_ldif` reads an export (exdir.ldif_in's entry reader), `LdifDirectory` answers
reads and takes writes with Active Directory's semantics, and `save` writes the
file back (exdir.ldif_out's entry writer: one base64 rule for every LDIF exdir
writes).  ldap3's mock is not Active Directory (docs/design.md, "Backends"): every
place where exdir works around the mock itself is exdir.backends.mock_gaps; what
this module adds on top is AD's behaviour, which slapd does not share either:

- renaming a non-leaf entry moves its subtree, and DN-valued attributes that
  point into it follow (AD rewrites references; slapd does not, and
  ``follows_dn_references`` says so, so plans carry those rewrites themselves);
- a modify is atomic and checks the values it deletes, case-insensitively where
  the syntax is; a missing value fails the whole modify with ``Conflict``;
- no duplicate values, no add under a missing parent, no rename onto an existing
  DN, no delete of an entry with children;
- a partial export's missing parents are implied (held, never saved).
"""
from __future__ import annotations

import sys
from typing import IO, Callable, Iterable, Iterator, Mapping, Sequence

from ldap3 import MOCK_SYNC, Connection, Server

from .. import dn as dnu
from .. import files
from .. import schema
from ..errors import EntryExists, InputError, NoSuchEntry
from ..filters import compile_filter
from ..ldif_in import decode as decode_text
from ..ldif_in import EntryRecord, entry_records
from ..ldif_out import entry_record
from ..values import Value, decode
from .base import Directory, Entry, ModLike, NamingContexts, SimpleMod, Warn, apply_mods
from . import rules
from .mock_gaps import MockDit


def _stderr(message: str) -> None:
    print(message, file=sys.stderr)


class LdifDirectory(Directory):
    """An LDIF export loaded into ldap3's in-memory server, with AD's write rules."""

    backend = "ldif"

    def __init__(self, path: str, connection: Connection, dit: MockDit, order: list[str],
                 naming: NamingContexts, *,
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
        self._dit = dit  # the mock's store, and the parents the file did not hold
        self.naming = naming
        self._order: dict[str, None] = dict.fromkeys(order)  # file order, then adds
        self.dirty = False

    def describe(self) -> str:
        return f"LDIF file {self.path}"  # the same whichever store holds it

    def __len__(self) -> int:
        return len(self._dit)

    # -- reads ------------------------------------------------------------------
    def search(self, base: str | None = None, filter: str = "(objectClass=*)",
               attributes: Sequence[str] = ("*",), scope: str = "subtree") -> Iterator[Entry]:
        """Entries under base matching filter, one at a time, in the store's order
        (the file's, then adds; a rename moves its subtree to the end).

        exdir's own scan over every key with exdir.filters' matcher
        (mock_gaps.MockDit.scan says why not the mock's search)."""
        base_dn = self._key(base) if base else self.naming.domain
        matcher = compile_filter(filter, self.connection.server.schema)
        if base_dn not in self._dit:
            return iter(())
        return (self._entry(key, stored, attributes)
                for key, stored in self._dit.scan(base_dn, scope, matcher))

    def _key(self, dn: str) -> str:
        """The store's key for dn: its normal form, or the stored spelling of the same
        name where a multi-valued RDN is written in another order (MockDit.stored_key)."""
        return self._dit.stored_key(dnu.normalize(dn))

    def read(self, dn: str, attributes: Sequence[str] = ("*",)) -> Entry | None:
        key = self._key(dn)
        stored = self._dit.get(key)
        if stored is None or key in self._dit.implied:
            return None
        return self._entry(key, stored, attributes)

    def _entry(self, key: str, stored: Mapping[str, list[bytes]], attributes: Sequence[str]
               ) -> Entry:
        wanted = None if (not attributes or "*" in attributes) else {a.lower() for a in attributes}
        vals: dict[str, list[Value]] = {}
        for name, raw in stored.items():
            if name.lower() == "entrydn":
                # the DN as the directory spells it (the mock keeps it current on every
                # add and rename), not as the caller asked: apply learns a target's
                # spelling from it, as it does from a real server
                key = raw[0].decode("utf-8") if raw else key
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
        key = self._key(dn)
        if not self._dit.exists(key):
            raise NoSuchEntry(f"{dn}: no such entry", result="noSuchObject", dn=dn)
        return key

    def modify(self, dn: str, mods: Sequence[ModLike]) -> None:
        key = self._require(dn)
        stored = self._dit[key]
        names = {n.lower(): n for n in stored.keys()}
        if not any(m.op == "delete" and not m.values for m in mods):
            # Only the attributes the mods name (and the RDN's, which must stay) are
            # decoded, changed and written back: copying the whole entry per step was
            # most of an in-memory apply's write phase.  A value-less delete moves its
            # attribute to the end of the entry when added again (apply_mods' order,
            # kept in the saved file), so it takes the whole-entry path below.
            touched = ({m.attribute.lower() for m in mods}
                       | {a.lower() for a, _ in dnu.rdn_avas(key)}) - {"entrydn"}
            part = {t: [decode(names[t], v) for v in stored[names[t]]]
                    for t in touched if t in names}
            changed = apply_mods(dn, part, mods)  # raises Conflict: nothing done
            rules.check_naming_kept(dn, key, changed)
            for mod in mods:
                names.setdefault(mod.attribute.lower(), mod.attribute)
            self._dit.patch(key, {names[t]: v for t, v in changed.items()},
                            [names[t] for t in touched if t in part and t not in changed])
            self.dirty = True
            return
        new_state = apply_mods(dn, self._current(key), mods)  # raises Conflict: nothing done
        rules.check_naming_kept(dn, key, new_state)
        # the new values replace the entry's at once (mock_gaps.MockDit.put says why),
        # each attribute spelled as the entry or the first mod spelled it
        for mod in mods:
            names.setdefault(mod.attribute.lower(), mod.attribute)
        self._dit.put(key, {names.get(lower, lower): values for lower, values in new_state.items()})
        self.dirty = True

    def add(self, dn: str, attributes: Mapping[str, Sequence[Value]]) -> None:
        key = self._key(dn)
        if self._dit.exists(key):
            raise EntryExists(f"{dn}: an entry with that name already exists",
                              result="entryAlreadyExists", dn=dn)
        parent = dnu.parent(key)
        self._dit.require_parent(dn, parent)
        if parent:  # under the parent as stored, so the subtree stays one suffix
            key = dnu.join(dnu.rdn(key), self._dit.stored_key(parent))
        state = apply_mods(dn, {}, [SimpleMod("add", a, tuple(v)) for a, v in attributes.items()])
        names = {a.lower(): a for a in attributes}
        rules.add_naming_values(key, state, names)
        self._dit.put(key, {names[k]: v for k, v in state.items()})
        self._dit.implied.discard(key)
        self._order.setdefault(key, None)
        self.dirty = True

    def delete(self, dn: str) -> None:
        key = self._require(dn)
        self._dit.require_leaf(dn, key)
        self._dit.remove(key)
        self._order.pop(key, None)
        self.dirty = True

    def rename(self, dn: str, new_rdn: str, new_superior: str | None = None) -> str:
        """Move the entry and its subtree; DN references follow, as on AD."""
        key = self._require(dn)
        parent = self._key(new_superior) if new_superior else dnu.parent(key)
        if new_superior:
            self._dit.require_parent(dn, parent, "the new parent", new_superior)
        new_key = dnu.join(new_rdn, parent)
        if dnu.key(new_key) == dnu.key(key):
            if new_key == key:
                return key
        else:
            self._dit.require_free(dn, new_key)
        rules.check_not_below_itself(dn, key, parent)
        renames = self._dit.move(key, new_key)
        # the renamed entry's naming attribute: old RDN value out, new one in
        rules.swap_naming_values(key, new_key, self._dit[new_key])
        self._order = dict.fromkeys(renames.get(k, k) for k in self._order)
        self._rewrite_references(key, new_key)
        self.dirty = True
        return new_key

    def _rewrite_references(self, old: str, new: str) -> None:
        """AD's behaviour: DN-valued attributes pointing into a renamed subtree follow it."""
        dn_attrs = schema.dn_attributes()
        marker = rules.reference_marker(old)
        for entry in self._dit.values():
            rules.rewrite_dn_values(entry, old, new, marker, dn_attrs)

    def save(self) -> None:
        """Rewrite the LDIF file atomically (exdir.files.rewrite: through a symlink to
        its target, owner and mode kept), under an exclusive lock, and only if the file
        is still what was read (else Refused, exit 1, nothing written).

        A directory opened without a lock (a library caller) locks the file for the
        check and the rewrite only; one opened shared is upgraded for them and goes
        back to shared; one opened exclusive (a command that will --apply) holds it."""
        with files.locked_for_save(self.path, self._held, self._wait_lock) as held:
            if self._fingerprint is not None:
                files.check_unchanged(held, self._fingerprint)
            self._fingerprint = save_ldif(self, self.path, warn=self._warn, held=held)
        self.dirty = False

    def iter_stored(self) -> Iterator[tuple[str, dict[str, list[Value]]]]:
        """Every entry the file holds (implied parents aside), parents before children."""
        position = {k: i for i, k in enumerate(self._order)}
        keys = [k for k in self._dit.keys() if k not in self._dit.implied]
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


# --------------------------------------------------------------------------------------
# Loading and saving LDIF files
# --------------------------------------------------------------------------------------

def save_ldif(directory: LdifDirectory, path: str, *, warn: Warn | None = None,
              held: files.HeldFile | None = None) -> files.Fingerprint:
    """Write every entry to path atomically (exdir.files.rewrite); the new file's
    fingerprint.  The records are exdir.ldif_out's entry records."""
    def write(fh: IO[bytes]) -> None:
        fh.write(b"version: 1\n\n")
        for key, values in directory.iter_stored():
            fh.write(entry_record(key, values.items()).encode("utf-8"))

    return files.rewrite(path, write, warn, held=held)


def _read_export(stream: IO[bytes], source: str) -> Iterator[tuple[str, dict[str, list[Value]]]]:
    """Entry records of an export (ldifde and friends) as (plain DN, values).

    Read with the plan reader's own line reader (exdir.ldif_in.entry_records), so both
    agree on the grammar and every error names the bad line itself.  Attribute names
    are case-insensitive in LDIF: `ProxyAddresses:` and `proxyAddresses:` lines are
    one attribute, spelled as first written, holding every value.
    """
    binaries: dict[str, bool] = {}
    for record in entry_records(decode_text(stream.read(), source), source):
        yield export_entry(record, source, binaries)


def export_entry(record: EntryRecord, source: str, binaries: dict[str, bool]
                 ) -> tuple[str, dict[str, list[Value]]]:
    """One record of an export as (plain DN, values): the rootDSE as "" and ldb's special
    records as their "@..." name, with lower-case names.  binaries caches
    schema.is_binary across records (the indexed store reads records this way too)."""
    dn_text = record.dn
    if not dn_text or dn_text.startswith("@"):
        # the rootDSE ("" or Samba's @ROOTDSE) and ldb's other special records
        root: dict[str, list[Value]] = {}
        for _, name, value in record.fields:
            root.setdefault(name.lower(), []).append(_text_value(value, False))
        return ("" if dn_text.upper() in ("", "@ROOTDSE") else dn_text), root
    try:
        key = dnu.normalize_once(dn_text)  # extended form accepted
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
    return key, values


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


RootCounts = dict[tuple[tuple[dnu.Ava, ...], ...], int]
"""How many entries have each all-DC suffix (count_root, pick_root)."""


def count_root(counts: RootCounts, d: dnu.Dn) -> None:
    """Count d's all-DC suffix, if it has one, towards the domain root."""
    avas = d.avas
    i = len(avas)
    while i > 0 and avas[i - 1][0][0].lower() == "dc":
        i -= 1
    if i < len(avas):
        suffix = avas[i:]
        counts[suffix] = counts.get(suffix, 0) + 1


def pick_root(counts: RootCounts) -> str:
    """The most common all-DC suffix counted (the shorter on a tie, then the first
    met): the forest/domain root; "" where no name ends in DC= parts."""
    texts: dict[str, int] = {}
    for suffix, n in counts.items():
        text = dnu.Dn("", suffix).normal
        texts[text] = texts.get(text, 0) + n
    if not texts:
        return ""
    return max(texts.items(), key=lambda kv: (kv[1], -len(kv[0])))[0]


def _domain_root(keys: Iterable[str]) -> str:
    """The most common all-DC suffix of the DNs: the forest/domain root."""
    counts: RootCounts = {}
    for k in keys:
        count_root(counts, dnu.parse(k))
    return pick_root(counts)


def unknown_names(attributes: set[str], classes: set[str], path: str, warn: Warn
                  ) -> tuple[list[str], list[str]]:
    """The attribute names and object classes of a file no schema we ship knows
    (sorted), each list said once through warn."""
    unknown_attrs = sorted({name for name in attributes
                            if not schema.known_to_mock(name) and name.lower() != "objectclass"},
                           key=str.lower)
    unknown_classes = sorted({c for c in classes if not schema.known_class(c)}, key=str.lower)
    if unknown_attrs:
        warn(f"{path}: kept as opaque values (no schema we ship knows them): "
             + ", ".join(unknown_attrs))
    if unknown_classes:
        warn(f"{path}: unknown object classes kept as they are: " + ", ".join(unknown_classes))
    return unknown_attrs, unknown_classes


def implied_parents(keys: Iterable[str], present: Callable[[str], bool], domain: str
                    ) -> set[str]:
    """The parents within the domain a partial export does not hold (keys: the file's
    entries; present: whether the store holds a DN), each once however its children
    spell it (by dn.key: `OU=Gone` and `ou=gone` are one parent, implied as first met)."""
    implied: dict[str, str] = {}
    domain_key = dnu.key(domain) if domain else ""
    for key in keys:
        parent = dnu.parent(key)
        while parent and (name := dnu.key(parent)) not in implied and not present(parent) and (
                domain_key and (parent.lower() == domain_key
                                or parent.lower().endswith("," + domain_key))):
            implied[name] = parent
            parent = dnu.parent(parent)
    return set(implied.values())


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
    unknown_attrs, unknown_classes = unknown_names(
        {name for _, vals in records for name in vals},
        {str(c) for _, vals in records
         for c in next((v for n, v in vals.items() if n.lower() == "objectclass"), [])},
        path, warn)
    dsa, sch = schema.ldap3_schema(unknown_attrs, unknown_classes)
    server = Server.from_definition("exdir-ldif", dsa, sch)
    connection = Connection(server, user="cn=exdir", password="exdir", client_strategy=MOCK_SYNC,
                            raise_exceptions=False)
    connection.bind()
    dit = MockDit(connection)
    order: list[str] = []
    records.reverse()
    while records:  # pop as we go: the file's data is never held twice
        key, values = records.pop()
        names = {n.lower() for n in values}
        for rdn_attr, rdn_val in dnu.rdn_avas(key):
            if rdn_attr.lower() not in names:
                values[rdn_attr] = [rdn_val]
                names.add(rdn_attr.lower())
        dit.put(key, values)
        order.append(key)
    declared = {k.lower(): str(v[0]) for k, v in root_dse.items() if v}
    domain = dnu.normalize(declared["defaultnamingcontext"]) if declared.get(
        "defaultnamingcontext") else _domain_root(order)
    implied = implied_parents(order, dit.__contains__, domain)
    for anc in sorted(implied, key=dnu.depth):
        held_values: dict[str, list[Value]] = {attr: [val] for attr, val in dnu.rdn_avas(anc)}
        held_values["objectClass"] = ["top"]
        dit.put(anc, held_values)
    dit.implied = implied
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
    return LdifDirectory(path, connection, dit, order, naming, held=held,
                         fingerprint=held.fingerprint(), warn=warn)
