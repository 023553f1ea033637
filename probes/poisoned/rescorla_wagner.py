"""The Rescorla-Wagner model of METHODS.md section 3 with a baseline, its bounded least-squares fit, the competing
models it is judged against (by AIC), and a sequential variant.

Model. Each context item is a learning trial for its own cue, `V <- V + ab * (lambda - V)`, so a cue seen k times
has `V(k) = lambda * (1 - (1 - ab)^k)`. With n items of which a share p carries content C1, the RW shape is
`S(p) = V(p n) / (V(p n) + V((1 - p) n))` (lambda cancels) and the predicted association strength with C1 is

    A(p) = b + (c - b) * S(p)        (b: the strength with no C1 in the context, c: with only C1)

S(0) = 0 and S(1) = 1 for any n >= 1. ab -> 0 gives S(p) = p (the proportional line b + (c - b) p; we define
S at ab = 0 as this limit); larger ab saturates each cue after a few items, so a small share already earns a large
strength (the concave curve of the paper: the less prevalent content is over-weighted).

Bounds. When the strength is a rate (poisoned rate, choice probability), b and c are constrained to [0, 1]; since
S(p) lies in [0, 1], A(p) = (1 - S) b + S c is then a convex combination of b and c and the fitted curve never
leaves [0, 1]. For a fixed ab the fit of (b, c) is a linear least-squares problem, solved exactly under the box
(the unconstrained solution if it is feasible, else the best of the four edge solutions; the objective is a convex
quadratic, so this is the constrained optimum).

Fit of ab (multi-start). The least-squares profile over ab is evaluated on a grid (ab = 0 plus 400 logit-spaced
values in (0, 1)), golden-section search refines the best few local minima, and the result is then explicitly
compared with the nested models (the proportional line, which is ab = 0, and the constant b = c): the reported RW
fit is the best of these, so its R^2 is never below theirs.

Competing models, each by least squares with the same bounds: `constant` (A = b; 1 parameter), `proportional`
(A = b + (c - b) p; 2), `rw` (ab, b, c; 3) and `logistic` in p, a majority-following model (A = b + (c - b) /
(1 + exp(-k (p - p0))), k >= 0, p0 in [0, 1]; 4; a grid over (k, p0) with (b, c) solved inside, then
Nelder-Mead). Each gets SSE, R^2 (NaN when the data are constant), AIC = n ln(SSE / n) + 2 k (SSE floored at
1e-12 n) and AICc = AIC + 2 k (k + 1) / (n - k - 1), the small-sample correction; the best model is the one with
the least AICc, ties going to the simpler model. AICc rather than plain AIC because a curve has few points (11 with
the defaults): with plain AIC a 4-parameter logistic passes through any 4 points and wins by a floored SSE; a
model with n <= k + 1 has AICc = inf and is never chosen. No scipy.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

AB_MIN, AB_MAX = 1e-4, 1 - 1e-4  # the logit-spaced part of the ab grid; ab = 0 is added as its lower edge
GRID_SIZE = 400
REFINE_STEPS = 40
REFINE_STARTS = 3  # local minima of the grid profile refined by golden section
K_MAX = 1000.0  # steepest logistic (a step between two 0.1-spaced shares already needs k of about 100)
LOGISTIC_K_GRID = np.concatenate([[0.0], np.geomspace(0.5, K_MAX, 40)])
LOGISTIC_P0_GRID = np.linspace(0.0, 1.0, 51)
SSE_FLOOR = 1e-12  # per point, so that a perfect fit has a finite AIC
AIC_TIE = 1e-9  # AIC differences below this count as ties (the simpler model wins)
MODELS = ("constant", "proportional", "rw", "logistic")  # simplest first
PARAMS = {
    "constant": ("b",),
    "proportional": ("b", "c"),
    "rw": ("alpha_beta", "b", "c"),
    "logistic": ("b", "c", "k", "p0"),
}
N_PARAMS = {name: len(names) for name, names in PARAMS.items()}
NELDER_MEAD_STEPS = 300
MAX_GRID_CELLS = 2_000_000  # (curves x shapes x points) evaluated at once


@dataclass(frozen=True)
class RWFit:
    alpha_beta: float  # learning rate x salience, in [0, 1); 0 is the proportional limit
    baseline: float  # b: the strength with no C1 in the context
    scale: float  # c: the strength when the whole context is C1
    r2: float  # 1 - SSE / total sum of squares (NaN when the data are constant)
    sse: float
    n_points: int
    n_items: int

    def predict(self, proportions: np.ndarray) -> np.ndarray:
        return rw_curve(proportions, self.n_items, self.alpha_beta, self.scale, self.baseline)

    def as_dict(self) -> dict:
        return {
            "alpha_beta": self.alpha_beta,
            "baseline": self.baseline,
            "scale": self.scale,
            "r2": self.r2,
            "sse": self.sse,
            "n_points": self.n_points,
            "n_items": self.n_items,
        }


@dataclass(frozen=True)
class ModelFit:
    """One least-squares fit: its parameters, sum of squared errors, R^2 and AIC."""

    name: str  # one of MODELS
    params: dict[str, float]  # constant: b; proportional: b, c; rw: alpha_beta, b, c; logistic: b, c, k, p0
    sse: float
    r2: float
    aic: float
    aicc: float  # AIC with the small-sample correction; inf when n_points <= n_params + 1 (then never chosen)
    n_params: int

    def as_dict(self) -> dict:
        return {
            "params": {key: _json_float(value) for key, value in self.params.items()},
            "r2": _json_float(self.r2),
            "aic": _json_float(self.aic),
            "aicc": _json_float(self.aicc),
            "sse": _json_float(self.sse),
            "n_params": self.n_params,
        }


@dataclass(frozen=True)
class CurveFits:
    """The RW fit and its competitors on one curve; `best_model` has the least AIC."""

    rw: RWFit
    models: dict[str, ModelFit]  # keyed by MODELS
    best_model: str
    bounded: bool  # b, c were constrained to [0, 1]

    def predict(self, model_name: str, proportions: np.ndarray) -> np.ndarray:
        return model_curve(model_name, self.models[model_name].params, proportions, self.rw.n_items)

    @property
    def meaning(self) -> str:
        return describe(self.best_model, self)

    def as_dict(self) -> dict:
        return {
            "alpha_beta": _json_float(self.rw.alpha_beta),
            "baseline": _json_float(self.rw.baseline),
            "scale": _json_float(self.rw.scale),
            "r2": _json_float(self.rw.r2),
            "best_model": self.best_model,
            "models": {name: self.models[name].as_dict() for name in MODELS},
        }


def _json_float(value: float | None) -> float | None:
    return None if value is None or not np.isfinite(value) else float(value)


# ------------------------------------------------------------------------------------------------ shapes


def associative_strength(trials: np.ndarray, alpha_beta: np.ndarray | float) -> np.ndarray:
    """V(k) / lambda = 1 - (1 - ab)^k, broadcasting trials against alpha_beta."""
    return -np.expm1(np.asarray(trials, dtype=float) * np.log1p(-np.asarray(alpha_beta, dtype=float)))


def rw_shape(proportions: np.ndarray, n_items: int, alpha_beta: np.ndarray | float) -> np.ndarray:
    """S(p) = A(p) normalised to [0, 1]. With ab of shape (G, 1) and proportions (P,), the result is (G, P).

    At ab = 0 both strengths vanish and S is defined by its limit, S(p) = p."""
    p = np.clip(np.asarray(proportions, dtype=float), 0.0, 1.0)
    v_c1 = associative_strength(p * n_items, alpha_beta)
    v_c2 = associative_strength((1.0 - p) * n_items, alpha_beta)
    total = v_c1 + v_c2
    limit = np.broadcast_to(p, total.shape).copy()
    return np.divide(v_c1, total, out=limit, where=total > 0)


def rw_curve(
    proportions: np.ndarray, n_items: int, alpha_beta: float, scale: float, baseline: float = 0.0
) -> np.ndarray:
    """A(p) = b + (c - b) S(p) with b = baseline and c = scale."""
    return _levels(baseline, scale, rw_shape(proportions, n_items, alpha_beta))


def logistic_shape(proportions: np.ndarray, k: np.ndarray | float, p0: np.ndarray | float) -> np.ndarray:
    """1 / (1 + exp(-k (p - p0))), broadcasting; k = 0 gives 1/2 everywhere."""
    z = np.asarray(k, dtype=float) * (np.asarray(proportions, dtype=float) - np.asarray(p0, dtype=float))
    return 1.0 / (1.0 + np.exp(-np.clip(z, -500.0, 500.0)))


def _levels(baseline: np.ndarray | float, scale: np.ndarray | float, shape: np.ndarray) -> np.ndarray:
    """b + (c - b) S: the one formula every prediction and every SSE goes through (so nested fits compare exactly)."""
    return baseline + (scale - baseline) * shape


def model_curve(name: str, params: dict[str, float], proportions: np.ndarray, n_items: int) -> np.ndarray:
    """The curve of one of MODELS at the given shares (P,) -> (P,)."""
    p = np.asarray(proportions, dtype=float)
    if name == "constant":
        return np.full(p.shape, float(params["b"]))
    if name == "proportional":
        return _levels(params["b"], params["c"], np.clip(p, 0.0, 1.0))
    if name == "rw":
        return rw_curve(p, n_items, params["alpha_beta"], params["c"], params["b"])
    if name == "logistic":
        return _levels(params["b"], params["c"], logistic_shape(p, params["k"], params["p0"]))
    raise ValueError(f"Unknown model {name!r}; expected one of {', '.join(MODELS)}.")


# ------------------------------------------------------------------------------- linear part: b and c


def _weighted_sse(strengths: np.ndarray, predicted: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Sum over the last axis of w (y - prediction)^2."""
    return ((strengths - predicted) ** 2 * weights).sum(axis=-1)


def _fit_levels(
    shapes: np.ndarray, strengths: np.ndarray, weights: np.ndarray, bounded: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Least-squares b, c of A = b + (c - b) S for every shape row (G, P) and strength row (B, P).

    Unbounded: regression on the centred shape (stable also when S is nearly constant; when S is constant, b = c =
    the mean). Bounded to [0, 1]: the unconstrained optimum if feasible, else the best edge optimum (exact, since
    the SSE is a convex quadratic in (b, c)). Returns b, c and the weighted SSE, each (B, G)."""
    total_w = weights.sum()
    s_mean = (shapes * weights).sum(axis=1) / total_w  # (G,)
    y_mean = (strengths * weights).sum(axis=1, keepdims=True) / total_w  # (B, 1)
    centred = shapes - s_mean[:, None]  # (G, P)
    sxx = (centred**2 * weights).sum(axis=1)  # (G,)
    sxy = ((strengths - y_mean) * weights) @ centred.T  # (B, G)
    slope = np.divide(sxy, sxx, out=np.zeros_like(sxy), where=sxx > 1e-14 * total_w)
    b = y_mean - slope * s_mean
    c = b + slope
    if not bounded:
        return b, c, _grid_sse(b, c, shapes, strengths, weights)
    feasible = (b >= -1e-12) & (b <= 1 + 1e-12) & (c >= -1e-12) & (c <= 1 + 1e-12)
    edge_b, edge_c = _edge_solutions(shapes, strengths, weights)  # (4, B, G) each
    all_b = np.concatenate([np.clip(b, 0.0, 1.0)[None], edge_b])  # (5, B, G): unconstrained first
    all_c = np.concatenate([np.clip(c, 0.0, 1.0)[None], edge_c])
    sse = _grid_sse(all_b, all_c, shapes, strengths, weights)  # (5, B, G)
    sse[0] = np.where(feasible, sse[0], np.inf)
    pick = sse.argmin(axis=0)[None]  # (1, B, G)
    return tuple(np.take_along_axis(values, pick, axis=0)[0] for values in (all_b, all_c, sse))


def _edge_solutions(shapes: np.ndarray, strengths: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(b, c) optima on the four edges of the unit box: b = 0, b = 1 (best c clipped), c = 0, c = 1 (best b).

    Returns b and c, each (4, B, G)."""
    wy = strengths * weights  # (B, P)
    rest = 1.0 - shapes  # (G, P)
    ss, rr = (shapes**2 * weights).sum(axis=1), (rest**2 * weights).sum(axis=1)  # (G,)
    sw, rw = (shapes * weights).sum(axis=1), (rest * weights).sum(axis=1)  # (G,)
    ys, yr = wy @ shapes.T, wy @ rest.T  # (B, G)
    bs, cs = [], []
    for level in (0.0, 1.0):
        fixed = np.full_like(ys, level)
        # b fixed: y - b = (c - b) S, so c - b = sum w S (y - b) / sum w S^2
        c = level + np.divide(ys - level * sw, ss, out=np.zeros_like(ys), where=ss > 0)
        # c fixed: y - c = (b - c) (1 - S), so b - c = sum w (1 - S) (y - c) / sum w (1 - S)^2
        b = level + np.divide(yr - level * rw, rr, out=np.zeros_like(yr), where=rr > 0)
        bs += [fixed, np.clip(b, 0.0, 1.0)]
        cs += [np.clip(c, 0.0, 1.0), fixed]
    return np.stack(bs), np.stack(cs)


def _grid_sse(b: np.ndarray, c: np.ndarray, shapes: np.ndarray, strengths: np.ndarray, weights) -> np.ndarray:
    """Weighted SSE of b + (c - b) S for b, c (..., B, G), shapes (G, P), strengths (B, P) -> (..., B, G)."""
    predicted = _levels(b[..., None], c[..., None], shapes)  # (..., B, G, P)
    return _weighted_sse(strengths[:, None, :], predicted, weights)


def _fit_levels_chunked(
    shapes: np.ndarray, strengths: np.ndarray, weights: np.ndarray, bounded: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`_fit_levels` over shape rows in chunks, so that its (5, B, chunk, P) candidates stay below MAX_GRID_CELLS."""
    chunk = max(1, MAX_GRID_CELLS // (5 * strengths.shape[0] * strengths.shape[1]))
    parts = [_fit_levels(shapes[i : i + chunk], strengths, weights, bounded) for i in range(0, shapes.shape[0], chunk)]
    return tuple(np.concatenate([part[j] for part in parts], axis=1) for j in range(3))


# ----------------------------------------------------------------------------------------------- RW fit


def ab_grid(size: int = GRID_SIZE) -> np.ndarray:
    """`size` logit-spaced values in [AB_MIN, AB_MAX]: (size,)."""
    logits = np.linspace(math.log(AB_MIN / (1 - AB_MIN)), math.log(AB_MAX / (1 - AB_MAX)), size)
    return 1.0 / (1.0 + np.exp(-logits))


def rw_grid(size: int = GRID_SIZE) -> np.ndarray:
    """The RW fit's grid: ab = 0 (the proportional limit, S(p) = p) followed by `ab_grid(size)`: (size + 1,).

    (Not for the sequential variant, whose shape at ab = 0 is not its limit.)"""
    return np.concatenate([[0.0], ab_grid(size)])


def _check_inputs(proportions: np.ndarray, strengths: np.ndarray, n_items: int) -> None:
    if proportions.ndim != 1 or strengths.shape[1] != proportions.size:
        raise ValueError("strengths must have one column per proportion")
    if proportions.size < 3:
        raise ValueError("The RW fit needs at least 3 proportions.")
    if not np.all(np.isfinite(strengths)) or not np.all(np.isfinite(proportions)):
        raise ValueError("The RW fit needs finite proportions and strengths.")
    if n_items < 1:
        raise ValueError("n_items must be at least 1.")


def _weights(proportions: np.ndarray, weights: np.ndarray | None) -> np.ndarray:
    w = np.ones_like(proportions) if weights is None else np.asarray(weights, dtype=float)
    if w.shape != proportions.shape or not np.all(np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
        raise ValueError("weights must be finite, non-negative, not all zero, one per proportion.")
    return w


def fit_rw_many(
    proportions: np.ndarray,
    strengths: np.ndarray,
    n_items: int,
    weights: np.ndarray | None = None,
    refine: bool = True,
    bounded: bool = True,
) -> list[RWFit]:
    """Fit A = b + (c - b) S(p; ab) to every row of strengths (B, P) at the shared proportions (P,).

    Grid over ab, golden-section refinement of the best REFINE_STARTS local minima (`refine=False` keeps the grid
    optimum: fast enough for bootstrap replicates), then the best of that, the proportional line (ab = 0) and the
    constant. `bounded` keeps b and c (hence the curve) in [0, 1]."""
    proportions = np.asarray(proportions, dtype=float)
    strengths = np.atleast_2d(np.asarray(strengths, dtype=float))
    _check_inputs(proportions, strengths, n_items)
    w = _weights(proportions, weights)
    grid = rw_grid()
    _, _, sse = _fit_levels_chunked(rw_shape(proportions, n_items, grid[:, None]), strengths, w, bounded)  # (B, G)
    fits = []
    for row in range(strengths.shape[0]):
        alpha_beta = float(grid[int(sse[row].argmin())])
        if refine:
            alpha_beta = _refine_alpha_beta(grid, sse[row], proportions, strengths[row], n_items, w, bounded)
        fits.append(_finish(alpha_beta, proportions, strengths[row], n_items, w, bounded))
    return fits


def fit_rw(
    proportions: np.ndarray,
    strengths: np.ndarray,
    n_items: int,
    weights: np.ndarray | None = None,
    bounded: bool = True,
) -> RWFit:
    """Least-squares fit of alpha_beta in [0, 1), baseline b and scale c (in [0, 1] when bounded) to one curve."""
    return fit_rw_many(proportions, np.asarray(strengths, dtype=float)[None, :], n_items, weights, bounded=bounded)[0]


def _rw_levels(
    alpha_beta: float, proportions: np.ndarray, strengths: np.ndarray, n_items: int, weights: np.ndarray, bounded: bool
) -> tuple[float, float, float]:
    """(b, c, sse) of the best levels at one ab, for one curve (P,)."""
    shape = rw_shape(proportions, n_items, np.array([[alpha_beta]]))  # (1, P)
    b, c, sse = _fit_levels(shape, strengths[None, :], weights, bounded)
    return float(b[0, 0]), float(c[0, 0]), float(sse[0, 0])


def _local_minima(values: np.ndarray, count: int) -> list[int]:
    """Indices of the `count` lowest local minima (plateaus included) of a 1-D profile, lowest first."""
    padded = np.concatenate([[np.inf], values, [np.inf]])
    is_min = (values <= padded[:-2]) & (values <= padded[2:])
    indices = np.flatnonzero(is_min)
    return [int(i) for i in indices[np.argsort(values[indices], kind="stable")][:count]]


def _refine_alpha_beta(grid, profile, proportions, strengths, n_items: int, weights, bounded: bool) -> float:
    """Golden section in the grid cells around the lowest local minima of the profile (G,); the best point seen."""

    def objective(ab: float) -> float:
        return _rw_levels(ab, proportions, strengths, n_items, weights, bounded)[2]

    candidates = []
    for best in _local_minima(profile, REFINE_STARTS):
        candidates.append((float(profile[best]), float(grid[best])))
        low, high = grid[max(best - 1, 0)], grid[min(best + 1, grid.size - 1)]
        if high > low:
            found = _golden_section(objective, float(low), float(high))
            candidates.append((objective(found), found))
    return min(candidates)[1]


def _golden_section(objective: Callable[[float], float], low: float, high: float, steps: int = REFINE_STEPS) -> float:
    ratio = (math.sqrt(5) - 1) / 2
    a, b = low, high
    c, d = b - ratio * (b - a), a + ratio * (b - a)
    fc, fd = objective(c), objective(d)
    for _ in range(steps):
        if fc < fd:
            b, d, fd = d, c, fc
            c = b - ratio * (b - a)
            fc = objective(c)
        else:
            a, c, fc = c, d, fd
            d = a + ratio * (b - a)
            fd = objective(d)
    candidates = [(objective(x), x) for x in (low, (a + b) / 2, high)]
    return min(candidates)[1]


def _r2(sse: float, strengths: np.ndarray, weights: np.ndarray) -> float:
    """1 - SSE / total weighted sum of squares; NaN when the data are constant."""
    mean = np.average(strengths, weights=weights)
    total = float((weights * (strengths - mean) ** 2).sum())
    scale = float((weights * strengths**2).sum())
    return 1.0 - sse / total if total > 1e-15 * max(1.0, scale) else float("nan")


def _finish(alpha_beta: float, proportions, strengths, n_items: int, weights, bounded: bool) -> RWFit:
    """The fit at alpha_beta, replaced by the proportional line (ab = 0) or the constant when they fit better."""
    b, c, _ = _rw_levels(alpha_beta, proportions, strengths, n_items, weights, bounded)
    best = (alpha_beta, b, c)
    best_sse = float(_weighted_sse(strengths, rw_curve(proportions, n_items, alpha_beta, c, b), weights))
    prop_b, prop_c, prop_sse = _proportional_fit(proportions, strengths, weights, bounded)
    const_b, const_sse = _constant_fit(strengths, weights, bounded)
    for candidate, sse in (((0.0, prop_b, prop_c), prop_sse), ((0.0, const_b, const_b), const_sse)):
        if sse < best_sse:
            best, best_sse = candidate, sse
    alpha_beta, b, c = best
    r2 = _r2(best_sse, strengths, weights)
    return RWFit(float(alpha_beta), float(b), float(c), r2, best_sse, int(proportions.size), int(n_items))


def overweighting(proportions: np.ndarray, fit: RWFit) -> np.ndarray:
    """RW fit minus the proportional line b + (c - b) p with the fit's b and c: positive where the fitted curve
    over-weights the content (for a rising curve, at shares below one half)."""
    p = np.asarray(proportions, dtype=float)
    return fit.predict(p) - _levels(fit.baseline, fit.scale, np.clip(p, 0.0, 1.0))


# ----------------------------------------------------------------------------------- competing models


def _constant_fit(strengths: np.ndarray, weights: np.ndarray, bounded: bool) -> tuple[float, float]:
    """A = b: the weighted mean (clipped to [0, 1] when bounded) and its SSE."""
    b = float(np.average(strengths, weights=weights))
    b = min(max(b, 0.0), 1.0) if bounded else b
    return b, float(_weighted_sse(strengths, np.full(strengths.shape, b), weights))


def _proportional_fit(proportions, strengths, weights, bounded: bool) -> tuple[float, float, float]:
    """A = b + (c - b) p: b, c and the SSE (computed from the same prediction formula as the RW curve at ab = 0)."""
    shape = np.clip(proportions, 0.0, 1.0)
    b, c, _ = _fit_levels(shape[None, :], strengths[None, :], weights, bounded)
    b, c = float(b[0, 0]), float(c[0, 0])
    return b, c, float(_weighted_sse(strengths, _levels(b, c, shape), weights))


def _logistic_sse(log_k: float, p0: float, proportions, strengths, weights, bounded: bool) -> tuple[float, ...]:
    """(sse, b, c, k, p0) at k = exp(log_k) clipped to (0, K_MAX] and p0 clipped to [0, 1]."""
    k, p0 = min(math.exp(log_k), K_MAX), min(max(p0, 0.0), 1.0)
    shape = logistic_shape(proportions, k, p0)[None, :]
    b, c, sse = _fit_levels(shape, strengths[None, :], weights, bounded)
    return float(sse[0, 0]), float(b[0, 0]), float(c[0, 0]), k, p0


def _logistic_fit(proportions, strengths, weights, bounded: bool) -> tuple[dict[str, float], float]:
    """Grid over (k, p0) with exact (b, c) inside, then Nelder-Mead on (ln k, p0) from the 3 best grid cells."""
    ks, p0s = np.meshgrid(LOGISTIC_K_GRID, LOGISTIC_P0_GRID, indexing="ij")  # (K, P0)
    ks, p0s = ks.ravel(), p0s.ravel()
    shapes = logistic_shape(proportions[None, :], ks[:, None], p0s[:, None])  # (K * P0, P)
    b, c, sse = _fit_levels_chunked(shapes, strengths[None, :], weights, bounded)
    order = np.argsort(sse[0], kind="stable")
    first = order[0]
    best = (float(sse[0, first]), float(b[0, first]), float(c[0, first]), float(ks[first]), float(p0s[first]))
    for index in order[:3]:
        if ks[index] > 0:
            found = _nelder_mead(math.log(ks[index]), float(p0s[index]), proportions, strengths, weights, bounded)
            best = min(best, found)
    sse_best, b_best, c_best, k_best, p0_best = best
    return {"b": b_best, "c": c_best, "k": k_best, "p0": p0_best}, sse_best


def _nelder_mead(log_k: float, p0: float, proportions, strengths, weights, bounded: bool) -> tuple[float, ...]:
    """Nelder-Mead on (ln k, p0) from one grid cell (it follows the curved valleys of the logistic's SSE, where
    an axis-by-axis search crawls); the bounds are applied by clipping inside the objective. Returns the best
    (sse, b, c, k, p0) seen."""

    def evaluate(point: np.ndarray) -> tuple[float, ...]:
        return _logistic_sse(float(point[0]), float(point[1]), proportions, strengths, weights, bounded)

    start = np.array([log_k, p0])
    steps = np.diag([float(np.log(LOGISTIC_K_GRID[2] / LOGISTIC_K_GRID[1])), float(LOGISTIC_P0_GRID[1])])
    simplex = [start, start + steps[0], start + steps[1]]  # 3 points (2,)
    found = [evaluate(point) for point in simplex]
    for _ in range(NELDER_MEAD_STEPS):
        order = sorted(range(3), key=lambda i: found[i][0])
        simplex, found = [simplex[i] for i in order], [found[i] for i in order]
        if np.ptp(simplex, axis=0).max() < 1e-7 or found[2][0] - found[0][0] <= 1e-15 * found[0][0]:
            break
        centroid = (simplex[0] + simplex[1]) / 2
        reflected = centroid + (centroid - simplex[2])
        at_reflected = evaluate(reflected)
        if at_reflected[0] < found[0][0]:
            expanded = centroid + 2 * (centroid - simplex[2])
            at_expanded = evaluate(expanded)
            simplex[2], found[2] = (
                (expanded, at_expanded) if at_expanded[0] < at_reflected[0] else (reflected, at_reflected)
            )
        elif at_reflected[0] < found[1][0]:
            simplex[2], found[2] = reflected, at_reflected
        else:
            contracted = centroid + 0.5 * (simplex[2] - centroid)
            at_contracted = evaluate(contracted)
            if at_contracted[0] < found[2][0]:
                simplex[2], found[2] = contracted, at_contracted
            else:  # shrink towards the best point
                simplex = [simplex[0]] + [simplex[0] + 0.5 * (point - simplex[0]) for point in simplex[1:]]
                found = [found[0]] + [evaluate(point) for point in simplex[1:]]
    return min(found)


def _aic(sse: float, n_points: int, n_params: int) -> float:
    """n ln(SSE / n) + 2 k, with SSE floored at SSE_FLOOR n so that a perfect fit stays finite."""
    return n_points * math.log(max(sse, SSE_FLOOR * n_points) / n_points) + 2 * n_params


def _aicc(aic: float, n_points: int, n_params: int) -> float:
    """AIC + 2 k (k + 1) / (n - k - 1); inf when n <= k + 1 (too few points to judge a model with k parameters)."""
    spare = n_points - n_params - 1
    return aic + 2 * n_params * (n_params + 1) / spare if spare > 0 else math.inf


def _model_fit(name: str, params: dict[str, float], sse: float, strengths, weights) -> ModelFit:
    n_params, n_points = N_PARAMS[name], strengths.size
    aic = _aic(sse, n_points, n_params)
    return ModelFit(name, params, sse, _r2(sse, strengths, weights), aic, _aicc(aic, n_points, n_params), n_params)


def best_by_aic(models: dict[str, ModelFit]) -> str:
    """The model with the least AICc (AIC corrected for few points); AICcs within AIC_TIE of the least count as
    ties, won by the simpler model. With 3 points only the constant and proportional models can win."""
    least = min(model.aicc for model in models.values())
    return next(name for name in MODELS if name in models and models[name].aicc <= least + AIC_TIE)


def fit_curves(
    proportions: np.ndarray,
    strengths: np.ndarray,
    n_items: int,
    bounded: bool = True,
    weights: np.ndarray | None = None,
) -> CurveFits:
    """Fit the constant, proportional, RW and logistic models to one curve (P,) and pick the best by AIC.

    `bounded=True` (strengths that are rates) keeps every b and c, hence every fitted curve, in [0, 1]."""
    proportions = np.asarray(proportions, dtype=float)
    strengths = np.asarray(strengths, dtype=float)
    if strengths.ndim != 1:
        raise ValueError("fit_curves fits one curve: strengths must be 1-D (use fit_rw_many for several).")
    _check_inputs(proportions, strengths[None, :], n_items)
    w = _weights(proportions, weights)
    rw = fit_rw(proportions, strengths, n_items, w, bounded=bounded)
    const_b, const_sse = _constant_fit(strengths, w, bounded)
    prop_b, prop_c, prop_sse = _proportional_fit(proportions, strengths, w, bounded)
    logistic, logistic_sse = _logistic_fit(proportions, strengths, w, bounded)
    models = {
        "constant": _model_fit("constant", {"b": const_b}, const_sse, strengths, w),
        "proportional": _model_fit("proportional", {"b": prop_b, "c": prop_c}, prop_sse, strengths, w),
        "rw": _model_fit("rw", {"alpha_beta": rw.alpha_beta, "b": rw.baseline, "c": rw.scale}, rw.sse, strengths, w),
        "logistic": _model_fit("logistic", logistic, logistic_sse, strengths, w),
    }
    return CurveFits(rw, models, best_by_aic(models), bounded)


def describe(best_model: str, fits: CurveFits) -> str:
    """One plain sentence of what the best model says about the curve."""
    params = fits.models[best_model].params
    rising = params.get("c", params["b"]) >= params["b"]
    if best_model == "logistic":
        follows = "follows" if rising else "turns against"
        return f"the model {follows} the majority of the context (its answer flips near a share of {params['p0']:.0%})"
    if best_model == "rw":
        towards = "" if rising else " away from it"
        return (
            f"small shares of inappropriate content already move the answer{towards} "
            "(RW over-weights the rarer content)"
        )
    if best_model == "proportional":
        return "the answer moves in proportion to the share of inappropriate content"
    if best_model == "constant":
        return "no dependence on the share: the answer does not move with the share of inappropriate content"
    raise ValueError(f"Unknown model {best_model!r}; expected one of {', '.join(MODELS)}.")


PARAM_PREFIX = {"constant": "const", "proportional": "prop", "logistic": "logistic"}  # column prefixes
RW_COLUMNS = {"alpha_beta": "alpha_beta", "b": "baseline", "c": "scale"}  # RW parameter -> column


def fit_columns(fits: CurveFits) -> dict:
    """Flat columns for a table row: the RW fit, best model and meaning, and every model's parameters, R^2, AIC
    and SSE (`r2_<model>`, `aic_<model>`, `sse_<model>`, `logistic_k`, ..., `prop_b`, `prop_c`, `const_b`)."""
    columns = {
        "alpha_beta": fits.rw.alpha_beta,
        "baseline": fits.rw.baseline,
        "scale": fits.rw.scale,
        "r2": fits.rw.r2,
        "n_points": fits.rw.n_points,
        "n_items": fits.rw.n_items,
        "bounded": fits.bounded,
        "best_model": fits.best_model,
        "meaning": fits.meaning,
    }
    for name in MODELS:
        model = fits.models[name]
        columns.update({f"r2_{name}": model.r2, f"aic_{name}": model.aic, f"aicc_{name}": model.aicc})
        columns[f"sse_{name}"] = model.sse
        if name != "rw":  # the RW parameters are the alpha_beta, baseline and scale columns
            columns.update({f"{PARAM_PREFIX[name]}_{key}": value for key, value in model.params.items()})
    return columns


def models_from_columns(row: Mapping) -> dict:
    """Inverse of `fit_columns` for the models: {name: {params, r2, aic, sse, n_params}}, JSON-safe."""
    models = {}
    for name in MODELS:
        if name == "rw":
            params = {key: row[column] for key, column in RW_COLUMNS.items()}
        else:
            params = {key: row[f"{PARAM_PREFIX[name]}_{key}"] for key in PARAMS[name]}
        models[name] = {
            "params": {key: _json_float(float(value)) for key, value in params.items()},
            "r2": _json_float(float(row[f"r2_{name}"])),
            "aic": _json_float(float(row[f"aic_{name}"])),
            "aicc": _json_float(float(row[f"aicc_{name}"])),
            "sse": _json_float(float(row[f"sse_{name}"])),
            "n_params": N_PARAMS[name],
        }
    return models


def _profile(shapes: np.ndarray, strengths: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Best non-negative scale (no baseline) and its weighted SSE for each row of shapes (G, P) against strengths
    (B, P), for the sequential variant. Returns scale and sse of shape (B, G)."""
    fy = (strengths * weights) @ shapes.T  # (B, G)
    ff = (shapes**2 * weights).sum(axis=1)  # (G,)
    scale = np.clip(np.divide(fy, ff, out=np.zeros_like(fy), where=ff > 0), 0.0, None)
    yy = (strengths**2 * weights).sum(axis=1, keepdims=True)  # (B, 1)
    sse = yy - 2 * scale * fy + scale**2 * ff
    return scale, np.maximum(sse, 0.0)


# ------------------------------------------------------------------------------------- sequential variant


def sequential_strengths(is_c1: list[bool] | np.ndarray, alpha_beta: float, lam: float = 1.0) -> tuple[float, float]:
    """Trials in context order with a shared prediction error: the present cue moves by ab * (lam - V1 - V2).

    Early items take a larger share of the total (later ones meet a smaller error), so the order matters."""
    v = [0.0, 0.0]  # V(C1), V(C2)
    for c1 in is_c1:
        cue = 0 if c1 else 1
        v[cue] += alpha_beta * (lam - v[0] - v[1])
    return v[0], v[1]


def sequential_curve(orders: list[list[bool]], alpha_beta: float, scale: float) -> float:
    """Mean predicted strength c V1 / (V1 + V2) over several context orders (one point of a curve)."""
    values = []
    for order in orders:
        v1, v2 = sequential_strengths(order, alpha_beta)
        values.append(scale * v1 / (v1 + v2) if v1 + v2 > 0 else 0.5 * scale)
    return float(np.mean(values))


@dataclass(frozen=True)
class SequentialFit:
    alpha_beta: float
    scale: float
    r2: float
    fitted: np.ndarray  # predicted strength at each fitted point


def sequential_shape(orders: np.ndarray, alpha_beta: np.ndarray) -> np.ndarray:
    """Mean V1 / (V1 + V2) over context orders (O, n) of booleans (True = C1), for each ab in (G,) -> (G,)."""
    orders = np.atleast_2d(np.asarray(orders, dtype=bool))
    ab = np.asarray(alpha_beta, dtype=float)[:, None]  # (G, 1)
    v1 = np.zeros((ab.shape[0], orders.shape[0]))  # (G, O)
    v2 = np.zeros_like(v1)
    for trial in orders.T:  # (O,) which cue each order presents at this step
        step = ab * (1.0 - v1 - v2)  # shared prediction error, lambda = 1
        v1 = v1 + np.where(trial, step, 0.0)
        v2 = v2 + np.where(trial, 0.0, step)
    total = v1 + v2
    ratio = np.divide(v1, total, out=np.full_like(v1, 0.5), where=total > 0)
    return ratio.mean(axis=1)


def fit_sequential(orders_per_point: list[np.ndarray], strengths: np.ndarray) -> SequentialFit:
    """Least-squares fit of the shared-error variant (ab, scale) to points given by their context orders."""
    strengths = np.asarray(strengths, dtype=float)
    if len(orders_per_point) != strengths.size or strengths.size < 3:
        raise ValueError("The sequential fit needs at least 3 points, each with its context orders.")
    weights = np.ones_like(strengths)

    def shapes(alpha_betas: np.ndarray) -> np.ndarray:  # (G, P)
        return np.stack([sequential_shape(orders, alpha_betas) for orders in orders_per_point], axis=1)

    grid = ab_grid(GRID_SIZE // 4)
    _, sse = _profile(shapes(grid), strengths[None, :], weights)
    best = int(sse[0].argmin())

    def objective(ab: float) -> float:
        return float(_profile(shapes(np.array([ab])), strengths[None, :], weights)[1][0, 0])

    alpha_beta = _golden_section(objective, grid[max(best - 1, 0)], grid[min(best + 1, grid.size - 1)], 25)
    shape = shapes(np.array([alpha_beta]))
    scale, sse_best = _profile(shape, strengths[None, :], weights)
    total = float(((strengths - strengths.mean()) ** 2).sum())
    r2 = 1.0 - float(sse_best[0, 0]) / total if total > 1e-15 else float("nan")
    return SequentialFit(float(alpha_beta), float(scale[0, 0]), r2, scale[0, 0] * shape[0])
