"""DuckDB result store: content-addressed runs with tables stored as Parquet bytes, never pickle.

Concurrency choice: no connection is held between calls. Every read or write opens a short-lived connection,
does its work in one transaction, and closes it, so a CLI process can write while the dashboard reads (DuckDB
lets one process hold the file at a time). A call that finds the file locked by another process, or whose
transaction conflicts with another thread's, retries with backoff for up to `lock_timeout_s`.

Serving: a store remembers the last few runs it loaded, each with the inode, size and times of the database
file and its WAL at the time of reading. A later load of the same run is served from memory only while both files
are unchanged (any commit by any process changes them), so a page that re-renders does not reopen the database.
"""

from __future__ import annotations

import io
import json
import os
import random
import threading
import time
import zipfile
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pandas as pd

from cache.keys import RunKey, library_versions

DEFAULT_DB_PATH = Path(__file__).resolve().parent.parent / ".assoclens" / "results.duckdb"
DB_PATH_ENV = "ASSOCLENS_DB"
EXPORT_FORMATS = ("csv", "parquet")
CSV_FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
SERVED_MEMO_SIZE = 32  # runs remembered per store (payloads are usually kilobytes)

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id VARCHAR PRIMARY KEY,
    probe VARCHAR NOT NULL,
    probe_version VARCHAR NOT NULL,
    model_id VARCHAR NOT NULL,
    revision VARCHAR,
    config_json VARCHAR NOT NULL,
    input_digest VARCHAR,
    key_json VARCHAR NOT NULL,
    summary_json VARCHAR NOT NULL,
    created_at TIMESTAMP NOT NULL,
    duration_s DOUBLE NOT NULL,
    device VARCHAR,
    dtype VARCHAR,
    seed BIGINT,
    library_versions_json VARCHAR NOT NULL
);
CREATE TABLE IF NOT EXISTS run_tables (
    run_id VARCHAR NOT NULL,
    name VARCHAR NOT NULL,
    position INTEGER NOT NULL,
    parquet BLOB NOT NULL,
    PRIMARY KEY (run_id, name)
);
CREATE TABLE IF NOT EXISTS run_files (
    run_id VARCHAR NOT NULL,
    name VARCHAR NOT NULL,
    content BLOB NOT NULL,
    PRIMARY KEY (run_id, name)
);
"""


class StoreError(RuntimeError):
    """The store could not be used (locked for too long, unwritable path, unknown run)."""


class DamagedStoreError(StoreError):
    """The database file is not a readable DuckDB database (corrupt, truncated, not ours)."""


@dataclass
class Payload:
    """What a computation hands the store: named tables, a JSON-able summary, optional binary files."""

    tables: dict[str, pd.DataFrame]
    summary: dict = field(default_factory=dict)
    files: dict[str, bytes] = field(default_factory=dict)  # e.g. safetensors bytes; never pickles
    device: str | None = None
    dtype: str | None = None


def payload_from(result: object, device: str | None = None, dtype: str | None = None) -> Payload:
    """Wrap a probe result (anything with `to_tables()`, `summary()` and optionally `files()`) as a Payload."""
    files = result.files() if hasattr(result, "files") else {}
    return Payload(tables=result.to_tables(), summary=result.summary(), files=files, device=device, dtype=dtype)


@dataclass
class StoredRun:
    run_id: str
    probe: str
    probe_version: str
    model_id: str
    revision: str | None
    config: dict
    input_digest: str | None
    summary: dict
    created_at: datetime
    duration_s: float
    device: str | None
    dtype: str | None
    seed: int | None
    library_versions: dict
    tables: dict[str, pd.DataFrame]
    files: dict[str, bytes]
    cached: bool = False  # True when served from the store rather than computed by this call

    def provenance(self) -> dict:
        return {
            "run_id": self.run_id,
            "probe": self.probe,
            "probe_version": self.probe_version,
            "model_id": self.model_id,
            "revision": self.revision,
            "config": self.config,
            "input_digest": self.input_digest,
            "created_at": self.created_at.isoformat(),
            "duration_s": self.duration_s,
            "device": self.device,
            "dtype": self.dtype,
            "seed": self.seed,
            "library_versions": self.library_versions,
        }


def _to_parquet(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return buffer.getvalue()


def _from_parquet(blob: bytes) -> pd.DataFrame:
    return pd.read_parquet(io.BytesIO(blob))


def _is_retryable(error: Exception) -> bool:
    """Locks held by another process, and write-write conflicts between transactions (incl. the same new key)."""
    text = str(error).lower()
    return "lock" in text or "conflict" in text or "being used by another process" in text or "duplicate key" in text


class ResultStore:
    """Runs keyed by `RunKey.run_id()`; see the module docstring for the concurrency rules."""

    def __init__(self, path: Path | str | None = None, lock_timeout_s: float = 30.0):
        self.path = Path(path or os.environ.get(DB_PATH_ENV) or DEFAULT_DB_PATH).expanduser()
        self.lock_timeout_s = lock_timeout_s
        self.notice: str | None = None  # set when a corrupt file was moved aside on opening
        self._schema_lock = threading.Lock()
        self._extra_schemas: set[str] = set()  # DDL of other tables already run on this file (`ensure_schema`)
        self._served: OrderedDict[str, tuple[tuple, StoredRun]] = OrderedDict()  # run_id -> (file signature, run)
        self._served_lock = threading.Lock()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._open_or_recover()

    def _open_or_recover(self) -> None:
        with self._schema_lock:
            try:
                self._with_connection(lambda con: con.execute(SCHEMA))
            except DamagedStoreError:
                aside = self.path.with_name(f"{self.path.name}.corrupt-{int(time.time())}")
                self.path.rename(aside)
                wal = self.path.with_name(self.path.name + ".wal")
                if wal.exists():
                    wal.rename(aside.with_name(aside.name + ".wal"))
                self._forget()
                self.notice = f"The result database was unreadable; it was moved to {aside} and a fresh one started."
                self._with_connection(lambda con: con.execute(SCHEMA))

    def ensure_schema(self, ddl: str) -> None:
        """Create other tables of this file (`CREATE TABLE IF NOT EXISTS ...`), once per store object."""
        with self._schema_lock:
            if ddl in self._extra_schemas:
                return
            self._with_connection(lambda con: con.execute(ddl))
            self._extra_schemas.add(ddl)

    def transact(self, work: Callable[[duckdb.DuckDBPyConnection], object]):
        """Run `work(connection)` in one transaction of this store's file, with the store's retry rules (other
        tables of the same file, such as the job table of cache/jobs.py, use this)."""
        return self._with_connection(work)

    def _with_connection(self, work: Callable[[duckdb.DuckDBPyConnection], object]):
        """Run `work` on a fresh connection inside one transaction, retrying on locks and conflicts.

        DuckDB errors never leave this method raw: a lock that outlasts `lock_timeout_s` becomes a StoreError,
        anything else (a damaged or truncated file) a DamagedStoreError naming the file.
        """
        deadline = time.monotonic() + self.lock_timeout_s
        delay = 0.02
        while True:
            try:
                con = duckdb.connect(str(self.path))
                try:
                    con.execute("BEGIN TRANSACTION")
                    result = work(con)
                    con.execute("COMMIT")
                    return result
                except BaseException:
                    _rollback_quietly(con)
                    raise
                finally:
                    con.close()
            except duckdb.Error as error:
                if not _is_retryable(error):
                    raise DamagedStoreError(
                        f"The result database {self.path} is damaged or unreadable "
                        f"({_first_line(error)}); delete it or set {DB_PATH_ENV} to start a fresh one."
                    ) from error
                if time.monotonic() >= deadline:
                    raise StoreError(
                        f"The result database {self.path} stayed locked by another process for "
                        f"{self.lock_timeout_s:.0f} s; try again when the other run has finished."
                    ) from None
                time.sleep(delay + random.uniform(0, delay))
                delay = min(delay * 2, 0.5)

    # --- reading -----------------------------------------------------------------------------------------

    def get(self, key: RunKey) -> StoredRun | None:
        return self.load(key.run_id(), missing_ok=True)

    def load(self, run_id: str, missing_ok: bool = False) -> StoredRun | None:
        signature = self._file_signature()
        with self._served_lock:
            remembered = self._served.get(run_id)
        if remembered is not None and remembered[0] == signature:
            return _copy_of(remembered[1])
        run = self._read(run_id, missing_ok)
        if run is not None and self._file_signature() == signature:  # nothing committed while we read
            with self._served_lock:
                self._served[run_id] = (signature, _copy_of(run))
                self._served.move_to_end(run_id)
                while len(self._served) > SERVED_MEMO_SIZE:
                    self._served.popitem(last=False)
        return run

    def _file_signature(self) -> tuple:
        """Size and mtime of the database file and its WAL: every commit, from any process, changes one of them."""
        signature = []
        for path in (self.path, self.path.with_name(self.path.name + ".wal")):
            try:
                status = path.stat()
                signature.append((status.st_ino, status.st_size, status.st_mtime_ns, status.st_ctime_ns))
            except FileNotFoundError:
                signature.append(None)
        return tuple(signature)

    def _forget(self, run_id: str | None = None) -> None:
        with self._served_lock:
            if run_id is None:
                self._served.clear()
            else:
                self._served.pop(run_id, None)

    def _read(self, run_id: str, missing_ok: bool) -> StoredRun | None:
        def read(con):
            row = con.execute("SELECT * FROM runs WHERE run_id = ?", [run_id]).fetchone()
            if row is None:
                return None
            columns = [d[0] for d in con.description]
            tables = con.execute(
                "SELECT name, parquet FROM run_tables WHERE run_id = ? ORDER BY position", [run_id]
            ).fetchall()
            files = con.execute("SELECT name, content FROM run_files WHERE run_id = ?", [run_id]).fetchall()
            return dict(zip(columns, row, strict=True)), tables, files

        found = self._with_connection(read)
        if found is None:
            if missing_ok:
                return None
            raise StoreError(f"No run with id {run_id!r} in {self.path}.")
        row, tables, files = found
        return StoredRun(
            run_id=row["run_id"],
            probe=row["probe"],
            probe_version=row["probe_version"],
            model_id=row["model_id"],
            revision=row["revision"],
            config=json.loads(row["config_json"]),
            input_digest=row["input_digest"],
            summary=json.loads(row["summary_json"]),
            created_at=row["created_at"],
            duration_s=row["duration_s"],
            device=row["device"],
            dtype=row["dtype"],
            seed=row["seed"],
            library_versions=json.loads(row["library_versions_json"]),
            tables={name: _from_parquet(blob) for name, blob in tables},
            files={name: bytes(content) for name, content in files},
            cached=True,
        )

    def list_runs(self, probe: str | None = None, model_id: str | None = None) -> pd.DataFrame:
        """One row per run, newest first, without the payloads."""
        query = (
            "SELECT run_id, probe, probe_version, model_id, revision, created_at, duration_s, device, dtype, seed,"
            " config_json FROM runs WHERE (? IS NULL OR probe = ?) AND (? IS NULL OR model_id = ?)"
            " ORDER BY created_at DESC"
        )
        return self._with_connection(lambda con: con.execute(query, [probe, probe, model_id, model_id]).df())

    # --- writing -----------------------------------------------------------------------------------------

    def put(self, key: RunKey, payload: Payload, duration_s: float) -> StoredRun:
        """Store a run atomically: the run row, its tables and files commit together or not at all."""
        run_id = key.run_id()
        blobs = [(name, position, _to_parquet(frame)) for position, (name, frame) in enumerate(payload.tables.items())]
        created_at = datetime.now(UTC).replace(tzinfo=None)
        versions = library_versions()
        seed = key.config.get("seed") if isinstance(key.config.get("seed"), int) else None

        def write(con):
            for table in ("run_tables", "run_files", "runs"):
                con.execute(f"DELETE FROM {table} WHERE run_id = ?", [run_id])
            con.execute(
                "INSERT INTO runs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    run_id, key.probe, key.probe_version, key.model_id, key.revision,
                    json.dumps(key.config, sort_keys=True), key.input_digest, key.canonical_json(),
                    json.dumps(payload.summary, sort_keys=True), created_at, duration_s,
                    payload.device, payload.dtype, seed, json.dumps(versions, sort_keys=True),
                ],
            )  # fmt: skip
            for name, position, blob in blobs:
                con.execute("INSERT INTO run_tables VALUES (?, ?, ?, ?)", [run_id, name, position, blob])
            for name, content in payload.files.items():
                con.execute("INSERT INTO run_files VALUES (?, ?, ?)", [run_id, name, content])

        self._forget(run_id)
        self._with_connection(write)
        stored = self.load(run_id)
        stored.cached = False
        return stored

    def get_or_compute(self, key: RunKey, compute: Callable[[], Payload]) -> StoredRun:
        """Serve the run for `key` from the store, or compute, store and return it."""
        found = self.get(key)
        if found is not None:
            return found
        started = time.perf_counter()
        payload = compute()
        return self.put(key, payload, duration_s=time.perf_counter() - started)

    def delete(self, run_id: str) -> bool:
        def remove(con):
            existed = con.execute("SELECT count(*) FROM runs WHERE run_id = ?", [run_id]).fetchone()[0] > 0
            for table in ("run_tables", "run_files", "runs"):
                con.execute(f"DELETE FROM {table} WHERE run_id = ?", [run_id])
            return existed

        self._forget(run_id)
        return self._with_connection(remove)

    # --- export ------------------------------------------------------------------------------------------

    def export(self, run_id: str, fmt: str, out: Path | str) -> list[Path]:
        """Write each table of a run as `<out>/<table>.<fmt>` plus `run.json` (summary and provenance)."""
        if fmt not in EXPORT_FORMATS:
            raise StoreError(f"Unknown export format {fmt!r}; choose csv or parquet.")
        run = self.load(run_id)
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        written = []
        for name, content in export_files(run, fmt).items():
            path = out / name
            path.write_bytes(content)
            written.append(path)
        return written

    def export_zip(self, run_id: str, fmt: str) -> bytes:
        """The same files as `export`, zipped in memory (for a download button)."""
        run = self.load(run_id)
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for name, content in export_files(run, fmt).items():
                archive.writestr(name, content)
        return buffer.getvalue()


def _copy_of(run: StoredRun) -> StoredRun:
    """A copy whose tables the caller may change without touching the remembered run."""
    return replace(run, tables={name: frame.copy() for name, frame in run.tables.items()}, files=dict(run.files))


def _first_line(error: BaseException) -> str:
    return " ".join(str(error).split())[:200]


def _rollback_quietly(con: duckdb.DuckDBPyConnection) -> None:
    try:
        con.execute("ROLLBACK")
    except duckdb.Error:
        pass  # nothing was open, or the connection is already unusable: either way nothing was committed


def neutralise_formulas(frame: pd.DataFrame) -> pd.DataFrame:
    """Prefix text cells that a spreadsheet would run as a formula (CSV injection) with a quote."""
    safe = frame.copy()
    for column in safe.columns:
        if safe[column].dtype == object or pd.api.types.is_string_dtype(safe[column]):
            safe[column] = safe[column].map(
                lambda cell: "'" + cell if isinstance(cell, str) and cell.startswith(CSV_FORMULA_PREFIXES) else cell
            )
    return safe


def export_files(run: StoredRun, fmt: str) -> dict[str, bytes]:
    files = {"run.json": json.dumps({"summary": run.summary, "provenance": run.provenance()}, indent=2).encode()}
    for name, frame in run.tables.items():
        if fmt == "csv":
            files[f"{name}.csv"] = neutralise_formulas(frame).to_csv(index=False).encode()
        else:
            files[f"{name}.parquet"] = _to_parquet(frame)
    for name, content in run.files.items():
        files[name] = content
    return files
