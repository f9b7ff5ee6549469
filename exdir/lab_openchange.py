"""An organisation shaped as OpenChange's provisioning leaves it, for samples and tests.

OpenChange (an Exchange-compatible server on Samba AD) wrote its own configuration
and mailbox users.  What exdir has to cope with there, modelled here with exdir's own
entry builders (exdir.lab) and never copied from OpenChange's templates:

- **no MTA objects**: the server has no `CN=Microsoft MTA` and no
  msExchResponsibleMTAServer;
- **homeMTA names the mailbox store**, not an MTA;
- **no msExchHomeServerName** on the mailboxes;
- **`=EX:` proxy addresses** beside `SMTP:` ones, holding the legacyExchangeDN;
- **upper-case `CN=`** in some mailboxes' legacyExchangeDN;
- **an organisation without systemFlags** (so without FLAG_CONFIG_ALLOW_RENAME:
  Active Directory would refuse to rename it) and **without msExchMixedMode**; the
  administrative group and the server carry no systemFlags either;
- one server, `Version 6.5 (Build 6944.4)`, with one storage group and two stores.

`entries()` returns the records in the order exdir.lab.record writes them (parents
first); samples/make_samples.py writes them as samples/openchange.ldif.
"""
from __future__ import annotations

import uuid
from typing import Iterator

from . import lab
from .lab import FIRST_ADMIN_GROUP, Attrs, DomainController, Entry, Layout, rdn

ORG = "First Organization"
SERVER = "OCSRV"
SERIAL = "Version 6.5 (Build 6944.4)"  # the Exchange 2003 build OpenChange announces
USERS = 12
#: every USER_UPPER_CN-th mailbox has `CN=` in upper case in its legacyExchangeDN
USER_UPPER_CN = 3
_GUIDS = uuid.UUID("0c3e7d1a-5b2f-4f6e-8a90-2b7c4d1e9f03")


def _server(layout: Layout) -> lab.Server:
    return layout.server(FIRST_ADMIN_GROUP, SERVER, "2003")


def configuration(layout: Layout) -> Iterator[Entry]:
    """The organisation, its administrative group and the one server, OpenChange's way."""
    yield lab.container(layout.services, "Services")
    yield lab.container(layout.exchange, "Microsoft Exchange", "msExchConfigurationContainer")
    # no systemFlags, no msExchMixedMode
    yield layout.org_dn, [*lab.classes("msExchOrganizationContainer"), ("cn", layout.org),
                          ("legacyExchangeDN", layout.org_legacy_dn)]
    yield lab.container(layout.admin_groups_dn, "Administrative Groups",
                        "msExchAdminGroupContainer")
    ag_dn = layout.admin_group_dn(FIRST_ADMIN_GROUP)
    yield ag_dn, [*lab.classes("msExchAdminGroup"), ("cn", FIRST_ADMIN_GROUP),
                  ("legacyExchangeDN", layout.admin_group_legacy_dn(FIRST_ADMIN_GROUP)),
                  ("msExchAdminGroupMode", "0"), ("msExchDefaultAdminGroup", "TRUE")]
    yield lab.container(f"CN=Servers,{ag_dn}", "Servers", "msExchServersContainer")
    server = _server(layout)
    # no msExchResponsibleMTAServer and no MTA object under the server
    yield server.dn, [*lab.classes("msExchExchangeServer"), ("cn", server.name),
                      ("serialNumber", SERIAL), ("legacyExchangeDN", server.legacy_dn)]
    yield lab.container(server.information_store_dn, "InformationStore",
                        "msExchInformationStore")
    yield lab.container(server.storage_group_dn, "First Storage Group", "msExchStorageGroup",
                        ("systemFlags", str(lab.SYSTEM_FLAGS_RENAMEABLE)))
    for dn, cls, name, legacy in (
            (server.mailbox_store_dn, "msExchPrivateMDB", server.mailbox_store_name,
             server.mailbox_store_legacy_dn),
            (server.public_store_dn, "msExchPublicMDB", server.public_store_name,
             server.public_store_legacy_dn)):
        yield dn, [*lab.classes(cls), ("cn", name), ("displayName", name),
                   ("legacyExchangeDN", legacy), ("deliveryMechanism", "0"),
                   ("systemFlags", str(lab.SYSTEM_FLAGS_RENAMEABLE))]


def mailbox(layout: Layout, parent: str, number: int) -> Entry:
    """ocuserNNN as OpenChange's newuser made it: homeMTA naming the store, no
    msExchHomeServerName, an `=EX:` proxy holding its legacyExchangeDN."""
    server = _server(layout)
    alias = f"ocuser{number:03d}"
    cn = f"OC User {number:03d}"
    address = f"{alias}@{layout.dns_domain}"
    legacy = layout.recipient_legacy_dn(FIRST_ADMIN_GROUP, alias)
    if number % USER_UPPER_CN == 0:
        legacy = legacy.replace("/cn=", "/CN=")
    attrs: Attrs = [*lab.classes("user"), ("cn", cn), ("sn", f"User {number:03d}"),
                    ("givenName", "OC"), ("displayName", cn), ("sAMAccountName", alias),
                    ("userPrincipalName", address), ("mail", address), ("mailNickname", alias),
                    ("legacyExchangeDN", legacy), ("proxyAddresses", f"SMTP:{address}"),
                    ("proxyAddresses", f"=EX:{legacy}"),
                    ("homeMDB", server.mailbox_store_dn),
                    ("homeMTA", server.mailbox_store_dn),
                    ("msExchMailboxGuid", uuid.uuid5(_GUIDS, alias).bytes)]
    return f"{rdn('CN', cn)},{parent}", attrs


def entries(domain: str = "DC=fabrikam,DC=com", org: str = ORG,
            users: int = USERS) -> list[Entry]:
    """The whole directory: domain, one DC's site, the organisation, the mailboxes."""
    layout = Layout(domain, org)
    out: list[Entry] = [lab.domain_root(layout),
                        lab.organizational_unit(layout, "OpenChange",
                                                description="OpenChange mailbox users"),
                        lab.container(layout.config, "Configuration", "configuration")]
    out += lab.sites_entries(layout, [DomainController("DC1")])
    out += configuration(layout)
    parent = f"OU=OpenChange,{layout.domain}"
    out += [mailbox(layout, parent, n) for n in range(1, users + 1)]
    return out
