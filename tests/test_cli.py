"""The read commands as a user runs them: output, JSON, and one-line errors with exit 2.

Most runs call commands.main.main in-process (capsys); a few run the installed
`exdir` console script in a subprocess, as a user's shell would.
"""
from __future__ import annotations

import dataclasses
import io
import json
import os
import re
import secrets
import shutil
import subprocess
from pathlib import Path
from typing import Any, Iterator

import ldif
import pytest

from commands.main import main
from exdir import dn as dnu
from exdir.backends.memory import open_ldif
from exdir.readers.topology import read_topology
from tests.servers.slapd import MakeSlapd, Slapd, ci_required, free_port

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples"
SAMPLE_NAMES = ("fabrikam", "fabrikam-multidc", "fabrikam-mixed")
ENV = ("EXDIR_LDIF", "EXDIR_URL", "EXDIR_BIND_DN", "EXDIR_PASSWORD")
# docs/exchange.md, "Server versions": what the table shows for a serialNumber.
_RELEASE = {"5.5": "5.5", "6.0": "2000", "6.5": "2003"}


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The user's own EXDIR_* settings must not leak into these runs."""
    for name in ENV:
        monkeypatch.delenv(name, raising=False)


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_one_line_error(code: int, out: str, err: str, *fragments: str) -> None:
    assert code == 2, (code, err)
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("exdir: ")
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in err, (fragment, err)


def file_entries(path: Path) -> list[tuple[str, dict[str, list[str]]]]:
    parser = ldif.LDIFParser(io.BytesIO(path.read_bytes()), encoding=None, strict=True)
    out = []
    for dn, record in parser.parse():
        if dn:
            attrs: dict[str, list[str]] = {}
            for name, values in record.items():
                try:
                    attrs[name.lower()] = [v.decode("utf-8") for v in values]
                except UnicodeDecodeError:
                    pass
            out.append((dn, attrs))
    return out


def file_servers(path: Path) -> dict[str, str]:
    """Server name -> the version label the table should show, from serialNumber."""
    out = {}
    for _dn, attrs in file_entries(path):
        if "msexchexchangeserver" in {c.lower() for c in attrs.get("objectclass", [])}:
            serial = attrs["serialnumber"][0]
            m = re.match(r"Version (\d+)\.(\d+)", serial)
            assert m, serial
            major = int(m.group(1))
            label = "2007" if major == 8 else "2010" if major == 14 else \
                "2013+" if major >= 15 else _RELEASE[f"{m.group(1)}.{m.group(2)}"]
            out[attrs["cn"][0]] = label
    return out


def table(out: str, title: str) -> list[list[str]]:
    """The rows of the titled table in `topology`'s text output, cells split on 2+ spaces."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(title))
    rows = []
    for line in lines[start + 3:]:  # title, header, dashes
        if not line.strip():
            break
        rows.append(re.split(r"\s{2,}", line.strip()))
    return rows


def normalised(data: Any) -> Any:
    """JSON with DN-valued fields compared as DNs (servers spell attribute types as they like)."""
    if isinstance(data, dict):
        return {k: (dnu.key(v) if k in ("dn", "server", "admin_group", "storage_group")
                    and isinstance(v, str) and v else normalised(v)) for k, v in data.items()}
    if isinstance(data, list):
        return [normalised(v) for v in data]
    return data


# --- topology ------------------------------------------------------------------------------

@pytest.mark.parametrize("sample", SAMPLE_NAMES)
def test_topology_table_shows_every_server_with_its_version(
        capsys: pytest.CaptureFixture[str], sample: str) -> None:
    path = SAMPLES / f"{sample}.ldif"
    code, out, err = run(capsys, "--ldif", str(path), "topology")
    assert code == 0, err
    servers = {row[0]: row[1] for row in table(out, "Servers")}
    assert servers == file_servers(path)
    dcs = [row[0] for row in table(out, "Domain controllers")]
    want_dcs = [dnu.split(dn)[1][1] for dn, attrs in file_entries(path)
                if "ntdsdsa" in {c.lower() for c in attrs.get("objectclass", [])}]
    assert sorted(dcs) == sorted(want_dcs)
    assert f"Domain controllers ({len(want_dcs)})" in out
    agreements = [attrs["cn"][0] for _dn, attrs in file_entries(path)
                  if "msexchconnectionagreement" in {c.lower() for c in attrs["objectclass"]}]
    shown = [row[0] for row in table(out, "ADC connection agreements") if row != ["(none)"]]
    assert sorted(shown) == sorted(agreements)
    assert ("mixed mode: yes" in out) is (sample == "fabrikam-mixed")


@pytest.mark.parametrize("sample", SAMPLE_NAMES)
def test_json_topology_matches_read_topology(capsys: pytest.CaptureFixture[str],
                                             sample: str) -> None:
    path = SAMPLES / f"{sample}.ldif"
    code, out, err = run(capsys, "--ldif", str(path), "--json", "topology")
    assert code == 0, err
    data = json.loads(out)
    topo = read_topology(open_ldif(str(path), warn=lambda m: None))
    as_json = lambda items: json.loads(json.dumps([dataclasses.asdict(i) for i in items]))  # noqa: E731
    assert data["organization"] == json.loads(json.dumps(dataclasses.asdict(topo.organization)))
    assert data["servers"] == as_json(topo.servers)
    assert data["admin_groups"] == as_json(topo.admin_groups)
    assert data["storage_groups"] == as_json(topo.storage_groups)
    assert data["stores"] == as_json(topo.stores)
    assert data["mtas"] == as_json(topo.mtas)
    assert data["domain_controllers"] == as_json(topo.domain_controllers)
    assert data["connection_agreements"] == as_json(topo.agreements)
    # and the file agrees: every server, with the version its serialNumber says
    labels = file_servers(path)
    assert {s["name"] for s in data["servers"]} == set(labels)
    for s in data["servers"]:
        assert labels[s["name"]] in (s["version"], s["product"])


def test_lab_generate_then_load(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    out_path = tmp_path / "lab.ldif"
    code, out, err = run(capsys, "lab", "generate", "--mailboxes", "40", "--dcs", "3", "--adc",
                         "--org", "Contoso", "-o", str(out_path))
    assert code == 0, err
    assert out == ""
    code, out, err = run(capsys, "--ldif", str(out_path), "--json", "topology")
    assert code == 0, err
    data = json.loads(out)
    assert data["organization"]["name"] == "Contoso"
    assert data["organization"]["mixed_mode"] is True
    assert {s["version"] for s in data["servers"]} == {"5.5", "2000", "2003", "2007+"}
    assert len(data["domain_controllers"]) == 3
    assert data["connection_agreements"]
    code, out, err = run(capsys, "--ldif", str(out_path), "topology")
    assert code == 0, err
    servers = {row[0]: row[1] for row in table(out, "Servers")}
    assert servers == file_servers(out_path)
    assert "2007" in servers.values()  # the table names the release of a 2007+ server
    code, out, err = run(capsys, "--ldif", str(out_path), "--json", "legacydn", "list")
    assert code == 0, err
    users = [r for r in json.loads(out) if r["class"] == "user"]
    assert len(users) == 40


def test_lab_generate_to_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "lab", "generate", "--mailboxes", "3")
    assert code == 0, err
    assert out.startswith("version: 1\n")
    assert out.count("\nmailNickname: ") >= 3


def test_lab_generate_refuses_a_bad_count(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "lab", "generate", "--mailboxes", "-5")
    assert code == 2 and "Traceback" not in err


# --- legacydn list ---------------------------------------------------------------------------

def _values(path: Path) -> dict[str, str]:
    return {dnu.key(dn): attrs["legacyexchangedn"][0] for dn, attrs in file_entries(path)
            if "legacyexchangedn" in attrs}


def _under(value: str, prefix: str) -> bool:
    v, p = value.lower(), prefix.lower()
    return v == p or v.startswith(p + "/")


def test_legacydn_list_everything(capsys: pytest.CaptureFixture[str]) -> None:
    path = SAMPLES / "fabrikam-mixed.ldif"
    code, out, err = run(capsys, "--ldif", str(path), "--json", "legacydn", "list")
    assert code == 0, err
    rows = json.loads(out)
    assert len(rows) == len({dnu.key(r["dn"]) for r in rows})  # each object once
    assert {dnu.key(r["dn"]): r["legacyExchangeDN"] for r in rows} == _values(path)
    code, text, err = run(capsys, "--ldif", str(path), "legacydn", "list")
    assert code == 0, err
    for value in _values(path).values():
        assert value in text
    assert text.splitlines()[0].split() == ["legacyExchangeDN", "class", "DN"]


@pytest.mark.parametrize("prefix", ["/o=Fabrikam/ou=Europe", "/O=FABRIKAM/OU=EUROPE/CN=RECIPIENTS",
                                    "/o=Fabrikam/ou=Eur"])
def test_legacydn_list_with_prefix(capsys: pytest.CaptureFixture[str], prefix: str) -> None:
    path = SAMPLES / "fabrikam.ldif"
    code, out, err = run(capsys, "--ldif", str(path), "--json", "legacydn", "list",
                         "--prefix", prefix)
    assert code == 0, err
    want = {k: v for k, v in _values(path).items() if _under(v, prefix)}
    assert {dnu.key(r["dn"]): r["legacyExchangeDN"] for r in json.loads(out)} == want
    assert bool(want) is not prefix.endswith("Eur")


ARCHIVE = """
dn: CN=Archive Mailbox,OU=Staff,DC=fabrikam,DC=com
objectClass: top
objectClass: person
objectClass: organizationalPerson
objectClass: user
cn: Archive Mailbox
mailNickname: archive
legacyExchangeDN: /o=Fabrikam Archive/ou=First Administrative Group/cn=Recipients/cn=archive
"""


def test_prefix_counts_whole_parts_only(capsys: pytest.CaptureFixture[str],
                                        tmp_path: Path) -> None:
    path = tmp_path / "archive.ldif"
    path.write_text((SAMPLES / "fabrikam.ldif").read_text(encoding="utf-8").rstrip("\n")
                    + "\n" + ARCHIVE, encoding="utf-8")
    archive = dnu.key("CN=Archive Mailbox,OU=Staff,DC=fabrikam,DC=com")

    def listed(prefix: str) -> set[str]:
        code, out, err = run(capsys, "--ldif", str(path), "--json", "legacydn", "list",
                             "--prefix", prefix)
        assert code == 0, err
        return {dnu.key(r["dn"]) for r in json.loads(out)}

    fabrikam = listed("/o=Fabrikam")
    assert archive not in fabrikam
    assert fabrikam == {k for k, v in _values(SAMPLES / "fabrikam.ldif").items()
                        if _under(v, "/o=Fabrikam")}
    assert listed("/o=Fabrikam Archive") == {archive}
    assert listed("/o=fabrikam archive/OU=First Administrative Group") == {archive}


# --- errors: one line on stderr, exit 2 -------------------------------------------------------

def test_missing_ldif_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.ldif"
    assert_one_line_error(*run(capsys, "--ldif", str(missing), "topology"), str(missing))


def test_ldif_from_the_environment(capsys: pytest.CaptureFixture[str],
                                   monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("EXDIR_LDIF", str(tmp_path / "env.ldif"))
    assert_one_line_error(*run(capsys, "topology"), "env.ldif")


def _malformed(tmp_path: Path, bad_line: str) -> tuple[Path, int, int, int]:
    """A copy of the sample with bad_line inserted in the Sites record.

    Returns the path, the bad line's number, and the first and last line numbers
    of the record that holds it (its dn line to the blank line that ends it).
    """
    lines = (SAMPLES / "fabrikam.ldif").read_text(encoding="utf-8").split("\n")
    at = next(i for i, line in enumerate(lines) if line.startswith("dn: CN=Sites,"))
    lines.insert(at + 1, bad_line)
    end = next(i for i in range(at, len(lines)) if lines[i] == "")
    path = tmp_path / "malformed.ldif"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path, at + 2, at + 1, end + 1


@pytest.mark.parametrize("bad_line", ["this line has no colon", "description:: !!not base64!!"])
def test_malformed_ldif_names_the_line(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                       bad_line: str) -> None:
    path, _bad, first, last = _malformed(tmp_path, bad_line)
    code, out, err = run(capsys, "--ldif", str(path), "topology")
    assert_one_line_error(code, out, err, str(path))
    m = re.search(r"line (\d+)", err)
    assert m, err
    assert first <= int(m.group(1)) <= last, (err, first, last)


def test_malformed_ldif_names_the_exact_line(capsys: pytest.CaptureFixture[str],
                                             tmp_path: Path) -> None:
    path, bad, _first, _last = _malformed(tmp_path, "this line has no colon")
    code, _out, err = run(capsys, "--ldif", str(path), "topology")
    assert code == 2 and f"line {bad}:" in err, (bad, err)


def test_no_directory_given(capsys: pytest.CaptureFixture[str]) -> None:
    assert_one_line_error(*run(capsys, "topology"), "--ldif", "--url")
    assert_one_line_error(*run(capsys, "legacydn", "list"), "--ldif", "--url")


def test_both_ldif_and_url(capsys: pytest.CaptureFixture[str]) -> None:
    assert_one_line_error(*run(capsys, "--ldif", str(SAMPLES / "fabrikam.ldif"), "--url",
                               "ldap://127.0.0.1:1", "topology"), "not both")


def test_not_an_exchange_directory(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "plain.ldif"
    path.write_text("version: 1\n\ndn: DC=example,DC=org\nobjectClass: top\n"
                    "objectClass: domain\ndc: example\n\n"
                    "dn: CN=Configuration,DC=example,DC=org\nobjectClass: top\n"
                    "objectClass: configuration\ncn: Configuration\n", encoding="utf-8")
    assert_one_line_error(*run(capsys, "--ldif", str(path), "topology"), "no Exchange organisation")


def test_unreachable_server(capsys: pytest.CaptureFixture[str]) -> None:
    url = f"ldap://127.0.0.1:{free_port()}"  # bound, then closed: nobody listens there
    assert_one_line_error(*run(capsys, "--url", url, "topology"), url)
    assert_one_line_error(*run(capsys, "--url", url, "legacydn", "list"), url)


def test_unreadable_password_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert_one_line_error(*run(capsys, "--url", "ldap://127.0.0.1:1", "--bind-dn", "CN=x",
                               "--password-file", str(tmp_path / "none"), "topology"),
                          "password file")


def test_debug_shows_the_traceback(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.ldif"
    code, out, err = run(capsys, "--debug", "--ldif", str(missing), "topology")
    assert code == 2
    assert "Traceback" in err and "InputError" in err and str(missing) in err


def test_usage_error_is_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "--ldif", str(SAMPLES / "fabrikam.ldif"), "topologee")
    assert code == 2 and "Traceback" not in err


# --- a real slapd ------------------------------------------------------------------------------

@pytest.fixture
def slapd(slapd_factory: MakeSlapd) -> Slapd:
    text = (SAMPLES / "fabrikam.ldif").read_text(encoding="utf-8")
    return slapd_factory(text.replace("version: 1\n", "", 1))


@pytest.fixture(params=["file", "env"])
def password_source(request: pytest.FixtureRequest, tmp_path: Path,
                    monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A function giving the options that hand exdir a password by file or environment."""
    def give(password: str) -> list[str]:
        if request.param == "file":
            path = tmp_path / "password"
            path.write_text(password + "\n", encoding="utf-8")  # one trailing newline ignored
            return ["--password-file", str(path)]
        monkeypatch.setenv("EXDIR_PASSWORD", password)
        return []
    yield give


def test_good_password_works(capsys: pytest.CaptureFixture[str], slapd: Slapd,
                             password_source: Any) -> None:
    code, out, err = run(capsys, "--url", slapd.url, "--bind-dn", slapd.bind_dn,
                         *password_source(slapd.password), "--json", "topology")
    assert code == 0, err
    assert json.loads(out)["organization"]["name"] == "Fabrikam"
    assert slapd.password not in out + err


@pytest.mark.parametrize("debug", [False, True])
def test_bad_credentials(capsys: pytest.CaptureFixture[str], slapd: Slapd,
                         password_source: Any, debug: bool) -> None:
    wrong = "wrong-" + secrets.token_hex(8)
    args = ["--debug"] if debug else []
    code, out, err = run(capsys, *args, "--url", slapd.url, "--bind-dn", slapd.bind_dn,
                         *password_source(wrong), "topology")
    if debug:
        assert code == 2 and "Traceback" in err
    else:
        assert_one_line_error(code, out, err, "refused")
    assert wrong not in out + err
    assert slapd.password not in out + err


def test_url_gives_the_same_json_topology_as_ldif(capsys: pytest.CaptureFixture[str],
                                                  slapd: Slapd,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EXDIR_PASSWORD", slapd.password)
    code, over_ldap, err = run(capsys, "--url", slapd.url, "--bind-dn", slapd.bind_dn, "--json",
                               "topology")
    assert code == 0, err
    code, from_file, err = run(capsys, "--ldif", str(SAMPLES / "fabrikam.ldif"), "--json",
                               "topology")
    assert code == 0, err
    assert normalised(json.loads(over_ldap)) == normalised(json.loads(from_file))
    code, listed, err = run(capsys, "--url", slapd.url, "--bind-dn", slapd.bind_dn, "--json",
                            "legacydn", "list", "--prefix", "/o=Fabrikam/ou=Europe")
    assert code == 0, err
    assert {dnu.key(r["dn"]) for r in json.loads(listed)} == {
        k for k, v in _values(SAMPLES / "fabrikam.ldif").items() if _under(v, "/o=Fabrikam/ou=Europe")}


# --- the installed console script ---------------------------------------------------------------

@pytest.fixture
def exdir_script() -> str:
    found = shutil.which("exdir")
    if found is None:
        message = "the exdir console script is not installed (pip install -e .)"
        if ci_required():
            pytest.fail(message)
        pytest.skip(message)
    return found


def _script(exdir_script: str, *args: str, env: dict[str, str] | None = None
            ) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in ENV}
    return subprocess.run([exdir_script, *args], capture_output=True, text=True, cwd=ROOT,
                          env={**clean, **(env or {})}, timeout=120)


def test_script_shows_the_sample(exdir_script: str) -> None:
    result = _script(exdir_script, "--ldif", "samples/fabrikam.ldif", "topology")
    assert result.returncode == 0, result.stderr
    servers = {row[0]: row[1] for row in table(result.stdout, "Servers")}
    assert servers == file_servers(SAMPLES / "fabrikam.ldif")


def test_script_error_is_one_line(exdir_script: str, tmp_path: Path) -> None:
    result = _script(exdir_script, "--ldif", str(tmp_path / "none.ldif"), "topology")
    assert_one_line_error(result.returncode, result.stdout, result.stderr, "none.ldif")
    debug = _script(exdir_script, "--debug", "--ldif", str(tmp_path / "none.ldif"), "topology")
    assert debug.returncode == 2 and "Traceback" in debug.stderr


def test_script_bad_credentials(exdir_script: str, slapd: Slapd) -> None:
    wrong = "wrong-" + secrets.token_hex(8)
    result = _script(exdir_script, "--url", slapd.url, "--bind-dn", slapd.bind_dn, "topology",
                     env={"EXDIR_PASSWORD": wrong})
    assert_one_line_error(result.returncode, result.stdout, result.stderr, "refused")
    assert wrong not in result.stdout + result.stderr

