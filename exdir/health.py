"""Health checks: split and dangling mailboxes, ADC reversions, the legacyExchangeDN audit.

Every check takes what exdir.readers read in bulk (one paged search per partition),
indexes it in memory, and says for each finding what it means and the exdir command
that fixes it.  Nothing here reads the directory.
Evidence, not blame: a homeMDB reset can come from an ADC agreement or from the
Recipient Update Service (KB 903291).
"""
from __future__ import annotations

import json
import os
import xml.etree.ElementTree as ET
from typing import Callable, Iterable, Mapping, Sequence

from . import dn as dnu
from . import values
from .entries import EntryLike
from .errors import InputError
from .findings import NO_FIX, Finding, shell_word
from .holders import ValueHolders
from .legacydn import ADC_DISABLED, has_prefix, is_adc_disabled, problems, rewrite, same
from .legacydn import key as legacy_key
from .topology import HOME, ExchangeServer, Mta, Store, Topology

#: what the health checks read of each recipient
READ = ("objectClass", "cn", "mailNickname", "legacyExchangeDN", "proxyAddresses", *HOME)


def _found(code: str, dn: str, message: str, meaning: str, fix: str,
           details: dict[str, str] | None = None) -> Finding:
    """A health finding: the object, what is wrong, what it means, the command that fixes it."""
    return Finding(code, message, dn=dn, meaning=meaning, fix=fix, details=details or {})


_quote = shell_word  # every fix names its values as one shell word each


def _adc_running(topology: Topology) -> bool:
    """Mixed mode with connection agreements: `exdir move` refuses same-group moves
    unless told the ADC is stopped, so the fix must say so."""
    return topology.organization.might_be_mixed and bool(topology.agreements)


def _move_fix(topology: Topology, who: str, target: str) -> str:
    """`exdir move WHO --to TARGET --apply`, or where the target's server has no MTA
    object (a move would be refused) what is missing and what would make the move
    possible."""
    command = f"exdir move {_quote(who)} --to {_quote(target)}"
    server = _target_server(topology, target)
    if server is not None and topology.mta_of(server.dn) is None:
        mtas = [m.dn for m in topology.mtas]
        which = (f"one of the organisation's MTAs ({'; '.join(mtas[:3])}"
                 + (" …" if len(mtas) > 3 else "") + ")" if mtas else
                 "an MTA object (objectClass mTA, as Exchange setup creates under each server)")
        return (f"{NO_FIX}: {server.name} has no MTA object, so a move there cannot set "
                f"homeMTA; with {which} it is `{command} --home-mta MTA-DN --apply`")
    if _adc_running(topology):
        return f"stop the ADC, then {command} --adc-stopped --apply"
    return f"{command} --apply"


def _target_server(topology: Topology, label: str) -> ExchangeServer | None:
    """The server of a SERVER/STORAGE GROUP/STORE label or a store DN."""
    store = topology.by_dn(label) if "=" in label and "," in label else None
    if isinstance(store, Store):
        return topology.server_of(store.dn)
    return topology.server(label.split("/", 1)[0]) if "/" in label else None


def _who(entry: EntryLike) -> str:
    return entry.text("mailNickname") or entry.dn


def _fix_store(topology: Topology, server: ExchangeServer | None) -> str | None:
    if server is None:
        return None
    stores = [s for s in topology.stores if not s.public and dnu.key(s.server)
              == dnu.key(server.dn)]
    return topology.store_label(stores[0]) if stores else None


def mailbox_findings(topology: Topology, entries: Iterable[EntryLike]) -> list[Finding]:
    """Split mailboxes and home attributes that name nothing (adc check and audit)."""
    out: list[Finding] = []
    root = dnu.parse(topology.exchange_root) if topology.organization else None
    for entry in entries:
        # parse_once: every recipient's name met once, kept out of the DN cache (at
        # 100,000 mailboxes the cached names were a third of the audit's 236 MB peak)
        if not any(entry.has(a) for a in HOME) or (
                root is not None and dnu.parse_once(entry.dn).is_within(root)):
            continue
        who = _who(entry)
        mdb, mta, home = (entry.text(a) for a in HOME)
        store = topology.by_dn(mdb) if mdb else None
        mta_obj = topology.by_dn(mta) if mta else None
        home_obj = topology.by_legacy_dn(home) if home else None
        named: dict[str, ExchangeServer | None] = {
            "homeMDB": topology.server_of(store.dn) if isinstance(store, Store) else None,
            "homeMTA": topology.server_of(mta_obj.dn) if isinstance(mta_obj, Mta) else None,
            "msExchHomeServerName": home_obj if isinstance(home_obj, ExchangeServer) else None,
        }
        authority = named["homeMDB"] or named["msExchHomeServerName"] or named["homeMTA"]
        target = _fix_store(topology, authority) if not isinstance(store, Store) else \
            topology.store_label(store)
        fix = (_move_fix(topology, who, target) if target
               else f"{NO_FIX}: no store to suggest (its home attributes name no server "
                    "exdir knows); choose one, then `exdir move` the mailbox there")
        dangling = False
        if mdb and not isinstance(store, Store) or mdb and isinstance(store, Store) and store.public:
            dangling = True
            out.append(_found("homemdb-dangling", entry.dn,
                               f"{who}: homeMDB names no mailbox store ({mdb})",
                               "the mailbox has no valid store: the store was deleted, renamed "
                               "outside exdir, or restored from elsewhere", fix))
        elif not mdb and "user" in entry.object_classes:
            # Active Directory drops a linked homeMDB with its store; the Recipient
            # Update Service can also meet a user without homeMDB (KB 903291).
            # Users only: mail-enabled public folders carry homeMTA without a homeMDB.
            dangling = True
            out.append(_found("homemdb-missing", entry.dn,
                               f"{who}: no homeMDB, yet "
                               + " and ".join(a for a in HOME[1:] if entry.has(a)) + " set",
                               "half a mailbox: Active Directory removes homeMDB when its store "
                               "is deleted, and a replication or Recipient Update Service "
                               "race can leave a user without it (KB 903291)", fix))
        if mta and not isinstance(mta_obj, Mta):
            dangling = True
            what = topology.describe(mta)
            if what is not None:  # an object exdir knows, of another kind
                out.append(_found("homemta-not-mta", entry.dn,
                                   f"{who}: homeMTA names {what}, not an MTA",
                                   "mail for this mailbox has no MTA to route through "
                                   "(OpenChange's provisioning writes the store here)", fix))
            else:
                out.append(_found("homemta-dangling", entry.dn,
                                   f"{who}: homeMTA names no MTA ({mta})",
                                   "mail for this mailbox has no MTA to route through", fix))
        elif not mta and mdb:
            dangling = True
            out.append(_found("homemta-missing", entry.dn, f"{who}: no homeMTA, yet homeMDB set",
                               "mail for this mailbox has no MTA to route through", fix))
        if not home and mdb:
            dangling = True
            out.append(_found("home-server-missing", entry.dn,
                               f"{who}: no msExchHomeServerName, yet homeMDB set",
                               "clients and the Recipient Update Service cannot tell which "
                               "server holds the mailbox (CSS-Exchange's "
                               "Test-ValidMailboxProperties fails it)", fix))
        if home and not isinstance(home_obj, ExchangeServer):
            dangling = True
            out.append(_found("home-server-dangling", entry.dn,
                               f"{who}: msExchHomeServerName names no server ({home})",
                               "clients and the Recipient Update Service look for the mailbox "
                               "on a server that does not exist", fix))
        servers = {k: (v.name if v else None) for k, v in named.items() if entry.has(k)}
        if not dangling and len(set(servers.values())) > 1:
            out.append(_found(
                "split", entry.dn,
                f"{who}: split between servers ("
                + ", ".join(f"{k} on {v}" for k, v in servers.items()) + ")",
                "the home attributes disagree: an ADC agreement or the Recipient Update "
                "Service may have written an old value back over a move", fix,
                {k: v or "" for k, v in servers.items()}))
    return out


# --- --since-report ---------------------------------------------------------------------

def read_move_report(path: str) -> list[dict[str, object]]:
    """The mailboxes an exdir move report (.json or .xml) says were written."""
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise InputError(f"cannot read report {path}: {reason}") from None
    ext = os.path.splitext(path)[1].lower()
    try:
        if ext == ".json":
            data = json.loads(text)
            boxes = data.get("mailboxes") if isinstance(data, dict) else None
            if not isinstance(boxes, list):
                raise InputError(f"{path}: not a move report (no mailboxes)")
            return [_checked_box(path, b) for b in boxes]
        root = ET.fromstring(text)
    except (ValueError, ET.ParseError) as exc:
        raise InputError(f"{path}: not a readable report: {exc}") from None
    boxes = []
    for el in root.iter("mailbox"):
        written = {v.get("attribute", ""): v.text or "" for v in el.iterfind("written/value")}
        before = {v.get("attribute", ""): v.text or "" for v in el.iterfind("before/value")}
        boxes.append(_checked_box(path, {"identity": el.get("identity"), "dn": el.findtext("dn"),
                                         "outcome": el.get("outcome"), "written": written,
                                         "before": before}))
    if not boxes:
        raise InputError(f"{path}: not a move report (no mailbox elements)")
    return boxes


def _checked_box(path: str, box: object) -> dict[str, object]:
    """One mailbox record of a report, or InputError naming what is missing."""
    if (not isinstance(box, dict) or not isinstance(box.get("dn"), str)
            or not isinstance(box.get("written") or {}, dict)
            or not isinstance(box.get("before") or {}, dict)):
        raise InputError(f"{path}: not a move report (a mailbox record without dn, or with "
                         "malformed written/before values)")
    return box


def _strings(values: object) -> dict[str, str]:
    """A report's written/before record: attribute -> value, absent values left out."""
    if not isinstance(values, dict):
        return {}
    return {str(k): str(v) for k, v in values.items() if v is not None}


def _same_home(attr: str, a: str, b: str) -> bool:
    """Home values compared as the directory compares them (DNs as DNs)."""
    return values.equal(attr, a, b)


def applied_moves(report: Sequence[dict[str, object]]) -> list[dict[str, object]]:
    """The mailboxes of a move report that the move wrote."""
    return [b for b in report if b.get("outcome") == "applied"]


def reverted_findings(report: Sequence[dict[str, object]], found: Mapping[str, EntryLike],
                      topology: Topology | None = None) -> list[Finding]:
    """Mailboxes whose home attributes no longer hold what exdir wrote.

    found: the report's applied mailboxes as they are now, by dn.key() (one bulk read,
    exdir.readers.recipients.read_moved).  topology, when given, shapes the fix (in
    mixed mode with agreements the move needs --adc-stopped)."""
    applied = applied_moves(report)
    out: list[Finding] = []
    for box in applied:
        dn = str(box["dn"])
        written, before = _strings(box.get("written")), _strings(box.get("before"))
        entry = found.get(dnu.key(dn))
        who = str(box.get("identity") or dn)
        if entry is None:
            out.append(_found("moved-mailbox-gone", dn, f"{who}: the mailbox "
                               "exdir moved no longer exists", "it was deleted or renamed since",
                               f"{NO_FIX}: nothing left to fix here; check the deletion "
                               "was intended"))
            continue
        changed: list[tuple[str, str | None, str]] = []
        for attr, value in written.items():
            now = entry.text(attr)
            if now is not None and _same_home(attr, now, value):
                continue
            back = before.get(attr)
            if now is None:
                how = "removed"
            elif back is not None and _same_home(attr, now, back):
                how = "changed back to what it was before the move"
            else:
                how = "changed since"
            changed.append((attr, now, how))
        if changed:
            text = "; ".join(f"{a} {how}" + (f" ({now})" if now else "")
                             for a, now, how in changed)
            target = written.get("homeMDB", "")
            command = f"exdir move {_quote(dn)} --to {_quote(target)}"
            fix = (_move_fix(topology, dn, target) if topology is not None
                   else f"stop the ADC if one runs, then {command} --apply")
            out.append(_found(
                "move-reverted", dn, f"{who}: {text}",
                "something wrote over exdir's move: an ADC agreement replicating from the 5.5 "
                "side, or the Recipient Update Service (KB 903291)", fix,
                {a: now or "" for a, now, _ in changed}))
    return out


# --- the legacyExchangeDN audit --------------------------------------------------------------

def audit(topology: Topology, read: Callable[[], Iterable[EntryLike]]) -> list[Finding]:
    """Duplicates, values outside the organisation, malformed values, ADCDisabledMail in a
    native organisation, group and server values that do not match their names, X500
    proxies equal to another object's value, and home attributes naming nothing.

    read() gives the recipients; it is called twice and nothing of an entry is kept in
    memory: holding every recipient to name the holders of a duplicate was 586 MB at
    100,000 mailboxes (about 6 GB at a million), and a DN per value in a dict 400 MB
    more at a million; each value's holders are rows of exdir.holders.  The first pass
    finds the values and what one entry shows alone, the second the holders of the
    values held twice and the X500 proxies equal to another object's value."""
    with ValueHolders() as owners:
        return _audit(topology, read, owners)


def _audit(topology: Topology, read: Callable[[], Iterable[EntryLike]],
           owners: ValueHolders) -> list[Finding]:
    org = topology.organization
    org_prefix = org.legacy_dn or f"/o={org.name}"
    out: list[Finding] = []
    mailboxes: list[Finding] = []
    for entry in read():
        mailboxes += mailbox_findings(topology, (entry,))
        value = entry.text("legacyExchangeDN")
        if value is None:
            continue
        if is_adc_disabled(value):
            if not org.mixed_mode:
                # no X500 of the marker: it is not an address anything was sent to
                unknown = (" (msExchMixedMode is not set: if the organisation is still "
                           "mixed, this is normal)" if org.mixed_mode is None else "")
                out.append(_found(
                    "adc-disabled", entry.dn, f"{entry.dn}: legacyExchangeDN is {ADC_DISABLED}",
                    "a leftover of a mailbox deleted while the organisation was mixed; in a "
                    "native organisation nothing should carry it" + unknown,
                    _set_fix(entry.dn, _suggest(org_prefix, topology, entry), keep_x500=False)))
            continue
        owners.add(legacy_key(value), entry.dn)
        bad = problems(value)
        if bad:
            out.append(_found("malformed", entry.dn, f"{entry.dn}: {value!r}: {bad[0]}",
                               "Exchange cannot resolve a value that breaks the grammar",
                               _set_fix(entry.dn, _suggest(org_prefix, topology, entry))))
        elif not has_prefix(value, org_prefix):
            out.append(_found(
                "outside-org", entry.dn,
                f"{entry.dn}: {value!r} is not under the organisation's {org_prefix!r}",
                "a leftover of a partial rename or a restore from another organisation",
                _set_fix(entry.dn, _suggest(org_prefix, topology, entry))))
    # the holders of a value held twice, as (DN, value, the value its names give), in
    # the first pass's order of values
    shared: dict[str, list[tuple[str, str, str | None]]] = {k: [] for k in owners.shared()}
    for entry in read():
        text = entry.text("legacyExchangeDN")
        own = legacy_key(text or "")
        if text is not None and own in shared and not is_adc_disabled(text):
            shared[own].append((entry.dn, text, _recipient_value(org_prefix, topology, entry)))
        for proxy in entry.texts("proxyAddresses"):
            if proxy.upper().startswith("X500:"):
                value = legacy_key(proxy[5:])
                if value != own:
                    owners.add_proxy(value, entry.dn, proxy)
    collisions = [_found("x500-collision", dn,
                         f"{dn}: proxy {proxy!r} is the legacyExchangeDN of {holder}",
                         "mail for that object can be delivered here instead",
                         f"exdir x500 remove {_quote(dn)} {_quote(proxy)} --apply")
                  for dn, proxy, holder in owners.collisions()]
    for value, held in shared.items():
        if len(held) > 1:  # (a server's entry may have gone between the two reads)
            for n, (dn, text, suggested) in enumerate(held):
                others = ", ".join(h[0] for i, h in enumerate(held) if i != n)
                if suggested is not None and legacy_key(suggested) == value:
                    fix = (f"{NO_FIX} for this object (its value fits its alias and "
                           f"group); change the other holder(s): {others}")
                elif suggested is None or owners.holds(legacy_key(suggested)):
                    fix = (f"{NO_FIX}: no free value to suggest; choose one, then "
                           f"`exdir legacydn set {_quote(dn)} NEW_VALUE --no-keep-x500 "
                           "--apply`")
                else:
                    # the value stays with its other holder: as an X500 here it would
                    # misdeliver their mail, so it is not kept
                    fix = _set_fix(dn, suggested, keep_x500=False)
                out.append(_found(
                    "duplicate", dn,
                    f"{dn}: legacyExchangeDN {text!r} is also held by {others}",
                    "mail addressed to this value can reach either object", fix))
    for group in topology.admin_groups:
        expected = f"{org_prefix}/ou={group.name}"
        if group.legacy_dn and not same(group.legacy_dn, expected):
            out.append(_found("group-name-mismatch", group.dn,
                               f"administrative group {group.name!r}: legacyExchangeDN "
                               f"{group.legacy_dn!r} does not match its name",
                               "the group was renamed without its values",
                               _set_fix(group.dn, expected)))
    groups = {dnu.key(g.dn): g for g in topology.admin_groups}
    for server in topology.servers:
        home_group = groups.get(dnu.key(server.admin_group or ""))
        if home_group is None or not server.legacy_dn:
            continue
        # from the names, not from the group's value: a wrong group value must not
        # make its servers' fixes copy it
        expected = (f"{org_prefix}/ou={home_group.name}/cn=Configuration/cn=Servers/"
                    f"cn={server.name}")
        if not same(server.legacy_dn, expected):
            out.append(_found("server-name-mismatch", server.dn,
                               f"server {server.name!r}: legacyExchangeDN "
                               f"{server.legacy_dn!r} does not match its name and group",
                               "the server or its group was renamed without its values; "
                               "its mailboxes' msExchHomeServerName follow the fix",
                               _set_fix(server.dn, expected)))
    return out + collisions + mailboxes


def _set_fix(dn: str, value: str, *, keep_x500: bool = True) -> str:
    return (f"exdir legacydn set {_quote(dn)} {_quote(value)}"
            + ("" if keep_x500 else " --no-keep-x500") + " --apply")


def _home_group(topology: Topology, entry: EntryLike) -> str | None:
    """The administrative group of the server the entry's home attributes name."""
    server: object = None
    mdb = entry.text("homeMDB")
    if mdb:
        server = topology.server_of(mdb)
    home = entry.text("msExchHomeServerName")
    if not isinstance(server, ExchangeServer) and home:
        server = topology.by_legacy_dn(home)
    if isinstance(server, ExchangeServer) and server.admin_group:
        found = topology.admin_group(server.admin_group)
        return found.name if found else None
    return None


def _recipient_value(org_prefix: str, topology: Topology, entry: EntryLike) -> str | None:
    """`<org>/ou=<its home group>/cn=Recipients/cn=<alias>`, or None where that is not a
    valid value (no home, or an alias the grammar refuses)."""
    group = _home_group(topology, entry)
    nick = entry.text("mailNickname") or dnu.rdn_value(entry.dn)
    if group is None or not nick:
        return None
    value = f"{org_prefix}/ou={group}/cn=Recipients/cn={nick}"
    return None if problems(value) else value


def _suggest(org_prefix: str, topology: Topology, entry: EntryLike) -> str:
    """A value under the organisation for an object whose value is wrong: the same value
    under the organisation's prefix when that is valid, else one built from its home
    group and alias."""
    value = entry.text("legacyExchangeDN") or ""
    fixed = rewrite(value, "/o=" + (value.split("/")[1][2:] if value.count("/") > 1 else ""),
                    org_prefix) if value.lower().startswith("/o=") else None
    if fixed and not problems(fixed):
        return fixed
    built = _recipient_value(org_prefix, topology, entry)
    if built:
        return built
    nick = entry.text("mailNickname") or dnu.rdn_value(entry.dn)
    group = topology.admin_groups[0].name if topology.admin_groups else "First Administrative Group"
    return f"{org_prefix}/ou={group}/cn=Recipients/cn={nick}"
