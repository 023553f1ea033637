"""Stored runs come back as their probe's own typed result (`from_stored`): induction and spectra probes.

Each test computes a small run through the wiring layer and the real store, rebuilds it with `wiring.result_of`,
and checks that the rebuilt result writes back exactly the stored tables and summary, plus the typed reads the
pages use.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from pandas.testing import assert_frame_equal

from cache import ResultStore, StoredRun
from probes import wiring
from probes.induction import attention, emergence, scores, sweep
from probes.models import ModelSpec
from probes.spectra import memory, transformer, weights


def stored_and_rebuilt(tmp_path: Path, probe: str, cfg: object, model_dir: Path | None = None):
    spec = None if model_dir is None else ModelSpec(str(model_dir), device="cpu")
    store = ResultStore(tmp_path / "r.duckdb")
    request = wiring.Request(probe, cfg, spec)
    computed = wiring.run(store, request)
    served = wiring.run(store, request)  # read back from the database, not the in-memory payload
    assert served.cached and served.run_id == computed.run_id
    return served, wiring.result_of(served)


def assert_round_trip(stored: StoredRun, rebuilt: object) -> None:
    tables = rebuilt.to_tables()
    assert list(tables) == list(stored.tables)
    for name, frame in stored.tables.items():
        assert_frame_equal(tables[name], frame, check_exact=True, obj=name)
    # JSON text compares NaN (the skipped copying score) as equal; the store keeps the summary as this JSON
    assert json.dumps(rebuilt.summary(), sort_keys=True) == json.dumps(stored.summary, sort_keys=True)
    assert (rebuilt.files() if hasattr(rebuilt, "files") else {}) == stored.files


@pytest.mark.parametrize("copying", [True, False])
def test_scan_round_trip(tiny_model_dir, tmp_path, copying):
    cfg = scores.ScanConfig(seq_len=8, n_seqs=2, top_k=3, copying=copying)
    stored, rebuilt = stored_and_rebuilt(tmp_path, scores.NAME, cfg, tiny_model_dir)
    assert isinstance(rebuilt, scores.ScanResult)
    assert_round_trip(stored, rebuilt)
    best = stored.summary["best_induction"]
    assert rebuilt.best_head() == (best["layer"], best["head"], best["score"])
    assert rebuilt.icl_score == stored.summary["icl_score"]
    assert rebuilt.half_losses() == (stored.summary["first_half_loss"], stored.summary["second_half_loss"])
    assert (rebuilt.n_layers, rebuilt.n_heads, rebuilt.seq_len) == (2, 4, 8)
    assert rebuilt.scores["induction"].dtype == np.float32 and rebuilt.position_loss.dtype == np.float32
    expected = ["induction", "previous_token", "duplicate_token"] + (["copying"] if copying else [])
    assert rebuilt.measured_scores() == expected
    frame = sweep.sweep_frame([sweep.SweepPoint(None, None, stored.run_id, rebuilt)])
    row = frame.iloc[0]
    assert (row.best_induction, row.best_layer, row.best_head) == (best["score"], best["layer"], best["head"])
    assert (row.icl_score, row.first_half_loss) == (stored.summary["icl_score"], stored.summary["first_half_loss"])


def test_text_attention_round_trip(tiny_model_dir, tmp_path):
    cfg = attention.TextAttentionConfig(text="lede madi . lede madi", layer=1, head=0)
    stored, rebuilt = stored_and_rebuilt(tmp_path, attention.NAME, cfg, tiny_model_dir)
    assert isinstance(rebuilt, attention.TextAttentionResult)
    assert_round_trip(stored, rebuilt)
    assert rebuilt.tokens == stored.summary["tokens"] and (rebuilt.layer, rebuilt.head) == (1, 0)
    assert rebuilt.pattern.dtype == np.float32 and rebuilt.pattern.shape == (len(rebuilt.tokens),) * 2
    share = rebuilt.induction_attention()
    assert share is not None and share == stored.summary["induction_attention"]


@pytest.mark.parametrize(
    "cfg",
    [
        emergence.TrainConfig(steps=20, record_every=10, seq_len=6, vocab_size=16, eval_seqs=8, batch_size=8),
        emergence.bursty_config(steps=4, record_every=2, eval_seqs=8, batch_size=8, n_classes=32, mlp_hidden=16),
    ],
    ids=["repeat", "bursty"],
)
def test_emergence_round_trip(tmp_path, cfg):
    stored, rebuilt = stored_and_rebuilt(tmp_path, emergence.NAME, cfg)
    assert isinstance(rebuilt, emergence.EmergenceResult)
    assert_round_trip(stored, rebuilt)
    assert rebuilt.config is None and rebuilt.task == cfg.task
    assert rebuilt.phase_metric == stored.summary["phase_metric"] == emergence.PHASE_METRICS[cfg.task]
    assert rebuilt.phase_change_step == stored.summary["phase_change_step"]
    assert rebuilt.phase_threshold == stored.summary["phase_threshold"]
    assert rebuilt.final == stored.summary["final"] and rebuilt.final["step"] == cfg.steps
    assert rebuilt.to_frame()["step"].tolist() == list(range(0, cfg.steps + 1, cfg.record_every))
    assert rebuilt.weights == stored.files["model.safetensors"] and rebuilt.weights


def test_emergence_result_needs_a_config_or_a_task():
    with pytest.raises(ValueError, match="config or its task"):
        emergence.EmergenceResult(None, [], None, b"", 0.0)


@pytest.mark.parametrize(
    "cfg",
    [
        memory.MemoryConfig(n_classes=8, d_model=8, steps=6, optimizers=("gd", "muon")),
        memory.MemoryConfig(n_classes=8, d_model=8, steps=2, optimizers=("adam",), lr_adam=1e-4),  # balance None
    ],
    ids=["balanced", "unbalanced"],
)
def test_memory_round_trip(tmp_path, cfg):
    stored, rebuilt = stored_and_rebuilt(tmp_path, memory.NAME, cfg)
    assert isinstance(rebuilt, memory.MemoryResult)
    assert_round_trip(stored, rebuilt)
    assert rebuilt.config is None
    assert (rebuilt.eps, rebuilt.n_classes, rebuilt.embeddings) == (cfg.eps, 8, cfg.embeddings)
    assert rebuilt.steps == cfg.steps
    assert rebuilt.optimizers["optimizer"].tolist() == list(cfg.optimizers)
    assert set(rebuilt.isotropy["matrix"]) == {"W", "update"}


def test_transformer_round_trip(tmp_path):
    cfg = transformer.TransformerConfig(
        setups=("adam", "muon"), n_individuals=12, n_first_names=4, n_last_names=4, n_relations=2, n_answers=4,
        d_model=16, n_heads=2, n_layers=1, d_mlp=32, steps=6, batch_size=16, log_every=3,
    )  # fmt: skip
    stored, rebuilt = stored_and_rebuilt(tmp_path, transformer.NAME, cfg)
    assert isinstance(rebuilt, transformer.TransformerResult)
    assert_round_trip(stored, rebuilt)
    assert rebuilt.config is None and rebuilt.steps == cfg.steps == stored.summary["steps"]
    assert rebuilt.setups["setup"].tolist() == ["adam", "muon"]
    assert sorted(rebuilt.isotropy["step"].unique()) == [0, 3, 6]


def test_weights_round_trip(tiny_model_dir, tmp_path):
    stored, rebuilt = stored_and_rebuilt(tmp_path, weights.NAME, weights.WeightsConfig(), tiny_model_dir)
    assert isinstance(rebuilt, weights.WeightsResult)
    assert_round_trip(stored, rebuilt)
    assert rebuilt.n_layers == stored.summary["n_layers"] == 2
    assert rebuilt.matrices() == ["W_V", "W_O", "W_VO", "W_VO_sum", "W_in", "W_out"]
    assert rebuilt.layers() == [0, 1] and rebuilt.missing.empty
