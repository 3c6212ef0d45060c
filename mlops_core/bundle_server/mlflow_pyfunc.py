"""The bundle's MLflow-format model (`mlflow_model/` in the bundle): an MLflow `python_function` model whose
loader is this module, so `mlflow models serve -m DIR/mlflow_model` (and through MLflow, SageMaker, Azure ML,
Databricks) scores with the same validation and model input as the Hub's service.

MLflow puts the model's `code/` folder on sys.path and calls `_load_pyfunc(<the model.skops path>)`; predict
takes what MLflow's scoring server parsed (a DataFrame from `dataframe_records`/`dataframe_split`) and returns
the predictions. A record the Hub would refuse raises ValueError with the Hub's sentence."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

try:  # in a bundle: the copies next to this file
    from . import persistence, schema  # type: ignore[attr-defined]
except ImportError:  # in the Hub's repository
    from ..ml import persistence
    from ..serving import schema


def _plain(v: Any) -> Any:
    item = getattr(v, "item", None)
    if item is not None and not isinstance(v, (str, bytes)):
        v = item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def _records(model_input: Any) -> list[dict[str, Any]]:
    if hasattr(model_input, "to_dict"):
        return [{str(k): _plain(v) for k, v in r.items()} for r in model_input.to_dict("records")]
    if isinstance(model_input, dict):
        return [model_input]
    return list(model_input)


class BundleModel:
    def __init__(self, folder: Path):
        self.model = persistence.load_model_bytes((folder / "model.skops").read_bytes())
        self.validator = schema.RecordValidator(
            json.loads((folder / "input_schema.json").read_text()),
            max_string_length=int(os.environ.get("MLOPS_MAX_STRING_LENGTH", "256")),
        )

    def predict(self, model_input: Any, params: dict[str, Any] | None = None) -> list[Any]:  # noqa: ARG002
        records = _records(model_input)
        problems = self.validator.problems(records)
        if problems:
            raise ValueError("; ".join(problems))
        return schema.to_jsonable(self.model.predict(self.validator.to_frame(records)))


def _load_pyfunc(data_path: str) -> BundleModel:
    path = Path(data_path)
    return BundleModel(path.parent if path.is_file() else path)
