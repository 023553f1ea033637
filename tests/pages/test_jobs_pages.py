"""Background jobs in the pages (Streamlit AppTest): the home page lists jobs and cancels a running one, a page
reopened while a job of its probe runs shows the job's progress and recorded curve, and jobs of dead workers are
marked failed when the app starts. (Jobs run inline here; tests/probes/test_jobs.py and tests/e2e run real workers.)"""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from cache import ResultStore
from cache.jobs import FAILED, JobStore
from probes import jobs
from probes.induction import emergence
from probes.wiring import Request
from tests.probes.test_jobs import job_of_a_dead_worker

APP = str(Path(__file__).resolve().parents[2] / "app.py")
TIMEOUT = 180


def running_job(store_path: Path, plan: jobs.JobPlan, records: list[dict]) -> str:
    """A job row as a worker in this very process would leave it mid-run (alive: this process runs)."""
    table = JobStore(ResultStore(store_path))
    job = table.create("job-running-1", plan.key(), plan.probe, plan.model, plan.title, plan.config())
    table.start(job.job_id, jobs.worker_label(os.getpid()))
    table.report(job.job_id, 0.4, "step 40")
    table.append_records(job.job_id, records)
    return job.job_id


def points(values: list | dict) -> int:
    """The length of a trace's x values (Plotly writes numeric arrays as base64 typed arrays)."""
    if isinstance(values, dict):
        return len(np.frombuffer(base64.b64decode(values["bdata"]), dtype=np.dtype(values["dtype"])))
    return len(values)


def chart_specs(at: AppTest) -> list[dict]:
    return [json.loads(chart.proto.spec) for chart in at.get("plotly_chart")]


def test_home_lists_jobs_and_cancels_a_running_one(store_path) -> None:
    store = ResultStore(store_path)
    done = jobs.submit(store, jobs.JobPlan("Finished training", (Request(emergence.NAME, emergence.TrainConfig(
        steps=20, record_every=10)),)), runner="inline")  # fmt: skip
    plan = jobs.JobPlan("Training in progress", (Request(emergence.NAME, emergence.TrainConfig(steps=999)),))
    job_id = running_job(store_path, plan, [{"step": 0}])
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    listed = next(frame.value for frame in at.dataframe if "status" in frame.value.columns)
    assert listed["title"].tolist() == ["Training in progress", "Finished training"]
    assert listed["status"].tolist() == ["running", "done"] and listed["run"][1] == done.run_id[:12]
    assert at.selectbox(key="jobs_cancel_pick").value == job_id
    at.button(key="jobs_cancel").click().run()
    assert not at.exception
    assert JobStore(store).require(job_id).cancel_requested  # the worker stops at its next progress report


def test_a_reopened_page_shows_the_running_job_and_its_curve_so_far(store_path, tiny_model_dir) -> None:
    from probes.models import ModelSpec

    plan = jobs.JobPlan("Emergence training (repeat)", (Request(emergence.NAME, emergence.TrainConfig()),))
    records: list[dict] = []  # real records, as a training writes them (a short run: 3 of them)
    emergence.train(emergence.TrainConfig(steps=20, record_every=10), lambda *_: None, records.append)
    running_job(store_path, plan, records)
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.session_state["model_spec"] = ModelSpec(name=str(tiny_model_dir), device="cpu")
    at.run()
    at.switch_page("pages/induction.py").run()
    assert not at.exception, at.exception
    assert not [b for b in at.button if b.label == "Start training"]  # the job is shown, not started again
    assert any("Emergence training (repeat): step 40" in p.proto.text for p in at.get("progress"))
    live = next(s for s in chart_specs(at) if s["layout"]["title"]["text"] == "Emergence: training curves (live)")
    assert max(points(trace.get("x", [])) for trace in live["data"]) == 3  # the three records written so far
    assert any(b.label == "Cancel job" for b in at.button)


def test_the_app_marks_jobs_of_dead_workers_failed_when_it_starts(store_path) -> None:
    table = JobStore(ResultStore(store_path))
    pid = job_of_a_dead_worker(table, "orphan", "induction-emergence", "Orphaned training")
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    assert not at.exception
    assert any("marked failed: Orphaned training" in w.value for w in at.warning)
    job = table.require("orphan")
    assert job.status == FAILED and f"pid {pid}" in job.error


def test_a_job_with_other_settings_is_shown_and_its_settings_can_be_taken(store_path, tiny_model_dir) -> None:
    from probes.models import ModelSpec

    cfg = emergence.TrainConfig(steps=999, record_every=10, seed=7)
    plan = jobs.JobPlan("Emergence training (repeat, 999 steps)", (Request(emergence.NAME, cfg),))
    job_id = running_job(store_path, plan, [])
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.session_state["model_spec"] = ModelSpec(name=str(tiny_model_dir), device="cpu")
    at.run()
    at.switch_page("pages/induction.py").run()
    assert any(f"other settings, job {job_id[:8]}" in e.label for e in at.expander)
    assert any(b.label == "Start training" for b in at.button)  # the page's own settings are not being trained
    next(b for b in at.button if b.label == "Use its settings").click().run()
    assert not at.exception
    assert at.number_input(key="induction_steps_repeat").value == 999
    assert at.number_input(key="induction_train_seed_repeat").value == 7
    assert not [b for b in at.button if b.label == "Start training"]  # now this page's settings: the job is shown
    assert not [e for e in at.expander if "other settings" in e.label]


def test_an_unreachable_ray_address_is_one_message_and_no_job(store_path, tiny_model_dir) -> None:
    pytest.importorskip("ray")
    from probes.models import ModelSpec

    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.session_state["model_spec"] = ModelSpec(name=str(tiny_model_dir), device="cpu")
    at.session_state["ray_address"] = "127.0.0.1:9"
    at.run()
    at.switch_page("pages/induction.py").run()
    next(b for b in at.button if b.label == "Start training").click().run()
    assert not at.exception
    assert [e.value for e in at.error if "No Ray cluster reachable at 127.0.0.1:9" in e.value]
    assert JobStore(ResultStore(store_path)).list() == []


def test_testbed_curves_run_as_a_background_job_when_asked(tiny_model_dir, store_path) -> None:
    from tests.pages.test_poisoned_page import open_page, paste
    from tests.pages.test_poisoned_page import tiny_items as items

    app = paste(open_page(tiny_model_dir), json.dumps(items()))
    assert app.checkbox(key="poisoned-background").value is False  # a 4-item testbed: in the page by default
    app.slider(key="poisoned-n-items").set_value(4)
    app.select_slider(key="poisoned-steps").set_value(2)
    app.number_input(key="poisoned-bootstrap").set_value(20)
    app.checkbox(key="poisoned-background").check()
    app.button[0].click()  # the form's "Compute curves"
    app.run()
    assert not app.exception and not app.error, [e.value for e in app.error]
    titles = [json.loads(chart.proto.spec)["layout"]["title"]["text"] for chart in app.get("plotly_chart")]
    assert titles[0] == "Poisoned-context curve: poisoned rate vs share of inappropriate items"
    (job,) = JobStore(ResultStore(store_path)).list()
    assert job.status == "done" and job.probe == "poisoned" and job.title.startswith("Poisoned-context curves")
    assert job.run_id == ResultStore(store_path).list_runs(probe="poisoned")["run_id"][0]
