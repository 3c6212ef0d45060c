"""A person's remembered screen choices (ui_preferences): e.g. which metric and parameter columns their run
table shows. Personal settings, not workspace data: each person reads and writes only their own, and no
audit event is written for them (like a column width in MLflow or W&B)."""

from __future__ import annotations

from typing import Any

from sqlmodel import select

from ..db import Database, utcnow
from ..errors import ValidationError
from ..models.ui import UiPreference
from .auth import Actor

RUN_TABLE_COLUMNS = "runs_table.columns"
MAX_BYTES = 4000


def get(db: Database, *, actor: Actor, key: str) -> dict[str, Any]:
    if actor.id is None:
        return {}
    with db.read() as s:
        row = s.exec(select(UiPreference).where(UiPreference.user_id == actor.id, UiPreference.key == key)).first()
        return dict(row.value) if row else {}


def put(db: Database, *, actor: Actor, key: str, value: dict[str, Any]) -> None:
    if actor.id is None:
        return
    if len(repr(value)) > MAX_BYTES or len(key) > 100:
        raise ValidationError("that preference is too large to keep")
    with db.unit_of_work() as s:
        row = s.exec(select(UiPreference).where(UiPreference.user_id == actor.id, UiPreference.key == key)).first()
        if row is None:
            s.add(UiPreference(user_id=actor.id, key=key, value=dict(value)))
        else:
            row.value = dict(value)
            row.updated_at = utcnow()


def run_columns(db: Database, *, actor: Actor) -> list[str] | None:
    """The run table's columns this person chose last (None: never chose)."""
    cols = get(db, actor=actor, key=RUN_TABLE_COLUMNS).get("columns")
    return [str(c) for c in cols] if isinstance(cols, list) else None


def set_run_columns(db: Database, *, actor: Actor, columns: list[str]) -> None:
    put(db, actor=actor, key=RUN_TABLE_COLUMNS, value={"columns": [str(c)[:200] for c in columns][:60]})
