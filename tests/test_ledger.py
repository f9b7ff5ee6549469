"""The plan ledger (exdir.ledger, issue 13 item 6): a dry run streams its plan through a
private temporary SQLite database instead of holding it.

What must hold: the ledger prints exactly what the Plan built from the same steps
renders (order included: sorted steps among their neighbours, ties in the order made,
any text); the gates met on a ledger are the gates met on the Plan, even where a fact
depends on the printed order and the planner made the steps in another; a dry run
holds a small part of what the Plan held; nothing is left on disk.
"""
from __future__ import annotations

import os
import random
import tracemalloc
from pathlib import Path
from typing import Iterator

import pytest

from exdir import operations
from exdir.backends.memory import open_ldif
from exdir.gates import Safety, evaluate, evaluate_ledger
from exdir.ldif_out import render
from exdir.ledger import PlanLedger, Step, in_order
from exdir.plan import Mod, Modify, Plan, Rename
from tests.labs import SAMPLES

JSMITH = "CN=Smith\\, John,OU=Staff,DC=fabrikam,DC=com"
KAKERS = "CN=Kim Akers,OU=Staff,DC=fabrikam,DC=com"
ORG = "CN=Fabrikam,CN=Microsoft Exchange,CN=Services,CN=Configuration,DC=fabrikam,DC=com"


def _steps(n: int, seed: int = 5) -> list[Step]:
    """Blocks of sorted steps between unsorted ones, with ties, non-ASCII keys and a
    lone surrogate (text a hostile export can give a str)."""
    rng = random.Random(seed)
    texts = ["a", "B", "é", "\u00e9a", "z\udc80", "\U0001f600", "", "ab", "a\x00b"]
    out: list[Step] = []
    for i in range(n):
        change = Modify(f"CN=u{i},OU=Staff,DC=fabrikam,DC=com",
                        (Mod("add", "description", (f"d{i}",)),), f"step {i}")
        if i % 17 == 0:
            out.append((None, change))
        else:
            out.append(((rng.randint(0, 1), rng.randint(0, 3), rng.choice(texts)), change))
    return out


def test_the_ledger_prints_what_the_plan_renders() -> None:
    steps = _steps(600)
    plan = Plan(tuple(in_order(steps)))
    with operations.Planned(steps=list(steps)).ledger() as ledger:
        assert "".join(ledger.render_parts()) == render(plan)
        assert len(ledger) == len(plan)
    # a Plan given whole prints as itself
    with operations.Planned(plan).ledger() as ledger:
        assert "".join(ledger.render_parts()) == render(plan)


def test_the_order_is_sorted_among_neighbours_stably() -> None:
    def step(name: str, order: tuple[int, int, str] | None) -> Step:
        return order, Modify(f"CN={name},DC=x", (Mod("add", "description", ("v",)),))

    steps = [step("b1", (0, 0, "b")), step("a1", (0, 0, "a")), step("u1", None),
             step("c1", (1, 0, "a")), step("c2", (0, 5, "a")), step("c3", (0, 5, "a")),
             step("u2", None), step("d1", (0, 0, "z"))]
    names = [c.dn.split(",")[0][3:] for c in in_order(steps)]
    assert names == ["a1", "b1", "u1", "c2", "c3", "c1", "u2", "d1"]
    with operations.Planned(steps=steps).ledger() as ledger:
        printed = [part.split("dn: CN=")[1].split(",")[0] for part in ledger.parts()]
    assert printed == names


def test_only_modifies_may_be_sorted() -> None:
    with PlanLedger() as ledger, pytest.raises(TypeError):
        ledger.add(Rename(ORG, "CN=Contoso"), (0, 0, "x"))


def _gates_both_ways(steps: list[Step]) -> tuple[list[str], list[str]]:
    with open_ldif(str(SAMPLES / "fabrikam.ldif"), warn=lambda m: None) as d:
        plan = Plan(tuple(in_order(steps)))
        whole = [g.message for g in evaluate(d, plan, Safety(lab=True))]
        with operations.Planned(steps=list(steps)).ledger() as ledger:
            streamed = [g.message for g in evaluate_ledger(d, ledger, Safety(lab=True))]
    return whole, streamed


def test_gates_on_the_ledger_follow_the_printed_order_not_the_order_made() -> None:
    # two objects given one value, spelled two ways; the planner makes Kim Akers's step
    # first, the printed (sorted) plan has John Smith's first: the gate names the value
    # as the first printed step spells it, as it does for the Plan
    smith = Modify(JSMITH, (Mod("add", "proxyAddresses", ("X500:/o=Fabrikam/cn=Shared",)),))
    akers = Modify(KAKERS, (Mod("add", "proxyAddresses", ("X500:/O=FABRIKAM/CN=SHARED",)),))
    steps: list[Step] = [((0, 0, "b"), akers), ((0, 0, "a"), smith)]
    whole, streamed = _gates_both_ways(steps)
    assert streamed == whole
    assert any("'/o=Fabrikam/cn=Shared' to 2 objects" in m for m in whole), whole


def test_gates_on_the_ledger_are_the_plans_gates() -> None:
    with open_ldif(str(SAMPLES / "fabrikam.ldif"), warn=lambda m: None) as d:
        rename = operations.rename_org(d, "Contoso")
        steps = list(rename.steps or ())  # the planner's own, in the order it made them
    held = "/o=Fabrikam/ou=First Administrative Group/cn=Recipients/cn=kakers"  # Kim Akers
    cases: list[list[Step]] = [
        steps,  # a fresh rename: the lab and the uniqueness of its values
        steps[:1],  # only the organisation renamed: stale
        steps[:1] + [((0, 0, "x"), Modify(JSMITH, (Mod("add", "proxyAddresses",
                                                        (f"X500:{held}",)),)))],
        [(None, Modify(ORG, (Mod("delete", "legacyExchangeDN", ("/o=Fabrikam",)),
                             Mod("add", "legacyExchangeDN", ("/o=Other",)))))],
    ]
    for case in cases:
        whole, streamed = _gates_both_ways(case)
        assert streamed == whole
    assert any("stale" in m for m in _gates_both_ways(cases[1])[0])
    assert any("already held by" in m for m in _gates_both_ways(cases[2])[0])


def _many(n: int) -> Iterator[Step]:
    for i in range(n):
        dn = f"CN=User {i:06d},OU=Staff,DC=fabrikam,DC=com"
        old = f"/o=Fabrikam/ou=Europe/cn=Recipients/cn=user{i:06d}"
        new = old.replace("Fabrikam", "Contoso")
        yield (1, 4, dn.lower()), Modify(dn, (
            Mod("delete", "legacyExchangeDN", (old,)), Mod("add", "legacyExchangeDN", (new,)),
            Mod("add", "proxyAddresses", (f"X500:{old}",))),
            f"recipient user{i}: values under /o=Fabrikam rewritten")


def _peak(work) -> int:  # type: ignore[no-untyped-def]
    tracemalloc.start()
    try:
        kept = work()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    if isinstance(kept, PlanLedger):
        kept.close()
    return peak


def test_a_dry_run_does_not_hold_its_plan() -> None:
    n = 20000
    as_plan = _peak(lambda: Plan(tuple(in_order(_many(n)))))
    as_ledger = _peak(lambda: operations.Planned(steps=_many(n)).ledger())
    # the Plan holds every step (about 1.5 KB each); the ledger a few thousand rows
    # waiting to be written and its own caches
    assert as_ledger < as_plan / 4, (as_ledger, as_plan)


def test_the_ledger_leaves_nothing_on_disk(tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SQLITE_TMPDIR", str(tmp_path))
    with operations.Planned(steps=_many(30000)).ledger() as ledger:
        assert len(ledger) == 30000
        assert os.listdir(tmp_path) == []  # unlinked at once: no name to find or replace
    assert os.listdir(tmp_path) == []
