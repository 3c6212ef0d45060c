"""Realistic-looking demo data, generated deterministically with numpy (no files shipped, no real people).

`make_customers(n, seed, drift=0.0)`: a telecom-style customer table for the churn use case. The
target `churned` (~25 % positive) really depends on the features (contract, tenure, charges,
support calls, fibre, payment method), so a plain scikit-learn model reaches ROC AUC ~0.85.
`drift` (0..1) moves the population the way a real market shift would: higher charges, more support
calls, shorter tenure, more month-to-month contracts — for drifted versions and drifted traffic.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

CONTRACTS = ["month-to-month", "one-year", "two-year"]
PAYMENT_METHODS = ["electronic check", "mailed check", "bank transfer", "credit card"]
INTERNET = ["DSL", "fiber optic", "none"]
REGIONS = ["north", "south", "east", "west"]
FEATURES = [
    "tenure_months",
    "monthly_charges",
    "total_charges",
    "contract",
    "payment_method",
    "internet_service",
    "support_calls",
    "age",
    "region",
    "senior",
]
TARGET = "churned"


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def make_customers(n: int = 5000, seed: int = 7, drift: float = 0.0) -> pd.DataFrame:
    """A customers table of `n` rows; same (n, seed, drift) -> same table."""
    if n < 1:
        raise ValueError("n must be at least 1")
    drift = float(max(0.0, drift))
    rng = np.random.default_rng(seed)
    p_contract = np.array([0.52, 0.25, 0.23]) + drift * np.array([0.18, -0.08, -0.10])
    p_contract = np.clip(p_contract, 0.02, None)
    p_contract /= p_contract.sum()
    contract = rng.choice(CONTRACTS, size=n, p=p_contract)
    internet = rng.choice(INTERNET, size=n, p=[0.36, 0.44, 0.20])
    payment = rng.choice(PAYMENT_METHODS, size=n, p=[0.34, 0.22, 0.22, 0.22])
    region = rng.choice(REGIONS, size=n, p=[0.3, 0.25, 0.25, 0.2])
    age = np.clip(np.round(rng.normal(46, 15, n)), 18, 90).astype(np.int64)
    senior = (age >= 65) | (rng.random(n) < 0.02)

    # Longer contracts go with longer tenure; drift shortens tenure.
    base_tenure = np.where(contract == "two-year", 48, np.where(contract == "one-year", 30, 12))
    tenure = rng.gamma(2.0, base_tenure / 2.0) * (1.0 - 0.25 * drift)
    tenure = np.clip(np.round(tenure), 1, 72).astype(np.int64)

    monthly = np.where(internet == "fiber optic", 85.0, np.where(internet == "DSL", 55.0, 22.0))
    monthly = monthly + rng.normal(0, 9, n) + drift * 12.0
    monthly = np.round(np.clip(monthly, 18.25, 125.0), 2)
    total = np.round(monthly * tenure * rng.uniform(0.95, 1.05, n), 2)

    calls = rng.poisson(1.2 + 1.3 * drift + 0.8 * (internet == "fiber optic"), n).astype(np.int64)

    logit = 1.1 * (
        -3.0
        + 1.55 * (contract == "month-to-month")
        - 1.10 * (contract == "two-year")
        - 0.045 * (tenure - 20)
        + 0.022 * (monthly - 65)
        + 0.38 * calls
        + 0.55 * (payment == "electronic check")
        + 0.35 * (internet == "fiber optic")
        + 0.30 * senior
    )
    churned = (rng.random(n) < _sigmoid(logit)).astype(np.int64)

    return pd.DataFrame(
        {
            "tenure_months": tenure,
            "monthly_charges": monthly,
            "total_charges": total,
            "contract": contract,
            "payment_method": payment,
            "internet_service": internet,
            "support_calls": calls,
            "age": age,
            "region": region,
            "senior": senior.astype(bool),
            TARGET: churned,
        }
    )
