"""Where a use case stands, stage by stage (the use case page's status strip and the portfolio cards)."""

from __future__ import annotations

from pydantic import BaseModel


class StageTilePublic(BaseModel):
    """One stage: a short line, a light from the evidence and the page (with its query) that shows it.

    state: "good" (green: KPI contract met, data passed, nothing open), "bad" (red: a KPI missed, data failed,
    a critical alert), "warn" (amber: a warning band, something waiting), "none" (grey: nothing yet)."""

    stage: str  # data | model | deployed | live | alerts | signoffs
    title: str
    value: str
    detail: str = ""
    state: str = "none"
    page: str
    params: dict[str, str] = {}


class DeploymentBriefPublic(BaseModel):
    name: str
    environment: str
    model: str | None  # "churn-classifier v3", None when nothing is served yet
    open_alerts: int = 0


class UseCaseStatusPublic(BaseModel):
    use_case_id: int
    tiles: list[StageTilePublic]
    deployments: list[DeploymentBriefPublic]
    open_alerts: int
    critical_alerts: int
    pending_signoffs: int
    next_step: str  # the next thing to do, in words, from the evidence
    next_page: str
    next_params: dict[str, str] = {}
    suggested_status: str | None = None  # the lifecycle stage the evidence shows, when ahead of the recorded one
