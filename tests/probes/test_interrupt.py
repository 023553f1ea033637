"""Ctrl-C on a fan-out command (`induction sweep`, local executor): exit 130 with one line on stderr, every run
finished before the interrupt stored whole, nothing partial; the same command afterwards computes only the rest."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from cache import ResultStore
from probes.models import EMBEDDED_MODEL_DIR, local_revisions

ROOT = Path(__file__).resolve().parents[2]


def test_ctrl_c_keeps_the_finished_runs_and_a_rerun_computes_only_the_rest(tmp_path: Path) -> None:
    revisions = local_revisions(EMBEDDED_MODEL_DIR)
    db = tmp_path / "results.duckdb"
    env = {**os.environ, "ASSOCLENS_DB": str(db), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_VERBOSITY": "error"}
    argv = [sys.executable, "-m", "probes", "induction", "sweep", "--model", "organism", "--device", "cpu", "--json",
            "--revisions", ",".join(revisions), "--seq-len", "48", "--n-seqs", "48", "--executor", "local"]  # fmt: skip
    sweep = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    store = ResultStore(db)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and sweep.poll() is None:
        if len(store.list_runs()) >= 1:
            break
        time.sleep(0.2)
    assert sweep.poll() is None, "the sweep finished before it could be interrupted; make its scans longer"
    sweep.send_signal(signal.SIGINT)
    out, err = sweep.communicate(timeout=120)
    assert sweep.returncode == 130, (sweep.returncode, err)
    last = err.strip().splitlines()[-1]
    assert last.startswith("error: interrupted") and out == ""
    stored = set(store.list_runs()["run_id"])
    assert 1 <= len(stored) < len(revisions)
    for run_id in stored:  # every stored run is whole
        run = store.load(run_id)
        assert run.tables and all(len(frame) > 0 for frame in run.tables.values())
    rerun = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr
    result = json.loads(rerun.stdout)
    served = [point for point in result["checkpoints"] if point["run_id"] in stored]
    assert len(served) == len(stored) and len(result["checkpoints"]) == len(revisions)
    assert len(store.list_runs()) == len(revisions)
