"""Background jobs (probes/jobs.py): a worker process runs a plan and records its life in the job table; the same
work joins the running job; cancel, a killed worker and an app restart each end the job with a reason and leave
nothing half-written; a sweep job stores each run as it finishes; a Ray job stores the same runs as a local one."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from cache import ResultStore
from cache.jobs import CANCELLED, DONE, FAILED, JobStore
from probes import jobs, wiring
from probes.executors import ExecutorError
from probes.induction import emergence, scores
from probes.models import EMBEDDED_MODEL_DIR, EMBEDDED_MODEL_NAME, ModelSpec, local_revisions
from probes.wiring import Request

LONG_STEPS = 50_000  # minutes of training: a job that is certainly still running when the test acts on it
WAIT_S = 180.0


def training(steps: int = 40, record_every: int = 10) -> Request:
    return Request(emergence.NAME, emergence.TrainConfig(steps=steps, record_every=record_every))


def plan_of(*requests: Request, ray_address: str | None = None) -> jobs.JobPlan:
    return jobs.JobPlan("test job", tuple(requests), ray_address=ray_address)


@pytest.fixture
def store(tmp_path: Path) -> ResultStore:
    return ResultStore(tmp_path / "results.duckdb")


def wait_for(store: ResultStore, job_id: str, done, timeout_s: float = WAIT_S):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        job = JobStore(store).require(job_id)
        if done(job):
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id[:8]} did not get there in {timeout_s} s: {JobStore(store).require(job_id)}")


def worker_pid(job) -> int:
    return int(job.worker.split(":")[-2])


def test_an_inline_job_stores_the_run_and_records_its_history(store, monkeypatch) -> None:
    written: list[dict] = []
    append = JobStore.append_records

    def spy(self, job_id: str, records: list[dict]) -> None:
        written.extend(records)
        append(self, job_id, records)

    monkeypatch.setattr(JobStore, "append_records", spy)
    request = training()
    job = jobs.submit(store, plan_of(request), runner="inline")
    assert job.status == DONE and job.progress == 1.0 and job.finished_at is not None
    assert job.run_id == request.key().run_id() and job.run_ids == (job.run_id,)
    stored = store.load(job.run_id)
    assert len(written) == 40 // 10 + 1 == len(stored.tables["history"])  # every record, in order
    assert [record["step"] for record in written] == sorted(stored.tables["history"]["step"])
    assert JobStore(store).records(job.job_id) == []  # dropped once done: the stored run holds the history


def test_a_worker_process_runs_the_job_and_the_same_work_joins_it(store) -> None:
    plan = plan_of(training(steps=200))
    job = jobs.submit(store, plan, runner="process")
    assert worker_pid(job) != os.getpid()
    assert jobs.submit(store, plan, runner="process").job_id == job.job_id  # a second start joins the running job
    running = wait_for(store, job.job_id, lambda j: j.progress > 0 or not j.active)
    assert running.started_at is not None
    finished = wait_for(store, job.job_id, lambda j: not j.active)
    assert finished.status == DONE, finished.error
    assert len(store.load(finished.run_id).tables["history"]) == 200 // 10 + 1


def start_long_job(store: ResultStore):
    job = jobs.submit(store, plan_of(training(steps=LONG_STEPS, record_every=10)), runner="process")
    return wait_for(store, job.job_id, lambda j: j.progress > 0)


def test_a_killed_worker_ends_its_job_as_failed_and_stores_nothing(store) -> None:
    job = start_long_job(store)
    assert JobStore(store).records(job.job_id)  # the history so far is readable mid-run
    os.kill(worker_pid(job), signal.SIGKILL)
    deadline = time.monotonic() + 30
    while jobs.worker_alive(job) and time.monotonic() < deadline:
        time.sleep(0.1)
    ended = jobs.reconcile(store)
    assert [j.job_id for j in ended] == [job.job_id]
    after = JobStore(store).require(job.job_id)
    assert after.status == FAILED and f"pid {worker_pid(job)}" in after.error and "killed" in after.error
    assert store.list_runs().empty  # nothing half-written
    assert jobs.reconcile(store) == []  # ended once


def test_cancel_stops_the_worker_and_stores_nothing(store) -> None:
    job = start_long_job(store)
    jobs.cancel(store, job.job_id)
    after = wait_for(store, job.job_id, lambda j: not j.active, timeout_s=60)
    assert after.status == CANCELLED and "cancelled by the user" in after.error
    assert store.list_runs().empty


def job_of_a_dead_worker(table: JobStore, job_id: str, probe: str = "probe", title: str = "dead worker") -> int:
    """A running job whose worker process has exited (as after a kill or an app restart); returns its pid."""
    gone = subprocess.Popen(["true"])
    gone.wait()
    table.create(job_id, f"key-{job_id}", probe, None, title, {})
    table.start(job_id, f"{socket.gethostname()}:{gone.pid}:1")
    return gone.pid


def test_restarting_ends_the_jobs_of_dead_workers_only(store) -> None:
    table = JobStore(store)
    job_of_a_dead_worker(table, "dead")
    table.create("alive", "k2", "probe", None, "live worker", {})
    table.start("alive", jobs.worker_label(os.getpid()))
    table.create("fresh", "k3", "probe", None, "just queued", {})  # no worker yet, but just created
    ended = jobs.reconcile(store)
    assert [job.job_id for job in ended] == ["dead"]
    assert table.require("dead").status == FAILED and "restarted" in table.require("dead").error
    assert table.require("alive").active and table.require("fresh").active


def test_a_reused_pid_is_not_taken_for_the_worker(store) -> None:
    table = JobStore(store)
    table.create("old", "k", "probe", None, "worker before a reboot", {})
    host, pid, start = jobs.worker_label(os.getpid()).split(":")
    table.start("old", f"{host}:{pid}:{int(start) + 1}")  # same pid, another process start
    assert [job.job_id for job in jobs.reconcile(store)] == ["old"]


def organism_scans() -> list[Request]:
    revisions = local_revisions(EMBEDDED_MODEL_DIR)[:2]
    cfg = scores.ScanConfig(seq_len=8, n_seqs=2, copying=False)
    return [Request(scores.NAME, cfg, ModelSpec(EMBEDDED_MODEL_NAME, revision, device="cpu")) for revision in revisions]


def test_a_sweep_job_stores_every_checkpoint_and_resumes(store) -> None:
    requests = organism_scans()
    wiring.run(store, requests[0])  # stored before the job (an interrupted sweep): served, not recomputed
    job = jobs.submit(store, plan_of(*requests), runner="inline")
    assert job.status == DONE and job.message == f"{len(requests)} of {len(requests)} runs stored"
    assert set(job.run_ids) == {request.key().run_id() for request in requests}


def test_an_unreachable_ray_address_is_refused_before_any_job_is_recorded(store) -> None:
    pytest.importorskip("ray")
    with pytest.raises(ExecutorError, match="No Ray cluster reachable"):
        jobs.submit(store, plan_of(training(), ray_address="127.0.0.1:9"), runner="inline")
    assert JobStore(store).list() == []


def test_a_ray_job_stores_the_same_runs_as_a_local_one(store, tmp_path) -> None:
    pytest.importorskip("ray")
    requests = organism_scans()
    on_ray = jobs.submit(store, plan_of(*requests, ray_address=jobs.LOCAL_RAY), runner="inline")
    assert on_ray.status == DONE, on_ray.error
    assert on_ray.config["executor"] == "ray:local"
    local_store = ResultStore(tmp_path / "local.duckdb")
    local = jobs.submit(local_store, plan_of(*requests), runner="inline")
    assert on_ray.run_ids == local.run_ids
    for run_id in local.run_ids:
        for name, frame in local_store.load(run_id).tables.items():
            assert store.load(run_id).tables[name].equals(frame)


def test_a_dead_worker_s_last_words_are_in_the_reason(store) -> None:
    table = JobStore(store)
    job_of_a_dead_worker(table, "crashed")
    log = jobs.job_log(store, "crashed")
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text("Traceback (most recent call last):\n  ...\nImportError: libcuda.so.1: cannot open shared object\n")
    jobs.reconcile(store)
    assert "Its last words: ImportError: libcuda.so.1" in table.require("crashed").error


def test_a_sweep_job_records_each_run_as_it_is_stored(store, monkeypatch) -> None:
    """So the page showing the job can draw each checkpoint as it lands (it reruns when the run ids grow)."""
    reported: list[tuple[str, ...]] = []
    report = JobStore.report

    def spy(self, job_id, progress, message, run_ids=None):
        if run_ids is not None:
            reported.append(tuple(run_ids))
        return report(self, job_id, progress, message, run_ids)

    monkeypatch.setattr(JobStore, "report", spy)
    monkeypatch.setattr(jobs, "REPORT_EVERY_S", 3600.0)  # no timed reports: only the ones a stored run forces
    requests = organism_scans()
    job = jobs.submit(store, plan_of(*requests), runner="inline")
    first, second = (request.key().run_id() for request in requests)
    assert job.status == DONE and job.run_ids == (first, second)
    assert (first,) in reported and reported.index((first,)) < reported.index((first, second))
