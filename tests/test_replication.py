"""`exdir replication check` (issue 15): which of a plan's steps each DC shows.

The check logic runs on model objects (plans and entries built by hand) and on the
in-memory directory, where each "DC" is an LDIF copy in another state; the real
replication tests are in tests/test_replication_servers.py (slapd multi-provider,
two Samba DCs)."""
from __future__ import annotations

import json
import shutil
import struct
import uuid
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import pytest

from exdir import dn as dnu
from exdir import replication as rep
from exdir.backends.base import Entry
from exdir.backends.memory import open_ldif
from exdir.errors import ConnectionFailed
from exdir.ldif_out import render
from exdir.plan import Add, Delete, Mod, Modify, Plan, Rename
from exdir.readers.topology import read_topology
from tests.labs import cli

ROOT = Path(__file__).resolve().parent.parent
MULTIDC = ROOT / "samples" / "fabrikam-multidc.ldif"
BOB = "CN=Bob,OU=Staff,DC=x,DC=com"
STAFF = "OU=Staff,DC=x,DC=com"


class Reader:
    """An entry-reading backend on hand-built entries, counting its reads."""

    is_active_directory = False

    def __init__(self, entries: Sequence[Entry]) -> None:
        self.entries = {dnu.key(e.dn): e for e in entries}
        self.reads = 0

    def read_many(self, dns: Iterable[str], attributes: Sequence[str] = ("*",)
                  ) -> Mapping[str, Entry]:
        self.reads += 1
        return {dnu.key(d): self.entries[dnu.key(d)] for d in dns
                if dnu.key(d) in self.entries}


PLAN = Plan((
    Modify(BOB, (Mod("delete", "homeMDB", ("CN=Old,DC=x,DC=com",)),
                 Mod("add", "homeMDB", ("CN=New,DC=x,DC=com",)),
                 Mod("replace", "mailNickname", ("bob2",)),
                 Mod("delete", "msExchOmaAdminWirelessEnable", ()))),
    Rename(BOB, "CN=Robert"),
    Add("CN=Added,OU=Staff,DC=x,DC=com", (("objectClass", ("contact",)), ("cn", ("Added",)))),
    Delete("CN=Gone,OU=Staff,DC=x,DC=com"),
))


def converged_entries() -> list[Entry]:
    return [Entry("CN=Robert,OU=Staff,DC=x,DC=com",
                  {"homeMDB": ["cn=new,dc=x,dc=com"], "mailNickname": ["BOB2"]}),
            Entry("CN=Added,OU=Staff,DC=x,DC=com", {"cn": ["Added"], "objectClass": ["contact"]})]


def test_expectations_follow_later_renames() -> None:
    expected = rep.expectations(PLAN)
    assert [e.kind for e in expected] == ["modify", "rename", "add", "delete"]
    modify = expected[0]
    assert dnu.key(modify.dn) == dnu.key("CN=Robert,OU=Staff,DC=x,DC=com")
    assert modify.present == (("homeMDB", "CN=New,DC=x,DC=com"),)
    assert modify.absent == (("homeMDB", "CN=Old,DC=x,DC=com"),)
    assert modify.exact == (("mailNickname", ("bob2",)),)
    assert modify.cleared == ("msExchOmaAdminWirelessEnable",)
    assert expected[1].gone == BOB and not expected[3].exists


def test_a_converged_dc_shows_every_step_in_one_read() -> None:
    reader = Reader(converged_entries())
    result = rep.check_dc(reader, rep.expectations(PLAN), name="DC1")
    assert result.converged and result.shown == 4 and reader.reads == 1


@pytest.mark.parametrize("entries,step,why", [
    ([Entry(BOB, {"homeMDB": ["CN=Old,DC=x,DC=com"]})], 1, "entry not found"),
    ([Entry("CN=Robert,OU=Staff,DC=x,DC=com", {"homeMDB": ["CN=Old,DC=x,DC=com"]})], 1,
     "homeMDB lacks"),
    ([Entry("CN=Robert,OU=Staff,DC=x,DC=com", {"homeMDB": ["CN=New,DC=x,DC=com",
                                                             "CN=Old,DC=x,DC=com"]})],
     1, "homeMDB still holds"),
    ([Entry("CN=Robert,OU=Staff,DC=x,DC=com", {"homeMDB": ["CN=New,DC=x,DC=com"],
                                               "mailNickname": ["bob"]})],
     1, "mailNickname does not hold"),
    ([Entry("CN=Robert,OU=Staff,DC=x,DC=com", {"homeMDB": ["CN=New,DC=x,DC=com"],
                                               "mailNickname": ["bob2"],
                                               "msExchOmaAdminWirelessEnable": ["0"]})],
     1, "still has values"),
    ([*converged_entries(), Entry(BOB, {"cn": ["Bob"]})], 2, "still at"),
    ([converged_entries()[0]], 3, "not there"),
    ([*converged_entries(), Entry("CN=Gone,OU=Staff,DC=x,DC=com", {"cn": ["Gone"]})], 4,
     "still there"),
])
def test_each_way_a_step_does_not_show(entries: list[Entry], step: int, why: str) -> None:
    result = rep.check_dc(Reader(entries), rep.expectations(PLAN), name="DC2")
    assert not result.converged
    lag = {s: w for s, _, w in result.lagging}
    assert step in lag and why in lag[step], result.lagging


def test_every_dc_checked_an_unreachable_one_named_and_wait_backs_off() -> None:
    readers = {"dc1": Reader(converged_entries()), "dc2": Reader([])}
    sleeps: list[float] = []
    clock = iter(float(i) for i in range(100))

    def open_dc(dc: rep.Dc) -> Reader:
        if dc.name == "dc3":
            raise ConnectionFailed("cannot reach ldap://dc3")
        return readers[dc.name]

    dcs = [rep.Dc(n, f"ldap://{n}") for n in ("dc1", "dc2", "dc3")]
    report = rep.check_all(dcs, PLAN, open_dc, wait=6, sleep=sleeps.append,
                           clock=lambda: next(clock))
    assert not report.converged and [r.name for r in report.lagging] == ["dc2", "dc3"]
    assert report.dcs[2].error and "unreachable" in report.dcs[2].error
    assert report.rounds > 1 and sleeps[:2] == [0.2, 0.4]
    lines = rep.summary_lines(report)
    assert lines[0] == "dc1 (ldap://dc1): converged: 4/4 step(s) show"
    assert any(line.startswith("dc3 (ldap://dc3): unreachable") for line in lines)


def _blob(records: list[tuple[int, int, int, bytes]]) -> bytes:
    out = struct.pack("<IIII", 1, 0, len(records), 0)
    for attid, version, seconds, invocation in records:
        out += struct.pack("<IIQ", attid, version, seconds) + invocation + struct.pack("<QQ", 1, 1)
    return out


def test_repl_property_metadata_decoded_and_an_older_version_lags() -> None:
    assert rep.attid_of("1.2.840.113556.1.2.210") == 0x000200D2  # proxyAddresses
    assert rep.attid_of("1.2.840.113556.1.4.2") == 0x00090002  # objectGUID
    assert rep.attid_of("1.2.3.4", 1234567) == 1234567
    inv = uuid.uuid4()
    attid = rep.attid_of("1.2.840.113556.1.2.44")
    assert attid is not None
    plan = Plan((Modify(BOB, (Mod("replace", "homeMDB", ("CN=New,DC=x,DC=com",)),)),))

    class AD(Reader):
        is_active_directory = True

    def dc(version: int) -> AD:
        return AD([Entry(BOB, {"homeMDB": ["CN=New,DC=x,DC=com"],
                               "replPropertyMetaData": [_blob([(attid, version, 13_000_000_000,
                                                                inv.bytes_le)])]})])

    readers = {"DC1": dc(3), "DC2": dc(2)}
    report = rep.check_all([rep.Dc("DC1", "u1"), rep.Dc("DC2", "u2")], plan,
                           lambda d: readers[d.name], attids={"homemdb": attid},
                           dc_names={str(inv): "DC1"})
    first, second = report.dcs
    meta = first.metadata[BOB]["homemdb"]
    assert (meta.version, meta.originating_dc) == (3, "DC1")
    assert meta.originating_time.startswith("2012-")
    assert first.converged and not second.converged
    assert "version 2, another DC has 3" in second.lagging[0][2]


def test_msds_repl_attribute_metadata_parsed() -> None:
    xml = ("<DS_REPL_ATTR_META_DATA><pszAttributeName>homeMDB</pszAttributeName>"
           "<dwVersion>4</dwVersion><ftimeLastOriginatingChange>2026-01-02T03:04:05Z"
           "</ftimeLastOriginatingChange><uuidLastOriginatingDsaInvocationID>x"
           "</uuidLastOriginatingDsaInvocationID><pszLastOriginatingDsaDN>CN=NTDS Settings,"
           "CN=DC7,CN=Servers,CN=S,CN=Sites,CN=Configuration,DC=x,DC=com"
           "</pszLastOriginatingDsaDN></DS_REPL_ATTR_META_DATA>\x00")
    meta = rep.parse_msds_meta([xml])["homemdb"]
    assert (meta.version, meta.originating_dc, meta.originating_time) == (
        4, "DC7", "2026-01-02T03:04:05Z")


def test_dc_url_keeps_scheme_and_port() -> None:
    assert rep.dc_url("ldaps://127.0.0.1:1636/", "dc2.x.com") == "ldaps://dc2.x.com:1636/"
    assert rep.dc_url("ldap://dc1", "dc2.x.com") == "ldap://dc2.x.com"


def test_topology_lists_each_dc_host_name_and_read_only() -> None:
    with open_ldif(str(MULTIDC), lock=None) as directory:
        dcs = read_topology(directory).domain_controllers
    assert [(d.name, d.dns_host_name, d.read_only) for d in dcs] == [
        ("DC1", "dc1.fabrikam.com", False), ("DC2", "dc2.fabrikam.com", False),
        ("DC3", "dc3.fabrikam.com", True)]


# --- the command, on LDIF "DCs" ---------------------------------------------------------------

MOVE_TO = "EX2/First Storage Group/Mailbox Store (EX2)"


def test_command_on_ldif_dcs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Each --dc an LDIF file: the one written converged, the untouched copy behind
    (exit 1, named), a missing one unreachable; --json carries the same."""
    written, stale = tmp_path / "dc1.ldif", tmp_path / "dc2.ldif"
    shutil.copyfile(MULTIDC, written)
    shutil.copyfile(MULTIDC, stale)
    plan = tmp_path / "plan.ldif"
    code, out, err = cli(capsys, "--ldif", str(written), "move", "jsmith", "--to", MOVE_TO)
    assert code == 0, err
    plan.write_text(out, encoding="utf-8")
    code, _, err = cli(capsys, "--ldif", str(written), "apply", str(plan), "--apply",
                       "--undo-file", str(tmp_path / "undo.ldif"))
    assert code == 0, err
    code, out, err = cli(capsys, "--ldif", str(written), "replication", "check", str(plan))
    assert code == 0 and out.count("converged: 1/1") == 3, out + err
    args = ["--ldif", str(written), "replication", "check", str(plan), "--dc", str(written),
            "--dc", str(stale), "--dc", str(tmp_path / "missing.ldif")]
    code, out, err = cli(capsys, *args)
    assert code == 1, out + err
    assert f"{stale}: behind: 0/1 step(s) show" in out and "homeMDB lacks" in out
    assert "missing.ldif: unreachable" in out
    assert err.strip().splitlines()[-1] == (
        f"exdir: not converged: {stale}, {tmp_path / 'missing.ldif'}")
    code, out, err = cli(capsys, "--json", *args)
    data = json.loads(out)
    assert code == 1 and not data["converged"]
    assert [d["converged"] for d in data["domain_controllers"]] == [True, False, False]
    assert data["domain_controllers"][2]["reachable"] is False


def test_bad_plan_is_one_line_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.ldif"
    bad.write_text("dn: nonsense\nchangetype: modify\n", encoding="utf-8")
    code, out, err = cli(capsys, "--ldif", str(MULTIDC), "replication", "check", str(bad))
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err


def test_render_round_trip_of_the_model_plan() -> None:
    """The model plan above is a plan exdir can write and read (what the command reads)."""
    from exdir.ldif_in import parse

    assert parse(render(PLAN)) == PLAN


def test_undo_header_and_report_name_the_dc_and_another_dc_warns(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lab, other = tmp_path / "lab.ldif", tmp_path / "other.ldif"
    shutil.copyfile(MULTIDC, lab)
    shutil.copyfile(MULTIDC, other)
    code, out, err = cli(capsys, "--ldif", str(lab), "move", "jsmith", "--to", MOVE_TO)
    plan = tmp_path / "plan.ldif"
    plan.write_text(out, encoding="utf-8")
    undo, report = tmp_path / "undo.ldif", tmp_path / "report.json"
    code, _, err = cli(capsys, "--ldif", str(lab), "apply", str(plan), "--apply",
                       "--undo-file", str(undo), "--report", str(report))
    assert code == 0, err
    assert "# written to domain controller:" in undo.read_text(encoding="utf-8")
    assert rep.recorded_dc(undo.read_text(encoding="utf-8")) == str(lab)
    assert json.loads(report.read_text(encoding="utf-8"))["domain_controller"] == str(lab)
    code, _, err = cli(capsys, "--ldif", str(other), "apply", str(undo))
    warnings = [line for line in err.splitlines() if "warning:" in line]
    assert code == 0 and len(warnings) == 1 and f"against {lab}, not {other}" in warnings[0]
    code, _, err = cli(capsys, "--ldif", str(lab), "apply", str(undo))
    assert code == 0 and "warning:" not in err, err


def test_written_to_holds_no_credentials() -> None:
    class Server:
        url = "LDAPS://admin:secret@DC1.Fabrikam.com:636/"

    assert rep.written_to(Server()) == "ldaps://dc1.fabrikam.com:636"


def test_verify_dcs_puts_the_per_dc_result_in_the_report(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lab = tmp_path / "lab.ldif"
    shutil.copyfile(MULTIDC, lab)
    for name in ("report.json", "report.xml"):
        report = tmp_path / name
        code, _, err = cli(capsys, "--ldif", str(lab), "x500", "add", "jsmith",
                           f"X500:/o=Old/ou=Site/cn=Recipients/cn=jsmith-{name[-4:]}",
                           "--apply", "--undo-file", str(tmp_path / f"undo-{name}.ldif"),
                           "--verify-dcs", "--report", str(report))
        assert code == 0, err
        assert "every domain controller shows the changes (3)" in err
        text = report.read_text(encoding="utf-8")
        if name.endswith(".json"):
            data = json.loads(text)["replication"]
            assert data["converged"] and [d["name"] for d in data["domain_controllers"]] == [
                "DC1", "DC2", "DC3"]
        else:
            assert '<replication converged="True">' in text and text.count(
                "<domainController ") == 3
