"""The safety gates on the indexed store (issue 13): there they look up the holders of
the values a plan gives, and the values under a renamed prefix, in the store's own
index of values (Directory.indexed_values) instead of reading every recipient again;
they must refuse exactly what they refuse on the in-memory store, in the same words
and order.

The export is the fabrikam sample with what an index's keys do not show: values held in
another case than the plan gives them, a holder whose X500 proxies are not in key
order, a value under the prefix that is not ASCII, a value that only begins with the
prefix's text (/o=FabrikamX), and values in the configuration partition.
"""
from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exdir import operations
from exdir.backends import index as index_mod
from exdir.backends.index import open_indexed
from exdir.backends.memory import open_ldif
from exdir.gates import Safety, evaluate
from exdir.legacydn import has_prefix
from exdir.ledger import PlanLedger
from exdir.plan import Change, Mod, Modify, Plan, Rename
from tests.labs import SAMPLES

ORG = "CN=Fabrikam,CN=Microsoft Exchange,CN=Services,CN=Configuration,DC=fabrikam,DC=com"
JSMITH = "CN=Smith\\, John,OU=Staff,DC=fabrikam,DC=com"
KAKERS = "CN=Kim Akers,OU=Staff,DC=fabrikam,DC=com"
RECIPIENTS = "/o=Fabrikam/ou=First Administrative Group/cn=Recipients"
EX1 = "/o=Fabrikam/ou=First Administrative Group/cn=Configuration/cn=Servers/cn=EX1"

EXTRA = f"""
dn: CN=Jürgen Müller,OU=Staff,DC=fabrikam,DC=com
objectClass: top
objectClass: person
objectClass: organizationalPerson
objectClass: user
cn: Jürgen Müller
mailNickname: jmueller
legacyExchangeDN: {RECIPIENTS}/cn=Jürgen Müller
msExchHomeServerName: {EX1.upper()}
proxyAddresses: SMTP:jmueller@fabrikam.com
proxyAddresses: X500:/o=Old/cn=Zeta
proxyAddresses: x500:/O=OLD/CN=Alpha
proxyAddresses: X500:/o=Old/cn=Mid

dn: CN=Not Under,OU=Staff,DC=fabrikam,DC=com
objectClass: top
objectClass: person
objectClass: organizationalPerson
objectClass: user
cn: Not Under
mailNickname: notunder
legacyExchangeDN: /o=FabrikamX/cn=Recipients/cn=notunder
proxyAddresses: SMTP:notunder@fabrikam.com
"""


@pytest.fixture()
def stores(tmp_path: Path):  # type: ignore[no-untyped-def]
    path = tmp_path / "f.ldif"
    path.write_text((SAMPLES / "fabrikam.ldif").read_text(encoding="utf-8") + EXTRA,
                    encoding="utf-8")
    memory = open_ldif(str(path), warn=lambda m: None)
    indexed = open_indexed(str(path), warn=lambda m: None, index_dir=str(tmp_path / "idx"))
    try:
        yield memory, indexed
    finally:
        memory.close()
        indexed.close()


def _modify(dn: str, *mods: tuple[str, str, tuple[str, ...]]) -> Modify:
    return Modify(dn, tuple(Mod(op, a, v) for op, a, v in mods), "x")  # type: ignore[arg-type]


def _plans(memory) -> dict[str, tuple[Change, ...]]:  # type: ignore[no-untyped-def]
    rename = operations.rename_org(memory, "Contoso").plan.changes
    return {
        "fresh rename": rename,
        "only the organisation renamed": rename[:1],
        "a rename that writes the old prefix back": (*rename, _modify(
            KAKERS, ("add", "msExchHomeServerName", ("/O=FABRIKAM/ou=x/cn=yyy",)))),
        "a rename that writes what only begins like the prefix": (*rename, _modify(
            KAKERS, ("add", "description", ("/o=Fabrikam",)),
            ("add", "msExchHomeServerName", ("/o=FabrikamX/cn=y",)))),
        "values held in another case and order": (_modify(
            JSMITH, ("add", "proxyAddresses", ("X500:/o=old/cn=ALPHA", "X500:/o=Old/cn=zeta",
                                               "X500:/o=old/cn=mid"))),),
        "a legacyExchangeDN held, not ASCII": (_modify(
            KAKERS, ("add", "proxyAddresses", (f"X500:{RECIPIENTS.upper()}/CN=JÜRGEN MÜLLER",))),),
        "the organisation relabelled": (_modify(
            ORG, ("delete", "legacyExchangeDN", ("/o=Fabrikam",)),
            ("add", "legacyExchangeDN", ("/o=Other",))),),
        "an administrative group renamed alone": (Rename(
            "CN=First Administrative Group,CN=Administrative Groups," + ORG, "CN=EMEA"),),
    }


def test_the_gates_refuse_alike_on_both_stores(stores) -> None:  # type: ignore[no-untyped-def]
    memory, indexed = stores
    seen: set[str] = set()
    for name, changes in _plans(memory).items():
        for safety in (Safety(), Safety(lab=True)):
            plan = Plan(changes)
            on_memory = evaluate(memory, plan, safety)
            assert evaluate(indexed, plan, safety) == on_memory, name
            seen |= {g.code for g in on_memory}
            if name == "values held in another case and order":
                # as the holder spells them, in the order it holds them
                assert [g.message.split("'")[1] for g in on_memory] == [
                    "/o=Old/cn=Zeta", "/O=OLD/CN=Alpha", "/o=Old/cn=Mid"]
            if name == "only the organisation renamed" and safety.lab:
                (stale,) = [g for g in on_memory if g.code == "stale"]
                assert f"stale: {_under_in_file(memory.path)} value(s)" in stale.message
            if name == "a rename that writes what only begins like the prefix":
                assert not [g for g in on_memory if g.code == "stale"], on_memory
    assert {"rename", "stale", "unique"} <= seen


def test_the_index_answers_the_gates_without_reading_the_recipients(
        stores, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    memory, indexed = stores
    plan = Plan(_plans(memory)["only the organisation renamed"])
    filters: list[str] = []
    real = index_mod.IndexedDirectory.search_partitions

    def recording(self, filter, *args, **kwargs):  # type: ignore[no-untyped-def]
        filters.append(filter)
        return real(self, filter, *args, **kwargs)

    monkeypatch.setattr(index_mod.IndexedDirectory, "search_partitions", recording)
    gates = evaluate(indexed, plan, Safety(lab=True))
    assert [g.code for g in gates] == ["stale"]
    assert not [f for f in filters if "legacyExchangeDN=" in f or "X500" in f], filters


def _under_in_file(path: str, prefix: str = "/o=Fabrikam") -> int:
    return sum(1 for line in Path(path).read_text(encoding="utf-8").splitlines()
               for attribute in ("legacyExchangeDN: ", "msExchHomeServerName: ")
               if line.startswith(attribute) and has_prefix(line[len(attribute):], prefix))


def test_a_prefix_that_is_not_ascii_is_read_from_the_entries(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Case folding may change a text's length outside ASCII, so a range of lower-cased
    keys is no test of has_prefix there: such a prefix is read as before."""
    path = tmp_path / "f.ldif"
    path.write_text(((SAMPLES / "fabrikam.ldif").read_text(encoding="utf-8") + EXTRA)
                    .replace("/o=Fabrikam", "/o=Fäbrikam"), encoding="utf-8")
    calls: list[str] = []
    real = index_mod.IndexedDirectory.indexed_values

    def recording(self, attribute, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(attribute)
        return real(self, attribute, **kwargs)

    monkeypatch.setattr(index_mod.IndexedDirectory, "indexed_values", recording)
    with open_ldif(str(path), warn=lambda m: None) as memory, open_indexed(
            str(path), warn=lambda m: None, index_dir=str(tmp_path / "idx")) as indexed:
        plan = Plan(operations.rename_org(memory, "Contoso").plan.changes[:1])
        gates = evaluate(memory, plan, Safety(lab=True))
        assert evaluate(indexed, plan, Safety(lab=True)) == gates
    assert f"stale: {_under_in_file(str(path), '/o=Fäbrikam')} value(s)" in gates[0].message
    assert calls == []


_PREFIXES = ["/o=Fabrikam", "/O=fabrikam/OU=Europe", "/o=Fäbrikam", "/o=Σ", "/o=İx"]
_PIECES = ["/o=Fabrikam", "/O=FABRIKAM", "/o=FabrikamX", "/ou=Europe", "/OU=europe",
           "/cn=x", "/o=fäbrikam", "/o=FÄBRIKAM", "/o=σ", "/o=Σ", "/o=İx", "/o=i̇x", "x", ""]


@settings(max_examples=150, deadline=None)
@given(st.lists(st.lists(st.sampled_from(_PIECES), min_size=1, max_size=4).map("".join),
                min_size=1, max_size=12), st.sampled_from(_PREFIXES))
def test_written_under_is_has_prefix_over_every_value(values: list[str], prefix: str
                                                      ) -> None:
    """The ledger finds the values a plan writes under a prefix by a range of their
    lower-cased text first: the same values as has_prefix over every one."""
    with PlanLedger() as ledger:
        for i, value in enumerate(values):
            ledger.add(Modify(f"CN=u{i},DC=x", (Mod("add", "msExchHomeServerName", (value,)),)))
        ledger.finish()
        found = ledger.written_under(prefix)
    expected = [f"CN=u{i},DC=x (msexchhomeservername, written by the plan)"
                for i, v in enumerate(values) if has_prefix(v, prefix)]
    assert found == expected


@pytest.mark.parametrize("value", ["/o=Org/cn=a\x00b", "/o=Org/cn=é\x00", "/o=Org/cn=\U0001f600"])
def test_a_holder_whose_value_holds_a_nul_is_found_on_both_stores(tmp_path: Path, value: str
                                                                  ) -> None:
    """The uniqueness gate finds an X500 holder of the value given even where the value
    holds a NUL (SQLite's text functions stop at one: the index's rows are cut as
    bytes) or characters outside the BMP."""
    import base64

    proxy = base64.b64encode(("X500:" + value).encode("utf-8")).decode()
    path = tmp_path / "n.ldif"
    path.write_text("version: 1\n\ndn: DC=lab,DC=local\nobjectClass: top\ndc: lab\n\n"
                    "dn: CN=A,DC=lab,DC=local\nobjectClass: contact\ncn: A\n\n"
                    f"dn: CN=B,DC=lab,DC=local\nobjectClass: contact\ncn: B\n"
                    f"proxyAddresses:: {proxy}\n", encoding="utf-8")
    plan = Plan((Modify("CN=A,DC=lab,DC=local", (Mod("add", "legacyExchangeDN", (value,)),),
                        ""),))
    found = {}
    for store in ("memory", "index"):
        directory = (open_ldif(str(path), warn=lambda m: None) if store == "memory"
                     else open_indexed(str(path), warn=lambda m: None,
                                       index_dir=str(tmp_path / "i")))
        try:
            found[store] = [(g.code, g.message) for g in evaluate(directory, plan)]
        finally:
            directory.close()
    assert found["memory"] == found["index"]
    assert [code for code, _ in found["index"]] == ["unique"], found
    assert "CN=B,DC=lab,DC=local" in found["index"][0][1]
