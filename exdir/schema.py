"""The Exchange schema subset exdir knows: one source for every backend.

Exchange's own attributes and classes are defined here once, with Microsoft's
OIDs.  The Active Directory base attributes and classes our data needs come from
the AD 2012 R2 schema that ldap3 ships (Microsoft's definitions, not ours).
From these two sources we build:

- ldap3's offline AD schema extended with the Exchange definitions (MOCK_SYNC);
- an OpenLDAP cn=config schema entry, so a lab slapd holds the same data;
- the facts the Directory needs: which attributes hold DNs, which are binary,
  which are single-valued, how values compare.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from typing import Iterable, Literal

from ldap3.protocol.rfc4512 import DsaInfo, SchemaInfo
from ldap3.protocol.schemas.ad2012R2 import ad_2012_r2_dsa_info, ad_2012_r2_schema
from ldap3.protocol.schemas.slapd24 import slapd_2_4_schema

Kind = Literal["dn", "string", "integer", "boolean", "octets"]

# LDAP syntax OIDs (RFC 4517) and the AD-specific ones ldap3's AD schema uses.
SYNTAX_DN = "1.3.6.1.4.1.1466.115.121.1.12"
SYNTAX_STRING = "1.3.6.1.4.1.1466.115.121.1.15"
SYNTAX_INTEGER = "1.3.6.1.4.1.1466.115.121.1.27"
SYNTAX_BOOLEAN = "1.3.6.1.4.1.1466.115.121.1.7"
SYNTAX_OCTETS = "1.3.6.1.4.1.1466.115.121.1.40"
SYNTAX_TELETEX_AD = "1.2.840.113556.1.4.905"  # String(Teletex): legacyExchangeDN

_KIND_BY_SYNTAX: dict[str, Kind] = {
    SYNTAX_DN: "dn",
    SYNTAX_STRING: "string",
    SYNTAX_INTEGER: "integer",
    SYNTAX_BOOLEAN: "boolean",
    SYNTAX_OCTETS: "octets",
    SYNTAX_TELETEX_AD: "string",
    "1.3.6.1.4.1.1466.115.121.1.44": "string",  # printable
    "1.3.6.1.4.1.1466.115.121.1.26": "string",  # IA5
    "1.3.6.1.4.1.1466.115.121.1.36": "string",  # numeric
    "1.3.6.1.4.1.1466.115.121.1.38": "string",  # OID
    "1.3.6.1.4.1.1466.115.121.1.24": "string",  # generalized time
    "1.3.6.1.4.1.1466.115.121.1.53": "string",  # UTC time
    "1.2.840.113556.1.4.906": "integer",  # large integer
    "1.2.840.113556.1.4.907": "octets",  # security descriptor
    "1.3.6.1.4.1.1466.115.121.1.5": "octets",  # binary
    "1.3.6.1.4.1.1466.115.121.1.28": "octets",  # JPEG
}

_SYNTAX_BY_KIND: dict[Kind, str] = {
    "dn": SYNTAX_DN,
    "string": SYNTAX_STRING,
    "integer": SYNTAX_INTEGER,
    "boolean": SYNTAX_BOOLEAN,
    "octets": SYNTAX_OCTETS,
}

_OPENLDAP_MATCHING: dict[Kind, str] = {
    "dn": "EQUALITY distinguishedNameMatch",
    "string": "EQUALITY caseIgnoreMatch SUBSTR caseIgnoreSubstringsMatch",
    "integer": "EQUALITY integerMatch",
    "boolean": "EQUALITY booleanMatch",
    "octets": "EQUALITY octetStringMatch",
}


@dataclass(frozen=True)
class AttributeDef:
    """One attribute: its LDAP name, OID, value kind and whether it holds one value.

    om_syntax / attribute_syntax: Active Directory's oMSyntax and attributeSyntax
    where they are not the kind's (10, an enumeration, on an integer; 2.5.5.5 with
    22, an IA5 string).  link_id: Exchange's linkID of a linked attribute (even for
    a forward link, the next odd number for its back link)."""

    name: str
    oid: str
    kind: Kind
    single: bool
    ad_syntax: str | None = None  # the LDAP syntax OID where it is not the kind's
    om_syntax: int | None = None
    attribute_syntax: str | None = None
    link_id: int | None = None

    @property
    def syntax(self) -> str:
        return self.ad_syntax or _SYNTAX_BY_KIND[self.kind]

    @property
    def ad_attribute_syntax(self) -> str:
        return self.attribute_syntax or _AD_SYNTAX[self.kind][0]

    @property
    def ad_om_syntax(self) -> int:
        return self.om_syntax if self.om_syntax is not None else _AD_SYNTAX[self.kind][1]

    @property
    def is_back_link(self) -> bool:
        return self.link_id is not None and self.link_id % 2 == 1


@dataclass(frozen=True)
class ClassDef:
    """One object class: name, OID, superior (subClassOf), kind, mustContain and
    possSuperiors (the class's own: AD adds those of its superclasses)."""

    name: str
    oid: str
    sup: str
    structural: bool = True
    must: tuple[str, ...] = ()
    superiors: tuple[str, ...] = ()  # possSuperiors on Active Directory
    auxiliary: bool = False

    @property
    def category(self) -> int:
        """objectClassCategory: 1 structural, 2 abstract, 3 auxiliary."""
        return 3 if self.auxiliary else 1 if self.structural else 2


# attributeSyntax / oMSyntax per value kind (MS-ADTS 3.1.1.2.2.2)
_AD_SYNTAX: dict[Kind, tuple[str, int]] = {
    "dn": ("2.5.5.1", 127),
    "string": ("2.5.5.12", 64),
    "integer": ("2.5.5.9", 2),
    "boolean": ("2.5.5.8", 1),
    "octets": ("2.5.5.10", 4),
}
OM_ENUMERATION = 10  # oMSyntax of an integer whose values are an enumeration
SYNTAX_IA5 = "1.3.6.1.4.1.1466.115.121.1.26"


def _enum(name: str, oid: str) -> AttributeDef:
    """A single-valued integer Exchange defines as an enumeration (oMSyntax 10)."""
    return AttributeDef(name, oid, "integer", True, om_syntax=OM_ENUMERATION)


# --- Exchange's own definitions (Microsoft's OIDs; see docs/exchange.md) ----
# The facts (attributeID/governsID, attributeSyntax and oMSyntax, isSingleValued,
# linkID, subClassOf, objectClassCategory, possSuperiors, mustContain) are
# Exchange 2003's schema extension as OpenChange's Exchange 2003 schema
# provisioning files carry it; tests/data/exchange_schema_facts.json holds them and
# tests/test_schema_facts.py compares these tables with it.  Where exdir
# deliberately defines less than Exchange:
# - mayContain: Exchange's lists are long; every Exchange class exdir defines may
#   hold every attribute exdir defines (ad_schema_ldif), no more;
# - auxiliary classes: only msExchMailStorage and msExchOmaUser (attached to user,
#   contact and group), not msExchBaseClass, msExchCustomAttributes or the others
#   Exchange attaches; legacyExchangeDN and proxyAddresses, which msExchBaseClass
#   carries, are in Active Directory's base schema already;
# - the schema objects are named by their lDAPDisplayName (CN=homeMDB), not by
#   Exchange's common names (CN=ms-Exch-Home-MDB);
# - rangeLower/rangeUpper, searchFlags, schemaIDGUID and security descriptors are
#   left to the server.
EXCHANGE_ATTRIBUTES: tuple[AttributeDef, ...] = (
    # recipients
    AttributeDef("homeMDB", "1.2.840.113556.1.2.244", "dn", True, link_id=32),
    AttributeDef("homeMTA", "1.2.840.113556.1.2.171", "dn", True),
    AttributeDef("msExchHomeServerName", "1.2.840.113556.1.4.7000.102.47", "string", True),
    AttributeDef("mailNickname", "1.2.840.113556.1.2.447", "string", True),
    AttributeDef("publicDelegates", "1.2.840.113556.1.2.238", "dn", False, link_id=14),
    AttributeDef("altRecipient", "1.2.840.113556.1.2.126", "dn", True, link_id=12),
    AttributeDef("targetAddress", "1.2.840.113556.1.2.352", "string", True),
    AttributeDef("msExchOmaAdminWirelessEnable", "1.2.840.113556.1.6.20.1.124", "integer", True),
    AttributeDef("msExchOmaAdminExtendedSettings", "1.2.840.113556.1.6.20.1.126", "string", False),
    AttributeDef("msExchADCGlobalNames", "1.2.840.113556.1.4.7000.102.63", "string", False),
    AttributeDef("msExchMailboxGuid", "1.2.840.113556.1.4.7000.102.11058", "octets", True),
    # organisation, groups, servers, stores
    AttributeDef("msExchMixedMode", "1.2.840.113556.1.4.7000.102.50022", "boolean", True),
    AttributeDef("msExchAdminGroupMode", "1.2.840.113556.1.4.7000.102.50014", "integer", True),
    AttributeDef("msExchDefaultAdminGroup", "1.2.840.113556.1.4.7000.102.50015", "boolean", True),
    AttributeDef("msExchServerRole", "1.2.840.113556.1.4.7000.102.15006", "integer", True),
    AttributeDef("heuristics", "1.2.840.113556.1.2.452", "integer", True),
    _enum("deliveryMechanism", "1.2.840.113556.1.2.241"),
    AttributeDef("msExchResponsibleMTAServer", "1.2.840.113556.1.4.7000.102.50033", "dn", True,
                 link_id=1030),
    # what an MTA must hold (mTA's mustContain)
    AttributeDef("mTALocalDesig", "1.2.840.113556.1.2.271", "string", True, ad_syntax=SYNTAX_IA5,
                 om_syntax=22, attribute_syntax="2.5.5.5"),
    AttributeDef("transRetryMins", "1.2.840.113556.1.2.219", "integer", True),
    AttributeDef("transTimeoutMins", "1.2.840.113556.1.2.220", "integer", True),
    # what an offline address book must hold (msExchOAB's mustContain)
    AttributeDef("offLineABStyle", "1.2.840.113556.1.2.390", "integer", True),
    AttributeDef("offLineABServer", "1.2.840.113556.1.2.392", "dn", True),
    AttributeDef("offLineABSchedule", "1.2.840.113556.1.2.389", "octets", True),
    AttributeDef("offLineABContainers", "1.2.840.113556.1.2.391", "dn", False),
    AttributeDef("msExchOABFolder", "1.2.840.113556.1.4.7000.102.68", "octets", True),
    AttributeDef("doOABVersion", "1.2.840.113556.1.2.575", "integer", True),
    # Active Directory Connector connection agreements
    _enum("msExchSynchronizationDirection", "1.2.840.113556.1.4.7000.102.1"),
    AttributeDef("msExchServer1NetworkAddress", "1.2.840.113556.1.4.7000.102.3", "string", True),
    AttributeDef("msExchServer2NetworkAddress", "1.2.840.113556.1.4.7000.102.4", "string", True),
    AttributeDef("msExchServer1ExportContainers", "1.2.840.113556.1.4.7000.102.13", "string", False),
    AttributeDef("msExchServer2ExportContainers", "1.2.840.113556.1.4.7000.102.14", "string", False),
    AttributeDef("msExchServer1ImportContainer", "1.2.840.113556.1.4.7000.102.15", "string", True),
    AttributeDef("msExchServer2ImportContainer", "1.2.840.113556.1.4.7000.102.16", "string", True),
    AttributeDef("msExchServer1Flags", "1.2.840.113556.1.4.7000.102.61", "integer", True),
    AttributeDef("msExchServer2Flags", "1.2.840.113556.1.4.7000.102.62", "integer", True),
    _enum("msExchServer1Type", "1.2.840.113556.1.4.7000.102.23"),
    _enum("msExchServer2Type", "1.2.840.113556.1.4.7000.102.24"),
    AttributeDef("msExchNtdsExportContainers", "1.2.840.113556.1.4.7000.102.33", "dn", False),
    AttributeDef("msExchNtdsImportContainer", "1.2.840.113556.1.4.7000.102.34", "dn", True),
    AttributeDef("msExchHomeSyncService", "1.2.840.113556.1.4.7000.102.36", "dn", True,
                 link_id=146),
    AttributeDef("msExchReplicateNow", "1.2.840.113556.1.4.7000.102.53", "boolean", True),
    AttributeDef("activationStyle", "1.2.840.113556.1.2.73", "integer", True),
    AttributeDef("activationSchedule", "1.2.840.113556.1.2.213", "octets", True),
    # the Intelligent Message Filter's thresholds (msExchUce, CN=UCE Content Filter):
    # the gateway threshold is a string on Exchange's schema, the others integers
    AttributeDef("msExchUceEnabled", "1.2.840.113556.1.4.7000.102.12600", "integer", True),
    AttributeDef("msExchUceBlockThreshold", "1.2.840.113556.1.4.7000.102.12601", "string", True),
    AttributeDef("msExchUceStoreActionThreshold", "1.2.840.113556.1.4.7000.102.12602", "integer",
                 True),
)

# The back links Active Directory keeps for Exchange's forward links (linkID + 1):
# the server writes them, on the object the forward link names; nobody else does.
EXCHANGE_BACK_LINKS: tuple[AttributeDef, ...] = (
    AttributeDef("homeMDBBL", "1.2.840.113556.1.2.393", "dn", False, link_id=33),
    AttributeDef("publicDelegatesBL", "1.2.840.113556.1.2.295", "dn", False, link_id=15),
    AttributeDef("altRecipientBL", "1.2.840.113556.1.2.294", "dn", False, link_id=13),
    AttributeDef("msExchResponsibleMTAServerBL", "1.2.840.113556.1.4.7000.102.50034", "dn", False,
                 link_id=1031),
    AttributeDef("msExchChildSyncAgreements", "1.2.840.113556.1.4.7000.102.37", "dn", False,
                 link_id=147),  # msExchHomeSyncService's back link
)

# Classes as Exchange's schema extension defines them.  possSuperiors are the
# class's own: a class below container (msExchOrganizationContainer and the other
# container subclasses) also goes where container may, and AD allows a child under
# any parent one of whose objectClass values is a possible superior.
EXCHANGE_CLASSES: tuple[ClassDef, ...] = (
    # Active Directory's base schema has it (ldap3's and Samba's): never exported
    ClassDef("msExchConfigurationContainer", "1.2.840.113556.1.5.176", "container"),
    ClassDef("msExchOrganizationContainer", "1.2.840.113556.1.5.7000.62.50020", "container"),
    ClassDef("msExchAdminGroupContainer", "1.2.840.113556.1.5.7000.62.50019", "container"),
    ClassDef("msExchAdminGroup", "1.2.840.113556.1.5.7000.62.50011", "top",
             superiors=("msExchAdminGroupContainer",)),
    ClassDef("msExchServersContainer", "1.2.840.113556.1.5.7000.62.50013", "container",
             superiors=("msExchAdminGroup",)),
    ClassDef("msExchExchangeServer", "1.2.840.113556.1.5.7000.62.50009", "server",
             superiors=("msExchServersContainer",)),
    ClassDef("msExchInformationStore", "1.2.840.113556.1.5.7000.62.11001", "container",
             must=("cn",), superiors=("msExchExchangeServer",)),
    ClassDef("msExchStorageGroup", "1.2.840.113556.1.5.7000.62.11006", "container",
             must=("cn",), superiors=("computer",)),
    ClassDef("msExchMDB", "1.2.840.113556.1.5.7000.62.11002", "top",
             must=("cn", "deliveryMechanism"),
             superiors=("computer", "container", "msExchExchangeServer", "msExchStorageGroup")),
    ClassDef("msExchPrivateMDB", "1.2.840.113556.1.5.7000.62.11004", "msExchMDB",
             superiors=("computer", "container")),
    ClassDef("msExchPublicMDB", "1.2.840.113556.1.5.7000.62.11005", "msExchMDB",
             superiors=("computer", "container")),
    ClassDef("mTA", "1.2.840.113556.1.3.49", "top",
             must=("cn", "mTALocalDesig", "transRetryMins", "transTimeoutMins"),
             superiors=("computer", "container", "msExchExchangeServer")),
    ClassDef("msExchContainer", "1.2.840.113556.1.5.7000.62.50010", "container",
             superiors=("msExchAdminGroup",)),
    ClassDef("msExchRoutingGroupContainer", "1.2.840.113556.1.5.7000.62.12001", "container",
             superiors=("msExchAdminGroup",)),
    ClassDef("msExchRoutingGroup", "1.2.840.113556.1.5.7000.62.12002", "container",
             superiors=("msExchRoutingGroupContainer",)),
    # CN=Recipient Policies is a msExchRecipientPolicyContainer, the only place a
    # recipient policy may be
    ClassDef("msExchGenericPolicyContainer", "1.2.840.113556.1.5.7000.62.50021", "top"),
    ClassDef("msExchRecipientPolicyContainer", "1.2.840.113556.1.5.7000.62.50023",
             "msExchGenericPolicyContainer", superiors=("msExchOrganizationContainer",)),
    ClassDef("msExchGenericPolicy", "1.2.840.113556.1.5.7000.62.50022", "top"),
    ClassDef("msExchRecipientPolicy", "1.2.840.113556.1.5.7000.62.50024", "msExchGenericPolicy",
             superiors=("msExchRecipientPolicyContainer",)),
    ClassDef("msExchConnectionAgreement", "1.2.840.113556.1.5.7000.62.3", "top",
             superiors=("container", "organizationalUnit")),
    ClassDef("msExchActiveDirectoryConnector", "1.2.840.113556.1.5.7000.62.4", "top",
             superiors=("container", "organizationalUnit")),
    ClassDef("msExchOAB", "1.2.840.113556.1.5.7000.62.9", "top",
             must=("doOABVersion", "msExchOABFolder", "offLineABContainers", "offLineABSchedule",
                   "offLineABServer", "offLineABStyle"),
             superiors=("container",)),
    # CN=Message Delivery,CN=Global Settings and the IMF's CN=UCE Content Filter below it
    ClassDef("msExchMessageDeliveryConfig", "1.2.840.113556.1.5.7000.62.50028", "top",
             superiors=("container",)),
    ClassDef("msExchUce", "1.2.840.113556.1.5.7000.62.50037", "top",
             superiors=("msExchMessageDeliveryConfig",)),
)

# Auxiliary classes carrying recipient attributes on user, contact and group, as
# Exchange's extension does (msExchMailStorage, msExchOmaUser; msExchBaseClass's
# legacyExchangeDN and proxyAddresses are in the base schema already).  Exchange
# puts publicDelegates, altRecipient and their back links in mailRecipient; exdir
# adds them to msExchMailStorage instead of modifying a base class's mayContain.
AD_RECIPIENT_AUX: tuple[tuple[ClassDef, tuple[str, ...]], ...] = (
    (ClassDef("msExchMailStorage", "1.2.840.113556.1.5.7000.62.5", "top", auxiliary=True),
     ("homeMDB", "homeMTA", "msExchHomeServerName", "msExchMailboxGuid", "mailNickname",
      "publicDelegates", "altRecipient", "targetAddress", "msExchADCGlobalNames",
      "publicDelegatesBL", "altRecipientBL")),
    (ClassDef("msExchOmaUser", "1.2.840.113556.1.6.20.2.31", "top", auxiliary=True),
     ("msExchOmaAdminWirelessEnable", "msExchOmaAdminExtendedSettings")),
)
AD_RECIPIENT_CLASSES: tuple[str, ...] = ("user", "contact", "group")


def class_definition(name: str) -> ClassDef | None:
    """exdir's definition of an Exchange class (auxiliaries included), by name."""
    wanted = name.lower()
    for c in (*EXCHANGE_CLASSES, *(aux for aux, _ in AD_RECIPIENT_AUX)):
        if c.name.lower() == wanted:
            return c
    return None


# --- Active Directory base definitions our data uses (taken from ldap3's AD schema) --
AD_BASE_ATTRIBUTES: tuple[str, ...] = (
    "legacyExchangeDN", "proxyAddresses", "systemFlags", "msDS-isRODC", "options",
    "showInAddressBook", "objectGUID", "sAMAccountName", "userPrincipalName",
    "groupType", "adminDisplayName", "showInAdvancedViewOnly", "dNSHostName",
    "instanceType", "serverReference", "msDS-hasMasterNCs", "hasMasterNCs",
    "managedBy", "info", "company", "department", "otherMailbox", "userAccountControl",
)
AD_BASE_CLASSES: tuple[str, ...] = (
    "container", "configuration", "domainDNS", "user", "group", "contact",
    "sitesContainer", "site", "serversContainer", "server", "applicationSettings",
    "nTDSDSA", "nTDSDSARO",
)

# Attributes whose text compares exactly (most AD strings are case-insensitive).
_CASE_EXACT: frozenset[str] = frozenset()


@lru_cache(maxsize=1)
def _ad_schema() -> SchemaInfo:
    return SchemaInfo.from_json(ad_2012_r2_schema)


@lru_cache(maxsize=1)
def _openldap_base() -> tuple[frozenset[str], frozenset[str]]:
    """Lower-cased attribute and class names slapd's core/cosine/inetorgperson define."""
    info = SchemaInfo.from_json(slapd_2_4_schema)
    attrs = {n.lower() for a in info.attribute_types.values() for n in a.name}
    classes = {n.lower() for c in info.object_classes.values() for n in c.name}
    return frozenset(attrs), frozenset(classes)


def _from_ad(name: str) -> AttributeDef:
    info = _ad_schema().attribute_types[name]
    syntax = info.syntax or SYNTAX_STRING
    kind = _KIND_BY_SYNTAX.get(syntax, "string")
    ad_syntax = syntax if syntax != _SYNTAX_BY_KIND[kind] else None
    return AttributeDef(info.name[0], info.oid, kind, bool(info.single_value), ad_syntax)


@lru_cache(maxsize=1)
def _attributes() -> dict[str, AttributeDef]:
    """Every attribute exdir knows, by lower-case name."""
    known: dict[str, AttributeDef] = {}
    for name in AD_BASE_ATTRIBUTES:
        d = _from_ad(name)
        known[d.name.lower()] = d
    for d in (*EXCHANGE_ATTRIBUTES, *EXCHANGE_BACK_LINKS):
        known[d.name.lower()] = d
    return known


def attribute(name: str) -> AttributeDef | None:
    """The definition of an attribute by name, from our source or AD's base schema."""
    return _attribute(name.lower())


@lru_cache(maxsize=4096)
def _attribute(name: str) -> AttributeDef | None:
    found = _attributes().get(name)
    if found is not None:
        return found
    if name in _ad_schema().attribute_types:
        return _from_ad(name)
    return None


@lru_cache(maxsize=4096)  # asked for every value read (the schema never changes)
def kind_of(name: str) -> Kind:
    """The value kind of an attribute; unknown attributes are treated as strings."""
    d = attribute(name)
    return d.kind if d else "string"


@lru_cache(maxsize=4096)
def is_binary(name: str) -> bool:
    """True where values are raw bytes (GUIDs, security descriptors)."""
    return kind_of(name) == "octets"


def is_single_valued(name: str) -> bool:
    d = attribute(name)
    return bool(d and d.single)


def is_case_exact(name: str) -> bool:
    """True where values compare byte for byte; AD strings, DNs compare case-insensitively."""
    return name.lower() in _CASE_EXACT or kind_of(name) in ("octets",)


@lru_cache(maxsize=1)
def dn_attributes() -> frozenset[str]:
    """Lower-case names of DN-valued attributes whose references follow a rename.

    Every DN-syntax attribute of the AD base schema and of Exchange's: on Active
    Directory each of them follows a renamed object.  distinguishedName and
    objectCategory excluded: the server owns them; so are Exchange's back links
    (homeMDBBL…), which only the server writes.
    """
    names = {n.lower() for a in _ad_schema().attribute_types.values()
             if a.syntax == SYNTAX_DN for n in a.name}
    names |= {d.name.lower() for d in EXCHANGE_ATTRIBUTES if d.kind == "dn"}
    names -= {"distinguishedname", "objectcategory", "entrydn"}
    return frozenset(names)


# --- ldap3's offline AD schema, extended -------------------------------------------

def _rfc4512_attribute(d: AttributeDef) -> str:
    single = " SINGLE-VALUE" if d.single else ""
    return f"( {d.oid} NAME '{d.name}' SYNTAX '{d.syntax}'{single} )"


def _rfc4512_class(c: ClassDef, may: Iterable[str] = ()) -> str:
    kind = "STRUCTURAL" if c.structural else "ABSTRACT"
    must = f" MUST ( {' $ '.join(c.must)} )" if c.must else ""
    may_list = list(may)
    may_text = f" MAY ( {' $ '.join(may_list)} )" if may_list else ""
    return f"( {c.oid} NAME '{c.name}' SUP {c.sup} {kind}{must}{may_text} )"


def opaque_attribute(name: str, index: int) -> AttributeDef:
    """A stand-in definition for an attribute no schema we ship knows (kept as is)."""
    return AttributeDef(name, f"1.3.6.1.4.1.32473.1.{index}", "string", False)


def opaque_class(name: str, index: int) -> ClassDef:
    """A stand-in for an object class no schema we ship knows."""
    return ClassDef(name, f"1.3.6.1.4.1.32473.2.{index}", "top", structural=False)


def ldap3_schema(extra_attributes: Iterable[str] = (), extra_classes: Iterable[str] = ()
                 ) -> tuple[DsaInfo, SchemaInfo]:
    """ldap3's AD 2012 R2 schema plus Exchange's definitions, for MOCK_SYNC.

    extra_attributes / extra_classes are names found in data that no schema knows;
    they get opaque multi-valued string definitions so the data loads unchanged.
    One parse per set of extra names in a process: ldap3 parses every definition
    (77 ms), and a library caller or the test suite opens files again and again; the
    mock and exdir only read the schema, never change it.
    """
    return _ldap3_schema(tuple(sorted(set(extra_attributes))),
                         tuple(sorted(set(extra_classes))))


@lru_cache(maxsize=4)
def _ldap3_schema(extra_attributes: tuple[str, ...], extra_classes: tuple[str, ...]
                  ) -> tuple[DsaInfo, SchemaInfo]:
    raw = json.loads(ad_2012_r2_schema)
    have_attrs = {n.lower() for n in _ad_schema().attribute_types}
    have_classes = {n.lower() for n in _ad_schema().object_classes}
    attrs = raw["raw"]["attributeTypes"]
    classes = raw["raw"]["objectClasses"]
    for d in (*EXCHANGE_ATTRIBUTES, *EXCHANGE_BACK_LINKS):
        if d.name.lower() not in have_attrs:
            attrs.append(_rfc4512_attribute(d))
            have_attrs.add(d.name.lower())
    for c in EXCHANGE_CLASSES:
        if c.name.lower() not in have_classes:
            classes.append(_rfc4512_class(c))
            have_classes.add(c.name.lower())
    for i, name in enumerate(extra_attributes, start=1):
        if name.lower() not in have_attrs:
            attrs.append(_rfc4512_attribute(opaque_attribute(name, i)))
            have_attrs.add(name.lower())
    for i, name in enumerate(extra_classes, start=1):
        if name.lower() not in have_classes:
            classes.append(_rfc4512_class(opaque_class(name, i)))
            have_classes.add(name.lower())
    schema = SchemaInfo.from_json(json.dumps(raw))
    dsa = DsaInfo.from_json(ad_2012_r2_dsa_info)
    return dsa, schema


def known_to_mock(attribute_name: str) -> bool:
    """True where ldap3's extended offline schema defines the attribute."""
    return attribute(attribute_name) is not None


def known_class(name: str) -> bool:
    return name in _ad_schema().object_classes or any(
        c.name.lower() == name.lower() for c in EXCHANGE_CLASSES)


# --- OpenLDAP cn=config schema -------------------------------------------------------

def _openldap_attributes() -> list[AttributeDef]:
    base_attrs, _ = _openldap_base()
    out = [d for d in _attributes().values() if d.name.lower() not in base_attrs]
    return out


def _openldap_classes() -> list[ClassDef]:
    _, base_classes = _openldap_base()
    ad = _ad_schema()
    ours: list[ClassDef] = []
    for name in AD_BASE_CLASSES:
        info = ad.object_classes[name]
        ours.append(ClassDef(info.name[0], info.oid, info.superior[0] if info.superior else "top",
                             structural=info.kind == "STRUCTURAL",
                             must=tuple(info.must_contain or ())))
    ours.extend(EXCHANGE_CLASSES)
    ours = [c for c in ours if c.name.lower() not in base_classes]
    # superiors before subclasses
    ordered: list[ClassDef] = []
    names = {c.name for c in ours}
    placed: set[str] = set()
    while len(ordered) < len(ours):
        progressed = False
        for c in ours:
            if c.name not in placed and (c.sup not in names or c.sup in placed):
                ordered.append(c)
                placed.add(c.name)
                progressed = True
        if not progressed:  # pragma: no cover - a cycle would be a bug in the tables
            raise RuntimeError("cycle in class superiors")
    return ordered


def openldap_schema_ldif() -> str:
    """The Exchange schema subset as an OpenLDAP cn=config schema entry.

    Every class may hold every attribute exdir knows: Active Directory attaches
    Exchange's attributes through auxiliary classes in its schema, which OpenLDAP
    cannot express, so the lab schema is permissive where AD is by design.
    """
    attrs = _openldap_attributes()
    base_attrs, _ = _openldap_base()
    may = sorted({d.name for d in attrs} | {"description", "displayName", "mail", "member",
                                            "serialNumber", "cn", "ou", "telephoneNumber",
                                            "givenName", "sn", "uid", "o", "l"})
    lines = ["dn: cn=exdir,cn=schema,cn=config", "objectClass: olcSchemaConfig", "cn: exdir"]
    for d in attrs:
        single = " SINGLE-VALUE" if d.single else ""
        lines.append(f"olcAttributeTypes: ( {d.oid} NAME '{d.name}' {_OPENLDAP_MATCHING[d.kind]}"
                     f" SYNTAX {_SYNTAX_BY_KIND[d.kind]}{single} )")
    for c in _openldap_classes():
        must = [m for m in c.must if m.lower() in base_attrs or attribute(m) is not None]
        lines.append("olcObjectClasses: " + _rfc4512_class(
            ClassDef(c.name, c.oid, c.sup, c.structural, tuple(must)),
            [m for m in may if m not in must]))
    return "\n".join(lines) + "\n"


# --- Active Directory (and Samba AD) schema extension ---------------------------------

_DN_OM_OBJECT_CLASS = "KwwCh3McAIVK"  # 1.3.12.2.1011.28.0.714, base64 (Object(DS-DN))


def back_link(forward: str) -> AttributeDef | None:
    """The back link of a forward link (linkID + 1), where exdir defines it."""
    d = attribute(forward)
    if d is None or d.link_id is None or d.is_back_link:
        return None
    return next((b for b in EXCHANGE_BACK_LINKS if b.link_id == d.link_id + 1), None)


def _ad_cn(name: str) -> str:
    return name  # the lDAPDisplayName as CN: unique, and readable in ADSI Edit


def _export_order(classes: Iterable[ClassDef]) -> list[ClassDef]:
    """Classes with each one's superclass and possible superiors before it."""
    pending = list(classes)
    names = {c.name for c in pending}
    placed: set[str] = set()
    ordered: list[ClassDef] = []
    while pending:
        ready = [c for c in pending
                 if all(n not in names or n in placed for n in (c.sup, *c.superiors))]
        if not ready:  # pragma: no cover - a cycle would be a bug in the tables
            raise RuntimeError("cycle in class superiors")
        for c in ready:
            ordered.append(c)
            placed.add(c.name)
            pending.remove(c)
    return ordered


def _ad_attribute(d: AttributeDef, schema_nc: str) -> list[str]:
    out = [f"dn: CN={_ad_cn(d.name)},{schema_nc}", "changetype: add",
           "objectClass: top", "objectClass: attributeSchema",
           f"cn: {_ad_cn(d.name)}", f"attributeID: {d.oid}", f"lDAPDisplayName: {d.name}",
           f"attributeSyntax: {d.ad_attribute_syntax}", f"oMSyntax: {d.ad_om_syntax}",
           f"isSingleValued: {'TRUE' if d.single else 'FALSE'}"]
    if d.kind == "dn":
        out.append(f"oMObjectClass:: {_DN_OM_OBJECT_CLASS}")
    if d.link_id is not None:
        out.append(f"linkID: {d.link_id}")
    if d.is_back_link:
        out.append("systemOnly: TRUE")
    return [*out, ""]


def _ad_class(c: ClassDef, schema_nc: str, may: Iterable[str]) -> list[str]:
    return [f"dn: CN={_ad_cn(c.name)},{schema_nc}", "changetype: add",
            "objectClass: top", "objectClass: classSchema", f"cn: {_ad_cn(c.name)}",
            f"governsID: {c.oid}", f"lDAPDisplayName: {c.name}", f"subClassOf: {c.sup}",
            f"objectClassCategory: {c.category}",
            *[f"possSuperiors: {p}" for p in c.superiors],
            *[f"mustContain: {m}" for m in c.must],
            *[f"mayContain: {m}" for m in may if m not in c.must], ""]


def ad_schema_ldif(schema_nc: str) -> str:
    """The Exchange subset as AD attributeSchema/classSchema change records.

    For extending a lab forest (Windows or Samba AD) with `ldapmodify`: new
    attributes with Exchange's syntaxes and linkIDs, `schemaUpdateNow`, the back
    links, the auxiliary classes attached to user/contact/group, then the Exchange
    configuration classes (superclasses and possible superiors first) with their
    real subClassOf, possSuperiors and mustContain.  Attributes and classes the
    base schema already has (legacyExchangeDN, msExchConfigurationContainer…)
    are not added.
    """
    def update_now() -> list[str]:
        return ["dn:", "changetype: modify", "add: schemaUpdateNow", "schemaUpdateNow: 1", "-", ""]

    have = {n.lower() for n in _ad_schema().attribute_types}
    new_attrs = [d for d in EXCHANGE_ATTRIBUTES if d.name.lower() not in have]
    out: list[str] = ["version: 1", "",
                      "# Exchange attributes exdir uses (Microsoft's OIDs), for a lab forest", ""]
    for d in new_attrs:
        out += _ad_attribute(d, schema_nc)
    out += ["# make the new attributes usable before the back links and classes"] + update_now()
    for d in EXCHANGE_BACK_LINKS:
        if d.name.lower() not in have:
            out += _ad_attribute(d, schema_nc)
    out += update_now()
    for aux, may in AD_RECIPIENT_AUX:
        out += _ad_class(aux, schema_nc, may)
    out += update_now()
    for cls in AD_RECIPIENT_CLASSES:
        out += [f"dn: CN={_ad_class_cn(cls)},{schema_nc}", "changetype: modify",
                "add: auxiliaryClass", *[f"auxiliaryClass: {aux.name}" for aux, _ in
                                         AD_RECIPIENT_AUX], "-", ""]
    out += update_now()
    have_classes = {n.lower() for n in _ad_schema().object_classes}
    # the back links too: AD keeps homeMDBBL on a store, and refuses every later
    # modify of an object holding an attribute its classes do not allow
    may_all = sorted({d.name for d in (*EXCHANGE_ATTRIBUTES, *EXCHANGE_BACK_LINKS)}
                     | {"legacyExchangeDN", "serialNumber"})
    for c in _export_order(c for c in EXCHANGE_CLASSES if c.name.lower() not in have_classes):
        out += _ad_class(c, schema_nc, may_all)
    out += update_now()
    return "\n".join(out)


_AD_CLASS_CNS = {"user": "User", "contact": "Contact", "group": "Group"}


def _ad_class_cn(name: str) -> str:
    """The CN of a base-schema class (CN=User for user)."""
    return _AD_CLASS_CNS.get(name, name)


@lru_cache(maxsize=1)
def _class_superiors() -> dict[str, str | None]:
    """Each object class's superior, by lower-case name, from exdir's ldap3 schema."""
    _dsa, info = ldap3_schema()
    out: dict[str, str | None] = {}
    for definition in info.object_classes.values():
        sup = definition.superior[0] if definition.superior else None
        for name in definition.name:
            out[name.lower()] = sup
    return out


@lru_cache(maxsize=None)
def class_chain(structural: str) -> tuple[str, ...]:
    """The class and its whole superclass chain, top first, as this schema defines it
    (the objectClass values of a new entry: the lab, the IMF settings object)."""
    superiors = _class_superiors()
    chain = [structural]
    while True:
        sup = superiors.get(chain[-1].lower(), "missing")
        if sup == "missing":
            raise KeyError(f"object class {chain[-1]!r} is not in exdir's schema")
        if sup is None or chain[-1].lower() == "top":
            break
        chain.append(sup)
    if chain[-1].lower() != "top":
        chain.append("top")
    return tuple(reversed(chain))
