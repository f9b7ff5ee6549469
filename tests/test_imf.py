"""`exdir imf show|set`: the Intelligent Message Filter's thresholds (issue 16, item 3).

On every backend: the sample's UCE Content Filter read back, a set applied and undone
exactly, the path created where the filter was never configured; the range refusals
and the warnings on the in-memory directory.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.plans import data_snapshot
from tests.labs import ALL_BACKENDS, SAMPLE, SAMPLES, Lab, new_lab, same_state, undo_files

UCE = ("CN=UCE Content Filter,CN=Message Delivery,CN=Global Settings,CN=Fabrikam,"
       "CN=Microsoft Exchange,CN=Services,CN=Configuration,DC=fabrikam,DC=com")
TEXT = SAMPLE.read_text(encoding="utf-8")


def show(capsys: pytest.CaptureFixture[str], lab_: Lab) -> dict[str, Any]:
    code, out, err = lab_.cli(capsys, "--json", "imf", "show")
    assert code == 0, err
    return json.loads(out)


def without_imf(text: str) -> str:
    """The sample with its Global Settings subtree left out (the filter never configured)."""
    records = text.split("\n\n")
    kept = [r for r in records if "CN=Global Settings," not in r.replace("\n ", "")]
    assert len(kept) == len(records) - 3
    return "\n\n".join(kept)


@pytest.mark.parametrize("kind", ALL_BACKENDS)
def test_show_set_and_undo_on_every_backend(kind: str, request: pytest.FixtureRequest,
                                            tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    lab_ = new_lab(kind, TEXT, request, tmp_path, reader=data_snapshot)
    data = show(capsys, lab_)
    assert (data["exists"], data["enabled"], data["gateway_threshold"],
            data["store_threshold"]) == (True, True, 8, 6), data
    assert data["values"] == {"msExchUceEnabled": "1", "msExchUceBlockThreshold": "8",
                              "msExchUceStoreActionThreshold": "6"}
    assert any("junk-mail rule" in w for w in data["warnings"])
    assert not any("no server of Exchange 2003" in w for w in data["warnings"])
    before = lab_.state()

    # the dry run writes nothing and shows each value replaced, old value expected
    code, out, err = lab_.cli(capsys, "imf", "set", "--gateway-threshold", "5",
                              "--store-threshold", "3", "--disable")
    assert code == 0, err
    assert "delete: msExchUceBlockThreshold\nmsExchUceBlockThreshold: 8\n-\n" \
           "add: msExchUceBlockThreshold\nmsExchUceBlockThreshold: 5\n" in out
    same_state(before, lab_.state())

    undo = tmp_path / "imf-undo.ldif"
    code, _, err = lab_.cli(capsys, "imf", "set", "--gateway-threshold", "5",
                            "--store-threshold", "3", "--disable", "--apply",
                            "--undo-file", str(undo))
    assert code == 0, err
    data = show(capsys, lab_)
    assert (data["enabled"], data["gateway_threshold"], data["store_threshold"]) == (False, 5, 3)

    # the same values again: nothing to do
    code, out, err = lab_.cli(capsys, "imf", "set", "--store-threshold", "3", "--apply",
                              "--undo-file", str(tmp_path / "second-undo.ldif"))
    assert code == 0 and "hold these values already" in err, err

    code, _, err = lab_.cli(capsys, "apply", str(undo), "--apply",
                            "--undo-file", str(tmp_path / "redo.ldif"))
    assert code == 0, err
    same_state(before, lab_.state())


@pytest.mark.parametrize("kind", ALL_BACKENDS)
def test_set_creates_the_filter_where_it_was_never_configured(
        kind: str, request: pytest.FixtureRequest, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """The schema's two classes (msExchMessageDeliveryConfig, msExchUce) as every backend
    takes them: the objects added under the organisation, read back, removed by the undo."""
    monkeypatch.chdir(tmp_path)
    lab_ = new_lab(kind, without_imf(TEXT), request, tmp_path, reader=data_snapshot)
    data = show(capsys, lab_)
    assert data["exists"] is False and data["store_threshold"] is None
    assert any("never configured" in w for w in data["warnings"])
    before = lab_.state()
    undo = tmp_path / "undo.ldif"
    code, _, err = lab_.cli(capsys, "imf", "set", "--store-threshold", "7", "--enable",
                            "--apply", "--undo-file", str(undo))
    assert code == 0, err
    data = show(capsys, lab_)
    assert (data["exists"], data["enabled"], data["gateway_threshold"],
            data["store_threshold"]) == (True, True, None, 7), data
    assert any("not set" in w and "msExchUceBlockThreshold" in w for w in data["warnings"])
    with lab_.open() as d:
        uce = d.read(UCE, ("objectClass",))
        assert uce is not None and "msexchuce" in {c.lower() for c in uce.texts("objectClass")}
    code, _, err = lab_.cli(capsys, "apply", str(undo), "--apply",
                            "--undo-file", str(tmp_path / "redo.ldif"))
    assert code == 0, err
    same_state(before, lab_.state())


@pytest.mark.parametrize("args", [
    ["--store-threshold", "10"], ["--store-threshold", "-1"], ["--gateway-threshold", "12"],
    [], ["--store-threshold", "x"]])
def test_out_of_range_or_nothing_is_one_line_and_no_write(
        args: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        request: pytest.FixtureRequest, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    lab_ = new_lab("ldif", TEXT, request, tmp_path)
    before = lab_.file_bytes()
    code, out, err = lab_.cli(capsys, "imf", "set", *args, "--apply")
    assert code == 2, (code, out, err)
    assert out == "" and len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err
    assert lab_.file_bytes() == before and undo_files(tmp_path) == []


def test_show_warns_without_a_2003_server_and_on_a_value_exchange_ignores(
        tmp_path: Path, request: pytest.FixtureRequest,
        capsys: pytest.CaptureFixture[str]) -> None:
    text = TEXT.replace("Version 6.5 (Build 7638.2: Service Pack 2)",
                        "Version 6.0 (Build 6249.4: Service Pack 3)")
    text = text.replace("msExchUceBlockThreshold: 8", "msExchUceBlockThreshold: high")
    assert "Version 6.5" not in text
    lab_ = new_lab("ldif", text, request, tmp_path)
    data = show(capsys, lab_)
    assert any("no server of Exchange 2003 or later" in w for w in data["warnings"])
    assert data["gateway_threshold"] is None and data["values"]["msExchUceBlockThreshold"] == "high"
    assert any("'high', not a number" in w for w in data["warnings"])
    code, out, err = lab_.cli(capsys, "imf", "show")
    assert code == 0 and "gateway threshold: not set" in out
    assert "no server of Exchange 2003 or later" in err


def test_other_samples_have_no_filter(capsys: pytest.CaptureFixture[str]) -> None:
    from tests.labs import cli
    code, out, err = cli(capsys, "--ldif", str(SAMPLES / "openchange.ldif"), "--json",
                         "imf", "show")
    assert code == 0, err
    assert json.loads(out)["exists"] is False
