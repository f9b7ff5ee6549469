"""`exdir x500 sync|check --from SOURCE`: X500 history across forests (issue 16, items 1–2).

samples/litware.ldif is the organisation samples/fabrikam.ldif's people came from
(same people and mailbox GUIDs, another organisation and administrative group).  On
every backend as the target: check lists what is missing, sync adds exactly that
(worked out here from the two files with the `ldif` package, not by exdir's code),
a second sync plans nothing, check then agrees, and the undo restores the target
exactly.  The matching rules (GUID first, then the keys; ambiguity; --only) and the
source over --from-url run on the in-memory directory and slapd.
"""
from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any, Iterator, Sequence

import ldif
import pytest

from exdir import dn as dnu
from exdir import x500
from exdir.backends.base import Directory
from exdir.backends.memory import open_ldif
from exdir.readers.recipients import read_migration_side
from tests.plans import data_snapshot
from tests.labs import (ALL_BACKENDS, CountingDirectory, SAMPLE, SAMPLES, Lab, cli, new_lab, same_state,
                        server_options, undo_files)

SOURCE = SAMPLES / "litware.ldif"
TEXT = SAMPLE.read_text(encoding="utf-8")
SOURCE_TEXT = SOURCE.read_text(encoding="utf-8")


def records(text: str) -> Iterator[tuple[str, dict[str, list[bytes]]]]:
    parser = ldif.LDIFParser(io.BytesIO(text.encode("utf-8")), encoding=None, strict=False)
    yield from parser.parse()


def expected_additions(target_text: str, source_text: str) -> dict[str, set[str]]:
    """By target DN key: the lower-case X500 values the target lacks, the source matched
    by msExchMailboxGuid or, where the source has none, by mailNickname."""
    def recipients(text: str) -> dict[str, dict[str, list[str] | bytes | None]]:
        out = {}
        for dn, attrs in records(text):
            low = {k.lower(): v for k, v in attrs.items()}
            if "mailnickname" not in low or "OU=" not in dn:
                continue  # a recipient of the domain partition has a mailNickname
            out[dnu.key(dn)] = {
                "guid": low.get("msexchmailboxguid", [None])[0],
                "nick": low["mailnickname"][0].decode().lower(),
                "legacy": [v.decode() for v in low.get("legacyexchangedn", [])],
                "x500": [v.decode()[5:] for v in low.get("proxyaddresses", [])
                         if v[:5].upper() == b"X500:"]}
        return out
    targets, sources = recipients(target_text), recipients(source_text)
    out: dict[str, set[str]] = {}
    for key, t in targets.items():
        match = [s for s in sources.values() if t["guid"] and s["guid"] == t["guid"]] or \
                [s for s in sources.values() if s["nick"] == t["nick"]]
        assert len(match) == 1, key
        s = match[0]
        have = {v.lower() for v in [*t["legacy"], *t["x500"]]}  # type: ignore[misc]
        lacks = {v.lower() for v in [*s["legacy"], *s["x500"]]} - have  # type: ignore[misc]
        if lacks:
            out[key] = lacks
    return out


EXPECTED = expected_additions(TEXT, SOURCE_TEXT)


def x500s(directory: Directory) -> dict[str, set[str]]:
    return {dnu.key(e.dn): {p[5:].lower() for p in e.texts("proxyAddresses")
                            if p[:5].upper() == "X500:"}
            for e in read_migration_side(directory)}


def run_json(capsys: pytest.CaptureFixture[str], lab_: Lab, *args: str
             ) -> tuple[int, dict[str, Any]]:
    code, out, err = lab_.cli(capsys, "--json", *args)
    assert code in (0, 1), err
    return code, json.loads(out)


def test_the_samples_differ_as_the_source_describes() -> None:
    """What the sync must do and must not: 32 recipients lack their Litware values; jsmith
    is not given his own value back (in capitals in the source) nor kberg a duplicate."""
    assert len(EXPECTED) == 32
    assert EXPECTED[dnu.key("CN=Smith\\, John,OU=Staff,DC=fabrikam,DC=com")] == {
        "/o=litware/ou=litware site/cn=recipients/cn=jsmith",
        "/o=litware/ou=old site/cn=recipients/cn=jsmith"}
    assert EXPECTED[dnu.key("CN=Karen Berg,OU=Staff,DC=fabrikam,DC=com")] == {
        "/o=litware/ou=litware site/cn=recipients/cn=kberg",
        "/o=litware/ou=old site/cn=recipients/cn=kberg"}
    assert "/O=FABRIKAM/OU=FIRST ADMINISTRATIVE GROUP/CN=RECIPIENTS/CN=JSMITH" in SOURCE_TEXT


@pytest.mark.parametrize("kind", ALL_BACKENDS)
def test_sync_adds_exactly_what_is_missing_and_is_idempotent(
        kind: str, request: pytest.FixtureRequest, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    lab_ = new_lab(kind, TEXT, request, tmp_path, reader=data_snapshot)
    with lab_.open() as d:
        held = x500s(d)
    before = lab_.state()

    code, checked = run_json(capsys, lab_, "x500", "check", "--from", str(SOURCE))
    assert code == 1 and checked["matched"] == 32 and checked["unmatched"] == []
    assert {dnu.key(m["dn"]): {v[5:].lower() for v in m["missing"]}
            for m in checked["missing"]} == EXPECTED
    code, planned = run_json(capsys, lab_, "x500", "sync", "--from", str(SOURCE))
    assert code == 0
    assert {dnu.key(p["dn"]): {v[5:].lower() for v in p["add"]}
            for p in planned["planned"]} == EXPECTED  # check agrees with sync
    same_state(before, lab_.state())

    undo = tmp_path / "undo.ldif"
    code, _, err = lab_.cli(capsys, "x500", "sync", "--from", str(SOURCE), "--apply",
                            "--undo-file", str(undo))
    assert code == 0, err
    with lab_.open() as d:
        after = x500s(d)
    assert {k: after[k] - held[k] for k in after if after[k] != held[k]} == EXPECTED
    # every value written decodes back from its IMCEAEX form
    for values in EXPECTED.values():
        for v in values:
            assert x500.decode(x500.encode(v, "fabrikam.com")).lower() == f"x500:{v}"

    code, again = run_json(capsys, lab_, "x500", "sync", "--from", str(SOURCE))
    assert code == 0 and again["planned"] == []
    code, checked = run_json(capsys, lab_, "x500", "check", "--from", str(SOURCE))
    assert code == 0 and checked["missing"] == [] and checked["matched"] == 32

    code, _, err = lab_.cli(capsys, "apply", str(undo), "--apply",
                            "--undo-file", str(tmp_path / "redo.ldif"))
    assert code == 0, err
    same_state(before, lab_.state())


@pytest.mark.slapd
def test_the_source_over_from_url_reads_as_the_file(
        request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """The source a slapd with its own bind (password from its file, or
    EXDIR_FROM_PASSWORD): the same matching as from the export."""
    source = request.getfixturevalue("slapd_factory")(SOURCE_TEXT)
    url, bind, password_file = server_options(source)[1::2]
    target = ["--ldif", str(SAMPLE), "--json", "x500", "check"]
    code, out, err = cli(capsys, *target, "--from", str(SOURCE))
    assert code == 1, err
    by_file = json.loads(out)
    code, out, err = cli(capsys, *target, "--from-url", url, "--from-bind-dn", bind,
                         "--from-password-file", password_file)
    assert code == 1, err
    assert same_dns(json.loads(out)) == same_dns(by_file)
    monkeypatch.setenv("EXDIR_FROM_PASSWORD", source.password)
    code, out, err = cli(capsys, *target, "--from-url", url, "--from-bind-dn", bind)
    assert code == 1 and same_dns(json.loads(out)) == same_dns(by_file), err
    assert source.password not in out + err


def same_dns(data: dict[str, Any]) -> dict[str, Any]:
    """The source DNs as compared (a server spells the attribute types its own way)."""
    for m in data["missing"]:
        m["source"] = dnu.key(m["source"])
    return data


def mutated_source(tmp_path: Path, edit: Any) -> Path:
    path = tmp_path / "source.ldif"
    path.write_text(edit(SOURCE_TEXT), encoding="utf-8")
    return path


def test_an_ambiguous_match_is_listed_not_guessed(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """tpoe has no mailbox GUID in the source: matched by mailNickname, which two source
    objects now hold."""
    twin = ("\ndn: CN=Toni Poe (2),OU=Staff,DC=fabrikam,DC=com\nobjectClass: top\n"
            "objectClass: person\nobjectClass: organizationalPerson\nobjectClass: user\n"
            "cn: Toni Poe (2)\nmailNickname: tpoe\n"
            "legacyExchangeDN: /o=Litware/ou=Litware Site/cn=Recipients/cn=tpoe2\n")
    source = mutated_source(tmp_path, lambda t: t + twin)
    code, out, err = cli(capsys, "--ldif", str(SAMPLE), "--json", "x500", "sync",
                         "--from", str(source))
    assert code == 1, err
    data = json.loads(out)
    [u] = data["unmatched"]
    assert dnu.key(u["target"]) == dnu.key("CN=Toni Poe,OU=Staff,DC=fabrikam,DC=com")
    assert "2 source recipients match by nickname" in u["reason"] and len(u["candidates"]) == 2
    assert len(data["planned"]) == 31  # the others still planned
    code, out, err = cli(capsys, "--ldif", str(SAMPLE), "x500", "sync", "--from", str(source))
    assert code == 1 and "ambiguous: CN=Toni Poe" in err


def test_a_source_value_that_is_no_legacyexchangedn_is_never_written(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A hostile or broken export: an X500 with a terminal escape and one that is no
    legacyExchangeDN at all are skipped with a warning (escaped), the rest planned."""
    anchor = "proxyAddresses: X500:/o=Litware/ou=Old Site/cn=Recipients/cn=jsmith\n"
    assert anchor in SOURCE_TEXT
    source = mutated_source(tmp_path, lambda t: t.replace(
        anchor, anchor + "proxyAddresses:: " + __import__("base64").b64encode(
            b"X500:/o=Litware/cn=\x1b[2Jevil").decode() + "\nproxyAddresses: X500:junk\n"))
    code, out, err = cli(capsys, "--ldif", str(SAMPLE), "--json", "x500", "sync",
                         "--from", str(source))
    assert code == 0, err
    data = json.loads(out)
    assert sorted(s["value"] for s in data["skipped"]) == ["/o=Litware/cn=\x1b[2Jevil", "junk"]
    planned = [v for p in data["planned"] for v in p["add"]]
    assert not any("evil" in v or v == "X500:junk" for v in planned)
    assert len(data["planned"]) == 32
    assert "\x1b" not in err and err.count("skipped") == 2, err


def test_match_keys_after_the_guid(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Without GUIDs in the source: --match smtp matches everyone by address; --match upn
    finds nobody whose UPN the source changed."""
    def no_guids(text: str) -> str:
        return "\n".join(x for x in text.splitlines() if not x.startswith("msExchMailboxGuid"))
    source = mutated_source(tmp_path, no_guids)
    code, out, _ = cli(capsys, "--ldif", str(SAMPLE), "--json", "x500", "check",
                       "--from", str(source), "--match", "smtp")
    data = json.loads(out)
    assert code == 1 and data["matched"] == 32 and data["unmatched"] == []
    assert {m["matched_by"] for m in data["missing"]} == {"smtp"}
    upn_changed = mutated_source(tmp_path, lambda t: no_guids(t).replace(
        "userPrincipalName: jsmith@", "userPrincipalName: john.smith@"))
    code, out, _ = cli(capsys, "--ldif", str(SAMPLE), "--json", "x500", "check",
                       "--from", str(upn_changed), "--match", "upn")
    data = json.loads(out)
    assert code == 1 and [dnu.rdn_value(u["target"]) for u in data["unmatched"]] == [
        "Smith, John", "Fabrikam Sales", "Ben Miller (Contoso)"]


def test_only_limits_the_targets_and_names_what_it_cannot_find(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    only = tmp_path / "only.txt"
    only.write_text("# two of them\njsmith\nkberg@fabrikam.com\n\nnobody@fabrikam.com\n",
                    encoding="utf-8")
    code, out, err = cli(capsys, "--ldif", str(SAMPLE), "--json", "x500", "sync",
                         "--from", str(SOURCE), "--only", str(only))
    assert code == 1, err
    data = json.loads(out)
    assert sorted(dnu.rdn_value(p["dn"]) for p in data["planned"]) == ["Karen Berg",
                                                                        "Smith, John"]
    assert [u["target"] for u in data["unmatched"]] == ["nobody@fabrikam.com"]


def test_a_value_another_target_holds_is_refused_and_nothing_written(
        request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """Cgray already answers to jsmith's Litware name: adding it to jsmith too would
    misdeliver; the apply's uniqueness gate refuses the whole plan."""
    monkeypatch.chdir(tmp_path)
    anchor = "proxyAddresses: SMTP:cgray@fabrikam.com\n"
    assert anchor in TEXT
    text = TEXT.replace(anchor, anchor + "proxyAddresses: X500:/o=Litware/ou=Litware Site/"
                                         "cn=Recipients/cn=jsmith\n")
    lab_ = new_lab("ldif", text, request, tmp_path)
    before = lab_.file_bytes()
    code, out, err = lab_.cli(capsys, "x500", "sync", "--from", str(SOURCE), "--apply")
    assert code == 1, err
    assert "already held by CN=Chris Gray" in err
    assert lab_.file_bytes() == before


@pytest.mark.parametrize("args", [
    [], ["--from", "x.ldif", "--from-url", "ldap://127.0.0.1:1"], ["--match", "guid"],
    ["--from", "missing.ldif"], ["--only", "missing.txt"], ["--from", "target.ldif"]])
def test_bad_input_is_one_line(args: Sequence[str], tmp_path: Path,
                               monkeypatch: pytest.MonkeyPatch,
                               capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    target = tmp_path / "target.ldif"  # the last case names it as its own source
    target.write_text(TEXT, encoding="utf-8")
    if "--match" in args or "--only" in args:
        args = ["--from", str(SOURCE), *args]
    code, out, err = cli(capsys, "--ldif", str(target), "x500", "sync", *args, "--apply")
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1, (code, out, err)
    assert "Traceback" not in err and undo_files(tmp_path) == []
    assert target.read_text(encoding="utf-8") == TEXT


def test_each_side_is_read_once_whatever_its_size() -> None:
    from exdir import operations
    with open_ldif(str(SAMPLE)) as t, open_ldif(str(SOURCE)) as s:
        target, source = CountingDirectory(t), CountingDirectory(s)
        matching = operations.x500_history_match(target, source)
    assert len(matching.matches) == 32
    assert (target.searches, source.searches) == (1, 1)
