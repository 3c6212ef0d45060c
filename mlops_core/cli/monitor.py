"""`python -m mlops_core monitor run --deployment NAME`: run a deployment's monitors now.

Prints a line per check and, as the LAST line, the JSON summary (DESIGN.md, CLI contract).
Top-level imports stay light: `--help` must not import pandas or scipy.
"""

from __future__ import annotations

import json

from ._common import checked_db


def cmd_monitor_run(args) -> int:
    # kept out of the CLI's top level so --help stays fast
    from ..services import monitoring

    summary = monitoring.run_monitor(checked_db(), deployment_name=args.deployment)
    for c in summary["checks"]:
        drift = "n/a" if c["dataset_drifted"] is None else ("DRIFT" if c["dataset_drifted"] else "no drift")
        print(
            f"{summary['deployment']} / {c['monitor']}: {c['status']}, {c['n_rows']:,} predictions, {drift}, "
            f"KPIs {c['kpi_status']}, {len(c['alerts_opened'])} new alert(s)"
        )
    print(json.dumps(summary, default=str, sort_keys=True))
    return 0


def register(sub) -> None:
    s = sub.add_parser("monitor", help="production monitoring")
    ms = s.add_subparsers(dest="monitor_command", metavar="ACTION")
    ms.required = True
    r = ms.add_parser("run", help="run a deployment's monitors now (JSON summary as the last line)")
    r.add_argument("--deployment", required=True, help="deployment name, e.g. churn")
    r.set_defaults(func=cmd_monitor_run)
