"""Realistic plans built from a directory's own data, and the tools to judge an apply.

The apply tests never hard-code an end state: plans are derived from what the
directory holds (its stores, its mailboxes, its admin groups), and the expected
end state is derived from the plan by `simulate`, a small model of LDAP write
semantics that is independent of exdir.apply.  `snapshot`/`slapd_state` give
every entry in a comparable form (values as exact bytes, sorted; DNs as keys),
so "identical to before" means identical, entry by entry and byte for byte.
"""
from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

from ldap3.utils.conv import escape_filter_chars
from ldap3.utils.dn import escape_rdn

from exdir import dn as dnu
from exdir import schema
from exdir.backends.base import Directory, Entry, ModLike
from exdir.values import Value
from exdir.errors import DirectoryError
from exdir.plan import Add, Change, Delete, Mod, Modify, Plan, Rename, add_values, replace_value
from exdir.readers.topology import read_topology

if TYPE_CHECKING:
    from tests.servers.slapd import Slapd

Snapshot = dict[str, dict[str, list[bytes]]]
"""dn.key -> lower-case attribute -> sorted raw values (DN values: see dn_form)."""

# server-owned attributes slapd adds; they are not part of the data
OPERATIONAL = frozenset({"entrydn", "entryuuid", "entrycsn", "createtimestamp", "modifytimestamp",
                         "creatorsname", "modifiersname", "structuralobjectclass",
                         "subschemasubentry", "hassubordinates"})

MAILBOX_ATTRIBUTES = ("homeMDB", "homeMTA", "msExchHomeServerName", "legacyExchangeDN",
                      "proxyAddresses", "mailNickname", "objectClass")


# --- comparing states -----------------------------------------------------------------

def _raw(value: Value) -> bytes:
    return value if isinstance(value, bytes) else value.encode("utf-8")


def dn_form(text: str) -> str:
    """A DN value with its attribute types in lower case, its values exactly as they are.

    slapd "prettifies" DN-syntax values written over LDAP (`CN=` becomes `cn=`) but keeps
    what slapadd loaded, so a value restored by an undo can differ from the loaded one
    in the case of its attribute types alone; any other difference still shows.
    """
    try:
        return ",".join(f"{a.lower()}={escape_rdn(v)}" for a, v in dnu.split(text))
    except Exception:  # noqa: BLE001 - not a DN: compared as it is
        return text


def _comparable(name: str, value: Value) -> bytes:
    if isinstance(value, str) and schema.kind_of(name) == "dn":
        value = dn_form(value)
    return _raw(value)


def _state_of(items: Iterable[tuple[str, Mapping[str, Sequence[Value]]]]) -> Snapshot:
    out: Snapshot = {}
    for dn, attributes in items:
        out[dnu.key(dn)] = {name.lower(): sorted(_comparable(name, v) for v in values)
                            for name, values in attributes.items()
                            if values and name.lower() not in OPERATIONAL}
    return out


def snapshot(directory: Directory) -> Snapshot:
    """Every entry of the directory (the domain subtree holds the configuration too)."""
    return _state_of((e.dn, e.attributes)
                     for e in directory.search(directory.naming.domain, "(objectClass=*)", ("*",)))


# What Active Directory itself rewrites on every write, and the replication state a
# DC keeps of its partners (repsTo/repsFrom change whenever a second DC, the RODC of
# tests/test_samba_rodc.py, pulls: the domain root's repsTo differed between two
# snapshots with nothing written): not the data's.
AD_BOOKKEEPING = frozenset({"whenchanged", "usnchanged", "replpropertymetadata",
                            "dscorepropagationdata", "repsto", "repsfrom"})


def data_of(state: Snapshot) -> Snapshot:
    """A snapshot without what AD stamps on each write (whenChanged, uSNChanged…)."""
    return {k: {a: v for a, v in attrs.items() if a not in AD_BOOKKEEPING}
            for k, attrs in state.items()}


def data_snapshot(directory: Directory) -> Snapshot:
    """A lab's state() where AD writes: every entry, without AD's bookkeeping."""
    return data_of(snapshot(directory))


def slapd_state(server: "Slapd") -> Snapshot:
    """Every entry of a slapd as a client sees it (OpenLDAP's ldapsearch, not exdir)."""
    return _state_of(server.entries().items())


def differences(before: Snapshot, after: Snapshot, limit: int = 8) -> list[str]:
    """Human-readable differences, for assertion messages (empty when identical)."""
    out: list[str] = []
    for k in sorted(set(before) | set(after)):
        if k not in after:
            out.append(f"gone: {k}")
        elif k not in before:
            out.append(f"new: {k}")
        elif before[k] != after[k]:
            a, b = before[k], after[k]
            for name in sorted(set(a) | set(b)):
                if a.get(name) != b.get(name):
                    out.append(f"{k}: {name}: {a.get(name)!r} -> {b.get(name)!r}")
        if len(out) >= limit:
            out.append("...")
            break
    return out


# --- a model of what a plan does --------------------------------------------------------

def _same(attribute: str, a: bytes, b: bytes) -> bool:
    """Exact bytes, else as the matching rule would see it (the values a plan carries come
    from the directory, so the exact case is the normal one)."""
    if a == b:
        return True
    if schema.is_binary(attribute) or schema.is_case_exact(attribute):
        return False
    if schema.kind_of(attribute) == "dn":
        return dnu.key(a.decode()) == dnu.key(b.decode())
    return a.decode("utf-8", "replace").lower() == b.decode("utf-8", "replace").lower()


def _apply_mods(dn: str, entry: dict[str, list[bytes]], mods: Sequence[ModLike]) -> None:
    for mod in mods:
        name = mod.attribute.lower()
        have = entry.setdefault(name, [])
        if mod.op == "add":
            have.extend(_comparable(name, v) for v in mod.values)
        elif mod.op == "replace":
            have[:] = [_comparable(name, v) for v in mod.values]
        elif not mod.values:
            have.clear()
        else:
            for v in mod.values:
                i = next((i for i, h in enumerate(have) if _same(name, h, _comparable(name, v))), None)
                if i is None:
                    raise AssertionError(f"model: {dn} has no {mod.attribute} {v!r} to delete")
                del have[i]
        if not have:
            del entry[name]


def simulate(before: Snapshot, plan: Plan | Iterable[Change], follows_references: bool
             ) -> Snapshot:
    """The state a plan leads to, computed without a directory.

    Renames move the subtree and swap the naming value (deleteoldrdn: 1); DN-valued
    attributes that point into the subtree follow only where the backend makes them
    follow (AD, the LDIF lab) — on slapd without refint they stay stale.
    """
    state = copy.deepcopy(before)
    for change in plan:
        key = dnu.key(change.dn)
        if isinstance(change, Modify):
            _apply_mods(change.dn, state[key], change.mods)
        elif isinstance(change, Add):
            attrs: dict[str, list[bytes]] = {}
            for name, values in change.attributes:
                attrs.setdefault(name.lower(), []).extend(_comparable(name, v) for v in values)
            rdn_attr, rdn_value = dnu.split(change.dn)[0]
            naming = attrs.setdefault(rdn_attr.lower(), [])
            if not any(_same(rdn_attr, v, rdn_value.encode()) for v in naming):
                naming.append(rdn_value.encode())
            assert key not in state, f"model: {change.dn} exists"
            state[key] = attrs
        elif isinstance(change, Delete):
            del state[key]
        elif isinstance(change, Rename):
            new_key = dnu.key(change.new_dn)
            for k in [k for k in state if k == key or k.endswith("," + key)]:
                state[k[: len(k) - len(key)] + new_key] = state.pop(k)
            entry = state[new_key]
            old_attr, old_value = dnu.split(change.dn)[0]
            new_attr, new_value = dnu.split(change.new_dn)[0]
            kept = [v for v in entry.get(old_attr.lower(), [])
                    if not _same(old_attr, v, old_value.encode())]
            entry[old_attr.lower()] = kept
            if not kept:
                del entry[old_attr.lower()]
            naming = entry.setdefault(new_attr.lower(), [])
            if not any(_same(new_attr, v, new_value.encode()) for v in naming):
                naming.append(new_value.encode())
            if follows_references:
                dn_attrs = schema.dn_attributes()
                for e in state.values():
                    for name, held in e.items():
                        if name in dn_attrs:
                            e[name] = [_rebased(v, change.dn, change.new_dn) for v in held]
        for e in state.values():
            for name in e:
                e[name].sort()
    return state


def _rebased(value: bytes, old: str, new: str) -> bytes:
    text = value.decode("utf-8", "replace")
    try:
        if dnu.is_within(text, old):
            return dn_form(dnu.rebase(text, old, new)).encode("utf-8")
    except Exception:  # noqa: BLE001 - not a DN: left alone, as the server would
        pass
    return value


# --- what the directory holds -------------------------------------------------------------

@dataclass(frozen=True)
class Home:
    """Where a mailbox can live: the three attributes a move rewrites."""

    store: str  # homeMDB
    mta: str  # homeMTA
    server: str  # msExchHomeServerName: the server's legacyExchangeDN
    admin_group: str  # the admin group's DN


def homes(directory: Directory) -> list[Home]:
    """Every mailbox store whose server has an MTA and a legacyExchangeDN."""
    topo = read_topology(directory)
    servers = {dnu.key(s.dn): s for s in topo.servers}
    out: list[Home] = []
    for store in topo.stores:
        server = servers.get(dnu.key(store.server)) if store.server else None
        mta = topo.mta_of(store.server) if store.server else None
        if store.public or server is None or mta is None or not server.legacy_dn:
            continue
        out.append(Home(store.dn, mta.dn, server.legacy_dn, server.admin_group or ""))
    return out


def mailboxes(directory: Directory) -> list[Entry]:
    """Every mailbox (an object with a homeMDB), in DN order whatever the backend."""
    found = directory.search(directory.naming.domain, "(homeMDB=*)", MAILBOX_ATTRIBUTES)
    return sorted(found, key=lambda e: dnu.key(e.dn))


def home_of(mailbox: Entry, choices: Sequence[Home]) -> Home | None:
    current = mailbox.text("homeMDB") or ""
    return next((h for h in choices if dnu.key(h.store) == dnu.key(current)), None)


def move(mailbox: Entry, target: Home, reason: str = "") -> Modify:
    """homeMDB, homeMTA and msExchHomeServerName rewritten to the target's (delete old, add new)."""
    reason = reason or f"move {dnu.rdn_value(mailbox.dn)} to {dnu.rdn_value(target.store)}"
    mods: list[Mod] = []
    for attribute, new in (("homeMDB", target.store), ("homeMTA", target.mta),
                           ("msExchHomeServerName", target.server)):
        mods += replace_value(mailbox.dn, attribute, mailbox.get(attribute), [new], reason).mods
    return Modify(mailbox.dn, tuple(mods), reason)


def other_home(mailbox: Entry, choices: Sequence[Home]) -> Home:
    """Another store, in the mailbox's admin group where there is one (moves stay local)."""
    current = home_of(mailbox, choices)
    others = [h for h in choices if current is None or dnu.key(h.store) != dnu.key(current.store)]
    if not others:
        raise ValueError("the directory has one mailbox store: nowhere to move to")
    if current is not None:
        local = [h for h in others if dnu.key(h.admin_group) == dnu.key(current.admin_group)]
        if local:
            others = local
    return others[sum(map(ord, mailbox.dn)) % len(others)]


def x500(mailbox: Entry, reason: str = "") -> Modify | None:
    """Add X500:<legacyExchangeDN> (what a move or rename keeps so old replies resolve);
    None where the mailbox has no legacyExchangeDN or already holds that proxy."""
    legacy = mailbox.text("legacyExchangeDN")
    if not legacy:
        return None
    value = "X500:" + legacy
    if any(p.lower() == value.lower() for p in mailbox.texts("proxyAddresses")):
        return None
    return add_values(mailbox.dn, "proxyAddresses", [value],
                      reason or f"keep {legacy} reachable as an X500 proxy")


def rename_admin_group(directory: Directory, old_name: str, new_name: str) -> list[Change]:
    """What `exdir rename admin-group OLD NEW` plans, derived from the directory's data.

    The rename itself, then every legacyExchangeDN and msExchHomeServerName under the old
    `/o=Org/ou=OLD` prefix rewritten (recipients keep the old value as X500) — each
    addressed by its DN after the rename — and, where the server does not make DN
    references follow a rename, every DN-valued attribute pointing into the group.
    """
    topo = read_topology(directory)
    group = topo.admin_group(old_name)
    if group is None or not group.legacy_dn:
        raise ValueError(f"no admin group {old_name!r} with a legacyExchangeDN")
    suffix = "/ou=" + dnu.rdn_value(group.dn)
    if not group.legacy_dn.lower().endswith(suffix.lower()):
        raise ValueError(f"{group.legacy_dn} does not end with {suffix}")
    old_prefix = group.legacy_dn
    new_prefix = old_prefix[: len(old_prefix) - len(suffix)] + "/ou=" + new_name
    new_rdn = "CN=" + escape_rdn(new_name)
    new_dn = dnu.join(new_rdn, dnu.parent(group.dn))
    changes: list[Change] = [Rename(group.dn, new_rdn, None,
                                    f"rename the admin group {old_name} to {new_name}")]
    follows = directory.follows_dn_references
    dn_attrs = schema.dn_attributes()

    def renamed(text: str) -> str:
        return dnu.rebase(text, group.dn, new_dn) if dnu.is_within(text, group.dn) else text

    def under(value: str) -> bool:
        low = value.lower()
        return low == old_prefix.lower() or low.startswith(old_prefix.lower() + "/")

    config: list[Change] = []
    recipients: list[Change] = []
    for entry in sorted(directory.search(directory.naming.domain, "(objectClass=*)", ("*",)),
                        key=lambda e: (dnu.depth(e.dn), dnu.key(e.dn))):
        mods: list[Mod] = []
        legacy = entry.text("legacyExchangeDN")
        is_recipient = not dnu.is_within(entry.dn, directory.naming.configuration)
        if legacy and under(legacy):
            fresh = new_prefix + legacy[len(old_prefix):]
            mods += replace_value(entry.dn, "legacyExchangeDN", [legacy], [fresh], "").mods
            if is_recipient:
                proxy = "X500:" + legacy
                if not any(p.lower() == proxy.lower() for p in entry.texts("proxyAddresses")):
                    mods.append(Mod("add", "proxyAddresses", (proxy,)))
        home_server = entry.text("msExchHomeServerName")
        if home_server and under(home_server):
            mods += replace_value(entry.dn, "msExchHomeServerName", [home_server],
                                  [new_prefix + home_server[len(old_prefix):]], "").mods
        if not follows:
            for name, values in entry.attributes.items():
                if name.lower() not in dn_attrs or name.lower() in OPERATIONAL:
                    continue
                stale = [v for v in values if isinstance(v, str) and _within(v, group.dn)]
                if stale:
                    mods += replace_value(entry.dn, name, stale, [renamed(v) for v in stale],
                                          "").mods
        if mods:
            what = "recipient" if is_recipient else "configuration object"
            step = Modify(renamed(entry.dn), tuple(mods),
                          f"{what} under /ou={old_name} rewritten for /ou={new_name}"
                          + (" (old value kept as X500)" if is_recipient and legacy
                             and under(legacy) else ""))
            (recipients if is_recipient else config).append(step)
    return changes + config + recipients


def _within(value: str, base: str) -> bool:
    try:
        return dnu.is_within(value, base)
    except Exception:  # noqa: BLE001 - not a DN
        return False


def new_contact(directory: Directory, name: str, parent: str | None = None,
                avoid: str | None = None) -> Add:
    """A mail-enabled contact like the ones the directory holds (legacyExchangeDN under the
    first admin group's recipients, other than `avoid`: a plan that renames that group
    must not write a value under its old prefix)."""
    topo = read_topology(directory)
    group = next((g for g in topo.admin_groups if g.legacy_dn
                  and (avoid is None or g.name.lower() != avoid.lower())), None)
    assert group is not None and group.legacy_dn
    parent = parent or f"OU=Staff,{directory.naming.domain}"
    alias = "".join(c for c in name if c.isalnum())
    domain = ".".join(v for a, v in dnu.split(directory.naming.domain) if a.lower() == "dc")
    dn = dnu.join("CN=" + escape_rdn(name), parent)
    return Add(dn, (
        ("objectClass", ("top", "person", "organizationalPerson", "contact")),
        ("cn", (name,)), ("sn", (name.split()[-1],)), ("displayName", (name,)),
        ("mail", (f"{alias.lower()}@partner.example",)), ("mailNickname", (alias,)),
        ("targetAddress", (f"SMTP:{alias.lower()}@partner.example",)),
        ("legacyExchangeDN", (f"{group.legacy_dn}/cn=Recipients/cn={alias}",)),
        ("proxyAddresses", (f"SMTP:{alias.lower()}@partner.example",
                            f"smtp:{alias.lower()}@{domain}")),
    ), f"create the contact {name}")


def delete_one(directory: Directory, object_class: str = "contact") -> Delete:
    """Remove the first leaf of a class (a contact by default), carrying the entry it removes."""
    flt = f"(objectClass={escape_filter_chars(object_class)})"
    found = sorted(directory.search(directory.naming.domain, flt, ("*",)),
                   key=lambda e: dnu.key(e.dn))
    if not found:
        raise ValueError(f"no {object_class} to delete")
    victim = found[0]
    old = tuple((n, tuple(v)) for n, v in victim.attributes.items()
                if n.lower() not in OPERATIONAL)
    return Delete(victim.dn, f"remove the {object_class} {dnu.rdn_value(victim.dn)}", old)


# --- the plans the tests use --------------------------------------------------------------

def mixed_plan(directory: Directory, size: int | None = None, *,
               admin_group: str = "Europe", renamed_to: str = "Europe West") -> Plan:
    """Moves of several mailboxes, a rename of an admin group with the steps after it that
    address the renamed DNs, an add, a delete and X500 adds — trimmed to `size` steps.

    Mailboxes homed in the renamed group are left to the rename's steps so that no two
    blocks of the plan disagree about a value.
    """
    choices = homes(directory)
    group_key = dnu.key(read_topology(directory).admin_group(admin_group).dn)  # type: ignore[union-attr]
    rename = rename_admin_group(directory, admin_group, renamed_to)
    touched = {dnu.key(c.dn) for c in rename}
    local = [h for h in choices if dnu.key(h.admin_group) != group_key]
    movable = []
    for box in mailboxes(directory):
        home = home_of(box, choices)
        if home is None or dnu.key(home.admin_group) == group_key:
            continue
        if dnu.key(box.dn) in touched:
            continue
        movable.append(box)
    moves = [move(b, other_home(b, local)) for b in movable]
    proxies = [p for p in (x500(b) for b in movable) if p is not None]
    add = new_contact(directory, "Partner Desk", avoid=admin_group)
    delete = delete_one(directory)
    fixed = len(rename) + 2
    if size is not None:
        room = size - fixed
        if room < 2 or len(moves) + len(proxies) < room:
            raise ValueError(f"the directory is too small for a {size}-step plan")
        n_moves = min(len(moves), max(1, (room + 1) // 2))
        n_proxies = room - n_moves
        if n_proxies > len(proxies):
            n_proxies, n_moves = len(proxies), room - len(proxies)
        moves, proxies = moves[:n_moves], proxies[:n_proxies]
    half = len(moves) // 2
    changes: list[Change] = [*moves[:half], *rename, add, *moves[half:], delete, *proxies]
    plan = Plan(tuple(changes))
    assert size is None or len(plan) == size, (len(plan), size)
    return plan


def moves_plan(directory: Directory, size: int, x500_share: float = 0.3) -> Plan:
    """`size` modify steps: mailbox moves across stores, then X500 adds on other mailboxes."""
    choices = homes(directory)
    boxes = mailboxes(directory)
    n_proxies = int(size * x500_share)
    n_moves = size - n_proxies
    if len(boxes) < n_moves:
        raise ValueError(f"{len(boxes)} mailboxes: too few for {n_moves} moves")
    moves = [move(b, other_home(b, choices)) for b in boxes[:n_moves]]
    proxies = [p for p in (x500(b) for b in boxes[n_moves:] + boxes[:n_moves]) if p is not None]
    if len(proxies) < n_proxies:
        raise ValueError("too few mailboxes without their X500 proxy")
    return Plan(tuple(moves + proxies[:n_proxies]))


def tricky_values_plan(directory: Directory) -> tuple[Plan, list[str]]:
    """Descriptions with a newline and a leading space (and a trailing one, a colon, non-ASCII)
    on two mailboxes: values only base64 keeps intact through LDIF."""
    values = ["first line\nsecond line", " leading space", "trailing space ", ": colon first",
              "Müller < Straße"]
    boxes = mailboxes(directory)[:2]
    changes = []
    for i, box in enumerate(boxes):
        mine = values[i::2]
        changes.append(replace_value(box.dn, "description", [], mine,
                                     "values LDIF must base64-encode"))
    return Plan(tuple(changes)), values


# --- a directory that fails on purpose ------------------------------------------------------

class Faulty(Directory):
    """Wraps a Directory; `before_write(n, what, dn)` runs before the n-th write (1-based) and
    may raise, `after_write` after it; `lie` can doctor what read_many returns."""

    def __init__(self, inner: Directory, *,
                 before_write: Callable[[int, str, str], None] | None = None,
                 after_write: Callable[[int, str, str], None] | None = None,
                 lie: Callable[[dict[str, Entry], int], dict[str, Entry]] | None = None) -> None:
        self.inner = inner
        self.backend = inner.backend
        self.is_active_directory = inner.is_active_directory
        self.naming = inner.naming
        self.writes = 0
        self.log: list[tuple[str, str]] = []
        self._before, self._after, self._lie = before_write, after_write, lie

    def search(self, *args: Any, **kwargs: Any):  # type: ignore[no-untyped-def]
        return self.inner.search(*args, **kwargs)

    def read(self, dn: str, attributes: Sequence[str] = ("*",)) -> Entry | None:
        return self.inner.read(dn, attributes)

    def read_many(self, dns: Iterable[str], attributes: Sequence[str] = ("*",)
                  ) -> dict[str, Entry]:
        found = self.inner.read_many(dns, attributes)
        return self._lie(found, self.writes) if self._lie else found

    def _write(self, what: str, dn: str, call: Callable[[], Any]) -> Any:
        self.writes += 1
        n = self.writes
        if self._before:
            self._before(n, what, dn)
        out = call()
        self.log.append((what, dn))
        if self._after:
            self._after(n, what, dn)
        return out

    def modify(self, dn: str, mods: Sequence[ModLike]) -> None:
        self._write("modify", dn, lambda: self.inner.modify(dn, mods))

    def add(self, dn: str, attributes: Mapping[str, Sequence[Value]]) -> None:
        self._write("add", dn, lambda: self.inner.add(dn, attributes))

    def delete(self, dn: str) -> None:
        self._write("delete", dn, lambda: self.inner.delete(dn))

    def rename(self, dn: str, new_rdn: str, new_superior: str | None = None) -> str:
        return self._write("rename", dn, lambda: self.inner.rename(dn, new_rdn, new_superior))

    def save(self) -> None:
        self.inner.save()

    def close(self) -> None:
        self.inner.close()

    def describe(self) -> str:
        return "faulty " + self.inner.describe()


def fail_at(*numbers: int) -> Callable[[int, str, str], None]:
    """A before_write hook raising DirectoryError on the given write numbers."""
    wanted = set(numbers)

    def hook(n: int, what: str, dn: str) -> None:
        if n in wanted:
            raise DirectoryError(f"{dn}: injected failure at write {n} ({what})", dn=dn,
                                 result="unavailable")
    return hook


def reply_lost_at(k: int) -> Callable[[int, str, str], None]:
    """An after_write hook: the k-th write is made, then its reply is lost (the connection
    drops after the server committed), so the step that "failed" must be undone too."""
    def hook(n: int, what: str, dn: str) -> None:
        if n == k:
            raise DirectoryError(f"{dn}: connection reset after the {what} was sent", dn=dn,
                                 result="unavailable")
    return hook


def write_by_hand(directory: Directory, change: Change) -> None:
    """What an administrator (or an interrupted exdir) did: the change, straight to the server."""
    if isinstance(change, Modify):
        directory.modify(change.dn, change.mods)
    elif isinstance(change, Rename):
        directory.rename(change.dn, change.new_rdn, change.new_superior)
    elif isinstance(change, Add):
        directory.add(change.dn, {n: list(v) for n, v in change.attributes})
    elif isinstance(change, Delete):
        directory.delete(change.dn)
