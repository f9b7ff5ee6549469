"""Global options, opening the directory, printing (errors: commands.main's boundary)."""
from __future__ import annotations

import gc
import json
import os
import sys
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

import typer

from exdir.backends.base import Directory
from exdir.backends.index import THRESHOLD, choose_store, default_index_dir, open_indexed
from exdir.backends.ldap import open_url
from exdir.backends.memory import open_ldif
from exdir.credentials import read_password
from exdir.errors import InputError
from exdir.text import printable, printable_json


FREEZE_AFTER_LOAD = False  # set by the console script (commands.main.run), not in tests


@dataclass
class Options:
    ldif: str | None = None
    url: str | None = None
    bind_dn: str | None = None
    password_file: str | None = None
    starttls: bool = False
    ca_file: str | None = None
    insecure: bool = False
    auth: str = "simple"
    sasl_host: str | None = None  # --auth kerberos: the host of ldap/HOST
    json: bool = False
    quiet: bool = False
    debug: bool = False
    wait_lock: float = 5.0
    store: str = "auto"
    index_dir: str | None = None
    password_variable: str = "EXDIR_PASSWORD"  # EXDIR_FROM_PASSWORD for a migration's source
    _said_auto: bool = False

    def warn(self, message: str) -> None:
        """A message for the user on stderr (silenced by -q)."""
        if not self.quiet:
            print(f"exdir: {printable(message)}", file=sys.stderr)

    def open(self, write: bool = False) -> Directory:
        """The directory the options name: an LDIF file, or a server URL.

        An LDIF file is locked until the directory is closed: shared for a command
        that only reads (or plans), exclusive when it will write (write=True, a
        command's --apply), so two runs never interleave their read-plan-write."""
        if self.ldif and self.url:
            raise InputError("give --ldif or --url, not both")
        if self.ldif:
            if choose_store(self.ldif, self.store) == "index":
                return self._open_indexed(self.ldif, write)
            directory = open_ldif(self.ldif, warn=self.warn, lock=write,
                                  wait_lock=self.wait_lock)
            if FREEZE_AFTER_LOAD:
                # the loaded directory lives until the process ends: keep the garbage
                # collector from walking it again and again while planning
                gc.freeze()
            return directory
        if self.url:
            password = read_password(self.password_file, variable=self.password_variable)
            return open_url(self.url, self.bind_dn, password, starttls=self.starttls,
                            ca_file=self.ca_file, insecure=self.insecure, auth=self.auth,
                            sasl_host=self.sasl_host)
        raise InputError("no directory: give --ldif PATH or --url URL "
                         "(or set EXDIR_LDIF / EXDIR_URL)")

    def open_dc(self, url: str) -> Directory:
        """Another domain controller, with the same credentials and TLS options as
        --url; with --ldif, the LDIF file url names (every --dc a file), or with no url
        the --ldif file itself (an export: every DC in it reads the same)."""
        if self.ldif:
            return open_ldif(url or self.ldif, warn=lambda _m: None, lock=None)
        password = read_password(self.password_file)
        return open_url(url, self.bind_dn, password, starttls=self.starttls,
                        ca_file=self.ca_file, insecure=self.insecure, auth=self.auth,
                        timeout=5)  # each DC by its own name: no --sasl-host

    def _open_indexed(self, path: str, write: bool) -> Directory:
        """The LDIF file through its index (exdir.backends.index), built if need be
        with a progress bar; auto says once why."""
        folder = self.index_dir or default_index_dir()
        if self.store == "auto" and not self._said_auto:
            self._said_auto = True
            self.warn(f"{path} is over {THRESHOLD >> 20} MB: using its index in {folder} "
                      "(--store memory holds it in memory instead)")
        from .progress import bar

        report, finish = bar("indexing " + os.path.basename(path), self.quiet)
        try:
            return open_indexed(path, warn=self.warn, lock=write, wait_lock=self.wait_lock,
                                index_dir=folder, note=self.warn, progress=report)
        finally:
            finish()


def options(ctx: typer.Context) -> Options:
    obj = ctx.find_root().obj
    if not isinstance(obj, Options):  # pragma: no cover - the callback always sets it
        raise InputError("internal: options missing")
    return obj


def print_json(data: Any) -> None:
    """JSON on stdout: non-ASCII as is where stdout is UTF-8, as \\u escapes otherwise
    (valid JSON either way); DEL, C1 and other controls always escaped (printable_json)."""
    encoding = (getattr(sys.stdout, "encoding", None) or "utf-8").lower().replace("-", "")
    text = json.dumps(data, indent=2, ensure_ascii=not encoding.startswith("utf"), default=str)
    sys.stdout.write(printable_json(text) + "\n")


def print_table(headers: Sequence[str], rows: Iterable[Sequence[object]], *,
                title: str | None = None) -> None:
    """A plain aligned text table on stdout (scripts use --json instead); directory
    values shown with control characters escaped, so a hostile value cannot drive the
    terminal or break the columns."""
    text_rows = [["" if c is None else printable(str(c)) for c in row] for row in rows]
    if title:
        print(printable(title))
    if not text_rows:
        print("  (none)")
        return
    widths = [max(len(h), *(len(r[i]) for r in text_rows)) for i, h in enumerate(headers)]
    print("  ".join(h.ljust(w) for h, w in zip(headers, widths)).rstrip())
    print("  ".join("-" * w for w in widths))
    for r in text_rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())


def env(name: str) -> str | None:
    return os.environ.get(name) or None
