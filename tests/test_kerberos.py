"""`--auth kerberos`: SASL GSSAPI binds with the user's ticket, against the Samba DC's own KDC
(issue 15, item 6).

The test writes its own krb5.conf (the realm's KDC on 127.0.0.1, no DNS lookups),
gets a ticket with `kinit Administrator@FABRIKAM.COM` into a credential cache of its
own, and runs exdir as a child process with that environment: reads, an apply and
`replication check` over the Kerberos bind; and each failure an administrator meets
(no ticket, an expired one, a principal the KDC does not know, an address without
--sasl-host) as one plain line, exit 2, no password anywhere.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Iterator

import pytest

from tests.labs import SAMPLE, exdir_argv, process_env
from tests.servers.samba import REALM, SambaDC
from tests.servers.slapd import ci_required

KINIT = shutil.which("kinit")
HOSTS = Path("/etc/hosts")
DC1_NAME = "dc1.fabrikam.com"
KRB5_CONF = f"""[libdefaults]
    default_realm = {REALM}
    dns_lookup_realm = false
    dns_lookup_kdc = false
    rdns = false
    dns_canonicalize_hostname = false
    ignore_acceptor_hostname = true

[realms]
    {REALM} = {{
        kdc = 127.0.0.1
    }}

[domain_realm]
    .fabrikam.com = {REALM}
    fabrikam.com = {REALM}
"""


class HostsEntry:
    """`ADDRESS NAME` in /etc/hosts for the duration of a with block (the DC's name must
    resolve: a KDC issues tickets for names); only the line added is removed."""

    def __init__(self, address: str, name: str) -> None:
        self.line = f"{address} {name}  # exdir test\n"
        self.added = False

    def __enter__(self) -> "HostsEntry":
        text = HOSTS.read_text()
        if self.line not in text:
            with HOSTS.open("a") as fh:
                fh.write(("" if text.endswith("\n") else "\n") + self.line)
            self.added = True
        return self

    def __exit__(self, *exc: object) -> None:
        if self.added:
            HOSTS.write_text(HOSTS.read_text().replace(self.line, ""))


def register_ldap_spn(dc: SambaDC) -> None:
    """The DC's `ldap/<host>` service principal names, as samba_spnupdate registers them
    on a DC running Samba's dnsupdate service (the test DC runs only ldap, cldap, kdc,
    drepl and rpc: without this the KDC knows no ldap/ principal at all)."""
    from ldap3 import MODIFY_ADD

    account = "CN=DC1,OU=Domain Controllers,DC=fabrikam,DC=com"
    with dc.connection() as conn:
        conn.search(account, "(objectClass=computer)", search_scope="BASE",
                    attributes=["servicePrincipalName"])
        have = {str(v).lower() for v in conn.entries[0].servicePrincipalName.values} \
            if conn.entries else set()
        wanted = [spn for spn in (f"ldap/{DC1_NAME}", "ldap/DC1") if spn.lower() not in have]
        if wanted:
            assert conn.modify(account, {"servicePrincipalName": [(MODIFY_ADD, wanted)]}), \
                conn.result


class Kerberos:
    """A krb5.conf and a credential cache of the test's own."""

    def __init__(self, folder: Path, dc: SambaDC) -> None:
        self.folder = folder
        self.dc = dc
        self.conf = folder / "krb5.conf"
        self.conf.write_text(KRB5_CONF)
        self.cache = folder / "ccache"

    def env(self, cache: Path | None = None) -> dict[str, str]:
        return {**process_env(), "KRB5_CONFIG": str(self.conf),
                "KRB5CCNAME": f"FILE:{cache or self.cache}"}

    def kinit(self, *args: str) -> None:
        assert KINIT is not None
        done = subprocess.run([KINIT, *args, f"Administrator@{REALM}"],
                              input=self.dc.password + "\n", capture_output=True, text=True,
                              env=self.env(), timeout=30)
        assert done.returncode == 0, done.stdout + done.stderr

    def exdir(self, *args: str, cache: Path | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(exdir_argv(*args), capture_output=True, text=True,
                              env=self.env(cache), cwd=self.folder, timeout=120)


@pytest.fixture
def kerberos(samba_factory, tmp_path: Path) -> Iterator[Kerberos]:  # type: ignore[no-untyped-def]
    if KINIT is None:
        if ci_required():
            pytest.fail("kinit missing: CI must install krb5-user")
        pytest.skip("kinit missing (apt-get install krb5-user)")
    try:
        import gssapi  # noqa: F401
    except ImportError:
        if ci_required():
            raise
        pytest.skip("the gssapi package is missing (pip install 'exdir[kerberos]')")
    dc = samba_factory(SAMPLE.read_text(encoding="utf-8"))
    register_ldap_spn(dc)
    if not os.access(HOSTS, os.W_OK):
        pytest.skip("/etc/hosts is not writable: the DC's name cannot be made to resolve")
    with HostsEntry(dc.address, DC1_NAME):
        k = Kerberos(tmp_path, dc)
        k.kinit()
        yield k


def one_line(done: subprocess.CompletedProcess[str], *words: str) -> None:
    assert done.returncode == 2, (done.returncode, done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    for w in words:
        assert w in lines[0], (w, lines[0])


@pytest.mark.samba
def test_reads_writes_and_replication_check_over_a_kerberos_bind(
        kerberos: Kerberos) -> None:
    url = f"ldap://{DC1_NAME}"
    done = kerberos.exdir("--url", url, "--auth", "kerberos", "--json", "topology")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["organization"]["name"] == "Fabrikam"
    # the DC by address, its principal named with --sasl-host
    done = kerberos.exdir("--url", kerberos.dc.url, "--auth", "kerberos", "--sasl-host",
                          DC1_NAME, "legacydn", "list", "--prefix", "/o=Fabrikam/ou=Europe")
    assert done.returncode == 0 and "cn=adupont" in done.stdout.lower(), done.stderr
    # a write, then every DC of the topology checked over the same bind
    plan = kerberos.folder / "plan.ldif"
    done = kerberos.exdir("--url", url, "--auth", "kerberos", "x500", "add", "jsmith",
                          "X500:/o=Old/ou=Site/cn=Recipients/cn=jsmith")
    assert done.returncode == 0, done.stderr
    plan.write_text(done.stdout, encoding="utf-8")
    done = kerberos.exdir("--url", url, "--auth", "kerberos", "apply", str(plan), "--apply",
                          "--undo-file", str(kerberos.folder / "undo.ldif"))
    assert done.returncode == 0, done.stderr
    done = kerberos.exdir("--url", url, "--auth", "kerberos", "replication", "check",
                          str(plan), "--dc", url)
    assert done.returncode == 0 and "converged: 1/1 step(s) show" in done.stdout, \
        done.stdout + done.stderr
    assert kerberos.dc.password not in done.stdout + done.stderr


@pytest.mark.samba
def test_each_kerberos_failure_is_one_plain_line(kerberos: Kerberos) -> None:
    url = f"ldap://{DC1_NAME}"
    one_line(kerberos.exdir("--url", url, "--auth", "kerberos", "topology",
                            cache=kerberos.folder / "no-such-cache"), "no Kerberos ticket", "kinit")
    one_line(kerberos.exdir("--url", kerberos.dc.url, "--auth", "kerberos", "topology"),
             "--sasl-host")
    one_line(kerberos.exdir("--url", url, "--auth", "kerberos", "--sasl-host",
                            "nosuch.fabrikam.com", "topology"),
             "knows no service principal ldap/nosuch.fabrikam.com")
    kerberos.kinit("-l", "3s")
    time.sleep(4)
    one_line(kerberos.exdir("--url", url, "--auth", "kerberos", "topology"), "expired")
