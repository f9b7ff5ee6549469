"""The same Directory scenarios on the in-memory directory and on a real slapd.

Each scenario runs on both backends and asserts Active Directory's behaviour;
`test_same_end_state` runs one sequence on both and compares every entry.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterator

import pytest

from exdir import dn as dnu
from exdir.directory import Directory, Entry, _Mod, open_ldif, open_url
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


@pytest.fixture(params=["ldif", pytest.param("slapd", marks=pytest.mark.slapd)])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Directory]:
    yield from _open(request.param, request, tmp_path)


def _open(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Directory]:
    text = DATA.read_text(encoding="utf-8")
    if kind == "ldif":
        path = tmp_path / "lab.ldif"
        path.write_text(text, encoding="utf-8")
        directory: Directory = open_ldif(str(path), warn=lambda m: None)
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
    if backend.backend == "ldif":
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


# --- the same sequence, the same end state ------------------------------------------------

def _sequence(directory: Directory) -> None:
    """What a plan would do: rename, modify, add, delete — with the reference rewrites a
    plan carries where the server does not make references follow."""
    new_ag = directory.rename(AG, "CN=Europe")
    if not directory.follows_dn_references:
        for who in (JOHN, ANNA):
            directory.modify(who, [
                M("delete", "homeMDB", STORE), M("add", "homeMDB", dnu.rebase(STORE, AG, new_ag)),
                M("delete", "homeMTA", MTA), M("add", "homeMTA", dnu.rebase(MTA, AG, new_ag)),
            ])
    directory.modify(JOHN, [M("delete", "description", " leading space"),
                            M("add", "description", "trailing space ", "a: colon", "<angle")])
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
