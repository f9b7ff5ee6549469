#!/usr/bin/env python3
"""Write the bundled sample organisations (fabrikam*.ldif, openchange.ldif).

The three fabrikam files share the organisation below; they differ in the domain
controllers (one; three over two sites, one read-only) and in mixed mode with an
Active Directory Connector.  openchange.ldif is another organisation, shaped as
OpenChange's provisioning leaves one (exdir/lab_openchange.py).  The entry shapes come from exdir.lab, the same code
that builds `exdir lab generate` directories, so samples and lab data follow the
same rules (docs/exchange.md).  Run from anywhere:

    python3 samples/make_samples.py          # rewrite the files
    python3 samples/make_samples.py --check  # exit 1 if a committed file is stale
"""
from __future__ import annotations

import sys
import uuid
from pathlib import Path
from typing import NamedTuple, Sequence

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from exdir import lab, lab_openchange  # noqa: E402
from exdir.lab import (ACTIVATION_ALWAYS, ACTIVATION_SCHEDULED, DIRECTION_FROM_WINDOWS,  # noqa: E402
                       DIRECTION_TWO_WAY, FIRST_ADMIN_GROUP, Agreement, DomainController,
                       Entry, Layout, Server)

HERE = Path(__file__).resolve().parent
DOMAIN = "DC=fabrikam,DC=com"
ORG = "Fabrikam"
EUROPE = "Europe"
VARIANTS = ("fabrikam", "fabrikam-multidc", "fabrikam-mixed", "openchange", "litware")
# litware.ldif: the same people in the organisation they were migrated from
SOURCE_ORG = "Litware"
SOURCE_GROUP = "Litware Site"
SOURCE_OLD_GROUP = "Old Site"  # where some of them were before: X500 history in the source
# Fixed namespace: mailbox GUIDs are stable across runs (uuid5 of the alias).
_GUID_NAMESPACE = uuid.UUID("6f1c3a52-7d0e-4b8e-9a51-3f2a1e0c5b77")


# a user without a mailbox, once a shared desk's mailbox: jlew's delegate is stale
RECEPTION = "reception"
# userAccountControl: NORMAL_ACCOUNT, and ACCOUNTDISABLE for a disabled one; stated on
# every sample user, since Active Directory gives a user added without it a disabled one
ENABLED_ACCOUNT, DISABLED_ACCOUNT = "512", "514"


class Person(NamedTuple):
    alias: str
    given: str
    sn: str
    server: str  # key into the server table
    cn: str | None = None  # default "<given> <sn>"
    wireless: int | None = None
    wireless_settings: tuple[str, ...] = ()
    moved_from: str | None = None  # earlier admin group: an X500 history value
    mixed_case_legacy: bool = False
    delegate: str | None = None  # alias of the publicDelegates target
    disabled: bool = False  # userAccountControl ACCOUNTDISABLE (a delegate who left)


# Who lives where.  Wireless attributes only on Exchange 2003 homes: a move to an
# older server removes them, so a downlevel mailbox never carries them.
PEOPLE: tuple[Person, ...] = (
    # First Administrative Group, EX1 (Exchange 2003)
    Person("jsmith", "John", "Smith", "EX1", cn="Smith, John", wireless=0,
           wireless_settings=("OMA:DirectPushEnabled=1",)),
    Person("kakers", "Kim", "Akers", "EX1", delegate="pcoleman"),
    Person("pcoleman", "Pat", "Coleman", "EX1"),
    Person("dhall", "Don", "Hall", "EX1", wireless=7),
    Person("jlew", "Judy", "Lew", "EX1", delegate=RECEPTION),
    Person("tadams", "Terry", "Adams", "EX1", mixed_case_legacy=True),
    Person("kberg", "Karen", "Berg", "EX1", moved_from=EUROPE),
    Person("jhay", "Jeff", "Hay", "EX1", delegate="tpoe"),
    Person("mnorth", "Mary", "North", "EX1", wireless=5,
           wireless_settings=("OMA:DeviceSecurityExempt=0", "OMA:DirectPushEnabled=0")),
    Person("tpoe", "Toni", "Poe", "EX1", disabled=True),
    # First Administrative Group, EX2 (Exchange 2000)
    Person("tbremer", "Ted", "Bremer", "EX2"),
    Person("bsmith", "Ben", "Smith", "EX2"),
    Person("lpenor", "Lori", "Penor", "EX2"),
    Person("sdavis", "Sara", "Davis", "EX2"),
    Person("nanderson", "Nancy", "Anderson", "EX2"),
    Person("cgray", "Chris", "Gray", "EX2"),
    # Europe, EUR1 (Exchange 5.5)
    Person("jmueller", "Jürgen", "Müller", "EUR1"),
    Person("slund", "Søren", "Lund", "EUR1"),
    Person("adupont", "Anne", "Dupont", "EUR1"),
    Person("mrossi", "Marco", "Rossi", "EUR1"),
    Person("isvensson", "Ingrid", "Svensson", "EUR1"),
    Person("pdevries", "Pieter", "de Vries", "EUR1"),
    # Europe, EUR2 (Exchange 2003)
    Person("cmartin", "Chloé", "Martin", "EUR2", wireless=0),
    Person("lbianchi", "Luca", "Bianchi", "EUR2"),
    Person("enovak", "Eva", "Novak", "EUR2"),
    Person("hweber", "Hans", "Weber", "EUR2", wireless=3),
    Person("akowalska", "Anna", "Kowalska", "EUR2", moved_from=FIRST_ADMIN_GROUP),
    Person("lnilsson", "Lars", "Nilsson", "EUR2"),
    Person("scosta", "Sofia", "Costa", "EUR2"),
    Person("olaurent", "Olivier", "Laurent", "EUR2"),
)
SALES_MEMBERS = ("jsmith", "kakers", "tbremer", "cmartin", "jmueller")


def servers(layout: Layout) -> dict[str, Server]:
    return {
        "EX1": layout.server(FIRST_ADMIN_GROUP, "EX1", "2003", recovery_group=True),
        "EX2": layout.server(FIRST_ADMIN_GROUP, "EX2", "2000"),
        "EUR1": layout.server(EUROPE, "EUR1", "5.5"),
        "EUR2": layout.server(EUROPE, "EUR2", "2003"),
    }


def domain_controllers(variant: str) -> list[DomainController]:
    if variant == "fabrikam-multidc":
        return [DomainController("DC1"), DomainController("DC2"),
                DomainController("DC3", "Frankfurt", read_only=True)]
    return [DomainController("DC1")]


def guid(alias: str) -> bytes:
    return uuid.uuid5(_GUID_NAMESPACE, alias).bytes


def recipients(layout: Layout, table: dict[str, Server]) -> list[Entry]:
    staff = f"OU=Staff,{DOMAIN}"
    europe = f"OU=Europe,{DOMAIN}"
    dns: dict[str, str] = {}
    parents: dict[str, str] = {}
    for p in PEOPLE:
        parents[p.alias] = europe if table[p.server].admin_group == EUROPE else staff
        dns[p.alias] = f"{lab.rdn('CN', p.cn or f'{p.given} {p.sn}')},{parents[p.alias]}"
    dns[RECEPTION] = f"CN=Reception Desk,{staff}"
    out: list[Entry] = []
    for p in PEOPLE:
        server = table[p.server]
        legacy = layout.recipient_legacy_dn(server.admin_group, p.alias)
        if p.mixed_case_legacy:
            legacy = f"/O={ORG}/OU={server.admin_group}/CN=RECIPIENTS/CN={p.alias}"
        history = [layout.recipient_legacy_dn(p.moved_from, p.alias)] if p.moved_from else []
        secondary = [f"{lab.ascii_fold(p.given)}.{lab.ascii_fold(p.sn)}@{layout.dns_domain}".lower()]
        out.append(lab.mailbox(
            layout, parents[p.alias], cn=p.cn or f"{p.given} {p.sn}", given=p.given, sn=p.sn,
            alias=p.alias, server=server, guid=guid(p.alias), legacy_dn=legacy,
            secondary_smtp=secondary, history=history, wireless=p.wireless,
            wireless_settings=p.wireless_settings,
            delegates=[dns[p.delegate]] if p.delegate else [],
            extra=[("userAccountControl", DISABLED_ACCOUNT if p.disabled else ENABLED_ACCOUNT)]))
    out.append((dns[RECEPTION], [*lab.classes("user"), ("cn", "Reception Desk"), ("sn", "Desk"),
                                 ("displayName", "Reception Desk"),
                                 ("sAMAccountName", RECEPTION),
                                 ("userAccountControl", ENABLED_ACCOUNT)]))
    out.append(lab.mail_group(layout, staff, cn="Fabrikam Sales", alias="sales",
                              admin_group=FIRST_ADMIN_GROUP,
                              members=[dns[a] for a in SALES_MEMBERS],
                              description="Sales team, both administrative groups"))
    out.append(lab.mail_contact(layout, staff, cn="Ben Miller (Contoso)", given="Ben",
                                sn="Miller", alias="BenMiller", external="ben.miller@contoso.com",
                                admin_group=FIRST_ADMIN_GROUP))
    return out


def adc_disabled_user() -> Entry:
    """A mailbox deleted while the organisation was mixed: the ADC's literal stamp."""
    dn = f"CN=Rolf Hartmann,OU=Europe,{DOMAIN}"
    return dn, [*lab.classes("user"), ("cn", "Rolf Hartmann"), ("sn", "Hartmann"),
                ("givenName", "Rolf"), ("displayName", "Rolf Hartmann"),
                ("sAMAccountName", "rhartmann"),
                ("userPrincipalName", "rhartmann@fabrikam.com"),
                ("legacyExchangeDN", "ADCDisabledMail")]


def source_recipients(layout: Layout, server: Server) -> list[Entry]:
    """The people as the source organisation had them, before the migration to Fabrikam.

    Same DNs, addresses and mailbox GUIDs (a mailbox keeps its GUID when moved), all on
    one server; what `exdir x500 sync` must carry over, and what it must not:
    - every legacyExchangeDN (/o=Litware/ou=Litware Site/cn=Recipients/cn=<alias>);
    - the X500 history of those who moved within Litware (every third person);
    - tpoe has no msExchMailboxGuid (matched by mailNickname), nor have the group and
      the contact;
    - jsmith's source carries, as an X500, Fabrikam's own value for him in capitals (never
      added: it is the target's legacyExchangeDN), kberg's the X500 Fabrikam gave him in
      lower case (never duplicated).
    """
    staff = f"OU=Staff,{DOMAIN}"
    europe = f"OU=Europe,{DOMAIN}"
    target = Layout(DOMAIN, ORG)
    table = servers(target)
    out: list[Entry] = []
    for i, p in enumerate(PEOPLE):
        parent = europe if table[p.server].admin_group == EUROPE else staff
        history = [layout.recipient_legacy_dn(SOURCE_OLD_GROUP, p.alias)] if i % 3 == 0 else []
        if p.alias == "jsmith":
            history.append(target.recipient_legacy_dn(table[p.server].admin_group,
                                                       p.alias).upper())
        if p.moved_from:
            history.append(target.recipient_legacy_dn(p.moved_from, p.alias).lower())
        secondary = [f"{lab.ascii_fold(p.given)}.{lab.ascii_fold(p.sn)}@{layout.dns_domain}".lower()]
        dn, attrs = lab.mailbox(
            layout, parent, cn=p.cn or f"{p.given} {p.sn}", given=p.given, sn=p.sn,
            alias=p.alias, server=server, guid=guid(p.alias), secondary_smtp=secondary,
            history=history)
        if p.alias == "tpoe":
            attrs = [(a, v) for a, v in attrs if a != "msExchMailboxGuid"]
        out.append((dn, attrs))
    out.append(lab.mail_group(layout, staff, cn="Fabrikam Sales", alias="sales",
                              admin_group=SOURCE_GROUP, members=[],
                              description="Sales team"))
    out.append(lab.mail_contact(layout, staff, cn="Ben Miller (Contoso)", given="Ben",
                                sn="Miller", alias="BenMiller", external="ben.miller@contoso.com",
                                admin_group=SOURCE_GROUP))
    return out


def source_entries() -> list[Entry]:
    """litware.ldif: the organisation Fabrikam's people were migrated from."""
    layout = Layout(DOMAIN, SOURCE_ORG)
    server = layout.server(SOURCE_GROUP, "LW1", "2003")
    out: list[Entry] = [lab.domain_root(layout),
                        lab.organizational_unit(layout, "Staff", description="Head office staff"),
                        lab.organizational_unit(layout, EUROPE, description="European offices"),
                        lab.container(layout.config, "Configuration", "configuration")]
    out += lab.sites_entries(layout, [DomainController("DC1")])
    out += lab.exchange_root_entries(layout, mixed=False)
    out += lab.admin_group_entries(layout, SOURCE_GROUP, [server], default=True)
    out += lab.server_entries(server)
    return out + source_recipients(layout, server)


def entries(variant: str) -> list[Entry]:
    if variant not in VARIANTS:
        raise ValueError(f"unknown sample {variant!r}")
    if variant == "openchange":  # another organisation, shaped by another tool
        return lab_openchange.entries(DOMAIN)
    if variant == "litware":
        return source_entries()
    mixed = variant == "fabrikam-mixed"
    layout = Layout(DOMAIN, ORG)
    table = servers(layout)
    dcs = domain_controllers(variant)
    out: list[Entry] = [lab.domain_root(layout),
                        lab.organizational_unit(layout, "Staff", description="Head office staff"),
                        lab.organizational_unit(layout, EUROPE, description="European offices"),
                        lab.container(layout.config, "Configuration", "configuration")]
    out += lab.sites_entries(layout, dcs)
    out += lab.exchange_root_entries(layout, mixed=mixed)
    out += lab.imf_entries(layout, enabled=True, gateway=8, store=6)
    for i, ag in enumerate((FIRST_ADMIN_GROUP, EUROPE)):
        in_group = [s for s in table.values() if s.admin_group == ag]
        out += lab.admin_group_entries(layout, ag, in_group, default=(i == 0))
        for server in in_group:
            out += lab.server_entries(server)
    if mixed:
        five = table["EUR1"]
        out += lab.adc_entries(layout, "DC1", [
            Agreement("Europe Recipients (EUR1)", five, dcs[0], f"OU=Europe,{DOMAIN}",
                      DIRECTION_TWO_WAY, ACTIVATION_ALWAYS),
            Agreement("Head Office to Europe (EUR1)", five, dcs[0], f"OU=Staff,{DOMAIN}",
                      DIRECTION_FROM_WINDOWS, ACTIVATION_SCHEDULED),
        ])
    out += recipients(layout, table)
    if mixed:
        out.append(adc_disabled_user())
    return out


_HEADERS = {
    "fabrikam": "Exchange 2003 organisation Fabrikam in native mode, one domain controller.",
    "fabrikam-multidc": "The Fabrikam organisation with three domain controllers over two "
                        "sites, DC3 read-only.",
    "fabrikam-mixed": "The Fabrikam organisation in mixed mode with an Active Directory "
                      "Connector and two connection agreements.",
    "openchange": "An organisation shaped as OpenChange's provisioning leaves it: no MTA, "
                  "homeMTA naming the store, no msExchHomeServerName.",
    "litware": "The Litware organisation Fabrikam's people were migrated from (the source "
               "of exdir x500 sync).",
}


def text(variant: str) -> str:
    """The LDIF text of one sample."""
    head = ("version: 1\n\n"
            f"# {_HEADERS[variant]}\n"
            "# Written by samples/make_samples.py; see samples/README.md.\n\n")
    return head + "".join(lab.record(dn, attrs) for dn, attrs in entries(variant))


def main(argv: Sequence[str]) -> int:
    check = "--check" in argv
    stale = []
    for variant in VARIANTS:
        path = HERE / f"{variant}.ldif"
        wanted = text(variant)
        if check:
            if not path.exists() or path.read_text(encoding="utf-8") != wanted:
                stale.append(path.name)
        else:
            path.write_text(wanted, encoding="utf-8", newline="\n")
            print(f"wrote {path}", file=sys.stderr)
    if stale:
        print(f"stale samples (run samples/make_samples.py): {', '.join(stale)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
