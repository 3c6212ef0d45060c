"""The bundle's disk buffer and uploader (mlops_core/bundle_server/uploader.py) without a Hub: bounded with the
oldest rows dropped and counted, rows kept across a restart, and a batch that failed resent with the same id."""

from __future__ import annotations

import gzip
import json

import httpx
import pytest

from mlops_core.bundle_server.uploader import DiskBuffer, Uploader


def test_a_full_buffer_drops_the_oldest_rows_and_counts_them(tmp_path):
    buf = DiskBuffer(tmp_path / "b.sqlite", max_rows=5)
    assert buf.append([("predictions", {"request_id": f"r{i}"}) for i in range(3)]) == 0
    assert buf.append([("predictions", {"request_id": f"r{i}"}) for i in range(3, 8)]) == 3
    assert [r["request_id"] for _, r in buf.oldest("predictions", 10)] == ["r3", "r4", "r5", "r6", "r7"]
    assert buf.dropped == 3
    buffer_id = buf.buffer_id
    buf.close()
    again = DiskBuffer(tmp_path / "b.sqlite", max_rows=5)  # a restart keeps the rows, the count and the id
    assert again.count() == 5 and again.dropped == 3 and again.buffer_id == buffer_id


def test_a_failed_batch_is_resent_with_the_same_id_and_deleted_only_when_acknowledged(tmp_path, monkeypatch):
    sent: list[dict] = []
    answers = [httpx.ConnectError("down"), 503, 200]

    def fake_post(url, content, headers, timeout):
        body = json.loads(gzip.decompress(content))
        sent.append(body)
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return httpx.Response(answer, json={"ok": True})

    monkeypatch.setattr(httpx, "post", fake_post)
    up = Uploader(
        hub_url="http://hub", deployment="edge", upload_key="mlu_x", buffer_path=tmp_path / "u.sqlite", batch_rows=2
    )
    up.put("predictions", [{"request_id": f"r{i}"} for i in range(3)])
    up.flush()
    with pytest.raises(httpx.ConnectError):
        up.send_once()
    with pytest.raises(RuntimeError, match="503"):
        up.send_once()
    assert up.send_once() == 2
    assert len({b["batch_id"] for b in sent}) == 1 and sent[0]["rows"] == [{"request_id": "r0"}, {"request_id": "r1"}]
    assert sent[-1]["backlog"] == 1 and up.buffer.count() == 1
    up.buffer.close()
