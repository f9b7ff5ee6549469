"""Text safe to show on a terminal: directory values and user input, escaped.

A bounce address, an export or a command-line argument can carry control
characters: `ESC ] 0 ; … BEL` sets a terminal's title, other sequences move the
cursor, clear the screen or hide what follows, NUL and newline forge lines.  Every
place exdir echoes such text for a person (tables, messages) goes through
printable(); JSON goes through printable_json().  LDIF needs neither: ldif_out
writes every value with a control character as base64.
"""
from __future__ import annotations

import codecs
import re

from .errors import InputError

# C0 controls, DEL, C1 controls, lone surrogates (from undecodable bytes), the line
# and paragraph separators, and the bidirectional embeddings, overrides and
# isolates that make a terminal show text in another order than it is.
_C0 = "\x00-\x1f"
_OTHERS = "\x7f-\x9f\ud800-\udfff\u2028\u2029\u202a-\u202e\u2066-\u2069"
_UNSAFE = _C0 + _OTHERS
_NEEDS_WORK = re.compile(f"[{_UNSAFE}\\\\]")
_ESCAPED = re.compile(f"[{_UNSAFE}]")
# a backslash is doubled where the reader could take it for the start of an escape:
# before another backslash, `xNN`, `uNNNN`, or a character that is itself escaped
# (so `DOMAIN\\user` stays as typed, and `\\x1b` typed is told from ESC shown)
_AMBIGUOUS_BACKSLASH = re.compile(
    f"\\\\(?=[\\\\{_UNSAFE}]|x[0-9a-fA-F]{{2}}|u[0-9a-fA-F]{{4}})")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group(0))
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: str) -> str:
    """text with every unsafe character shown as `\\xNN` (below U+0100) or `\\uNNNN`.

    The output is unambiguous: a backslash that could be read as the start of an
    escape (one followed by `\\`, `xNN`, `uNNNN` or an escaped character) is written `\\\\`.
    Other backslashes stay single, so a DN such as `CN=Smith\\, John,…` reads and
    copies exactly as the directory holds it.
    """
    if not _NEEDS_WORK.search(text):
        return text
    return _ESCAPED.sub(_escape, _AMBIGUOUS_BACKSLASH.sub(r"\\\\", text))


_JSON_UNSAFE = re.compile(f"[{_OTHERS}]")  # json.dumps escapes C0 itself


def printable_json(text: str) -> str:
    """JSON text (json.dumps with ensure_ascii=False) with the characters it leaves
    raw — DEL, C1 controls, lone surrogates, separators, bidi controls — written as
    `\\uNNNN` escapes.  Outside strings JSON is ASCII, so this changes only string
    contents, and a JSON reader gets the same values back."""
    return _JSON_UNSAFE.sub(lambda m: f"\\u{ord(m.group(0)):04x}", text)


# --- text files a user gives (--from-file) ----------------------------------------------

_BOMS = ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
         (codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"),
         (codecs.BOM_UTF16_BE, "utf-16"))


def decode_text(data: bytes, source: str) -> str:
    """The text of a file a user wrote: UTF-8 (a byte-order mark allowed), or UTF-16 /
    UTF-32 with a byte-order mark (what Windows editors save as "Unicode").

    Anything else — latin-1, cp1252, UTF-16 without a mark — is refused as InputError
    naming the source and the line, instead of guessing: a guessed encoding turns
    `kérg` into another identity without a word."""
    encoding = next((enc for bom, enc in _BOMS if data.startswith(bom)), "utf-8")
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as exc:
        line = data[:exc.start].decode(encoding, errors="replace").count("\n") + 1
        raise InputError(_NOT_TEXT, source=source, line=line) from None
    if "\x00" in text:  # valid UTF-8, but no text file holds NUL: UTF-16 without its mark
        raise InputError(_NOT_TEXT, source=source, line=text[:text.index("\x00")].count("\n") + 1)
    return text.removeprefix("\ufeff")


_NOT_TEXT = ("not UTF-8 text (save it as UTF-8, or as UTF-16 with a byte-order mark)")
