"""An absent msExchMixedMode is unknown, not native (issue 12, item 6).

OpenChange's provisioning writes no msExchMixedMode on its organisation.  `exdir
topology` says "not set" (JSON null); `exdir check` and `exdir adc check` warn that
the mode is unknown; the move gate, which refuses same-group moves in mixed mode
with connection agreements, takes an unknown mode as "might be mixed" only where
agreements exist (without agreements no ADC can write back, so it warns).
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from exdir.backends.memory import open_ldif
from exdir.checks import adc_move_refusal, preflight
from exdir.readers.topology import read_topology
from tests.labs import LDIF_SLAPD, SAMPLES, Lab, cli, new_lab, same_state, undo_files

MIXED = (SAMPLES / "fabrikam-mixed.ldif").read_text(encoding="utf-8")
NATIVE = (SAMPLES / "fabrikam.ldif").read_text(encoding="utf-8")
assert MIXED.count("msExchMixedMode: TRUE\n") == 1 and NATIVE.count("msExchMixedMode: FALSE\n") == 1
#: the mixed sample (two agreements) and the native one (none), msExchMixedMode absent
UNSET_WITH_AGREEMENTS = MIXED.replace("msExchMixedMode: TRUE\n", "", 1)
UNSET_NO_AGREEMENTS = NATIVE.replace("msExchMixedMode: FALSE\n", "", 1)


def write(tmp_path: Path, text: str, name: str = "lab.ldif") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture(params=LDIF_SLAPD)
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_the_model_holds_none(tmp_path: Path) -> None:
    with open_ldif(str(write(tmp_path, UNSET_NO_AGREEMENTS)), warn=lambda m: None) as d:
        assert read_topology(d).organization.mixed_mode is None


def test_topology_says_not_set(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, UNSET_NO_AGREEMENTS)
    code, out, err = cli(capsys, "--ldif", str(path), "topology")
    assert code == 0, err
    assert "mixed mode: not set" in out and "mixed mode: no\n" not in out
    code, out, err = cli(capsys, "--ldif", str(path), "--json", "topology")
    assert code == 0, err
    assert json.loads(out)["organization"]["mixed_mode"] is None


def test_check_warns_the_mode_is_unknown(tmp_path: Path) -> None:
    with open_ldif(str(write(tmp_path, UNSET_NO_AGREEMENTS)), warn=lambda m: None) as d:
        found = preflight(d, read_topology(d))
    unknown = [f for f in found if f.code == "mixed-mode-unknown"]
    assert len(unknown) == 1 and unknown[0].severity == "warning"
    assert "msExchMixedMode" in unknown[0].message and "not set" in unknown[0].message


@pytest.mark.parametrize("text", [UNSET_NO_AGREEMENTS, UNSET_WITH_AGREEMENTS],
                         ids=["no-agreements", "agreements"])
def test_adc_check_says_unknown_not_native(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                           text: str) -> None:
    path = write(tmp_path, text)
    code, out, err = cli(capsys, "--ldif", str(path), "adc", "check")
    assert "native" not in out and "mode unknown" in out, out
    assert "msExchMixedMode" in err and "not set" in err, err
    code, out, err = cli(capsys, "--ldif", str(path), "--json", "adc", "check")
    data = json.loads(out)
    assert data["organisation"]["mixed_mode"] is None
    assert any("msExchMixedMode" in w for w in data["warnings"])


def test_the_gate_takes_unknown_as_mixed_where_agreements_exist(tmp_path: Path) -> None:
    with open_ldif(str(write(tmp_path, UNSET_WITH_AGREEMENTS, "a.ldif")), warn=lambda m: None) as d:
        with_agreements = read_topology(d)
    with open_ldif(str(write(tmp_path, UNSET_NO_AGREEMENTS, "b.ldif")), warn=lambda m: None) as d:
        without = read_topology(d)
    refusal = adc_move_refusal(with_agreements, ["jsmith"], adc_stopped=False)
    assert refusal is not None and "msExchMixedMode" in refusal and "--adc-stopped" in refusal
    assert adc_move_refusal(with_agreements, ["jsmith"], adc_stopped=True) is None
    assert adc_move_refusal(without, ["jsmith"], adc_stopped=False) is None


def test_a_same_group_move_with_agreements_and_unknown_mode_is_refused(
        kind: str, request: pytest.FixtureRequest, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    lab: Lab = new_lab(kind, UNSET_WITH_AGREEMENTS, request, tmp_path)
    before, original = lab.state(), lab.file_bytes()
    code, out, err = lab.cli(capsys, "move", "jsmith", "--to", "Mailbox Store (EX2)", "--apply")
    assert (code, out) == (1, ""), err
    assert "msExchMixedMode" in err and "--adc-stopped" in err
    assert lab.file_bytes() == original and undo_files(lab.tmp) == []
    same_state(before, lab.state())
    code, out, err = lab.cli(capsys, "move", "jsmith", "--to", "Mailbox Store (EX2)", "--apply",
                             "--adc-stopped")
    assert code == 0, err


def test_without_agreements_an_unknown_mode_warns_and_moves(
        kind: str, request: pytest.FixtureRequest, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    lab: Lab = new_lab(kind, UNSET_NO_AGREEMENTS, request, tmp_path)
    code, out, err = lab.cli(capsys, "move", "jsmith", "--to", "Mailbox Store (EX2)", "--apply")
    assert code == 0, err
    assert "warning" in err and "msExchMixedMode" in err and "not set" in err, err
