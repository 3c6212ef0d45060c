"""The Open Inference Protocol (KServe V2 / Triton / MLServer / Seldon) REST mapping, as pure functions.

One input tensor per column of the model's input schema; tensor element i of every input is record i:

    {"inputs": [{"name": "tenure_months", "shape": [2], "datatype": "INT64", "data": [3, 40]},
                {"name": "contract", "shape": [2, 1], "datatype": "BYTES", "data": ["monthly", "two-year"]}]}

Datatypes per schema type: number FP64 (any FP*/INT*/UINT* accepted), integer INT64 (any INT*/UINT*,
or FP* holding whole numbers), boolean BOOL, category and string BYTES (a category whose training values
were numbers also takes numbers). A JSON null element is a missing value, as in our /predict.
Outputs: `predict` (the model's predictions) and, for a binary classifier, `score` (the positive-class
probability, as /predict's "scores"). Errors follow the protocol: {"error": "<sentence>"} with a 4xx status.

No imports beyond the standard library: the bundle server (`mlops_bundle_server`) ships a copy of this file.
"""

from __future__ import annotations

from typing import Any

PROTOCOL_EXTENSIONS: list[str] = []
NUMERIC = {"FP16", "FP32", "FP64", "INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16", "UINT32", "UINT64"}
INTEGER = {t for t in NUMERIC if "INT" in t}
DATATYPE = {"number": "FP64", "integer": "INT64", "boolean": "BOOL", "category": "BYTES", "string": "BYTES"}
ACCEPTED = {
    "number": NUMERIC,
    "integer": NUMERIC,  # whole numbers only: the record validator says so if not
    "boolean": {"BOOL"},
    "category": {"BYTES"},  # and numbers when its training values were numbers
    "string": {"BYTES"},
}
OUTPUTS = ("predict", "score")


class ProtocolError(ValueError):
    """The request does not follow the protocol; the message says what to send instead."""


def column_datatype(column: dict[str, Any]) -> str:
    return DATATYPE.get(column.get("type", "string"), "BYTES")


def server_metadata(name: str, version: str) -> dict[str, Any]:
    return {"name": name, "version": version, "extensions": PROTOCOL_EXTENSIONS}


def model_metadata(
    name: str,
    version_label: str | None,
    input_schema: list[dict[str, Any]],
    *,
    classifier: bool,
    classes: list[Any] | None = None,
) -> dict[str, Any]:
    """GET /v2/models/{name}: the inputs (one per column) and outputs of the served model version.
    `classes`: a classifier's classes (as JSON values) give the datatype of `predict`; a regressor's is FP64."""
    predict_type = _datatype_of(list(classes)) if classes else "FP64"
    outputs = [{"name": "predict", "datatype": predict_type, "shape": [-1]}]
    if classifier:
        outputs.append({"name": "score", "datatype": "FP64", "shape": [-1]})
    return {
        "name": name,
        "versions": [version_label] if version_label else [],
        "platform": "sklearn",
        "inputs": [{"name": c["name"], "datatype": column_datatype(c), "shape": [-1]} for c in input_schema],
        "outputs": outputs,
    }


def _numeric_categories(column: dict[str, Any]) -> bool:
    if column.get("type") != "category" or not column.get("categories"):
        return False
    try:
        [float(v) for v in column["categories"]]
    except (TypeError, ValueError):
        return False
    return True


def _flatten(data: Any) -> list[Any]:
    if not isinstance(data, list):
        return [data]
    if not any(isinstance(v, list) for v in data):
        return data
    out: list[Any] = []
    stack = [iter(data)]
    while stack:
        for v in stack[-1]:
            if isinstance(v, list):
                if len(stack) > 32:
                    raise ProtocolError("tensor data is nested more than 32 levels deep")
                stack.append(iter(v))
                break
            out.append(v)
        else:
            stack.pop()
    return out


def _elements(shape: Any, name: str) -> int:
    if not isinstance(shape, list) or not shape or not all(type(d) is int and d >= 0 for d in shape):
        raise ProtocolError(f"input `{name}`: `shape` must be a list of non-negative integers such as [n] or [n, 1]")
    if len(shape) > 1 and any(d != 1 for d in shape[1:]):
        raise ProtocolError(
            f"input `{name}` has shape {shape}: send one element per record, shape [n] or [n, 1] (one tensor per column)"
        )
    return shape[0]


def request_to_records(body: Any, input_schema: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[str]]:
    """An inference request -> (records in the schema's column order, requested output names).

    Raises ProtocolError for what the protocol itself forbids (bad shapes, a datatype that does not fit the
    column, tensors of different lengths); the records are then checked by the same RecordValidator as /predict
    (missing/unexpected columns, bad values)."""
    if not isinstance(body, dict):
        raise ProtocolError('the body must be a JSON object: {"inputs": [{"name", "shape", "datatype", "data"}, ...]}')
    inputs = body.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise ProtocolError('the body has no "inputs": send one input tensor per column')
    types = {c["name"]: c.get("type", "string") for c in input_schema}
    numeric_categories = {c["name"] for c in input_schema if _numeric_categories(c)}
    columns: dict[str, list[Any]] = {}
    n: int | None = None
    for i, t in enumerate(inputs):
        if not isinstance(t, dict):
            raise ProtocolError(f"input {i} is not an object with name, shape, datatype and data")
        name = t.get("name")
        if not isinstance(name, str) or not name:
            raise ProtocolError(f"input {i} has no `name`: name each input tensor after its column")
        if name in columns:
            raise ProtocolError(f"input `{name}` is given twice")
        for key in ("shape", "datatype", "data"):
            if key not in t:
                raise ProtocolError(f"input `{name}` has no `{key}`")
        size = _elements(t["shape"], name)
        data = _flatten(t["data"])
        if len(data) != size:
            raise ProtocolError(f"input `{name}` has shape {t['shape']} but {len(data)} data elements")
        if n is None:
            n = size
        elif size != n:
            raise ProtocolError(f"input `{name}` has {size} elements but the first input has {n}: one per record")
        datatype = t["datatype"]
        kind = types.get(name)
        if kind is not None:
            accepted = ACCEPTED.get(kind, {"BYTES"}) if name not in numeric_categories else {"BYTES"} | NUMERIC
            if datatype not in accepted:
                want = DATATYPE.get(kind, "BYTES")
                raise ProtocolError(f"input `{name}` is a {kind} column: send datatype {want}, not {datatype!r}")
            if datatype in INTEGER and any(isinstance(v, float) for v in data):
                raise ProtocolError(f"input `{name}` is {datatype} but has non-integer elements")
        columns[name] = data
    records = [{name: values[i] for name, values in columns.items()} for i in range(n or 0)]
    outputs = body.get("outputs")
    wanted: list[str] = list(OUTPUTS)
    if outputs is not None:
        if not isinstance(outputs, list) or not all(
            isinstance(o, dict) and isinstance(o.get("name"), str) for o in outputs
        ):
            raise ProtocolError('`outputs` must be a list of {"name": ...}')
        wanted = [o["name"] for o in outputs]
        unknown = [w for w in wanted if w not in OUTPUTS]
        if unknown:
            raise ProtocolError(f"unknown output {', '.join(unknown)}; this model has: {', '.join(OUTPUTS)}")
    return records, wanted


def _datatype_of(values: list[Any]) -> str:
    present = [v for v in values if v is not None]
    if present and all(isinstance(v, bool) for v in present):
        return "BOOL"
    if present and all(isinstance(v, int) and not isinstance(v, bool) for v in present):
        return "INT64"
    if present and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in present):
        return "FP64"
    return "BYTES"


def response(
    *,
    model_name: str,
    model_version: str,
    request_id: str,
    given_id: Any,
    predictions: list[Any],
    scores: list[float | None] | None,
    wanted: list[str],
    record_ids: list[str] | None = None,
) -> dict[str, Any]:
    """The inference response: `id` echoes the request's id (ours when it gave none); our request id (for
    /feedback labels) is in `parameters`."""
    n = len(predictions)
    outputs = []
    if "predict" in wanted:
        dt = _datatype_of(predictions)
        data = predictions if dt != "BYTES" else [v if v is None or isinstance(v, str) else str(v) for v in predictions]
        outputs.append({"name": "predict", "shape": [n], "datatype": dt, "data": data})
    if "score" in wanted and scores is not None:
        outputs.append({"name": "score", "shape": [n], "datatype": "FP64", "data": scores})
    parameters: dict[str, Any] = {"request_id": request_id}
    if record_ids:
        parameters["record_ids"] = record_ids
    return {
        "model_name": model_name,
        "model_version": model_version,
        "id": given_id if isinstance(given_id, str) and given_id else request_id,
        "parameters": parameters,
        "outputs": outputs,
    }
