"""Topology read from the bundled samples, on the in-memory directory and on a real slapd.

Expectations are derived from the sample files themselves, parsed with the `ldif`
package, and from docs/exchange.md's rules written down here (serialNumber → version, DN
shapes, msExchSynchronizationDirection) — never from exdir's own readers.
"""
from __future__ import annotations

import io
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import ldif
import pytest
from ldap3.utils.dn import parse_dn

from exdir import dn as dnu
from exdir.backends.base import Directory, Entry
from exdir.backends.memory import open_ldif
from exdir.backends.ldap import open_url
from exdir.errors import InputError
from exdir.readers.topology import read_topology
from exdir.topology import AdminGroup, ExchangeServer, Mta, Store, Topology, parse_version
from tests.servers.slapd import SlapdFactory, require_slapd

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples"
SAMPLE_NAMES = ("fabrikam", "fabrikam-multidc", "fabrikam-mixed")
BACKENDS = ("ldif", "slapd")

# docs/exchange.md, "Server versions": the major.minor of `Version X.Y (…)` names the release.
_SERIAL = re.compile(r"^Version (\d+)\.(\d+)")
_RELEASE = {(5, 5): "5.5", (6, 0): "2000", (6, 5): "2003"}
# msExchSynchronizationDirection of a connection agreement: 0 both ways, 1 from
# Windows (Active Directory) to Exchange 5.5, 2 from Exchange 5.5 to Windows.
_DIRECTION = {"0": "two-way", "1": "one-way to Exchange", "2": "one-way to Windows"}


def expected_version(serial: str) -> str:
    m = _SERIAL.match(serial)
    assert m, f"sample serialNumber {serial!r} is not `Version X.Y (…)`"
    major, minor = int(m.group(1)), int(m.group(2))
    if major >= 8:
        return "2007+"
    return _RELEASE[(major, minor)]


# --- the sample as the `ldif` package reads it ---------------------------------------------

@dataclass
class FileEntry:
    dn: str
    attrs: dict[str, list[str]]  # lower-case name -> values (text; binaries left out)

    def first(self, name: str) -> str | None:
        values = self.attrs.get(name.lower())
        return values[0] if values else None

    @property
    def classes(self) -> set[str]:
        return {c.lower() for c in self.attrs.get("objectclass", [])}

    @property
    def key(self) -> str:
        return dnu.key(self.dn)


def read_file(path: Path) -> list[FileEntry]:
    parser = ldif.LDIFParser(io.BytesIO(path.read_bytes()), encoding=None, strict=True)
    out = []
    for dn, record in parser.parse():
        if dn is None:
            continue
        attrs: dict[str, list[str]] = {}
        for name, values in record.items():
            try:
                attrs.setdefault(name.lower(), []).extend(v.decode("utf-8") for v in values)
            except UnicodeDecodeError:
                continue
        out.append(FileEntry(dn, attrs))
    return out


def of_class(entries: Sequence[FileEntry], cls: str) -> list[FileEntry]:
    return [e for e in entries if cls.lower() in e.classes]


def rdn_values(dn: str) -> list[str]:
    """The unescaped RDN values of dn, leaf first (ldap3's parser, not exdir's)."""
    return [dnu.split(f"{a}={v}")[0][1] for a, v, _ in parse_dn(dn, escape=False)]


def ancestor(dn: str, levels: int) -> str:
    """The DN `levels` RDNs above dn."""
    parts = parse_dn(dn, escape=False)
    return ",".join(f"{a}={v}" for a, v, _ in parts[levels:])


def owning_server(dn: str, server_keys: set[str]) -> str | None:
    """The key of the nearest ancestor of dn that is a server in the file."""
    parts = parse_dn(dn, escape=False)
    for i in range(1, len(parts)):
        k = dnu.key(",".join(f"{a}={v}" for a, v, _ in parts[i:]))
        if k in server_keys:
            return k
    return None


# --- fixtures ----------------------------------------------------------------------------

@dataclass
class Loaded:
    sample: str
    backend: str
    directory: Directory
    topology: Topology
    file: list[FileEntry]


def _open(backend: str, text: str, factory: SlapdFactory | None, path: Path) -> Directory:
    if backend == "ldif":
        return open_ldif(str(path), warn=lambda m: None)
    assert factory is not None
    server = factory(text.replace("version: 1\n", "", 1))
    return open_url(server.url, server.bind_dn, server.password)


@pytest.fixture(scope="module", params=[
    pytest.param((s, b), id=f"{s}-{b}", marks=[pytest.mark.slapd] if b == "slapd" else [])
    for s in SAMPLE_NAMES for b in BACKENDS])
def loaded(request: pytest.FixtureRequest) -> Iterator[Loaded]:
    sample, backend = request.param
    path = SAMPLES / f"{sample}.ldif"
    factory = None
    if backend == "slapd":
        require_slapd()
        factory = SlapdFactory()
    try:
        directory = _open(backend, path.read_text(encoding="utf-8"), factory, path)
        try:
            yield Loaded(sample, backend, directory, read_topology(directory), read_file(path))
        finally:
            directory.close()
    finally:
        if factory is not None:
            factory.close()


def keys(items: Sequence[object]) -> set[str]:
    return {dnu.key(i.dn) for i in items}  # type: ignore[attr-defined]


# --- what the topology holds -----------------------------------------------------------

def test_organisation(loaded: Loaded) -> None:
    [org] = of_class(loaded.file, "msExchOrganizationContainer")
    got = loaded.topology.organization
    assert dnu.key(got.dn) == org.key
    assert got.name == rdn_values(org.dn)[0] == org.first("cn")
    assert got.legacy_dn == org.first("legacyExchangeDN")
    assert got.mixed_mode is ((org.first("msExchMixedMode") or "").upper() == "TRUE")
    assert got.mixed_mode is (loaded.sample == "fabrikam-mixed")


def test_admin_groups(loaded: Loaded) -> None:
    want = {(g.key, g.first("cn"), g.first("legacyExchangeDN"))
            for g in of_class(loaded.file, "msExchAdminGroup")}
    got = {(dnu.key(g.dn), g.name, g.legacy_dn) for g in loaded.topology.admin_groups}
    assert got == want and len(want) == 2


def test_every_server_with_its_version(loaded: Loaded) -> None:
    files = of_class(loaded.file, "msExchExchangeServer")
    want = {s.first("cn"): (s.key, expected_version(s.first("serialNumber") or ""),
                            s.first("serialNumber"), dnu.key(ancestor(s.dn, 2)),
                            s.first("legacyExchangeDN"))
            for s in files}
    got = {s.name: (dnu.key(s.dn), s.version, s.serial, dnu.key(s.admin_group or ""),
                    s.legacy_dn)
           for s in loaded.topology.servers}
    assert got == want
    assert {v[1] for v in want.values()} >= {"5.5", "2000", "2003"}  # the sample's promise
    for s in loaded.topology.servers:
        assert s.downlevel is (s.version in ("5.5", "2000"))


def test_storage_groups_with_their_servers(loaded: Loaded) -> None:
    server_keys = {s.key for s in of_class(loaded.file, "msExchExchangeServer")}
    want = {(g.key, owning_server(g.dn, server_keys))
            for g in of_class(loaded.file, "msExchStorageGroup")}
    got = {(dnu.key(g.dn), dnu.key(g.server)) for g in loaded.topology.storage_groups}
    assert got == want
    assert all(server for _, server in want)


def test_stores_private_and_public_with_their_servers(loaded: Loaded) -> None:
    server_keys = {s.key for s in of_class(loaded.file, "msExchExchangeServer")}
    want = set()
    for cls, public in (("msExchPrivateMDB", False), ("msExchPublicMDB", True)):
        for s in of_class(loaded.file, cls):
            want.add((s.key, s.first("cn"), public, owning_server(s.dn, server_keys),
                      dnu.key(ancestor(s.dn, 1)), s.first("legacyExchangeDN")))
    got = {(dnu.key(s.dn), s.name, s.public, dnu.key(s.server), dnu.key(s.storage_group or ""),
            s.legacy_dn) for s in loaded.topology.stores}
    assert got == want
    assert {w[2] for w in want} == {False, True}


def test_mtas(loaded: Loaded) -> None:
    want = {(m.key, dnu.key(ancestor(m.dn, 1)), m.first("legacyExchangeDN"))
            for m in of_class(loaded.file, "mTA")}
    got = {(dnu.key(m.dn), dnu.key(m.server), m.legacy_dn) for m in loaded.topology.mtas}
    assert got == want and len(want) == len(loaded.topology.servers)


def test_domain_controllers(loaded: Loaded) -> None:
    want = set()
    for d in of_class(loaded.file, "nTDSDSA"):
        names = rdn_values(d.dn)  # NTDS Settings, <DC>, Servers, <site>, Sites, …
        read_only = (d.first("msDS-isRODC") or "").upper() == "TRUE" or "ntdsdsaro" in d.classes
        want.add((d.key, names[1], names[3], read_only))
    dcs = loaded.topology.domain_controllers
    assert {(dnu.key(d.dn), d.name, d.site, d.read_only) for d in dcs} == want
    if loaded.sample == "fabrikam-multidc":
        assert len(dcs) == 3 and len(loaded.topology.read_only_dcs) == 1
        assert len({d.site for d in dcs}) == 2
    else:
        assert len(dcs) == 1 and not loaded.topology.read_only_dcs


def test_connection_agreements(loaded: Loaded) -> None:
    want = {(a.key, a.first("cn"), _DIRECTION[a.first("msExchSynchronizationDirection") or ""],
             a.first("msExchServer1NetworkAddress"), a.first("msExchServer2NetworkAddress"))
            for a in of_class(loaded.file, "msExchConnectionAgreement")}
    got = {(dnu.key(a.dn), a.name, a.direction, a.windows_server, a.exchange_server)
           for a in loaded.topology.agreements}
    assert got == want
    if loaded.sample == "fabrikam-mixed":
        assert len({w[2] for w in want}) == 2  # two agreements, two directions
    else:
        assert not want


# --- lookups -------------------------------------------------------------------------------

def _variants(dn: str) -> list[str]:
    """The same DN as a user may type it: other case, spaces, hex escapes of the leaf."""
    parts = parse_dn(dn, escape=False)
    attr, value, _ = parts[0]
    rest = ",".join(f"{a}={v}" for a, v, _ in parts[1:])
    hexed = "".join(f"\\{ord(c):02X}" if c.isalnum() or c in "()" else c for c in value[:3])
    return [dn.upper(), dn.lower(), ", ".join(f"{a}={v}" for a, v, _ in parts),
            f"{attr}={hexed}{value[3:]},{rest}"]


def _everything(topo: Topology) -> list[object]:
    return [topo.organization, *topo.admin_groups, *topo.servers, *topo.storage_groups,
            *topo.stores, *topo.mtas, *topo.domain_controllers, *topo.agreements]


def test_lookup_by_dn_in_any_case_and_escaping(loaded: Loaded) -> None:
    topo = loaded.topology
    for obj in _everything(topo):
        for variant in _variants(obj.dn):  # type: ignore[attr-defined]
            assert topo.by_dn(variant) is obj, variant
    assert topo.by_dn("CN=Nobody,OU=Staff,DC=fabrikam,DC=com") is None
    assert topo.by_dn("not a DN ,,=") is None


def test_lookup_by_name(loaded: Loaded) -> None:
    topo = loaded.topology
    for s in of_class(loaded.file, "msExchExchangeServer"):
        name = s.first("cn") or ""
        for asked in (name, name.lower(), name.upper(), s.dn):
            found = topo.server(asked)
            assert isinstance(found, ExchangeServer) and dnu.key(found.dn) == s.key, asked
    for g in of_class(loaded.file, "msExchAdminGroup"):
        found_group = topo.admin_group((g.first("cn") or "").upper())
        assert isinstance(found_group, AdminGroup) and dnu.key(found_group.dn) == g.key
    for s in of_class(loaded.file, "msExchPrivateMDB"):
        assert [dnu.key(x.dn) for x in topo.stores_named((s.first("cn") or "").lower())] == [s.key]
    assert topo.server("NOSUCHSERVER") is None
    assert topo.admin_group("No Such Group") is None


def test_lookup_by_legacy_dn_ignores_case(loaded: Loaded) -> None:
    topo = loaded.topology
    with_value = [e for e in loaded.file
                  if e.first("legacyExchangeDN") and e.classes & {
                      "msexchorganizationcontainer", "msexchadmingroup", "msexchexchangeserver",
                      "msexchprivatemdb", "msexchpublicmdb", "mta"}]
    assert with_value
    for e in with_value:
        value = e.first("legacyExchangeDN") or ""
        for asked in (value, value.upper(), value.lower()):
            found = topo.by_legacy_dn(asked)
            assert found is not None and dnu.key(found.dn) == e.key, asked  # type: ignore[attr-defined]
    assert topo.by_legacy_dn("/o=Fabrikam/ou=Nowhere") is None


def test_server_of_and_mta_of(loaded: Loaded) -> None:
    topo = loaded.topology
    server_keys = {s.key for s in of_class(loaded.file, "msExchExchangeServer")}
    inside = [e for e in loaded.file if e.classes & {"msexchstoragegroup", "msexchprivatemdb",
                                                     "msexchpublicmdb", "mta"}]
    assert inside
    for e in inside:
        found = topo.server_of(e.dn.upper())
        assert found is not None and dnu.key(found.dn) == owning_server(e.dn, server_keys), e.dn
    for s in topo.servers:
        assert topo.server_of(s.dn) is s
        mta = topo.mta_of(s.dn.lower())
        assert isinstance(mta, Mta)
        assert dnu.key(mta.dn) == dnu.key("CN=Microsoft MTA," + s.dn)
    user = next(e for e in loaded.file if "user" in e.classes)
    assert topo.server_of(user.dn) is None
    assert topo.mta_of(user.dn) is None


def test_store_lookup_objects_are_stores(loaded: Loaded) -> None:
    for s in loaded.topology.stores:
        assert isinstance(loaded.topology.by_dn(s.dn), Store)


# --- serialNumber -> version ---------------------------------------------------------------

@pytest.mark.parametrize(("serial", "version", "product"), [
    ("Version 5.5 (Build 2653.23: Service Pack 4)", "5.5", "5.5"),
    ("Version 6.0 (Build 6249.4: Service Pack 3)", "2000", "2000"),
    ("Version 6.5 (Build 7638.2: Service Pack 2)", "2003", "2003"),
    ("Version 6.5 (Build 6944.4)", "2003", "2003"),
    ("version 6.5 (build 7638.2)", "2003", "2003"),
    ("Version 8.0 (Build 685.24)", "2007+", "2007"),
    ("Version 8.3 (Build 83.6)", "2007+", "2007"),
    ("Version 14.3 (Build 123.4)", "2007+", "2010"),
    ("Version 15.0 (Build 1497.2)", "2007+", "2013+"),
    ("Version 15.2 (Build 1118.7)", "2007+", "2013+"),
    ("Version 6.2 (Build 1)", "unknown", "unknown"),
    ("Version 4.0 (Build 837)", "unknown", "unknown"),
    ("Build 6.5", "unknown", "unknown"),
    ("garbage", "unknown", "unknown"),
    ("", "unknown", "unknown"),
    (None, "unknown", "unknown"),
])
def test_parse_version(serial: str | None, version: str, product: str) -> None:
    assert parse_version(serial) == (version, product)


# --- a handful of searches, whatever the size --------------------------------------------

class CountingDirectory(Directory):
    """Passes reads through to a directory and counts them (and the entries they return)."""

    def __init__(self, inner: Directory) -> None:
        self.inner = inner
        self.backend = inner.backend
        self.naming = inner.naming
        self.is_active_directory = inner.is_active_directory
        self.calls: list[str] = []
        self.entries = 0

    def _counted(self, entries: Iterator[Entry]) -> Iterator[Entry]:
        for e in entries:
            self.entries += 1
            yield e

    def search(self, base: str | None = None, filter: str = "(objectClass=*)",
               attributes: Sequence[str] = ("*",), scope: str = "subtree") -> Iterator[Entry]:
        self.calls.append(f"search {base} {filter}")
        return self._counted(self.inner.search(base, filter, attributes, scope))

    def read(self, dn: str, attributes: Sequence[str] = ("*",)) -> Entry | None:
        self.calls.append(f"read {dn}")
        return self.inner.read(dn, attributes)

    def read_many(self, dns: object, attributes: Sequence[str] = ("*",)) -> dict[str, Entry]:
        self.calls.append("read_many")
        return self.inner.read_many(dns, attributes)  # type: ignore[arg-type]


@pytest.fixture(params=["ldif", pytest.param("slapd", marks=pytest.mark.slapd)])
def lab_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _lab_directory(backend: str, mailboxes: int, tmp_path: Path,
                   request: pytest.FixtureRequest) -> Directory:
    from exdir import lab

    text = "".join(lab.generate(mailboxes=mailboxes, dcs=3, adc=True))
    path = tmp_path / f"lab{mailboxes}.ldif"
    path.write_text(text, encoding="utf-8")
    factory = request.getfixturevalue("slapd_factory") if backend == "slapd" else None
    return _open(backend, text, factory, path)


def test_read_with_a_handful_of_searches_whatever_the_mailbox_count(
        lab_backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    seen = []
    for mailboxes in (10, 1500):
        inner = _lab_directory(lab_backend, mailboxes, tmp_path, request)
        try:
            counting = CountingDirectory(inner)
            topo = read_topology(counting)
            users = sum(1 for _ in inner.search(inner.naming.domain, "(objectClass=user)",
                                                ("cn",)))
        finally:
            inner.close()
        assert users >= mailboxes  # the mailboxes are really there
        assert all(c.startswith("search") for c in counting.calls), counting.calls
        assert len(counting.calls) <= 3, counting.calls
        seen.append((len(counting.calls), counting.entries, len(topo.servers),
                     len(topo.domain_controllers), len(topo.agreements)))
        # the generated servers carry every version, 2007 included
        text = (tmp_path / f"lab{mailboxes}.ldif").read_text(encoding="utf-8")
        serials = re.findall(r"^serialNumber: (.*)$", text, re.MULTILINE)
        assert sorted(s.version for s in topo.servers) == sorted(map(expected_version, serials))
        assert {s.version for s in topo.servers} == {"5.5", "2000", "2003", "2007+"}
    assert seen[0] == seen[1]  # same searches, same entries read: mailboxes never scanned
    assert seen[0][3] == 3 and seen[0][4] >= 1


# --- an ldifde export of a read-only DC, and broken directories ---------------------------

RODC = """
dn: CN=Branch,CN=Sites,CN=Configuration,DC=fabrikam,DC=com
objectClass: top
objectClass: site
cn: Branch

dn: CN=Servers,CN=Branch,CN=Sites,CN=Configuration,DC=fabrikam,DC=com
objectClass: top
objectClass: serversContainer
cn: Servers

dn: CN=RODC1,CN=Servers,CN=Branch,CN=Sites,CN=Configuration,DC=fabrikam,DC=com
objectClass: top
objectClass: server
cn: RODC1

dn: CN=NTDS Settings,CN=RODC1,CN=Servers,CN=Branch,CN=Sites,CN=Configuration,DC=fabrikam,DC=com
objectClass: top
objectClass: applicationSettings
objectClass: nTDSDSA
objectClass: nTDSDSARO
cn: NTDS Settings
options: 0
"""


@pytest.mark.parametrize("backend", ["ldif", pytest.param("slapd", marks=pytest.mark.slapd)])
def test_read_only_dc_known_by_its_class(backend: str, tmp_path: Path,
                                         request: pytest.FixtureRequest) -> None:
    """msDS-isRODC is constructed, so an export names a read-only DC by class nTDSDSARO."""
    text = (SAMPLES / "fabrikam.ldif").read_text(encoding="utf-8").rstrip("\n") + "\n" + RODC
    path = tmp_path / "rodc.ldif"
    path.write_text(text, encoding="utf-8")
    factory = request.getfixturevalue("slapd_factory") if backend == "slapd" else None
    directory = _open(backend, text, factory, path)
    try:
        topo = read_topology(directory)
    finally:
        directory.close()
    assert {(d.name, d.site, d.read_only) for d in topo.domain_controllers} == {
        ("DC1", "Default-First-Site-Name", False), ("RODC1", "Branch", True)}


def test_no_organisation_is_an_input_error(tmp_path: Path) -> None:
    text = (SAMPLES / "fabrikam.ldif").read_text(encoding="utf-8")
    kept = [r for r in text.split("\n\n")
            if not re.search(r"^dn: (.*,)?CN=Fabrikam,CN=Microsoft Exchange,", r, re.MULTILINE)]
    path = tmp_path / "no-org.ldif"
    path.write_text("\n\n".join(kept), encoding="utf-8")
    with pytest.raises(InputError, match="no Exchange organisation"):
        read_topology(open_ldif(str(path), warn=lambda m: None))


def test_two_organisations_are_an_input_error(tmp_path: Path) -> None:
    text = (SAMPLES / "fabrikam.ldif").read_text(encoding="utf-8").rstrip("\n")
    text += ("\n\ndn: CN=Contoso,CN=Microsoft Exchange,CN=Services,CN=Configuration,"
             "DC=fabrikam,DC=com\nobjectClass: top\nobjectClass: container\n"
             "objectClass: msExchOrganizationContainer\ncn: Contoso\n"
             "legacyExchangeDN: /o=Contoso\n")
    path = tmp_path / "two-orgs.ldif"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InputError, match="more than one Exchange organisation"):
        read_topology(open_ldif(str(path), warn=lambda m: None))
