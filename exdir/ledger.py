"""The ledger of a plan: what the safety gates look at, and a dry run's rendered steps,
kept in a private temporary SQLite database instead of Python objects.

A rename of a 1,000,000-mailbox organisation is a plan of a million steps.  Held as
Plan objects a step was about 1.5 KB, and the gates' own sets (values deleted, given,
freed) as much again: the 100,000-mailbox dry run peaked at 519 MB, and a million
could not have been checked in the 500 MB the issue allows.  A ledger takes each step
as the planner makes it, notes the few facts the gates need of it, renders it once
where a dry run will print it, and keeps nothing else; memory no longer grows with the
plan.  `apply.run` and `gates.evaluate` build one from a Plan the same way, so the
preview and the apply meet the same gates through the same code.

The database is exdir.scratch's: private, on disk, gone when the ledger closes.  Text
is stored as UTF-8 with surrogates passed through, so any string a plan can hold goes
in and comes out the same.

Order: a planner may give a step a sort key (`order`); the ledger then prints the
steps with keys sorted among their neighbours, up to the next step without one (a
rename plan is its modrdn, then every value step sorted by where its entry sits).
Steps with a key must be Modify steps of distinct entries, which no gate fact depends
on the order of (the origin of a Modify does not depend on other modifies); facts are
noted as steps come and renumbered to the printed order once all are in, so a fact's
`seq` is its step's number in the plan as printed and applied.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from . import dn as dnu
from . import values as vals
from .legacydn import has_prefix
from .ldif_out import render_record
from .plan import Add, Change, Modify, Plan, Rename, RenameTracker
from .scratch import from_blob, open_scratch, to_blob
from .values import Value

Order = tuple[int, int, str]
"""A step's sort key: two numbers, then a text (compared as Python compares str)."""

Step = tuple[Order | None, Change]
"""A change as a planner makes it, with its sort key or None."""


def in_order(steps: Iterable[Step]) -> Iterator[Change]:
    """The changes in the order a ledger prints them: steps with a sort key sorted
    (stably) among their neighbours, up to the next step without one.  What a Plan
    built from a planner's steps holds, step for step the ledger's output."""
    run: list[tuple[Order, int, Change]] = []
    for order, change in steps:
        if order is None:
            run.sort(key=lambda r: (r[0][0], r[0][1], r[0][2], r[1]))
            yield from (c for _, _, c in run)
            run.clear()
            yield change
        else:
            run.append((order, len(run), change))
    run.sort(key=lambda r: (r[0][0], r[0][1], r[0][2], r[1]))
    yield from (c for _, _, c in run)


_DDL = """
CREATE TABLE steps(seq INTEGER PRIMARY KEY, block INTEGER, a INTEGER, b INTEGER, c BLOB,
                   text BLOB);
CREATE TABLE origins(key BLOB PRIMARY KEY) WITHOUT ROWID;
CREATE TABLE homes(n INTEGER PRIMARY KEY, seq INTEGER, key BLOB, op TEXT, value BLOB,
                   dn BLOB);
CREATE TABLE relabels(seq INTEGER, key BLOB, old BLOB, new BLOB);
CREATE TABLE written(n INTEGER PRIMARY KEY, seq INTEGER, dn BLOB, attribute TEXT,
                     value BLOB, low BLOB);
CREATE TABLE deleted(key BLOB, attribute TEXT, vkey BLOB,
                     PRIMARY KEY(key, attribute, vkey)) WITHOUT ROWID;
CREATE TABLE wiped(key BLOB, attribute TEXT, PRIMARY KEY(key, attribute)) WITHOUT ROWID;
CREATE TABLE given(n INTEGER PRIMARY KEY, seq INTEGER, low BLOB, origin_key BLOB,
                   step_key BLOB, step_dn BLOB, value BLOB);
CREATE TABLE freed(key BLOB, form TEXT, low BLOB, PRIMARY KEY(key, form, low)) WITHOUT ROWID;
CREATE TABLE held(n INTEGER PRIMARY KEY, place INTEGER, key BLOB, dn BLOB, form TEXT,
                  value BLOB, low BLOB);
CREATE TABLE under(n INTEGER PRIMARY KEY, place INTEGER, key BLOB, dn BLOB, attribute TEXT,
                   lattr TEXT, value BLOB, vkey BLOB);
"""

_INDEXES = """
CREATE INDEX given_low ON given(low, seq);
CREATE INDEX homes_key ON homes(key, seq, n);
CREATE INDEX relabels_key ON relabels(key);
"""

_FLUSH = 4096  # steps between two writes of the buffered rows


_b, _s = to_blob, from_blob


def legacy_key(value: str) -> str:
    """A legacyExchangeDN value (or an X500 proxy's) as Active Directory compares it."""
    return str(vals.key("legacyExchangeDN", value))


def legacy_form(attribute: str, value: Value) -> tuple[str, str] | None:
    """("legacy" | "x500", the legacyExchangeDN value) of a value, or None."""
    if not isinstance(value, str):
        return None
    if attribute.lower() == "legacyexchangedn":
        return "legacy", value
    if attribute.lower() == "proxyaddresses" and value[:5].upper() == "X500:":
        return "x500", value[5:]
    return None


def added_values(change: Change) -> list[tuple[str, tuple[Value, ...]]]:
    """(lower-case attribute, values) a change gives its entry."""
    if isinstance(change, Modify):
        return [(m.attribute.lower(), m.values) for m in change.mods if m.op in ("add", "replace")]
    if isinstance(change, Add):
        return [(n.lower(), v) for n, v in change.attributes]
    return []


_PREFIXED = ("legacyexchangedn", "msexchhomeservername")


class PlanLedger:
    """The facts of one plan (see the module's docstring); a context manager.

    keep_text: render each step for printing (a dry run); without it only the facts
    are kept (the gates of a Plan already in memory)."""

    def __init__(self, keep_text: bool = False) -> None:
        self.keep_text = keep_text
        self.count = 0
        self.renames: list[Rename] = []
        self.has_homes = False
        self._tracker = RenameTracker()
        self._block = 0
        self._ordered = False
        self._finished = False
        self._rows: dict[str, list[tuple[Any, ...]]] = {t: [] for t in _INSERT}
        self._stale: dict[str, list[str]] = {}
        self._given: int | None = None
        # 32 KB pages: the steps' rendered text and the facts' keys fill 4 KB pages a few
        # rows each; a 100,000-mailbox rename's ledger took 6-13% less time (three runs
        # side by side, 12.0-14.7 s against 11.2-12.8 s), in the same 8 MB of cache
        self._db = open_scratch(_DDL, page_size=32768)

    @classmethod
    def of(cls, plan: Plan) -> "PlanLedger":
        """The facts of a Plan held in memory (its origins as the Plan found them)."""
        ledger = cls()
        try:
            for change, origin in zip(plan.changes, plan.origins()):
                ledger.add(change, origin=origin)
            ledger.finish()
        except BaseException:
            ledger.close()
            raise
        return ledger

    def __enter__(self) -> "PlanLedger":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._db.close()

    def __len__(self) -> int:
        return self.count

    # --- taking steps --------------------------------------------------------------

    def add(self, change: Change, order: Order | None = None, origin: str | None = None
            ) -> None:
        """One step, in the order the planner makes it (see the module's docstring).
        A modify that changes nothing is dropped, as Plan drops it."""
        if isinstance(change, Modify) and change.is_noop():
            return
        if order is not None and not isinstance(change, Modify):
            raise TypeError("only Modify steps may be given a sort order")
        if self._finished:
            raise RuntimeError("the ledger is finished")
        if origin is None:
            origin = self._tracker.step(change)
        self.count += 1
        seq = self.count
        if order is None:
            self._block += 1
            row: tuple[Any, ...] = (seq, self._block, -1, 0, b"")
        else:
            self._ordered = True
            row = (seq, self._block, int(order[0]), int(order[1]), _b(order[2]))
        if self.keep_text or self._ordered:
            text = _b(render_record(change)) if self.keep_text else None
            self._rows["steps"].append((*row, text))
        self._note(seq, change, origin)
        if seq % _FLUSH == 0:
            self._flush()

    def _note(self, seq: int, change: Change, origin: str) -> None:
        rows = self._rows
        okey = _b(dnu.key(origin))
        rows["origins"].append((okey,))
        if isinstance(change, Rename):
            self.renames.append(change)
            return
        step_dn = _b(change.dn)
        for attribute, values in added_values(change):
            if attribute in _PREFIXED:
                rows["written"].extend((seq, step_dn, attribute, _b(v), _b(v.lower()))
                                       for v in values if isinstance(v, str))
            for v in values:
                form = legacy_form(attribute, v)
                if form is not None:
                    rows["given"].append((seq, _b(legacy_key(form[1])), okey,
                                          _b(dnu.key(change.dn)), step_dn, _b(form[1])))
        if not isinstance(change, Modify):
            return
        old = new = None
        for mod in change.mods:
            lower = mod.attribute.lower()
            if lower == "homemdb":
                self.has_homes = True
                rows["homes"].extend((seq, okey, mod.op, _b(v), step_dn)
                                     for v in mod.values if isinstance(v, str))
            if lower == "legacyexchangedn":
                text = [v for v in mod.values if isinstance(v, str)]
                if mod.op == "delete" and text and old is None:
                    old = text[0]
                elif mod.op != "delete" and text and new is None:
                    new = text[0]
            if mod.op in ("delete", "replace"):
                for v in mod.values:
                    if isinstance(v, str):
                        rows["deleted"].append((okey, lower, _b(str(vals.key(mod.attribute, v)))))
                if not mod.values or mod.op == "replace":
                    rows["wiped"].append((okey, lower))
            if mod.op == "delete":
                for v in mod.values:
                    form = legacy_form(mod.attribute, v)
                    if form is not None:
                        rows["freed"].append((okey, form[0], _b(legacy_key(form[1]))))
        if old is not None and new is not None:
            rows["relabels"].append((seq, okey, _b(old), _b(new)))

    def _flush(self) -> None:
        for table, rows in self._rows.items():
            if rows:
                self._db.executemany(_INSERT[table], rows)
                rows.clear()

    def finish(self) -> "PlanLedger":
        """Every step is in: facts renumbered to the printed order, indexes built (and
        what the gates read of the directory since, written)."""
        self._flush()
        if self._finished:
            return self
        db = self._db
        if self._ordered:
            db.execute("CREATE TABLE rank(new INTEGER PRIMARY KEY, old INTEGER UNIQUE)")
            db.execute("INSERT INTO rank(new, old) SELECT ROW_NUMBER() OVER "
                       "(ORDER BY block, a, b, c, seq), seq FROM steps")
            for table in ("homes", "relabels", "written", "given"):
                db.execute(f"UPDATE {table} SET seq = (SELECT new FROM rank "
                           f"WHERE old = {table}.seq)")
        db.executescript(_INDEXES)
        self._finished = True
        return self

    # --- what a dry run prints ---------------------------------------------------------

    def parts(self) -> Iterator[str]:
        """Each step's record, in the plan's order (keep_text ledgers only)."""
        self.finish()
        if self._ordered:
            query = ("SELECT s.text FROM rank r JOIN steps s ON s.seq = r.old "
                     "ORDER BY r.new")
        else:
            query = "SELECT text FROM steps ORDER BY seq"
        for (text,) in self._db.execute(query):
            yield _s(text)

    def render_parts(self) -> Iterator[str]:
        """The plan as exdir.ldif_out.render_parts writes it (no header)."""
        yield "version: 1\n"
        for text in self.parts():
            yield "\n" + text

    # --- what the gates ask ------------------------------------------------------------

    def relabels(self, keys: Iterable[str]) -> list[tuple[str, str, str]]:
        """(origin key, old, new) of the first legacyExchangeDN deleted and given by each
        modify of the entries with these keys (before the plan), in plan order."""
        self.finish()
        wanted = sorted({_b(k) for k in keys})
        marks = ",".join("?" * len(wanted))
        return [(_s(k), _s(o), _s(n)) for k, o, n in self._db.execute(
            f"SELECT key, old, new FROM relabels WHERE key IN ({marks}) ORDER BY seq", wanted)]

    def written_under(self, prefix: str) -> list[str]:
        """'DN (attribute, written by the plan)' for each legacyExchangeDN or
        msExchHomeServerName value the plan writes under prefix; asked once per prefix."""
        low = prefix.lower()
        found = self._stale.get(low)
        if found is None:
            self.finish()
            # a value under prefix lower-cases to a text that begins with it (has_prefix
            # lower-cases no more than the prefix's length): SQL finds those, has_prefix
            # says which (a rename writes 200,000 values, nearly none under the old one)
            found = [f"{_s(dn)} ({attribute}, written by the plan)"
                     for dn, attribute, value in self._db.execute(
                         "SELECT dn, attribute, value FROM written WHERE low >= ? AND low < ? "
                         "ORDER BY seq, n", (_b(low), _b(low) + b"\xff"))  # no UTF-8 has 0xff
                     if has_prefix(_s(value), prefix)] if low else []
            self._stale[low] = found
        return found

    def homes(self) -> Iterator[tuple[str, str, str, str]]:
        """(entry key, first homeMDB it loses, last it gains, the DN of that step) per
        entry that loses and gains one, in the order each first gains one: a move split
        over two steps is one move."""
        self.finish()
        query = """
            SELECT g.key,
                   (SELECT value FROM homes h WHERE h.key = g.key AND h.op = 'delete'
                    ORDER BY seq, n LIMIT 1),
                   (SELECT value FROM homes h WHERE h.key = g.key AND h.op != 'delete'
                    ORDER BY seq DESC, n DESC LIMIT 1),
                   (SELECT dn FROM homes h WHERE h.key = g.key AND h.op != 'delete'
                    ORDER BY seq DESC, n DESC LIMIT 1)
            FROM (SELECT key, MIN(seq * 4294967296 + n) AS first FROM homes
                  WHERE op != 'delete' GROUP BY key) g
            ORDER BY g.first"""
        for key, lost, gained, name in self._db.execute(query):
            if lost is not None:
                yield _s(key), _s(lost), _s(gained), _s(name)

    def given_values(self) -> int:
        """How many distinct values (as AD compares them) the plan gives (counted once:
        the steps are all in)."""
        self.finish()
        if self._given is None:
            self._given = int(self._db.execute(
                "SELECT COUNT(DISTINCT low) FROM given").fetchone()[0])
        return self._given

    def given_keys(self) -> Iterator[str]:
        """Each value the plan gives, as AD compares it (legacy_key), once."""
        self.finish()
        for (low,) in self._db.execute("SELECT DISTINCT low FROM given"):
            yield _s(low)

    def given_spellings(self) -> list[str]:
        """Each value the plan gives, as its first giving spells it."""
        self.finish()
        return [_s(v) for _, v in self._db.execute(
            "SELECT low, value FROM given g WHERE n = (SELECT n FROM given x "
            "WHERE x.low = g.low ORDER BY seq, n LIMIT 1)")]

    # --- what the gates read of the directory ----------------------------------------------

    def note_holder(self, dn: str, forms: Iterable[tuple[str, str]], place: int = 0) -> None:
        """An object holding these legacy forms before the plan runs.  `place` sorts the
        holders as the directory's search_partitions meets them (ties: as noted)."""
        key, dnb = _b(dnu.key(dn)), _b(dn)
        rows = self._rows["held"]
        rows.extend((place, key, dnb, form, _b(v), _b(legacy_key(v))) for form, v in forms)
        if len(rows) >= _FLUSH:
            self._flush()

    def note_held_rows(self, form: str, rows: Iterable[tuple[int, str, str, str]],
                       strip: int = 0) -> None:
        """Objects holding a legacy form ("legacy" or "x500") known by its key alone (a
        store's index of values; taken() gives them without their spelling): one
        (place, DN, DN key, key) row each, the key less its first `strip` characters.
        The rows go to SQLite as they come and SQL turns their text into the ledger's
        UTF-8 bytes (CAST): no Python step per row, where a rename's gates note
        200,000 holders.  The rows' text has no lone surrogates (a store's index), and
        the characters stripped are ASCII."""
        if form not in ("legacy", "x500"):
            raise ValueError(f"unknown form {form!r}")
        self._flush()
        self._db.executemany(
            "INSERT INTO held(place, key, dn, form, value, low) VALUES "
            # substr of the bytes, not of the text: SQLite's text functions stop at a NUL
            # (a value may hold one); the characters stripped are ASCII ("x500:")
            f"(?1, CAST(?3 AS BLOB), CAST(?2 AS BLOB), '{form}', NULL, "
            f"substr(CAST(?4 AS BLOB), {int(strip) + 1}))", rows)

    def note_under(self, dn: str, values: Iterable[tuple[str, str]], place: int = 0) -> None:
        """(attribute, value) an object holds under a prefix the gates look at (`place`
        as note_holder's)."""
        key, dnb = _b(dnu.key(dn)), _b(dn)
        rows = self._rows["under"]
        rows.extend((place, key, dnb, a, a.lower(), _b(v), _b(str(vals.key(a, v))))
                    for a, v in values)
        if len(rows) >= _FLUSH:
            self._flush()

    def note_keys_under(self, rows: Iterable[tuple[int, str, str, str, str]]) -> None:
        """note_under of values known by their key (values.key) alone, their objects'
        dn.key given (a store's index of values): every (place, DN, DN key, attribute,
        key) row, handed to SQLite as note_held_rows hands its rows."""
        self._flush()
        self._db.executemany(
            "INSERT INTO under(place, key, dn, attribute, lattr, value, vkey) VALUES "
            "(?1, CAST(?3 AS BLOB), CAST(?2 AS BLOB), ?4, lower(?4), CAST(?5 AS BLOB), "
            "CAST(?5 AS BLOB))", rows)

    def kept_under(self) -> list[tuple[str, str, str]]:
        """(DN, attribute, value) of what note_under saw that the plan neither deletes
        nor replaces, in the order read."""
        self.finish()
        return [(_s(dn), a, _s(v)) for dn, a, v in self._db.execute("""
            SELECT dn, attribute, value FROM under u
            WHERE NOT EXISTS (SELECT 1 FROM deleted d WHERE d.key = u.key
                              AND d.attribute = u.lattr AND d.vkey = u.vkey)
              AND NOT EXISTS (SELECT 1 FROM wiped w WHERE w.key = u.key
                              AND w.attribute = u.lattr)
            ORDER BY place, n""")]

    def taken(self) -> list[tuple[str | None, str, str, str]]:
        """(value as held, holder's DN, form, key) where a holder that is not the plan's
        entry for that value holds one the plan gives (the uniqueness gate), in the order
        read; the value is None where note_held_rows noted it by its key.

        The plan's entry is the holder when its DN before the plan is the holder's, or,
        for a rename already done by an earlier run, when the step's DN is, unless that
        name is another entry's before the plan; a value the plan takes from the holder
        (in the same form) is not held."""
        self.finish()
        return [(None if v is None else _s(v), _s(dn), form, _s(low))
                for v, dn, form, low in self._db.execute("""
            SELECT h.value, h.dn, h.form, h.low FROM held h
            WHERE EXISTS (SELECT 1 FROM given g WHERE g.low = h.low)
              AND NOT EXISTS (SELECT 1 FROM given g WHERE g.low = h.low AND (
                    g.origin_key = h.key OR (g.step_key = h.key AND NOT EXISTS (
                        SELECT 1 FROM origins o WHERE o.key = h.key))))
              AND NOT EXISTS (SELECT 1 FROM freed f WHERE f.key = h.key
                              AND f.form = h.form AND f.low = h.low)
            ORDER BY h.place, h.n""")]

    def shared(self) -> Iterator[tuple[str, int, list[str]]]:
        """(value as first given, how many objects, their step DNs) for each value the
        plan gives to more than one object, in the order it first gives each."""
        self.finish()
        for low, count in list(self._db.execute(
                "SELECT low, COUNT(DISTINCT origin_key) AS c FROM given GROUP BY low "
                "HAVING c > 1 ORDER BY MIN(seq * 4294967296 + n)")):
            rows = self._db.execute("SELECT value, step_dn FROM given WHERE low = ? "
                                    "ORDER BY seq, n", (low,)).fetchall()
            yield _s(rows[0][0]), count, sorted({_s(d) for _, d in rows})


_INSERT = {
    "steps": "INSERT INTO steps(seq, block, a, b, c, text) VALUES (?,?,?,?,?,?)",
    "origins": "INSERT OR IGNORE INTO origins(key) VALUES (?)",
    "homes": "INSERT INTO homes(seq, key, op, value, dn) VALUES (?,?,?,?,?)",
    "relabels": "INSERT INTO relabels(seq, key, old, new) VALUES (?,?,?,?)",
    "written": "INSERT INTO written(seq, dn, attribute, value, low) VALUES (?,?,?,?,?)",
    "deleted": "INSERT OR IGNORE INTO deleted(key, attribute, vkey) VALUES (?,?,?)",
    "given": "INSERT INTO given(seq, low, origin_key, step_key, step_dn, value) "
             "VALUES (?,?,?,?,?,?)",
    "wiped": "INSERT OR IGNORE INTO wiped(key, attribute) VALUES (?,?)",
    "freed": "INSERT OR IGNORE INTO freed(key, form, low) VALUES (?,?,?)",
    "held": "INSERT INTO held(place, key, dn, form, value, low) VALUES (?,?,?,?,?,?)",
    "under": "INSERT INTO under(place, key, dn, attribute, lattr, value, vkey) "
             "VALUES (?,?,?,?,?,?,?)",
}
