"""`python -m probes induction scan|train|sweep|attention`: one JSON object, cache reuse, resumable sweep, errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from probes.cli import main
from probes.tiny import save_tiny_model


def run_json(capsys, argv: list[str]) -> dict:
    assert main([*argv, "--json"]) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1  # exactly one JSON object
    return json.loads(out)


@pytest.fixture(scope="module")
def model_with_checkpoints(tmp_path_factory) -> Path:
    folder = save_tiny_model(tmp_path_factory.mktemp("ckpt"), seed=0)
    for step, seed in ((100, 1), (20, 2)):
        save_tiny_model(folder / "revisions" / f"step-{step}", seed=seed)
    return folder


def test_scan_prints_scores_and_reuses_the_cache(capsys, tiny_model_dir, store_path):
    argv = ["induction", "scan", "--model", str(tiny_model_dir), "--device", "cpu", "--seq-len", "8", "--n-seqs", "2"]
    first = run_json(capsys, argv)
    for key in ("induction", "previous_token", "duplicate_token"):
        assert np.asarray(first[key]).shape == (2, 4)
    assert isinstance(first["icl_score"], float)
    best = max(max(row) for row in first["induction"])
    assert first["top_heads"][0]["score"] == pytest.approx(best, abs=1e-6)
    assert set(first["top_heads"][0]) == {"layer", "head", "score"}
    assert not first["cached"]
    again = run_json(capsys, argv)
    assert again["cached"] and again["run_id"] == first["run_id"] and again["induction"] == first["induction"]


def test_train_repeat_prints_history_and_phase_change(capsys, store_path):
    out = run_json(capsys, ["induction", "train", "--task", "repeat", "--steps", "40", "--record-every", "20",
                            "--seq-len", "6", "--vocab-size", "16"])  # fmt: skip
    assert [record["step"] for record in out["history"]] == [0, 20, 40]
    new_fields = {"loss_ratio", "layer_induction_total", "best_layer"}
    assert {"loss", "first_half_loss", "induction_score", "previous_token_score"} | new_fields <= set(out["history"][0])
    assert out["final"] == out["history"][-1]
    assert out["final"]["loss_ratio"] == pytest.approx(out["final"]["loss"] / out["final"]["first_half_loss"])
    assert out["phase_metric"] == "layer_induction_total" and out["phase_threshold"] == 0.6
    assert out["phase_change_step"] is None or isinstance(out["phase_change_step"], int)


def test_train_bursty_records_icl_iwl_and_flipped_accuracy(capsys, store_path):
    out = run_json(capsys, ["induction", "train", "--task", "bursty", "--steps", "20", "--record-every", "10",
                            "--n-classes", "32", "--batch-size", "16"])  # fmt: skip
    record = out["history"][-1]
    for key in ("icl_accuracy", "iwl_accuracy", "flipped_accuracy", "induction_score", "loss"):
        assert 0.0 <= record[key] <= 1.0 or key == "loss"
    assert out["phase_metric"] == "icl_accuracy"


def test_sweep_scans_every_checkpoint_in_step_order_and_resumes(capsys, model_with_checkpoints, store_path):
    base = ["induction", "sweep", "--model", str(model_with_checkpoints), "--device", "cpu", "--seq-len", "6",
            "--n-seqs", "1", "--no-copying"]  # fmt: skip
    partial = run_json(capsys, [*base, "--revisions", "step-20"])  # an 'interrupted' sweep
    full = run_json(capsys, base)
    assert [point["revision"] for point in full["checkpoints"]] == ["step-20", "step-100", "final"]
    assert [point["step"] for point in full["checkpoints"][:2]] == [20, 100]
    assert full["checkpoints"][0]["run_id"] == partial["checkpoints"][0]["run_id"]  # served from the cache
    scores = [point["best_induction"] for point in full["checkpoints"]]
    assert len(set(scores)) == 3  # three different models were scanned


def test_attention_on_text(capsys, tiny_model_dir, store_path):
    out = run_json(capsys, ["induction", "attention", "--model", str(tiny_model_dir), "--device", "cpu",
                            "--text", "lede madi lede madi", "--layer", "1", "--head", "2"])  # fmt: skip
    assert out["tokens"][1:] == ["lede", "madi", "lede", "madi"]
    assert len(out["pattern"]) == 5 * 6 // 2


def test_user_errors_exit_2_with_one_line(capsys, tiny_model_dir, store_path):
    assert main(["induction", "scan", "--model", str(tiny_model_dir), "--device", "cpu", "--seq-len", "1"]) == 2
    assert capsys.readouterr().err.count("\n") == 1
    assert main(["induction", "scan", "--model", str(tiny_model_dir), "--device", "cpu", "--seq-len", "200"]) == 2
    last_line = capsys.readouterr().err.strip().splitlines()[-1]  # earlier lines: the library's loading bar
    assert last_line.startswith("error:") and "context" in last_line
    assert main(["induction", "attention", "--model", str(tiny_model_dir), "--device", "cpu", "--text", "lede madi",
                 "--layer", "9", "--head", "0"]) == 2  # fmt: skip
    assert "does not exist" in capsys.readouterr().err
