"""A data engineer's view across a dataset's versions (issue 15): quality trends, the validation report as a
file to pass on (CSV or HTML, the same sentences as the dataset page), and a diff between schema versions.

Read-only over stored data: reports and profiles were computed once, at registration.
"""

from __future__ import annotations

import csv
import html
import io
import threading
from collections import OrderedDict
from typing import Any

from pydantic import BaseModel
from sqlmodel import col, select

from .. import artifacts
from ..db import Database
from ..errors import NotFound
from ..models.datasets import DatasetVersion, ProfilePublic, ValidationReportPublic
from . import datasets

TREND_MAX_VERSIONS = 100
SEVERITY_WORDS = {"error": "Error", "warning": "Warning", "info": "Note"}


class QualityPointPublic(BaseModel):
    """One version's quality figures, for the trend chart."""

    version: int
    ref: str
    status: str
    n_rows: int
    n_cols: int
    missing_share: float | None  # empty cells / all cells; None when no profile is stored
    errors: int  # error findings
    warnings: int
    failed_rules: int  # distinct validation rules with at least one error finding


class SchemaChangePublic(BaseModel):
    column: str
    change: str  # added | removed | retyped | rules changed
    detail: str  # in words: "number → category", "allowed empty share: 0 → 0.1"


# A version's profile never changes (same id and content hash): the missing share is kept per process.
_MISSING: OrderedDict[tuple, float | None] = OrderedDict()
_MISSING_LOCK = threading.Lock()
_MISSING_SIZE = 2048


def _missing_share(db: Database, v: DatasetVersion) -> float | None:
    key = (db.url, artifacts.store_id(), v.id, v.content_hash)
    with _MISSING_LOCK:
        if key in _MISSING:
            return _MISSING[key]
    share = None
    if v.profile_key and artifacts.exists(v.profile_key):
        p = ProfilePublic.model_validate_json(artifacts.get_bytes(v.profile_key))
        cells = p.n_rows * len(p.columns)
        share = (sum(c.nulls for c in p.columns) / cells) if cells else 0.0
    with _MISSING_LOCK:
        _MISSING[key] = share
        while len(_MISSING) > _MISSING_SIZE:
            _MISSING.popitem(last=False)
    return share


def quality_trend(db: Database, dataset_id: int) -> list[QualityPointPublic]:
    """Rows, missing share and failed rules per version, oldest first (the latest TREND_MAX_VERSIONS)."""
    name = datasets.get_dataset(db, dataset_id).name
    with db.read() as s:
        rows = s.exec(
            select(DatasetVersion)
            .where(DatasetVersion.dataset_id == int(dataset_id))
            .order_by(col(DatasetVersion.version).desc())
            .limit(TREND_MAX_VERSIONS)
        ).all()
        for r in rows:
            s.expunge(r)
    out = []
    for v in reversed(rows):
        report = ValidationReportPublic.model_validate(v.report or {})
        errors = [f for f in report.findings if f.severity == "error"]
        out.append(
            QualityPointPublic(
                version=v.version,
                ref=f"{name}@v{v.version}",
                status=v.status,
                n_rows=v.n_rows,
                n_cols=v.n_cols,
                missing_share=_missing_share(db, v),
                errors=len(errors),
                warnings=sum(1 for f in report.findings if f.severity == "warning"),
                failed_rules=len({f.kind for f in errors}),
            )
        )
    return out


# --- the validation report as a file ----------------------------------------------------------------------


def _finding_sentence(f) -> str:
    """The sentence the dataset page shows for a finding, without its Markdown."""
    return f"{f.kind.replace('_', ' ')}" + (f" · {f.column}" if f.column else "") + f" — {f.message}"


def _status_sentence(v) -> str:
    head = f"{v.ref}: {v.n_rows:,} rows × {v.n_cols} columns, registered by {v.created_by} " + (
        f"{v.created_at:%Y-%m-%d %H:%M} UTC from {v.source_kind} {v.source!r}"
    )
    if v.status == "validated":
        return f"Validated — {head}. It can be used for training."
    if v.status == "waived":
        return f"Waived by {v.waived_by}: “{v.waived_reason}” — {head}. It can be used for training."
    return f"Failed validation — {head}. It cannot be used for training unless a data engineer waives it."


def _csv_cell(value: Any) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def report_csv(db: Database, version_id: int) -> str:
    """The version's findings, one row each: severity, rule, column, and the sentence shown on the page."""
    v = datasets.get_version(db, version_id)
    report = datasets.get_report(db, version_id)
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["version", "severity", "rule", "column", "finding"])
    for f in report.findings:
        w.writerow(
            _csv_cell(x)
            for x in [
                v.ref,
                SEVERITY_WORDS.get(f.severity, f.severity),
                f.kind.replace("_", " "),
                f.column or "",
                _finding_sentence(f),
            ]
        )
    if not report.findings:
        w.writerow([_csv_cell(v.ref), "Note", "", "", "No findings: every check passed."])
    return buf.getvalue()


def report_html(db: Database, version_id: int) -> str:
    """A self-contained HTML page of the validation report: status, counts and the findings in sentences."""
    v = datasets.get_version(db, version_id)
    report = datasets.get_report(db, version_id)
    e = html.escape
    counts = report.counts
    colours = {"error": "#b3261e", "warning": "#8a5a00", "info": "#1f5fa8"}
    items = (
        "\n".join(
            f'<li style="color:{colours.get(f.severity, "#333")}"><strong>{e(SEVERITY_WORDS.get(f.severity, f.severity))}'
            f"</strong>: {e(_finding_sentence(f))}</li>"
            for f in report.findings
        )
        or "<li>No findings: every check passed.</li>"
    )
    checked = f"Checked against schema v{report.schema_version if report.schema_version is not None else '?'}" + (
        f"; drift compared with {report.compared_with}" if report.compared_with else ""
    )
    return (
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>Validation report {e(v.ref)}</title></head>\n"
        '<body style="font-family: sans-serif; max-width: 60em; margin: 2em auto">\n'
        f"<h1>Validation report: {e(v.ref)}</h1>\n<p>{e(_status_sentence(v))}</p>\n"
        f"<p>Errors: {counts.get('error', 0)} · Warnings: {counts.get('warning', 0)} · "
        f"Notes: {counts.get('info', 0)}</p>\n<p>{e(checked)}.</p>\n<ul>\n{items}\n</ul>\n</body></html>\n"
    )


# --- schema versions --------------------------------------------------------------------------------------

_RULE_WORDS = {
    "nullable": "may be empty",
    "max_null_share": "allowed empty share",
    "min": "minimum",
    "max": "maximum",
    "categories": "categories",
}


def _rule_text(value: Any) -> str:
    if value is None or value == "" or value == []:
        return "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (list, tuple)):
        return ", ".join(str(x) for x in value)
    return f"{value:g}" if isinstance(value, float) else str(value)


def diff_schema_columns(old: list[dict[str, Any]], new: list[dict[str, Any]]) -> list[SchemaChangePublic]:
    """Columns added, removed or retyped from `old` to `new`, and columns whose rules changed."""
    a = {c["name"]: c for c in old}
    b = {c["name"]: c for c in new}
    out = []
    for name in list(dict.fromkeys([*a, *b])):
        if name not in a:
            out.append(SchemaChangePublic(column=name, change="added", detail=str(b[name].get("type", ""))))
        elif name not in b:
            out.append(SchemaChangePublic(column=name, change="removed", detail=str(a[name].get("type", ""))))
        elif a[name].get("type") != b[name].get("type"):
            out.append(
                SchemaChangePublic(column=name, change="retyped", detail=f"{a[name]['type']} → {b[name]['type']}")
            )
        else:
            changed = [
                f"{words}: {_rule_text(a[name].get(k))} → {_rule_text(b[name].get(k))}"
                for k, words in _RULE_WORDS.items()
                if _rule_text(a[name].get(k)) != _rule_text(b[name].get(k))
            ]
            if changed:
                out.append(SchemaChangePublic(column=name, change="rules changed", detail="; ".join(changed)))
    return out


def schema_diff(db: Database, dataset_id: int, from_version: int, to_version: int) -> list[SchemaChangePublic]:
    """What changed between two versions of a dataset's declared schema (numbers as in schema_history)."""
    by_version = {h.version: h for h in datasets.schema_history(db, dataset_id)}
    missing = [x for x in (from_version, to_version) if x not in by_version]
    if missing:
        raise NotFound(f"schema v{missing[0]} of this dataset does not exist")
    return diff_schema_columns(by_version[from_version].columns, by_version[to_version].columns)
