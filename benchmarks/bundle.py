"""Benchmark: the bundle's scoring server against the Hub's scoring service, same model, same load.

Sets up a throwaway workspace like benchmarks/scoring.py (a trained churn model deployed through the gates, an
API key), builds the bundle with `deploy bundle`, then drives each server in turn with the same keep-alive
HTTP/1.1 client (concurrency 8, one record per request, logging on): the Hub's service as
`python -m mlops_core serve --workers 1`, the bundle as `python -m mlops_bundle_server` (one process; its log
goes to its disk buffer and is uploaded to the Hub service started for the purpose). Target: the bundle within
10% of the Hub's service in req/s (or faster).

    .venv/bin/python benchmarks/bundle.py [--seconds 10] [--concurrency 8]
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

import scoring as base  # noqa: E402 - benchmarks/scoring.py: workspace setup and the HTTP driver


def wait_up(port: int, key: str, record: dict, proc: subprocess.Popen) -> None:
    import httpx

    deadline = time.monotonic() + 90
    while True:
        try:
            r = httpx.post(
                f"http://127.0.0.1:{port}/v1/deployments/churn/predict",
                headers={"Authorization": f"Bearer {key}"},
                json={"records": [record]},
                timeout=5,
            )
            if r.status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline or proc.poll() is not None:
            raise SystemExit("a server did not come up")
        time.sleep(0.3)


def measure(port: int, key: str, record: dict, seconds: float, concurrency: int) -> tuple[float, float, dict]:
    asyncio.run(base.drive(port, key, record, 2.0, concurrency))  # warm-up
    latencies, statuses, wall = asyncio.run(base.drive(port, key, record, seconds, concurrency))
    latencies.sort()
    n = len(latencies)
    return n / wall, (latencies[n // 2] * 1000 if n else float("nan")), statuses


def stop(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(60)
    except subprocess.TimeoutExpired:
        proc.kill()


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--concurrency", type=int, default=8)
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="bench-bundle-"))
    atexit.register(shutil.rmtree, tmp, True)
    env = dict(os.environ)
    env["DATABASE_URL"] = f"sqlite:///{tmp}/hub.db"
    env["ARTIFACT_ROOT"] = str(tmp / "artifacts")
    os.environ.update({"DATABASE_URL": env["DATABASE_URL"], "ARTIFACT_ROOT": env["ARTIFACT_ROOT"]})
    from mlops_core.config import reload_settings
    from mlops_core.db import Database, upgrade_schema

    reload_settings()
    db = Database(env["DATABASE_URL"])
    upgrade_schema(db)
    print("setting up a deployed model and its bundle ...", flush=True)
    key, record, _ = base.setup_workspace(db)
    from mlops_core.services import bundles, targets
    from mlops_core.services.auth import Actor

    out = tmp / "bundle"
    bundles.build_bundle(db, actor=Actor.system(), deployment_name="churn", out_dir=out)
    _, upload_key = targets.create_upload_key(db, actor=Actor.system(), deployment_name="churn")

    hub_port = base.free_port()
    hub = subprocess.Popen(
        [sys.executable, "-m", "mlops_core", "serve", "--port", str(hub_port), "--workers", "1"], cwd=ROOT, env=env
    )
    results = {}
    try:
        wait_up(hub_port, key, record, hub)
        results["hub"] = measure(hub_port, key, record, args.seconds, args.concurrency)
        bport = base.free_port()
        benv = {
            "PATH": env.get("PATH", ""),
            "MLOPS_PORT": str(bport),
            "MLOPS_HOST": "127.0.0.1",
            "MLOPS_API_KEYS": key,
            "MLOPS_HUB_URL": f"http://127.0.0.1:{hub_port}",
            "MLOPS_UPLOAD_KEY": upload_key,
            "MLOPS_BUFFER_DIR": str(tmp / "buffer"),
            "MLOPS_LOG_LEVEL": "WARNING",
        }
        bundle = subprocess.Popen([sys.executable, "-m", "mlops_bundle_server"], cwd=out, env=benv)
        try:
            wait_up(bport, key, record, bundle)
            results["bundle"] = measure(bport, key, record, args.seconds, args.concurrency)
        finally:
            stop(bundle)
    finally:
        stop(hub)
    db.dispose()
    (hub_rps, hub_p50, hub_st), (b_rps, b_p50, b_st) = results["hub"], results["bundle"]
    print(f"Hub service (1 worker): {hub_rps:,.0f} req/s, p50 {hub_p50:.2f} ms, statuses {hub_st}")
    print(f"bundle server:          {b_rps:,.0f} req/s, p50 {b_p50:.2f} ms, statuses {b_st}")
    ratio = b_rps / hub_rps if hub_rps else float("nan")
    print(f"bundle / Hub: {ratio:.2f}")
    figures = [
        {
            "figure": "bundle server single-record predict throughput (c=8, 1 process)",
            "ours": round(b_rps, 1),
            "baseline": round(hub_rps, 1),
            "baseline_name": "the Hub's scoring service, 1 worker, same model and load",
            "unit": "req/s",
            "target": ">= 90% of the Hub's service",
            "met": ratio >= 0.9,
        }
    ]
    print(json.dumps({"benchmark": "bundle", "figures": figures}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
