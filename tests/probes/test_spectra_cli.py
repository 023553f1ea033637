"""`python -m probes spectra ...`: one JSON object, the acceptance numbers, the cache, one-line errors."""

from __future__ import annotations

import json

import pytest

from probes.cli import main


def run_json(capsys, *argv: str) -> dict:
    assert main(list(argv)) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1  # exactly one JSON object
    return json.loads(out)


def test_memory_command_reports_acceptance_numbers_and_caches(capsys, store_path):
    argv = ["spectra", "memory", "--k", "64", "--steps", "30", "--embeddings", "orthogonal", "--json"]
    first = run_json(capsys, *argv)
    optimizers = first["optimizers"]
    assert set(optimizers) == {"gd", "signgd", "adam", "muon"}
    for row in optimizers.values():
        assert {"balance", "svd_entropy", "effective_rank", "head_loss", "tail_loss"} <= set(row)
    assert optimizers["muon"]["balance"] >= 0.8
    assert optimizers["gd"]["balance"] <= 0.2 and optimizers["signgd"]["balance"] <= 0.2
    assert optimizers["muon"]["svd_entropy"] > optimizers["adam"]["svd_entropy"]
    assert first["cached"] is False
    second = run_json(capsys, *argv)
    assert second["cached"] is True and second["run_id"] == first["run_id"]
    assert second["optimizers"] == optimizers


def test_memory_command_unreached_balance_is_null(capsys, store_path):
    out = run_json(
        capsys, "spectra", "memory", "--k", "8", "--steps", "2", "--optimizers", "adam", "--lr-adam", "0.0001", "--json"
    )
    assert out["optimizers"]["adam"]["balance"] is None
    assert out["optimizers"]["adam"]["worst_prob_final"] > 0


def test_memory_command_bad_input_is_one_line_exit_2(capsys, store_path):
    assert main(["spectra", "memory", "--k", "16", "--d", "8", "--json"]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.startswith("error: ") and captured.err.count("\n") == 1


def test_transformer_command(capsys, store_path):
    out = run_json(
        capsys,
        "spectra",
        "transformer",
        "--steps",
        "4",
        "--individuals",
        "9",
        "--setups",
        "adam",
        "muon_vo_ffn",
        "--json",
    )
    assert set(out["setups"]) == {"adam", "muon_vo_ffn"}
    assert {"head_accuracy", "tail_accuracy", "W_VO_svd_entropy"} <= set(out["setups"]["adam"])


def test_weights_command_compares_revisions(capsys, store_path, tmp_path):
    from probes.tiny import save_tiny_model

    folder = save_tiny_model(tmp_path / "m", seed=1)
    save_tiny_model(folder / "revisions" / "step-5", seed=2)
    out = run_json(
        capsys,
        "spectra",
        "weights",
        "--model",
        str(folder),
        "--device",
        "cpu",
        "--compare-revision",
        "step-5",
        "--json",
    )
    first, second = out["models"]
    assert first["revision"] is None and second["revision"] == "step-5"
    assert set(first["matrices"]) == {"W_V", "W_O", "W_VO", "W_VO_sum", "W_in", "W_out"}
    assert first["matrices"]["W_in"] != second["matrices"]["W_in"]  # different weights, different spectra
    assert first["missing"] == []


@pytest.mark.parametrize("revision", ["step-404"])
def test_weights_command_unknown_revision_is_exit_2(capsys, store_path, tiny_model_dir, revision):
    assert main(["spectra", "weights", "--model", str(tiny_model_dir), "--revision", revision, "--json"]) == 2
    assert "no revision" in capsys.readouterr().err
