"""The Open Inference Protocol mapping (mlops_core.serving.oip) against the protocol specification's own
examples (KServe "required_api" / Open Inference Protocol REST: inference request and response JSON objects,
model metadata, the error object), adapted to one tensor per column."""

from __future__ import annotations

import pytest

from mlops_core.serving import oip

SCHEMA = [
    {"name": "tenure_months", "type": "integer"},
    {"name": "monthly_charges", "type": "number"},
    {"name": "senior", "type": "boolean"},
    {"name": "contract", "type": "category", "categories": ["monthly", "one-year", "two-year"]},
]

# The spec's request example, with our column names: "id" optional, inputs with name/shape/datatype/data,
# data flattened or nested row-major, "outputs" optional.
SPEC_REQUEST = {
    "id": "42",
    "inputs": [
        {"name": "tenure_months", "shape": [2], "datatype": "INT64", "data": [3, 40]},
        {"name": "monthly_charges", "shape": [2, 1], "datatype": "FP64", "data": [[70.5], [20.0]]},
        {"name": "senior", "shape": [2], "datatype": "BOOL", "data": [True, False]},
        {"name": "contract", "shape": [2], "datatype": "BYTES", "data": ["monthly", "two-year"]},
    ],
    "outputs": [{"name": "predict"}],
}


def test_the_spec_request_becomes_one_record_per_element():
    records, wanted = oip.request_to_records(SPEC_REQUEST, SCHEMA)
    assert records == [
        {"tenure_months": 3, "monthly_charges": 70.5, "senior": True, "contract": "monthly"},
        {"tenure_months": 40, "monthly_charges": 20.0, "senior": False, "contract": "two-year"},
    ]
    assert wanted == ["predict"]


def test_the_response_has_the_spec_fields_and_echoes_the_id():
    body = oip.response(
        model_name="churn",
        model_version="churn-model v1",
        request_id="abc",
        given_id="42",
        predictions=[1, 0],
        scores=[0.9, 0.1],
        wanted=["predict", "score"],
        record_ids=["abc.0", "abc.1"],
    )
    assert body == {
        "model_name": "churn",
        "model_version": "churn-model v1",
        "id": "42",
        "parameters": {"request_id": "abc", "record_ids": ["abc.0", "abc.1"]},
        "outputs": [
            {"name": "predict", "shape": [2], "datatype": "INT64", "data": [1, 0]},
            {"name": "score", "shape": [2], "datatype": "FP64", "data": [0.9, 0.1]},
        ],
    }
    # No id given: ours; text predictions are BYTES.
    body = oip.response(
        model_name="m",
        model_version="v",
        request_id="r",
        given_id=None,
        predictions=["a"],
        scores=None,
        wanted=["predict"],
    )
    assert body["id"] == "r" and body["outputs"] == [
        {"name": "predict", "shape": [1], "datatype": "BYTES", "data": ["a"]}
    ]


def test_model_metadata_lists_one_input_per_column():
    meta = oip.model_metadata("churn", "churn-model v1", SCHEMA, classifier=True, classes=[0, 1])
    assert meta == {
        "name": "churn",
        "versions": ["churn-model v1"],
        "platform": "sklearn",
        "inputs": [
            {"name": "tenure_months", "datatype": "INT64", "shape": [-1]},
            {"name": "monthly_charges", "datatype": "FP64", "shape": [-1]},
            {"name": "senior", "datatype": "BOOL", "shape": [-1]},
            {"name": "contract", "datatype": "BYTES", "shape": [-1]},
        ],
        "outputs": [
            {"name": "predict", "datatype": "INT64", "shape": [-1]},
            {"name": "score", "datatype": "FP64", "shape": [-1]},
        ],
    }


@pytest.mark.parametrize(
    "change, expected",
    [
        (lambda b: b.pop("inputs"), 'no "inputs"'),
        (lambda b: b["inputs"][0].update(shape=[3]), "has shape [3] but 2 data elements"),
        (lambda b: b["inputs"][0].update(shape=[1, 2], data=[[3, 40]]), "one element per record"),
        (lambda b: b["inputs"][1].update(shape=[1], data=[1.0]), "has 1 elements but the first input has 2"),
        (lambda b: b["inputs"][3].update(datatype="FP32"), "send datatype BYTES"),
        (lambda b: b["inputs"][2].update(datatype="BYTES"), "send datatype BOOL"),
        (lambda b: b["inputs"][0].update(data=[3.5, 40]), "non-integer elements"),
        (lambda b: b["inputs"][0].pop("datatype"), "has no `datatype`"),
        (lambda b: b["inputs"].append(dict(b["inputs"][0])), "given twice"),
        (lambda b: b.update(outputs=[{"name": "explain"}]), "unknown output explain"),
        (lambda b: b.update(inputs="x"), 'no "inputs"'),
    ],
)
def test_protocol_errors_say_what_to_send(change, expected):
    import copy

    body = copy.deepcopy(SPEC_REQUEST)
    change(body)
    with pytest.raises(oip.ProtocolError, match=None) as exc:
        oip.request_to_records(body, SCHEMA)
    assert expected in str(exc.value)
