"""Fault injection: a failure forced at every step of a 50-change plan rolls everything back.

The plan comes from samples/fabrikam.ldif's own data (tests/plans.mixed_plan): mailbox
moves, a rename of an admin group with the steps after it that address the renamed DNs,
an add, a delete and X500 adds.  For every k in 1..50 the k-th write fails, and the
directory must be identical to before, entry by entry — and the same directory is
reused for the next k, so a rollback that is not exact fails the run at once.

Two kinds of failure: the write is refused (nothing reached the directory), or the
write reached the directory and its reply was lost (a dropped connection after the
server committed) — the step that "failed" was made and must be undone too.
"""
from __future__ import annotations

from functools import partial

import time
from pathlib import Path
from typing import Callable

import pytest

from exdir import apply as apply_engine
from exdir.gates import Safety
from exdir.backends.base import Directory
from exdir.backends.memory import open_ldif
from exdir.backends.ldap import open_url
from tests.plans import (Faulty, Snapshot, differences, fail_at, mixed_plan, reply_lost_at,
                         slapd_state, snapshot)
from tests.servers.slapd import MakeSlapd

# The engine's own tests run in a lab with the ADC stopped: the safety gates have
# their tests in tests/test_gates.py.
run = partial(apply_engine.run, safety=Safety(lab=True, adc_stopped=True))

SAMPLE = Path(__file__).resolve().parent.parent / "samples" / "fabrikam.ldif"
STEPS = 50


def every_step(directory: Directory, tmp: Path, mode: str,
               reader: Callable[[], Snapshot] | None = None,
               on_disk: Callable[[], bytes] | None = None) -> dict[str, object]:
    """Fail each step of the plan in turn; after each run, compare with the state before."""
    plan = mixed_plan(directory, STEPS)
    assert len(plan) == STEPS
    kinds = [type(c).__name__ for c in plan]
    assert {"Rename", "Add", "Delete", "Modify"} <= set(kinds)
    before = snapshot(directory)
    outside = reader() if reader else None
    disk = on_disk() if on_disk else None
    restored = 0
    started = time.perf_counter()
    for k in range(1, STEPS + 1):
        undo = tmp / f"undo-{mode}-{k}.ldif"
        hooks = ({"before_write": fail_at(k)} if mode == "refused"
                 else {"after_write": reply_lost_at(k)})
        faulty = Faulty(directory, **hooks)  # type: ignore[arg-type]
        result = run(faulty, plan, apply=True, undo_file=str(undo))
        where = f"failure at step {k} of {STEPS} ({kinds[k - 1]}, {mode})"
        assert (result.outcome, result.exit_code) == ("rolled back", 3), \
            f"{where}: {result.message}"
        assert result.steps[k - 1].outcome in ("failed", "undone"), where
        assert [s.outcome for s in result.steps[:k - 1]] == ["undone"] * (k - 1), where
        assert [s.outcome for s in result.steps[k:]] == ["not run"] * (STEPS - k), where
        writes = (k - 1) * 2 + 1 if mode == "refused" else 2 * k
        assert faulty.writes == writes, where
        now = snapshot(directory)
        assert now == before, f"{where}:\n" + "\n".join(differences(before, now))
        if reader is not None:  # a second opinion: OpenLDAP's own client
            assert reader() == outside, where
        if on_disk is not None:
            assert on_disk() == disk, f"{where}: the LDIF file changed"
        restored += 1
    elapsed = time.perf_counter() - started
    print(f"\n{directory.backend}, {mode}: {STEPS} failure points, {restored} restored exactly "
          f"({elapsed:.2f} s)")
    return {"points": STEPS, "restored": restored}


@pytest.mark.parametrize("mode", ["refused", "reply lost"])
def test_a_failure_at_every_step_leaves_the_ldif_directory_as_before(
        tmp_path: Path, mode: str) -> None:
    path = tmp_path / "lab.ldif"
    path.write_bytes(SAMPLE.read_bytes())
    directory = open_ldif(str(path), warn=lambda m: None)
    figures = every_step(directory, tmp_path, mode, on_disk=path.read_bytes)
    assert figures == {"points": STEPS, "restored": STEPS}


@pytest.mark.slapd
@pytest.mark.parametrize("mode", ["refused", "reply lost"])
def test_a_failure_at_every_step_leaves_slapd_as_before(
        slapd_factory: MakeSlapd, tmp_path: Path, mode: str) -> None:
    server = slapd_factory(SAMPLE.read_text(encoding="utf-8"))
    with open_url(server.url, server.bind_dn, server.password) as directory:
        figures = every_step(directory, tmp_path, mode, reader=lambda: slapd_state(server))
    assert figures == {"points": STEPS, "restored": STEPS}
