"""`exdir replication check` against real replication (issue 15): two slapd providers
in multi-provider replication, and two Samba AD DCs pulling on demand.

Each test prints the real `replication check` output it saw (pytest -s shows it)."""
from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from exdir.backends.ldap import open_url
from exdir.lab import generate
from exdir.readers.topology import read_topology
from tests.labs import cli
from tests.servers.samba import (DOMAIN, DOMAIN_DN, SECOND_ADDRESS, LoopbackAddress, SambaDC,
                                 _tool, join_dc)
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


# --- Samba: two AD DCs, replication pulled on demand -------------------------------------------

def _drs_replicate(first: SambaDC, second: SambaDC, nc: str) -> float:
    """`samba-tool drs replicate DC2 DC1 NC --local`: DC2 pulls NC from DC1 now."""
    env = {**os.environ, "KRB5_CONFIG": str(first.directory / "private" / "krb5.conf")}
    began = time.monotonic()
    done = subprocess.run([_tool("samba-tool"), "drs", "replicate", second.address,
                           first.address, nc, "--local", "-U", f"{DOMAIN}\\Administrator",
                           f"--password={first.password}", "-s", str(second.conf)],
                          capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    return time.monotonic() - began


def test_samba_second_dc_behind_until_replicated(samba_lab, samba_factory,  # type: ignore[no-untyped-def]
                                                 tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    sample = (Path(__file__).resolve().parent.parent / "samples" / "fabrikam.ldif")
    first = samba_factory(sample.read_text(encoding="utf-8"))
    args = ["--url", first.url, "--bind-dn", first.bind_dn,
            "--password-file", str(first.password_file)]
    with LoopbackAddress(SECOND_ADDRESS):
        second = join_dc(first, samba_lab.root / f"dc2-{time.monotonic_ns()}")
        try:
            second.start()
            code, out, err = cli(capsys, *args, "move", "jsmith", "kakers@fabrikam.com",
                                 "--to", "EX2/First Storage Group/Mailbox Store (EX2)")
            assert code == 0, err
            plan = tmp_path / "move.ldif"
            plan.write_text(out, encoding="utf-8")
            code, _, err = cli(capsys, *args, "apply", str(plan), "--apply",
                               "--undo-file", str(tmp_path / "undo.ldif"))
            assert code == 0, err
            check = [*args, "replication", "check", str(plan), "--dc", first.url,
                     "--dc", second.url]
            code, out, err = cli(capsys, *check)
            show(capsys, f"\n$ exdir replication check move.ldif --dc {first.url} "
                         f"--dc {second.url}   (before drs replicate)\n{out}{err}(exit {code})")
            assert code == 1, out + err
            assert f"{second.url}: behind: 0/2 step(s) show" in out, out
            assert f"{first.url}: converged: 2/2 step(s) show" in out, out
            assert err.strip().splitlines()[-1] == f"exdir: not converged: {second.url}"
            took = _drs_replicate(first, second, DOMAIN_DN)
            code, out, err = cli(capsys, *check, "--wait", "10")
            show(capsys, f"\n$ samba-tool drs replicate {second.address} {first.address} "
                         f"{DOMAIN_DN} --local   ({took:.2f} s)\n"
                         f"$ exdir replication check move.ldif --dc {first.url} "
                         f"--dc {second.url} --wait 10\n{out}{err}(exit {code})")
            assert code == 0, out + err
            assert out.count("converged: 2/2 step(s) show") == 2, out
            # the replication metadata, per DC (homeMDB is linked: its values' metadata
            # is msDS-ReplValueMetaData, not replPropertyMetaData)
            assert "homeMTA: version" in out, out
            code, out, err = cli(capsys, "--json", *check)
            data = json.loads(out)
            metas = [m for d in data["domain_controllers"] for m in d["metadata"].values()]
            assert metas and all("homeMTA" in m for m in metas), data
            versions = {d["url"]: sorted(m["homeMTA"]["version"]
                                         for m in d["metadata"].values())
                        for d in data["domain_controllers"]}
            assert versions[first.url] == versions[second.url], versions
        finally:
            second.cleanup()


@pytest.mark.slapd
def test_exdir_url_names_the_dc_written_and_an_undo_elsewhere_warns(
        slapd_factory: MakeSlapd, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """The DC comes from EXDIR_URL (credentials from EXDIR_BIND_DN and EXDIR_PASSWORD):
    the undo file's header and the report name it, without the password; the undo
    pointed at another server warns, pointed at the same one does not."""
    sample = (Path(__file__).resolve().parent.parent / "samples" / "fabrikam.ldif")
    text = sample.read_text(encoding="utf-8")
    first, second = slapd_factory(text), slapd_factory(text)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("EXDIR_URL", first.url)
    monkeypatch.setenv("EXDIR_BIND_DN", first.bind_dn)
    monkeypatch.setenv("EXDIR_PASSWORD", first.password)
    undo, report = tmp_path / "undo.ldif", tmp_path / "report.json"
    code, _, err = cli(capsys, "x500", "add", "jsmith", "X500:/o=Old/cn=jsmith", "--apply",
                       "--undo-file", str(undo), "--report", str(report))
    assert code == 0, err
    header = undo.read_text(encoding="utf-8")
    assert f"# written to domain controller: {first.url}" in header
    assert json.loads(report.read_text(encoding="utf-8"))["domain_controller"] == first.url
    assert first.password not in header + report.read_text(encoding="utf-8")
    code, _, err = cli(capsys, *_server_args(second), "apply", str(undo))
    assert code == 0 and f"against {first.url}, not {second.url}" in err, err
    code, _, err = cli(capsys, "apply", str(undo))
    assert code == 0 and "warning:" not in err, err
