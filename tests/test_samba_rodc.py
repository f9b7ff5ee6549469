"""A real read-only domain controller (issue 15, item 5): a Samba RODC joined on 127.0.0.2.

exdir reads it, lists it read-only in the topology, and never writes to it: the
read-only gate (exdir.gates) refuses before the undo file, the writable DC unchanged.
An RODC keeps no administrator's password (Domain Admins are in the Denied RODC
Password Replication Group), so the test binds to it as a user whose password it
was allowed to cache (`samba-tool rodc preload`), as a branch-office reader would.
"""
from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from exdir.backends.ldap import open_url
from tests.labs import SAMPLE, cli, undo_files
from tests.plans import data_snapshot
from tests.servers.samba import DOMAIN, SECOND_ADDRESS, LoopbackAddress, SambaDC, _tool, join_dc

READER = "CN=reader,CN=Users,DC=fabrikam,DC=com"


def samba_tool(first: SambaDC, *args: str) -> None:
    env = {**os.environ, "KRB5_CONFIG": str(first.directory / "private" / "krb5.conf")}
    done = subprocess.run([_tool("samba-tool"), *args, "-U", f"{DOMAIN}\\Administrator",
                           f"--password={first.password}"], capture_output=True, text=True,
                          env=env, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


def options(dc: SambaDC) -> list[str]:
    return ["--url", dc.url, "--bind-dn", dc.bind_dn, "--password-file", str(dc.password_file)]


@pytest.mark.samba
def test_a_read_only_dc_is_read_and_never_written(samba_lab, samba_factory,  # type: ignore[no-untyped-def]
                                                   tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    first = samba_factory(SAMPLE.read_text(encoding="utf-8"))
    password = "Reader-" + first.password
    samba_tool(first, "user", "create", "reader", password, "-H", first.url)
    samba_tool(first, "group", "addmembers", "Allowed RODC Password Replication Group",
               "reader", "-H", first.url)
    with LoopbackAddress(SECOND_ADDRESS):
        rodc = join_dc(first, samba_lab.root / f"rodc-{time.monotonic_ns()}", host="RODC",
                       read_only=True)
        try:
            samba_tool(first, "rodc", "preload", "reader", f"--server={first.address}",
                       "-s", str(rodc.conf))
            rodc.bind_dn, rodc.password = READER, password
            rodc.start()
            # the topology, read through the writable DC, lists the RODC read-only
            code, out, err = cli(capsys, *options(first), "--json", "topology")
            assert code == 0, err
            dcs = {d["name"]: d["read_only"] for d in json.loads(out)["domain_controllers"]}
            assert dcs.get("RODC") is True and dcs.get("DC1") is False, dcs
            # the RODC is read (it holds the domain's recipients)
            code, out, err = cli(capsys, *options(rodc), "--json", "legacydn", "list")
            assert code == 0 and "/o=Fabrikam" in out, err
            # and never written: refused before the undo file, on the command and on apply
            with open_url(first.url, first.bind_dn, first.password) as d:
                before = data_snapshot(d)
            plan = tmp_path / "plan.ldif"
            code, out, err = cli(capsys, *options(first), "x500", "add", "jsmith",
                                 "X500:/o=Old/ou=Site/cn=Recipients/cn=jsmith")
            assert code == 0, err
            plan.write_text(out, encoding="utf-8")
            for argv in (["x500", "add", "jsmith", "X500:/o=Old/ou=Site/cn=Recipients/cn=jsmith",
                          "--apply"], ["apply", str(plan), "--apply"]):
                code, out, err = cli(capsys, *options(rodc), *argv)
                assert code == 1, (argv, out, err)
                assert "is a read-only domain controller" in err and "nothing written" in err
                assert undo_files(tmp_path) == []
            with open_url(first.url, first.bind_dn, first.password) as d:
                assert data_snapshot(d) == before
        finally:
            rodc.cleanup()
