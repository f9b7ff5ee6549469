"""The Exchange schema subset: one source, right facts, accepted by ldap3 and by slapd.

The expectations are docs/exchange.md's "Recipient attributes" table, copied here by hand
(the project's tests read nothing outside the repository).
"""
from __future__ import annotations

import io
import json
import re
from pathlib import Path

import ldif
import pytest
from ldap3 import ALL, BASE, Connection, Server
from ldap3.utils.conv import escape_filter_chars

from commands.main import main
from exdir import schema
from tests.servers.slapd import SYSTEM_SCHEMAS, MakeSlapd, ci_required

ROOT = Path(__file__).resolve().parent.parent

# docs/exchange.md, "Recipient attributes": name, OID, value kind, single-valued.
RECIPIENT_ATTRIBUTES: tuple[tuple[str, str, str, bool], ...] = (
    ("homeMDB", "1.2.840.113556.1.2.244", "dn", True),
    ("homeMTA", "1.2.840.113556.1.2.171", "dn", True),
    ("msExchHomeServerName", "1.2.840.113556.1.4.7000.102.47", "string", True),
    ("legacyExchangeDN", "1.2.840.113556.1.4.655", "string", True),  # Teletex string
    ("mailNickname", "1.2.840.113556.1.2.447", "string", True),
    ("proxyAddresses", "1.2.840.113556.1.2.210", "string", False),
    ("publicDelegates", "1.2.840.113556.1.2.238", "dn", False),
    ("msExchOmaAdminWirelessEnable", "1.2.840.113556.1.6.20.1.124", "integer", True),
    ("msExchOmaAdminExtendedSettings", "1.2.840.113556.1.6.20.1.126", "string", False),
    ("msExchADCGlobalNames", "1.2.840.113556.1.4.7000.102.63", "string", False),
    ("msExchMailboxGuid", "1.2.840.113556.1.4.7000.102.11058", "octets", True),
)
# LDAP syntaxes a kind may carry (RFC 4517, and Active Directory's Teletex string).
SYNTAXES = {
    "dn": {"1.3.6.1.4.1.1466.115.121.1.12"},
    "string": {"1.3.6.1.4.1.1466.115.121.1.15", "1.2.840.113556.1.4.905",
               "1.3.6.1.4.1.1466.115.121.1.44", "1.3.6.1.4.1.1466.115.121.1.26"},
    "integer": {"1.3.6.1.4.1.1466.115.121.1.27"},
    "octets": {"1.3.6.1.4.1.1466.115.121.1.40"},
}
# docs/exchange.md, "Where things live": the classes of the configuration objects.
EXCHANGE_CLASSES = (
    "msExchOrganizationContainer", "msExchAdminGroupContainer", "msExchAdminGroup",
    "msExchServersContainer", "msExchExchangeServer", "msExchInformationStore",
    "msExchStorageGroup", "msExchPrivateMDB", "msExchPublicMDB", "mTA", "msExchRoutingGroup",
    "msExchRecipientPolicy", "msExchOAB", "msExchConnectionAgreement", "nTDSDSA",
    "msExchMessageDeliveryConfig", "msExchUce",
)
NAMES = [a[0] for a in RECIPIENT_ATTRIBUTES]

_NAME = re.compile(r"NAME\s+(?:'([^']+)'|\(\s*([^)]*)\))")
_OID = re.compile(r"^\(\s*([0-9.]+)")


def definitions(values: list[str]) -> list[tuple[str, list[str]]]:
    """(OID, names) of each RFC 4512 definition."""
    out = []
    for text in values:
        text = re.sub(r"^\{\d+\}", "", text.strip())
        oid = _OID.match(text)
        names = _NAME.search(text)
        assert oid and names, text
        listed = names.group(1) or names.group(2) or ""
        out.append((oid.group(1), [n.strip("' ") for n in listed.split() if n.strip("' ")]))
    return out


def ldif_values(text: str | bytes, attribute: str) -> list[str]:
    """Every value of attribute in an LDIF text, read with the `ldif` package."""
    data = text.encode("utf-8") if isinstance(text, str) else text
    parser = ldif.LDIFParser(io.BytesIO(data), encoding=None, strict=False)
    out: list[str] = []
    for dn, record in parser.parse():
        for name, values in record.items():
            if name.lower() == attribute.lower():
                out.extend(v.decode("utf-8") for v in values)
    return out


# --- exdir.schema's own facts -----------------------------------------------------------

@pytest.mark.parametrize(("name", "oid", "kind", "single"), RECIPIENT_ATTRIBUTES, ids=NAMES)
def test_recipient_attribute_as_exchange_md_says(name: str, oid: str, kind: str,
                                                 single: bool) -> None:
    for asked in (name, name.lower(), name.upper()):
        d = schema.attribute(asked)
        assert d is not None, asked
        assert (d.name.lower(), d.oid, d.kind, d.single) == (name.lower(), oid, kind, single)
        assert d.syntax in SYNTAXES[kind]
    assert schema.kind_of(name) == kind
    assert schema.is_single_valued(name) is single
    assert schema.is_binary(name) is (kind == "octets")
    assert schema.known_to_mock(name)


def test_unknown_attribute_is_an_opaque_string() -> None:
    assert schema.attribute("fabrikamCustomAttribute1") is None
    assert schema.kind_of("fabrikamCustomAttribute1") == "string"
    assert not schema.is_single_valued("fabrikamCustomAttribute1")
    assert not schema.is_binary("fabrikamCustomAttribute1")


def test_each_name_and_oid_defined_once() -> None:
    names = [d.name.lower() for d in schema.EXCHANGE_ATTRIBUTES]
    oids = [d.oid for d in schema.EXCHANGE_ATTRIBUTES]
    assert len(names) == len(set(names)) and len(oids) == len(set(oids))
    base = {n.lower() for n in schema.AD_BASE_ATTRIBUTES}
    assert not base & set(names)  # an attribute comes from Exchange's list or AD's, not both
    classes = [c.name.lower() for c in schema.EXCHANGE_CLASSES]
    assert len(classes) == len(set(classes))
    assert len({c.oid for c in schema.EXCHANGE_CLASSES}) == len(classes)


def test_dn_attributes() -> None:
    dns = schema.dn_attributes()
    for name in ("homeMDB", "homeMTA", "publicDelegates", "altRecipient", "showInAddressBook",
                 "manager", "member", "managedBy"):
        assert name.lower() in dns, name
    for name in ("distinguishedName", "objectCategory", "msExchHomeServerName",
                 "legacyExchangeDN", "proxyAddresses", "mailNickname", "msExchMailboxGuid"):
        assert name.lower() not in dns, name


# --- ldap3's offline schema, extended -----------------------------------------------------

@pytest.fixture(scope="module")
def ldap3_info():  # type: ignore[no-untyped-def]
    return schema.ldap3_schema()[1]


@pytest.mark.parametrize(("name", "oid", "kind", "single"), RECIPIENT_ATTRIBUTES, ids=NAMES)
def test_ldap3_schema_knows_the_attribute(ldap3_info, name: str, oid: str, kind: str,  # type: ignore[no-untyped-def]
                                          single: bool) -> None:
    at = ldap3_info.attribute_types[name]
    assert at.oid == oid
    assert bool(at.single_value) is single
    assert at.syntax in SYNTAXES[kind]


@pytest.mark.parametrize("name", EXCHANGE_CLASSES)
def test_ldap3_schema_knows_the_class(ldap3_info, name: str) -> None:  # type: ignore[no-untyped-def]
    assert name in ldap3_info.object_classes
    seen = set()
    current = name
    while current.lower() != "top":  # the superior chain reaches top
        assert current not in seen, f"cycle at {current}"
        seen.add(current)
        sup = ldap3_info.object_classes[current].superior
        assert sup, current
        current = sup[0]


def test_ldap3_schema_takes_opaque_extras() -> None:
    _, info = schema.ldap3_schema(["fabrikamCustomAttribute1"], ["fabrikamCustomClass"])
    assert "fabrikamCustomAttribute1" in info.attribute_types
    assert "fabrikamCustomClass" in info.object_classes
    _, plain = schema.ldap3_schema()
    assert "fabrikamCustomAttribute1" not in plain.attribute_types


# --- the OpenLDAP schema -----------------------------------------------------------------

def _system_schema_definitions(attribute: str) -> list[tuple[str, list[str]]]:
    found = []
    for path in SYSTEM_SCHEMAS:
        if not Path(path).exists():
            if ci_required():
                pytest.fail(f"{path} missing; CI must have OpenLDAP's schemas")
            pytest.skip(f"{path} missing (install slapd)")
        found += definitions(ldif_values(Path(path).read_bytes(), attribute))
    return found


@pytest.mark.parametrize("kind", ["olcAttributeTypes", "olcObjectClasses"])
def test_openldap_schema_defines_nothing_twice_nor_what_slapd_has(kind: str) -> None:
    text = schema.openldap_schema_ldif()
    ours = definitions(ldif_values(text, kind))
    assert ours
    names = [n.lower() for _, ns in ours for n in ns]
    oids = [oid for oid, _ in ours]
    assert len(names) == len(set(names)), "a name defined twice"
    assert len(oids) == len(set(oids)), "an OID defined twice"
    system = _system_schema_definitions(kind)
    system_names = {n.lower() for _, ns in system for n in ns}
    system_oids = {oid for oid, _ in system}
    assert not set(names) & system_names
    assert not set(oids) & system_oids


def test_openldap_schema_has_the_recipient_attributes() -> None:
    text = schema.openldap_schema_ldif()
    assert ldif_values(text, "cn") == ["exdir"]
    lines = ldif_values(text, "olcAttributeTypes")
    by_name = {names[0].lower(): (oid, line) for (oid, names), line in zip(definitions(lines), lines)}
    for name, oid, kind, single in RECIPIENT_ATTRIBUTES:
        got_oid, line = by_name[name.lower()]
        assert got_oid == oid
        assert ("SINGLE-VALUE" in line) is single, name
        assert re.search(r"SYNTAX\s+([0-9.]+)", line).group(1) in SYNTAXES[kind]  # type: ignore[union-attr]
    classes = {names[0].lower() for _, names in definitions(ldif_values(text, "olcObjectClasses"))}
    for name in ("msExchOrganizationContainer", "msExchExchangeServer", "msExchPrivateMDB",
                 "msExchPublicMDB", "mTA", "msExchConnectionAgreement", "nTDSDSA", "user"):
        assert name.lower() in classes, name


def test_slapd_accepts_the_schema_and_a_sample(slapd_factory: MakeSlapd) -> None:
    text = (ROOT / "samples" / "fabrikam-mixed.ldif").read_text(encoding="utf-8")
    server = slapd_factory(text.replace("version: 1\n", "", 1))
    want = {dn.lower() for dn, _ in ldif.LDIFParser(io.BytesIO(text.encode())).parse() if dn}
    conn = Connection(Server("127.0.0.1", port=server.port, get_info=ALL), user=server.bind_dn,
                      password=server.password, auto_bind=True)
    try:
        conn.search(server.suffix, "(objectClass=*)", attributes=["homeMDB"])
        got = {e.entry_dn.lower() for e in conn.entries}
        assert len(got) == len(want)
        # slapd's subschema holds our definitions as we meant them
        types = conn.server.schema.attribute_types
        for name, oid, kind, single in RECIPIENT_ATTRIBUTES:
            assert types[name].oid == oid
            assert bool(types[name].single_value) is single, name
        # a DN-valued Exchange attribute matches as a DN on the server (case, spacing)
        home = str(next(e for e in conn.entries if e.homeMDB.value).homeMDB.value)
        assert conn.search(server.suffix, f"(homeMDB={escape_filter_chars(home.upper().replace(',', ', '))})",
                           attributes=["cn"])
        assert conn.entries
        assert conn.search("", "(objectClass=*)", BASE, attributes=["namingContexts"])
    finally:
        conn.unbind()


# --- `exdir schema export` -----------------------------------------------------------------

def test_export_openldap(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema", "export", "--format", "openldap"]) == 0
    out = capsys.readouterr().out
    assert out == schema.openldap_schema_ldif()
    dns = [dn for dn, _ in ldif.LDIFParser(io.BytesIO(out.encode())).parse()]
    assert dns == ["cn=exdir,cn=schema,cn=config"]


def test_export_ldap3(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema", "export", "--format", "ldap3"]) == 0
    data = json.loads(capsys.readouterr().out)
    defined = {names[0].lower(): oid for oid, names in definitions(data["raw"]["attributeTypes"])}
    for name, oid, _kind, _single in RECIPIENT_ATTRIBUTES:
        assert defined[name.lower()] == oid
    classes = {names[0].lower() for _, names in definitions(data["raw"]["objectClasses"])}
    assert {"msexchexchangeserver", "msexchprivatemdb", "mta"} <= classes


def test_export_unknown_format(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema", "export", "--format", "samba4"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert len(captured.err.strip().splitlines()) == 1
    assert "samba4" in captured.err and "Traceback" not in captured.err
