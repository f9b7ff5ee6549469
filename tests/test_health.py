"""`exdir adc check` and `exdir legacydn audit` on every backend (ldif, slapd, Samba AD).

The broken cases are seeded into a copy of samples/fabrikam.ldif through the
Directory itself (the same writes on every backend; nothing hard-coded about
which mailbox ends up where: the seeds pick mailboxes from the data and the
expected findings follow from the seeds).  Every finding must say what it means
and name an exdir command; the commands are then run, and the findings must be
gone.  `--since-report` is proven with real `exdir move --report` files and a
revert written behind exdir's back, as an ADC agreement would.
"""
from __future__ import annotations

import json
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exdir import dn as dnu
from exdir import health, lab
from exdir.backends.base import Directory, Entry
from exdir.backends.ldap import LdapDirectory
from exdir.backends.memory import LdifDirectory, open_ldif
from exdir.legacydn import rewrite
from exdir.plan import Mod
from exdir.readers.topology import read_topology
from exdir.topology import ExchangeServer, Store, Topology
from tests.labs import ALL_BACKENDS, Lab, clear_env, cli, new_lab

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples"
SAMPLE = (SAMPLES / "fabrikam.ldif").read_text(encoding="utf-8")
MIXED = (SAMPLES / "fabrikam-mixed.ldif").read_text(encoding="utf-8")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No EXDIR_* leaks in; undo files land in the test's directory, not the repo."""
    clear_env(monkeypatch)
    monkeypatch.chdir(tmp_path)


# --- labs: one directory, reachable by the CLI and by the test (tests/labs.py) ----------------

def run_json(capsys: pytest.CaptureFixture[str], lab_: Lab, *args: str
             ) -> tuple[int, dict[str, Any]]:
    code, out, err = lab_.cli(capsys, "--json", *args)
    assert code in (0, 1), err
    return code, json.loads(out)


def assert_one_line_error(code: int, out: str, err: str, *fragments: str) -> None:
    assert code == 2, (code, out, err)
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("exdir: "), err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in err, (fragment, err)


def found(data: dict[str, Any]) -> set[tuple[str, str]]:
    """(code, dn.key) of every finding of a --json report."""
    return {(f["code"], dnu.key(f["dn"])) for f in data["findings"]}


def fix_command(fix: str) -> list[str] | None:
    """The exdir command a fix names, as argv without `exdir`; None where it names none."""
    if "exdir " not in fix:
        return None
    argv = shlex.split(fix[fix.index("exdir "):])
    assert argv[0] == "exdir" and "--apply" in argv, fix
    return argv[1:]


# --- seeding the broken cases ------------------------------------------------------------------

def write(directory: Directory, dn: str, *mods: Mod) -> None:
    directory.modify(dn, list(mods))


def replace(attribute: str, value: str) -> Mod:
    return Mod("replace", attribute, (value,))


def mailboxes_by_server(directory: Directory, topology: Topology) -> dict[str, list[Entry]]:
    """Mailboxes by the name of the server their msExchHomeServerName names, by alias."""
    out: dict[str, list[Entry]] = {}
    for e in directory.search(directory.naming.domain, "(homeMDB=*)",
                              ("mailNickname", "legacyExchangeDN", "homeMDB", "homeMTA",
                               "msExchHomeServerName", "proxyAddresses", "objectClass")):
        server = topology.by_legacy_dn(e.text("msExchHomeServerName") or "")
        assert isinstance(server, ExchangeServer), e.dn
        out.setdefault(server.name, []).append(e)
    for boxes in out.values():
        boxes.sort(key=lambda e: (e.text("mailNickname") or "").lower())
    return out


def private_store(topology: Topology, server: ExchangeServer) -> Store:
    return next(s for s in topology.stores
                if not s.public and dnu.key(s.server) == dnu.key(server.dn))


def busiest_and_peer(topology: Topology, by_server: dict[str, list[Entry]]
                     ) -> tuple[ExchangeServer, ExchangeServer]:
    """The server homing the most mailboxes, and another server of its admin group (a
    move between the two stays inside the group)."""
    first = max(topology.servers, key=lambda s: len(by_server.get(s.name, [])))
    peer = next(s for s in topology.servers if s.admin_group == first.admin_group
                and s.dn != first.dn)
    return first, peer


@dataclass
class Seeded:
    """What was broken, and the findings each command must give for it (code, dn.key)."""

    audit: set[tuple[str, str]] = field(default_factory=set)
    adc: set[tuple[str, str]] = field(default_factory=set)
    who: dict[str, Entry] = field(default_factory=dict)
    dangling_after_delete: dict[str, list[str]] = field(default_factory=dict)


def seed(directory: Directory) -> Seeded:
    """Split, dangling (a deleted store and MTA), a home server naming nothing, a
    case-insensitive duplicate, a value outside the organisation, a malformed value,
    ADCDisabledMail in a native organisation, an admin group and a server value not
    matching their names, and an X500 proxy equal to another object's value."""
    topology = read_topology(directory)
    org_prefix = topology.organization.legacy_dn or ""
    by_server = mailboxes_by_server(directory, topology)
    # the server with the most mailboxes gives the victims; another one in its group
    # is the split target; a third server (its group's name) gets the wrong value
    first = max(topology.servers, key=lambda s: len(by_server.get(s.name, [])))
    boxes = by_server[first.name]
    assert len(boxes) >= 10
    peer = next(s for s in topology.servers if s.admin_group == first.admin_group
                and s.dn != first.dn and by_server.get(s.name))
    other_group = next(g for g in topology.admin_groups
                       if dnu.key(g.dn) != dnu.key(first.admin_group or ""))
    home_store = private_store(topology, first)
    mta = topology.mta_of(first.dn)
    assert mta is not None
    s = Seeded()
    mailbox_codes: set[tuple[str, str]] = set()

    def box(role: str, i: int) -> Entry:
        s.who[role] = boxes[i]
        return boxes[i]

    # 1. split: homeMDB written back to another server's store (an ADC agreement's doing)
    split = box("split", 0)
    write(directory, split.dn, replace("homeMDB", private_store(topology, peer).dn))
    mailbox_codes.add(("split", dnu.key(split.dn)))

    # 2. dangling: point a mailbox at a store and an MTA, then delete both.  A real AD
    # (Samba) refuses a DN value naming no object, so this is the only way there.
    old_store = f"CN=Old Store ({first.name}),{home_store.storage_group}"
    old_mta = f"CN=Old MTA,{first.dn}"
    directory.add(old_store, {"objectClass": ["top", "msExchMDB", "msExchPrivateMDB"],
                              "cn": [f"Old Store ({first.name})"], "deliveryMechanism": ["0"]})
    directory.add(old_mta, {"objectClass": ["top", "mTA"], "cn": ["Old MTA"],
                            "mTALocalDesig": [first.name], "transRetryMins": ["5"],
                            "transTimeoutMins": ["20"]})
    dangling = box("dangling", 1)
    write(directory, dangling.dn, replace("homeMDB", old_store), replace("homeMTA", old_mta))
    directory.delete(old_store)
    directory.delete(old_mta)
    after = directory.read(dangling.dn, ("homeMDB", "homeMTA"))
    assert after is not None
    s.dangling_after_delete = {"homeMDB": after.texts("homeMDB"),
                               "homeMTA": after.texts("homeMTA")}
    key = dnu.key(dangling.dn)
    if directory.is_active_directory:
        # AD drops a linked value (homeMDB) with its target, and a non-linked one
        # (homeMTA) follows the target into CN=Deleted Objects
        assert s.dangling_after_delete["homeMDB"] == []
        tomb = s.dangling_after_delete["homeMTA"][0]
        assert "\\0ADEL:" in tomb and dnu.key(dnu.parent(tomb)) == dnu.key(
            f"CN=Deleted Objects,{directory.naming.configuration}")
        mailbox_codes |= {("homemdb-missing", key), ("homemta-dangling", key)}
    else:  # the other backends keep both DNs as they were: they name nothing now
        assert [dnu.key(v) for v in s.dangling_after_delete["homeMDB"]] == [dnu.key(old_store)]
        mailbox_codes |= {("homemdb-dangling", key), ("homemta-dangling", key)}

    # 3. msExchHomeServerName naming no server
    nowhere = box("home", 2)
    write(directory, nowhere.dn,
          replace("msExchHomeServerName", f"{first.legacy_dn}-decommissioned"))
    mailbox_codes.add(("home-server-dangling", dnu.key(nowhere.dn)))

    # 4. a duplicate, differing in case only
    dup, original = box("duplicate", 3), box("duplicated", 4)
    write(directory, dup.dn,
          replace("legacyExchangeDN", (original.text("legacyExchangeDN") or "").upper()))
    s.audit |= {("duplicate", dnu.key(dup.dn)), ("duplicate", dnu.key(original.dn))}

    # 5. outside the organisation: a leftover of a partial rename
    outside = box("outside", 5)
    moved = rewrite(outside.text("legacyExchangeDN") or "", org_prefix, "/o=Contoso")
    assert moved
    write(directory, outside.dn, replace("legacyExchangeDN", moved))
    s.audit.add(("outside-org", dnu.key(outside.dn)))

    # ... and a store's value (configuration partition) left behind by the same rename
    store = private_store(topology, peer)
    moved = rewrite(store.legacy_dn or "", org_prefix, "/o=Contoso")
    assert moved
    write(directory, store.dn, replace("legacyExchangeDN", moved))
    s.audit.add(("outside-org", dnu.key(store.dn)))

    # 6. malformed: /ou= after /cn=
    bad = box("malformed", 6)
    group = topology.admin_group(first.admin_group or "")
    assert group is not None
    write(directory, bad.dn, replace(
        "legacyExchangeDN",
        f"{org_prefix}/cn=Recipients/ou={group.name}/cn={bad.text('mailNickname')}"))
    s.audit.add(("malformed", dnu.key(bad.dn)))

    # 7. ADCDisabledMail in a native organisation
    disabled = box("adc-disabled", 7)
    write(directory, disabled.dn, replace("legacyExchangeDN", "ADCDisabledMail"))
    s.audit.add(("adc-disabled", dnu.key(disabled.dn)))

    # 8. an X500 proxy equal to another object's legacyExchangeDN (other case)
    holder, victim = box("x500", 8), box("x500-victim", 9)
    write(directory, holder.dn, Mod("add", "proxyAddresses",
                                    ("X500:" + (victim.text("legacyExchangeDN") or "").lower(),)))
    s.audit.add(("x500-collision", dnu.key(holder.dn)))

    # 9. an administrative group value that does not match its name
    write(directory, other_group.dn,
          replace("legacyExchangeDN", f"{org_prefix}/ou=Old {other_group.name}"))
    s.audit.add(("group-name-mismatch", dnu.key(other_group.dn)))

    # 10. a server value that does not match its name; its mailboxes agree with it, as
    # after a rename that forgot the server
    old_value = peer.legacy_dn or ""
    wrong = old_value[: old_value.lower().rindex("/cn=")] + f"/cn=Old{peer.name}"
    write(directory, peer.dn, replace("legacyExchangeDN", wrong))
    for e in by_server[peer.name]:
        write(directory, e.dn, replace("msExchHomeServerName", wrong))
    s.audit.add(("server-name-mismatch", dnu.key(peer.dn)))

    s.adc = mailbox_codes
    s.audit |= mailbox_codes
    directory.save()
    return s


# --- 2. the seeded cases on every backend -----------------------------------------------------

@pytest.mark.parametrize("kind", ALL_BACKENDS)
def test_seeded_cases_found_explained_and_fixed(kind: str, request: pytest.FixtureRequest,
                                               tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    lab_ = new_lab(kind, SAMPLE, request, tmp_path)
    # the clean sample: nothing to report, exit 0
    for command in (["adc", "check"], ["legacydn", "audit"]):
        code, data = run_json(capsys, lab_, *command)
        assert code == 0 and data["findings"] == [] and data["finding_count"] == 0, data

    directory = lab_.open()
    try:
        seeded = seed(directory)
    finally:
        directory.close()

    code, adc = run_json(capsys, lab_, "adc", "check")
    assert code == 1
    assert found(adc) == seeded.adc
    assert adc["organisation"]["mixed_mode"] is False and adc["connection_agreements"] == []
    code, audit = run_json(capsys, lab_, "legacydn", "audit")
    assert code == 1
    assert found(audit) == seeded.audit
    assert audit["finding_count"] == len(audit["findings"])
    for f in audit["findings"]:
        assert set(f) == {"code", "dn", "message", "meaning", "fix", "details"}
        assert f["meaning"] and f["message"]
        if f["code"] == "duplicate" and fix_command(f["fix"]) is None:
            # the holder whose value fits it is told to change the other one
            assert dnu.key(f["dn"]) == dnu.key(seeded.who["duplicated"].dn), f
            assert seeded.who["duplicate"].dn in f["fix"]
        else:
            assert fix_command(f["fix"]) is not None, f

    # the text form carries the same findings, each with its meaning and fix
    code, text, _ = lab_.cli(capsys, "legacydn", "audit")
    assert code == 1
    assert f"legacyExchangeDN audit: {len(audit['findings'])} finding(s)" in text
    for f in audit["findings"]:
        assert f"- [{f['code']}] {f['message']}\n    means: {f['meaning']}\n    fix:   " \
               f"{f['fix']}\n" in text

    # x500 find names both holders of the collided value
    victim = seeded.who["x500-victim"].text("legacyExchangeDN") or ""
    code, out, err = lab_.cli(capsys, "--json", "x500", "find", "X500:" + victim.upper())
    assert code == 0, err
    assert {(dnu.key(o["dn"]), o["matched"]) for o in json.loads(out)["objects"]} == {
        (dnu.key(seeded.who["x500-victim"].dn), "legacyExchangeDN"),
        (dnu.key(seeded.who["x500"].dn), "X500 proxy")}

    # every fix command, as printed, run as it is: the findings go, and no new one comes
    # (on AD the move deletes homeMTA's tombstone value, `CN=Old MTA\0ADEL:<guid>,CN=Deleted
    # Objects,…`, which Samba matches only as <GUID=…>: LdapDirectory sends it so)
    done: set[tuple[str, ...]] = set()
    for f in audit["findings"]:
        argv = fix_command(f["fix"])
        if argv is None or tuple(argv) in done:
            continue
        done.add(tuple(argv))
        code, out, err = lab_.cli(capsys, *argv)
        assert code == 0, (argv, err)
    code, remaining = run_json(capsys, lab_, "legacydn", "audit")
    assert (code, remaining["findings"]) == (0, []), remaining["findings"]
    code, data = run_json(capsys, lab_, "adc", "check")
    assert (code, data["findings"]) == (0, []), data["findings"]


def test_fixes_take_each_finding_away_one_at_a_time(tmp_path: Path,
                                                     request: pytest.FixtureRequest,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """The move for a split mailbox and `legacydn set` for an outside value: each removes
    its own finding and leaves the others standing."""
    lab_ = new_lab("ldif", SAMPLE, request, tmp_path)
    directory = lab_.open()
    seeded = seed(directory)
    _, before = run_json(capsys, lab_, "legacydn", "audit")
    for code_name, role in (("split", "split"), ("outside-org", "outside")):
        finding = next(f for f in before["findings"] if f["code"] == code_name
                       and dnu.key(f["dn"]) == dnu.key(seeded.who[role].dn))
        argv = fix_command(finding["fix"])
        assert argv and argv[0] == ("move" if code_name == "split" else "legacydn")
        code, _, err = lab_.cli(capsys, *argv)
        assert code == 0, err
        _, now = run_json(capsys, lab_, "legacydn", "audit")
        assert found(now) == found(before) - {(code_name, dnu.key(finding["dn"]))}
        before = now
    # the outside value was kept as an X500 proxy (old mail still resolves)
    fixed = lab_.open().read(seeded.who["outside"].dn)
    assert fixed is not None
    org_prefix = read_topology(directory).organization.legacy_dn or ""
    left = rewrite(seeded.who["outside"].text("legacyExchangeDN") or "", org_prefix, "/o=Contoso")
    assert left and any(p.lower() == f"x500:{left}".lower() for p in fixed.texts("proxyAddresses"))


@pytest.mark.parametrize("name", ["fabrikam", "fabrikam-multidc", "fabrikam-mixed"])
def test_clean_samples_have_no_findings(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    for command in (["adc", "check"], ["legacydn", "audit"]):
        code, out, err = cli(capsys, "--ldif", str(SAMPLES / f"{name}.ldif"), *command)
        assert code == 0, (out, err)
        assert " 0 finding(s)" in out


def test_adc_disabled_is_normal_in_mixed_mode_only(tmp_path: Path,
                                                   request: pytest.FixtureRequest,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    lab_ = new_lab("ldif", MIXED, request, tmp_path)
    directory = lab_.open()
    holders = [e for e in directory.search(directory.naming.domain,
                                            "(legacyExchangeDN=ADCDisabledMail)", ("cn",))]
    assert len(holders) == 1  # the mixed sample's deleted mailbox
    code, data = run_json(capsys, lab_, "legacydn", "audit")
    assert code == 0 and data["organisation"]["mixed_mode"] is True
    org = read_topology(directory).organization
    write(directory, org.dn, replace("msExchMixedMode", "FALSE"))
    directory.save()
    code, data = run_json(capsys, lab_, "legacydn", "audit")
    assert code == 1
    assert found(data) == {("adc-disabled", dnu.key(holders[0].dn))}
    assert "--no-keep-x500" in data["findings"][0]["fix"]  # the marker is no address


def test_adc_check_shows_mode_and_agreements(capsys: pytest.CaptureFixture[str]) -> None:
    path = SAMPLES / "fabrikam-mixed.ldif"
    directory = open_ldif(str(path), warn=lambda m: None)
    raw = {dnu.rdn_value(e.dn): e for e in directory.search(
        directory.naming.configuration, "(objectClass=msExchConnectionAgreement)",
        ("activationStyle", "msExchSynchronizationDirection"))}
    assert len(raw) == 2
    code, data = run_json(capsys, Lab("ldif", SAMPLES, path=path), "adc", "check")
    assert code == 0
    assert data["organisation"] == {"name": "Fabrikam", "legacyExchangeDN": "/o=Fabrikam",
                                    "mixed_mode": True}
    words = {"0": "never", "1": "selected times", "2": "always"}
    assert sorted((a["name"], a["activation"]) for a in data["connection_agreements"]) == sorted(
        (name, words[e.text("activationStyle") or ""]) for name, e in raw.items())
    assert all(a["direction"] != "unknown" for a in data["connection_agreements"])
    code, out, _ = cli(capsys, "--ldif", str(path), "adc", "check")
    assert "organisation: Fabrikam (mixed mode)" in out and "connection agreements: 2" in out
    for name in raw:
        assert f"  {name}: " in out


def test_split_fix_in_mixed_mode_names_adc_stopped(tmp_path: Path,
                                                   request: pytest.FixtureRequest,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """With agreements running the fix says to stop the ADC first and carries
    --adc-stopped (which `exdir move` needs for a same-group move), and it works."""
    lab_ = new_lab("ldif", MIXED, request, tmp_path)
    directory = lab_.open()
    topology = read_topology(directory)
    by_server = mailboxes_by_server(directory, topology)
    first, peer = busiest_and_peer(topology, by_server)
    victim = by_server[first.name][0]
    write(directory, victim.dn, replace("homeMDB", private_store(topology, peer).dn))
    directory.save()
    code, data = run_json(capsys, lab_, "adc", "check")
    assert code == 1 and found(data) == {("split", dnu.key(victim.dn))}
    fix = data["findings"][0]["fix"]
    assert fix.startswith("stop the ADC") and "--adc-stopped" in fix
    argv = fix_command(fix)
    assert argv is not None
    code, _, err = lab_.cli(capsys, *argv)
    assert code == 0, err
    code, data = run_json(capsys, lab_, "adc", "check")
    assert (code, data["findings"]) == (0, [])


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), min_size=1))
def test_fix_arguments_survive_the_shell(text: str) -> None:
    """What a fix prints is one shell word per value, whatever the value holds."""
    assert shlex.split(f"exdir legacydn set {health._quote(text)} x") == [
        "exdir", "legacydn", "set", text, "x"]


# --- 3. --since-report -------------------------------------------------------------------------

SINCE = [pytest.param("ldif", MIXED, id="ldif-mixed"),
         pytest.param("slapd", MIXED, id="slapd-mixed", marks=pytest.mark.slapd),
         pytest.param("samba", SAMPLE, id="samba", marks=pytest.mark.samba)]


@pytest.mark.parametrize("kind,text", SINCE)
def test_since_report_names_what_changed_back(kind: str, text: str,
                                              request: pytest.FixtureRequest, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    lab_ = new_lab(kind, text, request, tmp_path)
    directory = lab_.open()
    topology = read_topology(directory)
    by_server = mailboxes_by_server(directory, topology)
    first, peer = busiest_and_peer(topology, by_server)
    target = private_store(topology, peer)
    reverted_json, untouched, reverted_xml = by_server[first.name][:3]
    directory.close()
    adc_stopped = ["--adc-stopped"] if topology.organization.mixed_mode else []
    json_report, xml_report = tmp_path / "r.json", tmp_path / "r.xml"
    for who, report in (([reverted_json, untouched], json_report), ([reverted_xml], xml_report)):
        code, _, err = lab_.cli(capsys, "move",
                                *[e.text("mailNickname") or "" for e in who], "--to", target.dn,
                                *adc_stopped, "--apply", "--report", str(report))
        assert code == 0, err
    for report in (json_report, xml_report):  # nothing changed back yet
        code, data = run_json(capsys, lab_, "adc", "check", "--since-report", str(report))
        assert (code, data["findings"]) == (0, []) and data["moves_checked"] >= 1

    # behind exdir's back, as an ADC agreement would: the old homeMDB written back
    directory = lab_.open()
    for e in (reverted_json, reverted_xml):
        write(directory, e.dn, replace("homeMDB", e.text("homeMDB") or ""))
    directory.save()
    directory.close()

    for report, mailbox in ((json_report, reverted_json), (xml_report, reverted_xml)):
        code, data = run_json(capsys, lab_, "adc", "check", "--since-report", str(report))
        assert code == 1
        assert found(data) == {("move-reverted", dnu.key(mailbox.dn)),
                               ("split", dnu.key(reverted_json.dn)),
                               ("split", dnu.key(reverted_xml.dn))}
        reverted = next(f for f in data["findings"] if f["code"] == "move-reverted")
        assert list(reverted["details"]) == ["homeMDB"]  # the attribute that changed back
        assert dnu.key(reverted["details"]["homeMDB"]) == dnu.key(mailbox.text("homeMDB") or "")
        assert "homeMDB changed back to what it was before the move" in reverted["message"]
        assert ("--adc-stopped" in reverted["fix"]) == bool(adc_stopped)
        code, out, _ = lab_.cli(capsys, "adc", "check", "--since-report", str(report))
        assert code == 1 and "[move-reverted]" in out and "homeMDB changed back" in out

    # the fixes named put the moves back; the reports then find nothing
    code, data = run_json(capsys, lab_, "adc", "check", "--since-report", str(json_report))
    code, more = run_json(capsys, lab_, "adc", "check", "--since-report", str(xml_report))
    for f in data["findings"] + more["findings"]:
        if f["code"] == "move-reverted":
            argv = fix_command(f["fix"])
            assert argv is not None
            if adc_stopped:  # without the flag the fix names, exdir refuses this move
                code, _, err = lab_.cli(capsys, *[a for a in argv if a != "--adc-stopped"])
                assert code == 1 and "--adc-stopped" in err, err
            code, _, err = lab_.cli(capsys, *argv)
            assert code == 0, err
    for report in (json_report, xml_report):
        code, data = run_json(capsys, lab_, "adc", "check", "--since-report", str(report))
        assert (code, data["findings"]) == (0, []), data["findings"]


def test_since_report_refuses_what_is_not_a_move_report(tmp_path: Path,
                                                        request: pytest.FixtureRequest,
                                                        capsys: pytest.CaptureFixture[str]
                                                        ) -> None:
    lab_ = new_lab("ldif", SAMPLE, request, tmp_path)
    # a real exdir report, but of something else than a move
    for ext in ("json", "xml"):
        code, _, err = lab_.cli(capsys, "x500", "add", "jsmith",
                                "X500:/o=Fabrikam/ou=Old/cn=Recipients/cn=jsmith", "--apply",
                                "--report", str(tmp_path / f"other.{ext}"))
        assert code == 0, err
    (tmp_path / "list.json").write_text("[]\n")
    (tmp_path / "broken.json").write_text('{"mailboxes": [{"identity": "x"}]}\n')
    (tmp_path / "garbage.xml").write_text("not xml at all\n")
    (tmp_path / "latin1.json").write_bytes(b'{"m\xe4ilboxes": []}')
    for name, fragment in (("other.json", "not a move report"), ("other.xml", "not a move report"),
                           ("list.json", "not a move report"), ("broken.json", "not a move report"),
                           ("garbage.xml", "not a readable report"),
                           ("latin1.json", "cannot read report"),
                           ("missing.json", "cannot read report")):
        code, out, err = lab_.cli(capsys, "adc", "check", "--since-report",
                                  str(tmp_path / name))
        assert_one_line_error(code, out, err, fragment)


# --- 4. bulk reads -------------------------------------------------------------------------------

class CallCounter:
    """Counts the reads every Directory backend makes (search, read, read_many)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: list[tuple[str, str]] = []
        for cls in (LdifDirectory, LdapDirectory):
            for name in ("search", "read", "read_many"):
                monkeypatch.setattr(cls, name, self._wrap(name, getattr(cls, name)))

    def _wrap(self, name: str, method: Callable[..., Any]) -> Callable[..., Any]:
        counter = self

        def counted(self: Directory, *args: Any, **kwargs: Any) -> Any:
            counter.calls.append((name, str(args[0]) if args else ""))
            return method(self, *args, **kwargs)

        return counted

    def take(self) -> list[tuple[str, str]]:
        out, self.calls = self.calls, []
        return out


@pytest.mark.parametrize("kind", ["ldif", pytest.param("slapd", marks=pytest.mark.slapd)])
def test_constant_number_of_reads(kind: str, request: pytest.FixtureRequest, tmp_path: Path,
                                  monkeypatch: pytest.MonkeyPatch,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    counts: dict[int, dict[str, list[tuple[str, str]]]] = {}
    counter = CallCounter(monkeypatch)
    for size in (10, 1000):
        (tmp_path / str(size)).mkdir()
        lab_ = new_lab(kind, "".join(lab.generate(size)), request, tmp_path / str(size))
        counter.take()
        counts[size] = {}
        for command in (["adc", "check"], ["legacydn", "audit"]):
            code, data = run_json(capsys, lab_, *command)
            assert code == 0, data["findings"][:3]
            counts[size][command[0]] = counter.take()
    for group in ("adc", "legacydn"):
        small, large = counts[10][group], counts[1000][group]
        assert small == large, (group, small, large)
        assert all(name == "search" for name, _ in large), large
        # topology (2) + the recipients (one search per partition; `legacydn audit`
        # reads them twice rather than hold them)
        assert len(large) <= (6 if group == "legacydn" else 4), large


def test_the_audit_does_not_hold_the_recipients(tmp_path: Path) -> None:
    """`legacydn audit` on the indexed store keeps neither the recipients read nor a DN
    per value (exdir.holders keeps those on disk): the Python heap's peak grows by
    under 420 bytes an entry from a 1,000- to an 8,000-mailbox lab (325 measured: the
    DN cache, bounded at 131,072 names, and the ids of a search); a DN per value in a
    dict was 519, holding every entry read 4,500 (586 MB at 100,000 mailboxes)."""
    import gc
    import tracemalloc

    from exdir import operations
    from exdir.backends.index import open_indexed

    peaks, sizes = [], []
    for n in (1000, 8000):
        path = tmp_path / f"lab{n}.ldif"
        path.write_text("".join(lab.generate(n)), encoding="utf-8")
        directory = open_indexed(str(path), warn=lambda m: None, index_dir=str(tmp_path / "i"))
        try:
            gc.collect()
            tracemalloc.start()
            try:
                checked = operations.audit(directory)
                peaks.append(tracemalloc.get_traced_memory()[1])
            finally:
                tracemalloc.stop()
            sizes.append(len(directory))
            assert checked.findings == [] or all(f.code for f in checked.findings)
        finally:
            directory.close()
    per_entry = (peaks[1] - peaks[0]) / (sizes[1] - sizes[0])
    assert per_entry < 420, per_entry
