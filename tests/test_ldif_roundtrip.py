"""LDIF out and in: golden files, parse(render(plan)) == plan, malformed input, ldapmodify.

The golden files under tests/golden/ are written and reviewed by hand; the tests
compare against them and never rewrite them.
"""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

from exdir.errors import InputError
from exdir.ldif_in import parse, read_plan
from exdir.ldif_out import comment_lines, entry_record, fold, render, value_line
from exdir.plan import Add, Delete, Mod, Modify, Plan, Rename
from tests.servers.slapd import ci_required, find_tool
from tests.test_plan import SMITH, design_plan, plans

GOLDEN = Path(__file__).parent / "golden"


def tricky_plan() -> Plan:
    """Every record kind and every value LDIF must encode (tests/golden/tricky.ldif)."""
    jorg = "CN=Jörg Müller,OU=Leavers,DC=fabrikam,DC=com"
    return Plan((
        Rename(r"CN=Müller\, Jörg,OU=Staff,DC=fabrikam,DC=com", "CN=Jörg Müller",
               "OU=Leavers,DC=fabrikam,DC=com", "move a leaver"),
        Modify(jorg, (
            Mod("delete", "msExchMailboxGuid", (bytes(range(0x10, 0x20)),)),
            Mod("add", "description", (" leading space", "trailing space ", ":colon", "<angle",
                                       "plain, with # and - inside")),
            Mod("add", "info", ("line one\nline two",
                                "Zürich office, 3rd floor, room 301, next to the lifts and the kitchen",
                                "")),
        ), ""),
        Add("CN=Room 1,OU=Resources,DC=fabrikam,DC=com",
            (("objectClass", ("top", "contact")), ("cn", ("Room 1",))), "create a room"),
        Delete("CN=Old,OU=Resources,DC=fabrikam,DC=com", "remove the old room"),
    ))


# --- golden files ---------------------------------------------------------------------

@pytest.mark.parametrize("name, make", [
    ("rename_org.ldif", design_plan),
    ("rename_org.undo.ldif", lambda: design_plan().inverse()),
    ("tricky.ldif", tricky_plan),
])
def test_rendering_matches_golden_file(name: str, make: object) -> None:
    plan: Plan = make()  # type: ignore[operator]
    golden = (GOLDEN / name).read_text(encoding="utf-8")
    assert render(plan) == golden
    assert parse(golden, name) == plan


def test_undo_golden_file_is_the_inverse_of_the_dry_run() -> None:
    dry = parse((GOLDEN / "rename_org.ldif").read_text(encoding="utf-8"))
    undo = parse((GOLDEN / "rename_org.undo.ldif").read_text(encoding="utf-8"))
    assert dry.inverse() == undo and undo.inverse() == dry


# --- round trip ------------------------------------------------------------------------

def _check_layout(text: str) -> None:
    """What both ldapmodify and ldifde need, whatever the plan held."""
    # once, as a line of its own (a reason comment may say "version:")
    assert text.startswith("version: 1\n")
    assert [ln for ln in text.splitlines() if ln.startswith("version:")] == ["version: 1"]
    assert "\r" not in text and text.endswith("\n")
    for line in text.split("\n"):
        if line.startswith("#"):
            continue  # comments are wrapped at words and may hold any text
        assert len(line) <= 76, line
        assert line.isascii(), line
        assert not line.endswith(" "), line


@given(plans())
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_parse_render_round_trip(plan: Plan) -> None:
    text = render(plan)
    _check_layout(text)
    assert parse(text) == plan


@pytest.mark.parametrize("value", [
    "", " leading", "trailing ", ":colon", "<angle", "a\nb", "a\r\nb", "\x00nul", "Müller", "中文",
    "tab\there", "#hash", "-", "x" * 300, "a " * 100, " " * 80, "ends with\n",
])
def test_text_values_survive(value: str) -> None:
    plan = Plan((Modify(SMITH, (Mod("add", "description", (value,)),), "why"),))
    text = render(plan)
    _check_layout(text)
    back = parse(text)
    assert back == plan
    assert back.changes[0].mods[0].values == (value,)  # type: ignore[union-attr]


@pytest.mark.parametrize("value", [b"", b"\x00", b"\xff\xfe\x00\x01" * 30, bytes(range(256))])
def test_binary_values_survive(value: bytes) -> None:
    plan = Plan((Modify(SMITH, (Mod("add", "msExchMailboxGuid", (value,)),), "guid"),))
    back = parse(render(plan))
    assert back.changes[0].mods[0].values == (value,)  # type: ignore[union-attr]


def test_non_utf8_bytes_on_a_text_attribute_stay_bytes() -> None:
    plan = Plan((Modify(SMITH, (Mod("add", "description", (b"\xff\xfe",)),), ""),))
    assert parse(render(plan)).changes[0].mods[0].values == (b"\xff\xfe",)  # type: ignore[union-attr]


# --- the writer's pieces ---------------------------------------------------------------------

@pytest.mark.parametrize("value, line", [
    ("plain", "a: plain"),
    ("", "a:"),
    (b"", "a:"),
    ("in side: < ok", "a: in side: < ok"),
    (" lead", "a:: IGxlYWQ="),
    ("trail ", "a:: dHJhaWwg"),
    (":c", "a:: OmM="),
    ("<c", "a:: PGM="),
    ("a\nb", "a:: YQpi"),
    ("a\rb", "a:: YQ1i"),
    ("\x00", "a:: AA=="),
    ("é", "a:: w6k="),
    (b"ab", "a:: YWI="),
])
def test_value_line(value: str | bytes, line: str) -> None:
    assert value_line("a", value) == line


def test_fold_at_76_without_trailing_spaces() -> None:
    line = "description: " + "x" * 200
    folded = fold(line)
    assert [len(p) for p in folded] == [76, 76, 63]  # 213 = 76 + 75 + 62
    assert "".join(p[1:] if i else p for i, p in enumerate(folded)) == line
    spaced = "k: " + "a" * 72 + "  b" + "c" * 100
    parts = fold(spaced)
    assert all(not p.endswith(" ") and len(p) <= 76 for p in parts)
    assert "".join(p[1:] if i else p for i, p in enumerate(parts)) == spaced
    assert fold("short") == ["short"]


def test_entry_records_fold_by_width_and_end_with_a_blank_line() -> None:
    """The one entry writer of saves and lab output: the dn line first, a line per value
    in the order given (base64 by value_line's rule), folded at the width unless None."""
    long = "x" * 100
    folded = entry_record("CN=a,DC=x", [("description", [long, " lead"]), ("cn", ["a"])])
    assert folded.endswith("\n\n") and not folded.endswith("\n\n\n")
    lines = folded[:-2].split("\n")
    assert lines[0] == "dn: CN=a,DC=x" and all(len(line) <= 76 for line in lines)
    assert lines[1] == ("description: " + long)[:76] and lines[2].startswith(" ")
    assert lines[3] == "description:: IGxlYWQ=" and lines[4] == "cn: a"
    flat = entry_record("CN=a,DC=x", [("description", [long])], width=None)
    assert flat == f"dn: CN=a,DC=x\ndescription: {long}\n\n"
    added = parse(folded.replace("dn: CN=a,DC=x", "dn: CN=a,DC=x\nchangetype: add", 1))
    assert added.changes[0].attributes == (("description", (long, " lead")), ("cn", ("a",)))


def test_comments_wrap_at_words() -> None:
    lines = comment_lines("word " * 40 + "a" * 100)
    assert all(line.startswith("# ") for line in lines)
    assert all(len(line) <= 76 for line in lines[:-1]) and lines[-1] == "# " + "a" * 100
    assert comment_lines("") == []
    assert comment_lines("two\nlines") == ["# two lines"]


def test_header_comments_are_not_reasons() -> None:
    plan = design_plan()
    text = render(plan, header=["exdir undo file", "undoes: exdir rename org Contoso"])
    assert text.startswith("version: 1\n\n# exdir undo file\n# undoes: exdir rename org Contoso\n\n#")
    assert parse(text) == plan


# --- the reader: what people and other tools write -------------------------------------------

def test_reader_accepts_hand_written_ldif() -> None:
    text = (
        "\ufeff# a file header, not a reason\r\n"
        "\r\n"
        "version: 1\r\n"
        "# first reason,\r\n"
        "# continued\r\n"
        "dn: CN=a,DC=x\r\n"
        "changetype: moddn\r\n"
        "newrdn: CN=b\r\n"
        "deleteoldrdn: 1\r\n"
        "newsuperior: OU=y,\r\n"
        " DC=x\r\n"
        "\r\n"
        "\r\n"
        "dn: CN=b,OU=y,DC=x\r\n"
        "changetype:modify\r\n"
        "replace: mail\r\n"
        "mail: b@x\r\n"
        "# comments inside a record are ignored\r\n"
        "-\r\n"
        "delete: info\r\n"
        "-\r\n"
        "add: description\r\n"
        "description:   spaces after the colon are not the value\r\n"
        "description:: IHNwYWNl\r\n"
        "\r\n"
        "# an entry without changetype is an add\r\n"
        "dn: CN=c,DC=x\r\n"
        "objectClass: top\r\n"
        "objectclass: contact\r\n"
        "cn: c\r\n"
        "\r\n"
        "dn: CN=d,DC=x\r\n"
        "changetype: delete\r\n"
    )
    plan = parse(text)
    assert plan == Plan((
        Rename("CN=a,DC=x", "CN=b", "OU=y,DC=x", "first reason, continued"),
        Modify("CN=b,OU=y,DC=x", (Mod("replace", "mail", ("b@x",)), Mod("delete", "info", ()),
                                  Mod("add", "description", ("spaces after the colon are not the value",
                                                             " space"))), ""),
        Add("CN=c,DC=x", (("objectClass", ("top", "contact")), ("cn", ("c",))),
            "an entry without changetype is an add"),
        Delete("CN=d,DC=x", ""),
    ))


def test_reader_decodes_by_schema() -> None:
    text = ("dn: CN=a,DC=x\nchangetype: modify\nadd: msExchMailboxGuid\nmsExchMailboxGuid:: YWI=\n-\n"
            "add: description\ndescription:: YWI=\ndescription:: //4=\n-\n")
    mods = parse(text).changes[0].mods  # type: ignore[union-attr]
    assert mods[0].values == (b"ab",)  # binary attribute: bytes even when it looks like text
    assert mods[1].values == ("ab", b"\xff\xfe")  # text unless it is not UTF-8


def test_comment_continuation_and_empty_file() -> None:
    assert parse("") == Plan(())
    assert parse("version: 1\n") == Plan(())
    assert parse("# only a comment\n") == Plan(())
    plan = parse("# folded comm\n ent\ndn: CN=a,DC=x\nchangetype: delete\n")
    assert plan.changes[0].reason == "folded comment"


def test_read_plan_file_encodings(tmp_path: Path) -> None:
    text = render(tricky_plan())
    utf8 = tmp_path / "plan.ldif"
    utf8.write_text(text, encoding="utf-8")
    assert read_plan(utf8) == tricky_plan()
    utf16 = tmp_path / "ldifde.ldif"
    utf16.write_bytes(text.replace("\n", "\r\n").encode("utf-16"))  # as ldifde -u writes
    assert read_plan(utf16) == tricky_plan()
    bad = tmp_path / "bad.ldif"
    bad.write_bytes(b"version: 1\n\ndn: CN=a,DC=x\nchangetype: modify\nadd: info\ninfo: \xff\n-\n")
    with pytest.raises(InputError, match="line 6") as info:
        read_plan(bad)
    assert info.value.line == 6 and str(bad) in str(info.value)
    with pytest.raises(InputError, match="cannot read"):
        read_plan(tmp_path / "missing.ldif")


# --- malformed input: InputError naming the line ------------------------------------------------

MALFORMED = [
    # (text, line, message fragment)
    (" continued\ndn: CN=a,DC=x\nchangetype: delete\n", 1, "continuation line"),
    ("version: 1\n\n dangling\n", 3, "continuation line"),
    ("version: 1\n\nchangetype: delete\n", 3, "expected 'dn:'"),
    ("version: 1\n\n# why\ncn: a\n", 4, "expected 'dn:'"),
    ("version: 1\n\ndn: CN=a,DC=x\nchangetype: rename\n", 4, "unknown changetype 'rename'"),
    ("dn: CN=a,DC=x\nchangetype: modify\nadd: mail\ninfo: x\n-\n", 4, "does not match"),
    ("dn: CN=a,DC=x\nchangetype: modify\nadd: mail\nmail: x\nadd: info\ninfo: y\n-\n", 5, "does not match"),
    ("dn: CN=a,DC=x\nchangetype: modify\nadd: mail\nmail:: not*base64\n-\n", 4, "invalid base64"),
    ("dn: CN=a,DC=x\nchangetype: modify\nadd: mail\nmail:: YWJj=\n-\n", 4, "invalid base64"),
    ("dn: CN=a,DC=x\nchangetype: modify\nadd: jpegPhoto\njpegPhoto:< file:///etc/passwd\n-\n", 4,
     "URLs"),
    ("dn: CN=a,DC=x\nchangetype: modify\nadd: mail\n-\n", 3, "at least one value"),
    ("dn: CN=a,DC=x\nchangetype: modify\n-\n", 3, "'-' with no"),
    ("dn: CN=a,DC=x\nchangetype: modify\nincrement: uSNChanged\nuSNChanged: 1\n-\n", 3, "increment"),
    ("dn: CN=a,DC=x\nchangetype: modify\nmail: x\n", 3, "expected 'add:', 'delete:' or 'replace:'"),
    ("dn: CN=a,DC=x\nchangetype: modify\nadd: bad name\n", 3, "invalid attribute name"),
    ("dn: CN=a,DC=x\nchangetype: modrdn\nnewrdn: CN=b\ndeleteoldrdn: 0\n", 4, "deleteoldrdn: 0"),
    ("dn: CN=a,DC=x\nchangetype: modrdn\nnewrdn: CN=b\ndeleteoldrdn: yes\n", 4, "must be 1"),
    ("dn: CN=a,DC=x\nchangetype: modrdn\nnewrdn: CN=b\n", 3, "needs 'deleteoldrdn: 1'"),
    ("dn: CN=a,DC=x\nchangetype: modrdn\ndeleteoldrdn: 1\nnewrdn: CN=b\n", 3, "expected 'newrdn:'"),
    ("dn: CN=a,DC=x\nchangetype: modrdn\n", 2, "needs 'newrdn:'"),
    ("dn: CN=a,DC=x\nchangetype: modrdn\nnewrdn: CN=b,DC=y\ndeleteoldrdn: 1\n", 3, "one RDN"),
    ("dn: CN=a,DC=x\nchangetype: modrdn\nnewrdn: CN=b\ndeleteoldrdn: 1\nnewsuperior: bad\n", 5,
     "malformed DN"),
    ("dn: CN=a,DC=x\nchangetype: modrdn\nnewrdn: CN=b\ndeleteoldrdn: 1\nnewsuperior:\n", 5, "empty"),
    ("dn: CN=a,DC=x\nchangetype: modrdn\nnewrdn: CN=b\ndeleteoldrdn: 1\nfoo: bar\n", 5, "unexpected"),
    ("version: 1\n\n\ndn: not a dn\nchangetype: delete\n", 4, "malformed DN"),
    ("dn:\nchangetype: delete\n", 1, "empty or missing DN"),
    ("dn:: //4=\nchangetype: delete\n", 1, "not UTF-8"),
    ("dn: CN=a,DC=x\nchangetype: delete\ncn: a\n", 3, "no lines after"),
    ("dn: CN=a,DC=x\nchangetype: modify\nadd: mail\nmail: x\n-\ndn: CN=b,DC=x\n", 6, "blank line"),
    ("dn: CN=a,DC=x\ncontrol: 1.2.840.113556.1.4.417\nchangetype: delete\n", 2, "controls"),
    ("dn: CN=a,DC=x\n", 1, "needs attributes"),
    ("dn: CN=a,DC=x\nchangetype: add\ncn: a\n-\n", 4, "belongs in modify records"),
    ("dn: CN=a,DC=x\nchangetype: add\nno colon here\n", 3, "expected 'attribute: value'"),
    ("version: 2\n\ndn: CN=a,DC=x\nchangetype: delete\n", 1, "unsupported LDIF version"),
    ("dn: CN=a,DC=x\nchangetype: delete\n\nversion: 1\n", 4, "must be the first line"),
    ("dn: CN=a,DC=x\nchangetype: modify\nadd: info\ninfo: a\rb\n-\n", 4, "carriage return"),
]


@pytest.mark.parametrize("text, line, fragment", MALFORMED)
def test_malformed_input_names_the_line(text: str, line: int, fragment: str) -> None:
    with pytest.raises(InputError) as info:
        parse(text, "plan.ldif")
    assert info.value.line == line, str(info.value)
    assert fragment in str(info.value)
    assert str(info.value).startswith(f"plan.ldif, line {line}: ")
    assert info.value.exit_code == 2


# --- real OpenLDAP ldapmodify reads what we write ----------------------------------------------

def _ldapmodify_transcript(plan: Plan) -> str:
    """What `ldapmodify -n -v` prints for the plan, by its own printing rules.

    Values print as C strings when all bytes are ASCII, else as `NOT ASCII (n bytes)`.
    """
    def value(v: str | bytes) -> str:
        raw = v.encode("utf-8") if isinstance(v, str) else v
        if not raw.isascii():
            return f"\tNOT ASCII ({len(raw)} bytes)\n"
        return "\t" + raw.split(b"\x00", 1)[0].decode("ascii") + "\n"

    out: list[str] = []
    for c in plan:
        if isinstance(c, Rename):
            out.append(f'!modifying rdn of entry "{c.dn}"\n'
                       f'\tnew RDN: "{c.new_rdn}" (do not keep existing values)\n\n')
        elif isinstance(c, Modify):
            for m in c.mods:
                out.append(f"{m.op} {m.attribute}:\n" + "".join(value(v) for v in m.values))
            out.append(f'!modifying entry "{c.dn}"\n\n')
        elif isinstance(c, Add):
            for name, values in c.attributes:
                out.append(f"add {name}:\n" + "".join(value(v) for v in values))
            out.append(f'!adding new entry "{c.dn}"\n\n')
        else:
            out.append(f'!deleting entry "{c.dn}"\n\n')
    return "".join(out)


def _ldapmodify() -> str:
    path = find_tool("ldapmodify")
    if path is None:
        message = "ldapmodify not installed (apt-get install ldap-utils)"
        if ci_required():
            pytest.fail(f"{message}; CI is set, so this test must run", pytrace=False)
        pytest.skip(message)
    return path


@pytest.mark.parametrize("name, make", [
    ("rename_org", design_plan),
    ("rename_org.undo", lambda: design_plan().inverse()),
    ("tricky", tricky_plan),
])
def test_ldapmodify_reads_rendered_plans(tmp_path: Path, name: str, make: object) -> None:
    """`ldapmodify -n` parses the file without a server and says what it would send."""
    plan: Plan = make()  # type: ignore[operator]
    path = tmp_path / f"{name}.ldif"
    path.write_text(render(plan), encoding="utf-8")
    done = subprocess.run([_ldapmodify(), "-n", "-v", "-f", str(path)], capture_output=True,
                          env={**os.environ, "LDAPNOINIT": "1"}, timeout=30)
    assert done.returncode == 0, done.stderr.decode("utf-8", "replace")
    printed = done.stdout.decode("utf-8")
    printed = "".join(line for line in printed.splitlines(keepends=True)
                      if not line.startswith("\tnew superior"))
    assert printed == _ldapmodify_transcript(plan)


def test_ldapmodify_agrees_on_what_is_malformed(tmp_path: Path) -> None:
    """The reference tool refuses what we refuse, so the check is not ours alone."""
    path = tmp_path / "bad.ldif"
    path.write_text("dn: CN=a,DC=x\nchangetype: rename\n", encoding="utf-8")
    done = subprocess.run([_ldapmodify(), "-n", "-f", str(path)], capture_output=True,
                          env={**os.environ, "LDAPNOINIT": "1"}, timeout=30)
    assert done.returncode != 0
    with pytest.raises(InputError, match="line 2"):
        parse(path.read_text(encoding="utf-8"))



@given(plans())
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
def test_ldapmodify_reads_any_plan(tmp_path: Path, plan: Plan) -> None:
    """Random plans (escaped DNs, base64, folding, empty values) read the same by ldapmodify."""
    path = tmp_path / "plan.ldif"
    path.write_text(render(plan), encoding="utf-8")
    done = subprocess.run([_ldapmodify(), "-n", "-v", "-f", str(path)], capture_output=True,
                          env={**os.environ, "LDAPNOINIT": "1"}, timeout=30)
    assert done.returncode == 0, done.stderr.decode("utf-8", "replace")
    printed = done.stdout.decode("utf-8", "surrogateescape")
    printed = "".join(line for line in printed.splitlines(keepends=True)
                      if not line.startswith("\tnew superior"))
    assert printed == _ldapmodify_transcript(plan)
