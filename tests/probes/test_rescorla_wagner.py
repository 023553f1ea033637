"""The Rescorla-Wagner model with baseline, its bounded fit (recovery within 0.03, never worse than the nested
constant and proportional fits), the competing models with AIC, and the rw-fit command."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from probes.cli import main
from probes.poisoned.rescorla_wagner import (
    MODELS,
    associative_strength,
    describe,
    fit_curves,
    fit_rw,
    fit_rw_many,
    fit_sequential,
    logistic_shape,
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
        baseline, scale = rng.uniform(0.0, 0.2), rng.uniform(0.6, 0.95)  # three free parameters now
        truth = rw_curve(PROPORTIONS, N_ITEMS, alpha_beta, scale, baseline)
        fit = fit_rw(PROPORTIONS, truth + rng.normal(0.0, 0.01, PROPORTIONS.size), N_ITEMS)
        assert abs(fit.alpha_beta - alpha_beta) < 0.03
        assert abs(fit.baseline - baseline) < 0.03 and abs(fit.scale - scale) < 0.03
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


# ------------------------------------------------------------------ baseline, bounds, nested models, AIC

# issue 15: the organism's summed-log-prob curve (0% -> 0, 10% -> 0, 20% -> 0.2, 60% -> 1.0), all 11 shares
S_SHAPED = (np.linspace(0.0, 1.0, 11), np.array([0.0, 0.0, 0.208, 0.292, 0.625, 0.75, 1.0, 1.0, 1.0, 1.0, 1.0]))
FINE = np.linspace(0.0, 1.0, 201)


@pytest.mark.parametrize(
    ("alpha_beta", "baseline", "scale"),
    [(0.05, 0.1, 0.8), (0.15, 0.3, 0.9), (0.3, 0.0, 0.6), (0.5, 0.2, 1.0), (0.2, 0.9, 0.1)],  # last: decreasing
)
def test_noiseless_rw_curves_recover_alpha_beta_baseline_and_scale(
    alpha_beta: float, baseline: float, scale: float
) -> None:
    truth = rw_curve(PROPORTIONS, N_ITEMS, alpha_beta, scale, baseline)
    assert truth[0] == pytest.approx(baseline) and truth[-1] == pytest.approx(scale)
    fits = fit_curves(PROPORTIONS, truth, N_ITEMS)
    assert fits.rw.alpha_beta == pytest.approx(alpha_beta, abs=1e-4)
    assert fits.rw.baseline == pytest.approx(baseline, abs=1e-4) and fits.rw.scale == pytest.approx(scale, abs=1e-4)
    assert fits.rw.r2 == pytest.approx(1.0, abs=1e-9) and fits.best_model == "rw"
    np.testing.assert_allclose(
        fits.predict("rw", FINE), rw_curve(FINE, N_ITEMS, alpha_beta, scale, baseline), atol=1e-4
    )


def test_bounded_fits_of_the_s_shaped_curve_stay_in_0_1_and_the_logistic_wins() -> None:
    proportions, strengths = S_SHAPED
    fits = fit_curves(proportions, strengths, N_ITEMS)
    assert 0.0 <= fits.rw.baseline <= 1.0 and 0.0 <= fits.rw.scale <= 1.0  # the old fit: c = 1.56, curve above 1
    for name in MODELS:
        curve = fits.predict(name, FINE)
        assert curve.min() >= 0.0 and curve.max() <= 1.0, name
        assert all(0.0 <= fits.models[name].params[key] <= 1.0 for key in ("b", "c") if key in fits.models[name].params)
    assert fits.best_model == "logistic" and fits.models["logistic"].r2 > 0.98
    assert 0.3 < fits.models["logistic"].params["p0"] < 0.45
    assert describe("logistic", fits).startswith("the model follows the majority of the context")
    assert fits.models["rw"].r2 >= fits.models["proportional"].r2 >= fits.models["constant"].r2


def test_flat_curve_is_a_constant_and_never_scores_below_it() -> None:
    wobble = np.array([1, -1, 0, 1, -1, 0, 1, -1, 0, 1, -1]) * 0.01
    proportions = np.linspace(0.0, 1.0, 11)
    fits = fit_curves(proportions, 0.79 + wobble, N_ITEMS)
    assert fits.best_model == "constant"
    assert fits.rw.r2 >= fits.models["constant"].r2 == pytest.approx(0.0)  # the old fit: R^2 = -1353
    assert fits.models["constant"].params["b"] == pytest.approx(0.79)
    exactly_flat = fit_curves(proportions, np.full(11, 0.79), N_ITEMS)
    assert exactly_flat.best_model == "constant" and np.isnan(exactly_flat.rw.r2)
    assert exactly_flat.rw.baseline == pytest.approx(0.79) and exactly_flat.rw.scale == pytest.approx(0.79)
    summary = exactly_flat.as_dict()
    assert summary["r2"] is None and summary["best_model"] == "constant"
    assert describe("constant", exactly_flat).startswith("no dependence on the share")


def _random_curve(rng: np.random.Generator, index: int) -> tuple[np.ndarray, np.ndarray]:
    """S-shaped, flat, noisy RW, decreasing, or pure noise; sometimes outside [0, 1], sometimes uneven shares."""
    size = int(rng.integers(3, 22))
    proportions = np.sort(rng.uniform(0.0, 1.0, size)) if index % 2 else np.linspace(0.0, 1.0, size)
    kind = index % 5
    if kind == 0:
        strengths = rng.uniform(0.5, 1.0) * logistic_shape(proportions, rng.uniform(5.0, 60.0), rng.uniform(0.1, 0.9))
    elif kind == 1:
        strengths = np.full(size, rng.uniform(0.0, 1.0)) + rng.normal(0.0, 0.005, size) * rng.integers(0, 2)
    elif kind == 2:
        params = rng.uniform(0.0, 0.5), rng.uniform(0.0, 1.0), rng.uniform(0.0, 1.0)
        strengths = rw_curve(proportions, N_ITEMS, *params) + rng.normal(0.0, 0.1, size)
    elif kind == 3:
        strengths = 1.0 - proportions + rng.normal(0.0, 0.05, size)
    else:
        strengths = rng.uniform(-0.2, 1.2, size)
    return proportions, strengths


def test_rw_r2_is_never_below_the_nested_constant_and_proportional_fits_on_random_curves() -> None:
    rng = np.random.default_rng(15)
    for index in range(300):
        proportions, strengths = _random_curve(rng, index)
        bounded = bool(np.all((strengths >= 0) & (strengths <= 1))) if index % 3 else True
        fits = fit_curves(proportions, strengths, int(rng.integers(1, 50)), bounded=bounded)
        rw, models = fits.rw, fits.models
        for nested in ("constant", "proportional"):
            assert rw.sse <= models[nested].sse, (index, nested)
            assert np.isnan(rw.r2) or rw.r2 >= models[nested].r2, (index, nested)
        assert models["logistic"].sse <= models["constant"].sse + 1e-12, index  # k = 0 is a constant
        if bounded:
            for name in MODELS:
                curve = fits.predict(name, FINE)
                assert curve.min() >= 0.0 and curve.max() <= 1.0, (index, name)
    bootstrap = fit_rw_many(PROPORTIONS, rng.uniform(0.0, 1.0, (50, PROPORTIONS.size)), N_ITEMS, refine=False)
    assert all(0.0 <= f.baseline <= 1.0 and 0.0 <= f.scale <= 1.0 for f in bootstrap)


def test_bounded_levels_are_the_exact_box_optimum() -> None:
    rng = np.random.default_rng(3)
    grid = np.linspace(0.0, 1.0, 401)
    b, c = np.meshgrid(grid, grid, indexing="ij")  # (401, 401) brute force over the unit box
    for _ in range(5):
        strengths = rng.uniform(-0.5, 1.5, PROPORTIONS.size)
        fits = fit_curves(PROPORTIONS, strengths, N_ITEMS)
        predicted = b[..., None] + (c - b)[..., None] * PROPORTIONS  # (401, 401, P)
        brute = ((strengths - predicted) ** 2).sum(axis=-1).min()
        assert fits.models["proportional"].sse <= brute + 1e-12
        assert fits.models["proportional"].sse >= brute - 1e-3  # the grid is close to the optimum


def test_aic_formula_and_choice() -> None:
    rng = np.random.default_rng(7)
    noisy = rw_curve(PROPORTIONS, N_ITEMS, 0.25, 0.85, 0.05) + rng.normal(0.0, 0.02, PROPORTIONS.size)
    fits = fit_curves(PROPORTIONS, noisy, N_ITEMS)
    n = PROPORTIONS.size
    for name, model in fits.models.items():
        assert model.aic == pytest.approx(n * np.log(model.sse / n) + 2 * model.n_params), name
    assert [fits.models[name].n_params for name in MODELS] == [1, 2, 3, 4]
    assert fits.best_model == min(fits.models, key=lambda name: fits.models[name].aic) == "rw"
    line = fit_curves(PROPORTIONS, 0.1 + 0.7 * PROPORTIONS, N_ITEMS)  # RW fits it as well (ab = 0): a tie on SSE
    assert line.models["rw"].sse == pytest.approx(line.models["proportional"].sse, abs=1e-12)
    assert line.best_model == "proportional" and line.rw.alpha_beta == 0.0
    assert describe("proportional", line) == "the answer moves in proportion to the share of inappropriate content"
    sigmoid = 0.1 + 0.8 * logistic_shape(PROPORTIONS, 15.0, 0.55)
    assert fit_curves(PROPORTIONS, sigmoid, N_ITEMS).best_model == "logistic"
    concave = fit_curves(PROPORTIONS, rw_curve(PROPORTIONS, N_ITEMS, 0.3, 0.7, 0.1), N_ITEMS)
    assert describe("rw", concave).startswith("small shares of inappropriate content already move the answer")


def test_curve_fits_as_dict_is_json_safe_and_has_exactly_the_documented_keys() -> None:
    fits = fit_curves(PROPORTIONS, np.full(PROPORTIONS.size, 0.4), N_ITEMS)
    summary = json.loads(json.dumps(fits.as_dict(), allow_nan=False))
    assert set(summary) == {"alpha_beta", "baseline", "scale", "r2", "best_model", "models"}
    assert set(summary["models"]) == set(MODELS)
    for model in summary["models"].values():
        assert set(model) == {"params", "r2", "aic", "aicc", "sse", "n_params"} and model["r2"] is None


def test_unbounded_fit_recovers_strengths_outside_0_1() -> None:
    truth = rw_curve(PROPORTIONS, N_ITEMS, 0.2, 40.0, -5.0)
    fit = fit_rw(PROPORTIONS, truth, N_ITEMS, bounded=False)
    assert fit.alpha_beta == pytest.approx(0.2, abs=1e-4) and fit.baseline == pytest.approx(-5.0, abs=1e-3)
    assert fit.scale == pytest.approx(40.0, abs=1e-3)
    clipped = fit_rw(PROPORTIONS, truth, N_ITEMS)  # bounded: b, c stay in [0, 1]
    assert 0.0 <= clipped.baseline <= 1.0 and 0.0 <= clipped.scale <= 1.0


def test_overweighting_is_measured_from_the_fitted_proportional_line_with_baseline() -> None:
    fit = fit_rw(PROPORTIONS, rw_curve(PROPORTIONS, N_ITEMS, 0.25, 0.9, 0.3), N_ITEMS)
    excess = overweighting(PROPORTIONS, fit)
    assert excess[0] == pytest.approx(0.0, abs=1e-9) and excess[-1] == pytest.approx(0.0, abs=1e-9)
    assert np.all(excess[1:10] > 0) and np.all(excess[11:20] < 0)


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


def test_few_points_never_crown_a_model_with_as_many_parameters() -> None:
    """Four points: a 4-parameter logistic passes through them all, which plain AIC rewards; AICc does not."""
    proportions, strengths = np.array([0.0, 0.1, 0.2, 0.6]), np.array([0.0, 0.0, 0.2, 1.0])
    fits = fit_curves(proportions, strengths, N_ITEMS)
    assert fits.models["logistic"].aic < min(fits.models[name].aic for name in ("constant", "proportional", "rw"))
    assert fits.models["logistic"].aicc == np.inf and fits.models["rw"].aicc == np.inf
    assert fits.best_model in {"constant", "proportional"}
