"""One-layer associative memory under heavy-tailed classes: GD, SignGD, Adam and Muon side by side.

The paper's model (METHODS.md section 4): f_W(E_k) = softmax(Et^T W E_k), loss -sum_k p_k log f_W(E_k)_k,
W0 = 0, orthonormal input embeddings E and output embeddings Et (identity, or random orthogonal), class
frequencies p_k heavy-tailed (Zipf p_k ∝ k^-alpha, or two groups whose per-class frequencies differ by a factor r).

Recorded at every step t = 0..steps: each class's probability f_W(E_k)_k, the head and tail group losses, and the
isotropy and full singular spectrum of W_t and of the update W_t - W_{t-1}.

Balance metric: the worst class's probability at the first step where the best class reaches 1 - eps. When no
class reaches 1 - eps within the run, `balance` is None (null in JSON) and the summary says so; the worst-class
probability at the last step is reported separately as `worst_prob_final`, never in place of the balance.

Optimizers (learning rates chosen so the METHODS.md 30-step reference check, K = d = 64, p ∝ 1/k, eps = 0.1,
random orthogonal embeddings, is reproduced: Muon 0.904, GD 0.018, SignGD 0.016):

* "gd": torch.optim.SGD, no momentum (lr 5.0).
* "signgd": torch.optim.Adam with beta1 = beta2 = 0, i.e. lr * g / (|g| + 1e-8) (lr 0.01).
* "adam": torch.optim.Adam, betas (0.9, 0.999) (lr 0.01).
* "muon": torch.optim.Muon (lr 0.5, weight decay 0, momentum 0) with the convergent Newton-Schulz polynomial
  (2, -1.5, 0.5) run for 10 steps, which reaches U V^T of the gradient (to bfloat16 precision; torch runs the
  iteration in bfloat16). This is the update the paper analyses.
* "muon_ns5": torch.optim.Muon with its own defaults for the iteration (Keller Jordan's quintic, 5 steps), which
  gives U S' V^T with S' roughly in [0.5, 1.5] rather than U V^T; same lr, momentum and weight decay as "muon".
* "muon_svd": the exact U V^T from a float64 SVD (our own small optimizer), same lr and momentum as "muon".
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import pandas as pd
import torch

from probes.runtime import single_thread
from probes.spectra.isotropy import matrix_isotropy

NAME = "spectra-memory"
VERSION = "1"
OPTIMIZERS = ("gd", "signgd", "adam", "muon", "muon_ns5", "muon_svd")
DEFAULT_OPTIMIZERS = ("gd", "signgd", "adam", "muon")
CONVERGENT_NS_COEFFICIENTS = (2.0, -1.5, 0.5)  # f(x) = 2x - 1.5x^3 + 0.5x^5: f(1) = 1, f'(1) = 0
KELLER_NS_COEFFICIENTS = (3.4445, -4.7750, 2.0315)  # torch.optim.Muon's default quintic

Progress = Callable[[float, str], None]


@dataclass(frozen=True)
class MemoryConfig:
    n_classes: int = 64  # K
    d_model: int = 64  # d; orthonormal embeddings need d >= K
    embeddings: str = "orthogonal"  # "identity" or "orthogonal" (random orthogonal E and Et, seeded)
    frequencies: str = "zipf"  # "zipf" (p_k ∝ k^-zipf_exponent) or "two_group"
    zipf_exponent: float = 1.0  # alpha of the Zipf law
    imbalance_ratio: float = 10.0  # two_group: frequency of a head class over that of a tail class
    head_class_fraction: float = 0.5  # two_group: share of the classes that are head classes
    steps: int = 30  # optimizer steps
    batch_size: int = 0  # 0: full batch (exact expected loss); > 0: classes sampled from p each step
    eps: float = 0.1  # balance is measured when the best class first reaches 1 - eps
    optimizers: tuple[str, ...] = DEFAULT_OPTIMIZERS  # any of OPTIMIZERS
    lr_gd: float = 5.0
    lr_signgd: float = 0.01
    lr_adam: float = 0.01
    lr_muon: float = 0.5  # used by muon, muon_ns5 and muon_svd
    adam_beta1: float = 0.9
    adam_beta2: float = 0.999
    muon_momentum: float = 0.0  # 0: the plain orthogonalised gradient the paper analyses (torch default 0.95)
    muon_weight_decay: float = 0.0  # torch's default is 0.1; 0 to compare optimizers on equal terms
    muon_ns_steps: int = 10  # Newton-Schulz steps of "muon" (convergent polynomial)
    top_k: int = 10  # k of the top-k energy share
    seed: int = 0  # embeddings and mini-batch sampling


def validate(cfg: MemoryConfig) -> None:
    if cfg.n_classes < 2 or cfg.d_model < cfg.n_classes:
        raise ValueError(f"Need at least 2 classes and d_model >= n_classes (got K={cfg.n_classes}, d={cfg.d_model}).")
    if cfg.embeddings not in ("identity", "orthogonal"):
        raise ValueError(f"embeddings must be 'identity' or 'orthogonal', not {cfg.embeddings!r}.")
    if cfg.frequencies not in ("zipf", "two_group"):
        raise ValueError(f"frequencies must be 'zipf' or 'two_group', not {cfg.frequencies!r}.")
    unknown = [name for name in cfg.optimizers if name not in OPTIMIZERS]
    if unknown or not cfg.optimizers:
        raise ValueError(f"Unknown optimizer(s) {unknown}; choose from {', '.join(OPTIMIZERS)}.")
    if cfg.steps < 1 or not 0 < cfg.eps < 1 or cfg.batch_size < 0:
        raise ValueError("steps must be >= 1, eps in (0, 1) and batch_size >= 0.")
    if cfg.imbalance_ratio <= 0 or not 0 < cfg.head_class_fraction < 1:
        raise ValueError("imbalance_ratio must be > 0 and head_class_fraction in (0, 1).")


def class_frequencies(cfg: MemoryConfig) -> torch.Tensor:
    """p_k, sorted from most to least frequent, summing to 1.  # (K,)"""
    ranks = torch.arange(1, cfg.n_classes + 1, dtype=torch.float64)
    if cfg.frequencies == "zipf":
        weights = ranks ** (-cfg.zipf_exponent)
    else:
        weights = torch.where(ranks <= n_head_two_group(cfg), cfg.imbalance_ratio, 1.0).to(torch.float64)
    return weights / weights.sum()


def n_head_two_group(cfg: MemoryConfig) -> int:
    return min(cfg.n_classes - 1, max(1, round(cfg.head_class_fraction * cfg.n_classes)))


def head_mask(cfg: MemoryConfig, frequencies: torch.Tensor) -> torch.Tensor:
    """Head classes: the frequent group (two_group), or the most frequent classes that together hold half of
    the probability mass (zipf). Everything else is tail.  # (K,) bool"""
    if cfg.frequencies == "two_group":
        n_head = n_head_two_group(cfg)
    else:
        n_head = int(torch.searchsorted(frequencies.cumsum(0), torch.tensor(0.5, dtype=torch.float64))) + 1
        n_head = min(n_head, cfg.n_classes - 1)
    return torch.arange(cfg.n_classes) < n_head


def embeddings(cfg: MemoryConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """Orthonormal input embeddings E and output embeddings Et, one column per class.  # (d, K), (d, K)"""
    if cfg.embeddings == "identity":
        eye = torch.eye(cfg.d_model, cfg.n_classes, dtype=torch.float64)
        return eye, eye.clone()
    generator = torch.Generator().manual_seed(cfg.seed)
    return _random_orthonormal(cfg, generator), _random_orthonormal(cfg, generator)


def _random_orthonormal(cfg: MemoryConfig, generator: torch.Generator) -> torch.Tensor:
    gaussian = torch.randn(cfg.d_model, cfg.d_model, generator=generator, dtype=torch.float64)
    q, r = torch.linalg.qr(gaussian)
    return (q * torch.sign(torch.diagonal(r)))[:, : cfg.n_classes]  # Haar-distributed columns


class OrthogonalSVD(torch.optim.Optimizer):
    """Muon with the exact orthogonalised update: W <- W - lr * U V^T of the (momentum) gradient U S V^T."""

    def __init__(self, params, lr: float, momentum: float = 0.0, weight_decay: float = 0.0):
        super().__init__(params, {"lr": lr, "momentum": momentum, "weight_decay": weight_decay})

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            for param in group["params"]:
                if param.grad is None:
                    continue
                direction = param.grad
                if group["momentum"] > 0:
                    buffer = self.state[param].setdefault("momentum_buffer", torch.zeros_like(param))
                    buffer.mul_(group["momentum"]).add_(param.grad)
                    direction = buffer
                u, _, vh = torch.linalg.svd(direction.to(torch.float64), full_matrices=False)
                param.mul_(1 - group["lr"] * group["weight_decay"])
                param.add_((u @ vh).to(param.dtype), alpha=-group["lr"])


def make_optimizer(name: str, weight: torch.Tensor, cfg: MemoryConfig) -> torch.optim.Optimizer:
    if name == "gd":
        return torch.optim.SGD([weight], lr=cfg.lr_gd)
    if name == "signgd":
        return torch.optim.Adam([weight], lr=cfg.lr_signgd, betas=(0.0, 0.0))
    if name == "adam":
        return torch.optim.Adam([weight], lr=cfg.lr_adam, betas=(cfg.adam_beta1, cfg.adam_beta2))
    if name == "muon_svd":
        return OrthogonalSVD([weight], lr=cfg.lr_muon, momentum=cfg.muon_momentum, weight_decay=cfg.muon_weight_decay)
    coefficients, ns_steps = (
        (CONVERGENT_NS_COEFFICIENTS, cfg.muon_ns_steps) if name == "muon" else (KELLER_NS_COEFFICIENTS, 5)
    )
    return torch.optim.Muon(
        [weight],
        lr=cfg.lr_muon,
        weight_decay=cfg.muon_weight_decay,
        momentum=cfg.muon_momentum,
        nesterov=cfg.muon_momentum > 0,
        ns_coefficients=coefficients,
        ns_steps=ns_steps,
    )


def learning_rate(name: str, cfg: MemoryConfig) -> float:
    return {"gd": cfg.lr_gd, "signgd": cfg.lr_signgd, "adam": cfg.lr_adam}.get(name, cfg.lr_muon)


def class_probabilities(weight: torch.Tensor, inputs: torch.Tensor, outputs: torch.Tensor) -> torch.Tensor:
    """f_W(E_k)_k for every class k.  # (K,)"""
    logits = outputs.T @ weight @ inputs  # (K out, K in): column k holds the logits for input class k
    return torch.log_softmax(logits, dim=0).diagonal().exp()


@dataclass
class Trajectory:
    """One optimizer's recorded training run."""

    probabilities: list[torch.Tensor] = field(default_factory=list)  # per step: (K,)
    weights: list[torch.Tensor] = field(default_factory=list)  # per step: (d, d)


def train(name: str, cfg: MemoryConfig, frequencies: torch.Tensor, inputs: torch.Tensor, outputs: torch.Tensor):
    """Train W from zero with optimizer `name`; the probabilities and weights at every step 0..steps."""
    weight = torch.zeros(cfg.d_model, cfg.d_model, dtype=torch.float64, requires_grad=True)
    optimizer = make_optimizer(name, weight, cfg)
    sampler = torch.Generator().manual_seed(cfg.seed + 1)
    trajectory = Trajectory()
    for step in range(cfg.steps + 1):
        log_probs = torch.log(class_probabilities(weight, inputs, outputs).clamp_min(1e-300))  # (K,)
        trajectory.probabilities.append(log_probs.detach().exp())
        trajectory.weights.append(weight.detach().clone())
        if step == cfg.steps:
            break
        loss = -(batch_weights(cfg, frequencies, sampler) * log_probs).sum()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return trajectory


def batch_weights(cfg: MemoryConfig, frequencies: torch.Tensor, sampler: torch.Generator) -> torch.Tensor:
    """Per-class loss weights: p itself (full batch) or the empirical class shares of a sampled batch.  # (K,)"""
    if cfg.batch_size == 0:
        return frequencies
    drawn = torch.multinomial(frequencies, cfg.batch_size, replacement=True, generator=sampler)
    return torch.bincount(drawn, minlength=cfg.n_classes).to(torch.float64) / cfg.batch_size


def balance(probabilities: list[torch.Tensor], eps: float) -> tuple[float | None, int | None]:
    """(worst-class probability, step) at the first step where the best class reaches 1 - eps, else (None, None)."""
    for step, probs in enumerate(probabilities):
        if float(probs.max()) >= 1 - eps:
            return float(probs.min()), step
    return None, None


@dataclass
class MemoryResult:
    config: MemoryConfig | None  # None when rebuilt by `from_stored`: a stored run keeps its config in its key
    # (StoredRun.config); the summary keeps eps, n_classes and embeddings, which the fields below carry
    classes: pd.DataFrame  # optimizer, step, class_index, frequency, group, probability
    groups: pd.DataFrame  # optimizer, step, head_loss, tail_loss, loss
    isotropy: pd.DataFrame  # optimizer, step, matrix (W | update), svd_entropy, effective_rank, ...
    spectrum: pd.DataFrame  # optimizer, step, matrix, index, singular_value
    optimizers: pd.DataFrame  # one row per optimizer: lr, balance, balance_step, final metrics
    eps: float | None = None  # balance threshold 1 - eps; taken from `config` when it is given
    n_classes: int | None = None  # K; from `config` when given
    embeddings: str | None = None  # "identity" or "orthogonal"; from `config` when given

    def __post_init__(self) -> None:
        if self.config is not None:
            self.eps, self.n_classes, self.embeddings = self.config.eps, self.config.n_classes, self.config.embeddings
        elif None in (self.eps, self.n_classes, self.embeddings):
            raise ValueError("A memory result needs its config, or eps, n_classes and embeddings.")

    @classmethod
    def from_stored(cls, tables: dict[str, pd.DataFrame], summary: dict, files: dict[str, bytes]) -> MemoryResult:
        """The run a stored run holds: its five tables as stored, the settings its summary reports."""
        return cls(
            config=None,
            **{name: tables[name] for name in ("classes", "groups", "isotropy", "spectrum", "optimizers")},
            eps=float(summary["eps"]),
            n_classes=int(summary["n_classes"]),
            embeddings=summary["embeddings"],
        )

    @property
    def steps(self) -> int:
        """Optimizer steps of the run (records are kept for steps 0..steps)."""
        return int(self.groups["step"].max())

    def to_frame(self) -> pd.DataFrame:
        return self.classes

    def to_tables(self) -> dict[str, pd.DataFrame]:
        return {
            "optimizers": self.optimizers,
            "classes": self.classes,
            "groups": self.groups,
            "isotropy": self.isotropy,
            "spectrum": self.spectrum,
        }

    def summary(self) -> dict:
        per_optimizer = {
            row["optimizer"]: {key: _json_number(value) for key, value in row.items() if key != "optimizer"}
            for row in self.optimizers.to_dict(orient="records")
        }
        return {
            "optimizers": per_optimizer,
            "eps": self.eps,
            "n_classes": self.n_classes,
            "embeddings": self.embeddings,
            "balance_note": "worst-class probability when the best class first reaches 1 - eps; "
            "null when no class reached 1 - eps within the run (see worst_prob_final)",
        }


def _json_number(value: object) -> object:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if hasattr(value, "item"):
        return _json_number(value.item())
    return value


def run(cfg: MemoryConfig = MemoryConfig(), progress: Progress | None = None) -> MemoryResult:
    """Train the associative memory with every optimizer in `cfg.optimizers` and record the trajectories."""
    validate(cfg)
    with single_thread():
        return _run(cfg, progress)


def _run(cfg: MemoryConfig, progress: Progress | None) -> MemoryResult:
    frequencies = class_frequencies(cfg)
    is_head = head_mask(cfg, frequencies)
    inputs, outputs = embeddings(cfg)
    tables: dict[str, list[pd.DataFrame]] = {"classes": [], "groups": [], "isotropy": [], "spectrum": []}
    rows = []
    for index, name in enumerate(cfg.optimizers):
        if progress:
            progress(index / len(cfg.optimizers), f"training with {name}")
        trajectory = train(name, cfg, frequencies, inputs, outputs)
        frames = trajectory_frames(name, trajectory, frequencies, is_head, cfg.top_k)
        for key, frame in frames.items():
            tables[key].append(frame)
        rows.append(optimizer_row(name, cfg, trajectory, frames))
    if progress:
        progress(1.0, "done")
    return MemoryResult(
        config=cfg,
        optimizers=pd.DataFrame(rows),
        **{key: pd.concat(frames, ignore_index=True) for key, frames in tables.items()},
    )


def trajectory_frames(
    name: str, trajectory: Trajectory, frequencies: torch.Tensor, is_head: torch.Tensor, top_k: int
) -> dict[str, pd.DataFrame]:
    probabilities = torch.stack(trajectory.probabilities)  # (steps + 1, K)
    n_steps, n_classes = probabilities.shape
    classes = pd.DataFrame(
        {
            "optimizer": name,
            "step": torch.arange(n_steps).repeat_interleave(n_classes).numpy(),
            "class_index": torch.arange(n_classes).repeat(n_steps).numpy(),
            "frequency": frequencies.repeat(n_steps).numpy(),
            "group": pd.Categorical(["head" if h else "tail" for h in is_head.tolist()] * n_steps),
            "probability": probabilities.flatten().numpy(),
        }
    )
    class_loss = -torch.log(probabilities.clamp_min(1e-300))  # (steps + 1, K)
    groups = pd.DataFrame(
        {
            "optimizer": name,
            "step": range(n_steps),
            "head_loss": class_loss[:, is_head].mean(1).numpy(),
            "tail_loss": class_loss[:, ~is_head].mean(1).numpy(),
            "loss": (class_loss * frequencies).sum(1).numpy(),
            "worst_probability": probabilities.min(1).values.numpy(),
            "best_probability": probabilities.max(1).values.numpy(),
        }
    )
    isotropy_rows, spectrum_rows = spectra_rows(name, trajectory.weights, top_k)
    return {
        "classes": classes,
        "groups": groups,
        "isotropy": pd.DataFrame(isotropy_rows),
        "spectrum": pd.DataFrame(spectrum_rows),
    }


def spectra_rows(name: str, weights: list[torch.Tensor], top_k: int) -> tuple[list[dict], list[dict]]:
    """Isotropy and singular values of W_t (t >= 0) and of the update W_t - W_{t-1} (t >= 1)."""
    isotropy_rows, spectrum_rows = [], []
    for step, weight in enumerate(weights):
        matrices = {"W": weight} | ({"update": weight - weights[step - 1]} if step > 0 else {})
        for matrix_name, matrix in matrices.items():
            metrics, values = matrix_isotropy(matrix, top_k)
            isotropy_rows.append({"optimizer": name, "step": step, "matrix": matrix_name, **metrics.as_dict()})
            spectrum_rows.extend(
                {"optimizer": name, "step": step, "matrix": matrix_name, "index": i, "singular_value": float(v)}
                for i, v in enumerate(values)
            )
    return isotropy_rows, spectrum_rows


def optimizer_row(name: str, cfg: MemoryConfig, trajectory: Trajectory, frames: dict[str, pd.DataFrame]) -> dict:
    """The per-optimizer summary: balance and the final step's losses and isotropy of W."""
    value, step = balance(trajectory.probabilities, cfg.eps)
    final_groups = frames["groups"].iloc[-1]
    isotropy = frames["isotropy"]
    final_w = isotropy[(isotropy["matrix"] == "W") & (isotropy["step"] == cfg.steps)].iloc[0]
    return {
        "optimizer": name,
        "lr": learning_rate(name, cfg),
        "balance": value,
        "balance_step": step,
        "worst_prob_final": float(final_groups["worst_probability"]),
        "best_prob_final": float(final_groups["best_probability"]),
        "head_loss": float(final_groups["head_loss"]),
        "tail_loss": float(final_groups["tail_loss"]),
        "loss": float(final_groups["loss"]),
        "svd_entropy": float(final_w["svd_entropy"]),
        "effective_rank": float(final_w["effective_rank"]),
        "top_k_energy": float(final_w["top_k_energy"]),
        "q75_q25": float(final_w["q75_q25"]),
    }
