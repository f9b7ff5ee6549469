"""Binding as administrators do: StartTLS with certificate checks, against a real slapd.

The test makes its own CA and a server certificate for 127.0.0.1 with openssl,
turns TLS on in the running slapd's cn=config, and checks that exdir verifies the
certificate: accepted with the CA file, refused without it (one line, exit 2),
accepted with --insecure. The password is read from a file or EXDIR_PASSWORD and
appears in no output.
"""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from commands.main import main
from exdir.backends.ldap import open_url
from exdir.errors import ConnectionFailed

SAMPLE = Path(__file__).parent.parent / "samples" / "fabrikam.ldif"


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture
def tls_slapd(slapd_factory, tmp_path: Path):  # type: ignore[no-untyped-def]
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    d = tmp_path / "pki"
    d.mkdir()
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
             "/CN=exdir test CA", "-keyout", "ca.key", "-out", "ca.pem",
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=d)
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
             "-keyout", "server.key", "-out", "server.csr", cwd=d)
    (d / "ext.cnf").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    _openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
             "-CAcreateserial", "-days", "2", "-out", "server.pem", "-extfile", "ext.cnf",
             cwd=d)
    server = slapd_factory(SAMPLE.read_text(encoding="utf-8"))
    result = server.ldapmodify(
        "dn: cn=config\nchangetype: modify\n"
        f"replace: olcTLSCACertificateFile\nolcTLSCACertificateFile: {d / 'ca.pem'}\n-\n"
        f"replace: olcTLSCertificateFile\nolcTLSCertificateFile: {d / 'server.pem'}\n-\n"
        f"replace: olcTLSCertificateKeyFile\nolcTLSCertificateKeyFile: {d / 'server.key'}\n-\n",
        config=True)
    assert result.returncode == 0, result.stderr
    return server, d / "ca.pem"


def test_starttls_verified_with_the_ca_file(tls_slapd) -> None:  # type: ignore[no-untyped-def]
    server, ca = tls_slapd
    directory = open_url(server.url, server.bind_dn, server.password, starttls=True,
                         ca_file=str(ca))
    try:
        assert directory.connection.tls_started
        assert directory.read("DC=fabrikam,DC=com") is not None
    finally:
        directory.close()


def test_starttls_refused_without_the_ca(tls_slapd) -> None:  # type: ignore[no-untyped-def]
    server, _ca = tls_slapd
    with pytest.raises(ConnectionFailed):
        open_url(server.url, server.bind_dn, server.password, starttls=True)


def test_starttls_insecure_is_explicit(tls_slapd) -> None:  # type: ignore[no-untyped-def]
    server, _ca = tls_slapd
    directory = open_url(server.url, server.bind_dn, server.password, starttls=True,
                         insecure=True)
    try:
        assert directory.connection.tls_started
    finally:
        directory.close()


def test_cli_starttls_one_line_and_no_password(tls_slapd, capsys, monkeypatch  # type: ignore[no-untyped-def]
                                               ) -> None:
    server, ca = tls_slapd
    base = ["--url", server.url, "--bind-dn", server.bind_dn, "--starttls"]
    monkeypatch.delenv("EXDIR_PASSWORD", raising=False)
    code = main([*base, "--password-file", str(server.password_file), "--ca-file", str(ca),
                 "topology"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "EX1" in out and server.password not in out + err

    code = main([*base, "--password-file", str(server.password_file), "topology"])
    out, err = capsys.readouterr()
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert "certificate" in err.lower(), err
    assert server.password not in out + err

    monkeypatch.setenv("EXDIR_PASSWORD", server.password)
    code = main([*base, "--insecure", "topology"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert server.password not in out + err
