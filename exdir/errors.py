"""One error family for exdir: every failure a user can meet, with its exit code.

The CLI turns any ExdirError into one line on stderr and its exit code; anything
else is a bug and shows a traceback only with --debug.
"""
from __future__ import annotations


class ExdirError(Exception):
    """Base class: a message for humans and the exit code of the DESIGN contract."""

    exit_code = 2

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class InputError(ExdirError):
    """Bad input or usage: malformed LDIF, unknown object, invalid value (exit 2)."""

    exit_code = 2

    def __init__(self, message: str, *, source: str | None = None, line: int | None = None) -> None:
        where = ""
        if source is not None and line is not None:
            where = f"{source}, line {line}: "
        elif line is not None:
            where = f"line {line}: "
        elif source is not None:
            where = f"{source}: "
        super().__init__(where + message)
        self.source = source
        self.line = line


class ConnectionFailed(ExdirError):
    """The directory cannot be reached or refused our credentials (exit 2)."""

    exit_code = 2


class Refused(ExdirError):
    """A safety check or a plan/directory mismatch refused the operation (exit 1)."""

    exit_code = 1


class FileWriteError(ExdirError):
    """A file exdir writes (undo, journal, report, the saved LDIF) could not be written:
    disk full, permissions, a folder removed meanwhile.  `path` names the file; the
    message says in plain words what is left as it was (exit 2 unless a caller knows
    better, e.g. after a successful apply)."""

    exit_code = 2

    def __init__(self, message: str, *, path: str | None = None) -> None:
        super().__init__(message)
        self.path = path


class Interrupted(BaseException):
    """SIGTERM or SIGINT arrived (raised by the CLI's signal handler).

    A BaseException, like KeyboardInterrupt, so `except Exception` does not swallow it
    while every `finally` (temporary files removed, locks released, rollback) still
    runs; the CLI then exits 128 + signal number with one line on stderr."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum

    @property
    def name(self) -> str:
        import signal

        try:
            return signal.Signals(self.signum).name
        except ValueError:
            return f"signal {self.signum}"

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


class DirectoryError(ExdirError):
    """A directory operation failed; the message names the result in plain words."""

    exit_code = 3

    def __init__(self, message: str, *, result: str | None = None, dn: str | None = None) -> None:
        super().__init__(message)
        self.result = result
        self.dn = dn


class Conflict(DirectoryError):
    """The entry does not hold what the change expects (value absent, entry exists...)."""


class NoSuchEntry(DirectoryError):
    """The entry (or its parent) does not exist."""


class EntryExists(DirectoryError):
    """An add or rename would land on a DN that is already taken."""


# LDAP result names (as ldap3 reports them) turned into plain words.
PLAIN_RESULTS: dict[str, str] = {
    "noSuchObject": "no such entry",
    "noSuchAttribute": "the value to remove is not there (changed since the plan was made?)",
    "attributeOrValueExists": "the value is already there",
    "entryAlreadyExists": "an entry with that name already exists",
    "constraintViolation": "the value breaks a constraint (single-valued attribute?)",
    "objectClassViolation": "the entry would break its object class rules",
    "notAllowedOnNonLeaf": "the entry has children",
    "notAllowedOnRDN": "the value is part of the entry's name",
    "insufficientAccessRights": "the bound account may not do this",
    "invalidCredentials": "the bind DN or password was refused",
    "unwillingToPerform": "the server is unwilling to perform this",
    "undefinedAttributeType": "the server's schema does not know this attribute",
    "invalidAttributeSyntax": "the value does not fit the attribute's syntax",
    "invalidDNSyntax": "the DN is malformed",
    "busy": "the server is busy",
    "unavailable": "the server is unavailable",
    "timeLimitExceeded": "the server's time limit was exceeded",
    "sizeLimitExceeded": "the server's size limit was exceeded",
    "adminLimitExceeded": "the server's administrative limit was exceeded",
}


def plain(result: str) -> str:
    """The plain-words form of an LDAP result name (unknown names pass through)."""
    return PLAIN_RESULTS.get(result, result)
