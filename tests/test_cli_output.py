"""What the CLI prints: identity files in any common encoding, output that cannot be
written, control characters from the directory or the command line, and --help
examples a user can copy.

Streams are tested in real subprocesses (`python3 -m commands.main`): a full disk, a
non-UTF-8 locale and a closed terminal only exist there.  The rest runs in-process.
"""
from __future__ import annotations

import base64
import json
import os
import random
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import pytest
import typer

from commands.main import app, main
from exdir.text import printable, printable_json

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples"
SAMPLE = SAMPLES / "fabrikam.ldif"
ENV = ("EXDIR_LDIF", "EXDIR_URL", "EXDIR_BIND_DN", "EXDIR_PASSWORD")
EX2_STORE = "EX2/First Storage Group/Mailbox Store (EX2)"
# every character printable() must never write as it is
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff\u2028\u2029\u202a-\u202e\u2066-\u2069]")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The user's own EXDIR_* settings must not leak into these runs."""
    for name in ENV:
        monkeypatch.delenv(name, raising=False)


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def exdir(*args: str, cwd: Path, stdin: bytes | None = None, stdout: object = subprocess.PIPE,
          stderr: object = subprocess.PIPE, **env: str) -> subprocess.CompletedProcess[bytes]:
    """`exdir ARGS` as a shell runs it: a new process, real file descriptors."""
    environ = {k: v for k, v in os.environ.items() if k not in ENV}
    environ.update(PYTHONPATH=str(ROOT), **env)
    return subprocess.run([sys.executable, "-m", "commands.main", *args], cwd=cwd,
                          input=stdin, stdout=stdout, stderr=stderr, env=environ,
                          timeout=120, check=False)


def one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("exdir: ") and "Traceback" not in err, err
    return lines[0]


def hostile_ldif(tmp_path: Path, value: str) -> Path:
    """fabrikam.ldif with Kim Akers' legacyExchangeDN replaced by value (base64 in the
    file, as an export holds any value with control characters)."""
    text = SAMPLE.read_text(encoding="utf-8")
    old = "legacyExchangeDN: /o=Fabrikam/ou=First Administrative Group/cn=Recipients/cn=kakers\n"
    assert text.count(old) == 1
    encoded = base64.b64encode(value.encode("utf-8", "surrogatepass")).decode("ascii")
    path = tmp_path / "hostile.ldif"
    path.write_text(text.replace(old, f"legacyExchangeDN:: {encoded}\n"), encoding="utf-8")
    return path


# === item 12: --from-file in the encodings an editor saves ==========================

IDENTITIES = "# to EX2\njsmith\nkakers@fabrikam.com\n"


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "utf-16"])
def test_from_file_reads_utf8_and_utf16_with_bom(tmp_path: Path, encoding: str,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """Notepad saves UTF-16 with a BOM ("Unicode") or UTF-8 with one: the same plan."""
    listing = tmp_path / "ids.txt"
    listing.write_bytes(IDENTITIES.encode(encoding))  # utf-16 writes its BOM
    code, direct, err = cli(capsys, "--ldif", str(SAMPLE), "move", "jsmith",
                            "kakers@fabrikam.com", "--to", EX2_STORE)
    assert code == 0, err
    code, out, err = cli(capsys, "--ldif", str(SAMPLE), "move", "--from-file", str(listing),
                         "--to", EX2_STORE)
    assert (code, out) == (0, direct), err


@pytest.mark.parametrize("data, line", [
    ("jsmith\nkakers\nk\xe9rg\n".encode("latin-1"), 3),       # latin-1 é
    (b"jsmith\r\n\x81\x82\r\n", 2),                           # cp1252 junk
    ("jsmith\nkakers\n".encode("utf-16-le"), 1),              # UTF-16 without a BOM
])
def test_from_file_in_another_encoding_is_one_line_naming_file_and_line(
        tmp_path: Path, data: bytes, line: int, capsys: pytest.CaptureFixture[str]) -> None:
    listing = tmp_path / "ids.txt"
    listing.write_bytes(data)
    code, out, err = cli(capsys, "--ldif", str(SAMPLE), "move", "--from-file", str(listing),
                         "--to", EX2_STORE)
    assert (code, out) == (2, ""), err
    message = one_line(err)
    assert str(listing) in message and f"line {line}" in message, message
    assert "internal error" not in message and "codec" not in message, message


def test_from_file_stdin_in_latin1_is_one_line(tmp_path: Path) -> None:
    shutil.copy(SAMPLE, tmp_path / "lab.ldif")
    done = exdir("--ldif", "lab.ldif", "move", "--from-file", "-", "--to", EX2_STORE,
                 cwd=tmp_path, stdin="jsmith\nk\xe9rg\n".encode("latin-1"))
    assert done.returncode == 2, done.stderr
    message = one_line(done.stderr.decode())
    assert "standard input" in message and "line 2" in message, message


# === item 13: output that cannot be written ======================================

@pytest.mark.parametrize("args", [
    ["--ldif", "fabrikam.ldif", "topology"],                 # small: fails at the last flush
    ["--ldif", "fabrikam.ldif", "--json", "legacydn", "list"],
    ["lab", "generate", "--mailboxes", "300"],               # large: fails in a write
    ["--ldif", "fabrikam.ldif", "move", "jsmith", "--to", EX2_STORE],   # a plan, dry run
    ["x500", "--help"],                                      # click's own output
])
def test_a_full_disk_on_stdout_is_one_line_and_exit_2(tmp_path: Path, args: list[str]) -> None:
    shutil.copy(SAMPLE, tmp_path / "fabrikam.ldif")
    with open("/dev/full", "wb") as full:
        done = exdir(*args, cwd=tmp_path, stdout=full)
    assert done.returncode == 2, done.stderr
    message = one_line(done.stderr.decode())
    assert "standard output" in message and "No space left" in message, message
    assert (tmp_path / "fabrikam.ldif").read_bytes() == SAMPLE.read_bytes()


def test_a_full_disk_on_stderr_keeps_the_exit_code(tmp_path: Path) -> None:
    """Nowhere to say it: the exit code still tells (Python itself would exit 120)."""
    with open("/dev/full", "wb") as full:
        done = exdir("x500", "decode", "not-an-address", cwd=tmp_path, stderr=full)
        assert done.returncode == 2
        done = exdir("x500", "decode", "IMCEAEX-_O=FABRIKAM_CN=JSMITH@fabrikam.com",
                     cwd=tmp_path, stderr=full)
        assert done.returncode == 0 and done.stdout == b"X500:/O=FABRIKAM/CN=JSMITH\n"


@pytest.mark.parametrize("args", [["legacydn", "list"], ["topology"], ["--json", "legacydn", "list"],
                                  ["x500", "find", "X500:/o=Fabrikam/ou=Europe/cn=Recipients/cn=k\xe9"]])
def test_an_ascii_locale_escapes_instead_of_a_traceback(tmp_path: Path, args: list[str]) -> None:
    path = hostile_ldif(tmp_path, "/o=Fabrikam/ou=Europe/cn=Recipients/cn=k\xe9")
    done = exdir("--ldif", str(path), *args, cwd=tmp_path, PYTHONIOENCODING="ascii")
    assert done.returncode in (0, 1), done.stderr
    assert b"Traceback" not in done.stderr
    done.stdout.decode("ascii")  # nothing the locale cannot show
    if args[0] == "--json":
        assert any(r["legacyExchangeDN"].endswith("cn=k\xe9") for r in json.loads(done.stdout))
    elif args[0] == "legacydn":
        assert b"cn=k\\xe9" in done.stdout


# === item 18: control characters shown escaped ======================================

def unescape(text: str) -> str:
    """The reader of printable()'s output: proves it is unambiguous."""
    out, i = [], 0
    while i < len(text):
        c = text[i]
        if c == "\\" and text[i + 1:i + 2] == "\\":
            out.append("\\")
            i += 2
        elif c == "\\" and re.match(r"x[0-9a-f]{2}", text[i + 1:i + 4]):
            out.append(chr(int(text[i + 2:i + 4], 16)))
            i += 4
        elif c == "\\" and re.match(r"u[0-9a-f]{4}", text[i + 1:i + 6]):
            out.append(chr(int(text[i + 2:i + 6], 16)))
            i += 6
        else:
            out.append(c)
            i += 1
    return "".join(out)


def test_printable_escapes_controls_and_is_unambiguous() -> None:
    assert printable("\x1b]0;PWNED\x07") == "\\x1b]0;PWNED\\x07"
    assert printable("a\x00b\nc\x7f\x9b\ud800") == "a\\x00b\\x0ac\\x7f\\x9b\\ud800"
    assert printable("\u202eevil") == "\\u202eevil"
    # what a DN or a value holds every day is shown as it is
    for plain in ("CN=Smith\\, John,OU=Staff,DC=fabrikam,DC=com", "CN=a\\2Cb", "Müller 東京",
                  "C:\\temp", ""):
        assert printable(plain) == plain
    # a backslash that could be read as an escape is doubled
    assert printable("\\x1b") == "\\\\x1b" and printable("\\\x1b") == "\\\\\\x1b"
    alphabet = "\\xu0a1b\x1b\x00\n\x7f\x85\ud800 é\u202e"
    rng = random.Random(18)
    for _ in range(5000):
        s = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12)))
        shown = printable(s)
        assert not _CONTROL.search(shown), (s, shown)
        assert unescape(shown) == s, (s, shown)


def test_printable_json_escapes_what_json_dump_leaves() -> None:
    value = {"v": "a\x7fb\x85c\x9b\ud800\u2028\x1b\\"}
    text = printable_json(json.dumps(value, ensure_ascii=False, indent=2))
    assert not _CONTROL.search(text.replace("\n", "")), text
    assert json.loads(text) == value
    assert "é" in printable_json(json.dumps("é", ensure_ascii=False))


HOSTILE = "IMCEAEX-_O=X+1B+5D0+3BPWNED+07+00+0A+7F+C2+9B@d.com"


def test_x500_decode_shows_a_hostile_address_escaped(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = cli(capsys, "x500", "decode", HOSTILE)
    assert code == 0, err
    assert out == "X500:/O=X\\x1b]0;PWNED\\x07\\x00\\x0a\\x7f\\x9b\n"
    code, out, err = cli(capsys, "--json", "x500", "decode", HOSTILE)
    assert code == 0 and not _CONTROL.search(out.replace("\n", "")), out
    assert json.loads(out)["decoded"] == "X500:/O=X\x1b]0;PWNED\x07\x00\n\x7f\x9b"


def test_x500_encode_and_find_show_values_escaped(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    value = "/o=Fabrikam/ou=Europe/cn=Recipients/cn=\x1b]0;PWNED\x07\x9b"
    path = hostile_ldif(tmp_path, value)
    code, out, err = cli(capsys, "--ldif", str(path), "x500", "find", "X500:" + value)
    assert code == 0, err
    assert "CN=Kim Akers" in out and not _CONTROL.search(out.replace("\n", "")), out
    code, out, err = cli(capsys, "--ldif", str(path), "x500", "find", value + "\x07")
    assert code == 1 and not _CONTROL.search(err.replace("\n", "")), err
    assert "\\x1b]0;PWNED\\x07\\x9b\\x07" in one_line(err)
    code, out, err = cli(capsys, "x500", "encode", value, "--domain", "d\x1b.com")
    assert not _CONTROL.search((out + err).replace("\n", "")), (out, err)


@pytest.mark.parametrize("args", [["legacydn", "list"], ["legacydn", "audit"], ["topology"],
                                  ["check"], ["--json", "legacydn", "list"]])
def test_tables_and_findings_show_directory_values_escaped(
        tmp_path: Path, args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    # (a lone surrogate cannot come from an export: its UTF-8 is replaced on loading)
    path = hostile_ldif(tmp_path, "/o=Fabrikam/cn=\x1b]0;PWNED\x07\x00\x7f\x9b")
    text = path.read_text(encoding="utf-8")  # and a hostile organisation value for topology
    assert text.count("legacyExchangeDN: /o=Fabrikam\n") == 1
    path.write_text(text.replace("legacyExchangeDN: /o=Fabrikam\n", "legacyExchangeDN:: "
                                 + base64.b64encode(b"/o=Fabrikam\x1b[2J").decode() + "\n"),
                    encoding="utf-8")
    code, out, err = cli(capsys, "--ldif", str(path), *args)
    assert code in (0, 1), err
    assert not _CONTROL.search((out + err).replace("\n", "")), (out, err)
    if args[0] == "--json":
        assert "/o=Fabrikam/cn=\x1b]0;PWNED\x07\x00\x7f\x9b" in [
            r["legacyExchangeDN"] for r in json.loads(out)]
    elif args == ["legacydn", "list"]:
        assert "\\x1b]0;PWNED\\x07\\x00\\x7f\\x9b" in out, out
    elif args == ["topology"]:
        assert "legacyExchangeDN: /o=Fabrikam\\x1b[2J" in out, out
    elif args == ["legacydn", "audit"]:  # the finding quotes it (as Python's repr: \\x1b)
        assert "PWNED" in out and "x1b]0;PWNED" in out, out


def test_messages_echo_user_input_escaped(capsys: pytest.CaptureFixture[str]) -> None:
    hostile = "no\x1b]0;X\x07body"
    code, out, err = cli(capsys, "--ldif", str(SAMPLE), "move", hostile, "--to", EX2_STORE)
    assert code == 2 and "no\\x1b]0;X\\x07body" in one_line(err), err
    code, out, err = cli(capsys, "--ldif", str(SAMPLE), "move", "jsmith", "--to", hostile)
    assert code == 2 and not _CONTROL.search(err.replace("\n", "")), err
    one_line(err)


# === item 20 (a, b): --help examples that copy and run ==============================

def _commands(group: object, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """Every command path of the CLI (typer vendors click: groups known by shape)."""
    yield path
    if isinstance(getattr(group, "commands", None), dict):
        for name, sub in group.commands.items():
            yield from _commands(sub, (*path, name))


def _examples(capsys: pytest.CaptureFixture[str]) -> list[tuple[tuple[str, ...], str]]:
    found = []
    for path in _commands(typer.main.get_command(app)):
        code, out, err = cli(capsys, *path, "--help")
        assert code == 0, (path, err)
        for line in out.splitlines():
            text = line.strip()
            if text.startswith("Example:") or text.startswith("exdir "):
                found.append((path, text.removeprefix("Example:").strip()))
    return found


_SHELL = {"&&", "||", ";", "|"}
_REDIRECT = {">", ">>", "<", "2>"}
_OUTPUTS = {"-o", "--output", "--report", "--undo-file"}


def _split(words: list[str]) -> list[list[str]]:
    """The exdir commands of one shell line, redirections dropped."""
    commands: list[list[str]] = [[]]
    skip = False
    for w in words:
        if skip:
            skip = False
        elif w in _SHELL:
            commands.append([])
        elif w in _REDIRECT:
            skip = True
        else:
            commands[-1].append(w)
    return [c for c in commands if c]


def _runnable(args: list[str], cwd: Path) -> bool:
    """An example runs here when it reaches no server and every file it reads exists."""
    if "--url" in args:
        return False
    for before, word in zip(["", *args], args):
        if before in _OUTPUTS:
            continue
        if re.search(r"\.(ldif|json|xml|txt)$", word) and not (cwd / word).exists():
            return False
    return True


def test_help_examples_are_whole_commands_that_run(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    """At 80 columns every example is one line that shlex parses, names real mailboxes
    and runs on a copy of the samples (lab.ldif is fabrikam.ldif) with exit 0 or 1;
    one that needs a server or a file of the user's own is at least parsed by exdir."""
    monkeypatch.setenv("COLUMNS", "80")
    examples = _examples(capsys)
    commands = {p for p, _ in examples}
    assert len(examples) >= 15 and ("move",) in commands and ("x500", "decode") in commands
    ran = []
    for i, (path, example) in enumerate(examples):
        words = shlex.split(example, comments=True)  # a wrapped quoted argument fails here
        for args in _split(words):
            assert args[0] == "exdir", (path, example)
            args = args[1:]
            cwd = tmp_path / f"ex{i}"
            if not cwd.exists():
                shutil.copytree(SAMPLES, cwd / "samples")
                if any(a == "--ldif" and b == "lab.ldif" for a, b in zip(words, words[1:])):
                    shutil.copy(SAMPLE, cwd / "lab.ldif")  # the lab the example works on
            monkeypatch.chdir(cwd)
            if _runnable(args, cwd):
                code, out, err = cli(capsys, *args)
                assert code in (0, 1), (path, example, err)
                ran.append(path)
            else:
                code, out, err = cli(capsys, *args, "--help")
                assert code == 0 and "Usage: exdir" in out, (path, example, err)
    assert {("topology",), ("move",), ("x500", "decode"), ("legacydn", "set"),
            ("legacydn", "list"), ("x500", "find"), ("lab", "generate")} <= set(ran), ran


def test_the_move_example_names_sample_mailboxes(capsys: pytest.CaptureFixture[str],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    [example] = [e for p, e in _examples(capsys) if p == ("move",)]
    args = shlex.split(example)[1:]
    assert "--ldif" in args and "--apply" not in args  # a dry run: copying it changes nothing
    args[args.index("--ldif") + 1] = str(SAMPLE)
    code, out, err = cli(capsys, *args)
    assert code == 0, err
    assert out.count("\nchangetype: modify") >= 2, out


# === item 20 (c, d, e): --assume-version and --to SERVER ============================

def test_assume_version_is_checked_when_the_version_is_known(
        capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = cli(capsys, "--ldif", str(SAMPLE), "move", "jsmith", "--to", EX2_STORE,
                         "--assume-version", "foo")
    assert (code, out) == (2, ""), err
    message = one_line(err)
    assert "--assume-version" in message and "'foo'" in message
    assert all(v in message for v in ("5.5", "2000", "2003", "2007+")), message


def test_to_a_server_with_one_mailbox_store_moves_there(capsys: pytest.CaptureFixture[str]
                                                        ) -> None:
    code, by_store, err = cli(capsys, "--ldif", str(SAMPLE), "move", "jsmith", "--to",
                              EX2_STORE)
    assert code == 0, err
    for name in ("EX2", "ex2"):
        code, out, err = cli(capsys, "--ldif", str(SAMPLE), "move", "jsmith", "--to", name)
        assert (code, out) == (0, by_store), err


def test_to_a_server_with_several_mailbox_stores_lists_them(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = SAMPLE.read_text(encoding="utf-8")
    store = re.search(r"dn: CN=Mailbox Store \(EX1\),.*?\n\n", text, re.S)
    assert store
    second = store.group(0).replace("Mailbox Store (EX1)", "Second Store (EX1)").replace(
        "cn=Microsoft Private MDB", "cn=Second Private MDB")
    path = tmp_path / "two.ldif"
    path.write_text(text.replace(store.group(0), store.group(0) + second), encoding="utf-8")
    code, out, err = cli(capsys, "--ldif", str(path), "move", "kakers", "--to", "EX1")
    assert (code, out) == (2, ""), err
    message = one_line(err)
    assert "EX1/First Storage Group/Mailbox Store (EX1)" in message
    assert "EX1/First Storage Group/Second Store (EX1)" in message
    assert "Public Folder" not in message
    code, out, err = cli(capsys, "--ldif", str(path), "move", "kakers", "--to", "EX9")
    assert (code, out) == (2, "") and "EX9" in one_line(err)


def test_a_server_without_serial_number_says_so_plainly(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = SAMPLE.read_text(encoding="utf-8")
    serial = "serialNumber: Version 6.0 (Build 6249.4: Service Pack 3)\n"
    assert text.count(serial) == 1
    path = tmp_path / "noserial.ldif"
    path.write_text(text.replace(serial, ""), encoding="utf-8")
    code, out, err = cli(capsys, "--ldif", str(path), "move", "jsmith", "--to", EX2_STORE)
    assert (code, out) == (1, ""), err
    message = one_line(err)
    assert "None" not in message
    assert "EX2 has no serialNumber" in message and "--assume-version" in message, message
    code, out, err = cli(capsys, "--ldif", str(path), "move", "jsmith", "--to", EX2_STORE,
                         "--assume-version", "2000")
    assert code == 0, err


@pytest.mark.parametrize("debug", [False, True])
def test_an_internal_error_exits_70_with_or_without_debug(
        debug: bool, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    import commands.topology as topology_cmd

    def broken(directory):  # type: ignore[no-untyped-def]
        raise RuntimeError("a bug")

    monkeypatch.setattr(topology_cmd, "read_topology", broken)
    code = main([*(["--debug"] if debug else []), "--ldif", str(SAMPLE), "topology"])
    err = capsys.readouterr().err
    assert code == 70, err
    assert ("Traceback" in err) == debug
    assert "a bug" in err


def test_an_argument_that_is_not_utf8_is_one_line_and_exit_2(tmp_path: Path) -> None:
    path = tmp_path / "lab.ldif"
    shutil.copy(SAMPLE, path)
    original = path.read_bytes()
    for args in ([b"legacydn", b"set", b"\xff", b"/o=Fabrikam/cn=x", b"--apply"],
                 [b"x500", b"find", b"X500:/o=\xff"], [b"move", b"\xff", b"--to", b"EX2"]):
        done = subprocess.run([sys.executable.encode(), b"-m", b"commands.main", b"--ldif",
                               str(path).encode(), *args], cwd=ROOT, capture_output=True)
        err = done.stderr.decode("utf-8", "replace").strip().splitlines()
        assert done.returncode == 2 and len(err) == 1, (args, done.stderr)
        assert "not UTF-8" in err[0] and "Traceback" not in err[0]
    assert path.read_bytes() == original


def test_an_absurdly_deep_dn_is_refused_quickly(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "deep.ldif"
    dn = ",".join(f"CN=x{i}" for i in range(2000)) + ",DC=fabrikam,DC=com"
    path.write_text(SAMPLE.read_text(encoding="utf-8") + f"\ndn: {dn}\nobjectClass: top\n",
                    encoding="utf-8")
    code = main(["--ldif", str(path), "topology"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "more than 256 parts" in err[0]
