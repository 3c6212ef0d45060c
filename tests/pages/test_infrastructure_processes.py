"""Issue 15, problem 13 (infrastructure) through AppTest: every process is listed with CPU, memory, uptime and
its last heartbeat — the UI serving the page, the workers from their heartbeats, the scoring service found
by its command line."""

from datetime import timedelta

from mlops_core.db import utcnow
from mlops_core.models.jobs import Worker
from mlops_core.services import processes
from tests.conftest import make_people
from tests.pages.helpers import app_as, no_exceptions


def test_processes_are_listed_with_cpu_memory_uptime_and_heartbeat(sqlite_db):
    people = make_people(sqlite_db)
    with sqlite_db.unit_of_work() as s:
        s.add(
            Worker(
                name="worker-7",
                hostname="box",
                pid=4242,
                started_at=utcnow() - timedelta(hours=3),
                heartbeat_at=utcnow() - timedelta(seconds=4),
                cpu_percent=12.5,
                rss_mb=321.0,
                is_scheduler=True,
            )
        )
    at = app_as(people["ops"], "pages/infrastructure.py")
    no_exceptions(at)
    table = next(df.value for df in at.dataframe if "last heartbeat" in df.value.columns)
    assert {"process", "kind", "CPU %", "memory (MB)", "up for", "last heartbeat"} <= set(table.columns)
    rows = {r["process"]: r for r in table.to_dict("records")}
    worker = rows["worker-7 (scheduler)"]
    assert worker["memory (MB)"] == 321.0 and worker["CPU %"] == 12.5
    assert worker["up for"] == "3.0 h" and worker["last heartbeat"].endswith("s ago")
    ui = next(r for name, r in rows.items() if r["kind"] == "UI")
    assert ui["memory (MB)"] > 10 and ui["last heartbeat"] == "0 s ago"
    assert not at.get("plotly_chart")  # no single giant memory bar any more


def test_ui_and_scoring_processes_are_recognised_by_their_command_line():
    assert processes._kind(["/usr/bin/python", "-m", "streamlit", "run", "/srv/hub/hub_server.py"]) == "UI"
    assert processes._kind(["python", "-m", "mlops_core", "serve", "--port", "8000"]) == "scoring service"
    assert processes._kind(["python", "-m", "mlops_core", "worker"]) is None
    assert processes._kind(["python", "-m", "pytest", "tests/pages"]) is None


def test_only_this_hubs_processes_are_listed_not_another_hubs_on_the_same_host(sqlite_db, tmp_path):
    import os
    import subprocess
    import sys

    # two stand-ins for `streamlit run hub_server.py`: one on this hub's database, one on another hub's
    argv = [sys.executable, "-c", "import time; time.sleep(60)", "streamlit", "run", "hub_server.py"]
    ours = subprocess.Popen(argv, env={**os.environ, "DATABASE_URL": sqlite_db.url}, cwd=tmp_path)
    other = subprocess.Popen(argv, env={**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'other.db'}"})
    try:
        pids = {p.pid for p in processes.list_processes(sqlite_db) if p.kind == "UI"}
        assert ours.pid in pids and other.pid not in pids
    finally:
        for proc in (ours, other):
            proc.kill()
            proc.wait(timeout=10)
