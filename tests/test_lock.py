"""The --ldif file's lock and the check before the save (issue 10, item 2; figure (c)).

Every command holds a lock on the LDIF file from the read to the end: shared to read,
exclusive when it will --apply, so two runs never interleave read-plan-write.  A run
that cannot get the lock within --wait-lock seconds is refused with exit 1 naming the
holder.  And the save refuses (exit 1, nothing written) when the file is no longer
what was read (another inode, size, mtime, or other bytes), whoever changed it.

Figure (c): 20 pairs of concurrent `x500 add --apply` of two different mailboxes on one
file, real processes started together: no change lost, every run applied (exit 0) or
refused (exit 1).  The counts are printed (run with -s).
"""
from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from exdir import files
from exdir.backends.base import SimpleMod as _Mod
from exdir.backends.memory import open_ldif
from exdir.errors import Refused
from tests.labs import exdir_argv as exdir, process_env as env

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "samples" / "fabrikam.ldif"
JOHN = "CN=Smith\\, John,OU=Staff,DC=fabrikam,DC=com"
KIM = "CN=Kim Akers,OU=Staff,DC=fabrikam,DC=com"


@pytest.fixture
def ldif(tmp_path: Path) -> Path:
    path = tmp_path / "lab.ldif"
    path.write_bytes(SAMPLE.read_bytes())
    return path


def proxies(path: Path, dn: str) -> set[str]:
    d = open_ldif(str(path), warn=lambda m: None)
    try:
        entry = d.read(dn, ("proxyAddresses",))
        assert entry is not None
        return set(entry.texts("proxyAddresses"))
    finally:
        d.close()


def test_a_second_apply_waits_then_is_refused_naming_the_holder(ldif: Path,
                                                               tmp_path: Path) -> None:
    before = ldif.read_bytes()
    with files.lock(str(ldif), exclusive=True):
        t0 = time.monotonic()
        done = subprocess.run(exdir("--ldif", str(ldif), "--wait-lock", "1", "x500", "add",
                                    "jsmith", "X500:/o=Test/cn=locked", "--apply"),
                              env=env(), cwd=tmp_path, capture_output=True, text=True,
                              timeout=60)
        took = time.monotonic() - t0
    assert done.returncode == 1, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr
    assert f"process {os.getpid()}" in lines[0]  # the holder: this test's process
    assert "pytest" in lines[0] or "python" in lines[0]  # and its command line
    assert "waited 1 s" in lines[0]
    assert took >= 1.0
    assert ldif.read_bytes() == before
    assert not list(tmp_path.glob("exdir-undo-*"))


def test_readers_share_the_lock_and_a_reader_waits_for_a_writer(ldif: Path,
                                                               tmp_path: Path) -> None:
    with files.lock(str(ldif), exclusive=False):
        done = subprocess.run(exdir("--ldif", str(ldif), "--wait-lock", "0", "topology"),
                              env=env(), cwd=tmp_path, capture_output=True, text=True,
                              timeout=60)
        assert done.returncode == 0, done.stderr  # shared with our shared lock
        refused = subprocess.run(exdir("--ldif", str(ldif), "--wait-lock", "0", "x500", "add",
                                       "jsmith", "X500:/o=Test/cn=w", "--apply"),
                                 env=env(), cwd=tmp_path, capture_output=True, text=True,
                                 timeout=60)
        assert refused.returncode == 1, refused.stderr  # an --apply needs it alone
    with files.lock(str(ldif), exclusive=True):
        refused = subprocess.run(exdir("--ldif", str(ldif), "--wait-lock", "0", "topology"),
                                 env=env(), cwd=tmp_path, capture_output=True, text=True,
                                 timeout=60)
        assert refused.returncode == 1, refused.stderr
        assert "in use by" in refused.stderr


def test_a_lock_taken_while_the_file_is_replaced_follows_the_new_file(ldif: Path) -> None:
    """A waiter that gets the lock on the inode a rewrite just replaced must lock the
    file that is there now, not the old one."""
    old = files.lock(str(ldif), exclusive=True)
    d = open_ldif(str(ldif), warn=lambda m: None)
    d.modify(JOHN, [_Mod("add", "proxyAddresses", ("X500:/o=Test/cn=r",))])
    old.release()
    d.save()  # a new inode
    held = files.lock(str(ldif), exclusive=True, wait=1)
    try:
        assert held.fd is not None
        assert os.fstat(held.fd).st_ino == os.stat(ldif).st_ino
    finally:
        held.release()


def test_the_save_refuses_a_file_changed_since_it_was_read(ldif: Path) -> None:
    d = open_ldif(str(ldif), warn=lambda m: None)
    d.modify(JOHN, [_Mod("add", "proxyAddresses", ("X500:/o=Test/cn=mine",))])
    theirs = SAMPLE.read_bytes().replace(b"kakers@fabrikam.com", b"kakerz@fabrikam.com")
    ldif.write_bytes(theirs)  # another program, without a lock
    with pytest.raises(Refused, match="changed since exdir read it"):
        d.save()
    assert ldif.read_bytes() == theirs


def test_the_save_refuses_other_bytes_even_with_the_same_size_and_mtime(ldif: Path) -> None:
    """A tool that keeps the mtime (cp -p, rsync -t) and the same size: only the hash
    tells."""
    d = open_ldif(str(ldif), warn=lambda m: None, lock=False)
    st = os.stat(ldif)
    theirs = SAMPLE.read_bytes().replace(b"kakers@fabrikam.com", b"kakerz@fabrikam.com")
    assert len(theirs) == st.st_size
    with open(ldif, "r+b") as fh:  # same inode, same size
        fh.write(theirs)
    os.utime(ldif, ns=(st.st_atime_ns, st.st_mtime_ns))
    d.modify(JOHN, [_Mod("add", "proxyAddresses", ("X500:/o=Test/cn=mine",))])
    with pytest.raises(Refused):
        d.save()
    assert ldif.read_bytes() == theirs
    d.close()


def test_a_directory_saves_twice_and_keeps_its_lock(ldif: Path) -> None:
    d = open_ldif(str(ldif), warn=lambda m: None, lock=True)
    for n in (1, 2):
        d.modify(JOHN, [_Mod("add", "proxyAddresses", (f"X500:/o=Test/cn=twice{n}",))])
        d.save()
        with pytest.raises(Refused):
            files.lock(str(ldif), exclusive=False, wait=0).release()
    d.close()
    assert {"X500:/o=Test/cn=twice1", "X500:/o=Test/cn=twice2"} <= proxies(ldif, JOHN)
    files.lock(str(ldif), exclusive=True, wait=0).release()  # released by close()


def _pairs(ldif: Path, tmp_path: Path, pairs: int, wait: str) -> dict[str, int]:
    """`pairs` rounds of two concurrent applies on different mailboxes; the counts."""
    counts = {"applied": 0, "refused": 0, "lost": 0, "other": 0}
    for n in range(pairs):
        runs = []
        for who, value in (("jsmith", f"X500:/o=Pair{wait}/cn=p{n}-a"),
                           ("kakers", f"X500:/o=Pair{wait}/cn=p{n}-b")):
            runs.append((who, value, subprocess.Popen(
                exdir("--ldif", str(ldif), "--wait-lock", wait, "x500", "add", who, value,
                      "--apply"), env=env(), cwd=tmp_path, stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE, text=True)))
        results = [(who, value, proc.wait(timeout=120), proc.stderr.read())
                   for who, value, proc in runs]
        for _, _, proc in runs:
            proc.stderr.close()
        john, kim = proxies(ldif, JOHN), proxies(ldif, KIM)
        for who, value, code, err in results:
            there = value in (john if who == "jsmith" else kim)
            if code == 0 and there:
                counts["applied"] += 1
            elif code == 1 and not there and "in use by" in err:
                counts["refused"] += 1
            elif code == 0:
                counts["lost"] += 1
            else:
                counts["other"] += 1
                print(f"pair {n} {who}: exit {code}: {err.strip()}")
    return counts


def test_two_concurrent_applies_lose_nothing(ldif: Path, tmp_path: Path) -> None:
    counts = _pairs(ldif, tmp_path, 3, "5")
    assert counts == {"applied": 6, "refused": 0, "lost": 0, "other": 0}, counts


@pytest.mark.slow
def test_figure_c_twenty_concurrent_pairs(ldif: Path, tmp_path: Path) -> None:
    """Figure (c): 20 pairs that wait (--wait-lock 5: both apply, one after the other)
    and 20 pairs that do not (--wait-lock 0: the loser is refused, exit 1)."""
    waiting = _pairs(ldif, tmp_path, 20, "5")
    print(f"\nfigure (c), --wait-lock 5: {waiting}")
    impatient = _pairs(ldif, tmp_path, 20, "0")
    print(f"figure (c), --wait-lock 0: {impatient}")
    assert waiting == {"applied": 40, "refused": 0, "lost": 0, "other": 0}, waiting
    assert impatient["lost"] == impatient["other"] == 0, impatient
    assert impatient["applied"] + impatient["refused"] == 40
    assert impatient["applied"] >= 20  # the first of each pair always gets the file
    undos = list(tmp_path.glob("exdir-undo-*.ldif"))
    assert len(undos) == waiting["applied"] + impatient["applied"]  # no undo file lost
