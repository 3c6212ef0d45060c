"""Activity page parts (issue 15, admin): the date range filter's bounds and the CSV export button."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from mlops_core.errors import NotFound
from mlops_core.services import audit, deployments, usecases


def date_bounds(days) -> dict[str, datetime]:
    """st.date_input's range -> list_events' since (inclusive) and until (exclusive), whole UTC days.
    While only the first day of a range is picked, that day alone is shown."""
    picked = [d for d in (days if isinstance(days, (list, tuple)) else [days]) if isinstance(d, date)]
    if not picked:
        return {}
    first, last = picked[0], picked[-1]
    return {
        "since": datetime.combine(first, time.min, tzinfo=UTC),
        "until": datetime.combine(last + timedelta(days=1), time.min, tzinfo=UTC),
    }


def csv_download(container, db, actor, filters: dict, *, disabled: bool = False) -> None:
    """A download of every row the filters match (not only this page), built when clicked."""

    def build() -> str:
        return audit.export_csv(db, actor=actor, labeler=lambda pairs: entity_names(db, pairs), **filters)

    container.download_button(
        "Download CSV",
        data=build,
        file_name=f"activity-{datetime.now(UTC):%Y%m%d-%H%M}.csv",
        mime="text/csv",
        icon=":material/download:",
        disabled=disabled,
        on_click="ignore",
        help="Every event matching the filters above, with the changes in words and the raw before/after.",
    )


def entity_names(db, pairs) -> dict[tuple[str, str], str]:
    """Names, not internal ids, of the audit entities on a page: a model version "churn-classifier v3", a
    deployment its name, a use case its title (issue 15). Others are left out (the caller shows their id)."""
    pairs = list(pairs)
    names = deployments.entity_labels(db, pairs)
    for uc_id in sorted({str(i) for t, i in pairs if t == "use_case" and str(i).isdigit()}):
        try:
            names[("use_case", uc_id)] = usecases.get_use_case(db, use_case_id=int(uc_id)).title
        except NotFound:
            pass
    return names


def entity_words(entity_type: str | None, entity_id, names: dict) -> str:
    """ "use case 'Customer churn'", "deployment churn", "login alice": the entity as a person reads it."""
    kind = (entity_type or "").replace("_", " ")
    name = names.get((entity_type, str(entity_id) if entity_id is not None else None))
    if name is not None:
        return f"{kind} {name}".strip()
    return f"{kind} {entity_id if entity_id is not None else ''}".strip()
