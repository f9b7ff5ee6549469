"""How exdir installs: the library as `exdir`, the CLI (commands/ in the repository) as
`exdir_cli`, never a top-level `commands` package in site-packages.

In the tree the CLI stays importable as `commands` (pytest's pythonpath, and child
processes run `python -m commands.main` with the tree on PYTHONPATH: the code under
test, installed or not).
"""
from __future__ import annotations

import configparser
import importlib.util
import shutil
import subprocess
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ("exdir", "commands", "setup.cfg", "pyproject.toml", "README.md")


def _setup_cfg() -> configparser.ConfigParser:
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg", encoding="utf-8")
    return config


def _listed(value: str) -> list[str]:
    return [line.strip() for line in value.splitlines() if line.strip()]


def test_every_package_in_the_tree_is_installed_under_its_name() -> None:
    """setup.cfg lists its packages one by one (the CLI's is renamed, so find: cannot):
    a subpackage added to exdir/ and not listed would be missing from an install."""
    options = _setup_cfg()["options"]
    listed = set(_listed(options["packages"]))
    mapping = dict(line.replace(" ", "").split("=") for line in _listed(options["package_dir"]))
    assert mapping == {"exdir_cli": "commands"}
    in_tree = {".".join(p.parent.relative_to(ROOT).parts)
               for p in (ROOT / "exdir").rglob("__init__.py") if "__pycache__" not in p.parts}
    in_tree |= {"exdir_cli" + "".join("." + part for part in p.parent.relative_to(
        ROOT / "commands").parts) for p in (ROOT / "commands").rglob("__init__.py")}
    assert listed == in_tree
    scripts = _listed(_setup_cfg()["options.entry_points"]["console_scripts"])
    assert scripts == ["exdir = exdir_cli.main:run"]


def _install_args() -> list[str]:
    """Offline where it can be: with `wheel` importable (the test extra installs it)
    setuptools builds exdir from this environment, without fetching build dependencies."""
    if importlib.util.find_spec("wheel") is not None:
        return ["--no-build-isolation"]
    return []  # setuptools 65 cannot build a wheel without `wheel`: pip fetches both


def _site_packages(env: Path) -> Path:
    found = list(env.glob("lib/python3*/site-packages")) + list(env.glob("Lib/site-packages"))
    assert len(found) == 1, found
    return found[0]


@pytest.mark.slow
@pytest.mark.parametrize("editable", [False, True], ids=["install", "editable"])
def test_an_install_puts_no_commands_package_in_site_packages(tmp_path: Path,
                                                              editable: bool) -> None:
    source = tmp_path / "src"  # a copy: pip's in-tree build writes egg-info and build/
    source.mkdir()
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, source / name,
                            ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(ROOT / name, source / name)
    env = tmp_path / "venv"
    venv.create(env, system_site_packages=True, with_pip=True)  # typer, ldap3: the system's
    python = env / "bin" / "python"
    done = subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--no-deps",
                           "--disable-pip-version-check", *_install_args(),
                           *(["-e"] if editable else []), str(source)],
                          capture_output=True, text=True, cwd=tmp_path, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    site = _site_packages(env)
    assert not (site / "commands").exists()
    record = next(site.glob("exdir-*.dist-info"))
    top_level = record / "top_level.txt"
    if top_level.exists():
        assert "commands" not in top_level.read_text(encoding="utf-8").split()
    where = subprocess.run(
        [str(python), "-c", "import exdir_cli.main as m, exdir; print(m.__file__); "
                            "print(exdir.__file__)"],
        capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert where.returncode == 0, where.stderr
    cli, library = (Path(p) for p in where.stdout.split())
    home = source if editable else site
    assert cli == home / ("commands" if editable else "exdir_cli") / "main.py"
    assert library == home / "exdir" / "__init__.py"
    script = env / "bin" / "exdir"
    helped = subprocess.run([str(script), "--help"], capture_output=True, text=True,
                            cwd=tmp_path, timeout=60)
    assert helped.returncode == 0, helped.stderr
    assert helped.stdout.startswith("Usage: exdir") and "legacydn" in helped.stdout
    decoded = subprocess.run([str(script), "x500", "decode", "IMCEAEX-_O=FABRIKAM_CN=X@f.com"],
                             capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert decoded.returncode == 0, decoded.stderr
    assert decoded.stdout == "X500:/O=FABRIKAM/CN=X\n"
