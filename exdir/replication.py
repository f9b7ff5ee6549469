"""Has every domain controller got the plan yet?  `exdir replication check`.

A plan's steps each leave a result a converged DC shows: a renamed entry at its new
DN and not at its old one, values added present, values deleted gone, a replaced
attribute holding exactly its new values, an added entry there, a deleted one gone.
`expectations(plan)` turns a plan into those results (pure: tested on model
objects), `check_dc(directory, expected)` reads one DC in bulk (one `read_many`, so
a few OR-filter searches per DC, never a search per step) and says which steps show,
and `check_all` does it for every DC, naming the ones it cannot reach instead of
failing.  On Active Directory the replication metadata of each written attribute
(`msDS-ReplAttributeMetaData`, or `replPropertyMetaData` decoded) is read in the same
search: a DC that holds the value with an older version than another DC is behind.
"""
from __future__ import annotations

import struct
import time
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Callable, Iterable, Mapping, Protocol, Sequence

from . import dn as dnu
from . import values as vals
from .errors import ExdirError
from .plan import Add, Delete, Modify, Plan, Rename
from .values import Value

SHOWN_LAGGING = 5  # how many lagging steps a DC's result names (first by DN)
META_ATTRIBUTES = ("msDS-ReplAttributeMetaData", "replPropertyMetaData")


class EntryReader(Protocol):
    """What the check needs of a DC: exdir.backends.base.Directory's bulk read."""

    is_active_directory: bool

    def read_many(self, dns: Iterable[str], attributes: Sequence[str] = ("*",)
                  ) -> Mapping[str, object]: ...


# --- what a converged DC shows (pure) ---------------------------------------------------------

@dataclass(frozen=True)
class Expected:
    """The result of one step, as a converged DC shows it."""

    step: int
    kind: str  # modify | rename | add | delete
    dn: str  # where the result is read (the step's entry after the plan's later renames)
    exists: bool = True  # dn must exist (False: a delete, dn must be gone)
    gone: str | None = None  # a DN that must not exist any more (a rename's old name)
    present: tuple[tuple[str, Value], ...] = ()
    absent: tuple[tuple[str, Value], ...] = ()
    exact: tuple[tuple[str, tuple[Value, ...]], ...] = ()  # replace: these values only
    cleared: tuple[str, ...] = ()  # attributes that must hold no value

    @property
    def attributes(self) -> tuple[str, ...]:
        """The attributes the step writes (whose replication metadata is shown)."""
        names = [a for a, _ in self.present] + [a for a, _ in self.absent]
        names += [a for a, _ in self.exact] + list(self.cleared)
        return tuple(dict.fromkeys(names))


def _after(dn: str, renames: Sequence[Rename]) -> str:
    """dn where it is once the given renames (in order) are done."""
    for r in renames:
        if dnu.is_within(dn, r.dn):
            dn = dnu.rebase(dn, r.dn, r.new_dn)
    return dn


def expectations(plan: Plan, *, follows_references: bool = True) -> list[Expected]:
    """What each step of plan leaves on a DC that has it.  follows_references: the
    directory rewrites DN values that point into a renamed subtree (Active Directory,
    the LDIF lab), so a DN value the plan writes is looked for under its later name."""
    changes = list(plan.changes)
    out: list[Expected] = []
    for i, change in enumerate(changes):
        later = [c for c in changes[i + 1:] if isinstance(c, Rename)]

        def value(attribute: str, v: Value) -> Value:
            if follows_references and vals.is_dn(attribute) and isinstance(v, str):
                try:
                    return _after(v, later)
                except ExdirError:
                    return v
            return v

        number = i + 1
        if isinstance(change, Modify):
            present: list[tuple[str, Value]] = []
            absent: list[tuple[str, Value]] = []
            exact: list[tuple[str, tuple[Value, ...]]] = []
            cleared: list[str] = []
            for mod in change.mods:
                if mod.op == "add":
                    present += [(mod.attribute, value(mod.attribute, v)) for v in mod.values]
                elif mod.op == "delete" and mod.values:
                    absent += [(mod.attribute, value(mod.attribute, v)) for v in mod.values]
                elif mod.values:  # replace
                    exact.append((mod.attribute,
                                  tuple(value(mod.attribute, v) for v in mod.values)))
                else:  # delete all, replace with nothing
                    cleared.append(mod.attribute)
            # a value deleted and added back by a later block is present, not absent
            absent = [(a, v) for a, v in absent
                      if not any(a.lower() == b.lower() and vals.equal(a, v, w)
                                 for b, w in present)]
            out.append(Expected(number, "modify", _after(change.dn, later),
                                present=tuple(present), absent=tuple(absent),
                                exact=tuple(exact), cleared=tuple(cleared)))
        elif isinstance(change, Rename):
            new = _after(change.new_dn, later)
            old = _after(change.dn, later)
            out.append(Expected(number, "rename", new,
                                gone=None if dnu.key(old) == dnu.key(new) else old))
        elif isinstance(change, Add):
            present = [(a, value(a, v)) for a, vs in change.attributes for v in vs]
            out.append(Expected(number, "add", _after(change.dn, later), present=tuple(present)))
        elif isinstance(change, Delete):
            out.append(Expected(number, "delete", _after(change.dn, later), exists=False))
    return out


class _Found(Protocol):
    dn: str

    def get(self, name: str) -> list[Value]: ...


def _holds(entry: _Found, attribute: str, value: Value) -> bool:
    return vals._index_of(attribute, entry.get(attribute), value) >= 0


def shows(expected: Expected, found: Mapping[str, _Found]) -> str:
    """"" where the entries read (by dn.key) show the step's result, else what is
    missing, in a few words."""
    entry = found.get(dnu.key(expected.dn))
    if not expected.exists:
        return "" if entry is None else "still there"
    if expected.gone is not None and dnu.key(expected.gone) in found:
        return f"still at {expected.gone}"
    if entry is None:
        return "not there" if expected.kind != "modify" else "entry not found"
    for attribute, value in expected.present:
        if not _holds(entry, attribute, value):
            return f"{attribute} lacks {_shown(value)}"
    for attribute, value in expected.absent:
        if _holds(entry, attribute, value):
            return f"{attribute} still holds {_shown(value)}"
    for attribute, wanted in expected.exact:
        have = entry.get(attribute)
        if len(have) != len(wanted) or not all(_holds(entry, attribute, v) for v in wanted):
            return f"{attribute} does not hold the planned values"
    for attribute in expected.cleared:
        if entry.get(attribute):
            return f"{attribute} still has values"
    return ""


def _shown(value: Value) -> str:
    text = value if isinstance(value, str) else "<" + value.hex() + ">"
    return repr(dnu.shorten(text, 60))


# --- replication metadata (Active Directory) --------------------------------------------------

@dataclass(frozen=True)
class AttributeMeta:
    """One attribute's replication metadata on one DC (repadmin /showobjmeta's row)."""

    attribute: str
    version: int
    originating_dc: str  # the DC's name where known, else its invocation ID
    originating_time: str  # ISO 8601, UTC


_NT_EPOCH = datetime(1601, 1, 1, tzinfo=timezone.utc)


def parse_msds_meta(values: Sequence[Value]) -> dict[str, AttributeMeta]:
    """msDS-ReplAttributeMetaData: one DS_REPL_ATTR_META_DATA XML document per value."""
    out: dict[str, AttributeMeta] = {}
    for v in values:
        text = v.decode("utf-8", "replace") if isinstance(v, bytes) else v
        try:
            root = ET.fromstring(text.strip("\x00"))
        except ET.ParseError:
            continue

        def field_(name: str) -> str:
            found = root.find(name)
            return (found.text or "").strip() if found is not None else ""

        name = field_("pszAttributeName")
        try:
            version = int(field_("dwVersion") or 0)
        except ValueError:
            continue
        dsa = field_("pszLastOriginatingDsaDN")
        origin = dnu.rdn_value(dnu.parent(dsa)) if dsa else field_(
            "uuidLastOriginatingDsaInvocationID")
        if name:
            out[name.lower()] = AttributeMeta(name, version, origin,
                                              field_("ftimeLastOriginatingChange"))
    return out


def parse_repl_property_meta(blob: bytes) -> dict[int, tuple[int, datetime, str]]:
    """replPropertyMetaData (MS-DRSR's PROPERTY_META_DATA_EXT_VECTOR as stored): by
    attid, (version, originating time, originating invocation ID)."""
    out: dict[int, tuple[int, datetime, str]] = {}
    if len(blob) < 16:
        return out
    version, _, count, _ = struct.unpack_from("<IIII", blob, 0)
    if version != 1:
        return out
    for i in range(count):
        offset = 16 + 48 * i
        if offset + 48 > len(blob):
            break
        attid, ver, seconds = struct.unpack_from("<IIQ", blob, offset)
        invocation = str(uuid.UUID(bytes_le=blob[offset + 16:offset + 32]))
        out[attid] = (ver, _NT_EPOCH + timedelta(seconds=seconds), invocation)
    return out


# MS-DRSR 5.16.4: the prefixes every DC's prefix table starts with (attid high 16 bits)
_STATIC_PREFIXES = {
    "2.5.4": 0, "2.5.6": 1, "1.2.840.113556.1.2": 2, "1.2.840.113556.1.3": 3,
    "2.16.840.1.101.2.2.1": 4, "2.16.840.1.101.2.2.3": 5, "2.16.840.1.101.2.1.5": 6,
    "2.16.840.1.101.2.1.4": 7, "2.5.5": 8, "1.2.840.113556.1.4": 9,
    "1.2.840.113556.1.5": 10, "1.2.840.113556.1.4.260": 11, "1.2.840.113556.1.5.56": 12,
    "1.2.840.113556.1.4.262": 13, "1.2.840.113556.1.5.57": 14,
    "1.2.840.113556.1.4.263": 15, "1.2.840.113556.1.5.58": 16,
    "1.2.840.113556.1.5.73": 17, "1.2.840.113556.1.4.305": 18,
    "0.9.2342.19200300.100": 19, "2.16.840.1.113730.3": 20,
    "0.9.2342.19200300.100.1": 21, "2.16.840.1.113730.3.1": 22,
    "1.2.840.113556.1.5.7000": 23, "2.5.21": 24, "2.5.18": 25, "2.5.20": 26,
}


def attid_of(attribute_id: str, int_id: int | None = None) -> int | None:
    """The attid replPropertyMetaData names an attribute by: its msDS-IntId where the
    schema gave it one, else its OID through the static prefix table."""
    if int_id is not None:
        return int_id & 0xFFFFFFFF
    prefix, _, last = attribute_id.rpartition(".")
    if prefix not in _STATIC_PREFIXES or not last.isdigit() or int(last) >= 0x4000:
        return None
    return (_STATIC_PREFIXES[prefix] << 16) | int(last)


def meta_of(entry: _Found, attributes: Sequence[str], attids: Mapping[str, int],
            dc_names: Mapping[str, str]) -> dict[str, AttributeMeta]:
    """The metadata of the written attributes of one entry, by lower-case name."""
    wanted = {a.lower(): a for a in attributes}
    out = {k: m for k, m in parse_msds_meta(entry.get("msDS-ReplAttributeMetaData")).items()
           if k in wanted}
    blob = entry.get("replPropertyMetaData")
    raw = blob[0] if blob else None
    if isinstance(raw, str):
        raw = raw.encode("utf-8")  # 48-byte records that happened to be UTF-8
    if raw:
        decoded = parse_repl_property_meta(raw)
        for key, name in wanted.items():
            attid = attids.get(key)
            if key in out or attid is None or attid not in decoded:
                continue
            ver, when, invocation = decoded[attid]
            out[key] = AttributeMeta(name, ver, dc_names.get(invocation, invocation),
                                     when.isoformat().replace("+00:00", "Z"))
    return out


# --- one DC, every DC -------------------------------------------------------------------------

@dataclass
class DcResult:
    """What one DC shows of the plan."""

    name: str
    url: str
    total: int
    shown: int = 0
    lagging: list[tuple[int, str, str]] = field(default_factory=list)  # (step, dn, why)
    error: str | None = None  # unreachable, or the read failed
    read_only: bool = False
    # (step, dn) -> attribute -> metadata, for the written attributes (AD only)
    metadata: dict[str, dict[str, AttributeMeta]] = field(default_factory=dict)

    @property
    def converged(self) -> bool:
        return self.error is None and not self.lagging

    def as_dict(self) -> dict[str, object]:
        return {"name": self.name, "url": self.url, "read_only": self.read_only,
                "reachable": self.error is None, "error": self.error,
                "converged": self.converged, "steps": self.total, "shown": self.shown,
                "lagging": [{"step": s, "dn": d, "why": w} for s, d, w in self.lagging],
                "metadata": {dn: {m.attribute: {"version": m.version,
                                                "originating_dc": m.originating_dc,
                                                "originating_time": m.originating_time}
                                  for m in metas.values()}
                             for dn, metas in self.metadata.items()}}


def _read_dns(expected: Sequence[Expected]) -> list[str]:
    dns: dict[str, str] = {}
    for e in expected:
        dns.setdefault(dnu.key(e.dn), e.dn)
        if e.gone:
            dns.setdefault(dnu.key(e.gone), e.gone)
    return list(dns.values())


def check_dc(directory: EntryReader, expected: Sequence[Expected], *, name: str = "",
             url: str = "", attids: Mapping[str, int] | None = None,
             dc_names: Mapping[str, str] | None = None) -> DcResult:
    """Which steps one DC shows: one bulk read of every entry the results are on."""
    written = sorted({a for e in expected for a in e.attributes}, key=str.lower)
    # the written attributes by name ("*" with more names is "*" alone to read_many, and
    # AD returns replPropertyMetaData only when it is named)
    attributes = ["objectClass", *written]
    if directory.is_active_directory and written:
        attributes += META_ATTRIBUTES
    found = directory.read_many(_read_dns(expected), attributes)
    result = DcResult(name, url, len(expected))
    lagging: list[tuple[int, str, str]] = []
    for e in expected:
        why = shows(e, found)  # type: ignore[arg-type]
        if why:
            lagging.append((e.step, e.dn, why))
        else:
            result.shown += 1
        entry = found.get(dnu.key(e.dn))
        if directory.is_active_directory and entry is not None and e.attributes:
            metas = meta_of(entry, e.attributes, attids or {}, dc_names or {})  # type: ignore[arg-type]
            if metas:
                result.metadata.setdefault(e.dn, {}).update(metas)
    lagging.sort(key=lambda t: (dnu.key(t[1]), t[0]))
    result.lagging = lagging
    return result


def compare_versions(results: Sequence[DcResult], expected: Sequence[Expected]) -> None:
    """A DC that shows a step but holds an attribute it wrote at an older version than
    another DC has not got the last write: that step lags there."""
    by_dn = {dnu.key(e.dn): e for e in expected}
    newest: dict[tuple[str, str], int] = {}
    for r in results:
        for dn, metas in r.metadata.items():
            for k, m in metas.items():
                slot = (dnu.key(dn), k)
                newest[slot] = max(newest.get(slot, 0), m.version)
    for r in results:
        if r.error is not None:
            continue
        lagging_steps = {s for s, _, _ in r.lagging}
        for dn, metas in r.metadata.items():
            e = by_dn.get(dnu.key(dn))
            if e is None or e.step in lagging_steps:
                continue
            for k, m in metas.items():
                top = newest[(dnu.key(dn), k)]
                if m.version < top:
                    r.lagging.append((e.step, e.dn, f"{m.attribute} at version {m.version}, "
                                                    f"another DC has {top}"))
                    r.shown -= 1
                    lagging_steps.add(e.step)
                    break
        r.lagging.sort(key=lambda t: (dnu.key(t[1]), t[0]))


@dataclass(frozen=True)
class Dc:
    """A domain controller to check: its name, URL, and how to open it."""

    name: str
    url: str
    read_only: bool = False


@dataclass
class Report:
    """Every DC's result, and how long the check waited."""

    dcs: list[DcResult]
    waited: float = 0.0
    rounds: int = 1

    @property
    def converged(self) -> bool:
        return all(r.converged for r in self.dcs)

    @property
    def lagging(self) -> list[DcResult]:
        return [r for r in self.dcs if not r.converged]

    def as_dict(self) -> dict[str, object]:
        return {"converged": self.converged, "waited_seconds": round(self.waited, 3),
                "rounds": self.rounds, "domain_controllers": [r.as_dict() for r in self.dcs]}


Opener = Callable[[Dc], EntryReader]


def check_all(dcs: Sequence[Dc], plan: Plan, open_dc: Opener, *, wait: float = 0.0,
              attids: Mapping[str, int] | None = None,
              dc_names: Mapping[str, str] | None = None,
              follows_references: bool = True,
              sleep: Callable[[float], None] = time.sleep,
              clock: Callable[[], float] = time.monotonic) -> Report:
    """Check every DC; with wait, check again (backing off from 0.2 s, doubling to
    5 s) until every DC shows every step or wait seconds have passed.  A DC that
    cannot be opened or read is named with why, and the others are still checked."""
    expected = expectations(plan, follows_references=follows_references)
    began = clock()
    delay, rounds = 0.2, 0
    while True:
        rounds += 1
        results = [_one(dc, expected, open_dc, attids, dc_names) for dc in dcs]
        compare_versions(results, expected)
        report = Report(results, clock() - began, rounds)
        left = wait - (clock() - began)
        if report.converged or left <= 0:
            return report
        sleep(min(delay, left))
        delay = min(delay * 2, 5.0)


def _one(dc: Dc, expected: Sequence[Expected], open_dc: Opener,
         attids: Mapping[str, int] | None, dc_names: Mapping[str, str] | None) -> DcResult:
    try:
        directory = open_dc(dc)
    except ExdirError as exc:
        return DcResult(dc.name, dc.url, len(expected), error=f"unreachable: {exc.message}",
                        read_only=dc.read_only)
    try:
        result = check_dc(directory, expected, name=dc.name, url=dc.url, attids=attids,
                          dc_names=dc_names)
    except ExdirError as exc:
        return DcResult(dc.name, dc.url, len(expected), error=f"read failed: {exc.message}",
                        read_only=dc.read_only)
    finally:
        close = getattr(directory, "close", None)
        if close is not None:
            close()
    result.read_only = dc.read_only
    return result


WRITTEN_TO = "written to domain controller: "


def written_to(directory: object) -> str:
    """Which DC a directory is, as the undo file's header and --report record it: a
    server's URL without any user or password in it, an LDIF file's absolute path."""
    import os
    from urllib.parse import urlsplit, urlunsplit

    url = getattr(directory, "url", None)
    if isinstance(url, str) and url:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        netloc = host if parts.port is None else f"{host}:{parts.port}"
        return urlunsplit((parts.scheme.lower(), netloc, "", "", ""))
    path = getattr(directory, "path", None)
    if isinstance(path, str) and path:
        return os.path.abspath(path)
    describe = getattr(directory, "describe", None)
    return str(describe()) if callable(describe) else ""


def recorded_dc(plan_text: str) -> str | None:
    """The DC an undo file's header says the run wrote to (None: not recorded).  It is
    the header's last item; comments are wrapped at spaces (exdir.ldif_out), so the
    value is what follows the label up to the end of the comment block."""
    lines = plan_text.splitlines()
    for i, line in enumerate(lines):
        text = line.lstrip("#").strip()
        if line.startswith("#") and text.startswith(WRITTEN_TO.strip()):
            words = [text[len(WRITTEN_TO.strip()):].strip()]
            for more in lines[i + 1:]:
                if not more.startswith("#"):
                    break
                words.append(more.lstrip("#").strip())
            value = " ".join(w for w in words if w)
            return value or None
        if line.startswith("dn:"):
            break
    return None


def other_dc_warning(plan_path: str, directory: object) -> str | None:
    """The warning `exdir apply UNDO` gives where the undo file was written on another
    DC than the one it is now applied to (None: the same, or not recorded)."""
    try:
        with open(plan_path, "rb") as f:
            head = f.read(8192).decode("utf-8", "replace")
    except OSError:
        return None
    recorded = recorded_dc(head)
    here = written_to(directory)
    if recorded is None or not here or recorded == here:
        return None
    return (f"warning: {plan_path} was written by a run against {recorded}, not {here}: "
            "until replication has carried that run's changes here, this DC may not "
            "show them (exdir replication check)")


def dc_url(base_url: str, host: str) -> str:
    """base_url with its host replaced by host: the same scheme and port for each DC."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(base_url)
    netloc = host if parts.port is None else f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def summary_lines(report: Report) -> list[str]:
    """The human form: one line per DC, then its first lagging steps."""
    lines = []
    for r in report.dcs:
        label = (f"{r.name} ({r.url})" if r.url and r.url != r.name else r.name) + (
            " [read-only]" if r.read_only else "")
        if r.error is not None:
            lines.append(f"{label}: {r.error}")
            continue
        state = "converged" if r.converged else "behind"
        lines.append(f"{label}: {state}: {r.shown}/{r.total} step(s) show")
        for step, dn, why in r.lagging[:SHOWN_LAGGING]:
            lines.append(f"  step {step} {dn}: {why}")
        if len(r.lagging) > SHOWN_LAGGING:
            lines.append(f"  ... and {len(r.lagging) - SHOWN_LAGGING} more")
        for dn, metas in list(r.metadata.items())[:SHOWN_LAGGING]:
            for m in metas.values():
                lines.append(f"  {dn} {m.attribute}: version {m.version}, "
                             f"from {m.originating_dc} at {m.originating_time}")
    return lines
