"""200 malformed dataset uploads and 200 malformed scoring API payloads, generated with hypothesis: each
ends in a clear 4xx or a domain error message — never a 500 or an unexpected exception — and never
leaves a partial record behind (rows counted before and after)."""

from __future__ import annotations

import io
import json
import math

import httpx
import pandas as pd
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from mlops_core import data_io
from mlops_core.db import Database
from mlops_core.errors import DomainError
from mlops_core.services import datasets
from tests.conftest import make_people
from tests.faults.world import count_rows, stopped_cleanly

FAST = settings(
    max_examples=200,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)

# --- uploads ---------------------------------------------------------------------------------------

cell = st.one_of(
    st.text(max_size=8),
    st.integers(-(10**30), 10**30).map(str),
    st.sampled_from(
        ["", "NaN", "inf", "-inf", "\x00", '"', '"unclosed', "a,b", "line\nbreak", "1e999", "=cmd()", "\ufeff"]
    ),
)


@st.composite
def ragged_csv(draw) -> bytes:
    """A CSV whose rows disagree with the header, with odd cells, duplicate or empty column names."""
    header = draw(st.lists(st.sampled_from(["a", "b", "", "a", "x y", "\u00e9", "1"]), min_size=0, max_size=4))
    rows = draw(st.lists(st.lists(cell, max_size=6), max_size=5))
    lines = [",".join(header)] + [",".join(r) for r in rows]
    sep = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    enc = draw(st.sampled_from(["utf-8", "utf-16", "latin-1"]))
    return sep.join(lines).encode(enc, errors="replace")


@st.composite
def truncated_parquet(draw) -> bytes:
    buf = io.BytesIO()
    pd.DataFrame({"a": [1, 2, 3], "b": ["x", "y", "z"]}).to_parquet(buf)
    data = buf.getvalue()
    return data[: draw(st.integers(0, len(data) - 1))]


upload = st.tuples(
    st.one_of(
        ragged_csv(),
        truncated_parquet(),
        st.binary(max_size=300),
        st.just(b""),
        st.just(b"a,b\n"),
        st.just(b"\xff\xfe\x00\x00garbage"),
    ),
    st.sampled_from(
        [
            "data.csv",
            "data.parquet",
            "data.txt",
            "",
            "../../escape.csv",
            "noext",
            "a.csv.exe",
            "x" * 300 + ".csv",
            "CON.csv",
            "über.csv",
        ]
    ),
    # mostly a good dataset name, so most cases reach the file parsing
    st.sampled_from(["customers"] * 6 + ["", " ", "a/b", "../x", "x" * 500, "name with\nnewline"]),
)


def test_malformed_uploads_end_in_a_domain_message_or_a_whole_version_never_a_crash(sqlite_db):
    db: Database = sqlite_db
    dan = make_people(db)["data_engineer"]
    seen = {"refused": 0, "registered": 0}

    @FAST
    @given(upload)
    def one(case):
        data, filename, name = case
        before = (count_rows(db, "datasets"), count_rows(db, "dataset_versions"))
        try:
            v = datasets.register_version_from_upload(
                db, actor=dan, dataset_name=name, fileobj=io.BytesIO(data), filename=filename
            )
        except DomainError as exc:
            assert str(exc).strip(), "the message says what is wrong"
            assert (count_rows(db, "datasets"), count_rows(db, "dataset_versions")) == before, (
                "a refused upload leaves no dataset or version row"
            )
            seen["refused"] += 1
        else:
            # Parsable after all: then it is a whole version (its file stored, its validation decided).
            assert v.status in ("validated", "failed", "waived") and v.n_rows >= 0
            assert len(datasets.load_frame(db, v.id)) == v.n_rows
            seen["registered"] += 1
        assert not any(data_io.staging_dir().iterdir()), "no staged upload is left behind"

    one()
    print(f"\nuploads: {seen}")
    assert seen["refused"] >= 100


# --- API payloads ------------------------------------------------------------------------------------

junk = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=8,
)
bad_value = st.one_of(
    st.text(min_size=1, max_size=5).filter(lambda s: not s.strip().lstrip("-").isdigit()),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    st.just("NaN"),
)
RAW_NUMBERS = ["NaN", "Infinity", "-Infinity", "1e999", "-1e999", "1" + "0" * 400, "-" + "9" * 400]


@st.composite
def bad_payload(draw, valid: dict) -> tuple[bytes, str, str]:
    """(body, content type, what is wrong) — every one malformed."""
    kind = draw(
        st.sampled_from(
            [
                "not_json",
                "json_junk",
                "missing_col",
                "extra_col",
                "wrong_type",
                "raw_number",
                "extra_field",
                "records_not_list",
                "empty",
                "nested",
                "form",
            ]
        )
    )
    ct = "application/json"
    rec = dict(valid)
    if kind == "not_json":
        body = draw(st.binary(min_size=1, max_size=200).filter(lambda b: not _is_json(b)))
    elif kind == "form":
        body, ct = (
            b"records=1&x=2",
            draw(
                st.sampled_from(
                    ["application/x-www-form-urlencoded", "text/csv", "application/xml", "multipart/form-data"]
                )
            ),
        )
    elif kind == "json_junk":
        value = draw(junk.filter(lambda v: not (isinstance(v, dict) and "records" in v)))
        body = json.dumps(value).encode()
    elif kind == "missing_col":
        drop = draw(st.sets(st.sampled_from(sorted(rec)), min_size=1))
        body = json.dumps({"records": [{k: v for k, v in rec.items() if k not in drop}]}).encode()
    elif kind == "extra_col":
        extra = draw(st.text(min_size=1, max_size=6).filter(lambda k: k not in rec))
        rec[extra] = draw(junk)
        body = json.dumps({"records": [rec]}).encode()
    elif kind == "wrong_type":
        col = draw(st.sampled_from(sorted(rec)))
        rec[col] = draw(
            bad_value.filter(
                lambda v, c=col: (
                    not isinstance(v, type(valid[c])) and not (isinstance(valid[c], str) and isinstance(v, str))
                )
            )
        )
        body = json.dumps({"records": [rec]}).encode()
    elif kind == "raw_number":
        col = draw(
            st.sampled_from(
                sorted(k for k, v in rec.items() if isinstance(v, (int, float)) and not isinstance(v, bool))
            )
        )
        token = draw(st.sampled_from(RAW_NUMBERS))
        rec[col] = "__RAW__"
        body = json.dumps({"records": [rec]}).replace('"__RAW__"', token).encode()
    elif kind == "extra_field":
        body = json.dumps(
            {"records": [rec], draw(st.text(min_size=1, max_size=5).filter(lambda k: k != "records")): draw(junk)}
        ).encode()
    elif kind == "records_not_list":
        body = json.dumps(
            {
                "records": draw(
                    junk.filter(lambda v: not isinstance(v, list) or not v or not all(isinstance(x, dict) for x in v))
                )
            }
        ).encode()
    elif kind == "empty":
        body = draw(st.sampled_from([b"", b" ", b"{}", b"[]", b"null", b'{"records": []}']))
    else:  # nested junk in place of a record
        body = json.dumps({"records": [rec, draw(junk.filter(lambda v: not isinstance(v, dict)))]}).encode()
    return body, ct, kind


def _is_json(b: bytes) -> bool:
    try:
        json.loads(b)
        return True
    except (ValueError, UnicodeDecodeError):
        return False


@pytest.fixture
def scoring(seeded_pg, services_for):
    url, dep = seeded_pg
    svc = services_for(url)
    base = svc.serve("scoring", dep)
    return url, dep, svc, base


def test_malformed_api_payloads_get_a_clear_4xx_and_log_no_prediction(scoring):
    url, dep, svc, base = scoring
    db = Database(url)
    ok_before = count_rows(db, "predictions", "WHERE status = 'ok'")
    kinds: dict[str, int] = {}
    client = httpx.Client(timeout=30)
    auth = {"Authorization": f"Bearer {dep.key}"}

    numeric = next(k for k, v in dep.record.items() if isinstance(v, (int, float)) and not isinstance(v, bool))
    huge = json.dumps({"records": [{**dep.record, numeric: "__RAW__"}]})

    @FAST
    @given(bad_payload(dep.record), st.sampled_from(["key"] * 7 + ["no_key", "wrong_key", "unknown_deployment"]))
    @example((huge.replace('"__RAW__"', "1" + "0" * 400).encode(), "application/json", "raw_number"), "key")
    @example((huge.replace('"__RAW__"', "-1e999").encode(), "application/json", "raw_number"), "key")
    def one(payload, who):
        body, ct, kind = payload
        headers = {"Content-Type": ct}
        path = f"/v1/deployments/{dep.name}/predict"
        if who == "key":
            headers.update(auth)
        elif who == "wrong_key":
            headers["Authorization"] = "Bearer not-a-key"
        elif who == "unknown_deployment":
            headers.update(auth)
            path = "/v1/deployments/no-such-thing/predict"
        r = client.post(base + path, content=body, headers=headers)
        assert 400 <= r.status_code < 500, (kind, who, body[:200], r.status_code, r.text[:300])
        detail = r.json()["detail"]
        assert isinstance(detail, str) and len(detail) > 10, detail
        kinds[kind] = kinds.get(kind, 0) + 1

    one()
    client.close()
    assert stopped_cleanly(svc, "scoring"), svc.log("scoring")[-3000:]
    assert count_rows(db, "predictions", "WHERE status = 'ok'") == ok_before, "no malformed request was scored"
    assert "Traceback" not in svc.log("scoring"), svc.log("scoring")[-3000:]
    print(f"\npayload kinds sent: {kinds}")
    db.dispose()
    assert math.fsum(kinds.values()) >= 150, kinds
