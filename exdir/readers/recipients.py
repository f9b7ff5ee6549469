"""Reading recipients and the objects that hold names: entries in bulk for the planners.

Each reader makes one paged search per partition (or one OR filter, or one
bulk read of known DNs), never one search per object, and returns entries as
read; the planners (exdir.rename, exdir.move, exdir.health, exdir.x500,
exdir.legacydn) decide what they mean.
"""
from __future__ import annotations

from typing import Iterator, Sequence

from ldap3.utils.conv import escape_filter_chars

from .. import delegates
from .. import dn as dnu
from .. import x500_history
from ..backends.base import Directory, Entry
from ..errors import InputError
from ..health import READ as HEALTH_READ
from ..health import applied_moves
from ..legacydn import LegacyValue, listing
from ..move import READ as MOVE_READ
from ..move import dn_problem, kind_of, smtp_of
from ..rename import READ as RENAME_READ
from ..rename import REFERENCE_ATTRIBUTES, RenameScope
from ..topology import HOME

TARGETED_LIMIT = 50  # up to this many identities: one OR-filter search; more: read all


# --- renames and `legacydn set` ----------------------------------------------------------

def read_affected(directory: Directory, scope: RenameScope, *, references: bool
                  ) -> Iterator[Entry]:
    """Every entry holding a value under the old prefix (and, where the server does not
    make references follow, every entry referencing the Exchange configuration):
    one paged search per partition, never one per object, yielded as read (the
    planner keeps the steps, not the entries)."""
    esc = escape_filter_chars(scope.old_prefix)
    terms = [f"(legacyExchangeDN={esc}*)", f"(msExchHomeServerName={esc}*)"]
    if references:
        terms += [f"({a}=*)" for a in REFERENCE_ATTRIBUTES]
    flt = "(|" + "".join(terms) + ")"
    return directory.search_partitions(flt, RENAME_READ)




def find_object(directory: Directory, ident: str) -> Entry:
    """OBJECT as `legacydn set` takes it: a DN, a mailNickname or a current value."""
    if ident.startswith("/"):
        flt = f"(legacyExchangeDN={escape_filter_chars(ident)})"
    elif "=" in ident and "," in ident:
        try:
            dnu.split(ident)
        except InputError:
            raise InputError(f"unknown object {ident!r}: not a DN, mailNickname or "
                             "legacyExchangeDN") from None
        entry = directory.read(ident, RENAME_READ)
        if entry is None:
            raise InputError(f"unknown object: no entry {ident}")
        return entry
    else:
        flt = f"(mailNickname={escape_filter_chars(ident)})"
    found = list(directory.search_partitions(flt, RENAME_READ))
    if not found:
        raise InputError(f"unknown object {ident!r}: no object has that "
                         + ("legacyExchangeDN" if ident.startswith("/") else "mailNickname"))
    if len(found) > 1:
        raise InputError(f"{ident!r} is ambiguous: " + "; ".join(e.dn for e in found[:5]))
    return found[0]


def read_value_context(directory: Directory, entry: Entry, new_value: str) -> list[Entry]:
    """Objects that already hold new_value (as legacyExchangeDN or as an X500 proxy), and
    those whose msExchHomeServerName is the object's current value (a server's
    mailboxes): one search per partition."""
    old = entry.text("legacyExchangeDN") or ""
    terms = [f"(legacyExchangeDN={escape_filter_chars(new_value)})",
             f"(proxyAddresses=X500:{escape_filter_chars(new_value)})"]
    if old:
        terms.append(f"(msExchHomeServerName={escape_filter_chars(old)})")
    return list(directory.search_partitions("(|" + "".join(terms) + ")", RENAME_READ))

# --- moves ---------------------------------------------------------------------------------

def read_mailboxes(directory: Directory, identities: Sequence[str]) -> list[Entry]:
    """The candidates for these identities in one search per domain partition.

    Few identities: one OR-filter of exactly them.  Many: every recipient, indexed
    in memory (a search per identity would scan the in-memory directory each time).
    """
    if len(identities) <= TARGETED_LIMIT:
        terms: list[str] = []
        for ident in identities:
            kind = kind_of(ident)
            if kind == "legacyExchangeDN":
                terms.append(f"(legacyExchangeDN={escape_filter_chars(ident)})")
            elif kind == "smtp":
                terms.append(f"(proxyAddresses=smtp:{escape_filter_chars(smtp_of(ident))})")
            elif kind == "mailNickname":
                terms.append(f"(mailNickname={escape_filter_chars(ident)})")
        dns = [i for i in identities if kind_of(i) == "dn" and not dn_problem(i)]
        found: list[Entry] = []
        if terms:
            found += list(directory.search_partitions("(|" + "".join(terms) + ")", MOVE_READ,
                                                   domain_only=True))
        if dns:
            found += list(directory.read_many(dns, MOVE_READ).values())
        return found
    return list(directory.search_partitions("(|(mailNickname=*)(proxyAddresses=*)(homeMDB=*))",
                                            MOVE_READ, domain_only=True))


# --- health checks ---------------------------------------------------------------------------

def read_recipients(directory: Directory) -> Iterator[Entry]:
    """Every object holding a legacyExchangeDN or a home attribute: one search per
    partition, as it reads (not held: `legacydn audit` reads them twice instead)."""
    flt = "(|(legacyExchangeDN=*)(homeMDB=*)(homeMTA=*)(msExchHomeServerName=*))"
    return directory.search_partitions(flt, HEALTH_READ)


def read_moved(directory: Directory, report: Sequence[dict[str, object]]) -> dict[str, Entry]:
    """The mailboxes a move report says were written, as they are now, by dn.key():
    one bulk read."""
    return directory.read_many([str(b["dn"]) for b in applied_moves(report)], HOME)


def read_delegations(directory: Directory) -> tuple[list[Entry], dict[str, Entry]]:
    """Every object with publicDelegates (one search per partition), and what each
    value names, by dn.key() (one bulk read of them all; absent: it names nothing)."""
    owners = list(directory.search_partitions(f"({delegates.ATTRIBUTE}=*)",
                                              ("mailNickname", delegates.ATTRIBUTE)))
    named = {v for o in owners for v in o.texts(delegates.ATTRIBUTE)
             if delegates.readable(v)}
    return owners, directory.read_many(sorted(named), delegates.READ)


def read_migration_side(directory: Directory) -> list[Entry]:
    """Every recipient of the domain partition (mailNickname or legacyExchangeDN) with
    what X500 matching needs: one paged search, for a source or a target alike."""
    return list(directory.search_partitions("(|(mailNickname=*)(legacyExchangeDN=*))",
                                            x500_history.READ, domain_only=True))


# --- who holds a name ------------------------------------------------------------------------

def holders(directory: Directory, value: str) -> list[Entry]:
    """Objects whose legacyExchangeDN or X500 proxy is value (case-insensitive): one
    search per partition."""
    esc = escape_filter_chars(value)
    return list(directory.search_partitions(
        f"(|(legacyExchangeDN={esc})(proxyAddresses=X500:{esc}))",
        ("legacyExchangeDN", "proxyAddresses", "mailNickname", "objectClass")))


def list_values(directory: Directory, prefix: str | None = None) -> Iterator[LegacyValue]:
    """Every object holding a legacyExchangeDN, one paged search per partition.

    With a prefix, the server filters on its leading characters and the part
    boundary rule is applied by exdir.legacydn.listing.
    """
    flt = "(legacyExchangeDN=*)"
    if prefix:
        flt = f"(legacyExchangeDN={escape_filter_chars(prefix)}*)"
    return listing(directory.search_partitions(flt, ("objectClass", "legacyExchangeDN")), prefix)
