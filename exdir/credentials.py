"""The bind password: read from a file or the environment, and checked.

Not LDAP-specific (a later backend or command may need a secret the same way), so
it lives apart from the backends; the password itself is never shown in a message.
"""
from __future__ import annotations

import os
import re
from typing import Mapping

from .errors import InputError


def read_password(password_file: str | None, environ: Mapping[str, str] = os.environ,
                  variable: str = "EXDIR_PASSWORD") -> str | None:
    """The bind password from a file or the environment variable (EXDIR_PASSWORD; a
    migration's source directory has its own, EXDIR_FROM_PASSWORD).

    A file loses every trailing CR and LF (editors add one, `echo` another, Windows
    CRLF): none of them can be meant, since LDAP passwords cannot hold control
    characters.  An empty file, or a control character inside the password, is
    refused in plain words here rather than as ldap3's "SASLprep error" or "password
    is mandatory in simple bind"; the password itself is never shown.
    """
    if password_file:
        try:
            with open(password_file, "rb") as fh:
                data = fh.read()
        except OSError as exc:
            raise InputError(f"cannot read password file: {exc.strerror}",
                             source=password_file) from None
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise InputError("the password file is not UTF-8 text",
                             source=password_file) from None
        text = text.rstrip("\r\n")
        if not text:
            raise InputError("the password file is empty", source=password_file)
        check_password(text, "the password file", source=password_file)
        return text
    from_env = environ.get(variable)
    if from_env:
        check_password(from_env, variable)
    return from_env


_CONTROL_CHARACTER = re.compile(r"[\x00-\x1f\x7f]")


def check_password(password: str, where: str = "the password", *,
                   source: str | None = None) -> None:
    """InputError when the password holds a control character (a line break or tab in
    the middle of a password file, say): ldap3's SASLprep refuses them with its own
    jargon, and a plain refusal naming where the password came from is clearer."""
    if _CONTROL_CHARACTER.search(password):
        raise InputError(f"{where} holds a control character (a line break or tab inside "
                         "the password?): LDAP passwords cannot contain one", source=source)
