"""What `exdir replication check` reads besides the DCs' entries: the attids
replPropertyMetaData names the written attributes by (one search of the schema NC)."""
from __future__ import annotations

from typing import Sequence

from ..backends.base import Directory
from ..replication import attid_of


def read_attids(directory: Directory, attributes: Sequence[str]) -> dict[str, int]:
    """Lower-case lDAPDisplayName -> attid for the attributes, on Active Directory
    (one search with an OR-filter); {} elsewhere."""
    schema_nc = directory.naming.schema
    names = sorted({a.lower() for a in attributes})
    if not directory.is_active_directory or not schema_nc or not names:
        return {}
    flt = "(|" + "".join(f"(lDAPDisplayName={n})" for n in names) + ")"
    out: dict[str, int] = {}
    for e in directory.search(schema_nc, flt, ("lDAPDisplayName", "attributeID", "msDS-IntId"),
                              scope="one"):
        name, oid = e.text("lDAPDisplayName"), e.text("attributeID")
        int_text = e.text("msDS-IntId")
        try:
            int_id = int(int_text) if int_text else None
        except ValueError:
            int_id = None
        attid = attid_of(oid or "", int_id)
        if name and attid is not None:
            out[name.lower()] = attid
    return out
