"""Hostile input: what a careless or malicious export, plan, URL or password file holds.

exdir's contract for input it cannot use is one plain line on stderr and exit 2,
never a traceback, never a library's own jargon, and the files it was given left as
they were.  The export loader (`--ldif`) and the plan reader (`exdir apply`) read the
same LDIF grammar, so they must agree on what is malformed and on which line.
"""
from __future__ import annotations

import socket
import threading
from pathlib import Path
from typing import Iterator

import pytest

from commands.main import main
from exdir.backends.memory import open_ldif
from exdir.credentials import read_password
from exdir.errors import InputError
from exdir.ldif_in import parse as parse_plan
from exdir.plan import Add

SAMPLES = Path(__file__).resolve().parent.parent / "samples"
SAMPLE = SAMPLES / "fabrikam.ldif"
SAMPLE_TEXT = SAMPLE.read_text(encoding="utf-8")
ENV = ("EXDIR_LDIF", "EXDIR_URL", "EXDIR_BIND_DN", "EXDIR_PASSWORD")
KBERG = "CN=Karen Berg,OU=Staff,DC=fabrikam,DC=com"
KBERG_X500 = "X500:/o=Fabrikam/ou=Europe/cn=Recipients/cn=kberg"
NEW_LEGACY_DN = "/o=Fabrikam/ou=Europe/cn=Recipients/cn=jsmith2"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The user's own EXDIR_* settings must not leak in; undo files land in tmp_path."""
    for name in ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def one_line(code: int, err: str, *fragments: str, exit_code: int = 2) -> str:
    """The single `exdir: ...` line of a refusal, checked for the words it must hold."""
    assert code == exit_code, (code, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("exdir: "), err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


def write(tmp_path: Path, data: str | bytes, name: str = "export.ldif") -> Path:
    path = tmp_path / name
    if isinstance(data, str):
        data = data.encode("utf-8")
    path.write_bytes(data)
    return path


def quiet_load(path: Path):  # type: ignore[no-untyped-def]
    return open_ldif(str(path), warn=lambda m: None)


# --- item 3: attribute names differing only in case are one attribute -------------------

def _case_split_sample() -> str:
    """fabrikam with Karen Berg's X500 proxy spelled `ProxyAddresses:` and a
    description spread over `description:` and `Description:` lines."""
    text = SAMPLE_TEXT.replace(f"proxyAddresses: {KBERG_X500}\n",
                               f"ProxyAddresses: {KBERG_X500}\n", 1)
    assert f"ProxyAddresses: {KBERG_X500}" in text
    return text.replace("description: Head office staff\n",
                        "description: a\nDescription: b\n", 1)


def test_case_differing_names_merge_on_load_and_survive_save(tmp_path: Path) -> None:
    path = write(tmp_path, _case_split_sample())
    d = quiet_load(path)
    karen = d.read(KBERG)
    assert karen is not None
    proxies = karen.get("proxyAddresses")
    assert len(proxies) == 3 and KBERG_X500 in proxies, proxies
    # one attribute, spelled as its first occurrence
    assert [n for n in karen.attributes if n.lower() == "proxyaddresses"] == ["proxyAddresses"]
    staff = d.read("OU=Staff,DC=fabrikam,DC=com")
    assert staff is not None and sorted(staff.texts("description")) == ["a", "b"]
    assert [n for n in staff.attributes if n.lower() == "description"] == ["description"]
    d.dirty = True
    d.save()
    again = quiet_load(path)
    karen2 = again.read(KBERG)
    assert karen2 is not None and sorted(karen2.get("proxyAddresses")) == sorted(proxies)
    staff2 = again.read("OU=Staff,DC=fabrikam,DC=com")
    assert staff2 is not None and sorted(staff2.texts("description")) == ["a", "b"]


def test_one_apply_keeps_every_proxy_of_a_case_split_attribute(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = write(tmp_path, _case_split_sample())
    code, out, err = run(capsys, "--ldif", str(path), "legacydn", "set", "jsmith",
                         NEW_LEGACY_DN, "--apply")
    assert code == 0, err
    karen = quiet_load(path).read(KBERG)
    assert karen is not None
    assert sorted(karen.get("proxyAddresses")) == sorted([
        "SMTP:kberg@fabrikam.com", "smtp:karen.berg@fabrikam.com", KBERG_X500])


def test_plan_reader_merges_case_differing_names_of_an_add() -> None:
    """The plan reader already merged these (plan._attributes); kept here as the
    other half of the rule, so that neither reader drifts from it."""
    plan = parse_plan("dn: CN=x,DC=fabrikam,DC=com\nchangetype: add\nobjectClass: contact\n"
                      "proxyAddresses: smtp:a@x\nProxyAddresses: smtp:b@x\n")
    change = plan.changes[0]
    assert isinstance(change, Add)
    names = [name for name, _ in change.attributes]
    assert names == ["objectClass", "proxyAddresses"]
    assert dict(change.attributes)["proxyAddresses"] == ("smtp:a@x", "smtp:b@x")


# --- item 8: `:<` URL values are refused, never fetched ---------------------------------

def test_url_value_in_an_export_is_refused_naming_its_line(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET\n")
    text = SAMPLE_TEXT.replace("description: Head office staff\n",
                               f"description:< file://{secret}\n", 1)
    number = text.splitlines().index(f"description:< file://{secret}") + 1
    path = write(tmp_path, text)
    before = path.read_bytes()
    code, out, err = run(capsys, "--ldif", str(path), "legacydn", "set", "jsmith",
                         NEW_LEGACY_DN, "--apply")
    line = one_line(code, err, f"line {number}", "':<'")
    assert "TOP-SECRET" not in out + err
    assert path.read_bytes() == before
    with pytest.raises(InputError) as info:
        quiet_load(path)
    assert info.value.line == number and str(info.value) in line


# --- item 16: the export loader and the plan reader agree -------------------------------

def test_version_other_than_1_is_refused_by_both(capsys: pytest.CaptureFixture[str],
                                                 tmp_path: Path) -> None:
    text = SAMPLE_TEXT.replace("version: 1\n", "version: 2\n", 1)
    path = write(tmp_path, text)
    one_line(*run(capsys, "--ldif", str(path), "topology")[::2], "line 1", "version")
    with pytest.raises(InputError, match="version") as info:
        parse_plan("version: 2\n\ndn: CN=a,DC=x\nchangetype: delete\n")
    assert info.value.line == 1


def test_a_utf8_bom_is_accepted_by_both(tmp_path: Path) -> None:
    plain = quiet_load(write(tmp_path, SAMPLE_TEXT, "plain.ldif"))
    bom = quiet_load(write(tmp_path, b"\xef\xbb\xbf" + SAMPLE_TEXT.encode(), "bom.ldif"))
    assert len(bom) == len(plain) and len(plain) > 50
    assert bom.read(KBERG) == plain.read(KBERG)
    assert parse_plan("\ufeffdn: CN=a,DC=x\nchangetype: delete\n").changes


@pytest.mark.parametrize("data", [b"", b"version: 1\n", b"version: 1\n\n",
                                  b"# an export\n# of nothing\n", b"\xef\xbb\xbf\n\n"],
                         ids=["empty", "version-only", "version-blank", "comments", "bom"])
def test_an_export_without_entries_says_so(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                           data: bytes) -> None:
    path = write(tmp_path, data)
    line = one_line(*run(capsys, "--ldif", str(path), "legacydn", "audit")[::2],
                    str(path), "no entries")
    assert "malformed DN" not in line


_HEAD = "version: 1\n\ndn: DC=fabrikam,DC=com\nobjectClass: top\nobjectClass: domain\n"
# (text appended after line 5 of _HEAD, the bad line's number, a word the message holds)
MALFORMED = [
    ("dc: fabrikam\nobjectClass top\n", 7, "expected 'attribute: value'"),
    ("dc: fabrikam\n-\n", 7, "-"),
    ("dc: fabrikam\ncn:: %%%notbase64\n", 7, "base64"),
    ("dc: fabrikam\ncn:: QUJDRA=\n", 7, "base64"),
    ("description: folded over\n  two lines\n and three\nfoo\n", 9, "foo"),
    ("description:< file:///etc/passwd\n", 6, "':<'"),
    ("dc: fabrikam\n\ndn: CN=a,,DC=fabrikam,DC=com\ncn: a\n", 8, "malformed DN"),
    ("dc: fabrikam\n\ncn: a\nobjectClass: top\n", 8, "dn:"),
    ("dc: fabrikam\ndn: CN=b,DC=fabrikam,DC=com\n", 7, "dn:"),
    ("dc: fabrikam\n\nversion: 1\ndn: CN=b,DC=fabrikam,DC=com\ncn: b\n", 8, "version"),
    ("dc: fabrikam\n\ndn: CN=a,DC=fabrikam,DC=com\nchangetype: modify\nreplace: cn\n"
     "cn: b\n-\n", 9, "changetype"),
    ("\n a continuation after a blank line\n", 7, "continuation"),
    ("dc: fab\rrikam\n", 6, "carriage return"),
]


@pytest.mark.parametrize("tail, number, fragment", MALFORMED,
                         ids=[f"line{n}-{i}" for i, (_, n, _) in enumerate(MALFORMED)])
def test_malformed_export_names_the_bad_line_itself(capsys: pytest.CaptureFixture[str],
                                                     tmp_path: Path, tail: str, number: int,
                                                     fragment: str) -> None:
    text = _HEAD + tail
    path = write(tmp_path, text)
    with pytest.raises(InputError) as info:
        quiet_load(path)
    assert info.value.line == number, (str(info.value), number)
    assert fragment in str(info.value)
    one_line(*run(capsys, "--ldif", str(path), "topology")[::2], f"line {number}:")


def test_both_readers_name_the_same_line(tmp_path: Path) -> None:
    """Syntax both readers share (fields, folding, base64, `:<`) fails on one line."""
    for tail, number, _ in MALFORMED:
        if "changetype" in tail or "\n\n" in tail:
            continue  # records only a plan may hold, or an export's own rules
        with pytest.raises(InputError) as plan_error:
            parse_plan(_HEAD + tail)
        assert plan_error.value.line == number, (tail, str(plan_error.value))


def test_non_utf8_bytes_in_a_plain_value_name_their_line(capsys: pytest.CaptureFixture[str],
                                                        tmp_path: Path) -> None:
    data = (_HEAD + "dc: fabrikam\n").encode() + b"description: caf\xe9\n"
    path = write(tmp_path, data)
    line = one_line(*run(capsys, "--ldif", str(path), "topology")[::2], "line 7", "UTF-8")
    assert "codec" not in line and "\\x" not in line


# --- item 19: plain words for connection and password trouble ---------------------------

@pytest.mark.parametrize("content, password", [
    ("secret\n", "secret"), ("secret\n\n", "secret"), ("secret\r\n", "secret"),
    ("secret\r\n\r\n\n", "secret"), ("sec ret", "sec ret"),
])
def test_password_file_loses_every_trailing_line_end(tmp_path: Path, content: str,
                                                     password: str) -> None:
    path = tmp_path / "pw"
    path.write_bytes(content.encode())
    assert read_password(str(path)) == password


@pytest.mark.parametrize("content, fragment", [
    ("", "is empty"), ("\n\n", "is empty"),
    ("sec\x01ret\n", "control character"), ("sec\nret\n", "control character"),
])
def test_unusable_password_file_is_one_plain_line(capsys: pytest.CaptureFixture[str],
                                                  tmp_path: Path, content: str,
                                                  fragment: str) -> None:
    path = tmp_path / "pw"
    path.write_bytes(content.encode())
    code, out, err = run(capsys, "--url", "ldap://127.0.0.1:1", "--bind-dn", "CN=x",
                         "--password-file", str(path), "topology")
    line = one_line(code, err, str(path), fragment)
    assert "SASLprep" not in line and "mandatory" not in line
    assert "sec" not in line.replace(str(path), "")  # the password itself is never shown


@pytest.mark.parametrize("url", ["ldap://127.0.0.1:99999", "ldap://127.0.0.1:-1",
                                 "ldap://127.0.0.1:abc"])
def test_a_bad_port_in_the_url_is_named(capsys: pytest.CaptureFixture[str], url: str) -> None:
    line = one_line(*run(capsys, "--url", url, "topology")[::2], url, "port")
    assert "Source port" not in line and "must in range" not in line


@pytest.fixture
def closing_port() -> Iterator[int]:
    """A TCP port on loopback whose listener accepts and at once closes each connection."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    server.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1]
    finally:
        stop.set()
        thread.join(2)
        server.close()


def test_tls_to_a_port_that_closes_is_one_plain_line(capsys: pytest.CaptureFixture[str],
                                                     closing_port: int) -> None:
    url = f"ldaps://127.0.0.1:{closing_port}"
    line = one_line(*run(capsys, "--url", url, "topology")[::2], url, "TLS")
    assert "socket ssl wrapping" not in line and "('" not in line and "_ssl.c" not in line


def test_starttls_refused_by_the_server_is_one_plain_line(capsys: pytest.CaptureFixture[str],
                                                          slapd_factory) -> None:  # type: ignore[no-untyped-def]
    server = slapd_factory(SAMPLE_TEXT.replace("version: 1\n", "", 1))
    line = one_line(*run(capsys, "--url", server.url, "--starttls", "--bind-dn",
                         server.bind_dn, "--password-file", str(server.password_file),
                         "topology")[::2], server.url, "StartTLS")
    assert "protocolError" not in line and "startTLS failed -" not in line


def test_an_export_with_a_dash_line_is_plain(capsys: pytest.CaptureFixture[str],
                                             tmp_path: Path) -> None:
    """ldif's `bytes.index` error leaked as 'malformed LDIF: subsection not found'."""
    path = write(tmp_path, "version: 1\n\ndn: DC=x\ndc: x\n-\nobjectClass: top\n")
    line = one_line(*run(capsys, "--ldif", str(path), "topology")[::2], "line 5")
    assert "subsection" not in line


# --- figure (a): generated hostile exports and plans -------------------------------------
#
# Each example is the sample (or a plan that applies cleanly to it) with 1-4 mutations
# drawn from what hostile or careless files hold.  Every run must exit 0, 1 or 2, print
# no traceback, at most one line on stderr apart from the loader's documented notes
# (parents implied, opaque attributes, unknown classes, skipped special records: one
# line each, about the file, never an error) and, for a refused plan (exit 1), apply's
# line per step that does not match the directory; and leave the file or server exactly as
# it was when it exits 1 or 2.  An export written back after exit 0 must load again.
# The 1,000-example runs are `slow` (each run loads the sample into ldap3's mock, about
# 0.05-0.3 s); a 40-example sample of the same tests runs in the fast suite.  All are
# derandomized: CI sees the same examples every run.

import os  # noqa: E402
import re  # noqa: E402
import tempfile  # noqa: E402
from collections import Counter  # noqa: E402

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

SAMPLE_BYTES = SAMPLE.read_bytes()
_NOTE = re.compile(r"^exdir: .*: (\d+ parent entries not in the file were implied|kept as "
                   r"opaque values|unknown object classes kept as they are|skipped the "
                   r"special record)")
# `exdir apply` refusing a plan (exit 1) names each step that does not match the
# directory on a line of its own (exdir.apply's refusals), then says it in one line
_STEP_REFUSAL = re.compile(r"^exdir: step \d+ \(")
HOSTILE_PLAN = f"""version: 1

# a new contact
dn: CN=Hostile Contact,{'OU=Staff,DC=fabrikam,DC=com'}
changetype: add
objectClass: top
objectClass: contact
cn: Hostile Contact
proxyAddresses: SMTP:hostile@fabrikam.com

dn: {KBERG}
changetype: modify
add: description
description: hostile
-
replace: displayName
displayName: Karen B
-

dn: CN=Hostile Contact,OU=Staff,DC=fabrikam,DC=com
changetype: modrdn
newrdn: CN=Hostile Contact 2
deleteoldrdn: 1

# legacyExchangeDN set, old value kept as X500
dn: CN=Smith\\, John,OU=Staff,DC=fabrikam,DC=com
changetype: modify
delete: legacyExchangeDN
legacyExchangeDN: /o=Fabrikam/ou=First Administrative Group/cn=Recipients/cn
 =jsmith
-
add: legacyExchangeDN
legacyExchangeDN: /o=Fabrikam/ou=Europe/cn=Recipients/cn=jsmith2
-
add: proxyAddresses
proxyAddresses: X500:/o=Fabrikam/ou=First Administrative Group/cn=Recipients
 /cn=jsmith
-
""".encode()

_CONTROL = st.sampled_from([chr(c) for c in [*range(0, 32), 127]]).map(str.encode)
_NAMES = st.sampled_from(["cn", "description", "proxyAddresses", "homeMDB", "objectClass",
                          "legacyExchangeDN", "mail", "msExchMailboxGuid", "dn",
                          "changetype", "version", "vendorAttr", "-", "add", "replace"])
_JUNK_VALUES = st.one_of(st.binary(max_size=24),
                         st.text(max_size=24).map(lambda t: t.encode("utf-8", "surrogatepass")),
                         _CONTROL)


def _lines(data: bytes) -> list[bytes]:
    return data.split(b"\n")


@st.composite
def _mutation(draw: st.DrawFn, plan: bool) -> tuple[str, object]:
    kinds = ["truncate", "insert-bytes", "control", "bom", "bad-base64", "fold",
             "bad-fold", "case-duplicate", "multi-rdn", "huge-line", "url", "changetype",
             "version", "drop-line", "duplicate-line", "swap-lines", "merge-records",
             "duplicate-record", "junk-line", "crlf", "non-utf8"]
    if plan:
        kinds += ["drop-dash", "deleteoldrdn", "retarget", "block-attr", "plan-op",
                  "add-existing", "delete-existing"]
    kind = draw(st.sampled_from(kinds))
    return kind, (draw(st.integers(0, 1 << 30)), draw(st.integers(0, 1 << 30)),
                  draw(_JUNK_VALUES), draw(_NAMES))


def _mutate(data: bytes, kind: str, params: object) -> bytes:
    """One mutation; a and b pick positions, junk is random bytes, name an attribute."""
    a, b, junk, name = params  # type: ignore[misc]
    lines = _lines(data)
    i, j = a % max(len(lines), 1), b % max(len(lines), 1)
    record_starts = [n for n, ln in enumerate(lines) if ln.lower().startswith(b"dn:")] or [0]
    r = record_starts[a % len(record_starts)]
    if kind == "truncate":
        return data[: a % (len(data) + 1)]
    if kind == "insert-bytes":
        k = a % (len(data) + 1)
        return data[:k] + junk + data[k:]
    if kind == "control":
        k = a % (len(data) + 1)
        return data[:k] + bytes([b % 32 if b % 33 else 127]) + data[k:]
    if kind == "bom":
        return [b"\xef\xbb\xbf" + data, b"\xff\xfe" + data, b"\xef\xbb\xbf\xef\xbb\xbf" + data,
                b"\xff\xfe" + data.decode("utf-8", "replace").encode("utf-16-le")][b % 4]
    if kind == "bad-base64":
        lines.insert(i, name.encode() + b":: " + [b"%%%", b"QUJDRA=", b"Q", junk.hex().encode(),
                                                   b"////"][b % 5])
    elif kind == "fold" and lines[i]:
        k = 1 + b % max(len(lines[i]), 1)
        lines[i:i + 1] = [lines[i][:k], b" " + lines[i][k:]]
    elif kind == "bad-fold":
        lines.insert(i, [b" continued", b"", b" "][b % 3])
        lines.insert(i + 1, b" orphan continuation")
    elif kind == "case-duplicate":
        m = re.match(rb"([A-Za-z][A-Za-z0-9-]*):", lines[i])
        attr = m.group(1) if m else name.encode()
        lines.insert(i + 1, attr.swapcase() + b": " + (junk.hex().encode() or b"x"))
    elif kind == "multi-rdn":
        lines[r] = re.sub(rb"^(dn:\s*[A-Za-z]+=[^,+]*)", rb"\1+SN=" + (junk.hex().encode()
                                                                        or b"b"), lines[r])
    elif kind == "huge-line":
        lines.insert(i, b"description: " + b"x" * (10_000 + a % 300_000))
    elif kind == "url":
        lines.insert(max(i, r + 1), name.encode() + b":< " + [b"file:///etc/passwd",
                                                              b"http://127.0.0.1:1/x",
                                                              b"file:///dev/zero"][b % 3])
    elif kind == "changetype":
        lines.insert(r + 1, b"changetype: " + [b"add", b"modify", b"delete", b"modrdn",
                                               b"moddn", b"ADD", junk][b % 7])
    elif kind == "version":
        lines.insert([0, i][b % 2], b"version: " + [b"1", b"2", b"0", b"", junk][a % 5])
    elif kind == "drop-line":
        del lines[i]
    elif kind == "duplicate-line":
        lines.insert(j, lines[i])
    elif kind == "swap-lines":
        lines[i], lines[j] = lines[j], lines[i]
    elif kind == "merge-records":
        blanks = [n for n, ln in enumerate(lines) if not ln.strip()]
        if blanks:
            del lines[blanks[a % len(blanks)]]
    elif kind == "duplicate-record":
        end = next((n for n in range(r, len(lines)) if not lines[n].strip()), len(lines))
        lines.extend([b""] + lines[r:end])
    elif kind == "junk-line":
        lines.insert(i, junk)
    elif kind == "crlf":
        return data.replace(b"\n", [b"\r\n", b"\r", b"\n\r"][b % 3])
    elif kind == "non-utf8":
        lines.insert(max(i, r + 1), name.encode() + b": caf\xe9 \xff\xfe")
    elif kind == "drop-dash":
        dashes = [n for n, ln in enumerate(lines) if ln == b"-"]
        if dashes:
            del lines[dashes[a % len(dashes)]]
    elif kind == "deleteoldrdn":
        return data.replace(b"deleteoldrdn: 1", b"deleteoldrdn: " + [b"0", b"", b"2", junk][b % 4])
    elif kind == "retarget":
        lines[r] = b"dn: " + [b"CN=Nobody,OU=Staff,DC=fabrikam,DC=com", b"CN=x,DC=elsewhere",
                              b"DC=fabrikam,DC=com", KBERG.encode(), b"CN=a+SN=b,OU=Staff,"
                              b"DC=fabrikam,DC=com", b"", junk][b % 7]
    elif kind == "block-attr":
        ops = [n for n, ln in enumerate(lines) if re.match(rb"(add|delete|replace): ", ln)]
        if ops:
            n = ops[a % len(ops)]
            lines[n] = lines[n].split(b":")[0] + b": " + name.encode()
    elif kind == "plan-op":
        ops = [n for n, ln in enumerate(lines) if re.match(rb"(add|delete|replace): ", ln)]
        if ops:
            n = ops[a % len(ops)]
            lines[n] = [b"add", b"delete", b"replace", b"increment", b"control"][b % 5] + \
                lines[n][lines[n].index(b":"):]
    elif kind == "add-existing":
        lines.extend([b"", b"dn: CN=Kim Akers,OU=Staff,DC=fabrikam,DC=com",
                      b"changetype: add", b"objectClass: top", b"objectClass: user",
                      b"cn: Kim Akers"])
    elif kind == "delete-existing":
        lines.extend([b"", b"dn: " + [b"CN=Kim Akers,OU=Staff,DC=fabrikam,DC=com",
                                      b"OU=Staff,DC=fabrikam,DC=com"][b % 2],
                      b"changetype: delete"])
    return b"\n".join(lines)


@st.composite
def hostile(draw: st.DrawFn, base: bytes, plan: bool = False) -> tuple[bytes, list[str]]:
    data = base
    kinds: list[str] = []
    for kind, params in draw(st.lists(_mutation(plan), min_size=1, max_size=4)):
        data = _mutate(data, kind, params)
        kinds.append(kind)
    return data, kinds


# Exit 3 (a step failed at write time, everything rolled back) is allowed, counted by
# reason, and the directory checked as before: a server refuses what its schema forbids
# (slapd: "the entry would break its object class rules"), which no check before the
# write can know; and the in-memory directory still meets at write time a delete of an
# entry that has children and an add under a missing parent (issue 10, item 20).
ALLOWED_EXITS = (0, 1, 2, 3)


def check_run(code: int, out: str, err: str, what: str) -> list[str]:
    """The contract for any run on hostile input; the stderr lines that are not notes."""
    assert code in ALLOWED_EXITS, (what, code, err[-2000:])
    assert "Traceback" not in out + err, (what, err[-2000:])
    lines = [ln for ln in err.splitlines() if not _NOTE.match(ln)
             and not (code == 1 and _STEP_REFUSAL.match(ln))]
    assert len(lines) <= 1, (what, err[-2000:])
    assert all(ln.startswith("exdir: ") for ln in lines), (what, err[-2000:])
    return lines


LEGACYDN_SET = ["legacydn", "set", "jsmith", NEW_LEGACY_DN, "--apply"]


COMMANDS = {"audit": ["legacydn", "audit"], "set": LEGACYDN_SET}


def _exports_property(capsys: pytest.CaptureFixture[str], stats: Counter[str],
                      labels: tuple[str, ...]):  # type: ignore[no-untyped-def]
    def body(example: tuple[bytes, list[str]]) -> None:
        data, kinds = example
        with tempfile.TemporaryDirectory() as folder:
            os.chdir(folder)
            path = Path(folder) / "export.ldif"
            path.write_bytes(data)
            what = f"{kinds} {data[:200]!r}"
            for label, args in ((label, COMMANDS[label]) for label in labels):
                code = main(["--ldif", str(path), *args])
                captured = capsys.readouterr()
                check_run(code, captured.out, captured.err, f"{label} {what}")
                stats[f"{label} exit {code}"] += 1
                if code != 0 or label == "audit":
                    assert path.read_bytes() == data, (label, code, what)
                elif path.read_bytes() != data:
                    open_ldif(str(path), warn=lambda m: None)  # what exdir wrote loads again
                    stats["set rewrote the file"] += 1
    return body


def _run_exports(capsys: pytest.CaptureFixture[str], examples: int, derandomize: bool,
                 labels: tuple[str, ...] = ("audit", "set")) -> Counter[str]:
    stats: Counter[str] = Counter()
    body = _exports_property(capsys, stats, labels)
    cwd = os.getcwd()
    try:
        settings(max_examples=examples, deadline=None, database=None, derandomize=derandomize,
                 suppress_health_check=list(HealthCheck))(given(hostile(SAMPLE_BYTES))(body))()
    finally:
        os.chdir(cwd)
    print(f"\nhostile exports: {sorted(stats.items())}")
    # the generator reaches both sides of the contract: loads that work and refusals
    for label in labels:
        assert stats[f"{label} exit 2"] > 0 and stats[f"{label} exit 0"] > 0, stats
    return stats


def test_hostile_exports_sample(capsys: pytest.CaptureFixture[str]) -> None:
    _run_exports(capsys, 40, derandomize=True)


@pytest.mark.slow
@pytest.mark.parametrize("label", ["audit", "set"])
def test_1000_hostile_exports(capsys: pytest.CaptureFixture[str], label: str) -> None:
    """`legacydn audit` and `legacydn set ... --apply`, 1,000 exports each."""
    stats = _run_exports(capsys, 1000, derandomize=True, labels=(label,))
    assert sum(v for k, v in stats.items() if k.startswith(f"{label} exit")) >= 1000


def _plans_property(capsys: pytest.CaptureFixture[str], stats: Counter[str],
                    options, state, reset):  # type: ignore[no-untyped-def]
    def body(example: tuple[bytes, list[str]]) -> None:
        data, kinds = example
        with tempfile.TemporaryDirectory() as folder:
            os.chdir(folder)
            plan = Path(folder) / "plan.ldif"
            plan.write_bytes(data)
            reset()
            before = state()
            code = main([*options(), "apply", str(plan), "--apply"])
            captured = capsys.readouterr()
            check_run(code, captured.out, captured.err, f"{kinds} {data[:300]!r}")
            stats[f"apply exit {code}"] += 1
            if code == 3:  # which failures reach write time (see ALLOWED_EXITS)
                reason = re.sub(r".*?: (the [^;(]*).*", r"\1", captured.err.strip())
                stats[f"exit 3: {reason[:60]}"] += 1
            if code in (1, 2, 3):
                assert state() == before, (code, kinds, captured.err)
    return body


def _run_plans(capsys: pytest.CaptureFixture[str], examples: int, derandomize: bool,
               options, state, reset=lambda: None) -> Counter[str]:  # type: ignore[no-untyped-def]
    stats: Counter[str] = Counter()
    body = _plans_property(capsys, stats, options, state, reset)
    cwd = os.getcwd()
    try:
        settings(max_examples=examples, deadline=None, database=None, derandomize=derandomize,
                 suppress_health_check=list(HealthCheck))(
            given(hostile(HOSTILE_PLAN, plan=True))(body))()
    finally:
        os.chdir(cwd)
    print(f"\nhostile plans: {sorted(stats.items())}")
    assert stats["apply exit 2"] > 0 and stats["apply exit 0"] + stats["apply exit 1"] > 0, stats
    return stats


def _ldif_target(tmp_path: Path):  # type: ignore[no-untyped-def]
    """A fresh copy of the sample for every plan (a plan that applies changes it)."""
    path = tmp_path / "directory.ldif"

    def reset() -> None:
        path.write_bytes(SAMPLE_BYTES)

    return lambda: ["--ldif", str(path)], path.read_bytes, reset


def test_the_hostile_plan_applies_cleanly(capsys: pytest.CaptureFixture[str],
                                          tmp_path: Path) -> None:
    """The base of every generated plan is a good one: its mutations are what fails."""
    path = write(tmp_path, SAMPLE_BYTES, "directory.ldif")
    plan = write(tmp_path, HOSTILE_PLAN, "plan.ldif")
    code, out, err = run(capsys, "--ldif", str(path), "apply", str(plan), "--apply")
    assert code == 0, err
    assert "applied 4 step(s)" in err


def test_hostile_plans_sample(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    _run_plans(capsys, 40, True, *_ldif_target(tmp_path))


@pytest.mark.slow
def test_1000_hostile_plans(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    stats = _run_plans(capsys, 1000, True, *_ldif_target(tmp_path))
    assert sum(stats.values()) >= 1000


@pytest.mark.slow
def test_100_hostile_plans_on_slapd(capsys: pytest.CaptureFixture[str], slapd_factory) -> None:  # type: ignore[no-untyped-def]
    """One slapd for all of them: a plan that applies changes what the next one meets,
    which is fine: each run is compared with the server as it found it."""
    from exdir.backends.ldap import open_url
    from tests.plans import snapshot

    server = slapd_factory(SAMPLE_TEXT.replace("version: 1\n", "", 1))
    options = ["--url", server.url, "--bind-dn", server.bind_dn,
               "--password-file", str(server.password_file)]

    def state():  # type: ignore[no-untyped-def]
        with open_url(server.url, server.bind_dn, server.password) as d:
            return snapshot(d)

    stats = _run_plans(capsys, 100, True, lambda: options, state)
    assert sum(stats.values()) >= 100


def test_duplicate_values_in_an_add_are_refused_before_writing(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = write(tmp_path, SAMPLE_BYTES, "directory.ldif")
    plan = write(tmp_path, "dn: CN=Dup Contact,OU=Staff,DC=fabrikam,DC=com\nchangetype: add\n"
                 "objectClass: top\nobjectClass: contact\ncn: Dup Contact\ndescription: a\n"
                 "description: a\n\ndn: CN=Dup Contact,OU=Staff,DC=fabrikam,DC=com\n"
                 "changetype: modrdn\nnewrdn: CN=Dup Contact 2\ndeleteoldrdn: 1\n", "plan.ldif")
    code, out, err = run(capsys, "--ldif", str(path), "apply", str(plan), "--apply")
    assert path.read_bytes() == SAMPLE_BYTES
    # refused at check time (exit 1): one line per conflicting step, then the summary
    assert code == 1, err
    lines = err.strip().splitlines()
    assert lines[0].startswith("exdir: step 1 (add ") and "description" in lines[0], err
    assert lines[-1].startswith("exdir: refused:") and "nothing was written" in lines[-1]
    assert "Traceback" not in err and not list(tmp_path.glob("exdir-undo-*"))
    assert code in (1, 2), err
