"""Renames the legacydn.exe way: the organisation, an administrative group, one value.

Active Directory moves the renamed container's subtree and rewrites DN-valued
references, but never the strings that carry the organisation and group names:
legacyExchangeDN on every Exchange object and recipient, msExchHomeServerName
on every mailbox.  A rename plan renames the container and rewrites each of
those values, keeps each recipient's old value as an `X500:` proxy, and on a
server that does not make references follow (slapd) rewrites the references too.

Planning is pure: the entries come from exdir.readers.recipients (one paged search
per partition), and nothing here reads the directory.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Iterable, Iterator, Sequence

from . import dn as dnu
from .entries import EntryLike, Partitions
from .errors import InputError, Refused
from .ledger import Step, in_order
from .legacydn import check_name, check_value, has_prefix, rewrite, same
from .plan import Change, Mod, Modify, Plan, Rename
from .topology import E2007_ADMIN_GROUP, Topology, renameable

VALUE_ATTRIBUTES = ("legacyExchangeDN", "msExchHomeServerName")
# DN-valued attributes that point into the Exchange configuration: on a server that
# does not rewrite references on rename, the plan must rewrite these itself.
REFERENCE_ATTRIBUTES = ("homeMDB", "homeMTA", "msExchResponsibleMTAServer", "showInAddressBook",
                        "altRecipient", "publicDelegates", "msExchHomeSyncService", "managedBy",
                        "member")
#: what a rename or `legacydn set` reads of each entry
READ = ("objectClass", "cn", "mailNickname", "proxyAddresses", *VALUE_ATTRIBUTES,
        *REFERENCE_ATTRIBUTES)


@dataclass(frozen=True)
class RenameScope:
    """What one rename changes: the container and the legacyExchangeDN prefix."""

    what: str  # "organisation" or "administrative group"
    container: str  # DN of the object renamed
    new_name: str
    old_prefix: str
    new_prefix: str

    @cached_property
    def new_rdn(self) -> str:
        return dnu.build([("CN", self.new_name)])

    @cached_property
    def new_container(self) -> str:
        """Asked once per entry planned: built once (it was 13 % of a 100k dry run)."""
        return dnu.join(self.new_rdn, dnu.parent(self.container))


def _require_rename_allowed(dn: str, flags: int | None, what: str) -> None:
    """AD refuses to rename a configuration object without FLAG_CONFIG_ALLOW_RENAME."""
    if not renameable(flags):
        shown = "no systemFlags" if flags is None else f"systemFlags {flags}"
        raise Refused(f"the {what} {dnu.rdn_value(dn)!r} has {shown}: without "
                      "FLAG_CONFIG_ALLOW_RENAME (0x40000000) Active Directory refuses to rename "
                      "it, and the flag can only be set when the object is created")


def org_scope(topology: Topology, new_name: str) -> RenameScope:
    """The rename of the organisation to new_name, validated (InputError: exit 2)."""
    org = topology.organization
    check_name(new_name, "organisation")
    if new_name.lower() == org.name.lower():
        raise InputError(f"the organisation is already named {org.name!r}")
    old_prefix = org.legacy_dn or f"/o={org.name}"
    _require_rename_allowed(org.dn, org.system_flags, "organisation")
    return RenameScope("organisation", org.dn, new_name, old_prefix, f"/o={new_name}")


def admin_group_scope(topology: Topology, old_name: str, new_name: str) -> RenameScope:
    """The rename of one administrative group, validated (InputError: exit 2)."""
    group = topology.admin_group(old_name)
    if group is None:
        known = ", ".join(g.name for g in topology.admin_groups) or "none"
        raise InputError(f"no administrative group named {old_name!r} (there are: {known})")
    if group.name.lower() == E2007_ADMIN_GROUP.lower():
        raise Refused(f"{E2007_ADMIN_GROUP!r} is where Exchange 2007 and later keep their "
                      "servers: it must not be renamed")
    check_name(new_name, "administrative group")
    if new_name.lower() == E2007_ADMIN_GROUP.lower():
        raise InputError(f"{E2007_ADMIN_GROUP!r} is reserved for Exchange 2007 and later")
    for other in topology.admin_groups:
        if other.name.lower() == new_name.lower():
            raise InputError(f"an administrative group named {other.name!r} exists already")
    org_prefix = topology.organization.legacy_dn or f"/o={topology.organization.name}"
    old_prefix = group.legacy_dn or f"{org_prefix}/ou={group.name}"
    if not has_prefix(old_prefix, org_prefix):
        raise Refused(f"the group's legacyExchangeDN {old_prefix!r} is not under the "
                      f"organisation's {org_prefix!r}; run `exdir legacydn audit` first")
    new_prefix = rewrite(old_prefix, old_prefix, f"{org_prefix}/ou={new_name}") or ""
    _require_rename_allowed(group.dn, group.system_flags, "administrative group")
    return RenameScope("administrative group", group.dn, new_name, old_prefix, new_prefix)


def _is_recipient(entry: EntryLike, naming: Partitions) -> bool:
    """A mail recipient: in a domain partition, with a mailNickname or proxyAddresses."""
    if naming.configuration and dnu.is_within(entry.dn, naming.configuration):
        return False
    return entry.has("mailNickname") or entry.has("proxyAddresses")


def x500_of(old_value: str, proxies: Iterable[str]) -> str | None:
    """The X500 proxy to add for old_value, or None where an equal one is there."""
    wanted = f"X500:{old_value}"
    if any(same(p, wanted) for p in proxies):
        return None
    return wanted


def plan_rename(scope: RenameScope, entries: Iterable[EntryLike], naming: Partitions, *,
                keep_x500: bool = True, rewrite_references: bool = False) -> Plan:
    """The whole rename as one plan: the container first, then every value.

    Steps after the rename address entries by their new DNs, so the plan replays
    in order with ldapmodify.  Pure: no directory access.
    """
    return Plan(tuple(in_order(rename_steps(scope, entries, naming, keep_x500=keep_x500,
                                            rewrite_references=rewrite_references))))


def rename_steps(scope: RenameScope, entries: Iterable[EntryLike], naming: Partitions, *,
                 keep_x500: bool = True, rewrite_references: bool = False
                 ) -> Iterator[Step]:
    """plan_rename's steps as they are made, each entry's with where it sorts
    (configuration first, parents first, then by DN: the order only makes the output
    stable), so a dry run holds neither the entries read nor the plan (at 100,000
    mailboxes the entries read were 630 MB, the steps 180)."""
    yield None, Rename(
        scope.container, scope.new_rdn, None,
        f"rename the {scope.what} {dnu.rdn_value(scope.container)!r} to {scope.new_name!r}; "
        "Active Directory moves its subtree" + (" and every DN reference"
                                                if not rewrite_references else ""))
    old_c, new_c = scope.container, scope.new_container
    for e in entries:
        placed = _Placed.of(e, naming.configuration, old_c, new_c)
        step = _value_step(placed, scope, keep_x500, rewrite_references)
        if step is not None:
            yield placed.order, step


def _value_step(placed: "_Placed", scope: RenameScope, keep_x500: bool,
                rewrite_references: bool) -> Modify | None:
    """The rename's step for one entry: its values under the old prefix rewritten, the
    old legacyExchangeDN kept as an X500 proxy, references rebased; None if none."""
    entry = placed.entry
    old_c, new_c = scope.container, scope.new_container
    mods: list[Mod] = []
    rewritten_legacy: str | None = None
    for attr in VALUE_ATTRIBUTES:
        for value in entry.texts(attr):
            new_value = rewrite(value, scope.old_prefix, scope.new_prefix)
            if new_value is None or new_value == value:
                continue
            mods += [Mod("delete", attr, (value,)), Mod("add", attr, (new_value,))]
            if attr == "legacyExchangeDN":
                rewritten_legacy = value
    recipient = not placed.in_config and (entry.has("mailNickname")
                                          or entry.has("proxyAddresses"))
    if keep_x500 and recipient and rewritten_legacy is not None:
        proxy = x500_of(rewritten_legacy, entry.texts("proxyAddresses"))
        if proxy:
            mods.append(Mod("add", "proxyAddresses", (proxy,)))
    if rewrite_references:
        for attr in REFERENCE_ATTRIBUTES:
            old_refs = [v for v in entry.texts(attr) if _in(v, old_c)]
            if old_refs:
                mods += [Mod("delete", attr, tuple(old_refs)),
                         Mod("add", attr, tuple(dnu.rebase(v, old_c, new_c)
                                                for v in old_refs))]
    if not mods:
        return None
    return Modify(placed.address, tuple(mods),
                  _reason(entry, placed.name, scope, recipient, keep_x500,
                          placed.address != entry.dn))


@dataclass(frozen=True)
class _Placed:
    """Where an entry sits, from one parse of its DN.

    A rename plans every entry of a partition; exdir.dn's parse cache holds 65536
    DNs, so asking it again later in a second pass over 100k entries parses again.
    """

    entry: EntryLike
    in_config: bool
    address: str  # its DN after the rename
    name: str  # its leaf RDN's value
    order: tuple[bool, int, str]  # configuration first, parents first, then by DN

    @staticmethod
    def of(entry: EntryLike, config: str, old_c: str, new_c: str) -> "_Placed":
        try:
            name = dnu.parse(entry.dn)
        except InputError:  # not a DN exdir can parse: planned where it is
            return _Placed(entry, False, entry.dn, entry.dn, (True, 0, entry.dn.lower()))
        in_config = bool(config) and name.is_within(dnu.parse(config))
        old = dnu.parse(old_c)
        address = entry.dn
        if name.is_within(old):
            address = name.rebase(old, dnu.parse(new_c)).spelled
        # the order only makes the output stable: the spelling, case folded, sorts it
        return _Placed(entry, in_config, address, name.parts[0][1] if name else "",
                       (not in_config, len(name), name.spelled.lower()))


def _in(dn: str, base: str) -> bool:
    try:
        return bool(base) and dnu.is_within(dn, base)
    except InputError:
        return False


def _reason(entry: EntryLike, name: str, scope: RenameScope, recipient: bool, keep_x500: bool,
            moved: bool) -> str:
    classes = entry.object_classes
    kind = next((label for cls, label in (
        ("msexchexchangeserver", "server"), ("msexchprivatemdb", "mailbox store"),
        ("msexchpublicmdb", "public store"), ("mta", "MTA"), ("msexchadmingroup",
                                                               "administrative group"),
        ("msexchorganizationcontainer", "organisation")) if cls in classes),
        "recipient" if recipient else "object")
    what = f"{kind} {name}: values under {scope.old_prefix} rewritten"
    if recipient and keep_x500:
        what += ", old legacyExchangeDN kept as X500"
    if moved:
        what += " (addressed by its DN after the rename)"
    return what


# --- one value ----------------------------------------------------------------------------

def plan_set(entry: EntryLike, new_value: str, context: Sequence[EntryLike], naming: Partitions, *,
             keep_x500: bool = True) -> Plan:
    """One object's legacyExchangeDN changed; for a server, its mailboxes'
    msExchHomeServerName follow.  Pure."""
    check_value(new_value)
    old = entry.text("legacyExchangeDN")
    taken = [e for e in context if dnu.key(e.dn) != dnu.key(entry.dn)
             and any(same(v, new_value) for v in e.texts("legacyExchangeDN"))]
    if taken:
        raise Refused(f"{new_value!r} is already the legacyExchangeDN of {taken[0].dn}: two "
                      "objects with one legacyExchangeDN misdeliver mail")
    proxied = [e for e in context if dnu.key(e.dn) != dnu.key(entry.dn)
               and any(same(p, f"X500:{new_value}") for p in e.texts("proxyAddresses"))]
    if proxied:
        raise Refused(f"{new_value!r} is an X500 proxy of {proxied[0].dn}: two objects "
                      "with one address misdeliver mail (`exdir x500 remove` it there first)")
    if old is not None and old == new_value:
        return Plan(())
    mods: list[Mod] = []
    if old is not None:
        mods.append(Mod("delete", "legacyExchangeDN", (old,)))
    mods.append(Mod("add", "legacyExchangeDN", (new_value,)))
    recipient = _is_recipient(entry, naming)
    if keep_x500 and recipient and old and not same(old, new_value):
        proxy = x500_of(old, entry.texts("proxyAddresses"))
        if proxy:
            mods.append(Mod("add", "proxyAddresses", (proxy,)))
    changes: list[Change] = [Modify(entry.dn, tuple(mods), "legacyExchangeDN set"
                                    + (", old value kept as X500" if recipient and keep_x500
                                       and old else ""))]
    if old and "msexchexchangeserver" in entry.object_classes:
        for other in context:
            homes = [v for v in other.texts("msExchHomeServerName") if same(v, old)]
            if homes:
                changes.append(Modify(other.dn, (Mod("delete", "msExchHomeServerName",
                                                     tuple(homes)),
                                                 Mod("add", "msExchHomeServerName",
                                                     (new_value,))),
                                      f"mailbox on {dnu.rdn_value(entry.dn)}: home server "
                                      "value follows the server's new legacyExchangeDN"))
    return Plan(tuple(changes))
