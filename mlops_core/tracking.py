"""The tracking SDK for notebooks and CI (DESIGN.md, "Tracking SDK").

    import os
    from mlops_core import tracking
    # MLOPS_TOKEN: a personal access token (`python -m mlops_core user token sara`); DATABASE_URL as the app.
    ref = tracking.register_dataset("customers", df, use_case="Customer churn")      # -> "customers@v3" (data engineers)
    df = tracking.load_dataset("customers@v2")                                       # any validated version
    with tracking.start_run(use_case="Customer churn", dataset=ref, name="rf baseline") as run:
        run.log_params({"n_estimators": 200})
        model.fit(X_train, y_train)
        run.log_metrics({"roc_auc": 0.87})
        run.log_model(model)
    tracking.register_model(run.id, "churn-classifier")                             # -> 3
    tracking.get_run(run.id).status                                                 # "finished"

Runs logged here are the same records as runs launched from the UI (same tables, same pages). Metric
values are buffered and written in batches (one transaction per `BATCH_SIZE` values and at the end of
the run), never one commit per value. An exception inside the `with` block marks the run failed with
its traceback and is re-raised.
"""
from __future__ import annotations

import math
import os
import traceback
from pathlib import Path
from typing import Any, Mapping

from .config import Settings
from .errors import AuthenticationFailed, ValidationError

BATCH_SIZE = 1000

__all__ = ["TrackedRun", "get_run", "load_dataset", "register_dataset", "register_model", "start_run"]


def _db():
    from .db import get_database

    return get_database()


def _actor():
    from .services import users

    # A fresh Settings(), not the cached one: a notebook sets MLOPS_TOKEN after importing the SDK.
    token = (Settings().mlops_token or "").strip()
    if not token:
        raise AuthenticationFailed(
            "MLOPS_TOKEN is not set: create a personal access token with "
            "`python -m mlops_core user token <your username>` (or on the My account page) and "
            "export MLOPS_TOKEN=<token>"
        )
    return users.authenticate_token(_db(), token=token)


def _use_case_id(db, use_case) -> int | None:
    if use_case is None:
        return None
    from .services import usecases

    return usecases.resolve_use_case(db, use_case).id


def register_dataset(name: str, data, use_case: int | str | None = None) -> str:
    """Register a DataFrame, or a CSV/Parquet file path, as a new version of dataset `name`; returns "name@vN".

    The version is validated like any upload; a failed validation is reported in the returned version's
    status on the Data page (training will refuse it until a data engineer approves or waives it)."""
    from .services import datasets

    actor = _actor()
    db = _db()
    uc = _use_case_id(db, use_case)
    if isinstance(data, (str, os.PathLike)):
        path = Path(data)
        if not path.exists():
            raise ValidationError(f"there is no file {path}; pass a DataFrame or the path of a CSV or Parquet file")
        v = datasets.register_version_from_path(db, actor=actor, dataset_name=name, path=str(path), use_case_id=uc,
                                                source_kind="sdk", restrict_to_roots=False)
    else:
        import pandas as pd

        if not isinstance(data, pd.DataFrame):
            raise ValidationError(f"register_dataset takes a pandas DataFrame or a file path, not {type(data).__name__}")
        v = datasets.register_version_from_frame(db, actor=actor, dataset_name=name, frame=data, use_case_id=uc)
    return v.ref


def load_dataset(ref: str):
    """The data of a dataset version ("name@vN") as a pandas DataFrame — train on exactly what the run records."""
    from .services import datasets

    _actor()
    db = _db()
    return datasets.load_frame(db, datasets.resolve_ref(db, ref).id)


class TrackedRun:
    """A run being logged from code. Use it through `start_run(...)` as a context manager."""

    def __init__(self, db, actor, run_id: int, batch_size: int = BATCH_SIZE):
        self._db = db
        self._actor = actor
        self.id = run_id
        self._batch_size = batch_size
        self._params: dict[str, Any] = {}
        self._tags: dict[str, Any] = {}
        self._metrics: list[tuple[str, float, int | None]] = []
        self._closed = False

    def __repr__(self) -> str:
        return f"<TrackedRun id={self.id}>"

    # -- logging (buffered) --
    def log_params(self, params: Mapping[str, Any]) -> None:
        self._check_open()
        self._params.update({str(k): v for k, v in dict(params).items()})
        self._maybe_flush()

    def log_param(self, key: str, value: Any) -> None:
        self.log_params({key: value})

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        self._check_open()
        if step is not None and (not isinstance(step, int) or isinstance(step, bool) or step < 0):
            raise ValidationError(f"step must be a whole number >= 0, got {step!r}")
        for k, v in dict(metrics).items():
            try:
                fv = float(v)
            except (TypeError, ValueError):
                raise ValidationError(f"metric {k!r} must be a number, got {v!r}") from None
            if isinstance(v, bool) or not math.isfinite(fv):
                raise ValidationError(f"metric {k!r} must be a finite number, got {v!r}")
            self._metrics.append((str(k), fv, step))
        self._maybe_flush()

    def log_metric(self, key: str, value: float, step: int | None = None) -> None:
        self.log_metrics({key: value}, step=step)

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        self._check_open()
        self._tags.update({str(k): v for k, v in dict(tags).items()})
        self._maybe_flush()

    def log_model(self, estimator, input_example=None) -> None:
        """Store a fitted scikit-learn estimator/Pipeline with skops (registrable afterwards).
        `input_example`: a DataFrame of the features, to record the model's input schema."""
        self._check_open()
        self.flush()
        from .services import experiments

        experiments.log_model_for_run(self._db, actor=self._actor, run_id=self.id, estimator=estimator,
                                      input_example=input_example)

    # -- batching --
    def _pending(self) -> int:
        return len(self._metrics) + len(self._params) + len(self._tags)

    def _maybe_flush(self) -> None:
        if self._pending() >= self._batch_size:
            self.flush()

    def flush(self) -> None:
        """Write buffered params, metrics and tags in one transaction."""
        if not self._pending():
            return
        from .services import experiments

        params, tags, metrics = self._params, self._tags, self._metrics
        self._params, self._tags, self._metrics = {}, {}, []
        experiments.log_batch(self._db, actor=self._actor, run_id=self.id, params=params, metrics=metrics, tags=tags)

    def _check_open(self) -> None:
        if self._closed:
            raise ValidationError(f"run {self.id} has ended; start a new run to log more")

    # -- lifecycle --
    def end(self, status: str = "finished", error: str | None = None) -> None:
        if self._closed:
            return
        from .services import experiments

        try:
            self.flush()
        finally:
            self._closed = True
            experiments.end_sdk_run(self._db, actor=self._actor, run_id=self.id, status=status, error=error)

    def __enter__(self) -> "TrackedRun":
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc_type is None:
            self.end("finished")
            return False
        text = "".join(traceback.format_exception(exc_type, exc, tb))
        status = "cancelled" if exc_type is KeyboardInterrupt else "failed"
        try:
            self.end(status, error=f"{exc_type.__name__}: {exc}\n\n{text}")
        except Exception:  # noqa: BLE001, S110 - never hide the user's own exception behind ours
            pass
        return False  # re-raise the user's exception


def start_run(*, use_case: int | str | None = None, dataset: str, name: str | None = None,
              batch_size: int = BATCH_SIZE) -> TrackedRun:
    """Start a run on a dataset version ("name@vN") of a use case (id or title); use it with `with`."""
    from .services import datasets, experiments

    actor = _actor()
    db = _db()
    if not isinstance(dataset, str) or "@" not in dataset and not dataset.strip():
        raise ValidationError(f"dataset must be a reference like 'customers@v2', got {dataset!r}")
    version = datasets.resolve_ref(db, dataset)
    uc = _use_case_id(db, use_case)
    run = experiments.create_sdk_run(db, actor=actor, use_case_id=uc, dataset_version_id=version.id, name=name)
    return TrackedRun(db, actor, run.id, batch_size=batch_size)


def register_model(run_id: int, name: str) -> int:
    """Register a finished run's logged model as the next version of model `name`; returns the version number."""
    from .services import registry

    return registry.register_model(_db(), actor=_actor(), run_id=int(run_id), name=name).version


def get_run(run_id: int):
    """The run with `status` (queued, running, finished, failed, cancelled), `params`, `metrics`."""
    from .services import experiments

    _actor()
    return experiments.get_run(_db(), int(run_id))
