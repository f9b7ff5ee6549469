"""The indexed store: an LDIF export in an SQLite file beside it, for large exports.

`open_indexed` reads an export once, streaming (exdir.ldif_in's entry reader fed
one line at a time), into an SQLite database in the index folder (`--index-dir`,
by default `$XDG_CACHE_HOME/exdir` or `~/.cache/exdir`); a later run on the
unchanged file opens that database instead of reading the file again.  The
database holds, per entry: its DN as stored, its DN key (exdir.dn), its parent's
key and its RDN keys root first (one-level and subtree scopes are index ranges),
its place in the file (offsets of its record) and in the store's order, and its
attributes (marshal of name -> list of bytes, what ldap3's mock holds in the
in-memory directory, compressed with zlib: the index of a 100,000-mailbox export
was 2.9 times the file, and the attributes were half of it).  A value table indexes objectClass, legacyExchangeDN,
mailNickname, proxyAddresses, homeMDB, homeMTA and msExchHomeServerName by their
matching rule's key (exdir.values.key).

Searches are answered from those indexes where the filter allows (equality,
presence, an initial substring, under AND and OR); the candidates are then
tested by exdir.filters' matcher, the same one the in-memory directory uses, so
an index only narrows a search and never decides it.

Writes keep Active Directory's rules: apply_mods (exdir.backends.base) and the
naming and reference rules of exdir.backends.rules, the same code the in-memory
directory runs.  They go into one SQLite transaction; `save` rewrites the file in
one streaming pass (records of untouched entries copied byte for byte, changed
ones written by exdir.ldif_out.entry_record, new ones at the end) through
exdir.files.rewrite (temporary file, fsync, rename: the original or the new file,
whole), then commits with the new file's identity: killed before the commit, the
index no longer matches the file and is built again; never trusted stale.

Reuse: the index is named by a hash of the file's absolute path and holds a
`complete` row with the file's device, inode, size and mtime (and its SHA-256, for
the save's unchanged-file check).  It is built into a temporary file created
exclusively, and renamed into place only once complete; a database that cannot be
read, lacks that row, or names another file identity is built again.
"""
from __future__ import annotations

import hashlib
import json
import marshal
import os
import sqlite3
import time
import zlib
from array import array
from typing import IO, Any, Callable, Iterable, Iterator, Mapping, Sequence

from ldap3.operation.search import (AND, MATCH_APPROX, MATCH_EQUAL, MATCH_PRESENT,
                                    MATCH_SUBSTRING, OR, ROOT)
from ldap3.utils.ciDict import CaseInsensitiveDict

from .. import dn as dnu
from .. import files
from .. import schema
from .. import values as valuesm
from ..errors import DirectoryError, EntryExists, FileWriteError, InputError, NoSuchEntry
from ..filters import compile_filter, unescape
from ..filters import parse as parse_filter
from ..ldif_in import entry_records
from ..ldif_out import entry_record
from ..values import Value, decode, encode
from . import rules
from .base import Directory, Entry, ModLike, NamingContexts, SimpleMod, Warn, apply_mods
from .memory import (RootCounts, _stderr, count_root, export_entry, implied_parents, pick_root,
                     unknown_names)

FORMAT = 2
"""The database layout's version: an index of another version is built again
(2: attributes compressed, no index of values by entry)."""

INDEXED = ("objectclass", "legacyexchangedn", "mailnickname", "proxyaddresses", "homemdb",
           "homemta", "msexchhomeservername")
"""The attributes whose values are indexed (what exdir's readers search on)."""
_ATTR_ID = {name: i for i, name in enumerate(INDEXED)}

THRESHOLD = 32 * 1024 * 1024
"""`--store auto` uses the index for files larger than this (32 MB)."""

_SEP = "\x01"  # between RDN keys in `rkey` (root first, ending with one)
_BATCH = 256   # entries fetched per query while a search yields


def default_index_dir() -> str:
    """$XDG_CACHE_HOME/exdir, or ~/.cache/exdir (XDG base directories)."""
    base = os.environ.get("XDG_CACHE_HOME") or ""
    if not os.path.isabs(base):  # XDG: a relative value is to be ignored
        base = os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "exdir")


def _rkey(d: dnu.Dn) -> str:
    return "".join(k + _SEP for k in reversed(d.rdn_keys))


def _upper(prefix: str) -> str:
    """The least string greater than every string starting with prefix."""
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)


class _Stored(dict):  # type: ignore[type-arg]
    """An entry's values for the filter matcher: lower-case name -> list of bytes,
    looked up case-insensitively (as the mock's CaseInsensitiveDict)."""

    __slots__ = ()

    def get(self, name: str, default: Any = None) -> Any:  # type: ignore[override]
        return dict.get(self, name.lower(), default)


def _pack(pairs: Iterable[tuple[str, Sequence[bytes]]]) -> bytes:
    # zlib's fastest level: a third of the size at 100,000 mailboxes, and reading
    # it back costs microseconds per entry against the SQLite row's tens
    return zlib.compress(marshal.dumps(tuple((name, tuple(vals)) for name, vals in pairs)), 1)


def _raw(blob: bytes) -> bytes:
    """The marshalled attributes of a stored row (b'' for an entry being added)."""
    return zlib.decompress(blob) if blob else b""


def _load(blob: bytes) -> tuple[tuple[str, tuple[bytes, ...]], ...]:
    return marshal.loads(_raw(blob)) if blob else ()


def _value_key(name: str, raw: bytes) -> Any:
    """values.key(name, decode(name, raw)) with the rule looked up once per attribute
    (the index build's most frequent call)."""
    if valuesm.is_binary(name):
        return raw
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw
    rule = valuesm._rule(name)
    if rule == "exact":
        return raw
    if rule == "dn":
        try:
            return dnu.key(text)
        except InputError:
            pass
    return text.lower()


def _index_rows(entry_id: int, pairs: Iterable[tuple[str, Sequence[bytes]]]
                ) -> Iterator[tuple[int, Any, int]]:
    for name, vals in pairs:
        attr = _ATTR_ID.get(name.lower())
        if attr is None:
            continue
        for raw in vals:
            yield attr, _value_key(name, raw), entry_id


_DDL = """
CREATE TABLE meta(name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE entries(
    id INTEGER PRIMARY KEY,
    key TEXT NOT NULL,
    dn TEXT NOT NULL,
    parent TEXT NOT NULL,
    rkey TEXT NOT NULL,
    pos INTEGER NOT NULL,
    fpos INTEGER NOT NULL,
    gap INTEGER NOT NULL DEFAULT -1,
    start INTEGER NOT NULL DEFAULT -1,
    stop INTEGER NOT NULL DEFAULT -1,
    implied INTEGER NOT NULL DEFAULT 0,
    changed INTEGER NOT NULL DEFAULT 0,
    data BLOB NOT NULL);
CREATE TABLE vals(attr INTEGER NOT NULL, k NOT NULL, entry INTEGER NOT NULL,
    PRIMARY KEY(attr, k, entry)) WITHOUT ROWID;
"""
_INDEXES = """
CREATE UNIQUE INDEX entries_key ON entries(key);
CREATE INDEX entries_parent ON entries(parent);
CREATE INDEX entries_rkey ON entries(rkey);
CREATE INDEX entries_pos ON entries(pos);
"""


# --------------------------------------------------------------------------------------
# The directory
# --------------------------------------------------------------------------------------

class IndexedDirectory(Directory):
    """An LDIF export held in an SQLite index, with AD's write rules."""

    backend = "ldif"

    def __init__(self, path: str, db: sqlite3.Connection, index_path: str,
                 naming: NamingContexts, *, held: files.HeldFile | None,
                 fingerprint: files.Fingerprint, warn: Warn | None, wait_lock: float
                 ) -> None:
        self.path = path
        self.index_path = index_path
        self._db = db
        self.naming = naming
        self._held = held
        self._fingerprint = fingerprint
        self._warn = warn
        self._wait_lock = wait_lock
        self._writes = 0  # bumped by every write: a yielding search refetches after one
        self.dirty = False
        self._dn_attrs = schema.dn_attributes()

    def describe(self) -> str:
        return f"LDIF file {self.path}"  # as the in-memory store says: output is the same

    def __len__(self) -> int:
        return int(self._db.execute("SELECT count(*) FROM entries WHERE implied=0").fetchone()[0])

    # -- reads ------------------------------------------------------------------
    def _row(self, dn: str) -> tuple[int, str, bytes, int] | None:
        try:
            k = dnu.key(dn)
        except InputError:
            return None
        return self._db.execute("SELECT id, dn, data, implied FROM entries WHERE key=?",
                                (k,)).fetchone()

    def _entry(self, dn: str, blob: bytes, attributes: Sequence[str]) -> Entry:
        return _as_entry(dn, _load(blob), _wanted(attributes))

    def read(self, dn: str, attributes: Sequence[str] = ("*",)) -> Entry | None:
        row = self._row(dn)
        if row is None or row[3]:
            return None
        return self._entry(row[1], row[2], attributes)

    def read_many(self, dns: Iterable[str], attributes: Sequence[str] = ("*",)
                  ) -> dict[str, Entry]:
        """In bulk: one query per 500 DNs, by the key index."""
        keys: list[str] = []
        for d in dns:
            try:
                keys.append(dnu.key(d))
            except InputError:
                continue
        out: dict[str, Entry] = {}
        for i in range(0, len(keys), 500):
            chunk = keys[i:i + 500]
            marks = ",".join("?" * len(chunk))
            for key, dn, blob in self._db.execute(
                    f"SELECT key, dn, data FROM entries WHERE implied=0 AND key IN ({marks})",
                    chunk):
                out[key] = self._entry(dn, blob, attributes)
        return out

    def search(self, base: str | None = None, filter: str = "(objectClass=*)",
               attributes: Sequence[str] = ("*",), scope: str = "subtree") -> Iterator[Entry]:
        """Entries under base matching filter, in the store's order (the in-memory
        directory's: the file's, then adds; a rename moves its subtree to the end).
        The candidates come from the indexes where the filter allows; every one is
        tested by exdir.filters' matcher.  The ids are listed before the first entry
        is returned, so that writes between two results are safe."""
        return self._search(base, filter, attributes, scope)

    def search_partitions(self, filter: str, attributes: Sequence[str] = ("*",), *,
                          domain_only: bool = False) -> Iterator[Entry]:
        """Directory.search_partitions, the configuration's subtree left out of the
        domain's search by the index (the base class tests every entry's DN: parsing
        each one was a fifth of a 100,000-mailbox rename's reading)."""
        config = self.naming.configuration
        if not domain_only and config:
            yield from self._search(config, filter, attributes, "subtree")
        if self.naming.domain:
            yield from self._search(self.naming.domain, filter, attributes, "subtree",
                                    outside=config)

    def indexed_values(self, attribute: str, *, keys: Iterable[str] | None = None,
                       prefixes: Sequence[str] = ()) -> Iterator[tuple[int, str, str, str]] | None:
        """Directory.indexed_values from the `vals` table: the entries' rows are joined for
        their DN and place, their attributes never decoded (at 100,000 mailboxes the
        gates' read of every holder was a quarter of a reused index's dry run)."""
        attr_id = _ATTR_ID.get(attribute.lower())
        if attr_id is None or ";" in attribute or valuesm._rule(attribute) != "text":
            return None  # not indexed, or indexed by another rule than lower-case text
        return self._indexed_values(attr_id, keys, prefixes)

    def _partition_sql(self) -> tuple[str, str, list[Any]] | None:
        """(what places an entry in search_partitions' order, what keeps it to the
        partitions, their parameters), or None where neither partition's base is here."""
        config = self._row(self.naming.configuration) if self.naming.configuration else None
        domain = self._row(self.naming.domain) if self.naming.domain else None
        if config is None and domain is None:
            return None
        ranges = []
        for row in (config, domain):
            rk = _rkey(dnu.parse(row[1])) if row is not None else ""
            ranges.append([rk, _upper(rk)] if row is not None else ["", ""])
        # the configuration's partition first, then the domain's (less the configuration)
        order = "(CASE WHEN e.rkey>=? AND e.rkey<? THEN e.pos ELSE e.pos + 1099511627776 END)"
        within = ("((e.rkey>=? AND e.rkey<?) OR (e.rkey>=? AND e.rkey<?))")
        return order, within, ranges[0] + ranges[0] + ranges[1]

    def _indexed_values(self, attr_id: int, keys: Iterable[str] | None, prefixes: Sequence[str]
                        ) -> Iterator[tuple[int, str, str, str]]:
        places = self._partition_sql()
        if places is None:
            return
        order, within, params = places
        head = (f"SELECT {order}, e.dn, e.key, v.k FROM vals v JOIN entries e ON e.id = v.entry "
                f"WHERE v.attr=? AND e.implied=0 AND {within} AND ")
        start = params[:2] + [attr_id] + params[2:]
        wanted = [p for p in prefixes if p]
        if wanted:  # one query, so that a value under two of them comes once
            yield from self._db.execute(
                head + "(" + " OR ".join(["(v.k>=? AND v.k<?)"] * len(wanted)) + ")",
                start + [b for p in wanted for b in (p, _upper(p))])
        if keys is None:
            return
        chunk: list[str] = []
        for key in keys:
            chunk.append(key)
            if len(chunk) == 500:
                yield from self._db.execute(head + f"v.k IN ({','.join('?' * 500)})",
                                            start + chunk)
                chunk = []
        if chunk:
            yield from self._db.execute(head + f"v.k IN ({','.join('?' * len(chunk))})",
                                        start + chunk)

    def _search(self, base: str | None, filter: str, attributes: Sequence[str], scope: str,
                outside: str | None = None) -> Iterator[Entry]:
        """search(), less the subtree at `outside` (a DN) if given."""
        matcher = compile_filter(filter)
        narrowing = _narrow(parse_filter(filter))
        base_row = self._row(base) if base else self._row(self.naming.domain)
        if base_row is None:
            return iter(())
        base_d = dnu.parse(base_row[1])
        if scope == "base":
            where: str = "e.id=?"
            params: list[Any] = [base_row[0]]
        elif scope == "one":
            where, params = "e.parent=?", [base_d.key]
        else:
            rk = _rkey(base_d)
            where, params = "e.rkey>=? AND e.rkey<?", [rk, _upper(rk)]
        sql = f"SELECT e.id, key_hash(e.key) FROM entries e WHERE e.implied=0 AND {where}"
        if outside:
            xk = _rkey(dnu.parse(outside))
            sql += " AND NOT (e.rkey>=? AND e.rkey<?)"
            params += [xk, _upper(xk)]
        if narrowing is not None:
            sql += f" AND e.id IN ({narrowing[0]})"
            params += narrowing[1]
        # each id and its DN key's hash, 16 bytes: a list of (id, key) rows was about 200
        # bytes an entry, 200 MB at a million, held for the whole search
        ids, hashes = array("q"), array("q")
        for entry_id, key_hash in self._db.execute(sql + " ORDER BY e.pos", params):
            ids.append(entry_id)
            hashes.append(key_hash)
        return self._yield(ids, hashes, matcher, attributes)

    def _yield(self, ids: "array[int]", hashes: "array[int]", matcher: Callable[[Any], bool],
               attributes: Sequence[str]) -> Iterator[Entry]:
        """The entries listed (`ids`, with the hash of each one's DN key then) that the
        filter matches, as they are now: one deleted or renamed since is left out (its
        key is no longer the one listed: a rename back, or in case only, is not), one
        modified is read as it is now.  The key is compared by its hash (Python's
        64-bit str hash, salted per process): a renamed entry is read as not renamed
        only if its new key's hash is its old key's, about one chance in 2**64."""
        wanted = _wanted(attributes)
        for i in range(0, len(ids), _BATCH):
            chunk = ids[i:i + _BATCH].tolist()
            seen = self._writes
            rows = self._fetch(chunk)
            for j, entry_id in enumerate(chunk, start=i):
                if self._writes != seen:  # written meanwhile: read the rest as they are now
                    rows = self._fetch(chunk)  # (replaced: a row a save purged is gone)
                    seen = self._writes
                row = rows.get(entry_id)
                if row is None or row[3] or hash(row[0]) != hashes[j]:
                    continue  # deleted, renamed or made implied since the ids were listed
                pairs = _load(row[2])  # once: for the matcher and the entry
                if matcher(_Stored((name.lower(), list(raw)) for name, raw in pairs)):
                    yield _as_entry(row[1], pairs, wanted)

    def _fetch(self, ids: list[int]) -> dict[int, tuple[str, str, bytes, int]]:
        marks = ",".join("?" * len(ids))
        return {r[0]: r[1:] for r in self._db.execute(
            f"SELECT id, key, dn, data, implied FROM entries WHERE id IN ({marks})", ids)}

    # -- writes -----------------------------------------------------------------
    def _require(self, dn: str) -> tuple[int, str, bytes, int]:
        row = self._row(dn)
        if row is None or row[3]:
            raise NoSuchEntry(f"{dn}: no such entry", result="noSuchObject", dn=dn)
        return row

    def _store(self, entry_id: int, values: Iterable[tuple[str, Sequence[Value]]]) -> None:
        """The entry's values replaced (and their index rows), marked changed."""
        pairs = [(n, [encode(v) for v in vs]) for n, vs in values]
        self._unindex(entry_id)
        self._db.execute("UPDATE entries SET data=?, changed=1 WHERE id=?",
                         (_pack(pairs), entry_id))
        self._db.executemany("INSERT OR IGNORE INTO vals VALUES (?,?,?)",
                             _index_rows(entry_id, pairs))

    def _unindex(self, entry_id: int) -> None:
        """The entry's rows of the value table deleted, found from its stored values:
        the table has no index by entry (it doubled the value table's size)."""
        row = self._db.execute("SELECT data FROM entries WHERE id=?", (entry_id,)).fetchone()
        if row is not None:
            self._db.executemany("DELETE FROM vals WHERE attr=? AND k=? AND entry=?",
                                 _index_rows(entry_id, _load(row[0])))

    def _touched(self) -> None:
        self._writes += 1
        self.dirty = True

    def modify(self, dn: str, mods: Sequence[ModLike]) -> None:
        entry_id, stored_dn, blob, _ = self._require(dn)
        pairs = _load(blob)
        names = {n.lower(): n for n, _ in pairs}
        current = {n.lower(): [decode(n, v) for v in raw] for n, raw in pairs}
        new_state = apply_mods(dn, current, mods)  # raises Conflict: nothing done
        rules.check_naming_kept(dn, stored_dn, new_state)
        for mod in mods:
            names.setdefault(mod.attribute.lower(), mod.attribute)
        self._store(entry_id, [(names.get(lower, lower), vals)
                               for lower, vals in new_state.items()])
        self._touched()

    def add(self, dn: str, attributes: Mapping[str, Sequence[Value]]) -> None:
        d = dnu.parse(dnu.normalize(dn))
        key = d.normal
        existing = self._db.execute("SELECT id, implied FROM entries WHERE key=?",
                                    (d.key,)).fetchone()
        if existing is not None and not existing[1]:
            raise EntryExists(f"{dn}: an entry with that name already exists",
                              result="entryAlreadyExists", dn=dn)
        parent = d.parent
        if parent and self._db.execute("SELECT 1 FROM entries WHERE key=?",
                                       (parent.key,)).fetchone() is None:
            raise NoSuchEntry(f"{dn}: the parent {parent.normal} does not exist",
                              result="noSuchObject", dn=dn)
        state = apply_mods(dn, {}, [SimpleMod("add", a, tuple(v)) for a, v in attributes.items()])
        names = {a.lower(): a for a in attributes}
        rules.add_naming_values(key, state, names)
        pairs = [(names[k], vals) for k, vals in state.items()]
        if existing is not None:  # an implied parent becomes an entry, where it stood
            entry_id = existing[0]
            self._db.execute("UPDATE entries SET implied=0, dn=? WHERE id=?", (key, entry_id))
        else:
            pos, fpos = self._db.execute(
                "SELECT coalesce(max(pos),0)+1, coalesce(max(fpos),0)+1 FROM entries").fetchone()
            entry_id = self._db.execute(
                "INSERT INTO entries(key, dn, parent, rkey, pos, fpos, data) "
                "VALUES (?,?,?,?,?,?,?)",
                (d.key, key, parent.key, _rkey(d), pos, fpos, b"")).lastrowid
        self._store(entry_id, pairs)
        self._touched()

    def delete(self, dn: str) -> None:
        entry_id, stored_dn, _, _ = self._require(dn)
        d = dnu.parse(stored_dn)
        if self._db.execute("SELECT 1 FROM entries WHERE parent=? LIMIT 1",
                            (d.key,)).fetchone() is not None:
            raise DirectoryError(f"{dn}: the entry has children", result="notAllowedOnNonLeaf",
                                 dn=dn)
        # a tombstone until the save: its gap (comments, a header) stays in the file
        self._db.execute("UPDATE entries SET implied=2, key=?, parent='', rkey=? WHERE id=?",
                         (f"\x00deleted {entry_id}", f"\x00{entry_id}", entry_id))
        self._unindex(entry_id)
        self._touched()

    def rename(self, dn: str, new_rdn: str, new_superior: str | None = None) -> str:
        """Move the entry and its subtree; DN references follow, as on AD."""
        entry_id, key, blob, _ = self._require(dn)
        parent = dnu.normalize(new_superior) if new_superior else dnu.parent(key)
        if new_superior and self._db.execute(
                "SELECT 1 FROM entries WHERE key=?", (dnu.key(parent),)).fetchone() is None:
            raise NoSuchEntry(f"{dn}: the new parent {new_superior} does not exist",
                              result="noSuchObject", dn=dn)
        new_key = dnu.join(new_rdn, parent)
        if dnu.key(new_key) == dnu.key(key):
            if new_key == key:
                return key
        else:
            taken = self._db.execute("SELECT implied FROM entries WHERE key=?",
                                     (dnu.key(new_key),)).fetchone()
            if taken is not None and not taken[0]:
                raise EntryExists(f"{dn}: cannot rename onto {new_key}: it exists",
                                  result="entryAlreadyExists", dn=dn)
            if taken is not None:  # an implied parent: the renamed entry takes its place
                self._db.execute("DELETE FROM entries WHERE key=?", (dnu.key(new_key),))
        rules.check_not_below_itself(dn, key, parent)
        old_d = dnu.parse(key)
        rk = _rkey(old_d)
        moved = self._db.execute(
            "SELECT id, dn FROM entries WHERE rkey>=? AND rkey<? ORDER BY id=? DESC, pos",
            (rk, _upper(rk), entry_id)).fetchall()
        top = self._db.execute("SELECT coalesce(max(pos),0) FROM entries").fetchone()[0]
        tail = len(key)
        for i, (mid, old) in enumerate(moved, start=1):
            renamed = old[: len(old) - tail] + new_key  # the in-memory store's rule
            nd = dnu.parse(renamed)
            self._db.execute("UPDATE entries SET key=?, dn=?, parent=?, rkey=?, pos=?, changed=1 "
                             "WHERE id=?", (nd.key, renamed, nd.parent.key, _rkey(nd),
                                            top + i, mid))
        target = CaseInsensitiveDict()
        for name, raw in _load(blob):
            target[name] = list(raw)
        rules.swap_naming_values(key, new_key, target)
        self._store(entry_id, list(target.items()))
        self._rewrite_references(key, new_key)
        self._touched()
        return new_key

    def _rewrite_references(self, old: str, new: str) -> None:
        """AD's behaviour: DN-valued attributes pointing into a renamed subtree follow it
        (rules.rewrite_dn_values on every entry whose record may name it)."""
        marker = rules.reference_marker(old)
        hits = [(entry_id, raw) for entry_id, raw in
                ((i, _raw(blob)) for i, blob in
                 self._db.execute("SELECT id, data FROM entries WHERE implied<2"))
                if rules.may_refer(raw, marker)]
        for entry_id, marshalled in hits:
            entry = CaseInsensitiveDict()
            for name, raw in marshal.loads(marshalled):
                entry[name] = list(raw)
            if rules.rewrite_dn_values(entry, old, new, marker, self._dn_attrs):
                self._store(entry_id, list(entry.items()))

    # -- the file ---------------------------------------------------------------
    def iter_stored(self) -> Iterator[tuple[str, dict[str, list[Value]]]]:
        """Every entry the file holds (implied parents aside), in the file's order."""
        for dn, blob in self._db.execute(
                "SELECT dn, data FROM entries WHERE implied=0 ORDER BY fpos"):
            yield dn, {name: [decode(name, v) for v in raw] for name, raw in _load(blob)}

    def save(self) -> None:
        """Rewrite the LDIF file in one streaming pass, atomically (exdir.files.rewrite:
        through a symlink to its target, owner and mode kept), under an exclusive lock
        and only if the file is still what was read; then commit the index's
        transaction with the new file's identity.  Locked as the in-memory directory
        is (exdir.files.locked_for_save)."""
        with files.locked_for_save(self.path, self._held, self._wait_lock) as held:
            files.check_unchanged(held, self._fingerprint)
            old_fd = os.dup(held.fd) if held.fd is not None else None
            assert old_fd is not None
            places: list[tuple[int, int, int, int]] = []
            try:
                fingerprint = files.rewrite(self.path, lambda fh: self._write(fh, old_fd, places),
                                            self._warn, held=held)
            finally:
                os.close(old_fd)
            self._db.executemany("UPDATE entries SET gap=?, start=?, stop=?, changed=0 "
                                 "WHERE id=?", places)
            self._db.execute("DELETE FROM entries WHERE implied=2")
            self._renumber()
            _mark_complete(self._db, os.path.abspath(self.path), fingerprint)
            self._db.commit()
            self._fingerprint = fingerprint
        self.dirty = False

    def _renumber(self) -> None:
        """The store's order as a fresh index of the new file would have it: the file's
        order, then the implied parents, shallowest first."""
        ids = [r[0] for r in self._db.execute(
            "SELECT id FROM entries WHERE implied=0 ORDER BY fpos")]
        implied = sorted(self._db.execute("SELECT id, dn FROM entries WHERE implied=1"),
                         key=lambda r: dnu.depth(r[1]))
        ids += [r[0] for r in implied]
        self._db.executemany("UPDATE entries SET pos=?, fpos=? WHERE id=?",
                             ((i, i, entry_id) for i, entry_id in enumerate(ids, start=1)))

    def _write(self, fh: IO[bytes], fd: int, places: list[tuple[int, int, int, int]]) -> None:
        """The new file: every entry in the file's order, its gap (comments, blank lines,
        special records before it) and untouched record copied from the old file, a
        changed record re-rendered, a deleted one's gap kept and its record left out;
        the old file's tail after the last old record; new entries at the end."""
        out = 0
        last = b"\n\n"
        gap_from: int | None = None  # where the gap of the next entry began (a deletion's)
        tail = int(_meta(self._db, "tail"))
        tail_at: int | None = None

        def put(data: bytes) -> None:
            nonlocal out, last
            if data:
                fh.write(data)
                out += len(data)
                last = (last + data)[-2:]

        def put_tail() -> None:
            nonlocal tail_at, gap_from
            tail_at = out if gap_from is None else gap_from
            put(_pread(fd, tail, None))

        rows = self._db.execute("SELECT id, dn, gap, start, stop, changed, implied, data "
                                "FROM entries WHERE implied!=1 ORDER BY fpos")
        for entry_id, dn, gap, start, stop, changed, state, blob in rows:
            if start < 0 and tail_at is None:  # the first new entry: the old tail first
                put_tail()
                gap_from = tail_at
            new_gap = out if gap_from is None else gap_from
            if start >= 0:  # in the old file: its gap as it was
                put(_pread(fd, gap, start))
            if state == 2:  # deleted: its gap stays, for the next entry to own
                if start >= 0:
                    gap_from = new_gap
                continue
            gap_from = None
            if start < 0 and last != b"\n\n":  # after a record that ended the file
                put(b"\n" if last.endswith(b"\n") else b"\n\n")
            new_start = out
            if changed or start < 0:
                put(entry_record(dn, ((name, [decode(name, v) for v in raw])
                                      for name, raw in _load(blob))).encode("utf-8"))
            else:
                put(_pread(fd, start, stop))
            places.append((new_gap, new_start, out, entry_id))
        if tail_at is None:
            put_tail()
        assert tail_at is not None
        _set_meta(self._db, "tail", str(tail_at if gap_from is None else gap_from))

    def close(self) -> None:
        db, self._db = self._db, None  # type: ignore[assignment]
        if db is not None:
            try:
                db.rollback()  # writes not saved are not kept
                db.close()
            except sqlite3.Error:
                pass
        if self._held is not None:
            self._held.release()


def _wanted(attributes: Sequence[str]) -> set[str] | None:
    """The lower-case names a read asks for; None for every attribute."""
    return None if (not attributes or "*" in attributes) else {a.lower() for a in attributes}


def _as_entry(dn: str, pairs: Iterable[tuple[str, Sequence[bytes]]], wanted: set[str] | None
           ) -> Entry:
    vals: dict[str, list[Value]] = {}
    for name, raw in pairs:
        if wanted is None or name.lower() in wanted:
            vals[name] = [decode(name, v) for v in raw]
    return Entry(dn, vals)


def _pread(fd: int, start: int, stop: int | None) -> bytes:
    if stop is not None:
        return os.pread(fd, stop - start, start) if stop > start else b""
    chunks = []
    pos = start
    while chunk := os.pread(fd, 1 << 20, pos):
        chunks.append(chunk)
        pos += len(chunk)
    return b"".join(chunks)


# --------------------------------------------------------------------------------------
# Filters answered from the indexes
# --------------------------------------------------------------------------------------

def _narrow(node: Any) -> tuple[str, list[Any]] | None:
    """An SQL query of entry ids that holds every entry the filter can match, or None
    (no index helps: every entry in scope is a candidate)."""
    tag = node.tag
    if tag == ROOT:
        return _narrow(node.elements[0])
    if tag in (AND, OR):
        parts = [_narrow(e) for e in node.elements]
        if tag == AND:
            known = [p for p in parts if p is not None]
            if not known:
                return None
            sql = " INTERSECT ".join(f"SELECT * FROM ({p[0]})" for p in known)
            return sql, [v for p in known for v in p[1]]
        if any(p is None for p in parts) or not parts:
            return None
        return (" UNION ".join(f"SELECT * FROM ({p[0]})" for p in parts if p),
                [v for p in parts if p for v in p[1]])
    if tag not in (MATCH_PRESENT, MATCH_EQUAL, MATCH_APPROX, MATCH_SUBSTRING):
        return None
    attr = node.assertion["attr"]
    attr_id = _ATTR_ID.get(attr.lower())
    if attr_id is None or ";" in attr:
        return None
    if tag == MATCH_PRESENT:
        if attr_id == _ATTR_ID["objectclass"]:
            return None  # every entry
        return "SELECT DISTINCT entry FROM vals WHERE attr=?", [attr_id]
    if tag in (MATCH_EQUAL, MATCH_APPROX):
        wanted = decode(attr, unescape(node.assertion["value"]))
        return "SELECT entry FROM vals WHERE attr=? AND k=?", [attr_id, valuesm.key(attr, wanted)]
    initial = node.assertion.get("initial")
    if not initial:
        return None
    text = unescape(initial).decode("utf-8", "replace")
    # the index holds lower-case text for these attributes; only an ASCII prefix is
    # lowered the way the matcher ignores case
    if not text or not text.isascii() or valuesm.is_dn(attr) or schema.is_case_exact(attr):
        return None
    low = text.lower()
    return "SELECT entry FROM vals WHERE attr=? AND k>=? AND k<?", [attr_id, low, _upper(low)]


# --------------------------------------------------------------------------------------
# Building, finding and opening the index
# --------------------------------------------------------------------------------------

def _meta(db: sqlite3.Connection, name: str) -> str:
    row = db.execute("SELECT value FROM meta WHERE name=?", (name,)).fetchone()
    if row is None:
        raise sqlite3.DatabaseError(f"no {name} in the index")
    return str(row[0])


def _set_meta(db: sqlite3.Connection, name: str, value: str) -> None:
    db.execute("INSERT OR REPLACE INTO meta VALUES (?,?)", (name, value))


def _identity(path: str, fp: files.Fingerprint) -> dict[str, Any]:
    return {"format": FORMAT, "path": path, "dev": fp.dev, "ino": fp.ino, "size": fp.size,
            "mtime_ns": fp.mtime_ns}


def _mark_complete(db: sqlite3.Connection, path: str, fp: files.Fingerprint) -> None:
    _set_meta(db, "complete", json.dumps(_identity(path, fp), sort_keys=True))
    _set_meta(db, "digest", fp.digest.hex())


def index_file(index_dir: str, path: str) -> str:
    """Where the index of the LDIF file at path lives: named by its absolute path."""
    name = hashlib.sha256(os.path.abspath(path).encode("utf-8", "surrogateescape")).hexdigest()
    return os.path.join(index_dir, name[:32] + ".sqlite")


def _connect(index_path: str) -> sqlite3.Connection:
    db = sqlite3.connect(index_path, isolation_level="DEFERRED", check_same_thread=False)
    # 32 MB of pages at most: at 100,000 mailboxes 64 MB made the first (building) run
    # peak at 314 MB and the second at 275, 32 MB at 287 and 248 in as much time, 16 MB
    # at 265 and 226 with the build 5 % slower (the OS caches the file's pages anyway)
    db.execute("PRAGMA cache_size=-32768")
    db.execute("PRAGMA temp_store=MEMORY")
    # a search's listing sorts (position, id, hash of the DN key): the key itself in
    # SQLite's in-memory sorter was 60 MB more of a 1,000,000-mailbox plan's peak
    db.create_function("key_hash", 1, hash, deterministic=True)
    return db


def _try_reuse(index_path: str, path: str, st: os.stat_result
               ) -> tuple[sqlite3.Connection, files.Fingerprint] | None | str:
    """The open index if it is complete and names this very file; else why not
    ("" when there is none)."""
    try:
        fd = os.open(index_path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        return ""
    except OSError:
        return "it cannot be read"
    try:
        ist = os.fstat(fd)
        header = os.pread(fd, 100, 0)
    finally:
        os.close(fd)
    if not header.startswith(b"SQLite format 3\x00") or len(header) < 100:
        return "it is no SQLite database"
    page_size = int.from_bytes(header[16:18], "big") or 65536
    if page_size == 1:
        page_size = 65536
    pages = int.from_bytes(header[28:32], "big")
    if pages * page_size != ist.st_size:
        return "it is incomplete"
    try:
        db = _connect(index_path)
        try:
            complete = json.loads(_meta(db, "complete"))
            digest = bytes.fromhex(_meta(db, "digest"))
        except BaseException:
            db.close()
            raise
    except (sqlite3.Error, ValueError):
        return "it is damaged or incomplete"
    fp = files.Fingerprint(st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, digest)
    if complete != _identity(path, fp):
        db.close()
        return "the file changed since it was indexed"
    return db, fp


def _new_temp(index_path: str) -> str:
    """A new, empty temporary file beside index_path, created exclusively."""
    fd, tmp = files.temp_beside(index_path, 0o600)
    os.close(fd)
    return tmp


def _clean_stale(index_path: str) -> None:
    """Temporaries of this index left by builds that were killed (over an hour old)."""
    folder, base = os.path.split(index_path)
    try:
        names = os.listdir(folder)
    except OSError:
        return
    now = time.time()
    for name in names:
        if name.startswith(f".{base}.") and name.endswith(".tmp"):
            full = os.path.join(folder, name)
            try:
                if now - os.lstat(full).st_mtime > 3600:
                    os.unlink(full)
            except OSError:
                pass


Progress = Callable[[int, int], None]


def _lines(stream: IO[bytes], path: str, dn_starts: dict[int, int], state: list[int],
           progress: Progress | None, total: int) -> Iterator[str]:
    """The file's lines without their "\\n", one at a time; the byte offset of every
    line starting `dn:` kept in dn_starts by line number; state[0] the bytes read."""
    n = 0
    pos = 0
    next_report = 0
    for raw in stream:
        n += 1
        if raw[:3].lower() == b"dn:":
            dn_starts[n] = pos
        pos += len(raw)
        state[0] = pos
        if progress is not None and pos >= next_report:
            progress(pos, total)
            next_report = pos + (1 << 22)
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise InputError("not UTF-8 text (base64-encode binary values)",
                             source=path, line=n) from None
        if n == 1 and line.startswith("\ufeff"):
            line = line[1:]
        yield line[:-1] if line.endswith("\n") else line


def build(path: str, index_path: str, held: files.HeldFile, warn: Warn,
          progress: Progress | None = None) -> tuple[files.Fingerprint, list[str]]:
    """Read the held file into a new index at index_path (built into a temporary file,
    renamed into place once complete); the file's fingerprint and the warnings the load
    gave (replayed when the index is reused)."""
    stream = held.reader()
    head = stream.peek(2)[:2]  # type: ignore[attr-defined]
    if head in (b"\xff\xfe", b"\xfe\xff"):
        raise InputError("the indexed store reads UTF-8 exports; this one is UTF-16 "
                         "(use --store memory)", source=path)
    total = os.fstat(held.fd).st_size if held.fd is not None else 0
    tmp = _new_temp(index_path)
    said: list[str] = []

    def say(message: str) -> None:
        said.append(message)
        warn(message)

    try:
        db = sqlite3.connect(tmp, isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode=OFF")
            db.execute("PRAGMA synchronous=OFF")
            db.execute("PRAGMA page_size=8192")
            db.executescript(_DDL)
            db.execute("BEGIN")
            fp, naming = _fill(db, path, stream, held, say, progress, total)
            for statement in _INDEXES.strip().split(";"):
                if statement.strip():
                    db.execute(statement)
            _set_meta(db, "naming", json.dumps([naming.domain, naming.configuration,
                                                naming.schema, list(naming.all)]))
            _set_meta(db, "warnings", json.dumps(said))
            _mark_complete(db, os.path.abspath(path), fp)
            db.execute("COMMIT")
        finally:
            db.close()
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, index_path)  # a link at index_path is replaced, never followed
        files.fsync_folder(os.path.dirname(index_path))
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(exc, sqlite3.Error):  # a full disk (the index's folder or SQLite's
            raise FileWriteError(          # temporary one): one plain line
                f"cannot build the index {files.shown(index_path)}: {exc} (the export is "
                "unchanged; --store memory reads it without one)", path=index_path) from None
        raise
    return fp, said


def _fill(db: sqlite3.Connection, path: str, stream: IO[bytes], held: files.HeldFile,
          warn: Warn, progress: Progress | None, total: int
          ) -> tuple[files.Fingerprint, NamingContexts]:
    dn_starts: dict[int, int] = {}
    state = [0]
    binaries: dict[str, bool] = {}
    root_dse: dict[str, list[Value]] = {}
    attr_names: set[str] = set()
    classes: set[str] = set()
    roots: RootCounts = {}
    last_stop = 0
    entry_id = 0
    batch: list[tuple[Any, ...]] = []
    vals: list[tuple[int, Any, int]] = []

    def flush() -> None:
        try:
            db.executemany("INSERT INTO entries(id, key, dn, parent, rkey, pos, fpos, gap, "
                           "start, stop, data) VALUES (?,?,?,?,?,?,?,?,?,?,?)", batch)
        except sqlite3.IntegrityError:
            seen: set[str] = set()
            for row in batch:
                if row[1] in seen or db.execute("SELECT 1 FROM entries WHERE key=?",
                                                (row[1],)).fetchone():
                    raise InputError(f"{row[2]} appears twice", source=path) from None
                seen.add(row[1])
            raise
        db.executemany("INSERT INTO loaded VALUES (?,?,?)", vals)
        batch.clear()
        vals.clear()

    db.execute("CREATE UNIQUE INDEX entries_key_build ON entries(key)")
    # The value rows go to a temporary table, then into `vals` in its key's order: kept
    # in order row by row, the value index was a quarter of a 100,000-mailbox build
    # (5.3 of 22.9 s).  TEMP: SQLite's own temporary file, so the index file never
    # holds the copy's pages.
    db.execute("CREATE TEMP TABLE loaded(attr INTEGER, k, entry INTEGER)")
    with stream:
        for record in entry_records(_lines(stream, path, dn_starts, state, progress, total),
                                    path):
            stop = state[0]
            start = dn_starts.pop(record.number, last_stop)
            dn_starts.clear()
            key, values = export_entry(record, path, binaries)
            if not key or key.startswith("@"):
                if not key:
                    root_dse = values
                else:
                    warn(f"{path}: skipped the special record {key}")
                continue  # its bytes stay in the next entry's gap
            d = dnu.parse_once(key)
            names = {n.lower() for n in values}
            for rdn_attr, rdn_val in d.rdn_avas:
                if rdn_attr.lower() not in names:
                    values[rdn_attr] = [rdn_val]
                    names.add(rdn_attr.lower())
            attr_names.update(values)
            for n, vs in values.items():
                if n.lower() == "objectclass":
                    classes.update(str(c) for c in vs)
                    break
            entry_id += 1
            pairs = [(n, [encode(v) for v in vs]) for n, vs in values.items()]
            batch.append((entry_id, d.key, key, d.parent.key, _rkey(d), entry_id, entry_id,
                          last_stop, start, stop, _pack(pairs)))
            vals.extend(_index_rows(entry_id, pairs))
            count_root(roots, d)
            last_stop = stop
            if len(batch) >= 2000:
                flush()
        flush()
        fp = held.fingerprint()
    db.execute("INSERT OR IGNORE INTO vals SELECT attr, k, entry FROM loaded "
               "ORDER BY attr, k, entry")
    db.execute("DROP TABLE loaded")
    if progress is not None:
        progress(total, total)
    if not entry_id:  # nothing to be a directory of (empty, comments, a rootDSE only)
        raise InputError("no entries", source=path)
    _set_meta(db, "tail", str(last_stop))
    unknown_names(attr_names, classes, path, warn)
    declared = {k.lower(): str(v[0]) for k, v in root_dse.items() if v}
    domain = dnu.normalize(declared["defaultnamingcontext"]) if declared.get(
        "defaultnamingcontext") else pick_root(roots)
    # The entries whose parent is not in the file, found by the key index rather than
    # a set of every DN (at 1,000,000 entries the set and the list of names held
    # 330 MB through the whole build)
    orphans = [dn for (dn,) in db.execute(
        "SELECT dn FROM entries AS e WHERE NOT EXISTS "
        "(SELECT 1 FROM entries AS p WHERE p.key = e.parent) ORDER BY id")]
    implied = implied_parents(orphans, lambda k: db.execute(
        "SELECT 1 FROM entries WHERE key=?", (dnu.key(k),)).fetchone() is not None, domain)
    db.execute("DROP INDEX entries_key_build")
    for anc in sorted(implied, key=dnu.depth):
        entry_id += 1
        held_values: dict[str, list[Value]] = {attr: [val] for attr, val in dnu.rdn_avas(anc)}
        held_values["objectClass"] = ["top"]
        pairs = [(n, [encode(v) for v in vs]) for n, vs in held_values.items()]
        d = dnu.parse(anc)
        db.execute("INSERT INTO entries(id, key, dn, parent, rkey, pos, fpos, implied, data) "
                   "VALUES (?,?,?,?,?,?,?,1,?)",
                   (entry_id, d.key, anc, d.parent.key, _rkey(d), entry_id, entry_id,
                    _pack(pairs)))
        db.executemany("INSERT OR IGNORE INTO vals VALUES (?,?,?)", _index_rows(entry_id, pairs))
    if implied:
        shown = sorted(implied, key=dnu.depth)
        warn(f"{path}: {len(shown)} parent entries not in the file were implied: "
             + "; ".join(shown[:5]) + (" …" if len(shown) > 5 else ""))
    config_dn = "CN=Configuration," + domain if domain else ""
    config = config_dn
    if domain:
        row = db.execute("SELECT dn FROM entries WHERE key=?", (dnu.key(config_dn),)).fetchone()
        config = row[0] if row else config_dn
    if declared.get("configurationnamingcontext"):
        config = dnu.normalize(declared["configurationnamingcontext"])
    schema_nc = "CN=Schema," + config if config else None
    has_schema = bool(schema_nc) and db.execute(
        "SELECT 1 FROM entries WHERE lower(dn)=lower(?)", (schema_nc,)).fetchone() is not None
    naming = NamingContexts(domain=domain, configuration=config,
                            schema=schema_nc if has_schema else None,
                            all=tuple(x for x in (domain, config) if x))
    return fp, naming


def _naming(db: sqlite3.Connection) -> NamingContexts:
    domain, config, schema_nc, all_ = json.loads(_meta(db, "naming"))
    return NamingContexts(domain=domain, configuration=config, schema=schema_nc, all=tuple(all_))


def open_indexed(path: str, warn: Warn = _stderr, *, lock: bool | None = None,
                 wait_lock: float = 5.0, index_dir: str | None = None,
                 note: Warn | None = None, progress: Progress | None = None
                 ) -> IndexedDirectory:
    """Open an LDIF export through its index in index_dir (built if missing, stale or
    damaged; `note` says why on stderr).  lock as exdir.backends.memory.open_ldif: the
    file is locked before its index is read or built, and held until close() unless
    None."""
    folder = index_dir or default_index_dir()
    try:
        os.makedirs(folder, mode=0o700, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot create the index folder {files.shown(folder)}: "
                         f"{exc.strerror}") from None
    held = files.open_held(path, lock, wait_lock)
    try:
        assert held.fd is not None
        st = os.fstat(held.fd)
        index_path = index_file(folder, path)
        reused = _try_reuse(index_path, os.path.abspath(path), st)
        if isinstance(reused, tuple):
            db, fp = reused
            for message in json.loads(_meta(db, "warnings")):
                warn(message)
        else:
            if reused and note is not None:
                note(f"{files.shown(path)}: indexing again ({reused})")
            _clean_stale(index_path)
            fp, _ = build(path, index_path, held, warn, progress)
            db = _connect(index_path)
        directory = IndexedDirectory(path, db, index_path, _naming(db), held=held,
                                     fingerprint=fp, warn=warn, wait_lock=wait_lock)
    except BaseException:
        held.release()
        raise
    if lock is None:
        held.release()
        directory._held = None
    return directory


def choose_store(path: str, store: str) -> str:
    """"memory" or "index" for --store (auto: the index above THRESHOLD bytes)."""
    if store in ("memory", "index"):
        return store
    if store != "auto":
        raise InputError(f"--store: {store!r} is not memory, index or auto")
    try:
        size = os.stat(path).st_size
    except OSError:
        return "memory"  # open_ldif says what is wrong with the path
    return "index" if size > THRESHOLD else "memory"

