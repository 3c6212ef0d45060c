"""`up` and `ui`: start the processes of one machine and keep them running.

`up` migrates, seeds the demo when an embedded SQLite database is empty (on a team database it
refuses to start until an admin account exists: no shared demo password there), then supervises the UI,
the worker(s) and the scoring service as child processes: a child that dies is
restarted (with a back-off), and Ctrl-C / SIGTERM stops them all cleanly.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field

from ..config import PROJECT_ROOT, get_settings
from ..errors import DomainError


class NoAdminAccount(DomainError):
    """`up` on a team database that has no active admin yet."""


@dataclass
class Child:
    name: str
    argv: list[str]
    proc: subprocess.Popen | None = None
    restarts: int = 0
    started_at: float = 0.0
    env: dict[str, str] = field(default_factory=dict)

    def start(self) -> None:
        env = {**os.environ, **self.env}
        # argv is built here from sys.executable and fixed module names, never from user input.
        self.proc = subprocess.Popen(self.argv, cwd=PROJECT_ROOT, env=env)  # noqa: S603
        self.started_at = time.monotonic()
        print(f"[up] started {self.name} (pid {self.proc.pid})", flush=True)


def streamlit_argv(port: int, host: str | None = None) -> list[str]:
    # Loopback unless MLOPS_UI_HOST says otherwise (Streamlit itself would listen on every interface).
    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(PROJECT_ROOT / "hub_server.py"),  # app.py under Streamlit's server plus the session-cookie routes
        "--server.port",
        str(port),
        "--server.address",
        host or get_settings().mlops_ui_host,
        "--server.headless",
        "true",
        "--browser.gatherUsageStats",
        "false",
    ]


def run_ui(port: int | None = None) -> int:
    port = port or get_settings().mlops_ui_port
    return subprocess.call(streamlit_argv(port), cwd=PROJECT_ROOT)  # noqa: S603 - fixed command, int port


def run_up(*, ui_port: int | None, api_port: int | None, workers: int = 1, seed: bool = True) -> int:
    # Database, services and the demo (pandas, scikit-learn) are imported here, out of `--help`'s way.
    from ..db import describe_url, get_database, upgrade_schema
    from ..demo import seed_demo
    from ..services import users

    settings = get_settings()
    db = get_database()
    before, after = upgrade_schema(db)
    print(f"[up] schema at {after}" + (f" (upgraded from {before or 'empty'})" if before != after else ""), flush=True)
    try:
        if db.is_sqlite:
            # One person's machine: the demo (five accounts, one password printed here) is a fine start.
            if seed:
                result = seed_demo(db, only_if_empty=True)
                for line in result.lines:
                    print(f"[up] {line}", flush=True)
        elif not users.has_active_admin(db):
            # A team database: never seed accounts with a shared password behind the team's back.
            raise NoAdminAccount(
                f"no active admin account in the database at {describe_url(db.url)}; create one with "
                "`python -m mlops_core user add NAME --role admin --password ...` and run `up` again "
                "(the demo is seeded automatically only on SQLite; `python -m mlops_core demo` seeds it on purpose)"
            )
    finally:
        db.dispose()

    ui_port = ui_port or settings.mlops_ui_port
    api_port = api_port or settings.mlops_api_port
    children = [Child("ui", streamlit_argv(ui_port, settings.mlops_ui_host))]
    for i in range(max(1, workers)):
        # One scheduler candidate is enough on one machine; the election makes extra ones harmless.
        children.append(Child(f"worker-{i + 1}", [sys.executable, "-m", "mlops_core", "worker"]))
    children.append(
        Child(
            "scoring",
            [sys.executable, "-m", "mlops_core", "serve", "--host", settings.mlops_api_host, "--port", str(api_port)],
        )
    )
    print(
        f"[up] UI on http://{settings.mlops_ui_host}:{ui_port}  "
        f"scoring API on http://{settings.mlops_api_host}:{api_port}",
        flush=True,
    )

    stopping = False

    def _stop(signum, _frame):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    for c in children:
        c.start()
    try:
        while not stopping:
            time.sleep(0.5)
            for c in children:
                if c.proc is not None and c.proc.poll() is not None and not stopping:
                    code = c.proc.returncode
                    backoff = min(30.0, 1.0 * (2 ** min(c.restarts, 5)))
                    if time.monotonic() - c.started_at > 60:
                        c.restarts = 0
                        backoff = 1.0
                    print(f"[up] {c.name} exited with {code}; restarting in {backoff:.0f}s", flush=True)
                    time.sleep(backoff)
                    c.restarts += 1
                    c.start()
    finally:
        for c in children:
            if c.proc is not None and c.proc.poll() is None:
                c.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 20
        for c in children:
            if c.proc is None:
                continue
            try:
                c.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                c.proc.kill()
        print("[up] stopped", flush=True)
    return 0


def cmd_up(args) -> int:
    return run_up(ui_port=args.ui_port, api_port=args.api_port, workers=args.workers, seed=not args.no_demo)


def cmd_ui(args) -> int:
    return run_ui(port=args.port)


def register(sub) -> None:
    s = sub.add_parser("up", help="start everything for one machine: UI, worker and scoring service")
    s.add_argument("--ui-port", type=int, default=None)
    s.add_argument("--api-port", type=int, default=None)
    s.add_argument("--workers", type=int, default=1)
    s.add_argument(
        "--no-demo",
        action="store_true",
        help="do not seed the demo when the SQLite database is empty (other databases are never "
        "seeded by `up`: they need an admin account first)",
    )
    s.set_defaults(func=cmd_up)

    s = sub.add_parser("ui", help="start the Streamlit UI only")
    s.add_argument("--port", type=int, default=None)
    s.set_defaults(func=cmd_ui)
