"""Activity page parts (issue 15, admin): the date range filter's bounds and the CSV export button."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from mlops_core.services import audit, deployments


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
        return audit.export_csv(db, actor=actor, labeler=lambda pairs: deployments.entity_labels(db, pairs), **filters)

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
