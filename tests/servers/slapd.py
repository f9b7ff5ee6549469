"""A real OpenLDAP slapd per test, on loopback, in its own temporary directory.

The in-memory directory (ldap3 MOCK_SYNC) differs from real servers in ways that
matter to exdir (renames, failed modifies); integration tests therefore run the
same scenarios against a real slapd.  Each instance gets a cn=config built offline
with slapadd, the Exchange schema exdir ships, one mdb database without the refint
overlay (so DN references stay stale after a rename, which exdir must handle), and
a free high port on 127.0.0.1.  Recipe: docs/servers.md.
"""
from __future__ import annotations

import atexit
import base64
import io
import os
import re
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Callable, Sequence

import ldif
import pytest
from ldap3 import BASE, NONE, Connection, Server
from ldap3.core.exceptions import LDAPException
from ldap3.utils.dn import parse_dn

DEFAULT_SUFFIX = "DC=fabrikam,DC=com"
MODULE_PATH = "/usr/lib/ldap"
SYSTEM_SCHEMAS = (
    "/etc/ldap/schema/core.ldif",
    "/etc/ldap/schema/cosine.ldif",
    "/etc/ldap/schema/inetorgperson.ldif",
)
# Equality indexes the suite's searches rely on (entryUUID/entryCSN for syncrepl).
INDEXED_ATTRIBUTES = ("objectClass", "mailNickname", "legacyExchangeDN", "homeMDB",
                      "homeMTA", "proxyAddresses", "entryUUID", "entryCSN")
SERVER_TOOLS = ("slapd", "slapadd")
CLIENT_TOOLS = ("ldapmodify", "ldapsearch")
_SBIN = ("/usr/sbin", "/sbin", "/usr/local/sbin")
_LOG_TAIL_LINES = 40
_PORT_ATTEMPTS = 3

# Client tools must not read /etc/ldap/ldap.conf or ~/.ldaprc: tests bind as told.
_CLIENT_ENV = {**os.environ, "LDAPNOINIT": "1"}


class SlapdError(RuntimeError):
    """slapd or one of its tools failed; the message carries the tool's own output."""


# --- tool discovery and the skip/fail policy -------------------------------------------

def _search_path() -> str:
    return os.pathsep.join([os.environ.get("PATH", ""), *_SBIN])


def find_tool(name: str) -> str | None:
    """The path of an OpenLDAP program; /usr/sbin is searched even when not on PATH."""
    return shutil.which(name, path=_search_path())


def missing_tools() -> list[str]:
    """OpenLDAP programs the fixtures need that are not installed."""
    return [t for t in (*SERVER_TOOLS, *CLIENT_TOOLS) if find_tool(t) is None]


def ci_required() -> bool:
    """True in CI, where an integration test that cannot run is a failure, not a skip."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def require_slapd() -> None:
    """Skip the calling test when OpenLDAP is missing — or fail it when CI is set."""
    missing = missing_tools()
    if not missing:
        return
    message = (f"OpenLDAP not installed (missing {', '.join(missing)}): "
               "apt-get install slapd ldap-utils, or run scripts/test.sh")
    if ci_required():
        pytest.fail(f"{message}; CI is set, so integration tests must run", pytrace=False)
    pytest.skip(message)


def _tool(name: str) -> str:
    path = find_tool(name)
    if path is None:
        raise SlapdError(f"{name} not found (apt-get install slapd ldap-utils)")
    return path


# --- small helpers -------------------------------------------------------------------------

def free_port() -> int:
    """A free TCP port on 127.0.0.1, chosen by the kernel (bind to port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _ldif_line(attr: str, value: str) -> str:
    """One LDIF attribute line, base64 where the value is not safe as plain text."""
    if ldif.UNSAFE_STRING_RE.search(value):
        return f"{attr}:: {base64.b64encode(value.encode('utf-8')).decode('ascii')}"
    return f"{attr}: {value}"


def _tail(path: Path, lines: int = _LOG_TAIL_LINES) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:]) or "(log empty)"


def _schema_hint(message: str, schema_ldif: str) -> str | None:
    """The schema line slapadd's "olcObjectClasses: value #N" refers to, if it is ours."""
    match = re.search(r"(olcAttributeTypes|olcObjectClasses): value #(\d+)", message)
    if match is None:
        return None
    attr, index = match.group(1), int(match.group(2))
    lines = [(n, line) for n, line in enumerate(schema_ldif.splitlines(), start=1)
             if line.lower().startswith(attr.lower() + ":")]
    if index >= len(lines):
        return None
    number, line = lines[index]
    return f"exdir schema LDIF line {number}: {line[:300]}"


def _dn_sort_key(dn: str) -> tuple[tuple[str, str], ...]:
    """Parents before children, siblings alphabetically, case-insensitively."""
    try:
        rdns = parse_dn(dn, escape=False, strip=True)
    except LDAPException:
        return ((dn.lower(), ""),)
    return tuple((a.lower(), v.lower()) for a, v, _ in reversed(rdns))


def _value_key(value: str | bytes) -> bytes:
    return value if isinstance(value, bytes) else value.encode("utf-8")


Entries = dict[str, dict[str, list[str | bytes]]]


def parse_ldif_entries(text: str) -> Entries:
    """Entry records of an LDIF text as {dn: {attribute: values}}; bytes where not UTF-8."""
    parser = ldif.LDIFParser(io.BytesIO(text.encode("utf-8")), strict=True)
    out: Entries = {}
    for dn, entry in parser.parse():
        if dn is None:
            continue
        out[dn] = {attr: list(values) for attr, values in entry.items()}
    return out


def canonical_ldif(entries: Entries) -> str:
    """A deterministic LDIF text of entries: stable order, unwrapped, loadable by slapadd."""
    buf = io.BytesIO()
    writer = ldif.LDIFWriter(buf, cols=1 << 30)
    for dn in sorted(entries, key=_dn_sort_key):
        record = entries[dn]
        ordered = {attr: sorted(record[attr], key=_value_key)
                   for attr in sorted(record, key=str.lower)}
        writer.unparse(dn, ordered)
    return buf.getvalue().decode("ascii")


_LIVE: set["Slapd"] = set()


@atexit.register
def _stop_leftovers() -> None:
    """Never leave a server running when the interpreter exits."""
    for server in list(_LIVE):
        try:
            server.stop()
        except Exception:  # pragma: no cover - best effort at exit
            pass


# --- the server --------------------------------------------------------------------------

class Slapd:
    """One OpenLDAP slapd on ldap://127.0.0.1:<free port>, living in a temp directory.

    data_ldif, if given, is bulk-loaded offline (slapadd -q) before the start: large
    fixtures load in a fraction of a second.  It must contain the suffix entry.
    schema_ldif replaces exdir's Exchange schema entry (default:
    exdir.schema.openldap_schema_ldif()); extra_config_ldif is appended to the cn=config
    LDIF (an overlay, a second module) for tests that need more than the default.
    """

    def __init__(self, suffix: str = DEFAULT_SUFFIX, data_ldif: str | None = None, *,
                 schema_ldif: str | None = None, extra_config_ldif: str = "",
                 log_level: str = "none", start_timeout: float = 10.0, port: int = 0,
                 password: str | None = None, server_id: int | None = None,
                 peer_url: str | None = None) -> None:
        parse_dn(suffix)  # reject a malformed suffix before anything is created
        self.suffix = suffix
        self.data_ldif = data_ldif
        self.schema_ldif = schema_ldif
        self.extra_config_ldif = extra_config_ldif
        self.log_level = log_level
        self.start_timeout = start_timeout
        self.bind_dn = f"CN=admin,{suffix}"
        self.config_bind_dn = "cn=admin,cn=config"
        self.password = password or secrets.token_hex(16)
        self.port = port
        self._fixed_port = port
        # multi-provider replication (SlapdFactory.pair): this server's olcServerID and
        # the provider it pulls from (refreshAndPersist), which pulls from it in turn
        self.server_id = server_id
        self.peer_url = peer_url
        self._dir: Path | None = None
        self._proc: subprocess.Popen[bytes] | None = None

    # paths -------------------------------------------------------------------------
    @property
    def directory(self) -> Path:
        """The instance directory (config, database, log, pid file)."""
        if self._dir is None:
            raise SlapdError("slapd instance not started")
        return self._dir

    @property
    def config_dir(self) -> Path:
        return self.directory / "slapd.d"

    @property
    def password_file(self) -> Path:
        """A file holding the password alone (no newline), mode 0600, for ldap* -y."""
        return self.directory / "password"

    @property
    def pid_file(self) -> Path:
        return self.directory / "slapd.pid"

    @property
    def log_file(self) -> Path:
        return self.directory / "slapd.log"

    @property
    def url(self) -> str:
        if not self.port:
            raise SlapdError("slapd instance not started")
        return f"ldap://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        """slapd's process id, from its pid file (the same process stop() terminates)."""
        try:
            return int(self.pid_file.read_text().strip())
        except (OSError, ValueError, SlapdError):
            return self._proc.pid if self._proc is not None else None

    # life cycle ---------------------------------------------------------------------
    def start(self) -> "Slapd":
        if self._dir is not None:
            raise SlapdError("slapd instance already started")
        self._dir = Path(tempfile.mkdtemp(prefix="exdir-slapd-"))
        _LIVE.add(self)
        try:
            self._write_password_file()
            self._build_config()
            if self.data_ldif is not None:
                self._bulk_load(self.data_ldif)
            self._launch()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Terminate slapd, wait for it to exit, remove the directory; safe to repeat.

        slapd runs in the foreground (-d), so the pid in its pid file is our child's:
        signalling through Popen cannot hit a recycled pid once the child is reaped.
        """
        proc, self._proc = self._proc, None
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None
        self.port = 0
        _LIVE.discard(self)

    def halt(self) -> None:
        """Stop the process (SIGTERM) and keep the directory and port: resume() starts
        it again where it was (a replica that catches up)."""
        proc, self._proc = self._proc, None
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=10)

    def resume(self) -> None:
        """Start a halted server again on the same port and directory."""
        if self.running:
            return
        self._fixed_port = self.port
        self._launch()

    def __enter__(self) -> "Slapd":
        if self._dir is None:
            self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = self.url if self.port else "stopped"
        return f"<Slapd {self.suffix} {state}>"

    # set-up steps -------------------------------------------------------------------
    def _write_password_file(self) -> None:
        fd = os.open(self.password_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(self.password)

    def _schema_text(self) -> str:
        if self.schema_ldif is not None:
            return self.schema_ldif
        from exdir.schema import openldap_schema_ldif
        return openldap_schema_ldif()

    def config_ldif(self) -> str:
        """The cn=config LDIF slapadd -n0 builds the instance from."""
        d = self.directory
        includes = [Path(p).as_uri() for p in SYSTEM_SCHEMAS]
        includes.append((d / "exdir-schema.ldif").as_uri())
        blocks = [
            ["dn: cn=config", "objectClass: olcGlobal", "cn: config",
             f"olcPidFile: {self.pid_file}", f"olcArgsFile: {d / 'slapd.args'}",
             *([f"olcServerID: {self.server_id}"] if self.server_id else [])],
            ["dn: cn=module{0},cn=config", "objectClass: olcModuleList", "cn: module{0}",
             f"olcModulePath: {MODULE_PATH}", "olcModuleLoad: back_mdb",
             *(["olcModuleLoad: syncprov"] if self.server_id else [])],
            ["dn: cn=schema,cn=config", "objectClass: olcSchemaConfig", "cn: schema"],
            *[[f"include: {uri}"] for uri in includes],
            ["dn: olcDatabase={-1}frontend,cn=config", "objectClass: olcDatabaseConfig",
             "objectClass: olcFrontendConfig", "olcDatabase: {-1}frontend",
             "olcSizeLimit: unlimited"],
            ["dn: olcDatabase={0}config,cn=config", "objectClass: olcDatabaseConfig",
             "olcDatabase: {0}config", _ldif_line("olcRootDN", self.config_bind_dn),
             _ldif_line("olcRootPW", self.password)],
            ["dn: olcDatabase={1}mdb,cn=config", "objectClass: olcDatabaseConfig",
             "objectClass: olcMdbConfig", "olcDatabase: {1}mdb",
             _ldif_line("olcSuffix", self.suffix), _ldif_line("olcRootDN", self.bind_dn),
             _ldif_line("olcRootPW", self.password), f"olcDbDirectory: {d / 'db'}",
             "olcDbNoSync: TRUE", f"olcDbMaxSize: {1 << 30}",
             *[f"olcDbIndex: {a} eq" for a in INDEXED_ATTRIBUTES],
             *self._replication_lines()],
            *([["dn: olcOverlay=syncprov,olcDatabase={1}mdb,cn=config",
                "objectClass: olcOverlayConfig", "objectClass: olcSyncProvConfig",
                "olcOverlay: syncprov"]] if self.server_id else []),
        ]
        text = "\n\n".join("\n".join(b) for b in blocks) + "\n"
        if self.extra_config_ldif.strip():
            text += "\n" + self.extra_config_ldif.strip() + "\n"
        return text

    def _replication_lines(self) -> list[str]:
        """olcSyncrepl (pulling from the peer) and olcMultiProvider, for a pair."""
        if not self.server_id or not self.peer_url:
            return []
        syncrepl = (f"rid={self.server_id:03d} provider={self.peer_url} bindmethod=simple "
                    f'binddn="{self.bind_dn}" credentials={self.password} '
                    f'searchbase="{self.suffix}" type=refreshAndPersist retry="1 +" '
                    "timeout=3")
        return [_ldif_line("olcSyncrepl", syncrepl), "olcMultiProvider: TRUE"]

    def _build_config(self) -> None:
        d = self.directory
        (d / "slapd.d").mkdir()
        (d / "db").mkdir()
        (d / "exdir-schema.ldif").write_text(self._schema_text())
        (d / "config.ldif").write_text(self.config_ldif())
        try:
            self._run_tool("slapadd", ["-n0", "-F", str(self.config_dir), "-l",
                                       str(d / "config.ldif")], "building cn=config")
        except SlapdError as exc:
            hint = _schema_hint(str(exc), self._schema_text())
            if hint:
                raise SlapdError(f"{exc}\n{hint}") from None
            raise

    def _bulk_load(self, data_ldif: str) -> None:
        path = self.directory / "data.ldif"
        # slapadd reads entries only: the `version: 1` line every exdir LDIF starts with
        # ("entry -1 has no dn") goes, with the comments and blank lines after it
        lines = data_ldif.splitlines(keepends=True)
        while lines and (not lines[0].strip() or lines[0].startswith("#")
                         or lines[0].lower().startswith("version:")):
            lines.pop(0)
        path.write_text("".join(lines), encoding="utf-8")
        sid = ["-S", str(self.server_id)] if self.server_id else []
        self._run_tool("slapadd", ["-q", "-n1", *sid, "-F", str(self.config_dir), "-l",
                                   str(path)], "loading the data LDIF")

    def _run_tool(self, name: str, args: Sequence[str], what: str) -> None:
        result = subprocess.run([_tool(name), *args], capture_output=True, text=True)
        if result.returncode != 0:
            output = (result.stderr + result.stdout).strip()
            raise SlapdError(f"{name} failed {what} (exit {result.returncode}):\n{output}")

    def _launch(self) -> None:
        """Start slapd in the foreground (-d keeps it attached), retrying a port race."""
        slapd = _tool("slapd")
        for attempt in range(_PORT_ATTEMPTS):
            self.port = self._fixed_port or free_port()
            with open(self.log_file, "ab") as log:
                self._proc = subprocess.Popen(
                    [slapd, "-d", self.log_level, "-F", str(self.config_dir),
                     "-h", f"{self.url}/"],
                    stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
            if self._wait_ready():
                return
            log_tail = _tail(self.log_file)
            if self._proc.poll() is not None and "Address already in use" in log_tail \
                    and attempt + 1 < _PORT_ATTEMPTS:
                self._proc = None
                continue
            exited = self._proc.poll()
            state = f"exited with {exited}" if exited is not None else \
                f"not answering after {self.start_timeout:.0f} s"
            raise SlapdError(f"slapd on {self.url} {state}; log {self.log_file}:\n{log_tail}")

    def _wait_ready(self) -> bool:
        """Poll with an anonymous rootDSE search until slapd answers or dies."""
        assert self._proc is not None
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                return False
            # a fresh Server each time: ldap3 remembers a refused address for seconds
            server = Server("127.0.0.1", port=self.port, get_info=NONE, connect_timeout=1)
            conn = Connection(server, receive_timeout=1)
            try:
                conn.open()
                if conn.search("", "(objectClass=*)", BASE, attributes=["namingContexts"]):
                    return True
            except LDAPException:
                pass
            finally:
                try:
                    conn.unbind()
                except LDAPException:
                    pass
            time.sleep(0.02)
        return False

    # clients ----------------------------------------------------------------------------
    def connection(self, *, config: bool = False) -> Connection:
        """An ldap3 SYNC connection, simple-bound as the database (or config) root."""
        server = Server("127.0.0.1", port=self.port, get_info=NONE, connect_timeout=5)
        user = self.config_bind_dn if config else self.bind_dn
        return Connection(server, user=user, password=self.password, auto_bind=True,
                          raise_exceptions=False, receive_timeout=30)

    def _client_args(self, config: bool) -> list[str]:
        bind_dn = self.config_bind_dn if config else self.bind_dn
        return ["-x", "-H", self.url, "-D", bind_dn, "-y", str(self.password_file)]

    def ldapmodify(self, ldif_text: str, *args: str, config: bool = False
                   ) -> subprocess.CompletedProcess[str]:
        """Run OpenLDAP's ldapmodify with ldif_text on stdin; the caller checks returncode.

        config=True binds as the cn=config root for online configuration changes.
        """
        return subprocess.run([_tool("ldapmodify"), *self._client_args(config), *args],
                              input=ldif_text, capture_output=True, text=True, env=_CLIENT_ENV)

    def ldapsearch(self, search_filter: str = "(objectClass=*)",
                   attributes: Sequence[str] = (), *, base: str | None = None,
                   scope: str = "sub", args: Sequence[str] = (), config: bool = False
                   ) -> subprocess.CompletedProcess[str]:
        """Run OpenLDAP's ldapsearch (-LLL, unwrapped LDIF); base defaults to the suffix."""
        cmd = [_tool("ldapsearch"), *self._client_args(config), "-LLL", "-o", "ldif-wrap=no",
               "-b", self.suffix if base is None else base, "-s", scope, *args,
               search_filter, *attributes]
        return subprocess.run(cmd, capture_output=True, text=True, env=_CLIENT_ENV)

    def entries(self, *, operational: bool = False) -> Entries:
        """Every entry under the suffix, read over LDAP; {} when the suffix entry is absent.

        DNs are as slapd returns them: attribute types lower-cased, values as stored.
        """
        result = self.ldapsearch(attributes=["*", "+"] if operational else ["*"])
        if result.returncode == 32:  # noSuchObject: empty database
            return {}
        if result.returncode != 0:
            raise SlapdError(f"ldapsearch failed (exit {result.returncode}): "
                             f"{result.stderr.strip()}")
        return parse_ldif_entries(result.stdout)

    def dump(self, *, operational: bool = False) -> str:
        """All entries as canonical LDIF (sorted, unwrapped) for end-state comparisons.

        Read over LDAP (slapcat also works on a running back-mdb, but it shows the
        database rather than what clients see, operational attributes included).
        """
        return canonical_ldif(self.entries(operational=operational))


class SlapdFactory:
    """Starts servers on demand and stops every one of them at close()."""

    def __init__(self) -> None:
        self.servers: list[Slapd] = []

    def __call__(self, data_ldif: str | None = None, suffix: str = DEFAULT_SUFFIX, *,
                 schema_ldif: str | None = None, extra_config_ldif: str = "",
                 log_level: str = "none") -> Slapd:
        server = Slapd(suffix, data_ldif, schema_ldif=schema_ldif,
                       extra_config_ldif=extra_config_ldif, log_level=log_level)
        self.servers.append(server)
        return server.start()

    def pair(self, data_ldif: str | None = None, suffix: str = DEFAULT_SUFFIX
             ) -> tuple[Slapd, Slapd]:
        """Two providers in multi-provider replication on loopback (olcServerID 1 and 2,
        syncprov, each pulling from the other by refreshAndPersist).  The data is
        loaded into the first only; the second starts empty and fills itself."""
        ports = [free_port(), free_port()]
        while ports[1] == ports[0]:
            ports[1] = free_port()
        password = secrets.token_hex(16)
        first = Slapd(suffix, data_ldif, port=ports[0], password=password, server_id=1,
                      peer_url=f"ldap://127.0.0.1:{ports[1]}")
        second = Slapd(suffix, None, port=ports[1], password=password, server_id=2,
                       peer_url=f"ldap://127.0.0.1:{ports[0]}")
        for server in (first, second):
            self.servers.append(server)
            server.start()
        return first, second

    def close(self) -> None:
        errors: list[BaseException] = []
        for server in reversed(self.servers):
            try:
                server.stop()
            except Exception as exc:  # stop the others before reporting
                errors.append(exc)
        self.servers.clear()
        if errors:
            raise errors[0]


MakeSlapd = Callable[..., Slapd]
