"""--report: what an apply did, as JSON or XML (steps, outcome, timings, refusals)."""
from __future__ import annotations

import json
import os
import xml.etree.ElementTree as ET
from dataclasses import asdict
from typing import Any, Sequence

from .apply import ApplyResult
from .errors import ExdirError, FileWriteError, InputError
from .files import check_new_path, shown, write_new
from .move import MoveRecord


def _mailboxes(result: ApplyResult, moves: Sequence[MoveRecord]) -> list[dict[str, Any]]:
    """One record per mailbox of a move, with the outcome of its step."""
    out = []
    for m in moves:
        step = result.steps[m.step - 1] if m.step and m.step <= len(result.steps) else None
        outcome = "skipped (already there)" if not m.planned else (
            step.outcome if step else "not run")
        out.append({"identity": m.identity, "dn": m.dn, "source": m.source, "target": m.target,
                    "outcome": outcome, "seconds": round(step.seconds, 6) if step else 0.0,
                    "note": m.note, "before": dict(m.before), "written": dict(m.written)})
    return out


def as_dict(result: ApplyResult, moves: Sequence[MoveRecord] | None = None) -> dict[str, Any]:
    data = _as_dict(result)
    if result.replication is not None:
        data["replication"] = result.replication
    if moves is not None:
        data["mailboxes"] = _mailboxes(result, moves)
    return data


def _as_dict(result: ApplyResult) -> dict[str, Any]:
    return {
        "outcome": result.outcome,
        "exit_code": result.exit_code,
        "message": result.message,
        "started": result.started,
        "domain_controller": result.written_to,
        "undo_file": result.undo_file,
        "journal_file": result.journal_file,
        "resume_from": result.resume_from,
        "counts": result.counts,  # by outcome: applied, skipped, failed, undone
        "checked": result.checked,  # by what the check before the writes found
        "timings": {k: round(v, 6) for k, v in result.timings.items()},
        "refusals": list(result.refusals),
        "steps": [asdict(s) | {"seconds": round(s.seconds, 6)} for s in result.steps],
    }


def as_xml(result: ApplyResult, moves: Sequence[MoveRecord] | None = None) -> str:
    data = as_dict(result, moves)
    root = ET.Element("exdirApply", {k: str(data[k]) for k in
                                     ("outcome", "exit_code", "started") if data[k] is not None})
    for k in ("message", "domain_controller", "undo_file", "journal_file", "resume_from"):
        if data[k] is not None:
            ET.SubElement(root, k).text = str(data[k])
    timings = ET.SubElement(root, "timings")
    for k, v in data["timings"].items():
        ET.SubElement(timings, "timing", {"phase": k, "seconds": str(v)})
    counts = ET.SubElement(root, "counts")
    for k, v in data["counts"].items():
        ET.SubElement(counts, "count", {"outcome": k, "steps": str(v)})
    refusals = ET.SubElement(root, "refusals")
    for r in data["refusals"]:
        ET.SubElement(refusals, "refusal").text = r
    steps = ET.SubElement(root, "steps")
    for s in data["steps"]:
        el = ET.SubElement(steps, "step", {k: str(s[k]) for k in
                                           ("number", "kind", "status", "outcome", "seconds")})
        ET.SubElement(el, "dn").text = s["dn"]
        if s["reason"]:
            ET.SubElement(el, "reason").text = s["reason"]
        if s["detail"]:
            ET.SubElement(el, "detail").text = s["detail"]
    if "replication" in data:  # --verify-dcs: one element per DC
        repl = ET.SubElement(root, "replication",
                             {"converged": str(data["replication"].get("converged"))})
        for d in data["replication"].get("domain_controllers", []):
            el = ET.SubElement(repl, "domainController",
                               {k: str(d[k]) for k in ("name", "url", "converged", "steps",
                                                       "shown")})
            if d.get("error"):
                ET.SubElement(el, "error").text = str(d["error"])
            for lag in d.get("lagging", []):
                ET.SubElement(el, "lagging", {"step": str(lag["step"])}).text = lag["dn"]
    if "mailboxes" in data:
        # like Exchange 2003's move report: one element per mailbox, source, target,
        # outcome and time
        report = ET.SubElement(root, "moveMailboxReport", {"started": data["started"]})
        for m in data["mailboxes"]:
            el = ET.SubElement(report, "mailbox", {k: str(m[k]) for k in
                                                   ("identity", "source", "target", "outcome",
                                                    "seconds")})
            ET.SubElement(el, "dn").text = m["dn"]
            if m["note"]:
                ET.SubElement(el, "note").text = m["note"]
            for section in ("before", "written"):
                part = ET.SubElement(el, section)
                for attr, value in m[section].items():
                    if value is not None:
                        ET.SubElement(part, "value", {"attribute": attr}).text = value
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


class ReportNotWritten(FileWriteError):
    """The report could not be written (its name taken meanwhile, disk full...).

    Raised after the run it reports on, which may have written: the caller must still
    say what the run did and name its undo file (`result.undo_file`); this is never
    an internal error.  `path` is the report's name."""


def write_report(path: str, result: ApplyResult,
                 moves: Sequence[MoveRecord] | None = None) -> None:
    """Write the report, created exclusively (exdir.files.write_new: an existing name,
    a symlink or a device is never replaced); the extension chooses the format (.json
    or .xml).  Any failure is ReportNotWritten, one plain line."""
    ext = os.path.splitext(path)[1].lower()
    if ext == ".json":
        text = json.dumps(as_dict(result, moves), indent=2, ensure_ascii=False) + "\n"
    elif ext == ".xml":
        text = as_xml(result, moves)
    else:
        raise InputError(f"--report {shown(path)}: the name must end in .json or .xml")
    try:
        write_new(path, text.encode("utf-8"), "report")
    except ExdirError as exc:
        raise ReportNotWritten(f"the report was not written: {exc.message}",
                               path=path) from None
    except OSError as exc:  # pragma: no cover - write_new turns these into ExdirErrors
        raise ReportNotWritten(f"the report {shown(path)} was not written: "
                               f"{exc.strerror or exc}", path=path) from None


def check_report_path(path: str | None, undo_file: str | None = None) -> None:
    """Refuse a bad --report name before anything runs (exit 2): not .json/.xml, an
    existing file (of any kind), a missing folder, or the name the undo file (or its
    journal) will take: the report would be refused only after the writes."""
    if path is None:
        return
    if undo_file is not None and os.path.abspath(path) in (
            os.path.abspath(undo_file), os.path.abspath(undo_file + ".journal")):
        raise InputError(f"--report {shown(path)}: the undo file takes that name; give "
                         "another")
    if os.path.splitext(path)[1].lower() not in (".json", ".xml"):
        raise InputError(f"--report {shown(path)}: the name must end in .json or .xml")
    check_new_path(path, "--report")
