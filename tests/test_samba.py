"""exdir against a real Active Directory: Samba's AD domain controller.

- `exdir schema export --format ad` extends a fresh forest (ldapmodify accepts it)
  and reads the schema NC from the server it is pointed at;
- exdir recognises AD from the rootDSE, so a rename plan carries no DN-reference
  rewrites there, and AD makes homeMDB/homeMTA follow; on slapd the same plan
  carries them, because the server leaves them stale;
- a second DC joined on 127.0.0.2 gives the forest two nTDSDSA objects, which
  `exdir topology` lists and `exdir check` / `rename --apply --lab` refuse;
- binding as administrators do: ldaps and StartTLS verified against Samba's own
  CA (and the name its certificate carries), NTLM's limits in one line, and the
  password in no output, report or undo file.
"""
from __future__ import annotations

import json
import socket
import time
from pathlib import Path
from typing import Iterator

import pytest

from commands.main import main
from exdir import dn as dnu
from exdir import schema
from exdir.backends.ldap import open_url
from tests.servers.samba import (
    CONFIG_DN,
    DOMAIN,
    DOMAIN_DN,
    SCHEMA_DN,
    SECOND_ADDRESS,
    LoopbackAddress,
    SambaDC,
    SambaLab,
    join_dc,
    load_entries,
    parse_ldif_entries,
)

ROOT = Path(__file__).parent.parent
SAMPLE = (ROOT / "samples" / "fabrikam.ldif").read_text(encoding="utf-8")
ORG = f"CN=Fabrikam,CN=Microsoft Exchange,CN=Services,{CONFIG_DN}"
NEW_ORG = f"CN=Contoso,CN=Microsoft Exchange,CN=Services,{CONFIG_DN}"
JOHN = f"CN=Smith\\, John,OU=Staff,{DOMAIN_DN}"


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def server_args(dc: SambaDC, url: str | None = None) -> list[str]:
    return ["--url", url or dc.url, "--bind-dn", dc.bind_dn,
            "--password-file", str(dc.password_file)]


@pytest.fixture
def fabrikam(samba_factory) -> SambaDC:  # type: ignore[no-untyped-def]
    """A fresh DC holding samples/fabrikam.ldif (one DC, native mode)."""
    return samba_factory(SAMPLE)


def mailbox_homes(url: str, bind_dn: str, password: str) -> dict[str, tuple[str, str]]:
    """Every mailbox's (homeMDB, homeMTA), by dn.key of the mailbox."""
    directory = open_url(url, bind_dn, password)
    try:
        return {dnu.key(e.dn): (e.text("homeMDB") or "", e.text("homeMTA") or "")
                for e in directory.search(directory.naming.domain, "(homeMDB=*)",
                                          ("homeMDB", "homeMTA"))}
    finally:
        directory.close()


# --- 1. the AD schema export -----------------------------------------------------------------

def test_schema_export_ad_defaults_and_options(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = cli(capsys, "schema", "export", "--format", "ad")
    assert code == 0, err
    assert out == schema.ad_schema_ldif(SCHEMA_DN)
    code, out, _ = cli(capsys, "schema", "export", "--format", "ad", "--schema-nc",
                       "CN=Schema,CN=Configuration,DC=contoso,DC=local")
    assert code == 0 and "dn: CN=homeMDB,CN=Schema,CN=Configuration,DC=contoso,DC=local" in out
    assert "fabrikam" not in out
    code, out, err = cli(capsys, "--ldif", str(ROOT / "samples" / "fabrikam.ldif"), "-q",
                         "schema", "export", "--format", "ad")
    assert code == 0 and out == schema.ad_schema_ldif(SCHEMA_DN), err
    for bad in (["--format", "ad", "--schema-nc", "CN=a=b,,"], ["--format", "openldap",
                                                              "--schema-nc", SCHEMA_DN]):
        code, out, err = cli(capsys, "schema", "export", *bad)
        assert code == 2 and out == "" and len(err.strip().splitlines()) == 1, err


def test_fresh_samba_accepted_the_schema_export(samba_lab: SambaLab, samba_factory  # type: ignore[no-untyped-def]
                                                ) -> None:
    """The base template was extended by `exdir schema export --format ad` run against
    the freshly provisioned DC and applied with OpenLDAP's ldapmodify; here is what
    the forest holds afterwards."""
    dc: SambaDC = samba_factory(None)  # the base: provisioned and extended, no data
    assert samba_lab.schema_ldif == schema.ad_schema_ldif(SCHEMA_DN)
    with dc.connection() as conn:
        conn.search(SCHEMA_DN, "(objectClass=attributeSchema)", attributes=[
            "lDAPDisplayName", "attributeID", "linkID"])
        attrs = {_first(e, "lDAPDisplayName"): e for e in conn.response
                 if e.get("type") == "searchResEntry"}
        conn.search(f"CN=User,{SCHEMA_DN}", "(objectClass=*)", "BASE",
                    attributes=["auxiliaryClass"])
        user_aux = {v.decode() for v in conn.response[0]["raw_attributes"]["auxiliaryClass"]}
        conn.search(SCHEMA_DN, "(objectClass=classSchema)", attributes=["lDAPDisplayName"])
        classes = {_first(e, "lDAPDisplayName") for e in conn.response
                   if e.get("type") == "searchResEntry"}
    for d in schema.EXCHANGE_ATTRIBUTES:
        assert d.name in attrs, d.name
        assert _first(attrs[d.name], "attributeID") == d.oid
    forward = int(_first(attrs["homeMDB"], "linkID"))
    back = int(_first(attrs["homeMDBBL"], "linkID"))
    assert forward % 2 == 0 and back == forward + 1  # a real link pair, allocated by the DC
    assert {"msExchMailStorage", "msExchOmaUser"} <= user_aux
    assert {c.name for c in schema.EXCHANGE_CLASSES} <= classes


# Exchange's linkIDs, as the forest holds them after the export (issue 12).
REAL_LINK_IDS = {"homeMDB": 32, "homeMDBBL": 33, "publicDelegates": 14, "publicDelegatesBL": 15,
                 "altRecipient": 12, "altRecipientBL": 13, "msExchResponsibleMTAServer": 1030,
                 "msExchResponsibleMTAServerBL": 1031, "msExchHomeSyncService": 146,
                 "msExchChildSyncAgreements": 147}


def test_forest_holds_exchanges_schema_facts(samba_factory) -> None:  # type: ignore[no-untyped-def]
    """What the DC made of the export: Exchange's linkIDs, enumerations, mustContain,
    subClassOf and possSuperiors, read back from the schema NC."""
    dc: SambaDC = samba_factory(None)
    with dc.connection() as conn:
        conn.search(SCHEMA_DN, "(objectClass=attributeSchema)", attributes=[
            "lDAPDisplayName", "linkID", "oMSyntax"])
        attrs = {_first(e, "lDAPDisplayName"): e for e in conn.response
                 if e.get("type") == "searchResEntry"}
        conn.search(SCHEMA_DN, "(objectClass=classSchema)", attributes=[
            "lDAPDisplayName", "subClassOf", "mustContain", "possSuperiors"])
        classes = {_first(e, "lDAPDisplayName"): e["raw_attributes"] for e in conn.response
                   if e.get("type") == "searchResEntry"}
    assert {n: int(_first(attrs[n], "linkID")) for n in REAL_LINK_IDS} == REAL_LINK_IDS
    for name in ("deliveryMechanism", "msExchSynchronizationDirection", "msExchServer1Type",
                 "msExchServer2Type"):
        assert _first(attrs[name], "oMSyntax") == "10", name

    def values(cls: str, name: str) -> set[str]:
        return {v.decode() for v in classes[cls].get(name, [])}
    assert values("mTA", "mustContain") >= {"transTimeoutMins", "transRetryMins", "mTALocalDesig"}
    assert values("msExchMDB", "mustContain") >= {"deliveryMechanism"}
    assert values("msExchRecipientPolicy", "subClassOf") == {"msExchGenericPolicy"}
    assert values("msExchRecipientPolicy", "possSuperiors") == {"msExchRecipientPolicyContainer"}


def _lab_output() -> str:
    from exdir import lab

    return "".join(lab.generate(60, admin_groups=3, adc=True, seed=12))


def _ntds_settings(dn: str, attrs: dict) -> bool:  # type: ignore[type-arg]
    """A domain controller's NTDS Settings: AD creates nTDSDSA objects itself when a DC
    is promoted and refuses them to every LDAP client (a system-only class)."""
    return any(_text(c).lower() == "ntdsdsa" for c in attrs.get("objectClass", []))


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


@pytest.mark.parametrize("name", ["fabrikam", "fabrikam-multidc", "fabrikam-mixed", "openchange",
                                  "lab"])
def test_samples_and_lab_output_load_with_the_real_schema(name: str, samba_factory  # type: ignore[no-untyped-def]
                                                          ) -> None:
    """Every entry of every sample and of a `lab generate` organisation is accepted,
    unchanged, by a DC whose schema checks are all on (mustContain, possSuperiors,
    references to existing objects, no relax control) — save the NTDS Settings of
    domain controllers that do not run here, which AD refuses to anyone."""
    text = (_lab_output() if name == "lab"
            else (ROOT / "samples" / f"{name}.ldif").read_text(encoding="utf-8"))
    entries = parse_ldif_entries(text)
    dc: SambaDC = samba_factory(None)
    with dc.connection() as conn:
        loaded = load_entries(conn, entries, (DOMAIN_DN, CONFIG_DN), may_refuse=_ntds_settings)
    assert len(loaded.added) + len(loaded.existing) + len(loaded.refused) == len(entries)
    # only other DCs' NTDS Settings, for the reason AD gives
    assert all(_ntds_settings(dn, entries[dn]) for dn in loaded.refused), loaded.refused
    assert all("system-only" in why for why in loaded.refused.values()) or not loaded.refused, \
        loaded.refused
    expected_refused = {dnu.key(dn) for dn in entries if _ntds_settings(dn, entries[dn])
                        and "CN=DC1," not in dn}
    assert {dnu.key(dn) for dn in loaded.refused} == expected_refused
    # the objects the real schema is strict about were added, not found
    added = {dnu.key(d) for d in loaded.added}
    for dn in entries:
        if dn.startswith(("CN=Microsoft MTA,", "CN=Recipient Policies,", "CN=Default Policy,",
                          "CN=Mailbox Store", "CN=Public Folder Store")):
            assert dnu.key(dn) in added, dn
    directory = open_url(dc.url, dc.bind_dn, dc.password)
    try:
        # a server names its own MTA, written in the loader's second pass; AD keeps
        # the back link on the MTA
        servers = list(directory.search(CONFIG_DN, "(objectClass=msExchExchangeServer)",
                                        ("msExchResponsibleMTAServer",)))
        assert servers
        for server in servers:
            mta = server.text("msExchResponsibleMTAServer") or ""
            if name == "openchange":  # OpenChange provisions no MTA object
                assert not mta
                continue
            assert dnu.key(dnu.parent(mta)) == dnu.key(server.dn)
            found = directory.read(mta, ("msExchResponsibleMTAServerBL", "mTALocalDesig"))
            assert found is not None and found.get("msExchResponsibleMTAServerBL")
            assert found.text("mTALocalDesig") == dnu.rdn_value(server.dn)
    finally:
        directory.close()


def _first(item: dict, name: str) -> str:  # type: ignore[type-arg]
    values = item["raw_attributes"].get(name) or [b""]
    return values[0].decode()


def test_store_with_mailboxes_can_still_be_modified(fabrikam: SambaDC) -> None:
    """AD keeps homeMDBBL on a store once a mailbox points at it; the exported
    classes must allow it, or AD refuses every later change of the store."""
    directory = open_url(fabrikam.url, fabrikam.bind_dn, fabrikam.password)
    try:
        store = directory.read(directory.read(JOHN).text("homeMDB") or "")  # type: ignore[union-attr]
        assert store is not None and store.get("homeMDBBL")
        from exdir.backends.base import SimpleMod as _Mod
        old = store.text("legacyExchangeDN") or ""
        directory.modify(store.dn, [_Mod("delete", "legacyExchangeDN", (old,)),
                                    _Mod("add", "legacyExchangeDN", (old + "x",))])
        assert directory.read(store.dn).text("legacyExchangeDN") == old + "x"  # type: ignore[union-attr]
    finally:
        directory.close()


# --- 3. AD makes references follow; a plan for AD carries no rewrites -------------------------

def test_schema_export_reads_the_servers_schema_nc(fabrikam: SambaDC,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = cli(capsys, *server_args(fabrikam), "schema", "export", "--format", "ad")
    assert code == 0, err
    assert out == schema.ad_schema_ldif(SCHEMA_DN)


def test_rename_org_on_samba_references_follow(fabrikam: SambaDC, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    before = mailbox_homes(fabrikam.url, fabrikam.bind_dn, fabrikam.password)
    assert len(before) >= 10 and all(dnu.is_within(m, ORG) and dnu.is_within(t, ORG)
                                     for m, t in before.values())
    code, plan, err = cli(capsys, *server_args(fabrikam), "rename", "org", "Contoso")
    assert code == 0, err
    # exdir read "Active Directory" from the rootDSE: the server rewrites references itself
    assert "homeMDB" not in plan and "homeMTA" not in plan
    assert "newrdn: CN=Contoso" in plan
    plan_file = tmp_path / "plan.ldif"
    plan_file.write_text(plan, encoding="utf-8")
    undo = tmp_path / "undo.ldif"
    code, _, err = cli(capsys, *server_args(fabrikam), "apply", str(plan_file), "--apply",
                       "--lab", "--undo-file", str(undo))
    assert code == 0, err
    after = mailbox_homes(fabrikam.url, fabrikam.bind_dn, fabrikam.password)
    assert set(after) == set(before)
    for key, (mdb, mta) in before.items():
        assert dnu.key(after[key][0]) == dnu.key(dnu.rebase(mdb, ORG, NEW_ORG)), key
        assert dnu.key(after[key][1]) == dnu.key(dnu.rebase(mta, ORG, NEW_ORG)), key
    # and the undo file, applied, puts everything back (AD follows the rename back)
    code, _, err = cli(capsys, *server_args(fabrikam), "apply", str(undo), "--apply",
                       "--lab", "--undo-file", str(tmp_path / "undo2.ldif"))
    assert code == 0, err
    restored = mailbox_homes(fabrikam.url, fabrikam.bind_dn, fabrikam.password)
    assert {k: (dnu.key(m), dnu.key(t)) for k, (m, t) in restored.items()} == {
        k: (dnu.key(m), dnu.key(t)) for k, (m, t) in before.items()}


@pytest.mark.slapd
def test_same_rename_on_slapd_carries_the_rewrites(slapd_factory, capsys  # type: ignore[no-untyped-def]
                                                    ) -> None:
    server = slapd_factory(SAMPLE)
    base = ["--url", server.url, "--bind-dn", server.bind_dn, "--password-file",
            str(server.password_file)]
    before = mailbox_homes(server.url, server.bind_dn, server.password)
    code, plan, err = cli(capsys, *base, "rename", "org", "Contoso")
    assert code == 0, err
    # slapd is not AD: the plan rewrites every mailbox's homeMDB and homeMTA itself
    assert plan.count("\nadd: homeMDB\n") == len(before)
    assert plan.count("\nadd: homeMTA\n") == len(before)
    # because the server, renaming the organisation alone, leaves them stale
    directory = open_url(server.url, server.bind_dn, server.password)
    try:
        directory.rename(ORG, "CN=Contoso")
    finally:
        directory.close()
    assert mailbox_homes(server.url, server.bind_dn, server.password) == before


def test_rename_and_move_end_state_as_in_memory(fabrikam: SambaDC, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    """The same `rename org` and `move` applied through exdir to the in-memory
    directory and to Samba end in the same values of every attribute the sample
    defines (server-owned attributes and the DN strings aside, see test_fidelity)."""
    from tests.test_fidelity import AD_OWNED, data_state

    lab = tmp_path / "lab.ldif"
    lab.write_text(SAMPLE, encoding="utf-8")
    # the rename first: afterwards the move deletes homeMTA values that followed the
    # rename, which Samba matches only by GUID (test_fidelity.
    # test_delete_of_a_reference_that_followed_a_rename; exdir sends DN deletes so)
    steps = [["rename", "org", "Contoso", "--apply", "--lab"],
             ["move", "jsmith", "--to", "EUR1/First Storage Group/Mailbox Store (EUR1)",
              "--apply"]]
    for where in (["--ldif", str(lab)], server_args(fabrikam)):
        for i, step in enumerate(steps):
            code, _, err = cli(capsys, *where, "-q", *step, "--undo-file",
                               str(tmp_path / f"undo-{where[0][2:]}-{i}.ldif"))
            assert code == 0, (where[0], step, err)
    from exdir.backends.memory import open_ldif

    memory = open_ldif(str(lab), warn=lambda m: None)
    real = open_url(fabrikam.url, fabrikam.bind_dn, fabrikam.password)
    try:
        roots = [f"OU=Staff,{DOMAIN_DN}", f"OU=Europe,{DOMAIN_DN}",
                 f"CN=Microsoft Exchange,CN=Services,{CONFIG_DN}"]
        vocabulary = {name.lower() for _, values in memory.iter_stored()
                      for name in values} - AD_OWNED - {"entrydn"}
        expected = data_state(memory, roots, vocabulary)
        found = data_state(real, roots, vocabulary)
    finally:
        memory.close()
        real.close()
    john = expected[dnu.key(JOHN)]
    assert b"mailbox store (eur1)" in john["homemdb"][0] and b"cn=contoso" in john["homemdb"][0]
    assert sorted(found) == sorted(expected)
    for key, values in expected.items():
        assert found[key] == values, key


# --- 4. a second domain controller ---------------------------------------------------------------

@pytest.fixture
def two_dcs(samba_lab: SambaLab, fabrikam: SambaDC) -> Iterator[tuple[SambaDC, SambaDC]]:
    """DC2 joined through DC1 on 127.0.0.2 (added to lo for the test if missing)."""
    with LoopbackAddress(SECOND_ADDRESS):
        began = time.monotonic()
        second = join_dc(fabrikam, samba_lab.root / f"dc2-{time.monotonic_ns()}")
        samba_lab.timings.setdefault("join DC2", time.monotonic() - began)
        try:
            yield fabrikam, second
        finally:
            second.cleanup()


def test_second_dc_is_listed_and_blocks_renames(two_dcs: tuple[SambaDC, SambaDC],
                                                tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    first, second = two_dcs
    code, out, err = cli(capsys, *server_args(first), "topology")
    assert code == 0, err
    assert "Domain controllers (2)" in out
    code, out, err = cli(capsys, *server_args(first), "--json", "topology")
    assert code == 0, err
    dcs = json.loads(out)["domain_controllers"]
    assert sorted(d["name"] for d in dcs) == ["DC1", "DC2"]
    assert all(dnu.is_within(d["dn"], f"CN=Sites,{CONFIG_DN}") for d in dcs)
    # the joined DC runs too, on its own address, and sees the same two
    second.start()
    code, out, err = cli(capsys, *server_args(second), "--json", "topology")
    assert code == 0, err
    assert sorted(d["name"] for d in json.loads(out)["domain_controllers"]) == ["DC1", "DC2"]
    second.stop()
    # the preflight refuses a rename with two DCs, and nothing is written
    code, out, err = cli(capsys, *server_args(first), "check")
    assert code == 1 and "2 domain controllers" in out + err, out + err
    before = mailbox_homes(first.url, first.bind_dn, first.password)
    undo = tmp_path / "undo.ldif"
    code, out, err = cli(capsys, *server_args(first), "rename", "org", "Contoso", "--apply",
                         "--lab", "--undo-file", str(undo))
    assert code == 1 and "domain controllers" in err, err
    assert not undo.exists()
    directory = open_url(first.url, first.bind_dn, first.password)
    try:
        assert directory.read(ORG) is not None and directory.read(NEW_ORG) is None
    finally:
        directory.close()
    assert mailbox_homes(first.url, first.bind_dn, first.password) == before


# --- 5. binding as administrators do --------------------------------------------------------------

@pytest.fixture
def resolve_dc_name(monkeypatch: pytest.MonkeyPatch) -> str:
    """Name resolution for DC1.fabrikam.com -> 127.0.0.1 inside this process only.

    Samba's self-signed certificate names DC1.fabrikam.com (no IP address), so a
    verified TLS connection must use that name, as an administrator's DNS would
    provide; nothing else (no /etc/hosts) is changed.  Certificate, chain and name
    checks are the real ones."""
    name = "DC1.fabrikam.com"
    real = socket.getaddrinfo

    def getaddrinfo(host, *args, **kwargs):  # type: ignore[no-untyped-def]
        if isinstance(host, str) and host.lower() == name.lower():
            host = "127.0.0.1"
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return name


def one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def test_ldaps_verified_with_samba_ca(fabrikam: SambaDC, resolve_dc_name: str,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    url = f"ldaps://{resolve_dc_name}"
    ca = str(fabrikam.ca_file)
    code, out, err = cli(capsys, *server_args(fabrikam, url), "--ca-file", ca, "topology")
    assert code == 0, err
    assert "EX1" in out and "Domain controllers (1)" in out
    directory = open_url(url, fabrikam.bind_dn, fabrikam.password, ca_file=ca)
    try:
        assert directory.connection.server.ssl and directory.is_active_directory
    finally:
        directory.close()
    # without the CA: refused, one line, exit 2
    code, out, err = cli(capsys, *server_args(fabrikam, url), "topology")
    assert code == 2 and out == ""
    assert "certificate" in one_line(err) and "--ca-file" in err
    # with the CA but by address: the certificate does not name 127.0.0.1
    code, out, err = cli(capsys, *server_args(fabrikam, fabrikam.ldaps_url), "--ca-file", ca,
                         "topology")
    assert code == 2 and out == ""
    assert "not issued to 127.0.0.1" in one_line(err) and resolve_dc_name in err
    # --insecure skips verification, and says so by being explicit
    code, out, err = cli(capsys, *server_args(fabrikam, fabrikam.ldaps_url), "--insecure",
                         "topology")
    assert code == 0 and "EX1" in out, err


def test_starttls_on_389(fabrikam: SambaDC, resolve_dc_name: str,
                         capsys: pytest.CaptureFixture[str]) -> None:
    url = f"ldap://{resolve_dc_name}"
    directory = open_url(url, fabrikam.bind_dn, fabrikam.password, starttls=True,
                         ca_file=str(fabrikam.ca_file))
    try:
        assert directory.connection.tls_started and not directory.connection.server.ssl
        assert directory.read(JOHN) is not None
    finally:
        directory.close()
    code, out, err = cli(capsys, *server_args(fabrikam, url), "--starttls", "topology")
    assert code == 2 and "certificate" in one_line(err)
    code, out, err = cli(capsys, *server_args(fabrikam), "--starttls", "--insecure", "topology")
    assert code == 0 and "EX1" in out, err


def test_ntlm_is_one_clear_line(fabrikam: SambaDC, monkeypatch: pytest.MonkeyPatch,
                                capsys: pytest.CaptureFixture[str]) -> None:
    import exdir.backends.binds as directory_mod

    base = ["--url", fabrikam.url, "--auth", "ntlm", "--password-file",
            str(fabrikam.password_file)]
    code, out, err = cli(capsys, *base, "--bind-dn", fabrikam.bind_dn, "topology")
    assert code == 2 and "DOMAIN\\user" in one_line(err)  # a DN is not an NTLM name
    user = f"{DOMAIN}\\Administrator"
    code, out, err = cli(capsys, *base, "--bind-dn", user, "topology")
    assert code == 2 and out == ""
    # without MD4 exdir says so before connecting; with it, Samba's refusal below
    assert ("Sicily" if directory_mod.md4_available() else "MD4") in one_line(err)
    # where MD4 exists, Samba still refuses: it has no Sicily bind, ldap3's only NTLM
    monkeypatch.setattr(directory_mod, "md4_available", lambda: True)
    code, out, err = cli(capsys, *base, "--bind-dn", user, "topology")
    assert code == 2 and out == ""
    assert "Sicily" in one_line(err) and "--auth simple" in err
    code, out, err = cli(capsys, *base, "--auth", "gssapi", "--bind-dn", user, "topology")
    assert code == 2 and "simple, ntlm or kerberos" in one_line(err)
    assert fabrikam.password not in out + err


def test_password_never_shown(fabrikam: SambaDC, tmp_path: Path,
                              monkeypatch: pytest.MonkeyPatch,
                              capsys: pytest.CaptureFixture[str]) -> None:
    password = fabrikam.password
    monkeypatch.delenv("EXDIR_PASSWORD", raising=False)
    # there is no way to give it on the command line
    code, out, err = cli(capsys, "--url", fabrikam.url, "--bind-dn", fabrikam.bind_dn,
                         "--password", password, "topology")
    assert code == 2 and password not in out + err
    # a small plan, applied with a report and an undo file; the password from the environment
    monkeypatch.setenv("EXDIR_PASSWORD", password)
    base = ["--url", fabrikam.url, "--bind-dn", fabrikam.bind_dn]
    code, plan, err = cli(capsys, *base, "rename", "org", "Contoso")
    assert code == 0, err
    plan_file = tmp_path / "plan.ldif"
    plan_file.write_text(plan, encoding="utf-8")
    report, undo = tmp_path / "report.json", tmp_path / "undo.ldif"
    code, out, err = cli(capsys, *base, "--debug", "apply", str(plan_file), "--apply",
                         "--lab", "--report", str(report), "--undo-file", str(undo))
    assert code == 0, err
    written = [report.read_text(), undo.read_text()]
    written += [p.read_text(errors="replace") for p in tmp_path.glob("undo.ldif*")]
    assert json.loads(written[0])["outcome"] == "applied"
    for text in [plan, out, err, *written]:
        assert password not in text
    # a wrong password from a file: refused in one line, neither password shown
    wrong = tmp_path / "wrong"
    wrong.write_text("Not-" + password + "\n")
    monkeypatch.delenv("EXDIR_PASSWORD")
    code, out, err = cli(capsys, *base, "--password-file", str(wrong), "topology")
    assert code == 2 and "refused" in one_line(err)
    assert password not in out + err and "Not-" not in out + err
