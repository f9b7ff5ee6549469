"""What a planner sees of what was read: an entry's DN and values, and the partitions.

Data flows one way — read, plan, apply — so a planner module imports no backend:
it takes entries as the readers (exdir/readers/) returned them.  These protocols
are the part of an entry and of the naming contexts the planners use; the
backends' Entry and NamingContexts satisfy them, and a planner test can build
entries without a directory.
"""
from __future__ import annotations

from typing import Protocol

from .values import Value


class EntryLike(Protocol):
    """An entry as read: its DN and values, attribute names compared case-insensitively."""

    @property
    def dn(self) -> str: ...

    def get(self, name: str) -> list[Value]: ...

    def text(self, name: str) -> str | None: ...

    def texts(self, name: str) -> list[str]: ...

    def has(self, name: str) -> bool: ...

    @property
    def object_classes(self) -> frozenset[str]: ...


class Partitions(Protocol):
    """Where the domain and configuration partitions start (the rootDSE's naming contexts)."""

    @property
    def domain(self) -> str: ...

    @property
    def configuration(self) -> str: ...
