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
from tests.plans import (Faulty, Snapshot, differences, fail_at, mixed_plan, moves_plan,
                         reply_lost_at, slapd_state, snapshot)
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


# --- the pipelined path (issue 14): several modifies in flight on slapd ----------------

PIPELINED_STEPS = 150


@pytest.mark.slapd
@pytest.mark.parametrize("mode", ["refused", "reply lost"])
def test_a_failure_among_pipelined_writes_rolls_back_every_one_that_landed(
        slapd_factory: MakeSlapd, tmp_path: Path, mode: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The ldap backend keeps up to WINDOW modifies in flight; the k-th fails (refused by
    the server, or made with its reply lost) while later ones are already sent.  No write
    starts after it, those in flight are waited for, and every one that landed (the
    failed one too, where it was made) is rolled back: slapd is as before, exit 3."""
    import functools

    from exdir.backends import ber
    from exdir.backends import ldap as ldap_backend
    from exdir.lab import generate

    server = slapd_factory("".join(generate(mailboxes=PIPELINED_STEPS)))
    sent = {"n": 0, "most": 0}
    fail = {"at": 0, "replies": 0}
    real_send, real_reply = ldap_backend._Pipe.send, ldap_backend._Pipe.reply
    real_request = ldap_backend.LdapDirectory._modify_request

    def send(self, build, tag):  # type: ignore[no-untyped-def]
        real_send(self, build, tag)
        if isinstance(tag, int):  # a write (a read's tag is its DN key)
            sent["most"] = max(sent["most"], len(self.pending))

    def request(self, dn, mods):  # type: ignore[no-untyped-def]
        sent["n"] += 1
        if mode == "refused" and sent["n"] == fail["at"]:  # the server refuses this one
            return functools.partial(ber.modify, dn=dn,
                                     changes=[("delete", "description", [b"not there"])])
        return real_request(self, dn, mods)

    def reply(self):  # type: ignore[no-untyped-def]
        tag, entries, result = real_reply(self)
        if result.get("type") == "modifyResponse":
            fail["replies"] += 1
            if mode == "reply lost" and fail["replies"] == fail["at"]:  # made, reply lost
                result = {"type": "modifyResponse", "result": 52, "description": "unavailable",
                          "message": "injected: the reply was lost", "dn": "", "referrals": None}
        return tag, entries, result

    monkeypatch.setattr(ldap_backend._Pipe, "send", send)
    monkeypatch.setattr(ldap_backend._Pipe, "reply", reply)
    monkeypatch.setattr(ldap_backend.LdapDirectory, "_modify_request", request)
    with open_url(server.url, server.bind_dn, server.password) as directory:
        plan = moves_plan(directory, PIPELINED_STEPS)
        before = snapshot(directory)
        outside = slapd_state(server)
        for k in (1, 2, 40, ldap_backend.WINDOW, ldap_backend.WINDOW + 1, PIPELINED_STEPS):
            sent["n"], sent["most"], fail["at"], fail["replies"] = 0, 0, k, 0
            result = run(directory, plan, apply=True, undo_file=str(tmp_path / f"u-{mode}-{k}"))
            where = f"pipelined failure at step {k} ({mode})"
            assert (result.outcome, result.exit_code) == ("rolled back", 3), \
                f"{where}: {result.message}"
            if k < PIPELINED_STEPS:
                assert sent["most"] > 1, f"{where}: nothing was pipelined"
            landed = [s.number for s in result.steps if s.outcome == "undone"]
            assert all(s.outcome in ("undone", "failed", "not run") for s in result.steps)
            assert len(landed) >= k - 1, where
            now = snapshot(directory)
            assert now == before, f"{where}:\n" + "\n".join(differences(before, now))
            assert slapd_state(server) == outside, where
    print(f"\nslapd, pipelined, {mode}: 6 failure points restored exactly")
