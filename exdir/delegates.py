"""Stale delegates: `publicDelegates` values that name nobody who can act (KB 312433).

A mailbox's publicDelegates lists who may send on its behalf and receives its
meeting requests.  Its value outlives the delegate in four ways, each with its own
symptom (docs/exchange.md, "Delegates"):

- it names nothing (an export or a non-AD directory keeps the text of a DN whose
  object is gone): meeting requests go nowhere;
- it names a deleted object (`…\\0ADEL:<guid>,CN=Deleted Objects,…`, or an entry
  marked isDeleted): as above, and an NDR for every forwarded request;
- it names a disabled account (userAccountControl bit 2, ACCOUNTDISABLE): nobody
  reads what is forwarded;
- it names an object without a mailbox (no homeMDB; a mail-enabled group is a valid
  delegate and is not reported): the delegate forwarding rule has nowhere to deliver.

On Active Directory a deleted delegate leaves the forward link by itself; the
forwarding rule inside the mailbox stays and is out of exdir's reach.  Each finding's
fix is `exdir delegates remove OWNER DELEGATE`, a plan like every write.  Nothing here
reads the directory: exdir.readers.recipients.read_delegations reads in bulk.
"""
from __future__ import annotations

from typing import Mapping, Sequence

from . import dn as dnu
from .entries import EntryLike
from .errors import InputError
from .findings import Finding, shell_word
from .plan import Plan, remove_values

ATTRIBUTE = "publicDelegates"
#: what the audit reads of each delegate
READ = ("objectClass", "userAccountControl", "homeMDB", "mail", "mailNickname", "isDeleted")
ACCOUNT_DISABLE = 0x2  # userAccountControl's ACCOUNTDISABLE bit


def _deleted_name(value: str) -> bool:
    """A DN Active Directory gives a deleted object: `\\0ADEL:` in its RDN (or the
    line feed it stands for), or below the Deleted Objects container."""
    lower = value.lower()
    if "\\0adel:" in lower or "\ndel:" in lower:
        return True
    parts = _parsed(value)
    return parts is not None and any(v.lower() == "deleted objects" for _, v in parts)


def _parsed(value: str) -> list[tuple[str, str]] | None:
    """The RDNs of a value, or None where it is not a DN (an export can hold anything)."""
    try:
        return dnu.split(value)
    except InputError:
        return None


def readable(value: str) -> bool:
    """A value worth reading: a DN, and not one Active Directory gives a deleted object
    (a directory answers for those only with the show-deleted control)."""
    return _parsed(value) is not None and not _deleted_name(value)


def _who(entry: EntryLike) -> str:
    return entry.text("mailNickname") or entry.dn


def _finding(code: str, owner: EntryLike, value: str, message: str, meaning: str) -> Finding:
    fix = f"exdir delegates remove {shell_word(owner.dn)} {shell_word(value)} --apply"
    return Finding(code, message, dn=owner.dn, meaning=meaning, fix=fix,
                   details={"delegate": value})


def _disabled(entry: EntryLike) -> bool:
    text = entry.text("userAccountControl")
    try:
        return text is not None and int(text) & ACCOUNT_DISABLE != 0
    except ValueError:
        return False


def _mail_enabled_group(entry: EntryLike) -> bool:
    return "group" in entry.object_classes and (entry.has("mail") or entry.has("mailNickname"))


def audit(owners: Sequence[EntryLike], delegates: Mapping[str, EntryLike]) -> list[Finding]:
    """Every stale publicDelegates value of the owners; delegates: what each value names,
    by dn.key() (absent: it names nothing)."""
    out: list[Finding] = []
    for owner in owners:
        who = _who(owner)
        for value in owner.texts(ATTRIBUTE):
            target = delegates.get(dnu.key(value)) if _parsed(value) is not None else None
            if _deleted_name(value) or (target is not None
                                        and (target.text("isDeleted") or "").upper() == "TRUE"):
                out.append(_finding(
                    "delegate-deleted", owner, value,
                    f"{who}: delegate {value} is a deleted object",
                    "meeting requests forwarded to the delegate bounce (KB 312433); remove "
                    "the value, and the delegate in Outlook, which keeps its own rule"))
            elif target is None:
                out.append(_finding(
                    "delegate-missing", owner, value,
                    f"{who}: delegate {value} names no object",
                    "the delegate was deleted or renamed outside the directory's links: "
                    "meeting requests forwarded to it go nowhere (KB 312433)"))
            elif _disabled(target):
                out.append(_finding(
                    "delegate-disabled", owner, value,
                    f"{who}: delegate {_who(target)} is a disabled account",
                    "nobody reads what the mailbox forwards to a disabled delegate; a "
                    "delegate who left keeps receiving meeting requests"))
            elif not target.has("homeMDB") and not _mail_enabled_group(target):
                out.append(_finding(
                    "delegate-no-mailbox", owner, value,
                    f"{who}: delegate {_who(target)} has no mailbox",
                    "the delegate's mailbox was removed: forwarded meeting requests return "
                    "non-delivery reports (KB 312433)"))
    return out


def plan_remove(owner: EntryLike, delegate: str) -> Plan:
    """Remove one publicDelegates value, as the directory spells it, matched by DN; the
    step fails if the value is gone meanwhile (its expected old value)."""
    wanted = dnu.key(delegate) if _parsed(delegate) is not None else None
    held = [v for v in owner.texts(ATTRIBUTE) if v == delegate or (
        wanted is not None and _parsed(v) is not None and dnu.key(v) == wanted)]
    if not held:
        return Plan(())
    return Plan((remove_values(owner.dn, ATTRIBUTE, held[:1],
                               f"remove delegate {held[0]}"),))
