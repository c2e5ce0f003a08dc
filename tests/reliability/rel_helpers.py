"""Helpers of the reliability suite: they assert the promises of a user error (exit status 2, one line on
stderr that names the file, no traceback). A module with its own name: ``conftest`` is ambiguous across
test folders."""
from __future__ import annotations

import hashlib
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

from workbench.cli import main

_spec = importlib.util.spec_from_file_location("io_fixtures_reliability",
                                               Path(__file__).parents[1] / "data" / "io_fixtures.py")
fixtures = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fixtures)

ROOT = Path(__file__).resolve().parents[2]


def run_cli(capsys, *argv):
    """``workbench ARGV`` in process; returns (exit code, stdout, stderr)."""
    code = main([os.fspath(a) if isinstance(a, Path) else str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def assert_user_error(code: int, err: str, *names: str | Path) -> str:
    """Exit 2, exactly one stderr line, no traceback, naming every one of ``names``."""
    assert code == 2, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    for name in names:
        assert str(name) in lines[0], (name, lines[0])
    return lines[0]


def run_subprocess(*argv, timeout: float = 60, env: dict | None = None, **kw) -> subprocess.CompletedProcess:
    """``python -m workbench.cli ARGV`` under a timeout (a hang fails the test, never the run)."""
    full_env = {**os.environ, "PYTHONWARNINGS": "default", **(env or {})}
    return subprocess.run([sys.executable, "-m", "workbench.cli", *map(str, argv)], capture_output=True,
                          text=True, timeout=timeout, env=full_env, cwd=kw.pop("cwd", ROOT), **kw)


def digest(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()
