"""Reading apart from planning: no planner module imports a backend, and each planner
module's rules run on model objects alone (hand-built entries and topologies, no
Directory), so data flows one way — read (exdir.readers), plan, apply.
"""
from __future__ import annotations

import ast
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import pytest

from exdir import checks, health, legacydn, move, rename, topology, x500
from exdir.findings import Operation
from exdir.plan import Mod, Modify, Rename
from exdir.topology import (AdminGroup, ConnectionAgreement, DomainController, ExchangeServer, Mta,
                            Organization, StorageGroup, Store, Topology)
from tests.labs import process_env

ROOT = Path(__file__).resolve().parents[1]
PLANNERS = ("rename", "move", "health", "checks", "x500", "legacydn", "topology")
# the modules that talk to a directory: the backends, the readers, and what calls them
BACKEND_MODULES = ("directory", "backends", "readers", "operations", "gates", "apply")


def _imported(module: str) -> set[str]:
    """Every exdir module the source of exdir/<module>.py imports, at any depth of the
    file (TYPE_CHECKING blocks and function bodies included)."""
    tree = ast.parse((ROOT / "exdir" / f"{module}.py").read_text(encoding="utf-8"))
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            name = node.module or ""
            if node.level == 1 or name.startswith("exdir"):
                base = name.removeprefix("exdir.").removeprefix("exdir")
                if base:
                    out.add(base.split(".")[0])
                else:  # from . import dn
                    out.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.Import):
            out.update(a.name.split(".")[1] for a in node.names if a.name.startswith("exdir."))
    return out


@pytest.mark.parametrize("module", PLANNERS)
def test_a_planner_module_imports_no_backend(module: str) -> None:
    found = _imported(module) & set(BACKEND_MODULES)
    assert not found, f"exdir/{module}.py imports {sorted(found)}"
    # nor ldap3 itself: filters and connections are the readers' business
    assert "ldap3" not in (ROOT / "exdir" / f"{module}.py").read_text(encoding="utf-8")


def test_importing_every_planner_loads_no_backend() -> None:
    """Transitively too: importing the planners does not load exdir.directory (nor a
    backends package, nor the readers)."""
    code = ("import sys\n"
            + "".join(f"import exdir.{m}\n" for m in PLANNERS)
            + "loaded = sorted(m for m in sys.modules if m.split('.')[1:2] and "
              f"m.split('.')[0] == 'exdir' and m.split('.')[1] in {BACKEND_MODULES!r})\n"
              "print(','.join(loaded))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=process_env(), cwd=ROOT, check=True).stdout.strip()
    assert out == ""


# --- model objects: what the readers would have returned --------------------------------

@dataclass
class Record:
    """An entry as a reader returns it, built by hand (exdir.entries.EntryLike)."""

    dn: str
    values: Mapping[str, Sequence[str]]

    def get(self, name: str) -> list[str | bytes]:
        return list(self.texts(name))

    def texts(self, name: str) -> list[str]:
        return next((list(v) for k, v in self.values.items() if k.lower() == name.lower()), [])

    def text(self, name: str) -> str | None:
        found = self.texts(name)
        return found[0] if found else None

    def has(self, name: str) -> bool:
        return bool(self.texts(name))

    @property
    def object_classes(self) -> frozenset[str]:
        return frozenset(c.lower() for c in self.texts("objectClass"))


@dataclass(frozen=True)
class Naming:
    domain: str = "DC=fabrikam,DC=com"
    configuration: str = "CN=Configuration,DC=fabrikam,DC=com"


@dataclass(frozen=True)
class Facts:
    backend: str = "ldap"
    is_active_directory: bool = True

    def describe(self) -> str:
        return "ldap://dc1.fabrikam.com (Active Directory)"


CONFIG = Naming().configuration
ORG_DN = f"CN=Fabrikam,CN=Microsoft Exchange,CN=Services,{CONFIG}"
AG_DN = f"CN=First Administrative Group,CN=Administrative Groups,{ORG_DN}"
AG2_DN = f"CN=Europe,CN=Administrative Groups,{ORG_DN}"
RENAMEABLE = 0x60000000


def _server(ag_dn: str, ag: str, name: str, serial: str, version: str) -> ExchangeServer:
    return ExchangeServer(f"CN={name},CN=Servers,{ag_dn}", name,
                          f"/o=Fabrikam/ou={ag}/cn=Configuration/cn=Servers/cn={name}", serial,
                          version, version, ag_dn, RENAMEABLE)


EX1 = _server(AG_DN, "First Administrative Group", "EX1", "Version 6.5 (Build 7638.2)", "2003")
EX2 = _server(AG_DN, "First Administrative Group", "EX2", "Version 6.0 (Build 6249.4)", "2000")
EX3 = _server(AG2_DN, "Europe", "EX3", "Version 6.5 (Build 7638.2)", "2003")


def _store(server: ExchangeServer) -> Store:
    sg = f"CN=First Storage Group,CN=InformationStore,{server.dn}"
    return Store(f"CN=Mailbox Store ({server.name}),{sg}", f"Mailbox Store ({server.name})",
                 False, server.dn, sg, f"{server.legacy_dn}/cn=Microsoft Private MDB")


def model(*, dcs: int = 1, mixed: bool = False, agreements: int = 0) -> Topology:
    servers = [EX1, EX2, EX3]
    return Topology(
        Organization(ORG_DN, "Fabrikam", "/o=Fabrikam", mixed, RENAMEABLE),
        [AdminGroup(AG2_DN, "Europe", "/o=Fabrikam/ou=Europe", RENAMEABLE),
         AdminGroup(AG_DN, "First Administrative Group", "/o=Fabrikam/ou=First Administrative Group",
                    RENAMEABLE)],
        servers,
        [StorageGroup(_store(s).storage_group or "", "First Storage Group", s.dn) for s in servers],
        [_store(s) for s in servers],
        [Mta(f"CN=Microsoft MTA,{s.dn}", s.dn, f"{s.legacy_dn}/cn=Microsoft MTA") for s in servers],
        [DomainController(f"CN=NTDS Settings,CN=DC{i},CN=Servers,CN=Default-First-Site-Name,"
                          f"CN=Sites,{CONFIG}", f"DC{i}", "Default-First-Site-Name", False)
         for i in range(1, dcs + 1)],
        [ConnectionAgreement(f"CN=CA{i},CN=Active Directory Connections,{ORG_DN}", f"CA{i}",
                             "two-way", 2, None, None) for i in range(agreements)])


def mailbox(nick: str, server: ExchangeServer, **extra: Sequence[str]) -> Record:
    values: dict[str, Sequence[str]] = {
        "objectClass": ["top", "person", "organizationalPerson", "user"],
        "mailNickname": [nick],
        "legacyExchangeDN": [f"/o=Fabrikam/ou={server.legacy_dn.split('/ou=')[1].split('/')[0]}"
                             f"/cn=Recipients/cn={nick}"],
        "proxyAddresses": [f"SMTP:{nick}@fabrikam.com"],
        "homeMDB": [_store(server).dn], "homeMTA": [f"CN=Microsoft MTA,{server.dn}"],
        "msExchHomeServerName": [server.legacy_dn]}
    values.update(extra)
    return Record(f"CN={nick},OU=Staff,DC=fabrikam,DC=com", values)


# --- one planner test per planner module, model objects only -------------------------------

def test_topology_model_answers_lookups_without_a_directory() -> None:
    topo = model()
    assert topo.server_of(_store(EX3).dn) == EX3
    assert topo.store_label(_store(EX1)) == "EX1/First Storage Group/Mailbox Store (EX1)"
    assert topo.admin_group("europe") is not None and topo.by_legacy_dn(EX2.legacy_dn.upper()) == EX2
    assert topology.renameable(RENAMEABLE) and not topology.renameable(None)
    assert not topology.renameable(0x20000000)  # allow-move alone is not allow-rename


def test_rename_plans_from_entries_alone() -> None:
    box = mailbox("jsmith", EX1)
    scope = rename.org_scope(model(), "Contoso")
    plan = rename.plan_rename(scope, [box], Naming())
    assert isinstance(plan.changes[0], Rename) and plan.changes[0].dn == ORG_DN
    (step,) = plan.changes[1:]
    assert isinstance(step, Modify) and step.dn == box.dn
    assert Mod("add", "proxyAddresses",
               ("X500:/o=Fabrikam/ou=First Administrative Group/cn=Recipients/cn=jsmith",)
               ) in step.mods
    assert Mod("add", "msExchHomeServerName", (EX1.legacy_dn.replace("Fabrikam", "Contoso"),)
               ) in step.mods


def test_move_plans_from_entries_alone() -> None:
    topo = model()
    target = move.resolve_store(topo, "EX2")
    box = mailbox("jsmith", EX1, msExchOmaAdminWirelessEnable=["0"])
    resolved, warnings = move.resolve_mailboxes(["jsmith"], [box])
    moved = move.plan_move(topo, resolved, target, Naming())
    (step,) = moved.plan.changes
    assert isinstance(step, Modify) and warnings == []
    assert Mod("add", "homeMDB", (_store(EX2).dn,)) in step.mods
    # EX2 runs Exchange 2000: the wireless attributes go (topology.DOWNLEVEL, one rule)
    assert Mod("delete", "msExchOmaAdminWirelessEnable", ("0",)) in step.mods


def test_health_finds_a_split_mailbox_from_entries_alone() -> None:
    split = mailbox("jsmith", EX1, msExchHomeServerName=[EX2.legacy_dn])
    (finding,) = health.mailbox_findings(model(), [split])
    assert finding.code == "split" and finding.dn == split.dn
    assert "exdir move" in finding.fix
    gone = health.reverted_findings([{"dn": split.dn, "outcome": "applied",
                                      "written": {"homeMDB": _store(EX1).dn}}], {}, model())
    assert [f.code for f in gone] == ["moved-mailbox-gone"]


def test_checks_block_renames_by_operation_from_model_objects() -> None:
    findings = checks.preflight(Facts(), model(dcs=2))
    assert [f.code for f in checks.blocking(findings, Operation.RENAME_ORG, lab=True)] == [
        "several-dcs"]
    assert checks.blocking(findings, Operation.MOVE, lab=True) == []
    not_ad = checks.preflight(Facts(is_active_directory=False), model())
    assert [f.blocks_shown for f in not_ad] == [["rename without --lab"]]
    assert checks.blocking(not_ad, Operation.RENAME_ADMIN_GROUP, subject=AG_DN, lab=True) == []
    assert checks.same_group_move(EX1, EX2) and not checks.same_group_move(EX1, EX3)
    assert not checks.same_group_move(EX1, EX1) and not checks.same_group_move(None, EX1)


def test_x500_plans_from_entries_alone() -> None:
    box = mailbox("jsmith", EX1)
    plan = x500.plan_add(box, "/o=Old/cn=jsmith", [])
    assert plan.changes == (Modify(box.dn, (Mod("add", "proxyAddresses",
                                                 ("X500:/o=Old/cn=jsmith",)),),
                                   "add the X500 proxy X500:/o=Old/cn=jsmith"),)
    assert not x500.plan_remove(box, "/o=Old/cn=jsmith")


def test_legacydn_listing_from_entries_alone() -> None:
    rows = list(legacydn.listing([mailbox("jsmith", EX1), mailbox("kberg", EX3)],
                                 "/o=Fabrikam/ou=Europe"))
    assert [(r.value, r.object_class) for r in rows] == [
        ("/o=Fabrikam/ou=Europe/cn=Recipients/cn=kberg", "user")]
