"""The Samba AD DC fixture itself: templates, fresh copies, clean stops, the skip policy.

The suite's claims about Active Directory rest on these DCs, so the machinery is
tested like code: each test gets its own copy (a write in one copy is not seen by
the next), a stopped DC leaves no process and no listener, the organisation is
loaded where AD keeps it (configuration objects in the configuration NC,
recipients in the domain NC), and a machine without Samba skips with one line.
"""
from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path

import pytest
from ldap3 import MODIFY_REPLACE

from exdir import dn as dnu
from exdir.backends.ldap import open_url
from tests.servers import samba as samba_mod
from tests.servers.samba import (
    CONFIG_DN,
    DOMAIN_DN,
    SambaDC,
    SambaError,
    SambaLab,
    configure,
    dn_key,
    port_in_use,
    require_samba,
    unavailable_reason,
)

ROOT = Path(__file__).parent.parent
SCENARIO = (ROOT / "tests" / "data" / "scenario.ldif").read_text(encoding="utf-8")
SAMPLE = (ROOT / "samples" / "fabrikam.ldif").read_text(encoding="utf-8")
ORG = f"CN=Fabrikam,CN=Microsoft Exchange,CN=Services,{CONFIG_DN}"
JOHN = f"CN=Smith\\, John,OU=Staff,{DOMAIN_DN}"


# --- the skip / fail policy (no server needed) -------------------------------------------

def test_missing_samba_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(samba_mod, "find_tool",
                        lambda name: None if name == "samba" else "/bin/true")
    reason = unavailable_reason()
    assert reason is not None and "\n" not in reason
    assert "missing samba" in reason and "apt-get install samba" in reason


def test_skips_outside_ci_and_fails_in_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(samba_mod, "unavailable_reason", lambda address="": "no samba here")
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="no samba here"):
        require_samba()
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI is set"):
        require_samba()


@pytest.mark.samba
def test_busy_port_is_reported() -> None:
    """A foreign listener on 127.0.0.2:389 (not an exdir DC): one clear line."""
    if os.geteuid() != 0:
        pytest.skip("binding port 389 needs root")
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.2", 389))
        except OSError as exc:
            pytest.skip(f"cannot bind 127.0.0.2:389 here: {exc}")
        s.listen(1)
        reason = samba_mod.unavailable_reason("127.0.0.2")
    assert reason is not None and "127.0.0.2:389" in reason and "in use" in reason


def test_configure_rewrites_global_only(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    conf = tmp_path / "etc" / "smb.conf"
    conf.write_text("# Global parameters\n[global]\n\tlog file = /var/log/samba/log.%m\n"
                    "\tserver services = s3fs, rpc, nbt\n\tworkgroup = FABRIKAM\n\n"
                    "[sysvol]\n\tpath = /x/sysvol\n\tread only = No\n")
    configure(tmp_path, "127.0.0.1")
    text = conf.read_text()
    globals_part, _, shares = text.partition("[sysvol]")
    assert f"log file = {tmp_path}/log/log.%m" in globals_part
    assert "server services = ldap, cldap, kdc, drepl, rpc" in globals_part
    assert "ldap server require strong auth = no" in globals_part
    assert "workgroup = FABRIKAM" in globals_part
    assert globals_part.count("server services") == 1 and "/var/log" not in text
    assert "path = /x/sysvol" in shares and "log file" not in shares
    assert all((tmp_path / d).is_dir() for d in ("run", "log", "cache"))


# --- templates and copies -------------------------------------------------------------------------

def test_each_test_gets_a_fresh_copy(samba_factory, samba_lab: SambaLab) -> None:  # type: ignore[no-untyped-def]
    first = samba_factory(SCENARIO)
    with first.connection() as conn:
        assert conn.modify(JOHN, {"mailNickname": [(MODIFY_REPLACE, ["changed"])]}), conn.result
    first.cleanup()
    assert not first.directory.exists()
    second = samba_factory(SCENARIO)
    assert second.directory != first.directory
    directory = open_url(second.url, second.bind_dn, second.password)
    try:
        assert directory.read(JOHN).text("mailNickname") == "jsmith"  # type: ignore[union-attr]
    finally:
        directory.close()
    # the copy names its own directory only: smb.conf was the one file naming the template
    template = samba_lab.template(SCENARIO).path
    found = subprocess.run(["grep", "-rlaF", str(template), str(second.directory)],
                           capture_output=True, text=True)
    assert found.stdout == "", found.stdout


def test_stop_leaves_no_process_and_no_listener(samba_factory) -> None:  # type: ignore[no-untyped-def]
    dc: SambaDC = samba_factory(SCENARIO)
    pid = dc.pid
    assert pid is not None and dc.running and port_in_use(dc.address, 389)
    assert dc.started_in is not None and dc.started_in < 10
    dc.stop(graceful=True)  # closing stdin: samba exits by itself
    assert not dc.running
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert not port_in_use(dc.address, 389) and not port_in_use(dc.address, 636)


def test_second_dc_on_the_same_address_fails_fast(samba_factory) -> None:  # type: ignore[no-untyped-def]
    samba_factory(SCENARIO)
    began = time.monotonic()
    with pytest.raises(SambaError, match="already runs on 127.0.0.1"):
        samba_factory(SCENARIO)
    assert time.monotonic() - began < 5  # no waiting for our own lock


def test_samba_exits_when_its_parent_goes(samba_factory) -> None:  # type: ignore[no-untyped-def]
    """`samba -i` ends at EOF on stdin, so a killed test run leaves no DC behind."""
    dc: SambaDC = samba_factory(SCENARIO)
    proc = dc._proc
    assert proc is not None and proc.stdin is not None
    proc.stdin.close()  # what the kernel does when the test process dies
    assert proc.wait(timeout=10) == 0
    dc.stop()
    assert not port_in_use(dc.address, 389)


# --- the organisation, where Active Directory keeps it --------------------------------------------

def test_sample_loaded_into_the_real_partitions(samba_factory, samba_lab: SambaLab  # type: ignore[no-untyped-def]
                                                ) -> None:
    dc: SambaDC = samba_factory(SAMPLE)
    loaded = samba_lab.load_result(SAMPLE)
    # the server's own objects were there already and left alone
    assert {dn_key(d) for d in loaded.existing} >= {dn_key(DOMAIN_DN), dn_key(CONFIG_DN),
                                                    dn_key(f"CN=Services,{CONFIG_DN}")}
    assert dn_key(f"CN=NTDS Settings,CN=DC1,CN=Servers,CN=Default-First-Site-Name,"
                  f"CN=Sites,{CONFIG_DN}") in {dn_key(d) for d in loaded.existing}
    sample_dns = [line for line in SAMPLE.splitlines() if line.startswith(("dn:", "dn::"))]
    assert len(loaded.added) + len(loaded.existing) == len(sample_dns)
    directory = open_url(dc.url, dc.bind_dn, dc.password)
    try:
        assert directory.is_active_directory and directory.follows_dn_references
        assert dnu.key(directory.naming.configuration) == dnu.key(CONFIG_DN)
        assert dnu.key(directory.naming.domain) == dnu.key(DOMAIN_DN)
        # separate partitions: a subtree search of the domain NC does not reach the
        # configuration NC, where the organisation lives
        in_domain = list(directory.search(DOMAIN_DN, "(objectClass=msExchOrganizationContainer)",
                                          ("cn",)))
        in_config = list(directory.search(CONFIG_DN, "(objectClass=msExchOrganizationContainer)",
                                          ("cn",)))
        assert in_domain == [] and [dnu.key(e.dn) for e in in_config] == [dnu.key(ORG)]
        mailboxes = list(directory.search(DOMAIN_DN, "(homeMDB=*)", ("homeMDB",)))
        assert len(mailboxes) == SAMPLE.count("\nhomeMDB:")
        # a DN value names a real object: AD keeps the back link on the store
        store = directory.read(mailboxes[0].text("homeMDB") or "", ("homeMDBBL",))
        assert store is not None and store.get("homeMDBBL")
    finally:
        directory.close()
