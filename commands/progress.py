"""A progress bar on stderr for long work (the index build): rich's, shown only on a
terminal, only once the work has taken ~2 s, never with -q."""
from __future__ import annotations

import sys
import time
from typing import Any, Callable

DELAY = 2.0  # seconds of work before a bar appears


def bar(label: str, quiet: bool) -> tuple[Callable[[int, int], None] | None, Callable[[], None]]:
    """(report(done, total), finish()); report is None where no bar may be shown."""
    if quiet or not sys.stderr.isatty():
        return None, lambda: None
    started = time.monotonic()
    state: dict[str, Any] = {}

    def report(done: int, total: int) -> None:
        if "progress" not in state:
            if time.monotonic() - started < DELAY or done >= total:
                return
            from rich.console import Console
            from rich.progress import (BarColumn, DownloadColumn, Progress,
                                       TimeRemainingColumn)
            progress = Progress("[progress.description]{task.description}", BarColumn(),
                                DownloadColumn(), TimeRemainingColumn(),
                                console=Console(stderr=True), transient=True)
            progress.start()
            state["progress"] = progress
            state["task"] = progress.add_task(label, total=total)
        state["progress"].update(state["task"], completed=done)

    def finish() -> None:
        if "progress" in state:
            state.pop("progress").stop()

    return report, finish
