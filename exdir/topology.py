"""The Exchange organisation as the configuration partition describes it: the model.

exdir.readers.topology reads it with two searches (the Exchange services subtree
and the Sites subtree), never one per object; every planner and check takes a
Topology instead of searching again.  Nothing here reads the directory.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Iterable

from . import dn as dnu
from . import legacydn
from .errors import InputError

#: Version classes of Exchange servers, as parse_version names them; the one list of
#: versions (--assume-version, the wireless rule, the lab generator's servers).
VERSIONS = ("5.5", "2000", "2003", "2007+", "unknown")
DOWNLEVEL = frozenset({"5.5", "2000"})  # older than Exchange 2003: no wireless attributes
ALLOW_RENAME = 0x40000000  # FLAG_CONFIG_ALLOW_RENAME on configuration objects
SYNC_DIRECTIONS = {0: "two-way", 1: "one-way to Exchange", 2: "one-way to Windows"}
#: Where Exchange 2007 and later keep their servers: never renamed, never a new name.
E2007_ADMIN_GROUP = "Exchange Administrative Group (FYDIBOHF23SPDLT)"
#: The three attributes that say where a mailbox lives: its store, its MTA, its server.
HOME = ("homeMDB", "homeMTA", "msExchHomeServerName")

_SERIAL = re.compile(r"version\s+(\d+)(?:\.(\d+))?", re.IGNORECASE)


def parse_version(serial: str | None) -> tuple[str, str]:
    """(version class, product) from a server's serialNumber.

    `Version 5.5 (…)` → 5.5; `6.0` → 2000; `6.5` → 2003; `8.x` → 2007;
    `14` → 2010; `15` → 2013+. Anything else is unknown.
    """
    if not serial:
        return "unknown", "unknown"
    m = _SERIAL.search(serial)
    if not m:
        return "unknown", "unknown"
    major, minor = int(m.group(1)), int(m.group(2) or 0)
    if major == 5 and minor == 5:
        return "5.5", "5.5"
    if major == 6 and minor == 0:
        return "2000", "2000"
    if major == 6 and minor == 5:
        return "2003", "2003"
    if major == 8:
        return "2007+", "2007"
    if major == 14:
        return "2007+", "2010"
    if major >= 15:
        return "2007+", "2013+"
    return "unknown", "unknown"


def renameable(system_flags: int | None) -> bool:
    """Active Directory renames a configuration object only with FLAG_CONFIG_ALLOW_RENAME
    in its systemFlags, and the flag can only be set when the object is created."""
    return system_flags is not None and bool(system_flags & ALLOW_RENAME)


@dataclass(frozen=True)
class Organization:
    dn: str
    name: str
    legacy_dn: str | None
    mixed_mode: bool | None  # None: msExchMixedMode is not set, the mode is unknown
    system_flags: int | None

    @property
    def mode(self) -> str:
        """mixed, native, or unknown (msExchMixedMode not set), in words."""
        return {True: "mixed", False: "native", None: "unknown"}[self.mixed_mode]

    @property
    def might_be_mixed(self) -> bool:
        """Mixed, or not known to be native: what a rule that is stricter in mixed mode
        must assume (with connection agreements present, see exdir.checks)."""
        return self.mixed_mode is not False


@dataclass(frozen=True)
class AdminGroup:
    dn: str
    name: str
    legacy_dn: str | None
    system_flags: int | None


@dataclass(frozen=True)
class ExchangeServer:
    dn: str
    name: str
    legacy_dn: str | None
    serial: str | None
    version: str
    product: str
    admin_group: str | None  # admin group DN
    system_flags: int | None

    @property
    def downlevel(self) -> bool:
        return self.version in DOWNLEVEL


@dataclass(frozen=True)
class StorageGroup:
    dn: str
    name: str
    server: str  # server DN


@dataclass(frozen=True)
class Store:
    dn: str
    name: str
    public: bool
    server: str  # server DN
    storage_group: str | None
    legacy_dn: str | None


@dataclass(frozen=True)
class Mta:
    dn: str
    server: str
    legacy_dn: str | None


@dataclass(frozen=True)
class DomainController:
    dn: str  # the nTDSDSA object
    name: str  # the server object's name
    site: str
    read_only: bool
    dns_host_name: str | None = None  # the server object's dNSHostName
    invocation_id: str | None = None  # names it in replication metadata (a GUID)


@dataclass(frozen=True)
class ConnectionAgreement:
    dn: str
    name: str
    direction: str
    activation_style: int | None
    windows_server: str | None
    exchange_server: str | None


@dataclass
class Topology:
    """The organisation, its groups, servers, stores, MTAs, DCs and ADC agreements."""

    organization: Organization
    admin_groups: list[AdminGroup] = field(default_factory=list)
    servers: list[ExchangeServer] = field(default_factory=list)
    storage_groups: list[StorageGroup] = field(default_factory=list)
    stores: list[Store] = field(default_factory=list)
    mtas: list[Mta] = field(default_factory=list)
    domain_controllers: list[DomainController] = field(default_factory=list)
    agreements: list[ConnectionAgreement] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._by_dn: dict[str, object] = {}
        self._by_legacy: dict[str, object] = {}
        everything: Iterable[object] = [self.organization, *self.admin_groups, *self.servers,
                                        *self.storage_groups, *self.stores, *self.mtas,
                                        *self.domain_controllers, *self.agreements]
        for obj in everything:
            self._by_dn[dnu.key(obj.dn)] = obj  # type: ignore[attr-defined]
            legacy = getattr(obj, "legacy_dn", None)
            if legacy:
                self._by_legacy.setdefault(legacydn.key(legacy), obj)

    # -- lookups ------------------------------------------------------------------
    def by_dn(self, dn: str) -> object | None:
        try:
            return self._by_dn.get(dnu.key(dn))
        except InputError:
            return None

    def by_legacy_dn(self, value: str) -> object | None:
        return self._by_legacy.get(legacydn.key(value))

    def server(self, name_or_dn: str) -> ExchangeServer | None:
        found = self.by_dn(name_or_dn) if "=" in name_or_dn else None
        if isinstance(found, ExchangeServer):
            return found
        matches = [s for s in self.servers if s.name.lower() == name_or_dn.lower()]
        return matches[0] if len(matches) == 1 else None

    def admin_group(self, name_or_dn: str) -> AdminGroup | None:
        found = self.by_dn(name_or_dn) if "=" in name_or_dn else None
        if isinstance(found, AdminGroup):
            return found
        matches = [g for g in self.admin_groups if g.name.lower() == name_or_dn.lower()]
        return matches[0] if len(matches) == 1 else None

    def stores_named(self, name: str) -> list[Store]:
        return [s for s in self.stores if s.name.lower() == name.lower()]

    def server_of(self, obj_dn: str) -> ExchangeServer | None:
        """The server whose subtree holds obj_dn (a store, storage group or MTA)."""
        for anc in [obj_dn, *dnu.ancestors(obj_dn)]:
            found = self.by_dn(anc)
            if isinstance(found, ExchangeServer):
                return found
        return None

    def mta_of(self, server_dn: str) -> Mta | None:
        key = dnu.key(server_dn)
        return next((m for m in self.mtas if dnu.key(m.server) == key), None)

    def store_label(self, store: Store) -> str:
        """SERVER/STORAGE GROUP/STORE, as `exdir move --to` takes a store."""
        server = self.server_of(store.dn)
        sg = dnu.rdn_value(store.storage_group) if store.storage_group else "?"
        return f"{server.name if server else '?'}/{sg}/{store.name}"

    def describe(self, dn: str) -> str | None:
        """What the object at dn is, in words ("the mailbox store EX1/First Storage
        Group/Mailbox Store (EX1)"), or None when the topology does not hold it."""
        found = self.by_dn(dn)
        if isinstance(found, Store):
            return (f"the {'public folder' if found.public else 'mailbox'} store "
                    f"{self.store_label(found)}")
        if isinstance(found, ExchangeServer):
            return f"the server {found.name}"
        if isinstance(found, Mta):
            server = self.server_of(found.dn)
            return f"the MTA of {server.name if server else found.server}"
        if isinstance(found, StorageGroup):
            server = self.server_of(found.dn)
            return f"the storage group {found.name} of {server.name if server else '?'}"
        if isinstance(found, AdminGroup):
            return f"the administrative group {found.name}"
        if isinstance(found, Organization):
            return f"the organisation {found.name}"
        if isinstance(found, DomainController):
            return f"the NTDS Settings of the domain controller {found.name}"
        if isinstance(found, ConnectionAgreement):
            return f"the connection agreement {found.name}"
        return None

    @property
    def read_only_dcs(self) -> list[DomainController]:
        return [d for d in self.domain_controllers if d.read_only]

    @property
    def exchange_root(self) -> str:
        """CN=Microsoft Exchange,CN=Services,<configuration>."""
        return dnu.parent(self.organization.dn)
