"""`python -m mlops_core report --use-case NAME [--out FILE]`: the use case report, one self-contained HTML
file (issue 18). Without --out the HTML goes to stdout; with it, the last line printed is the JSON
{"path", "sha256", "missing"}. Top-level imports stay light (`--help` must stay fast).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from ._common import checked_db


def cmd_report(args) -> int:
    from . import _hubfiles

    if _hubfiles.token_set():  # MLOPS_TOKEN: over the Hub API (a CI job with no database credentials)
        return _hubfiles.run_report(args)
    from ..services import report

    rep = report.build_report(checked_db(), use_case=args.use_case)
    if not args.out:
        sys.stdout.write(rep.html)
        return 0
    out = Path(args.out)
    out.write_text(rep.html, encoding="utf-8")
    if rep.missing:
        print(f"partial report: no data yet for {', '.join(rep.missing)}")
    print(json.dumps({"path": str(out), "sha256": rep.sha256, "missing": rep.missing}))
    return 0


def register(sub) -> None:
    r = sub.add_parser("report", help="the use case report: one self-contained HTML file")
    r.add_argument("--use-case", required=True, help="use case title or id")
    r.add_argument("--out", help="write the HTML to this file (default: stdout)")
    r.set_defaults(func=cmd_report)
