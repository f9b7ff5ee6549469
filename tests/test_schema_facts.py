"""exdir's Exchange schema is Exchange's: the facts of every class and attribute it defines.

tests/data/exchange_schema_facts.json holds, per name, what Exchange 2003's schema
extension says (attributeID/governsID, attributeSyntax, oMSyntax, isSingleValued,
linkID; subClassOf, objectClassCategory, the class's own possSuperiors and
mustContain), extracted once from OpenChange's Exchange 2003 schema provisioning
files.  Both exdir.schema's tables and the `schema export --format ad` records a
lab forest is extended with must agree with it, and every definition exdir has
must be in it (a new definition brings its facts along).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from exdir import schema

FACTS = json.loads((Path(__file__).parent / "data" / "exchange_schema_facts.json")
                   .read_text(encoding="utf-8"))
ATTRIBUTES: dict[str, dict[str, Any]] = FACTS["attributes"]
CLASSES: dict[str, dict[str, Any]] = FACTS["classes"]
SCHEMA_NC = "CN=Schema,CN=Configuration,DC=fabrikam,DC=com"
# in Active Directory's base schema: exdir defines it for ldap3 and slapd, never exports it
BASE_SCHEMA_CLASSES = {"msExchConfigurationContainer"}


def _exported() -> dict[str, dict[str, list[str]]]:
    """The attributeSchema/classSchema objects the AD export adds, by lDAPDisplayName,
    with the later modify records' additions (possSuperiors, mayContain…) merged in."""
    text = schema.ad_schema_ldif(SCHEMA_NC)
    out: dict[str, dict[str, list[str]]] = {}
    for block in text.split("\n\n"):
        values: dict[str, list[str]] = {}
        for line in block.splitlines():
            if line.startswith("#") or ":" not in line:
                continue
            key, _, value = line.partition(":")
            values.setdefault(key.lower(), []).append(value.lstrip(":").strip())
        name = values.get("ldapdisplayname", [""])[0]
        if name:
            out[name] = values
    return out


def _all_attribute_names() -> list[str]:
    return [d.name for d in (*schema.EXCHANGE_ATTRIBUTES,
                             *getattr(schema, "EXCHANGE_BACK_LINKS", ()))]


def _all_class_names() -> list[str]:
    aux = [entry[0] if isinstance(entry[0], str) else entry[0].name
           for entry in schema.AD_RECIPIENT_AUX]
    return [c.name for c in schema.EXCHANGE_CLASSES] + aux


def test_every_definition_has_its_facts() -> None:
    assert sorted(set(_all_attribute_names()) - set(ATTRIBUTES)) == []
    assert sorted(set(_all_class_names()) - set(CLASSES)) == []


def test_the_facts_cover_what_the_old_schema_missed() -> None:
    """The fixture itself: the numbers issue 12 names (a safeguard on the extraction)."""
    links = {n: ATTRIBUTES[n]["linkID"] for n in (
        "homeMDB", "homeMDBBL", "publicDelegates", "publicDelegatesBL", "altRecipient",
        "altRecipientBL", "msExchResponsibleMTAServer", "msExchResponsibleMTAServerBL",
        "msExchHomeSyncService", "msExchChildSyncAgreements")}
    assert links == {"homeMDB": 32, "homeMDBBL": 33, "publicDelegates": 14,
                     "publicDelegatesBL": 15, "altRecipient": 12, "altRecipientBL": 13,
                     "msExchResponsibleMTAServer": 1030, "msExchResponsibleMTAServerBL": 1031,
                     "msExchHomeSyncService": 146, "msExchChildSyncAgreements": 147}
    assert CLASSES["mTA"]["mustContain"] == ["cn", "mTALocalDesig", "transRetryMins",
                                            "transTimeoutMins"]
    assert CLASSES["msExchRecipientPolicy"]["subClassOf"] == "msExchGenericPolicy"


@pytest.mark.parametrize("name", sorted(ATTRIBUTES))
def test_attribute_table(name: str) -> None:
    want = ATTRIBUTES[name]
    d = schema.attribute(name)
    assert d is not None, f"exdir.schema does not define {name}"
    got = {"attributeID": d.oid,
           "attributeSyntax": getattr(d, "ad_attribute_syntax", None),
           "oMSyntax": getattr(d, "ad_om_syntax", None),
           "isSingleValued": d.single,
           "linkID": getattr(d, "link_id", None)}
    assert got == want


@pytest.mark.parametrize("name", sorted(CLASSES))
def test_class_table(name: str) -> None:
    want = CLASSES[name]
    finder = getattr(schema, "class_definition", None)
    assert finder is not None, "exdir.schema has no class_definition()"
    c = finder(name)
    assert c is not None, f"exdir.schema does not define {name}"
    got = {"governsID": c.oid, "subClassOf": c.sup, "objectClassCategory": c.category,
           "possSuperiors": sorted(c.superiors), "mustContain": sorted(c.must)}
    assert got == want


@pytest.mark.parametrize("name", sorted(ATTRIBUTES))
def test_exported_attribute(name: str) -> None:
    want = ATTRIBUTES[name]
    got = _exported().get(name)
    assert got is not None, f"the AD export does not add {name}"
    assert got["attributeid"] == [want["attributeID"]]
    assert got["attributesyntax"] == [want["attributeSyntax"]]
    assert got["omsyntax"] == [str(want["oMSyntax"])]
    assert got["issinglevalued"] == ["TRUE" if want["isSingleValued"] else "FALSE"]
    assert got.get("linkid") == ([str(want["linkID"])] if want["linkID"] is not None else None)
    if want["attributeSyntax"] == "2.5.5.1":
        assert got["omobjectclass"], name  # Object(DS-DN)


@pytest.mark.parametrize("name", sorted(set(CLASSES) - BASE_SCHEMA_CLASSES))
def test_exported_class(name: str) -> None:
    want = CLASSES[name]
    got = _exported().get(name)
    assert got is not None, f"the AD export does not add {name}"
    assert got["governsid"] == [want["governsID"]]
    assert got["subclassof"] == [want["subClassOf"]]
    assert got["objectclasscategory"] == [str(want["objectClassCategory"])]
    assert sorted(got.get("posssuperiors", [])) == want["possSuperiors"]
    assert sorted(got.get("mustcontain", [])) == want["mustContain"]


def test_base_schema_class_is_active_directorys() -> None:
    """msExchConfigurationContainer comes with AD itself: the export leaves it alone,
    and ldap3's copy of Microsoft's schema agrees with the facts."""
    assert "msExchConfigurationContainer" not in _exported()
    info = schema.ldap3_schema()[1].object_classes["msExchConfigurationContainer"]
    want = CLASSES["msExchConfigurationContainer"]
    assert (info.oid, info.superior[0]) == (want["governsID"], want["subClassOf"])


def test_classes_are_exported_after_what_they_name() -> None:
    """A class's superclass, possSuperiors and mustContain exist before it is added."""
    text = schema.ad_schema_ldif(SCHEMA_NC)
    order = [line.split(": ", 1)[1] for line in text.splitlines()
             if line.startswith("lDAPDisplayName: ")]
    position = {name: i for i, name in enumerate(order)}
    for name, facts in CLASSES.items():
        if name not in position:
            continue
        for needed in [facts["subClassOf"], *facts["possSuperiors"], *facts["mustContain"]]:
            if needed in position:
                assert position[needed] < position[name], (name, needed)
