"""`exdir move --apply` when the directory fails (issue 6: "a failed update rolls back").

A 20-mailbox move from samples/fabrikam.ldif to the Exchange 5.5 server EUR1 (home
attributes, wireless attributes removed, legacyExchangeDN rewritten with an X500
for the mailboxes of the other administrative group).  The k-th write is made to
fail — refused by the server, or made and its reply lost — for k from the first
to the last step: the command exits 3 and every mailbox is as before, entry by
entry, on every backend; the report says which mailbox was undone, which failed
and which never ran.  A change made by someone else between the dry run and the
apply refuses the plan before any write (exit 1); one that races the apply fails
its step, the steps before it are rolled back and the other writer's change stays.
"""
from __future__ import annotations

import json
from typing import Callable

import pytest

from commands.context import Options
from exdir import dn as dnu
from exdir.backends.base import Directory
from exdir.plan import Mod
from tests.labs import ALL_BACKENDS, Lab
from tests.plans import Faulty, differences, fail_at, reply_lost_at
from tests.test_move import (WIRELESS, backend, clean_env, mailboxes, make_lab,  # noqa: F401
                             no_undo_files, where)

SERVERS = ALL_BACKENDS[1:]
MOVERS = 20
TARGET = "Mailbox Store (EUR1)"  # Exchange 5.5 in Europe
# (mode, k): the first, the second, the middle, the one before last and the last step
FAULTS = [("refused", 1), ("refused", 2), ("refused", 10), ("refused", 19), ("refused", 20),
          ("reply lost", 1), ("reply lost", 11), ("reply lost", 20)]


def batch(lab: Lab) -> list[str]:
    """20 mailboxes not on the target, in DN order: both groups, wireless ones included."""
    with lab.open() as d:
        target = where(d, TARGET)
        boxes = sorted((e for e in mailboxes(d).values()
                        if dnu.key(e.text("homeMDB") or "") != dnu.key(target.store)),
                       key=lambda e: dnu.key(e.dn))[:MOVERS]
    aliases = [e.text("mailNickname") or "" for e in boxes]
    assert len(aliases) == MOVERS
    assert sum(1 for e in boxes if any(e.has(w) for w in WIRELESS)) >= 3
    assert "jsmith" in aliases  # the escaped comma in its DN
    groups = {dnu.key(dnu.parent(e.dn)) for e in boxes}  # OU=Staff: across groups; Europe: not
    assert groups == {dnu.key(f"OU={ou},DC=fabrikam,DC=com") for ou in ("Staff", "Europe")}
    return aliases


def wrap_open(monkeypatch: pytest.MonkeyPatch, **hooks: Callable[[int, str, str], None]
              ) -> list[Faulty]:
    """Every directory the CLI opens from now on is a Faulty with these hooks."""
    opened: list[Faulty] = []
    original = Options.open

    def faulty_open(self: Options, write: bool = False) -> Directory:
        opened.append(Faulty(original(self, write=write), **hooks))  # type: ignore[arg-type]
        return opened[-1]

    monkeypatch.setattr(Options, "open", faulty_open)
    return opened


@pytest.mark.parametrize("backend", ALL_BACKENDS, indirect=True)
def test_a_failure_anywhere_in_the_batch_rolls_every_mailbox_back(
        make_lab: Callable[..., Lab], capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    lab = make_lab()
    aliases = batch(lab)
    listing = lab.tmp / "batch.txt"
    listing.write_text("# the weekend's moves\n" + "\n".join(aliases) + "\n", encoding="utf-8")
    args = ["move", "--from-file", str(listing), "--to", TARGET, "--apply"]
    before, on_disk = lab.state(), lab.file_bytes()
    for mode, k in FAULTS:
        where_ = f"{lab.kind}: {mode} at write {k} of {MOVERS}"
        hooks = {"before_write": fail_at(k)} if mode == "refused" else {
            "after_write": reply_lost_at(k)}
        report = lab.tmp / f"report-{mode.replace(' ', '-')}-{k}.json"
        with monkeypatch.context() as patch:
            opened = wrap_open(patch, **hooks)
            code, _, err = lab.cli(capsys, *args, "--undo-file",
                                   str(lab.tmp / f"undo-{mode}-{k}.ldif"), "--report", str(report))
        assert code == 3, f"{where_}: {err}"
        assert "rolled back" in err and "as before" in err, where_
        [faulty] = opened
        assert faulty.writes == ((k - 1) * 2 + 1 if mode == "refused" else 2 * k), where_
        now = lab.state()
        assert now == before, f"{where_}:\n" + "\n".join(differences(before, now))
        assert lab.file_bytes() == on_disk, f"{where_}: the LDIF file was rewritten"
        data = json.loads(report.read_text(encoding="utf-8"))
        assert (data["outcome"], data["exit_code"]) == ("rolled back", 3), where_
        outcomes = [m["outcome"] for m in data["mailboxes"]]
        assert [m["identity"] for m in data["mailboxes"]] == aliases
        assert outcomes == (["undone"] * (k - 1)
                            + ["failed" if mode == "refused" else "undone"]
                            + ["not run"] * (MOVERS - k)), where_
    # the same batch without a fault moves all twenty: the failures above were real
    code, _, err = lab.cli(capsys, *args, "--undo-file", str(lab.tmp / "undo-ok.ldif"))
    assert code == 0, err
    after = lab.state()
    changed = {k for k in before if before[k] != after.get(k)}
    with lab.open() as d:
        assert changed == {dnu.key(mailboxes(d)[a].dn) for a in aliases}


@pytest.mark.parametrize("backend", ALL_BACKENDS, indirect=True)
def test_a_mailbox_changed_after_the_dry_run_refuses_the_plan(
        make_lab: Callable[..., Lab], capsys: pytest.CaptureFixture[str]) -> None:
    """The ADC (or an administrator) writes a mailbox's homeMDB after the plan was
    reviewed: applying the reviewed plan is refused before its first write."""
    lab = make_lab()
    aliases = batch(lab)
    code, out, err = lab.cli(capsys, "move", *aliases, "--to", TARGET)
    assert code == 0, err
    plan_file = lab.tmp / "reviewed.ldif"
    plan_file.write_text(out, encoding="utf-8")
    with lab.open() as d:
        victim = mailboxes(d)[aliases[6]]
        current = victim.text("homeMDB") or ""
        other = next(where(d, name) for name in ("Mailbox Store (EX2)", "Mailbox Store (EX1)")
                     if dnu.key(where(d, name).store) != dnu.key(current))
        d.modify(victim.dn, [Mod("delete", "homeMDB", (current,)),
                             Mod("add", "homeMDB", (other.store,))])
        d.save()
    changed, on_disk = lab.state(), lab.file_bytes()
    code, _, err = lab.cli(capsys, "apply", str(plan_file), "--apply", "--undo-file",
                           str(lab.tmp / "undo.ldif"))
    assert code == 1, err
    assert "refused" in err and "nothing was written" in err
    assert dnu.rdn_value(victim.dn) in err
    assert lab.state() == changed and lab.file_bytes() == on_disk
    assert no_undo_files(lab.tmp)


@pytest.mark.parametrize("backend", SERVERS, indirect=True)
def test_a_change_racing_the_apply_fails_its_step_and_is_kept(
        make_lab: Callable[..., Lab], capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Someone rewrites mailbox 12's msExchHomeServerName while exdir writes mailbox 5:
    step 12 carries the old value, so it fails instead of overwriting; steps 1-11 are
    rolled back and the other writer's value stays.  On servers only: an LDIF lab is
    exdir's own file, with no other writer."""
    lab = make_lab()
    aliases = batch(lab)
    before = lab.state()
    with lab.open() as d:
        victim = mailboxes(d)[aliases[11]]
        old = victim.text("msExchHomeServerName") or ""
        theirs = next(w.server_legacy for w in (where(d, f"Mailbox Store ({name})")
                                                for name in ("EX2", "EUR2"))
                      if w.server_legacy.lower() != old.lower())

    def race(n: int, what: str, dn: str) -> None:
        if n == 5:
            opened[0].inner.modify(victim.dn, [Mod("delete", "msExchHomeServerName", (old,)),
                                            Mod("add", "msExchHomeServerName", (theirs,))])

    with monkeypatch.context() as patch:
        opened = wrap_open(patch, before_write=race)
        code, _, err = lab.cli(capsys, "move", *aliases, "--to", TARGET, "--apply",
                               "--undo-file", str(lab.tmp / "undo.ldif"))
    [faulty] = opened
    assert code == 3, err
    assert "step 12 failed" in err and "rolled back" in err
    assert faulty.writes == 11 + 1 + 11  # eleven done, the twelfth refused, eleven undone
    now = lab.state()
    key = dnu.key(victim.dn)
    assert {k for k in before if before[k] != now.get(k)} == {key}
    assert {a for a in before[key] if before[key][a] != now[key].get(a)} == {
        "msexchhomeservername"}
    assert now[key]["msexchhomeservername"] == [theirs.encode("utf-8")]
