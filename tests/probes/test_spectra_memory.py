"""The one-layer associative memory: the METHODS.md reference check and the recorded trajectories."""

from __future__ import annotations

import json

import pytest
import torch

from probes.spectra import memory
from probes.spectra.memory import MemoryConfig, balance, class_frequencies, embeddings, head_mask


@pytest.fixture(scope="module")
def reference() -> memory.MemoryResult:
    """K = d = 64, p ∝ 1/k, eps = 0.1, random orthogonal embeddings, 30 steps (the acceptance setting)."""
    return memory.run(MemoryConfig(optimizers=("gd", "signgd", "adam", "muon", "muon_svd")))


def test_acceptance_balance_matches_methods_reference(reference):
    table = reference.optimizers.set_index("optimizer")
    assert table.loc["muon", "balance"] >= 0.8
    assert table.loc["gd", "balance"] <= 0.2
    assert table.loc["signgd", "balance"] <= 0.2
    # METHODS.md: Muon 0.904, GD 0.018, SignGD 0.016
    assert table.loc["muon", "balance"] == pytest.approx(0.904, abs=0.01)
    assert table.loc["muon_svd", "balance"] == pytest.approx(0.904, abs=0.005)
    assert table.loc["gd", "balance"] == pytest.approx(0.018, abs=0.004)
    assert table.loc["signgd", "balance"] == pytest.approx(0.016, abs=0.004)


def test_acceptance_muon_weight_is_more_isotropic_than_adam(reference):
    table = reference.optimizers.set_index("optimizer")
    assert table.loc["muon", "svd_entropy"] > table.loc["adam", "svd_entropy"] + 0.1
    assert table.loc["muon", "effective_rank"] > table.loc["adam", "effective_rank"]


def test_muon_updates_are_orthogonal_and_gd_updates_are_not(reference):
    iso = reference.isotropy
    updates = iso[(iso["matrix"] == "update") & (iso["step"] == 1)].set_index("optimizer")
    assert updates.loc["muon_svd", "svd_entropy"] == pytest.approx(1.0, abs=1e-6)
    assert updates.loc["muon_svd", "spectral_norm"] == pytest.approx(0.5)  # lr * U V^T
    assert updates.loc["gd", "svd_entropy"] < 0.9


def test_tables_are_complete_and_consistent(reference):
    cfg = reference.config
    n_opt, n_steps = 5, cfg.steps + 1
    assert len(reference.classes) == n_opt * n_steps * cfg.n_classes
    assert len(reference.groups) == n_opt * n_steps
    assert len(reference.spectrum) == n_opt * (2 * n_steps - 1) * cfg.d_model
    start = reference.classes[reference.classes["step"] == 0]["probability"]
    assert start.to_numpy() == pytest.approx(1 / cfg.n_classes)  # W0 = 0: uniform predictions
    groups = reference.groups.set_index(["optimizer", "step"])
    assert groups.loc[("gd", cfg.steps), "tail_loss"] > groups.loc[("gd", cfg.steps), "head_loss"]
    json.dumps(reference.summary(), allow_nan=False)  # JSON-able, no NaN


def test_gd_is_rotation_invariant_but_signgd_is_not():
    identity = memory.run(MemoryConfig(embeddings="identity", optimizers=("gd", "signgd"), lr_signgd=0.3))
    rotated = memory.run(MemoryConfig(embeddings="orthogonal", optimizers=("gd", "signgd"), lr_signgd=0.3))
    a, b = identity.optimizers.set_index("optimizer"), rotated.optimizers.set_index("optimizer")
    assert a.loc["gd", "balance"] == pytest.approx(b.loc["gd", "balance"], rel=1e-6)
    assert a.loc["signgd", "balance"] > 0.8 > 0.2 > b.loc["signgd", "balance"]  # sign is balanced on the identity


def test_balance_is_none_when_no_class_reaches_threshold():
    assert balance([torch.tensor([0.2, 0.5]), torch.tensor([0.3, 0.85])], eps=0.1) == (None, None)
    assert balance([torch.tensor([0.2, 0.5]), torch.tensor([0.3, 0.95])], eps=0.1) == (pytest.approx(0.3), 1)
    result = memory.run(MemoryConfig(n_classes=8, d_model=8, steps=2, optimizers=("adam",), lr_adam=1e-4))
    row = result.summary()["optimizers"]["adam"]
    assert row["balance"] is None and row["balance_step"] is None and 0 < row["worst_prob_final"] < 0.2


def test_frequencies_groups_and_embeddings():
    zipf = MemoryConfig(n_classes=8, d_model=10)
    p = class_frequencies(zipf)
    assert p.sum() == pytest.approx(1.0) and p[0] / p[7] == pytest.approx(8.0)
    mask = head_mask(zipf, p)
    assert p[mask].sum() >= 0.5 and p[mask][:-1].sum() < 0.5  # smallest head set holding half the mass
    two = MemoryConfig(n_classes=8, d_model=8, frequencies="two_group", imbalance_ratio=5.0, head_class_fraction=0.25)
    q = class_frequencies(two)
    assert q[0] / q[7] == pytest.approx(5.0) and head_mask(two, q).sum() == 2
    e, et = embeddings(zipf)
    assert e.shape == (10, 8) and torch.allclose(e.T @ e, torch.eye(8, dtype=torch.float64))
    assert not torch.allclose(e, et)


def test_minibatch_and_seed_reproducibility():
    cfg = MemoryConfig(n_classes=16, d_model=16, batch_size=32, steps=10, optimizers=("muon", "adam"))
    first, second = memory.run(cfg), memory.run(cfg)
    assert first.classes["probability"].equals(second.classes["probability"])
    other = memory.run(
        MemoryConfig(n_classes=16, d_model=16, batch_size=32, steps=10, optimizers=("muon", "adam"), seed=1)
    )
    assert not first.classes["probability"].equals(other.classes["probability"])


def test_invalid_configs_raise_value_error():
    with pytest.raises(ValueError, match="d_model"):
        memory.run(MemoryConfig(n_classes=10, d_model=8))
    with pytest.raises(ValueError, match="optimizer"):
        memory.run(MemoryConfig(optimizers=("sgdx",)))
