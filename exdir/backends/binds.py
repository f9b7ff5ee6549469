"""Opening a bound connection to a real server: TLS, simple and NTLM binds.

Everything that can go wrong before the first search is turned here into one
plain ConnectionFailed or InputError (a certificate that names another host, a
refused StartTLS, Samba closing the connection at an NTLM bind), so that
exdir.backends.ldap only wraps a connection that works.
"""
from __future__ import annotations

import re

from ldap3 import Connection, Server
from ldap3.core.exceptions import LDAPException

from ..credentials import check_password
from ..errors import ConnectionFailed, InputError, plain

AUTH_METHODS = ("simple", "ntlm")


def md4_available() -> bool:
    """True where hashlib can compute MD4, which NTLM's password hash needs (OpenSSL 3
    moved MD4 to its legacy provider, so many platforms have none)."""
    import hashlib

    try:
        hashlib.new("md4", b"")
    except ValueError:
        return False
    return True


def _ntlm_user(bind_dn: str | None) -> str:
    if not bind_dn or "\\" not in bind_dn or bind_dn.startswith("\\") or bind_dn.endswith("\\"):
        raise InputError("--auth ntlm needs --bind-dn DOMAIN\\user")
    return bind_dn


def _certificate_names(message: str) -> list[str]:
    """The names in ldap3's "certificate {...} doesn't match any name" message."""
    names = re.findall(r"\('DNS', '([^']+)'\)", message)
    return names or re.findall(r"\('commonName', '([^']+)'\)", message)


def connect(url: str, bind_dn: str | None = None, password: str | None = None, *,
            starttls: bool = False, ca_file: str | None = None, insecure: bool = False,
            timeout: int = 10, auth: str = "simple") -> Connection:
    """An open connection to url, bound unless neither bind_dn nor password is given; ldaps and StartTLS verify the server's certificate (and that
    it names the host in the URL) unless insecure.

    auth: "simple" (a DN and password; use ldaps or StartTLS) or "ntlm" (DOMAIN\\user,
    Microsoft's Sicily NTLM bind as ldap3 makes it; needs MD4 in hashlib).
    """
    import ssl
    from urllib.parse import urlsplit

    from ldap3 import NONE, NTLM, SIMPLE, Tls
    from ldap3.core.exceptions import LDAPSessionTerminatedByServerError, LDAPStartTLSError

    if auth not in AUTH_METHODS:
        raise InputError(f"unknown --auth {auth!r} (simple or ntlm)")
    if auth == "ntlm":
        bind_dn = _ntlm_user(bind_dn)
        if not password:
            raise InputError("--auth ntlm needs a password (--password-file or EXDIR_PASSWORD)")
        if not md4_available():
            raise ConnectionFailed(
                "NTLM is not available here: this Python's hashlib has no MD4 (OpenSSL 3 "
                "keeps it in the legacy provider); bind with --auth simple over ldaps:// "
                "or --starttls instead")
    _check_port(url)
    if password:
        check_password(password)
    elif bind_dn and auth == "simple":
        raise InputError(f"--bind-dn {bind_dn} needs a password "
                         "(--password-file or EXDIR_PASSWORD)")
    tls = None
    if url.lower().startswith("ldaps://") or starttls:
        tls = Tls(validate=ssl.CERT_NONE if insecure else ssl.CERT_REQUIRED,
                  ca_certs_file=ca_file)
    try:
        server = Server(url, get_info=NONE, tls=tls, connect_timeout=int(timeout))
        connection = Connection(server, user=bind_dn, password=password,
                                authentication=NTLM if auth == "ntlm" else SIMPLE,
                                auto_referrals=False, raise_exceptions=False,
                                receive_timeout=int(timeout * 6))
        connection.open(read_server_info=False)
        if connection.closed:
            raise ConnectionFailed(f"cannot reach {url}")
        if starttls:
            try:
                started = connection.start_tls(read_server_info=False)
            except LDAPStartTLSError:
                started = False
            if not started:
                raise ConnectionFailed(f"{url}: the server refused StartTLS (it has no TLS "
                                       "certificate set up?): use ldaps:// if it offers that, "
                                       "or have TLS enabled on the server")
        if bind_dn or password:
            try:
                bound = connection.bind(read_server_info=False)
            except LDAPSessionTerminatedByServerError:
                if auth != "ntlm":
                    raise
                raise ConnectionFailed(
                    f"{url}: the server closed the connection at the NTLM bind: it does not "
                    "accept Microsoft's Sicily NTLM bind, the only NTLM ldap3 makes (Samba "
                    "AD does not implement it); bind with --auth simple over ldaps:// or "
                    "--starttls instead") from None
            if not bound:
                result = connection.result or {}
                raise ConnectionFailed(
                    f"{url}: bind as {bind_dn} refused: {plain(str(result.get('description')))}")
    except ConnectionFailed:
        raise
    except LDAPException as exc:
        text = str(exc)
        if "doesn't match any name" in text:
            names = _certificate_names(text)
            raise ConnectionFailed(
                f"{url}: the server's certificate is not issued to "
                f"{urlsplit(url).hostname or url}"
                + (f" (it names {', '.join(names)}): connect by that name" if names else "")
                + ", or give --insecure to skip verification") from None
        if "CERTIFICATE_VERIFY_FAILED" in text:
            raise ConnectionFailed(
                f"{url}: the server's certificate could not be verified (self-signed, or "
                "issued by a CA not trusted here): give --ca-file with the CA that issued "
                "it, or --insecure to skip verification") from None
        if "socket ssl wrapping error" in text:
            raise ConnectionFailed(
                f"{url}: the TLS handshake failed: the server closed the connection or does "
                "not speak TLS on this port (ldaps:// needs the TLS port, usually 636)") from None
        raise ConnectionFailed(f"cannot reach {url}: {text}") from None
    return connection


def _check_port(url: str) -> None:
    """InputError for a URL whose port is no port (ldap3 says "Source port must in
    range", or raises on a word)."""
    from urllib.parse import urlsplit

    if "://" not in url:
        return
    try:
        port = urlsplit(url).port
    except ValueError:
        port = 0
    if port == 0:
        raise InputError(f"{url}: the port must be a number from 1 to 65535")

