"""The Rescorla-Wagner model of METHODS.md section 3, its least-squares fit, and a sequential variant.

Each context item is a learning trial for its own cue, `V <- V + ab * (lambda - V)`, so a cue seen k times has
`V(k) = lambda * (1 - (1 - ab)^k)`. With n items of which a share p carries content C1, the predicted association
strength with C1 is `A(p) = c * V(p n) / (V(p n) + V((1 - p) n))` (lambda cancels). Edges: A(0) = 0 and A(1) = c
for any n >= 1 (the other cue's V is 0 there); the ratio is only undefined when both counts are 0, which needs n = 0.

Shape: ab -> 0 gives the proportional line A = c p; larger ab saturates each cue after a few items, so a small
share already earns a large strength (the concave curve of the paper: the less prevalent content is over-weighted).

Fit: `c` has a closed form for fixed ab (non-negative least squares in one variable), so we profile the sum of
squares over a logit-spaced grid of ab in (0, 1) and refine the best cell by golden-section search. No scipy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

AB_MIN, AB_MAX = 1e-4, 1 - 1e-4
GRID_SIZE = 400
REFINE_STEPS = 40


@dataclass(frozen=True)
class RWFit:
    alpha_beta: float  # learning rate x salience, in (0, 1)
    scale: float  # c: the strength when the whole context is C1
    r2: float  # 1 - SSE / total sum of squares (NaN when the data are constant)
    sse: float
    n_points: int
    n_items: int

    def predict(self, proportions: np.ndarray) -> np.ndarray:
        return rw_curve(proportions, self.n_items, self.alpha_beta, self.scale)

    def as_dict(self) -> dict:
        return {
            "alpha_beta": self.alpha_beta,
            "scale": self.scale,
            "r2": self.r2,
            "sse": self.sse,
            "n_points": self.n_points,
            "n_items": self.n_items,
        }


def associative_strength(trials: np.ndarray, alpha_beta: np.ndarray | float) -> np.ndarray:
    """V(k) / lambda = 1 - (1 - ab)^k, broadcasting trials against alpha_beta."""
    return -np.expm1(np.asarray(trials, dtype=float) * np.log1p(-np.asarray(alpha_beta, dtype=float)))


def rw_shape(proportions: np.ndarray, n_items: int, alpha_beta: np.ndarray | float) -> np.ndarray:
    """A(p) / c. With ab of shape (G, 1) and proportions (P,), the result is (G, P)."""
    p = np.clip(np.asarray(proportions, dtype=float), 0.0, 1.0)
    v_c1 = associative_strength(p * n_items, alpha_beta)
    v_c2 = associative_strength((1.0 - p) * n_items, alpha_beta)
    total = v_c1 + v_c2
    return np.divide(v_c1, total, out=np.full(np.broadcast(v_c1, total).shape, 0.5), where=total > 0)


def rw_curve(proportions: np.ndarray, n_items: int, alpha_beta: float, scale: float) -> np.ndarray:
    return scale * rw_shape(proportions, n_items, alpha_beta)


def _profile(shapes: np.ndarray, strengths: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Best non-negative scale and its weighted SSE for each row of shapes (G, P) against strengths (B, P).

    Returns scale and sse of shape (B, G)."""
    fy = (strengths * weights) @ shapes.T  # (B, G)
    ff = (shapes**2 * weights).sum(axis=1)  # (G,)
    scale = np.clip(np.divide(fy, ff, out=np.zeros_like(fy), where=ff > 0), 0.0, None)
    yy = (strengths**2 * weights).sum(axis=1, keepdims=True)  # (B, 1)
    sse = yy - 2 * scale * fy + scale**2 * ff
    return scale, np.maximum(sse, 0.0)


def ab_grid(size: int = GRID_SIZE) -> np.ndarray:
    logits = np.linspace(math.log(AB_MIN / (1 - AB_MIN)), math.log(AB_MAX / (1 - AB_MAX)), size)
    return 1.0 / (1.0 + np.exp(-logits))


def fit_rw_many(
    proportions: np.ndarray,
    strengths: np.ndarray,
    n_items: int,
    weights: np.ndarray | None = None,
    refine: bool = True,
) -> list[RWFit]:
    """Fit every row of strengths (B, P) at the shared proportions (P,): grid search, then golden section
    (`refine=False` keeps the grid optimum: fast enough for bootstrap replicates)."""
    proportions = np.asarray(proportions, dtype=float)
    strengths = np.atleast_2d(np.asarray(strengths, dtype=float))
    if proportions.ndim != 1 or strengths.shape[1] != proportions.size:
        raise ValueError("strengths must have one column per proportion")
    if proportions.size < 3:
        raise ValueError("The RW fit needs at least 3 proportions.")
    if not np.all(np.isfinite(strengths)) or not np.all(np.isfinite(proportions)):
        raise ValueError("The RW fit needs finite proportions and strengths.")
    if n_items < 1:
        raise ValueError("n_items must be at least 1.")
    w = np.ones_like(proportions) if weights is None else np.asarray(weights, dtype=float)
    grid = ab_grid()
    _, sse = _profile(rw_shape(proportions, n_items, grid[:, None]), strengths, w)  # (B, G)
    fits = []
    for row, best in enumerate(sse.argmin(axis=1)):
        alpha_beta = grid[best]
        if refine:
            low, high = grid[max(best - 1, 0)], grid[min(best + 1, grid.size - 1)]
            objective = lambda ab, r=row: _sse_at(ab, proportions, strengths[r], n_items, w)  # noqa: E731
            alpha_beta = _golden_section(objective, low, high)
        fits.append(_finish(alpha_beta, proportions, strengths[row], n_items, w))
    return fits


def fit_rw(proportions: np.ndarray, strengths: np.ndarray, n_items: int, weights: np.ndarray | None = None) -> RWFit:
    """Least-squares fit of alpha_beta in (0, 1) and scale >= 0 to one curve."""
    return fit_rw_many(proportions, np.asarray(strengths, dtype=float)[None, :], n_items, weights)[0]


def _sse_at(alpha_beta: float, proportions, strengths, n_items: int, weights) -> float:
    _, sse = _profile(rw_shape(proportions, n_items, np.array([[alpha_beta]])), strengths[None, :], weights)
    return float(sse[0, 0])


def _golden_section(objective, low: float, high: float, steps: int = REFINE_STEPS) -> float:
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


def _finish(alpha_beta: float, proportions, strengths, n_items: int, weights) -> RWFit:
    shape = rw_shape(proportions, n_items, np.array([[alpha_beta]]))
    scale, sse = _profile(shape, strengths[None, :], weights)
    mean = np.average(strengths, weights=weights)
    total = float((weights * (strengths - mean) ** 2).sum())
    r2 = 1.0 - float(sse[0, 0]) / total if total > 1e-15 else float("nan")
    return RWFit(float(alpha_beta), float(scale[0, 0]), r2, float(sse[0, 0]), int(proportions.size), int(n_items))


def overweighting(proportions: np.ndarray, fit: RWFit) -> np.ndarray:
    """Fitted strength minus the proportional line c p: positive where the curve over-weights the content."""
    return fit.predict(proportions) - fit.scale * np.asarray(proportions, dtype=float)


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
