"""exdir.lab: generated organisations follow the same rules as the samples, at any size.

The rules are tests/test_samples.py's check_organisation (an independent reading of
docs/exchange.md over the parsed LDIF).
"""
from __future__ import annotations

import importlib.util
import io
import sys
import types
from collections import Counter
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable

import pytest

from exdir import lab, schema
from exdir.errors import InputError

_spec = importlib.util.spec_from_file_location(
    "exdir_sample_rules", Path(__file__).with_name("test_samples.py"))
assert _spec is not None and _spec.loader is not None
rules = sys.modules.setdefault(_spec.name, importlib.util.module_from_spec(_spec))
_spec.loader.exec_module(rules)

ALL_VERSIONS = {"5.5", "2000", "2003", "2007"}
CASES = [  # (mailboxes, admin_groups, dcs, adc, seed)
    (0, 1, 1, False, 0),
    (40, 1, 2, False, 3),
    (300, 2, 3, True, 0),
    (1500, 4, 5, True, 11),
    (100, 12, 7, True, 9),  # more groups than region names; four sites
]


@lru_cache(maxsize=None)
def generated(mailboxes: int, admin_groups: int = 2, dcs: int = 1, adc: bool = False,
              seed: int = 0, org: str = "Fabrikam", domain: str = "DC=fabrikam,DC=com") -> str:
    return "".join(lab.generate(mailboxes, org=org, admin_groups=admin_groups, dcs=dcs,
                                adc=adc, seed=seed, domain=domain))


@lru_cache(maxsize=None)
def check(text: str, *, adc: bool, org: str = "Fabrikam",
          domain: str = "DC=fabrikam,DC=com"):  # type: ignore[no-untyped-def]
    """check_organisation's report on a generated text (cached: the big cases are reused)."""
    return rules.check_organisation(parsed(text), org=org, domain=domain, mixed=adc)


@lru_cache(maxsize=None)
def parsed(text: str):  # type: ignore[no-untyped-def]
    return rules.parse(text)


@pytest.mark.parametrize(("mailboxes", "admin_groups", "dcs", "adc", "seed"), CASES)
def test_generated_organisation_follows_exchange_rules(
        mailboxes: int, admin_groups: int, dcs: int, adc: bool, seed: int) -> None:
    text = generated(mailboxes, admin_groups, dcs, adc, seed)
    assert text.startswith("version: 1\n")
    r = check(text, adc=adc)
    assert r.problems == []
    assert set(r.versions) == ALL_VERSIONS
    assert r.mailboxes == mailboxes
    assert len(r.admin_groups) == admin_groups + 1  # + Exchange Administrative Group
    assert r.domain_controllers == dcs
    assert r.read_only_dcs == dcs // 3
    assert r.mixed is adc
    assert r.agreements == (r.versions["5.5"] if adc else 0)


@pytest.mark.parametrize(("mailboxes", "admin_groups", "dcs", "adc", "seed"), CASES[1:])
def test_mailboxes_are_named_for_their_home_admin_group(
        mailboxes: int, admin_groups: int, dcs: int, adc: bool, seed: int) -> None:
    r = check(generated(mailboxes, admin_groups, dcs, adc, seed), adc=adc)
    assert len(r.home_groups) == mailboxes
    assert all(ou.lower() == home.lower() for ou, home in r.home_groups)


def test_mailboxes_spread_over_every_mailbox_store() -> None:
    entries = parsed(generated(1500, 4, 5, True, 11))
    stores = {e.key for e in entries if "msexchprivatemdb" in e.classes}
    used = Counter(rules.dnutil.key(str(e.one("homeMDB"))) for e in entries if e.get("homeMDB"))
    assert set(used) == stores
    assert min(used.values()) > 1500 / len(stores) / 3


def test_about_a_tenth_have_wireless_attributes() -> None:
    r = check(generated(1500, 4, 5, True, 11), adc=True)
    assert 0.05 * r.mailboxes <= r.wireless <= 0.15 * r.mailboxes


def test_comma_names_x500_history_and_delegates_occur() -> None:
    entries = parsed(generated(1500, 4, 5, True, 11))
    users = [e for e in entries if e.get("homeMDB")]
    assert any("\\," in e.dn for e in users)
    assert any(str(p).startswith("X500:") for e in users for p in e.get("proxyAddresses"))
    assert any(e.get("publicDelegates") for e in users)
    assert any("group" in e.classes for e in entries)
    assert any("contact" in e.classes for e in entries)


def test_exchange_2007_recipients_use_the_hex_form() -> None:
    entries = parsed(generated(300, 2, 3, True, 0))
    values = [e.text("legacyExchangeDN") for e in entries
              if "FYDIBOHF23SPDLT" in e.text("msExchHomeServerName")]
    assert values
    for v in values:
        tail = v.rsplit("/cn=", 1)[1]
        assert v.startswith("/o=Fabrikam/ou=Exchange Administrative Group (FYDIBOHF23SPDLT)"
                            "/cn=Recipients/cn=")
        assert len(tail.split("-", 1)[0]) == 32 and int(tail.split("-", 1)[0], 16) >= 0


def test_same_seed_same_text_other_seed_other_text() -> None:
    a = "".join(lab.generate(200, seed=5, adc=True))
    b = "".join(lab.generate(200, seed=5, adc=True))
    c = "".join(lab.generate(200, seed=6, adc=True))
    assert a == b
    assert a != c


def test_org_and_domain_are_parameters() -> None:
    text = generated(60, 2, 1, False, 0, org="Contoso, Ltd.", domain="DC=corp,DC=contoso,DC=local")
    r = check(text, adc=False, org="Contoso, Ltd.", domain="DC=corp,DC=contoso,DC=local")
    assert r.problems == []
    assert "dn: CN=Contoso\\, Ltd.,CN=Microsoft Exchange,CN=Services,CN=Configuration," \
           "DC=corp,DC=contoso,DC=local\n" in text
    assert "legacyExchangeDN: /o=Contoso, Ltd./ou=First Administrative Group\n" in text
    assert "@corp.contoso.local" in text
    assert "fabrikam" not in text.lower()


def test_streams_many_small_chunks() -> None:
    chunks = lab.generate(100_000)
    assert isinstance(chunks, types.GeneratorType)
    count = 0
    largest = 0
    users = 0
    for chunk in chunks:
        count += 1
        largest = max(largest, len(chunk))
        users += chunk.count("\nmsExchMailboxGuid:: ")
    assert users == 100_000
    assert count >= 100
    assert largest < 2_000_000  # about 1000 mailboxes per chunk, never the whole directory


def test_nothing_is_built_before_the_first_chunk_is_asked_for() -> None:
    chunks = lab.generate(1_000_000)
    first = next(chunks)
    assert "msExchMailboxGuid" not in first  # configuration only
    assert "version: 1" in first
    chunks.close()


def test_plan_scales_servers_with_mailboxes() -> None:
    layout = lab.Layout("DC=fabrikam,DC=com", "Fabrikam")
    ags = lab.admin_group_names(3)
    small = lab.plan_servers(layout, 10, ags)
    large = lab.plan_servers(layout, 100_000, ags)
    assert {s.version for s in small} == ALL_VERSIONS
    assert len(large) >= 100_000 / lab.MAILBOXES_PER_SERVER
    assert len({s.name for s in large}) == len(large)
    assert {s.admin_group for s in large} == {*ags, lab.E2007_ADMIN_GROUP}
    assert all(s.admin_group == lab.E2007_ADMIN_GROUP for s in large if s.version == "2007")


def test_write_to_a_path_and_to_a_file(tmp_path: Path) -> None:
    expected = "".join(lab.generate(30, adc=True, seed=2))
    path = tmp_path / "lab.ldif"
    assert lab.write(path, 30, adc=True, seed=2) == len(expected)
    assert path.read_text(encoding="utf-8") == expected
    buffer = io.StringIO()
    lab.write(buffer, 30, adc=True, seed=2)
    assert buffer.getvalue() == expected


@pytest.mark.parametrize("kwargs", [
    {"mailboxes": -1},
    {"mailboxes": 1, "admin_groups": 0},
    {"mailboxes": 1, "dcs": 0},
    {"mailboxes": 1, "org": "Fab/rikam"},
    {"mailboxes": 1, "org": ""},
    {"mailboxes": 1, "domain": "OU=x,DC=fabrikam,DC=com"},
    {"mailboxes": 1, "domain": "not a dn"},
])
def test_bad_arguments_are_input_errors(kwargs: dict[str, object]) -> None:
    with pytest.raises(InputError):
        next(lab.generate(**kwargs))  # type: ignore[arg-type]


def test_object_classes_are_whole_chains_from_the_schema() -> None:
    assert schema.class_chain("user") == ("top", "person", "organizationalPerson", "user")
    assert schema.class_chain("msExchPrivateMDB") == ("top", "msExchMDB", "msExchPrivateMDB")
    with pytest.raises(KeyError):
        schema.class_chain("noSuchClass")


def test_unsafe_values_are_base64() -> None:
    assert lab.ldif_line("cn", "Smith, John") == "cn: Smith, John"
    assert lab.ldif_line("cn", " lead") == "cn:: IGxlYWQ="
    assert lab.ldif_line("cn", ":x") == "cn:: Ong="
    assert lab.ldif_line("cn", "Müller").startswith("cn:: ")
    assert lab.ldif_line("g", b"\x00\x01") == "g:: AAE="


def test_generated_directory_loads_into_slapd(slapd_factory: Callable[..., Any]) -> None:
    text = generated(300, 2, 3, True, 0)
    server = slapd_factory(rules.slapadd_text(text))
    stored = server.entries()
    assert len(stored) == len(parsed(text))


# --- one rule for names, one list of versions (issue, item 8) --------------------------------

@pytest.mark.parametrize("org", ["Fab=rikam", "Fab\\rikam", "Fab/rikam"])
def test_lab_generate_refuses_the_names_a_rename_refuses(org: str,
                                                        capsys: pytest.CaptureFixture[str]
                                                        ) -> None:
    """The generator and `rename org` use legacydn.check_name: a lab organisation exdir
    would refuse to rename to is not generated either (exit 2, nothing on stdout)."""
    from exdir.legacydn import InvalidLegacyDN, check_name
    from tests.labs import cli

    with pytest.raises(InvalidLegacyDN):
        check_name(org, "organisation")
    with pytest.raises(InvalidLegacyDN):
        next(lab.generate(mailboxes=1, org=org))
    code, out, err = cli(capsys, "lab", "generate", "--mailboxes", "1", "--org", org)
    assert code == 2, err
    assert out == "" and "organisation name" in err


def test_lab_releases_are_the_products_topology_reads() -> None:
    """Each serialNumber the generator stamps parses (exdir.topology.parse_version) to
    the release it is filed under, in one of topology's version classes, and the
    wireless rule of the generator is topology's."""
    from exdir.topology import DOWNLEVEL, VERSIONS, parse_version

    for release, serial in lab.SERIAL_NUMBERS.items():
        version, product = parse_version(serial)
        assert product == release and version in VERSIONS[:-1]
        server = lab.Server("S", "AG", release, "CN=S", "/o=O/ou=AG/cn=Configuration/cn=Servers/cn=S")
        assert server.supports_wireless is (version not in DOWNLEVEL)
    assert not hasattr(lab, "VERSIONS")
