"""A small transformer on synthetic heavy-tailed facts: Adam vs Muon, and Muon on VO+FFN only.

A CPU-sized stand-in for the paper's 160M-parameter experiment (METHODS.md section 4). The data are facts about
individuals: each individual has a two-token name (first, last) and one answer per relation. A sequence is
`[first] [last] [relation] [answer]`; the loss is on the answer token only. Individuals are drawn with Zipf
frequencies (p_i ∝ rank^-zipf_exponent), so a few are seen often and most rarely. Answers here are one token,
so the paper's first-token accuracy is the accuracy of that token (greedy argmax at the relation position).
Frequency groups: individuals ranked by frequency and cut into three equal-sized groups, head, middle and tail.

Optimizer setups (names in SETUPS):

* "adam": Adam on every parameter.
* "muon": torch.optim.Muon on every hidden 2-D matrix (W_Q, W_K, W_V, W_O, W_in, W_out of every layer); Adam on
  embeddings, unembedding, LayerNorms and biases (Muon takes 2-D hidden matrices only).
* "muon_vo_ffn": Muon on W_V, W_O, W_in, W_out only; Adam on everything else (W_Q, W_K included).
* "muon_qk": Muon on W_Q, W_K only; Adam on everything else.

Attention projections are stored as full (d_model, d_model) matrices (heads side by side), so Muon orthogonalises
a layer's W_V as one matrix, as common Muon implementations do. Muon runs with torch.optim.Muon's defaults
(quintic Newton-Schulz, 5 steps, momentum 0.95, Nesterov) except weight decay 0. By default the Newton-Schulz
iteration runs in float32 (`Float32Muon`, a subclass of torch.optim.Muon with the same update) because torch's
bfloat16 iteration is very slow on most CPUs; `muon_precision="bfloat16"` uses torch.optim.Muon unchanged.

Recorded every `log_every` steps: first-token accuracy and loss per group, and the spectrum and isotropy of W_V,
W_O, W_V[h] W_O[h] per head, W_in and W_out of every layer.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd
import torch
from torch import nn
from torch.nn import functional as F

from probes.runtime import single_thread
from probes.spectra.isotropy import matrix_isotropy
from probes.spectra.weights import product_svdvals

NAME = "spectra-transformer"
VERSION = "1"
SETUPS = ("adam", "muon", "muon_vo_ffn", "muon_qk")
MUON_MATRICES = {
    "adam": (),
    "muon": ("W_Q", "W_K", "W_V", "W_O", "W_in", "W_out"),
    "muon_vo_ffn": ("W_V", "W_O", "W_in", "W_out"),
    "muon_qk": ("W_Q", "W_K"),
}
GROUPS = ("head", "middle", "tail")

Progress = Callable[[float, str], None]


@dataclass(frozen=True)
class TransformerConfig:
    setups: tuple[str, ...] = ("adam", "muon", "muon_vo_ffn")  # any of SETUPS
    n_individuals: int = 512  # distinct individuals (the subjects of the facts)
    n_first_names: int = 32  # name tokens; individuals are distinct (first, last) pairs
    n_last_names: int = 32
    n_relations: int = 4  # facts per individual
    n_answers: int = 16  # answer tokens per relation
    zipf_exponent: float = 1.0  # individual i is drawn with probability ∝ (i + 1)^-zipf_exponent
    d_model: int = 64
    n_heads: int = 4
    n_layers: int = 2
    d_mlp: int = 256
    steps: int = 300
    batch_size: int = 128
    lr_adam: float = 3e-3  # Adam, for every parameter Muon does not take
    lr_muon: float = 0.02  # torch.optim.Muon (original lr adjustment: sqrt(max(1, rows / cols)))
    muon_momentum: float = 0.95
    muon_precision: str = "float32"  # Newton-Schulz in "float32" (Float32Muon) or "bfloat16" (torch.optim.Muon)
    log_every: int = 50  # steps between evaluations and spectra
    top_k: int = 10
    seed: int = 0


def validate(cfg: TransformerConfig) -> None:
    unknown = [name for name in cfg.setups if name not in SETUPS]
    if unknown or not cfg.setups:
        raise ValueError(f"Unknown setup(s) {unknown}; choose from {', '.join(SETUPS)}.")
    if cfg.n_individuals > cfg.n_first_names * cfg.n_last_names or cfg.n_individuals < 3:
        raise ValueError("n_individuals must be at least 3 and at most n_first_names * n_last_names.")
    if cfg.d_model % cfg.n_heads:
        raise ValueError("d_model must be divisible by n_heads.")
    if cfg.muon_precision not in ("float32", "bfloat16"):
        raise ValueError("muon_precision must be 'float32' or 'bfloat16'.")
    if cfg.steps < 1 or cfg.log_every < 1 or cfg.batch_size < 1:
        raise ValueError("steps, log_every and batch_size must be positive.")


@dataclass
class Facts:
    """The synthetic world: names, answers, frequencies and token ids."""

    first: torch.Tensor  # (N,) first-name token of each individual
    last: torch.Tensor  # (N,) last-name token
    answers: torch.Tensor  # (N, R) answer token of each (individual, relation)
    frequencies: torch.Tensor  # (N,) sampling probability, descending
    group: torch.Tensor  # (N,) 0 head, 1 middle, 2 tail
    relation_offset: int  # token id of relation 0
    vocab_size: int


def make_facts(cfg: TransformerConfig) -> Facts:
    generator = torch.Generator().manual_seed(cfg.seed)
    pairs = torch.randperm(cfg.n_first_names * cfg.n_last_names, generator=generator)[: cfg.n_individuals]
    first, last = pairs // cfg.n_last_names, cfg.n_first_names + pairs % cfg.n_last_names
    relation_offset = cfg.n_first_names + cfg.n_last_names
    answer_offset = relation_offset + cfg.n_relations
    answers = torch.randint(cfg.n_answers, (cfg.n_individuals, cfg.n_relations), generator=generator)
    answers = answer_offset + torch.arange(cfg.n_relations) * cfg.n_answers + answers  # one answer range per relation
    ranks = torch.arange(1, cfg.n_individuals + 1, dtype=torch.float64)
    frequencies = ranks ** (-cfg.zipf_exponent)
    group = torch.div(torch.arange(cfg.n_individuals) * len(GROUPS), cfg.n_individuals, rounding_mode="floor")
    return Facts(
        first=first,
        last=last,
        answers=answers,
        frequencies=frequencies / frequencies.sum(),
        group=group,
        relation_offset=relation_offset,
        vocab_size=answer_offset + cfg.n_relations * cfg.n_answers,
    )


def sequences(facts: Facts, individuals: torch.Tensor, relations: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Input tokens [first, last, relation] and the answer target.  # (batch, 3), (batch,)"""
    tokens = torch.stack([facts.first[individuals], facts.last[individuals], facts.relation_offset + relations], 1)
    return tokens, facts.answers[individuals, relations]


class Block(nn.Module):
    """Pre-LayerNorm block; attention projections as full matrices, heads side by side."""

    def __init__(self, cfg: TransformerConfig):
        super().__init__()
        d, self.n_heads = cfg.d_model, cfg.n_heads
        self.ln_attn, self.ln_mlp = nn.LayerNorm(d), nn.LayerNorm(d)
        self.W_Q, self.W_K, self.W_V, self.W_O = (nn.Linear(d, d, bias=False) for _ in range(4))
        self.W_in, self.W_out = nn.Linear(d, cfg.d_mlp), nn.Linear(cfg.d_mlp, d)

    def forward(self, residual: torch.Tensor) -> torch.Tensor:  # residual: (batch, pos, d_model)
        x = self.ln_attn(residual)
        q, k, v = (self.split_heads(proj(x)) for proj in (self.W_Q, self.W_K, self.W_V))  # (batch, head, pos, d_head)
        mixed = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        residual = residual + self.W_O(mixed.transpose(1, 2).flatten(2))
        return residual + self.W_out(F.gelu(self.W_in(self.ln_mlp(residual))))

    def split_heads(self, x: torch.Tensor) -> torch.Tensor:
        return x.unflatten(-1, (self.n_heads, -1)).transpose(1, 2)


class FactsTransformer(nn.Module):
    def __init__(self, cfg: TransformerConfig, vocab_size: int, n_positions: int = 3):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, cfg.d_model)
        self.pos_embed = nn.Parameter(torch.randn(n_positions, cfg.d_model) * 0.02)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layers))
        self.ln_final = nn.LayerNorm(cfg.d_model)
        self.unembed = nn.Linear(cfg.d_model, vocab_size, bias=False)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:  # tokens: (batch, pos) -> logits (batch, vocab)
        residual = self.embed(tokens) + self.pos_embed[: tokens.shape[1]]
        for block in self.blocks:
            residual = block(residual)
        return self.unembed(self.ln_final(residual[:, -1]))


def make_optimizers(model: FactsTransformer, setup: str, cfg: TransformerConfig) -> list[torch.optim.Optimizer]:
    """Muon on the setup's matrices (every layer), Adam on every other parameter."""
    muon_names = MUON_MATRICES[setup]
    muon_params = [p for name, p in model.named_parameters() if _matrix_name(name) in muon_names and p.ndim == 2]
    muon_ids = {id(p) for p in muon_params}
    adam_params = [p for p in model.parameters() if id(p) not in muon_ids]
    optimizers: list[torch.optim.Optimizer] = [torch.optim.Adam(adam_params, lr=cfg.lr_adam)]
    if muon_params:
        muon_class = Float32Muon if cfg.muon_precision == "float32" else torch.optim.Muon
        optimizers.append(muon_class(muon_params, lr=cfg.lr_muon, weight_decay=0.0, momentum=cfg.muon_momentum))
    return optimizers


class Float32Muon(torch.optim.Muon):
    """torch.optim.Muon's update (momentum, Nesterov, Newton-Schulz polynomial, lr adjustment, decoupled weight
    decay) with the Newton-Schulz iteration run in float32 instead of bfloat16: on CPUs without bfloat16 matrix
    units torch's bfloat16 matmuls are ~50x slower than float32 ones at this size."""

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            for param in group["params"]:
                if param.grad is None:
                    continue
                buffer = self.state[param].setdefault("momentum_buffer", torch.zeros_like(param.grad))
                buffer.lerp_(param.grad, 1 - group["momentum"])
                update = param.grad.lerp(buffer, group["momentum"]) if group["nesterov"] else buffer
                update = newton_schulz(update.float(), group["ns_coefficients"], group["ns_steps"], group["eps"])
                param.mul_(1 - group["lr"] * group["weight_decay"])
                param.add_(update.to(param.dtype), alpha=-adjusted_lr(group["lr"], group["adjust_lr_fn"], param.shape))


def newton_schulz(matrix: torch.Tensor, coefficients: tuple[float, float, float], steps: int, eps: float):
    """Approximately U V^T of matrix = U S V^T by the odd polynomial a x + b x^3 + c x^5 iterated.  # (m, n)"""
    a, b, c = coefficients
    wide = matrix.T if matrix.shape[0] > matrix.shape[1] else matrix  # iterate on the Gram matrix of the short side
    x = wide / wide.norm().clamp(min=eps)  # spectral norm <= Frobenius norm = 1
    for _ in range(steps):
        gram = x @ x.T
        x = a * x + (b * gram + c * gram @ gram) @ x
    return x.T if matrix.shape[0] > matrix.shape[1] else x


def adjusted_lr(lr: float, adjust_lr_fn: str | None, shape: torch.Size) -> float:
    """torch.optim.Muon's learning-rate adjustment for a (rows, cols) matrix."""
    rows, cols = shape[:2]
    if adjust_lr_fn in (None, "original"):
        return lr * math.sqrt(max(1.0, rows / cols))
    if adjust_lr_fn == "match_rms_adamw":
        return lr * 0.2 * math.sqrt(max(rows, cols))
    return lr


def _matrix_name(parameter_name: str) -> str | None:
    parts = parameter_name.split(".")  # blocks.{l}.W_V.weight
    return parts[2] if len(parts) == 4 and parts[0] == "blocks" and parts[3] == "weight" else None


@dataclass
class TransformerResult:
    config: TransformerConfig | None  # None when rebuilt by `from_stored`: a stored run keeps its config in its
    # key (StoredRun.config); the tables say everything the summary reports
    accuracy: pd.DataFrame  # setup, step, group, accuracy, loss
    isotropy: pd.DataFrame  # setup, step, layer, matrix, head, svd_entropy, effective_rank, ...
    spectrum: pd.DataFrame  # setup, step, layer, matrix, head, index, singular_value
    setups: pd.DataFrame  # one row per setup: final accuracy per group, final isotropy means, seconds

    @classmethod
    def from_stored(cls, tables: dict[str, pd.DataFrame], summary: dict, files: dict[str, bytes]) -> TransformerResult:
        """The run a stored run holds: its four tables as stored."""
        return cls(config=None, **{name: tables[name] for name in ("accuracy", "isotropy", "spectrum", "setups")})

    @property
    def steps(self) -> int:
        """Training steps: the config's, else the last evaluated step (training always evaluates its last step)."""
        return self.config.steps if self.config is not None else int(self.accuracy["step"].max())

    def to_frame(self) -> pd.DataFrame:
        return self.accuracy

    def to_tables(self) -> dict[str, pd.DataFrame]:
        return {"setups": self.setups, "accuracy": self.accuracy, "isotropy": self.isotropy, "spectrum": self.spectrum}

    def summary(self) -> dict:
        rows = self.setups.to_dict(orient="records")
        return {
            "setups": {row.pop("setup"): {k: _finite_or_none(v) for k, v in row.items()} for row in rows},
            "steps": self.steps,
            "groups": "individuals ranked by frequency, cut into equal thirds: head, middle, tail",
        }


def _finite_or_none(value: object) -> object:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def run(cfg: TransformerConfig = TransformerConfig(), progress: Progress | None = None) -> TransformerResult:
    """Train one model per setup from the same initialisation and data stream; record accuracy and spectra."""
    validate(cfg)
    with single_thread():
        facts = make_facts(cfg)
        accuracy, isotropy, spectrum, setup_rows = [], [], [], []
        for index, setup in enumerate(cfg.setups):

            def setup_progress(fraction: float, message: str, index: int = index, setup: str = setup) -> None:
                if progress:
                    progress((index + fraction) / len(cfg.setups), f"{setup}: {message}")

            frames = train_setup(setup, cfg, facts, setup_progress)
            accuracy.append(frames["accuracy"])
            isotropy.append(frames["isotropy"])
            spectrum.append(frames["spectrum"])
            setup_rows.append(setup_row(setup, frames))
    if progress:
        progress(1.0, "done")
    return TransformerResult(
        config=cfg,
        accuracy=pd.concat(accuracy, ignore_index=True),
        isotropy=pd.concat(isotropy, ignore_index=True),
        spectrum=pd.concat(spectrum, ignore_index=True),
        setups=pd.DataFrame(setup_rows),
    )


def train_setup(setup: str, cfg: TransformerConfig, facts: Facts, progress: Progress) -> dict[str, pd.DataFrame]:
    torch.manual_seed(cfg.seed)
    model = FactsTransformer(cfg, facts.vocab_size)
    optimizers = make_optimizers(model, setup, cfg)
    sampler = torch.Generator().manual_seed(cfg.seed + 1)
    accuracy_rows, isotropy_rows, spectrum_rows = [], [], []
    started = time.perf_counter()
    for step in range(cfg.steps + 1):
        if step % cfg.log_every == 0 or step == cfg.steps:
            accuracy_rows.extend(evaluate(model, facts, cfg, setup, step))
            iso, spec = model_spectra(model, cfg, setup, step)
            isotropy_rows.extend(iso)
            spectrum_rows.extend(spec)
            progress(step / cfg.steps, f"step {step}")
        if step == cfg.steps:
            break
        individuals = torch.multinomial(facts.frequencies, cfg.batch_size, replacement=True, generator=sampler)
        relations = torch.randint(cfg.n_relations, (cfg.batch_size,), generator=sampler)
        tokens, targets = sequences(facts, individuals, relations)
        loss = F.cross_entropy(model(tokens), targets)
        for optimizer in optimizers:
            optimizer.zero_grad()
        loss.backward()
        for optimizer in optimizers:
            optimizer.step()
    seconds = time.perf_counter() - started
    return {
        "accuracy": pd.DataFrame(accuracy_rows),
        "isotropy": pd.DataFrame(isotropy_rows),
        "spectrum": pd.DataFrame(spectrum_rows),
        "seconds": pd.DataFrame([{"seconds": seconds}]),
    }


@torch.no_grad()
def evaluate(model: FactsTransformer, facts: Facts, cfg: TransformerConfig, setup: str, step: int) -> list[dict]:
    """First-token accuracy and loss on every fact, averaged per frequency group."""
    individuals = torch.arange(cfg.n_individuals).repeat_interleave(cfg.n_relations)
    relations = torch.arange(cfg.n_relations).repeat(cfg.n_individuals)
    tokens, targets = sequences(facts, individuals, relations)
    logits = model(tokens)  # (N * R, vocab)
    correct = (logits.argmax(-1) == targets).double()
    losses = F.cross_entropy(logits, targets, reduction="none").double()
    groups = facts.group[individuals]
    rows = []
    for index, name in enumerate(GROUPS):
        mask = groups == index
        rows.append(
            {
                "setup": setup,
                "step": step,
                "group": name,
                "accuracy": float(correct[mask].mean()),
                "loss": float(losses[mask].mean()),
            }
        )
    rows.append(
        {"setup": setup, "step": step, "group": "all", "accuracy": float(correct.mean()), "loss": float(losses.mean())}
    )
    return rows


@torch.no_grad()
def model_spectra(model: FactsTransformer, cfg: TransformerConfig, setup: str, step: int):
    """Isotropy rows and spectrum rows of W_V, W_O, per-head W_V W_O, W_in, W_out in every layer."""
    isotropy_rows, spectrum_rows = [], []
    d_head = cfg.d_model // cfg.n_heads
    for layer, block in enumerate(model.blocks):
        w_v = block.W_V.weight.T  # (d_model, n_heads * d_head), TransformerLens orientation
        w_o = block.W_O.weight.T  # (n_heads * d_head, d_model)
        matrices = [
            ("W_V", -1, w_v),
            ("W_O", -1, w_o),
            ("W_in", -1, block.W_in.weight.T),
            ("W_out", -1, block.W_out.weight.T),
        ]
        for matrix, head, weight in matrices:
            metrics, values = matrix_isotropy(weight, cfg.top_k)
            _append(isotropy_rows, spectrum_rows, setup, step, layer, matrix, head, metrics.as_dict(), values)
        for head in range(cfg.n_heads):
            columns = slice(head * d_head, (head + 1) * d_head)
            values = product_svdvals(w_v[:, columns], w_o[columns, :])  # (d_head,)
            metrics, _ = matrix_isotropy(torch.diag(values), cfg.top_k)
            _append(isotropy_rows, spectrum_rows, setup, step, layer, "W_VO", head, metrics.as_dict(), values)
    return isotropy_rows, spectrum_rows


def _append(isotropy_rows, spectrum_rows, setup, step, layer, matrix, head, metrics, values) -> None:
    where = {"setup": setup, "step": step, "layer": layer, "matrix": matrix, "head": head}
    isotropy_rows.append({**where, **metrics})
    spectrum_rows.extend({**where, "index": i, "singular_value": float(v)} for i, v in enumerate(values))


def setup_row(setup: str, frames: dict[str, pd.DataFrame]) -> dict:
    """Final-step accuracy per group and mean isotropy per matrix kind (over layers and heads)."""
    accuracy = frames["accuracy"]
    final = accuracy[accuracy["step"] == accuracy["step"].max()].set_index("group")
    isotropy = frames["isotropy"]
    last = isotropy[isotropy["step"] == isotropy["step"].max()]
    row = {"setup": setup, "muon_on": "+".join(MUON_MATRICES[setup]) or "none"}
    row |= {f"{group}_accuracy": float(final.loc[group, "accuracy"]) for group in (*GROUPS, "all")}
    row |= {f"{group}_loss": float(final.loc[group, "loss"]) for group in (*GROUPS, "all")}
    for matrix, group in last.groupby("matrix", sort=False):
        row[f"{matrix}_svd_entropy"] = float(group["svd_entropy"].mean())
        row[f"{matrix}_effective_rank"] = float(group["effective_rank"].mean())
    row["seconds"] = float(frames["seconds"]["seconds"].iloc[0])
    return row
