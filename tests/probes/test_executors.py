"""Executors and batch plans: Ray computes the same runs as the local executor; only the driver stores them.

One local Ray (2 CPUs) serves the whole module (`ray_cluster`); the tests that need no Ray come first."""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path

import pandas as pd
import pytest

from cache import ResultStore
from probes import cli, executors, wiring
from probes.cli import main
from probes.executors import LocalExecutor, RayExecutor
from probes.induction import scores
from probes.models import ModelSpec
from probes.tiny import default_words, save_tiny_model
from probes.wiring import Request
from tests.probes.test_poisoned import curve_args, tiny_testbed_items
from tests.probes.test_steering import tiny_sets

SCAN = ["--seq-len", "8", "--n-seqs", "2", "--no-copying", "--device", "cpu"]
SCAN_CONFIG = scores.ScanConfig(seq_len=8, n_seqs=2, copying=False)
PLAN = """
[[run]]
probe = "induction"
models = ["organism"]
revisions = ["step-250", "step-750"]
device = "cpu"
[run.config]
seq_len = 8
n_seqs = 2
copying = false
"""


def run_cli(capsys: pytest.CaptureFixture, *argv: str) -> tuple[int, dict | None, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, (json.loads(captured.out) if captured.out.strip() else None), captured.err


def scan_request(revision: str | None) -> Request:
    return Request(scores.NAME, SCAN_CONFIG, ModelSpec("organism", revision, device="cpu"))


def assert_same_runs(first: Path, second: Path, run_ids: list[str]) -> None:
    """The same runs with identical tables and summaries in both stores."""
    for run_id in run_ids:
        a, b = ResultStore(first).load(run_id), ResultStore(second).load(run_id)
        assert a.summary == b.summary and list(a.tables) == list(b.tables)
        for name in a.tables:
            pd.testing.assert_frame_equal(a.tables[name], b.tables[name])


# ---------------------------------------------------------------------------------------- without Ray


@pytest.mark.parametrize(
    ("plan", "named"),
    [
        ("[[run]]\nprobe = 'induction'\nmodels = ['organism']\ncolour = 'red'\n", "unknown key 'colour'"),
        ("[[run]]\nprobe = 'no-such-probe'\nmodels = ['organism']\n", "unknown probe 'no-such-probe'"),
        (
            "[[run]]\nprobe = 'induction'\nmodels = ['organism']\n[run.config]\nseq_length = 8\n",
            "no field 'seq_length'",
        ),
        ("[[run]]\nprobe = 'induction'\nmodels = ['organism']\n[run.config]\nseq_len = 'long'\n", "seq_len takes int"),
        ("[jobs]\nprobe = 'induction'\n", "Unknown plan key 'jobs'"),
        ("[[run]]\nprobe = 'induction'\n", "needs models"),
        ("[[run]\nprobe = 'induction'\n", "not valid TOML"),
    ],
)
def test_a_bad_plan_is_one_clear_error(plan, named, tmp_path, store_path, capsys) -> None:
    path = tmp_path / "plan.toml"
    path.write_text(plan)
    code, out, err = run_cli(capsys, "batch", str(path), "--json")
    assert code == 2 and out is None
    assert err.startswith("error: ") and err.count("\n") == 1 and named in err
    assert not ResultStore(store_path).list_runs().shape[0]


def test_ray_missing_says_how_to_install_it(monkeypatch, tmp_path, store_path, capsys) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` fails as if it were not installed
    code, out, err = run_cli(capsys, "induction", "sweep", "--revisions", "step-250", *SCAN, "--executor", "ray")
    assert code == 2 and out is None and err.count("\n") == 1
    assert "pip install -r requirements-ray.txt" in err and "--executor local" in err


def test_an_unreachable_cluster_is_one_clear_message(tmp_path, store_path, capsys) -> None:
    pytest.importorskip("ray")
    code, out, err = run_cli(capsys, "induction", "sweep", "--revisions", "step-250", *SCAN,
                             "--ray-address", "127.0.0.1:1")  # fmt: skip
    assert code == 2 and out is None and err.count("\n") == 1
    assert "No Ray cluster reachable at 127.0.0.1:1" in err and "ray start --head" in err


def test_local_executor_lists_a_failure_and_stores_the_others(tmp_path) -> None:
    store = ResultStore(tmp_path / "local.duckdb")
    messages = []
    batch = LocalExecutor().run_all(
        store, [scan_request("step-250"), scan_request("step-999")], progress=lambda f, m="": messages.append(m)
    )
    assert [run.revision for run in batch.runs] == ["step-250"] and batch.computed == 1
    (failure,) = batch.failures
    assert failure.request == "induction on organism@step-999" and "has no revision 'step-999'" in failure.reason
    assert messages[-1] == "done 1 · failed 1 · remaining 0"
    assert list(store.list_runs()["revision"]) == ["step-250"]


# ---------------------------------------------------------------------------------------------- Ray


class SharedWorkers:
    """One RayExecutor for the module's CLI calls, so its actors (one process each) start once: the CLI closes
    the executor after each command, this one's `close` waits for the module's end."""

    def __init__(self, executor: RayExecutor):
        self.executor = executor

    def run_all(self, *args, **kwargs):
        return self.executor.run_all(*args, **kwargs)

    def close(self) -> None:
        pass


@pytest.fixture(scope="module")
def shared_workers():
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, logging_level=logging.ERROR, log_to_driver=False,
             runtime_env={"env_vars": executors._worker_env()})  # fmt: skip
    workers = SharedWorkers(RayExecutor(workers=2))
    yield workers
    workers.executor.close()
    ray.shutdown()


@pytest.fixture
def ray_cluster(shared_workers, monkeypatch):
    """`--executor ray` in this test runs on the module's Ray and its warm workers."""
    made = cli.make_executor

    def make(kind: str = "local", address: str | None = None, workers: int = 2, shard_items=executors.SHARD_ITEMS):
        if kind == "ray" and address is None:
            shared_workers.executor.shard_items = shard_items
            return shared_workers
        return made(kind, address, workers, shard_items)

    monkeypatch.setattr(cli, "make_executor", make)
    return shared_workers


def test_ray_sweep_stores_the_same_runs_as_local(ray_cluster, tmp_path, capsys) -> None:
    argv = ["induction", "sweep", "--revisions", "step-250,step-750", *SCAN, "--json"]
    local_db, ray_db = tmp_path / "local.duckdb", tmp_path / "ray.duckdb"
    code, local, _ = run_cli(capsys, *argv, "--db", str(local_db))
    assert code == 0
    code, remote, _ = run_cli(capsys, *argv, "--db", str(ray_db), "--executor", "ray", "--workers", "2")
    assert code == 0
    assert remote == local  # same checkpoints, scores and run ids
    run_ids = [point["run_id"] for point in local["checkpoints"]]
    assert len(set(run_ids)) == 2
    assert_same_runs(local_db, ray_db, run_ids)


def test_ray_steered_curves_match_local(ray_cluster, tiny_model_dir, tmp_path, capsys) -> None:
    """`poisoned curve --steer` fans out one task per steering strength."""
    from probes.models import layer_count
    from probes.steering import VECTORS_NAME, VectorConfig

    testbed = tmp_path / "tiny_output.json"
    testbed.write_text(json.dumps(tiny_testbed_items()))
    spec = ModelSpec(str(tiny_model_dir), device="cpu")
    vector = Request(VECTORS_NAME, VectorConfig(top_n_pairs=20).resolved(layer_count(spec)), spec, tiny_sets())
    outputs, stores = [], [tmp_path / "local.duckdb", tmp_path / "ray.duckdb"]
    for db, executor in zip(stores, ("local", "ray"), strict=True):
        vector_id = wiring.run(ResultStore(db), vector).run_id
        argv = [*curve_args(tiny_model_dir, testbed), "--db", str(db), "--steer", vector_id[:12]]
        code, out, _ = run_cli(capsys, *argv, "--strength=-2", "--strength", "2", "--executor", executor)
        assert code == 0
        outputs.append(out)
    local, remote = outputs
    assert remote == local and local["steer"]["strengths"] == [-2.0, 2.0]
    run_ids = [curve["run_id"] for curve in local["curves"]]
    assert len(set(run_ids)) == 2 and not any(curve["cached"] for curve in local["curves"])
    assert_same_runs(*stores, run_ids)


def test_ray_splits_a_testbed_curve_into_shards_of_items_and_merges_them(ray_cluster, tiny_model_dir, tmp_path,
                                                                          capsys) -> None:  # fmt: skip
    """`poisoned curve --executor ray --shard-items 2`: 7 items in 4 tasks, merged by the driver into the run the
    local executor makes (same run id, same curve and fit; log-probs equal up to float rounding of the differently
    batched forward passes)."""
    testbed = tmp_path / "tiny_output.json"
    testbed.write_text(json.dumps(tiny_testbed_items(7)))
    stores = [tmp_path / "local.duckdb", tmp_path / "ray.duckdb"]
    outputs = []
    for db, executor in zip(stores, ("local", "ray"), strict=True):
        argv = [*curve_args(tiny_model_dir, testbed), "--max-items", "10", "--generate", "3", "--db", str(db),
                "--executor", executor, "--shard-items", "2"]  # fmt: skip
        code, out, err = run_cli(capsys, *argv)
        assert code == 0, err
        outputs.append(out)
    local, remote = outputs
    assert remote["run_id"] == local["run_id"] and remote["points"] == local["points"]
    a, b = (ResultStore(db).load(local["run_id"]) for db in stores)
    assert a.summary == b.summary and list(a.tables) == list(b.tables)
    assert a.tables["scores"]["item"].nunique() == 7
    for name in ("curve", "fits", "fitted", "scores", "examples"):
        pd.testing.assert_frame_equal(a.tables[name], b.tables[name], check_exact=False, rtol=1e-5, atol=1e-5)
    assert ray_cluster.executor.shard_items == 2
    from probes import poisoned

    bed = poisoned.load_testbed(testbed.read_bytes(), testbed.name)
    ranges = poisoned.shard_ranges(bed, poisoned.CurveConfig(max_items_per_category=10), 2)
    assert ranges == [(0, 2), (2, 4), (4, 6), (6, 7)]  # the 4 tasks the Ray run merged


def test_a_failing_shard_fails_its_request_only(ray_cluster, tiny_model_dir, tmp_path) -> None:
    """A request whose shards cannot run is one failure; nothing of it is stored, the other request is."""
    from probes import poisoned

    testbed = poisoned.load_testbed(json.dumps(tiny_testbed_items(5)).encode(), "tiny_output.json")
    good = Request(poisoned.NAME, poisoned.CurveConfig(n_items=6, proportion_steps=2, n_bootstrap=0),
                   ModelSpec(str(tiny_model_dir), device="cpu"), testbed)  # fmt: skip
    bad = Request(poisoned.NAME, poisoned.CurveConfig(n_items=6, proportion_steps=2, n_bootstrap=0, scoring="nope"),
                  ModelSpec(str(tiny_model_dir), device="cpu"), testbed)  # fmt: skip
    store = ResultStore(tmp_path / "results.duckdb")
    ray_cluster.executor.shard_items = 2
    result = ray_cluster.run_all(store, [bad, good])
    assert len(result.runs) == 1 and result.runs[0].run_id == good.key().run_id()
    assert len(result.failures) == 1 and "scoring" in result.failures[0].reason
    assert store.get(bad.key()) is None


def steering_prompts() -> dict:
    """Prompt sets in the tiny model's words (as tests/probes/test_steering_cli.py writes them)."""
    words = default_words(200)
    pairs = range(0, 20, 2)
    return {
        "faithful": [f"the {words[i]} of {words[i + 1]} is" for i in pairs],
        "associative": [f"{words[i + 100]} {words[i]} , {words[i + 1]} and" for i in pairs],
        "associative_words": words[100:140],
        "facts": [{"prompt": f"the {words[i]} of {words[i + 1]} is", "answer": words[i + 50]} for i in pairs],
    }


def test_ray_steering_sweeps_per_revision_match_local(ray_cluster, tmp_path, capsys) -> None:
    """`steering sweep --revisions`: one vector task and one sweep task per revision."""
    folder = save_tiny_model(tmp_path / "tiny", seed=0)
    save_tiny_model(folder / "revisions" / "step-20", seed=2)
    prompts = tmp_path / "prompts.json"
    prompts.write_text(json.dumps(steering_prompts()))
    argv = ["steering", "sweep", "--model", str(folder), "--device", "cpu", "--prompts", str(prompts),
            "--strengths=0,2", "--n-facts", "4", "--max-new-tokens", "3", "--no-random-baseline",
            "--revisions", "step-20,final", "--json"]  # fmt: skip
    outputs, stores = [], [tmp_path / "local.duckdb", tmp_path / "ray.duckdb"]
    for db, executor in zip(stores, ("local", "ray"), strict=True):
        code, out, _ = run_cli(capsys, *argv, "--db", str(db), "--executor", executor)
        assert code == 0
        outputs.append(out)
    local, remote = outputs
    assert remote == local and [sweep["revision"] for sweep in local["sweeps"]] == ["step-20", None]
    run_ids = [sweep[key] for sweep in local["sweeps"] for key in ("run_id", "vector_run_id")]
    assert len(set(run_ids)) == 4
    assert_same_runs(*stores, run_ids)


def test_a_plan_resumes_then_costs_only_look_ups(ray_cluster, tmp_path, store_path, capsys, monkeypatch) -> None:
    plan = tmp_path / "plan.toml"
    plan.write_text(PLAN)
    half = wiring.run(ResultStore(store_path), scan_request("step-250"))  # an interrupted plan stored half its runs
    code, first, _ = run_cli(capsys, "batch", str(plan), "--json", "--executor", "ray")
    assert code == 0 and first["executor"] == "ray" and first["failures"] == []
    assert [(run["revision"], run["cached"]) for run in first["runs"]] == [("step-250", True), ("step-750", False)]
    assert first["runs"][0]["id"] == half.run_id and first["computed"] == 1

    def must_not_run(*args, **kwargs):
        raise AssertionError("a stored plan needs neither a computation nor a cluster")

    monkeypatch.setattr(wiring, "compute_payload", must_not_run)
    monkeypatch.setattr(RayExecutor, "connect", must_not_run)
    code, second, _ = run_cli(capsys, "batch", str(plan), "--json", "--executor", "ray")
    assert code == 0 and second["computed"] == 0 and all(run["cached"] for run in second["runs"])
    assert [run["id"] for run in second["runs"]] == [run["id"] for run in first["runs"]]


def test_failing_tasks_are_listed_with_their_reason(ray_cluster, tmp_path, store_path, capsys) -> None:
    plan = tmp_path / "plan.toml"
    plan.write_text(
        PLAN.replace('"step-750"', '"step-999"')
        + '\n[[run]]\nprobe = "induction"\nmodels = ["assoclens-test/no-such-model"]\ndevice = "cpu"\n'
    )
    code, out, err = run_cli(capsys, "batch", str(plan), "--json", "--executor", "ray")
    assert code == 1  # some runs failed; the others are stored
    assert [run["revision"] for run in out["runs"]] == ["step-250"]
    reasons = {failure["request"]: failure["reason"] for failure in out["failures"]}
    assert "has no revision 'step-999'" in reasons["induction on organism@step-999"]
    assert "no-such-model" in reasons["induction on assoclens-test/no-such-model"]  # failed to load in the worker
    assert "failed: induction on organism@step-999" in err
    assert list(ResultStore(store_path).list_runs()["revision"]) == ["step-250"]


class KillsItsWorker:
    """Inputs whose arrival ends the worker process (as an out-of-memory kill or a native crash would)."""

    def __reduce__(self):
        return os._exit, (1,)


def test_a_killed_worker_is_a_failure_and_nothing_half_written_is_stored(ray_cluster, tmp_path) -> None:
    store = ResultStore(tmp_path / "ray.duckdb")
    dying = Request(scores.NAME, SCAN_CONFIG, ModelSpec("organism", "step-750", device="cpu"), KillsItsWorker())
    requests = [scan_request("step-250"), dying]
    batch = ray_cluster.executor.run_all(store, requests)
    assert [run.revision for run in batch.runs] == ["step-250"]  # the other one went on
    (failure,) = batch.failures
    assert failure.request == "induction on organism@step-750" and failure.run_id == dying.key().run_id()
    assert "worker running this task died" in failure.reason and "nothing of it was stored" in failure.reason
    assert list(store.list_runs()["revision"]) == ["step-250"]
    assert store.load(failure.run_id, missing_ok=True) is None
