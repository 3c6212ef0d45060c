"""The layers of docs/ARCHITECTURE.md, checked by reading every import (no code is run):

- nothing in mlops_core imports streamlit (the core is UI-free; pages and hub_ui are the UI);
- mlops_core/ml and mlops_core/monitoring import no service, no database module and no job code (pure ML);
- the models (tables) import no service;
- pages never open the database or write SQL themselves: no db module, no SQLAlchemy/SQLModel.

A failure names the file, the line and the rule it breaks."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from mlops_core.config import PROJECT_ROOT

CORE = PROJECT_ROOT / "mlops_core"


def _imports(path: Path) -> list[tuple[int, str]]:
    """Absolute module names imported by `path` (relative imports resolved against its package)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = ".".join(path.relative_to(PROJECT_ROOT).with_suffix("").parts[:-1])
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            out.append((node.lineno, mod))
            # `from . import services` / `from mlops_core import db` name modules too
            out += [(node.lineno, f"{mod}.{a.name}") for a in node.names]
    return out


def _files(*folders: Path) -> list[Path]:
    return sorted(p for f in folders if f.exists() for p in ([f] if f.is_file() else f.rglob("*.py")))


def _breaches(files: list[Path], forbidden: tuple[str, ...]) -> list[str]:
    found = []
    for path in files:
        for line, mod in _imports(path):
            if any(mod == f or mod.startswith(f + ".") for f in forbidden):
                found.append(f"{path.relative_to(PROJECT_ROOT)}:{line} imports {mod}")
    return found


RULES = [
    ("the core never imports streamlit", [CORE], ("streamlit",)),
    (
        "pure ML code imports no service, database or job code",
        [CORE / "ml", CORE / "monitoring"],
        ("mlops_core.services", "mlops_core.db", "mlops_core.jobs", "mlops_core.serving"),
    ),
    ("tables import no service", [CORE / "models"], ("mlops_core.services", "mlops_core.serving", "mlops_core.jobs")),
    (
        "pages reach the database only through services",
        [PROJECT_ROOT / "pages", PROJECT_ROOT / "app.py"],
        ("sqlalchemy", "sqlmodel", "mlops_core.db"),
    ),
]


@pytest.mark.parametrize("rule,folders,forbidden", RULES, ids=[r[0] for r in RULES])
def test_every_module_respects_the_layer_rule(rule, folders, forbidden):
    files = _files(*folders)
    assert files, f"no files found for the rule '{rule}': did a folder move?"
    breaches = _breaches(files, forbidden)
    assert not breaches, f"{rule}; fix these imports:\n" + "\n".join(breaches)
