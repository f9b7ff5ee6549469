"""legacydn-style renames (issue 5): `rename org`, `rename admin-group`, `legacydn set`.

Every rename is applied on the in-memory directory, on a real slapd (which leaves
DN references stale, so the plan must rewrite them) and on Samba's AD DC (which
rewrites them itself, as Windows does) when it can run here.  The end state is
judged by `assert_renamed`, which computes what every entry must hold from the
state before and the rules of docs/exchange.md — never from exdir.rename —
and the undo file must give back the state before, entry by entry.  Golden plans
pin the exact LDIF for samples/fabrikam.ldif (reviewed record by record).
"""
from __future__ import annotations

from functools import partial

import io
import tempfile
from pathlib import Path
from typing import Callable

import ldif
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exdir import dn as dnu
from exdir import lab as labgen
from exdir import schema
from exdir import apply as apply_engine
from exdir.gates import Safety
from exdir.checks import blocking, preflight
from exdir.findings import Operation
from exdir.backends.base import Directory, Entry
from exdir.backends.memory import open_ldif
from exdir.errors import InputError
from exdir.ldif_in import parse, read_plan
from exdir.ldif_out import render
from exdir.legacydn import same
from exdir.plan import Mod, Modify, Plan, Rename
from exdir.readers.recipients import read_affected
from exdir.rename import RenameScope, admin_group_scope, org_scope, plan_rename
from exdir.topology import E2007_ADMIN_GROUP as FYDIBOHF23SPDLT
from exdir.readers.topology import read_topology
from tests.labs import CountingDirectory, ALL_BACKENDS, Lab, cli, same_state, sample_lab, undo_files
from tests.plans import OPERATIONAL, Snapshot, snapshot
from tests.test_fidelity import AD_OWNED, data_state

# The engine's own tests run in a lab with the ADC stopped: the safety gates have
# their tests in tests/test_gates.py.
run = partial(apply_engine.run, safety=Safety(lab=True, adc_stopped=True))

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples"
SAMPLE = SAMPLES / "fabrikam.ldif"
GOLDEN = Path(__file__).resolve().parent / "golden"
CONFIG = "CN=Configuration,DC=fabrikam,DC=com"
EXCHANGE = f"CN=Microsoft Exchange,CN=Services,{CONFIG}"
ORG = f"CN=Fabrikam,{EXCHANGE}"
GROUPS = f"CN=Administrative Groups,{ORG}"
JOHN = "CN=Smith\\, John,OU=Staff,DC=fabrikam,DC=com"
EX1 = f"CN=EX1,CN=Servers,CN=First Administrative Group,{GROUPS}"
FAG_PREFIX = "/o=Fabrikam/ou=First Administrative Group"
VALUE_ATTRIBUTES = ("legacyexchangedn", "msexchhomeservername")


# --- the directories under test ------------------------------------------------------------

@pytest.fixture(params=ALL_BACKENDS)
def lab(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
        ) -> Lab:
    return sample_lab(request, tmp_path, monkeypatch, reader=state)


@pytest.fixture
def ldif_lab(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Lab:
    """The sample byte for byte (the tests that need no server compare the file with it)."""
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "lab.ldif"
    path.write_bytes(SAMPLE.read_bytes())
    return Lab("ldif", tmp_path, path=path, reader=state)


def _vocabulary() -> frozenset[str]:
    """The attributes the sample defines: what a real AD's state is compared on."""
    names: set[str] = set()
    for _dn, record in ldif.LDIFParser(io.BytesIO(SAMPLE.read_bytes()), encoding=None).parse():
        names.update(k.lower() for k in record)
    return frozenset(names - {a.lower() for a in AD_OWNED})


VOCABULARY = _vocabulary()


def state(d: Directory) -> Snapshot:
    """Every entry, comparable entry by entry; on AD only the attributes the data defines
    (whenChanged and the like are the server's), over both partitions."""
    if not d.is_active_directory:
        return snapshot(d)
    return data_state(d, [d.naming.domain, d.naming.configuration], set(VOCABULARY))


def everything(d: Directory) -> dict[str, Entry]:
    """Every entry by dn.key, configuration partition included (a separate NC on AD)."""
    out: dict[str, Entry] = {}
    for base in (d.naming.configuration, d.naming.domain):
        if base:
            for e in d.search(base, "(objectClass=*)", ("*",)):
                out.setdefault(dnu.key(e.dn), e)
    return out


# --- the judge: what a rename must leave, computed from the state before -----------------------

def under(value: str, prefix: str) -> bool:
    """docs/exchange.md's rule on the text: equal, or equal up to a '/', case-insensitively."""
    v, p = value.lower(), prefix.lower()
    return v == p or v.startswith(p + "/")


def _is_recipient(entry: Entry) -> bool:
    """docs/exchange.md / issue 5: a domain-partition object with a mailNickname or proxyAddresses."""
    return not dnu.is_within(entry.dn, CONFIG) and (entry.has("mailNickname")
                                                   or entry.has("proxyAddresses"))


def _in(value: str, base: str) -> bool:
    try:
        return dnu.is_within(value, base)
    except InputError:
        return False


def assert_renamed(before: dict[str, Entry], after: dict[str, Entry], *, container: str,
                   new_name: str, old_prefix: str, new_prefix: str, keep_x500: bool,
                   ad: bool) -> None:
    """The end state of a rename, entry by entry, from the entries before it."""
    new_container = dnu.join(dnu.build([("CN", new_name)]), dnu.parent(container))

    def moved(dn: str) -> str:
        return dnu.rebase(dn, container, new_container) if _in(dn, container) else dn

    ignored = set(OPERATIONAL) | ({a.lower() for a in AD_OWNED} if ad else set())
    assert {dnu.key(moved(b.dn)) for b in before.values()} == set(after), \
        "entries appeared or vanished"
    rewritten = 0
    for b in before.values():
        a = after[dnu.key(moved(b.dn))]
        # legacyExchangeDN and msExchHomeServerName: under the old prefix -> new prefix,
        # the rest of the value exactly as it was; anything else untouched
        for attr in VALUE_ATTRIBUTES:
            want = [new_prefix + v[len(old_prefix):] if under(v, old_prefix) else v
                    for v in b.texts(attr)]
            assert a.texts(attr) == want, (b.dn, attr)
        old_legacy = b.text("legacyExchangeDN")
        renamed_recipient = (_is_recipient(b) and old_legacy is not None
                             and under(old_legacy, old_prefix))
        rewritten += renamed_recipient
        # proxyAddresses: every value kept exactly (X500 history included); one X500 of
        # the old value added to a rewritten recipient unless an equal one is there
        old_proxies, new_proxies = b.texts("proxyAddresses"), a.texts("proxyAddresses")
        for p in old_proxies:
            assert p in new_proxies, (b.dn, p)
        added = list(new_proxies)
        for p in old_proxies:
            added.remove(p)
        if renamed_recipient and keep_x500:
            x500 = f"X500:{old_legacy}"
            had = any(same(p, x500) for p in old_proxies)
            assert added == ([] if had else [x500]), (b.dn, added)
            assert sum(same(p, x500) for p in new_proxies) == 1, b.dn
        else:
            assert added == [], (b.dn, added)
        # every other attribute: DN values point where the renamed objects are now,
        # the container's cn is its new name, all else as it was
        for name in {n.lower() for n in (*b.attributes, *a.attributes)} - ignored - {
                *VALUE_ATTRIBUTES, "proxyaddresses"}:
            if ad and name not in VOCABULARY:
                continue
            old_values, new_values = b.texts(name), a.texts(name)
            if schema.kind_of(name) == "dn":
                assert sorted(dnu.key(v) for v in new_values) == sorted(
                    dnu.key(moved(v)) for v in old_values), (b.dn, name)
            elif name == "cn" and dnu.key(b.dn) == dnu.key(container):
                assert new_values == [new_name]
            else:
                assert sorted(new_values) == sorted(old_values), (b.dn, name)
    assert rewritten > 0
    # nothing under the old prefix is left (X500 proxies are history, not values)
    for a in after.values():
        for attr in VALUE_ATTRIBUTES:
            assert not any(under(v, old_prefix) for v in a.texts(attr)), (a.dn, attr)
    assert_resolves(after)


def assert_resolves(after: dict[str, Entry]) -> None:
    """Every mailbox: homeMDB names an existing store, homeMTA that store's server's MTA,
    msExchHomeServerName that server's legacyExchangeDN."""
    mailboxes = [e for e in after.values() if e.has("homeMDB")]
    assert mailboxes
    for box in mailboxes:
        store = after.get(dnu.key(box.text("homeMDB") or ""))
        assert store is not None and "msexchprivatemdb" in store.object_classes, box.dn
        server = next((after[dnu.key(anc)] for anc in dnu.ancestors(store.dn)
                       if dnu.key(anc) in after
                       and "msexchexchangeserver" in after[dnu.key(anc)].object_classes), None)
        assert server is not None, store.dn
        mta = after.get(dnu.key(box.text("homeMTA") or ""))
        assert mta is not None and "mta" in mta.object_classes, box.dn
        assert dnu.key(dnu.parent(mta.dn)) == dnu.key(server.dn), box.dn
        assert box.text("msExchHomeServerName") == server.text("legacyExchangeDN"), box.dn


def with_own_x500(d: Directory) -> str:
    """Give jsmith an X500 proxy equal (other case) to his current value: a recipient that
    already has it must still hold exactly one afterwards."""
    john = d.read(JOHN)
    assert john is not None
    legacy = john.text("legacyExchangeDN") or ""
    proxy = "x500:" + legacy.upper()
    d.modify(JOHN, [Mod("add", "proxyAddresses", (proxy,))])
    d.save()  # the LDIF lab: the file the command opens next holds it too
    return proxy


def library_plan(d: Directory, scope: RenameScope, keep_x500: bool = True) -> Plan:
    """The rename planned through the library, as commands/rename.py does."""
    refs = not d.follows_dn_references
    entries = read_affected(d, scope, references=refs)
    return plan_rename(scope, entries, d.naming, keep_x500=keep_x500, rewrite_references=refs)


# --- golden plans ---------------------------------------------------------------------------------

@pytest.mark.parametrize("golden, args", [
    ("rename_org_fabrikam_contoso.ldif", ["rename", "org", "Contoso"]),
    ("rename_ag_europe_emea.ldif", ["rename", "admin-group", "Europe", "EMEA"]),
])
def test_dry_run_prints_the_golden_plan_and_writes_nothing(
        ldif_lab: Lab, capsys: pytest.CaptureFixture[str], golden: str, args: list[str]) -> None:
    expected = (GOLDEN / golden).read_text(encoding="utf-8")
    code, out, err = cli(capsys, *ldif_lab.options(), *args)
    assert code == 0, err
    assert out == expected
    assert "nothing written" in err
    assert ldif_lab.file_bytes() == SAMPLE.read_bytes()
    assert undo_files(ldif_lab.tmp) == []
    # the library renders the same plan, and the golden file parses back to it
    with ldif_lab.open() as d:
        topo = read_topology(d)
        scope = (org_scope(topo, args[2]) if args[1] == "org"
                 else admin_group_scope(topo, args[2], args[3]))
        plan = library_plan(d, scope)
    assert render(plan) == expected
    assert parse(expected, golden) == plan


@pytest.mark.parametrize("args", [["rename", "org", "Contoso"],
                                  ["rename", "admin-group", "Europe", "EMEA"]])
def test_no_keep_x500_plans_no_proxy(ldif_lab: Lab, capsys: pytest.CaptureFixture[str],
                                     args: list[str]) -> None:
    code, kept, err = cli(capsys, *ldif_lab.options(), *args)
    assert code == 0, err
    code, bare, err = cli(capsys, *ldif_lab.options(), *args, "--no-keep-x500")
    assert code == 0, err
    with_x500, without = parse(kept, "kept"), parse(bare, "bare")
    assert len(with_x500) == len(without)
    proxies = [m for c in with_x500 if isinstance(c, Modify) for m in c.mods
               if m.attribute == "proxyAddresses"]
    assert len(proxies) > 10
    assert not any(m.attribute == "proxyAddresses" for c in without
                   if isinstance(c, Modify) for m in c.mods)
    assert ldif_lab.file_bytes() == SAMPLE.read_bytes()


# --- rename org ---------------------------------------------------------------------------------

def test_rename_org_through_the_cli_then_undo(lab: Lab, capsys: pytest.CaptureFixture[str]
                                              ) -> None:
    with lab.open() as d:
        own = with_own_x500(d)
        before, before_state = everything(d), state(d)
        ad = d.is_active_directory
    undo, redo = lab.tmp / "undo.ldif", lab.tmp / "redo.ldif"
    code, out, err = cli(capsys, *lab.options(), "rename", "org", "Contoso", "--apply", "--lab",
                         "--undo-file", str(undo))
    assert code == 0, err
    assert undo.exists()
    with lab.open() as d:
        after = everything(d)
    assert_renamed(before, after, container=ORG, new_name="Contoso", old_prefix="/o=Fabrikam",
                   new_prefix="/o=Contoso", keep_x500=True, ad=ad)
    john = after[dnu.key(JOHN)]
    assert own in john.texts("proxyAddresses")  # the one he had, and no second one
    code, out, err = cli(capsys, *lab.options(), "apply", str(undo), "--apply", "--lab", "--undo-file",
                         str(redo))
    assert code == 0, err
    same_state(before_state, lab.state())


@pytest.mark.parametrize("keep_x500", [True, False], ids=["keep-x500", "no-keep-x500"])
def test_rename_org_through_the_library_then_undo(lab: Lab, keep_x500: bool) -> None:
    undo = lab.tmp / "undo.ldif"
    with lab.open() as d:
        before, before_state = everything(d), state(d)
        plan = library_plan(d, org_scope(read_topology(d), "Contoso"), keep_x500)
        rewrites_refs = any(m.attribute.lower() in ("homemdb", "homemta")
                            for c in plan if isinstance(c, Modify) for m in c.mods)
        # slapd leaves DN references stale: the plan carries them; AD and the LDIF lab
        # make them follow: the plan must not touch them
        assert rewrites_refs == (not d.follows_dn_references)
        assert rewrites_refs == (lab.kind == "slapd")
        result = run(d, plan, apply=True, undo_file=str(undo))
        assert (result.outcome, result.exit_code) == ("applied", 0), result.message
        ad = d.is_active_directory
    with lab.open() as d:
        after = everything(d)
    assert_renamed(before, after, container=ORG, new_name="Contoso", old_prefix="/o=Fabrikam",
                   new_prefix="/o=Contoso", keep_x500=keep_x500, ad=ad)
    if not keep_x500:
        assert not any(isinstance(c, Modify) and any(m.attribute.lower() == "proxyaddresses"
                                                     for m in c.mods) for c in plan)
    with lab.open() as d:
        result = run(d, read_plan(str(undo)), apply=True, undo_file=str(lab.tmp / "redo.ldif"))
        assert result.exit_code == 0, result.message
    same_state(before_state, lab.state())


# --- rename admin-group ----------------------------------------------------------------------------

def test_rename_admin_group_through_the_cli_then_undo(lab: Lab,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    group = f"CN=Europe,{GROUPS}"
    undo = lab.tmp / "undo.ldif"
    with lab.open() as d:
        before, before_state = everything(d), state(d)
        ad = d.is_active_directory
    untouched = {k: e.texts("legacyExchangeDN") for k, e in before.items()
                 if any(under(v, FAG_PREFIX) for v in e.texts("legacyExchangeDN"))}
    assert any(v.startswith("/O=") for vs in untouched.values() for v in vs)  # tadams
    code, _, err = cli(capsys, *lab.options(), "rename", "admin-group", "Europe", "EMEA",
                       "--apply", "--lab", "--undo-file", str(undo))
    assert code == 0, err
    with lab.open() as d:
        after = everything(d)
    assert_renamed(before, after, container=group, new_name="EMEA",
                   old_prefix="/o=Fabrikam/ou=Europe", new_prefix="/o=Fabrikam/ou=EMEA",
                   keep_x500=True, ad=ad)
    for key, values in untouched.items():  # the other group's values, byte for byte
        assert after[key].texts("legacyExchangeDN") == values
    code, _, err = cli(capsys, *lab.options(), "apply", str(undo), "--apply", "--lab", "--undo-file",
                       str(lab.tmp / "redo.ldif"))
    assert code == 0, err
    same_state(before_state, lab.state())


def test_rename_of_the_group_holding_the_mixed_case_value(ldif_lab: Lab) -> None:
    """/O=Fabrikam/OU=First Administrative Group/CN=RECIPIENTS/CN=tadams is under the
    group whatever its case; the rest of it keeps its case, the X500 keeps it exactly."""
    with ldif_lab.open() as d:
        before = everything(d)
        scope = admin_group_scope(read_topology(d), "first administrative group", "Head Office")
        plan = library_plan(d, scope)
        assert run(d, plan, apply=True, undo_file=str(ldif_lab.tmp / "u.ldif")).exit_code == 0
    with ldif_lab.open() as d:
        after = everything(d)
    assert_renamed(before, after, container=f"CN=First Administrative Group,{GROUPS}",
                   new_name="Head Office", old_prefix=FAG_PREFIX,
                   new_prefix="/o=Fabrikam/ou=Head Office", keep_x500=True, ad=False)
    tadams = next(e for e in after.values() if e.text("mailNickname") == "tadams")
    assert tadams.text("legacyExchangeDN") == "/o=Fabrikam/ou=Head Office/CN=RECIPIENTS/CN=tadams"
    assert ("X500:/O=Fabrikam/OU=First Administrative Group/CN=RECIPIENTS/CN=tadams"
            in tadams.texts("proxyAddresses"))


# --- refusals ----------------------------------------------------------------------------------------

def test_apply_without_lab_is_refused_and_nothing_written(lab: Lab,
                                                          capsys: pytest.CaptureFixture[str]
                                                          ) -> None:
    original, before = lab.file_bytes(), lab.state()
    for args in (["rename", "org", "Contoso"], ["rename", "admin-group", "Europe", "EMEA"]):
        code, out, err = cli(capsys, *lab.options(), *args, "--apply")
        assert code == 1, err
        assert out == "" and "--lab" in err and "nothing" in err
        assert len(err.strip().splitlines()) == 1
    assert lab.file_bytes() == original
    assert undo_files(lab.tmp) == []
    same_state(before, lab.state())


def copy_of(tmp: Path, name: str, edit: Callable[[str], str] | None = None) -> Path:
    """A sample in tmp, optionally edited: edit(text) -> text."""
    text = (SAMPLES / name).read_text(encoding="utf-8")
    if edit is not None:
        changed = edit(text)
        assert changed != text
        text = changed
    path = tmp / name
    path.write_text(text, encoding="utf-8")
    return path


def test_several_dcs_refuse_the_apply_and_list_them(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    path = copy_of(tmp_path, "fabrikam-multidc.ldif")
    original = path.read_bytes()
    for args in (["rename", "org", "Contoso"], ["rename", "admin-group", "Europe", "EMEA"]):
        code, out, err = cli(capsys, "--ldif", str(path), *args, "--apply", "--lab")
        assert code == 1, err
        assert out == ""
        for dc in ("DC1", "DC2", "DC3"):
            assert dc in err
        assert "read-only" in err and "nothing written" in err
    assert path.read_bytes() == original
    assert undo_files(tmp_path) == []


def test_dry_run_on_several_dcs_shows_the_plan_and_warns(tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]
                                                         ) -> None:
    path = copy_of(tmp_path, "fabrikam-multidc.ldif")
    original = path.read_bytes()
    code, out, err = cli(capsys, "--ldif", str(path), "rename", "org", "Contoso")
    assert code == 0, err
    plan = parse(out, "stdout")
    assert isinstance(plan.changes[0], Rename) and dnu.key(plan.changes[0].dn) == dnu.key(ORG)
    assert len(plan) > 30
    assert "cannot be applied" in err and "DC3" in err
    assert path.read_bytes() == original


def test_the_2007_group_is_never_renamed(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                         ) -> None:
    path = tmp_path / "lab.ldif"
    labgen.write(path, 10)
    original = path.read_bytes()
    assert FYDIBOHF23SPDLT in path.read_text(encoding="utf-8")
    # renaming the group is refused (exit 1); a new name that is the reserved one is
    # bad input (exit 2: choose another)
    for args, exit_code in ((["admin-group", FYDIBOHF23SPDLT, "Modern Servers"], 1),
                            (["admin-group", FYDIBOHF23SPDLT.upper(), "Modern Servers"], 1),
                            (["admin-group", "First Administrative Group",
                              FYDIBOHF23SPDLT.lower()], 2)):
        code, out, err = cli(capsys, "--ldif", str(path), "rename", *args, "--apply", "--lab")
        assert code == exit_code, err
        assert out == "" and len(err.strip().splitlines()) == 1
        assert "FYDIBOHF23SPDLT" in err
    assert path.read_bytes() == original


@pytest.mark.parametrize("args, fragment", [
    (["admin-group", "Europe", "first administrative group"], "exists already"),
    (["admin-group", "Asia", "EMEA"], "Europe, First Administrative Group"),
    (["org", "fabrikam"], "already named"),
])
def test_bad_rename_requests_exit_2(ldif_lab: Lab, capsys: pytest.CaptureFixture[str],
                                    args: list[str], fragment: str) -> None:
    for extra in ([], ["--apply", "--lab"]):
        code, out, err = cli(capsys, *ldif_lab.options(), "rename", *args, *extra)
        assert code == 2, err
        assert out == "" and len(err.strip().splitlines()) == 1
        assert fragment in err
    assert ldif_lab.file_bytes() == SAMPLE.read_bytes()


def _flags(dn: str, old: str, new: str) -> Callable[[str], str]:
    """An edit of one entry's systemFlags line in the sample text."""
    def edit(text: str) -> str:
        head, _, rest = text.partition(f"dn: {dn}\n")
        block, sep, tail = rest.partition("\n\n")
        assert old in block, (dn, old)
        return head + f"dn: {dn}\n" + block.replace(old, new) + sep + tail
    return edit


def test_a_container_without_the_allow_rename_flag_is_refused(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
        ) -> None:
    monkeypatch.chdir(tmp_path)
    # the organisation stamped 0x20000000 (move only); Europe with no systemFlags at all
    path = copy_of(tmp_path, "fabrikam.ldif",
                   lambda t: _flags(f"CN=Europe,{GROUPS}", "\nsystemFlags: 1610612736", "")(
                       _flags(ORG, "systemFlags: 1610612736", "systemFlags: 536870912")(t)))
    original = path.read_bytes()
    for args, shown in ((["org", "Contoso"], "536870912"),
                        (["admin-group", "Europe", "EMEA"], "no systemFlags")):
        for extra in ([], ["--apply", "--lab"]):
            code, out, err = cli(capsys, "--ldif", str(path), "rename", *args, *extra)
            assert code == 1, err
            assert out == ""
            assert "0x40000000" in err and "FLAG_CONFIG_ALLOW_RENAME" in err and shown in err
    assert path.read_bytes() == original
    assert undo_files(tmp_path) == []
    # the flag is checked per container: the First Administrative Group still renames
    code, _, err = cli(capsys, "--ldif", str(path), "rename", "admin-group",
                       "First Administrative Group", "Head Office", "--apply", "--lab",
                       "--undo-file", str(tmp_path / "u.ldif"))
    assert code == 0, err


# --- the property: there and back --------------------------------------------------------------------

# '#' left out: exdir.plan refuses a DN with '#' inside a value (see the xfail below)
_NAME = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E,
                              blacklist_characters="/=\\#"),
                min_size=1, max_size=24).filter(lambda s: s == s.strip(" "))


def _round_trip(path: Path, there: str, back: str) -> tuple[Snapshot, Snapshot]:
    """rename org to `there` then to `back`, applied on the in-memory directory."""
    with open_ldif(str(path), warn=lambda m: None) as d:
        before = snapshot(d)
        for step, name in enumerate((there, back)):
            plan = library_plan(d, org_scope(read_topology(d), name))
            result = run(d, plan, apply=True, undo_file=str(path.parent / f"undo-{step}.ldif"))
            assert result.exit_code == 0, result.message
        return before, snapshot(d)


def _without_x500(s: Snapshot) -> Snapshot:
    return {k: {n: [v for v in vs if not (n == "proxyaddresses" and v.lower().startswith(b"x500:"))]
                for n, vs in e.items()} for k, e in s.items()}


@given(_NAME, _NAME)
@settings(max_examples=6, deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
def test_rename_there_and_back_leaves_every_value(a: str, b: str) -> None:
    """A→B then B→A on a generated organisation named A: every value as it was, only
    X500 proxies added (the two old values), never one changed."""
    if a.lower() == b.lower():
        b = b + " 2"
    with tempfile.TemporaryDirectory(prefix="exdir-rt-") as tmp:
        path = Path(tmp) / "lab.ldif"
        labgen.write(path, 4, org=a, seed=len(a))
        before, after = _round_trip(path, b, a)
    same_state(_without_x500(before), _without_x500(after))
    for key, entry in before.items():
        old = entry.get("proxyaddresses", [])
        new = after[key].get("proxyaddresses", [])
        assert all(v in new for v in old)
        assert all(v.lower().startswith(b"x500:") for v in new if v not in old)


def test_a_name_with_a_hash_inside_renames(ldif_lab: Lab) -> None:
    assert ldif_lab.path is not None
    _round_trip(ldif_lab.path, "Fabrikam #2", "Fabrikam")


def test_sample_there_and_back(ldif_lab: Lab) -> None:
    """On the sample every value comes back byte for byte, but the mixed-case one comes
    back equal as Exchange compares it: its prefix takes the spelling of the name
    given (`/o=Fabrikam`), the rest keeps its case."""
    assert ldif_lab.path is not None
    before, after = _round_trip(ldif_lab.path, "Contoso", "Fabrikam")
    mixed = "/O=Fabrikam/OU=First Administrative Group/CN=RECIPIENTS/CN=tadams"
    plain_before, plain_after = _without_x500(before), _without_x500(after)
    differing = [k for k in before if plain_before[k] != plain_after[k]]
    assert len(differing) == 1
    key = differing[0]
    assert before[key]["legacyexchangedn"] == [mixed.encode()]
    assert after[key]["legacyexchangedn"] == [("/o=Fabrikam" + mixed[len("/o=Fabrikam"):]).encode()]
    assert same(after[key]["legacyexchangedn"][0].decode(), mixed)


# --- bulk reads ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("org", [True, False], ids=["org", "admin-group"])
def test_planning_makes_the_same_few_searches_at_any_size(tmp_path: Path, org: bool) -> None:
    counts, sizes = [], []
    for mailboxes in (10, 1000):
        path = tmp_path / f"lab-{mailboxes}.ldif"
        labgen.write(path, mailboxes)
        with open_ldif(str(path), warn=lambda m: None) as inner:
            d = CountingDirectory(inner)
            topo = read_topology(d)
            blocking(preflight(d, topo), Operation.RENAME_ORG, lab=True)
            scope = (org_scope(topo, "Contoso") if org
                     else admin_group_scope(topo, "First Administrative Group", "Head Office"))
            plan = library_plan(d, scope)
            counts.append(d.searches)
            sizes.append(len(plan))
    assert counts[0] == counts[1] and counts[0] <= 4, counts
    assert sizes[1] > 10 * sizes[0]  # the plan grew with the directory, the reads did not


# --- legacydn set -------------------------------------------------------------------------------------

NEW_JOHN = "/o=Fabrikam/ou=Europe/cn=Recipients/cn=jsmith"


def _john(d: Directory) -> Entry:
    found = d.read(JOHN)
    assert found is not None
    return found


@pytest.mark.parametrize("ident", ["dn", "nickname", "value", "value-upper"])
def test_set_finds_the_object_every_way(ldif_lab: Lab, capsys: pytest.CaptureFixture[str],
                                        ident: str) -> None:
    with ldif_lab.open() as d:
        john = _john(d)
    old = john.text("legacyExchangeDN") or ""
    obj = {"dn": JOHN, "nickname": "jsmith", "value": old, "value-upper": old.upper()}[ident]
    code, out, err = cli(capsys, *ldif_lab.options(), "legacydn", "set", obj, NEW_JOHN)
    assert code == 0, err
    plan = parse(out, "stdout")
    assert len(plan) == 1
    (change,) = plan.changes
    assert isinstance(change, Modify) and dnu.key(change.dn) == dnu.key(JOHN)
    assert [(m.op, m.attribute, m.values) for m in change.mods] == [
        ("delete", "legacyExchangeDN", (old,)), ("add", "legacyExchangeDN", (NEW_JOHN,)),
        ("add", "proxyAddresses", (f"X500:{old}",))]
    assert ldif_lab.file_bytes() == SAMPLE.read_bytes()


@pytest.mark.parametrize("obj", ["nobody", "CN=Nobody,OU=Staff,DC=fabrikam,DC=com",
                                 "/o=Fabrikam/ou=Europe/cn=Recipients/cn=nobody"])
def test_set_of_an_unknown_object_exits_2(ldif_lab: Lab, capsys: pytest.CaptureFixture[str],
                                          obj: str) -> None:
    code, out, err = cli(capsys, *ldif_lab.options(), "legacydn", "set", obj, NEW_JOHN)
    assert code == 2, err
    assert out == "" and len(err.strip().splitlines()) == 1 and "unknown object" in err


def test_set_of_an_ambiguous_nickname_exits_2_listing_both(tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]
                                                          ) -> None:
    path = copy_of(tmp_path, "fabrikam.ldif",
                   lambda t: t.replace("mailNickname: dhall\n", "mailNickname: jsmith\n"))
    code, out, err = cli(capsys, "--ldif", str(path), "legacydn", "set", "jsmith", NEW_JOHN)
    assert code == 2, err
    assert out == "" and "ambiguous" in err
    assert "CN=Don Hall" in err and "Smith" in err


@pytest.mark.parametrize("value", ["/o=Fabrikam/ou=Europe/cn=Recipients/cn=a/b", "ADCDisabledMail",
                                   "/o=Müller/ou=X", "/ou=Europe/o=Fabrikam", "jsmith",
                                   "/o=Fabrikam/ou=Europe/cn=" + "x" * 65])
def test_set_to_an_invalid_value_exits_2(ldif_lab: Lab, capsys: pytest.CaptureFixture[str],
                                         value: str) -> None:
    code, out, err = cli(capsys, *ldif_lab.options(), "legacydn", "set", "jsmith", value)
    assert code == 2, err
    assert out == "" and "invalid legacyExchangeDN" in err


def test_set_to_a_value_another_object_holds_is_refused(
        ldif_lab: Lab, capsys: pytest.CaptureFixture[str]) -> None:
    """A well-formed value another object holds: a safety refusal (exit 1), as the
    uniqueness gate refuses it through `exdir apply`."""
    with ldif_lab.open() as d:
        taken = next(d.search(d.naming.domain, "(mailNickname=dhall)", ("legacyExchangeDN",)))
    value = (taken.text("legacyExchangeDN") or "").upper()  # any case: the same value
    code, out, err = cli(capsys, *ldif_lab.options(), "legacydn", "set", "jsmith", value)
    assert code == 1, err
    assert out == "" and "Don Hall" in err
    assert ldif_lab.file_bytes() == SAMPLE.read_bytes()


def test_set_a_recipient_then_undo(lab: Lab, capsys: pytest.CaptureFixture[str]) -> None:
    undo = lab.tmp / "undo.ldif"
    with lab.open() as d:
        before, before_state = everything(d), state(d)
    old = before[dnu.key(JOHN)].text("legacyExchangeDN") or ""
    code, _, err = cli(capsys, *lab.options(), "legacydn", "set", "jsmith", NEW_JOHN, "--apply",
                       "--undo-file", str(undo))
    assert code == 0, err
    with lab.open() as d:
        after = everything(d)
    john_before, john = before[dnu.key(JOHN)], after[dnu.key(JOHN)]
    assert john.text("legacyExchangeDN") == NEW_JOHN
    assert sorted(john.texts("proxyAddresses")) == sorted(
        [*john_before.texts("proxyAddresses"), f"X500:{old}"])
    changed = [k for k in before if k != dnu.key(JOHN)
               and state_of(before[k]) != state_of(after[k])]
    assert changed == []
    code, _, err = cli(capsys, *lab.options(), "apply", str(undo), "--apply", "--lab", "--undo-file",
                       str(lab.tmp / "redo.ldif"))
    assert code == 0, err
    same_state(before_state, lab.state())


def state_of(entry: Entry) -> dict[str, list[str]]:
    """The attributes the sample defines (a real AD adds its own), values sorted."""
    return {n.lower(): sorted(entry.texts(n)) for n in entry.attributes
            if n.lower() in VOCABULARY}


def test_set_a_server_moves_its_mailboxes_home_value_then_undo(
        lab: Lab, capsys: pytest.CaptureFixture[str]) -> None:
    undo = lab.tmp / "undo.ldif"
    with lab.open() as d:
        before, before_state = everything(d), state(d)
    old = before[dnu.key(EX1)].text("legacyExchangeDN") or ""
    new = f"{FAG_PREFIX}/cn=Configuration/cn=Servers/cn=EX1-NEW"
    homed = {k for k, e in before.items() if e.text("msExchHomeServerName") == old}
    assert len(homed) > 1
    code, _, err = cli(capsys, *lab.options(), "legacydn", "set", EX1, new, "--apply",
                       "--undo-file", str(undo))
    assert code == 0, err
    with lab.open() as d:
        after = everything(d)
    assert after[dnu.key(EX1)].text("legacyExchangeDN") == new
    assert after[dnu.key(EX1)].get("proxyAddresses") == []  # a server is not a recipient
    for key, entry in before.items():
        home = after[key].text("msExchHomeServerName")
        assert home == (new if key in homed else entry.text("msExchHomeServerName")), key
        if key not in homed and key != dnu.key(EX1):
            assert state_of(entry) == state_of(after[key]), key
    assert_resolves(after)
    code, _, err = cli(capsys, *lab.options(), "apply", str(undo), "--apply", "--lab", "--undo-file",
                       str(lab.tmp / "redo.ldif"))
    assert code == 0, err
    same_state(before_state, lab.state())


def test_a_group_whose_value_is_outside_the_organisation_is_refused(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The directory is what is wrong, not the command: a refusal (exit 1) naming the audit."""
    path = tmp_path / "lab.ldif"
    text = SAMPLE.read_text(encoding="utf-8")
    assert text.count("\nlegacyExchangeDN: /o=Fabrikam/ou=Europe\n") == 1
    path.write_text(text.replace("\nlegacyExchangeDN: /o=Fabrikam/ou=Europe\n",
                                 "\nlegacyExchangeDN: /o=Elsewhere/ou=Europe\n"), encoding="utf-8")
    original = path.read_bytes()
    code, out, err = cli(capsys, "--ldif", str(path), "rename", "admin-group", "Europe", "EMEA",
                         "--apply", "--lab")
    assert (code, out) == (1, ""), err
    assert "legacydn audit" in err and len(err.strip().splitlines()) == 1
    assert path.read_bytes() == original
