"""Benchmark: our detect_drift vs evidently's DataDriftPreset on 100,000 rows x 20 columns.

Run: ``.venv/bin/python benchmarks/drift.py`` (from the repository root). The last line printed is
JSON for the ``make bench`` aggregator.
"""

from __future__ import annotations

import json
import os
import sys
import time
import warnings

import numpy as np
import pandas as pd

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from mlops_core.monitoring.drift import detect_drift  # noqa: E402
from mlops_core.monitoring.evidently_report import evidently_drift_verdicts  # noqa: E402

ROWS = 100_000
TARGET_SECONDS = 0.5
TARGET_SPEEDUP = 20.0


def make_frames(rows: int = ROWS, seed: int = 7):
    """10 numeric + 10 categorical columns; 6 of them drift in the current frame."""
    rng = np.random.default_rng(seed)
    cities = [f"city_{i}" for i in range(25)]

    def frame(drift: bool) -> pd.DataFrame:
        r = rng
        shift = 0.3 if drift else 0.0
        data = {
            "age": r.normal(40 + (5 if drift else 0), 12, rows).round(),
            "income": r.lognormal(10.5 + shift, 0.6, rows),
            "balance": r.normal(1000, 400, rows),
            "tenure_months": r.integers(0, 120, rows),  # int, many values -> numerical
            "score": r.beta(2, 5 + (2 if drift else 0), rows),
            "visits": r.poisson(3, rows).astype(float),
            "latency_ms": r.exponential(120, rows),
            "ratio": np.where(r.random(rows) < 0.05, np.nan, r.random(rows)),  # nulls
            "temperature": r.normal(20, 5, rows),
            "discount": r.choice([0.0, 0.05, 0.1, 0.15], rows),  # numerical, few values
            "plan": r.choice(["basic", "plus", "pro"], rows, p=[0.2, 0.3, 0.5] if drift else [0.5, 0.3, 0.2]),
            "region": r.choice(["north", "south", "east", "west"], rows),
            "city": r.choice(cities, rows),
            "channel": r.choice(["web", "app", "store", "phone", None], rows),  # nulls
            "device": r.choice(["ios", "android", "desktop"], rows),
            "is_member": r.random(rows) < (0.6 if drift else 0.4),  # bool
            "has_coupon": r.random(rows) < 0.3,
            "segment": r.integers(0, 5, rows),  # int, few values -> categorical
            "language": pd.Categorical(r.choice(["en", "fr", "de", "es"], rows)),
            "payment": r.choice(["card", "cash", "transfer"], rows),
        }
        return pd.DataFrame(data)

    return frame(False), frame(True)


def main() -> int:
    warnings.filterwarnings("ignore")
    reference, current = make_frames()
    print(f"frames: reference {reference.shape}, current {current.shape}")

    ours_times = []
    ours = None
    for _ in range(3):
        start = time.perf_counter()
        ours = detect_drift(reference, current)
        ours_times.append(time.perf_counter() - start)
    ours_best = min(ours_times)

    start = time.perf_counter()
    import evidently.presets  # noqa: F401  (imported before timing: the run alone is the baseline)

    import_time = time.perf_counter() - start
    start = time.perf_counter()
    baseline = evidently_drift_verdicts(reference, current)  # report run + reading its verdicts
    baseline_time = time.perf_counter() - start

    names = sorted(set(baseline["columns"]) | set(ours.columns))
    agree = 0
    max_score_diff = 0.0
    for name in names:
        e = baseline["columns"].get(name)
        o = ours.columns.get(name)
        same = e is not None and o is not None and e["method"] == o.method and e["drifted"] == o.drifted
        agree += same
        if e is not None and o is not None:
            max_score_diff = max(max_score_diff, abs(e["score"] - o.score))
        if not same:
            print(f"  DISAGREE {name}: evidently={e} ours={o}")
    verdicts = len(names) + 1
    agree += baseline["dataset_drifted"] == ours.dataset_drifted
    agreement = agree / verdicts
    speedup = baseline_time / ours_best

    print(f"ours (detect_drift, best of 3): {ours_best:.3f} s  (runs: {', '.join(f'{t:.3f}' for t in ours_times)})")
    print(f"evidently DataDriftPreset (1 run): {baseline_time:.2f} s  (+ {import_time:.2f} s to import evidently)")
    print(f"speed-up: {speedup:.1f}x")
    print(
        f"columns: {len(names)}, drifted (ours/evidently): {ours.number_of_drifted_columns}/"
        f"{baseline['number_of_drifted_columns']}, dataset drift (ours/evidently): "
        f"{ours.dataset_drifted}/{baseline['dataset_drifted']}"
    )
    print(f"verdict agreement: {agree}/{verdicts} ({agreement:.0%}); max |score difference|: {max_score_diff:.2e}")

    figures = [
        {
            "figure": "drift check 100k x 20 (s)",
            "ours": round(ours_best, 4),
            "baseline": round(baseline_time, 3),
            "baseline_name": "evidently DataDriftPreset",
            "target": "<0.5 s and >=20x",
            "met": bool(ours_best < TARGET_SECONDS and speedup >= TARGET_SPEEDUP),
        },
        {
            "figure": "drift verdict agreement share",
            "ours": round(agreement, 4),
            "baseline": 1.0,
            "baseline_name": "evidently DataDriftPreset",
            "target": "1.0",
            "met": bool(agreement == 1.0),
        },
    ]
    print(json.dumps({"benchmark": "drift", "figures": figures}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
