"""`make bench`: run every benchmark script in this folder and print one table.

Each script prints its own figures and, as its last line, a JSON object
{"benchmark": name, "figures": [{"figure", "ours", "baseline", "baseline_name", "unit", "target", "met"}]}.
An unmet target is reported as such; a script that fails is reported as failed, not hidden.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ORDER = [
    "drift",
    "datasets",
    "big_dataset",
    "tracking",
    "mlflow_server",
    "training_overhead",
    "dask_search",
    "scoring",
    "batch_scoring",
    "monitoring",
    "monitor_10m",
    "pages",
    "browser_pages",
]
# Arguments a script gets here (sizes that finish in a few minutes; the figures are per-request rates).
# big_dataset: 5M rows here (a few minutes); the 20M-row figure is `python benchmarks/big_dataset.py`.
ARGS = {"mlflow_server": ["--runs", "100"], "big_dataset": ["--rows", "5000000"]}


def scripts() -> list[Path]:
    found = {
        p.stem: p for p in HERE.glob("*.py") if p.stem not in ("run_all", "__init__") and not p.stem.startswith("_")
    }
    ordered = [found.pop(n) for n in ORDER if n in found]
    return ordered + sorted(found.values())


def fmt(v) -> str:
    if v is None:
        return "—"
    if isinstance(v, bool):
        return "yes" if v else "NO"
    if isinstance(v, float):
        return f"{v:,.4g}" if abs(v) < 1000 else f"{v:,.0f}"
    return str(v)


def main() -> int:
    only = set(sys.argv[1:])
    rows = []
    for script in scripts():
        if only and script.stem not in only:
            continue
        print(f"== {script.name}", flush=True)
        t0 = time.monotonic()
        p = subprocess.run(
            [sys.executable, str(script), *ARGS.get(script.stem, [])],
            cwd=HERE.parent,
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONPATH": str(HERE.parent)},
        )
        dt = time.monotonic() - t0
        print(p.stdout[-4000:], end="")
        last = p.stdout.strip().splitlines()[-1] if p.stdout.strip() else ""
        try:
            result = json.loads(last)
            for f in result["figures"]:
                rows.append((result["benchmark"], f))
        except (json.JSONDecodeError, KeyError):
            print(p.stderr[-3000:], file=sys.stderr)
            rows.append(
                (
                    script.stem,
                    {
                        "figure": f"script failed (exit {p.returncode}) after {dt:.0f}s",
                        "ours": None,
                        "baseline": None,
                        "target": "runs",
                        "met": False,
                    },
                )
            )
    header = ("benchmark", "figure", "ours", "baseline", "ratio", "target", "met?")
    table = []
    for bench, f in rows:
        ours, base = f.get("ours"), f.get("baseline")
        ratio = None
        if isinstance(ours, (int, float)) and isinstance(base, (int, float)) and ours:
            ratio = base / ours
        unit = f.get("unit", "")
        table.append(
            (
                bench,
                f["figure"] + (f" [{unit}]" if unit else ""),
                fmt(ours),
                fmt(base) + (f" ({f['baseline_name']})" if f.get("baseline_name") and base is not None else ""),
                fmt(ratio) + ("x" if ratio else ""),
                str(f.get("target", "")),
                fmt(bool(f.get("met"))),
            )
        )
    widths = [max(len(str(r[i])) for r in [header, *table]) for i in range(len(header))]
    line = " | ".join(h.ljust(w) for h, w in zip(header, widths))
    print("\n" + line + "\n" + "-+-".join("-" * w for w in widths))
    for r in table:
        print(" | ".join(str(c).ljust(w) for c, w in zip(r, widths)))
    met = sum(1 for _, f in rows if f.get("met"))
    print(f"\n{met} of {len(rows)} targets met")
    return 0


if __name__ == "__main__":
    sys.exit(main())
