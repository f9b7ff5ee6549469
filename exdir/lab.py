"""Synthetic Exchange organisations as LDIF: the fixture for benchmarks and scale tests.

`generate()` streams an Active Directory forest holding an Exchange organisation of
any size in the shape docs/exchange.md describes: administrative groups,
servers of every version (5.5, 2000, 2003 and a 2007 server in
`Exchange Administrative Group (FYDIBOHF23SPDLT)`), storage groups, mailbox and
public stores, MTAs, domain controllers, optionally an Active Directory Connector
with its connection agreements (mixed mode), and mailboxes spread over the stores
with consistent homeMDB, homeMTA and msExchHomeServerName.  Output is
deterministic for a seed and streamed in chunks, so 100k mailboxes never sit in
memory at once.

The building blocks (`Layout`, `Server`, `record`, the entry builders) also make the
bundled samples (samples/make_samples.py), so both follow one set of rules.
Each entry lists its object classes with their whole superclass chain, taken from
exdir.schema, and only attributes exdir.schema (or OpenLDAP's core schemas) knows,
so every output loads into the lab slapd as well as into the in-memory directory.
Each entry also holds what Exchange's schema requires of its classes (an MTA's
mTALocalDesig and transfer times, a store's deliveryMechanism) and sits under a
parent its class's possSuperiors allow, so the output loads into an Active
Directory extended with Exchange's real schema too: parents come before children,
and the few references to a later entry (a server's msExchResponsibleMTAServer
names its own child MTA) need a loader that adds DN-valued attributes in a second
pass, as Active Directory refuses a reference to an object not there yet.
"""
from __future__ import annotations

import io
import math
import random
import unicodedata
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import IO, Iterable, Iterator, Sequence, Union

from ldap3.core.exceptions import LDAPInvalidDnError
from ldap3.utils.dn import escape_rdn, parse_dn

from . import schema
from .errors import InputError
from .ldif_out import entry_record, value_line
from .legacydn import check_name
from .topology import DOWNLEVEL, E2007_ADMIN_GROUP, parse_version
from .values import Value

Attrs = list[tuple[str, Value]]  # ordered (attribute, value) pairs; repeated names = values
Entry = tuple[str, Attrs]

# --- Exchange facts the generator stamps (see docs/exchange.md) -------------------

#: serialNumber of a server per Exchange release (docs/exchange.md, "Server versions"):
#: the releases the generator makes, named as exdir.topology.parse_version names the
#: product of each serialNumber (its version classes are exdir.topology.VERSIONS).
SERIAL_NUMBERS: dict[str, str] = {
    "5.5": "Version 5.5 (Build 2653.23: Service Pack 4)",
    "2000": "Version 6.0 (Build 6249.4: Service Pack 3)",
    "2003": "Version 6.5 (Build 7638.2: Service Pack 2)",
    "2007": "Version 8.1 (Build 240.6)",
}
#: Exchange setup stamps configuration objects "allow rename and move" (0x60000000).
SYSTEM_FLAGS_RENAMEABLE = 1610612736
#: Active Directory's stamp on server objects under CN=Sites (as Windows writes it).
SYSTEM_FLAGS_SITE_SERVER = 1375731712
SYSTEM_FLAGS_SITE = 1107296256
#: nTDSDSA options: 1 = global catalog; a read-only DC also disables outbound
#: replication and connection translation (37, as Windows stamps RODCs).
NTDS_OPTIONS_GC = 1
NTDS_OPTIONS_RODC = 37
FIRST_ADMIN_GROUP = "First Administrative Group"
E2007_ROUTING_GROUP = "Exchange Routing Group (DWBGZMFD01QNBJR)"
DEFAULT_SITE = "Default-First-Site-Name"
ADC_CONTAINER = "Active Directory Connections"
#: groupType of a global security group (the mail-enabled groups of the samples).
GROUP_GLOBAL_SECURITY = -2147483646
#: msExchOmaAdminWirelessEnable: absent = all on; 0 all enabled; 7 all disabled
#: (bits: 1 up-to-date notifications off, 2 Outlook Mobile Access off,
#: 4 user-initiated synchronisation off).
WIRELESS_VALUES: tuple[int, ...] = (0, 1, 3, 5, 7)
#: The lab's msExchOmaAdminExtendedSettings values.  The real value format is not
#: confirmed; exdir treats the attribute as opaque (it only removes it on moves to
#: servers older than 2003), so these are shape-only stand-ins.
WIRELESS_EXTENDED_SETTINGS: tuple[str, ...] = (
    "OMA:DeviceSecurityExempt=0", "OMA:DirectPushEnabled=1", "OMA:DirectPushEnabled=0")
#: ADC connection agreements (msExchSynchronizationDirection): 0 two-way,
#: 1 one-way from Windows (AD -> 5.5, by elimination), 2 one-way from Exchange.
DIRECTION_TWO_WAY = 0
DIRECTION_FROM_WINDOWS = 1
DIRECTION_FROM_EXCHANGE = 2
#: activationStyle: 0 never, 1 selected times (activationSchedule), 2 always.
ACTIVATION_NEVER = 0
ACTIVATION_SCHEDULED = 1
ACTIVATION_ALWAYS = 2
#: What Exchange's schema makes every MTA hold (mTA's mustContain): mTALocalDesig,
#: the server's name, and the transfer retry interval and timeout in minutes.
MTA_TRANS_RETRY_MINS = 5
MTA_TRANS_TIMEOUT_MINS = 20
#: deliveryMechanism, which every store must hold (msExchMDB's mustContain):
#: 0 = MAPI, the store's own delivery.
DELIVERY_MECHANISM_MAPI = 0

MAILBOXES_PER_SERVER = 2500
_BLOCK = 1000  # mailboxes per streamed chunk (and per lab group / contact)


# --- LDIF text ----------------------------------------------------------------------------

def ldif_line(name: str, value: Value) -> str:
    """One attribute line, base64 where exdir.ldif_out's rule says (bytes, and text
    that is not plain printable ASCII or starts or ends unsafely)."""
    return value_line(name, value)


def record(dn: str, attrs: Iterable[tuple[str, Value]]) -> str:
    """An LDIF content record (unfolded lines), ending in its blank line: exdir.ldif_out's
    entry writer, so a generated lab and a saved directory share one value rule."""
    return entry_record(dn, ((name, (value,)) for name, value in attrs), width=None)


# --- object classes from the schema ---------------------------------------------------

def classes(structural: str) -> Attrs:
    return [("objectClass", c) for c in schema.class_chain(structural)]


# --- names and DNs --------------------------------------------------------------------------

def rdn(attr: str, value: str) -> str:
    return f"{attr}={escape_rdn(value)}"


def mail_domain(domain_dn: str) -> str:
    """The DNS name of a DC=…,DC=… domain DN (DC=fabrikam,DC=com -> fabrikam.com)."""
    try:
        parts = parse_dn(domain_dn, escape=False, strip=True)
    except LDAPInvalidDnError as exc:
        raise InputError(f"malformed domain DN {domain_dn!r}: {exc}") from None
    if not parts or any(attr.lower() != "dc" for attr, _v, _s in parts):
        raise InputError(f"domain DN {domain_dn!r} must consist of DC= components")
    return ".".join(v for _a, v, _s in parts).lower()


@dataclass(frozen=True)
class Server:
    """One Exchange server and the names of its objects (docs/exchange.md's table)."""

    name: str
    admin_group: str
    version: str
    dn: str
    legacy_dn: str
    recovery_group: bool = False

    @property
    def serial_number(self) -> str:
        return SERIAL_NUMBERS[self.version]

    @property
    def mta_dn(self) -> str:
        return f"CN=Microsoft MTA,{self.dn}"

    @property
    def mta_legacy_dn(self) -> str:
        return f"{self.legacy_dn}/cn=Microsoft MTA"

    @property
    def information_store_dn(self) -> str:
        return f"CN=InformationStore,{self.dn}"

    @property
    def storage_group_dn(self) -> str:
        return f"CN=First Storage Group,{self.information_store_dn}"

    @property
    def recovery_group_dn(self) -> str:
        return f"CN=Recovery Storage Group,{self.information_store_dn}"

    @property
    def mailbox_store_name(self) -> str:
        return "Mailbox Database" if self.version == "2007" else f"Mailbox Store ({self.name})"

    @property
    def public_store_name(self) -> str:
        return ("Public Folder Database" if self.version == "2007"
                else f"Public Folder Store ({self.name})")

    @property
    def mailbox_store_dn(self) -> str:
        return f"{rdn('CN', self.mailbox_store_name)},{self.storage_group_dn}"

    @property
    def public_store_dn(self) -> str:
        return f"{rdn('CN', self.public_store_name)},{self.storage_group_dn}"

    @property
    def mailbox_store_legacy_dn(self) -> str:
        return f"{self.legacy_dn}/cn=Microsoft Private MDB"

    @property
    def public_store_legacy_dn(self) -> str:
        return f"{self.legacy_dn}/cn=Microsoft Public MDB"

    @property
    def supports_wireless(self) -> bool:
        """Exchange 2003 and later keep the wireless attributes (docs/exchange.md, moves)."""
        return parse_version(self.serial_number)[0] not in DOWNLEVEL


@dataclass(frozen=True)
class DomainController:
    name: str
    site: str = DEFAULT_SITE
    read_only: bool = False


@dataclass(frozen=True)
class Agreement:
    """An ADC recipient connection agreement between a 5.5 site and the domain."""

    name: str
    exchange_server: Server  # the Exchange 5.5 bridgehead (msExchServer2…)
    windows_server: DomainController  # the domain controller (msExchServer1…)
    ad_container: str  # where the agreement imports/exports in Active Directory
    direction: int = DIRECTION_TWO_WAY
    activation: int = ACTIVATION_ALWAYS


@dataclass(frozen=True)
class Layout:
    """The DNs and legacyExchangeDN values of one forest and organisation."""

    domain: str
    org: str

    def __post_init__(self) -> None:
        check_name(self.org, "organisation")
        mail_domain(self.domain)

    @cached_property
    def dns_domain(self) -> str:
        return mail_domain(self.domain)

    @cached_property
    def config(self) -> str:
        return f"CN=Configuration,{self.domain}"

    @cached_property
    def services(self) -> str:
        return f"CN=Services,{self.config}"

    @cached_property
    def exchange(self) -> str:
        return f"CN=Microsoft Exchange,{self.services}"

    @cached_property
    def org_dn(self) -> str:
        return f"{rdn('CN', self.org)},{self.exchange}"

    @cached_property
    def org_legacy_dn(self) -> str:
        return f"/o={self.org}"

    @cached_property
    def admin_groups_dn(self) -> str:
        return f"CN=Administrative Groups,{self.org_dn}"

    @cached_property
    def adc_dn(self) -> str:
        return f"{rdn('CN', ADC_CONTAINER)},{self.exchange}"

    @cached_property
    def sites_dn(self) -> str:
        return f"CN=Sites,{self.config}"

    def admin_group_dn(self, ag: str) -> str:
        return f"{rdn('CN', ag)},{self.admin_groups_dn}"

    def admin_group_legacy_dn(self, ag: str) -> str:
        return f"{self.org_legacy_dn}/ou={ag}"

    def server(self, ag: str, name: str, version: str, *, recovery_group: bool = False) -> Server:
        if version not in SERIAL_NUMBERS:
            raise InputError(f"unknown Exchange version {version!r}")
        check_name(ag, "administrative group")
        check_name(name, "server")
        return Server(name, ag, version,
                      f"{rdn('CN', name)},CN=Servers,{self.admin_group_dn(ag)}",
                      f"{self.admin_group_legacy_dn(ag)}/cn=Configuration/cn=Servers/cn={name}",
                      recovery_group)

    def recipient_legacy_dn(self, ag: str, alias: str) -> str:
        return f"{self.admin_group_legacy_dn(ag)}/cn=Recipients/cn={alias}"

    def site_dn(self, site: str) -> str:
        return f"{rdn('CN', site)},{self.sites_dn}"

    def dc_dn(self, dc: DomainController) -> str:
        return f"{rdn('CN', dc.name)},CN=Servers,{self.site_dn(dc.site)}"

    def dc_dns_name(self, dc: DomainController) -> str:
        return f"{dc.name.lower()}.{self.dns_domain}"

    def adc_service_dn(self, host: str) -> str:
        return f"{rdn('CN', f'Active Directory Connector ({host})')},{self.adc_dn}"


# --- configuration entries -----------------------------------------------------------------

def domain_root(layout: Layout) -> Entry:
    dc = parse_dn(layout.domain, escape=False, strip=True)[0][1]
    return layout.domain, [*classes("domainDNS"), ("dc", dc)]


def organizational_unit(layout: Layout, name: str, parent: str | None = None,
                        description: str | None = None) -> Entry:
    attrs: Attrs = [*classes("organizationalUnit"), ("ou", name)]
    if description:
        attrs.append(("description", description))
    return f"{rdn('OU', name)},{parent or layout.domain}", attrs


def container(dn: str, cn: str, structural: str = "container", *extra: tuple[str, Value]) -> Entry:
    return dn, [*classes(structural), ("cn", cn), *extra]


def sites_entries(layout: Layout, dcs: Sequence[DomainController]) -> Iterator[Entry]:
    """CN=Sites, each site with its servers container, each DC with its NTDS Settings."""
    yield container(layout.sites_dn, "Sites", "sitesContainer")
    seen: list[str] = []
    for dc in dcs:
        if dc.site not in seen:
            seen.append(dc.site)
    for site in seen:
        site_dn = layout.site_dn(site)
        yield container(site_dn, site, "site", ("systemFlags", str(SYSTEM_FLAGS_SITE)))
        yield container(f"CN=Servers,{site_dn}", "Servers", "serversContainer")
        for dc in dcs:
            if dc.site != site:
                continue
            dn = layout.dc_dn(dc)
            yield container(dn, dc.name, "server",
                             ("dNSHostName", layout.dc_dns_name(dc)),
                             ("systemFlags", str(SYSTEM_FLAGS_SITE_SERVER)))
            ntds: Attrs = [*classes("nTDSDSA"), ("cn", "NTDS Settings"),
                           ("options", str(NTDS_OPTIONS_RODC if dc.read_only else NTDS_OPTIONS_GC))]
            if dc.read_only:  # a read-only DC holds replicas, masters nothing
                ntds.append(("msDS-isRODC", "TRUE"))
            else:
                ntds += [("msDS-hasMasterNCs", nc) for nc in (layout.domain, layout.config)]
            yield f"CN=NTDS Settings,{dn}", ntds


def exchange_root_entries(layout: Layout, *, mixed: bool) -> Iterator[Entry]:
    """CN=Services, CN=Microsoft Exchange, the organisation and its top containers."""
    yield container(layout.services, "Services")
    yield container(layout.exchange, "Microsoft Exchange", "msExchConfigurationContainer")
    yield layout.org_dn, [*classes("msExchOrganizationContainer"), ("cn", layout.org),
                          ("legacyExchangeDN", layout.org_legacy_dn),
                          ("msExchMixedMode", "TRUE" if mixed else "FALSE"),
                          ("systemFlags", str(SYSTEM_FLAGS_RENAMEABLE))]
    yield container(layout.admin_groups_dn, "Administrative Groups", "msExchAdminGroupContainer")
    # a recipient policy may only sit in a msExchRecipientPolicyContainer
    policies = f"CN=Recipient Policies,{layout.org_dn}"
    yield container(policies, "Recipient Policies", "msExchRecipientPolicyContainer")
    yield container(f"CN=Default Policy,{policies}", "Default Policy", "msExchRecipientPolicy",
                     ("description", "Default recipient policy"))


def imf_entries(layout: Layout, *, enabled: bool, gateway: int, store: int) -> Iterator[Entry]:
    """CN=Global Settings, its CN=Message Delivery and the Intelligent Message Filter's
    CN=UCE Content Filter (exdir.imf): the gateway threshold a string, as Exchange's
    schema has it."""
    global_dn = f"CN=Global Settings,{layout.org_dn}"
    yield container(global_dn, "Global Settings", "msExchContainer")
    delivery = f"CN=Message Delivery,{global_dn}"
    yield container(delivery, "Message Delivery", "msExchMessageDeliveryConfig")
    yield container(f"CN=UCE Content Filter,{delivery}", "UCE Content Filter", "msExchUce",
                    ("msExchUceEnabled", "1" if enabled else "0"),
                    ("msExchUceBlockThreshold", str(gateway)),
                    ("msExchUceStoreActionThreshold", str(store)))


def admin_group_mode(servers: Sequence[Server]) -> int:
    """msExchAdminGroupMode: 0 Exchange 2000+ only, 1 Exchange 5.5 only, 2 both."""
    old = any(s.version == "5.5" for s in servers)
    new = any(s.version != "5.5" for s in servers)
    return 2 if old and new else 1 if old else 0


def admin_group_entries(layout: Layout, ag: str, servers: Sequence[Server], *,
                        default: bool = False) -> Iterator[Entry]:
    """The administrative group, its routing group and its servers container."""
    check_name(ag, "administrative group")
    ag_dn = layout.admin_group_dn(ag)
    attrs: Attrs = [*classes("msExchAdminGroup"), ("cn", ag),
                    ("legacyExchangeDN", layout.admin_group_legacy_dn(ag)),
                    ("msExchAdminGroupMode", str(admin_group_mode(servers))),
                    ("systemFlags", str(SYSTEM_FLAGS_RENAMEABLE))]
    if default:
        attrs.append(("msExchDefaultAdminGroup", "TRUE"))
    yield ag_dn, attrs
    routing = f"CN=Routing Groups,{ag_dn}"
    yield container(routing, "Routing Groups", "msExchRoutingGroupContainer")
    rg = E2007_ROUTING_GROUP if ag == E2007_ADMIN_GROUP else "First Routing Group"
    yield container(f"{rdn('CN', rg)},{routing}", rg, "msExchRoutingGroup")
    yield container(f"CN=Servers,{ag_dn}", "Servers", "msExchServersContainer")


def server_entries(server: Server) -> Iterator[Entry]:
    """A server with its MTA, information store, storage group(s) and two stores."""
    renameable = ("systemFlags", str(SYSTEM_FLAGS_RENAMEABLE))
    yield server.dn, [*classes("msExchExchangeServer"), ("cn", server.name),
                      ("serialNumber", server.serial_number),
                      ("legacyExchangeDN", server.legacy_dn),
                      ("msExchResponsibleMTAServer", server.mta_dn), renameable]
    yield server.mta_dn, [*classes("mTA"), ("cn", "Microsoft MTA"),
                          ("mTALocalDesig", server.name),
                          ("transRetryMins", str(MTA_TRANS_RETRY_MINS)),
                          ("transTimeoutMins", str(MTA_TRANS_TIMEOUT_MINS)),
                          ("legacyExchangeDN", server.mta_legacy_dn)]
    yield container(server.information_store_dn, "InformationStore", "msExchInformationStore")
    yield container(server.storage_group_dn, "First Storage Group", "msExchStorageGroup",
                     renameable)
    yield server.mailbox_store_dn, [*classes("msExchPrivateMDB"),
                                    ("cn", server.mailbox_store_name),
                                    ("displayName", server.mailbox_store_name),
                                    ("deliveryMechanism", str(DELIVERY_MECHANISM_MAPI)),
                                    ("legacyExchangeDN", server.mailbox_store_legacy_dn),
                                    renameable]
    yield server.public_store_dn, [*classes("msExchPublicMDB"),
                                   ("cn", server.public_store_name),
                                   ("displayName", server.public_store_name),
                                   ("deliveryMechanism", str(DELIVERY_MECHANISM_MAPI)),
                                   ("legacyExchangeDN", server.public_store_legacy_dn),
                                   renameable]
    if server.recovery_group:
        yield container(server.recovery_group_dn, "Recovery Storage Group",
                         "msExchStorageGroup", renameable)


def adc_entries(layout: Layout, host: str, agreements: Sequence[Agreement]) -> Iterator[Entry]:
    """CN=Active Directory Connections, the ADC service object and its agreements.

    Where real agreements live is inferred (docs/exchange.md); they sit beside the
    service object and name it in msExchHomeSyncService.  msExchServer1… describe
    the Windows side (a domain controller), msExchServer2… the Exchange 5.5 side.
    """
    yield container(layout.adc_dn, ADC_CONTAINER, "msExchContainer")
    service = layout.adc_service_dn(host)
    yield container(service, f"Active Directory Connector ({host})",
                     "msExchActiveDirectoryConnector")
    for ca in agreements:
        five = ca.exchange_server
        site_recipients = f"cn=Recipients,ou={five.admin_group},o={layout.org}"
        attrs: Attrs = [*classes("msExchConnectionAgreement"), ("cn", ca.name),
                        ("msExchSynchronizationDirection", str(ca.direction)),
                        ("activationStyle", str(ca.activation))]
        if ca.activation == ACTIVATION_SCHEDULED:
            attrs.append(("activationSchedule", nightly_schedule()))
        attrs += [("msExchHomeSyncService", service),
                  ("msExchServer1NetworkAddress", layout.dc_dns_name(ca.windows_server)),
                  ("msExchServer2NetworkAddress", five.name)]
        if ca.direction != DIRECTION_FROM_WINDOWS:  # 5.5 -> AD
            attrs += [("msExchServer2ExportContainers", site_recipients),
                      ("msExchServer1ImportContainer", ca.ad_container)]
        if ca.direction != DIRECTION_FROM_EXCHANGE:  # AD -> 5.5
            attrs += [("msExchServer1ExportContainers", ca.ad_container),
                      ("msExchServer2ImportContainer", site_recipients)]
        yield f"{rdn('CN', ca.name)},{layout.adc_dn}", attrs


def nightly_schedule() -> bytes:
    """activationSchedule: one bit per 15 minutes of the week (84 bytes), 01:00-03:00 daily.

    The bit order within the bitmap is not confirmed; exdir reads only activationStyle.
    """
    bits = bytearray(84)
    for day in range(7):
        for quarter in range(4, 12):  # 01:00 to 03:00
            index = day * 96 + quarter
            bits[index // 8] |= 0x80 >> (index % 8)
    return bytes(bits)


# --- recipients -------------------------------------------------------------------------------

def mailbox(layout: Layout, parent: str, *, cn: str, given: str, sn: str, alias: str,
            server: Server, guid: bytes, display: str | None = None,
            legacy_dn: str | None = None, secondary_smtp: Sequence[str] = (),
            history: Sequence[str] = (), wireless: int | None = None,
            wireless_settings: Sequence[str] = (), delegates: Sequence[str] = (),
            extra: Sequence[tuple[str, Value]] = ()) -> Entry:
    """A mailbox-enabled user homed on server's mailbox store (docs/exchange.md recipients).

    history: earlier legacyExchangeDN values, kept as X500 proxies.
    """
    if len(guid) != 16:
        raise ValueError("msExchMailboxGuid must be 16 bytes")
    primary = f"{alias}@{layout.dns_domain}"
    attrs: Attrs = [*classes("user"), ("cn", cn), ("sn", sn), ("givenName", given),
                    ("displayName", display or f"{given} {sn}"),
                    ("sAMAccountName", alias), ("userPrincipalName", primary),
                    ("mail", primary), ("mailNickname", alias),
                    ("legacyExchangeDN", legacy_dn or layout.recipient_legacy_dn(
                        server.admin_group, alias)),
                    ("proxyAddresses", f"SMTP:{primary}")]
    attrs += [("proxyAddresses", f"smtp:{address}") for address in secondary_smtp]
    attrs += [("proxyAddresses", f"X500:{old}") for old in history]
    attrs += [("homeMDB", server.mailbox_store_dn), ("homeMTA", server.mta_dn),
              ("msExchHomeServerName", server.legacy_dn), ("msExchMailboxGuid", guid)]
    if wireless is not None:
        attrs.append(("msExchOmaAdminWirelessEnable", str(wireless)))
    attrs += [("msExchOmaAdminExtendedSettings", s) for s in wireless_settings]
    attrs += [("publicDelegates", d) for d in delegates]
    attrs += list(extra)
    return f"{rdn('CN', cn)},{parent}", attrs


def mail_group(layout: Layout, parent: str, *, cn: str, alias: str, admin_group: str,
               members: Sequence[str], description: str | None = None) -> Entry:
    """A mail-enabled global security group."""
    address = f"{alias}@{layout.dns_domain}"
    attrs: Attrs = [*classes("group"), ("cn", cn), ("groupType", str(GROUP_GLOBAL_SECURITY)),
                    ("sAMAccountName", alias), ("displayName", cn), ("mail", address),
                    ("mailNickname", alias),
                    ("legacyExchangeDN", layout.recipient_legacy_dn(admin_group, alias)),
                    ("proxyAddresses", f"SMTP:{address}")]
    if description:
        attrs.append(("description", description))
    attrs += [("member", m) for m in members]
    return f"{rdn('CN', cn)},{parent}", attrs


def mail_contact(layout: Layout, parent: str, *, cn: str, given: str, sn: str, alias: str,
                 external: str, admin_group: str) -> Entry:
    """A mail-enabled contact forwarding to an outside SMTP address."""
    attrs: Attrs = [*classes("contact"), ("cn", cn), ("sn", sn), ("givenName", given),
                    ("displayName", cn), ("mail", external), ("mailNickname", alias),
                    ("targetAddress", f"SMTP:{external}"),
                    ("legacyExchangeDN", layout.recipient_legacy_dn(admin_group, alias)),
                    ("proxyAddresses", f"SMTP:{external}")]
    return f"{rdn('CN', cn)},{parent}", attrs


# --- the synthetic organisation -----------------------------------------------------------------

_GIVEN = ("Anna", "Ben", "Carla", "David", "Eva", "Frank", "Grace", "Hugo", "Ines", "Jonas",
          "Karin", "Lars", "Mia", "Nils", "Olga", "Paul", "Rosa", "Sven", "Tina", "Uwe",
          "Vera", "Walter", "Yara", "Zoë", "Søren", "Chloé", "Ahmed", "Mei", "Raj", "Lucía")
_SURNAMES = ("Adams", "Berg", "Clark", "Dubois", "Evans", "Fischer", "Garcia", "Hansen",
             "Ito", "Jensen", "Kowalski", "Larsen", "Martin", "Novak", "Olsen", "Petrov",
             "Quinn", "Rossi", "Schmidt", "Tanaka", "Meyer", "Vogel", "Weber", "Young",
             "Müller", "Åberg", "Núñez", "O'Brien", "Smith", "Lee")
_REGIONS = ("Europe", "Americas", "Asia Pacific", "Africa", "Middle East", "Nordics",
            "Iberia", "Benelux", "Oceania", "Latin America")


def ascii_fold(text: str) -> str:
    """Letters and digits only, accents dropped (Müller -> Muller), for aliases."""
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return "".join(ch for ch in folded if ch.isalnum())


def admin_group_names(count: int) -> list[str]:
    """First Administrative Group, then regions, then numbered groups."""
    names = [FIRST_ADMIN_GROUP]
    for i in range(1, count):
        names.append(_REGIONS[i - 1] if i - 1 < len(_REGIONS) else f"Administrative Group {i + 1}")
    return names


def plan_servers(layout: Layout, mailboxes: int, ags: Sequence[str]) -> list[Server]:
    """Servers of every version over the groups, enough for MAILBOXES_PER_SERVER each.

    The first group holds 2003 and 2000 servers; the second (or the first, alone) an
    Exchange 5.5 server beside a 2003 one; further groups a 2003 server each; the
    2007 server sits in Exchange Administrative Group (FYDIBOHF23SPDLT).  Extra
    capacity is added as 2003 servers round the groups, every fourth as 2007.
    """
    base: list[tuple[str, str]] = [(ags[0], "2003"), (ags[0], "2000")]
    legacy_site = ags[1] if len(ags) > 1 else ags[0]
    base += [(legacy_site, "5.5")]
    if len(ags) > 1:
        base += [(legacy_site, "2003")]
    base += [(ag, "2003") for ag in ags[2:]]
    base += [(E2007_ADMIN_GROUP, "2007")]
    wanted = max(len(base), math.ceil(mailboxes / MAILBOXES_PER_SERVER))
    extra = wanted - len(base)
    for i in range(extra):
        base.append((E2007_ADMIN_GROUP, "2007") if i % 4 == 3 else (ags[i % len(ags)], "2003"))
    servers: list[Server] = []
    first_2003 = True
    for n, (ag, version) in enumerate(base, start=1):
        name = f"E2K7MBX{n:03d}" if version == "2007" else f"EXSRV{n:03d}"
        recovery = version == "2003" and first_2003
        first_2003 = first_2003 and version != "2003"
        servers.append(layout.server(ag, name, version, recovery_group=recovery))
    return servers


def plan_dcs(count: int) -> list[DomainController]:
    """DC1…DCn, two per site; every third one read-only."""
    dcs = []
    for i in range(count):
        site = DEFAULT_SITE if i < 2 else f"Site-{i // 2 + 1}"
        dcs.append(DomainController(f"DC{i + 1}", site, read_only=(i % 3 == 2)))
    return dcs


def _validate(mailboxes: int, admin_groups: int, dcs: int) -> None:
    if mailboxes < 0:
        raise InputError("--mailboxes must be 0 or more")
    if admin_groups < 1:
        raise InputError("--admin-groups must be 1 or more")
    if dcs < 1:
        raise InputError("--dcs must be 1 or more")


def generate(mailboxes: int, org: str = "Fabrikam", admin_groups: int = 2, dcs: int = 1,
             adc: bool = False, seed: int = 0, domain: str = "DC=fabrikam,DC=com"
             ) -> Iterator[str]:
    """A synthetic organisation as LDIF text chunks (first `version: 1`, parents first).

    The configuration comes first, then mailboxes in chunks of 1000 (each chunk also
    holds a mail-enabled group of some of its mailboxes and a contact).  With adc the
    organisation is in mixed mode and an Active Directory Connector with one two-way
    connection agreement per Exchange 5.5 site is added.  Same arguments, same text.
    """
    _validate(mailboxes, admin_groups, dcs)
    layout = Layout(domain, org)
    rng = random.Random(seed)
    ags = admin_group_names(admin_groups)
    servers = plan_servers(layout, mailboxes, ags)
    controllers = plan_dcs(dcs)

    head = ["version: 1\n\n"]
    entries: list[Entry] = [domain_root(layout),
                            organizational_unit(layout, "Staff", description="Mailbox users"),
                            container(layout.config, "Configuration", "configuration")]
    entries += sites_entries(layout, controllers)
    entries += exchange_root_entries(layout, mixed=adc)
    for i, ag in enumerate([*ags, E2007_ADMIN_GROUP]):
        in_group = [s for s in servers if s.admin_group == ag]
        entries += admin_group_entries(layout, ag, in_group, default=(i == 0))
        for server in in_group:
            entries += server_entries(server)
    if adc:
        staff = f"OU=Staff,{layout.domain}"
        agreements = [Agreement(f"{s.admin_group} Recipients ({s.name})", s, controllers[0], staff)
                      for s in servers if s.version == "5.5"]
        entries += adc_entries(layout, controllers[0].name, agreements)
    head.extend(record(dn, attrs) for dn, attrs in entries)
    yield "".join(head)

    yield from _mailbox_chunks(layout, rng, servers, mailboxes)


def _mailbox_chunks(layout: Layout, rng: random.Random, servers: Sequence[Server],
                    count: int) -> Iterator[str]:
    """Mailboxes in chunks of _BLOCK records, each block closed by a group and a contact."""
    staff = f"OU=Staff,{layout.domain}"
    eligible = sum(1 for s in servers if s.supports_wireless) / len(servers)
    p_wireless = min(1.0, 0.10 / eligible) if eligible else 0.0
    hex_digits = "0123456789abcdef"
    legacy_groups = sorted({s.admin_group for s in servers if s.version != "2007"})
    out: list[str] = []
    block_members: list[str] = []
    previous_dn: str | None = None
    for i in range(count):
        given = rng.choice(_GIVEN)
        sn = rng.choice(_SURNAMES)
        server = rng.choice(servers)
        alias = f"{ascii_fold(given)[:1]}{ascii_fold(sn)[:11]}{i + 1}".lower()
        cn = f"{sn}, {given} {i + 1}" if i % 50 == 7 else f"{given} {sn} {i + 1}"
        legacy = None
        if server.version == "2007":
            prefix = "".join(rng.choice(hex_digits) for _ in range(32))
            legacy = layout.recipient_legacy_dn(server.admin_group, f"{prefix}-{alias}"[:64])
        history: list[str] = []
        if rng.random() < 0.05:  # moved from another group: the old value kept as X500
            others = [ag for ag in legacy_groups if ag != server.admin_group]
            if others:
                history.append(layout.recipient_legacy_dn(rng.choice(others), alias))
        wireless = None
        settings: list[str] = []
        if server.supports_wireless and rng.random() < p_wireless:
            wireless = rng.choice(WIRELESS_VALUES)
            if rng.random() < 0.5:
                settings.append(rng.choice(WIRELESS_EXTENDED_SETTINGS))
        delegates = [previous_dn] if previous_dn is not None and rng.random() < 0.01 else []
        dn, attrs = mailbox(
            layout, staff, cn=cn, given=given, sn=sn, alias=alias, server=server,
            guid=rng.randbytes(16), legacy_dn=legacy,
            secondary_smtp=[f"{ascii_fold(given)}.{ascii_fold(sn)}{i + 1}@{layout.dns_domain}".lower()],
            history=history, wireless=wireless, wireless_settings=settings, delegates=delegates)
        out.append(record(dn, attrs))
        previous_dn = dn
        if len(block_members) < 25:
            block_members.append(dn)
        if (i + 1) % _BLOCK == 0 or i + 1 == count:
            block = (i // _BLOCK) + 1
            ag = servers[0].admin_group
            out.append(record(*mail_group(layout, staff, cn=f"Team {block:04d}",
                                          alias=f"team{block:04d}", admin_group=ag,
                                          members=block_members)))
            out.append(record(*mail_contact(layout, staff, cn=f"Partner Contact {block:04d}",
                                            given="Partner", sn=f"Contact {block:04d}",
                                            alias=f"partner{block:04d}",
                                            external=f"partner{block:04d}@example.net",
                                            admin_group=ag)))
            block_members = []
            yield "".join(out)
            out = []


def write(path_or_file: Union[str, Path, IO[str]], mailboxes: int, org: str = "Fabrikam",
          admin_groups: int = 2, dcs: int = 1, adc: bool = False, seed: int = 0,
          domain: str = "DC=fabrikam,DC=com") -> int:
    """Write generate(...) to a path (UTF-8) or an open text file; returns characters written.

    A path must not exist yet (PathExists, exit 2: a lab file is never overwritten in
    place) and is written through a temporary file linked into place at the end
    (exdir.files.new_file), so a killed run leaves no truncated file that would load."""
    chunks = generate(mailboxes, org=org, admin_groups=admin_groups, dcs=dcs, adc=adc,
                      seed=seed, domain=domain)
    written = 0
    if isinstance(path_or_file, (str, Path)):
        from .files import new_file

        with new_file(str(path_or_file), "output file") as raw:
            f = io.TextIOWrapper(raw, encoding="utf-8", newline="\n", write_through=False)
            for chunk in chunks:
                written += f.write(chunk)
            f.flush()
            f.detach()  # new_file closes the file itself
        return written
    for chunk in chunks:
        written += path_or_file.write(chunk)
    return written
