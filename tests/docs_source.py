"""What the documentation tests read: the help of every command (rendered by
scripts/make_docs.py, the generator of docs/cli.md) and the project's files."""
from __future__ import annotations

import importlib.util
import os
import subprocess
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent


def make_docs() -> ModuleType:
    """scripts/make_docs.py as a module (scripts/ is not a package)."""
    spec = importlib.util.spec_from_file_location("make_docs", ROOT / "scripts" / "make_docs.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_SKIP_DIRS = {".git", "__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache",
              ".hypothesis", "build", "dist", ".venv", "venv"}


def project_files() -> list[Path]:
    """Every file of the project: tracked or new (not ignored) where git knows the tree,
    else every file below the root outside .git and caches."""
    try:
        out = subprocess.run(
            ["git", "-C", str(ROOT), "ls-files", "-z", "--cached", "--others",
             "--exclude-standard"], capture_output=True, check=True, timeout=30).stdout
        names = [n for n in out.decode("utf-8", "surrogateescape").split("\0") if n]
        if names:
            return sorted({ROOT / n for n in names if (ROOT / n).is_file()})
    except (OSError, subprocess.SubprocessError):
        pass
    found = []
    for folder, dirs, files in os.walk(ROOT):
        dirs[:] = [d for d in dirs if d not in _SKIP_DIRS and not d.endswith(".egg-info")]
        found += [Path(folder) / f for f in files if not f.endswith((".pyc", ".pyo"))]
    return sorted(found)
