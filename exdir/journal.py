"""The apply journal: one line per step, fsynced, so an interrupted run can be finished
or undone.  Created exclusively (O_CREAT|O_EXCL|O_NOFOLLOW): with predictable names in
a shared folder, a planted symlink or an old journal must never be appended to."""
from __future__ import annotations

import os

from .files import create_new_stream


class Journal:
    """One line per step, fsynced: what an interrupted run had done."""

    def __init__(self, path: str, undo_file: str, total: int) -> None:
        self.path = path
        self._fh = create_new_stream(path, "journal")
        self.note(f"# exdir journal: {total} steps; undo file {undo_file}")

    def note(self, line: str) -> None:
        self._fh.write(line + "\n")
        self._fh.flush()
        os.fsync(self._fh.fileno())

    def step(self, number: int, what: str, dn: str) -> None:
        self.note(f"{what} {number} {dn}")

    def close(self) -> None:
        self._fh.close()
