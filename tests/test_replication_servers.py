"""`exdir replication check` against real replication (issue 15): two slapd providers
in multi-provider replication, and two Samba AD DCs pulling on demand.

Each test prints the real `replication check` output it saw (pytest -s shows it)."""
from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from exdir.backends.ldap import open_url
from exdir.lab import generate
from exdir.readers.topology import read_topology
from tests.labs import cli
from tests.servers.slapd import MakeSlapd, Slapd, SlapdFactory

MAILBOXES = 200


def show(capsys: pytest.CaptureFixture[str], text: str) -> None:
    """Print what the test saw, past the capture the CLI calls read (pytest -s)."""
    with capsys.disabled():
        print(text)


def _server_args(server: Slapd) -> list[str]:
    return ["--url", server.url, "--bind-dn", server.bind_dn,
            "--password-file", str(server.password_file)]


def _move_plan(server: Slapd, tmp_path: Path, capsys: pytest.CaptureFixture[str],
               name: str) -> tuple[Path, int]:
    """A move of every mailbox not yet on the first mailbox store, planned on server."""
    with open_url(server.url, server.bind_dn, server.password) as directory:
        topology = read_topology(directory)
        store = next(s for s in topology.stores if not s.public)
        nicknames = [e.text("mailNickname") for e in
                     directory.search(filter="(homeMDB=*)", attributes=("mailNickname",))]
    ids = tmp_path / f"{name}.txt"
    ids.write_text("\n".join(n for n in nicknames if n) + "\n", encoding="utf-8")
    code, out, err = cli(capsys, *_server_args(server), "move", "--from-file", str(ids),
                         "--to", store.dn)
    assert code == 0, err
    plan = tmp_path / f"{name}.ldif"
    plan.write_text(out, encoding="utf-8")
    return plan, out.count("changetype: modify")


def test_slapd_multi_provider_converges_and_a_stopped_peer_is_named(
        slapd_factory: MakeSlapd, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert isinstance(slapd_factory, SlapdFactory)
    first, second = slapd_factory.pair("".join(generate(mailboxes=MAILBOXES)))
    plan, steps = _move_plan(first, tmp_path, capsys, "move")
    assert steps > 100
    code, _, err = cli(capsys, *_server_args(first), "apply", str(plan), "--apply",
                       "--undo-file", str(tmp_path / "undo.ldif"))
    assert code == 0, err
    check = [*_server_args(first), "replication", "check", str(plan),
             "--dc", first.url, "--dc", second.url]
    code, out, err = cli(capsys, *check, "--wait", "30")
    show(capsys, f"\n$ exdir replication check move.ldif --dc {first.url} --dc {second.url} "
          f"--wait 30\n{out}{err}(exit {code})")
    assert code == 0, out + err
    assert out.count(f"converged: {steps}/{steps} step(s) show") == 2, out

    # the second stopped: its changes cannot arrive; it is named unreachable, exit 1
    second.halt()
    undo = tmp_path / "undo.ldif"
    code, _, err = cli(capsys, *_server_args(first), "apply", str(undo), "--apply",
                       "--undo-file", str(tmp_path / "redo.ldif"))
    assert code == 0, err
    check_undo = [*_server_args(first), "replication", "check", str(undo),
                  "--dc", first.url, "--dc", second.url]
    began = time.monotonic()
    code, out, err = cli(capsys, *check_undo, "--wait", "2")
    show(capsys, f"\n$ exdir replication check undo.ldif ... --wait 2   (second stopped)\n"
          f"{out}{err}(exit {code})")
    assert code == 1, out + err
    assert f"{second.url}: unreachable" in out and f"{first.url}: converged" in out
    assert err.strip().splitlines()[-1] == f"exdir: not converged: {second.url}"
    assert time.monotonic() - began < 20

    # restarted, it catches up: converged
    second.resume()
    code, out, err = cli(capsys, "--json", *check_undo, "--wait", "30")
    data = json.loads(out)
    show(capsys, f"\n$ exdir --json replication check undo.ldif ... --wait 30   (second restarted)\n"
          f"converged={data['converged']} rounds={data['rounds']} "
          f"waited={data['waited_seconds']} s (exit {code})")
    assert code == 0 and data["converged"], out + err
