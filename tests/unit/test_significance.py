"""The canary's significance functions (mlops_core/monitoring/significance.py) on cases with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from mlops_core.monitoring import significance as sig


def test_two_proportions_matches_the_textbook_z_test():
    # 45/100 vs 60/100: pooled p = 0.525, se = sqrt(0.525 * 0.475 * 0.02) = 0.07062, z = 2.124, p = 0.0337
    c = sig.two_proportions(45, 100, 60, 100, metric="accuracy")
    assert c.champion == pytest.approx(0.45) and c.challenger == pytest.approx(0.60)
    assert c.difference == pytest.approx(0.15)
    assert c.p_value == pytest.approx(0.0337, abs=5e-4)
    assert c.significant is True and c.enough
    # unpooled 95% interval: 0.15 +- 1.96 * sqrt(.45*.55/100 + .6*.4/100) = 0.15 +- 0.1365
    assert c.ci_low == pytest.approx(0.0135, abs=1e-3) and c.ci_high == pytest.approx(0.2865, abs=1e-3)
    assert c.verdict.startswith("challenger higher, significant (p=0.0337")


def test_two_proportions_no_difference_and_identical_arms():
    c = sig.two_proportions(50, 100, 52, 100)
    assert c.p_value == pytest.approx(0.7773, abs=1e-3) and c.significant is False
    assert c.verdict.startswith("no significant difference")
    same = sig.two_proportions(0, 200, 0, 300)  # no errors anywhere: nothing differs, no division by zero
    assert same.p_value == 1.0 and same.significant is False and same.difference == 0.0


def test_below_the_minimum_it_says_so_and_gives_no_verdict():
    c = sig.two_proportions(1, 12, 0, 3, metric="error rate")
    assert c.enough is False and c.significant is None and c.p_value is None
    assert c.verdict == "not enough requests yet to tell (n=12 champion, 3 challenger; 30 each needed)"
    m = sig.mann_whitney([1.0] * 40, [2.0] * 5)
    assert (
        m.enough is False and m.champion == 1.0 and m.challenger == 2.0 and "n=40 champion, 5 challenger" in m.verdict
    )


def test_two_proportions_refuses_impossible_counts():
    with pytest.raises(ValueError):
        sig.two_proportions(5, 4, 1, 10)


def test_mann_whitney_exact_p_on_a_small_known_case():
    # no overlap, 3 vs 3: U = 0, the exact two-sided p is 2 / C(6, 3) = 0.1
    c = sig.mann_whitney([1, 2, 3], [4, 5, 6], min_n=3, n_boot=200)
    assert c.p_value == pytest.approx(0.1)
    assert c.champion == 2 and c.challenger == 5 and c.difference == 3
    assert c.significant is False  # 0.1 > 0.05: three requests each cannot tell


def test_mann_whitney_sees_a_latency_shift_and_the_bootstrap_interval_covers_it():
    rng = np.random.default_rng(1)
    a = rng.normal(20, 2, 400)
    b = rng.normal(20, 2, 300) + 5  # the challenger is 5 ms slower
    c = sig.mann_whitney(a, b, metric="latency p50 (ms)")
    assert c.significant is True and c.p_value < 1e-6
    assert c.ci_low < 5 < c.ci_high and c.ci_high - c.ci_low < 2
    assert c.verdict.startswith("challenger higher, significant")
    same = sig.mann_whitney(a, rng.normal(20, 2, 300))
    assert same.significant is False


def test_the_p95_summary_and_the_bootstrap_are_reproducible():
    a = np.arange(100, dtype=float)
    assert sig.p95(a) == pytest.approx(94.05)
    lo1, hi1 = sig.bootstrap_difference(a, a + 10, summary=sig.p95, seed=3)
    lo2, hi2 = sig.bootstrap_difference(a, a + 10, summary=sig.p95, seed=3)
    assert (lo1, hi1) == (lo2, hi2) and lo1 <= 10 <= hi1


def test_classification_counts_accuracy_precision_recall():
    preds = [1, 1, 0, 0, 1, "1", True, 0]
    labels = [1, 0, 0, 1, 1, 1, 0, 0]
    c = sig.classification_counts(preds, labels)
    # pairs (p, y): (1,1) (1,0) (0,0) (0,1) (1,1) (1,1) (1,0) (0,0): 5 correct of 8
    assert c["accuracy"] == (5, 8)
    assert c["precision"] == (3, 5)  # predicted 1 five times, right three times
    assert c["recall"] == (3, 4)  # four actual 1s, three found
    multi = sig.classification_counts(["a", "b", "c"], ["a", "c", "c"])
    assert multi == {"accuracy": (2, 3)}


def test_histogram_shares_edges_and_each_arm_sums_to_one():
    h = sig.histogram([0.1, 0.2, 0.9], [0.5, 0.5], bins=4)
    assert len(h["edges"]) == 5 and sum(h["champion"]) == pytest.approx(1) and sum(h["challenger"]) == pytest.approx(1)


def test_a_tail_quantile_is_judged_by_its_bootstrap_interval():
    rng = np.random.default_rng(2)
    a = rng.normal(20, 2, 500)
    b = np.concatenate([rng.normal(20, 2, 450), rng.normal(40, 2, 50)])  # same median, a slow tail of 10%
    tail = sig.bootstrap(a, b, metric="latency p95 (ms)", summary=sig.p95)
    assert tail.method == "bootstrap" and tail.significant is True and tail.ci_low > 5
    assert tail.verdict == "challenger higher, significant (95% interval excludes 0)" and tail.p_value < 0.01
    same = sig.bootstrap(a, rng.normal(20, 2, 500), summary=sig.p95)
    assert same.significant is False and same.ci_low < 0 < same.ci_high
    assert sig.bootstrap(a[:10], b, summary=sig.p95).enough is False
