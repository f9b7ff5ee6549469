"""Figures of issue 10, from the suite, on the in-memory directory and on slapd:

(b) generated plans mixing pending and already-done steps: apply each, then its undo
    file, and the directory is exactly as it was before the run (the done steps stay:
    they are not this run's);
(d) on slapd, a second connection changes 10% of a 2,000-step plan's targets while it
    applies: every such change is detected and kept, the run rolls back, nothing else
    changes.

Run with `-s` to see the counts.
"""
from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exdir import dn as dnu
from exdir import lab as labgen
from exdir.apply import run
from exdir.backends.base import Directory
from exdir.backends.ldap import WINDOW, open_url
from exdir.ldif_in import read_plan
from exdir.plan import Change, Delete, Mod, Modify, Plan, Rename
from tests.labs import LDIF_SLAPD, SAMPLE, Lab, new_lab, same_state
from tests.plans import (homes, mailboxes, move, moves_plan, new_contact, other_home,
                         snapshot, write_by_hand, x500)

# per backend: 200 plans in all.  scripts/mutate.py sets EXDIR_FIGURE_PLANS lower to bound
# the time per mutant (a mutant killed by fewer plans is killed by more: the score it
# reports is a lower bound); the suite always runs the figure in full.
EXAMPLES = int(os.environ.get("EXDIR_FIGURE_PLANS", "100"))


def _candidates(d: Directory) -> list[list[Change]]:
    """For each entry at most one change, so that any subset, in any order, is a plan whose
    steps do not depend on each other: a move, an X500, a description, a rename, a
    delete of a contact, an add of a new contact."""
    choices = homes(d)
    boxes = mailboxes(d)
    out: list[list[Change]] = []
    for i, box in enumerate(boxes):
        kind = i % 4
        if kind == 0:
            out.append([move(box, other_home(box, choices))])
        elif kind == 1 and (p := x500(box)) is not None:
            out.append([p])
        elif kind == 2:
            out.append([Modify(box.dn, (Mod("add", "description", (f"note {i}",)),), "note")])
        else:
            rdn = f"CN=Renamed {i}"
            out.append([Rename(box.dn, rdn)])
    contacts = [e for e in d.search(d.naming.domain, "(objectClass=contact)", ("objectClass",))]
    for c in contacts[:3]:
        whole = d.read(c.dn)
        assert whole is not None
        out.append([Delete(c.dn, "delete", tuple((n, tuple(v))
                                                 for n, v in whole.attributes.items()))])
    for i in range(3):
        out.append([new_contact(d, f"Partner Desk {i}")])
    return out


@pytest.fixture(params=LDIF_SLAPD)
def lab(request: pytest.FixtureRequest, tmp_path: Path) -> Lab:
    return new_lab(request.param, SAMPLE.read_text(encoding="utf-8"), request, tmp_path)


def test_b_plans_mixing_pending_and_done_steps_undo_exactly(lab: Lab) -> None:
    with lab.open() as d:
        pool = _candidates(d)
        original = snapshot(d)
    counter = iter(range(10 ** 6))
    stats = {"plans": 0, "steps": 0, "done": 0, "pending": 0}

    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
              suppress_health_check=[HealthCheck.function_scoped_fixture,
                                     HealthCheck.too_slow])
    @given(st.lists(st.tuples(st.integers(0, len(pool) - 1), st.booleans()),
                    min_size=1, max_size=12, unique_by=lambda t: t[0]))
    def example(picks: list[tuple[int, bool]]) -> None:
        n = next(counter)
        changes = [pool[i][0] for i, _ in picks]
        done = [pool[i][0] for i, was_done in picks if was_done]
        with lab.open() as d:
            for c in done:
                write_by_hand(d, c)
            d.save()
        with lab.open() as d:
            before = snapshot(d)
            result = run(d, Plan(tuple(changes)), apply=True,
                         undo_file=str(lab.tmp / f"undo{n}.ldif"))
        counts = result.checked
        assert counts.get("done", 0) == len(done), result.message
        stats["plans"] += 1
        stats["steps"] += len(changes)
        stats["done"] += len(done)
        stats["pending"] += len(changes) - len(done)
        if len(done) == len(changes):
            assert result.outcome == "nothing to do"
        else:
            assert result.exit_code == 0, result.message
            with lab.open() as d:
                back = run(d, read_plan(str(lab.tmp / f"undo{n}.ldif")), apply=True,
                           undo_file=str(lab.tmp / f"redo{n}.ldif"))
            assert back.exit_code == 0, back.message
        same_state(before, lab.state())  # exactly as before this run: done steps stay
        with lab.open() as d:  # the hand-made steps undone, for the next example
            for c in reversed(done):
                write_by_hand(d, c.inverse())
            d.save()
        same_state(original, lab.state())

    example()
    print(f"\n(b) {lab.kind}: {stats}")
    assert stats["plans"] == EXAMPLES and stats["done"] and stats["pending"]


# --- (d) concurrent changes on slapd -----------------------------------------------------

# CI's size; issue 14's figure (a 5,000-step apply, 500 targets changed meanwhile) is
# `EXDIR_FIGURE_D_STEPS=5000 scripts/test.sh tests/test_apply_figures.py -k test_d -s`
STEPS = int(os.environ.get("EXDIR_FIGURE_D_STEPS") or 2000)


@pytest.fixture
def big_slapd(slapd_factory) -> Iterator[object]:  # type: ignore[no-untyped-def]
    yield slapd_factory("".join(labgen.generate(mailboxes=STEPS)))


@pytest.mark.slapd
def test_d_concurrent_changes_are_detected_kept_and_the_run_rolled_back(
        big_slapd, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    server = big_slapd
    mine = open_url(server.url, server.bind_dn, server.password)  # type: ignore[attr-defined]
    other = open_url(server.url, server.bind_dn, server.password)  # type: ignore[attr-defined]
    plan = moves_plan(mine, STEPS, x500_share=0.0)
    assert len(plan) == STEPS
    rng = random.Random(10)
    # 10% of the targets changed by someone else once the first step is counted, among
    # the steps not yet sent then: the ldap backend has up to WINDOW writes in flight
    # when the first reply comes, and a change made after exdir's own write landed is
    # a later writer's, which the rollback rightly refuses to overwrite (exit 4)
    hit = sorted(rng.sample(range(WINDOW + 2, STEPS + 1), STEPS // 10))
    before = snapshot(mine)
    marker = "/o=Elsewhere/cn=changed meanwhile"
    changed: dict[str, list[str]] = {}

    def meanwhile(done: int, total: int) -> None:
        if done != 1:
            return
        for n in hit:
            dn = plan.changes[n - 1].dn
            entry = other.read(dn, ("msExchHomeServerName",))
            assert entry is not None
            old = entry.texts("msExchHomeServerName")
            other.modify(dn, [Mod("delete", "msExchHomeServerName", tuple(old)),
                              Mod("add", "msExchHomeServerName", (marker,))])
            changed[dnu.key(dn)] = old

    result = run(mine, plan, apply=True, undo_file=str(tmp_path / "undo.ldif"),
                 progress=meanwhile)
    assert result.exit_code == 3, result.message
    assert result.changed_since_check == hit  # every such change detected
    after = snapshot(mine)
    # the concurrent changes kept, nothing else changed: before, with exactly those edits
    expected = {k: dict(v) for k, v in before.items()}
    for key in changed:
        expected[key]["msexchhomeservername"] = [marker.encode()]
    same_state(expected, after)
    print(f"\n(d) slapd: {STEPS} steps, {len(hit)} changed meanwhile, "
          f"{len(result.changed_since_check)} detected, outcome {result.outcome}")
    mine.close()
    other.close()
