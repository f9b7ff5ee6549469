"""The backend for a real LDAP server (Active Directory, Samba, slapd) over ldap3 SYNC.

The server enforces its own rules; this module maps ldap3's results to exdir's
errors, pages searches at Active Directory's MaxPageSize, reads in bulk with
OR-filters and names DN values to delete by GUID where AD needs it.  Connecting
and binding (TLS, NTLM) is exdir.backends.binds.
"""
from __future__ import annotations

import functools
import re
import socket
import uuid
from typing import Callable, Iterable, Iterator, Mapping, Sequence

import ldap3
from ldap3 import ALL_ATTRIBUTES, BASE, DEREF_ALWAYS, LEVEL, SUBTREE, Connection
from ldap3.core.exceptions import LDAPException
from ldap3.operation.search import search_operation
from ldap3.protocol.rfc4511 import ProtocolOp
from ldap3.strategy.sync import SyncStrategy
from ldap3.utils.asn1 import encode as asn1_encode
from ldap3.utils.conv import escape_filter_chars
from ldap3.utils.dn import safe_dn

from .. import dn as dnu
from .. import schema
from ..errors import (Conflict, ConnectionFailed, DirectoryError, EntryExists, ExdirError,
                      InputError, NoSuchEntry, plain)
from ..values import Value, decode, encode
from . import ber, binds
from .base import Directory, Entry, ModLike, NamingContexts, Write

AD_CAPABILITY = "1.2.840.113556.1.4.800"
AD_LDS_CAPABILITY = "1.2.840.113556.1.4.1851"
PAGE_SIZE = 1000  # Active Directory's MaxPageSize
WINDOW = 64  # requests in flight at once on the one connection (benchmarks/apply_slapd.py)
_SCOPES = {"base": BASE, "one": LEVEL, "subtree": SUBTREE}
_LDAP3_OPERATIONS = {"add": ldap3.MODIFY_ADD, "delete": ldap3.MODIFY_DELETE,
                     "replace": ldap3.MODIFY_REPLACE}
_OPERATIONS = {op: op for op in _LDAP3_OPERATIONS}  # exdir.backends.ber's names


def _attributes_arg(attributes: Sequence[str]) -> list[str] | str:
    if not attributes or "*" in attributes:
        return ALL_ATTRIBUTES
    return list(attributes)


def _attribute_list(attributes: Sequence[str]) -> list[str]:
    """The attributes a request names, as a list: ["*"] for all."""
    return list(attributes) if attributes and "*" not in attributes else ["*"]


def _entry_from_response(item: Mapping[str, object]) -> Entry:
    raw = item.get("raw_attributes") or {}
    assert isinstance(raw, Mapping)
    values: dict[str, list[Value]] = {}
    for name, vals in raw.items():
        if name.lower() == "entrydn":
            continue
        values[name] = [decode(name, v) for v in vals]  # type: ignore[union-attr]
    return Entry(str(item["dn"]), values)


def _error_for(dn: str, result: Mapping[str, object]) -> DirectoryError:
    name = str(result.get("description") or "error")
    message = str(result.get("message") or "").strip()
    text = f"{dn}: {plain(name)}" + (f" ({message})" if message else "")
    if name in ("noSuchAttribute", "attributeOrValueExists", "constraintViolation",
                "notAllowedOnRDN"):
        return Conflict(text, result=name, dn=dn)
    if name == "noSuchObject":
        return NoSuchEntry(text, result=name, dn=dn)
    if name == "entryAlreadyExists":
        return EntryExists(text, result=name, dn=dn)
    return DirectoryError(text, result=name, dn=dn)



# a DN value that followed its target into Deleted Objects: `CN=Old MTA\0ADEL:<guid>,…`
_TOMBSTONE = re.compile(rb"^[^,]*\\0ADEL:([0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}),",
                        re.IGNORECASE)


class _Pipe:
    """Several requests in flight on the connection's own socket (RFC 4511 4.1.1: a
    client need not wait for one reply before sending the next; each reply names its
    request's message ID).

    ldap3's SYNC strategy sends one request and reads the socket until that reply is
    whole; here requests are encoded by exdir.backends.ber (the same bytes ldap3 would
    send, at a fraction of its cost), numbered from the connection's own message-ID
    counter, written to its socket, and the replies read back by message ID.  Every
    request sent is waited for (`drain`) before the connection is used synchronously
    again, so ldap3 never sees a reply it did not ask for."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self.pending: dict[int, tuple[object, list[Mapping[str, object]]]] = {}
        self._buffer = bytearray()

    def send(self, build: Callable[[int], bytes], tag: object) -> None:
        """Send the request `build(message_id)` encodes; its reply is answered to `tag`."""
        message_id = self.connection.server.next_message_id()
        data = build(message_id)
        try:
            self.connection.socket.sendall(data)
        except (OSError, socket.timeout) as exc:
            raise LDAPException(f"sending failed: {exc}") from None
        self.pending[message_id] = (tag, [])

    def reply(self) -> tuple[object, list[Mapping[str, object]], Mapping[str, object]]:
        """The next request answered: its tag, the entries it returned, its result."""
        while True:
            size = ber.message_size(self._buffer)
            while size == -1 or len(self._buffer) < size:
                try:
                    data = self.connection.socket.recv(1 << 16)
                except (OSError, socket.timeout) as exc:
                    raise LDAPException(f"receiving failed: {exc}") from None
                if not data:
                    raise LDAPException("the server closed the connection")
                self._buffer += data
                size = ber.message_size(self._buffer)
            message = bytes(self._buffer[:size])
            del self._buffer[:size]
            try:
                message_id, response = ber.decode(message)
            except ber.BerError as exc:
                raise LDAPException(f"unreadable reply: {exc}") from None
            if message_id not in self.pending:
                if message_id == 0:  # a notice of disconnection
                    raise LDAPException("the server ended the session")
                continue
            tag, entries = self.pending[message_id]
            kind = response.get("type")
            if kind == "searchResEntry":
                entries.append(response)
                continue
            if kind in ("searchResRef", "intermediateResponse"):
                continue
            del self.pending[message_id]
            return tag, entries, response

    def drain(self) -> list[tuple[object, BaseException]]:
        """Wait for every request in flight; the tags whose replies never came."""
        lost: list[tuple[object, BaseException]] = []
        while self.pending:
            try:
                self.reply()
            except LDAPException as exc:
                lost += [(tag, exc) for tag, _ in self.pending.values()]
                self.pending.clear()
        return lost


class LdapDirectory(Directory):
    """A real server through ldap3 SYNC; the server enforces the rules itself."""

    backend = "ldap"

    def __init__(self, url: str, connection: Connection) -> None:
        self.url = url
        self.connection = connection
        self._guids: dict[str, bytes | None] = {}
        other = _root_dse(connection)
        caps = {str(c) for c in other.get("supportedcapabilities", [])}
        self.is_active_directory = AD_CAPABILITY in caps and AD_LDS_CAPABILITY not in caps
        contexts = [str(c) for c in other.get("namingcontexts", [])]
        default = _first(other.get("defaultnamingcontext"))
        config = _first(other.get("configurationnamingcontext"))
        schema_nc = _first(other.get("schemanamingcontext"))
        if not default:
            plain_contexts = [c for c in contexts if not c.lower().startswith("cn=")]
            default = plain_contexts[0] if plain_contexts else (contexts[0] if contexts else "")
        if not config and default:
            config = "CN=Configuration," + default
        self.naming = NamingContexts(domain=dnu.normalize(default) if default else "",
                                     configuration=dnu.normalize(config) if config else "",
                                     schema=schema_nc, all=tuple(contexts))
        self._service = _first(other.get("dsservicename"))  # AD: this DC's nTDSDSA
        self._read_only: bool | None = None

    @property
    def read_only(self) -> bool:
        """On Active Directory, whether the DC connected to is read-only: its own
        nTDSDSA (the rootDSE's dsServiceName) is an nTDSDSARO or says msDS-isRODC.
        Read once, on first use."""
        if self._read_only is None:
            self._read_only = False
            if self.is_active_directory and self._service:
                entry = self.read(self._service, ("objectClass", "msDS-isRODC"))
                if entry is not None:
                    classes = {c.lower() for c in entry.texts("objectClass")}
                    self._read_only = ("ntdsdsaro" in classes
                                       or (entry.text("msDS-isRODC") or "").upper() == "TRUE")
        return self._read_only

    def describe(self) -> str:
        kind = "Active Directory" if self.is_active_directory else "LDAP server"
        return f"{kind} at {self.url}"

    def _raise(self, dn: str) -> None:
        raise _error_for(dn, self.connection.result or {})

    def search(self, base: str | None = None, filter: str = "(objectClass=*)",
               attributes: Sequence[str] = ("*",), scope: str = "subtree") -> Iterator[Entry]:
        base_dn = base or self.naming.domain
        if self._pipelines():
            yield from self._search_paged(base_dn, filter, attributes, scope)
            return
        try:
            results = self.connection.extend.standard.paged_search(
                base_dn, filter, search_scope=_SCOPES[scope],
                attributes=_attributes_arg(attributes), paged_size=PAGE_SIZE, generator=True)
            for item in results:
                if item.get("type") == "searchResEntry":
                    yield _entry_from_response(item)
        except LDAPException as exc:
            raise DirectoryError(f"search under {base_dn} failed: {exc}") from None
        result = self.connection.result or {}
        if result.get("description") not in (None, "success", "noSuchObject"):
            raise _error_for(base_dn, result)

    def _search_paged(self, base_dn: str, filter: str, attributes: Sequence[str],
                      scope: str) -> Iterator[Entry]:
        """search's paged search on the connection's own socket: the request encoded by
        ldap3 once, each page's message and its replies by exdir.backends.ber.  A page
        is read whole before its entries are yielded, so no request is in flight while
        the caller holds an entry (and may write)."""
        c = self.connection
        attrs = _attribute_list(attributes)
        try:
            request = search_operation(
                safe_dn(base_dn) if c.check_names and base_dn else base_dn, filter,
                _SCOPES[scope], DEREF_ALWAYS, attrs, 0, 0, False, c.auto_escape,
                c.auto_encode, c.server.schema, validator=c.server.custom_validator,
                check_names=c.check_names)
            op = bytes(asn1_encode(ProtocolOp().setComponentByName("searchRequest", request)))
        except LDAPException as exc:
            raise DirectoryError(f"search under {base_dn} failed: {exc}") from None
        pipe = _Pipe(c)
        cookie = b""
        while True:
            try:
                pipe.send(functools.partial(ber.paged_search, op=op, size=PAGE_SIZE,
                                            cookie=cookie), None)
                _, entries, result = pipe.reply()
                controls = result.get("controls")
                cookie = ber.paged_cookie(controls.get(ber.PAGED_RESULTS)
                                          if isinstance(controls, dict) else None)
            except (LDAPException, ber.BerError) as exc:
                pipe.drain()
                raise DirectoryError(f"search under {base_dn} failed: {exc}") from None
            if result.get("description") not in ("success", "noSuchObject"):
                raise _error_for(base_dn, result)
            for item in entries:
                yield _entry_from_response(item)
            if not cookie:
                return

    def read(self, dn: str, attributes: Sequence[str] = ("*",)) -> Entry | None:
        try:
            ok = self.connection.search(dn, "(objectClass=*)", search_scope=BASE,
                                        attributes=_attributes_arg(attributes))
        except LDAPException as exc:
            raise DirectoryError(f"{dn}: read failed: {exc}") from None
        if not ok:
            # success with no entry: a tombstone, invisible without the Show Deleted control
            if (self.connection.result or {}).get("description") in ("noSuchObject", "success"):
                return None
            self._raise(dn)
        for item in self.connection.response or []:
            if item.get("type") == "searchResEntry":
                return _entry_from_response(item)
        return None

    def _pipelines(self) -> bool:
        """True where requests can be pipelined on this connection (ldap3 SYNC over a
        plain or TLS socket with its fast decoder; no SASL layer signing each message)."""
        c = self.connection
        return (type(c.strategy) is SyncStrategy and bool(c.fast_decoder)
                and c.socket is not None and not c.sasl_mechanism)

    def read_many(self, dns: Iterable[str], attributes: Sequence[str] = ("*",)
                  ) -> dict[str, Entry]:
        """Bulk read: base reads pipelined, WINDOW in flight (each answered from the
        server's DN index), or where the connection cannot pipeline, OR-filters of up
        to 100 DNs per search, one search per partition."""
        wanted = {dnu.key(d): d for d in dns}
        out: dict[str, Entry] = {}
        if not wanted:
            return out
        if self._pipelines():
            return self._read_pipelined(wanted, attributes)
        dn_attr = "distinguishedName" if self.is_active_directory else "entryDN"
        bases = sorted({c for c in self.naming.all} | {self.naming.domain}, key=len, reverse=True)
        groups: dict[str, list[str]] = {}
        for k, d in wanted.items():
            base = next((b for b in bases if b and dnu.is_within(d, b)), None)
            if base is None:
                entry = self.read(d, attributes)
                if entry is not None:
                    out[k] = entry
                continue
            groups.setdefault(base, []).append(d)
        attrs = _attribute_list(attributes)
        for base, members in groups.items():
            for i in range(0, len(members), 100):
                chunk = members[i:i + 100]
                flt = "(|" + "".join(f"({dn_attr}={escape_filter_chars(dnu.normalize(d))})"
                                     for d in chunk) + ")"
                for entry in self.search(base, flt, attrs):
                    k = dnu.key(entry.dn)
                    if k in wanted:
                        out[k] = entry
        return out

    def _read_pipelined(self, wanted: Mapping[str, str], attributes: Sequence[str]
                        ) -> dict[str, Entry]:
        out: dict[str, Entry] = {}
        c = self.connection
        attrs = _attribute_list(attributes)
        pipe = _Pipe(c)
        todo = iter(wanted.items())
        try:
            while True:
                for key, d in todo:
                    pipe.send(functools.partial(ber.search_base, dn=d, attributes=attrs), key)
                    if len(pipe.pending) >= WINDOW:
                        break
                if not pipe.pending:
                    return out
                tag, entries, result = pipe.reply()
                assert isinstance(tag, str)
                name = result.get("description")
                if name not in ("success", "noSuchObject", "invalidDNSyntax"):
                    raise _error_for(wanted[tag], result)
                for item in entries:
                    out[tag] = _entry_from_response(item)
        except LDAPException as exc:
            raise DirectoryError(f"bulk read failed: {exc}") from None
        finally:
            pipe.drain()

    def write_many(self, writes: Sequence[Write],
                   on_result: Callable[[int, BaseException | None], bool]) -> None:
        """Consecutive modifies of distinct entries pipelined, WINDOW in flight; a rename,
        add or delete, a second modify of an entry in flight, or a modify that must first
        read a GUID (AD) waits until everything sent has its reply, so the directory ends
        as the writes one by one would leave it."""
        if not self._pipelines():
            super().write_many(writes, on_result)
            return
        pipe = _Pipe(self.connection)
        in_flight: set[str] = set()
        stop = False
        i = 0

        def answer() -> None:
            nonlocal stop
            got: list[tuple[int, BaseException | None]]
            try:
                tag, _, result = pipe.reply()
                assert isinstance(tag, int)
                got = [(tag, None if result.get("description") == "success"
                        else _error_for(writes[tag][1], result))]
            except LDAPException as exc:
                got = []
                for t, _ in pipe.pending.values():
                    assert isinstance(t, int)
                    got.append((t, DirectoryError(f"{writes[t][1]}: no reply: {exc}",
                                                  dn=writes[t][1])))
                pipe.pending.clear()
            for n, error in got:
                in_flight.discard(dnu.key(writes[n][1]))
                if not on_result(n, error):
                    stop = True

        while True:
            while not stop and i < len(writes) and len(pipe.pending) < WINDOW:
                write = writes[i]
                key = dnu.key(write[1])
                alone = write[0] != "modify" or key in in_flight or self._must_read(write[2])
                if alone and pipe.pending:
                    break  # it waits for what is in flight
                if alone:
                    error: BaseException | None = None
                    try:
                        self.write_one(write)
                    except Exception as exc:  # noqa: BLE001 - reported
                        error = exc
                    i += 1
                    if not on_result(i - 1, error):
                        stop = True
                    continue
                try:
                    pipe.send(self._modify_request(write[1], write[2]), i)
                except (LDAPException, ExdirError) as exc:
                    i += 1
                    if not on_result(i - 1, exc if isinstance(exc, ExdirError) else
                                     DirectoryError(f"{write[1]}: modify failed: {exc}",
                                                    dn=write[1])):
                        stop = True
                    continue
                in_flight.add(key)
                i += 1
            if not pipe.pending:
                if stop or i >= len(writes):
                    return
                continue
            answer()

    def _must_read(self, mods: Sequence[ModLike]) -> bool:
        """True where building the modify reads the directory (a GUID not cached yet)."""
        if not self.is_active_directory:
            return False
        for mod in mods:
            if mod.op == "delete" and mod.values and schema.kind_of(mod.attribute) == "dn":
                for v in mod.values:
                    raw = encode(v)
                    if _TOMBSTONE.search(raw):
                        continue
                    try:
                        if dnu.normalize(raw.decode("utf-8", "replace")).lower() not in self._guids:
                            return True
                    except InputError:
                        continue
        return False

    def _changes(self, mods: Sequence[ModLike], ops: Mapping[str, str] | None = None
                 ) -> dict[str, list[tuple[str, list[bytes]]]]:
        """ldap3's modify argument (by attribute, in order); `ops` names the operations
        (ldap3's constants unless told)."""
        changes: dict[str, list[tuple[str, list[bytes]]]] = {}
        for mod in mods:
            op = (ops or _LDAP3_OPERATIONS)[mod.op]
            values = [encode(v) for v in mod.values]
            if (mod.op == "delete" and self.is_active_directory and values
                    and schema.kind_of(mod.attribute) == "dn"):
                values = [self._by_guid(v) for v in values]
            changes.setdefault(mod.attribute, []).append((op, values))
        return changes

    def _modify_request(self, dn: str, mods: Sequence[ModLike]) -> Callable[[int], bytes]:
        """The pipelined modify of dn, encoded once its message ID is known."""
        changes = ber.changes_of(self._changes(mods, ops=_OPERATIONS))
        return functools.partial(ber.modify, dn=dn, changes=changes)

    def modify(self, dn: str, mods: Sequence[ModLike]) -> None:
        changes = self._changes(mods)
        try:
            ok = self.connection.modify(dn, changes)
        except LDAPException as exc:
            raise DirectoryError(f"{dn}: modify failed: {exc}", dn=dn) from None
        if not ok:
            self._raise(dn)

    def _by_guid(self, value: bytes) -> bytes:
        """A DN value to delete, named by its target's objectGUID where the target exists.

        Active Directory shows a non-linked DN value (homeMTA, publicDelegates) under
        its target's current name after a rename, but Samba matches a delete only
        against the string it stored, which names nothing any more; `<GUID=…>` names
        the object itself and matches on both.  Targets are few (stores, MTAs): the
        GUIDs are cached."""
        tomb = _TOMBSTONE.search(value)
        if tomb:  # a value that followed its target into Deleted Objects
            return b"<GUID=" + tomb.group(1) + b">"
        try:
            text = dnu.normalize(value.decode("utf-8", "replace"))
        except InputError:
            return value
        key = text.lower()
        if key not in self._guids:
            entry = self.read(text, ("objectGUID",))
            guid = entry.first("objectGUID") if entry is not None else None
            self._guids[key] = (f"<GUID={uuid.UUID(bytes_le=guid)}>".encode()
                                if isinstance(guid, bytes) and len(guid) == 16 else None)
        return self._guids[key] or value

    def add(self, dn: str, attributes: Mapping[str, Sequence[Value]]) -> None:
        attrs = {k: [encode(v) for v in vals] for k, vals in attributes.items()}
        classes = attrs.pop("objectClass", None) or attrs.pop("objectclass", None)
        try:
            ok = self.connection.add(dn, [c.decode() for c in classes] if classes else None, attrs)
        except LDAPException as exc:
            raise DirectoryError(f"{dn}: add failed: {exc}", dn=dn) from None
        if not ok:
            self._raise(dn)

    def delete(self, dn: str) -> None:
        try:
            ok = self.connection.delete(dn)
        except LDAPException as exc:
            raise DirectoryError(f"{dn}: delete failed: {exc}", dn=dn) from None
        if not ok:
            self._raise(dn)

    def rename(self, dn: str, new_rdn: str, new_superior: str | None = None) -> str:
        self._guids.clear()  # names change; GUIDs do not, but the keys are names
        try:
            ok = self.connection.modify_dn(dn, new_rdn, delete_old_dn=True,
                                           new_superior=new_superior)
        except LDAPException as exc:
            raise DirectoryError(f"{dn}: rename failed: {exc}", dn=dn) from None
        if not ok:
            self._raise(dn)
        return dnu.join(new_rdn, new_superior or dnu.parent(dn))

    def close(self) -> None:
        try:
            self.connection.unbind()
        except Exception:
            pass


_ROOT_DSE_ATTRIBUTES = ("namingContexts", "supportedCapabilities", "defaultNamingContext",
                        "configurationNamingContext", "schemaNamingContext", "dsServiceName")


def _root_dse(connection: Connection) -> dict[str, list[str]]:
    """The rootDSE facts exdir uses, read directly (ldap3 folds supportedCapabilities
    into supportedFeatures, where AD's capabilities cannot be told apart)."""
    try:
        ok = connection.search("", "(objectClass=*)", search_scope=BASE,
                               attributes=list(_ROOT_DSE_ATTRIBUTES))
    except LDAPException as exc:
        raise ConnectionFailed(f"cannot read the rootDSE: {exc}") from None
    if not ok or not connection.response:
        raise ConnectionFailed("the server did not return its rootDSE")
    raw = connection.response[0].get("raw_attributes") or {}
    return {k.lower(): [v.decode("utf-8", "replace") for v in vals] for k, vals in raw.items()}


def _first(value: object) -> str | None:
    if isinstance(value, (list, tuple)):
        return str(value[0]) if value else None
    return str(value) if value else None


def open_url(url: str, bind_dn: str | None = None, password: str | None = None, *,
             starttls: bool = False, ca_file: str | None = None, insecure: bool = False,
             timeout: int = 10, auth: str = "simple",
             sasl_host: str | None = None) -> LdapDirectory:
    """Connect and bind (exdir.backends.binds.connect: ldaps and StartTLS verify the
    server's certificate and that it names the host in the URL unless insecure;
    auth "simple", "ntlm" or "kerberos"), then read the rootDSE."""
    return LdapDirectory(url, binds.connect(url, bind_dn, password, starttls=starttls,
                                            ca_file=ca_file, insecure=insecure,
                                            timeout=timeout, auth=auth, sasl_host=sasl_host))
