"""One directory under test: an LDIF file, a slapd or a Samba DC loaded with the same LDIF.

The tests that run a command on every backend need the same few things of it: a
Directory of their own (`open()`), the CLI options that reach it (`options()`, `cli()`),
what a fresh reader sees (`state()`) and, for a file, its bytes.  One class for all of
them, so that "the same test on three backends" means the same thing everywhere.
"""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Protocol, Sequence

import pytest

from commands.main import main
from exdir.backends.base import Directory, Entry
from exdir.backends.memory import open_ldif
from exdir.backends.ldap import open_url
from tests.plans import Snapshot, differences, snapshot

SAMPLES = Path(__file__).resolve().parent.parent / "samples"
SAMPLE = SAMPLES / "fabrikam.ldif"
# the environment the CLI reads its connection from: a user's own must not leak into a test
ENV = ("EXDIR_LDIF", "EXDIR_URL", "EXDIR_BIND_DN", "EXDIR_PASSWORD")

LDIF_SLAPD = ["ldif", pytest.param("slapd", marks=pytest.mark.slapd)]
ALL_BACKENDS = [*LDIF_SLAPD, pytest.param("samba", marks=pytest.mark.samba)]


class Server(Protocol):
    """What a lab needs of tests.servers.slapd.Slapd and tests.servers.samba.SambaDC."""

    @property
    def url(self) -> str: ...

    @property
    def bind_dn(self) -> str: ...

    @property
    def password(self) -> str: ...

    @property
    def password_file(self) -> Path: ...


class CountingDirectory(Directory):
    """Passes reads through and counts the searches (a base read is one too): the
    tests that prove a command reads in bulk, never once per object."""

    def __init__(self, inner: Directory) -> None:
        self.inner = inner
        self.backend = inner.backend
        self.is_active_directory = inner.is_active_directory
        self.naming = inner.naming
        self.searches = 0

    def search(self, base: str | None = None, filter: str = "(objectClass=*)",
               attributes: Sequence[str] = ("*",), scope: str = "subtree") -> Iterator[Entry]:
        self.searches += 1
        return self.inner.search(base, filter, attributes, scope)

    def read(self, dn: str, attributes: Sequence[str] = ("*",)) -> Entry | None:
        self.searches += 1
        return self.inner.read(dn, attributes)

    def describe(self) -> str:
        return self.inner.describe()


def server_options(server: Server) -> list[str]:
    """The CLI options that reach a server, the password from a file as an operator would."""
    return ["--url", server.url, "--bind-dn", server.bind_dn,
            "--password-file", str(server.password_file)]


def process_env() -> dict[str, str]:
    """The environment of an `exdir` child process: this tree importable, no EXDIR_* of
    the user's leaking in."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("EXDIR_")}
    env["PYTHONPATH"] = str(SAMPLES.parent)
    return env


def exdir_argv(*args: str) -> list[str]:
    """`exdir ARGS` as a child process: `python3 -m commands.main`, the CLI by its name in
    the tree (installed it is exdir_cli), with process_env() putting this tree first on
    PYTHONPATH, so the child runs the code under test whether or not exdir is installed
    (an installed exdir_cli may be another copy)."""
    return [sys.executable, "-m", "commands.main", *args]


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """`exdir ARGS` in-process: (exit code, stdout, stderr)."""
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@dataclass
class Lab:
    """A directory on one backend (`kind`: ldif, slapd or samba) and the test's folder.

    `reader` turns an open directory into the snapshot `state()` returns: plain
    tests.plans.snapshot unless a test compares less (what AD stamps on each write).
    """

    kind: str
    tmp: Path
    path: Path | None = None
    server: Server | None = None
    reader: Callable[[Directory], Snapshot] = snapshot

    def open(self) -> Directory:
        if self.path is not None:
            return open_ldif(str(self.path), warn=lambda m: None)
        assert self.server is not None
        return open_url(self.server.url, self.server.bind_dn, self.server.password)

    def options(self) -> list[str]:
        if self.path is not None:
            return ["--ldif", str(self.path)]
        assert self.server is not None
        return server_options(self.server)

    def cli(self, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
        """`exdir` with this lab's options, then ARGS."""
        return cli(capsys, *self.options(), *args)

    def state(self) -> Snapshot:
        """What a fresh reader sees: for an LDIF lab, what the file on disk holds."""
        with self.open() as d:
            return self.reader(d)

    def file_bytes(self) -> bytes | None:
        return self.path.read_bytes() if self.path is not None else None


def new_lab(kind: str, text: str, request: pytest.FixtureRequest, tmp: Path, *,
            name: str = "lab.ldif", reader: Callable[[Directory], Snapshot] = snapshot) -> Lab:
    """A lab of `kind` holding text: the file tmp/name, or a server from the session's
    slapd_factory / samba_factory fixture (stopped when the test ends)."""
    if kind == "ldif":
        path = tmp / name
        path.write_text(text, encoding="utf-8")
        return Lab(kind, tmp, path=path, reader=reader)
    factory = "samba_factory" if kind == "samba" else "slapd_factory"
    return Lab(kind, tmp, server=request.getfixturevalue(factory)(text), reader=reader)


def sample_lab(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
               reader: Callable[[Directory], Snapshot] = snapshot) -> Lab:
    """The body of a `lab` fixture parametrized by backend: samples/fabrikam.ldif on
    request.param, the test's folder its working directory (so that a default undo file
    lands there, never in the repository)."""
    monkeypatch.chdir(tmp_path)
    return new_lab(request.param, SAMPLE.read_text(encoding="utf-8"), request, tmp_path,
                   reader=reader)


def clear_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ENV:
        monkeypatch.delenv(name, raising=False)


def same_state(expected: Snapshot, actual: Snapshot) -> None:
    assert expected == actual, "\n".join(differences(expected, actual))


def undo_files(folder: Path) -> list[Path]:
    return sorted(folder.glob("*undo*"))
