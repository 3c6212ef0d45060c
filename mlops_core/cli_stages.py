"""Sub-commands of the stages (worker, serve, dataset, apikey, monitor).

Each stage module that exists exposes `register(sub)`; a stage that is not built yet is
simply absent from `--help`.
"""
from __future__ import annotations

import importlib
from pathlib import Path

STAGE_CLI_MODULES = (
    "mlops_core.jobs.cli",          # worker
    "mlops_core.serving.cli",       # serve, apikey
    "mlops_core.datasets_cli",      # dataset add
    "mlops_core.monitoring.cli",    # monitor run
)


def _exists(name: str) -> bool:
    # Look at the file rather than find_spec: find_spec imports the parent package,
    # and `--help` should not pay for importing scipy or scikit-learn.
    root = Path(__file__).resolve().parent.parent
    rel = Path(*name.split("."))
    return (root / rel.with_suffix(".py")).exists() or (root / rel / "__init__.py").exists()


def register(sub) -> None:
    for name in STAGE_CLI_MODULES:
        if _exists(name):
            importlib.import_module(name).register(sub)
