"""The file layer (issue 10, items 5, 6, 7, 10, 11, 14, 15, 20): exdir never replaces,
follows or half-writes a file.

Undo files, journals, reports and `lab generate -o` files are created exclusively: an
existing name of any kind (a file, a device node, a symlink, the --ldif file itself)
or a missing folder is refused with exit 2 before anything is written.  The --ldif
file is rewritten through a symlink to its target with owner and mode kept; a hard
link it splits is reported.  A SIGTERM or SIGINT (a real signal to a real process)
leaves no temporary file and one line on stderr.  Non-regular --ldif paths are refused
without reading or blocking.
"""
from __future__ import annotations

import os
import resource
import signal
import stat
import subprocess
import sys
import textwrap
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from commands.main import main
from exdir import files
from exdir.apply import _write_undo, default_undo_path
from exdir.backends.memory import open_ldif
from exdir.errors import ExdirError, FileWriteError, InputError
from exdir.journal import Journal
from exdir.report import ReportNotWritten, write_report
from tests.labs import exdir_argv, process_env as env

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "samples" / "fabrikam.ldif"
JOHN = "CN=Smith\\, John,OU=Staff,DC=fabrikam,DC=com"


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture
def ldif(tmp_path: Path) -> Path:
    path = tmp_path / "lab.ldif"
    path.write_bytes(SAMPLE.read_bytes())
    return path


def add_x500(ldif: Path, *extra: str, value: str = "X500:/o=Test/cn=safety") -> list[str]:
    return ["--ldif", str(ldif), "x500", "add", "jsmith", value, "--apply", *extra]


def one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


# --- item 5/6: undo files are new files, never a replacement ----------------------------

def _planted(kind: str, path: Path, ldif: Path) -> Path:
    """Something of `kind` at path; what the test must find unchanged afterwards."""
    victim = path.parent / "victim.txt"
    victim.write_text("keep me\n")
    if kind == "file":
        path.write_text("an older undo file\n")
    elif kind == "symlink":
        path.symlink_to(victim)
    elif kind == "dangling symlink":
        path.symlink_to(path.parent / "nowhere.txt")
    elif kind == "fifo":
        os.mkfifo(path)
    elif kind == "device":  # a /dev/null of our own: the real one must not be at risk
        os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    elif kind == "the ldif file":
        return ldif
    return path


@pytest.mark.parametrize("kind", ["file", "symlink", "dangling symlink", "fifo", "device",
                                  "the ldif file"])
def test_an_existing_undo_path_is_refused_before_anything_is_written(
        kind: str, ldif: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    if kind == "device" and os.geteuid() != 0:
        pytest.skip("mknod needs root")
    undo = _planted(kind, tmp_path / "undo.ldif", ldif)
    before_ldif = ldif.read_bytes()
    before = os.lstat(undo)
    victim = (tmp_path / "victim.txt").read_bytes()
    code, _, err = cli(capsys, *add_x500(ldif, "--undo-file", str(undo)))
    assert code == 2, err
    assert "already exists" in one_line(err)
    after = os.lstat(undo)
    assert (stat.S_IFMT(after.st_mode), after.st_ino) == (stat.S_IFMT(before.st_mode),
                                                           before.st_ino)
    assert ldif.read_bytes() == before_ldif  # the directory was not touched
    assert (tmp_path / "victim.txt").read_bytes() == victim
    assert not (tmp_path / "nowhere.txt").exists()
    assert not Path(str(undo) + ".journal").exists()


def test_an_undo_file_in_a_missing_folder_is_refused_and_no_folder_made(
        ldif: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = ldif.read_bytes()
    undo = tmp_path / "missing" / "deeper" / "u.ldif"
    code, _, err = cli(capsys, *add_x500(ldif, "--undo-file", str(undo)))
    assert code == 2
    assert "does not exist" in one_line(err)
    assert not (tmp_path / "missing").exists()
    assert ldif.read_bytes() == before


def test_a_planted_journal_symlink_is_never_followed(
        ldif: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """With predictable names in a shared folder, a link at <undo>.journal must not make
    a root run append to the file it points to."""
    target = tmp_path / "passwd"
    target.write_text("root:x:0:0\n")
    undo = tmp_path / "undo.ldif"
    Path(str(undo) + ".journal").symlink_to(target)
    before = ldif.read_bytes()
    code, _, err = cli(capsys, *add_x500(ldif, "--undo-file", str(undo)))
    assert code == 2, err
    assert "journal" in one_line(err)
    assert target.read_text() == "root:x:0:0\n"
    assert ldif.read_bytes() == before


def test_the_journal_class_refuses_an_existing_path(tmp_path: Path) -> None:
    path = tmp_path / "j.journal"
    path.write_text("old\n")
    with pytest.raises(files.PathExists):
        Journal(str(path), "u.ldif", 1)
    assert path.read_text() == "old\n"
    fresh = Journal(str(tmp_path / "new.journal"), "u.ldif", 2)
    fresh.step(1, "done", "CN=x")
    fresh.close()
    assert (tmp_path / "new.journal").read_text().splitlines()[1] == "done 1 CN=x"


def test_default_undo_names_have_microseconds_and_a_counter(tmp_path: Path) -> None:
    t = datetime(2026, 12, 1, 20, 45, 0, 123456, tzinfo=timezone.utc)
    first, second = default_undo_path(t), default_undo_path(t + timedelta(microseconds=1))
    assert first != second
    assert os.path.basename(first) == "exdir-undo-20261201T204500.123456Z.ldif"
    taken = tmp_path / "exdir-undo-20261201T204500.123456Z.ldif"
    taken.write_text("the first run's undo file\n")
    text = "# `exdir apply exdir-undo-20261201T204500.123456Z.ldif --apply` rolls back\n"
    chosen = _write_undo(str(taken), text, default=True)
    assert chosen == str(tmp_path / "exdir-undo-20261201T204500.123456Z-2.ldif")
    assert taken.read_text() == "the first run's undo file\n"
    assert "exdir apply exdir-undo-20261201T204500.123456Z-2.ldif --apply" in Path(
        chosen).read_text()
    # a journal left behind takes the name too
    Path(str(tmp_path / "exdir-undo-20261201T204500.123456Z-3.ldif") + ".journal").write_text("")
    assert _write_undo(str(taken), text, default=True).endswith("Z-4.ldif")
    with pytest.raises(files.PathExists):
        _write_undo(str(taken), text, default=False)  # a name the user gave: refused


def test_two_default_undo_files_in_the_same_second_both_survive(
        ldif: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The clock is stopped, as for two runs started in the same microsecond."""
    frozen = datetime(2026, 12, 1, 20, 45, 0, 123456, tzinfo=timezone.utc)

    class Stopped(datetime):
        @classmethod
        def now(cls, tz=None):  # type: ignore[no-untyped-def, override]
            return frozen

    import exdir.apply

    monkeypatch.setattr(exdir.apply, "datetime", Stopped)
    monkeypatch.setattr(files, "datetime", Stopped, raising=False)
    monkeypatch.chdir(tmp_path)
    for n in (1, 2):
        code, _, err = cli(capsys, *add_x500(ldif, value=f"X500:/o=Test/cn=same{n}"))
        assert code == 0, err
    undos = sorted(tmp_path.glob("exdir-undo-*.ldif"))
    assert len(undos) == 2
    assert ["same2" in u.read_text() for u in undos].count(True) == 1


# --- write_new and friends -----------------------------------------------------------

def test_write_new_links_into_place_and_leaves_no_temporary(tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    files.write_new(str(path), b"{}\n")
    assert path.read_bytes() == b"{}\n"
    with pytest.raises(files.PathExists):
        files.write_new(str(path), b"other\n")
    assert path.read_bytes() == b"{}\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.json"]


def test_write_new_removes_its_temporary_on_keyboard_interrupt(tmp_path: Path) -> None:
    path = tmp_path / "big.ldif"
    with pytest.raises(KeyboardInterrupt):
        with files.new_file(str(path)) as fh:
            fh.write(b"x" * 100_000)
            raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []


def test_write_new_refuses_a_folder_a_trailing_slash_and_a_file_as_folder(
        tmp_path: Path) -> None:
    (tmp_path / "f").write_text("")
    for bad in (str(tmp_path), str(tmp_path / "d") + "/", str(tmp_path / "f" / "x.ldif")):
        with pytest.raises(InputError):
            files.write_new(bad, b"")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f"]


# --- item 7: --ldif through a symlink, owner, mode, hard links ----------------------------

def test_the_ldif_file_is_rewritten_through_its_symlink_keeping_owner_and_mode(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    real = tmp_path / "data" / "export.ldif"
    real.parent.mkdir()
    real.write_bytes(SAMPLE.read_bytes())
    os.chmod(real, 0o640)
    owner = (os.stat(real).st_uid, os.stat(real).st_gid)
    if os.geteuid() == 0:
        owner = (65534, 65534)
        os.chown(real, *owner)
    link = tmp_path / "lab.ldif"
    link.symlink_to(real)
    code, _, err = cli(capsys, *add_x500(link, "--undo-file", str(tmp_path / "u.ldif")))
    assert code == 0, err
    assert link.is_symlink() and os.readlink(link) == str(real)
    assert b"X500:/o=Test/cn=safety" in real.read_bytes()
    st = os.stat(real)
    assert stat.S_IMODE(st.st_mode) == 0o640
    assert (st.st_uid, st.st_gid) == owner
    assert not [p for p in real.parent.iterdir() if p.name != "export.ldif"]


def test_a_split_hard_link_is_reported(ldif: Path, tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    other = tmp_path / "backup.ldif"
    os.link(ldif, other)
    code, _, err = cli(capsys, *add_x500(ldif, "--undo-file", str(tmp_path / "u.ldif")))
    assert code == 0, err
    assert "1 other hard link" in err
    assert b"X500:/o=Test/cn=safety" in ldif.read_bytes()
    assert other.read_bytes() == SAMPLE.read_bytes()  # the other name keeps the old bytes


def test_rewrite_leaves_the_file_and_no_temporary_on_a_full_disk(
        ldif: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    before = ldif.read_bytes()

    def write(fh) -> None:  # type: ignore[no-untyped-def]
        fh.write(b"version: 1\n")
        raise OSError(28, "No space left on device")

    with pytest.raises(FileWriteError, match="no space left on device; the file is unchanged"):
        files.rewrite(str(ldif), write)
    assert ldif.read_bytes() == before
    assert sorted(p.name for p in ldif.parent.iterdir()) == ["lab.ldif"]


# --- item 15: non-regular --ldif paths --------------------------------------------------

def _limit_memory() -> None:  # the old code read /dev/zero without end
    resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))


@pytest.mark.parametrize("kind", ["fifo", "/dev/zero", "folder"])
def test_a_non_regular_ldif_path_is_refused_without_reading(kind: str, tmp_path: Path) -> None:
    path = {"fifo": tmp_path / "pipe", "/dev/zero": Path("/dev/zero"),
            "folder": tmp_path}[kind]
    if kind == "fifo":
        os.mkfifo(path)
    t0 = time.monotonic()
    try:
        done = subprocess.run(exdir_argv("--ldif", str(path), "topology"), env=env(),
                              cwd=tmp_path, capture_output=True, text=True, timeout=20,
                              preexec_fn=_limit_memory)
    except subprocess.TimeoutExpired:
        pytest.fail(f"--ldif {kind} did not return within 20 s")
    assert done.returncode == 2, done.stderr
    line = one_line(done.stderr)
    assert "not a regular file" in line
    assert time.monotonic() - t0 < 20


# --- item 11 (report half) and reports ---------------------------------------------------

def test_an_existing_report_path_is_refused_before_the_apply(
        ldif: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    report = tmp_path / "r.json"
    report.write_text("an earlier report\n")
    before = ldif.read_bytes()
    code, _, err = cli(capsys, *add_x500(ldif, "--undo-file", str(tmp_path / "u.ldif"),
                                         "--report", str(report)))
    assert code == 2
    assert "already exists" in one_line(err)
    assert report.read_text() == "an earlier report\n"
    assert ldif.read_bytes() == before
    assert not (tmp_path / "u.ldif").exists()


def test_a_report_that_cannot_be_written_after_the_apply_is_no_internal_error(
        ldif: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """/proc passes the up-front check for root (the folder exists and access() says
    yes) but refuses the file: the failure comes after a successful write."""
    if not os.path.isdir("/proc/self"):
        pytest.skip("no /proc")
    report = f"/proc/exdir-report-{os.getpid()}.json"
    undo = tmp_path / "u.ldif"
    code, _, err = cli(capsys, *add_x500(ldif, "--undo-file", str(undo), "--report", report))
    if code == 2 and "no permission" in err:
        pytest.skip("the up-front check already refuses /proc for this user")
    assert code != 70, err
    assert "internal error" not in err and "Traceback" not in err
    assert "report was not written" in err
    assert undo.exists()  # the apply itself happened: its undo file is there


def test_write_report_raises_a_plain_report_error(tmp_path: Path) -> None:
    from exdir.apply import ApplyResult

    taken = tmp_path / "r.xml"
    taken.write_text("x")
    with pytest.raises(ReportNotWritten) as caught:
        write_report(str(taken), ApplyResult("applied", 0, []))
    assert isinstance(caught.value, ExdirError) and "already exists" in caught.value.message
    assert taken.read_text() == "x"


# --- item 20: lab generate -o ----------------------------------------------------------

def test_lab_generate_refuses_an_existing_output(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "lab.ldif"
    out.write_text("my work\n")
    code, _, err = cli(capsys, "lab", "generate", "--mailboxes", "3", "-o", str(out))
    assert code == 2
    assert "already exists" in one_line(err)
    assert out.read_text() == "my work\n"
    code, _, err = cli(capsys, "lab", "generate", "--mailboxes", "3", "-o",
                       str(tmp_path / "new.ldif"))
    assert code == 0, err
    assert open_ldif(str(tmp_path / "new.ldif"), warn=lambda m: None).exists(JOHN) is False
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lab.ldif", "new.ldif"]


def _wait_for(predicate, timeout: float = 60.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail("timed out")
        time.sleep(0.02)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_a_killed_lab_generate_leaves_no_partial_file(sig: int, tmp_path: Path) -> None:
    out = tmp_path / "lab.ldif"
    proc = subprocess.Popen(exdir_argv("lab", "generate", "--mailboxes", "2000000", "-o",
                                       str(out)), env=env(), cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        # kill it once it has written something somewhere in the folder
        _wait_for(lambda: any(p.stat().st_size > 100_000 for p in tmp_path.iterdir()))
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert not out.exists()  # never a truncated file under the real name
    if sig == signal.SIGTERM:
        assert proc.returncode == 143
        assert one_line(err) == "exdir: interrupted by SIGTERM"
        assert list(tmp_path.iterdir()) == []  # the temporary went too


# --- item 14: SIGTERM during the save ----------------------------------------------------

SLOW_SAVE = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    import exdir.backends.memory as memory
    marker = Path(sys.argv[1])
    record = memory.entry_record
    count = [0]
    def slow(*args, **kwargs):
        count[0] += 1
        if count[0] == 20:
            marker.write_text("saving")
        if count[0] >= 20:  # a slow save, still writing when the signal comes
            time.sleep(0.02)
        return record(*args, **kwargs)
    memory.entry_record = slow  # the save's entry writer
    from commands.main import main
    sys.exit(main(sys.argv[2:]))
""")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_during_the_save_leaves_the_file_and_no_temporary(
        sig: int, ldif: Path, tmp_path: Path) -> None:
    before = ldif.read_bytes()
    marker = tmp_path / "marker"
    proc = subprocess.Popen([sys.executable, "-c", SLOW_SAVE, str(marker),
                             *add_x500(ldif, "--undo-file", str(tmp_path / "u.ldif"))],
                            env=env(), cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        _wait_for(marker.exists, 60)
        assert [p for p in tmp_path.iterdir() if ".exdir-" in p.name]  # the save is under way
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 128 + sig, err
    assert one_line(err).startswith(f"exdir: interrupted by {signal.Signals(sig).name}")
    assert ldif.read_bytes() == before
    assert not [p for p in tmp_path.iterdir() if ".exdir-" in p.name]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_while_waiting_for_the_lock_is_one_line(sig: int, ldif: Path,
                                                        tmp_path: Path) -> None:
    with files.lock(str(ldif), exclusive=True):
        proc = subprocess.Popen(exdir_argv("--ldif", str(ldif), "--wait-lock", "60",
                                           "topology"), env=env(), cwd=tmp_path,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            _wait_for(lambda: _waiting_on(proc.pid, ldif), 30)
            proc.send_signal(sig)
            out, err = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert proc.returncode == 128 + sig
    assert one_line(err) == f"exdir: interrupted by {signal.Signals(sig).name}"
    assert out == ""


def _waiting_on(pid: int, path: Path) -> bool:
    """The process has the file open (it is polling for the lock)."""
    try:
        return any(os.path.realpath(f"/proc/{pid}/fd/{fd}") == str(path.resolve())
                   for fd in os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return False
