"""Per-column distributions of two dataset versions, for Compare versions' overlaid charts (no table)."""

from __future__ import annotations

from pydantic import BaseModel


class ColumnDistributionPublic(BaseModel):
    """One column of two versions' samples, binned the same way on both sides.

    kind "num": ``labels`` are bin centres and ``edges`` the shared bin edges; kind "cat": ``labels`` are
    the most frequent values (the rest summed as "(other)"). Shares are fractions of each side's non-null
    sample rows; ``rows`` the non-null rows behind each side.
    """

    column: str
    kind: str  # num | cat
    from_ref: str
    to_ref: str
    labels: list[str | float]
    edges: list[float] = []
    from_share: list[float]
    to_share: list[float]
    rows: tuple[int, int]
