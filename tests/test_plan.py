"""The Plan as data: canonical values, no-op dropping, inverse laws, rename tracking.

The hypothesis strategies here (dns, values, changes, plans) are shared with
test_ldif_roundtrip.py.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ldap3.utils.dn import escape_rdn

from exdir.errors import ExdirError, InputError, Refused
from exdir.plan import (Add, Attributes, Change, Delete, InvalidChange, Mod, Modify, ModOp,
                        NotInvertible, Plan, Rename, Value, add_values, canonical_dn, dn_key,
                        rdn_and_parent, remove_values, replace_value)

ORG = "CN=Fabrikam,CN=Microsoft Exchange,CN=Services,CN=Configuration,DC=fabrikam,DC=com"
ORG_NEW = "CN=Contoso,CN=Microsoft Exchange,CN=Services,CN=Configuration,DC=fabrikam,DC=com"
EX1_OLD = f"CN=EX1,CN=Servers,CN=First Administrative Group,CN=Administrative Groups,{ORG}"
EX1_NEW = f"CN=EX1,CN=Servers,CN=First Administrative Group,CN=Administrative Groups,{ORG_NEW}"
SMITH = r"CN=Smith\, John,OU=Staff,DC=fabrikam,DC=com"
LEG = "legacyExchangeDN"


def design_plan() -> Plan:
    """docs/design.md's dry-run example: an organisation rename and what follows it."""
    ag_old = "/o=Fabrikam/ou=First Administrative Group"
    ag_new = "/o=Contoso/ou=First Administrative Group"
    server = Modify(EX1_NEW, (
        Mod("delete", LEG, (f"{ag_old}/cn=Configuration/cn=Servers/cn=EX1",)),
        Mod("add", LEG, (f"{ag_new}/cn=Configuration/cn=Servers/cn=EX1",)),
    ), "server legacyExchangeDN under /o=Fabrikam (addressed by its DN after the rename)")
    recipient = Modify(SMITH, (
        Mod("delete", LEG, (f"{ag_old}/cn=Recipients/cn=jsmith",)),
        Mod("add", LEG, (f"{ag_new}/cn=Recipients/cn=jsmith",)),
        Mod("delete", "msExchHomeServerName", (f"{ag_old}/cn=Configuration/cn=Servers/cn=EX1",)),
        Mod("add", "msExchHomeServerName", (f"{ag_new}/cn=Configuration/cn=Servers/cn=EX1",)),
        Mod("add", "proxyAddresses", (f"X500:{ag_old}/cn=Recipients/cn=jsmith",)),
    ), "recipient: legacyExchangeDN and home server rewritten, old value kept as X500")
    return Plan((
        Rename(ORG, "CN=Contoso", None, "rename the organisation; Active Directory moves its "
                                        "subtree and every DN reference"),
        server,
        recipient,
    ))


# --- hypothesis strategies (also used by test_ldif_roundtrip.py) ----------------------

# Characters LDIF must take care of, beside ordinary ones.
_TRICKY = " :<>#-=,+\\\";\n\r\t\x00\x7féü中😀"
text_values = st.one_of(
    st.text(alphabet=st.sampled_from("abcXYZ019/" + _TRICKY), max_size=12),
    st.text(max_size=8),
    st.text(alphabet="abcdefgh /=", min_size=70, max_size=200),  # long: folds
    st.sampled_from(["", " lead", "trail ", ":colon", "<angle", "a\nb", "Müller", "#hash"]),
)
BINARY_ATTRIBUTES = ("msExchMailboxGuid", "objectGUID", "userCertificate;binary")
TEXT_ATTRIBUTES = (LEG, "proxyAddresses", "description", "homeMDB", "mail", "info",
                   "msExchHomeServerName", "x-exdirTestAttribute")


@st.composite
def attribute_values(draw: st.DrawFn, min_size: int = 1) -> tuple[str, tuple[Value, ...]]:
    """An attribute and values of the kind its schema says (bytes sometimes for text too)."""
    if draw(st.integers(0, 3)) == 0:
        name = draw(st.sampled_from(BINARY_ATTRIBUTES))
        values: list[Value] = draw(st.lists(st.binary(max_size=40), min_size=min_size, max_size=3))
    else:
        name = draw(st.sampled_from(TEXT_ATTRIBUTES))
        values = draw(st.lists(st.one_of(text_values, st.binary(max_size=6)),
                               min_size=min_size, max_size=3))
    return name, tuple(values)


rdn_values = st.text(alphabet=st.sampled_from("abcXYZ 019,+=\\\"#;<>éü中\n."), min_size=1,
                     max_size=10).filter(lambda v: v.strip() != "")


def escape_value(value: str) -> str:
    """RFC 4514 escaping, '#' included anywhere: ldap3's parser wants it escaped
    inside a value too, while its escape_rdn escapes only a leading one."""
    chars = ["\\" + c if c in ',+"\\<>;=#' else "\\00" if c == "\x00" else c for c in value]
    for i in {0, len(chars) - 1}:
        if value[i] == " ":
            chars[i] = "\\ "
    return "".join(chars)


@st.composite
def rdns(draw: st.DrawFn) -> str:
    return f"{draw(st.sampled_from(['CN', 'OU', 'cn', 'DC']))}={escape_value(draw(rdn_values))}"


@st.composite
def dns(draw: st.DrawFn) -> str:
    parts = draw(st.lists(rdns(), min_size=1, max_size=4))
    return ",".join(parts + ["DC=fabrikam", "DC=com"])


reasons = st.one_of(st.text(max_size=30), st.text(alphabet="ab undo:\n", max_size=20),
                    st.text(alphabet="abcdefghij ", min_size=60, max_size=200))


@st.composite
def modifies(draw: st.DrawFn, invertible: bool = False) -> Modify:
    mods = []
    for _ in range(draw(st.integers(0, 3))):
        ops: list[ModOp] = ["add", "delete"] if invertible else ["add", "delete", "replace"]
        op = draw(st.sampled_from(ops))
        name, values = draw(attribute_values(min_size=1 if op == "add" or invertible else 0))
        mods.append(Mod(op, name, values))
    return Modify(draw(dns()), tuple(mods), draw(reasons))


@st.composite
def renames(draw: st.DrawFn) -> Rename:
    superior = draw(st.one_of(st.none(), dns()))
    return Rename(draw(dns()), draw(rdns()), superior, draw(reasons))


@st.composite
def adds(draw: st.DrawFn) -> Add:
    attrs = draw(st.lists(attribute_values(), min_size=1, max_size=3))
    return Add(draw(dns()), tuple(attrs), draw(reasons))


@st.composite
def deletes(draw: st.DrawFn, with_old: bool = True) -> Delete:
    old = draw(st.lists(attribute_values(), min_size=1, max_size=3)) if with_old else None
    return Delete(draw(dns()), draw(reasons), tuple(old) if old is not None else None)


def changes(invertible: bool = False) -> st.SearchStrategy[Change]:
    return st.one_of(modifies(invertible), renames(), adds(), deletes(with_old=invertible))


def plans(invertible: bool = False) -> st.SearchStrategy[Plan]:
    return st.lists(changes(invertible), max_size=5).map(lambda cs: Plan(tuple(cs)))


# --- values and construction ---------------------------------------------------------

def test_values_are_canonical_by_schema() -> None:
    mod = Mod("add", "description", (b"caf\xc3\xa9", "x", b"\xff\xfe"))
    assert mod.values == ("café", "x", b"\xff\xfe")  # bytes only where not UTF-8
    guid = Mod("add", "msExchMailboxGuid", ("abc", b"\x00\x01"))
    assert guid.values == (b"abc", b"\x00\x01")  # binary attributes hold bytes
    assert Mod("delete", "userCertificate;binary", ("x",)).values == (b"x",)
    assert isinstance(Mod("add", "description", ["a", "b"]).values, tuple)  # type: ignore[arg-type]


@pytest.mark.parametrize("make, fragment", [
    (lambda: Mod("add", "description", ()), "at least one value"),
    (lambda: Mod("add", "bad name", ("x",)), "invalid attribute name"),
    (lambda: Mod("add", "description", "abc"), "must be a sequence"),  # type: ignore[arg-type]
    (lambda: Mod("increment", "description", ("1",)), "unknown modify operation"),  # type: ignore[arg-type]
    (lambda: Mod("add", "description", ("\udc80",)), "not valid Unicode"),
    (lambda: Modify("not a dn", (), "r"), "malformed DN"),
    (lambda: Modify("", (), "r"), "empty or missing DN"),
    (lambda: Modify("   ", (), "r"), "empty or missing DN"),
    (lambda: Modify(None, (), "r"), "empty or missing DN"),  # type: ignore[arg-type]
    (lambda: Modify("<GUID=0a1b>", (), "r"), "empty or missing DN"),  # a GUID, no name
    (lambda: Rename("CN=a,DC=x", "CN=b,DC=y", None, "r"), "must be one RDN"),
    (lambda: Add("CN=a,DC=x", (), "r"), "at least one attribute"),
    (lambda: Add("CN=a,DC=x", (("cn", ()),), "r"), "has no values"),
])
def test_invalid_changes_are_input_errors(make: object, fragment: str) -> None:
    with pytest.raises(InvalidChange, match=fragment) as info:
        make()  # type: ignore[operator]
    assert isinstance(info.value, InputError) and info.value.exit_code == 2


def test_dn_text_keeps_escapes_and_case_but_not_stray_spaces() -> None:
    assert canonical_dn(SMITH) == SMITH
    assert f"CN={escape_rdn('Smith, John')},OU=Staff,DC=fabrikam,DC=com" == SMITH
    assert canonical_dn("cn=a , dc=b") == "cn=a,dc=b"
    assert canonical_dn(r"CN=trailing\ ,DC=x") == r"CN=trailing\ ,DC=x"
    assert Modify("cn=a+sn=b, dc=c", (), "").dn == "cn=a+sn=b,dc=c"
    assert dn_key(r"CN=Smith\2C John,dc=X") == dn_key(r"cn=smith\, john,DC=x")
    assert dn_key("cn=a+sn=b,dc=c") == dn_key("sn=B+cn=A,dc=c")
    assert dn_key("cn=a,dc=c") != dn_key("cn=a,dc=c,dc=d")
    assert rdn_and_parent("cn=a+sn=b,dc=c") == ("cn=a+sn=b", "dc=c")
    assert rdn_and_parent("dc=com") == ("dc=com", "")


def test_reasons_are_one_line() -> None:
    m = Modify(SMITH, (), "first line\r\nsecond\tline  \x00 end ")
    assert m.reason == "first line second line end"


def test_rename_new_dn() -> None:
    assert Rename(ORG, "CN=Contoso", None, "").new_dn == ORG_NEW
    assert Rename(SMITH, r"CN=Smith\, Jane", "OU=Moved,DC=fabrikam,DC=com", "").new_dn == \
        r"CN=Smith\, Jane,OU=Moved,DC=fabrikam,DC=com"
    assert Rename("DC=com", "DC=org", None, "").new_dn == "DC=org"
    assert Modify(SMITH, (), "").new_dn == SMITH


# --- helpers planners use -----------------------------------------------------------------

def test_replace_value_deletes_old_then_adds_new() -> None:
    m = replace_value(SMITH, LEG, ["/o=A/cn=x"], ["/o=B/cn=x"], "why")
    assert m == Modify(SMITH, (Mod("delete", LEG, ("/o=A/cn=x",)), Mod("add", LEG, ("/o=B/cn=x",))),
                       "why")
    # no old values: never a value-less delete, which would remove the whole attribute
    assert replace_value(SMITH, LEG, [], ["/o=B"], "").mods == (Mod("add", LEG, ("/o=B",)),)
    assert replace_value(SMITH, LEG, ["/o=A"], [], "").mods == (Mod("delete", LEG, ("/o=A",)),)
    assert add_values(SMITH, "proxyAddresses", ["X500:/o=A"], "").mods == (
        Mod("add", "proxyAddresses", ("X500:/o=A",)),)
    assert remove_values(SMITH, "proxyAddresses", ["X500:/o=A"], "").mods == (
        Mod("delete", "proxyAddresses", ("X500:/o=A",)),)
    assert remove_values(SMITH, "proxyAddresses", [], "").mods == ()


# --- no-op modifies -------------------------------------------------------------------------

@pytest.mark.parametrize("mods", [
    (),
    (Mod("delete", LEG, ("/o=A",)), Mod("add", LEG, ("/o=A",))),
    (Mod("add", "homeMDB", ("CN=S,DC=x",)), Mod("delete", "homeMDB", ("cn=s,dc=X",))),
    (Mod("delete", "proxyAddresses", ("a", "b")), Mod("add", "proxyAddresses", ("b", "a"))),
    (Mod("delete", "msExchMailboxGuid", (b"\x01",)), Mod("add", "msExchMailboxGuid", (b"\x01",))),
    (Mod("delete", LEG, ("/o=A",)), Mod("delete", "mail", ("m",)),
     Mod("add", "mail", ("m",)), Mod("add", LEG, ("/o=A",))),
])
def test_modifies_that_change_nothing_are_dropped(mods: tuple[Mod, ...]) -> None:
    keep = replace_value(SMITH, LEG, ["/o=A"], ["/o=B"], "real")
    plan = Plan((Modify(SMITH, mods, "nothing"), keep))
    assert plan.changes == (keep,)


@pytest.mark.parametrize("mods", [
    (Mod("delete", LEG, ("/o=A",)), Mod("add", LEG, ("/o=B",))),
    (Mod("delete", "msExchMailboxGuid", (b"A",)), Mod("add", "msExchMailboxGuid", (b"a",))),  # bytes exact
    (Mod("delete", LEG, ("/o=A",)), Mod("add", "mail", ("/o=A",))),  # another attribute
    # the case of a string is data (SMTP: marks the primary address): a change
    (Mod("delete", LEG, ("/o=A",)), Mod("add", LEG, ("/O=a",))),
    (Mod("delete", "proxyAddresses", ("SMTP:a",)), Mod("add", "proxyAddresses", ("smtp:a",))),
    (Mod("replace", LEG, ("/o=A",)),),
    (Mod("delete", LEG, ()), Mod("add", LEG, ("/o=A",))),
    (Mod("add", LEG, ("/o=A",)), Mod("add", LEG, ("/o=A",))),  # fails: not nothing
    (Mod("delete", LEG, ("/o=A", "/o=A")), Mod("add", LEG, ("/o=A",))),
])
def test_modifies_that_change_something_are_kept(mods: tuple[Mod, ...]) -> None:
    m = Modify(SMITH, mods, "something")
    assert Plan((m,)).changes == (m,)


# --- inverse ------------------------------------------------------------------------

def test_inverse_of_design_example() -> None:
    plan = design_plan()
    inv = plan.inverse()
    assert [type(c) for c in inv] == [Modify, Modify, Rename]
    smith, server, rename = inv.changes
    assert smith.dn == SMITH and smith.reason.startswith("undo: recipient")
    assert isinstance(smith, Modify)
    assert [(m.op, m.attribute) for m in smith.mods] == [
        ("delete", "proxyAddresses"), ("delete", "msExchHomeServerName"),
        ("add", "msExchHomeServerName"), ("delete", LEG), ("add", LEG)]
    assert smith.mods[-1].values == ("/o=Fabrikam/ou=First Administrative Group/cn=Recipients/cn=jsmith",)
    assert server.dn == EX1_NEW  # the undo runs before the rename is undone
    assert rename == Rename(ORG_NEW, "CN=Fabrikam", None,
                            "undo: rename the organisation; Active Directory moves its subtree "
                            "and every DN reference")
    assert inv.inverse() == plan


def test_rename_inverse_with_new_superior() -> None:
    r = Rename(SMITH, "CN=Jane", "OU=Moved,DC=fabrikam,DC=com", "move")
    assert r.inverse() == Rename("CN=Jane,OU=Moved,DC=fabrikam,DC=com", r"CN=Smith\, John",
                                 "OU=Staff,DC=fabrikam,DC=com", "undo: move")


def test_add_and_delete_invert_each_other() -> None:
    attrs: Attributes = (("objectClass", ("top", "contact")), ("cn", ("x",)))
    add = Add("CN=x,DC=fabrikam,DC=com", attrs, "create")
    assert add.inverse() == Delete("CN=x,DC=fabrikam,DC=com", "undo: create", attrs)
    assert add.inverse().inverse() == add


@pytest.mark.parametrize("change, fragment", [
    (Delete(SMITH, "gone"), "without the entry"),
    (Modify(SMITH, (Mod("add", "mail", ("a",)), Mod("replace", LEG, ("/o=B",))), "r"), "replace: legacyExchangeDN"),
    (Modify(SMITH, (Mod("delete", "info", ()),), "r"), "delete: info"),
])
def test_not_invertible_without_old_values(change: Change, fragment: str) -> None:
    plan = Plan((replace_value(SMITH, "mail", ["a"], ["b"], "first"), change))
    with pytest.raises(NotInvertible, match=fragment) as info:
        plan.inverse()
    assert "step 2" in str(info.value)
    assert isinstance(info.value, Refused) and isinstance(info.value, ExdirError)


@given(plans(invertible=True))
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_inverse_of_inverse_is_the_plan(plan: Plan) -> None:
    inv = plan.inverse()
    assert len(inv) == len(plan)
    assert inv.inverse() == plan
    for change, undo in zip(plan.changes, reversed(inv.changes)):
        assert type(undo) is {Modify: Modify, Rename: Rename, Add: Delete, Delete: Add}[type(change)]
        assert undo.reason != change.reason


@given(reasons)
def test_undo_reasons_pair_up(reason: str) -> None:
    m = Modify(SMITH, (Mod("add", "mail", ("a",)),), reason)
    once = m.inverse()
    assert once.reason.startswith("undo:") or m.reason.startswith("undo:")
    assert once.inverse().reason == m.reason


def test_plans_are_equal_by_value() -> None:
    assert design_plan() == design_plan()
    assert hash(design_plan()) == hash(design_plan())
    assert design_plan() != Plan(design_plan().changes[:2])
    # lists are taken as tuples, so equality stays equality of content
    assert Plan([replace_value(SMITH, "mail", ["a"], ["b"], "r")]) == Plan(  # type: ignore[arg-type]
        (Modify(SMITH, [Mod("delete", "mail", ["a"]),  # type: ignore[arg-type]
                        Mod("add", "mail", ["b"])], "r"),))  # type: ignore[arg-type]


# --- resolving replaces and deletes ------------------------------------------------------

def _lookup(table: dict[tuple[str, str], Sequence[Value]]
            ) -> tuple[Callable[[str, str], Sequence[Value]], list[tuple[str, str]]]:
    """A current-values lookup over `table` that records what it was asked."""
    calls: list[tuple[str, str]] = []

    def current(dn: str, attribute: str) -> Sequence[Value]:
        calls.append((dn, attribute))
        return table.get((dn, attribute.lower()), ())
    return current, calls


def test_resolve_replace_spells_out_old_values() -> None:
    plan = Plan((
        Rename(ORG, "CN=Contoso", None, "rename"),
        Modify(EX1_NEW, (Mod("replace", LEG, ("/o=Contoso/cn=EX1",)),), "server"),
        Modify(SMITH, (Mod("replace", "proxyAddresses", ("SMTP:j@x", "X500:/o=F")),
                       Mod("delete", "info", ()),
                       Mod("replace", "mail", ("j@x",)),
                       Mod("replace", "otherMailbox", ())), "recipient"),
    ))
    current, calls = _lookup({
        (EX1_OLD, LEG.lower()): ["/o=Fabrikam/cn=EX1"],
        (SMITH, "proxyaddresses"): ["SMTP:j@x", "X500:/o=F"],  # unchanged: the block goes
        (SMITH, "info"): ["note 1", "note 2"],
    })
    resolved = plan.resolve_replace(current)
    assert (EX1_OLD, LEG) in calls  # looked up by the DN before the rename
    assert resolved.changes[1] == Modify(EX1_NEW, (
        Mod("delete", LEG, ("/o=Fabrikam/cn=EX1",)), Mod("add", LEG, ("/o=Contoso/cn=EX1",))), "server")
    smith = resolved.changes[2]
    assert isinstance(smith, Modify)
    assert smith.mods == (
        Mod("delete", "proxyAddresses", ("SMTP:j@x", "X500:/o=F")),
        Mod("add", "proxyAddresses", ("SMTP:j@x", "X500:/o=F")),
        Mod("delete", "info", ("note 1", "note 2")),
        Mod("add", "mail", ("j@x",)),  # nothing there before: no delete block
    )
    undo = resolved.inverse()
    assert undo.changes[0].mods[1] == Mod("add", "info", ("note 1", "note 2"))  # type: ignore[union-attr]


def test_resolve_replace_sees_earlier_steps_and_drops_noops() -> None:
    plan = Plan((
        Modify(SMITH, (Mod("delete", "mail", ("a",)), Mod("add", "mail", ("b",))), "one"),
        Modify(SMITH, (Mod("replace", "mail", ("b",)),), "two: already b"),
        Modify(SMITH, (Mod("replace", "mail", ("c",)),), "three"),
    ))
    current, _ = _lookup({(SMITH, "mail"): ["a"]})
    resolved = plan.resolve_replace(current)
    assert [c.reason for c in resolved] == ["one", "three"]
    assert resolved.changes[1].mods == (Mod("delete", "mail", ("b",)), Mod("add", "mail", ("c",)))  # type: ignore[union-attr]
    plain = Plan((replace_value(SMITH, "mail", ["a"], ["b"], "x"),))
    assert plain.resolve_replace(lambda dn, a: pytest.fail("no lookup needed")) is plain


def test_resolve_deletes_captures_the_entry() -> None:
    entry: Attributes = (("objectClass", ("top", "contact")), ("cn", ("Old",)))
    moved = "CN=Old,OU=Moved,DC=fabrikam,DC=com"
    plan = Plan((Rename("CN=Old,DC=fabrikam,DC=com", "CN=Old", "OU=Moved,DC=fabrikam,DC=com", "mv"),
                 Delete(moved, "gone")))
    seen: list[str] = []

    def current(dn: str) -> Attributes | None:
        seen.append(dn)
        return entry if dn == "CN=Old,DC=fabrikam,DC=com" else None
    resolved = plan.resolve_deletes(current)
    assert seen == ["CN=Old,DC=fabrikam,DC=com"]
    assert resolved.changes[1] == Delete(moved, "gone", entry)
    assert resolved.inverse().changes[0] == Add(moved, entry, "undo: gone")


# --- targets: DNs traced back through renames ------------------------------------------

def test_targets_of_design_example_are_pre_plan_dns() -> None:
    plan = design_plan()
    assert plan.origins() == (ORG, EX1_OLD, SMITH)
    assert plan.targets() == (ORG, EX1_OLD, SMITH)


def test_targets_follow_chained_renames_and_deduplicate() -> None:
    base = "DC=fabrikam,DC=com"
    plan = Plan((
        Rename(f"CN=child,OU=A,{base}", "CN=kid", None, "1"),
        Modify(f"cn=KID,ou=a,{base}", (Mod("add", "info", ("x",)),), "2"),
        Rename(f"OU=A,{base}", "OU=B", f"OU=Top,{base}", "3"),
        Modify(f"CN=kid,OU=B,OU=Top,{base}", (Mod("add", "info", ("y",)),), "4"),
        Modify(f"CN=other,OU=B,OU=Top,{base}", (Mod("add", "info", ("z",)),), "5"),
        Rename(f"CN=kid,OU=B,OU=Top,{base}", "CN=kid2", f"OU=Top,{base}", "6"),
        Modify(f"CN=kid2,OU=Top,{base}", (Mod("add", "info", ("w",)),), "7"),
    ))
    assert plan.origins() == (
        f"CN=child,OU=A,{base}", f"CN=child,OU=A,{base}", f"OU=A,{base}",
        f"CN=child,OU=A,{base}", f"CN=other,OU=A,{base}", f"CN=child,OU=A,{base}",
        f"CN=child,OU=A,{base}")
    assert plan.targets() == (f"CN=child,OU=A,{base}", f"OU=A,{base}", f"CN=other,OU=A,{base}")


def test_targets_of_a_swap_and_a_delete() -> None:
    a, b, t = "CN=a,DC=x", "CN=b,DC=x", "CN=tmp,DC=x"
    swap = Plan((Rename(a, "CN=tmp", None, ""), Rename(b, "CN=a", None, ""),
                 Rename(t, "CN=b", None, ""), Modify(a, (Mod("add", "info", ("1",)),), ""),
                 Modify(b, (Mod("add", "info", ("2",)),), "")))
    assert swap.origins() == (a, b, a, b, a)
    gone = Plan((Rename(a, "CN=c", None, ""), Delete("CN=c,DC=x", ""),
                 Add("CN=c,DC=x", (("cn", ("c",)),), "")))
    assert gone.origins() == (a, a, "CN=c,DC=x")


def _cancels_by_keys(mods: Sequence[Mod]) -> bool:
    """Modify._cancels without its count first: every value keyed (the reference)."""
    from exdir import values as vals
    added: dict[str, set[object]] = {}
    removed: dict[str, set[object]] = {}
    for mod in mods:
        if mod.needs_current:
            return False
        name = mod.attribute.lower()
        plus, minus = added.setdefault(name, set()), removed.setdefault(name, set())
        mine, theirs = (minus, plus) if mod.op == "delete" else (plus, minus)
        for value in mod.values:
            key = vals.written_key(mod.attribute, value)
            if key in theirs:
                theirs.remove(key)
            elif key in mine:
                return False
            else:
                mine.add(key)
    return not any(added.values()) and not any(removed.values())


_NOOP_MOD = st.builds(
    lambda op, attr, values: Mod(op, attr, tuple(values)),
    st.sampled_from(["add", "delete", "replace"]),
    st.sampled_from(["proxyAddresses", "PROXYADDRESSES", "manager", "legacyExchangeDN"]),
    st.lists(st.sampled_from(["smtp:a@x", "SMTP:a@x", "CN=A,DC=x", "cn=a, dc=X", "/o=F"]),
             min_size=1, max_size=3))


@settings(max_examples=2000, deadline=None)
@given(st.lists(_NOOP_MOD, min_size=1, max_size=5))
def test_counting_before_keying_gives_is_noops_answer(mods: list[Mod]) -> None:
    assert Modify("CN=K,DC=x", tuple(mods)).is_noop() == _cancels_by_keys(mods)
