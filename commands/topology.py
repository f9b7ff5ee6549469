"""`exdir topology`: the organisation as the configuration partition describes it."""
from __future__ import annotations

import dataclasses
from typing import Any

import typer

from exdir.text import printable
from exdir.readers.topology import read_topology
from exdir.topology import Topology

from .context import options, print_json, print_table


def topology(ctx: typer.Context) -> None:
    """Show the organisation, admin groups, servers with their Exchange version,
    storage groups, stores, MTAs, domain controllers and ADC agreements.

    \b
    Example: exdir --ldif samples/fabrikam.ldif topology
    """
    opts = options(ctx)
    with opts.open() as directory:
        topo = read_topology(directory)
    if opts.json:
        print_json(as_json(topo))
    else:
        show(topo)


def as_json(topo: Topology) -> dict[str, object]:
    def rows(items: list[Any]) -> list[dict[str, object]]:
        return [dataclasses.asdict(i) for i in items]

    return {
        "organization": dataclasses.asdict(topo.organization),
        "admin_groups": rows(topo.admin_groups),
        "servers": rows(topo.servers),
        "storage_groups": rows(topo.storage_groups),
        "stores": rows(topo.stores),
        "mtas": rows(topo.mtas),
        "domain_controllers": rows(topo.domain_controllers),
        "connection_agreements": rows(topo.agreements),
    }


def show(topo: Topology) -> None:
    org = topo.organization
    print(f"Organisation: {printable(org.name)}")
    print(f"  legacyExchangeDN: {printable(str(org.legacy_dn))}")
    mode = {True: "yes", False: "no", None: "not set (msExchMixedMode absent: unknown)"}
    print(f"  mixed mode: {mode[org.mixed_mode]}")
    print(f"  DN: {printable(org.dn)}")
    print()
    print_table(["admin group", "legacyExchangeDN"],
                [(g.name, g.legacy_dn) for g in topo.admin_groups], title="Administrative groups")
    print()
    print_table(["server", "version", "admin group", "serialNumber"],
                [(s.name, s.product if s.product != s.version else s.version,
                  _name(topo, s.admin_group), s.serial)
                 for s in topo.servers], title="Servers")
    print()
    print_table(["server", "storage group"],
                [(_name(topo, g.server), g.name) for g in topo.storage_groups],
                title="Storage groups")
    print()
    print_table(["server", "store", "kind", "legacyExchangeDN"],
                [(_name(topo, s.server), s.name,
                  "public" if s.public else "mailbox", s.legacy_dn) for s in topo.stores],
                title="Stores")
    print()
    print_table(["server", "MTA legacyExchangeDN"],
                [(_name(topo, m.server), m.legacy_dn) for m in topo.mtas],
                title="MTAs")
    print()
    print_table(["domain controller", "site", "read-only", "dNSHostName"],
                [(d.name, d.site, "yes" if d.read_only else "no", d.dns_host_name)
                 for d in topo.domain_controllers],
                title=f"Domain controllers ({len(topo.domain_controllers)})")
    print()
    print_table(["agreement", "direction", "activation", "Windows side", "Exchange side"],
                [(a.name, a.direction, a.activation_style, a.windows_server, a.exchange_server)
                 for a in topo.agreements], title="ADC connection agreements")


def _name(topo: Topology, dn: str | None) -> str | None:
    """The name of the object at dn as the topology knows it (its one DN lookup), else
    the DN as read."""
    found = topo.by_dn(dn) if dn else None
    return getattr(found, "name", None) or dn
