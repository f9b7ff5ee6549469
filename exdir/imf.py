"""The Intelligent Message Filter's thresholds, as Exchange 2003 keeps them in the directory.

Exchange System Manager is the only tool that shows or sets them: the organisation's
`CN=UCE Content Filter,CN=Message Delivery,CN=Global Settings` object (class msExchUce
below an msExchMessageDeliveryConfig; docs/exchange.md, "IMF settings") holds

- msExchUceEnabled: the filter on (1) or off (0);
- msExchUceBlockThreshold: the gateway threshold, a spam confidence level 0–9 that
  Exchange's schema stores as a *string*;
- msExchUceStoreActionThreshold: the store's Junk E-mail threshold, 0–9, read only by
  Exchange 2003 and later stores, and only for mailboxes that have the junk-mail rule
  (set by Outlook 2003 in cached mode or by OWA's option).

The gateway action (archive, delete, no action, reject) lives on the same object under
an attribute not confirmed here: exdir neither shows nor sets it rather than guess.
A change is a Plan like every write (dry run, --apply, undo file), each value replaced
as `delete: old` then `add: new`, so a replay over a changed object fails instead of
overwriting it.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from . import dn as dnu
from . import schema
from .backends.base import Directory, Entry
from .errors import InputError
from .plan import Add, Change, Plan, replace_value
from .topology import Topology
from .values import Value

ENABLED = "msExchUceEnabled"
GATEWAY = "msExchUceBlockThreshold"
STORE = "msExchUceStoreActionThreshold"
ATTRIBUTES = (ENABLED, GATEWAY, STORE)
LOWEST, HIGHEST = 0, 9  # spam confidence levels

_GLOBAL = "CN=Global Settings"
_DELIVERY = "CN=Message Delivery"
_UCE = "CN=UCE Content Filter"
#: the objects on the path, outermost first: (RDN, structural class)
PATH = ((_GLOBAL, "msExchContainer"), (_DELIVERY, "msExchMessageDeliveryConfig"),
        (_UCE, "msExchUce"))
_JUNK_RULE = ("a store moves a message to Junk E-mail only for mailboxes with the junk-mail "
              "rule (Outlook 2003 in cached mode, or OWA's option): the directory value "
              "alone does not turn it on")
_ACTION = ("the gateway action (archive, delete, no action, reject) is kept on this object "
           "under an attribute exdir does not know: not shown")


@dataclass(frozen=True)
class ImfSettings:
    """What the directory says of the filter; None where the attribute is not set."""

    dn: str
    exists: bool
    enabled: bool | None = None
    gateway_threshold: int | None = None
    store_threshold: int | None = None
    raw: dict[str, str] = field(default_factory=dict)  # each value as the directory spells it
    warnings: list[str] = field(default_factory=list)


def uce_dn(topology: Topology) -> str:
    """The UCE Content Filter object's DN in this organisation."""
    return f"{_UCE},{_DELIVERY},{_GLOBAL},{topology.organization.dn}"


def threshold(value: int | None, what: str) -> int | None:
    """A threshold as the administrator gave it: 0–9, else bad input (exit 2)."""
    if value is not None and not LOWEST <= value <= HIGHEST:
        raise InputError(f"the {what} threshold must be {LOWEST} to {HIGHEST} "
                         f"(a spam confidence level), not {value}")
    return value


def read_settings(directory: Directory, topology: Topology) -> ImfSettings:
    """`exdir imf show`: the three values, and what they cannot tell on their own."""
    dn = uce_dn(topology)
    entry = directory.read(dn, ATTRIBUTES)
    warnings: list[str] = []
    if not any(not s.downlevel and s.version != "unknown" for s in topology.servers):
        warnings.append("no server of Exchange 2003 or later in the organisation: no store "
                        "reads the store threshold")
    if entry is None:
        warnings.append(f"no {_UCE[3:]} object: the filter was never configured in this "
                        "organisation (`exdir imf set` creates it)")
        return ImfSettings(dn, False, warnings=warnings)
    raw = {a: v for a in ATTRIBUTES if (v := entry.text(a)) is not None}
    enabled = _number(raw, ENABLED, warnings)
    gateway = _number(raw, GATEWAY, warnings, ranged=True)
    store = _number(raw, STORE, warnings, ranged=True)
    unset = [a for a in ATTRIBUTES if a not in raw]
    if unset:
        warnings.append("not set, so not confirmed (Exchange applies its own default): "
                        + ", ".join(unset))
    warnings += [_JUNK_RULE, _ACTION]
    return ImfSettings(dn, True, None if enabled is None else enabled != 0, gateway, store,
                       raw, warnings)


def _number(raw: dict[str, str], attribute: str, warnings: list[str], *,
            ranged: bool = False) -> int | None:
    text = raw.get(attribute)
    if text is None:
        return None
    try:
        value = int(text.strip())
    except ValueError:
        warnings.append(f"{attribute} holds {text!r}, not a number: Exchange ignores it")
        return None
    if ranged and not LOWEST <= value <= HIGHEST:
        warnings.append(f"{attribute} is {value}, outside {LOWEST}–{HIGHEST}")
    return value


def plan_set(directory: Directory, topology: Topology, *, gateway: int | None = None,
             store: int | None = None, enabled: bool | None = None) -> Plan:
    """`exdir imf set`: the values given, each replaced with its old value expected; the
    objects on the path created where they are missing (ESM creates them the same way
    the first time the filter is configured)."""
    threshold(gateway, "gateway")
    threshold(store, "store")
    wanted: dict[str, str] = {}
    if enabled is not None:
        wanted[ENABLED] = "1" if enabled else "0"
    if gateway is not None:
        wanted[GATEWAY] = str(gateway)
    if store is not None:
        wanted[STORE] = str(store)
    if not wanted:
        raise InputError("nothing to set: give --gateway-threshold, --store-threshold, "
                         "--enable or --disable")
    changes: list[Change] = []
    parent = topology.organization.dn
    entry: Entry | None = None
    for rdn, structural in PATH:
        dn = f"{rdn},{parent}"
        entry = directory.read(dn, ATTRIBUTES)
        if entry is None:
            attributes: list[tuple[str, tuple[Value, ...]]] = [
                ("objectClass", schema.class_chain(structural)), ("cn", (dnu.rdn_value(dn),))]
            if rdn == _UCE:
                attributes += [(a, (v,)) for a, v in wanted.items()]
            changes.append(Add(dn, tuple(attributes), "create the IMF settings object"
                               if rdn == _UCE else f"create {rdn[3:]} (IMF settings)"))
        parent = dn
    if entry is not None:  # the filter's object exists: change what differs
        for attribute, value in wanted.items():
            old = entry.texts(attribute)
            if old == [value]:
                continue
            changes.append(replace_value(entry.dn, attribute, old, [value],
                                         f"IMF: set {attribute} to {value}"))
    return Plan(tuple(changes))
