"""Schema inference and validation of a dataset version (Breck et al., SysML 2019).

A schema column: {"name", "type", "nullable", "max_null_share", "categories"?, "min"?, "max"?}.
The first version's schema is inferred here; data engineers edit it afterwards. Each new version
is checked against the current schema and against the previous version (drift, through the
monitoring stage's `detect_drift`). Every finding is a dict:

    {"severity": "error" | "warning" | "info", "column": str | None, "kind": str, "message": str}

`error` findings fail the version (it may not be used for training unless waived with a reason).
"""
from __future__ import annotations

import math
from typing import Any

from .errors import ValidationError
from .models.datasets import COLUMN_TYPES
from .profiling import Scan

ERROR, WARNING, INFO = "error", "warning", "info"
KINDS = ("missing_column", "extra_column", "type_change", "nulls_above_allowed", "out_of_range",
         "unseen_categories", "duplicate_rows", "constant_column", "drift")
MAX_CATEGORIES = 50       # a text column with at most this many distinct values is inferred as a category
RANGE_MARGIN = 0.10       # least widening of an inferred range, as a share of its largest value

# type in the data -> schema types it satisfies without a finding
_COMPATIBLE = {
    "integer": {"integer", "number"},
    "number": {"number"},
    "string": {"string", "category"},
    "category": {"string", "category"},
    "boolean": {"boolean"},
    "datetime": {"datetime"},
}


def finding(severity: str, column: str | None, kind: str, message: str) -> dict[str, Any]:
    return {"severity": severity, "column": column, "kind": kind, "message": message}


def _nice(x: float) -> float:
    return float(f"{x:.6g}")


def infer_schema(scan: Scan) -> list[dict[str, Any]]:
    """A starting schema from a first version: types, null allowance, categories and numeric ranges."""
    out = []
    for s in scan.columns.values():
        total = s.count + s.nulls
        share = s.nulls / total if total else 0.0
        col: dict[str, Any] = {
            "name": s.name,
            "type": s.type,
            "nullable": s.nulls > 0,
            "max_null_share": 0.0 if s.nulls == 0 else min(1.0, round(share * 2 + 0.01, 3)),
        }
        if s.type in ("string", "category") and s.counts is not None:
            distinct = len(s.counts)
            if 0 < distinct <= MAX_CATEGORIES and distinct <= max(2, s.count // 2):
                col["type"] = "category"
                col["categories"] = sorted(str(k) for k in s.counts)
        if s.type in ("integer", "number") and s.min is not None:
            # Generous on purpose: catch sign errors and unit mix-ups (cents for euros), not the tails of
            # a fresh extract. Non-negative data must stay non-negative; the span may double upwards.
            span = max(float(s.max) - float(s.min), abs(float(s.max)) * RANGE_MARGIN, 1.0)
            lo = 0.0 if float(s.min) >= 0 else float(s.min) - span
            hi = float(s.max) + span
            if s.type == "integer":
                col["min"], col["max"] = int(math.floor(lo)), int(math.ceil(hi))
            else:
                col["min"], col["max"] = _nice(lo), _nice(hi)
        out.append(col)
    return out


def check_schema_columns(columns: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Validate an edited schema; returns it cleaned. Raises ValidationError saying what to fix."""
    if not columns:
        raise ValidationError("the schema has no columns; keep at least one")
    seen = set()
    cleaned = []
    for c in columns:
        name = str(c.get("name") or "").strip()
        if not name:
            raise ValidationError("a schema column has no name; give every column its name")
        if name in seen:
            raise ValidationError(f"column {name!r} appears twice in the schema; keep one")
        seen.add(name)
        typ = c.get("type")
        if typ not in COLUMN_TYPES:
            raise ValidationError(f"column {name!r} has type {typ!r}; choose one of: {', '.join(COLUMN_TYPES)}")
        out: dict[str, Any] = {"name": name, "type": typ, "nullable": bool(c.get("nullable", False))}
        share = c.get("max_null_share", 0.0)
        try:
            share = 0.0 if share is None or (isinstance(share, float) and math.isnan(share)) else float(share)
        except (TypeError, ValueError):
            raise ValidationError(f"column {name!r}: the allowed null share must be a number between 0 and 1") from None
        if not 0.0 <= share <= 1.0:
            raise ValidationError(f"column {name!r}: the allowed null share must be between 0 and 1, got {share}")
        out["max_null_share"] = share if out["nullable"] else 0.0
        if typ in ("integer", "number"):
            for key in ("min", "max"):
                v = c.get(key)
                if v is None or (isinstance(v, float) and math.isnan(v)) or v == "":
                    continue
                try:
                    out[key] = float(v) if typ == "number" else int(float(v))
                except (TypeError, ValueError):
                    raise ValidationError(f"column {name!r}: {key} must be a number, got {v!r}") from None
            if "min" in out and "max" in out and out["min"] > out["max"]:
                raise ValidationError(f"column {name!r}: min ({out['min']}) is above max ({out['max']}); swap them")
        if typ == "category":
            cats = c.get("categories")
            if isinstance(cats, str):
                cats = [x.strip() for x in cats.split(",")]
            cats = [str(x) for x in (cats or []) if str(x).strip() != ""]
            if not cats:
                raise ValidationError(f"column {name!r} is a category but lists no categories; list them, comma-separated")
            out["categories"] = list(dict.fromkeys(cats))
        cleaned.append(out)
    return cleaned


def _fmt(x: Any) -> str:
    if isinstance(x, float):
        return f"{x:,.6g}"
    return str(x)


def validate(scan: Scan, schema: list[dict[str, Any]], *, previous_sample=None,
             previous_label: str = "the previous version") -> dict[str, Any]:
    """The validation report of one version: findings, drift (or None) and counts per severity."""
    findings: list[dict[str, Any]] = []
    rules = {c["name"]: c for c in schema}
    n = scan.n_rows

    for name, rule in rules.items():
        if name not in scan.columns:
            findings.append(finding(
                ERROR, name, "missing_column",
                f"Column `{name}` is missing; the schema expects it ({rule['type']}). Add it back to the source, "
                "or remove it from the schema if it is no longer needed.",
            ))
    for name in scan.columns:
        if name not in rules:
            findings.append(finding(
                WARNING, name, "extra_column",
                f"Column `{name}` is not in the schema. Add it to the schema if it is intended, or drop it from the source.",
            ))

    for name, s in scan.columns.items():
        rule = rules.get(name)
        if rule is None:
            continue
        if rule["type"] not in _COMPATIBLE.get(s.type, {s.type}):
            severity = WARNING if (s.type == "number" and rule["type"] == "integer") else ERROR
            hint = ("some values have decimals; round them in the source or change the schema type to number"
                    if severity == WARNING else
                    "fix the source values (stray text such as 'n/a' turns numbers into text) or change the type in the schema")
            findings.append(finding(
                severity, name, "type_change",
                f"Column `{name}` now holds {s.type} values but the schema says {rule['type']}; {hint}.",
            ))
        total = s.count + s.nulls
        share = s.nulls / total if total else 0.0
        allowed = float(rule.get("max_null_share") or 0.0) if rule.get("nullable") else 0.0
        if s.nulls and share > allowed + 1e-12:
            findings.append(finding(
                ERROR, name, "nulls_above_allowed",
                f"Column `{name}` is empty in {s.nulls:,} of {total:,} rows ({share:.1%}); the schema allows "
                f"{allowed:.1%}. Fill the gaps in the source, or raise the allowed share in the schema.",
            ))
        if s.below or s.above:
            parts = []
            if s.below:
                parts.append(f"{s.below:,} below the minimum {_fmt(rule.get('min'))}")
            if s.above:
                parts.append(f"{s.above:,} above the maximum {_fmt(rule.get('max'))}")
            examples = ", ".join(_fmt(v) for v in s.range_examples)
            findings.append(finding(
                ERROR, name, "out_of_range",
                f"Column `{name}` has values out of range: {' and '.join(parts)} (e.g. {examples}). "
                "Correct those rows in the source, or widen the range in the schema if they are valid.",
            ))
        if s.unseen:
            top = sorted(s.unseen.items(), key=lambda kv: -kv[1])
            rows = sum(s.unseen.values())
            shown = ", ".join(f"'{k}' ({v:,})" for k, v in top[:5])
            findings.append(finding(
                WARNING, name, "unseen_categories",
                f"Column `{name}` has {len(top)} value{'s' if len(top) > 1 else ''} the schema does not list, "
                f"in {rows:,} rows: {shown}. Add them to the schema's categories if they are real, "
                "or fix their spelling in the source.",
            ))
        distinct = None
        if s.type in ("integer", "number") and s.count:
            distinct = 1 if s.min == s.max else 2
        elif s.counts is not None and s.count:
            distinct = len(s.counts)
        if s.count == 0:
            findings.append(finding(
                WARNING, name, "constant_column",
                f"Column `{name}` has no values at all; fill it in the source or drop it from the data and the schema.",
            ))
        elif distinct == 1 and n > 1:
            value = _fmt(s.min) if s.type in ("integer", "number") else next(iter(s.counts))
            findings.append(finding(
                WARNING, name, "constant_column",
                f"Column `{name}` has the same value ({value}) in every row, so it cannot help a model; "
                "check the extract, or drop the column.",
            ))

    if scan.duplicate_rows:
        findings.append(finding(
            WARNING, None, "duplicate_rows",
            f"{scan.duplicate_rows:,} of {n:,} rows ({scan.duplicate_rows / n:.1%}) are exact duplicates of another row; "
            "remove them in the source unless repeated rows are expected.",
        ))

    drift = None
    if previous_sample is not None and len(previous_sample) and len(scan.sample):
        drift, drift_findings = _drift(previous_sample, scan.sample, rules, scan, previous_label)
        findings.extend(drift_findings)

    order = {ERROR: 0, WARNING: 1, INFO: 2}
    findings.sort(key=lambda f: order[f["severity"]])
    counts = {sev: sum(1 for f in findings if f["severity"] == sev) for sev in (ERROR, WARNING, INFO)}
    return {"findings": findings, "drift": drift, "counts": counts}


def _drift(reference, current, rules, scan: Scan, previous_label: str):
    from .monitoring import detect_drift

    shared = [c for c in current.columns if c in reference.columns]
    usable = []
    for c in shared:
        cur_kind = scan.columns[c].type if c in scan.columns else None
        ref_is_num = reference[c].dtype.kind in "iuf"
        cur_is_num = current[c].dtype.kind in "iuf"
        if ref_is_num != cur_is_num or cur_kind == "datetime":
            continue
        if reference[c].notna().sum() == 0 or current[c].notna().sum() == 0:
            continue
        usable.append(c)
    findings = []
    if not usable:
        return None, findings
    try:
        result = detect_drift(reference[usable], current[usable], columns=usable)
    except ValueError as exc:
        findings.append(finding(INFO, None, "drift", f"Drift against {previous_label} was not computed: {exc}"))
        return None, findings
    data = result.to_dict()
    for name, col in result.columns.items():
        if col.drifted:
            findings.append(finding(
                WARNING, name, "drift",
                f"Column `{name}` is distributed differently from {previous_label} ({col.method} = "
                f"{col.score:.3g}, threshold {col.threshold:g}). Check whether the source changed; "
                "models trained on the old data may need retraining.",
            ))
    findings.append(finding(
        WARNING if result.dataset_drifted else INFO, None, "drift",
        f"{result.number_of_drifted_columns} of {result.number_of_columns} columns drifted against {previous_label} "
        f"(share {result.drift_share:.0%}; the dataset counts as drifted at {result.drift_share_threshold:.0%}).",
    ))
    return data, findings
