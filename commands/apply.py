"""`exdir apply PLAN.ldif`: show or apply a reviewed plan file through the one apply path."""
from __future__ import annotations

import sys
import time
from typing import Any, Callable, Optional, Sequence

import typer

from exdir import operations
from exdir.apply import ApplyResult, run
from exdir.backends.base import Directory
from exdir.gates import Safety
from exdir.move import MoveRecord
from exdir.plan import Plan
from exdir.ldif_in import read_plan
from exdir.ldif_out import render, render_parts
from exdir.replication import other_dc_warning, summary_lines
from exdir.report import ReportNotWritten, check_report_path, write_report
from exdir.text import printable

from . import options as o
from .context import Options, options


class ProgressBar:
    """A rich bar on stderr for an apply that takes more than SHOW_AFTER seconds: steps
    done / total, rate, time left.  Drawn by hand (no refresh thread: a thread would
    take the SIGINT/SIGTERM the apply holds while it writes), at most 10 times a second."""

    SHOW_AFTER = 2.0

    def __init__(self) -> None:
        self._started: float | None = None
        self._drawn = 0.0
        self._bar: Any = None  # a rich.progress.Progress once shown
        self._task: Any = None

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if self._started is None:
            self._started = now
        if self._bar is None:
            if now - self._started < self.SHOW_AFTER or done >= total:
                return
            try:
                from rich.console import Console
                from rich.progress import (BarColumn, MofNCompleteColumn, Progress,
                                           TaskProgressColumn, TextColumn, TimeRemainingColumn)
            except ImportError:  # rich comes with typer; without it, no bar
                self._started = float("inf")
                return
            self._bar = Progress(TextColumn("applying"), BarColumn(), MofNCompleteColumn(),
                                 TaskProgressColumn(), TextColumn("{task.fields[rate]}"),
                                 TimeRemainingColumn(), console=Console(file=sys.stderr),
                                 auto_refresh=False, transient=False)
            self._bar.start()
            self._task = self._bar.add_task("apply", total=total, rate="")
        if now - self._drawn >= 0.1 or done >= total:
            rate = done / (now - self._started) if now > self._started else 0.0
            self._bar.update(self._task, completed=done, rate=f"{rate:,.0f} steps/s")
            self._bar.refresh()
            self._drawn = now

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None


def progress_printer(opts: Options) -> ProgressBar | None:
    """The progress bar on stderr when it is a terminal; nothing with -q."""
    if opts.quiet or not sys.stderr.isatty():
        return None
    return ProgressBar()


def finish(opts: Options, result: ApplyResult, report: str | None,
           moves: Sequence[MoveRecord] | None = None) -> None:
    """Messages on stderr, the report file, the exit code of the contract.

    A report that cannot be written comes after a run that may have written: its
    line still says what the run did and names the undo file, and the exit code is
    the run's own (or 2, for the report, where the run succeeded)."""
    missing: ReportNotWritten | None = None
    if report:
        try:
            write_report(report, result, moves)
        except ReportNotWritten as exc:
            missing = exc
    for refusal in result.refusals:
        opts.warn(refusal)
    message = result.message
    if missing is not None:
        message = f"{missing.message}; {message}" if message else missing.message
    if message:
        print(f"exdir: {printable(message)}", file=sys.stderr)
    code = result.exit_code or (missing.exit_code if missing is not None else 0)
    if code:
        raise typer.Exit(code)


def blocked_note(gates) -> None:  # type: ignore[no-untyped-def]
    """What a dry run says about the safety gates its plan fails: always, even with -q,
    because it is the one thing the reader of the plan must know before --apply."""
    for gate in gates:
        print(f"exdir: this plan cannot be applied here: {gate.message}", file=sys.stderr)


def verify_dcs(opts: Options, directory: Directory, result: ApplyResult,
               wait: float | None) -> None:
    """--verify-dcs: after a successful apply, which DCs show the plan (into the report
    and, where some do not yet, one line per DC on stderr; the exit code stays the
    apply's)."""
    if wait is None or result.exit_code or result.plan is None or result.outcome != "applied":
        return
    report = operations.replication_check(
        directory, result.plan, lambda d: opts.open_dc(d.url),
        base_url=opts.url if not opts.ldif else None, wait=wait)
    result.replication = report.as_dict()
    lines = summary_lines(report)
    if report.converged:
        opts.warn(f"every domain controller shows the changes ({len(report.dcs)})")
    else:
        for line in lines:
            if not line.startswith(" "):
                print(f"exdir: replication: {printable(line)}", file=sys.stderr)


def execute(opts: Options, directory: Directory, planned: Plan | operations.Planned, *,
            do_apply: bool, undo_file: str | None, report: str | None,
            moves: Sequence[MoveRecord] | None = None, safety: Safety = Safety(),
            verify: float | None = None) -> None:
    """What every write command ends with: the plan as LDIF (dry run), or the apply.

    The LDIF printed is the plan applied: the same steps, one renderer.  A dry run
    streams them through a ledger (operations.preview: the plan is never held whole);
    one with --report checks every step like an apply, on the whole plan.  The safety
    gates are the library's (exdir.gates), met whatever made the plan."""
    if isinstance(planned, Plan):
        planned = operations.Planned(planned)
    if not do_apply and not report:
        with operations.preview(directory, planned, safety) as shown:
            for part in shown.ledger.render_parts():
                sys.stdout.write(part)
            opts.warn(f"{len(shown.ledger)} change(s) planned; nothing written "
                      "(add --apply to apply)")
            blocked_note(shown.blocked)
        return
    plan = planned.plan
    if not do_apply:
        for part in render_parts(plan):
            sys.stdout.write(part)
        opts.warn(f"{len(plan)} change(s) planned; nothing written (add --apply to apply)")
        dry = run(directory, plan, apply=False, safety=safety)
        blocked_note(dry.blocked)
        assert report is not None
        write_report(report, dry, moves)
        return
    bar = progress_printer(opts)
    try:
        result = run(directory, plan, apply=True, undo_file=undo_file, progress=bar,
                     safety=safety)
    finally:
        if bar is not None:
            bar.close()
    verify_dcs(opts, directory, result, verify)
    finish(opts, result, report, moves)


def plan_and_execute(opts: Options, make: Callable[[Directory], operations.Planned], *,
                     do_apply: bool, undo_file: str | None, report: str | None,
                     verify: float | None = None, safety: Safety = Safety()) -> None:
    """What a write command does: the report path checked, the directory opened (the
    LDIF file locked for --apply), one library call that plans, its notes, execute."""
    check_report_path(report, undo_file)
    with opts.open(write=do_apply) as directory:
        planned = make(directory)
        for note in planned.notes:
            opts.warn(note)
        execute(opts, directory, planned, do_apply=do_apply, undo_file=undo_file,
                report=report, safety=safety, verify=verify)


def apply_cmd(
    ctx: typer.Context,
    plan_file: str = typer.Argument(..., metavar="PLAN.ldif",
                                    help="A plan: an earlier dry run, or an undo file."),
    do_apply: bool = typer.Option(False, "--apply", help="Carry the plan out (default: show it)."),
    undo_file: Optional[str] = typer.Option(
        None, "--undo-file", metavar="PATH",
        help="A new file for the undo (never replaced; default exdir-undo-<UTC time>.ldif here)."),
    report: Optional[str] = typer.Option(None, "--report", metavar="PATH",
                                         help="Write what happened to the new file PATH (.json or .xml)."),
    lab: bool = typer.Option(False, "--lab",
                             help="This is a lab: a plan that renames the organisation or an "
                                  "administrative group may apply (one DC only)."),
    adc_stopped: bool = typer.Option(False, "--adc-stopped",
                                     help="The ADC is stopped: allow moves it could undo."),
    verify: bool = o.VERIFY_DCS, wait: float = o.VERIFY_WAIT,
) -> None:
    """Show (default) or apply a reviewed plan file exactly: an earlier dry run
    or an undo file. Every step is checked against the directory first; a step
    already done is skipped (and left out of the new undo file), so an
    interrupted run can be run again. The plan meets the same safety gates as
    the command that made it: a rename needs --lab and one domain controller, a
    move the ADC could undo needs --adc-stopped.

    \b
    Example: exdir --ldif lab.ldif move jsmith --to "EX2/First Storage Group/Mailbox Store (EX2)" > plan.ldif && exdir --ldif lab.ldif apply plan.ldif --apply
    """
    opts = options(ctx)
    check_report_path(report, undo_file)
    plan = read_plan(plan_file)
    if not opts.ldif and not opts.url:
        if do_apply:
            opts.open()  # says which option is missing
        for part in render_parts(plan):
            sys.stdout.write(part)
        return
    bar = progress_printer(opts) if do_apply else None
    try:
        with opts.open(write=do_apply) as directory:
            warning = other_dc_warning(plan_file, directory)
            if warning:
                print(f"exdir: {printable(warning)}", file=sys.stderr)
            result = run(directory, plan, apply=do_apply, undo_file=undo_file, progress=bar,
                         safety=Safety(lab=lab, adc_stopped=adc_stopped))
            verify_dcs(opts, directory, result, o.verify(verify, wait))
    finally:
        if bar is not None:
            bar.close()
    if not do_apply:
        sys.stdout.write(render(result.plan or plan))
        counts = result.checked
        opts.warn(f"{len(result.steps)} step(s): {counts.get('pending', 0)} to do, "
                  f"{counts.get('done', 0)} already done, {counts.get('conflict', 0)} "
                  "conflicting" + ("" if result.refusals or result.blocked
                                   else "; add --apply to apply"))
        blocked_note(result.blocked)
    finish(opts, result, report)
