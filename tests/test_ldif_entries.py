"""The entry reader's fast path (`name: value` lines taken inline by
exdir.ldif_in._Reader.entry, folded lines joined only when folded) reads every export as
the general path does: the same records, or the same error on the same line.

The reference below is the reader as it was before the fast path (every line through
`_Reader.field`, every logical line joined from a list): hypothesis feeds both the
same files built from the lines that matter to the grammar.
"""
from __future__ import annotations

import itertools
from typing import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exdir.errors import InputError
from exdir.ldif_in import EntryRecord, _is_dash, _Line, _Reader, entry_records


def _reference_lines(reader: _Reader, text: str) -> Iterator[_Line | None]:
    unfolding: tuple[int, list[str]] | None = None
    for n, raw in enumerate(text.split("\n"), start=1):
        line = raw[:-1] if raw.endswith("\r") else raw
        if "\r" in line:
            raise reader.error(n, "a carriage return inside a line (base64-encode such values)")
        if line.startswith(" "):
            if unfolding is None:
                raise reader.error(n, "a continuation line (starting with a space) "
                                      "with no line before it to continue")
            unfolding[1].append(line[1:])
            continue
        if unfolding is not None:
            yield _Line(unfolding[0], "".join(unfolding[1]))
            unfolding = None
        if line == "":
            yield None
        else:
            unfolding = (n, [line])
    if unfolding is not None:
        yield _Line(unfolding[0], "".join(unfolding[1]))


def _reference_entry(reader: _Reader, block: list[_Line]) -> EntryRecord:
    head = reader.field(block[0])
    if head.name.lower() != "dn":
        raise reader.error(head.number, "not dn")
    dn = reader.text_of(head)
    if dn.startswith("@"):
        return EntryRecord(head.number, dn, ())
    fields = []
    for ln in block[1:]:
        if _is_dash(ln):
            raise reader.error(ln.number, "dash")
        f = reader.field(ln)
        if f.name.lower() == "dn":
            raise reader.error(ln.number, "dn inside")
        if f.name.lower() == "changetype":
            if reader.text_of(f).strip().lower() != "add":
                raise reader.error(f.number, "changetype")
            continue
        fields.append((f.number, f.name, f.value))
    return EntryRecord(head.number, dn, tuple(fields))


def _reference(text: str) -> list[EntryRecord]:
    reader = _Reader("f")
    out, block = [], []
    for line in itertools.chain(_reference_lines(reader, text), [None]):  # streamed
        if line is not None:
            if not line.comment:
                block.append(line)
            continue
        if block:
            out.append(_reference_entry(reader, block))
            block = []
    return out


def _outcome(read) -> tuple[str, object]:  # type: ignore[no-untyped-def]
    try:
        return "ok", read()
    except InputError as exc:
        return "error", exc.line  # the same line refused (the words may differ here)


LINES = st.sampled_from([
    "cn: a", "cn:a", "cn:  two spaces", "cn: trailing  ", "cn:", "cn: ", "CN: Upper",
    "sn;lang-en: x", "1.2.3: oid", "cn:: YQ==", "cn:: !!", "cn::YWI=", "cn:< file:///x",
    "dn: CN=b,DC=x", "DN: CN=c,DC=x", "changetype: add", "changeType: ADD ",
    "changetype: modify", "-", "- ", "# comment", " folded", "  two", "no colon",
    ":empty name", "-cn: x", "cn: a\r", "cn: a\rb", "cn: é", "x-y.z: 1", "",
])


@settings(max_examples=3000, deadline=None)
@given(st.lists(LINES, max_size=12))
def test_the_fast_path_reads_as_the_general_path(lines: list[str]) -> None:
    text = "\n".join(["dn: CN=a,DC=x", *lines, "", "dn: CN=z,DC=x", "cn: z", ""])
    fast = _outcome(lambda: list(entry_records(text, "f")))
    reference = _outcome(lambda: _reference(text))
    assert fast == reference, text


@pytest.mark.parametrize("text", [
    "dn: CN=a,DC=x\ncn: one\n two\n three\nsn: s\n",
    "dn: CN=a,\n DC=x\ncn:a\n",
    "dn: CN=a,DC=x\ncn: a\ndn: CN=b,DC=x\n",
])
def test_folded_and_refused_lines(text: str) -> None:
    assert _outcome(lambda: list(entry_records(text, "f"))) == _outcome(lambda: _reference(text))
