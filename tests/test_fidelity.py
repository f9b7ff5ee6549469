"""The same Directory scenarios on the in-memory directory, a real slapd and a real
Active Directory (Samba's AD DC).

Each scenario runs on every backend and asserts Active Directory's behaviour;
`test_same_end_state` runs one sequence on the in-memory directory and slapd and
compares every entry, `test_same_end_state_on_all_three` adds Samba and compares
the attributes the data defines.  Where Samba (real AD rules) and exdir's
in-memory directory differ, the test says so in a comment starting "DIFFERENCE".
"""
from __future__ import annotations

from pathlib import Path
from typing import Generator, Iterator

import pytest
from ldap3 import MODIFY_DELETE

from exdir import dn as dnu
from exdir import schema
from exdir.backends.base import Directory, Entry, SimpleMod as _Mod
from exdir.backends.index import open_indexed
from exdir.backends.memory import open_ldif
from exdir.backends.ldap import open_url
from exdir.errors import Conflict, DirectoryError, EntryExists, NoSuchEntry

DATA = Path(__file__).parent / "data" / "scenario.ldif"
ORG = "CN=Fabrikam,CN=Microsoft Exchange,CN=Services,CN=Configuration,DC=fabrikam,DC=com"
AG = f"CN=First Administrative Group,CN=Administrative Groups,{ORG}"
SRV = f"CN=EX1,CN=Servers,{AG}"
STORE = f"CN=Mailbox Store (EX1),CN=First Storage Group,CN=InformationStore,{SRV}"
MTA = f"CN=Microsoft MTA,{SRV}"
JOHN = "CN=Smith\\, John,OU=Staff,DC=fabrikam,DC=com"
ANNA = "CN=Anna Lee,OU=Staff,DC=fabrikam,DC=com"

# server-owned attributes slapd adds; they are not part of the data
OPERATIONAL = {"entrydn", "entryuuid", "entrycsn", "createtimestamp", "modifytimestamp",
               "creatorsname", "modifiersname", "structuralobjectclass", "subschemasubentry",
               "hassubordinates"}


def M(op: str, attribute: str, *values: str | bytes) -> _Mod:
    return _Mod(op, attribute, tuple(values))


@pytest.fixture(params=["ldif", "index", pytest.param("slapd", marks=pytest.mark.slapd),
                        pytest.param("samba", marks=pytest.mark.samba)])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Directory]:
    yield from _open(request.param, request, tmp_path)


def _open(kind: str, request: pytest.FixtureRequest, tmp_path: Path
          ) -> Generator[Directory, None, None]:
    text = DATA.read_text(encoding="utf-8")
    if kind == "ldif":
        path = tmp_path / "lab.ldif"
        path.write_text(text, encoding="utf-8")
        directory: Directory = open_ldif(str(path), warn=lambda m: None)
    elif kind == "index":  # the same file through the indexed store (exdir.backends.index)
        path = tmp_path / "lab.ldif"
        path.write_text(text, encoding="utf-8")
        directory = open_indexed(str(path), warn=lambda m: None,
                                 index_dir=str(tmp_path / "index"))
    elif kind == "samba":
        dc = request.getfixturevalue("samba_factory")(text)
        directory = open_url(dc.url, dc.bind_dn, dc.password)
    else:
        make = request.getfixturevalue("slapd_factory")
        server = make(text)
        directory = open_url(server.url, server.bind_dn, server.password)
    try:
        yield directory
    finally:
        directory.close()


def dump(directory: Directory) -> dict[str, dict[str, list[bytes]]]:
    """Every entry, DN and values normalised, for entry-by-entry comparisons."""
    out: dict[str, dict[str, list[bytes]]] = {}
    for entry in directory.search(directory.naming.domain, "(objectClass=*)", ("*",)):
        attrs: dict[str, list[bytes]] = {}
        for name, values in entry.attributes.items():
            if name.lower() in OPERATIONAL:
                continue
            norm = []
            for v in values:
                raw = v if isinstance(v, bytes) else v.encode("utf-8")
                if name.lower() in ("homemdb", "homemta", "publicdelegates"):
                    raw = dnu.key(raw.decode()).encode()
                norm.append(raw)
            attrs[name.lower()] = sorted(norm)
        out[dnu.key(entry.dn)] = attrs
    return out


def is_ad(directory: Directory) -> bool:
    """Samba's AD DC: the only backend of the suite that enforces AD's own rules."""
    return directory.is_active_directory


def entry(directory: Directory, dn: str) -> Entry:
    found = directory.read(dn)
    assert found is not None, dn
    return found


# --- subtree rename -------------------------------------------------------------------

def test_rename_moves_the_subtree(backend: Directory) -> None:
    new = backend.rename(AG, "CN=Europe")
    assert dnu.key(new) == dnu.key(f"CN=Europe,CN=Administrative Groups,{ORG}")
    assert backend.read(AG) is None
    assert backend.read(SRV) is None
    moved = dnu.rebase(STORE, AG, new)
    assert entry(backend, moved).text("cn") == "Mailbox Store (EX1)"
    assert entry(backend, new).texts("cn") == ["Europe"]  # the old RDN value is gone
    servers = list(backend.search(backend.naming.configuration,
                                  "(objectClass=msExchExchangeServer)", ("cn",)))
    assert [dnu.key(s.dn) for s in servers] == [dnu.key(dnu.rebase(SRV, AG, new))]


def test_rename_with_new_superior(backend: Directory) -> None:
    backend.add("OU=Leavers,DC=fabrikam,DC=com",
                {"objectClass": ["top", "organizationalUnit"], "ou": ["Leavers"]})
    new = backend.rename(ANNA, "CN=Anna Lee-Smith", "OU=Leavers,DC=fabrikam,DC=com")
    assert dnu.key(new) == dnu.key("CN=Anna Lee-Smith,OU=Leavers,DC=fabrikam,DC=com")
    assert entry(backend, new).text("mailNickname") == "alee"
    assert backend.read(ANNA) is None


# --- DN references --------------------------------------------------------------------

def test_dn_references_follow_only_where_the_backend_says(backend: Directory) -> None:
    new = backend.rename(ORG, "CN=Contoso")
    john = entry(backend, JOHN)
    moved_store = dnu.rebase(STORE, ORG, new)
    followed = dnu.key(john.text("homeMDB") or "") == dnu.key(moved_store)
    stale = dnu.key(john.text("homeMDB") or "") == dnu.key(STORE)
    assert followed or stale
    assert followed == backend.follows_dn_references
    if backend.follows_dn_references:  # the in-memory directory and AD: homeMTA too
        assert followed and dnu.key(john.text("homeMTA") or "") == dnu.key(
            dnu.rebase(MTA, ORG, new))
    else:  # the test slapd has no refint overlay: plans must carry the rewrites
        assert stale


def test_publicdelegates_follow_a_renamed_user(backend: Directory) -> None:
    new = backend.rename(JOHN, "CN=Smith\\, Johnny")
    delegates = entry(backend, ANNA).texts("publicDelegates")
    if backend.follows_dn_references:
        assert [dnu.key(d) for d in delegates] == [dnu.key(new)]
    else:
        assert [dnu.key(d) for d in delegates] == [dnu.key(JOHN)]


# --- modify -------------------------------------------------------------------------------

def test_conflicting_modify_changes_nothing(backend: Directory) -> None:
    before = entry(backend, JOHN)
    with pytest.raises(Conflict):
        backend.modify(JOHN, [
            M("delete", "mailNickname", "jsmith"), M("add", "mailNickname", "john"),
            M("delete", "proxyAddresses", "smtp:not-there@fabrikam.com"),
        ])
    assert entry(backend, JOHN) == before


def test_case_differing_delete_matches(backend: Directory) -> None:
    backend.modify(JOHN, [M("delete", "proxyAddresses", "SMTP:JSMITH@FABRIKAM.COM"),
                          M("add", "proxyAddresses", "X500:/o=Old/cn=jsmith")])
    assert sorted(entry(backend, JOHN).texts("proxyAddresses")) == [
        "SMTP:john.smith@fabrikam.com", "X500:/o=Old/cn=jsmith"]


def test_dn_value_delete_ignores_case_and_spacing(backend: Directory) -> None:
    backend.modify(JOHN, [M("delete", "homeMDB", STORE.upper().replace(",", ", ")),
                          M("add", "homeMDB", MTA)])
    assert dnu.key(entry(backend, JOHN).text("homeMDB") or "") == dnu.key(MTA)


def test_duplicate_value_refused(backend: Directory) -> None:
    before = entry(backend, JOHN)
    with pytest.raises(Conflict):
        backend.modify(JOHN, [M("add", "proxyAddresses", "smtp:jsmith@fabrikam.com")])
    assert entry(backend, JOHN) == before
    if is_ad(backend):
        # DIFFERENCE: Samba's AD refuses only an exact duplicate; a value differing in
        # case alone is stored beside the other (deletes and filters still match
        # case-insensitively).  exdir's in-memory directory and slapd refuse it.
        backend.modify(JOHN, [M("add", "proxyAddresses", "smtp:JSMITH@fabrikam.com")])
        assert sorted(entry(backend, JOHN).texts("proxyAddresses")) == [
            "SMTP:john.smith@fabrikam.com", "smtp:JSMITH@fabrikam.com",
            "smtp:jsmith@fabrikam.com"]
    else:
        with pytest.raises(Conflict):
            backend.modify(JOHN, [M("add", "proxyAddresses", "smtp:JSMITH@fabrikam.com")])
        assert entry(backend, JOHN) == before


def test_second_value_of_single_valued_refused(backend: Directory) -> None:
    before = entry(backend, JOHN)
    with pytest.raises(Conflict):
        backend.modify(JOHN, [M("add", "mailNickname", "john")])
    assert entry(backend, JOHN) == before


def test_modify_of_missing_entry(backend: Directory) -> None:
    with pytest.raises(NoSuchEntry):
        backend.modify("CN=Nobody,OU=Staff,DC=fabrikam,DC=com",
                       [M("add", "description", "x")])


def test_binary_value_round_trips(backend: Directory) -> None:
    guid = bytes(range(255, 239, -1))
    backend.modify(JOHN, [M("delete", "msExchMailboxGuid", bytes(range(16))),
                          M("add", "msExchMailboxGuid", guid)])
    assert entry(backend, JOHN).first("msExchMailboxGuid") == guid


# --- add, delete, rename refusals -----------------------------------------------------------

def test_add_under_missing_parent_refused(backend: Directory) -> None:
    with pytest.raises(NoSuchEntry):
        backend.add("CN=X,OU=Nowhere,DC=fabrikam,DC=com",
                    {"objectClass": ["top", "container"], "cn": ["X"]})
    assert backend.read("CN=X,OU=Nowhere,DC=fabrikam,DC=com") is None


def test_add_existing_refused(backend: Directory) -> None:
    with pytest.raises(EntryExists):
        backend.add("OU=Staff,DC=fabrikam,DC=com",
                    {"objectClass": ["top", "organizationalUnit"], "ou": ["Staff"]})


def test_rename_onto_existing_refused(backend: Directory) -> None:
    with pytest.raises(EntryExists):
        backend.rename(ANNA, "CN=Smith\\, John")
    assert backend.read(ANNA) is not None


def test_rename_missing_refused(backend: Directory) -> None:
    with pytest.raises(NoSuchEntry):
        backend.rename("CN=Ghost,OU=Staff,DC=fabrikam,DC=com", "CN=Spirit")


def test_delete_non_leaf_refused(backend: Directory) -> None:
    with pytest.raises(DirectoryError):
        backend.delete(SRV)
    assert backend.read(SRV) is not None


def test_read_returns_the_dn_as_stored(backend: Directory) -> None:
    found = entry(backend, ANNA.upper())
    assert dnu.key(found.dn) == dnu.key(ANNA)
    if is_ad(backend) or backend.backend == "ldif":
        assert found.dn == ANNA  # AD, and the in-memory directory, answer as stored
    else:  # slapd: the values as stored, attribute types as its schema names them
        assert found.dn == "cn=Anna Lee,ou=Staff,dc=fabrikam,dc=com"


def test_read_many_is_keyed_by_dn(backend: Directory) -> None:
    found = backend.read_many([JOHN, ANNA.upper(), "CN=Nobody,DC=fabrikam,DC=com", SRV],
                              ("mailNickname", "cn"))
    assert set(found) == {dnu.key(JOHN), dnu.key(ANNA), dnu.key(SRV)}
    assert found[dnu.key(ANNA)].text("mailNickname") == "alee"


def test_search_is_paged_past_one_page(backend: Directory) -> None:
    for i in range(1203 if backend.backend == "ldif" else 1003):
        backend.add(f"CN=C{i},OU=Staff,DC=fabrikam,DC=com",
                    {"objectClass": ["top", "container"], "cn": [f"C{i}"]})
    found = list(backend.search("OU=Staff,DC=fabrikam,DC=com", "(objectClass=container)",
                                ("cn",), scope="one"))
    assert len(found) == (1203 if backend.backend == "ldif" else 1003)


# --- rules a real Active Directory enforces and the other backends do not -------------------

def test_dn_reference_must_name_an_existing_object(backend: Directory) -> None:
    before = entry(backend, ANNA)
    missing = f"CN=Nowhere,{AG}"
    change = [M("delete", "homeMTA", MTA), M("add", "homeMTA", missing)]
    if is_ad(backend):
        # DIFFERENCE: AD refuses a DN value naming no object (constraintViolation,
        # "Referenced object not found"); the in-memory directory stores it
        with pytest.raises(Conflict):
            backend.modify(ANNA, change)
        assert entry(backend, ANNA) == before
    else:
        backend.modify(ANNA, change)
        assert dnu.key(entry(backend, ANNA).text("homeMTA") or "") == dnu.key(missing)


def test_description_is_single_valued_on_users(backend: Directory) -> None:
    staff = "OU=Staff,DC=fabrikam,DC=com"
    backend.modify(staff, [M("add", "description", "one", "two")])  # multi-valued on an OU
    assert sorted(entry(backend, staff).texts("description")) == ["one", "two"]
    before = entry(backend, JOHN)
    if is_ad(backend):
        # DIFFERENCE: AD holds description single-valued on SAM objects (users,
        # groups, computers); the schema says multi-valued, which the others follow
        with pytest.raises(Conflict):
            backend.modify(JOHN, [M("add", "description", "second")])
        assert entry(backend, JOHN) == before
    else:
        backend.modify(JOHN, [M("add", "description", "second")])
        assert len(entry(backend, JOHN).texts("description")) == 2


def test_configuration_rename_needs_the_allow_rename_flag(backend: Directory) -> None:
    # the organisation, admin group and server carry systemFlags 0x60000000
    # (FLAG_CONFIG_ALLOW_RENAME | FLAG_CONFIG_ALLOW_MOVE), the store carries none
    renamed_server = backend.rename(SRV, "CN=EX9")
    store = dnu.rebase(STORE, SRV, renamed_server)
    if is_ad(backend):
        # DIFFERENCE: in the configuration NC AD renames only objects whose
        # systemFlags allow it (unwillingToPerform otherwise)
        with pytest.raises(DirectoryError) as failed:
            backend.rename(store, "CN=Store 2")
        assert failed.value.result == "unwillingToPerform"
        assert backend.read(store) is not None
    else:
        backend.rename(store, "CN=Store 2")
        assert backend.read(store) is None


def test_move_must_respect_possible_superiors(backend: Directory) -> None:
    groups = f"CN=Administrative Groups,{ORG}"
    if is_ad(backend):
        # DIFFERENCE: AD checks the schema's possSuperiors on a move (namingViolation:
        # a server belongs in a Servers container); the others place it anywhere
        with pytest.raises(DirectoryError) as failed:
            backend.rename(SRV, "CN=EX1", groups)
        assert failed.value.result == "namingViolation"
        assert backend.read(SRV) is not None
    else:
        moved = backend.rename(SRV, "CN=EX1", groups)
        assert backend.read(moved) is not None


def test_references_to_a_deleted_object(backend: Directory) -> None:
    backend.delete(STORE)
    backend.delete(MTA)
    john = entry(backend, JOHN)
    if is_ad(backend):
        # DIFFERENCE: AD removes a linked value (homeMDB) with its target, and a
        # non-linked one (homeMTA) follows the target into CN=Deleted Objects;
        # the in-memory directory keeps both DNs as they were
        assert john.get("homeMDB") == []
        tomb = john.text("homeMTA") or ""
        assert "\\0ADEL:" in tomb and dnu.key(dnu.parent(tomb)) == dnu.key(
            f"CN=Deleted Objects,{backend.naming.configuration}")
    else:
        assert dnu.key(john.text("homeMDB") or "") == dnu.key(STORE)
        assert dnu.key(john.text("homeMTA") or "") == dnu.key(MTA)


def test_delete_of_a_reference_that_followed_a_rename(backend: Directory) -> None:
    """What a plan made after a rename does: delete the homeMTA it read, add another."""
    new_org = backend.rename(ORG, "CN=Contoso")
    shown = entry(backend, JOHN).text("homeMTA") or ""
    target = dnu.rebase(AG, ORG, new_org)
    change = [M("delete", "homeMTA", shown), M("add", "homeMTA", target)]
    if is_ad(backend):
        # DIFFERENCE: Samba shows a non-linked DN value under its target's new name
        # (and filters match it) but keeps the old string, so deleting the value it
        # shows fails (noSuchAttribute) when sent as a DN; the old name names no
        # object any more.  LdapDirectory.modify sends DN deletes on AD as the
        # target's <GUID=…>, which matches: shown here with the raw connection first.
        assert dnu.key(shown) == dnu.key(dnu.rebase(MTA, ORG, new_org))
        assert not backend.connection.modify(  # type: ignore[attr-defined]
            JOHN, {"homeMTA": [(MODIFY_DELETE, [shown])]})
        store = dnu.rebase(STORE, ORG, new_org)
        backend.modify(JOHN, [M("delete", "homeMDB", store), M("add", "homeMDB", store)])
    backend.modify(JOHN, change)  # the value as read deletes, on every backend
    assert dnu.key(entry(backend, JOHN).text("homeMTA") or "") == dnu.key(target)


# --- the same sequence, the same end state ------------------------------------------------

def _sequence(directory: Directory, *, ad_rules: bool = False) -> None:
    """What a plan would do: rename, modify, add, delete — with the reference rewrites a
    plan carries where the server does not make references follow.

    ad_rules: keep within what Active Directory accepts (description is single-valued
    on a user, so the several tricky values go on the OU instead)."""
    new_ag = directory.rename(AG, "CN=Europe")
    if not directory.follows_dn_references:
        for who in (JOHN, ANNA):
            directory.modify(who, [
                M("delete", "homeMDB", STORE), M("add", "homeMDB", dnu.rebase(STORE, AG, new_ag)),
                M("delete", "homeMTA", MTA), M("add", "homeMTA", dnu.rebase(MTA, AG, new_ag)),
            ])
    if ad_rules:
        directory.modify(JOHN, [M("delete", "description", " leading space"),
                                M("add", "description", "trailing space ")])
        directory.modify("OU=Staff,DC=fabrikam,DC=com",
                         [M("add", "description", "a: colon", "<angle", " leading space")])
    else:
        directory.modify(JOHN, [M("delete", "description", " leading space"),
                                M("add", "description", "trailing space ", "a: colon",
                                      "<angle")])
    directory.modify(ANNA, [M("replace", "displayName", "Anna Lée-Smith")])
    directory.add("CN=Room 1,OU=Staff,DC=fabrikam,DC=com",
                  {"objectClass": ["top", "container"], "cn": ["Room 1"]})
    directory.delete("CN=Room 1,OU=Staff,DC=fabrikam,DC=com")
    directory.add("CN=Room 2,OU=Staff,DC=fabrikam,DC=com",
                  {"objectClass": ["top", "container"], "cn": ["Room 2"]})


@pytest.mark.slapd
def test_same_end_state(request: pytest.FixtureRequest, tmp_path: Path) -> None:
    states = []
    for kind in ("ldif", "slapd"):
        gen = _open(kind, request, tmp_path / kind if (tmp_path / kind).mkdir() is None else tmp_path)
        directory = next(gen)
        try:
            _sequence(directory)
            states.append(dump(directory))
        finally:
            gen.close()
    mock, real = states
    assert sorted(mock) == sorted(real)
    for key in mock:
        assert mock[key] == real[key], key


# Attributes a real AD writes itself; everything else an entry holds is the data's.
AD_OWNED = frozenset(a.lower() for a in (
    "objectGUID", "objectSid", "whenCreated", "whenChanged", "uSNCreated", "uSNChanged",
    "objectCategory", "instanceType", "name", "distinguishedName", "nTSecurityDescriptor",
    "dSCorePropagationData", "showInAdvancedViewOnly", "isCriticalSystemObject",
    "sAMAccountName", "sAMAccountType", "userAccountControl", "primaryGroupID",
    "pwdLastSet", "accountExpires", "badPwdCount", "badPasswordTime", "lastLogon",
    "lastLogoff", "logonCount", "codePage", "countryCode", "homeMDBBL", "memberOf",
    "publicDelegatesBL", "altRecipientBL", "msExchResponsibleMTAServerBL",
    "msExchChildSyncAgreements", "replPropertyMetaData"))


def data_state(directory: Directory, roots: list[str], vocabulary: set[str]
               ) -> dict[str, dict[str, list[bytes]]]:
    """Entries at and under roots, on the attributes of vocabulary only, values sorted;
    DN values (whose stored string AD rewrites) compared by dn.key."""
    out: dict[str, dict[str, list[bytes]]] = {}
    for root in roots:
        for found in directory.search(root, "(objectClass=*)", ("*",)):
            attrs: dict[str, list[bytes]] = {}
            for name, values in found.attributes.items():
                if name.lower() not in vocabulary:
                    continue
                norm = []
                for v in values:
                    raw = v if isinstance(v, bytes) else v.encode("utf-8")
                    if schema.kind_of(name) == "dn":
                        raw = dnu.key(raw.decode()).encode()
                    norm.append(raw)
                attrs[name.lower()] = sorted(norm)
            out[dnu.key(found.dn)] = attrs
    return out


@pytest.mark.slapd
@pytest.mark.samba
def test_same_end_state_on_all_three(request: pytest.FixtureRequest, tmp_path: Path) -> None:
    """One sequence on the in-memory directory, slapd and Samba; the same entries and
    the same values of every attribute the data defines, on all three."""
    # the entries the data adds below the server's own (the domain head,
    # CN=Configuration and CN=Services exist on a fresh AD and are not compared)
    roots = ["OU=Staff,DC=fabrikam,DC=com",
             "CN=Microsoft Exchange,CN=Services,CN=Configuration,DC=fabrikam,DC=com"]
    directories: dict[str, Directory] = {}
    gens = []
    try:
        for kind in ("ldif", "slapd", "samba"):
            (tmp_path / kind).mkdir()
            gen = _open(kind, request, tmp_path / kind)
            gens.append(gen)
            directories[kind] = next(gen)
            _sequence(directories[kind], ad_rules=True)
        reference = dump(directories["ldif"])
        vocabulary = {name for attrs in reference.values() for name in attrs} - AD_OWNED
        states = {kind: data_state(d, roots, vocabulary) for kind, d in directories.items()}
    finally:
        for gen in gens:
            gen.close()
    assert len(states["ldif"]) > 10
    for kind in ("slapd", "samba"):
        assert sorted(states[kind]) == sorted(states["ldif"]), kind
        for key, values in states["ldif"].items():
            assert states[kind][key] == values, (kind, key)


def test_save_and_reload(tmp_path: Path) -> None:
    path = tmp_path / "lab.ldif"
    path.write_text(DATA.read_text(encoding="utf-8"), encoding="utf-8")
    directory = open_ldif(str(path), warn=lambda m: None)
    _sequence(directory)
    before = dump(directory)
    directory.save()
    text = path.read_text(encoding="utf-8")
    assert text.startswith("version: 1\n")
    reloaded = open_ldif(str(path), warn=lambda m: None)
    assert dump(reloaded) == before
    # parents before children in the file
    dns = [dnu.key(line[4:]) for line in text.replace("\n ", "").splitlines()
           if line.startswith("dn: ")]
    for i, d in enumerate(dns):
        for anc in dnu.ancestors(d):
            if anc in dns:
                assert dns.index(anc) < i


def test_a_multi_valued_rdn_is_one_name_in_either_ava_order(backend: Directory) -> None:
    """`CN=a+OU=b` and `OU=b+CN=a` name one entry (RFC 4514: the AVAs of an RDN are a
    set), for reads, writes and the clash check; Active Directory has no multi-valued
    RDNs at all, so the case is the other backends'."""
    if is_ad(backend):
        pytest.skip("Active Directory refuses multi-valued RDNs")
    written = "CN=Pair+OU=Two,OU=Staff,DC=fabrikam,DC=com"
    other = "ou=Two+cn=pair,OU=Staff,DC=fabrikam,DC=com"
    backend.add(written, {"objectClass": ["top", "container"], "cn": ["Pair"], "ou": ["Two"]})
    found = backend.read(other)
    assert found is not None and dnu.key(found.dn) == dnu.key(written)
    backend.modify(other, [M("add", "description", "either order")])
    assert entry(backend, written).texts("description") == ["either order"]
    with pytest.raises(EntryExists):
        backend.add(other, {"objectClass": ["top", "container"], "cn": ["pair"], "ou": ["Two"]})
    backend.add(f"CN=Child,{other}", {"objectClass": ["top", "container"], "cn": ["Child"]})
    assert backend.read(f"CN=Child,{written}") is not None
    assert [dnu.key(e.dn) for e in backend.search(other, scope="base")] == [dnu.key(written)]
    backend.delete(f"cn=child,{other}")
    backend.delete(other)
    assert backend.read(written) is None


def test_same_end_state_in_memory_and_indexed(request: pytest.FixtureRequest,
                                              tmp_path: Path) -> None:
    """One sequence on the in-memory directory and the indexed store: every entry the
    same, in the same order, and the same again after each saves and reloads."""
    states, orders = [], []
    for kind in ("ldif", "index"):
        (tmp_path / kind).mkdir()
        gen = _open(kind, request, tmp_path / kind)
        directory = next(gen)
        try:
            _sequence(directory)
            states.append(dump(directory))
            orders.append([e.dn for e in directory.search(directory.naming.domain)])
            directory.save()
        finally:
            gen.close()
    assert states[0] == states[1]
    assert orders[0] == orders[1]
    memory = open_ldif(str(tmp_path / "ldif" / "lab.ldif"), warn=lambda m: None)
    indexed = open_ldif(str(tmp_path / "index" / "lab.ldif"), warn=lambda m: None)
    assert dump(memory) == dump(indexed) == states[0]
    again = open_indexed(str(tmp_path / "index" / "lab.ldif"), warn=lambda m: None,
                         index_dir=str(tmp_path / "index" / "index"))
    try:
        assert dump(again) == states[0]
    finally:
        again.close()
