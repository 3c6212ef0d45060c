"""Checking scoring records against a model's training schema, and turning them into model input.

Everything per column is decided once, when a model version is loaded (`RecordValidator`); a request
then costs one pass over its values. Messages name the bad columns and say what was expected
(DESIGN.md: 400 "with a message naming the bad or missing columns").

Model input mirrors `mlops_core.ml.training.prepare_features`: booleans, categories and text are given
to the pipeline as text, numbers as floats, JSON null as a missing value (the pipeline imputes it).
"""

from __future__ import annotations

import math
from typing import Any

from ..config import get_settings

MAX_PROBLEMS = 10
# The largest integer that still converts to a float (beyond it float(value) raises OverflowError).
MAX_FLOAT_INT = int(1.7976931348623157e308)


class InputError(ValueError):
    """A record does not fit the schema; the message says what to fix."""


def _describe(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def is_valid_text(value: str) -> bool:
    """False when `value` cannot be written as UTF-8: a lone surrogate ("\\ud800" in JSON). Such a value made
    every later read of the prediction log fail (strict JSON decoders refuse it), so it never gets in."""
    if value.isascii():
        return True
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def text_problem(name: str, value: str, max_length: int) -> str | None:
    """Why a text value is refused (too long, or not valid UTF-8), or None."""
    if len(value) > max_length:
        return (
            f"column `{name}` is {len(value):,} characters long; the limit is {max_length:,} "
            "(MLOPS_MAX_STRING_LENGTH): send the value, not a document"
        )
    if not is_valid_text(value):
        return (
            f"column `{name}` is not valid UTF-8 text (it contains a lone surrogate such as \\ud800): "
            "send the text as UTF-8, or a surrogate pair for characters outside the BMP"
        )
    return None


class RecordValidator:
    """Validates records (dicts) against an `input_schema` and builds the pipeline's input frame."""

    def __init__(self, input_schema: list[dict[str, Any]], *, max_string_length: int | None = None):
        """`max_string_length`: longest text accepted in a field by `problems` (default: the setting)."""
        if max_string_length is None:
            max_string_length = get_settings().max_string_length
        self.max_string_length = int(max_string_length)
        self.schema = list(input_schema)
        self.names: list[str] = [c["name"] for c in self.schema]
        self.name_set = frozenset(self.names)
        self.types: dict[str, str] = {c["name"]: c.get("type", "string") for c in self.schema}
        self._text_columns = [n for n in self.names if self.types[n] in ("category", "boolean", "string")]
        self._numeric_categories: dict[str, frozenset[str]] = {}
        for c in self.schema:
            if c.get("type") == "category":
                self._numeric_categories[c["name"]] = frozenset(str(v) for v in c.get("categories") or [])
        self.trained_on = ", ".join(self.names)

    # -- checks -------------------------------------------------------------------------------

    def _value_problem(self, name: str, value: Any) -> str | None:
        if value is None:
            return None
        kind = self.types[name]
        if kind in ("number", "integer"):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                return f"column `{name}` must be a{'n integer' if kind == 'integer' else ' number'}, got {_describe(value)}"
            if isinstance(value, int) and abs(value) > MAX_FLOAT_INT:
                return f"column `{name}` is a {len(str(abs(value)))}-digit number; numbers must be within ±1.8e308"
            if isinstance(value, float):
                if not math.isfinite(value):
                    return f"column `{name}` is {value!r}; NaN and infinity are not allowed (send null for a missing value)"
                if kind == "integer" and not value.is_integer():
                    return f"column `{name}` must be an integer, got {_describe(value)}"
            return None
        if kind == "boolean":
            if not isinstance(value, bool):
                return f"column `{name}` must be true or false, got {_describe(value)}"
            return None
        if isinstance(value, str):
            problem = text_problem(name, value, self.max_string_length)
            if problem:
                return problem
        if kind == "category":
            if isinstance(value, str):
                return None
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                if isinstance(value, float) and not math.isfinite(value):
                    return f"column `{name}` is {value!r}; NaN and infinity are not allowed"
                if str(value) in self._numeric_categories.get(name, ()):
                    return None
            return f"column `{name}` must be a category given as text, got {_describe(value)}"
        if not isinstance(value, str):
            return f"column `{name}` must be text, got {_describe(value)}"
        return None

    def problems(self, records: Any) -> list[str]:
        """Every problem (up to MAX_PROBLEMS) with `records`; empty when they are fine."""
        if not isinstance(records, list):
            return ["`records` must be a list of objects, one per record: {\"records\": [{...}, ...]}"]
        if not records:
            return [f"`records` is empty; send at least one record with the columns: {self.trained_on}"]
        out: list[str] = []
        names, types, max_len = self.name_set, self.types, self.max_string_length
        for i, rec in enumerate(records):
            if not isinstance(rec, dict):
                out.append(f"record {i} is not an object of column -> value (got {type(rec).__name__})")
            else:
                keys = rec.keys()
                if keys != names:
                    missing = [n for n in self.names if n not in rec]
                    extra = sorted(
                        _describe(k)[1:-1] if isinstance(k, str) and not is_valid_text(k) else str(k)[:60]
                        for k in keys
                        if k not in names
                    )
                    if missing:
                        out.append(f"record {i}: missing columns: {', '.join(missing)}")
                    if extra:
                        out.append(f"record {i}: unexpected columns: {', '.join(extra)}")
                for name, value in rec.items():
                    if name in types and value is not None:
                        # Fast accept of the common, well-typed case before the detailed check.
                        kind = types[name]
                        if (
                            kind == "number"
                            and type(value) in (int, float)
                            and (
                                math.isfinite(value)
                                if type(value) is float
                                else -MAX_FLOAT_INT <= value <= MAX_FLOAT_INT
                            )
                        ):
                            continue
                        # Unseen categories are accepted (they are what drift monitoring measures); only
                        # overlong text and text that is not UTF-8 is refused.
                        if (
                            kind in ("string", "category")
                            and type(value) is str
                            and len(value) <= max_len
                            and (value.isascii() or is_valid_text(value))
                        ):
                            continue
                        problem = self._value_problem(name, value)
                        if problem:
                            out.append(f"record {i}: {problem}")
            if len(out) >= MAX_PROBLEMS:
                out.append("... (more problems not shown)")
                break
        if out and any("columns:" in p for p in out):
            out.append(f"the model was trained on: {self.trained_on}")
        return out

    def check(self, records: Any) -> None:
        problems = self.problems(records)
        if problems:
            raise InputError("; ".join(problems))

    # -- model input ----------------------------------------------------------------------------

    def to_frame(self, records: list[dict[str, Any]]):
        """Validated records -> the DataFrame the pipeline was trained on (columns in training order)."""
        import numpy as np
        import pandas as pd

        data: dict[str, Any] = {}
        for name in self.names:
            kind = self.types[name]
            if kind in ("number", "integer"):
                data[name] = np.array([np.nan if (v := r[name]) is None else v for r in records], dtype=float)
            else:
                data[name] = np.array([np.nan if (v := r[name]) is None else str(v) for r in records], dtype=object)
        return pd.DataFrame(data, columns=self.names, copy=False)

    def frame_to_model_input(self, frame):
        """A user's DataFrame (batch scoring) -> model input; raises InputError naming bad columns."""
        import numpy as np
        import pandas as pd

        missing = [n for n in self.names if n not in frame.columns]
        if missing:
            raise InputError(f"missing columns: {', '.join(missing)}; the model was trained on: {self.trained_on}")
        out: dict[str, Any] = {}
        for name in self.names:
            col = frame[name]
            kind = self.types[name]
            if kind in ("number", "integer"):
                values = pd.to_numeric(col, errors="coerce")
                bad = col.notna() & values.isna()
                if bad.any():
                    first = col[bad].iloc[0]
                    raise InputError(
                        f"column `{name}` must be numeric; {int(bad.sum())} values are not "
                        f"(first: {_describe(first)} in row {int(np.flatnonzero(bad.to_numpy())[0])})"
                    )
                arr = values.to_numpy(dtype=float)
                if np.isinf(arr).any():
                    raise InputError(f"column `{name}` contains infinite values; remove or blank them")
                out[name] = arr
            else:
                out[name] = (
                    col.astype(object)
                    .where(col.notna(), np.nan)
                    .map(lambda v: v if v is np.nan or v is None else str(v))
                    .to_numpy(dtype=object)
                )
        return pd.DataFrame(out, columns=self.names)


def to_jsonable(values) -> list[Any]:
    """Model outputs (numpy) -> plain JSON values."""
    out = []
    for v in values:
        item = getattr(v, "item", None)
        v = item() if item is not None else v
        if isinstance(v, float) and not math.isfinite(v):
            v = None
        out.append(v)
    return out


def frame_to_records(frame, names: list[str], limit: int = 50) -> list[dict[str, Any]]:
    """The first `limit` rows of a DataFrame as JSON-like records (NaN -> None, numpy -> Python)."""
    out = []
    for row in frame[names].head(limit).itertuples(index=False, name=None):
        rec = {}
        for name, v in zip(names, row):
            item = getattr(v, "item", None)
            v = item() if item is not None and not isinstance(v, str) else v
            if isinstance(v, float) and not math.isfinite(v):
                v = None
            rec[name] = v
        out.append(rec)
    return out


def probe_records(records: list[dict[str, Any]], types: dict[str, str]) -> list[dict[str, Any]]:
    """Edge cases for verifying a fast path: every value missing, unseen categories."""
    if not records:
        return []
    base = records[0]
    missing = {k: None for k in base}
    unseen = {k: ("never-seen-value" if types.get(k) in ("category", "string") else v) for k, v in base.items()}
    return [missing, unseen]
