"""`python -m mlops_core --help` stays fast: the command modules import neither the database layer nor the
data/ML stack at their top (that is what made --help take seconds)."""

import subprocess
import sys

from mlops_core.config import PROJECT_ROOT

HELP_THEN_LIST_HEAVY_MODULES = """
import runpy, sys
sys.argv = ["mlops_core", "--help"]
try:
    runpy.run_module("mlops_core", run_name="__main__")
except SystemExit:
    pass
print("HEAVY", sorted(m for m in ("pandas", "sklearn", "scipy", "pyarrow", "sqlalchemy") if m in sys.modules))
"""


def test_help_lists_every_command_without_importing_the_database_or_data_stack():
    out = subprocess.run(
        [sys.executable, "-c", HELP_THEN_LIST_HEAVY_MODULES],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "HEAVY []" in out.stdout, out.stdout + out.stderr
    for command in ("init", "demo", "user", "up", "ui", "worker", "serve", "apikey", "dataset", "monitor"):
        assert f"    {command} " in out.stdout, f"{command} missing from --help"
