"""The apply journal: one line per step, group-committed, so an interrupted run can be
finished or undone.  Created exclusively (O_CREAT|O_EXCL|O_NOFOLLOW): with predictable
names in a shared folder, a planted symlink or an old journal must never be appended to.

Why a journal that lags the directory loses nothing
---------------------------------------------------
Step lines are written as the steps' replies come in but fsynced per batch (every
BATCH_STEPS lines or BATCH_SECONDS, whichever comes first), not per step: an fsync
costs milliseconds, a step on a server a fraction of one.  Notes (a failure, the
rollback, "complete") are fsynced at once.  A run killed between two fsyncs leaves a
journal that misses up to one batch of steps the directory has.  That is safe because
the journal is not the recovery path, the undo file is:

- the undo file, the inverse of every step the run will make, is written whole (and
  atomically) before the first write, so it covers every step the directory may hold,
  whether or not the journal got to say so;
- applying it (`exdir apply UNDO --apply`) classifies each of its steps against the
  directory first, as any plan: an inverse whose step never ran, or whose result is
  already there, is *done* and skipped.  Every undo step is therefore idempotent, and
  the undo file applied after a kill at any point restores the state before the run;
- re-running the original plan after a kill likewise skips the steps that landed.

The journal only tells the administrator how far the run got (and the tests when to
kill); a lagging count is a lower bound, never a lie about what was not done.
"""
from __future__ import annotations

import os
import time

from .files import create_new_stream

BATCH_STEPS = 256
BATCH_SECONDS = 0.05


class Journal:
    """One line per step, fsynced per batch; notes fsynced at once."""

    def __init__(self, path: str, undo_file: str, total: int) -> None:
        self.path = path
        self._fh = create_new_stream(path, "journal")
        self._unsynced = 0
        self._synced_at = time.monotonic()
        self.note(f"# exdir journal: {total} steps; undo file {undo_file}")

    def note(self, line: str) -> None:
        self._fh.write(line + "\n")
        self.sync()

    def step(self, number: int, what: str, dn: str) -> None:
        # group commit: see the module's docstring for why a lag of one batch is safe
        self._fh.write(f"{what} {number} {dn}\n")
        self._unsynced += 1
        if (self._unsynced >= BATCH_STEPS
                or time.monotonic() - self._synced_at >= BATCH_SECONDS):
            self.sync()

    def sync(self) -> None:
        """Write out and fsync every line so far."""
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self._unsynced = 0
        self._synced_at = time.monotonic()

    def close(self) -> None:
        if not self._fh.closed:
            if self._unsynced:
                self.sync()
            self._fh.close()
