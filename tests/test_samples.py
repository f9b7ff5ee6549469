"""The bundled samples follow docs/exchange.md's rules, entry by entry.

`check_organisation` is an independent reading of the rules (DN shapes, classes,
legacyExchangeDN values, home attributes), written against the LDIF as parsed by the
`ldif` package, not against exdir's own readers; tests/test_lab.py applies it to
generated directories too.
"""
from __future__ import annotations

import importlib.util
import io
import re
from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from types import ModuleType
from typing import Any, Callable

import ldif
import pytest
from ldap3.utils.dn import escape_rdn

from exdir import dn as dnutil
from exdir import schema

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples"
SAMPLE_NAMES = ("fabrikam", "fabrikam-multidc", "fabrikam-mixed")
DOMAIN = "DC=fabrikam,DC=com"
RENAMEABLE = "1610612736"

ALLOWED_CLASSES = frozenset(c.lower() for c in (
    "top", "container", "configuration", "domain", "domainDNS", "organizationalUnit",
    "person", "organizationalPerson", "user", "group", "contact", "sitesContainer", "site",
    "serversContainer", "server", "applicationSettings", "nTDSDSA",
    "msExchConfigurationContainer", "msExchOrganizationContainer",
    "msExchAdminGroupContainer", "msExchAdminGroup", "msExchServersContainer",
    "msExchExchangeServer", "msExchInformationStore", "msExchStorageGroup", "msExchMDB",
    "msExchPrivateMDB", "msExchPublicMDB", "mTA", "msExchContainer",
    "msExchRoutingGroupContainer", "msExchRoutingGroup", "msExchGenericPolicyContainer",
    "msExchRecipientPolicyContainer", "msExchGenericPolicy", "msExchRecipientPolicy",
    "msExchConnectionAgreement", "msExchActiveDirectoryConnector",
    "msExchMessageDeliveryConfig", "msExchUce"))
# Attributes slapd's core, cosine and inetorgperson schemas define that the data uses.
OPENLDAP_CORE = frozenset(a.lower() for a in (
    "objectClass", "cn", "sn", "ou", "dc", "description", "displayName", "mail", "member",
    "serialNumber", "givenName", "telephoneNumber"))
SERVER_OWNED = frozenset(a.lower() for a in (
    "distinguishedName", "name", "objectCategory", "whenChanged", "whenCreated",
    "uSNChanged", "uSNCreated"))
WIRELESS = ("msexchomaadminwirelessenable", "msexchomaadminextendedsettings")
ADC_DISABLED = "ADCDisabledMail"


# --- parsing -------------------------------------------------------------------------------

@dataclass
class Entry:
    dn: str
    attrs: dict[str, list[str | bytes]]  # lower-case attribute name -> values

    def get(self, name: str) -> list[str | bytes]:
        return self.attrs.get(name.lower(), [])

    def one(self, name: str) -> str | bytes | None:
        values = self.get(name)
        return values[0] if values else None

    def text(self, name: str) -> str:
        value = self.one(name)
        return value if isinstance(value, str) else ""

    @property
    def classes(self) -> set[str]:
        return {str(c).lower() for c in self.get("objectClass")}

    @property
    def key(self) -> str:
        return dnutil.key(self.dn)


def parse(text: str) -> list[Entry]:
    """Entry records in file order; binary attributes as bytes, everything else as text."""
    parser = ldif.LDIFParser(io.BytesIO(text.encode("utf-8")), encoding=None, strict=True)
    out: list[Entry] = []
    for dn, record in parser.parse():
        if dn is None:
            continue
        attrs: dict[str, list[str | bytes]] = {}
        for name, values in record.items():
            binary = schema.is_binary(name)
            attrs.setdefault(name.lower(), []).extend(
                v if binary else v.decode("utf-8") for v in values)
        out.append(Entry(dn, attrs))
    return out


# --- the rules ----------------------------------------------------------------------------

_LEGACY_TYPES = re.compile(r"^(o|ou|cn)=(.*)$", re.IGNORECASE)


def legacy_dn_problem(value: str) -> str | None:
    """Why value breaks MS-OXOABK's grammar (docs/exchange.md), or None when it is well formed."""
    if not (value.isascii() and value.isprintable()):
        return "not printable ASCII"
    if not value.startswith("/"):
        return "does not start with /"
    parts = value[1:].split("/")
    types: list[str] = []
    total = 0
    for part in parts:
        m = _LEGACY_TYPES.match(part)
        if not m:
            return f"part {part!r} is not o=, ou= or cn="
        name = m.group(2)
        if not 1 <= len(name) <= 64 or name != name.strip():
            return f"part {part!r}: 1-64 characters, no leading or trailing space"
        types.append(m.group(1).lower())
        total += len(name)
    if total > 256:
        return "more than 256 characters of values"
    if types == ["o"]:
        return None
    if types[:2] != ["o", "ou"] or any(t != "cn" for t in types[2:]) or len(types) > 16:
        return "not /o=…[/ou=…[/cn=… up to 14]]"
    return None


def server_version(serial: str) -> str:
    """docs/exchange.md "Server versions": serialNumber to 5.5 / 2000 / 2003 / 2007 / 2010+."""
    m = re.match(r"^Version (\d+)\.(\d+)", serial)
    if not m:
        return "unknown"
    major, minor = int(m.group(1)), int(m.group(2))
    if major == 5 and minor == 5:
        return "5.5"
    if major == 6:
        return {0: "2000", 5: "2003"}.get(minor, "unknown")
    if major == 8:
        return "2007"
    if major >= 14:
        return "2010+"
    return "unknown"


@lru_cache(maxsize=1)
def _superiors() -> dict[str, str | None]:
    _dsa, info = schema.ldap3_schema()
    out: dict[str, str | None] = {}
    for definition in info.object_classes.values():
        for name in definition.name:
            out[name.lower()] = definition.superior[0].lower() if definition.superior else None
    return out


@lru_cache(maxsize=1)
def _lab_attributes() -> frozenset[str]:
    """Attribute names the lab slapd knows: exdir's OpenLDAP schema plus the core schemas."""
    names = re.findall(r"NAME '([^']+)'", schema.openldap_schema_ldif())
    return frozenset(n.lower() for n in names) | OPENLDAP_CORE


@dataclass
class Report:
    """What check_organisation found: the problems and the counts the tests compare."""

    problems: list[str] = field(default_factory=list)
    versions: Counter[str] = field(default_factory=Counter)
    admin_groups: list[str] = field(default_factory=list)
    domain_controllers: int = 0
    read_only_dcs: int = 0
    sites: int = 0
    agreements: int = 0
    mailboxes: int = 0
    wireless: int = 0
    adc_disabled: int = 0
    mixed: bool | None = None
    home_groups: list[tuple[str, str]] = field(default_factory=list)  # (legacy ou, home AG)

    def add(self, dn: str, message: str) -> None:
        self.problems.append(f"{dn}: {message}")


def check_organisation(entries: list[Entry], *, org: str, domain: str,
                       mixed: bool) -> Report:
    """Every rule of docs/exchange.md the samples and lab data must follow."""
    r = Report()
    by_key: dict[str, Entry] = {}
    config = f"CN=Configuration,{domain}"
    org_dn = f"CN={escape_rdn(org)},CN=Microsoft Exchange,CN=Services,{config}"
    org_legacy = f"/o={org}"

    # structure: unique DNs, parents first, classes, attributes, values
    for e in entries:
        if e.key in by_key:
            r.add(e.dn, "duplicate DN")
        parent = dnutil.parent(e.dn)
        if e.key != dnutil.key(domain) and dnutil.key(parent) not in by_key:
            r.add(e.dn, "listed before its parent (or the parent is missing)")
        by_key[e.key] = e
        _check_classes(e, r)
        _check_attributes(e, r)
    if not entries or entries[0].key != dnutil.key(domain):
        r.add(domain, "the domain root must come first")

    def ancestor(e: Entry, cls: str) -> Entry | None:
        for a in dnutil.ancestors(e.dn):
            found = by_key.get(dnutil.key(a))
            if found is not None and cls in found.classes:
                return found
        return None

    # organisation
    orgs = [e for e in entries if "msexchorganizationcontainer" in e.classes]
    if len(orgs) != 1 or orgs[0].key != dnutil.key(org_dn):
        r.add(org_dn, f"expected exactly this organisation, found {[e.dn for e in orgs]}")
    for e in orgs:
        r.mixed = e.text("msExchMixedMode") == "TRUE"
        if e.text("legacyExchangeDN") != org_legacy:
            r.add(e.dn, f"legacyExchangeDN {e.text('legacyExchangeDN')!r} != {org_legacy!r}")
        if r.mixed != mixed:
            r.add(e.dn, f"msExchMixedMode {e.text('msExchMixedMode')!r}, expected mixed={mixed}")
        if e.text("systemFlags") != RENAMEABLE:
            r.add(e.dn, "systemFlags must allow rename (1610612736)")

    # administrative groups, servers, MTAs, stores
    ag_legacy: dict[str, str] = {}
    for e in entries:
        if "msexchadmingroup" not in e.classes:
            continue
        name = dnutil.rdn_value(e.dn)
        r.admin_groups.append(name)
        expected_parent = f"CN=Administrative Groups,{org_dn}"
        if dnutil.key(dnutil.parent(e.dn)) != dnutil.key(expected_parent):
            r.add(e.dn, "admin group outside CN=Administrative Groups of the organisation")
        expected = f"{org_legacy}/ou={name}"
        if e.text("legacyExchangeDN") != expected:
            r.add(e.dn, f"legacyExchangeDN {e.text('legacyExchangeDN')!r} != {expected!r}")
        if e.text("systemFlags") != RENAMEABLE:
            r.add(e.dn, "systemFlags must allow rename (1610612736)")
        ag_legacy[name.lower()] = expected

    servers: dict[str, tuple[Entry, str]] = {}  # key -> (entry, version)
    for e in entries:
        if "msexchexchangeserver" not in e.classes:
            continue
        name = dnutil.rdn_value(e.dn)
        container = by_key.get(dnutil.key(dnutil.parent(e.dn)))
        ag = ancestor(e, "msexchadmingroup")
        if container is None or "msexchserverscontainer" not in container.classes \
                or dnutil.rdn_value(container.dn) != "Servers" or ag is None \
                or dnutil.key(dnutil.parent(container.dn)) != ag.key:
            r.add(e.dn, "server not in CN=Servers of an administrative group")
            continue
        expected = f"{org_legacy}/ou={dnutil.rdn_value(ag.dn)}/cn=Configuration/cn=Servers/cn={name}"
        if e.text("legacyExchangeDN") != expected:
            r.add(e.dn, f"legacyExchangeDN {e.text('legacyExchangeDN')!r} != {expected!r}")
        if e.text("systemFlags") != RENAMEABLE:
            r.add(e.dn, "systemFlags must allow rename (1610612736)")
        version = server_version(e.text("serialNumber"))
        if version == "unknown":
            r.add(e.dn, f"serialNumber {e.text('serialNumber')!r} names no Exchange version")
        if version == "2007" and dnutil.rdn_value(ag.dn) != \
                "Exchange Administrative Group (FYDIBOHF23SPDLT)":
            r.add(e.dn, "an Exchange 2007 server outside Exchange Administrative Group")
        r.versions[version] += 1
        servers[e.key] = (e, version)
        mta = by_key.get(dnutil.key(f"CN=Microsoft MTA,{e.dn}"))
        if mta is None or "mta" not in mta.classes:
            r.add(e.dn, "no CN=Microsoft MTA (objectClass mTA)")
        elif mta.text("legacyExchangeDN") != f"{expected}/cn=Microsoft MTA":
            r.add(mta.dn, f"legacyExchangeDN {mta.text('legacyExchangeDN')!r}")
        store = by_key.get(dnutil.key(f"CN=InformationStore,{e.dn}"))
        if store is None or "msexchinformationstore" not in store.classes:
            r.add(e.dn, "no CN=InformationStore (msExchInformationStore)")

    private: dict[str, Entry] = {}  # store key -> its server entry
    stores_per_server: Counter[tuple[str, str]] = Counter()
    for e in entries:
        if "mta" in e.classes:
            server = by_key.get(dnutil.key(dnutil.parent(e.dn)))
            if server is None or server.key not in servers or dnutil.rdn_value(e.dn) != "Microsoft MTA":
                r.add(e.dn, "an MTA must be CN=Microsoft MTA directly under a server")
        if "msexchstoragegroup" in e.classes:
            parent = by_key.get(dnutil.key(dnutil.parent(e.dn)))
            if parent is None or "msexchinformationstore" not in parent.classes:
                r.add(e.dn, "storage group outside an InformationStore")
        kind = ("private" if "msexchprivatemdb" in e.classes
                else "public" if "msexchpublicmdb" in e.classes else None)
        if kind is None:
            continue
        sg = by_key.get(dnutil.key(dnutil.parent(e.dn)))
        server = ancestor(e, "msexchexchangeserver")
        if sg is None or "msexchstoragegroup" not in sg.classes or server is None \
                or dnutil.key(dnutil.parent(dnutil.parent(sg.dn))) != server.key:
            r.add(e.dn, "store not in a storage group of a server's InformationStore")
            continue
        suffix = "/cn=Microsoft Private MDB" if kind == "private" else "/cn=Microsoft Public MDB"
        if e.text("legacyExchangeDN") != server.text("legacyExchangeDN") + suffix:
            r.add(e.dn, f"legacyExchangeDN {e.text('legacyExchangeDN')!r}")
        stores_per_server[(server.key, kind)] += 1
        if kind == "private":
            private[e.key] = server
    for key, (server, _v) in servers.items():
        if not stores_per_server[(key, "private")] or not stores_per_server[(key, "public")]:
            r.add(server.dn, "a server needs a mailbox store and a public store")

    # every legacyExchangeDN: grammar, uniqueness, inside the organisation
    seen: dict[str, str] = {}
    for e in entries:
        for value in e.get("legacyExchangeDN"):
            assert isinstance(value, str)
            if value == ADC_DISABLED:
                r.adc_disabled += 1
                if not mixed:
                    r.add(e.dn, "ADCDisabledMail outside a mixed organisation")
                continue
            problem = legacy_dn_problem(value)
            if problem:
                r.add(e.dn, f"legacyExchangeDN {value!r}: {problem}")
            low = value.lower()
            if low in seen:
                r.add(e.dn, f"legacyExchangeDN {value!r} also on {seen[low]}")
            seen[low] = e.dn
            if low != org_legacy.lower() and not low.startswith(org_legacy.lower() + "/"):
                r.add(e.dn, f"legacyExchangeDN {value!r} outside {org_legacy}")

    # recipients
    for e in entries:
        classes = e.classes
        if ("user" in classes or "contact" in classes) and not e.get("sn"):
            r.add(e.dn, "a person entry needs sn")
        if "group" in classes and not e.get("groupType"):
            r.add(e.dn, "a group needs groupType")
        if e.get("mailNickname"):
            _check_recipient(e, r, org_legacy, ag_legacy)
        if not e.get("homeMDB"):
            if any(e.get(w) for w in WIRELESS):
                r.add(e.dn, "wireless attributes without a mailbox")
            continue
        r.mailboxes += 1
        store_server = private.get(dnutil.key(e.text("homeMDB")))
        if store_server is None:
            r.add(e.dn, f"homeMDB {e.text('homeMDB')!r} names no mailbox store")
            continue
        if dnutil.key(e.text("homeMTA")) != dnutil.key(f"CN=Microsoft MTA,{store_server.dn}"):
            r.add(e.dn, f"homeMTA {e.text('homeMTA')!r} is not the MTA of the store's server")
        if e.text("msExchHomeServerName").lower() != store_server.text("legacyExchangeDN").lower():
            r.add(e.dn, "msExchHomeServerName is not the store's server legacyExchangeDN")
        guid = e.one("msExchMailboxGuid")
        if not isinstance(guid, bytes) or len(guid) != 16:
            r.add(e.dn, "msExchMailboxGuid must be 16 bytes")
        version = servers[store_server.key][1]
        if any(e.get(w) for w in WIRELESS):
            r.wireless += 1
            if version not in ("2003", "2007", "2010+"):
                r.add(e.dn, f"wireless attributes on a mailbox homed on Exchange {version}")
        m = re.match(r"^/o=[^/]+/ou=([^/]+)/", e.text("legacyExchangeDN"), re.IGNORECASE)
        home_ag = dnutil.rdn_value(dnutil.parent(dnutil.parent(store_server.dn)))
        if m:
            r.home_groups.append((m.group(1), home_ag))

    # DN references point at entries of the file
    references = schema.dn_attributes()
    for e in entries:
        for name, values in e.attrs.items():
            if name not in references:
                continue
            for value in values:
                assert isinstance(value, str)
                if dnutil.key(value) not in by_key:
                    r.add(e.dn, f"{name} {value!r} names no entry")

    _check_sites(entries, by_key, config, r)
    _check_adc(entries, by_key, org_dn, servers, r)
    return r


def _check_classes(e: Entry, r: Report) -> None:
    classes = e.classes
    unknown = classes - ALLOWED_CLASSES
    if unknown:
        r.add(e.dn, f"object classes outside the agreed list: {sorted(unknown)}")
        return
    superiors = _superiors()
    leaves = set(classes)
    for c in classes:
        sup = superiors.get(c)
        if c != "top" and (sup is None or sup not in classes):
            r.add(e.dn, f"objectClass {c} without its superior {sup}")
        leaves.discard(sup)  # type: ignore[arg-type]
    if "top" not in classes or len(leaves) != 1:
        r.add(e.dn, f"objectClass must be one whole chain from top, got {sorted(classes)}")
    for c in sorted(classes):  # Exchange's mustContain, as a real AD enforces it
        definition = schema.class_definition(c)
        missing = [m for m in definition.must if m.lower() not in e.attrs] if definition else []
        if missing:
            r.add(e.dn, f"objectClass {c} without its required {', '.join(missing)}")


def _check_attributes(e: Entry, r: Report) -> None:
    known = _lab_attributes()
    for name, values in e.attrs.items():
        if name in SERVER_OWNED:
            r.add(e.dn, f"server-owned attribute {name}")
            continue
        if name not in known:
            r.add(e.dn, f"attribute {name} unknown to the lab schema")
            continue
        if len(values) > 1 and schema.is_single_valued(name):
            r.add(e.dn, f"{name} is single-valued but has {len(values)} values")
        if len(set(values)) != len(values):
            r.add(e.dn, f"{name} repeats a value")
        kind = schema.kind_of(name) if schema.attribute(name) else "string"
        for v in values:
            if kind == "boolean" and v not in ("TRUE", "FALSE"):
                r.add(e.dn, f"{name} {v!r} is not TRUE/FALSE")
            elif kind == "integer" and not re.fullmatch(r"-?\d+", str(v)):
                r.add(e.dn, f"{name} {v!r} is not an integer")
            elif kind == "dn":
                try:
                    dnutil.split(str(v))
                except Exception as exc:  # InputError: malformed
                    r.add(e.dn, f"{name} {v!r}: {exc}")
            elif kind == "octets" and not isinstance(v, bytes):
                r.add(e.dn, f"{name} must be binary")


def _check_recipient(e: Entry, r: Report, org_legacy: str, ag_legacy: dict[str, str]) -> None:
    legacy = e.text("legacyExchangeDN")
    m = re.match(r"^/o=([^/]+)/ou=([^/]+)/cn=Recipients/cn=([^/]+)$", legacy, re.IGNORECASE)
    if not m or f"/o={m.group(1)}".lower() != org_legacy.lower() \
            or m.group(2).lower() not in ag_legacy:
        r.add(e.dn, f"recipient legacyExchangeDN {legacy!r} is not "
                    "/o=<Org>/ou=<existing AG>/cn=Recipients/cn=<alias>")
    proxies = [str(p) for p in e.get("proxyAddresses")]
    primaries = [p for p in proxies if p.startswith("SMTP:")]
    if len(primaries) != 1:
        r.add(e.dn, f"needs exactly one primary SMTP address, has {primaries}")
    elif primaries[0][5:].lower() != e.text("mail").lower():
        r.add(e.dn, "mail differs from the primary SMTP address")
    for p in proxies:
        if ":" not in p:
            r.add(e.dn, f"proxy address {p!r} has no type")
        elif p.upper().startswith("X500:"):
            problem = legacy_dn_problem(p[5:])
            if problem:
                r.add(e.dn, f"X500 proxy {p!r}: {problem}")
    if "contact" in e.classes and not e.text("targetAddress").startswith("SMTP:"):
        r.add(e.dn, "a mail contact needs targetAddress SMTP:…")


def _check_sites(entries: list[Entry], by_key: dict[str, Entry], config: str, r: Report) -> None:
    sites_key = dnutil.key(f"CN=Sites,{config}")
    site_names = set()
    for e in entries:
        if "ntdsdsa" not in e.classes:
            continue
        parts = dnutil.split(e.dn)
        # CN=NTDS Settings,CN=<DC>,CN=Servers,CN=<Site>,CN=Sites,CONFIG
        if len(parts) < 5 or parts[0][1] != "NTDS Settings" or parts[2][1] != "Servers" \
                or dnutil.key(dnutil.build(parts[4:])) != sites_key:
            r.add(e.dn, "nTDSDSA outside CN=NTDS Settings,CN=<DC>,CN=Servers,CN=<Site>,CN=Sites")
            continue
        dc = by_key[dnutil.key(dnutil.parent(e.dn))]
        if "server" not in dc.classes or not dc.text("dNSHostName"):
            r.add(dc.dn, "a domain controller is a server object with dNSHostName")
        r.domain_controllers += 1
        site_names.add(parts[3][1].lower())
        if e.text("msDS-isRODC") == "TRUE":
            r.read_only_dcs += 1
    r.sites = len(site_names)


def _check_adc(entries: list[Entry], by_key: dict[str, Entry], org_dn: str,
               servers: dict[str, tuple[Entry, str]], r: Report) -> None:
    exchange = dnutil.parent(org_dn)
    adc_key = dnutil.key(f"CN=Active Directory Connections,{exchange}")
    five_five = {dnutil.rdn_value(s.dn).lower() for s, v in servers.values() if v == "5.5"}
    hosts = {e.text("dNSHostName").lower() for e in entries if e.get("dNSHostName")}
    for e in entries:
        if "msexchconnectionagreement" not in e.classes:
            continue
        r.agreements += 1
        if dnutil.key(dnutil.parent(e.dn)) != adc_key:
            r.add(e.dn, "agreement outside CN=Active Directory Connections")
        direction = e.text("msExchSynchronizationDirection")
        activation = e.text("activationStyle")
        if direction not in ("0", "1", "2"):
            r.add(e.dn, f"msExchSynchronizationDirection {direction!r} not 0, 1 or 2")
        if activation not in ("0", "1", "2"):
            r.add(e.dn, f"activationStyle {activation!r} not 0, 1 or 2")
        schedule = e.one("activationSchedule")
        if (activation == "1") != (schedule is not None):
            r.add(e.dn, "activationSchedule goes with activationStyle 1 (selected times)")
        if schedule is not None and (not isinstance(schedule, bytes) or len(schedule) != 84):
            r.add(e.dn, "activationSchedule must be 84 bytes (15-minute slots of a week)")
        service = by_key.get(dnutil.key(e.text("msExchHomeSyncService")))
        if service is None or "msexchactivedirectoryconnector" not in service.classes:
            r.add(e.dn, "msExchHomeSyncService names no ADC service object")
        if e.text("msExchServer2NetworkAddress").lower() not in five_five:
            r.add(e.dn, "msExchServer2NetworkAddress names no Exchange 5.5 server")
        if e.text("msExchServer1NetworkAddress").lower() not in hosts:
            r.add(e.dn, "msExchServer1NetworkAddress names no domain controller")


# --- the samples ----------------------------------------------------------------------------

def sample_text(name: str) -> str:
    return (SAMPLES / f"{name}.ldif").read_text(encoding="utf-8")


@lru_cache(maxsize=None)
def sample(name: str) -> tuple[Entry, ...]:
    return tuple(parse(sample_text(name)))


def report(name: str) -> Report:
    return check_organisation(list(sample(name)), org="Fabrikam", domain=DOMAIN,
                              mixed=name == "fabrikam-mixed")


def by_alias(name: str, alias: str) -> Entry:
    found = [e for e in sample(name) if e.text("mailNickname") == alias]
    assert len(found) == 1, f"{alias} in {name}: {[e.dn for e in found]}"
    return found[0]


def _make_samples() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_samples", SAMPLES / "make_samples.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", SAMPLE_NAMES)
def test_sample_follows_exchange_rules(name: str) -> None:
    assert report(name).problems == []


@pytest.mark.parametrize("name", SAMPLE_NAMES)
def test_sample_starts_with_version_and_is_readable_text(name: str) -> None:
    text = sample_text(name)
    assert text.startswith("version: 1\n")
    assert "\r" not in text


@pytest.mark.parametrize("name", SAMPLE_NAMES)
def test_committed_sample_is_what_the_generator_writes(name: str) -> None:
    """samples/make_samples.py is the source: a hand edit or a schema change shows here."""
    assert sample_text(name) == _make_samples().text(name)


def test_fabrikam_shape() -> None:
    r = report("fabrikam")
    assert r.mixed is False
    assert sorted(r.admin_groups) == ["Europe", "First Administrative Group"]
    assert r.versions == Counter({"5.5": 1, "2000": 1, "2003": 2})
    assert (r.domain_controllers, r.read_only_dcs, r.sites) == (1, 0, 1)
    assert r.agreements == 0 and r.adc_disabled == 0
    assert 25 <= r.mailboxes <= 35
    assert 3 <= r.wireless < r.mailboxes


def test_servers_spread_over_both_admin_groups() -> None:
    groups: dict[str, set[str]] = {}
    for e in sample("fabrikam"):
        if "msexchexchangeserver" in e.classes:
            ag = dnutil.rdn_value(dnutil.parent(dnutil.parent(e.dn)))
            groups.setdefault(ag, set()).add(server_version(e.text("serialNumber")))
    assert groups == {"First Administrative Group": {"2003", "2000"},
                      "Europe": {"5.5", "2003"}}


def test_multidc_has_three_dcs_over_two_sites_one_read_only() -> None:
    r = report("fabrikam-multidc")
    assert (r.domain_controllers, r.read_only_dcs, r.sites) == (3, 1, 2)
    assert r.mixed is False and r.agreements == 0


def test_mixed_has_connection_agreements_and_the_adc_stamp() -> None:
    r = report("fabrikam-mixed")
    assert r.mixed is True
    assert r.agreements >= 1
    assert r.adc_disabled == 1
    agreements = [e for e in sample("fabrikam-mixed")
                  if "msexchconnectionagreement" in e.classes]
    directions = {e.text("msExchSynchronizationDirection") for e in agreements}
    assert "0" in directions  # a mixed organisation needs a two-way agreement
    assert any(e.text("activationStyle") == "2" for e in agreements)


def test_only_the_mixed_sample_differs_in_mode_and_adc() -> None:
    """Same organisation: the recipients and servers of the three files agree."""
    def recipients(name: str) -> dict[str, list[str | bytes]]:
        return {e.key: e.get("homeMDB") + e.get("legacyExchangeDN")
                for e in sample(name) if e.get("mailNickname")}
    assert recipients("fabrikam") == recipients("fabrikam-multidc")
    assert set(recipients("fabrikam")) <= set(recipients("fabrikam-mixed"))


def test_user_whose_cn_holds_a_comma() -> None:
    e = by_alias("fabrikam", "jsmith")
    assert e.dn == "CN=Smith\\, John,OU=Staff,DC=fabrikam,DC=com"
    assert e.text("cn") == "Smith, John"
    assert e.text("legacyExchangeDN") == \
        "/o=Fabrikam/ou=First Administrative Group/cn=Recipients/cn=jsmith"
    group = next(g for g in sample("fabrikam") if "group" in g.classes)
    assert dnutil.key(e.dn) in {dnutil.key(str(m)) for m in group.get("member")}


def test_public_delegate_points_at_another_user() -> None:
    e = by_alias("fabrikam", "kakers")
    delegate = by_alias("fabrikam", "pcoleman")
    assert [dnutil.key(str(d)) for d in e.get("publicDelegates")] == [delegate.key]


def test_mixed_case_legacy_dn_and_x500_history() -> None:
    mixed_case = by_alias("fabrikam", "tadams").text("legacyExchangeDN")
    assert mixed_case == "/O=Fabrikam/OU=First Administrative Group/CN=RECIPIENTS/CN=tadams"
    moved = by_alias("fabrikam", "kberg")
    assert "X500:/o=Fabrikam/ou=Europe/cn=Recipients/cn=kberg" in moved.get("proxyAddresses")
    assert moved.text("legacyExchangeDN").startswith("/o=Fabrikam/ou=First Administrative Group/")


def test_group_and_contact_are_mail_enabled() -> None:
    entries = sample("fabrikam")
    groups = [e for e in entries if "group" in e.classes]
    contacts = [e for e in entries if "contact" in e.classes]
    assert len(groups) >= 1 and len(contacts) >= 1
    assert all(g.text("groupType") == "-2147483646" and g.text("mail") for g in groups)
    assert all(len(g.get("member")) >= 2 for g in groups)
    assert all(c.text("targetAddress").startswith("SMTP:") for c in contacts)


def test_non_ascii_names_survive_base64() -> None:
    e = by_alias("fabrikam", "jmueller")
    assert e.text("cn") == "Jürgen Müller"
    assert "dn:: " in sample_text("fabrikam")


def test_wireless_only_on_exchange_2003_homes() -> None:
    """A move to 5.5/2000 strips them; the samples never hold the forbidden state."""
    with_wireless = [e for e in sample("fabrikam") if e.get("msExchOmaAdminWirelessEnable")]
    assert with_wireless
    values = {e.text("msExchOmaAdminWirelessEnable") for e in with_wireless}
    assert {"0", "7"} <= values
    for e in with_wireless:
        assert "/cn=EX1" in e.text("msExchHomeServerName") or \
            "/cn=EUR2" in e.text("msExchHomeServerName")


# --- the checker itself must catch what it claims to catch --------------------------------

def _mutated(name: str, alias: str, attribute: str, value: str | bytes | None) -> list[Entry]:
    out = []
    for e in sample(name):
        attrs = {k: list(v) for k, v in e.attrs.items()}
        if e.text("mailNickname") == alias:
            if value is None:
                attrs.pop(attribute.lower(), None)
            else:
                attrs[attribute.lower()] = [value]
        out.append(Entry(e.dn, attrs))
    return out


SPLIT_MTA = ("CN=Microsoft MTA,CN=EX2,CN=Servers,CN=First Administrative Group,"
             "CN=Administrative Groups,CN=Fabrikam,CN=Microsoft Exchange,CN=Services,"
             "CN=Configuration,DC=fabrikam,DC=com")


@pytest.mark.parametrize(("attribute", "value", "expected"), [
    ("homeMTA", SPLIT_MTA, "homeMTA"),
    ("msExchHomeServerName", "/o=Fabrikam/ou=Europe/cn=Configuration/cn=Servers/cn=EUR2",
     "msExchHomeServerName"),
    ("homeMDB", "CN=Gone,DC=fabrikam,DC=com", "names no mailbox store"),
    ("legacyExchangeDN", "/o=Fabrikam/ou=First Administrative Group/cn=Recipients/cn= x",
     "leading or trailing space"),
    ("legacyExchangeDN", "/o=Fabrikam Archive/ou=Europe/cn=Recipients/cn=jsmith", "outside"),
    ("msExchMailboxGuid", b"short", "16 bytes"),
    ("msExchOmaAdminWirelessEnable", "yes", "not an integer"),
    ("sn", None, "needs sn"),
    ("name", "John Smith", "server-owned"),
])
def test_checker_catches(attribute: str, value: str | bytes | None, expected: str) -> None:
    entries = _mutated("fabrikam", "jsmith", attribute, value)
    problems = check_organisation(entries, org="Fabrikam", domain=DOMAIN, mixed=False).problems
    assert any(expected in p for p in problems), problems


def test_checker_catches_wireless_on_a_downlevel_home() -> None:
    entries = _mutated("fabrikam", "tbremer", "msExchOmaAdminWirelessEnable", "7")
    problems = check_organisation(entries, org="Fabrikam", domain=DOMAIN, mixed=False).problems
    assert any("Exchange 2000" in p for p in problems), problems


def test_checker_catches_a_child_before_its_parent() -> None:
    entries = list(sample("fabrikam"))
    entries.append(entries.pop(1))  # OU=Staff after its users
    problems = check_organisation(entries, org="Fabrikam", domain=DOMAIN, mixed=False).problems
    assert any("before its parent" in p for p in problems)


@pytest.mark.parametrize(("value", "ok"), [
    ("/o=Fabrikam", True),
    ("/o=Fabrikam/ou=Europe", True),
    ("/O=Fabrikam/OU=Europe/CN=RECIPIENTS/CN=x", True),
    ("/o=Fabrikam/cn=Recipients", False),
    ("o=Fabrikam", False),
    ("/o=Fabrikam/ou=Europe/cn=", False),
    ("/o=Fabrikam/ou=" + "x" * 65, False),
    ("/o=Fabrikam/ou=Europe/" + "/".join(["cn=a"] * 15), False),
    ("/o=Fabrikam/ou=Europe/cn=Müller", False),
])
def test_legacy_dn_grammar(value: str, ok: bool) -> None:
    assert (legacy_dn_problem(value) is None) == ok


# --- the samples load into a real slapd with the schema exdir ships ---------------------------

def slapadd_text(text: str) -> str:
    """slapadd (the fixture's bulk loader) rejects RFC 2849's version line: drop it."""
    return text.replace("version: 1\n", "", 1) if text.startswith("version: 1\n") else text


@pytest.mark.parametrize("name", SAMPLE_NAMES)
def test_sample_loads_into_slapd(slapd_factory: Callable[..., Any], name: str) -> None:
    server = slapd_factory(slapadd_text(sample_text(name)))
    stored = {dnutil.key(dn): attrs for dn, attrs in server.entries().items()}
    assert set(stored) == {e.key for e in sample(name)}
    jsmith = by_alias(name, "jsmith")
    got = {k.lower(): v for k, v in stored[jsmith.key].items()}
    assert got["homemdb"] == jsmith.get("homeMDB")
    assert got["msexchmailboxguid"] == jsmith.get("msExchMailboxGuid")
