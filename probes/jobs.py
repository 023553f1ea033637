"""Background jobs: long probe runs the dashboard hands to a worker process, so they outlive the page that started
them (leaving the page, closing the tab, another browser session).

Part of the wiring layer (with probes/wiring.py and probes/executors.py). A `JobPlan` names the work: probe requests
(one run, or a checkpoint sweep's many) or an RW-Steering mitigation. `submit(store, plan)` records a job in the
store's job table (cache/jobs.py) and starts a worker:

* `process` (the default): a fresh Python process (`python -m probes.jobs`, the plan handed over on its stdin; not
  multiprocessing, whose spawn would rerun the Streamlit script in the child) that loads the model itself, runs the
  plan through `wiring.run` / the local executor and writes progress, history records (emergence training's curve)
  and the finished runs to the store. With a Ray address in the plan, the worker process is the driver of a Ray
  executor instead: the computation runs on the cluster, the worker still writes the store (Ray tasks return
  payloads, the driver writes).
* `inline` (ASSOCLENS_JOB_RUNNER=inline, used by the page tests): the same worker function, run in the calling thread.

The same work submitted while a job does it joins that job (the job key is the plan's run ids). A worker checks for
a cancel at every progress report, and a cancel also sends it SIGTERM. A worker that dies (killed, out of memory,
the app restarted) leaves its job active in the table: `reconcile` (run when the app starts and whenever jobs are
listed) ends such jobs as failed with the reason. Runs a job finished before it stopped stay stored, so starting it
again resumes.
"""

from __future__ import annotations

import os
import pickle
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, is_dataclass
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path

from cache import ResultStore, digest_json
from cache.jobs import CANCELLED, Job, JobStore
from probes import wiring
from probes.executors import LocalExecutor, RayExecutor, check_reachable, import_ray, reason_of
from probes.models import REPO_ROOT, load_model
from probes.wiring import MitigationPlan, Request

RUNNER_ENV = "ASSOCLENS_JOB_RUNNER"
RUNNERS = ("process", "inline")
LOCAL_RAY = "local"  # the Ray address that starts a Ray on this machine
JOB_RAY_WORKERS = 2  # Ray workers of a job, as the CLI's default --workers (each loads its own model copy)
REPORT_EVERY_S = 0.5  # progress and records are written at most this often (every write opens the database)
_WORKERS: list[subprocess.Popen] = []  # worker processes this process started and has not reaped yet
UNSTARTED_GRACE_S = 120.0  # a queued job with no worker recorded yet is given this long (the spawn may be slow)
STOPPED_BY_SIGNAL = (
    "the worker was stopped before it finished (the app shut down, or its process was terminated); runs it had "
    "finished are stored, start it again to resume"
)


class JobCancelled(BaseException):
    """Raised inside a worker when its job is cancelled (a BaseException, so no `except Exception` swallows it)."""


@dataclass(frozen=True)
class JobPlan:
    """What a job computes: probe requests, or an RW-Steering mitigation; optionally on a Ray cluster."""

    title: str
    requests: tuple[Request, ...] = ()
    mitigation: MitigationPlan | None = None
    ray_address: str | None = None  # compute on this Ray cluster (HOST:PORT, 'auto', or 'local'); None: the worker

    def __post_init__(self) -> None:
        if bool(self.requests) == (self.mitigation is not None):
            raise ValueError("A job plan runs requests or a mitigation, one of the two.")

    @property
    def steps(self) -> tuple[Request, ...]:
        """The requests whose runs identify the work (a mitigation's before-curve and fine-tuning)."""
        return self.requests or (self.mitigation.before, self.mitigation.tuning)

    @property
    def probe(self) -> str:
        return "rw-steering mitigation" if self.mitigation else self.requests[0].probe

    @property
    def model(self) -> str | None:
        specs = [request.spec for request in self.steps if request.spec is not None]
        if not specs:
            return None
        revisions = {spec.revision for spec in specs}
        revision = f"@{specs[0].revision}" if len(revisions) == 1 and specs[0].revision else ""
        more = f" ({len(revisions)} revisions)" if len(revisions) > 1 else ""
        return f"{specs[0].name}{revision}{more}"

    @cached_property
    def run_ids(self) -> tuple[str, ...]:
        """The steps' run ids (keying hashes local model folders: done once per plan)."""
        return tuple(request.key().run_id() for request in self.steps)

    def key(self) -> str:
        """The same work gives the same key, whoever asks and wherever it runs."""
        return digest_json({"mitigation": self.mitigation is not None, "runs": list(self.run_ids)})

    def config(self) -> dict:
        """What the job table shows of the work: each step's probe, run id and config."""
        return {
            "executor": f"ray:{self.ray_address}" if self.ray_address else "worker process",
            "steps": [
                {"probe": request.probe, "run_id": run_id,
                 "revision": request.spec.revision if request.spec else None,
                 "config": asdict(request.config) if is_dataclass(request.config) else str(request.config)}
                for request, run_id in zip(self.steps, self.run_ids, strict=True)
            ],
        }  # fmt: skip


# --- who runs it ----------------------------------------------------------------------------------------------


def _process_start(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (/proc), so a reused pid is not taken for the worker;
    None when there is no such process (or it is a zombie); '?' where /proc is missing."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        if Path("/proc/self/stat").exists():
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass
        return "?"
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[-1].split()
    if not fields or fields[0] in ("Z", "X"):  # a zombie has exited: only its exit status is left
        return None
    return fields[19]


def worker_label(pid: int) -> str:
    """host:pid:start, what the job table records of a worker process."""
    return f"{socket.gethostname()}:{pid}:{_process_start(pid) or '?'}"


def _parse_worker(worker: str) -> tuple[str, int, str] | None:
    host, _, rest = worker.rpartition(":")
    host, _, pid = host.rpartition(":")
    return (host, int(pid), rest) if pid.isdigit() else None


def worker_alive(job: Job) -> bool:
    """Whether the job's worker process still runs (a worker on another machine is taken as alive)."""
    if not job.worker:
        created = job.created_at.replace(tzinfo=UTC) if job.created_at.tzinfo is None else job.created_at
        return (datetime.now(UTC) - created).total_seconds() < UNSTARTED_GRACE_S
    parsed = _parse_worker(job.worker)
    if parsed is None:
        return True
    host, pid, started = parsed
    if host != socket.gethostname():
        return True
    _reap()  # this process's ended workers are reaped first, so they are not taken for zombies that run
    now = _process_start(pid)
    return now is not None and (started == "?" or now == "?" or now == started)


def dead_reason(job: Job, log: Path | None = None) -> str:
    """Why an active job has no worker any more, with the last line its worker wrote to stderr, if any."""
    parsed = _parse_worker(job.worker or "")
    who = f"Its worker process (pid {parsed[1]})" if parsed else "Its worker"
    where = f" at {job.progress:.0%}" + (f" ({job.message})" if job.message else "")
    last = _last_line(log) if log is not None else ""
    said = f" Its last words: {last}" if last else ""
    return (
        f"{who} stopped before the job finished{where}: the app was restarted, or the process was killed (running "
        f"out of memory is the usual cause).{said} Runs it had finished are stored; start it again to resume."
    )


def _last_line(path: Path) -> str:
    try:
        lines = [line.strip() for line in path.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return ""
    return lines[-1][:300] if lines else ""


def reconcile(store: ResultStore) -> list[Job]:
    """End the active jobs whose worker is gone (failed, with the reason); returns them."""
    return JobStore(store).mark_dead(worker_alive, lambda job: dead_reason(job, job_log(store, job.job_id)))


# --- starting, cancelling -----------------------------------------------------------------------------------


def check_executor(plan: JobPlan) -> None:
    """Refuse a plan whose Ray cluster cannot be used, before any job is recorded (one clear message)."""
    if plan.ray_address:
        import_ray()
        check_reachable(plan.ray_address)


def submit(store: ResultStore, plan: JobPlan, runner: str | None = None) -> Job:
    """Start the plan as a job (or return the active job already doing the same work)."""
    runner = runner or os.environ.get(RUNNER_ENV) or "process"
    if runner not in RUNNERS:
        raise ValueError(f"Unknown job runner {runner!r}; choose {' or '.join(RUNNERS)}.")
    check_executor(plan)
    reconcile(store)
    jobs = JobStore(store)
    if (active := jobs.active_for(plan.key())) is not None:
        return active
    job = jobs.create(uuid.uuid4().hex, plan.key(), plan.probe, plan.model, plan.title, plan.config())
    if runner == "inline":
        execute(store, job.job_id, plan)
    else:
        worker = start_worker(store, job.job_id, plan)
        jobs.set_worker(job.job_id, worker_label(worker.pid))
    return jobs.require(job.job_id)


def job_log(store: ResultStore, job_id: str) -> Path:
    """Where a job's worker writes its stderr (next to the store's database)."""
    return store.path.parent / "jobs" / f"{job_id}.log"


def start_worker(store: ResultStore, job_id: str, plan: JobPlan) -> subprocess.Popen:
    """A fresh interpreter running `worker_main` for the job; the plan travels pickled over its stdin (our own
    objects, from this process: nothing a user uploaded is executed, an upload is only data inside the plan)."""
    log = job_log(store, job_id)
    log.parent.mkdir(parents=True, exist_ok=True)
    paths = [str(REPO_ROOT), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(dict.fromkeys(paths)), "TRANSFORMERS_VERBOSITY": "error"}
    with open(log, "wb") as errors:
        worker = subprocess.Popen([sys.executable, "-m", "probes.jobs", str(store.path), job_id], cwd=REPO_ROOT,
                                  env=env, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=errors)  # fmt: skip
    try:
        worker.stdin.write(pickle.dumps(plan))
        worker.stdin.close()
    except BrokenPipeError:
        pass  # the worker died at once; its log says why and `reconcile` ends the job
    _WORKERS.append(worker)  # kept to be reaped (`_reap`), so an ended worker is not left a zombie
    return worker


def _reap() -> None:
    _WORKERS[:] = [worker for worker in _WORKERS if worker.poll() is None]


def cancel(store: ResultStore, job_id: str) -> Job:
    """Ask the job to stop: its worker stops at its next progress report (and is sent SIGTERM now)."""
    jobs = JobStore(store)
    job = jobs.require(job_id)
    if not job.active:
        return job
    jobs.request_cancel(job_id)
    parsed = _parse_worker(job.worker or "")
    if parsed and parsed[0] == socket.gethostname() and parsed[1] != os.getpid() and worker_alive(job):
        try:
            os.kill(parsed[1], signal.SIGTERM)
        except ProcessLookupError:
            pass
    return jobs.require(job_id)


# --- the worker -----------------------------------------------------------------------------------------------


class _Reporter:
    """Progress and history records to the job table, at most every REPORT_EVERY_S; raises JobCancelled once the
    table says the job was cancelled."""

    def __init__(self, jobs: JobStore, job_id: str):
        self.jobs, self.job_id = jobs, job_id
        self.last = 0.0
        self.fraction, self.message = 0.0, "started"
        self.pending: list[dict] = []
        self.run_ids: list[str] = []

    def progress(self, fraction: float, message: str = "") -> None:
        self.fraction, self.message = fraction, message or self.message
        if time.monotonic() - self.last >= REPORT_EVERY_S:
            self.flush()

    def record(self, record: dict) -> None:
        self.pending.append(record)
        if time.monotonic() - self.last >= REPORT_EVERY_S:
            self.flush()

    def stored(self, run_id: str, now: bool = False) -> None:
        """A run the job stored (`now`: written to the job at once, so a page showing the job sees it)."""
        if run_id not in self.run_ids:
            self.run_ids.append(run_id)
        if now:
            self.flush()

    def flush(self) -> None:
        self.last = time.monotonic()
        records, self.pending = self.pending, []
        self.jobs.append_records(self.job_id, records)
        if self.jobs.report(self.job_id, self.fraction, self.message, self.run_ids):
            raise JobCancelled


def _raise_cancelled(signum, frame) -> None:
    raise JobCancelled


def worker_main(db_path: str, job_id: str, plan: JobPlan) -> None:
    """The worker process's work: the job, with SIGTERM as a cancel."""
    signal.signal(signal.SIGTERM, _raise_cancelled)
    execute(ResultStore(db_path), job_id, plan)


def execute(store: ResultStore, job_id: str, plan: JobPlan, load: Callable = load_model) -> Job:
    """Run the plan as job `job_id`, recording its life in the job table; never raises for the plan's errors."""
    jobs = JobStore(store)
    if not jobs.start(job_id, worker_label(os.getpid())):
        return jobs.require(job_id)  # cancelled before it started
    reporter = _Reporter(jobs, job_id)
    try:
        message, failure = _run_plan(store, plan, load, reporter)
        reporter.flush()
    except (JobCancelled, KeyboardInterrupt):
        _ignore_stop_signals()  # a second SIGTERM must not interrupt writing down the first
        _record_stop(jobs, job_id, reporter)
        return jobs.require(job_id)
    except Exception as error:  # the job's own failure: recorded for the page, not raised
        _ignore_stop_signals()
        jobs.report(job_id, reporter.fraction, reporter.message, reporter.run_ids)
        jobs.fail(job_id, reason_of(error))
        return jobs.require(job_id)
    if failure:
        jobs.fail(job_id, failure)
    else:
        jobs.finish(job_id, reporter.run_ids, message)
    return jobs.require(job_id)


def _ignore_stop_signals() -> None:
    """In a worker process (whose SIGTERM raises JobCancelled), ignore SIGTERM from now on."""
    if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGTERM) is _raise_cancelled:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)


def _record_stop(jobs: JobStore, job_id: str, reporter: _Reporter) -> None:
    job = jobs.require(job_id)
    jobs.report(job_id, reporter.fraction, reporter.message, reporter.run_ids)
    if job.cancel_requested:
        jobs.fail(job_id, "cancelled by the user; runs it had finished are stored", CANCELLED)
    else:
        jobs.fail(job_id, STOPPED_BY_SIGNAL)


def _run_plan(store: ResultStore, plan: JobPlan, load: Callable, reporter: _Reporter) -> tuple[str, str | None]:
    """-> (the finished message, the failure or None)."""
    if plan.mitigation is not None:
        done = wiring.mitigate(store, plan.mitigation, load, progress=reporter.progress)
        for run in (done.before, done.tuning, done.after):
            reporter.stored(run.run_id)
        return f"tuned revision {done.tuned.revision}", None
    if plan.ray_address is None and len(plan.requests) == 1:
        run = wiring.run(store, plan.requests[0], load, progress=reporter.progress, on_record=reporter.record)
        reporter.stored(run.run_id)
        return "finished", None
    if plan.ray_address:  # 'local' starts a Ray on this machine
        address = None if plan.ray_address == LOCAL_RAY else plan.ray_address
        executor = RayExecutor(address=address, workers=JOB_RAY_WORKERS)
    else:
        executor = LocalExecutor()
    try:
        result = executor.run_all(store, plan.requests, load, progress=reporter.progress,
                                  on_stored=lambda run: reporter.stored(run.run_id, now=True))  # fmt: skip
    finally:
        executor.close()
    reporter.run_ids = [run.run_id for run in result.runs]  # in request order, the ones served from the store too
    stored = f"{len(result.runs)} of {len(plan.requests)} runs stored"
    if not result.failures:
        return stored, None
    first = result.failures[0]
    return stored, f"{stored}; {len(result.failures)} failed, first {first.request}: {first.reason}"


if __name__ == "__main__":  # python -m probes.jobs DB_PATH JOB_ID, the plan pickled on stdin (start_worker)
    from probes import jobs  # the importable module: one JobCancelled and JobPlan, whichever module raises or loads

    jobs.worker_main(sys.argv[1], sys.argv[2], pickle.load(sys.stdin.buffer))
