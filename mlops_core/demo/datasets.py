"""Demo seeder for stage 2: dan registers the churn use case's "customers" table in three versions.

v1 (5,000 rows) is validated and its schema inferred; dan then widens two ranges in the schema
(support calls and age) as a data engineer would after reading the profile; v2 is a fresh extract
with a little drift (validated, with drift warnings); v3 has negative monthly charges in some rows
(refunds booked as charges) and fails validation for that visible reason.
"""

from __future__ import annotations

import numpy as np
from sqlmodel import func, select

from ..db import Database
from ..models.usecases import UseCase
from ..services import collab, datasets
from .customers import make_customers

DATASET = "customers"


def _churn_use_case_id(db: Database, ctx) -> int | None:
    for key in ("churn_use_case_id", "use_case_id"):
        if ctx.data.get(key):
            return int(ctx.data[key])
    with db.read() as s:
        uc = s.exec(select(UseCase).where(func.lower(UseCase.title).like("%churn%")).order_by(UseCase.id)).first()
        return int(uc.id) if uc else None


def seed(db: Database, ctx) -> None:
    dan = ctx.actors["dan"]
    use_case_id = _churn_use_case_id(db, ctx)
    desc = (
        "One row per customer of the consumer broadband and mobile business: contract, charges, support "
        "contacts and whether they left in the following quarter (churned = 1)."
    )

    v1 = datasets.register_version_from_frame(
        db,
        actor=dan,
        dataset_name=DATASET,
        frame=make_customers(5000, seed=7),
        use_case_id=use_case_id,
        source="crm_export_2024_q1.csv",
        description=desc,
    )
    schema = datasets.current_schema(db, v1.dataset_id)
    columns = [dict(c) for c in schema.columns]
    for c in columns:
        if c["name"] == "support_calls":
            c["min"], c["max"] = 0, 30
        if c["name"] == "age":
            c["min"], c["max"] = 18, 100
    datasets.update_schema(
        db,
        actor=dan,
        dataset_id=v1.dataset_id,
        columns=columns,
        note="support calls up to 30 and ages 18-100 are valid (confirmed with CRM team)",
    )

    v2 = datasets.register_version_from_frame(
        db,
        actor=dan,
        dataset_name=DATASET,
        frame=make_customers(5000, seed=8, drift=0.25),
        use_case_id=use_case_id,
        source="crm_export_2024_q2.csv",
    )

    bad = make_customers(5000, seed=9, drift=0.35)
    rng = np.random.default_rng(9)
    refunds = rng.choice(len(bad), size=37, replace=False)
    bad.loc[refunds, "monthly_charges"] = -bad.loc[refunds, "monthly_charges"].round(2)
    v3 = datasets.register_version_from_frame(
        db, actor=dan, dataset_name=DATASET, frame=bad, use_case_id=use_case_id, source="crm_export_2024_q3.csv"
    )

    collab.add_comment(
        db,
        actor=dan,
        entity_type="dataset",
        entity_id=v1.dataset_id,
        body="v3 failed: billing books refunds as negative monthly charges. "
        "Asked billing for a corrected extract; train on v2 until then. @sara",
    )

    ctx.data["customers_dataset_id"] = v1.dataset_id
    ctx.data["customers_version_ids"] = [v1.id, v2.id, v3.id]
    trainable = datasets.latest_trainable_version(db, v1.dataset_id)
    ctx.data["customers_trainable_version_id"] = trainable.id if trainable else None
    ctx.lines.append(
        f"datasets: {DATASET} v1 {v1.status}, v2 {v2.status}, v3 {v3.status} "
        f"({v3.n_errors} error{'s' if v3.n_errors != 1 else ''})"
    )
