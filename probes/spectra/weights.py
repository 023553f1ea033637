"""Singular spectra and isotropy of the associative-memory matrices of any loaded model.

For every layer l of a TransformerBridge, read in TransformerLens orientation:

* "W_V"     blocks.{l}.attn.W_V, all heads side by side           (d_model, n_heads * d_head)
* "W_O"     blocks.{l}.attn.W_O, all heads stacked                 (n_heads * d_head, d_model)
* "W_VO"    per head h: W_V[h] @ W_O[h]                            (d_model, d_model), rank <= d_head
* "W_VO_sum" the layer's whole OV map, sum over heads of W_V[h] W_O[h]  (d_model, d_model)
* "W_in", "W_gate" (gated MLPs only), "W_out"                      (d_model, d_mlp), (d_mlp, d_model)

Grouped-query attention: W_V has n_kv_heads heads; query head h reads kv head h // (n_heads / n_kv_heads), the
layout TransformerLens uses. A per-head W_VO has at most d_head non-zero singular values, so its metrics use
n = d_head (the spectrum is computed exactly from the small factors, never from the d_model x d_model product).

A weight the bridge cannot give (an architecture without that component, weights offloaded to the meta device,
an unusual layout) is skipped and listed in the `missing` table with the reason; the run does not fail.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd
import torch

from probes.spectra.isotropy import isotropy

NAME = "spectra-weights"
VERSION = "1"
MATRICES = ("W_V", "W_O", "W_VO", "W_VO_sum", "W_in", "W_gate", "W_out")
WEIGHT_READ_ERRORS = (AttributeError, RuntimeError, ValueError, NotImplementedError, TypeError, IndexError)

Progress = Callable[[float, str], None]


@dataclass(frozen=True)
class WeightsConfig:
    top_k: int = 10  # k of the top-k energy share
    per_head: bool = True  # also measure W_V[h] W_O[h] for every head
    layers: tuple[int, ...] = ()  # layers to measure; empty: every layer


def svdvals(matrix: torch.Tensor) -> torch.Tensor:
    """Singular values in float32 on the matrix's own device, returned on CPU in float64.  # (min(m, n),)"""
    return torch.linalg.svdvals(matrix.detach().float()).to("cpu", torch.float64)


def product_svdvals(left: torch.Tensor, right: torch.Tensor) -> torch.Tensor:
    """Singular values of left @ right from thin QR factors, for left (m, r) and right (r, n) with small r."""
    q_left, r_left = torch.linalg.qr(left.detach().float())  # (m, r), (r, r)
    q_right, r_right = torch.linalg.qr(right.detach().float().T)  # (n, r), (r, r)
    return svdvals(r_left @ r_right.T)  # left @ right = q_left (r_left r_right^T) q_right^T


@dataclass
class WeightsResult:
    metrics: pd.DataFrame  # layer, matrix, head, svd_entropy, effective_rank, top_k_energy, q75_q25, ...
    spectrum: pd.DataFrame  # layer, matrix, head, index, singular_value
    missing: pd.DataFrame  # layer, matrix, reason
    n_layers: int

    @classmethod
    def from_stored(cls, tables: dict[str, pd.DataFrame], summary: dict, files: dict[str, bytes]) -> WeightsResult:
        """The measurement a stored run holds: its three tables as stored and the model's layer count."""
        return cls(metrics=tables["metrics"], spectrum=tables["spectrum"], missing=tables["missing"],
                   n_layers=int(summary["n_layers"]))  # fmt: skip

    def matrices(self) -> list[str]:
        """The matrix kinds measured, in MATRICES order."""
        measured = set(self.metrics["matrix"])
        return [matrix for matrix in MATRICES if matrix in measured]

    def layers(self) -> list[int]:
        """The layers measured, ascending."""
        return sorted(self.metrics["layer"].unique())

    def to_frame(self) -> pd.DataFrame:
        return self.metrics

    def to_tables(self) -> dict[str, pd.DataFrame]:
        return {"metrics": self.metrics, "spectrum": self.spectrum, "missing": self.missing}

    def summary(self) -> dict:
        """Per matrix kind: mean isotropy over layers (per-head W_VO averaged over heads and layers)."""
        means = {}
        for matrix, group in self.metrics.groupby("matrix", sort=False):
            means[matrix] = {
                metric: _finite_or_none(group[metric].mean())
                for metric in ("svd_entropy", "effective_rank", "top_k_energy", "q75_q25")
            }
        return {
            "n_layers": self.n_layers,
            "matrices": means,
            "missing": self.missing.to_dict(orient="records"),
        }


def _finite_or_none(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def run(model, cfg: WeightsConfig = WeightsConfig(), progress: Progress | None = None) -> WeightsResult:
    """Spectra of W_V, W_O, per-head W_V W_O, the layer's OV sum, W_in, W_gate and W_out for every layer."""
    blocks = getattr(model, "blocks", None)
    if blocks is None or len(blocks) == 0:
        raise ValueError("This model exposes no transformer blocks, so there are no layer weights to measure.")
    chosen = [layer for layer in (cfg.layers or range(len(blocks))) if 0 <= layer < len(blocks)]
    if not chosen:
        raise ValueError(f"None of the layers {list(cfg.layers)} exists; the model has {len(blocks)} layers.")
    metric_rows: list[dict] = []
    spectrum_rows: list[dict] = []
    missing_rows: list[dict] = []
    with torch.no_grad():
        for done, layer in enumerate(chosen):
            if progress:
                progress(done / len(chosen), f"layer {layer}")
            for matrix, head, values, n in layer_spectra(blocks[layer], cfg, missing_rows, layer):
                metrics = isotropy(values[:n], cfg.top_k).as_dict()
                metric_rows.append({"layer": layer, "matrix": matrix, "head": head, **metrics})
                spectrum_rows.extend(
                    {"layer": layer, "matrix": matrix, "head": head, "index": i, "singular_value": float(v)}
                    for i, v in enumerate(values[:n])
                )
    if progress:
        progress(1.0, "done")
    return WeightsResult(
        metrics=pd.DataFrame(metric_rows, columns=["layer", "matrix", "head", *METRIC_COLUMNS]),
        spectrum=pd.DataFrame(spectrum_rows, columns=["layer", "matrix", "head", "index", "singular_value"]),
        missing=pd.DataFrame(missing_rows, columns=["layer", "matrix", "reason"]),
        n_layers=len(blocks),
    )


METRIC_COLUMNS = ("svd_entropy", "effective_rank", "top_k_energy", "q75_q25", "spectral_norm", "n")


def read_weight(read: Callable[[], torch.Tensor | None], matrix: str, layer: int, missing: list[dict]):
    """The weight `read()` returns, or None after noting why it is unavailable."""
    try:
        weight = read()
    except WEIGHT_READ_ERRORS as error:
        missing.append({"layer": layer, "matrix": matrix, "reason": f"{type(error).__name__}: {error}"[:300]})
        return None
    if weight is None:
        return None
    if weight.is_meta:
        missing.append({"layer": layer, "matrix": matrix, "reason": "weights are on the meta device (offloaded)"})
        return None
    return weight


def layer_spectra(block, cfg: WeightsConfig, missing: list[dict], layer: int):
    """Yield (matrix, head, singular values, n) for one block; head is -1 for whole-layer matrices."""
    w_v = read_weight(lambda: block.attn.W_V, "W_V", layer, missing)  # (n_kv_heads, d_model, d_head)
    w_o = read_weight(lambda: block.attn.W_O, "W_O", layer, missing)  # (n_heads, d_head, d_model)
    if w_v is not None and w_o is not None and (w_v.ndim != 3 or w_o.ndim != 3):
        missing.append(
            {"layer": layer, "matrix": "W_VO", "reason": f"unexpected shapes {tuple(w_v.shape)}, {tuple(w_o.shape)}"}
        )
        w_v = w_o = None
    if w_v is not None:
        yield "W_V", -1, svdvals(torch.cat(list(w_v), dim=1)), min(w_v.shape[1], w_v.shape[0] * w_v.shape[2])
    if w_o is not None:
        yield "W_O", -1, svdvals(torch.cat(list(w_o), dim=0)), min(w_o.shape[0] * w_o.shape[1], w_o.shape[2])
    if w_v is not None and w_o is not None:
        try:
            w_v = expand_kv_heads(w_v, w_o.shape[0])
        except ValueError as error:
            missing.append({"layer": layer, "matrix": "W_VO", "reason": str(error)})
        else:
            yield from vo_spectra(w_v, w_o, cfg.per_head)
    for matrix in ("W_in", "W_gate", "W_out"):
        weight = read_weight(lambda m=matrix: getattr(block.mlp, m), matrix, layer, missing)
        if weight is not None and weight.ndim == 2:
            yield matrix, -1, svdvals(weight), min(weight.shape)
        elif weight is not None:
            missing.append({"layer": layer, "matrix": matrix, "reason": f"not a matrix: shape {tuple(weight.shape)}"})


def vo_spectra(w_v: torch.Tensor, w_o: torch.Tensor, per_head: bool):
    """Per-head W_V[h] W_O[h] spectra (rank <= d_head) and the layer's summed OV map."""
    if per_head:
        for head in range(w_o.shape[0]):
            values = product_svdvals(w_v[head], w_o[head])  # (d_head,)
            yield "W_VO", head, values, values.numel()
    ov_sum = torch.einsum("hmd,hdn->mn", w_v.float(), w_o.float())  # (d_model, d_model)
    yield "W_VO_sum", -1, svdvals(ov_sum), ov_sum.shape[0]


def expand_kv_heads(w_v: torch.Tensor, n_heads: int) -> torch.Tensor:
    """Repeat grouped key-value heads so query head h reads kv head h // (n_heads / n_kv).  # (n_heads, m, d)"""
    n_kv = w_v.shape[0]
    if n_kv == n_heads:
        return w_v
    if n_heads % n_kv:
        raise ValueError(f"{n_heads} query heads cannot share {n_kv} key-value heads evenly.")
    return w_v.repeat_interleave(n_heads // n_kv, dim=0)
