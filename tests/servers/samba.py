"""A real Active Directory for the suite: Samba's AD domain controller on loopback.

slapd proves exdir on a real LDAP server, but it is not Active Directory: no
rootDSE capabilities, no nTDSDSA objects of its own, no schema NC, and it leaves
DN references stale after a rename.  Samba's AD DC is an independent
implementation of AD that provisions in seconds (recipe and measurements:
docs/servers.md, "Samba").

Provisioning and extending the schema take ~10 s, so a session builds TEMPLATE
directories once (a stopped DC: provisioned, TLS keys generated, schema
extended, optionally loaded with an LDIF organisation) and every test gets a
fresh copy (cp -a; smb.conf is the only file naming the directory) started
anew in well under a second.

Samba's LDAP port is fixed at 389/636, so one DC runs on 127.0.0.1 at a time
(a joined second DC lives on 127.0.0.2).  `samba -i` runs in the foreground and
exits when its stdin closes: the DC holds the write end of a pipe, so a test
process that dies takes its servers with it.
"""
from __future__ import annotations

import atexit
import fcntl
import hashlib
import io
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Callable, Mapping, Sequence

import ldif
import pytest
from ldap3 import BASE, MODIFY_ADD, NONE, SUBTREE, Connection, Server
from ldap3.core.exceptions import LDAPException
from ldap3.utils.conv import escape_filter_chars
from ldap3.utils.dn import parse_dn

from tests.servers.slapd import ci_required

REALM = "FABRIKAM.COM"
DOMAIN = "FABRIKAM"
DOMAIN_DN = "DC=fabrikam,DC=com"
CONFIG_DN = f"CN=Configuration,{DOMAIN_DN}"
SCHEMA_DN = f"CN=Schema,{CONFIG_DN}"
ADMIN_DN = f"CN=Administrator,CN=Users,{DOMAIN_DN}"
FIRST_HOST = "DC1"
FIRST_ADDRESS = "127.0.0.1"
SECOND_HOST = "DC2"
SECOND_ADDRESS = "127.0.0.2"
LDAP_PORTS = (389, 636)
# smb.conf [global] settings a test DC needs beyond what provision writes (the
# options given to provision are not all saved): only LDAP and the services a
# join uses, simple binds on 389, schema changes over LDAP, every socket, pid and
# log file inside the instance directory.
SERVER_SERVICES = "ldap, cldap, kdc, drepl, rpc"
_TOOLS = ("samba", "samba-tool")
_CLIENT_TOOLS = ("ldapmodify",)
_SBIN = ("/usr/sbin", "/sbin", "/usr/local/sbin")
_CLIENT_ENV = {**os.environ, "LDAPNOINIT": "1"}
_LOG_TAIL_LINES = 40
REPO_ROOT = Path(__file__).resolve().parents[2]
LOCK_WAIT = 300.0  # seconds to wait for another test session's DC on the same address

Entries = dict[str, dict[str, list[str | bytes]]]


class SambaError(RuntimeError):
    """Samba or one of its tools failed; the message carries the tool's own output."""


# --- tool discovery and the skip/fail policy ---------------------------------------------

def find_tool(name: str) -> str | None:
    """The path of a Samba or OpenLDAP program; /usr/sbin is searched even when not on PATH."""
    return shutil.which(name, path=os.pathsep.join([os.environ.get("PATH", ""), *_SBIN]))


def _tool(name: str) -> str:
    path = find_tool(name)
    if path is None:
        raise SambaError(f"{name} not found (apt-get install samba samba-ad-dc krb5-user "
                         "winbind ldap-utils)")
    return path


def port_in_use(address: str, port: int) -> bool:
    """True when something accepts TCP connections on address:port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        return s.connect_ex((address, port)) == 0


class AddressLock:
    """An exclusive lock on address:389 among exdir test sessions on this machine.

    The ports are fixed, so two pytest runs (two developers, or a run beside an
    editor's test-on-save) would collide; the second waits for the first's DC.
    """

    def __init__(self, address: str) -> None:
        self.path = Path(tempfile.gettempdir()) / f"exdir-samba-{address}.lock"
        self._fd: int | None = None

    def acquire(self, timeout: float) -> bool:
        if self._fd is not None:
            return True
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                self._fd = fd
                return True
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    os.close(fd)
                    return False
                time.sleep(0.1)

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def held_elsewhere(self) -> bool:
        """True while another exdir session runs a DC on this address."""
        if self._fd is not None:
            return False
        if not self.acquire(0):
            return True
        self.release()
        return False


def unavailable_reason(address: str = FIRST_ADDRESS) -> str | None:
    """Why a Samba AD DC cannot run here (one line), or None when it can.

    Ports held by another exdir test session's DC do not count: start() waits."""
    missing = [t for t in (*_TOOLS, *_CLIENT_TOOLS) if find_tool(t) is None]
    if missing:
        return (f"Samba AD DC not installed (missing {', '.join(missing)}): apt-get install "
                "samba samba-ad-dc krb5-user winbind ldap-utils, or run scripts/test.sh")
    if os.geteuid() != 0:
        return "Samba AD DC tests need root (samba binds ports 389/636)"
    busy = [p for p in LDAP_PORTS if port_in_use(address, p)]
    if busy and not AddressLock(address).held_elsewhere():
        return (f"{address}:{'/'.join(map(str, busy))} is in use (another LDAP server?); "
                "Samba AD DC tests need ports 389 and 636 on that address")
    return None


def require_samba(address: str = FIRST_ADDRESS) -> None:
    """Skip the calling test with one line when Samba cannot run — fail it when CI is set."""
    reason = unavailable_reason(address)
    if reason is None:
        return
    if ci_required():
        pytest.fail(f"{reason}; CI is set, so the Samba tests must run", pytrace=False)
    pytest.skip(reason)


# --- small helpers ---------------------------------------------------------------------------

def _tail(path: Path, lines: int = _LOG_TAIL_LINES) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:]) or "(log empty)"


def _run(args: Sequence[str], what: str, *, env: Mapping[str, str] | None = None,
         input_text: str | None = None) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(list(args), capture_output=True, text=True, input=input_text,
                            env=dict(env) if env is not None else None)
    if result.returncode != 0:
        output = (result.stderr + result.stdout).strip().splitlines()
        raise SambaError(f"{Path(args[0]).name} failed {what} (exit {result.returncode}):\n"
                         + "\n".join(output[-_LOG_TAIL_LINES:]))
    return result


def _dn_depth(dn: str) -> int:
    return len(parse_dn(dn, escape=False, strip=True))


def dn_key(dn: str) -> str:
    """A comparable form of a DN: RDNs parsed, spacing dropped, case folded."""
    rdns = parse_dn(dn, escape=True, strip=True)
    return ",".join(f"{a.lower()}={v.lower()}" for a, v, _ in rdns)


def parse_ldif_entries(text: str) -> Entries:
    """Entry records of an LDIF text as {dn: {attribute: values}}; bytes where not UTF-8."""
    parser = ldif.LDIFParser(io.BytesIO(text.encode("utf-8")), strict=True)
    out: Entries = {}
    for dn, entry in parser.parse():
        if dn is None:
            continue
        out[dn] = {attr: list(values) for attr, values in entry.items()}
    return out


def generated_password() -> str:
    """An administrator password Samba's complexity rules accept, fresh per session."""
    return "Ex-" + secrets.token_urlsafe(15) + "-9a"


# --- provisioning and configuration ------------------------------------------------------------

def configure(directory: Path, address: str) -> None:
    """Rewrite smb.conf [global] for a test DC living entirely inside directory."""
    conf = directory / "etc" / "smb.conf"
    text = conf.read_text()
    wanted = {
        "log file": f"{directory}/log/log.%m",
        "pid directory": f"{directory}/run",
        "server services": SERVER_SERVICES,
        "interfaces": address,
        "bind interfaces only": "yes",
        "ldap server require strong auth": "no",
        "dsdb:schema update allowed": "true",
        "ntp signd socket directory": f"{directory}/run/ntp",
        "winbindd socket directory": f"{directory}/run/winbindd",
    }
    lines = text.splitlines()
    try:
        start = next(i for i, line in enumerate(lines) if line.strip().lower() == "[global]")
    except StopIteration:
        raise SambaError(f"{conf}: no [global] section") from None
    end = next((i for i in range(start + 1, len(lines)) if lines[i].lstrip().startswith("[")),
               len(lines))
    kept = [line for line in lines[start + 1:end]
            if line.split("=", 1)[0].strip().lower() not in wanted]
    settings = [f"\t{k} = {v}" for k, v in wanted.items()]
    conf.write_text("\n".join([*lines[:start + 1], *kept, *settings, "", *lines[end:]]) + "\n")
    for sub in ("run", "log", "cache"):
        (directory / sub).mkdir(exist_ok=True)


def provision(directory: Path, password: str, *, host: str = FIRST_HOST,
              address: str = FIRST_ADDRESS) -> None:
    """samba-tool domain provision into directory (DNS off), then configure it."""
    _run([_tool("samba-tool"), "domain", "provision", f"--realm={REALM}", f"--domain={DOMAIN}",
          "--server-role=dc", "--dns-backend=NONE", f"--adminpass={password}",
          f"--targetdir={directory}", f"--host-name={host}",
          f"--option=interfaces={address}", "--option=bind interfaces only=yes"],
         "provisioning the domain")
    configure(directory, address)


_LIVE: set["SambaDC"] = set()


@atexit.register
def _stop_leftovers() -> None:
    """Never leave a DC running when the interpreter exits (stdin EOF does it too)."""
    for dc in list(_LIVE):
        try:
            dc.stop()
        except Exception:  # pragma: no cover - best effort at exit
            pass


# --- the server ----------------------------------------------------------------------------------

class SambaDC:
    """One Samba AD DC on ldap://ADDRESS (389, ldaps 636), living in `directory`.

    owns_directory: the directory is removed by cleanup() (copies of a template).
    """

    def __init__(self, directory: Path, password: str, *, address: str = FIRST_ADDRESS,
                 host: str = FIRST_HOST, owns_directory: bool = True,
                 start_timeout: float = 30.0) -> None:
        self.directory = directory
        self.password = password
        self.address = address
        self.host = host
        self.owns_directory = owns_directory
        self.start_timeout = start_timeout
        self.bind_dn = ADMIN_DN
        self.domain_dn = DOMAIN_DN
        self.config_dn = CONFIG_DN
        self.schema_dn = SCHEMA_DN
        self.started_in: float | None = None  # seconds from launch to a working bind
        self._proc: subprocess.Popen[bytes] | None = None
        self._lock = AddressLock(address)

    # paths and addresses ----------------------------------------------------------------
    @property
    def conf(self) -> Path:
        return self.directory / "etc" / "smb.conf"

    @property
    def url(self) -> str:
        return f"ldap://{self.address}"

    @property
    def ldaps_url(self) -> str:
        return f"ldaps://{self.address}"

    @property
    def dns_name(self) -> str:
        """The name Samba's self-signed certificate is issued to."""
        return f"{self.host}.{REALM.lower()}"

    @property
    def ca_file(self) -> Path:
        """Samba's self-signed CA (generated at the first start)."""
        return self.directory / "private" / "tls" / "ca.pem"

    @property
    def password_file(self) -> Path:
        """The administrator password alone (no newline), mode 0600, for ldap* -y."""
        path = self.directory / "exdir-password"
        if not path.exists():
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(self.password)
        return path

    @property
    def log_file(self) -> Path:
        return self.directory / "log" / "samba.out"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    # life cycle ---------------------------------------------------------------------------
    def start(self) -> "SambaDC":
        """Launch `samba -i -M single` (one process, foreground) and wait for a bind."""
        if self.running:
            raise SambaError("this DC is already running")
        mine = [dc for dc in _LIVE if dc.address == self.address and dc.running]
        if mine:
            raise SambaError(f"{mine[0]!r} already runs on {self.address}: stop it first "
                             "(the LDAP ports are fixed)")
        if not self._lock.acquire(timeout=LOCK_WAIT):
            raise SambaError(f"another exdir test session has held {self.address}:389 for "
                             f"{LOCK_WAIT:.0f} s ({self._lock.path})")
        busy = [p for p in LDAP_PORTS if port_in_use(self.address, p)]
        if busy:
            self._lock.release()
            raise SambaError(f"{self.address}:{'/'.join(map(str, busy))} is already in use")
        self.log_file.parent.mkdir(exist_ok=True)
        began = time.monotonic()
        with open(self.log_file, "ab") as log:
            self._proc = subprocess.Popen(
                [_tool("samba"), "-i", "-M", "single", "-s", str(self.conf)],
                stdin=subprocess.PIPE, stdout=log, stderr=subprocess.STDOUT)
        _LIVE.add(self)
        if not self._wait_ready():
            exited = self._proc.poll()
            self.stop()
            state = f"exited with {exited}" if exited is not None else \
                f"not answering after {self.start_timeout:.0f} s"
            raise SambaError(f"samba on {self.url} {state}; log {self.log_file}:\n"
                             f"{_tail(self.log_file)}")
        self.started_in = time.monotonic() - began
        return self

    def _wait_ready(self) -> bool:
        """Poll until an administrator bind and a rootDSE read succeed, or samba dies."""
        assert self._proc is not None
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                return False
            server = Server(self.address, port=389, get_info=NONE, connect_timeout=1)
            conn = Connection(server, user=self.bind_dn, password=self.password,
                              receive_timeout=5, raise_exceptions=False)
            try:
                if conn.bind() and conn.search("", "(objectClass=*)", BASE,
                                               attributes=["defaultNamingContext"]):
                    return True
            except LDAPException:
                pass
            finally:
                try:
                    conn.unbind()
                except LDAPException:
                    pass
            time.sleep(0.05)
        return False

    def stop(self, *, graceful: bool = True) -> None:
        """Stop the DC and wait until its ports are free; safe to repeat.

        graceful closes samba's stdin (it exits at once, databases closed cleanly);
        otherwise SIGKILL, for throwaway copies.  Signals go to our own child only.
        """
        proc, self._proc = self._proc, None
        try:
            if proc is not None:
                self._end(proc, graceful)
        finally:
            self._lock.release()
            _LIVE.discard(self)

    def _end(self, proc: subprocess.Popen[bytes], graceful: bool) -> None:
        if graceful and proc.stdin is not None:
            try:
                proc.stdin.close()
            except OSError:
                pass
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.terminate()
        else:
            proc.kill()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        if proc.stdin is not None and not proc.stdin.closed:
            proc.stdin.close()
        deadline = time.monotonic() + 10
        while any(port_in_use(self.address, p) for p in LDAP_PORTS):
            if time.monotonic() > deadline:
                raise SambaError(f"{self.address}:389 still answers after samba "
                                 f"(pid {proc.pid}) exited")
            time.sleep(0.02)

    def cleanup(self) -> None:
        """Stop, and remove the directory if this DC owns it."""
        self.stop(graceful=False)
        if self.owns_directory:
            shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> "SambaDC":
        if not self.running:
            self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.cleanup()

    def __repr__(self) -> str:
        return f"<SambaDC {self.host} {self.url if self.running else 'stopped'} {self.directory}>"

    # clients --------------------------------------------------------------------------------
    def connection(self) -> Connection:
        """An ldap3 SYNC connection, simple-bound as the domain's Administrator."""
        server = Server(self.address, port=389, get_info=NONE, connect_timeout=5)
        return Connection(server, user=self.bind_dn, password=self.password, auto_bind=True,
                          raise_exceptions=False, receive_timeout=60)

    def ldapmodify(self, ldif_text: str, *args: str) -> subprocess.CompletedProcess[str]:
        """OpenLDAP's ldapmodify against this DC, ldif_text on stdin; caller checks the code."""
        cmd = [_tool("ldapmodify"), "-x", "-H", self.url, "-D", self.bind_dn,
               "-y", str(self.password_file), *args]
        return subprocess.run(cmd, input=ldif_text, capture_output=True, text=True,
                              env=_CLIENT_ENV)

    def extend_schema(self) -> str:
        """Extend the schema as a lab user would: `exdir schema export --format ad`
        against this DC (the schema NC read from its rootDSE), then ldapmodify.
        Returns the LDIF applied."""
        exported = subprocess.run(
            [sys.executable, "-m", "commands.main", "--url", self.url, "--bind-dn", self.bind_dn,
             "--password-file", str(self.password_file), "schema", "export", "--format", "ad"],
            capture_output=True, text=True, cwd=REPO_ROOT,
            env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})
        if exported.returncode != 0:
            raise SambaError(f"exdir schema export --format ad failed (exit "
                             f"{exported.returncode}): {exported.stderr.strip()}")
        result = self.ldapmodify(exported.stdout)
        if result.returncode != 0:
            raise SambaError(f"ldapmodify of exdir's AD schema failed (exit {result.returncode}):"
                             f"\n{(result.stderr + result.stdout).strip()[-3000:]}")
        return exported.stdout

    def load(self, ldif_text: str) -> "LoadResult":
        """Add an LDIF organisation over LDAP (load_entries: two passes, parents first)."""
        with self.connection() as conn:
            return load_entries(conn, parse_ldif_entries(ldif_text),
                                (self.domain_dn, self.config_dn))


# --- loading an LDIF organisation ------------------------------------------------------------------

@dataclass
class LoadResult:
    """What load_entries did: added, skipped as already present (with differences)."""

    added: list[str] = field(default_factory=list)
    existing: list[str] = field(default_factory=list)
    # existing entries whose data-defined values differ from the server's: dn -> attributes
    differing: dict[str, list[str]] = field(default_factory=dict)
    # entries the caller let the server refuse (may_refuse): dn -> the server's reason
    refused: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0


def _norm(value: str | bytes) -> bytes:
    return (value if isinstance(value, bytes) else value.encode("utf-8")).lower()


def _is_dn_valued(attribute: str) -> bool:
    from exdir.schema import kind_of

    return kind_of(attribute) == "dn"


def load_entries(conn: Connection, entries: Entries, bases: Sequence[str],
                 may_refuse: Callable[[str, dict[str, list[str | bytes]]], bool] | None = None
                 ) -> LoadResult:
    """Add an organisation to a running AD, in the two passes AD needs.

    AD refuses a DN-valued attribute naming an object that does not exist yet
    (constraintViolation "Referenced object not found"), so entries are added
    parents first without their DN-valued attributes, then one modify per entry
    adds them.  Entries the server already has (the domain head, CN=Configuration,
    the DC's own site objects…) are read in bulk first and left alone: AD refuses
    to add them again, and their values are the server's.  The schema checks stay
    on (no relax control): a refused entry raises SambaError, unless may_refuse
    says the server may refuse that one (recorded in LoadResult.refused).
    """
    began = time.monotonic()
    result = LoadResult()
    order = sorted(entries, key=_dn_depth)
    present = read_existing(conn, order, bases, attributes=["*"])
    later: list[tuple[str, dict[str, list[str | bytes]]]] = []
    for dn in order:
        attrs = entries[dn]
        found = present.get(dn_key(dn))
        if found is not None:
            result.existing.append(dn)
            server = {k.lower(): {_norm(v) for v in vals} for k, vals in found.items()}
            differ = [a for a, vals in attrs.items()
                      if {_norm(v) for v in vals} != server.get(a.lower(), set())]
            if differ:
                result.differing[dn] = sorted(differ, key=str.lower)
            continue
        plain = {a: v for a, v in attrs.items() if not _is_dn_valued(a)}
        refs = {a: v for a, v in attrs.items() if _is_dn_valued(a)}
        classes = next((v for a, v in plain.items() if a.lower() == "objectclass"), [])
        rest = {a: v for a, v in plain.items() if a.lower() != "objectclass"}
        if not conn.add(dn, [c.decode() if isinstance(c, bytes) else c for c in classes], rest):
            if may_refuse is not None and may_refuse(dn, attrs):
                result.refused[dn] = (f"{conn.result.get('description')} "
                                      f"({conn.result.get('message', '').strip()})")
                continue
            raise SambaError(f"adding {dn}: {conn.result.get('description')} "
                             f"({conn.result.get('message', '').strip()})")
        result.added.append(dn)
        if refs:
            later.append((dn, refs))
    for dn, refs in later:
        changes = {a: [(MODIFY_ADD, list(v))] for a, v in refs.items()}
        if not conn.modify(dn, changes):
            raise SambaError(f"adding the DN-valued attributes of {dn} "
                             f"({', '.join(refs)}): {conn.result.get('description')} "
                             f"({conn.result.get('message', '').strip()})")
    result.seconds = time.monotonic() - began
    return result


def read_existing(conn: Connection, dns: Sequence[str], bases: Sequence[str],
                  attributes: Sequence[str] = ("1.1",)) -> dict[str, dict[str, list[bytes]]]:
    """Raw values of those of dns that exist, by dn_key: OR-filters of 100 per search."""
    by_base: dict[str, list[str]] = {}
    for dn in dns:
        key = dn_key(dn)
        base = next((b for b in sorted(bases, key=len, reverse=True)
                     if key == dn_key(b) or key.endswith("," + dn_key(b))), None)
        if base is None:
            raise SambaError(f"{dn} is in no naming context of the DC ({', '.join(bases)})")
        by_base.setdefault(base, []).append(dn)
    out: dict[str, dict[str, list[bytes]]] = {}
    for base, members in by_base.items():
        for i in range(0, len(members), 100):
            flt = "(|" + "".join(f"(distinguishedName={escape_filter_chars(d)})"
                                 for d in members[i:i + 100]) + ")"
            if not conn.search(base, flt, SUBTREE, attributes=list(attributes)):
                if conn.result.get("description") not in ("success", "noSuchObject"):
                    raise SambaError(f"search under {base}: {conn.result}")
            for item in conn.response or []:
                if item.get("type") == "searchResEntry":
                    out[dn_key(item["dn"])] = dict(item["raw_attributes"])
    return out


# --- templates: build once per session, copy per test ---------------------------------------------

class Template:
    """A stopped DC directory; clone() gives a test its own copy, started."""

    def __init__(self, path: Path, password: str, *, address: str = FIRST_ADDRESS,
                 host: str = FIRST_HOST) -> None:
        self.path = path
        self.password = password
        self.address = address
        self.host = host

    def copy_to(self, target: Path) -> Path:
        """cp -a the template to target and point its smb.conf at the copy."""
        subprocess.run(["cp", "-a", str(self.path), str(target)], check=True)
        conf = target / "etc" / "smb.conf"
        conf.write_text(conf.read_text().replace(str(self.path), str(target)))
        (target / "exdir-password").unlink(missing_ok=True)
        return target

    def clone(self, parent: Path | None = None) -> SambaDC:
        target = Path(tempfile.mkdtemp(prefix="exdir-samba-", dir=parent))
        target.rmdir()
        self.copy_to(target)
        return SambaDC(target, self.password, address=self.address, host=self.host)


class SambaLab:
    """Per-session Samba: a base template (provisioned, TLS keys, exdir's schema) and
    data templates derived from it, built on first use; timings are recorded."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = root or Path(tempfile.mkdtemp(prefix="exdir-samba-lab-"))
        self.password = generated_password()
        self.timings: dict[str, float] = {}
        self.starts: list[float] = []  # per-test copy + start, seconds
        self.schema_ldif = ""  # what extended the base template's schema
        self.loads: dict[str, LoadResult] = {}
        self._base: Template | None = None
        self._data: dict[str, Template] = {}
        self._failed: dict[str, str] = {}  # a template that failed is not rebuilt per test
        self.live: list[SambaDC] = []

    def base(self) -> Template:
        """Provisioned, started once (TLS keys), schema extended, stopped."""
        if "base" in self._failed:
            raise SambaError(f"the Samba base template failed earlier: {self._failed['base']}")
        if self._base is None:
            try:
                self._base = self._build_base()
            except BaseException as exc:
                self._failed["base"] = str(exc).splitlines()[0] if str(exc) else repr(exc)
                raise
        return self._base

    def _build_base(self) -> Template:
        path = self.root / "base"
        t0 = time.monotonic()
        provision(path, self.password)
        self.timings["provision"] = time.monotonic() - t0
        dc = SambaDC(path, self.password, owns_directory=False)
        t0 = time.monotonic()
        dc.start()
        self.timings["first start"] = time.monotonic() - t0
        try:
            t0 = time.monotonic()
            self.schema_ldif = dc.extend_schema()
            self.timings["schema"] = time.monotonic() - t0
        finally:
            dc.stop()
        (path / "exdir-password").unlink(missing_ok=True)
        return Template(path, self.password)

    def template(self, ldif_text: str | None) -> Template:
        """The base with ldif_text loaded, built on first use (None: the base itself)."""
        if ldif_text is None:
            return self.base()
        name = hashlib.sha256(ldif_text.encode("utf-8")).hexdigest()[:12]
        if name in self._failed:
            raise SambaError(f"loading this LDIF into Samba failed earlier: {self._failed[name]}")
        if name not in self._data:
            base = self.base()
            path = base.copy_to(self.root / f"data-{name}")
            dc = SambaDC(path, self.password, owns_directory=False)
            dc.start()
            try:
                self.loads[name] = dc.load(ldif_text)
                self.timings[f"load {name}"] = self.loads[name].seconds
            except BaseException as exc:
                self._failed[name] = str(exc).splitlines()[0] if str(exc) else repr(exc)
                raise
            finally:
                dc.stop()
            (path / "exdir-password").unlink(missing_ok=True)
            self._data[name] = Template(path, self.password)
        return self._data[name]

    def load_result(self, ldif_text: str) -> LoadResult:
        """How ldif_text was loaded into its template (added, already there, differing)."""
        self.template(ldif_text)
        return self.loads[hashlib.sha256(ldif_text.encode("utf-8")).hexdigest()[:12]]

    def start(self, ldif_text: str | None = None) -> SambaDC:
        """A fresh copy of a template, started; stopped and removed by close_live()."""
        template = self.template(ldif_text)
        t0 = time.monotonic()
        dc = template.clone(self.root)
        self.live.append(dc)
        dc.start()
        self.starts.append(time.monotonic() - t0)
        return dc

    def close_live(self) -> None:
        errors: list[BaseException] = []
        for dc in reversed(self.live):
            try:
                dc.cleanup()
            except Exception as exc:
                errors.append(exc)
        self.live.clear()
        if errors:
            raise errors[0]

    def close(self) -> None:
        try:
            self.close_live()
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


# --- a second DC on 127.0.0.2 --------------------------------------------------------------------

def _has_address(address: str) -> bool:
    out = subprocess.run(["ip", "-4", "-o", "addr", "show", "dev", "lo"], capture_output=True,
                         text=True, check=True).stdout
    return re.search(rf"\binet {re.escape(address)}/", out) is not None


class LoopbackAddress:
    """address on lo for the duration of a with block; removed only if we added it."""

    def __init__(self, address: str) -> None:
        self.address = address
        self.added = False

    def __enter__(self) -> "LoopbackAddress":
        if not _has_address(self.address):
            _run(["ip", "addr", "add", f"{self.address}/8", "dev", "lo"],
                 f"adding {self.address} to lo")
            self.added = True
        return self

    def __exit__(self, *exc: object) -> None:
        if self.added:
            subprocess.run(["ip", "addr", "del", f"{self.address}/8", "dev", "lo"],
                           capture_output=True)
            self.added = False


def join_dc(first: SambaDC, directory: Path, *, host: str = SECOND_HOST,
            address: str = SECOND_ADDRESS, read_only: bool = False) -> SambaDC:
    """samba-tool domain join a second DC (stopped) through the running first one;
    read_only: as a read-only DC (RODC)."""
    env = {**os.environ, "KRB5_CONFIG": str(first.directory / "private" / "krb5.conf")}
    # the domain named explicitly: samba-tool reads /etc/samba/smb.conf, whose
    # workgroup would otherwise qualify the user (and the bind fails, data 51f)
    _run([_tool("samba-tool"), "domain", "join", REALM.lower(), "RODC" if read_only else "DC",
          "-U", f"{DOMAIN}\\Administrator", f"--password={first.password}",
          f"--server={first.address}", f"--targetdir={directory}",
          f"--option=workgroup={DOMAIN}", f"--option=realm={REALM}",
          f"--option=netbios name={host}", f"--option=interfaces={address}",
          "--option=bind interfaces only=yes"],
         f"joining {host} to the domain", env=env)
    configure(directory, address)
    return SambaDC(directory, first.password, address=address, host=host)


MakeSamba = Callable[..., SambaDC]
