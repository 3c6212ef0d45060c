"""Lint and format, as CI runs them (ruff.toml explains the rule set): a finding names the file and line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from mlops_core.config import PROJECT_ROOT

PATHS = ["mlops_core", "hub_ui", "pages", "app.py", "hub_server.py", "tests", "benchmarks"]
RUFF = Path(sys.executable).with_name("ruff")


def _ruff(*args: str) -> subprocess.CompletedProcess:
    if not RUFF.exists():
        pytest.fail(f"ruff is not installed in {RUFF.parent}: run `make install` (it is in requirements.txt)")
    return subprocess.run([str(RUFF), *args, *PATHS], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300)


def test_the_code_passes_ruff_check():
    p = _ruff("check", "--output-format", "concise")
    assert p.returncode == 0, f"ruff check found problems; fix them or run `ruff check --fix`:\n{p.stdout}{p.stderr}"


def test_the_code_is_formatted_with_ruff():
    p = _ruff("format", "--check")
    assert p.returncode == 0, f"these files need `ruff format`:\n{p.stdout}{p.stderr}"
