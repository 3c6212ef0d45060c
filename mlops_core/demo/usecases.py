"""Demo, stage 1: the "Customer churn" use case with its KPIs, team, discussion and a sign-off,
and "Invoice fraud triage" still at "proposed". Everything goes through the services (audited)."""

from __future__ import annotations

from datetime import date

from ..db import utcnow
from ..errors import NotFound
from ..services import collab, usecases

# Monthly churn rate (%), oldest first: drifting down from the 8.5 % baseline towards the 6 % target
# (the latest, 6.4, is inside the 0.5 warning band).
CHURN_READINGS = [8.7, 8.5, 8.6, 8.3, 8.1, 7.9, 7.6, 7.3, 7.1, 6.8, 6.6, 6.4]


def _month_starts(n: int) -> list[date]:
    today = utcnow().date()
    y, m = today.year, today.month
    out = []
    for _ in range(n):
        m -= 1
        if m == 0:
            y, m = y - 1, 12
        out.append(date(y, m, 1))
    return list(reversed(out))


def seed(db, ctx) -> None:
    alice, dan, sara, omar, admin = (ctx.actors[u] for u in ("alice", "dan", "sara", "omar", "admin"))
    try:
        existing = usecases.resolve_use_case(db, "Customer churn")
        ctx.data["churn_use_case_id"] = existing.id
        ctx.data["fraud_use_case_id"] = usecases.resolve_use_case(db, "Invoice fraud triage").id
        ctx.lines.append("use cases: already seeded")
        return
    except NotFound:
        pass

    churn = usecases.create_use_case(
        db,
        actor=alice,
        title="Customer churn",
        problem_statement=(
            "About 8.5 % of subscribers cancel every month, and the retention team hears about it "
            "only after they have left. We want to know, a month ahead, who is likely to leave."
        ),
        objectives=(
            "Score every active customer weekly; hand the retention team the 500 riskiest each week; "
            "bring monthly churn down to 6 % within a year."
        ),
        priority="high",
        target_date=date(utcnow().year + 1, 6, 30),
        tags=["retention", "b2c", "subscriptions"],
        members={"business": ["alice"], "data_engineer": ["dan"], "data_scientist": ["sara"], "ops": ["omar"]},
    )
    usecases.add_kpi(db, actor=alice, use_case_id=churn.id, kind="model", metric="recall", target=0.75, warning=0.05)
    usecases.add_kpi(db, actor=alice, use_case_id=churn.id, kind="model", metric="roc_auc", target=0.80)
    rate = usecases.add_kpi(
        db,
        actor=alice,
        use_case_id=churn.id,
        kind="business",
        name="Monthly churn rate",
        unit="%",
        baseline=8.5,
        target=6.0,
        direction="<=",
        warning=0.5,
    )
    for on, value in zip(_month_starts(len(CHURN_READINGS)), CHURN_READINGS):
        usecases.add_reading(
            db, actor=alice, kpi_id=rate.id, value=value, measured_on=on, note="from the billing system's monthly close"
        )

    first = collab.add_comment(
        db,
        actor=sara,
        entity_type="use_case",
        entity_id=churn.id,
        body="@alice is a recall of 0.75 enough for the retention team? At that level we flag about 900 customers a week.",
    )
    collab.add_comment(
        db,
        actor=alice,
        entity_type="use_case",
        entity_id=churn.id,
        parent_id=first.id,
        body="Yes: they can call 500 a week, we'll rank by risk. @omar we need weekly scoring by Monday 6:00.",
    )
    collab.add_comment(
        db,
        actor=dan,
        entity_type="use_case",
        entity_id=churn.id,
        body="@sara the customer extract is registered and validated; the `tenure` column is in months now.",
    )

    so = collab.request_signoff(
        db,
        actor=alice,
        entity_type="use_case",
        entity_id=churn.id,
        title="Approve “Customer churn” and its KPIs",
        assignee_username="admin",
        evidence={"use_case": churn.title, "kpis": ["recall >= 0.75", "roc_auc >= 0.8", "Monthly churn rate <= 6 %"]},
    )
    collab.decide_signoff(
        db, actor=admin, signoff_id=so.id, approve=True, reason="KPIs agreed with the retention team; go ahead."
    )
    for status, who, note in (
        ("approved", admin, "signed off"),
        ("data", dan, "customer extract registered"),
        ("experimentation", sara, "first experiments"),
    ):
        usecases.transition_use_case(
            db,
            actor=who if who.role in ("business", "admin") else alice,
            use_case_id=churn.id,
            to_status=status,
            note=note,
        )

    fraud = usecases.create_use_case(
        db,
        actor=alice,
        title="Invoice fraud triage",
        problem_statement="Finance reviews every supplier invoice by hand; most are fine.",
        objectives="Send only the suspicious 5 % of invoices to manual review.",
        priority="medium",
        tags=["finance", "fraud"],
        members={"business": ["alice"]},
    )
    usecases.add_kpi(db, actor=alice, use_case_id=fraud.id, kind="model", metric="precision", target=0.9)
    collab.add_comment(
        db,
        actor=alice,
        entity_type="use_case",
        entity_id=fraud.id,
        body="@dan do we keep the last two years of invoices with their review outcome?",
    )

    ctx.data["churn_use_case_id"] = churn.id
    ctx.data["fraud_use_case_id"] = fraud.id
    ctx.lines.append(
        "use cases: “Customer churn” (experimentation, 3 KPIs, 12 monthly readings) and "
        "“Invoice fraud triage” (proposed)"
    )
