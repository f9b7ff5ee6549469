"""Write LDIF: a Plan as change records (dry runs, undo files) and entry records (a
saved LDIF directory, `exdir lab generate`), with one base64 rule for all of them.

The output is RFC 2849 that both OpenLDAP's ldapmodify and Windows ldifde read:
`version: 1` once; a `# reason` comment right before each record; `changetype:
modrdn` (never moddn) with `deleteoldrdn: 1`; `-` after every modify block
including the last; base64 (`attr:: `) for every value or DN that is not a plain
printable-ASCII SAFE-STRING and for all bytes; `\\n` line ends; lines folded at 76
characters.

Entry records (`entry_record`) follow the same value rule; a saved directory is
folded like a plan, the lab generator writes them unfolded (its lines are read by
tools and tests line by line, and its values never need a fold to stay intact).

ldap3's LDIF producer (ldap3.protocol.rfc2849) was considered and not used: it
writes `changetype: moddn` for renames without a new superior, reorders add
records (objectClass first) and folds without caring where a line ends.
"""
from __future__ import annotations

import base64
from collections.abc import Iterable, Iterator, Sequence

from .plan import Add, Change, Modify, Plan, Rename, Value, one_line

WIDTH = 76
"""Longest physical line written (comments with a longer word excepted)."""


_LONG_SPACES = " " * (WIDTH // 2)
"""A run of spaces this long may leave fold no break that keeps a character besides
spaces on each side within WIDTH: such values go base64."""


def _safe(text: str) -> bool:
    """True where a non-empty text may be written as is: printable ASCII, not starting
    with space, ':' or '<', not ending with space (RFC 2849 SAFE-STRING, and stricter:
    no control characters at all, DEL included, so no tool can mangle it; no run of
    spaces half a line long, which no fold could keep off a line's end)."""
    return (text[0] not in " :<" and text[-1] != " " and _LONG_SPACES not in text
            and text.isascii() and text.isprintable())  # for ASCII: exactly " " to "~"


def value_line(name: str, value: Value) -> str:
    """`name: value`, or `name:: base64` where the value is bytes or not safe as text.

    An empty value is written `name:` (ldapmodify rejects an empty `name::`).
    """
    if not value:
        return f"{name}:"
    if isinstance(value, str) and _safe(value):
        return f"{name}: {value}"
    raw = value if isinstance(value, bytes) else value.encode("utf-8")
    return f"{name}:: {base64.b64encode(raw).decode('ascii')}"


def fold(line: str, width: int = WIDTH) -> list[str]:
    """Split a logical line into physical lines of at most `width` characters.

    Continuation lines start with one space.  A break is moved left rather than
    leave a physical line ending in a space, which editors like to strip: each
    piece ends in a character that is not a space, so a continuation line is never
    only spaces (an editor would make it an empty line, which ends the record).
    Where a run of spaces leaves no such break within `width`, the break moves
    right, past the run: the line is longer, never wrong (value_line base64s the
    values that would need it, so exdir's own output keeps the width).
    """
    out: list[str] = []
    start, room = 0, width
    while len(line) - start > room:
        cut = start + room
        while cut > start and line[cut - 1] == " ":
            cut -= 1
        if cut == start:  # spaces only up to the width: end the piece after the run
            cut = start + room
            while cut < len(line) and line[cut - 1] == " ":
                cut += 1
            if cut >= len(line):
                break
        out.append(line[start:cut] if not out else " " + line[start:cut])
        start, room = cut, width - 1
    out.append(line[start:] if not out else " " + line[start:])
    return out


def comment_lines(text: str, width: int = WIDTH) -> list[str]:
    """`# text` wrapped at spaces into lines of at most `width` characters.

    Comments are wrapped, never folded (not every reader continues a comment);
    a reader joins the lines with one space.  A word longer than a line stays whole.
    """
    lines: list[str] = []
    current = ""
    for word in one_line(text).split():
        candidate = f"{current} {word}" if current else word
        if current and len(candidate) + 2 > width:
            lines.append("# " + current)
            current = word
        else:
            current = candidate
    if current:
        lines.append("# " + current)
    return lines


def _record(change: Change) -> list[str]:
    """The logical (unfolded) lines of one change record."""
    lines = [value_line("dn", change.dn)]
    if isinstance(change, Modify):
        lines.append("changetype: modify")
        for mod in change.mods:
            lines.append(f"{mod.op}: {mod.attribute}")
            lines.extend(value_line(mod.attribute, v) for v in mod.values)
            lines.append("-")
    elif isinstance(change, Rename):
        lines.append("changetype: modrdn")
        lines.append(value_line("newrdn", change.new_rdn))
        lines.append("deleteoldrdn: 1")
        if change.new_superior is not None:
            lines.append(value_line("newsuperior", change.new_superior))
    elif isinstance(change, Add):
        lines.append("changetype: add")
        for name, values in change.attributes:
            lines.extend(value_line(name, v) for v in values)
    else:  # a Delete: Plan admits only the four kinds
        lines.append("changetype: delete")
    return lines


def render_record(change: Change) -> str:
    """One change record, its reason comment first, ending in a newline."""
    lines = comment_lines(change.reason)
    for line in _record(change):
        if len(line) <= WIDTH:
            lines.append(line)  # most lines: nothing to fold
        else:
            lines.extend(fold(line))
    return "\n".join(lines) + "\n"


def render(plan: Plan | Iterable[Change], header: Sequence[str] = ()) -> str:
    """The plan as an LDIF file: `version: 1`, optional header comments, then the records.

    Header lines (e.g. what an undo file undoes) are comments set apart by a
    blank line, so a reader does not take them for the first record's reason.
    """
    return "".join(render_parts(plan, header))


def render_parts(plan: Plan | Iterable[Change], header: Sequence[str] = ()) -> Iterator[str]:
    """render's text in pieces, one record at a time: a dry run writes a plan of
    100,000 steps as it goes instead of holding its 80 MB of LDIF (and the list of
    records joined into it) at once."""
    yield "version: 1\n"
    header_lines = [line for h in header for line in comment_lines(h)]
    if header_lines:
        yield "\n" + "\n".join(header_lines) + "\n"
    for change in plan:
        yield "\n" + render_record(change)


def entry_record(dn: str, attributes: Iterable[tuple[str, Iterable[Value]]],
                 width: int | None = WIDTH) -> str:
    """An LDIF entry (content) record: the `dn:` line, one line per value in the order
    given, then the blank line that ends it.  value_line decides what is base64.
    Lines are folded at `width`, or not at all where width is None."""
    lines = [value_line("dn", dn)]
    lines += [value_line(name, v) for name, values in attributes for v in values]
    if width is not None:
        lines = [piece for line in lines for piece in fold(line, width)]
    return "\n".join(lines) + "\n\n"
