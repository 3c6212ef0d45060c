"""Demo: the churn use case's ML canvas and value model (issue 20), so every screen shows value.

Runs after the other stages. Idempotent: a canvas or value model already saved is left as it is.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..db import Database
from ..services import canvas, value

if TYPE_CHECKING:
    from . import DemoContext

CHURN_CANVAS = {
    "decision": "Which customers the retention team calls this week with a discount offer",
    "who_acts": "The retention team (10 agents), from the weekly call list",
    "target": "The customer cancels their contract (churned = 1)",
    "horizon": "Within 30 days of scoring",
    "scored_unit": "Customer with an active contract",
    "frequency": "Every Monday, all active customers; on request for a single customer",
    "data_sources": "CRM contracts and tenure, billing (monthly charges, payment delays), support tickets",
    "cost_false_positive": "A call and a 20 EUR discount given to a customer who would have stayed",
    "cost_false_negative": "A lost customer: about 200 EUR of margin over the following year",
    "offline_success": "recall >= 0.75 on a held-out month; expected value per month above the current model's",
    "live_success": "Monthly churn rate below 6 %; realised value per month from labelled outcomes",
    "latency": "Single-customer scoring within 200 ms",
    "fairness": "No difference in call rate by age group beyond what tenure and charges explain",
    "explanations": "Agents see the three main reasons a customer was flagged",
}
# A saved customer (TP) is worth his margin minus the offer; a wasted offer (FP) costs the call and the discount.
CHURN_VALUE = {"tp": 150.0, "fp": -25.0, "fn": -200.0, "tn": 0.0}


def seed(db: Database, ctx: "DemoContext") -> None:
    uc_id = ctx.data.get("churn_use_case_id")
    if uc_id is None:
        return
    alice = ctx.actors["alice"]
    if canvas.get_canvas(db, use_case_id=uc_id).version == 0:
        canvas.save_canvas(
            db, actor=alice, use_case_id=uc_id, fields=CHURN_CANVAS, problem_type="binary", positive_class="1"
        )
    if value.get_value_model(db, use_case_id=uc_id) is None:
        value.set_value_model(
            db,
            actor=alice,
            use_case_id=uc_id,
            problem_type="binary",
            currency="EUR",
            period="month",
            volume_per_period=5000,
            outcome_values=CHURN_VALUE,
        )
