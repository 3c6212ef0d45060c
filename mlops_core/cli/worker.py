"""`python -m mlops_core worker`: the CLI of the job queue (top level kept light for a fast --help)."""

from __future__ import annotations


def cmd_worker(args) -> int:
    # kept out of the CLI's top level so --help stays fast
    from ..jobs.worker import run_worker

    scheduler = False if args.no_scheduler else None  # None: MLOPS_SCHEDULER decides (default on)
    return run_worker(
        name=args.name,
        once=args.once,
        scheduler=scheduler,
        concurrency=args.concurrency,
        drain_seconds=args.drain_seconds,
    )


def register(sub) -> None:
    s = sub.add_parser(
        "worker",
        help="run queued jobs (training, ingestion, monitoring) and, if elected, the scheduler",
        description="Runs queued jobs until stopped (SIGTERM/Ctrl-C: finishes or gives back the running "
        "jobs, then exits 0). Start several, on one or several machines sharing one database.",
    )
    s.add_argument("--name", default=None, help="worker name shown on the Infrastructure page (default: host-pid)")
    s.add_argument("--once", action="store_true", help="run the jobs queued now, then exit")
    s.add_argument(
        "--no-scheduler",
        action="store_true",
        help="never become the scheduler of periodic jobs (same as MLOPS_SCHEDULER=false)",
    )
    s.add_argument("--concurrency", type=int, default=1, help="jobs run at the same time (default 1)")
    s.add_argument(
        "--drain-seconds",
        type=float,
        default=15.0,
        help="on SIGTERM, wait this long for running jobs to finish before giving them back (default 15)",
    )
    s.set_defaults(func=cmd_worker)
