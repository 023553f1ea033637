"""Induction-head scan: per-head induction, previous-token, duplicate-token and copying scores.

METHODS.md section 1 (Olsson et al. 2022). The input is a batch of `n_seqs` sequences of `seq_len` (T) random
tokens, each repeated once, with an optional BOS token in front (offset b = 1 with BOS, 0 without). For every
head, from ONE batched forward pass with a names_filter on `blocks.{l}.attn.hook_pattern`, we average the attention
from each second-half query position i (b+T .. b+2T-1) to:

* induction: key i-T+1 (the token after the first occurrence of the current token),
* previous_token: key i-1,
* duplicate_token: key i-T (the first occurrence of the current token),

over the batch and the T query positions. All heads of a layer are indexed at once (no loop over heads).

Random tokens are drawn uniformly from the non-special vocabulary WITHOUT replacement within a sequence, so no
accidental repeats blur the scores (Olsson draw with replacement; with a large vocabulary the difference is nil).

Relation to TransformerLens' `head_detector` ("mul" error measure, exclude_bos=False, exclude_current_token=False,
one sequence with BOS): its score is sum(A * P) / sum(A) over all 2T+1 query rows, so for the induction and
duplicate patterns (which are non-zero only on second-half rows) head_detector = ours * T / (2T + 1). Its built-in
previous-token pattern also covers first-half rows; restricted to second-half rows the same factor applies.

Copying score (our choice among METHODS.md's options): the OV-circuit eigenvalue statistic of Elhage et al. 2021,
sum(lambda) / sum(|lambda|) over the eigenvalues of the full OV circuit W_E W_V^h W_O^h W_U (1 = the head copies
the attended token's identity, -1 = it suppresses it), computed through the (d_head x d_head) matrix
W_O^h W_U W_E W_V^h, which has the same non-zero eigenvalues. TransformerBridge keeps raw HF weights, so we fold the
layer norms ourselves: ln1's weight into W_V, the weight of a norm on the attention output (ln1_post: Gemma 2's
sandwich norm, OLMo 2's post-norm) into W_O, ln_final's weight into W_U, Gemma's (1 + w) convention included, and
(LayerNorm, not RMSNorm) we centre W_E and W_O over d_model as LayerNorm's mean subtraction does. Positive scalings
(the norm's 1/scale) do not change the statistic. Positional embeddings and biases are left out, as in Elhage et al.

In-context learning score (Olsson's sign): mean per-token loss on the repeated second half minus mean loss on the
first half (targets b+1..b+T-1 vs b+T+1..b+2T-1, T-1 targets each), in nats. Negative = the model learns in
context.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd
import torch

from probes.hook_names import attn_pattern, is_attn_pattern
from probes.models import exclusive
from probes.tokens import bos_for

NAME = "induction"
VERSION = "2"  # 2: the copying score folds the norm on the attention output (Gemma 2, OLMo 2)
SCORE_NAMES = ("induction", "previous_token", "duplicate_token", "copying")

Progress = Callable[[float, str], None]


@dataclass(frozen=True)
class ScanConfig:
    """Repeated-random-token scan. Defaults run in about a second on a laptop CPU for the organism."""

    seq_len: int = 50  # T: random tokens per half (the sequence is T tokens, then the same T again)
    n_seqs: int = 8  # sequences in the one batched forward pass
    seed: int = 0  # token sampling
    prepend_bos: bool = True  # put the tokenizer's BOS in front when it has one (offsets all positions by 1)
    copying: bool = True  # also compute the OV-circuit copying score (one d_model x d_model matmul over the vocab)
    top_k: int = 10  # heads listed in the ranked table


@dataclass
class ScanResult:
    """Per-head scores (n_layers, n_heads) and the per-position loss of one scan."""

    scores: dict[str, np.ndarray]  # score name -> (n_layers, n_heads)
    position_loss: np.ndarray  # (2T + b - 1,) mean loss predicting the token at position index + 1
    seq_len: int
    offset: int  # 1 when a BOS token was prepended
    top_k: int = 10
    config: dict = field(default_factory=dict)  # the ScanConfig as a dict; empty when rebuilt by `from_stored`
    # (a stored run keeps its config in its key, StoredRun.config; the tables and summary do not repeat it)

    @classmethod
    def from_stored(cls, tables: dict[str, pd.DataFrame], summary: dict, files: dict[str, bytes]) -> ScanResult:
        """The scan a stored run holds (the tables and summary `to_tables()` and `summary()` wrote).

        Scores and losses come back as float32, the dtype the scan computes in (the tables hold them widened to
        float64, exactly), so every derived number (half losses, ICL score, best head) is the stored one. `top_k`
        becomes the number of ranked rows stored, which ranks the same rows."""
        heads = tables["head_scores"].sort_values(["layer", "head"], kind="stable")  # stored in this order
        shape = (int(summary["n_layers"]), int(summary["n_heads"]))
        names = [column for column in heads.columns if column not in ("layer", "head")]
        return cls(
            scores={name: heads[name].to_numpy(np.float32).reshape(shape) for name in names},
            position_loss=tables["loss_by_position"]["loss"].to_numpy(np.float32),
            seq_len=int(summary["seq_len"]),
            offset=int(summary["bos_offset"]),
            top_k=len(tables["top_heads"]),
        )

    @property
    def n_layers(self) -> int:
        return int(self.scores["induction"].shape[0])

    @property
    def n_heads(self) -> int:
        return int(self.scores["induction"].shape[1])

    def half_losses(self) -> tuple[float, float]:
        """Mean loss on first-half targets b+1..b+T-1 and on second-half targets b+T+1..b+2T-1."""
        b, t = self.offset, self.seq_len
        target_loss = self.position_loss  # index j = loss of predicting the token at position j + 1
        first = target_loss[b : b + t - 1]  # targets b+1 .. b+T-1
        second = target_loss[b + t : b + 2 * t - 1]  # targets b+T+1 .. b+2T-1
        return float(first.mean()), float(second.mean())

    @property
    def icl_score(self) -> float:
        first, second = self.half_losses()
        return second - first

    def measured_scores(self) -> list[str]:
        """The score names with at least one measured (non-NaN) head, in table order (copying is all NaN when
        the scan skipped it)."""
        return [name for name, matrix in self.scores.items() if not np.isnan(matrix).all()]

    def best_head(self, score: str = "induction") -> tuple[int, int, float]:
        matrix = self.scores[score]
        layer, head = np.unravel_index(int(np.nanargmax(matrix)), matrix.shape)
        return int(layer), int(head), float(matrix[layer, head])

    def to_frame(self) -> pd.DataFrame:
        """One row per head: layer, head and every score."""
        layers, heads = np.meshgrid(np.arange(self.n_layers), np.arange(self.n_heads), indexing="ij")
        frame = pd.DataFrame({"layer": layers.ravel(), "head": heads.ravel()})
        for name, matrix in self.scores.items():
            frame[name] = matrix.ravel().astype(float)
        return frame

    def top_heads(self, score: str = "induction") -> pd.DataFrame:
        frame = self.to_frame().sort_values(score, ascending=False, kind="stable").head(self.top_k)
        frame.insert(0, "rank", np.arange(1, len(frame) + 1))
        return frame.reset_index(drop=True)

    def loss_frame(self) -> pd.DataFrame:
        """Loss of predicting each target position, labelled by which half the target lies in."""
        b, t = self.offset, self.seq_len
        targets = np.arange(1, len(self.position_loss) + 1)
        half = np.where(targets < b + t, "first", "second")
        half = np.where(targets == b + t, "first repeated token", half)
        return pd.DataFrame({"target_position": targets, "token_index": targets - b, "half": half,
                             "loss": self.position_loss.astype(float)})  # fmt: skip

    def to_tables(self) -> dict[str, pd.DataFrame]:
        return {"head_scores": self.to_frame(), "top_heads": self.top_heads(), "loss_by_position": self.loss_frame()}

    def summary(self) -> dict:
        first, second = self.half_losses()
        layer, head, score = self.best_head()
        top = self.top_heads()
        return {
            **{name: np.round(matrix.astype(float), 6).tolist() for name, matrix in self.scores.items()},
            "top_heads": [
                {"layer": int(r.layer), "head": int(r.head), "score": float(r.induction)} for r in top.itertuples()
            ],  # fmt: skip
            "best_induction": {"layer": layer, "head": head, "score": score},
            "icl_score": self.icl_score,
            "first_half_loss": first,
            "second_half_loss": second,
            "seq_len": self.seq_len,
            "bos_offset": self.offset,
            "n_layers": self.n_layers,
            "n_heads": self.n_heads,
        }


# --- inputs ----------------------------------------------------------------------------------------------


def sampling_vocabulary(model) -> tuple[int, list[int]]:
    """(vocabulary size to sample from, special token ids to exclude) for a bridge or a scratch model."""
    size = int(model.cfg.d_vocab)
    tokenizer = getattr(model, "tokenizer", None)
    if tokenizer is None:
        return size, []
    return min(size, len(tokenizer)), sorted(set(tokenizer.all_special_ids))


def repeated_random_tokens(
    vocab_size: int, exclude: list[int], n_seqs: int, seq_len: int, bos: int | None, seed: int
) -> torch.Tensor:
    """(n_seqs, b + 2T) token ids: [BOS] x_1..x_T x_1..x_T, the x drawn without replacement per sequence."""
    allowed = torch.tensor([i for i in range(vocab_size) if i not in set(exclude)], dtype=torch.long)
    if seq_len < 2 or seq_len > len(allowed):
        raise ValueError(f"Sequence length must be 2 to {len(allowed)} (the usable vocabulary), not {seq_len}.")
    if n_seqs < 1:
        raise ValueError("Need at least one sequence.")
    generator = torch.Generator().manual_seed(seed)
    keys = torch.rand(n_seqs, len(allowed), generator=generator)
    half = allowed[keys.argsort(dim=1)[:, :seq_len]]  # (n_seqs, T)
    tokens = torch.cat([half, half], dim=1)  # (n_seqs, 2T)
    if bos is not None:
        tokens = torch.cat([torch.full((n_seqs, 1), bos, dtype=torch.long), tokens], dim=1)
    return tokens


# --- scores ----------------------------------------------------------------------------------------------


def pattern_scores(pattern: torch.Tensor, seq_len: int, offset: int) -> dict[str, torch.Tensor]:
    """Mean attention of second-half queries to the induction / previous / duplicate key; (n_heads,) each.

    pattern: (batch, n_heads, query_pos, key_pos) attention probabilities of one layer.
    """
    queries = torch.arange(offset + seq_len, offset + 2 * seq_len, device=pattern.device)  # (T,)
    keys = {"induction": queries - seq_len + 1, "previous_token": queries - 1, "duplicate_token": queries - seq_len}
    return {name: pattern[:, :, queries, key].float().mean(dim=(0, 2)) for name, key in keys.items()}


def attention_scores(cache, n_layers: int, seq_len: int, offset: int) -> dict[str, np.ndarray]:
    """(n_layers, n_heads) per score from a cache holding `blocks.{l}.attn.hook_pattern`."""
    per_layer = [pattern_scores(cache[attn_pattern(layer)], seq_len, offset) for layer in range(n_layers)]
    return {name: torch.stack([s[name] for s in per_layer]).cpu().numpy() for name in per_layer[0]}


def per_position_loss(logits: torch.Tensor, tokens: torch.Tensor) -> np.ndarray:
    """(pos - 1,) mean over the batch of the loss of predicting token j+1 from prefix ..j.

    logits: (batch, pos, d_vocab); tokens: (batch, pos).
    """
    log_probs = torch.log_softmax(logits[:, :-1].float(), dim=-1)  # (batch, pos-1, d_vocab)
    nll = -log_probs.gather(-1, tokens[:, 1:, None].to(logits.device)).squeeze(-1)  # (batch, pos-1)
    return nll.mean(dim=0).cpu().numpy()


def _norm_weight(norm) -> torch.Tensor | None:
    """The elementwise weight a norm module applies (Gemma-style offset included), or None."""
    if norm is None:
        return None
    weight = getattr(norm, "w", None)
    if weight is None:
        return None
    offset = getattr(norm, "uses_weight_offset", False)
    offset = offset() if callable(offset) else offset
    return weight.detach().float() + (1.0 if offset else 0.0)


def _centres(model) -> bool:
    """True when the model's norms subtract the mean (LayerNorm), False for RMSNorm or no norm."""
    return str(getattr(model.cfg, "normalization_type", None) or "").upper().startswith("LN")


def _fold_post_norm(model, block, w_o: torch.Tensor) -> torch.Tensor:
    """W_O (n_heads, d_head, d_model) of one block with the norm on the attention output folded in, when the block
    has one (`ln1_post`: Gemma 2's sandwich norm, OLMo 2's post-norm): its mean subtraction (LayerNorm) and its
    elementwise weight act on W_O's d_model side; the division by the scale is positive and drops out."""
    weight = _norm_weight(getattr(block, "ln1_post", None))
    if weight is None:
        return w_o
    if _centres(model):
        w_o = w_o - w_o.mean(dim=-1, keepdim=True)
    return w_o * weight


def copying_scores(model) -> np.ndarray:
    """(n_layers, n_heads) Elhage's sum(lambda)/sum(|lambda|) of the full OV circuit W_E W_V W_O W_U per head."""
    with torch.no_grad():
        w_e = model.W_E.detach().float()  # (d_vocab, d_model)
        w_u = model.W_U.detach().float()  # (d_model, d_vocab)
        w_v = model.W_V.detach().float()  # (n_layers, n_heads or kv_heads, d_model, d_head)
        w_o = model.W_O.detach().float()  # (n_layers, n_heads, d_head, d_model)
        if w_v.shape[1] != w_o.shape[1]:  # grouped-query attention: share each kv head among its query heads
            w_v = w_v.repeat_interleave(w_o.shape[1] // w_v.shape[1], dim=1)
        w_o = torch.stack([_fold_post_norm(model, block, w_o[layer]) for layer, block in enumerate(model.blocks)])
        if _centres(model):
            w_e = w_e - w_e.mean(dim=1, keepdim=True)
            w_o = w_o - w_o.mean(dim=-1, keepdim=True)
        final_weight = _norm_weight(getattr(model, "ln_final", None))
        if final_weight is not None:
            w_u = final_weight[:, None] * w_u
        n_vocab = min(w_e.shape[0], w_u.shape[1])
        unembed_embed = w_u[:, :n_vocab] @ w_e[:n_vocab]  # (d_model, d_model): sum over tokens of W_U[:, t] W_E[t]
        layer_weights = [_norm_weight(getattr(block, "ln1", None)) for block in model.blocks]
        if all(weight is not None for weight in layer_weights):
            w_v = torch.stack(layer_weights)[:, None, :, None] * w_v  # fold ln1's weight into W_V
        circuit = w_o @ unembed_embed @ w_v  # (n_layers, n_heads, d_head, d_head)
        eigenvalues = torch.linalg.eigvals(circuit.double())  # (n_layers, n_heads, d_head)
        total = eigenvalues.abs().sum(-1).clamp_min(1e-30)
        return (eigenvalues.sum(-1).real / total).float().cpu().numpy()


# --- the scan --------------------------------------------------------------------------------------------


def scan_tokens(model, tokens: torch.Tensor, seq_len: int, offset: int, copying: bool = True) -> ScanResult:
    """Scores from one batched forward pass over prepared repeated tokens (batch, b + 2T)."""
    device = getattr(model.cfg, "device", None) or "cpu"
    with torch.no_grad(), exclusive(model):
        logits, cache = model.run_with_cache(tokens.to(device), names_filter=is_attn_pattern)
        scores = attention_scores(cache, int(model.cfg.n_layers), seq_len, offset)
        del cache
        position_loss = per_position_loss(logits, tokens)
    if copying:
        scores["copying"] = copying_scores(model)
    else:
        scores["copying"] = np.full_like(scores["induction"], np.nan)
    return ScanResult(scores=scores, position_loss=position_loss, seq_len=seq_len, offset=offset)


def run(model, cfg: ScanConfig = ScanConfig(), progress: Progress | None = None) -> ScanResult:
    """Scan every head of `model` (a TransformerBridge or any model with run_with_cache and cfg)."""
    progress = progress or (lambda fraction, message="": None)
    n_ctx = int(getattr(model.cfg, "n_ctx", 0) or 0)
    bos = bos_for(model, cfg.prepend_bos)
    offset = int(bos is not None)
    if n_ctx and 2 * cfg.seq_len + offset > n_ctx:
        raise ValueError(f"2 x {cfg.seq_len} repeated tokens do not fit the model's context of {n_ctx} tokens.")
    vocab_size, special = sampling_vocabulary(model)
    tokens = repeated_random_tokens(vocab_size, special, cfg.n_seqs, cfg.seq_len, bos, cfg.seed)
    progress(0.1, f"forward pass over {cfg.n_seqs} x {tokens.shape[1]} tokens")
    result = scan_tokens(model, tokens, cfg.seq_len, offset, copying=cfg.copying)
    result.top_k = cfg.top_k
    result.config = asdict(cfg)
    progress(1.0, "done")
    return result


def best_induction_score(model, seq_len: int = 50, n_seqs: int = 8, seed: int = 0) -> float:
    """The highest per-head induction score of one scan (no copying score); for evaluations that need one number."""
    cfg = ScanConfig(seq_len=seq_len, n_seqs=n_seqs, seed=seed, copying=False)
    return run(model, cfg).best_head("induction")[2]
