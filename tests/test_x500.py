"""IMCEAEX addresses and X500 proxies: `exdir x500 decode|encode|find|add|remove`.

The encoding rule is restated here independently of exdir.x500 (MS-OXCMAIL
2.1.3.1.8 as docs/exchange.md gives it) and hypothesis compares the two on
printable ASCII; `find` is run against the in-memory directory and slapd with the
searches counted; `add` and `remove` are planned, applied and undone.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from exdir import dn as dnu
from exdir import x500
from exdir.errors import InputError
from tests.labs import LDIF_SLAPD, cli, new_lab
from tests.plans import differences, snapshot
from tests.test_health import SAMPLE, CallCounter, assert_one_line_error, run_json
from tests.test_health import clean_env  # noqa: F401 - autouse: no EXDIR_*, cwd a temp dir

# docs/exchange.md, "IMCEAEX addresses in non-delivery reports"
WORKED = ("IMCEAEX-_O=MMS_OU=EXCHANGE+20ADMINISTRATIVE+20GROUP+20+28FYDIBOHF23SPDLT+29"
          "_CN=RECIPIENTS_CN=User6ed4e168@mgd.domain.com")
WORKED_X500 = ("X500:/O=MMS/OU=EXCHANGE ADMINISTRATIVE GROUP (FYDIBOHF23SPDLT)/CN=RECIPIENTS"
               "/CN=User6ed4e168")
PRINTABLE = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), min_size=1)


def reference_encode(value: str) -> str:
    """MS-OXCMAIL's rule, written out separately: letters, digits, `-` and `=` as they
    are, `/` as `_`, every other byte `+HH`."""
    out = []
    for ch in value:
        if ch.isascii() and (ch.isalnum() or ch in "-="):
            out.append(ch)
        elif ch == "/":
            out.append("_")
        else:
            out.extend(f"+{b:02X}" for b in ch.encode("utf-8"))
    return "".join(out)


# --- 1. decode and encode ----------------------------------------------------------------

def test_worked_example_decodes_and_encodes_back() -> None:
    assert x500.decode(WORKED) == WORKED_X500
    assert x500.encode(WORKED_X500, "mgd.domain.com") == WORKED


def test_worked_example_through_the_cli(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = cli(capsys, "x500", "decode", WORKED)
    assert (code, out, err) == (0, WORKED_X500 + "\n", "")
    code, out, _ = cli(capsys, "--json", "x500", "decode", WORKED)
    assert code == 0 and json.loads(out) == {"address": WORKED, "decoded": WORKED_X500}
    code, out, err = cli(capsys, "x500", "encode", WORKED_X500, "--domain", "mgd.domain.com")
    assert (code, out) == (0, WORKED + "\n"), err


@settings(max_examples=400, deadline=None)
@given(PRINTABLE)
@example("/o=Fabrikam/ou=First Administrative Group/cn=Recipients/cn=j_smith")
@example("_+5F+/=\\@")
def test_round_trip_over_printable_ascii(value: str) -> None:
    encoded = x500.encode("X500:" + value, "fabrikam.com")
    assert encoded == f"IMCEAEX-{reference_encode(value)}@fabrikam.com"
    assert re.fullmatch(r"IMCEAEX-(?:[A-Za-z0-9=_-]|\+[0-9A-F]{2})+@fabrikam\.com", encoded)
    assert x500.decode(encoded) == "X500:" + value
    # the `\@` some NDR renderings show, and the address as a mail header quotes it
    assert x500.decode(encoded.replace("@", "\\@")) == "X500:" + value
    assert x500.decode(f"<SMTP:{encoded}>") == "X500:" + value


@settings(max_examples=100, deadline=None)
@given(PRINTABLE)
def test_bare_legacy_value_encodes_as_x500(value: str) -> None:
    bare = "/" + value
    assert x500.decode(x500.encode(bare, "fabrikam.com")) == "X500:" + bare


def test_underscore_and_slash_both_survive() -> None:
    value = "/o=Fab_rikam/ou=A_B/cn=Recipients/cn=j_smith"
    encoded = x500.encode("X500:" + value, "fabrikam.com")
    assert encoded == "IMCEAEX-_o=Fab+5Frikam_ou=A+5FB_cn=Recipients_cn=j+5Fsmith@fabrikam.com"
    assert x500.decode(encoded) == "X500:" + value
    assert x500.decode(encoded.lower()) == "X500:" + value.lower()  # hex digits in any case


def test_other_imcea_types() -> None:
    assert x500.decode("IMCEAFAX-+2B49+20301+20234@fabrikam.com") == "FAX:+49 301 234"
    assert x500.encode("FAX:+49 301 234", "fabrikam.com") == \
        "IMCEAFAX-+2B49+20301+20234@fabrikam.com"
    assert x500.decode("IMCEAX400-c=US;a=+20;p=Contoso@fabrikam.com") == \
        "X400:c=US;a= ;p=Contoso"
    with pytest.raises(InputError, match="FAX"):  # not an Exchange address: find refuses
        x500.legacy_value("IMCEAFAX-+2B4930@fabrikam.com")


@pytest.mark.parametrize("address,fragment", [
    ("john.smith@fabrikam.com", "not an IMCEA"),
    ("SMTP:john.smith@fabrikam.com", "not an IMCEA"),
    ("IMCEAEX-_O=FABRIKAM_CN=JSMITH", "no @domain"),
    ("IMCEAEX-@fabrikam.com", "no @domain"),
    ("IMCEAEX-_O=FABRIKAM+2G_CN=JSMITH@fabrikam.com", "two hex digits"),
    ("IMCEAEX-_O=FABRIKAM_CN=JSMITH+2@fabrikam.com", "two hex digits"),
    ("IMCEAEX_O=FABRIKAM@fabrikam.com", "not an IMCEA"),
    ("", "not an IMCEA"),
])
def test_not_encapsulated_is_one_line_exit_2(address: str, fragment: str,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = cli(capsys, "x500", "decode", address)
    assert_one_line_error(code, out, err, fragment)


@pytest.mark.parametrize("args,fragment", [
    (["X500:/o=Fabrikam", "--domain", "two words.com"], "a domain like"),
    (["X500:/o=Fabrikam", "--domain", "a@b.com"], "a domain like"),
    (["X500:", "--domain", "fabrikam.com"], "nothing to encode"),
    (["X500:/o=Fabrikam"], "--domain"),
])
def test_encode_refusals(args: list[str], fragment: str,
                         capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = cli(capsys, "x500", "encode", *args)
    assert_one_line_error(code, out, err, fragment)


# --- 1b. find: by legacyExchangeDN and by X500 proxy, one search per partition ------------------

FIND_BACKENDS = LDIF_SLAPD


def spellings(value: str) -> list[str]:
    """The ways an administrator meets a value: X500:, bare, IMCEAEX from an NDR (with
    `\\@`, in angle brackets), in whatever case the tool that showed it chose."""
    imceaex = x500.encode(value, "fabrikam.com")
    return ["X500:" + value, "x500:" + value.swapcase(), value.upper(), value.lower(), imceaex,
            imceaex.lower(), imceaex.replace("@", "\\@"), f"<{imceaex.upper()}>"]


@pytest.mark.parametrize("kind", FIND_BACKENDS)
def test_find_by_value_and_by_proxy(kind: str, request: pytest.FixtureRequest, tmp_path: Path,
                                    monkeypatch: pytest.MonkeyPatch,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    lab_ = new_lab(kind, SAMPLE, request, tmp_path)
    directory = lab_.open()
    people = list(directory.search(directory.naming.domain, "(proxyAddresses=X500:*)",
                                   ("legacyExchangeDN", "proxyAddresses")))
    directory.close()
    assert people  # the sample keeps X500 history on moved mailboxes
    person = sorted(people, key=lambda e: e.dn)[0]
    history = next(p[5:] for p in person.texts("proxyAddresses") if p.upper().startswith("X500:"))
    current = person.text("legacyExchangeDN") or ""
    counter = CallCounter(monkeypatch)
    for value, how in ((current, "legacyExchangeDN"), (history, "X500 proxy")):
        for spelling in spellings(value):
            counter.take()
            code, data = run_json(capsys, lab_, "x500", "find", spelling)
            assert code == 0, spelling
            assert [(dnu.key(o["dn"]), o["matched"]) for o in data["objects"]] == [
                (dnu.key(person.dn), how)], spelling
            assert data["value"].lower() == value.lower()
            calls = counter.take()
            # one search of each partition, no per-object reads
            assert sorted(calls) == sorted(("search", b) for b in (
                directory.naming.configuration, directory.naming.domain)), calls
    code, out, err = lab_.cli(capsys, "x500", "find", "X500:" + current)
    assert code == 0 and out == f"{person.dn}  (legacyExchangeDN)\n", (out, err)


@pytest.mark.parametrize("kind", FIND_BACKENDS)
def test_find_nothing_exits_1(kind: str, request: pytest.FixtureRequest, tmp_path: Path,
                              capsys: pytest.CaptureFixture[str]) -> None:
    lab_ = new_lab(kind, SAMPLE, request, tmp_path)
    nobody = "/o=Fabrikam/ou=First Administrative Group/cn=Recipients/cn=nobody"
    code, out, err = lab_.cli(capsys, "x500", "find", x500.encode(nobody, "fabrikam.com"))
    assert code == 1 and out == "" and "no object holds" in err
    code, data = run_json(capsys, lab_, "x500", "find", "X500:" + nobody)
    assert code == 1 and data == {"value": nobody, "objects": []}
    # a prefix of a real value is not that value
    code, _, _ = lab_.cli(capsys, "x500", "find", "/o=Fabrikam/ou=First Administrative Group")
    assert code == 0  # the admin group itself holds it
    code, _, _ = lab_.cli(capsys, "x500", "find",
                          "/o=Fabrikam/ou=First Administrative Group/cn=Recipients")
    assert code == 1
    for bad in ("jsmith", "SMTP:john.smith@fabrikam.com", "IMCEAEX-_O=X+ZZ@fabrikam.com"):
        code, out, err = lab_.cli(capsys, "x500", "find", bad)
        assert_one_line_error(code, out, err)


# --- 1c. add and remove: plan, apply, undo -------------------------------------------------------

def test_add_plans_applies_and_undoes(request: pytest.FixtureRequest, tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    lab_ = new_lab("ldif", SAMPLE, request, tmp_path)
    path = lab_.path
    assert path is not None
    original = path.read_bytes()
    before = snapshot(lab_.open())
    old = "/o=Fabrikam/ou=Head Office/cn=Recipients/cn=jsmith"
    ndr = x500.encode(old.upper(), "fabrikam.com")

    code, out, err = lab_.cli(capsys, "x500", "add", "jsmith", ndr)
    assert code == 0, err
    assert ("changetype: modify\nadd: proxyAddresses\nproxyAddresses: X500:" + old.upper()
            in out.replace("\n ", ""))
    assert "nothing written" in err
    assert path.read_bytes() == original  # a dry run writes nothing

    undo = tmp_path / "undo.ldif"
    code, _, err = lab_.cli(capsys, "x500", "add", "jsmith", ndr, "--apply",
                            "--undo-file", str(undo))
    assert code == 0, err
    after = snapshot(lab_.open())
    assert differences(before, after) != []
    john = lab_.open().read("CN=Smith\\, John,OU=Staff,DC=fabrikam,DC=com")
    assert john is not None and "X500:" + old.upper() in john.texts("proxyAddresses")
    code, data = run_json(capsys, lab_, "x500", "find", old)  # and find sees it now
    assert code == 0 and data["objects"][0]["matched"] == "X500 proxy"

    # already there, in any case: said so, nothing planned
    code, out, err = lab_.cli(capsys, "x500", "add", "jsmith", "x500:" + old.lower())
    assert code == 0 and "already" in err and "changetype" not in out

    code, _, err = lab_.cli(capsys, "apply", str(undo), "--apply",
                            "--undo-file", str(tmp_path / "undo2.ldif"))
    assert code == 0, err
    assert differences(before, snapshot(lab_.open())) == []


@pytest.mark.parametrize("kind", FIND_BACKENDS)
def test_add_refuses_another_objects_value(kind: str, request: pytest.FixtureRequest,
                                           tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    lab_ = new_lab(kind, SAMPLE, request, tmp_path)
    directory = lab_.open()
    before = snapshot(directory)
    kim = next(directory.search(directory.naming.domain, "(mailNickname=kakers)",
                                 ("legacyExchangeDN",)))
    taken = kim.text("legacyExchangeDN") or ""
    directory.close()
    for spelling in ("X500:" + taken.upper(), x500.encode(taken, "fabrikam.com")):
        code, out, err = lab_.cli(capsys, "x500", "add", "jsmith", spelling, "--apply",
                                  "--undo-file", str(tmp_path / "undo.ldif"))
        # the value is well formed; another object holding it is a safety refusal (exit 1)
        assert (code, out) == (1, ""), err
        assert len(err.strip().splitlines()) == 1 and err.startswith("exdir: ")
        assert "belongs to" in err and kim.dn in err
    code, out, err = lab_.cli(capsys, "x500", "add", "jsmith", "not-a-value")
    assert_one_line_error(code, out, err)
    directory = lab_.open()
    assert differences(before, snapshot(directory)) == []
    directory.close()


def test_remove_plans_applies_and_undoes(request: pytest.FixtureRequest, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    lab_ = new_lab("ldif", SAMPLE, request, tmp_path)
    directory = lab_.open()
    before = snapshot(directory)
    person = sorted(directory.search(directory.naming.domain, "(proxyAddresses=X500:*)",
                                     ("proxyAddresses", "mailNickname")), key=lambda e: e.dn)[0]
    proxy = next(p for p in person.texts("proxyAddresses") if p.upper().startswith("X500:"))
    nick = person.text("mailNickname") or ""
    code, out, err = lab_.cli(capsys, "x500", "remove", nick, proxy.upper())
    assert code == 0, err
    assert f"delete: proxyAddresses\nproxyAddresses: {proxy}\n" in out.replace("\n ", "")
    undo = tmp_path / "undo.ldif"
    code, _, err = lab_.cli(capsys, "x500", "remove", nick, proxy.lower(), "--apply",
                            "--undo-file", str(undo))
    assert code == 0, err
    code, _, _ = lab_.cli(capsys, "x500", "find", proxy)
    assert code == 1
    code, out, err = lab_.cli(capsys, "x500", "remove", nick, proxy)
    assert code == 0 and "holds no proxy" in err and "changetype" not in out
    code, _, err = lab_.cli(capsys, "apply", str(undo), "--apply",
                            "--undo-file", str(tmp_path / "undo2.ldif"))
    assert code == 0, err
    assert differences(before, snapshot(lab_.open())) == []
