"""Multi-valued RDNs (`CN=a+SN=b,OU=Staff,...`) are one RDN, never two levels.

RFC 4514 joins the AVAs of one RDN with '+'; exdir used to split on it as on ',',
so `CN=a+SN=b,OU=Staff,DC=fabrikam,DC=com` was loaded as `CN=a` under an implied
parent `SN=b,OU=Staff,...` and saved that way: another DN.  These tests hold every
layer to the one DN: parsing, keys, loading, saving, renaming, comparing.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from commands.main import main
from exdir import dn as dnu
from exdir.backends.memory import open_ldif

SAMPLE = Path(__file__).resolve().parent.parent / "samples" / "fabrikam.ldif"
STAFF = "OU=Staff,DC=fabrikam,DC=com"
MULTI = f"CN=a+SN=b,{STAFF}"


def test_split_keeps_a_multi_valued_rdn_as_one_part() -> None:
    parts = dnu.split(MULTI)
    assert len(parts) == 4 and dnu.depth(MULTI) == 4
    attr, value = parts[0]  # unpacks as its first AVA, like a single-valued RDN
    assert (attr, value) == ("CN", "a")
    assert dnu.rdn_avas(MULTI) == [("CN", "a"), ("SN", "b")]
    assert dnu.rdn(MULTI) == "CN=a+SN=b"
    assert dnu.rdn_value(MULTI) == "a"
    assert dnu.parent(MULTI) == STAFF
    assert dnu.normalize(f"CN = a + SN = b , {STAFF}") == MULTI
    assert dnu.key(MULTI) == MULTI.lower()
    assert dnu.build(parts) == MULTI
    assert dnu.ancestors(MULTI)[0] == STAFF


def test_values_with_plus_signs_stay_escaped() -> None:
    dn = f"CN=x\\+y+SN=b,{STAFF}"
    assert dnu.rdn_avas(dn) == [("CN", "x+y"), ("SN", "b")]
    assert dnu.normalize(dn) == dn
    assert dnu.normalize(f"CN=x\\+y,{STAFF}") == f"CN=x\\+y,{STAFF}"
    assert dnu.depth(f"CN=x\\+y,{STAFF}") == 4


def test_comparing_and_rebasing_see_every_ava() -> None:
    assert dnu.is_within(MULTI, STAFF)
    assert dnu.is_within(MULTI, MULTI)
    assert not dnu.is_within(MULTI, f"SN=b,{STAFF}")
    assert not dnu.is_within(f"CN=a,{STAFF}", MULTI)
    child = f"CN=child,{MULTI}"
    assert dnu.is_within(child, MULTI)
    assert not dnu.is_within(child, f"CN=a+SN=c,{STAFF}")
    assert not dnu.is_within(child, f"CN=a,{STAFF}")
    assert dnu.key(MULTI) != dnu.key(f"CN=a,{STAFF}")
    assert dnu.key(f"cn=A+sn=B,{STAFF.lower()}") == dnu.key(MULTI)
    assert dnu.rebase(child, MULTI, f"CN=c+SN=d,{STAFF}") == f"CN=child,CN=c+SN=d,{STAFF}"
    assert dnu.join("CN=c+SN=d", STAFF) == f"CN=c+SN=d,{STAFF}"


def test_single_valued_rdns_behave_as_before() -> None:
    dn = "CN=Kim Akers,OU=Staff,DC=fabrikam,DC=com"
    assert dnu.split(dn) == [("CN", "Kim Akers"), ("OU", "Staff"), ("DC", "fabrikam"),
                             ("DC", "com")]
    assert dnu.split(dn)[0] == ("CN", "Kim Akers")
    assert dnu.rdn_avas(dn) == [("CN", "Kim Akers")]
    assert dnu.build([("CN", "a,b"), ("DC", "x")]) == "CN=a\\,b,DC=x"


def _sample_with_multi(tmp_path: Path) -> Path:
    text = SAMPLE.read_text(encoding="utf-8")
    text += (f"\ndn: {MULTI}\nobjectClass: top\nobjectClass: person\n"
             "objectClass: organizationalPerson\nobjectClass: contact\ncn: a\nsn: b\n")
    path = tmp_path / "multi.ldif"
    path.write_text(text, encoding="utf-8")
    return path


def test_loaded_saved_and_reloaded_as_that_dn(tmp_path: Path) -> None:
    path = _sample_with_multi(tmp_path)
    notes: list[str] = []
    d = open_ldif(str(path), warn=notes.append)
    assert not [n for n in notes if "implied" in n], notes
    entry = d.read(MULTI)
    assert entry is not None and dnu.key(entry.dn) == dnu.key(MULTI)
    assert d.read(f"SN=b,{STAFF}") is None
    assert [e.dn for e in d.search(STAFF, "(sn=b)", ("cn",), scope="one")] == [MULTI]
    d.dirty = True
    d.save()
    text = path.read_text(encoding="utf-8")
    assert f"dn: {MULTI}\n" in text and f"dn: SN=b,{STAFF}" not in text
    again = open_ldif(str(path), warn=lambda m: None)
    assert again.read(MULTI) == entry


def test_renamed_as_one_rdn(tmp_path: Path) -> None:
    path = _sample_with_multi(tmp_path)
    d = open_ldif(str(path), warn=lambda m: None)
    new = d.rename(MULTI, "CN=c+SN=d")
    assert dnu.key(new) == dnu.key(f"CN=c+SN=d,{STAFF}")
    entry = d.read(new)
    assert entry is not None
    assert entry.texts("cn") == ["c"] and entry.texts("sn") == ["d"]
    assert d.read(MULTI) is None


def test_adding_under_a_multi_valued_rdn_needs_no_invented_parent(tmp_path: Path) -> None:
    path = _sample_with_multi(tmp_path)
    d = open_ldif(str(path), warn=lambda m: None)
    d.add(f"CN=child,{MULTI}", {"objectClass": ["top", "contact"], "cn": ["child"]})
    assert d.read(f"CN=child,{MULTI}") is not None
    d.add(f"CN=e+SN=f,{STAFF}", {"objectClass": ["top", "contact"]})
    entry = d.read(f"CN=e+SN=f,{STAFF}")
    assert entry is not None and entry.texts("cn") == ["e"] and entry.texts("sn") == ["f"]


def test_audit_of_an_export_with_a_multi_valued_rdn(capsys: pytest.CaptureFixture[str],
                                                    tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    path = _sample_with_multi(tmp_path)
    before = path.read_bytes()
    code = main(["--ldif", str(path), "legacydn", "audit"])
    err = capsys.readouterr().err
    assert code in (0, 1) and "implied" not in err and "Traceback" not in err
    assert path.read_bytes() == before
    code = main(["--ldif", str(path), "legacydn", "set", "jsmith",
                 "/o=Fabrikam/ou=Europe/cn=Recipients/cn=jsmith2", "--apply"])
    err = capsys.readouterr().err
    assert code == 0, err
    assert f"dn: {MULTI}\n" in path.read_text(encoding="utf-8")
