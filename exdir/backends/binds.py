"""Opening a bound connection to a real server: TLS, simple, NTLM and Kerberos binds.

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

AUTH_METHODS = ("simple", "ntlm", "kerberos")


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


def _kerberos_target(url: str, sasl_host: str | None) -> str:
    """The host of the service principal ldap/HOST: --sasl-host, else the URL's host,
    which must then be a name (a KDC issues tickets for names, never for addresses)."""
    import ipaddress
    from urllib.parse import urlsplit

    if sasl_host:
        return sasl_host
    host = urlsplit(url).hostname or ""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return host
    raise InputError(f"--auth kerberos: {url} names the DC by address; give --sasl-host with "
                     "its host name (the service principal is ldap/<host name>)")


def _kerberos_failure(url: str, host: str, exc: BaseException) -> ConnectionFailed:
    """One plain line for what the GSSAPI library reports (its major and minor texts)."""
    text = str(exc)
    lower = text.lower()
    if ("no kerberos credentials" in lower or "no credentials cache" in lower
            or "credentials cache file" in lower and "not found" in lower
            or "no credentials were supplied" in lower):
        why = "no Kerberos ticket: run kinit user@REALM first"
    elif "expired" in lower:
        why = "the Kerberos ticket has expired: run kinit again"
    elif "clock skew" in lower:
        why = ("this machine's clock and the KDC's differ by more than Kerberos allows: "
               "set the time (NTP)")
    elif "server not found in kerberos database" in lower or "unknown server" in lower:
        why = (f"the KDC knows no service principal ldap/{host}: name the DC as the domain "
               "knows it (its dNSHostName) in the URL or with --sasl-host")
    elif "cannot find kdc" in lower or "cannot contact any kdc" in lower or "realm" in lower:
        why = ("no KDC answers for the ticket's realm (wrong realm, or krb5.conf names no "
               "KDC for it)")
    else:
        why = f"Kerberos refused the bind: {plain(text.splitlines()[0] if text else repr(exc))}"
    return ConnectionFailed(f"{url}: {why}")


def _certificate_names(message: str) -> list[str]:
    """The names in ldap3's "certificate {...} doesn't match any name" message."""
    names = re.findall(r"\('DNS', '([^']+)'\)", message)
    return names or re.findall(r"\('commonName', '([^']+)'\)", message)


def connect(url: str, bind_dn: str | None = None, password: str | None = None, *,
            starttls: bool = False, ca_file: str | None = None, insecure: bool = False,
            timeout: int = 10, auth: str = "simple", sasl_host: str | None = None
            ) -> Connection:
    """An open connection to url, bound unless neither bind_dn nor password is given; ldaps and StartTLS verify the server's certificate (and that
    it names the host in the URL) unless insecure.

    auth: "simple" (a DN and password; use ldaps or StartTLS), "ntlm" (DOMAIN\\user,
    Microsoft's Sicily NTLM bind as ldap3 makes it; needs MD4 in hashlib) or "kerberos"
    (SASL GSSAPI with the ticket of the user's credential cache, `kinit` first; no
    password; the service principal ldap/<sasl_host or the URL's host>; needs the
    gssapi package, exdir's `kerberos` extra).
    """
    import ssl
    from urllib.parse import urlsplit

    from ldap3 import NONE, NTLM, SIMPLE, Tls
    from ldap3.core.exceptions import LDAPSessionTerminatedByServerError, LDAPStartTLSError

    if auth not in AUTH_METHODS:
        raise InputError(f"unknown --auth {auth!r} (simple, ntlm or kerberos)")
    if auth == "kerberos":
        return _kerberos(url, starttls=starttls, ca_file=ca_file, insecure=insecure,
                         timeout=timeout, sasl_host=sasl_host)
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


def _kerberos(url: str, *, starttls: bool, ca_file: str | None, insecure: bool,
              timeout: int, sasl_host: str | None) -> Connection:
    """The SASL GSSAPI bind (ldap3's, with the `gssapi` package): the ticket cache's
    principal, no password.  ldap3 negotiates no security layer, so the DC must accept
    a GSSAPI bind without signing (over ldap:// with `ldap server require strong auth
    = no`), or the connection must be TLS (ldaps:// or --starttls)."""
    import ssl

    from ldap3 import KERBEROS, NONE, SASL, Tls

    try:
        from gssapi.raw.misc import GSSError
    except ImportError:
        raise ConnectionFailed("--auth kerberos needs the gssapi package: pip install "
                               "'exdir[kerberos]' (and the system's Kerberos library)") from None
    _check_port(url)
    host = _kerberos_target(url, sasl_host)
    tls = None
    if url.lower().startswith("ldaps://") or starttls:
        tls = Tls(validate=ssl.CERT_NONE if insecure else ssl.CERT_REQUIRED,
                  ca_certs_file=ca_file)
    server = Server(url, get_info=NONE, tls=tls, connect_timeout=int(timeout))
    connection = Connection(server, authentication=SASL, sasl_mechanism=KERBEROS,
                            sasl_credentials=(host,), auto_referrals=False,
                            raise_exceptions=False, receive_timeout=int(timeout * 6))
    try:
        connection.open(read_server_info=False)
        if connection.closed:
            raise ConnectionFailed(f"cannot reach {url}")
        if starttls and not connection.start_tls(read_server_info=False):
            raise ConnectionFailed(f"{url}: the server refused StartTLS")
        bound = connection.bind(read_server_info=False)
    except GSSError as exc:
        raise _kerberos_failure(url, host, exc) from None
    except ConnectionFailed:
        raise
    except LDAPException as exc:
        if "socket" in str(exc).lower():
            raise ConnectionFailed(f"cannot reach {url}: {plain(str(exc))}") from None
        raise ConnectionFailed(f"{url}: the Kerberos bind failed: {plain(str(exc))}") from None
    if not bound:
        result = connection.result or {}
        message = str(result.get("message") or "")
        if "strong" in message.lower() or result.get("result") == 8:
            raise ConnectionFailed(f"{url}: the DC requires signing for a Kerberos bind, which "
                                   "exdir's LDAP library cannot do: use ldaps:// or --starttls")
        raise ConnectionFailed(f"{url}: the Kerberos bind was refused: "
                               f"{plain(str(result.get('description')))}")
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

