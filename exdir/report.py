"""--report: what an apply did, as JSON or XML (steps, outcome, timings, refusals)."""
from __future__ import annotations

import json
import os
import xml.etree.ElementTree as ET
from dataclasses import asdict
from typing import Any

from .apply import ApplyResult
from .errors import InputError


def as_dict(result: ApplyResult) -> dict[str, Any]:
    return {
        "outcome": result.outcome,
        "exit_code": result.exit_code,
        "message": result.message,
        "started": result.started,
        "undo_file": result.undo_file,
        "journal_file": result.journal_file,
        "resume_from": result.resume_from,
        "counts": result.counts,
        "timings": {k: round(v, 6) for k, v in result.timings.items()},
        "refusals": list(result.refusals),
        "steps": [asdict(s) | {"seconds": round(s.seconds, 6)} for s in result.steps],
    }


def as_xml(result: ApplyResult) -> str:
    data = as_dict(result)
    root = ET.Element("exdirApply", {k: str(data[k]) for k in
                                     ("outcome", "exit_code", "started") if data[k] is not None})
    for k in ("message", "undo_file", "journal_file", "resume_from"):
        if data[k] is not None:
            ET.SubElement(root, k).text = str(data[k])
    timings = ET.SubElement(root, "timings")
    for k, v in data["timings"].items():
        ET.SubElement(timings, "timing", {"phase": k, "seconds": str(v)})
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
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def write_report(path: str, result: ApplyResult) -> None:
    """Write the report; the extension chooses the format (.json or .xml)."""
    ext = os.path.splitext(path)[1].lower()
    if ext == ".json":
        text = json.dumps(as_dict(result), indent=2, ensure_ascii=False) + "\n"
    elif ext == ".xml":
        text = as_xml(result)
    else:
        raise InputError(f"--report {path}: the name must end in .json or .xml")
    with open(path, "w", encoding="utf-8", newline="\n") as fh:
        fh.write(text)


def check_report_path(path: str | None) -> None:
    """Refuse a bad --report name before anything runs."""
    if path and os.path.splitext(path)[1].lower() not in (".json", ".xml"):
        raise InputError(f"--report {path}: the name must end in .json or .xml")
