"""Where exdir works around ldap3's MOCK_SYNC: the one module that touches its store.

The in-memory backend (exdir.backends.memory) keeps its entries in ldap3's mock
server, `connection.server.dit` (a CaseInsensitiveDict of DN -> attribute ->
list of bytes).  That attribute is not documented; the mock's documented API is
the Connection operations (add, modify, delete, modify_dn, search) and
`strategy.add_entry`.  Each of those is wrong for exdir in a way measured on the
raw mock by tests/test_mock_gaps.py, or costs measurable speed, so `MockDit` below
reads and writes the dict itself.  Every method says which gap it covers and the
test that shows the gap; if ldap3 closes one, that test fails and the method
here can go back to the documented call.

| gap on the raw mock                                  | test in tests/test_mock_gaps.py              | covered by |
|------------------------------------------------------|----------------------------------------------|------------|
| a failed modify is half applied (shallow copy)       | test_failed_modify_is_half_applied           | `put`      |
| a delete differing in case raises ValueError         | test_case_differing_delete_raises            | `put`      |
| an added duplicate value is kept twice               | test_duplicate_value_accepted                | `put`      |
| add_entry rewrites objectClass (superclasses, a set) | test_add_entry_rewrites_object_classes       | `put`      |
| an add under a missing parent succeeds               | test_add_under_missing_parent_accepted       | `require_parent` |
| a delete of an entry with children succeeds          | test_delete_of_non_leaf_accepted             | `require_leaf` |
| a rename onto an existing DN overwrites it           | test_rename_onto_existing_entry_overwrites   | `require_free` |
| a rename of a non-leaf leaves its children behind    | test_rename_of_non_leaf_leaves_children_behind | `move`   |
| a move with a new superior ignores the new RDN       | test_move_with_new_superior_ignores_new_rdn  | `move`     |
| an escaped `*` in a filter is a wildcard             | test_filter_escaped_star_is_a_wildcard       | `scan`     |
| an escaped parenthesis in a substring is refused     | test_filter_escaped_parenthesis_refused      | `scan`     |
| a one-level search returns its base and misses RDNs holding an escaped comma | test_one_level_search_includes_base_misses_escaped_comma | `scan` |

What is exdir's own and not the mock's: the filter evaluation (exdir.filters) and
the scan in `scan` are exdir's code; neither has an index, so a search costs a
pass over every key of the store (the mock's own search would too, and then build
its response objects: see `read`).  Active Directory's modify rules
(exdir.backends.base.apply_mods), naming values, references following a rename and
implied parents are exdir's emulation of AD, not mock workarounds: they live in
exdir.backends.memory.
"""
from __future__ import annotations

from typing import Iterator, Mapping, Sequence, TypeAlias

from ldap3 import Connection
from ldap3.utils.ciDict import CaseInsensitiveDict

from .. import dn as dnu
from ..errors import DirectoryError, EntryExists, NoSuchEntry
from ..filters import Matcher
from ..values import Value, encode

Stored: TypeAlias = CaseInsensitiveDict
"""An entry as the mock holds it: attribute name (any case) -> list of bytes, and the
operational `entryDN` the mock adds to every entry."""

SCHEMA_KEY = "cn=schema"
"""The mock's own entry (its schema), in every store: never an entry of the file."""


class MockDit:
    """The mock's entry store, reached only through here; `implied` holds the keys of
    parents a partial export did not contain (stored, so that adds and moves under
    them work, but not entries: reads and saves skip them)."""

    def __init__(self, connection: Connection) -> None:
        self._dit: CaseInsensitiveDict = connection.server.dit
        self.implied: set[str] = set()

    # -- reads ----------------------------------------------------------------------
    def stored_key(self, key: str) -> str:
        """The key the entry named key is stored under: key itself, or, for a name with
        a multi-valued RDN written in another AVA order, the stored key with the same
        exdir.dn key; key when nothing matches.

        Gap covered (test_a_multi_valued_rdn_is_one_name_in_either_ava_order): the
        mock's store is a CaseInsensitiveDict, which folds case but keeps the AVAs in
        the order written, while RFC 4514 makes them a set.  A scan, but only for a
        name with a '+' that is not stored as written: rare, and never in a loop."""
        if key in self._dit or "+" not in key:
            return key
        wanted = dnu.key(key)
        return next((k for k in self._dit.keys() if "+" in k and dnu.key(k) == wanted), key)

    def get(self, key: str) -> Stored | None:
        """The stored entry at key (implied parents included), or None.

        A dict lookup, not `connection.search(key, scope=BASE)`: the mock's search is
        correct for a base read but parses the filter, copies every attribute into a
        response and ldap3 then decodes it through the schema.  Measured side by side
        on the 10k benchmark lab (benchmarks/README.md, "The mock's search against
        exdir's reads"): reading every entry by DN took about 4 times as long through
        the mock's search, a full read through its paged search about 14 times.
        """
        return self._dit.get(key)

    def __getitem__(self, key: str) -> Stored:
        """The stored entry at key (KeyError if none): `get`'s dict lookup."""
        return self._dit[key]

    def __contains__(self, key: str) -> bool:
        return key in self._dit

    def exists(self, key: str) -> bool:
        """True where key is stored and is not an implied parent."""
        return key in self._dit and key not in self.implied

    def keys(self) -> list[str]:
        """Every key of the file's entries and implied parents, in store order."""
        return [k for k in self._dit.keys() if k != SCHEMA_KEY]

    def values(self) -> Iterator[Stored]:
        for key, stored in self._dit.items():
            if key != SCHEMA_KEY:
                yield stored

    def __len__(self) -> int:
        """The number of entries (implied parents and the mock's schema entry aside)."""
        return len(self._dit) - 1 - len(self.implied)

    def below(self, key: str) -> list[str]:
        """Keys of the whole subtree under key (key itself excluded), in store order."""
        suffix = "," + key.lower()
        return [k for k in self._dit.keys() if k.lower().endswith(suffix)]

    def scan(self, base: str, scope: str, matcher: Matcher) -> Iterator[tuple[str, Stored]]:
        """(key, stored) of the entries in scope of base that the matcher accepts.

        Gaps covered (tests test_filter_escaped_star_is_a_wildcard,
        test_filter_escaped_parenthesis_refused,
        test_one_level_search_includes_base_misses_escaped_comma): the mock's search
        re-parses the filter and loses its escapes, and its one-level scope is
        decided on commas in the DN text.  So the filter is exdir.filters' (compiled
        once, evaluated per entry) and the scope is decided on parsed DNs.  This is
        exdir's own scan over every key (no index: neither has the mock).  The keys
        are listed before the first entry is returned, so that writes between two
        results are safe."""
        if scope == "base":
            keys = [base]
        elif scope == "one":
            base_key = dnu.key(base)
            keys = [k for k in self.below(base) if dnu.key(dnu.parent(k)) == base_key]
        else:  # the base where it stands in store order (a file may hold children first)
            base_lower, suffix = base.lower(), "," + base.lower()
            keys = [k for k in self._dit.keys()
                    if k.lower() == base_lower or k.lower().endswith(suffix)]
        implied = self.implied
        for key in keys:
            stored = self._dit.get(key)
            if stored is None or key in implied or key == SCHEMA_KEY:
                continue
            if matcher(stored):
                yield key, stored

    # -- writes ---------------------------------------------------------------------
    def put(self, key: str, values: Mapping[str, Sequence[Value]]) -> Stored:
        """Store the entry at key with exactly these values (replacing any held).

        Gaps covered (test_failed_modify_is_half_applied,
        test_case_differing_delete_raises, test_duplicate_value_accepted,
        test_add_entry_rewrites_object_classes): a modify through the mock can be
        left half applied, fails with ValueError on a delete differing in case and
        keeps duplicate values; add_entry rewrites objectClass (adds the superclass
        chain, in a set's order: a saved file would differ from the one read) and
        checks each value with the schema's validators.  The caller works the new values out with AD's rules first
        (apply_mods), then they replace the entry at once."""
        entry = CaseInsensitiveDict()
        for name, vals in values.items():
            entry[name] = [encode(v) for v in vals]
        entry["entryDN"] = [key.encode("utf-8")]
        self._dit[key] = entry
        return entry

    def patch(self, key: str, changed: Mapping[str, Sequence[Value]],
              removed: Sequence[str]) -> None:
        """Give the entry at key these attributes' values and drop `removed`, the rest
        untouched: put's whole-entry replacement for a modify whose new values apply_mods
        has worked out for the attributes it names (an attribute already held keeps its
        place, a new one goes last, as put orders them)."""
        entry = self._dit[key]
        for name, vals in changed.items():
            entry[name] = [encode(v) for v in vals]
        for name in removed:
            del entry[name]

    def remove(self, key: str) -> None:
        """Drop the entry at key (the caller has checked require_leaf)."""
        del self._dit[key]

    def move(self, key: str, new_key: str) -> dict[str, str]:
        """Move the entry at key and its whole subtree to new_key; old key -> new key.

        Gaps covered (test_rename_of_non_leaf_leaves_children_behind,
        test_move_with_new_superior_ignores_new_rdn): the mock's modify_dn moves only
        the entry itself and, given a new superior, keeps the old RDN.  Only the keys
        and entryDN change here; naming values are the caller's (AD's rules)."""
        moved = [key] + self.below(key)
        tail = len(key)
        renames = {old: old[: len(old) - tail] + new_key for old in moved}
        entries = {old: self._dit.pop(old) for old in moved}
        for old, entry in entries.items():
            entry["entryDN"] = [renames[old].encode("utf-8")]
            self._dit[renames[old]] = entry
        self.implied = {renames.get(k, k) for k in self.implied}
        return renames

    # -- the checks the mock does not make ------------------------------------------
    def require_parent(self, dn: str, parent: str, what: str = "the parent",
                       named: str | None = None) -> None:
        """NoSuchEntry unless parent is stored (an implied parent counts); the message
        names it as `named` if given (the DN as the caller wrote it).

        Gap covered (test_add_under_missing_parent_accepted): the mock adds an
        entry under a parent that does not exist."""
        if parent and self.stored_key(parent) not in self._dit:
            raise NoSuchEntry(f"{dn}: {what} {named or parent} does not exist",
                              result="noSuchObject", dn=dn)

    def require_leaf(self, dn: str, key: str) -> None:
        """DirectoryError (notAllowedOnNonLeaf) if key has children.

        Gap covered (test_delete_of_non_leaf_accepted): the mock deletes an entry
        with children and leaves them orphaned."""
        if self.below(key):
            raise DirectoryError(f"{dn}: the entry has children", result="notAllowedOnNonLeaf",
                                 dn=dn)

    def require_free(self, dn: str, new_key: str) -> None:
        """EntryExists if new_key names an entry.

        Gap covered (test_rename_onto_existing_entry_overwrites): the mock's
        modify_dn replaces an entry already at the new DN."""
        if self.exists(self.stored_key(new_key)):
            raise EntryExists(f"{dn}: cannot rename onto {new_key}: it exists",
                              result="entryAlreadyExists", dn=dn)
