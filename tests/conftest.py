"""Shared fixtures; the machinery lives in tests/servers/."""
from __future__ import annotations

from typing import Iterator

import pytest

from tests.servers.slapd import MakeSlapd, SlapdFactory, require_slapd


@pytest.fixture
def slapd_factory() -> Iterator[MakeSlapd]:
    """make(data_ldif=None, suffix=...) -> a started Slapd; all are stopped afterwards.

    Skips when OpenLDAP is not installed, but fails when CI is set.
    """
    require_slapd()
    factory = SlapdFactory()
    try:
        yield factory
    finally:
        factory.close()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test that starts a slapd carries the `slapd` marker (-m 'not slapd')."""
    for item in items:
        if "slapd_factory" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.slapd)
