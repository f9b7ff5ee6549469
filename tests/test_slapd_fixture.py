"""The slapd fixture is a real server with exdir's schema, and cleans up after itself."""
from __future__ import annotations

import os
import re
import socket
import tempfile
from pathlib import Path

import pytest
from ldap3 import BASE, SUBTREE
from ldap3.utils.conv import escape_filter_chars

from exdir.schema import openldap_schema_ldif
from tests.servers import slapd as slapd_module
from tests.servers.slapd import MakeSlapd, Slapd, SlapdError, canonical_ldif, parse_ldif_entries

SUFFIX = "DC=fabrikam,DC=com"
STORE = "CN=Mailbox Store (EX1),CN=Configuration,DC=fabrikam,DC=com"
USER = "CN=Smith\\, John,DC=fabrikam,DC=com"
LEGACY = "/o=Fabrikam/ou=First Administrative Group/cn=Recipients/cn=jsmith"

DATA = f"""\
dn: {SUFFIX}
objectClass: top
objectClass: domain
objectClass: domainDNS
dc: fabrikam

dn: CN=Configuration,{SUFFIX}
objectClass: top
objectClass: configuration
cn: Configuration

dn: {USER}
objectClass: top
objectClass: person
objectClass: organizationalPerson
objectClass: user
cn: Smith, John
sn: Smith
mailNickname: jsmith
homeMDB: {STORE}
legacyExchangeDN: {LEGACY}
"""


def test_data_is_loaded_and_readable_with_a_simple_bind(slapd_factory: MakeSlapd) -> None:
    server = slapd_factory(DATA)
    assert server.url.startswith("ldap://127.0.0.1:") and server.port > 1024
    conn = server.connection()
    assert conn.bound
    assert conn.search(SUFFIX, "(objectClass=*)", SUBTREE, attributes=["cn"])
    assert len(conn.entries) == 3
    # indexed equality search on a DN-valued attribute, matched by distinguishedNameMatch
    assert conn.search(SUFFIX, f"(homeMDB={escape_filter_chars(STORE.lower())})", SUBTREE,
                       attributes=["mailNickname", "legacyExchangeDN", "homeMDB"])
    [user] = conn.entries
    assert user.mailNickname.value == "jsmith"
    assert user.legacyExchangeDN.value == LEGACY
    assert user.homeMDB.value == STORE
    assert conn.search(f"CN=Configuration,{SUFFIX}", "(objectClass=configuration)", BASE)
    conn.unbind()


def test_password_file_is_private_and_holds_the_password(slapd_factory: MakeSlapd) -> None:
    server = slapd_factory(DATA)
    assert server.password_file.read_text() == server.password
    assert os.stat(server.password_file).st_mode & 0o777 == 0o600
    assert server.bind_dn == f"CN=admin,{SUFFIX}"


def test_ldapmodify_applies_a_change_record(slapd_factory: MakeSlapd) -> None:
    server = slapd_factory(DATA)
    new = "/o=Contoso/ou=First Administrative Group/cn=Recipients/cn=jsmith"
    result = server.ldapmodify(f"""\
dn: {USER}
changetype: modify
delete: legacyExchangeDN
legacyExchangeDN: {LEGACY}
-
add: legacyExchangeDN
legacyExchangeDN: {new}
-
add: proxyAddresses
proxyAddresses: X500:{LEGACY}
-
""")
    assert result.returncode == 0, result.stderr
    conn = server.connection()
    conn.search(USER, "(objectClass=*)", BASE, attributes=["legacyExchangeDN", "proxyAddresses"])
    assert conn.entries[0].legacyExchangeDN.value == new
    assert conn.entries[0].proxyAddresses.values == [f"X500:{LEGACY}"]


def test_a_modify_whose_delete_value_is_absent_changes_nothing(slapd_factory: MakeSlapd) -> None:
    server = slapd_factory(DATA)
    result = server.ldapmodify(f"""\
dn: {USER}
changetype: modify
replace: mailNickname
mailNickname: changed
-
delete: legacyExchangeDN
legacyExchangeDN: /o=Elsewhere/cn=nobody
-
""")
    assert result.returncode == 16, result.stderr  # noSuchAttribute
    found = server.ldapsearch("(mailNickname=jsmith)", ["mailNickname"])
    assert found.returncode == 0 and "mailNickname: jsmith" in found.stdout


def test_the_schema_is_enforced(slapd_factory: MakeSlapd) -> None:
    server = slapd_factory(DATA)
    unknown = server.ldapmodify(f"dn: {USER}\nchangetype: modify\nadd: noSuchAttribute\n"
                                "noSuchAttribute: x\n-\n")
    assert unknown.returncode == 17, unknown.stderr  # undefinedAttributeType
    twice = server.ldapmodify(f"dn: {USER}\nchangetype: modify\nadd: mailNickname\n"
                              "mailNickname: second\n-\n")
    assert twice.returncode != 0  # mailNickname is single-valued


def test_renaming_a_parent_leaves_dn_references_stale(slapd_factory: MakeSlapd) -> None:
    """No refint overlay: slapd moves the subtree but homeMDB keeps the old DN."""
    server = slapd_factory(DATA + f"""
dn: {STORE}
objectClass: top
objectClass: msExchMDB
objectClass: msExchPrivateMDB
cn: Mailbox Store (EX1)
deliveryMechanism: 0
""")
    overlays = server.ldapsearch("(objectClass=olcOverlayConfig)", ["dn"],
                                 base="cn=config", config=True)
    assert overlays.returncode == 0, overlays.stderr
    assert overlays.stdout.strip() == ""
    renamed = server.ldapmodify(f"dn: CN=Configuration,{SUFFIX}\nchangetype: modrdn\n"
                                "newrdn: CN=Configuration2\ndeleteoldrdn: 1\n")
    assert renamed.returncode == 0, renamed.stderr
    conn = server.connection()
    store_filter = f"(cn={escape_filter_chars('Mailbox Store (EX1)')})"
    assert conn.search(f"CN=Configuration2,{SUFFIX}", store_filter, SUBTREE)
    assert len(conn.entries) == 1  # the child moved with its parent
    conn.search(USER, "(objectClass=*)", BASE, attributes=["homeMDB"])
    assert conn.entries[0].homeMDB.value == STORE  # stale: names the old location


def test_stop_ends_the_process_and_removes_the_directory(slapd_factory: MakeSlapd) -> None:
    server = slapd_factory(DATA)
    pid, directory, port = server.pid, server.directory, server.port
    assert pid is not None and directory.is_dir()
    os.kill(pid, 0)  # alive
    server.stop()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert not directory.exists()
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", port)) != 0
    server.stop()  # a second stop is harmless


@pytest.mark.slapd
def test_context_manager_with_an_empty_database_and_another_suffix() -> None:
    slapd_module.require_slapd()
    with Slapd(suffix="DC=contoso,DC=local") as server:
        directory = server.directory
        assert server.entries() == {}
        added = server.ldapmodify("dn: DC=contoso,DC=local\nchangetype: add\nobjectClass: top\n"
                                  "objectClass: domain\ndc: contoso\n")
        assert added.returncode == 0, added.stderr
        assert list(server.entries()) == ["dc=contoso,dc=local"]
    assert not directory.exists() and not server.running


def test_dump_is_canonical_and_reloads_to_the_same_state(slapd_factory: MakeSlapd) -> None:
    first = slapd_factory(DATA)
    dump = first.dump()
    assert "entryUUID" not in dump and "entryUUID" in first.dump(operational=True)
    entries = parse_ldif_entries(dump)
    assert len(entries) == 3
    assert list(entries)[0].lower() == SUFFIX.lower()  # parents first
    assert canonical_ldif(entries) == dump
    second = slapd_factory(dump)
    assert second.dump() == dump
    assert second.ldapmodify(f"dn: {USER}\nchangetype: modify\nreplace: sn\nsn: Smyth\n-\n"
                             ).returncode == 0
    assert second.dump() != dump and "sn: Smyth" in second.dump()


@pytest.mark.slapd
def test_bad_data_fails_with_slapadds_message_and_leaves_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    slapd_module.require_slapd()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    server = Slapd(data_ldif=DATA.replace("sn: Smith", "sn: Smith\nbogusAttribute: 1"))
    with pytest.raises(SlapdError, match="bogusAttribute"):
        server.start()
    assert list(tmp_path.iterdir()) == [] and not server.running


@pytest.mark.slapd
def test_a_rejected_schema_names_the_offending_line(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    slapd_module.require_slapd()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    lines = openldap_schema_ldif().splitlines()
    # the last attribute type with an equality rule: slapadd's "value #N" must map to it
    index = max(i for i, text in enumerate(lines)
                if text.startswith("olcAttributeTypes:") and " EQUALITY " in text)
    lines[index] = re.sub(r" EQUALITY \S+", " EQUALITY noSuchMatch", lines[index])
    broken, line = "\n".join(lines) + "\n", index + 1
    expected = f"MatchingRule not found(.|\\n)*line {line}: .*noSuchMatch"
    with pytest.raises(SlapdError, match=expected):
        Slapd(schema_ldif=broken).start()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slapd
def test_a_taken_port_is_retried_then_reported_with_the_log(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    slapd_module.require_slapd()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        calls: list[int] = []
        monkeypatch.setattr(slapd_module, "free_port", lambda: calls.append(port) or port)
        with pytest.raises(SlapdError, match="Address already in use"):
            Slapd(data_ldif=DATA).start()
    assert len(calls) == 3
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("ci, outcome", [(None, "skip"), ("false", "skip"), ("true", "fail"),
                                         ("1", "fail")])
def test_missing_openldap_skips_locally_but_fails_in_ci(
        monkeypatch: pytest.MonkeyPatch, ci: str | None, outcome: str) -> None:
    monkeypatch.setattr(slapd_module, "missing_tools", lambda: ["slapd"])
    if ci is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", ci)
    expected = pytest.skip.Exception if outcome == "skip" else pytest.fail.Exception
    with pytest.raises(expected, match="missing slapd"):
        slapd_module.require_slapd()
