"""Benchmark: our CBPE against NannyML's as an oracle (issue 17), not part of `make test`.

NannyML's pins clash with ours, so it lives in its own virtualenv (``.venv-nannyml``, made here on first
use with ``python3 -m venv`` + ``pip install nannyml statsmodels "pandas<3"``: nannyml 0.13.1 imports
statsmodels without requiring it and fails on pandas 3; pass ``--nannyml-python`` to use another one).
Measured 2026-11-29: 100 of 100 (window, metric) pairs inside NannyML's band; the mean distance to the realized
metric is the same for both to 4 decimals.
Synthetic binary data with a known shift: a reference of 20,000 rows and 20 analysis windows of 2,000 rows
whose inputs drift by window; the model's scores are miscalibrated on purpose (both tools calibrate).
Both estimate accuracy, precision, recall, f1 and roc_auc per window; we count the windows where our estimate
lies within NannyML's confidence band (target >= 95 %) and how far both are from the realized metric.

Run: ``.venv/bin/python benchmarks/nannyml_agreement.py``. The last line printed is JSON for ``make bench``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

ROOT = Path(__file__).resolve().parents[1]
METRICS = ["accuracy", "precision", "recall", "f1", "roc_auc"]
WINDOWS, WINDOW_ROWS, REF_ROWS = 20, 2000, 20_000
TARGET_SHARE = 0.95

NANNY_SCRIPT = r"""
import json, sys
import pandas as pd
import nannyml as nml
ref = pd.read_csv(sys.argv[1]); ana = pd.read_csv(sys.argv[2])
est = nml.CBPE(y_pred_proba="score", y_pred="pred", y_true="y", problem_type="classification_binary",
               metrics=json.loads(sys.argv[3]), chunk_size=int(sys.argv[4]))
est.fit(ref)
df = est.estimate(ana).filter(period="analysis").to_df()
out = []
for _, row in df.iterrows():
    item = {}
    for m in json.loads(sys.argv[3]):
        item[m] = {k: float(row[(m, k)]) for k in ("value", "lower_confidence_boundary", "upper_confidence_boundary")
                   if (m, k) in row.index and row[(m, k)] == row[(m, k)]}
    out.append(item)
print(json.dumps(out))
"""


def make(n: int, rng, shift: float = 0.0) -> pd.DataFrame:
    x = rng.normal(shift, 1.0, n)
    p = 1 / (1 + np.exp(-(2 * x - 1)))
    y = (rng.random(n) < p).astype(int)
    score = p**2  # miscalibrated: both tools must calibrate
    return pd.DataFrame({"score": score, "pred": (score >= 0.5).astype(int), "y": y})


def ensure_venv(path: Path) -> Path:
    py = path / "bin" / "python"
    if not py.exists():
        subprocess.run(["python3", "-m", "venv", str(path)], check=True)
        subprocess.run([str(path / "bin" / "pip"), "install", "-q", "nannyml", "statsmodels", "pandas<3"], check=True)
    return py


def main() -> int:
    from sklearn import metrics as skm

    from mlops_core.monitoring.estimation import CBPE

    ap = argparse.ArgumentParser()
    ap.add_argument("--nannyml-python", default=None)
    args = ap.parse_args()
    py = Path(args.nannyml_python) if args.nannyml_python else ensure_venv(ROOT / ".venv-nannyml")
    rng = np.random.default_rng(17)
    ref = make(REF_ROWS, rng)
    shifts = np.linspace(-1.0, 1.0, WINDOWS)
    windows = [make(WINDOW_ROWS, rng, float(s)) for s in shifts]
    ana = pd.concat(windows, ignore_index=True)
    with tempfile.TemporaryDirectory(prefix="bench-nannyml-") as tmp:
        ref.to_csv(f"{tmp}/ref.csv", index=False)
        ana.drop(columns="y").to_csv(f"{tmp}/ana.csv", index=False)
        proc = subprocess.run(
            [str(py), "-c", NANNY_SCRIPT, f"{tmp}/ref.csv", f"{tmp}/ana.csv", json.dumps(METRICS), str(WINDOW_ROWS)],
            capture_output=True,
            text=True,
        )
    if proc.returncode != 0:
        print(proc.stderr[-3000:])
        return 1
    nanny = json.loads(proc.stdout.strip().splitlines()[-1])
    cbpe = CBPE.fit(ref["score"], ref["y"])
    inside = {m: 0 for m in METRICS}
    counted = {m: 0 for m in METRICS}
    err_ours = {m: [] for m in METRICS}
    err_nanny = {m: [] for m in METRICS}
    for i, w in enumerate(windows):
        ours = cbpe.estimate(w["score"], predictions=w["pred"], seed=i)
        real = {
            "accuracy": skm.accuracy_score(w["y"], w["pred"]),
            "precision": skm.precision_score(w["y"], w["pred"], zero_division=0),
            "recall": skm.recall_score(w["y"], w["pred"], zero_division=0),
            "f1": skm.f1_score(w["y"], w["pred"], zero_division=0),
            "roc_auc": skm.roc_auc_score(w["y"], w["score"]),
        }
        for m in METRICS:
            n = nanny[i].get(m) or {}
            e = ours.get(m)
            if e.value is None or "value" not in n:
                continue
            counted[m] += 1
            lo = n.get("lower_confidence_boundary", -np.inf)
            hi = n.get("upper_confidence_boundary", np.inf)
            inside[m] += int(lo <= e.value <= hi)
            err_ours[m].append(abs(e.value - real[m]))
            err_nanny[m].append(abs(n["value"] - real[m]))
    total_in, total = sum(inside.values()), sum(counted.values())
    for m in METRICS:
        print(
            f"{m:9s}: ours inside NannyML's band on {inside[m]}/{counted[m]} windows; mean |estimate - realized| "
            f"ours {np.mean(err_ours[m]):.4f}, NannyML {np.mean(err_nanny[m]):.4f}"
        )
    share = total_in / total if total else 0.0
    print(f"overall: {share:.1%} of {total} (window, metric) pairs inside NannyML's confidence band")
    figures = [
        {
            "figure": "CBPE estimates inside NannyML's confidence band (20 windows x 5 metrics)",
            "ours": round(share, 4),
            "baseline": None,
            "baseline_name": "NannyML CBPE",
            "unit": "share",
            "target": f">= {TARGET_SHARE:.0%}",
            "met": bool(share >= TARGET_SHARE),
        }
    ]
    print(json.dumps({"benchmark": "nannyml_agreement", "figures": figures}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
