"""The holders of each legacyExchangeDN value, for `legacydn audit`, kept on disk.

The audit reads the recipients twice (exdir.health.audit): the first pass notes each
value's key and the DN holding it, the second names the holders of a value held twice
and the X500 proxies equal to another object's value.  Held in a dict those notes were
about 400 bytes an entry, 400 MB of a 1,000,000-mailbox audit; here they are rows of a
private temporary database (exdir.scratch) and memory stays its page cache.  The
proxies are looked up together once the second pass is over (one join), never one
query per proxy.
"""
from __future__ import annotations

from collections.abc import Iterator

from . import dn as dnu
from .scratch import from_blob, open_scratch, to_blob

_SCHEMA = """
CREATE TABLE holders(n INTEGER PRIMARY KEY, key BLOB, dn BLOB);
CREATE TABLE proxies(n INTEGER PRIMARY KEY, key BLOB, dn BLOB, proxy BLOB);
"""
_BATCH = 4096


class ValueHolders:
    """Each value's holders by its key, in the order they were noted; a context manager.

    add() every holder, then finish(); then shared(), holds() and, after
    add_proxy() for every proxy to look up, collisions()."""

    def __init__(self) -> None:
        self._db = open_scratch(_SCHEMA)
        self._holders: list[tuple[bytes, bytes]] = []
        self._proxies: list[tuple[bytes, bytes, bytes]] = []
        self._finished = False

    def __enter__(self) -> "ValueHolders":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._db.close()

    def add(self, key: str, dn: str) -> None:
        """`dn` holds the value whose key is `key`."""
        self._holders.append((to_blob(key), to_blob(dn)))
        if len(self._holders) >= _BATCH:
            self._flush()

    def _flush(self) -> None:
        if self._holders:
            self._db.executemany("INSERT INTO holders(key, dn) VALUES (?, ?)", self._holders)
            self._holders.clear()
        if self._proxies:
            self._db.executemany("INSERT INTO proxies(key, dn, proxy) VALUES (?, ?, ?)",
                                 self._proxies)
            self._proxies.clear()

    def finish(self) -> None:
        """Every holder is in: the index on keys is built."""
        self._flush()
        if not self._finished:
            self._db.execute("CREATE INDEX holders_key ON holders(key, n)")
            self._finished = True

    def shared(self) -> list[str]:
        """The keys held more than once, in the order their first holder was noted."""
        self.finish()
        return [from_blob(k) for (k,) in self._db.execute(
            "SELECT key FROM holders GROUP BY key HAVING count(*) > 1 ORDER BY min(n)")]

    def holds(self, key: str) -> bool:
        """True where some entry holds the value whose key is `key`."""
        self.finish()
        return self._db.execute("SELECT 1 FROM holders WHERE key = ? LIMIT 1",
                                (to_blob(key),)).fetchone() is not None

    def add_proxy(self, key: str, dn: str, proxy: str) -> None:
        """`dn` has `proxy`, an X500 proxy whose value's key is `key`."""
        self._proxies.append((to_blob(key), to_blob(dn), to_blob(proxy)))
        if len(self._proxies) >= _BATCH:
            self._flush()

    def collisions(self) -> Iterator[tuple[str, str, str]]:
        """(DN, proxy, holder) for each proxy added whose value another entry holds, in
        the order the proxies were added: the first other holder noted.  Another entry:
        another DN, compared as names (a DN spelled otherwise is the same entry)."""
        self.finish()
        query = ("SELECT p.n, p.dn, p.proxy, h.dn FROM proxies p "
                 "JOIN holders h ON h.key = p.key AND h.dn != p.dn ORDER BY p.n, h.n")
        done = None
        for n, dn, proxy, holder in self._db.execute(query):
            if n == done:
                continue
            dn_text, holder_text = from_blob(dn), from_blob(holder)
            if dnu.key(holder_text) != dnu.key(dn_text):
                done = n
                yield dn_text, from_blob(proxy), holder_text
