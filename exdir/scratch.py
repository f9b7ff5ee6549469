"""A private temporary SQLite database: where exdir keeps what grows with the directory.

SQLite's empty filename is a database that SQLite creates exclusively in the
temporary directory, unlinks at once and is gone when the connection closes: nothing
named, nothing a symlink could redirect, nothing left after a kill.  The plan's ledger
(exdir.ledger) and the audit's value holders (exdir.holders) live in one each, so
their memory stays a bounded page cache whatever the size of the organisation.
Nothing in them needs to survive a crash, so there is no journal and no sync.
"""
from __future__ import annotations

import sqlite3


def open_scratch(schema: str, *, page_size: int = 4096, cache_kb: int = 8192
                 ) -> sqlite3.Connection:
    """A new private database holding `schema` (SQL statements), in a transaction
    the caller never commits."""
    db = sqlite3.connect("", isolation_level=None)
    for pragma in (f"page_size={page_size}", "journal_mode=OFF", "synchronous=OFF",
                   f"cache_size=-{cache_kb}", "temp_store=FILE"):
        db.execute(f"PRAGMA {pragma}")
    db.executescript(schema)
    db.execute("BEGIN")
    return db


def to_blob(text: str) -> bytes:
    """Text as stored: UTF-8 with surrogates passed through, so any string a directory
    value can be read as goes in and comes out the same."""
    return text.encode("utf-8", "surrogatepass")


def from_blob(blob: bytes) -> str:
    return bytes(blob).decode("utf-8", "surrogatepass")
