"""The bundle's prediction log: buffered on local disk, sent to the Hub in compressed, idempotent batches.

- `put(kind, rows)` queues rows in memory (no disk write on a request's path); a writer thread appends them to
  a SQLite file (WAL) every `flush_seconds`, and `close()` writes what is left (SIGTERM: nothing queued is lost).
- The buffer is bounded (`max_rows`): when full, the oldest rows are dropped, and the drop is counted (kept in
  the file, reported to the Hub with every batch as `dropped`).
- A sender thread posts the oldest rows, `batch_rows` at a time, gzip JSON, to
  /api/v1/deployments/{name}/predictions:upload (labels: labels:upload) with the upload key, and deletes them
  only when the Hub answered 200. The batch id is derived from the buffer's id and the rows' positions, so a
  batch resent after a lost answer, or after a restart, has the same id and the Hub stores it once (the Hub
  also skips request ids it already has). Failures back off exponentially (with jitter) up to `max_backoff`.

Standard library and httpx only.
"""

from __future__ import annotations

import gzip
import json
import logging
import random
import sqlite3
import threading
import time
import uuid
from pathlib import Path
from typing import Any

log = logging.getLogger("mlops_bundle_server.uploader")

KINDS = {"predictions": "predictions:upload", "labels": "labels:upload"}


class DiskBuffer:
    """Rows waiting to be sent, oldest first, in one SQLite file; bounded, dropping the oldest when full."""

    def __init__(self, path: str | Path, max_rows: int):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.max_rows = max(1, int(max_rows))
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.execute(
            "CREATE TABLE IF NOT EXISTS rows (id INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT, body TEXT)"
        )
        self._conn.execute("CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT)")
        self._conn.execute("INSERT OR IGNORE INTO meta VALUES ('buffer_id', ?)", (uuid.uuid4().hex[:16],))
        self._conn.execute("INSERT OR IGNORE INTO meta VALUES ('dropped', '0')")
        self.buffer_id = self._meta("buffer_id")

    def _meta(self, k: str) -> str:
        return self._conn.execute("SELECT v FROM meta WHERE k = ?", (k,)).fetchone()[0]

    @property
    def dropped(self) -> int:
        with self._lock:
            return int(self._meta("dropped"))

    def count(self, kind: str | None = None) -> int:
        with self._lock:
            if kind is None:
                return self._conn.execute("SELECT COUNT(*) FROM rows").fetchone()[0]
            return self._conn.execute("SELECT COUNT(*) FROM rows WHERE kind = ?", (kind,)).fetchone()[0]

    def append(self, items: list[tuple[str, dict[str, Any]]]) -> int:
        """Append (kind, row) items in one transaction; returns how many old rows were dropped to make room."""
        if not items:
            return 0
        with self._lock:
            c = self._conn
            c.execute("BEGIN IMMEDIATE")
            try:
                c.executemany("INSERT INTO rows (kind, body) VALUES (?, ?)", [(k, json.dumps(r)) for k, r in items])
                n = c.execute("SELECT COUNT(*) FROM rows").fetchone()[0]
                over = n - self.max_rows
                if over > 0:
                    c.execute("DELETE FROM rows WHERE id IN (SELECT id FROM rows ORDER BY id LIMIT ?)", (over,))
                    c.execute("UPDATE meta SET v = CAST(CAST(v AS INTEGER) + ? AS TEXT) WHERE k = 'dropped'", (over,))
                c.execute("COMMIT")
            except BaseException:
                c.execute("ROLLBACK")
                raise
            return max(over, 0)

    def oldest(self, kind: str, limit: int) -> list[tuple[int, dict[str, Any]]]:
        with self._lock:
            cur = self._conn.execute("SELECT id, body FROM rows WHERE kind = ? ORDER BY id LIMIT ?", (kind, limit))
            return [(i, json.loads(b)) for i, b in cur.fetchall()]

    def delete_through(self, kind: str, ids: list[int]) -> None:
        with self._lock:
            self._conn.executemany("DELETE FROM rows WHERE id = ? AND kind = ?", [(i, kind) for i in ids])

    def close(self) -> None:
        with self._lock:
            self._conn.close()


class Uploader:
    def __init__(
        self,
        *,
        hub_url: str,
        deployment: str,
        upload_key: str,
        buffer_path: str | Path,
        max_rows: int = 1_000_000,
        batch_rows: int = 500,
        flush_seconds: float = 0.2,
        interval_seconds: float = 1.0,
        max_backoff: float = 30.0,
        timeout: float = 10.0,
    ):
        self.hub_url = hub_url.rstrip("/")
        self.deployment = deployment
        self.upload_key = upload_key
        self.buffer = DiskBuffer(buffer_path, max_rows)
        self.batch_rows = batch_rows
        self.flush_seconds = flush_seconds
        self.interval_seconds = interval_seconds
        self.max_backoff = max_backoff
        self.timeout = timeout
        self._queue: list[tuple[str, dict[str, Any]]] = []
        self._qlock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.sent = 0
        self.last_upload_at: float | None = None
        self.last_error = ""
        self.enabled = bool(self.hub_url and self.upload_key)

    # -- writing -----------------------------------------------------------------------------------------

    def put(self, kind: str, rows: list[dict[str, Any]]) -> None:
        with self._qlock:
            self._queue.extend((kind, r) for r in rows)

    def flush(self) -> None:
        with self._qlock:
            items, self._queue = self._queue, []
        dropped = self.buffer.append(items)
        if dropped:
            log.warning("the upload buffer is full: dropped the %d oldest rows", dropped)

    @property
    def pending(self) -> int:
        with self._qlock:
            return len(self._queue)

    # -- sending -----------------------------------------------------------------------------------------

    def send_once(self, kind: str = "predictions") -> int:
        """Send one batch of `kind`; returns the rows acknowledged (0: nothing to send). Raises on failure."""
        batch = self.buffer.oldest(kind, self.batch_rows)
        if not batch:
            return 0
        ids = [i for i, _ in batch]
        batch_id = f"{self.buffer.buffer_id}-{kind[0]}{ids[0]}-{ids[-1]}"
        body: dict[str, Any] = {"batch_id": batch_id}
        if kind == "labels":
            body["labels"] = [r for _, r in batch]
        else:
            body["rows"] = [r for _, r in batch]
            body["backlog"] = max(self.buffer.count() - len(batch), 0)
            body["dropped"] = self.buffer.dropped
        import httpx

        r = httpx.post(
            f"{self.hub_url}/api/v1/deployments/{self.deployment}/{KINDS[kind]}",
            content=gzip.compress(json.dumps(body).encode(), compresslevel=5),
            headers={
                "Authorization": f"Bearer {self.upload_key}",
                "Content-Encoding": "gzip",
                "Content-Type": "application/json",
            },
            timeout=self.timeout,
        )
        if r.status_code != 200:
            raise RuntimeError(f"the Hub answered {r.status_code}: {r.text[:300]}")
        self.buffer.delete_through(kind, ids)
        self.sent += len(ids)
        self.last_upload_at = time.time()
        return len(ids)

    def _send_loop(self) -> None:
        backoff = 0.0
        while not self._stop.wait(backoff or self.interval_seconds):
            try:
                while not self._stop.is_set() and (self.send_once("predictions") or self.send_once("labels")):
                    pass
                backoff, self.last_error = 0.0, ""
            except Exception as exc:  # noqa: BLE001 - the Hub may be down: keep buffering, try again later
                self.last_error = str(exc)[:300]
                backoff = min(self.max_backoff, max(0.5, backoff * 2)) * (0.8 + 0.4 * random.random())  # noqa: S311
                log.warning("upload failed (%s); next try in %.1f s", self.last_error, backoff)

    def _flush_loop(self) -> None:
        while not self._stop.wait(self.flush_seconds):
            try:
                self.flush()
            except Exception:  # noqa: BLE001 - a full disk must not stop scoring; rows stay queued
                log.exception("cannot write the upload buffer")

    def start(self) -> None:
        self._threads = [threading.Thread(target=self._flush_loop, name="buffer-writer", daemon=True)]
        if self.enabled:
            self._threads.append(threading.Thread(target=self._send_loop, name="uploader", daemon=True))
        else:
            log.warning("MLOPS_HUB_URL or MLOPS_UPLOAD_KEY is not set: the prediction log stays in the local buffer")
        for t in self._threads:
            t.start()

    def close(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(self.timeout + 5)
        self.flush()
        self.buffer.close()

    def status(self) -> dict[str, Any]:
        return {
            "buffered": self.buffer.count() + self.pending,
            "dropped": self.buffer.dropped,
            "sent": self.sent,
            "last_upload_at": self.last_upload_at,
            "last_error": self.last_error,
            "uploading": self.enabled,
        }
