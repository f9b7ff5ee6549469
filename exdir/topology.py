"""The Exchange organisation as the configuration partition describes it.

Read with two searches (the Exchange services subtree and the Sites subtree),
never one per object; every planner and check takes a Topology instead of
searching again.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Iterable

from . import dn as dnu
from .backends.base import Directory, Entry
from .errors import InputError

VERSIONS = ("5.5", "2000", "2003", "2007+", "unknown")
DOWNLEVEL = frozenset({"5.5", "2000"})  # older than Exchange 2003: no wireless attributes
ALLOW_RENAME = 0x40000000  # FLAG_CONFIG_ALLOW_RENAME on configuration objects
SYNC_DIRECTIONS = {0: "two-way", 1: "one-way to Exchange", 2: "one-way to Windows"}

_SERIAL = re.compile(r"version\s+(\d+)(?:\.(\d+))?", re.IGNORECASE)
_EXCHANGE_CLASSES = ("msExchOrganizationContainer", "msExchAdminGroup", "msExchExchangeServer",
                     "msExchStorageGroup", "msExchPrivateMDB", "msExchPublicMDB", "mTA",
                     "msExchConnectionAgreement")
_ATTRS = ("objectClass", "cn", "legacyExchangeDN", "serialNumber", "msExchMixedMode",
          "systemFlags", "msExchSynchronizationDirection", "activationStyle",
          "msExchServer1NetworkAddress", "msExchServer2NetworkAddress", "msDS-isRODC",
          "options", "dNSHostName")


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


def _bool(value: str | None) -> bool:
    return (value or "").strip().upper() == "TRUE"


def _mixed(value: str | None) -> bool:
    """msExchMixedMode: only FALSE (or no value) is native mode.  Anything else (`1`,
    `yes`, a typo) is taken as mixed, the state whose safety rules are stricter: a
    wrong "native" would let the ADC write old homes back over a move."""
    return value is not None and value.strip().upper() != "FALSE"


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


@dataclass(frozen=True)
class Organization:
    dn: str
    name: str
    legacy_dn: str | None
    mixed_mode: bool
    system_flags: int | None


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
                self._by_legacy.setdefault(legacy.lower(), obj)

    # -- lookups ------------------------------------------------------------------
    def by_dn(self, dn: str) -> object | None:
        try:
            return self._by_dn.get(dnu.key(dn))
        except InputError:
            return None

    def by_legacy_dn(self, value: str) -> object | None:
        return self._by_legacy.get(value.lower())

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

    @property
    def read_only_dcs(self) -> list[DomainController]:
        return [d for d in self.domain_controllers if d.read_only]

    @property
    def exchange_root(self) -> str:
        """CN=Microsoft Exchange,CN=Services,<configuration>."""
        return dnu.parent(self.organization.dn)


def read_topology(directory: Directory) -> Topology:
    """Build the Topology with one search of the Exchange subtree and one of Sites."""
    config = directory.naming.configuration
    if not config:
        raise InputError("no configuration partition found (is this an Active Directory export?)")
    exchange_root = f"CN=Microsoft Exchange,CN=Services,{config}"
    flt = "(|" + "".join(f"(objectClass={c})" for c in _EXCHANGE_CLASSES) + ")"
    found: list[Entry] = list(directory.search(exchange_root, flt, _ATTRS))
    orgs = [e for e in found if "msexchorganizationcontainer" in e.object_classes]
    if not orgs:
        raise InputError(f"no Exchange organisation under {exchange_root}")
    if len(orgs) > 1:
        raise InputError("more than one Exchange organisation: "
                         + ", ".join(sorted(e.dn for e in orgs)))
    o = orgs[0]
    org = Organization(dn=o.dn, name=dnu.rdn_value(o.dn), legacy_dn=o.text("legacyExchangeDN"),
                       mixed_mode=_mixed(o.text("msExchMixedMode")),
                       system_flags=_int(o.text("systemFlags")))
    topo_parts: dict[str, list] = {k: [] for k in ("ag", "srv", "sg", "store", "mta", "ca")}
    for e in found:
        classes = e.object_classes
        name = dnu.rdn_value(e.dn)
        legacy = e.text("legacyExchangeDN")
        if "msexchadmingroup" in classes:
            topo_parts["ag"].append(AdminGroup(e.dn, name, legacy, _int(e.text("systemFlags"))))
        elif "msexchexchangeserver" in classes:
            version, product = parse_version(e.text("serialNumber"))
            parents = dnu.ancestors(e.dn)
            ag = parents[1] if len(parents) > 1 else None
            topo_parts["srv"].append(ExchangeServer(e.dn, name, legacy, e.text("serialNumber"),
                                                    version, product, ag,
                                                    _int(e.text("systemFlags"))))
        elif "msexchstoragegroup" in classes:
            topo_parts["sg"].append(StorageGroup(e.dn, name, ""))
        elif "msexchprivatemdb" in classes or "msexchpublicmdb" in classes:
            topo_parts["store"].append(Store(e.dn, name, "msexchpublicmdb" in classes, "",
                                             dnu.parent(e.dn), legacy))
        elif "mta" in classes:
            topo_parts["mta"].append(Mta(e.dn, dnu.parent(e.dn), legacy))
        elif "msexchconnectionagreement" in classes:
            code = _int(e.text("msExchSynchronizationDirection"))
            direction = SYNC_DIRECTIONS.get(code, "unknown") if code is not None else "unknown"
            topo_parts["ca"].append(ConnectionAgreement(
                e.dn, name, direction, _int(e.text("activationStyle")),
                e.text("msExchServer1NetworkAddress"), e.text("msExchServer2NetworkAddress")))
    servers: list[ExchangeServer] = topo_parts["srv"]
    server_keys = {dnu.key(s.dn): s.dn for s in servers}

    def owner(dn: str) -> str:
        for anc in dnu.ancestors(dn):
            k = dnu.key(anc)
            if k in server_keys:
                return server_keys[k]
        return ""

    sgs = [StorageGroup(g.dn, g.name, owner(g.dn)) for g in topo_parts["sg"]]
    stores = [Store(s.dn, s.name, s.public, owner(s.dn), s.storage_group, s.legacy_dn)
              for s in topo_parts["store"]]
    dcs = _read_dcs(directory, config)
    by_name = lambda o: o.name.lower()  # noqa: E731 - searches return entries in any order
    names = {dnu.key(s.dn): s.name.lower() for s in servers}
    on_server = lambda o: (names.get(dnu.key(o.server), ""), o.name.lower() if hasattr(o, "name") else "")  # noqa: E731,E501
    return Topology(org, sorted(topo_parts["ag"], key=by_name), sorted(servers, key=by_name),
                    sorted(sgs, key=on_server), sorted(stores, key=on_server),
                    sorted(topo_parts["mta"], key=on_server), dcs,
                    sorted(topo_parts["ca"], key=by_name))


def _read_dcs(directory: Directory, config: str) -> list[DomainController]:
    """Every nTDSDSA under CN=Sites (read-only DCs included and marked)."""
    out: list[DomainController] = []
    for e in directory.search(f"CN=Sites,{config}", "(objectClass=nTDSDSA)",
                              ("objectClass", "msDS-isRODC", "options")):
        parents = dnu.ancestors(e.dn)
        server_name = dnu.rdn_value(parents[0]) if parents else ""
        site = dnu.rdn_value(parents[2]) if len(parents) > 2 else ""
        # msDS-isRODC is constructed (ldifde exports omit it); the class nTDSDSARO is stored
        read_only = _bool(e.text("msDS-isRODC")) or "ntdsdsaro" in e.object_classes
        out.append(DomainController(e.dn, server_name, site, read_only))
    out.sort(key=lambda d: (d.site.lower(), d.name.lower()))
    return out
