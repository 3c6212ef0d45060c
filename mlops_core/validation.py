"""Schema inference and validation of a dataset version (Breck et al., SysML 2019).

A schema column: {"name", "type", "nullable", "max_null_share", "categories"?, "min"?, "max"?}.
The first version's schema is inferred here; data engineers edit it afterwards. Each new version
is checked against the current schema and against the previous version (drift, through the
monitoring stage's `detect_drift`). Every finding is a FindingPublic (severity error | warning | info,
column, kind, message), made by one of the rule objects in RULES.

`error` findings fail the version (it may not be used for training unless waived with a reason).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from .errors import ValidationError
from .models.datasets import COLUMN_TYPES, DataDriftPublic, FindingPublic, ValidationReportPublic
from .monitoring.drift import detect_drift
from .profiling import ColumnScan, Scan

ERROR, WARNING, INFO = "error", "warning", "info"
MAX_CATEGORIES = 50  # a text column with at most this many distinct values is inferred as a category
RANGE_MARGIN = 0.10  # least widening of an inferred range, as a share of its largest value

# type in the data -> schema types it satisfies without a finding
_COMPATIBLE = {
    "integer": {"integer", "number"},
    "number": {"number"},
    "string": {"string", "category"},
    "category": {"string", "category"},
    "boolean": {"boolean"},
    "datetime": {"datetime"},
}


def finding(severity: str, column: str | None, kind: str, message: str) -> FindingPublic:
    return FindingPublic(severity=severity, column=column, kind=kind, message=message)


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
                raise ValidationError(
                    f"column {name!r} is a category but lists no categories; list them, comma-separated"
                )
            out["categories"] = list(dict.fromkeys(cats))
        cleaned.append(out)
    return cleaned


def _fmt(x: Any) -> str:
    if isinstance(x, float):
        return f"{x:,.6g}"
    return str(x)


# --- the rules ---------------------------------------------------------------------------------
# A rule owns everything about one kind of finding: its name (the finding's `kind`), the scan figures
# it reads, the figures it gathers itself during the scan (`collect`, optional), and its sentences.
# To add a rule, write one class below and add an instance to RULES.

# Where a rule's findings sit in the report, within one severity: schema-level column findings, then
# per-column value findings (interleaved column by column, in file order), then row-level, then drift.
COLUMNS, VALUES, ROWS, DRIFT = range(4)


@dataclass(frozen=True)
class Previous:
    """The version a new one is compared with: its stored sample and how sentences name it."""

    sample: pd.DataFrame
    label: str


class Rule:
    name: str = ""  # the `kind` of the findings it makes
    needs: tuple[str, ...] = ()  # the scan figures it reads (ColumnScan / Scan attributes, or its own)
    section: int = VALUES

    def collects(self, column_type: str, column_schema: dict[str, Any]) -> bool:
        """Whether it gathers figures of its own for this column during the scan (see `collect`)."""
        return False

    def collect(self, stats: ColumnScan, arr, values, column_schema: dict[str, Any]) -> None:
        """Called for each batch of a column it `collects`: `arr` is the Arrow array, `values` the
        non-null values as float64 for numeric columns (else None). Stores into stats.checks[self.name]."""

    def findings(
        self, schema: dict[str, dict[str, Any]], stats: Scan, previous: Previous | None
    ) -> list[FindingPublic]:
        raise NotImplementedError


class _ColumnRule(Rule):
    """A rule about the values of each column the schema knows, in file order."""

    def findings(self, schema, stats, previous):
        out: list[FindingPublic] = []
        for name, s in stats.columns.items():
            rule = schema.get(name)
            if rule is not None:
                out.extend(self.column_findings(name, s, rule, stats.n_rows))
        return out

    def column_findings(self, name: str, s: ColumnScan, rule: dict[str, Any], n_rows: int) -> list[FindingPublic]:
        raise NotImplementedError


class MissingColumn(Rule):
    name, needs, section = "missing_column", ("columns",), COLUMNS

    def findings(self, schema, stats, previous):
        return [
            finding(
                ERROR,
                name,
                self.name,
                f"Column `{name}` is missing; the schema expects it ({rule['type']}). Add it back to the source, "
                "or remove it from the schema if it is no longer needed.",
            )
            for name, rule in schema.items()
            if name not in stats.columns
        ]


class ExtraColumn(Rule):
    name, needs, section = "extra_column", ("columns",), COLUMNS

    def findings(self, schema, stats, previous):
        return [
            finding(
                WARNING,
                name,
                self.name,
                f"Column `{name}` is not in the schema. Add it to the schema if it is intended, or drop it from the source.",
            )
            for name in stats.columns
            if name not in schema
        ]


class TypeChange(_ColumnRule):
    name, needs = "type_change", ("type",)

    def column_findings(self, name, s, rule, n_rows):
        if rule["type"] in _COMPATIBLE.get(s.type, {s.type}):
            return []
        severity = WARNING if (s.type == "number" and rule["type"] == "integer") else ERROR
        hint = (
            "some values have decimals; round them in the source or change the schema type to number"
            if severity == WARNING
            else "fix the source values (stray text such as 'n/a' turns numbers into text) or change the type in the schema"
        )
        return [
            finding(
                severity,
                name,
                self.name,
                f"Column `{name}` now holds {s.type} values but the schema says {rule['type']}; {hint}.",
            )
        ]


class NullsAboveAllowed(_ColumnRule):
    name, needs = "nulls_above_allowed", ("count", "nulls")

    def column_findings(self, name, s, rule, n_rows):
        total = s.count + s.nulls
        share = s.nulls / total if total else 0.0
        allowed = float(rule.get("max_null_share") or 0.0) if rule.get("nullable") else 0.0
        if not (s.nulls and share > allowed + 1e-12):
            return []
        return [
            finding(
                ERROR,
                name,
                self.name,
                f"Column `{name}` is empty in {s.nulls:,} of {total:,} rows ({share:.1%}); the schema allows "
                f"{allowed:.1%}. Fill the gaps in the source, or raise the allowed share in the schema.",
            )
        ]


class OutOfRange(_ColumnRule):
    """Numeric values outside the schema's min/max: counted during the scan, with a few examples."""

    name, needs = "out_of_range", ("checks.out_of_range",)
    EXAMPLES = 3

    def collects(self, column_type, column_schema):
        return column_type in ("integer", "number") and (
            column_schema.get("min") is not None or column_schema.get("max") is not None
        )

    def collect(self, stats, arr, values, column_schema):
        got = stats.checks.setdefault(self.name, {"below": 0, "above": 0, "examples": []})
        bad_mask = np.zeros(len(values), dtype=bool)
        if column_schema.get("min") is not None:
            below = values < float(column_schema["min"])
            got["below"] += int(below.sum())
            bad_mask |= below
        if column_schema.get("max") is not None:
            above = values > float(column_schema["max"])
            got["above"] += int(above.sum())
            bad_mask |= above
        examples = got["examples"]
        if bad_mask.any() and len(examples) < self.EXAMPLES:
            for v in values[bad_mask][: self.EXAMPLES - len(examples)]:
                examples.append(int(v) if stats.type == "integer" else round(float(v), 4))

    def column_findings(self, name, s, rule, n_rows):
        got = s.checks.get(self.name)
        if not got or not (got["below"] or got["above"]):
            return []
        parts = []
        if got["below"]:
            parts.append(f"{got['below']:,} below the minimum {_fmt(rule.get('min'))}")
        if got["above"]:
            parts.append(f"{got['above']:,} above the maximum {_fmt(rule.get('max'))}")
        examples = ", ".join(_fmt(v) for v in got["examples"])
        return [
            finding(
                ERROR,
                name,
                self.name,
                f"Column `{name}` has values out of range: {' and '.join(parts)} (e.g. {examples}). "
                "Correct those rows in the source, or widen the range in the schema if they are valid.",
            )
        ]


class UnseenCategories(_ColumnRule):
    """Text values a category column's schema does not list: counted during the scan (up to 50 values)."""

    name, needs = "unseen_categories", ("checks.unseen_categories",)
    TRACKED = 50

    def collects(self, column_type, column_schema):
        return (
            column_type in ("string", "category")
            and column_schema.get("type") == "category"
            and column_schema.get("categories") is not None
        )

    def collect(self, stats, arr, values, column_schema):
        unseen = stats.checks.setdefault(self.name, {})
        allowed = pa.array([str(x) for x in column_schema["categories"]], type=pa.string())
        outside = pc.filter(arr, pc.invert(pc.is_in(arr, value_set=allowed, skip_nulls=True))).drop_null()
        if len(outside):
            vc = pc.value_counts(outside)
            for v, n in zip(vc.field("values").to_pylist(), vc.field("counts").to_pylist()):
                if v in unseen or len(unseen) < self.TRACKED:
                    unseen[v] = unseen.get(v, 0) + n

    def column_findings(self, name, s, rule, n_rows):
        unseen = s.checks.get(self.name)
        if not unseen:
            return []
        top = sorted(unseen.items(), key=lambda kv: -kv[1])
        rows = sum(unseen.values())
        shown = ", ".join(f"'{k}' ({v:,})" for k, v in top[:5])
        return [
            finding(
                WARNING,
                name,
                self.name,
                f"Column `{name}` has {len(top)} value{'s' if len(top) > 1 else ''} the schema does not list, "
                f"in {rows:,} rows: {shown}. Add them to the schema's categories if they are real, "
                "or fix their spelling in the source.",
            )
        ]


class ConstantColumn(_ColumnRule):
    name, needs = "constant_column", ("count", "min", "max", "counts")

    def column_findings(self, name, s, rule, n_rows):
        if s.count == 0:
            return [
                finding(
                    WARNING,
                    name,
                    self.name,
                    f"Column `{name}` has no values at all; fill it in the source or drop it from the data and the schema.",
                )
            ]
        distinct = None
        if s.type in ("integer", "number"):
            distinct = 1 if s.min == s.max else 2
        elif s.counts is not None:
            distinct = len(s.counts)
        if distinct == 1 and n_rows > 1:
            value = _fmt(s.min) if s.type in ("integer", "number") else next(iter(s.counts))
            return [
                finding(
                    WARNING,
                    name,
                    self.name,
                    f"Column `{name}` has the same value ({value}) in every row, so it cannot help a model; "
                    "check the extract, or drop the column.",
                )
            ]
        return []


class DuplicateRows(Rule):
    name, needs, section = "duplicate_rows", ("duplicate_rows", "n_rows"), ROWS

    def findings(self, schema, stats, previous):
        if not stats.duplicate_rows:
            return []
        n = stats.n_rows
        return [
            finding(
                WARNING,
                None,
                self.name,
                f"{stats.duplicate_rows:,} of {n:,} rows ({stats.duplicate_rows / n:.1%}) are exact duplicates of "
                "another row; remove them in the source unless repeated rows are expected.",
            )
        ]


class Drift(Rule):
    """Distributions against the previous version's stored sample (the monitoring stage's detect_drift)."""

    name, needs, section = "drift", ("sample", "type"), DRIFT

    def usable_columns(self, stats: Scan, reference: pd.DataFrame) -> list[str]:
        current = stats.sample
        usable = []
        for c in current.columns:
            if c not in reference.columns:
                continue
            cur_kind = stats.columns[c].type if c in stats.columns else None
            if (reference[c].dtype.kind in "iuf") != (current[c].dtype.kind in "iuf") or cur_kind == "datetime":
                continue
            if reference[c].notna().sum() == 0 or current[c].notna().sum() == 0:
                continue
            usable.append(c)
        return usable

    def measure(self, stats: Scan, previous: Previous | None) -> tuple[DataDriftPublic | None, list[FindingPublic]]:
        """The drift figures (for the report) and the findings they lead to."""
        if previous is None or not len(previous.sample) or not len(stats.sample):
            return None, []
        usable = self.usable_columns(stats, previous.sample)
        if not usable:
            return None, []
        label = previous.label
        try:
            result = detect_drift(previous.sample[usable], stats.sample[usable], columns=usable)
        except ValueError as exc:
            return None, [finding(INFO, None, self.name, f"Drift against {label} was not computed: {exc}")]
        out = [
            finding(
                WARNING,
                name,
                self.name,
                f"Column `{name}` is distributed differently from {label} ({col.method} = "
                f"{col.score:.3g}, threshold {col.threshold:g}). Check whether the source changed; "
                "models trained on the old data may need retraining.",
            )
            for name, col in result.columns.items()
            if col.drifted
        ]
        out.append(
            finding(
                WARNING if result.dataset_drifted else INFO,
                None,
                self.name,
                f"{result.number_of_drifted_columns} of {result.number_of_columns} columns drifted against {label} "
                f"(share {result.drift_share:.0%}; the dataset counts as drifted at {result.drift_share_threshold:.0%}).",
            )
        )
        return DataDriftPublic.model_validate(result.to_dict()), out

    def findings(self, schema, stats, previous):
        return self.measure(stats, previous)[1]


RULES: list[Rule] = [
    MissingColumn(),
    ExtraColumn(),
    TypeChange(),
    NullsAboveAllowed(),
    OutOfRange(),
    UnseenCategories(),
    ConstantColumn(),
    DuplicateRows(),
    Drift(),
]
KINDS = tuple(r.name for r in RULES)
_ORDER = {ERROR: 0, WARNING: 1, INFO: 2}


def validate(
    scan: Scan,
    schema: list[dict[str, Any]],
    *,
    previous_sample=None,
    previous_label: str = "the previous version",
    rules: list[Rule] | None = None,
) -> ValidationReportPublic:
    """The validation report of one version: findings (errors first), drift (or None) and counts per severity.
    `scan` must have been made with the same rules (scan_parquet(..., rules=RULES)) for their own figures."""
    by_name = {c["name"]: c for c in schema}
    previous = Previous(previous_sample, previous_label) if previous_sample is not None else None
    position = {name: i for i, name in enumerate(scan.columns)}
    drift = None
    keyed = []
    for rule in RULES if rules is None else rules:
        if isinstance(rule, Drift):  # the drift figures go into the report too: measure once
            drift, found = rule.measure(scan, previous)
        else:
            found = rule.findings(by_name, scan, previous)
        for f in found:
            at = position.get(f.column, 0) if rule.section == VALUES else 0
            keyed.append(((_ORDER[f.severity], rule.section, at), f))
    keyed.sort(key=lambda kf: kf[0])  # stable: within a column, rules keep their RULES order
    findings = [f for _, f in keyed]
    counts = {sev: sum(1 for f in findings if f.severity == sev) for sev in (ERROR, WARNING, INFO)}
    return ValidationReportPublic(findings=findings, drift=drift, counts=counts)
