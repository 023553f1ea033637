"""Background-job benchmark: what running a probe as a dashboard job costs over running it in the page.

Row (ratio = probe_s / baseline_s, lower is better):

* `job: emergence training in a worker process vs in the page`: `probes.jobs.submit` of a short emergence training
  (the page's repeat task, 200 steps, a record every 20) to a spawned worker process, timed until the job is done
  (process start, imports, the training, progress and history written to the job table, the run stored), vs
  `wiring.run` of the same request in this process (what the page did before jobs). Each side uses a fresh store,
  so both compute. The difference is the fixed cost of a job: a fresh interpreter importing torch and the probes.
"""

from __future__ import annotations

import itertools
import tempfile
import time
from pathlib import Path

from bench.timing import comparison_row
from cache import ResultStore
from cache.jobs import JobStore
from probes import jobs, wiring
from probes.induction import emergence
from probes.models import EMBEDDED_MODEL_NAME
from probes.wiring import Request

JOB_TIMEOUT_S = 600.0


def rows(model, model_label: str, quick: bool) -> list[dict]:
    if model_label != EMBEDDED_MODEL_NAME:  # a job's cost does not depend on the benchmark model: one row
        return []
    request = Request(emergence.NAME, emergence.TrainConfig(steps=200, record_every=20))
    with tempfile.TemporaryDirectory(prefix="assoclens-bench-jobs-") as folder:
        fresh = (Path(folder) / f"results-{n}.duckdb" for n in itertools.count())

        def as_job() -> None:
            store = ResultStore(next(fresh))
            job = jobs.submit(store, jobs.JobPlan("bench", (request,)), runner="process")
            deadline = time.monotonic() + JOB_TIMEOUT_S
            while (job := JobStore(store).require(job.job_id)).active:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the job did not finish in {JOB_TIMEOUT_S:.0f} s")
                time.sleep(0.05)
            if job.status != "done":
                raise RuntimeError(f"the job {job.status}: {job.error}")

        def in_page() -> None:
            wiring.run(ResultStore(next(fresh)), request)

        name = "job: emergence training (200 steps) in a worker process vs in the page"
        return [comparison_row(name, as_job, in_page, repeats=1 if quick else 3)]
