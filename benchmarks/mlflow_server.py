"""Benchmark: the MLflow client over HTTP against `mlflow server` and against the Hub; our SDK against the Hub.

Workload (issue 14): RUNS runs x 10 params x 20 metrics x 10 steps (default 1,000 runs), logged by
1. the real MLflow client (.venv-mlflow, requirements-mlflow.txt) against `mlflow server` (full mlflow, same
   version, in .venv-bench-mlflow-server from benchmarks/requirements-mlflow-server.txt; SQLite backend store,
   artifacts proxied, default worker settings) on a free port;
2. the same client, same script, against a live Hub (`python -m mlops_core serve` on a temporary SQLite
   database, MLFLOW_TRACKING_TOKEN = a data scientist's personal access token);
3. our SDK (mlops_core.tracking, HTTP only) against the same Hub.
The MLflow client calls are the idiomatic ones (start_run, log_params, log_metrics(step=)); every HTTP request
each client sends is counted, so the figures are requests per second, not a guess.
Targets: the Hub serves the MLflow client at >= 2x the requests/s of MLflow's own server; our SDK logs the
workload >= 5x faster (wall time) than the MLflow client against MLflow's server.

Run: ``.venv/bin/python benchmarks/mlflow_server.py [--runs N]`` from the repository root (`make bench` runs it
with --runs 100; the rates are per request, so they compare with the full size). The last line is JSON.
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
CLIENT_VENV = ROOT / ".venv-mlflow"
CLIENT_REQUIREMENTS = ROOT / "requirements-mlflow.txt"
SERVER_VENV = ROOT / ".venv-bench-mlflow-server"
SERVER_REQUIREMENTS = ROOT / "benchmarks" / "requirements-mlflow-server.txt"
CLIENT_SCRIPT = ROOT / "benchmarks" / "_mlflow_client_workload.py"
TARGET_HUB_VS_MLFLOW = 2.0
TARGET_SDK_VS_MLFLOW = 5.0
# No outside network from either MLflow process (telemetry config fetch and usage posts).
QUIET = {"MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true", "PYTHONWARNINGS": "ignore"}


def ensure_venv(venv: Path, requirements: Path) -> Path:
    """venv/bin/python, (re)installed from `requirements` when missing or older than them (once)."""
    py = venv / "bin" / "python"
    stamp = venv / ".installed"
    if py.exists() and stamp.exists() and stamp.stat().st_mtime >= requirements.stat().st_mtime:
        return py
    print(f"installing {venv.name} from {requirements.relative_to(ROOT)} (once)...", flush=True)
    if not py.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(py), "-m", "pip", "install", "--quiet", "-r", str(requirements)], check=True)
    stamp.touch()
    return py


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()


def wait_ready(url: str, proc: subprocess.Popen, what: str, log: Path) -> None:
    deadline = time.monotonic() + 300  # four MLflow workers importing mlflow on a busy machine take a while
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
    raise SystemExit(f"{what} did not answer {url} within 300 s (exit {proc.poll()}):\n{tail}")


def start_mlflow_server(tmp: Path) -> str:
    """`mlflow server` with a SQLite backend store and proxied artifacts, default workers, on a free port."""
    ensure_venv(SERVER_VENV, SERVER_REQUIREMENTS)
    port = free_port()
    log = tmp / "mlflow-server.log"
    proc = subprocess.Popen(
        [
            str(SERVER_VENV / "bin" / "mlflow"),
            "server",
            "--backend-store-uri",
            f"sqlite:///{tmp / 'mlflow.db'}",
            "--artifacts-destination",
            str(tmp / "mlflow-artifacts"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        cwd=tmp,
        env={**os.environ, **QUIET},
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    atexit.register(stop, proc)
    url = f"http://127.0.0.1:{port}"
    wait_ready(f"{url}/health", proc, "mlflow server", log)
    return url


def start_hub(tmp: Path) -> dict:
    """A migrated temporary SQLite Hub with a business owner, a data engineer and a data scientist (token),
    one use case for the MLflow client and one (with a dataset) for our SDK; `serve` on a free port."""
    os.environ["DATABASE_URL"] = f"sqlite:///{tmp / 'hub.db'}"
    os.environ["ARTIFACT_ROOT"] = str(tmp / "hub-artifacts")
    from mlops_core.config import reload_settings

    reload_settings()
    from mlops_core.db import get_database, upgrade_schema
    from mlops_core.demo.customers import make_customers
    from mlops_core.services import datasets, usecases, users
    from mlops_core.services.auth import Actor

    db = get_database()
    upgrade_schema(db)
    system = Actor.system()
    for name, role in (("alice", "business"), ("dan", "data_engineer"), ("sara", "data_scientist")):
        users.create_user(db, actor=system, username=name, password="benchmark-password-1", role=role)
    alice = users.actor_for_username(db, username="alice")
    dan = users.actor_for_username(db, username="dan")
    mlflow_uc = usecases.create_use_case(db, actor=alice, title="Benchmark MLflow client")
    sdk_uc = usecases.create_use_case(db, actor=alice, title="Benchmark SDK")
    ref = datasets.register_version_from_frame(
        db, actor=dan, dataset_name="bench", frame=make_customers(200), use_case_id=sdk_uc.id
    ).ref
    token = users.create_token(db, actor=system, username="sara")
    port = free_port()
    log = tmp / "hub.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlops_core", "serve", "--host", "127.0.0.1", "--port", str(port)],
        cwd=ROOT,
        env=dict(os.environ),
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    atexit.register(stop, proc)
    url = f"http://127.0.0.1:{port}"
    wait_ready(f"{url}/healthz", proc, "the Hub", log)
    return {"url": url, "token": token, "mlflow_experiment": mlflow_uc.title, "sdk_use_case": sdk_uc.id, "ref": ref}


def run_mlflow_client(url: str, token: str | None, experiment: str, args, tmp: Path) -> dict:
    py = ensure_venv(CLIENT_VENV, CLIENT_REQUIREMENTS)
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "ARTIFACT_ROOT", "MLFLOW_TRACKING_TOKEN")}
    # A few retries as a notebook has (a keep-alive connection the server just closed is resent, not fatal).
    env.update(QUIET, MLFLOW_TRACKING_URI=url, MLFLOW_HTTP_REQUEST_MAX_RETRIES="3")
    if token:
        env["MLFLOW_TRACKING_TOKEN"] = token
    cmd = [str(py), str(CLIENT_SCRIPT), "--experiment", experiment]
    for k in ("runs", "params", "metrics", "steps", "repeat"):
        cmd += [f"--{k}", str(getattr(args, k))]
    p = subprocess.run(cmd, env=env, cwd=tmp, capture_output=True, text=True)
    if p.returncode != 0:
        print(p.stdout[-2000:], p.stderr[-4000:], file=sys.stderr)
        raise SystemExit(f"the MLflow client workload against {url} failed (exit {p.returncode})")
    return json.loads(p.stdout.strip().splitlines()[-1])


def run_sdk(hub: dict, args) -> dict:
    """The same workload through mlops_core.tracking (HTTP only), every request counted."""
    os.environ.pop("DATABASE_URL", None)
    os.environ["MLOPS_HUB_URL"], os.environ["MLOPS_TOKEN"] = hub["url"], hub["token"]
    from mlops_core import tracking

    sent = [0]
    real_send = httpx.Client.send

    def counting_send(self, request, **kw):
        sent[0] += 1
        return real_send(self, request, **kw)

    httpx.Client.send = counting_send

    def one_run(i: int, name: str) -> None:
        with tracking.start_run(use_case=hub["sdk_use_case"], dataset=hub["ref"], name=name) as run:
            run.log_params({f"p{j}": (i * 7 + j) % 13 for j in range(args.params)})
            for step in range(args.steps):
                run.log_metrics(
                    {f"m{j}": ((i * 31 + j * 7 + step) % 1000) / 1000.0 for j in range(args.metrics)}, step=step
                )

    one_run(0, "warm-up")
    sent[0] = 0
    t0 = time.perf_counter()
    for i in range(args.runs):
        one_run(i, f"run {i}")
    seconds = time.perf_counter() - t0
    httpx.Client.send = real_send
    return {"log_seconds": seconds, "log_requests": sent[0]}


def rate(r: dict) -> float:
    return r["log_requests"] / r["log_seconds"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=1000)
    ap.add_argument("--params", type=int, default=10)
    ap.add_argument("--metrics", type=int, default=20)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--repeat", type=int, default=10, help="repeats of the top-10 search (median)")
    ap.add_argument("--hub-only", action="store_true", help="only the Hub side (before/after comparisons)")
    args = ap.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stopped: still stop the servers (atexit)
    workload = f"{args.runs} runs x {args.params} params x {args.metrics} metrics x {args.steps} steps"
    print(f"workload: {workload}", flush=True)
    tmp = Path(tempfile.mkdtemp(prefix="mlops-bench-mlflow-server-"))
    atexit.register(shutil.rmtree, tmp, True)  # leave no benchmark data behind

    if args.hub_only:
        hub = start_hub(tmp)
        ours, sdk = run_mlflow_client(hub["url"], hub["token"], hub["mlflow_experiment"], args, tmp), run_sdk(hub, args)
        print(f"MLflow client -> Hub: {rate(ours):,.1f} requests/s ({1000 / rate(ours):.2f} ms/request)")
        print(f"our SDK -> Hub: {rate(sdk):,.1f} requests/s, workload {sdk['log_seconds']:.2f} s")
        print(json.dumps({"benchmark": "mlflow_server", "figures": []}))
        return 0
    mlflow_url = start_mlflow_server(tmp)
    mlf = run_mlflow_client(mlflow_url, None, "Benchmark MLflow client", args, tmp)
    print(
        f"MLflow client {mlf['mlflow']} -> mlflow server (SQLite): {mlf['log_requests']} requests in "
        f"{mlf['log_seconds']:.2f} s = {rate(mlf):,.0f} requests/s; top 10 by a metric "
        f"{mlf['top10_seconds'] * 1000:.1f} ms",
        flush=True,
    )
    hub = start_hub(tmp)
    ours = run_mlflow_client(hub["url"], hub["token"], hub["mlflow_experiment"], args, tmp)
    print(
        f"MLflow client {ours['mlflow']} -> MLOps Hub (SQLite): {ours['log_requests']} requests in "
        f"{ours['log_seconds']:.2f} s = {rate(ours):,.0f} requests/s; top 10 by a metric "
        f"{ours['top10_seconds'] * 1000:.1f} ms",
        flush=True,
    )
    sdk = run_sdk(hub, args)
    print(
        f"our SDK -> MLOps Hub: {sdk['log_requests']} requests in {sdk['log_seconds']:.2f} s "
        f"= {rate(sdk):,.0f} requests/s",
        flush=True,
    )
    same_top = sorted(mlf["top_values"]) == sorted(ours["top_values"])
    print(f"same top-10 metric values on both servers: {same_top}")

    hub_ratio = rate(ours) / rate(mlf)
    sdk_ratio = mlf["log_seconds"] / sdk["log_seconds"]
    top_ratio = mlf["top10_seconds"] / ours["top10_seconds"]
    print(f"Hub vs mlflow server, MLflow client requests/s: {hub_ratio:.2f}x (target >= {TARGET_HUB_VS_MLFLOW:g}x)")
    print(
        f"our SDK vs MLflow client on mlflow server, wall time for the workload: {sdk_ratio:.2f}x faster "
        f"(target >= {TARGET_SDK_VS_MLFLOW:g}x)"
    )
    print(f"top 10 runs by a metric (search_runs): Hub {top_ratio:.2f}x faster than mlflow server")
    base = f"MLflow {mlf['mlflow']} client -> mlflow server, SQLite"
    figures = [
        {
            # As time per request, so run_all's ratio column (baseline / ours) reads as the speed-up.
            "figure": f"MLflow client -> server, time per request ({rate(ours):,.0f} vs {rate(mlf):,.0f} req/s)",
            "ours": round(1000 / rate(ours), 3),
            "baseline": round(1000 / rate(mlf), 3),
            "baseline_name": base,
            "unit": "ms",
            "target": f">= {TARGET_HUB_VS_MLFLOW:g}x requests/s",
            "met": bool(hub_ratio >= TARGET_HUB_VS_MLFLOW),
        },
        {
            "figure": f"our SDK vs MLflow client, {workload}",
            "ours": round(sdk["log_seconds"], 3),
            "baseline": round(mlf["log_seconds"], 3),
            "baseline_name": base,
            "unit": "s",
            "target": f">= {TARGET_SDK_VS_MLFLOW:g}x faster",
            "met": bool(sdk_ratio >= TARGET_SDK_VS_MLFLOW),
        },
        {
            "figure": "MLflow client search_runs top 10 by a metric",
            "ours": round(ours["top10_seconds"], 4),
            "baseline": round(mlf["top10_seconds"], 4),
            "baseline_name": base,
            "unit": "s",
            "target": "no slower",
            "met": bool(top_ratio >= 1.0),
        },
    ]
    print(json.dumps({"benchmark": "mlflow_server", "figures": figures}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
