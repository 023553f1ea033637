"""The Rescorla-Wagner model, its fit (recovery within 0.03), and the rw-fit command."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from probes.cli import main
from probes.poisoned.rescorla_wagner import (
    associative_strength,
    fit_rw,
    fit_rw_many,
    fit_sequential,
    overweighting,
    rw_curve,
    sequential_shape,
    sequential_strengths,
)

PROPORTIONS = np.arange(21) / 20  # the paper's 5% steps
N_ITEMS = 20


def test_strength_follows_the_update_rule() -> None:
    v, alpha_beta = 0.0, 0.3
    for trials in range(1, 8):
        v += alpha_beta * (1.0 - v)  # V <- V + ab (lambda - V), lambda = 1
        assert associative_strength(trials, alpha_beta) == pytest.approx(v)


def test_curve_edges_and_shapes() -> None:
    curve = rw_curve(PROPORTIONS, N_ITEMS, 0.2, 0.6)
    assert curve[0] == 0.0 and curve[-1] == pytest.approx(0.6)
    assert curve[10] == pytest.approx(0.3)  # equal shares: half the scale
    assert np.all(np.diff(curve) > 0)
    assert curve[2] > 0.6 * PROPORTIONS[2]  # concave: 10% share earns more than 10% of the scale
    nearly_linear = rw_curve(PROPORTIONS, N_ITEMS, 1e-4, 0.6)
    np.testing.assert_allclose(nearly_linear, 0.6 * PROPORTIONS, atol=1e-3)


@pytest.mark.parametrize("alpha_beta", [0.03, 0.1, 0.2, 0.3])
def test_fit_recovers_alpha_beta_within_0_03_from_noisy_curves(alpha_beta: float) -> None:
    rng = np.random.default_rng(int(alpha_beta * 1000))
    for _ in range(10):
        scale = rng.uniform(0.4, 0.9)
        noisy = rw_curve(PROPORTIONS, N_ITEMS, alpha_beta, scale) + rng.normal(0.0, 0.01, PROPORTIONS.size)
        fit = fit_rw(PROPORTIONS, noisy, N_ITEMS)
        assert abs(fit.alpha_beta - alpha_beta) < 0.03
        assert abs(fit.scale - scale) < 0.03
        assert fit.r2 > 0.97


def test_exact_curve_is_fitted_exactly_and_batch_fit_agrees() -> None:
    exact = rw_curve(PROPORTIONS, N_ITEMS, 0.17, 0.55)
    fit = fit_rw(PROPORTIONS, exact, N_ITEMS)
    assert fit.alpha_beta == pytest.approx(0.17, abs=1e-4) and fit.r2 == pytest.approx(1.0, abs=1e-8)
    grid_only = fit_rw_many(PROPORTIONS, np.stack([exact, exact]), N_ITEMS, refine=False)
    assert all(abs(f.alpha_beta - 0.17) < 0.01 for f in grid_only)


def test_overweighting_is_positive_below_half_for_a_concave_curve() -> None:
    fit = fit_rw(PROPORTIONS, rw_curve(PROPORTIONS, N_ITEMS, 0.25, 0.5), N_ITEMS)
    excess = overweighting(PROPORTIONS, fit)
    assert np.all(excess[1:10] > 0) and np.all(excess[11:20] < 0)


def test_fit_refuses_too_few_or_non_finite_points() -> None:
    with pytest.raises(ValueError, match="at least 3"):
        fit_rw(np.array([0.0, 1.0]), np.array([0.0, 1.0]), N_ITEMS)
    with pytest.raises(ValueError, match="finite"):
        fit_rw(PROPORTIONS, np.full(PROPORTIONS.size, np.nan), N_ITEMS)


def test_sequential_variant_gives_early_items_more_weight() -> None:
    early = sequential_strengths([True] * 5 + [False] * 15, 0.2)
    late = sequential_strengths([False] * 15 + [True] * 5, 0.2)
    assert early[0] / sum(early) > 0.5 > late[0] / sum(late)


def _write_csv(path: Path, rows: list[tuple]) -> Path:
    path.write_text("proportion,strength\n" + "".join(f"{p},{s}\n" for p, s in rows))
    return path


def test_rw_fit_command(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    curve = rw_curve(PROPORTIONS, N_ITEMS, 0.15, 0.7)
    path = _write_csv(tmp_path / "curve.csv", list(zip(PROPORTIONS, curve, strict=True)))
    assert main(["rw-fit", "--csv", str(path), "--n-items", "20", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["alpha_beta"] == pytest.approx(0.15, abs=1e-3)
    assert out["scale"] == pytest.approx(0.7, abs=1e-3) and out["r2"] == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("proportion,value\n0,1\n", "needs columns proportion,strength"),
        ("proportion,strength\n0,0\n0.5,abc\n1,1\n", "row 1: field 'strength' is not a number"),
        ("proportion,strength\n0,0\n1.5,0.2\n1,1\n", "row 1: field 'proportion' = 1.5 is out of range"),
        ("proportion,strength\n0,0\n1,1\n", "at least 3 proportions"),
    ],
)
def test_rw_fit_command_bad_csv(tmp_path: Path, capsys: pytest.CaptureFixture, content: str, message: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(content)
    assert main(["rw-fit", "--csv", str(path), "--n-items", "20", "--json"]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and message in captured.err and captured.err.count("\n") == 1


def test_vectorised_sequential_shape_matches_the_trial_loop_and_its_fit_recovers_alpha_beta() -> None:
    orders = []
    for position in ("first", "last", "spread"):
        for n_bad in range(0, 21, 4):
            order = np.zeros((1, N_ITEMS), dtype=bool)
            if position == "first":
                order[0, :n_bad] = True
            elif position == "last":
                order[0, N_ITEMS - n_bad :] = True
            else:
                order[0, np.linspace(0, N_ITEMS - 1, n_bad).astype(int)] = True
            orders.append(order)
    v1, v2 = sequential_strengths(list(orders[3][0]), 0.2)
    assert sequential_shape(orders[3], np.array([0.2]))[0] == pytest.approx(v1 / (v1 + v2))
    rng = np.random.default_rng(5)
    truth = np.array([0.6 * sequential_shape(o, np.array([0.12]))[0] for o in orders])
    fit = fit_sequential(orders, truth + rng.normal(0.0, 0.01, truth.size))
    assert abs(fit.alpha_beta - 0.12) < 0.03 and abs(fit.scale - 0.6) < 0.03 and fit.r2 > 0.97
