"""Executors: run many probe requests, in this process (`LocalExecutor`) or on a Ray cluster (`RayExecutor`).

Part of the wiring layer (with `probes/wiring.py`): both take the same `Request`s and key them the same way, so a
run computed by either is the same stored run. `run_all(store, requests, load, progress)`:

1. looks every request up in the store (look-ups only); stored runs are served as they are;
2. computes the rest: the local executor in order in this process; the Ray executor on one actor per worker slot
   (a request whose probe splits into shards of input items, a testbed curve, becomes one task per `shard_items`
   items; the driver merges the shards' payloads into the request's one run),
   each actor keeping its loaded models across tasks (by `ModelSpec`; the actors stay up, warm, until the
   executor's `close`, so a second `run_all` starts no new processes), each task returning the payload as Parquet
   bytes and JSON (never a pickle of the tables); only the driver writes DuckDB, each run as it arrives;
3. a task that fails (unknown revision, a model that does not load, a worker process that dies) becomes a
   `Failure` with its reason while the others go on; nothing of a failed task is stored;
4. on KeyboardInterrupt every run finished so far is already stored; the interrupt propagates.

`on_stored(run)` is called as each computed run is stored (a background job records it, so its page can show it).

Ray is optional (requirements-ray.txt): `RayUnavailable` says how to install it.
"""

from __future__ import annotations

import gc
import io
import json
import logging
import os
import socket
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import pandas as pd

from cache import Payload, ResultStore, StoredRun
from probes import wiring
from probes.models import REPO_ROOT, ModelSpec, load_model
from probes.wiring import Request

Progress = Callable[[float, str], None]
Load = Callable[[ModelSpec], object]
MODELS_PER_WORKER = 2  # loaded models a worker keeps (a checkpoint sweep loads each revision once)
WAIT_NOTICE_S = 30.0  # a progress line when no task finished for this long
SHARD_ITEMS = 100  # testbed items per Ray task of a testbed curve (its shards are merged by the driver)
CONNECT_TIMEOUT_S = 5.0  # how long to try reaching --ray-address before saying it is unreachable
INSTALL_RAY = "pip install -r requirements-ray.txt"


class ExecutorError(RuntimeError):
    """The executor itself cannot run (Ray missing, cluster unreachable); the message says what to do."""


class RayUnavailable(ExecutorError):
    """Ray is not installed."""


@dataclass(frozen=True)
class Failure:
    """A request that did not produce a run, and why."""

    request: str  # what was asked for, readable (probe, model, revision)
    reason: str
    run_id: str | None = None  # None when the request could not even be keyed (e.g. an unknown local revision)

    def as_dict(self) -> dict:
        return {"request": self.request, "reason": self.reason, "run_id": self.run_id}


@dataclass
class BatchResult:
    runs: list[StoredRun]  # the stored runs (served or computed), in request order
    failures: list[Failure]
    outcomes: list[StoredRun | Failure] = field(default_factory=list)  # one per request, in request order
    computed: int = 0  # runs computed by this call (the rest were served from the store)


def describe(request: Request) -> str:
    """'induction on organism@step-250' (the model's revision when it has one)."""
    if request.spec is None:
        return f"{request.probe} (own model)"
    revision = f"@{request.spec.revision}" if request.spec.revision else ""
    return f"{request.probe} on {request.spec.name}{revision}"


def reason_of(error: BaseException) -> str:
    """One line: the message of errors a user can act on, the type as well for anything else."""
    text = " ".join(str(error).split())[:500]
    if type(error).__name__ in {"ModelLoadError", "ValueError", "StoreError", "UserError"} and text:
        return text
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


class ModelCache:
    """`load` with the last few models kept, by `ModelSpec` (a worker loads each model once across its tasks)."""

    def __init__(self, load: Load, keep: int = MODELS_PER_WORKER):
        self.load, self.keep = load, keep
        self._models: OrderedDict[ModelSpec, object] = OrderedDict()

    def __call__(self, spec: ModelSpec):
        if spec in self._models:
            self._models.move_to_end(spec)
            return self._models[spec]
        while len(self._models) >= self.keep:
            self._models.popitem(last=False)
            gc.collect()  # free the evicted weights before the next load
        model = self.load(spec)
        self._models[spec] = model
        return model

    @property
    def specs(self) -> list[ModelSpec]:
        return list(self._models)


class _Tracker:
    """done / failed / remaining, reported through one progress callback."""

    def __init__(self, total: int, progress: Progress | None):
        self.total, self.done, self.failed = total, 0, 0
        self.progress = progress or (lambda fraction, message="": None)

    def report(self, running: str = "") -> None:
        remaining = self.total - self.done - self.failed
        message = f"done {self.done} · failed {self.failed} · remaining {remaining}"
        self.progress((self.done + self.failed) / max(self.total, 1), f"{message} {running}".strip())

    def within(self, label: str) -> Progress:
        """The progress callback of the one request running now (local executor)."""

        def report(fraction: float, message: str = "") -> None:
            settled = self.done + self.failed + max(0.0, min(1.0, fraction))
            self.progress(settled / max(self.total, 1), f"{label}: {message}" if message else label)

        return report

    def finished(self, ok: bool) -> None:
        if ok:
            self.done += 1
        else:
            self.failed += 1
        self.report()


@dataclass
class _Pending:
    index: int
    request: Request
    run_id: str


def _look_up(
    store: ResultStore, requests: Sequence[Request], refresh: bool, tracker: _Tracker
) -> tuple[list[StoredRun | Failure | None], list[_Pending]]:
    """Stored runs and requests that cannot be keyed settle at once; the rest are pending (a request asked for
    twice is computed once: `_result` copies the first one's outcome)."""
    outcomes: list[StoredRun | Failure | None] = [None] * len(requests)
    pending, first_of = [], {}
    for index, request in enumerate(requests):
        try:
            key = request.key()
        except Exception as error:  # e.g. a local model without that revision: its identity cannot be taken
            outcomes[index] = Failure(describe(request), reason_of(error))
            tracker.failed += 1
            continue
        run_id = key.run_id()
        found = None if refresh or run_id in first_of else store.get(key)
        if found is not None:
            outcomes[index] = found
            tracker.done += 1
        elif run_id in first_of:
            outcomes[index] = _Duplicate(first_of[run_id])
            tracker.done += 1
        else:
            first_of[run_id] = index
            pending.append(_Pending(index, request, run_id))
    tracker.report()
    return outcomes, pending


@dataclass(frozen=True)
class _Task:
    """What one Ray task computes: a whole request, or one shard (`number` of `of`) of its items."""

    item: _Pending
    item_range: tuple[int, int] | None = None
    number: int = 0
    of: int = 1


@dataclass(frozen=True)
class _Duplicate:
    first: int  # index of the same request earlier in the list


def _result(outcomes: list, computed: int) -> BatchResult:
    outcomes = [outcomes[item.first] if isinstance(item, _Duplicate) else item for item in outcomes]
    runs = [outcome for outcome in outcomes if isinstance(outcome, StoredRun)]
    failures = [outcome for outcome in outcomes if isinstance(outcome, Failure)]
    return BatchResult(runs, failures, list(outcomes), computed)


class LocalExecutor:
    """Every request in order, in this process (models kept by `ModelCache` between consecutive requests)."""

    name = "local"
    workers = 1

    def run_all(
        self,
        store: ResultStore,
        requests: Sequence[Request],
        load: Load = load_model,
        progress: Progress | None = None,
        refresh: bool = False,
        on_stored: Callable[[StoredRun], None] = lambda run: None,
    ) -> BatchResult:
        tracker = _Tracker(len(requests), progress)
        outcomes, pending = _look_up(store, requests, refresh, tracker)
        models = ModelCache(load)
        computed = 0
        for item in pending:
            label = describe(item.request)
            tracker.report(label)
            try:
                payload, duration_s = wiring.compute_payload(
                    item.request, models, tracker.within(label), run_id=item.run_id
                )
            except Exception as error:
                outcomes[item.index] = Failure(label, reason_of(error), item.run_id)
                tracker.finished(False)
                continue
            outcomes[item.index] = wiring.store_payload(store, item.request, payload, duration_s)
            on_stored(outcomes[item.index])
            computed += 1
            tracker.finished(True)
        return _result(outcomes, computed)

    def close(self) -> None:
        pass


# ---------------------------------------------------------------------------------------------- Ray


def import_ray():
    try:
        import ray
    except ImportError:
        raise RayUnavailable(
            f"--executor ray needs Ray, which is not installed; install it with: {INSTALL_RAY} (or use --executor "
            "local)."
        ) from None
    return ray


def payload_to_wire(payload: Payload) -> dict:
    """A payload as plain bytes and JSON (tables as Parquet, in order), what a task sends back to the driver."""
    tables = []
    for name, frame in payload.tables.items():
        buffer = io.BytesIO()
        frame.to_parquet(buffer, index=False)
        tables.append((name, buffer.getvalue()))
    return {
        "tables": tables,
        "summary": json.dumps(payload.summary, sort_keys=True),
        "files": dict(payload.files),
        "device": payload.device,
        "dtype": payload.dtype,
    }


def payload_from_wire(wire: dict) -> Payload:
    tables = {name: pd.read_parquet(io.BytesIO(blob)) for name, blob in wire["tables"]}
    return Payload(tables, json.loads(wire["summary"]), dict(wire["files"]), wire["device"], wire["dtype"])


class RayWorker:
    """The actor: keeps its loaded models across tasks; computes a request, returns its payload or the reason it
    failed (never touches the store)."""

    def __init__(self, load: Load = load_model):
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
        self.models = ModelCache(load)

    def compute(self, request: Request, run_id: str, item_range: tuple[int, int] | None = None) -> dict:
        """The request's payload, or (with `item_range`) the payload of that shard of its items."""
        try:
            if item_range is None:
                payload, duration_s = wiring.compute_payload(request, self.models, run_id=run_id)
            else:
                payload, duration_s = wiring.compute_shard_payload(request, item_range, self.models)
        except Exception as error:
            return {"ok": False, "reason": reason_of(error)}
        return {"ok": True, "payload": payload_to_wire(payload), "duration_s": duration_s, "pid": os.getpid()}

    def loaded(self) -> list[ModelSpec]:
        return self.models.specs


def check_reachable(address: str, timeout_s: float = CONNECT_TIMEOUT_S) -> None:
    """One clear error when nothing listens at HOST:PORT (ray.init would otherwise retry for minutes)."""
    if address in ("auto", "local"):
        return
    target = address.split("://", 1)[-1]
    host, _, port = target.rpartition(":")
    if not host or not port.isdigit():
        raise ExecutorError(f"--ray-address takes HOST:PORT (e.g. 10.0.0.5:6379) or 'auto'; got {address!r}.")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s):
            pass
    except OSError as error:
        raise ExecutorError(
            f"No Ray cluster reachable at {address} ({error.strerror or error}); start one with `ray start --head` "
            "on the head node and pass the address it prints, or leave out --ray-address for a local Ray."
        ) from None


class RayExecutor:
    """One actor per worker slot on a Ray cluster: `address` None starts a local Ray with `workers` CPUs."""

    name = "ray"

    def __init__(
        self,
        address: str | None = None,
        workers: int = 2,
        gpus_per_worker: float | None = None,
        shard_items: int | None = SHARD_ITEMS,
    ):
        if workers < 1:
            raise ExecutorError(f"--workers must be at least 1 (got {workers}).")
        if shard_items is not None and shard_items < 1:
            raise ExecutorError(f"--shard-items must be at least 1 (got {shard_items}).")
        self.ray = import_ray()
        self.address, self.workers, self.gpus_per_worker = address, workers, gpus_per_worker
        self.shard_items = shard_items  # testbed items per task of a splittable request (None: never split)
        self.started_here = False  # this executor started Ray (and shuts it down on close)
        self.startup_s: float | None = None  # seconds ray.init took (None: Ray was already up or never needed)
        self._pool: dict[tuple[int, float], object] = {}  # (slot, GPUs) -> warm actor, kept across run_all calls

    def connect(self) -> None:
        """Join the cluster at `address`, or start a local Ray; nothing when Ray is already initialised."""
        ray = self.ray
        if self.address:
            check_reachable(self.address)  # first, so a wrong address is one clear message even if Ray is up
        if ray.is_initialized():
            return
        started = time.perf_counter()
        quiet = {"include_dashboard": False, "logging_level": logging.ERROR, "log_to_driver": False,
                 "runtime_env": {"env_vars": _worker_env()}}  # fmt: skip
        try:
            if self.address:
                ray.init(address=self.address, **quiet)
            else:
                ray.init(num_cpus=self.workers, **quiet)
        except ExecutorError:
            raise
        except Exception as error:
            where = f"the Ray cluster at {self.address}" if self.address else "a local Ray"
            raise ExecutorError(f"Could not start or join {where}: {reason_of(error)}") from None
        self.started_here = True
        self.startup_s = time.perf_counter() - started

    def _gpus(self) -> float:
        if self.gpus_per_worker is not None:
            return self.gpus_per_worker
        return 1.0 if self.ray.cluster_resources().get("GPU", 0) > 0 else 0.0  # a GPU cluster: one GPU each

    def _slots(self, pending: int, gpus: float) -> int:
        """Workers to start: --workers, no more than the tasks, nor than the cluster can ever hold at once (a worker
        that can never be placed would keep its task waiting forever)."""
        resources = self.ray.cluster_resources()
        fits = int(resources.get("CPU", 0))
        if gpus > 0:
            fits = min(fits, int(resources.get("GPU", 0) / gpus))
        return max(1, min(self.workers, pending, fits))

    def run_all(
        self,
        store: ResultStore,
        requests: Sequence[Request],
        load: Load = load_model,
        progress: Progress | None = None,
        refresh: bool = False,
        on_stored: Callable[[StoredRun], None] = lambda run: None,
    ) -> BatchResult:
        tracker = _Tracker(len(requests), progress)
        outcomes, pending = _look_up(store, requests, refresh, tracker)
        if not pending:  # everything stored: no cluster needed
            return _result(outcomes, 0)
        tracker.report("starting Ray")
        self.connect()
        ray = self.ray
        gpus = self._gpus()
        actor_class = ray.remote(RayWorker)
        slots = self._slots(len(pending), gpus)
        temporary: list = []  # actors killed at the end (the pooled ones stay warm until `close`)

        def start(slot: int | None):
            pooled = slot is not None and load is load_model  # this executor's warm worker of that slot, if any
            if pooled and (slot, gpus) in self._pool:
                return self._pool[slot, gpus]
            actor = actor_class.options(num_cpus=1, num_gpus=gpus, max_restarts=0).remote(load)
            if pooled:
                self._pool[slot, gpus] = actor
            else:
                temporary.append(actor)
            return actor

        actors = [start(slot) for slot in range(slots)]
        last_spec: list[ModelSpec | None] = [None] * slots
        queue = deque(task for item in pending for task in self._tasks(item))
        in_flight: dict = {}  # object ref -> (slot, task)
        shards: dict[int, dict[int, Payload]] = {}  # request index -> shard number -> payload, until all arrive
        computed = 0

        def dispatch(slot: int) -> None:
            # prefer a task for the model this actor already holds
            chosen = next((task for task in queue if task.item.request.spec == last_spec[slot]), queue[0])
            queue.remove(chosen)
            last_spec[slot] = chosen.item.request.spec
            ref = actors[slot].compute.remote(chosen.item.request, chosen.item.run_id, chosen.item_range)
            in_flight[ref] = (slot, chosen)

        try:
            for slot in range(slots):
                if queue:
                    dispatch(slot)
            while in_flight:
                ready, _ = ray.wait(list(in_flight), num_returns=1, timeout=WAIT_NOTICE_S)
                if not ready:  # still running, or no free CPU/GPU on the cluster for a worker yet
                    tracker.report(f"waiting for {len(in_flight)} running task(s); `ray status` shows free resources")
                    continue
                slot, task = in_flight.pop(ready[0])
                item = task.item
                label = describe(item.request)
                try:
                    answer = ray.get(ready[0])
                except ray.exceptions.RayActorError as error:
                    answer = {"ok": False, "reason": _death_reason(error)}
                    self._pool = {place: actor for place, actor in self._pool.items() if actor is not actors[slot]}
                    if queue:
                        actors[slot] = start(None)  # a fresh worker for the tasks still queued
                    last_spec[slot] = None
                except ray.exceptions.RayError as error:
                    answer = {"ok": False, "reason": reason_of(getattr(error, "cause", None) or error)}
                if outcomes[item.index] is not None:  # another shard of this request failed already
                    pass
                elif not answer["ok"]:
                    outcomes[item.index] = Failure(label, answer["reason"], item.run_id)
                    for sibling in [other for other in queue if other.item.index == item.index]:
                        queue.remove(sibling)  # the request failed: its other shards need not run
                    tracker.finished(False)
                elif task.item_range is None:
                    payload = payload_from_wire(answer["payload"])
                    outcomes[item.index] = wiring.store_payload(store, item.request, payload, answer["duration_s"])
                    on_stored(outcomes[item.index])
                    computed += 1
                    tracker.finished(True)
                else:
                    parts = shards.setdefault(item.index, {})
                    parts[task.number] = payload_from_wire(answer["payload"])
                    tracker.report(f"{label}: {len(parts)} of {task.of} shards")
                    if len(parts) == task.of:
                        merged = wiring.merge_shard_payloads(item.request, [parts[n] for n in sorted(parts)])
                        outcomes[item.index] = wiring.store_payload(store, item.request, merged, answer["duration_s"])
                        on_stored(outcomes[item.index])
                        del shards[item.index]
                        computed += 1
                        tracker.finished(True)
                if queue:
                    dispatch(slot)
        except BaseException:  # KeyboardInterrupt included: every finished run is stored already; stop the rest
            for actor in actors:
                ray.kill(actor, no_restart=True)
            self._pool.clear()
            raise
        finally:
            for actor in temporary:
                ray.kill(actor, no_restart=True)
        return _result(outcomes, computed)

    def _tasks(self, item: _Pending) -> list[_Task]:
        """The request as one task, or as one task per shard of its items."""
        ranges = wiring.shard_ranges(item.request, self.shard_items)
        if ranges is None:
            return [_Task(item)]
        return [_Task(item, item_range, number, len(ranges)) for number, item_range in enumerate(ranges)]

    def close(self) -> None:
        """Stop this executor's workers, and the local Ray it started."""
        if self.ray.is_initialized():
            for actor in self._pool.values():
                self.ray.kill(actor, no_restart=True)
            if self.started_here:
                self.ray.shutdown()
        self._pool.clear()
        self.started_here = False


def _worker_env() -> dict[str, str]:
    """What workers need to import this project like the driver does: the repository on PYTHONPATH (a cluster's
    nodes hold the same checkout at the same path), quiet libraries, and the driver's hub settings."""
    paths = [str(REPO_ROOT), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    env = {"PYTHONPATH": os.pathsep.join(dict.fromkeys(paths)), "TRANSFORMERS_VERBOSITY": "error"}
    for name in ("HF_HUB_OFFLINE", "HF_HOME", "ASSOCLENS_TUNED_DIR", "TOKENIZERS_PARALLELISM"):
        if name in os.environ:
            env[name] = os.environ[name]
    return env


def _death_reason(error: BaseException) -> str:
    first = " ".join(str(error).split())[:300]
    return (
        "the Ray worker running this task died before it finished (its process exited: out of memory or a crash in "
        f"native code are the usual causes; `ray logs` on its node shows why); nothing of it was stored. Ray said: "
        f"{first}"
    )


def make_executor(
    kind: str = "local", address: str | None = None, workers: int = 2, shard_items: int | None = SHARD_ITEMS
) -> LocalExecutor | RayExecutor:
    """The executor the CLI names: 'local' or 'ray' (an address implies Ray)."""
    if kind == "ray" or address:
        return RayExecutor(address=address, workers=workers, shard_items=shard_items)
    if kind != "local":
        raise ExecutorError(f"Unknown executor {kind!r}; choose local or ray.")
    return LocalExecutor()


__all__ = [
    "BatchResult",
    "ExecutorError",
    "Failure",
    "LocalExecutor",
    "ModelCache",
    "RayExecutor",
    "RayUnavailable",
    "describe",
    "make_executor",
]
