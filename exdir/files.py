"""The files exdir writes and the LDIF file it rewrites, so that nothing is ever lost.

Rules (docs/design.md, "Nothing lost"), each one a hole a review found:

- A file exdir creates (undo file, journal, report, `lab generate -o`) must not exist
  yet: it is written to a temporary file beside it, created with
  O_CREAT|O_EXCL|O_NOFOLLOW, fsynced, then hard-linked into place.  link() fails when
  the name is taken by anything (a file, /dev/null, a symlink, even a dangling one), so
  exdir never replaces, never follows a planted link, never leaves half a file under
  the real name.  Folders are never created.
- Rewriting the --ldif file replaces the symlink's *target* (the link stays a link),
  keeps owner and mode, and says when it splits a hard link.
- Every temporary file is removed on any failure, including KeyboardInterrupt and the
  CLI's SIGTERM exception, so a killed save leaves no 22 MB `.tmp` behind.
- The LDIF file is locked (flock on the file itself) for a command's whole
  read-plan-write, and checked before the save to be still what was read (inode,
  size, mtime, and a hash computed while it was read): two runs never lose a change.
"""
from __future__ import annotations

import errno
import fcntl
import hashlib
import io
import os
import secrets
import stat
import time
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import IO, Callable, Iterator, Sequence, TextIO

from .errors import FileWriteError, InputError, Interrupted, Refused

Warn = Callable[[str], None]

_NEW = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
MODE = 0o644  # masked by the umask, like any new file
# link() is refused on some file systems (vfat, some FUSE and SMB mounts): then the file
# is created exclusively under its real name and written there (no longer atomic, still
# never replacing anything)
_NO_LINKS = {errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.ENOSYS, errno.EMLINK,
             errno.EXDEV}


class PathExists(InputError):
    """The name exdir was to create is taken (exit 2): exdir never replaces a file."""


def shown(text: str) -> str:
    """A path or command line as it may be printed: control characters escaped, so a
    hostile file name cannot move the cursor or set the terminal title."""
    out = []
    for c in str(text):
        o = ord(c)
        if o < 0x20 or 0x7F <= o < 0xA0 or c in "\u2028\u2029":
            out.append({"\n": "\\n", "\t": "\\t", "\r": "\\r"}.get(c, f"\\x{o:02x}"))
        elif c == "\\":
            out.append("\\\\")
        else:
            out.append(c)
    return "".join(out)


def _what_is(st: os.stat_result) -> str:
    mode = st.st_mode
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "a file"


def _reason(exc: OSError) -> str:
    """An OSError in plain words (its strerror, lower case), never the Python repr."""
    text = exc.strerror or str(exc)
    return text[:1].lower() + text[1:]


def _folder(path: str) -> str:
    return os.path.dirname(os.path.abspath(path)) or os.sep


def _fsync_folder(folder: str) -> None:
    """Make the new name durable; a file system that cannot fsync a folder is let be."""
    try:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno not in (errno.EINVAL, errno.EBADF, errno.ENOTSUP):
            raise
    finally:
        os.close(fd)


def _remove(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def check_new_path(path: str, what: str = "file") -> None:
    """Refuse (InputError, exit 2) a name exdir cannot create as a new file, before
    anything is written: taken by anything at all, its folder missing or not a folder,
    or a folder exdir may not write in.  Called up front (undo file, report) so a run
    is refused before it touches the directory."""
    if not path or path.endswith(os.sep) or os.path.basename(path) in ("", ".", ".."):
        raise InputError(f"{what} {shown(path)!s}: not a file name")
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        pass
    except NotADirectoryError:
        raise InputError(f"{what} {shown(path)}: a part of the path is not a folder") from None
    except OSError as exc:
        raise InputError(f"{what} {shown(path)}: cannot use this name: {_reason(exc)}") from None
    else:
        raise PathExists(f"{what} {shown(path)}: {_what_is(st)} of that name already exists; "
                         "exdir never replaces a file (give a new name)")
    folder = _folder(path)
    try:
        st = os.stat(folder)
    except FileNotFoundError:
        raise InputError(f"{what} {shown(path)}: the folder {shown(folder)} does not exist "
                         "(exdir creates no folders)") from None
    except OSError as exc:
        raise InputError(f"{what} {shown(path)}: cannot use the folder {shown(folder)}: "
                         f"{_reason(exc)}") from None
    if not stat.S_ISDIR(st.st_mode):
        raise InputError(f"{what} {shown(path)}: {shown(folder)} is not a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise InputError(f"{what} {shown(path)}: no permission to create files in "
                         f"{shown(folder)}")


def _temp_beside(path: str, mode: int = MODE) -> tuple[int, str]:
    """A new temporary file in path's folder, created exclusively (a random name, never
    an existing file or link), and its fd."""
    folder = _folder(path)
    base = os.path.basename(path)[:80]
    for _ in range(100):
        tmp = os.path.join(folder, f".{base}.exdir-{secrets.token_hex(6)}.tmp")
        try:
            # read-write: a rewrite's temporary becomes the held (re-hashed) file
            return os.open(tmp, (_NEW & ~os.O_WRONLY) | os.O_RDWR, mode), tmp
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "no free temporary name", folder)


temp_beside = _temp_beside  # the indexed store builds its index this way too
fsync_folder = _fsync_folder


def _link_into_place(tmp: str, path: str, what: str) -> None:
    """Give the written temporary file its real name without ever replacing one."""
    try:
        os.link(tmp, path, follow_symlinks=False)
        return
    except FileExistsError:
        raise PathExists(f"{what} {shown(path)}: a file of that name appeared meanwhile; "
                         "exdir never replaces a file (give a new name)") from None
    except OSError as exc:
        if exc.errno not in _NO_LINKS:
            raise
    # no hard links here: create the real name exclusively and copy into it
    try:
        fd = os.open(path, _NEW, MODE)
    except (FileExistsError, IsADirectoryError):
        raise PathExists(f"{what} {shown(path)}: a file of that name appeared meanwhile; "
                         "exdir never replaces a file (give a new name)") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:  # a symlink was planted there
            raise PathExists(f"{what} {shown(path)}: a symbolic link of that name appeared "
                             "meanwhile; exdir never follows it") from None
        raise
    try:
        with os.fdopen(fd, "wb") as out, open(tmp, "rb") as src:
            while chunk := src.read(1 << 20):
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
    except BaseException:
        _remove(path)  # ours: created exclusively above
        raise


@contextmanager
def new_file(path: str, what: str = "file") -> Iterator[IO[bytes]]:
    """Write a file that must not exist yet: the body writes to the yielded binary
    file (a temporary beside path); on normal exit it is fsynced and linked to path.
    On any exception (KeyboardInterrupt and Interrupted included) path is not created
    and the temporary is removed.  Raises PathExists/InputError (exit 2) when path is
    taken or unusable, FileWriteError when writing fails (disk full...)."""
    check_new_path(path, what)
    folder = _folder(path)
    try:
        fd, tmp = _temp_beside(path)
    except OSError as exc:
        raise FileWriteError(f"cannot write {what} {shown(path)}: {_reason(exc)}",
                             path=path) from None
    try:
        try:
            with os.fdopen(fd, "wb") as fh:
                yield fh
                fh.flush()
                os.fsync(fh.fileno())
            _link_into_place(tmp, path, what)
        except OSError as exc:
            raise FileWriteError(f"cannot write {what} {shown(path)}: {_reason(exc)}; "
                                 "it was not created", path=path) from None
    finally:
        _remove(tmp)
    _fsync_folder(folder)


def write_new(path: str, data: bytes, what: str = "file") -> None:
    """Create path holding data, atomically and exclusively (see new_file)."""
    with new_file(path, what) as fh:
        fh.write(data)


def stamp(now: datetime | None = None) -> str:
    """A UTC time stamp with microseconds, for default file names that do not collide:
    20261201T204500.123456Z."""
    return (now or datetime.now(timezone.utc)).strftime("%Y%m%dT%H%M%S.%fZ")


def write_new_unique(folder: str, stem: str, suffix: str, make: Callable[[str], bytes], *,
                     what: str = "file", also: Sequence[str] = ()) -> str:
    """Create a new file named stem+suffix in folder, or stem-2+suffix, stem-3+suffix...
    when the name is taken, and return its path.  make(path) gives the content (which
    may name the file).  Race-free: a name another process takes between the check and
    the link is met as PathExists and the next one is tried.  `also` are suffixes that
    must be free too (the undo file's `.journal`)."""
    for n in range(1, 10_000):
        path = os.path.join(folder, f"{stem}{suffix}" if n == 1 else f"{stem}-{n}{suffix}")
        if any(os.path.lexists(path + extra) for extra in also):
            continue
        try:
            write_new(path, make(path), what)
        except PathExists:
            continue
        return path
    raise InputError(f"{what}: no free name like {shown(os.path.join(folder, stem + suffix))}")


def create_new_stream(path: str, what: str = "journal") -> TextIO:
    """A new text file (UTF-8, \\n) opened O_WRONLY|O_CREAT|O_EXCL|O_NOFOLLOW: for files
    written as a run goes (the journal), which cannot be linked into place at the end.
    An existing name, a planted symlink or a missing folder is refused (exit 2)."""
    check_new_path(path, what)
    try:
        fd = os.open(path, _NEW, MODE)
    except FileExistsError:
        raise PathExists(f"{what} {shown(path)}: a file of that name appeared meanwhile; "
                         "exdir never replaces a file") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise PathExists(f"{what} {shown(path)}: a symbolic link of that name appeared "
                             "meanwhile; exdir never follows it") from None
        raise FileWriteError(f"cannot create {what} {shown(path)}: {_reason(exc)}",
                             path=path) from None
    return os.fdopen(fd, "w", encoding="utf-8", newline="\n")


# --------------------------------------------------------------------------------------
# The --ldif file: reading with a lock and a fingerprint, rewriting in place
# --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Fingerprint:
    """What the file was when exdir read (or last wrote) it."""

    dev: int
    ino: int
    size: int
    mtime_ns: int
    digest: bytes


def _new_hash():  # type: ignore[no-untyped-def]
    return hashlib.sha256()


class _HashingRaw(io.RawIOBase):
    """Reads the held file through pread and hashes every byte as it goes by, so the
    fingerprint costs no second read.  Closing it leaves the fd (the lock's) open."""

    def __init__(self, fd: int) -> None:
        super().__init__()
        self.fd = fd
        self.pos = 0
        self.hash = _new_hash()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[no-untyped-def, override]
        data = os.pread(self.fd, len(buffer), self.pos)
        n = len(data)
        buffer[:n] = data
        self.pos += n
        self.hash.update(data)
        return n


class HeldFile:
    """An LDIF file open for reading, a regular file, maybe locked (flock): `exclusive`
    is None (no lock), False (shared: readers) or True (a run that will write)."""

    def __init__(self, path: str, fd: int, exclusive: bool | None, wait: float) -> None:
        self.path = path
        self.fd: int | None = fd
        self.exclusive = exclusive
        self.wait = wait
        self._raw: _HashingRaw | None = None

    def reader(self) -> IO[bytes]:
        """A buffered binary stream over the file from its start, hashing as it reads."""
        assert self.fd is not None
        self._raw = _HashingRaw(self.fd)
        return io.BufferedReader(self._raw, buffer_size=1 << 16)

    def fingerprint(self) -> Fingerprint:
        """The file as read through reader(): whatever the reader did not consume is
        hashed now (normally nothing: the loader reads to the end)."""
        assert self.fd is not None and self._raw is not None
        raw = self._raw
        while chunk := os.pread(self.fd, 1 << 20, raw.pos):
            raw.pos += len(chunk)
            raw.hash.update(chunk)
        st = os.fstat(self.fd)
        return Fingerprint(st.st_dev, st.st_ino, raw.pos, st.st_mtime_ns, raw.hash.digest())

    def relock(self, exclusive: bool | None, wait: float | None = None) -> None:
        """Change the lock on the same file (shared <-> exclusive, or none).  flock may
        drop the old lock before taking the new one: callers check the fingerprint
        after taking an exclusive lock, never before."""
        assert self.fd is not None
        if exclusive is None:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
        else:
            _flock(self.fd, self.path, exclusive,
                   time.monotonic() + (self.wait if wait is None else wait),
                   self.wait if wait is None else wait)
        self.exclusive = exclusive

    def swap(self, fd: int) -> None:
        """Hold the file now at path (the rewrite's new inode, already locked) instead."""
        old, self.fd, self._raw = self.fd, fd, None
        if old is not None:
            os.close(old)

    def release(self) -> None:
        if self.fd is not None:
            fd, self.fd = self.fd, None
            os.close(fd)  # closing the last fd of the open file releases the flock

    def __enter__(self) -> "HeldFile":
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _open_regular(path: str, what: str) -> int:
    """Open path for reading without ever blocking (O_NONBLOCK: a FIFO does not wait
    for a writer) and refuse anything but a regular file (exit 2): /dev/zero would be
    read without end, a FIFO would block, a folder is no LDIF."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError as exc:
        raise InputError(f"cannot read {what}: {_reason(exc)}", source=shown(path)) from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise InputError(f"{_what_is(st)}, not a regular file; exdir reads an {what} "
                             "only from a regular file", source=shown(path))
        # back to blocking reads (a regular file ignores the flag; keep it simple)
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _holder(fd: int) -> str:
    """Who holds a lock on fd's file, from /proc/locks (by device and inode) and
    /proc/PID/cmdline, in plain words; '' when it cannot be seen."""
    st = os.fstat(fd)
    want = (os.major(st.st_dev), os.minor(st.st_dev), st.st_ino)
    pids: list[int] = []
    try:
        with open("/proc/locks", encoding="ascii", errors="replace") as fh:
            lines = fh.read().splitlines()
    except OSError:
        return ""
    for line in lines:
        fields = line.split()
        if len(fields) < 8 or fields[1] == "->":  # a waiter, not a holder
            continue
        try:
            pid = int(fields[4])
            major, minor, ino = fields[5].split(":")
            where = (int(major, 16), int(minor, 16), int(ino))
        except ValueError:
            continue
        if where == want and pid > 0 and pid != os.getpid() and pid not in pids:
            pids.append(pid)
    if not pids:
        return ""
    pid = pids[0]
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            argv = [a.decode("utf-8", "replace") for a in fh.read().split(b"\0") if a]
    except OSError:
        argv = []
    command = " ".join(argv)
    if len(command) > 200:
        command = command[:200] + "…"
    return f"process {pid}" + (f" ({shown(command)})" if command else "")


def _flock(fd: int, path: str, exclusive: bool, deadline: float, wait: float) -> None:
    """Take the lock, polling until deadline; then Refused (exit 1) naming the holder."""
    op = (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB
    delay = 0.01
    while True:
        try:
            fcntl.flock(fd, op)
            return
        except BlockingIOError:
            pass
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.EACCES):
                raise
        left = deadline - time.monotonic()
        if left <= 0:
            who = _holder(fd) or "another program (which may just have finished)"
            raise Refused(f"{shown(path)} is in use by {who}; waited {wait:g} s for it. "
                          "Nothing was read or written: run again when it has finished "
                          "(--wait-lock SECONDS waits longer)")
        time.sleep(min(delay, left))
        delay = min(delay * 2, 0.2)


def open_held(path: str, exclusive: bool | None, wait: float = 5.0,
              what: str = "LDIF file") -> HeldFile:
    """Open the LDIF file for reading (a regular file only) and, unless exclusive is
    None, lock it: shared for readers, exclusive for a run that will write.  Waits up to
    `wait` seconds for another holder, then Refused (exit 1) naming it.  A rewrite
    replaces the file's inode, so after the lock is taken the path must still name the
    locked file; if not, the new one is opened and locked instead."""
    deadline = time.monotonic() + max(wait, 0.0)
    while True:
        fd = _open_regular(path, what)
        try:
            if exclusive is None:
                return HeldFile(path, fd, None, wait)
            _flock(fd, path, exclusive, deadline, wait)
            held = os.fstat(fd)
            try:
                now = os.stat(path)
            except OSError:
                now = None
            if now is not None and (now.st_dev, now.st_ino) == (held.st_dev, held.st_ino):
                return HeldFile(path, fd, exclusive, wait)
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)  # replaced meanwhile: lock the file that is there now


def lock(path: str, exclusive: bool, wait: float = 5.0) -> HeldFile:
    """open_held with a lock (shared or exclusive)."""
    return open_held(path, exclusive, wait)


@contextmanager
def locked_for_save(path: str, held: "HeldFile | None", wait: float) -> Iterator["HeldFile"]:
    """The file locked exclusively for a check and a rewrite, as a store's save needs.

    A store opened without a lock (a library caller) locks the file for the block only;
    one holding a shared lock is upgraded for it and goes back to shared; one holding
    an exclusive lock (a command that will --apply) keeps it.  Both LDIF stores (in
    memory and indexed) save through this, so they lock alike."""
    before = held.exclusive if held is not None else None
    lock_ = held if held is not None else lock(path, exclusive=True, wait=wait)
    if held is not None and not held.exclusive:
        held.relock(True, wait)
    try:
        yield lock_
    finally:
        if held is None:
            lock_.release()
        elif before is not True and held.fd is not None:
            held.relock(before)


def check_unchanged(held: HeldFile, seen: Fingerprint) -> None:
    """Refuse (exit 1, nothing written) when the file at held.path is no longer what
    was read: another inode (replaced), another size or mtime, or other bytes (a tool
    that keeps the mtime).  held must hold the file exclusively."""
    path = held.path
    changed = f"{shown(path)} changed since exdir read it (another program wrote it); " \
              "nothing was saved: run the command again on the file as it is now"
    try:
        now = os.stat(path)
    except OSError:
        raise Refused(f"{shown(path)} is gone since exdir read it; nothing was saved") from None
    if (now.st_dev, now.st_ino, now.st_size, now.st_mtime_ns) != (
            seen.dev, seen.ino, seen.size, seen.mtime_ns):
        raise Refused(changed)
    assert held.fd is not None
    st = os.fstat(held.fd)
    if (st.st_dev, st.st_ino) != (now.st_dev, now.st_ino):
        raise Refused(changed)
    h, pos = _new_hash(), 0
    while chunk := os.pread(held.fd, 1 << 20, pos):
        pos += len(chunk)
        h.update(chunk)
    if pos != seen.size or h.digest() != seen.digest:
        raise Refused(changed)


def stop_if_signalled() -> None:
    """Raise Interrupted for a SIGINT or SIGTERM that is pending because the caller
    holds them (exdir.apply does during a save, so that the signal cannot land between
    the file being replaced and the journal saying so): the save stops before the
    rename, the temporary is removed and the file is as it was."""
    import signal

    try:
        got = signal.sigtimedwait({signal.SIGINT, signal.SIGTERM}, 0)
    except (AttributeError, OSError, ValueError):
        return
    if got is not None:
        raise Interrupted(got.si_signo)


class _HashingWriter:
    """The temporary file as the writer sees it: every byte written is hashed, so the
    fingerprint of the new file costs no read."""

    def __init__(self, fh: IO[bytes]) -> None:
        self._fh = fh
        self.hash = _new_hash()
        self.size = 0

    def write(self, data) -> int:  # type: ignore[no-untyped-def]
        b = bytes(data)
        self.hash.update(b)
        before = self.size
        self.size += len(b)
        if before >> 20 != self.size >> 20:  # every MiB: a long save stays interruptible
            stop_if_signalled()
        return self._fh.write(b)

    def __getattr__(self, name: str):  # type: ignore[no-untyped-def]
        return getattr(self._fh, name)


def rewrite(path: str, write: Callable[[IO[bytes]], None], warn: Warn | None = None, *,
            held: HeldFile | None = None) -> Fingerprint:
    """Replace the content of an existing file atomically: write(fh) to a temporary
    beside the *target* (a symlink is followed to its final target; the link stays a
    link), created exclusively, with the target's owner (where permitted) and mode;
    fsync; rename over the target; fsync the folder.  On any failure (disk full,
    KeyboardInterrupt, SIGTERM) the temporary is removed and the file is untouched.
    warn says when the file had other hard links (they keep the old content) or its
    owner could not be kept.  With held, the new file is locked like held before it
    takes the name, and held then holds it: no moment where the path is unlocked."""
    target = os.path.realpath(path)
    try:
        st = os.stat(target)
    except OSError as exc:
        raise FileWriteError(f"cannot save {shown(path)}: {_reason(exc)}", path=path) from None
    if not stat.S_ISREG(st.st_mode):
        raise InputError(f"{_what_is(st)}, not a regular file", source=shown(path))
    folder = os.path.dirname(target)
    try:
        fd, tmp = _temp_beside(target, 0o600)
    except OSError as exc:
        raise FileWriteError(f"cannot save {shown(path)}: {_reason(exc)}; the file is unchanged",
                             path=path) from None
    keep: int | None = None
    placed = False
    notes: list[str] = []
    try:
        try:
            if held is not None and held.exclusive is not None:
                keep = os.dup(fd)
                fcntl.flock(keep, fcntl.LOCK_EX | fcntl.LOCK_NB)  # a new file: free
            if (st.st_uid, st.st_gid) != (os.geteuid(), os.getegid()):
                try:
                    os.fchown(fd, st.st_uid, st.st_gid)
                except PermissionError:
                    try:
                        os.fchown(fd, -1, st.st_gid)
                    except PermissionError:
                        pass
                    notes.append("its owner could not be kept (the saved file belongs to "
                                 "the user who ran exdir)")
            os.fchmod(fd, stat.S_IMODE(st.st_mode))  # after chown, which clears set-id bits
            with os.fdopen(fd, "wb") as fh:
                out = _HashingWriter(fh)
                write(out)  # type: ignore[arg-type]
                fh.flush()
                os.fsync(fh.fileno())
                new = os.fstat(fh.fileno())
            stop_if_signalled()  # the last moment the file can still be left as it was
            os.replace(tmp, target)
            placed = True
        except OSError as exc:
            raise FileWriteError(f"cannot save {shown(path)}: {_reason(exc)}; the file is "
                                 "unchanged", path=path) from None
    except BaseException:
        if keep is not None:
            os.close(keep)
        raise
    finally:
        if not placed:
            _remove(tmp)
    _fsync_folder(folder)
    if st.st_nlink > 1:
        notes.append(f"it had {st.st_nlink - 1} other hard link(s), which keep the old "
                     "content (the save writes a new file)")
    if held is not None and keep is not None:
        held.swap(keep)
        if held.exclusive is False:
            fcntl.flock(keep, fcntl.LOCK_SH)
    if warn is not None:
        for note in notes:
            warn(f"{shown(path)}: saved; {note}")
    return Fingerprint(new.st_dev, new.st_ino, out.size, new.st_mtime_ns, out.hash.digest())
