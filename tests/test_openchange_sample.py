"""samples/openchange.ldif: an organisation shaped as OpenChange's provisioning leaves
it (issue 12, items 3 and 4), on the in-memory directory, slapd and Samba; and the
health checks' fixes, every one of them run on a copy of every sample.

The expectations are read from the LDIF with the `ldif` package (tests/test_samples.py's
parser), never from exdir's readers.
"""
from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from typing import Any, Callable

import pytest

from exdir import dn as dnu
from exdir.findings import NO_FIX
from tests.labs import SAMPLES, cli, server_options
from tests.test_samples import _make_samples, parse, slapadd_text

NAME = "openchange"
TEXT = (SAMPLES / f"{NAME}.ldif").read_text(encoding="utf-8")
ENTRIES = parse(TEXT)
MAILBOXES = [e for e in ENTRIES if e.get("homeMDB")]
STORE_LABEL = "OCSRV/First Storage Group/Mailbox Store (OCSRV)"


# --- the sample -----------------------------------------------------------------------------

def test_committed_sample_is_what_the_generator_writes() -> None:
    assert TEXT == _make_samples().text(NAME)


def test_the_sample_has_openchanges_quirks() -> None:
    classes = [e.classes for e in ENTRIES]
    assert not any("mta" in c for c in classes), "no MTA objects"
    org = next(e for e in ENTRIES if "msexchorganizationcontainer" in e.classes)
    assert not org.get("systemFlags") and not org.get("msExchMixedMode")
    server = next(e for e in ENTRIES if "msexchexchangeserver" in e.classes)
    assert server.text("serialNumber") == "Version 6.5 (Build 6944.4)"
    assert not server.get("msExchResponsibleMTAServer")
    assert len(MAILBOXES) >= 10
    for m in MAILBOXES:
        assert dnu.key(m.text("homeMTA")) == dnu.key(m.text("homeMDB"))  # the store
        assert not m.get("msExchHomeServerName")
        proxies = [str(p) for p in m.get("proxyAddresses")]
        assert f"=EX:{m.text('legacyExchangeDN')}" in proxies
    assert any("/CN=" in m.text("legacyExchangeDN") for m in MAILBOXES)
    assert any("/CN=" not in m.text("legacyExchangeDN") for m in MAILBOXES)


def test_the_sample_loads_into_slapd(slapd_factory: Callable[..., Any]) -> None:
    server = slapd_factory(slapadd_text(TEXT))
    stored = {dnu.key(dn) for dn in server.entries()}
    assert stored == {e.key for e in ENTRIES}


def test_the_sample_reads_on_samba(samba_factory: Callable[..., Any],
                                   capsys: pytest.CaptureFixture[str]) -> None:
    dc = samba_factory(TEXT)
    code, out, err = cli(capsys, *server_options(dc), "--json", "topology")
    assert code == 0, err
    topo = json.loads(out)
    assert topo["mtas"] == [] and topo["organization"]["mixed_mode"] is None
    assert topo["organization"]["system_flags"] is None
    code, out, err = cli(capsys, *server_options(dc), "--json", "legacydn", "audit")
    assert code == 1, err
    codes = {(f["code"], dnu.key(f["dn"])) for f in json.loads(out)["findings"]}
    assert codes == _expected_codes()
    _fixes_say_why_not(json.loads(out)["findings"])


# --- what the audits say of it ---------------------------------------------------------------

def _expected_codes() -> set[tuple[str, str]]:
    return ({("homemta-not-mta", m.key) for m in MAILBOXES}
            | {("home-server-missing", m.key) for m in MAILBOXES})


def _fixes_say_why_not(findings: list[dict[str, Any]]) -> None:
    for f in findings:
        assert f["fix"].startswith(NO_FIX), f
        assert "MTA" in f["fix"] and "--home-mta" in f["fix"], f


@pytest.mark.parametrize("command", [["legacydn", "audit"], ["adc", "check"]])
def test_the_audits_say_what_homemta_names_and_what_is_missing(
        capsys: pytest.CaptureFixture[str], command: list[str]) -> None:
    code, out, err = cli(capsys, "--ldif", str(SAMPLES / f"{NAME}.ldif"), "--json", *command)
    assert code == 1, err
    findings = json.loads(out)["findings"]
    assert {(f["code"], dnu.key(f["dn"])) for f in findings} == _expected_codes()
    for f in findings:
        if f["code"] == "homemta-not-mta":
            assert f"homeMTA names the mailbox store {STORE_LABEL}, not an MTA" in f["message"]
            assert "dangling" not in f["message"] and "names no MTA" not in f["message"]
        else:
            assert "no msExchHomeServerName" in f["message"]
    _fixes_say_why_not(findings)


def test_the_move_refusal_says_what_is_missing(capsys: pytest.CaptureFixture[str],
                                               tmp_path: Path) -> None:
    path = tmp_path / "oc.ldif"
    path.write_text(TEXT, encoding="utf-8")
    code, out, err = cli(capsys, "--ldif", str(path), "move", "ocuser010", "--to", STORE_LABEL,
                         "--apply")
    assert (code, out) == (1, ""), err
    assert "no MTA object" in err and "--home-mta" in err
    assert path.read_text(encoding="utf-8") == TEXT


# --- doctored copies of fabrikam: each kind of finding a fix exists for -------------------------

def _edit_mailbox(text: str, alias: str, edit: Callable[[str], str]) -> str:
    records = text.split("\n\n")
    hits = [i for i, r in enumerate(records) if f"\nmailNickname: {alias}\n" in r]
    assert len(hits) == 1, alias
    changed = edit(records[hits[0]])
    assert changed != records[hits[0]], alias
    records[hits[0]] = changed
    return "\n\n".join(records)


def _line(attribute: str) -> re.Pattern[str]:
    return re.compile(rf"^{attribute}: (.*)$", re.MULTILINE)


def _drop(attribute: str) -> Callable[[str], str]:
    return lambda r: _line(attribute).sub("", r).replace("\n\n", "\n")


def _homemta_is_store(record: str) -> str:
    store = _line("homeMDB").search(record)
    assert store is not None
    return _line("homeMTA").sub(f"homeMTA: {store.group(1)}", record)


def _split(record: str) -> str:
    return _line("homeMDB").sub(
        "homeMDB: CN=Mailbox Store (EX2),CN=First Storage Group,CN=InformationStore,CN=EX2,"
        "CN=Servers,CN=First Administrative Group,CN=Administrative Groups,CN=Fabrikam,"
        "CN=Microsoft Exchange,CN=Services,CN=Configuration,DC=fabrikam,DC=com", record)


def doctored(name: str) -> str:
    text = (SAMPLES / f"{name}.ldif").read_text(encoding="utf-8")
    for alias, edit in (("jsmith", _homemta_is_store), ("kakers", _drop("msExchHomeServerName")),
                        ("pcoleman", _drop("homeMTA")), ("dhall", _split)):
        text = _edit_mailbox(text, alias, edit)
    return text


def test_missing_home_attributes_are_findings(capsys: pytest.CaptureFixture[str],
                                              tmp_path: Path) -> None:
    path = tmp_path / "lab.ldif"
    path.write_text(doctored("fabrikam"), encoding="utf-8")
    code, out, err = cli(capsys, "--ldif", str(path), "--json", "adc", "check")
    assert code == 1, err
    found = {(f["code"], f["message"].split(":")[0]) for f in json.loads(out)["findings"]}
    assert found == {("homemta-not-mta", "jsmith"), ("home-server-missing", "kakers"),
                     ("homemta-missing", "pcoleman"), ("split", "dhall")}


def test_the_move_note_says_missing_not_split(capsys: pytest.CaptureFixture[str],
                                              tmp_path: Path) -> None:
    path = tmp_path / "lab.ldif"
    path.write_text(doctored("fabrikam"), encoding="utf-8")
    code, out, err = cli(capsys, "--ldif", str(path), "move", "kakers", "pcoleman", "--to",
                         "Mailbox Store (EX1)")
    assert code == 0, err
    assert "msExchHomeServerName missing" in out and "homeMTA missing" in out, out
    assert "split" not in out and "nothing known" not in out, out


# --- every printed fix of every sample works ---------------------------------------------------

SOURCES = {**{n: (SAMPLES / f"{n}.ldif").read_text(encoding="utf-8")
              for n in ("fabrikam", "fabrikam-multidc", "fabrikam-mixed", NAME)},
           **{f"{n}-doctored": doctored(n) for n in ("fabrikam", "fabrikam-mixed")}}


def _command(fix: str) -> list[str] | None:
    """The exdir arguments of a fix, None where the finding says no automatic fix exists."""
    if fix.startswith(NO_FIX):
        return None
    text = fix.removeprefix("stop the ADC, then ")
    words = shlex.split(text)
    assert words[0] == "exdir", f"a fix is a command or says {NO_FIX!r}: {fix!r}"
    return words[1:]


@pytest.mark.parametrize("name", sorted(SOURCES))
def test_every_printed_fix_exits_0_on_a_copy(name: str, capsys: pytest.CaptureFixture[str],
                                             tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # undo files land here
    source = tmp_path / "source.ldif"
    source.write_text(SOURCES[name], encoding="utf-8")
    fixes: list[str] = []
    for command in (["legacydn", "audit"], ["adc", "check"]):
        code, out, err = cli(capsys, "--ldif", str(source), "--json", *command)
        assert code in (0, 1), err
        fixes += [f["fix"] for f in json.loads(out)["findings"]]
    if name.endswith("-doctored"):
        assert any(_command(f) for f in fixes), fixes  # the test runs something
    for i, fix in enumerate(dict.fromkeys(fixes)):
        args = _command(fix)
        if args is None:
            continue
        copy = tmp_path / f"copy{i}.ldif"
        copy.write_text(SOURCES[name], encoding="utf-8")
        code, out, err = cli(capsys, "--ldif", str(copy), *args)
        assert code == 0, (fix, err)
        assert copy.read_text(encoding="utf-8") != SOURCES[name], fix  # it did something
