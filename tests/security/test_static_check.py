"""Static security check: ruff's flake8-bandit rules (S) find nothing in the application code. A finding is
fixed or marked on its line with `# noqa: S<code> - <why it is safe>` (see ruff.toml); this test lists the rest."""

import shutil
import subprocess
import sys
from pathlib import Path

from mlops_core.config import PROJECT_ROOT

PATHS = ["mlops_core", "hub_ui", "pages", "app.py", "hub_server.py"]


def _ruff() -> str:
    beside = Path(sys.executable).with_name("ruff")  # the venv's ruff, pinned in requirements.txt
    found = str(beside) if beside.exists() else shutil.which("ruff")
    assert found, "ruff is not installed: pip install -r requirements.txt"
    return found


def test_the_application_code_has_no_unexplained_security_finding():
    proc = subprocess.run(
        [_ruff(), "check", "--select", "S", "--output-format", "concise", "--no-cache", *PATHS],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    findings = [line for line in proc.stdout.splitlines() if ": S" in line]
    assert proc.returncode == 0 and not findings, (
        f"{len(findings)} security finding(s); fix each or mark it `# noqa: S<code> - <reason>`:\n"
        + "\n".join(findings)
        + ("\n" + proc.stderr if proc.returncode not in (0, 1) else "")
    )
