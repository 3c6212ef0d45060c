"""The tracking SDK for notebooks and CI (DESIGN.md, "Tracking SDK"): an HTTP client of the Hub API.

    # export MLOPS_HUB_URL=http://hub.example:8000   (default http://127.0.0.1:8000: `python -m mlops_core serve`)
    # export MLOPS_TOKEN=<personal access token>      (My account, or `python -m mlops_core user token sara`)
    from mlops_core import tracking
    ref = tracking.register_dataset("customers", df, use_case="Customer churn")      # -> "customers@v3" (data engineers)
    df = tracking.load_dataset("customers@v2")                                       # any version
    with tracking.start_run(use_case="Customer churn", dataset=ref, name="rf baseline") as run:
        run.log_params({"n_estimators": 200})
        model.fit(X_train, y_train)
        run.log_metrics({"roc_auc": 0.87})
        run.log_model(model)
    tracking.register_model(run.id, "churn-classifier")                             # -> 3
    tracking.get_run(run.id).status                                                 # "finished"

Nothing here opens the database or the artifact store: every call goes to the Hub API with the token, and the
server checks the role and writes the audit log, exactly as for the UI. Runs logged here are the same records
as runs launched from the UI. Params, metric values and tags are buffered and sent in batches (one request and
one transaction per `BATCH_SIZE` values, and at the end of the run). A connection that fails is retried with
exponential backoff (RETRIES tries), then the call fails with a sentence naming the Hub's address; a run that
cannot reach the Hub is marked failed when the Hub answers again. An exception inside the `with` block marks
the run failed with its traceback and is re-raised. Runs started in CI are tagged with the commit and pipeline.
"""

from __future__ import annotations

import io
import json
import math
import os
import threading
import time
import traceback
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Mapping

import httpx

from .config import Settings
from .errors import AuthenticationFailed, Conflict, DomainError, NotFound, PermissionDenied, ValidationError

BATCH_SIZE = 1000
RETRIES = 4  # tries after the first, waiting BACKOFF_SECONDS * 2**i between them (0.5, 1, 2, 4 s)
BACKOFF_SECONDS = 0.5
TIMEOUT_SECONDS = 120.0  # registering a large dataset validates and profiles it before answering

# Environment variables of CI systems recorded as run tags (tag name -> variable), when set.
CI_TAGS = {
    "git.commit": ("GITHUB_SHA", "CI_COMMIT_SHA", "BUILD_VCS_NUMBER", "GIT_COMMIT"),
    "ci.pipeline": ("GITHUB_RUN_ID", "CI_PIPELINE_ID", "BUILD_ID"),
    "ci.repository": ("GITHUB_REPOSITORY", "CI_PROJECT_PATH"),
    "ci.pipeline_url": ("CI_PIPELINE_URL",),
    "ci.ref": ("GITHUB_REF", "CI_COMMIT_REF_NAME"),
}

__all__ = ["HubUnavailable", "TrackedRun", "get_run", "load_dataset", "register_dataset", "register_model", "start_run"]


class HubUnavailable(DomainError):
    """The Hub did not answer (after the retries), or answered with a server error."""


_STATUS_ERRORS: dict[int, type[DomainError]] = {
    400: ValidationError,
    401: AuthenticationFailed,
    403: PermissionDenied,
    404: NotFound,
    409: Conflict,
    413: ValidationError,
    422: ValidationError,
}


class _Hub:
    """One Hub address and token, with a kept-alive HTTP connection (the SDK logs many small batches)."""

    def __init__(self, url: str, token: str):
        self.url = url
        self.http = httpx.Client(
            base_url=f"{url}/api/v1",
            timeout=TIMEOUT_SECONDS,
            headers={"Authorization": f"Bearer {token}", "User-Agent": "mlops-hub-sdk"},
        )

    def request(self, method: str, path: str, **kw) -> httpx.Response:
        # A POST is retried only when it never reached the server (connect errors): a batch whose answer was
        # lost may have been written, and must not be written twice.
        retry_on = (
            httpx.TransportError if method in ("GET", "PUT", "DELETE") else (httpx.ConnectError, httpx.ConnectTimeout)
        )
        last: Exception | None = None
        for attempt in range(RETRIES + 1):
            if attempt:
                time.sleep(BACKOFF_SECONDS * 2 ** (attempt - 1))
            try:
                response = self.http.request(method, path, **kw)
            except retry_on as exc:
                last = exc
                continue
            except httpx.TransportError as exc:
                raise self._unreachable(exc) from exc
            if response.status_code in (502, 503, 504):  # a proxy or the database restarting: try again
                last = HubUnavailable(_detail(response))
                continue
            return _checked(response)
        raise self._unreachable(last) from last

    def _unreachable(self, exc: Exception | None) -> HubUnavailable:
        why = f"{type(exc).__name__}: {exc}" if exc is not None else "no answer"
        return HubUnavailable(
            f"cannot reach the Hub at {self.url}: {why} (tried {RETRIES + 1} times); is "
            "`python -m mlops_core serve` running there, and is MLOPS_HUB_URL right?"
        )

    def json(self, method: str, path: str, **kw) -> Any:
        return self.request(method, path, **kw).json()


def _detail(response: httpx.Response) -> str:
    try:
        body = response.json()
        detail = body.get("detail") if isinstance(body, dict) else None
    except ValueError:
        detail = None
    return str(detail or response.text[:500] or response.reason_phrase)


def _checked(response: httpx.Response) -> httpx.Response:
    """The response, or the Hub's refusal raised as the matching mlops_core error (its sentence says the fix)."""
    if response.status_code < 400:
        return response
    cls = _STATUS_ERRORS.get(response.status_code)
    if cls is None:
        raise HubUnavailable(f"the Hub answered {response.status_code}: {_detail(response)}")
    raise cls(_detail(response))


_HUBS: dict[tuple[str, str], _Hub] = {}
_HUBS_LOCK = threading.Lock()


def _hub() -> _Hub:
    # A fresh Settings(), not the cached one: a notebook sets MLOPS_TOKEN (or MLOPS_HUB_URL) after importing.
    settings = Settings()
    token = (settings.mlops_token or "").strip()
    if not token:
        raise AuthenticationFailed(
            "MLOPS_TOKEN is not set: create a personal access token on the My account page (or with "
            "`python -m mlops_core user token <your username>` on the Hub) and export MLOPS_TOKEN=<token>"
        )
    url = (settings.hub_url or "").strip().rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise ValidationError(f"MLOPS_HUB_URL must start with http:// or https://, got {url!r}")
    with _HUBS_LOCK:
        hub = _HUBS.get((url, token))
        if hub is None:
            hub = _HUBS[(url, token)] = _Hub(url, token)
        return hub


def _ci_tags() -> dict[str, str]:
    tags = {}
    for tag, names in CI_TAGS.items():
        for name in names:
            value = os.environ.get(name, "").strip()
            if value:
                tags[tag] = value[:500]
                break
    return tags


def _split_ref(ref: str) -> tuple[str, str]:
    """ "customers@v2" -> ("customers", "2"); the server names a bad reference, this only splits it."""
    if not isinstance(ref, str) or not ref.strip():
        raise ValidationError(f"a dataset reference is written name@vN, e.g. customers@v2; got {ref!r}")
    name, _, version = ref.strip().partition("@")
    version = version.strip() or "latest"
    if not name.strip() or " " in name.strip() or "/" in name:
        raise ValidationError(f"{ref!r} is not a dataset reference; write it as name@vN, e.g. customers@v2")
    return name.strip(), version


def _run_view(doc: dict[str, Any]) -> SimpleNamespace:
    """The run as attributes (run.status, run.params, run.metrics, run.tags, run.error, ...)."""
    return SimpleNamespace(**doc)


# --- datasets ------------------------------------------------------------------------------------------


def register_dataset(name: str, data, use_case: int | str | None = None) -> str:
    """Upload a DataFrame, or a CSV/Parquet file path, as a new version of dataset `name`; returns "name@vN".

    The version is validated like any upload; a failed validation is reported in the version's status on
    the Data page (training refuses it until a data engineer approves or waives it)."""
    hub = _hub()
    params: dict[str, Any] = {}
    if use_case is not None:
        params["use_case"] = str(use_case)
    if isinstance(data, (str, os.PathLike)):
        path = Path(data)
        if not path.is_file():
            raise ValidationError(f"there is no file {path}; pass a DataFrame or the path of a CSV or Parquet file")
        params["filename"] = path.name
        with path.open("rb") as f:  # streamed in chunks: the file is never read into memory whole
            doc = hub.json(
                "POST",
                f"/datasets/{name}/versions",
                params=params,
                content=iter(lambda: f.read(1 << 20), b""),
                headers={"Content-Type": "application/octet-stream"},
            )
    else:
        # pandas is heavy: loaded only when a frame is built
        import pandas as pd

        if not isinstance(data, pd.DataFrame):
            raise ValidationError(
                f"register_dataset takes a pandas DataFrame or a file path, not {type(data).__name__}"
            )
        buf = io.BytesIO()
        data.to_parquet(buf, index=False)
        params["filename"] = f"{name}.parquet"
        doc = hub.json(
            "POST",
            f"/datasets/{name}/versions",
            params=params,
            content=buf.getvalue(),
            headers={"Content-Type": "application/vnd.apache.parquet"},
        )
    return doc["ref"]


def load_dataset(ref: str):
    """The data of a dataset version ("name@vN") as a pandas DataFrame — train on exactly what the run records."""
    # pandas is heavy: loaded only when a frame is built
    import pandas as pd

    name, version = _split_ref(ref)
    response = _hub().request("GET", f"/datasets/{name}/versions/{version}/data", params={"format": "parquet"})
    return pd.read_parquet(io.BytesIO(response.content))


# --- runs ----------------------------------------------------------------------------------------------


class TrackedRun:
    """A run being logged from code. Use it through `start_run(...)` as a context manager."""

    def __init__(self, hub: _Hub, run_id: int, batch_size: int = BATCH_SIZE):
        self._hub = hub
        self.id = run_id
        self._batch_size = max(1, int(batch_size))
        self._params: dict[str, Any] = {}
        self._tags: dict[str, Any] = {}
        self._metrics: list[dict[str, Any]] = []
        self._closed = False

    def __repr__(self) -> str:
        return f"<TrackedRun id={self.id}>"

    # -- logging (buffered) --
    def log_params(self, params: Mapping[str, Any]) -> None:
        self._check_open()
        self._params.update({str(k): _jsonable(v) for k, v in dict(params).items()})
        self._maybe_flush()

    def log_param(self, key: str, value: Any) -> None:
        self.log_params({key: value})

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        self._check_open()
        if step is not None and (not isinstance(step, int) or isinstance(step, bool) or step < 0):
            raise ValidationError(f"step must be a whole number >= 0, got {step!r}")
        # Checked here too, so the mistake points at the user's line, not at a later batch.
        for k, v in dict(metrics).items():
            try:
                fv = float(v)
            except (TypeError, ValueError):
                raise ValidationError(f"metric {k!r} must be a number, got {v!r}") from None
            if isinstance(v, bool) or not math.isfinite(fv):
                raise ValidationError(f"metric {k!r} must be a finite number, got {v!r}")
            self._metrics.append({"key": str(k), "value": fv, "step": step})
        self._maybe_flush()

    def log_metric(self, key: str, value: float, step: int | None = None) -> None:
        self.log_metrics({key: value}, step=step)

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        self._check_open()
        self._tags.update({str(k): _jsonable(v) for k, v in dict(tags).items()})
        self._maybe_flush()

    def set_tag(self, key: str, value: Any) -> None:
        self.set_tags({key: value})

    def log_model(self, estimator, input_example=None) -> None:
        """Store a fitted scikit-learn estimator/Pipeline (saved with skops here, checked against the type
        allow-list by the Hub; registrable afterwards). `input_example`: a DataFrame of the features, to
        record the model's input schema."""
        self._check_open()
        self.flush()
        from .ml import persistence, training  # pure ML code: no database, no artifact store

        try:
            data = persistence.dump_model(estimator)
        except Exception as exc:  # noqa: BLE001 - skops refuses what it cannot persist safely
            raise ValidationError(
                f"this model cannot be saved with skops ({type(exc).__name__}: {exc}); "
                "log a scikit-learn estimator or Pipeline"
            ) from exc
        schema = None
        if input_example is not None:
            # pandas is heavy: loaded only when a frame is built
            import pandas as pd

            schema = training.infer_input_schema(pd.DataFrame(input_example))
        elif getattr(estimator, "feature_names_in_", None) is not None:
            schema = [{"name": str(n), "type": "number"} for n in estimator.feature_names_in_]
        form = {"input_schema": json.dumps(schema)} if schema is not None else None
        self._call(
            "PUT",
            f"/runs/{self.id}/model",
            data=form,
            files={"model": (f"{type(estimator).__name__}.skops", data, "application/octet-stream")},
        )

    def log_artifact(self, path: str, data: bytes | str, media_type: str = "application/octet-stream") -> None:
        """Store a file of the run under a relative path ("plots/roc.json")."""
        self._check_open()
        content = data.encode() if isinstance(data, str) else bytes(data)
        self._call("PUT", f"/runs/{self.id}/artifacts/{path}", content=content, headers={"Content-Type": media_type})

    # -- batching --
    def _pending(self) -> int:
        return len(self._metrics) + len(self._params) + len(self._tags)

    def _maybe_flush(self) -> None:
        if self._pending() >= self._batch_size:
            self.flush()

    def flush(self) -> None:
        """Send buffered params, metrics and tags as one request (one transaction on the Hub)."""
        if not self._pending():
            return
        body = {"params": self._params, "tags": self._tags, "metrics": self._metrics}
        self._params, self._tags, self._metrics = {}, {}, []
        self._call("POST", f"/runs/{self.id}/log-batch", json=body)

    def _call(self, method: str, path: str, **kw) -> httpx.Response:
        try:
            return self._hub.request(method, path, **kw)
        except HubUnavailable as exc:
            # The run cannot go on without the Hub: end it failed (if the Hub answers that call) so it does
            # not stay "running" forever, and say why.
            self._closed = True
            self._try_end("failed", f"the SDK lost the Hub: {exc}")
            raise

    def _try_end(self, status: str, error: str | None) -> None:
        try:
            if status == "finished":
                self._hub.request("POST", f"/runs/{self.id}/finish")
            else:
                self._hub.request("POST", f"/runs/{self.id}/fail", json={"status": status, "error": error or ""})
        except DomainError:
            pass  # the Hub is gone or the run already ended: the caller gets the original error

    def _check_open(self) -> None:
        if self._closed:
            raise ValidationError(f"run {self.id} has ended; start a new run to log more")

    # -- lifecycle --
    def end(self, status: str = "finished", error: str | None = None) -> None:
        if self._closed:
            return
        try:
            self.flush()
        except HubUnavailable:
            raise
        except Exception:
            self._closed = True
            self._try_end("failed", error or traceback.format_exc())
            raise
        self._closed = True
        if status == "finished":
            self._hub.request("POST", f"/runs/{self.id}/finish")
        else:
            self._hub.request("POST", f"/runs/{self.id}/fail", json={"status": status, "error": error or ""})

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


def _jsonable(v: Any) -> Any:
    if isinstance(v, (str, int, bool)) or v is None:
        return v
    if isinstance(v, float):
        return v if math.isfinite(v) else str(v)
    try:
        json.dumps(v)
        return v
    except (TypeError, ValueError):
        return str(v)


def start_run(
    *, use_case: int | str | None = None, dataset: str, name: str | None = None, batch_size: int = BATCH_SIZE
) -> TrackedRun:
    """Start a run on a dataset version ("name@vN") of a use case (id or title); use it with `with`."""
    if not isinstance(dataset, str) or not dataset.strip():
        raise ValidationError(f"dataset must be a reference like 'customers@v2', got {dataset!r}")
    hub = _hub()
    body = {"dataset": dataset, "use_case": use_case, "name": name, "tags": _ci_tags()}
    doc = hub.json("POST", "/runs", json=body)
    return TrackedRun(hub, int(doc["id"]), batch_size=batch_size)


def register_model(run_id: int, name: str) -> int:
    """Register a finished run's logged model as the next version of model `name`; returns the version number."""
    return int(_hub().json("POST", "/models", json={"run_id": str(run_id), "name": name})["version"])


def get_run(run_id: int):
    """The run with `status` (queued, running, finished, failed, cancelled), `params`, `metrics`, `tags`, `error`."""
    return _run_view(_hub().json("GET", f"/runs/{run_id}"))
