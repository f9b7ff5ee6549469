"""The Directory interface every backend implements, and what all backends share.

`Entry` (an entry as read), `NamingContexts` (where the partitions start),
`apply_mods` (Active Directory's modify rules, used by the in-memory backend to
write and by the apply engine to predict) and `Directory` itself.  What a backend
must implement and what this class gives it for free is in exdir/backends/__init__.py.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator, Mapping, Protocol, Sequence

from .. import dn as dnu
from .. import schema
from ..errors import Conflict, InputError
from ..values import Value, _index_of

Write = tuple  # ("modify", dn, mods) | ("rename", dn, rdn, superior) | ("add", dn, attrs) | ("delete", dn)
"""One write for Directory.write_many."""
Warn = Callable[[str], None]
"""Where a backend reports what it kept or skipped while loading (stderr by default)."""

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
    """What every backend offers: reads, AD-semantics writes, the naming contexts.

    A backend sets `backend`, `naming` (and `is_active_directory` where true) and
    implements the methods that raise NotImplementedError here; the rest is built
    on them.  DNs given may be in any spelling exdir.dn accepts; DNs returned are
    as the directory holds them.  Errors are exdir.errors types, never ldap3's.
    """

    backend: str = "abstract"
    """"ldif" (a file, in memory), "ldap" (a server); apply and checks read it."""
    is_active_directory: bool = False
    naming: NamingContexts

    @property
    def read_only(self) -> bool:
        """True where this is a read-only domain controller: it may be read (and
        checked by `replication check`), never written (the apply's read-only gate)."""
        return False

    @property
    def follows_dn_references(self) -> bool:
        """True where a rename makes DN-valued attributes follow (AD and the LDIF lab)."""
        return self.is_active_directory or self.backend == "ldif"

    # -- reads (a backend implements search, read, read_many) -----------------------
    def search(self, base: str | None = None, filter: str = "(objectClass=*)",
               attributes: Sequence[str] = ("*",), scope: str = "subtree") -> Iterator[Entry]:
        """Entries under base (the domain if None) matching the RFC 4515 filter, one at
        a time; scope "base", "one" or "subtree".  A base that does not exist yields
        nothing.  attributes ("*" for all) limits the values returned, not the filter.
        Writes between two results must be safe (the apply engine interleaves them)."""
        raise NotImplementedError

    def read(self, dn: str, attributes: Sequence[str] = ("*",)) -> Entry | None:
        """The entry at dn, or None if there is none."""
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

    def indexed_values(self, attribute: str, *, keys: Iterable[str] | None = None,
                       prefixes: Sequence[str] = ()) -> Iterator[tuple[int, str, str, str]] | None:
        """(place, DN, the DN's key, the value's key) of each text value of `attribute`
        in the entries search_partitions reads whose key (exdir.values.key) starts with
        one of `prefixes` (lower-case) or, given `keys` instead, is one of them (each
        given once): from the store's own index of values, the entries not read, each
        value once.  `place` sorts the entries as search_partitions meets them; the rows
        come in no order.  None where the store keeps no such index (a server's search
        is its index, the in-memory store has none): the caller reads the entries."""
        return None

    def read_many(self, dns: Iterable[str], attributes: Sequence[str] = ("*",)
                  ) -> dict[str, Entry]:
        """Entries by dn.key(); DNs that do not exist are absent from the result.
        A backend answers in bulk (a server: OR-filters, never one search per DN)."""
        raise NotImplementedError

    def exists(self, dn: str) -> bool:
        return self.read(dn, ("objectClass",)) is not None

    # -- writes (a backend implements all four, with Active Directory's rules) ------
    def modify(self, dn: str, mods: Sequence[ModLike]) -> None:
        """Apply mods atomically, with apply_mods' rules: all or nothing; Conflict when a
        value to delete is missing, a value to add is there, a single-valued attribute
        would hold two or the entry's naming value would go; NoSuchEntry if no entry."""
        raise NotImplementedError

    def add(self, dn: str, attributes: Mapping[str, Sequence[Value]]) -> None:
        """Create an entry; EntryExists if the DN is taken, NoSuchEntry if its parent
        is missing.  The RDN's values are added to the attributes if absent."""
        raise NotImplementedError

    def delete(self, dn: str) -> None:
        """Delete a leaf; NoSuchEntry if absent, DirectoryError (notAllowedOnNonLeaf)
        if it has children."""
        raise NotImplementedError

    def rename(self, dn: str, new_rdn: str, new_superior: str | None = None) -> str:
        """Rename and/or move the entry with its subtree (deleteoldrdn: the old naming
        value goes); the new DN.  EntryExists if the new DN is taken, NoSuchEntry if
        the entry or the new superior is missing.  DN-valued attributes pointing
        into the subtree follow where follows_dn_references says so."""
        raise NotImplementedError

    def write_many(self, writes: Sequence["Write"],
                   on_result: Callable[[int, BaseException | None], bool]) -> None:
        """Carry out writes in their order; on_result(i, error) once the i-th has its reply
        (error None: made), and a False answer stops new writes.

        Each write is ("modify", dn, mods) | ("rename", dn, new_rdn, new_superior) |
        ("add", dn, attributes) | ("delete", dn).  This default makes them one at a time
        through the single-entry methods (so a backend, or a wrapper that overrides only
        those, inherits it); a server backend may keep several in flight, provided the
        directory ends as the sequence would leave it: only consecutive modifies of
        distinct entries overlap, anything else waits for what is in flight.  Every write
        sent gets its on_result, also after a stop; the call returns only then.  A
        failure is reported, never raised (KeyboardInterrupt aside)."""
        for i, write in enumerate(writes):
            try:
                self.write_one(write)
            except Exception as exc:  # noqa: BLE001 - reported to the caller
                if not on_result(i, exc):
                    return
                continue
            if not on_result(i, None):
                return

    def write_one(self, write: "Write") -> None:
        """One write of write_many's form, through the single-entry methods."""
        kind = write[0]
        if kind == "modify":
            self.modify(write[1], write[2])
        elif kind == "rename":
            self.rename(write[1], write[2], write[3])
        elif kind == "add":
            self.add(write[1], write[2])
        elif kind == "delete":
            self.delete(write[1])
        else:
            raise ValueError(f"unknown write {kind!r}")

    def save(self) -> None:
        """Make writes durable (the LDIF backend rewrites its file; servers need nothing)."""

    def close(self) -> None:
        """Release what the directory holds (connection, file lock); idempotent."""

    def __enter__(self) -> "Directory":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def describe(self) -> str:
        """What the directory is, for messages ("LDIF file x.ldif")."""
        raise NotImplementedError


@dataclass
class SimpleMod:
    """A ModLike of plain fields, for callers that have no exdir.plan.Mod (the in-memory
    backend's add, tests)."""

    op: str
    attribute: str
    values: tuple[Value, ...] = field(default_factory=tuple)
