"""Mailbox moves, directory side: the step Exchange 2003's move made after the data.

homeMDB, homeMTA and msExchHomeServerName change together (one modify per
mailbox, so Active Directory applies all three or none); the wireless
attributes go when the target server is older than Exchange 2003; a move across
administrative groups also rewrites legacyExchangeDN and keeps the old value as
X500 (Exchange 2003 SP1).  Identities are resolved against one bulk read and an
in-memory index, never one search per mailbox: exdir.readers.recipients reads the
candidates, and nothing here reads the directory.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Sequence

from . import dn as dnu
from .entries import EntryLike, Partitions
from .errors import InputError, Refused
from .legacydn import has_prefix, rewrite, same
from .plan import Mod, Modify, Plan
from .rename import x500_of
from .text import decode_text
from .topology import DOWNLEVEL, HOME, VERSIONS, ExchangeServer, Store, Topology

WIRELESS = ("msExchOmaAdminWirelessEnable", "msExchOmaAdminExtendedSettings")
#: what a move reads of each candidate mailbox
READ = ("objectClass", "cn", "mailNickname", "proxyAddresses", "legacyExchangeDN", *HOME,
        *WIRELESS)


@dataclass(frozen=True)
class Target:
    """Where mailboxes go: the store, its server, the MTA homeMTA names."""

    store: Store
    server: ExchangeServer
    mta_dn: str
    version: str  # the server's version class, or the one --assume-version gave

    @property
    def label(self) -> str:
        sg = dnu.rdn_value(self.store.storage_group) if self.store.storage_group else "?"
        return f"{self.server.name}/{sg}/{self.store.name}"

    @property
    def downlevel(self) -> bool:
        return self.version in DOWNLEVEL


@dataclass
class MoveRecord:
    """One mailbox of a move, for the plan's comments and the move report."""

    identity: str
    dn: str
    source: str
    target: str
    planned: bool
    note: str = ""
    step: int | None = None
    before: dict[str, str | None] = field(default_factory=dict)  # home attributes before
    written: dict[str, str] = field(default_factory=dict)  # what the move writes


@dataclass
class MovePlan:
    plan: Plan
    moves: list[MoveRecord] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


# --- the target ------------------------------------------------------------------------

ASSUMABLE = VERSIONS[:-1]  # what --assume-version accepts: every class but "unknown"


def home_mta_dn(text: str) -> str:
    """--home-mta as given, checked to be a DN (InputError, exit 2, when it is not)."""
    try:
        dnu.key(text)
    except InputError as exc:
        raise InputError(f"--home-mta {text!r}: not a DN ({exc.message})") from None
    return text


def check_home_mta(topology: Topology, text: str, found: EntryLike | None) -> str:
    """The MTA `--home-mta TEXT` names, its DN as stored; `found` is the object at TEXT
    as read (None: there is none, which is bad input, exit 2).  An object that is not
    an MTA (objectClass mTA) is refused (exit 1), saying what it is: homeMTA naming a
    store or a server routes no mail (OpenChange's provisioning writes the store)."""
    if found is None:
        raise InputError(f"--home-mta {text}: no such object")
    if "mta" in found.object_classes:
        return found.dn
    what = topology.describe(found.dn) or (
        f"{found.dn} (objectClass {', '.join(found.texts('objectClass')) or 'unknown'})")
    raise Refused(f"--home-mta names {what}, not an MTA (objectClass mTA): homeMTA must "
                  "name the MTA that routes the mailbox's mail")


def resolve_store(topology: Topology, text: str, assume_version: str | None = None,
                  home_mta: str | None = None) -> Target:
    """STORE: a store DN, `SERVER/STORAGE GROUP/STORE`, a store name used once, or a
    server name where that server has exactly one mailbox store (as the Move Mailbox
    wizard offers it); a server with several is refused, listing them.

    home_mta: the MTA homeMTA is to name (checked by check_home_mta); without it, the
    target server's own `CN=Microsoft MTA`, and a server that has none is refused
    (exit 1: the directory lacks it, the command line is fine), saying how to go on.

    --assume-version is checked whether or not it is needed: a typo must not pass
    silently today and change the wireless rule the day a serialNumber goes missing."""
    if assume_version is not None and assume_version not in ASSUMABLE:
        raise InputError(f"--assume-version {assume_version!r}: give one of "
                         + ", ".join(ASSUMABLE))
    candidates: list[Store]
    if "=" in text and "," in text:
        found = topology.by_dn(text)
        candidates = [found] if isinstance(found, Store) else []
    elif text.count("/") == 2:
        srv, sg, name = (p.strip().lower() for p in text.split("/"))
        candidates = [s for s in topology.stores if s.name.lower() == name
                      and dnu.rdn_value(s.storage_group or "").lower() == sg
                      and _server_name(topology, s.server) == srv]
    else:
        candidates = topology.stores_named(text) or _server_stores(topology, text)
    if not candidates:
        raise InputError(f"no mailbox store {text!r} (give a store DN, SERVER/STORAGE GROUP/"
                         "STORE, a store name used once, or a server with one mailbox store)")
    if len(candidates) > 1:
        raise InputError(f"store name {text!r} is ambiguous: "
                         + "; ".join(topology.store_label(s) for s in candidates))
    store = candidates[0]
    if store.public:
        raise InputError(f"{topology.store_label(store)} is a public folder store: mailboxes "
                         "live in mailbox (private) stores")
    server = topology.server_of(store.dn)
    if server is None:
        raise Refused(f"the store {store.dn} is not under an Exchange server: "
                      "msExchHomeServerName would name nothing")
    version = server.version
    if version == "unknown":
        if not assume_version:
            what = (f"the server {server.name} has no serialNumber" if not server.serial else
                    f"the serialNumber of {server.name} ({server.serial!r}) names no "
                    "Exchange version")
            raise Refused(f"{what}: the wireless rule depends on the version; give "
                          "--assume-version " + "|".join(ASSUMABLE))
        version = assume_version
    if not server.legacy_dn:
        raise Refused(f"{server.name} has no legacyExchangeDN: msExchHomeServerName would "
                      "name nothing")
    if home_mta is not None:
        return Target(store, server, home_mta, version)
    mta = topology.mta_of(server.dn)
    if mta is None:
        raise Refused(no_mta_reason(topology, server))
    return Target(store, server, mta.dn, version)


def no_mta_reason(topology: Topology, server: ExchangeServer) -> str:
    """Why a move to server cannot set homeMTA, and how to go on."""
    others = [m.dn for m in topology.mtas]
    hint = (f" (the organisation's MTAs: {'; '.join(others[:3])}"
            + (" …" if len(others) > 3 else "") + ")" if others
            else " (the organisation has none: an MTA object comes with an Exchange server's "
                 "setup)")
    return (f"{server.name} has no MTA object (no objectClass mTA under {server.dn}): homeMTA "
            "would name nothing. Give --home-mta DN naming the MTA that is to route the "
            f"mailbox's mail{hint}")


def _server_name(topology: Topology, server_dn: str) -> str:
    """The lower-cased name of the server at server_dn ('' when none): the topology's
    one DN lookup, for matching a SERVER/GROUP/STORE spelling."""
    found = topology.by_dn(server_dn)
    return found.name.lower() if isinstance(found, ExchangeServer) else ""


def _server_stores(topology: Topology, name: str) -> list[Store]:
    """The one mailbox store of the server called name; [] when no server has that name.

    InputError when the server has several mailbox stores (listed, to pick one) or none."""
    server = next((s for s in topology.servers if s.name.lower() == name.lower()), None)
    if server is None:
        return []
    key = dnu.key(server.dn)
    stores = [s for s in topology.stores if not s.public and dnu.key(s.server) == key]
    if len(stores) > 1:
        raise InputError(f"the server {server.name} has {len(stores)} mailbox stores: give one "
                         "of " + "; ".join(topology.store_label(s) for s in stores))
    if not stores:
        raise InputError(f"the server {server.name} has no mailbox store")
    return stores


# --- identities ----------------------------------------------------------------------------

def read_identities(path: str, stdin: bytes | str | None = None) -> list[str]:
    """--from-file: one identity per line; blank lines and `#` comments skipped; `-` stdin
    (its bytes, or text already decoded).  UTF-8 or UTF-16 with a byte-order mark, as
    editors save it; anything else is refused naming the line (text.decode_text)."""
    if path == "-":
        data = stdin if stdin is not None else b""
        text = data if isinstance(data, str) else decode_text(data, "standard input")
    else:
        try:
            with open(path, "rb") as fh:
                data = fh.read()
        except OSError as exc:
            raise InputError(f"cannot read {path}: {exc.strerror}") from None
        text = decode_text(data, path)
    return [ln.strip() for ln in text.splitlines() if ln.strip() and not
            ln.strip().startswith("#")]


def kind_of(identity: str) -> str:
    if identity.startswith("/"):
        return "legacyExchangeDN"
    if identity.lower().startswith("smtp:"):
        return "smtp"
    if "=" in identity and "," in identity:
        return "dn"
    if "@" in identity:
        return "smtp"
    return "mailNickname"


def dn_problem(identity: str) -> str | None:
    """Why a DN identity does not parse, or None: it is listed with the other problems
    instead of ending the run on its own."""
    try:
        dnu.key(identity)
    except InputError as exc:
        return exc.message
    return None


def smtp_of(identity: str) -> str:
    return identity[5:] if identity.lower().startswith("smtp:") else identity


@dataclass
class _Index:
    by_key: dict[tuple[str, str], list[EntryLike]]

    @classmethod
    def build(cls, entries: Iterable[EntryLike]) -> "_Index":
        index: dict[tuple[str, str], list[EntryLike]] = {}
        seen: set[str] = set()

        def put(kind: str, value: str, entry: EntryLike) -> None:
            bucket = index.setdefault((kind, value.lower()), [])
            if all(dnu.key(e.dn) != dnu.key(entry.dn) for e in bucket):
                bucket.append(entry)

        for e in entries:
            k = dnu.key(e.dn)
            if k in seen:
                continue
            seen.add(k)
            put("dn", k, e)
            for nick in e.texts("mailNickname"):
                put("mailNickname", nick, e)
            for legacy in e.texts("legacyExchangeDN"):
                put("legacyExchangeDN", legacy, e)
            for proxy in e.texts("proxyAddresses"):
                if proxy.lower().startswith("smtp:"):
                    put("smtp", proxy[5:], e)
        return cls(index)

    def find(self, identity: str) -> list[EntryLike]:
        kind = kind_of(identity)
        if kind == "dn":
            try:
                return self.by_key.get(("dn", dnu.key(identity)), [])
            except InputError:
                return []
        value = smtp_of(identity) if kind == "smtp" else identity
        return self.by_key.get((kind, value.lower()), [])


def resolve_mailboxes(identities: Sequence[str], entries: Iterable[EntryLike]
                      ) -> tuple[list[tuple[str, EntryLike]], list[str]]:
    """(identity, mailbox) pairs in order, duplicates dropped, and warnings.

    Unknown, ambiguous and non-mailbox identities are all collected into one
    InputError (exit 2): nothing is planned while one is wrong."""
    index = _Index.build(entries)
    problems: list[str] = []
    out: list[tuple[str, EntryLike]] = []
    warnings: list[str] = []
    seen: dict[str, str] = {}
    for ident in identities:
        found = index.find(ident)
        if not found:
            bad = dn_problem(ident) if kind_of(ident) == "dn" else None
            problems.append(f"{ident}: {bad}" if bad else
                            f"{ident}: unknown (no {kind_of(ident)} matches)")
            continue
        if len(found) > 1:
            problems.append(f"{ident}: ambiguous ({'; '.join(e.dn for e in found[:4])})")
            continue
        entry = found[0]
        if not (entry.has("homeMDB") or entry.has("msExchHomeServerName")):
            problems.append(f"{ident}: {entry.dn} has no mailbox (no homeMDB)")
            continue
        key = dnu.key(entry.dn)
        if key in seen:
            warnings.append(f"{ident}: the same mailbox as {seen[key]!r}; moved once")
            continue
        seen[key] = ident
        out.append((ident, entry))
    if problems:
        raise InputError(f"{len(problems)} identit{'y' if len(problems) == 1 else 'ies'} "
                         "cannot be moved, nothing planned: " + " | ".join(problems))
    return out, warnings


# --- planning --------------------------------------------------------------------------------

class _Homes:
    """What a home attribute value names, looked up once per distinct value.

    A handful of stores and MTAs serve every mailbox, and Topology.server_of builds
    each ancestor DN of the value it is given: without this, planning 10,000 moves
    spent most of its time there."""

    def __init__(self, topology: Topology) -> None:
        self.topology = topology
        self._servers: dict[str, ExchangeServer | None] = {}
        self._labels: dict[str, str | None] = {}

    def server_of(self, dn: str) -> ExchangeServer | None:
        if dn not in self._servers:
            self._servers[dn] = self.topology.server_of(dn)
        return self._servers[dn]

    def store_label(self, dn: str) -> str | None:
        if dn not in self._labels:
            store = self.topology.by_dn(dn)
            self._labels[dn] = (self.topology.store_label(store) if isinstance(store, Store)
                                else None)
        return self._labels[dn]


def _server_for(homes: _Homes, entry: EntryLike) -> dict[str, str | None]:
    """The server each home attribute the entry holds names (None where it names nothing
    known); attributes it lacks are left out."""
    out: dict[str, str | None] = {}
    mdb = entry.text("homeMDB")
    mta = entry.text("homeMTA")
    home = entry.text("msExchHomeServerName")
    if mdb:
        s = homes.server_of(mdb)
        out["homeMDB"] = s.name if s else None
    if mta:
        s = homes.server_of(mta)
        out["homeMTA"] = s.name if s else None
    if home:
        found = homes.topology.by_legacy_dn(home)
        out["msExchHomeServerName"] = found.name if isinstance(found, ExchangeServer) else None
    return out


def _source_server(homes: _Homes, entry: EntryLike) -> ExchangeServer | None:
    mdb = entry.text("homeMDB")
    if mdb:
        s = homes.server_of(mdb)
        if s:
            return s
    home = entry.text("msExchHomeServerName")
    found = homes.topology.by_legacy_dn(home) if home else None
    return found if isinstance(found, ExchangeServer) else None


def plan_move(topology: Topology, mailboxes: Sequence[tuple[str, EntryLike]], target: Target,
              naming: Partitions, *, keep_legacydn: bool = False) -> MovePlan:
    """One modify per mailbox: the three home attributes together, wireless stripped for
    a downlevel target, legacyExchangeDN rewritten across administrative groups.  Pure."""
    result = MovePlan(Plan(()))
    changes: list[Modify] = []
    target_ag = next((g for g in topology.admin_groups
                      if dnu.key(g.dn) == dnu.key(target.server.admin_group or "")), None)
    wanted = {"homeMDB": target.store.dn, "homeMTA": target.mta_dn,
              "msExchHomeServerName": target.server.legacy_dn or ""}
    homes = _Homes(topology)
    for ident, entry in mailboxes:
        source = _source_server(homes, entry)
        source_label = _current_label(homes, entry)
        record = MoveRecord(ident, entry.dn, source_label, target.label, planned=False,
                            before={a: entry.text(a) for a in HOME}, written=dict(wanted))
        result.moves.append(record)
        mods: list[Mod] = []
        for attr in HOME:
            have = entry.texts(attr)
            if len(have) == 1 and _same_value(attr, have[0], wanted[attr]):
                continue
            if have:
                mods.append(Mod("delete", attr, tuple(have)))
            mods.append(Mod("add", attr, (wanted[attr],)))
        notes: list[str] = []
        servers = _server_for(homes, entry)
        missing = [a for a in HOME if a not in servers]
        if missing:
            notes.append(" and ".join(f"{a} missing" for a in missing) + ": the move sets "
                         + ("it" if len(missing) == 1 else "them"))
        if len(set(servers.values())) > 1:
            notes.append("was split (" + ", ".join(f"{a} on {v or 'nothing known'}"
                                                    for a, v in servers.items())
                         + "): the move makes the three agree")
        if not mods:
            record.note = "already there: skipped"
            continue
        if target.downlevel:
            stripped = [a for a in WIRELESS if entry.has(a)]
            for attr in stripped:
                mods.append(Mod("delete", attr, tuple(entry.get(attr))))
            if stripped:
                notes.append(f"wireless attributes removed: {target.server.name} runs "
                             f"Exchange {target.version}, which predates them")
        source_ag = next((g for g in topology.admin_groups if source and dnu.key(g.dn)
                          == dnu.key(source.admin_group or "")), None)
        legacy = entry.text("legacyExchangeDN")
        across = bool(source_ag and target_ag and dnu.key(source_ag.dn) != dnu.key(target_ag.dn))
        if across and keep_legacydn:
            notes.append("across administrative groups; legacyExchangeDN kept as it is "
                         "(--keep-legacydn)")
        elif across and source_ag and target_ag and legacy:
            old_prefix = source_ag.legacy_dn or ""
            new_value = rewrite(legacy, old_prefix, target_ag.legacy_dn or "") \
                if old_prefix and has_prefix(legacy, old_prefix) else None
            if new_value and new_value != legacy:
                mods += [Mod("delete", "legacyExchangeDN", (legacy,)),
                         Mod("add", "legacyExchangeDN", (new_value,))]
                proxy = x500_of(legacy, entry.texts("proxyAddresses"))
                if proxy:
                    mods.append(Mod("add", "proxyAddresses", (proxy,)))
                notes.append(f"across administrative groups: legacyExchangeDN now under "
                             f"{target_ag.legacy_dn}, old value kept as X500")
            else:
                notes.append(f"across administrative groups, but legacyExchangeDN {legacy!r} is "
                             f"not under {old_prefix!r}: left as it is")
        reason = f"move {ident} from {source_label} to {target.label}"
        if notes:
            reason += "; " + "; ".join(notes)
        record.planned = True
        record.note = "; ".join(notes)
        record.step = len(changes) + 1
        changes.append(Modify(entry.dn, tuple(mods), reason))
    result.plan = Plan(tuple(changes))
    return result


def _same_value(attr: str, a: str, b: str) -> bool:
    if attr in ("homeMDB", "homeMTA"):
        try:
            return dnu.key(a) == dnu.key(b)
        except InputError:
            return False
    return same(a, b)


def _current_label(homes: _Homes, entry: EntryLike) -> str:
    mdb = entry.text("homeMDB")
    label = homes.store_label(mdb) if mdb else None
    return label or mdb or entry.text("msExchHomeServerName") or "nowhere"


def same_admin_group_moves(topology: Topology, mailboxes: Sequence[tuple[str, EntryLike]],
                           target: Target) -> list[str]:
    """Identities moving between two servers of the same administrative group (the moves
    an ADC agreement can undo, KB advice: stop the ADC first)."""
    out = []
    homes = _Homes(topology)
    for ident, entry in mailboxes:
        source = _source_server(homes, entry)
        if (source and dnu.key(source.dn) != dnu.key(target.server.dn)
                and dnu.key(source.admin_group or "") == dnu.key(target.server.admin_group or "")):
            out.append(ident)
    return out
