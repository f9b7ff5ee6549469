"""Read LDIF change records into a Plan: `exdir apply` of a dry run or an undo file.

The `ldif` package reads entry records only, so this reader is ours.  It takes
what exdir.ldif_out writes and what administrators write by hand or get from
ldifde: a `version: 1` line, comments (those directly before a record are its
reason), folded lines, base64 values, CRLF line ends, and change records add,
delete, modify (add/delete/replace blocks, the last `-` optional) and
modrdn/moddn.  A record without a changetype is an entry, read as an add.

Anything malformed is an InputError naming the line, before a single change is
made: a plan file is either read whole or refused.
"""
from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from itertools import chain
from pathlib import Path
from typing import Callable, Iterable, Iterator, NamedTuple, TypeVar, cast

from .errors import InputError
from .plan import (Add, Change, Delete, InvalidChange, Mod, Modify, ModOp, Plan, Rename, Value,
                   canonical_dn, canonical_rdn)

T = TypeVar("T")

_NAME_COLON = re.compile(r"([A-Za-z0-9][A-Za-z0-9.;-]*):")
_BASE64 = re.compile(r"[A-Za-z0-9+/]*={0,2}")


class _Line(NamedTuple):
    """One logical (unfolded) line and the 1-based number of its first physical line.

    (A NamedTuple, not a frozen dataclass: an export has hundreds of thousands.)"""

    number: int
    text: str

    @property
    def comment(self) -> bool:
        return self.text.startswith("#")


class _Field(NamedTuple):
    """`name: value` of one line; value is bytes where the line was base64."""

    number: int
    name: str
    value: str | bytes


@dataclass(frozen=True, slots=True)
class EntryRecord:
    """One record of an entry file: the number of its `dn:` line, the DN as written, and
    every other line as (line number, attribute name as written, value) in file order;
    a value is bytes where its line was base64."""

    number: int
    dn: str
    fields: tuple[tuple[int, str, Value], ...]


class _Reader:
    def __init__(self, source: str) -> None:
        self.source = source

    def error(self, line: int, message: str) -> InputError:
        return InputError(message, source=self.source, line=line)

    # -- lines --------------------------------------------------------------------

    def logical_lines(self, text: str) -> list[_Line | None]:
        """Unfolded lines; None stands for a blank line (a record separator)."""
        return list(self.iter_logical_lines(text))

    def iter_logical_lines(self, text: str | Iterable[str]) -> Iterator[_Line | None]:
        """logical_lines one at a time (an export is large: its lines are not all held).
        text is the whole file, or its lines one at a time without their "\\n" (the
        indexed store streams them from the file; a BOM already removed)."""
        if isinstance(text, str):
            if text.startswith("\ufeff"):
                text = text[1:]
            text = text.split("\n")
        # the line being unfolded: its number, its first piece, the pieces of a folded
        # line (None while it has one: most lines are not folded, and an export has
        # millions of them)
        number, first, pieces = 0, None, None
        for n, raw in enumerate(text, start=1):
            line = raw[:-1] if raw.endswith("\r") else raw
            if "\r" in line:
                raise self.error(n, "a carriage return inside a line (base64-encode such values)")
            if line[:1] == " ":
                if first is None:
                    raise self.error(n, "a continuation line (starting with a space) "
                                        "with no line before it to continue")
                if pieces is None:
                    pieces = [first]
                pieces.append(line[1:])
                continue
            if first is not None:
                yield _Line(number, first if pieces is None else "".join(pieces))
                first = pieces = None
            if line == "":
                yield None  # a blank line; the one after a final newline ends the last record
            else:
                number, first = n, line
        if first is not None:
            yield _Line(number, first if pieces is None else "".join(pieces))

    def field(self, line: _Line) -> _Field:
        """Split `name: value`, `name:: base64` or `name:< url` (refused)."""
        number, text = line
        m = _NAME_COLON.match(text)
        if m is None:
            raise self.error(number, f"expected 'attribute: value', found {_show(text)}")
        name = m.group(1)
        rest = text[m.end():]
        if rest.startswith(":"):
            encoded = rest[1:].strip(" ")
            try:
                if len(encoded) % 4 or not _BASE64.fullmatch(encoded):
                    raise ValueError(encoded)
                raw = base64.b64decode(encoded, validate=True)
            except (binascii.Error, ValueError):
                raise self.error(line.number, f"{name}: invalid base64 value") from None
            return _Field(line.number, name, raw)
        if rest.startswith("<"):
            raise self.error(line.number, f"{name}: values read from URLs (':<') are not supported; "
                                          "put the value in the file, base64-encoded if need be")
        return _Field(line.number, name, rest.lstrip(" "))

    def text_of(self, f: _Field) -> str:
        """A field that must be text (DN, changetype...): base64 must decode as UTF-8."""
        if isinstance(f.value, str):
            return f.value
        try:
            return f.value.decode("utf-8")
        except UnicodeDecodeError:
            raise self.error(f.number, f"{f.name}: the base64 value is not UTF-8 text") from None

    # -- records ------------------------------------------------------------------

    def records(self, lines: list[_Line | None]) -> list[tuple[str, list[_Line]]]:
        """(reason, lines from `dn:` on) of every record; version and header comments dropped."""
        blocks: list[list[_Line]] = [[]]
        for line in lines:
            if line is None:
                blocks.append([])  # blank lines in a row make empty blocks, skipped below
            else:
                blocks[-1].append(line)
        out: list[tuple[str, list[_Line]]] = []
        first = True
        for block in blocks:
            body = [ln for ln in block if not ln.comment]
            if first and body and _is_version(body[0].text):
                self.check_version(body[0])
                block = block[block.index(body[0]) + 1:]
                body = body[1:]
            if body:
                first = False
            if not body:
                continue  # comments only: a header, not a record
            start = block.index(body[0])
            reason_lines: list[str] = []
            for ln in reversed(block[:start]):
                reason_lines.insert(0, ln.text[1:].strip())
            out.append((" ".join(reason_lines), block[start:]))
        return out

    def check_version(self, line: _Line) -> None:
        value = line.text.split(":", 1)[1].strip()
        if value != "1":
            raise self.error(line.number, f"unsupported LDIF version {value!r} (only 'version: 1')")

    def record(self, reason: str, block: list[_Line]) -> Change:
        lines = [ln for ln in block if not ln.comment]
        head = self.field(lines[0])
        if head.name.lower() != "dn":
            if _is_version(lines[0].text):
                raise self.error(head.number, "'version:' must be the first line of the file")
            raise self.error(head.number, f"expected 'dn:' to start a record, found '{head.name}:'")
        dn = self.text_of(head)
        self.build(head.number, lambda: canonical_dn(dn))
        rest = lines[1:]
        for ln in rest:
            lowered = ln.text.lower()
            if lowered.startswith("dn:"):
                raise self.error(ln.number, "'dn:' inside a record: records must be separated "
                                            "by a blank line")
            if lowered.startswith("control:"):
                raise self.error(ln.number, "LDAP controls in change records are not supported")
        if not rest or _is_dash(rest[0]) or self.field(rest[0]).name.lower() != "changetype":
            return self.add(dn, reason, head.number, rest)
        ct = self.field(rest[0])
        kind = self.text_of(ct).strip().lower()
        body = rest[1:]
        if kind == "add":
            return self.add(dn, reason, head.number, body)
        if kind == "delete":
            if body:
                raise self.error(body[0].number, "a delete record has no lines after "
                                                 "'changetype: delete'")
            return Delete(dn, reason)
        if kind == "modify":
            return self.modify(dn, reason, ct.number, body)
        if kind in ("modrdn", "moddn"):
            return self.rename(dn, reason, ct.number, body)
        raise self.error(ct.number, f"unknown changetype {kind!r} "
                                    "(add, delete, modify, modrdn or moddn)")

    def add(self, dn: str, reason: str, number: int, body: list[_Line]) -> Add:
        attributes: list[tuple[str, tuple[Value, ...]]] = []
        for ln in body:
            if _is_dash(ln):
                raise self.error(ln.number, "'-' belongs in modify records, not in an add")
            f = self.field(ln)
            attributes.append((f.name, (f.value,)))
        if not attributes:
            raise self.error(number, "a record needs attributes (an entry to add) or a changetype")
        return self.build(number, lambda: Add(dn, tuple(attributes), reason))

    def modify(self, dn: str, reason: str, number: int, body: list[_Line]) -> Modify:
        mods: list[Mod] = []
        header: _Field | None = None
        values: list[Value] = []

        def close(header: _Field, values: list[Value]) -> None:
            op = cast(ModOp, header.name.lower())
            attribute = self.text_of(header).strip()
            mods.append(self.build(header.number, lambda: Mod(op, attribute, tuple(values))))

        for ln in body:
            if _is_dash(ln):
                if header is None:
                    raise self.error(ln.number, "'-' with no 'add:', 'delete:' or 'replace:' "
                                                "block to end")
                close(header, values)
                header, values = None, []
                continue
            f = self.field(ln)
            if header is None:
                op = f.name.lower()
                if op not in ("add", "delete", "replace"):
                    if op == "increment":
                        raise self.error(f.number, "'increment:' is not supported")
                    raise self.error(f.number, f"expected 'add:', 'delete:' or 'replace:' to start "
                                               f"a modify block, found '{f.name}:'")
                header = f
                continue
            attribute = self.text_of(header).strip()
            if f.name.lower() != attribute.lower():
                raise self.error(f.number, f"attribute '{f.name}' does not match the "
                                           f"'{header.name}: {attribute}' line above "
                                           "(is a '-' missing?)")
            values.append(f.value)
        if header is not None:
            close(header, values)
        return self.build(number, lambda: Modify(dn, tuple(mods), reason))

    def rename(self, dn: str, reason: str, number: int, body: list[_Line]) -> Rename:
        expected = ["newrdn", "deleteoldrdn", "newsuperior"]
        got: dict[str, _Field] = {}
        for ln in body:
            if _is_dash(ln):
                raise self.error(ln.number, "'-' belongs in modify records, not in a modrdn")
            f = self.field(ln)
            name = f.name.lower()
            if name not in expected or name in got:
                raise self.error(f.number, f"unexpected '{f.name}:' in a modrdn record "
                                           "(newrdn, deleteoldrdn, then optionally newsuperior)")
            if expected.index(name) != len(got):
                raise self.error(f.number, f"expected '{expected[len(got)]}:', found '{f.name}:'")
            got[name] = f
        if "newrdn" not in got:
            raise self.error(number, "a modrdn record needs 'newrdn:'")
        if "deleteoldrdn" not in got:
            raise self.error(got["newrdn"].number, "a modrdn record needs 'deleteoldrdn: 1'")
        flag = got["deleteoldrdn"]
        value = self.text_of(flag).strip()
        if value == "0":
            raise self.error(flag.number, "deleteoldrdn: 0 is not supported: exdir always removes "
                                          "the old RDN value (deleteoldrdn: 1)")
        if value != "1":
            raise self.error(flag.number, f"deleteoldrdn must be 1, found {value!r}")
        new_rdn = self.text_of(got["newrdn"])
        self.build(got["newrdn"].number, lambda: canonical_rdn(new_rdn))
        superior = got.get("newsuperior")
        new_superior = self.text_of(superior) if superior is not None else None
        if superior is not None:
            if not new_superior or not new_superior.strip():
                raise self.error(superior.number, "newsuperior is empty")
            self.build(superior.number, lambda: canonical_dn(new_superior or ""))
        return self.build(number, lambda: Rename(dn, new_rdn, new_superior, reason))

    def entry(self, block: list[_Line]) -> EntryRecord:
        """One record of an entry file (an export): `dn:`, then attribute lines only."""
        head = self.field(block[0])
        if head.name.lower() != "dn":
            if _is_version(block[0].text):
                raise self.error(head.number, "'version:' must be the first line of the file")
            raise self.error(head.number, f"expected 'dn:' to start a record, found '{head.name}:'")
        dn = self.text_of(head)
        if dn.startswith("@"):
            return EntryRecord(head.number, dn, ())  # ldb's own records: not LDAP attributes
        fields: list[tuple[int, str, Value]] = []
        match = _NAME_COLON.match
        for ln in block[1:]:
            # `name: value`, the common line, taken here as field() takes it; anything
            # else (a dash, base64, a URL, dn:, changetype:, no name) the full way below
            m = match(ln.text)
            if m is not None:
                rest = ln.text[m.end():]
                if rest[:1] not in (":", "<"):
                    name = m.group(1)
                    if name.lower() not in ("dn", "changetype"):
                        fields.append((ln.number, name, rest.lstrip(" ")))
                        continue
            if _is_dash(ln):
                raise self.error(ln.number, "'-' belongs in modify records (exdir apply), "
                                            "not in an export")
            f = self.field(ln)
            if f.name.lower() == "dn":
                raise self.error(ln.number, "'dn:' inside a record: records must be separated "
                                            "by a blank line")
            if f.name.lower() == "changetype":
                kind = self.text_of(f).strip()
                if kind.lower() != "add":  # ldifde writes `changetype: add`: an entry still
                    raise self.error(f.number, f"{_show(dn)}: changetype {_show(kind)} in an "
                                               "export (use `exdir apply` for change files)")
                continue
            fields.append((f.number, f.name, f.value))
        return EntryRecord(head.number, dn, tuple(fields))

    def build(self, number: int, make: Callable[[], T]) -> T:
        """Construct a change or block; its validation errors name `number`."""
        try:
            return make()
        except InvalidChange as exc:
            raise self.error(number, exc.message) from None


def _is_dash(line: _Line) -> bool:
    return line.text.rstrip(" ") == "-"


def _is_version(text: str) -> bool:
    return text.lower().startswith("version:")


def _show(text: str, limit: int = 40) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "...")


def parse(text: str, source: str = "<plan>") -> Plan:
    """The Plan an LDIF change file describes; InputError with the line number if malformed."""
    reader = _Reader(source)
    changes = [reader.record(reason, block)
               for reason, block in reader.records(reader.logical_lines(text))]
    return Plan(tuple(changes))


def entry_records(text: str | Iterable[str], source: str) -> Iterator[EntryRecord]:
    """The records of an entry file (an LDIF export), one at a time.

    The same reader as plans, so that `--ldif` and `exdir apply` agree on the grammar:
    `version: 1` only and only first, a BOM, comments, folding, strict base64, `:<`
    refused (nothing is ever fetched), errors naming the bad line itself.  Records of
    ldb's special DNs (`@...`) come with no fields.
    """
    reader = _Reader(source)
    block: list[_Line] = []
    first = True
    for line in chain(reader.iter_logical_lines(text), (None,)):
        if line is not None:
            if not line.comment:
                block.append(line)
            continue
        if first and block and _is_version(block[0].text):
            reader.check_version(block[0])
            del block[0]
        if block:
            first = False
            yield reader.entry(block)
            block = []


def decode(data: bytes, source: str) -> str:
    """LDIF bytes as text: UTF-8 (with or without BOM), or UTF-16 with BOM as ldifde -u
    writes; InputError naming the line of the first byte that is neither."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError:
            raise InputError("not valid UTF-16 text", source=source) from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise InputError("not UTF-8 text (base64-encode binary values)",
                         source=source, line=line) from None


def read_plan(path: str | Path) -> Plan:
    """Read a plan file: UTF-8 (with or without BOM), or UTF-16 with BOM as ldifde -u writes."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read {p}: {exc.strerror}") from None
    return parse(decode(data, str(p)), str(p))
