"""`exdir check` and the rename guards (issue 5, Deliver 3): the safety preflight on the
three samples, on a real slapd (not Active Directory), and what each finding blocks.

Expectations come from the samples' own data (samples/README.md): the DCs are read
from the files' nTDSDSA entries, the agreements from their msExchConnectionAgreement
entries, never typed in twice.
"""
from __future__ import annotations

import io
import json
from pathlib import Path

import ldif
import pytest

from exdir import dn as dnu
from exdir.checks import blocking, preflight
from exdir.findings import RENAMES, Finding, Operation
from exdir.backends.memory import open_ldif
from exdir.backends.ldap import open_url
from exdir.readers.topology import read_topology
from tests.labs import SAMPLES, cli, server_options
from tests.plans import slapd_state
from tests.servers.samba import MakeSamba
from tests.servers.slapd import MakeSlapd


def entries_of(name: str) -> list[tuple[str, dict[str, list[str]]]]:
    parser = ldif.LDIFParser(io.BytesIO((SAMPLES / name).read_bytes()), encoding=None)
    out = []
    for dn, record in parser.parse():
        if dn:
            out.append((dn, {k.lower(): [v.decode("utf-8", "replace") for v in vs]
                             for k, vs in record.items()}))
    return out


def dcs_of(name: str) -> list[tuple[str, bool]]:
    """(server name, read-only) of every nTDSDSA entry under CN=Sites in the file."""
    out = []
    for dn, attrs in entries_of(name):
        classes = {c.lower() for c in attrs.get("objectclass", [])}
        if "ntdsdsa" in classes or "ntdsdsaro" in classes:
            read_only = attrs.get("msds-isrodc", ["FALSE"])[0].upper() == "TRUE"
            out.append((dnu.rdn_value(dnu.parent(dn)), read_only))
    return out


def agreements_of(name: str) -> list[str]:
    return [dnu.rdn_value(dn) for dn, attrs in entries_of(name)
            if "msexchconnectionagreement" in {c.lower() for c in attrs.get("objectclass", [])}]


def test_single_dc_sample_passes(capsys: pytest.CaptureFixture[str]) -> None:
    (dc,) = dcs_of("fabrikam.ldif")
    code, out, err = cli(capsys, "--ldif", str(SAMPLES / "fabrikam.ldif"), "check")
    assert code == 0, err
    assert f"1 domain controller(s): {dc[0]}" in out
    assert "no findings" in out and "nothing blocks" in out
    assert "BLOCKS" not in out and "warning" not in out


def test_several_dcs_block_renames_and_are_all_listed(capsys: pytest.CaptureFixture[str]
                                                      ) -> None:
    dcs = dcs_of("fabrikam-multidc.ldif")
    assert len(dcs) == 3 and sum(ro for _, ro in dcs) == 1
    code, out, err = cli(capsys, "--ldif", str(SAMPLES / "fabrikam-multidc.ldif"), "check")
    assert code == 1, err
    assert f"{len(dcs)} domain controller(s)" in out
    blocks = [line for line in out.splitlines() if line.startswith("[BLOCKS rename]")]
    assert len(blocks) == 1
    for name, read_only in dcs:
        assert name in blocks[0]
        assert (f"{name} (read-only)" in out) is read_only
    assert "read-only" in blocks[0]


def test_mixed_mode_and_each_agreement_are_warned_about(capsys: pytest.CaptureFixture[str]
                                                        ) -> None:
    agreements = agreements_of("fabrikam-mixed.ldif")
    assert len(agreements) == 2
    code, out, err = cli(capsys, "--ldif", str(SAMPLES / "fabrikam-mixed.ldif"), "check")
    assert code == 0, err
    warnings = [line for line in out.splitlines() if line.startswith("[warning]")]
    assert len(warnings) == 2
    assert "mixed mode" in warnings[0] and "Fabrikam" in warnings[0]
    for name in agreements:
        assert name in warnings[1]
    assert "BLOCKS" not in out


def test_renames_on_the_mixed_sample_warn_but_proceed(tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "mixed.ldif"
    path.write_bytes((SAMPLES / "fabrikam-mixed.ldif").read_bytes())
    code, out, err = cli(capsys, "--ldif", str(path), "rename", "org", "Contoso", "--apply",
                         "--lab", "--undo-file", str(tmp_path / "undo.ldif"))
    assert code == 0, err
    assert "mixed mode" in err
    for name in agreements_of("fabrikam-mixed.ldif"):
        assert name in err
    # the ADC-disabled mailbox is no legacyExchangeDN: it stays as it is
    with open_ldif(str(path), warn=lambda m: None) as d:
        stamped = list(d.search(d.naming.domain, "(legacyExchangeDN=ADCDisabledMail)",
                                ("proxyAddresses",)))
    assert len(stamped) == 1 and not any(p.upper().startswith("X500:")
                                         for p in stamped[0].texts("proxyAddresses"))


@pytest.mark.parametrize("sample", ["fabrikam.ldif", "fabrikam-multidc.ldif",
                                    "fabrikam-mixed.ldif"])
def test_json_output(capsys: pytest.CaptureFixture[str], sample: str) -> None:
    code, out, err = cli(capsys, "--json", "--ldif", str(SAMPLES / sample), "check")
    data = json.loads(out)
    assert set(data) == {"directory", "domain_controllers", "findings"}
    assert sample in data["directory"]
    assert sorted((d["name"], d["read_only"]) for d in data["domain_controllers"]) == sorted(
        dcs_of(sample))
    for d in data["domain_controllers"]:
        assert set(d) == {"dn", "name", "site", "read_only", "dns_host_name", "invocation_id"}
        assert dnu.rdn_value(d["dn"]) == "NTDS Settings"
    for f in data["findings"]:
        assert set(f) == {"code", "severity", "message", "blocks"}
        assert f["severity"] in ("blocks", "warning")
        assert isinstance(f["blocks"], list) and bool(f["blocks"]) == (f["severity"] == "blocks")
    blocked = any(f["severity"] == "blocks" for f in data["findings"])
    assert code == (1 if blocked else 0)
    assert blocked == (len(dcs_of(sample)) > 1)
    assert {f["code"] for f in data["findings"]} == (
        {"several-dcs"} if sample == "fabrikam-multidc.ldif"
        else {"mixed-mode", "adc-agreements"} if sample == "fabrikam-mixed.ldif" else set())


def test_a_missing_rename_flag_is_a_finding(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                            ) -> None:
    text = (SAMPLES / "fabrikam.ldif").read_text(encoding="utf-8")
    head, sep, rest = text.partition("dn: CN=Europe,CN=Administrative Groups,")
    block, end, tail = rest.partition("\n\n")
    assert "\nsystemFlags: 1610612736" in block
    path = tmp_path / "lab.ldif"
    path.write_text(head + sep + block.replace("\nsystemFlags: 1610612736", "") + end + tail,
                    encoding="utf-8")
    code, out, err = cli(capsys, "--ldif", str(path), "check")
    assert code == 1, err
    (line,) = [line for line in out.splitlines() if line.startswith("[BLOCKS")]
    assert line.startswith("[BLOCKS rename admin-group Europe]")
    assert "FLAG_CONFIG_ALLOW_RENAME" in line and "'Europe'" in line


# --- what blocks what ------------------------------------------------------------------------

def test_blocking_matches_operations_and_lab() -> None:
    groups = "CN=Administrative Groups,CN=Fabrikam,CN=Microsoft Exchange,CN=Services,DC=x"
    europe, first = f"CN=Europe,{groups}", f"CN=First Administrative Group,{groups}"
    dcs = Finding("several-dcs", "2 DCs", "blocks", blocks=RENAMES)
    not_ad = Finding("not-ad", "not AD", "blocks", blocks=RENAMES, lab_lifts=True)
    flag = Finding("no-rename-flag", "no flag", "blocks",
                   blocks=(Operation.RENAME_ADMIN_GROUP,), subject=europe)
    note = Finding("mixed-mode", "mixed", "warning")
    every = [dcs, not_ad, flag, note]
    assert blocking(every, Operation.RENAME_ORG, lab=False) == [dcs, not_ad]
    assert blocking(every, Operation.RENAME_ORG, lab=True) == [dcs]
    assert blocking(every, Operation.RENAME_ADMIN_GROUP, subject=europe.upper(),
                    lab=True) == [dcs, flag]
    assert blocking(every, Operation.RENAME_ADMIN_GROUP, subject=first, lab=True) == [dcs]
    assert blocking(every, Operation.MOVE, lab=False) == []
    # what `exdir check` prints for each: the labels of the command-line contract
    assert [f.blocks_shown for f in every] == [["rename"], ["rename without --lab"],
                                               ["rename admin-group Europe"], []]


# --- a server that is not Active Directory --------------------------------------------------------

def test_slapd_is_not_ad_renames_need_lab(slapd_factory: MakeSlapd, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    server = slapd_factory((SAMPLES / "fabrikam.ldif").read_text(encoding="utf-8"))
    opts = server_options(server)
    code, out, err = cli(capsys, *opts, "check")
    assert code == 1, err
    (line,) = [line for line in out.splitlines() if line.startswith("[BLOCKS")]
    assert line.startswith("[BLOCKS rename without --lab]")
    assert "not Active Directory" in line and "--lab" in line
    with open_url(server.url, server.bind_dn, server.password) as d:
        findings = preflight(d, read_topology(d))
    assert [f.code for f in findings] == ["not-ad"]
    before = slapd_state(server)
    code, out, err = cli(capsys, *opts, "rename", "org", "Contoso", "--apply")
    assert code == 1 and "--lab" in err, err
    assert slapd_state(server) == before
    assert list(tmp_path.glob("*undo*")) == []
    code, out, err = cli(capsys, *opts, "rename", "org", "Contoso", "--apply", "--lab",
                         "--undo-file", str(tmp_path / "undo.ldif"))
    assert code == 0, err
    after = slapd_state(server)
    assert after != before
    assert not any(v.lower().startswith(b"/o=fabrikam")
                   for e in after.values() for n in ("legacyexchangedn", "msexchhomeservername")
                   for v in e.get(n, []))


def test_samba_is_active_directory_with_one_dc(samba_factory: MakeSamba,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    """A real AD (Samba) with its own single DC: nothing blocks, --lab is only the rename
    rule's, not a finding."""
    dc = samba_factory((SAMPLES / "fabrikam.ldif").read_text(encoding="utf-8"))
    opts = server_options(dc)
    code, out, err = cli(capsys, "--json", *opts, "check")
    assert code == 0, err
    data = json.loads(out)
    assert [d["name"] for d in data["domain_controllers"]] == [dc.host]
    assert data["findings"] == []
