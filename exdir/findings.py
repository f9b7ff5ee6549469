"""A finding: one fact a check found, in plain words — the one shape of every check.

`exdir check` (exdir.checks, the safety preflight) says which operations a finding
blocks; `exdir adc check` and `exdir legacydn audit` (exdir.health) name the object,
what the finding means and the command that fixes it.  One class, so every check is
built, tested and printed the same way.
"""
from __future__ import annotations

import enum
import shlex
from dataclasses import dataclass, field
from typing import Literal

from . import dn as dnu

Severity = Literal["blocks", "warning", "problem"]
#: how a health finding's fix starts where exdir has no command that fixes it; every
#: other fix is an exdir command that works on the directory checked (the suite runs
#: every one on every sample)
NO_FIX = "no automatic fix"


_SHELL_SPECIAL = frozenset('"$`\\!')


def shell_word(text: str) -> str:
    """text as one shell word in a printed fix: double quotes where they keep it as it
    is (DNs hold `\\,`, which double quotes leave alone), single quotes otherwise."""
    if not any(c in _SHELL_SPECIAL for c in text.replace("\\,", "")):
        return f'"{text}"'
    return shlex.quote(text)


class Operation(enum.Enum):
    """What a preflight finding can stop.  The values are how `exdir check` names them."""

    RENAME_ORG = "rename org"
    RENAME_ADMIN_GROUP = "rename admin-group"
    MOVE = "move"


#: every rename: of the organisation and of any administrative group
RENAMES = (Operation.RENAME_ORG, Operation.RENAME_ADMIN_GROUP)


@dataclass(frozen=True)
class Finding:
    """One problem or fact: what it is, and for the preflight what it stops, for the
    health checks what it means and the command that fixes it."""

    code: str
    message: str
    severity: Severity = "problem"  # blocks | warning (the preflight) | problem (health)
    dn: str = ""  # the object found wrong (health checks)
    meaning: str = ""
    fix: str = ""
    details: dict[str, str] = field(default_factory=dict)
    blocks: tuple[Operation, ...] = ()
    subject: str | None = None  # the one object whose operation it stops (None: every one)
    lab_lifts: bool = False  # the administrator's word that this is a lab lifts it

    @property
    def blocks_shown(self) -> list[str]:
        """What it blocks, in the words `exdir check` prints: `rename`, `rename org`,
        `rename admin-group Europe`, `rename without --lab`."""
        if not self.blocks:
            return []
        if set(self.blocks) == set(RENAMES) and self.subject is None:
            shown = ["rename"]
        else:
            shown = [op.value + (f" {dnu.rdn_value(self.subject)}"
                                 if op is Operation.RENAME_ADMIN_GROUP and self.subject else "")
                     for op in self.blocks]
        return [s + " without --lab" for s in shown] if self.lab_lifts else shown
