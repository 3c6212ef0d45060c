"""Reference sketches (issue 16, point 4): merge equals the whole, JSON round trip, and drift verdicts
from sketches equal detect_drift's on the demo customers and on shifted synthetic data."""

from __future__ import annotations

import numpy as np
import orjson
import pandas as pd
import pytest

from mlops_core.demo.customers import FEATURES, make_customers
from mlops_core.monitoring.drift import detect_drift
from mlops_core.monitoring.sketches import (
    MAX_EDGES,
    CategoricalSketch,
    FrameSketch,
    NumericSketch,
    detect_drift_from_sketches,
)
from mlops_core.services.monitoring.windows import align


def _logged(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame as a monitor reads it back from the prediction log: JSON records, aligned to the reference."""
    records = orjson.loads(orjson.dumps(frame.to_dict("records")))
    return pd.DataFrame.from_records(records, columns=list(frame.columns))


def _batched(ref_sketch: FrameSketch, frame: pd.DataFrame, reference: pd.DataFrame, size: int) -> FrameSketch:
    acc = ref_sketch.empty_like()
    for start in range(0, len(frame), size):
        acc = acc.merge(ref_sketch.from_batch(align(frame.iloc[start : start + size], reference)))
    return acc


def test_numeric_merge_equals_the_whole_and_survives_json():
    rng = np.random.default_rng(0)
    ref = rng.normal(10, 3, 5000)
    edges, exact = NumericSketch.edges_for(ref)
    assert not exact and len(edges) <= MAX_EDGES + 1 and edges[0] == ref.min() and edges[-1] == ref.max()
    cur = np.concatenate([rng.normal(11, 3, 7000), [np.nan, np.inf, 1e9, -1e9]])
    whole = NumericSketch.from_batch(cur, edges)
    parts = NumericSketch.empty(edges)
    for chunk in np.array_split(cur, 7):
        parts = parts.merge(NumericSketch.from_batch(chunk, edges))
    assert np.array_equal(whole.at, parts.at) and np.array_equal(whole.between, parts.between)
    assert np.allclose(whole.between_sum, parts.between_sum, rtol=1e-12)
    assert (
        (whole.n, whole.nulls, whole.vmin, whole.vmax)
        == (parts.n, parts.nulls, parts.vmin, parts.vmax)
        == (
            7002,
            2,
            -1e9,
            1e9,
        )
    )
    assert whole.mean == pytest.approx(np.mean(cur[np.isfinite(cur)]), rel=1e-12)
    assert parts.std == pytest.approx(np.std(cur[np.isfinite(cur)]), rel=1e-9)
    back = NumericSketch.from_dict(orjson.loads(orjson.dumps(parts.to_dict())))
    assert back.to_dict() == parts.to_dict()


def test_categorical_merge_counts_new_values_and_keeps_first_and_last():
    ref = CategoricalSketch.reference(pd.Series(["a", "b", "a", None, "c"], dtype=object))
    assert ref.keys == ["a", "b", "c"] and ref.counts.tolist() == [2, 1, 1] and ref.nulls == 1
    batches = [pd.Series(v, dtype=object) for v in (["b", "z", None], [], ["a", "y", "z", 3])]
    merged = CategoricalSketch.empty(ref.keys)
    for b in batches:
        merged = merged.merge(CategoricalSketch.from_batch(b, ref.keys))
    whole = CategoricalSketch.from_batch(pd.concat(batches, ignore_index=True), ref.keys)
    assert merged.to_dict() == whole.to_dict()
    assert merged.counts.tolist() == [1, 1, 0] and merged.others == {"z": 2, "y": 1, 3: 1}
    assert (merged.first, merged.last, merged.nulls, merged.other_total) == ("b", 3, 1, 4)
    assert CategoricalSketch.from_dict(orjson.loads(orjson.dumps(merged.to_dict()))).to_dict() == merged.to_dict()


def test_frame_sketch_json_round_trip_keeps_verdict_inputs():
    ref = make_customers(1500, seed=3)[FEATURES]
    sketch = FrameSketch.reference(ref)
    back = FrameSketch.from_json(sketch.to_json())
    assert back.to_dict() == sketch.to_dict() and back.dtypes["senior"] == "bool"
    assert isinstance(back.columns["age"], NumericSketch) and back.columns["age"].exact  # few distinct ages
    assert not back.columns["monthly_charges"].exact  # a continuous column gets quantile edges
    with pytest.raises(ValueError, match="cannot be merged"):
        NumericSketch.empty(np.array([1.0])).merge(NumericSketch.empty(np.array([2.0])))


@pytest.mark.parametrize("n_ref", [400, 5000])  # <= 1000 rows: KS / chi-square / z; above: Wasserstein / JS
def test_verdicts_from_sketches_equal_the_exact_path_on_the_demo_customers(n_ref):
    reference = make_customers(n_ref, seed=3)[FEATURES]
    ref_sketch = FrameSketch.from_json(FrameSketch.reference(reference).to_json())
    seen_methods, drifted = set(), 0
    for drift in (0.0, 0.25, 1.5):
        for n_cur in (240, 20000):
            current = align(_logged(make_customers(n_cur, seed=11, drift=drift)[FEATURES]), reference)
            exact = detect_drift(reference, current, columns=FEATURES)
            sketched = detect_drift_from_sketches(ref_sketch, _batched(ref_sketch, current, reference, 777), FEATURES)
            assert sketched.dataset_drifted == exact.dataset_drifted
            assert sketched.skipped == exact.skipped == {}
            for col in FEATURES:
                e, s = exact.columns[col], sketched.columns[col]
                assert (s.method, s.column_type, s.drifted) == (e.method, e.column_type, e.drifted), col
                if s.method == "wasserstein":  # binned: within 1e-3 of the exact distance (threshold 0.1)
                    assert s.score == pytest.approx(e.score, abs=1e-3), col
                else:  # exact counts (KS statistic included): the same numbers
                    assert s.score == pytest.approx(e.score, rel=1e-9, abs=1e-300), col
                seen_methods.add(s.method)
                drifted += s.drifted
    expected = {"ks", "chisquare"} if n_ref <= 1000 else {"wasserstein", "jensenshannon"}
    assert expected <= seen_methods and drifted > 0


def test_verdicts_on_shifted_synthetic_data_with_nulls_and_new_categories():
    rng = np.random.default_rng(5)
    n = 3000
    reference = pd.DataFrame(
        {
            "x": rng.normal(0, 1, n),
            "skewed": rng.lognormal(0, 1, n),
            "count": rng.poisson(3, n).astype("int64"),
            "colour": rng.choice(["red", "green", "blue"], n),
            "flag": rng.random(n) < 0.3,
        }
    )
    for shift in (0.0, 0.05, 1.0):
        m = 30_000
        cur = pd.DataFrame(
            {
                "x": rng.normal(shift, 1, m),
                "skewed": rng.lognormal(shift, 1, m),
                "count": rng.poisson(3 + 2 * shift, m).astype(float),
                "colour": rng.choice(["red", "green", "blue", "purple"], m, p=[0.4, 0.3, 0.3 - shift / 4, shift / 4]),
                "flag": rng.random(m) < 0.3 + shift / 5,
            }
        )
        cur.loc[::97, "x"] = np.nan  # nulls: an int column with a null is numeric, as align leaves it float
        cur.loc[::89, "count"] = np.nan
        current = align(_logged(cur), reference)
        exact = detect_drift(reference, current, columns=list(reference.columns))
        ref_sketch = FrameSketch.reference(reference)
        sketched = detect_drift_from_sketches(
            ref_sketch, _batched(ref_sketch, current, reference, 4096), list(reference.columns)
        )
        assert {c: r.drifted for c, r in sketched.columns.items()} == {c: r.drifted for c, r in exact.columns.items()}
        assert {c: r.method for c, r in sketched.columns.items()} == {c: r.method for c, r in exact.columns.items()}
        assert sketched.dataset_drifted == exact.dataset_drifted


def test_a_bool_column_with_nulls_is_refused_like_the_exact_path():
    reference = pd.DataFrame({"flag": [True, False] * 10})
    current = align(pd.DataFrame({"flag": [True, None, False] * 5}), reference)
    with pytest.raises(ValueError, match="unsupported type: flag"):
        detect_drift(reference, current, columns=["flag"])
    ref_sketch = FrameSketch.reference(reference)
    with pytest.raises(ValueError, match="unsupported type: flag"):
        detect_drift_from_sketches(ref_sketch, ref_sketch.from_batch(current), ["flag"])


def test_a_batch_parsed_by_pyarrow_sketches_like_the_decoded_and_aligned_rows():
    import pyarrow as pa
    import pyarrow.json as pa_json

    from mlops_core.monitoring.sketches import arrow_schema, frame_sketch_from_arrow

    reference = make_customers(2000, seed=3)[FEATURES]
    ref_sketch = FrameSketch.reference(reference)
    rows = make_customers(3000, seed=4, drift=0.8)[FEATURES].to_dict("records")
    for i in range(0, 3000, 50):  # missing values, as logged inputs may lack a field
        del rows[i]["monthly_charges"]
        rows[i + 1]["contract"] = None
        rows[i + 2]["region"] = "atlantis"  # a category the reference never had
    texts = [orjson.dumps({k: (v.item() if hasattr(v, "item") else v) for k, v in r.items()}) for r in rows]
    table = pa_json.read_json(
        pa.py_buffer(b"\n".join(texts)),
        parse_options=pa_json.ParseOptions(
            explicit_schema=arrow_schema(ref_sketch), unexpected_field_behavior="ignore"
        ),
    )
    decoded = pd.DataFrame.from_records([orjson.loads(t) for t in texts], columns=FEATURES)
    assert (
        frame_sketch_from_arrow(ref_sketch, table).to_dict()
        == ref_sketch.from_batch(align(decoded, reference)).to_dict()
    )
