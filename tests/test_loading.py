"""Loading what real exports look like into the in-memory directory."""
from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest

from exdir import dn as dnu
from exdir.backends.base import SimpleMod as _Mod
from exdir.backends.memory import open_ldif
from exdir.errors import FileWriteError, InputError

GUID = bytes(range(16))

EXPORT = f"""version: 1

# ldifde writes changetype lines, folds long lines and lists children first
dn: CN=NTDS Settings,CN=DC2,CN=Servers,CN=Branch,CN=Sites,CN=Configuration,DC=lab,DC=lo
 cal
changetype: add
objectClass: top
objectClass: applicationSettings
objectClass: nTDSDSA
msDS-isRODC: TRUE
options: 37
objectGUID:: {base64.b64encode(GUID).decode()}

dn: <GUID=0c5b4c4a-8a94-4b4a-9d27-4ab86b7e7c1f>;<SID=S-1-5-21-1>;CN=DC2,CN=Servers,CN=Branch,CN=Sites,CN=Configuration,DC=lab,DC=local
changetype: add
objectClass: top
objectClass: server
cn: DC2
dNSHostName: dc2.lab.local
vendorExtensionAttr: opaque value
otherVendorAttr:: /wD+AQ==

dn: DC=lab,DC=local
changetype: add
objectClass: top
objectClass: domain
objectClass: domainDNS
dc: lab
description:: IGxlYWRpbmcgYW5kIHRyYWlsaW5nIA==
"""


@pytest.fixture
def export(tmp_path: Path) -> Path:
    path = tmp_path / "export.ldif"
    path.write_text(EXPORT, encoding="utf-8")
    return path


def test_export_loads_with_implied_parents_and_opaque_attributes(export: Path) -> None:
    notes: list[str] = []
    d = open_ldif(str(export), warn=notes.append)
    assert d.naming.domain == "DC=lab,DC=local"
    assert dnu.key(d.naming.configuration) == dnu.key("CN=Configuration,DC=lab,DC=local")
    dsa = d.read("CN=NTDS Settings,CN=DC2,CN=Servers,CN=Branch,CN=Sites,CN=Configuration,"
                 "DC=lab,DC=local")
    assert dsa is not None and dsa.first("objectGUID") == GUID
    server = d.read("CN=DC2,CN=Servers,CN=Branch,CN=Sites,CN=Configuration,DC=lab,DC=local")
    assert server is not None
    assert server.text("vendorExtensionAttr") == "opaque value"
    assert server.first("otherVendorAttr") == b"\xff\x00\xfe\x01"
    assert not server.has("changetype")
    domain = d.read("DC=lab,DC=local")
    assert domain is not None and domain.text("description") == " leading and trailing "
    notes = [n.split(": ", 1)[1] for n in notes]  # drop the file name
    opaque = [n for n in notes if "opaque" in n]
    assert len(opaque) == 1 and "otherVendorAttr" in opaque[0] and "vendorExtensionAttr" in opaque[0]
    implied = [n for n in notes if "implied" in n]
    assert len(implied) == 1 and "4 parent entries" in implied[0]
    # implied parents exist for searches below them, but are not entries of the file
    assert d.read("CN=Sites,CN=Configuration,DC=lab,DC=local") is None
    found = list(d.search("CN=Sites,CN=Configuration,DC=lab,DC=local", "(objectClass=nTDSDSA)",
                          ("msDS-isRODC",)))
    assert [e.text("msDS-isRODC") for e in found] == ["TRUE"]
    assert len(d) == 3


def test_export_saves_without_implied_parents(export: Path) -> None:
    d = open_ldif(str(export), warn=lambda m: None)
    d.save()
    again = open_ldif(str(export), warn=lambda m: None)
    assert len(again) == 3
    server = again.read("CN=DC2,CN=Servers,CN=Branch,CN=Sites,CN=Configuration,DC=lab,DC=local")
    assert server is not None and server.first("otherVendorAttr") == b"\xff\x00\xfe\x01"
    domain = again.read("DC=lab,DC=local")
    assert domain is not None and domain.text("description") == " leading and trailing "


def test_writes_under_implied_parents_work(export: Path) -> None:
    d = open_ldif(str(export), warn=lambda m: None)
    d.add("CN=DC3,CN=Servers,CN=Branch,CN=Sites,CN=Configuration,DC=lab,DC=local",
          {"objectClass": ["top", "server"], "cn": ["DC3"]})
    assert d.read("CN=DC3,CN=Servers,CN=Branch,CN=Sites,CN=Configuration,DC=lab,DC=local")


@pytest.mark.parametrize("text, line", [
    ("version: 1\n\ndn: CN=a,DC=x\nobjectClass top\n", 4),
    ("version: 1\n\ndn: CN=a,DC=x\ncn:: %%%notbase64\n", 4),
    ("version: 1\n\ndn: CN=a,,DC=x\ncn: a\n", 3),
    ("version: 1\n\ncn: a\nobjectClass: top\n", 3),  # the line itself, not the next
    ("dn: CN=a,DC=x\nchangetype: modify\nreplace: cn\ncn: b\n-\n", 2),
])
def test_malformed_ldif_names_a_line(tmp_path: Path, text: str, line: int) -> None:
    path = tmp_path / "bad.ldif"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InputError) as info:
        open_ldif(str(path), warn=lambda m: None)
    assert info.value.line is not None
    assert info.value.line == line, (info.value.message, info.value.line)
    assert str(path) in str(info.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError) as info:
        open_ldif(str(tmp_path / "nope.ldif"))
    assert "cannot read" in str(info.value)


def test_duplicate_dn_refused(tmp_path: Path) -> None:
    path = tmp_path / "dup.ldif"
    path.write_text("dn: DC=x\ndc: x\nobjectClass: top\n\ndn: dc=X\ndc: x\nobjectClass: top\n")
    with pytest.raises(InputError, match="twice"):
        open_ldif(str(path), warn=lambda m: None)


def test_save_is_atomic_when_the_write_fails(export: Path, monkeypatch: pytest.MonkeyPatch
                                             ) -> None:
    original = export.read_bytes()
    d = open_ldif(str(export), warn=lambda m: None)
    d.modify("DC=lab,DC=local", [_Mod("add", "description", ("second",))])

    def broken(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", broken)
    with pytest.raises(FileWriteError, match="no space left on device; the file is unchanged"):
        d.save()
    assert export.read_bytes() == original
    assert not [p for p in export.parent.iterdir() if ".exdir-" in p.name]
