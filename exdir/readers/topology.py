"""Reading the Topology: two searches (the Exchange services subtree and Sites).

Directory entries in, the model of exdir.topology out, never one search per object.
The raw values are interpreted here (msExchMixedMode, systemFlags, msDS-isRODC), once.
"""
from __future__ import annotations

from .. import dn as dnu
from ..backends.base import Directory, Entry
from ..errors import InputError
from ..topology import (SYNC_DIRECTIONS, AdminGroup, ConnectionAgreement, DomainController,
                        ExchangeServer, Mta, Organization, StorageGroup, Store, Topology,
                        parse_version)

_EXCHANGE_CLASSES = ("msExchOrganizationContainer", "msExchAdminGroup", "msExchExchangeServer",
                     "msExchStorageGroup", "msExchPrivateMDB", "msExchPublicMDB", "mTA",
                     "msExchConnectionAgreement")
_ATTRS = ("objectClass", "cn", "legacyExchangeDN", "serialNumber", "msExchMixedMode",
          "systemFlags", "msExchSynchronizationDirection", "activationStyle",
          "msExchServer1NetworkAddress", "msExchServer2NetworkAddress", "msDS-isRODC",
          "options", "dNSHostName")


def _bool(value: str | None) -> bool:
    return (value or "").strip().upper() == "TRUE"


def _mixed(value: str | None) -> bool | None:
    """msExchMixedMode: only FALSE is native mode; no value is unknown (None: OpenChange's
    provisioning writes none, and absent is not FALSE).  Anything else (`1`, `yes`, a
    typo) is taken as mixed, the state whose safety rules are stricter: a wrong
    "native" would let the ADC write old homes back over a move."""
    if value is None:
        return None
    return value.strip().upper() != "FALSE"


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None



def read_topology(directory: Directory) -> Topology:
    """Build the Topology with one search of the Exchange subtree and one of Sites."""
    config = directory.naming.configuration
    if not config:
        raise InputError("no configuration partition found (is this an Active Directory export?)")
    exchange_root = f"CN=Microsoft Exchange,CN=Services,{config}"
    flt = "(|" + "".join(f"(objectClass={c})" for c in _EXCHANGE_CLASSES) + ")"
    found: list[Entry] = list(directory.search(exchange_root, flt, _ATTRS))
    orgs = [e for e in found if "msexchorganizationcontainer" in e.object_classes]
    if not orgs:
        raise InputError(f"no Exchange organisation under {exchange_root}")
    if len(orgs) > 1:
        raise InputError("more than one Exchange organisation: "
                         + ", ".join(sorted(e.dn for e in orgs)))
    o = orgs[0]
    org = Organization(dn=o.dn, name=dnu.rdn_value(o.dn), legacy_dn=o.text("legacyExchangeDN"),
                       mixed_mode=_mixed(o.text("msExchMixedMode")),
                       system_flags=_int(o.text("systemFlags")))
    topo_parts: dict[str, list] = {k: [] for k in ("ag", "srv", "sg", "store", "mta", "ca")}
    for e in found:
        classes = e.object_classes
        name = dnu.rdn_value(e.dn)
        legacy = e.text("legacyExchangeDN")
        if "msexchadmingroup" in classes:
            topo_parts["ag"].append(AdminGroup(e.dn, name, legacy, _int(e.text("systemFlags"))))
        elif "msexchexchangeserver" in classes:
            version, product = parse_version(e.text("serialNumber"))
            parents = dnu.ancestors(e.dn)
            ag = parents[1] if len(parents) > 1 else None
            topo_parts["srv"].append(ExchangeServer(e.dn, name, legacy, e.text("serialNumber"),
                                                    version, product, ag,
                                                    _int(e.text("systemFlags"))))
        elif "msexchstoragegroup" in classes:
            topo_parts["sg"].append(StorageGroup(e.dn, name, ""))
        elif "msexchprivatemdb" in classes or "msexchpublicmdb" in classes:
            topo_parts["store"].append(Store(e.dn, name, "msexchpublicmdb" in classes, "",
                                             dnu.parent(e.dn), legacy))
        elif "mta" in classes:
            topo_parts["mta"].append(Mta(e.dn, dnu.parent(e.dn), legacy))
        elif "msexchconnectionagreement" in classes:
            code = _int(e.text("msExchSynchronizationDirection"))
            direction = SYNC_DIRECTIONS.get(code, "unknown") if code is not None else "unknown"
            topo_parts["ca"].append(ConnectionAgreement(
                e.dn, name, direction, _int(e.text("activationStyle")),
                e.text("msExchServer1NetworkAddress"), e.text("msExchServer2NetworkAddress")))
    servers: list[ExchangeServer] = topo_parts["srv"]
    server_keys = {dnu.key(s.dn): s.dn for s in servers}

    def owner(dn: str) -> str:
        for anc in dnu.ancestors(dn):
            k = dnu.key(anc)
            if k in server_keys:
                return server_keys[k]
        return ""

    sgs = [StorageGroup(g.dn, g.name, owner(g.dn)) for g in topo_parts["sg"]]
    stores = [Store(s.dn, s.name, s.public, owner(s.dn), s.storage_group, s.legacy_dn)
              for s in topo_parts["store"]]
    dcs = _read_dcs(directory, config)
    by_name = lambda o: o.name.lower()  # noqa: E731 - searches return entries in any order
    names = {dnu.key(s.dn): s.name.lower() for s in servers}
    on_server = lambda o: (names.get(dnu.key(o.server), ""), o.name.lower() if hasattr(o, "name") else "")  # noqa: E731,E501
    return Topology(org, sorted(topo_parts["ag"], key=by_name), sorted(servers, key=by_name),
                    sorted(sgs, key=on_server), sorted(stores, key=on_server),
                    sorted(topo_parts["mta"], key=on_server), dcs,
                    sorted(topo_parts["ca"], key=by_name))


def _read_dcs(directory: Directory, config: str) -> list[DomainController]:
    """Every nTDSDSA under CN=Sites (read-only DCs included and marked), with its
    server object's dNSHostName: one search for both classes."""
    out: list[DomainController] = []
    hosts: dict[str, str | None] = {}
    found = list(directory.search(f"CN=Sites,{config}",
                                  "(|(objectClass=nTDSDSA)(objectClass=server))",
                                  ("objectClass", "msDS-isRODC", "options", "dNSHostName",
                                   "invocationId")))
    for e in found:
        if "server" in e.object_classes:
            hosts[dnu.key(e.dn)] = e.text("dNSHostName")
    for e in found:
        if "ntdsdsa" not in e.object_classes and "ntdsdsaro" not in e.object_classes:
            continue
        parents = dnu.ancestors(e.dn)
        server_name = dnu.rdn_value(parents[0]) if parents else ""
        site = dnu.rdn_value(parents[2]) if len(parents) > 2 else ""
        # msDS-isRODC is constructed (ldifde exports omit it); the class nTDSDSARO is stored
        read_only = _bool(e.text("msDS-isRODC")) or "ntdsdsaro" in e.object_classes
        out.append(DomainController(e.dn, server_name, site, read_only,
                                    hosts.get(dnu.key(parents[0])) if parents else None,
                                    _guid(e.first("invocationId"))))
    out.sort(key=lambda d: (d.site.lower(), d.name.lower()))
    return out


def _guid(value: object) -> str | None:
    """A GUID as text: AD gives 16 bytes (little-endian fields; decoded as text where
    they happen to be UTF-8), an export may give text."""
    import uuid

    raw = value.encode("utf-8") if isinstance(value, str) else value
    if isinstance(raw, bytes) and len(raw) == 16:
        return str(uuid.UUID(bytes_le=raw))
    if isinstance(value, str):
        try:
            return str(uuid.UUID(value.strip("{}")))
        except ValueError:
            return None
    return None
