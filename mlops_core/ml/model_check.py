"""The "model loads and predicts" check of a deployment gate, run in a separate, resource-limited process.

A model file is data from whoever logged it. Its types are checked against the exact allow-list
(persistence.check_model_bytes) before anything is built, but an allow-listed model can still be built to
exhaust memory (a zip of a few KB that inflates to gigabytes, an n_outputs_ of 10**9) or to take forever,
and tree internals are indexed without bounds checks. So the UI process (Streamlit), the Hub API and the
worker never load a candidate model themselves: `check_model(model_bytes, sample)` starts

    python -m mlops_core.ml.model_check <folder holding model.skops and sample.parquet>

with an address-space limit (settings.model_check_memory_mb), a CPU limit and a wall-clock timeout
(settings.model_check_timeout_seconds), no database URL, no token and no artifact store in its
environment, and reads one line of JSON from its stdout. Whatever the model does, the caller gets a
`CheckResult` whose `detail` says in a sentence what failed.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MODEL_FILE = "model.skops"
SAMPLE_FILE = "sample.parquet"
# Environment passed to the child: enough to run Python, nothing that grants access to anything.
_ENV_KEEP = ("PATH", "LANG", "LC_ALL", "TZ", "SYSTEMROOT")
_SINGLE_THREAD = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


@dataclass
class CheckResult:
    ok: bool
    stage: str  # "load" | "predict" | "limits" | "process" | "done"
    detail: str  # one sentence for the gate
    rows: int = 0
    pid: int | None = None  # the child's pid (evidence that the caller did not load the model)
    evidence: dict[str, Any] = field(default_factory=dict)


# --- the caller's side ---------------------------------------------------------------------------------


def check_model(
    model_bytes: bytes, sample, *, memory_mb: int | None = None, timeout_seconds: float | None = None
) -> CheckResult:
    """Load `model_bytes` (skops) and predict `sample` (a DataFrame) in a child process under limits."""
    # Imported here, not at the top: the child runs this module as __main__ and must neither read the
    # hub's settings nor import anything before it has limited itself (_limit_self).
    from ..config import PROJECT_ROOT, get_settings

    settings = get_settings()
    memory_mb = int(memory_mb or settings.model_check_memory_mb)
    timeout = float(timeout_seconds or settings.model_check_timeout_seconds)
    limits = {"memory_mb": memory_mb, "timeout_seconds": timeout}
    with tempfile.TemporaryDirectory(prefix="mlops-model-check-") as folder:
        Path(folder, MODEL_FILE).write_bytes(model_bytes)
        try:
            sample.to_parquet(Path(folder, SAMPLE_FILE), index=False)
        except Exception as exc:  # noqa: BLE001 - odd column types that Parquet cannot hold
            return CheckResult(
                False,
                "process",
                f"the training sample could not be handed to the model check ({type(exc).__name__}: {exc})",
                evidence=limits,
            )
        env = {k: os.environ[k] for k in _ENV_KEEP if k in os.environ}
        env.update(
            _SINGLE_THREAD,
            PYTHONPATH=str(PROJECT_ROOT),
            PYTHONDONTWRITEBYTECODE="1",
            MLOPS_CHECK_MEMORY_MB=str(memory_mb),
            MLOPS_CHECK_CPU_SECONDS=str(math.ceil(timeout) + 1),
        )
        # A new session, so a timeout kills the child and anything it started (os.killpg below).
        proc = subprocess.Popen(  # noqa: S603 - our own interpreter and module; the only argument is our temp folder
            [sys.executable, "-s", "-m", "mlops_core.ml.model_check", folder],
            cwd=folder,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            proc.communicate()
            return CheckResult(
                False,
                "limits",
                f"loading the model and predicting {len(sample)} rows did not "
                f"finish within {timeout:g} s (MLOPS_MODEL_CHECK_TIMEOUT_SECONDS); a model this slow "
                "cannot serve requests, so the check was stopped",
                pid=proc.pid,
                evidence=limits,
            )
    return _result_from(proc.returncode, out, err, proc.pid, limits, len(sample))


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        proc.kill()


def _result_from(code: int, out: bytes, err: bytes, pid: int, limits: dict, n: int) -> CheckResult:
    lines = [ln for ln in out.decode("utf-8", "replace").splitlines() if ln.strip()]
    report = None
    if lines:
        try:
            report = json.loads(lines[-1])
        except ValueError:
            report = None
    if isinstance(report, dict) and "ok" in report:
        return CheckResult(
            bool(report["ok"]),
            str(report.get("stage", "done")),
            str(report.get("detail", "")),
            rows=int(report.get("rows") or 0),
            pid=int(report.get("pid") or pid),
            evidence={**limits, **{k: v for k, v in report.items() if k in ("nonfinite",)}},
        )
    tail = err.decode("utf-8", "replace").strip().splitlines()[-1:] or [""]
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        why = {
            "SIGXCPU": f"it used more than {limits['timeout_seconds']:g} s of CPU",
            "SIGKILL": "it was killed (out of memory?)",
            "SIGSEGV": "it crashed (a corrupt model file: tree indices out of bounds?)",
        }.get(name, "it crashed")
        detail = f"the model check process ended with {name} while loading or predicting {n} rows: {why}"
    elif "MemoryError" in " ".join(tail):
        detail = (
            f"the model needs more than {limits['memory_mb']} MB to load and predict {n} rows "
            "(MLOPS_MODEL_CHECK_MEMORY_MB)"
        )
    else:
        detail = f"the model check process failed (exit code {code}): {tail[0][:300] or 'no output'}"
    return CheckResult(False, "process", detail, pid=pid, evidence=limits)


# --- the child's side ----------------------------------------------------------------------------------


def _limit_self() -> None:
    """Apply the limits to this process before anything heavy is imported (so the imports count too)."""
    # POSIX only: imported where the limits are set
    import resource

    # MLOPS_CHECK_* are set by check_model above (from Settings), not by a user: the child's environment
    # is stripped to _ENV_KEEP on purpose, so it reads its limits from there rather than from Settings.
    memory = int(os.environ.get("MLOPS_CHECK_MEMORY_MB", "2048")) * 1024 * 1024
    cpu = int(os.environ.get("MLOPS_CHECK_CPU_SECONDS", "121"))
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def _memory_sentence(stage: str, n: int) -> str:
    mb = os.environ.get("MLOPS_CHECK_MEMORY_MB", "?")
    what = "to load" if stage == "load" else f"to predict {n} rows"
    return f"the model needs more than {mb} MB {what} (MLOPS_MODEL_CHECK_MEMORY_MB); it would exhaust a server"


def _check(folder: Path) -> dict[str, Any]:
    # pandas is heavy: loaded only when a frame is built
    import pandas as pd

    from ..errors import ValidationError
    from . import persistence

    sample = pd.read_parquet(folder / SAMPLE_FILE)
    n = len(sample)
    try:
        model = persistence.load_model_bytes((folder / MODEL_FILE).read_bytes())
    except ValidationError as exc:
        return {"ok": False, "stage": "load", "detail": f"the model does not load: {exc}"}
    except MemoryError:
        return {"ok": False, "stage": "load", "detail": _memory_sentence("load", n)}
    except Exception as exc:  # noqa: BLE001 - any failure to load is the finding
        return {"ok": False, "stage": "load", "detail": f"the model does not load: {type(exc).__name__}: {exc}"}
    try:
        preds = list(model.predict(sample))
    except MemoryError:
        return {"ok": False, "stage": "predict", "detail": _memory_sentence("predict", n)}
    except Exception as exc:  # noqa: BLE001
        return {
            "ok": False,
            "stage": "predict",
            "detail": f"the model fails to predict on its training data: {type(exc).__name__}: {exc}",
        }
    if len(preds) != n:
        return {"ok": False, "stage": "predict", "detail": f"the model returned {len(preds)} predictions for {n} rows"}
    bad = sum(1 for p in preds if isinstance(p, float) and not math.isfinite(p))
    if bad:
        return {"ok": False, "stage": "predict", "detail": f"{bad} predictions are NaN or infinite", "nonfinite": bad}
    return {
        "ok": True,
        "stage": "done",
        "rows": n,
        "detail": f"loaded with skops in a separate process (pid {os.getpid()}, at most "
        f"{os.environ.get('MLOPS_CHECK_MEMORY_MB')} MB) and predicted {n} rows of its training data",
    }


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(
            "usage: python -m mlops_core.ml.model_check FOLDER (holding model.skops and sample.parquet)",
            file=sys.stderr,
        )
        return 2
    _limit_self()
    try:
        import pandas  # noqa: F401 - the libraries every model needs, imported under the limits
        import sklearn  # noqa: F401
        import skops.io  # noqa: F401
    except MemoryError:
        report = {
            "ok": False,
            "stage": "limits",
            "detail": f"the model check cannot even start Python with scikit-learn in "
            f"{os.environ.get('MLOPS_CHECK_MEMORY_MB')} MB; raise MLOPS_MODEL_CHECK_MEMORY_MB",
        }
    else:
        try:
            report = _check(Path(argv[0]))
        except MemoryError:
            report = {"ok": False, "stage": "load", "detail": _memory_sentence("load", 0)}
    report["pid"] = os.getpid()
    sys.stdout.write("\n" + json.dumps(report, default=str) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
