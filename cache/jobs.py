"""The job table: long runs started from the dashboard, with their status and progress, in the result store's file.

Generic like the rest of `cache/`: a job has a kind label (the probe), a model label, a JSON config, a status, a
progress fraction and message, the run ids it stored and, for runs that record a history as they go (a training
curve), numbered JSON records. What a job computes and who runs it is the wiring layer's business
(probes/jobs.py); this module only stores what it is told, each change in one transaction.

Statuses: queued -> running -> done | failed | cancelled. A job is active while queued or running.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

import pandas as pd

from cache.store import ResultStore, StoreError

QUEUED, RUNNING, DONE, FAILED, CANCELLED = "queued", "running", "done", "failed", "cancelled"
ACTIVE = (QUEUED, RUNNING)
FINISHED = (DONE, FAILED, CANCELLED)

JOBS_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    job_id VARCHAR PRIMARY KEY,
    job_key VARCHAR NOT NULL,
    probe VARCHAR NOT NULL,
    model VARCHAR,
    title VARCHAR NOT NULL,
    config_json VARCHAR NOT NULL,
    status VARCHAR NOT NULL,
    progress DOUBLE NOT NULL,
    message VARCHAR,
    created_at TIMESTAMP NOT NULL,
    started_at TIMESTAMP,
    finished_at TIMESTAMP,
    error VARCHAR,
    run_id VARCHAR,
    run_ids_json VARCHAR NOT NULL,
    worker VARCHAR,
    cancel_requested BOOLEAN NOT NULL
);
CREATE TABLE IF NOT EXISTS job_records (
    job_id VARCHAR NOT NULL,
    seq INTEGER NOT NULL,
    record_json VARCHAR NOT NULL,
    PRIMARY KEY (job_id, seq)
);
"""
COLUMNS = (
    "job_id, job_key, probe, model, title, config_json, status, progress, message, created_at, started_at, "
    "finished_at, error, run_id, run_ids_json, worker, cancel_requested"
)


@dataclass(frozen=True)
class Job:
    job_id: str
    job_key: str  # what the job computes (the same key: the same work), so a second start joins the first
    probe: str
    model: str | None
    title: str
    config: dict
    status: str
    progress: float  # 0..1
    message: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    error: str | None
    run_id: str | None  # the job's main stored run (the last one it stored)
    run_ids: tuple[str, ...]  # every run it stored, in order
    worker: str | None  # who runs it, e.g. "pid 1234 on host (started 1717...)"; the wiring layer's format
    cancel_requested: bool

    @property
    def active(self) -> bool:
        return self.status in ACTIVE

    @classmethod
    def from_row(cls, row: tuple) -> Job:
        (job_id, job_key, probe, model, title, config_json, status, progress, message, created_at, started_at,
         finished_at, error, run_id, run_ids_json, worker, cancel_requested) = row  # fmt: skip
        return cls(job_id, job_key, probe, model, title, json.loads(config_json), status, float(progress), message,
                   created_at, started_at, finished_at, error, run_id, tuple(json.loads(run_ids_json)), worker,
                   bool(cancel_requested))  # fmt: skip


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


class JobStore:
    """Jobs in a `ResultStore`'s database file (same retries and locking rules)."""

    def __init__(self, store: ResultStore):
        self.store = store
        store.ensure_schema(JOBS_SCHEMA)  # once per store: pages build a JobStore on every poll

    def _one(self, query: str, params: list) -> Job | None:
        row = self.store.transact(lambda con: con.execute(query, params).fetchone())
        return None if row is None else Job.from_row(row)

    def get(self, job_id: str) -> Job | None:
        return self._one(f"SELECT {COLUMNS} FROM jobs WHERE job_id = ?", [job_id])

    def require(self, job_id: str) -> Job:
        job = self.get(job_id)
        if job is None:
            raise StoreError(f"No job {job_id!r} in {self.store.path}.")
        return job

    def active_for(self, job_key: str) -> Job | None:
        """The queued or running job doing this work, if any."""
        return self._one(
            f"SELECT {COLUMNS} FROM jobs WHERE job_key = ? AND status IN ('queued', 'running') "
            "ORDER BY created_at DESC LIMIT 1",
            [job_key],
        )

    def latest_for(self, job_key: str) -> Job | None:
        """The newest job doing this work, whatever its status."""
        return self._one(f"SELECT {COLUMNS} FROM jobs WHERE job_key = ? ORDER BY created_at DESC LIMIT 1", [job_key])

    def list(self, limit: int = 50, statuses: Iterable[str] | None = None) -> list[Job]:
        """Newest first."""
        wanted = list(statuses) if statuses is not None else None
        query = f"SELECT {COLUMNS} FROM jobs"
        params: list = []
        if wanted is not None:
            query += f" WHERE status IN ({', '.join('?' for _ in wanted)})" if wanted else " WHERE false"
            params = wanted
        query += " ORDER BY created_at DESC LIMIT ?"
        rows = self.store.transact(lambda con: con.execute(query, [*params, int(limit)]).fetchall())
        return [Job.from_row(row) for row in rows]

    def frame(self, limit: int = 50) -> pd.DataFrame:
        """The newest jobs as a table for display (no configs)."""
        rows = [
            {"job": job.job_id[:8], "status": job.status, "progress": job.progress, "title": job.title,
             "model": job.model or "", "message": job.error or job.message or "", "started": job.started_at,
             "finished": job.finished_at, "run": (job.run_id or "")[:12]}
            for job in self.list(limit)
        ]  # fmt: skip
        return pd.DataFrame(rows)

    # --- changes -------------------------------------------------------------------------------------------

    def create(self, job_id: str, job_key: str, probe: str, model: str | None, title: str, config: dict) -> Job:
        def insert(con):
            con.execute(
                f"INSERT INTO jobs ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, 0.0, 'waiting for a worker', ?, NULL, "
                "NULL, NULL, NULL, '[]', NULL, false)",
                [job_id, job_key, probe, model, title, json.dumps(config, sort_keys=True, default=str), QUEUED,
                 _now()],
            )  # fmt: skip

        self.store.transact(insert)
        return self.require(job_id)

    def _update(self, job_id: str, assignments: str, params: list, only_active: bool = True) -> bool:
        """Apply `assignments` to the job (only while it is active, unless told otherwise); True if it changed."""
        guard = " AND status IN ('queued', 'running')" if only_active else ""

        def update(con):
            changed = con.execute(f"UPDATE jobs SET {assignments} WHERE job_id = ?{guard}", [*params, job_id])
            return changed.fetchone()[0] > 0

        return bool(self.store.transact(update))

    def set_worker(self, job_id: str, worker: str) -> None:
        self._update(job_id, "worker = ?", [worker])

    def start(self, job_id: str, worker: str) -> bool:
        return self._update(job_id, "status = 'running', started_at = ?, worker = ?, message = 'started'",
                            [_now(), worker])  # fmt: skip

    def report(self, job_id: str, progress: float, message: str, run_ids: Iterable[str] | None = None) -> bool:
        """Record progress; returns True when a cancel was asked for (the worker then stops)."""
        fraction = max(0.0, min(1.0, float(progress)))
        assignments, params = "progress = ?, message = ?", [fraction, message[:500]]
        if run_ids is not None:
            ids = list(run_ids)
            assignments += ", run_ids_json = ?, run_id = ?"
            params += [json.dumps(ids), ids[-1] if ids else None]

        def write(con):
            con.execute(f"UPDATE jobs SET {assignments} WHERE job_id = ?", [*params, job_id])
            row = con.execute("SELECT cancel_requested FROM jobs WHERE job_id = ?", [job_id]).fetchone()
            return bool(row and row[0])

        return bool(self.store.transact(write))

    def append_records(self, job_id: str, records: list[dict]) -> None:
        """Add history records (numbered on from the last one stored)."""
        if not records:
            return

        def write(con):
            last = con.execute("SELECT coalesce(max(seq), -1) FROM job_records WHERE job_id = ?", [job_id]).fetchone()
            rows = [[job_id, last[0] + 1 + n, json.dumps(record, default=float)] for n, record in enumerate(records)]
            con.executemany("INSERT INTO job_records VALUES (?, ?, ?)", rows)

        self.store.transact(write)

    def records(self, job_id: str) -> list[dict]:
        rows = self.store.transact(
            lambda con: con.execute(
                "SELECT record_json FROM job_records WHERE job_id = ? ORDER BY seq", [job_id]
            ).fetchall()
        )
        return [json.loads(row[0]) for row in rows]

    def finish(self, job_id: str, run_ids: list[str], message: str = "finished") -> bool:
        """End an active job as done. Its history records go: its stored runs hold what they recorded (a failed or
        cancelled job keeps them, as the only trace of how far it got)."""

        def write(con):
            changed = con.execute(
                "UPDATE jobs SET status = 'done', progress = 1.0, message = ?, finished_at = ?, run_ids_json = ?, "
                "run_id = ? WHERE job_id = ? AND status IN ('queued', 'running')",
                [message, _now(), json.dumps(run_ids), run_ids[-1] if run_ids else None, job_id],
            ).fetchone()[0]
            if changed:
                con.execute("DELETE FROM job_records WHERE job_id = ?", [job_id])
            return changed > 0

        return bool(self.store.transact(write))

    def fail(self, job_id: str, error: str, status: str = FAILED) -> bool:
        """End an active job as failed (or cancelled) with the reason; a finished job is left as it is."""
        if status not in (FAILED, CANCELLED):
            raise ValueError(f"A job ends as failed or cancelled, not {status!r}.")
        return self._update(job_id, "status = ?, error = ?, finished_at = ?", [status, error[:2000], _now()])

    def request_cancel(self, job_id: str) -> bool:
        return self._update(job_id, "cancel_requested = true", [])

    def mark_dead(self, is_alive: Callable[[Job], bool], reason: Callable[[Job], str]) -> list[Job]:
        """End every active job whose worker `is_alive` says is gone: cancelled when a cancel was asked for, else
        failed with `reason(job)`. Returns the jobs it ended."""
        ended = []
        for job in self.list(limit=1_000, statuses=ACTIVE):
            if is_alive(job):
                continue
            status = CANCELLED if job.cancel_requested else FAILED
            why = "cancelled (its worker stopped)" if job.cancel_requested else reason(job)
            if self.fail(job.job_id, why, status):
                ended.append(job)
        return ended
