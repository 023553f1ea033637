"""The job table (cache/jobs.py): a job's life as the store records it, generic (no probe is named here)."""

from __future__ import annotations

import pytest

from cache import ResultStore
from cache.jobs import CANCELLED, DONE, FAILED, QUEUED, RUNNING, JobStore


@pytest.fixture
def table(tmp_path) -> JobStore:
    return JobStore(ResultStore(tmp_path / "results.duckdb"))


def test_a_job_goes_from_queued_to_done_with_its_runs(table) -> None:
    job = table.create("j1", "key", "some-probe", "model@rev", "A job", {"steps": [1, 2]})
    assert (job.status, job.progress, job.config, job.active) == (QUEUED, 0.0, {"steps": [1, 2]}, True)
    assert table.start("j1", "host:1:2") and table.require("j1").status == RUNNING
    assert table.report("j1", 1.7, "most of it", ["r1"]) is False  # no cancel asked for
    mid = table.require("j1")
    assert (mid.progress, mid.message, mid.run_ids, mid.run_id) == (1.0, "most of it", ("r1",), "r1")  # clipped
    assert table.finish("j1", ["r1", "r2"], "2 runs")
    done = table.require("j1")
    assert (done.status, done.run_ids, done.run_id, done.active) == (DONE, ("r1", "r2"), "r2", False)
    assert table.active_for("key") is None and table.latest_for("key").job_id == "j1"


def test_a_finished_job_cannot_be_failed_or_restarted(table) -> None:
    table.create("j1", "key", "p", None, "A job", {})
    table.start("j1", "w")
    table.finish("j1", [])
    assert not table.fail("j1", "late") and not table.start("j1", "w") and not table.request_cancel("j1")
    assert table.require("j1").status == DONE
    with pytest.raises(ValueError, match="failed or cancelled"):
        table.fail("j1", "why", status=DONE)


def test_a_cancel_is_seen_by_the_next_report(table) -> None:
    table.create("j1", "key", "p", None, "A job", {})
    table.start("j1", "w")
    assert table.request_cancel("j1") and table.report("j1", 0.5, "half") is True
    assert table.fail("j1", "cancelled by the user", CANCELLED) and table.require("j1").status == CANCELLED


def test_a_done_job_drops_its_records_and_a_failed_one_keeps_them(table) -> None:
    for job_id in ("ok", "bad"):
        table.create(job_id, job_id, "p", None, job_id, {})
        table.start(job_id, "w")
        table.append_records(job_id, [{"step": 0}])
    table.finish("ok", ["r1"])
    table.fail("bad", "it broke")
    assert table.records("ok") == [] and table.records("bad") == [{"step": 0}]


def test_records_keep_their_order_across_appends(table) -> None:
    table.create("j1", "key", "p", None, "A job", {})
    table.append_records("j1", [{"step": 0}, {"step": 10}])
    table.append_records("j1", [])
    table.append_records("j1", [{"step": 20, "score": 0.5}])
    assert table.records("j1") == [{"step": 0}, {"step": 10}, {"step": 20, "score": 0.5}]
    assert table.records("other") == []


def test_mark_dead_ends_active_jobs_whose_worker_is_gone(table) -> None:
    for job_id in ("alive", "dead", "dead-cancelling", "finished"):
        table.create(job_id, job_id, "p", None, job_id, {})
        table.start(job_id, job_id)
    table.request_cancel("dead-cancelling")
    table.finish("finished", [])
    ended = table.mark_dead(lambda job: job.worker == "alive", lambda job: f"{job.worker} is gone")
    assert sorted(job.job_id for job in ended) == ["dead", "dead-cancelling"]
    assert table.require("dead").status == FAILED and table.require("dead").error == "dead is gone"
    assert table.require("dead-cancelling").status == CANCELLED
    assert table.require("alive").active and table.require("finished").status == DONE
    assert [row["status"] for _, row in table.frame().iterrows()].count(FAILED) == 1
