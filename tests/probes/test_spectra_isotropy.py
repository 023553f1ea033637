"""Isotropy metrics on matrices whose spectra are known by construction."""

from __future__ import annotations

import math

import pytest
import torch

from probes.spectra.isotropy import isotropy, matrix_isotropy


def random_orthogonal(n: int, seed: int) -> torch.Tensor:
    q, _ = torch.linalg.qr(torch.randn(n, n, generator=torch.Generator().manual_seed(seed), dtype=torch.float64))
    return q


def test_identity_is_perfectly_isotropic():
    metrics, values = matrix_isotropy(torch.eye(16))
    assert metrics.svd_entropy == pytest.approx(1.0)
    assert metrics.effective_rank == pytest.approx(16.0)
    assert metrics.top_k_energy == pytest.approx(10 / 16)
    assert metrics.q75_q25 == pytest.approx(1.0)
    assert torch.allclose(values, torch.ones(16, dtype=torch.float64))


def test_rank_one_has_zero_entropy_and_rank_one():
    u, v = torch.randn(12, 1, dtype=torch.float64), torch.randn(1, 8, dtype=torch.float64)
    metrics, values = matrix_isotropy(u @ v)
    assert metrics.svd_entropy == pytest.approx(0.0, abs=1e-9)
    assert metrics.effective_rank == pytest.approx(1.0, abs=1e-9)
    assert metrics.top_k_energy == pytest.approx(1.0)
    assert math.isnan(metrics.q75_q25)  # Q25 is zero
    assert metrics.n == 8 and values[0] == pytest.approx(float(u.norm() * v.norm()))


def test_hand_computed_diagonal_spectrum_survives_rotation():
    singular = torch.tensor([3.0, 2.0, 1.0, 1.0], dtype=torch.float64)
    matrix = random_orthogonal(4, 1) @ torch.diag(singular) @ random_orthogonal(4, 2)
    metrics = matrix_isotropy(matrix, top_k=2)[0]
    shares = [9 / 15, 4 / 15, 1 / 15, 1 / 15]
    entropy = -sum(q * math.log(q) for q in shares)
    assert metrics.svd_entropy == pytest.approx(entropy / math.log(4))
    assert metrics.effective_rank == pytest.approx(math.exp(entropy))
    assert metrics.top_k_energy == pytest.approx(13 / 15)
    # sorted ascending 1, 1, 2, 3: Q25 = 1 (position 0.75), Q75 = 2.25 (position 2.25)
    assert metrics.q75_q25 == pytest.approx(2.25)
    assert metrics.spectral_norm == pytest.approx(3.0)


def test_rectangular_matrix_uses_min_dimension_and_order_does_not_matter():
    values = torch.tensor([1.0, 4.0, 2.0], dtype=torch.float64)
    assert isotropy(values).as_dict() == isotropy(values.flip(0)).as_dict()
    metrics = matrix_isotropy(torch.randn(5, 40))[0]
    assert metrics.n == 5 and 0 < metrics.svd_entropy < 1 and 1 < metrics.effective_rank < 5


def test_zero_matrix_gives_nan_not_a_crash():
    metrics = matrix_isotropy(torch.zeros(4, 4))[0]
    assert math.isnan(metrics.svd_entropy) and math.isnan(metrics.effective_rank)
