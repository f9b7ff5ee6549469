"""Shared fixtures; the machinery lives in tests/servers/."""
from __future__ import annotations

from typing import Iterator

import pytest

from tests.servers.samba import MakeSamba, SambaDC, SambaLab, require_samba
from tests.servers.slapd import MakeSlapd, SlapdFactory, require_slapd

pytest.register_assert_rewrite("tests.labs")  # its shared assertions explain their failures

_SAMBA_LABS: list[SambaLab] = []  # for the timing summary at the end of the run


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "samba: starts a Samba AD domain controller on 127.0.0.1:389 "
                   "(skipped without samba or with the port busy, failed in CI)")


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


@pytest.fixture(scope="session")
def samba_lab() -> Iterator[SambaLab]:
    """The session's Samba templates (provisioned once, exdir's AD schema applied,
    LDIF organisations loaded on first use); every DC started from it is a copy.

    Skips with one line when samba is missing or 127.0.0.1:389/636 is busy; fails in CI.
    """
    require_samba()
    lab = SambaLab()
    _SAMBA_LABS.append(lab)
    try:
        yield lab
    finally:
        lab.close()


@pytest.fixture
def samba_factory(samba_lab: SambaLab) -> Iterator[MakeSamba]:
    """make(ldif_text=None) -> a started SambaDC: a fresh copy of the template holding
    ldif_text (configuration objects under the real CN=Configuration, recipients in
    the domain NC).  One DC runs on 127.0.0.1 at a time; all are removed afterwards."""
    require_samba()

    def make(ldif_text: str | None = None) -> SambaDC:
        return samba_lab.start(ldif_text)

    try:
        yield make
    finally:
        samba_lab.close_live()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests that start a slapd carry the `slapd` marker, those that start Samba `samba`."""
    for item in items:
        names = getattr(item, "fixturenames", ())
        if "slapd_factory" in names:
            item.add_marker(pytest.mark.slapd)
        if "samba_factory" in names or "samba_lab" in names:
            item.add_marker(pytest.mark.samba)


def pytest_terminal_summary(terminalreporter) -> None:  # type: ignore[no-untyped-def]
    """Samba's start-up figures, when the run used it (-q hides nothing of this)."""
    for lab in _SAMBA_LABS:
        if not lab.timings and not lab.starts:
            continue
        parts = [f"{k} {v:.1f} s" for k, v in lab.timings.items() if not k.startswith("load ")]
        parts += [f"load {len(r.added)} entries ({len(r.existing)} already there) "
                  f"{r.seconds:.2f} s" for r in lab.loads.values()]
        if lab.starts:
            parts.append(f"per-test copy+start {sum(lab.starts) / len(lab.starts):.2f} s "
                         f"(x{len(lab.starts)})")
        terminalreporter.write_line("Samba AD DC: " + ", ".join(parts))
