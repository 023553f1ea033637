"""Isotropy of a weight matrix's singular spectrum (METHODS.md section 4).

With singular values s_1 >= ... >= s_n and energy shares q_i = s_i^2 / sum_j s_j^2:

* normalised SVD entropy  H / log n,  H = -sum_i q_i log q_i   (1 = perfectly flat spectrum, 0 = rank one)
* effective rank          exp(H)                                (n for a flat spectrum, 1 for rank one)
* top-k energy share      sum of the k largest q_i
* Q75/Q25 ratio           75th over 25th percentile of the singular values (linear interpolation);
                          NaN when the 25th percentile is zero (at least a quarter of the spectrum vanishes;
                          singular values below ZERO_TOLERANCE * s_1 count as zero, i.e. rounding noise)

A zero matrix has no spectrum shape: every metric is NaN. `n` is the number of singular values considered
(min(rows, cols), or a smaller rank bound passed in, e.g. d_head for a per-head W_V W_O product).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch

METRICS = ("svd_entropy", "effective_rank", "top_k_energy", "q75_q25")
ZERO_TOLERANCE = 1e-6  # relative to the largest singular value; float32 SVD noise sits near 1e-7


@dataclass(frozen=True)
class Isotropy:
    svd_entropy: float  # normalised: entropy / log n, in [0, 1]
    effective_rank: float  # exp(entropy), in [1, n]
    top_k_energy: float  # share of squared singular values in the k largest
    q75_q25: float  # ratio of singular-value quartiles; NaN when Q25 == 0
    spectral_norm: float  # largest singular value
    n: int  # singular values considered

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)


def singular_values(matrix: torch.Tensor, rank: int | None = None) -> torch.Tensor:
    """Singular values, descending, in float64; truncated to `rank` when given.  # (n,)"""
    values = torch.linalg.svdvals(matrix.detach().to(torch.float64).cpu())
    return values[:rank] if rank is not None else values


def isotropy(values: torch.Tensor, top_k: int = 10) -> Isotropy:
    """Isotropy metrics of a spectrum `values` (singular values, any order).  # values: (n,)"""
    values = values.detach().to(torch.float64).flatten().sort(descending=True).values
    n = int(values.numel())
    total = float((values**2).sum()) if n else 0.0
    if n == 0 or total <= 0.0 or not math.isfinite(total):
        return Isotropy(math.nan, math.nan, math.nan, math.nan, float(values.max()) if n else math.nan, n)
    shares = values**2 / total  # (n,)
    positive = shares[shares > 0]
    entropy = float(-(positive * positive.log()).sum())
    normalised = entropy / math.log(n) if n > 1 else 1.0
    q25, q75 = (float(q) for q in torch.quantile(values, torch.tensor([0.25, 0.75], dtype=torch.float64)))
    ratio = q75 / q25 if q25 > ZERO_TOLERANCE * float(values[0]) else math.nan
    return Isotropy(
        svd_entropy=normalised,
        effective_rank=math.exp(entropy),
        top_k_energy=float(shares[: max(1, top_k)].sum()),
        q75_q25=ratio,
        spectral_norm=float(values[0]),
        n=n,
    )


def matrix_isotropy(matrix: torch.Tensor, top_k: int = 10, rank: int | None = None) -> tuple[Isotropy, torch.Tensor]:
    """Isotropy metrics and the singular values of `matrix`.  # matrix: (rows, cols)"""
    values = singular_values(matrix, rank)
    return isotropy(values, top_k), values
