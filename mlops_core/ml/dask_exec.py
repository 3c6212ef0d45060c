"""Run the candidates of one training search, or the partitions of a batch scoring job, on a Dask cluster (issue 16,
MLOPS_DASK_SCHEDULER).

Pure ML glue like the rest of `mlops_core.ml`: it imports no service and reads no setting; the "train" job
handler passes the scheduler address in. The job queue stays in charge of *what* runs; Dask runs the
candidates of one job. One Dask task per candidate (all its folds in it), submitted with `client.submit`
rather than joblib's Dask backend: the search here is our own loop (not GridSearchCV), and one future per
candidate gives the time per candidate, progress per finished candidate and cancellable futures directly.

- `connect()` reaches the scheduler within `CONNECT_TIMEOUT_S` (else `DaskUnavailable` naming the address and
  what to check), waits for at least one Dask worker, and refuses workers whose scikit-learn / numpy / pandas
  differ from this process's (both versions named): a model fitted with other versions would not load here.
- `map_candidates()` ships the data once (replicated to every Dask worker, so a lost worker loses no data), submits
  one task per candidate, reports progress as candidates finish, calls `check_cancelled` while waiting and
  cancels the futures when it raises. A Dask worker lost mid-search: Dask reruns its tasks elsewhere. The
  scheduler lost mid-search: `DaskUnavailable`, so the run fails before anything is stored.
- `map_partitions()` / `score_partition()` score the row-group partitions of a Parquet file for batch scoring:
  each worker reads its own row groups from the shared artifact store and loads the model once per process;
  results come back in partition order, a bounded number in flight (see the section at the end).
- The task function must be importable on the workers (module-level, in a package the workers have): the
  workers need this project's code and the same packages.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, Callable

CONNECT_TIMEOUT_S = 10.0
WORKERS_TIMEOUT_S = 10.0
POLL_S = 0.25
# Packages whose versions must match between this process and every Dask worker.
CHECKED_PACKAGES = ("scikit-learn", "numpy", "pandas")


class DaskUnavailable(RuntimeError):
    """The Dask cluster cannot be used (unreachable, no workers, lost mid-search, mismatched packages)."""


@dataclass
class ClusterRun:
    """Where a search ran and how: recorded on the run."""

    scheduler: str
    n_workers: int
    workers_seen: set[str] = field(default_factory=set)
    workers_lost: int = 0
    candidate_seconds: list[float] = field(default_factory=list)


def local_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in CHECKED_PACKAGES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    return out


def _what_to_check(address: str) -> str:
    return (
        f"check that MLOPS_DASK_SCHEDULER ({address}) is right, that `dask scheduler` is running there, and that its "
        "port is reachable from this worker (firewall, host name); unset MLOPS_DASK_SCHEDULER to train locally"
    )


def connect(address: str, *, timeout: float = CONNECT_TIMEOUT_S, workers_timeout: float = WORKERS_TIMEOUT_S):
    """A `distributed.Client` on `address`, checked: reachable, >= 1 worker, same package versions."""
    try:
        from distributed import Client
    except ImportError as exc:
        raise DaskUnavailable(
            f"MLOPS_DASK_SCHEDULER is set ({address}) but dask[distributed] is not installed on this worker: "
            "pip install 'dask[distributed]==2026.8.0' (the [dask] extra), or unset MLOPS_DASK_SCHEDULER"
        ) from exc
    try:
        client = Client(address, timeout=timeout, set_as_default=False)
    except (OSError, TimeoutError, ValueError) as exc:
        raise DaskUnavailable(
            f"could not reach the Dask scheduler at {address} within {timeout:g} s "
            f"({type(exc).__name__}: {exc}); {_what_to_check(address)}"
        ) from None
    try:
        try:
            client.wait_for_workers(1, timeout=workers_timeout)
        except (TimeoutError, OSError):
            raise DaskUnavailable(
                f"the Dask scheduler at {address} has no workers (waited {workers_timeout:g} s); start `dask worker "
                f"{address}` on the machines that should train, with the same packages as this worker"
            ) from None
        check_versions(client, address)
    except BaseException:
        _close(client)
        raise
    return client


def _worker_versions() -> dict[str, str]:  # runs on each Dask worker
    return local_versions()


def check_versions(client, address: str) -> None:
    """Refuse workers whose scikit-learn/numpy/pandas differ from this process's, naming both versions."""
    mine = local_versions()
    try:
        theirs = client.run(_worker_versions)
    except Exception as exc:  # noqa: BLE001 - an unreadable worker is as unusable as a mismatched one
        raise DaskUnavailable(
            f"could not read package versions from the Dask workers at {address}: {type(exc).__name__}: {exc}"
        ) from None
    problems = []
    for worker, versions in sorted(theirs.items()):
        for pkg in CHECKED_PACKAGES:
            if versions.get(pkg) != mine[pkg]:
                problems.append(f"{pkg} {versions.get(pkg)} on Dask worker {worker} vs {mine[pkg]} on this worker")
    if problems:
        raise DaskUnavailable(
            "incompatible package versions on the Dask cluster at "
            f"{address}: {'; '.join(problems)}; install the same versions (requirements.txt) on every Dask worker"
        )


def _close(client) -> None:
    try:
        client.close(timeout=5)
    except Exception:  # noqa: BLE001, S110 - closing a client whose scheduler is gone may itself fail
        pass


def _worker_addresses(client) -> set[str]:
    try:
        return set(client.scheduler_info(n_workers=-1)["workers"])
    except TypeError:  # older signature without n_workers
        return set(client.scheduler_info()["workers"])


def map_candidates(
    address: str,
    fn: Callable[..., dict[str, Any]],
    candidates: list[dict[str, Any]],
    data: Any,
    *,
    on_done: Callable[[int, int], None],
    check_cancelled: Callable[[], None],
    client=None,
) -> tuple[list[dict[str, Any]], ClusterRun]:
    """`[fn(data, cand) for cand in candidates]` on the cluster, in candidate order.

    `fn(data, cand)` returns a dict (its "seconds" key, if any, is collected as the time per candidate);
    `on_done(finished, total)` is called as candidates finish; `check_cancelled()` is called while waiting
    and, when it raises, the futures are cancelled and the exception propagates."""
    own = client is None
    client = client or connect(address)
    try:
        workers = _worker_addresses(client)
        info = ClusterRun(scheduler=address, n_workers=len(workers), workers_seen=set(workers))
        # Replicated to every worker: a worker lost mid-search does not lose the data the others need.
        [data_f] = client.scatter([data], broadcast=True, hash=False)
        futures = [
            client.submit(fn, data_f, cand, pure=False, key=f"candidate-{i}") for i, cand in enumerate(candidates)
        ]
        pending = set(futures)
        woke = threading.Event()
        for f in futures:
            f.add_done_callback(lambda _f: woke.set())
        finished = 0
        try:
            while pending:
                check_cancelled()
                if client.status not in ("running", "connecting"):
                    raise DaskUnavailable(
                        f"lost the Dask scheduler at {address} mid-search (client {client.status}); "
                        f"the run stored nothing; {_what_to_check(address)}"
                    )
                done = {f for f in pending if f.done()}
                if not done:
                    # Wake at the first status change (finished, error, cancelled) or after POLL_S at most.
                    woke.wait(POLL_S)
                    woke.clear()
                    continue
                pending -= done
                for f in done:
                    if f.status == "error":
                        f.result()  # raises the task's own exception
                    if f.status != "finished":
                        raise DaskUnavailable(
                            f"lost the Dask scheduler at {address} mid-search (task {f.key} {f.status}); "
                            f"the run stored nothing; {_what_to_check(address)}"
                        )
                    finished += 1
                    on_done(finished, len(futures))
            results = [f.result() for f in futures]
        except BaseException:
            if client.status == "running":
                client.cancel(futures, force=True)
            raise
        try:  # no scheduler round trip inside the loop: a dead scheduler would block it for the comm timeout
            now = _worker_addresses(client)
            info.workers_lost = len(info.workers_seen - now)
        except Exception:  # noqa: BLE001, S110 - only a nicety for the run's record
            pass
        info.candidate_seconds = [float(r.get("seconds", 0.0)) for r in results]
        return results, info
    finally:
        if own:
            _close(client)


# --- batch scoring: partitions of a Parquet file (issue 16, point 2) ------------------------------------------------
#
# The file to score is in the shared artifact store; each Dask worker reads its own row groups from there (in
# batches of `batch_rows`, so a worker's memory is bounded by the batch, not the partition) and loads the model
# from the store once per worker process (checked against the sha256 the job saw). Only the predictions and scores
# travel back; the job writes the scored rows itself, partition after partition in file order, with at most
# `window` partitions in flight (memory on the job's side stays bounded too).


@dataclass(frozen=True)
class Partition:
    """Consecutive row groups of one Parquet file: rows [first_row, first_row + n_rows)."""

    index: int
    row_groups: tuple[int, ...]
    first_row: int
    n_rows: int


@dataclass(frozen=True)
class ScoringTask:
    """What every partition of one batch scoring job shares (sent to each Dask worker once)."""

    data_location: str  # a path on the shared artifact folder, or the fsspec URL of the store's object
    model_location: str
    model_sha256: str
    columns: tuple[str, ...]  # the model's input columns
    to_model_input: Callable[[Any], Any]  # DataFrame -> model input (the deployment's RecordValidator)
    positive: int | None
    threshold: float | None
    batch_rows: int


def plan_partitions(row_group_rows: list[int], target_rows: int) -> list[Partition]:
    """Group consecutive row groups into partitions of at least `target_rows` rows (the last may be smaller)."""
    out: list[Partition] = []
    groups: list[int] = []
    first = rows = 0
    for i, n in enumerate(row_group_rows):
        groups.append(i)
        rows += int(n)
        if rows >= target_rows:
            out.append(Partition(len(out), tuple(groups), first, rows))
            first, groups, rows = first + rows, [], 0
    if groups:
        out.append(Partition(len(out), tuple(groups), first, rows))
    return out


def _read_location(location: str) -> bytes:
    if "://" in location or "::" in location:
        import fsspec  # only for an object-store artifact root (the worker needs its credentials)

        with fsspec.open(location, "rb") as f:
            return f.read()
    with open(location, "rb") as f:
        return f.read()


def _parquet_file(location: str):
    import pyarrow.parquet as pq

    if "://" in location or "::" in location:
        import fsspec

        return pq.ParquetFile(fsspec.open(location, "rb").open())
    return pq.ParquetFile(location)


_WORKER_MODELS: dict[tuple[str, str], Any] = {}
_WORKER_MODELS_LOCK = threading.Lock()
_WORKER_MODELS_MAX = 4


def worker_model(location: str, sha256: str):
    """The model at `location`, loaded once per worker process (skops, allow-listed types only)."""
    import hashlib

    from .persistence import load_model_bytes

    key = (location, sha256)
    with _WORKER_MODELS_LOCK:
        if key in _WORKER_MODELS:
            return _WORKER_MODELS[key]
    data = _read_location(location)
    got = hashlib.sha256(data).hexdigest()
    if got != sha256:
        raise DaskUnavailable(
            f"the model file at {location} on this Dask worker is not the one the job loaded (sha256 {got[:12]} vs "
            f"{sha256[:12]}); the Dask workers must see the same artifact store (ARTIFACT_ROOT) as the job's worker"
        )
    model = load_model_bytes(data)
    with _WORKER_MODELS_LOCK:
        _WORKER_MODELS[key] = model
        while len(_WORKER_MODELS) > _WORKER_MODELS_MAX:
            _WORKER_MODELS.pop(next(iter(_WORKER_MODELS)))
    return model


def score_partition(task: ScoringTask, part: Partition) -> dict[str, Any]:
    """Runs on a Dask worker: score one partition, batch by batch. Returns its predictions and scores (numpy)."""
    import time

    import numpy as np

    from .scoring import score_arrow

    t0 = time.perf_counter()
    model = worker_model(task.model_location, task.model_sha256)
    pf = _parquet_file(task.data_location)
    preds: list[Any] = []
    scores: list[Any] = []
    for batch in pf.iter_batches(
        batch_size=task.batch_rows, row_groups=list(part.row_groups), columns=list(task.columns), use_threads=False
    ):
        p, s = score_arrow(model, batch, task.to_model_input, task.positive, task.threshold)
        preds.append(np.asarray(p))
        if s is not None:
            scores.append(np.asarray(s, dtype=float))
    n = sum(len(p) for p in preds)
    if n != part.n_rows:
        raise RuntimeError(f"partition {part.index}: read {n} rows, the footer says {part.n_rows}")
    return {
        "index": part.index,
        "predictions": np.concatenate(preds) if preds else np.array([]),
        "scores": np.concatenate(scores) if scores else None,
        "seconds": time.perf_counter() - t0,
    }


def map_partitions(
    address: str,
    task: ScoringTask,
    partitions: list[Partition],
    *,
    on_done: Callable[[int, int], None],
    check_cancelled: Callable[[], None],
    window: int | None = None,
    client=None,
    run: ClusterRun | None = None,
):
    """Yield `score_partition(task, part)` for each partition, in partition order, scored on the cluster.

    At most `window` partitions are submitted ahead of the one being yielded (default: 2 per Dask worker), so
    the results waiting to be written stay bounded. A Dask worker lost mid-way: Dask reruns its partitions
    elsewhere (the function only reads). The scheduler lost: `DaskUnavailable`. `check_cancelled()` raising,
    or the consumer stopping early, cancels what is still queued on the cluster."""
    import uuid

    own = client is None
    client = client or connect(address)
    futures: dict[int, Any] = {}
    try:
        workers = _worker_addresses(client)
        if run is not None:
            run.n_workers, run.workers_seen = len(workers), set(workers)
        window = max(1, window or 2 * max(1, len(workers)))
        [task_f] = client.scatter([task], broadcast=True, hash=False)
        token = uuid.uuid4().hex[:12]
        woke = threading.Event()

        def submit(i: int) -> None:
            f = client.submit(score_partition, task_f, partitions[i], pure=False, key=f"score-{token}-{i}")
            f.add_done_callback(lambda _f: woke.set())
            futures[i] = f

        ahead = 0
        while ahead < min(window, len(partitions)):
            submit(ahead)
            ahead += 1
        for i in range(len(partitions)):
            f = futures[i]
            check_cancelled()  # also when every result is ready: writing them is the slow part here
            while not f.done():
                check_cancelled()
                if client.status not in ("running", "connecting"):
                    raise DaskUnavailable(
                        f"lost the Dask scheduler at {address} mid-way through batch scoring (client {client.status});"
                        f" {_what_to_check(address)}"
                    )
                woke.wait(POLL_S)
                woke.clear()
            if f.status == "error":
                f.result()  # raises the task's own exception
            if f.status != "finished":
                raise DaskUnavailable(
                    f"lost the Dask scheduler at {address} mid-way through batch scoring (task {f.key} {f.status}); "
                    f"{_what_to_check(address)}"
                )
            result = f.result()
            del futures[i]
            f.release()
            if ahead < len(partitions):
                submit(ahead)
                ahead += 1
            on_done(i + 1, len(partitions))
            yield result
        if run is not None:
            try:
                run.workers_lost = len(run.workers_seen - _worker_addresses(client))
            except Exception:  # noqa: BLE001, S110 - only a nicety for the job's record
                pass
    except BaseException:
        if futures and client.status == "running":
            client.cancel(list(futures.values()), force=True)
        raise
    finally:
        if own:
            _close(client)
