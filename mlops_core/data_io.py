"""Reading data safely: uploads, server paths and SQL queries, streamed into canonical Parquet.

Every source goes the same way (issue 4, "Bad input"):

1. `stage_upload` copies the bytes to a local staging file in chunks, refusing as
   soon as the size limit (`MLOPS_MAX_UPLOAD_MB`) is passed — the size is checked before reading
   when it is known, and while copying when it is not.
2. `convert_to_parquet` reads the file block by block (pyarrow's streaming CSV reader, or Parquet
   row groups), casts each block to a canonical Arrow schema, writes it to a temporary Parquet file
   and hashes it as it goes. Nothing holds the whole table in memory.
3. The content hash is computed on the canonical representation (column names and types, then one
   64-bit hash per row), so the same content is the same hash however it arrived or was chunked.

Cells starting with = + - @ are kept as data (they are never evaluated here); `to_safe_csv` makes
exports safe to open in a spreadsheet by prefixing such text cells, and such column names, with a quote.

Limits (issue 12): a Parquet file's footer is checked against MLOPS_MAX_DATASET_ROWS and
MLOPS_MAX_UNCOMPRESSED_MB before any row is read, and read in bounded batches; every source is
stopped as soon as it passes the row limit, and refused above MLOPS_MAX_DATASET_COLUMNS columns.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import re
import sqlite3
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Callable, Iterator

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from . import artifacts
from .config import DATA_DIR, Settings, get_settings
from .db import normalise_url
from .errors import ValidationError

Progress = Callable[[float, str], None]

CHUNK = 1 << 20  # bytes copied per read while staging
CSV_BLOCK = 1 << 20  # bytes per CSV block: also what the first block's type inference sees
ROW_GROUP_ROWS = 131_072  # rows per Parquet row group (blocks are gathered up to this)
CSV_THREADS = True  # parse blocks on several cores
PARQUET_MAGIC = b"PAR1"
SAMPLE_BYTES = 64 << 10
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._ -]+")


def _noop(fraction: float, message: str) -> None:  # noqa: ARG001
    return None


# --- names and limits ------------------------------------------------------------------------


def sanitize_filename(name: str | None) -> str:
    """The last path component of `name`, without separators or control characters.

    A browser or API client may send "../../etc/passwd" or "C:\\data\\x.csv"; only "passwd" /
    "x.csv" survive. The result is for display and the `source` record only: files are stored
    under content-derived keys, never under a name a user chose.
    """
    raw = (name or "").replace("\\", "/").split("/")[-1]
    raw = "".join(ch for ch in raw if ch.isprintable())
    cleaned = _SAFE_NAME.sub("_", raw).strip(" .")
    return cleaned[:200] or "upload"


def max_upload_bytes() -> int:
    return int(get_settings().max_upload_mb) * 1024 * 1024


def _too_big(size: int, limit: int) -> ValidationError:
    return ValidationError(
        f"the file is {size / 1e6:,.1f} MB, over the upload limit of {limit / 1024 / 1024:,.0f} MB; "
        "split it, compress it as Parquet, or ask an admin to raise MLOPS_MAX_UPLOAD_MB"
    )


def _declared_size(fileobj: Any) -> int | None:
    size = getattr(fileobj, "size", None)
    if isinstance(size, int):
        return size
    try:
        pos = fileobj.tell()
        fileobj.seek(0, os.SEEK_END)
        end = fileobj.tell()
        fileobj.seek(pos)
        return end - pos
    except (AttributeError, OSError, ValueError):
        return None


def staging_dir() -> Path:
    """Local scratch for temporary files: inside a folder ARTIFACT_ROOT (so the final rename stays on one
    filesystem), under ARTIFACT_CACHE_DIR for a URL store (never the remote store itself)."""

    return artifacts.staging_dir()


def new_staging_path(suffix: str) -> Path:
    fd, name = tempfile.mkstemp(dir=staging_dir(), prefix="stage-", suffix=suffix)
    os.close(fd)
    return Path(name)


def stage_upload(fileobj: IO[bytes], filename: str, *, limit: int | None = None, progress: Progress = _noop) -> Path:
    """Copy an uploaded file to a staging file in chunks; refuse past the size limit.

    The declared size (Streamlit's UploadedFile.size, or seek/tell) is checked before reading
    anything; a stream of unknown size is stopped as soon as it passes the limit.
    """
    limit = max_upload_bytes() if limit is None else limit
    declared = _declared_size(fileobj)
    if declared is not None and declared > limit:
        raise _too_big(declared, limit)
    suffix = Path(sanitize_filename(filename)).suffix.lower()[:10]
    dest = new_staging_path(suffix)
    copied = 0
    try:
        with dest.open("wb") as out:
            while True:
                chunk = fileobj.read(CHUNK)
                if not chunk:
                    break
                copied += len(chunk)
                if copied > limit:
                    raise _too_big(copied, limit)
                out.write(chunk)
                if declared:
                    progress(min(1.0, copied / declared), f"received {copied / 1e6:,.1f} MB")
    except BaseException:
        dest.unlink(missing_ok=True)
        raise
    return dest


def allowed_roots() -> list[Path]:
    """Folders the UI may register files from (MLOPS_INGEST_ROOTS, os.pathsep-separated; default data/)."""
    # A fresh Settings(), not the cached one: the environment is read at each call, as it always was
    # (tests and admin scripts set it in-process after the settings were first read).
    raw = Settings().ingest_roots
    roots = [Path(p) for p in raw.split(os.pathsep) if p.strip()] if raw else [DATA_DIR]
    return [r.expanduser().resolve() for r in roots]


def check_server_path(path: str) -> Path:
    """A server path is only read inside an allowed folder (no `..` tricks, no symlinks out).

    The folder is checked first, on the fully resolved path (symlinks and `..` followed), so a path
    outside the allowed folders gets the same answer whether or not something exists there: the
    message must not tell a user what is on the server beyond those folders.
    """
    if not path or not str(path).strip():
        raise ValidationError("give the path of a CSV or Parquet file on the server")
    p = Path(str(path).strip()).expanduser()
    try:
        resolved = p.resolve(strict=False)
    except (OSError, RuntimeError):  # a symlink loop: answered like any path outside the folders
        resolved = None
    roots = allowed_roots()
    if resolved is None or not any(resolved == r or r in resolved.parents for r in roots):
        raise ValidationError(
            f"{p} is outside the folders MLOps Hub may read ({', '.join(str(r) for r in roots)}); "
            "copy the file there or ask an admin to add its folder to MLOPS_INGEST_ROOTS"
        )
    if not resolved.exists():
        raise ValidationError(f"no file at {p}; check the path (it is read on the server, not your computer)")
    if not resolved.is_file():
        raise ValidationError(f"{p} is not a file")
    return resolved


def check_file_size(path: Path, limit: int | None = None) -> int:
    limit = max_upload_bytes() if limit is None else limit
    size = path.stat().st_size
    if size > limit:
        raise _too_big(size, limit)
    return size


def _too_many_rows(limit: int, n_rows: int | None = None) -> ValidationError:
    has = (
        f"{n_rows:,} rows, over the limit of {limit:,} rows per version"
        if n_rows is not None
        else f"more than {limit:,} rows, the limit per version"
    )
    return ValidationError(
        f"the data has {has} (MLOPS_MAX_DATASET_ROWS); split it into smaller extracts "
        "(e.g. one per month) or ask an admin to raise the limit"
    )


def check_columns(n_cols: int) -> None:
    """Refuse data wider than MLOPS_MAX_DATASET_COLUMNS before any row is read."""
    limit = int(get_settings().max_dataset_columns)
    if n_cols > limit:
        raise ValidationError(
            f"the data has {n_cols:,} columns, over the limit of {limit:,} (MLOPS_MAX_DATASET_COLUMNS); "
            "keep only the columns you need, or split the table into several datasets"
        )


def check_parquet_footer(pf) -> None:
    """Refuse a Parquet file whose footer announces more rows, columns or data than the limits allow.

    A few hundred KB of Parquet can hold tens of millions of rows of repeated values (issue 12,
    finding 7); the footer says so before anything is decompressed. The size is the larger of the
    footer's uncompressed byte count and 8 bytes per cell, as dictionary and run-length encoding keep
    the former small for exactly the files that expand the most in memory.
    """
    settings = get_settings()
    md = pf.metadata
    check_columns(md.num_columns)
    if md.num_rows > int(settings.max_dataset_rows):
        raise _too_many_rows(int(settings.max_dataset_rows), md.num_rows)
    footer_bytes = sum(md.row_group(i).total_byte_size for i in range(md.num_row_groups))
    expanded = max(footer_bytes, md.num_rows * max(1, md.num_columns) * 8)
    limit_mb = int(settings.max_uncompressed_mb)
    if expanded > limit_mb * 1024 * 1024:
        raise ValidationError(
            f"the Parquet file holds {md.num_rows:,} rows x {md.num_columns:,} columns, about "
            f"{expanded / 1024 / 1024:,.0f} MB uncompressed, over the limit of {limit_mb:,} MB "
            "(MLOPS_MAX_UNCOMPRESSED_MB); split it into smaller files or ask an admin to raise the limit"
        )


# --- SQL sources ----------------------------------------------------------------------------
#
# A source is read-only because the database enforces it, not because the query text starts with
# SELECT (issue 12, finding 5: `WITH x AS (SELECT 1) DELETE ...` passed the text check and ran):
#   - SQLite: opened through a `mode=ro` URI with `PRAGMA query_only=ON`; a progress handler
#     interrupts a query that runs past MLOPS_SQL_TIMEOUT_SECONDS.
#   - Postgres: a READ ONLY transaction with a statement_timeout; a role that can read the server's
#     files (superuser, pg_read_server_files) is refused, as read-only does not stop pg_read_file.
#   - A connection that points at MLOps Hub's own database is refused when MLOPS_SQL_CONNECTIONS is
#     read and again, by identity rather than by spelling, when it is used.

_SOURCE_BACKENDS = ("sqlite", "postgresql")
_LOCAL_HOSTS = {"", "localhost", "127.0.0.1", "::1", "[::1]"}
_SQLITE_CHECK_EVERY = 10_000  # SQLite VM steps between two looks at the clock (~1 ms)


def _parse_source_url(name: str, url: str):

    try:
        u = make_url(normalise_url(url))
    except Exception:  # noqa: BLE001 - any parse error becomes one sentence
        raise ValidationError(
            f"MLOPS_SQL_CONNECTIONS: connection {name!r} is not a valid database URL; use e.g. "
            "postgresql://reader@host:5432/warehouse or sqlite:////srv/extracts/warehouse.db"
        ) from None
    if u.get_backend_name() not in _SOURCE_BACKENDS:
        raise ValidationError(
            f"MLOPS_SQL_CONNECTIONS: connection {name!r} uses {u.get_backend_name()!r}; SQL sources can be "
            "PostgreSQL or SQLite (where MLOps Hub can make the connection read-only)"
        )
    return u


def _sqlite_file(u) -> Path | None:
    """The file of a SQLite URL, symlinks resolved; None for an in-memory database."""
    database = u.database or ""
    if database.startswith("file:"):
        database = database[len("file:") :].split("?", 1)[0]
    if not database or database == ":memory:":
        return None
    return Path(database).expanduser().resolve()


def _pg_address(u) -> tuple[str, int, str]:
    host = (u.host or str(u.query.get("host") or "")).lower()
    if host in _LOCAL_HOSTS or host.startswith("/"):  # a Unix socket is this machine too
        host = "local"
    return host, int(u.port or 5432), u.database or ""


def _same_database_url(src, app) -> bool:
    """True when two URLs name the same database (the same file, or the same host, port and dbname)."""
    if src.get_backend_name() != app.get_backend_name():
        return False
    if src.get_backend_name() == "sqlite":
        a, b = _sqlite_file(src), _sqlite_file(app)
        if a is None or b is None:
            return False
        try:
            return a == b or (a.exists() and b.exists() and os.path.samefile(a, b))
        except OSError:
            return a == b
    return _pg_address(src) == _pg_address(app)


def _own_database_error(name: str) -> ValidationError:
    return ValidationError(
        f"MLOPS_SQL_CONNECTIONS: connection {name!r} points at MLOps Hub's own database, which holds accounts "
        "and password hashes; remove it and give sources their own database and a read-only role"
    )


def sql_connections() -> dict[str, str]:
    """Named SQLAlchemy URLs data engineers may query: MLOPS_SQL_CONNECTIONS='{"warehouse": "postgresql://..."}'.

    Only names are shown in the UI and stored with a version; the URLs (which may hold passwords)
    stay in the environment. A URL that is malformed, of another kind than SQLite/Postgres, or that
    points at MLOps Hub's own database makes the whole setting refused, with one line saying which.
    """

    raw = (Settings().sql_connections or "").strip()  # read at each call, like allowed_roots
    if not raw:
        return {}
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ValidationError(
            f"MLOPS_SQL_CONNECTIONS is not valid JSON ({exc}); use {{\"name\": \"sqlalchemy-url\"}}"
        ) from None
    if not isinstance(data, dict):
        raise ValidationError('MLOPS_SQL_CONNECTIONS must be a JSON object: {"name": "sqlalchemy-url"}')
    conns = {str(k): str(v) for k, v in data.items()}
    try:
        app = make_url(normalise_url(get_settings().database_url))
    except Exception:  # noqa: BLE001 - a broken DATABASE_URL is reported by the database layer
        app = None
    for name, url in conns.items():
        u = _parse_source_url(name, url)
        if app is not None and _same_database_url(u, app):
            raise _own_database_error(name)
    return conns


def _sqlite_source_engine(name: str, u, timeout: float):

    path = _sqlite_file(u)
    if path is None:
        raise ValidationError(
            f"connection {name!r} is an in-memory SQLite database, which holds no data; point it at a database file"
        )
    if not path.is_file():
        raise ValidationError(f"connection {name!r}: there is no SQLite file at {path}; check MLOPS_SQL_CONNECTIONS")

    def connect():
        con = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True, check_same_thread=False)
        con.execute("PRAGMA query_only=ON")
        deadline = time.monotonic() + timeout
        # A non-zero return interrupts the running statement ("interrupted").
        con.set_progress_handler(lambda: int(time.monotonic() > deadline), _SQLITE_CHECK_EVERY)
        return con

    return create_engine("sqlite://", creator=connect, poolclass=NullPool)


def _postgres_source_engine(u, timeout: float):

    ms = max(1, int(timeout * 1000))
    # Server-side defaults too, so even a statement sent before our SETs is read-only and bounded.
    options = f"-c default_transaction_read_only=on -c statement_timeout={ms}"
    return create_engine(u, poolclass=NullPool, connect_args={"connect_timeout": 10, "options": options})


def _check_source_identity(name: str, u, conn, app_db) -> None:
    """At use: refuse the app's own database, whatever spelling the URL used; refuse file-reading roles."""

    if u.get_backend_name() == "sqlite":
        if app_db is not None and app_db.engine.dialect.name == "sqlite":
            src, app = _sqlite_file(u), _sqlite_file(app_db.engine.url)
            try:
                same = src is not None and app is not None and app.exists() and os.path.samefile(src, app)
            except OSError:
                same = False
            if same:
                raise _own_database_error(name)
        return
    # Postgres: the same server instance (its start time) and the same database name is the same database.
    ident = text("SELECT pg_postmaster_start_time()::text, current_database()")
    if app_db is not None and app_db.engine.dialect.name == "postgresql":
        with app_db.engine.connect() as app_conn:
            app_ident = tuple(app_conn.execute(ident).one())
        if tuple(conn.execute(ident).one()) == app_ident:
            raise _own_database_error(name)
    reads_files = conn.execute(
        text(
            "SELECT r.rolsuper OR pg_has_role(current_user, 'pg_read_server_files', 'MEMBER') "
            "OR pg_has_role(current_user, 'pg_execute_server_program', 'MEMBER') "
            "FROM pg_roles r WHERE r.rolname = current_user"
        )
    ).scalar()
    if reads_files:
        raise ValidationError(
            f"connection {name!r} logs in as a role that can read the database server's files (a superuser or a "
            "member of pg_read_server_files); give it a role that may only SELECT the tables it needs"
        )


def _query_error(name: str, exc: BaseException, timeout: float) -> ValidationError:
    orig = getattr(exc, "orig", None) or exc
    msg = str(orig).strip()
    state = getattr(orig, "sqlstate", None)
    if state == "57014" or msg == "interrupted" or "statement timeout" in msg:
        return ValidationError(
            f"the query on {name!r} ran longer than the {timeout:g} s limit (MLOPS_SQL_TIMEOUT_SECONDS) and was "
            "stopped; narrow it (fewer rows or columns, a WHERE on an indexed column) or ask an admin to raise the limit"
        )
    # Postgres reads through a server-side cursor, and DECLARE ... CURSOR FOR takes only a SELECT: a CTE
    # ending in a write fails there as a syntax error at its verb, before the read-only transaction is reached.
    writes_through_cursor = state == "42601" and re.search(r'at or near "(DELETE|UPDATE|INSERT|MERGE)"', msg, re.I)
    if state == "25006" or writes_through_cursor or "readonly database" in msg or "read-only" in msg:
        return ValidationError(
            f"the query on {name!r} tried to change data, and SQL sources are read-only; "
            "use a query that only reads (SELECT ...), nothing was changed"
        )
    first = msg.splitlines()[0] if msg else type(orig).__name__
    return ValidationError(f"the query failed on {name!r}: {first}")


_READ_ONLY_SQL = re.compile(r"^\s*(select|with)\b", re.IGNORECASE)


def query_to_parquet(
    connection: str, query: str, *, progress: Progress = _noop, chunk_rows: int = 50_000, app_db: Any = None
) -> "ConvertedData":
    """Run a read-only query on a named connection, streamed in chunks into canonical Parquet.

    `app_db` (MLOps Hub's own Database) lets the source be compared with it by identity at use.
    """

    import pandas as pd

    conns = sql_connections()
    if connection not in conns:
        known = ", ".join(sorted(conns)) or "none configured (set MLOPS_SQL_CONNECTIONS)"
        raise ValidationError(f"unknown SQL connection {connection!r}; known connections: {known}")
    # Only a first filter for a clear message: the database itself refuses writes (see above).
    if not query or not _READ_ONLY_SQL.match(query) or ";" in query.strip().rstrip(";"):
        raise ValidationError("give one read-only query starting with SELECT or WITH (no ';'-separated statements)")
    timeout = float(get_settings().sql_source_timeout_seconds)
    u = _parse_source_url(connection, conns[connection])
    is_pg = u.get_backend_name() == "postgresql"
    engine = _postgres_source_engine(u, timeout) if is_pg else _sqlite_source_engine(connection, u, timeout)
    deadline = time.monotonic() + timeout
    try:
        with engine.connect() as conn:
            try:
                _check_source_identity(connection, u, conn, app_db)
                if is_pg:
                    conn.exec_driver_sql("SET TRANSACTION READ ONLY")
                    conn.exec_driver_sql(f"SET LOCAL statement_timeout = {max(1, int(timeout * 1000))}")
                    # A server-side cursor: rows come in chunks instead of all at once into the driver.
                    conn = conn.execution_options(stream_results=True, max_row_buffer=chunk_rows)
                chunks = pd.read_sql_query(text(query.strip().rstrip(";")), conn, chunksize=chunk_rows)
            except ValidationError:
                raise
            except Exception as exc:  # noqa: BLE001 - any driver error becomes one sentence
                raise _query_error(connection, exc, timeout) from None

            def batches() -> Iterator[Any]:
                # pyarrow is heavy and not a client dependency: loaded only when a file is read or written
                import pyarrow as pa

                try:
                    for frame in chunks:
                        # statement_timeout bounds each FETCH of the cursor; this bounds the whole query.
                        if time.monotonic() > deadline:
                            raise _query_error(connection, TimeoutError("statement timeout"), timeout)
                        yield pa.Table.from_pandas(frame, preserve_index=False)
                except ValidationError:
                    raise
                except Exception as exc:  # noqa: BLE001
                    raise _query_error(connection, exc, timeout) from None

            return _write_canonical(batches(), progress=progress, total_bytes=None)
    finally:
        engine.dispose()


# --- format detection and conversion ---------------------------------------------------------


def sniff_format(path: Path, filename: str = "") -> str:
    """ "parquet" or "csv", from the bytes (the name alone is not trusted)."""
    size = path.stat().st_size
    if size == 0:
        raise ValidationError("the file is empty; choose a CSV with a header row and at least one data row")
    with path.open("rb") as f:
        head = f.read(4)
        tail = b""
        if size >= 8:
            f.seek(-4, os.SEEK_END)
            tail = f.read(4)
    is_parquet = head == PARQUET_MAGIC and tail == PARQUET_MAGIC
    named_parquet = Path(filename).suffix.lower() in (".parquet", ".pq")
    if named_parquet and not is_parquet:
        raise ValidationError(
            f"{filename or 'the file'} is named like a Parquet file but is not one (Parquet files start and end "
            "with 'PAR1'); export it again as Parquet, or upload it as .csv if it is text"
        )
    if is_parquet:
        return "parquet"
    return "csv"


@dataclass
class ConvertedData:
    """A canonical Parquet file in staging, with what registering it needs to know."""

    path: Path
    content_hash: str
    n_rows: int
    n_cols: int
    columns: list[dict[str, str]]
    size_bytes: int
    source_format: str = "csv"
    notes: list[str] = field(default_factory=list)

    def discard(self) -> None:
        self.path.unlink(missing_ok=True)


def column_type(arrow_type) -> str:
    """Our word for an Arrow type (the same words as a model's input_schema)."""
    # pyarrow is heavy and not a client dependency: loaded only when a file is read or written
    import pyarrow as pa
    import pyarrow.types as t

    if t.is_boolean(arrow_type):
        return "boolean"
    if t.is_integer(arrow_type):
        return "integer"
    if t.is_floating(arrow_type) or t.is_decimal(arrow_type):
        return "number"
    if t.is_timestamp(arrow_type) or t.is_date(arrow_type):
        return "datetime"
    if t.is_dictionary(arrow_type):
        return "category"
    if t.is_null(arrow_type):
        return "string"
    if arrow_type == pa.string() or arrow_type == pa.large_string():
        return "string"
    return "other"


def _canonical_type(arrow_type):
    """One Arrow type per kind, so the same values give the same bytes and hash however they arrived."""
    # pyarrow is heavy and not a client dependency: loaded only when a file is read or written
    import pyarrow as pa
    import pyarrow.types as t

    if t.is_boolean(arrow_type):
        return pa.bool_()
    if t.is_integer(arrow_type):
        return pa.int64()
    if t.is_floating(arrow_type) or t.is_decimal(arrow_type):
        return pa.float64()
    if t.is_timestamp(arrow_type):
        return pa.timestamp("us", tz=arrow_type.tz)
    if t.is_date(arrow_type):
        return pa.timestamp("us")
    if t.is_dictionary(arrow_type) or t.is_string(arrow_type) or t.is_large_string(arrow_type) or t.is_null(arrow_type):
        return pa.string()
    return None


def _canonical_schema(schema):
    # pyarrow is heavy and not a client dependency: loaded only when a file is read or written
    import pyarrow as pa

    names = [str(n).strip() for n in schema.names]
    check_columns(len(names))
    _check_names(names)
    fields = []
    for name, f in zip(names, schema):
        ct = _canonical_type(f.type)
        if ct is None:
            if pa.types.is_binary(f.type) or pa.types.is_large_binary(f.type):
                raise ValidationError(
                    f"column {name!r} holds bytes that are not UTF-8 text; save the file as UTF-8 "
                    "(in a spreadsheet: 'CSV UTF-8') and upload it again"
                )
            raise ValidationError(
                f"column {name!r} has type {f.type}, which MLOps Hub cannot store as a table column; "
                "flatten it to numbers or text first"
            )
        fields.append(pa.field(name, ct, nullable=True))
    return pa.schema(fields)


def _check_names(names: list[str]) -> None:
    empty = [i + 1 for i, n in enumerate(names) if not n]
    if empty:
        raise ValidationError(
            f"column{'s' if len(empty) > 1 else ''} {', '.join(map(str, empty))} of the header "
            "ha{} no name; give every column a name in the first row".format("ve" if len(empty) > 1 else "s")
        )
    seen: dict[str, int] = {}
    dupes = []
    for n in names:
        seen[n] = seen.get(n, 0) + 1
        if seen[n] == 2:
            dupes.append(n)
    if dupes:
        raise ValidationError(
            f"duplicate column names: {', '.join(repr(d) for d in dupes)}; each column needs its own name "
            "in the header row"
        )


_NULL_HASH = 0x9E3779B97F4A7C15
_MIX = 1_000_003


def _column_hashes(arr) -> "Any":
    """One uint64 per value of an Arrow array; nulls get one fixed hash whatever the column's type.

    Text is dictionary-encoded first, so each distinct string is hashed once (no Python object per row).
    """
    # numpy only when figures are computed, not at import
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc
    from pandas.util import hash_array

    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    t = arr.type
    n = len(arr)
    if pa.types.is_dictionary(t):
        arr = arr.cast(t.value_type)
        t = arr.type
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_null(t):
        if pa.types.is_null(t) or arr.null_count == n:
            return np.full(n, _NULL_HASH, dtype=np.uint64)
        enc = pc.dictionary_encode(arr)
        dict_hashes = hash_array(enc.dictionary.to_numpy(zero_copy_only=False).astype(object), categorize=False)
        h = dict_hashes[enc.indices.fill_null(0).to_numpy(zero_copy_only=False)]
    # fill_null only when there are nulls: it costs ~0.1 ms per call, seconds on a 5,000-column file.
    elif pa.types.is_boolean(t):
        h = hash_array(
            (arr.fill_null(False) if arr.null_count else arr).to_numpy(zero_copy_only=False).astype(np.uint8)
        )
    elif pa.types.is_timestamp(t) or pa.types.is_date(t):
        ints = arr.cast(pa.int64())
        h = hash_array((ints.fill_null(0) if ints.null_count else ints).to_numpy(zero_copy_only=False))
    else:
        h = hash_array((arr.fill_null(0) if arr.null_count else arr).to_numpy(zero_copy_only=False))
    h = np.asarray(h, dtype=np.uint64)
    if arr.null_count:
        h = h.copy()
        h[arr.is_null().to_numpy(zero_copy_only=False)] = _NULL_HASH
    return h


def row_hashes(table_or_batch) -> "Any":
    """One uint64 per row, independent of how the rows were chunked (and of nulls changing dtypes)."""
    # numpy only when figures are computed, not at import
    import numpy as np

    h = np.zeros(table_or_batch.num_rows, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for arr in table_or_batch.columns:
            h = (h * np.uint64(_MIX)) ^ _column_hashes(arr)
    return h


def _schema_fingerprint(schema) -> bytes:
    return json.dumps([[f.name, str(f.type)] for f in schema]).encode()


def _write_canonical(
    tables: Iterator[Any], *, progress: Progress, total_bytes: int | None, position: Callable[[], int] | None = None
) -> ConvertedData:
    """Write Arrow tables/batches to one canonical staging Parquet file, hashing as it goes."""
    # pyarrow is heavy and not a client dependency: loaded only when a file is read or written
    import pyarrow as pa
    import pyarrow.parquet as pq

    max_rows = int(get_settings().max_dataset_rows)
    # a row group is also bounded in bytes (wide files), so every later pass can read one whole
    group_bytes = max(1 << 20, int(get_settings().stream_memory_mb) * 1024 * 1024 // 16)
    dest = new_staging_path(".parquet")
    writer = None
    schema = None
    hasher = hashlib.sha256()
    n_rows = 0
    pending: list[Any] = []
    pending_rows = pending_bytes = 0
    try:
        for piece in tables:
            if isinstance(piece, pa.RecordBatch):
                piece = pa.Table.from_batches([piece])
            if schema is None:
                schema = _canonical_schema(piece.schema)
                hasher.update(_schema_fingerprint(schema))
                writer = pq.ParquetWriter(dest, schema, compression="zstd")
            else:
                names = [str(n).strip() for n in piece.schema.names]
                if names != schema.names:
                    raise ValidationError(
                        "the columns changed part-way through the data; every part must have the same header"
                    )
            piece = piece.rename_columns(schema.names)
            try:
                piece = piece.cast(schema)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                raise ValidationError(
                    f"a later part of the data does not fit the column types of the first: {exc}"
                ) from None
            if piece.num_rows:
                hasher.update(row_hashes(piece).tobytes())
                pending.append(piece)
                pending_rows += piece.num_rows
                pending_bytes += piece.nbytes
                if pending_rows >= ROW_GROUP_ROWS or pending_bytes >= group_bytes:
                    writer.write_table(pa.concat_tables(pending))
                    pending, pending_rows, pending_bytes = [], 0, 0
            n_rows += piece.num_rows
            if n_rows > max_rows:  # stopped as soon as it passes, before the next block is read
                raise _too_many_rows(max_rows)
            if total_bytes and position is not None:
                progress(min(0.99, position() / total_bytes), f"read {n_rows:,} rows")
            else:
                progress(0.5, f"read {n_rows:,} rows")
        if schema is None:
            raise ValidationError("there are no data rows; a file needs a header and at least one row below it")
        if n_rows == 0:
            raise ValidationError("the file has a header but no data rows; add at least one row below the header")
        if pending:
            writer.write_table(pa.concat_tables(pending))
            pending = []
        writer.close()
        writer = None
        columns = [{"name": f.name, "type": column_type(f.type)} for f in schema]
        return ConvertedData(
            path=dest,
            content_hash=hasher.hexdigest(),
            n_rows=n_rows,
            n_cols=len(schema),
            columns=columns,
            size_bytes=dest.stat().st_size,
        )
    except BaseException:
        if writer is not None:
            try:
                writer.close()
            except Exception:  # noqa: BLE001, S110 - the file is discarded anyway
                pass
        dest.unlink(missing_ok=True)
        raise


def _csv_header(path: Path) -> list[str]:
    """The header row, read on its own, to explain header problems in words."""
    with path.open("rb") as f:
        first = f.readline(1 << 20)
    if first.startswith(b"\xef\xbb\xbf"):
        first = first[3:]
    try:
        line = first.decode("utf-8")
    except UnicodeDecodeError:
        raise ValidationError(
            "the header row is not UTF-8 text; save the file as UTF-8 (in a spreadsheet: 'CSV UTF-8') and upload it again"
        ) from None
    # readline() splits on "\n" only: a file with old-Mac "\r" line ends comes back as several lines.
    lines = line.splitlines()
    line = lines[0] if lines else ""
    if not line.strip():
        raise ValidationError("the first line is blank; the first line must be the header with the column names")
    try:
        header = next(csv.reader([line]))
    except csv.Error as exc:
        raise ValidationError(
            f"the header row cannot be read as CSV ({exc}); check its quotes and save the file as comma-separated CSV"
        ) from None
    if len(header) == 1:
        for sep, label in ((";", "semicolons"), ("\t", "tabs"), ("|", "vertical bars")):
            if sep in header[0]:
                raise ValidationError(
                    f"the header has one column but contains {label}: the file seems to be separated by {label}, "
                    "not commas. Save it as comma-separated CSV and upload it again"
                )
    check_columns(len(header))
    _check_names([h.strip() for h in header])
    return header


def _explain_csv_error(exc: Exception, n_cols: int) -> ValidationError:
    msg = str(exc)
    m = re.search(r"Expected (\d+) columns, got (\d+): ?(.*)", msg)
    if m:
        row = m.group(3)[:80]
        return ValidationError(
            f"a row has {m.group(2)} fields but the header has {m.group(1)} (the row reads: {row!r}); "
            "make every row have the same number of fields, quoting values that contain commas"
        )
    if "UTF8" in msg or "UTF-8" in msg or "utf8" in msg:
        return ValidationError(
            "the file is not UTF-8 text; save it as UTF-8 (in a spreadsheet: 'CSV UTF-8') and upload it again"
        )
    return ValidationError(f"the CSV could not be read: {msg.splitlines()[0]}")


_CONV_ERROR = re.compile(r"In CSV column #(\d+): CSV conversion error to (\w+)")


def csv_to_parquet(path: Path, *, progress: Progress = _noop, block_size: int = CSV_BLOCK) -> ConvertedData:
    """Stream a CSV into canonical Parquet.

    Types are inferred from the first block; if a later block holds a value that does not fit
    (e.g. "n/a" in a column of numbers) the column is widened (integer -> number -> text) and the
    file read again, so a late odd value never makes a whole upload fail.
    """
    # pyarrow is heavy and not a client dependency: loaded only when a file is read or written
    import pyarrow as pa
    import pyarrow.csv as pacsv

    header = _csv_header(path)
    with path.open("rb") as f:
        f.readline()
        if not f.read(1 << 16).strip():
            raise ValidationError("the file has a header but no data rows; add at least one row below the header")
    total = path.stat().st_size
    column_types: dict[str, Any] = {}
    for _attempt in range(2 * len(header) + 1):
        reader = None
        try:
            raw = path.open("rb")
            try:
                reader = pacsv.open_csv(
                    raw,
                    read_options=pacsv.ReadOptions(block_size=block_size, use_threads=CSV_THREADS),
                    parse_options=pacsv.ParseOptions(newlines_in_values=False),
                    convert_options=pacsv.ConvertOptions(column_types=column_types, strings_can_be_null=False),
                )

                def batches():
                    while True:
                        try:
                            batch = reader.read_next_batch()
                        except StopIteration:
                            return
                        yield batch

                return _write_canonical(batches(), progress=progress, total_bytes=total, position=raw.tell)
            finally:
                raw.close()
        except pa.ArrowInvalid as exc:
            m = _CONV_ERROR.search(str(exc))
            if not m:
                if "Empty CSV file" in str(exc):
                    raise ValidationError(
                        "the file is empty; choose a CSV with a header row and at least one data row"
                    ) from None
                raise _explain_csv_error(exc, len(header)) from None
            idx, target = int(m.group(1)), m.group(2)
            name = header[idx].strip() if idx < len(header) else None
            if name is None:
                raise _explain_csv_error(exc, len(header)) from None
            widened = pa.float64() if target.startswith("int") else pa.string()
            if column_types.get(name) == pa.string():
                raise _explain_csv_error(exc, len(header)) from None
            column_types[name] = widened
            progress(0.0, f"column {name!r} holds mixed values; reading it as {column_type(widened)}")
    raise ValidationError("the CSV's column types could not be settled; check for mixed values in its columns")


def parquet_to_parquet(path: Path, *, progress: Progress = _noop, batch_rows: int = 65_536) -> ConvertedData:
    """Parquet -> canonical Parquet: the footer is checked against the limits first, then the rows are
    read in batches of `batch_rows` (a whole row group may hold millions of rows: never read one at once)."""
    # pyarrow is heavy and not a client dependency: loaded only when a file is read or written
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise ValidationError(
            f"the Parquet file could not be read ({str(exc).splitlines()[0]}); export it again"
        ) from None
    check_parquet_footer(pf)
    total = max(1, pf.metadata.num_rows)

    def tables():
        done = 0
        try:
            for batch in pf.iter_batches(batch_size=batch_rows, use_threads=False):
                done += batch.num_rows
                yield batch
                progress(min(1.0, done / total), f"read {done:,} of {total:,} rows")
        except (pa.ArrowInvalid, OSError) as exc:
            raise ValidationError(
                f"the Parquet file could not be read ({str(exc).splitlines()[0]}); export it again"
            ) from None
        if done == 0:
            yield pf.schema_arrow.empty_table()

    out = _write_canonical(tables(), progress=_noop, total_bytes=None)
    out.source_format = "parquet"
    return out


def convert_file(path: Path, filename: str = "", *, progress: Progress = _noop) -> ConvertedData:
    """Any supported file (CSV or Parquet, decided by its bytes) -> canonical staging Parquet."""
    fmt = sniff_format(path, filename)
    if fmt == "parquet":
        return parquet_to_parquet(path, progress=progress)
    return csv_to_parquet(path, progress=progress)


def frame_to_parquet(frame, *, progress: Progress = _noop, chunk_rows: int = 100_000) -> ConvertedData:
    """A pandas DataFrame (the SDK's input) -> canonical staging Parquet."""
    # pandas is heavy: loaded only when a frame is built
    import pandas as pd
    import pyarrow as pa

    if not isinstance(frame, pd.DataFrame):
        raise ValidationError(f"expected a pandas DataFrame, got {type(frame).__name__}")
    names = [str(c).strip() for c in frame.columns]
    check_columns(len(names))
    _check_names(names)
    if len(frame.columns) == 0:
        raise ValidationError("the DataFrame has no columns")
    if len(frame) == 0:
        raise ValidationError("the DataFrame has no rows; register data with at least one row")

    def tables():
        for start in range(0, len(frame), chunk_rows):
            part = frame.iloc[start : start + chunk_rows]
            try:
                yield pa.Table.from_pandas(part, preserve_index=False)
            except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
                raise ValidationError(f"a column mixes kinds of values ({exc}); make each column one type") from None

    out = _write_canonical(tables(), progress=progress, total_bytes=None)
    out.source_format = "dataframe"
    return out


# --- reading stored versions ----------------------------------------------------------------


def iter_batches(path: Path, batch_size: int = 65_536, columns: list[str] | None = None) -> Iterator[Any]:
    # pyarrow is heavy and not a client dependency: loaded only when a file is read or written
    import pyarrow.parquet as pq

    pf = pq.ParquetFile(path)
    yield from pf.iter_batches(batch_size=batch_size, columns=columns)


def read_frame(path: Path, columns: list[str] | None = None):
    # pyarrow is heavy and not a client dependency: loaded only when a file is read or written
    import pyarrow.parquet as pq

    return pq.read_table(path, columns=columns).to_pandas()


# --- exports --------------------------------------------------------------------------------


def neutralise_cell(value: Any) -> Any:
    """Text starting with = + - @ (or a tab/CR) could run as a spreadsheet formula: prefix a quote.

    Numbers are left alone (-5 is a number, not a formula).
    """
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def to_safe_csv(frame, *, header: bool = True) -> bytes:
    """CSV bytes of `frame` that are safe to open in a spreadsheet (OWASP CSV injection advice).
    `header=False`: the rows only (a later part of a file written in parts, e.g. streamed batch scoring)."""
    out = frame.copy()
    for col in out.columns:
        if out[col].dtype == object or str(out[col].dtype) in ("string", "str"):
            out[col] = out[col].map(neutralise_cell)
    # The header row is a row of cells too: a column named "=HYPERLINK(...)" runs like any other cell.
    out.columns = [neutralise_cell(str(c)) for c in out.columns]
    buf = io.StringIO()
    # CRLF line ends (RFC 4180) make the writer quote any field holding a CR or LF; with "\n" a bare CR
    # was written unquoted and split the row in a spreadsheet.
    out.to_csv(buf, index=False, header=header, lineterminator="\r\n")
    return buf.getvalue().encode("utf-8")
