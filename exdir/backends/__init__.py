"""Directories exdir reads and writes, behind one interface with Active Directory's rules.

Layers (import from the module that holds a name; this package re-exports nothing):

- base.py       the interface: `Directory`, `Entry` (an entry as read),
                `NamingContexts`, `ModLike`/`SimpleMod` (one modify block) and
                `apply_mods` (AD's modify rules, shared by the in-memory backend and
                the apply engine's predictions).
- memory.py     an LDIF file in ldap3's MOCK_SYNC: `open_ldif`, `LdifDirectory`,
                `save_ldif`.
- mock_gaps.py  the only code that touches the mock's store, and every
                workaround of the mock, each naming its test in
                tests/test_mock_gaps.py.
- ldap.py       a real server over ldap3 SYNC: `open_url`, `LdapDirectory`.
- binds.py      connecting and binding (TLS, StartTLS, simple and NTLM binds).
                The bind password is read by exdir.credentials (not LDAP-specific).

What a backend must implement (the methods of `Directory` that raise
NotImplementedError; their docstrings give the contract):

- attributes: `backend` ("ldif", "ldap", ...: apply and checks branch on it),
  `naming` (a NamingContexts), `is_active_directory` where true;
- reads: `search(base, filter, attributes, scope)` yielding Entry objects (RFC
  4515 filters with AD's matching rules; a missing base yields nothing; writes
  between two results must be safe), `read(dn, attributes)` (None if absent),
  `read_many(dns, attributes)` (by dn.key(), in bulk: never one search per DN);
- writes with AD's semantics, raising exdir.errors types only: `modify` (atomic,
  apply_mods' rules), `add`, `delete` (leaves only), `rename` (the subtree moves;
  deleteoldrdn; returns the new DN);
- `describe()` for messages.

What the base class gives for free: `search_partitions` (configuration then
domain, each entry once), `exists`, `follows_dn_references` (AD and the LDIF
backend make DN references follow a rename; others do not, and plans then carry
the rewrites), context-manager use, and no-op `save` and `close` (override `save`
where writes are not durable by themselves, as the LDIF file is, and `close`
where something is held).
"""
