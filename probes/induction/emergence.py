"""Watch induction heads emerge: train a small attention-only transformer from scratch on CPU.

Tasks (METHODS.md section 1):
* `repeat` (Olsson et al. 2022): BOS + T random tokens + the same T tokens, next-token loss. Every `record_every`
  steps we record, on a fixed evaluation batch: the loss on the repeated half, the loss on the first half, their
  ratio (`loss_ratio` = repeated / first; 1 = no in-context copying, 0 = perfect), the best per-head induction and
  previous-token scores (the scan's definitions, `probes.induction.scores`), and the best layer's total induction
  attention (`layer_induction_total`: the per-head induction scores summed over the heads of each layer, i.e. the
  attention mass on the induction offset i-T+1 summed over heads, taken in the layer where it is largest,
  `best_layer`). The total ranges over 0..n_heads; the top-head score over 0..1.
* `bursty` (Reddy 2023): in-context classification of noisy items (`probes.induction.tasks`); 2 attention layers of
  one head each, then a 3-layer MLP readout on the query token. Recorded: training loss, ICL accuracy (novel
  classes), IWL accuracy (query class absent from the context), flipped-label accuracy (trained classes, context
  labels that contradict the trained ones; scored against the context), the loss on a held-out batch from the
  training distribution, and attention-based progress measures:
  induction = the last layer's attention from the query to labels whose item shares the query's class, summed;
  previous_token = the first layer's mean attention from each label to the item just before it.

The model is our own `HookedRootModule` (TransformerLens 4 no longer ships HookedTransformer), so hook names are
TransformerLens' (`blocks.{l}.attn.hook_pattern`, `blocks.{l}.hook_resid_post`) and the scan runs on it unchanged.

Phase change rule (`phase_change_step`): smooth the phase metric (the best-layer total induction attention for
`repeat`, ICL accuracy for `bursty`) with a centred 3-record moving average; if the smoothed curve never reaches
`PHASE_THRESHOLDS[task]` (0.6 total induction attention; 0.75 ICL accuracy, above the 1/(N/B) plateau of guessing
among the context's labels) the result is None; otherwise it is the step of the record that ends the steepest rise
between consecutive smoothed records.

Why the best-layer total for `repeat` (measured with the defaults, seeds 0-4): the copying is spread over several
heads of layer 1 (in seeds 0, 2-4 the layer-1 total is 3.2-3.8 against a top head of 0.93-0.97). Seed 1 ends
with a top-head score of 0.44 while its repeated-half loss is 0.42 nats against 4.2 on the first half (ratio 0.10);
its layer-1 total is 1.32. Across seeds 0-4 the final totals are 1.32-3.82 and the totals on the plateau
(steps <= 500) at most 0.11, so the threshold 0.6 sits far from both; the steepest rise of the smoothed total falls
on the same record as the steepest rise of 1 - loss_ratio in four seeds and one record (50 steps) later in seed 1
(1050 vs 1000). The total alone is used (not combined with the loss
ratio) so the rule reads one attention measure, like the scan; the loss ratio is recorded and plotted beside it.
The plateau total grows with the head count (about 0.022 per head at initialisation; an estimate, not measured
beyond 4 heads), so with many more heads than 4 the threshold may need raising.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch import nn
from transformer_lens import HookedRootModule
from transformer_lens.hook_points import HookPoint

from probes.hook_names import attn_pattern, is_attn_pattern
from probes.induction import tasks
from probes.induction.scores import attention_scores, per_position_loss
from probes.runtime import single_thread

NAME = "induction-emergence"
VERSION = "2"  # 2: records carry loss_ratio, layer_induction_total, best_layer; phase on the total
PHASE_THRESHOLD = 0.6  # the phase metric must reach this (smoothed) for a phase change to be reported
PHASE_THRESHOLDS = {"repeat": PHASE_THRESHOLD, "bursty": 0.75}  # per task (repeat: best-layer total; bursty: ICL)
PHASE_METRICS = {"repeat": "layer_induction_total", "bursty": "icl_accuracy"}
TASKS = ("repeat", "bursty")
SCRATCH_MODEL_IDENTITY = {"model_id": "scratch:attention-only", "revision": None, "content_digest": None}  # cache key

Progress = Callable[[float, str], None]
OnRecord = Callable[[dict], None]


@dataclass(frozen=True)
class TrainConfig:
    """One emergence run. Defaults: Olsson's repeat task as in METHODS.md (about 30 s on one CPU core)."""

    task: str = "repeat"  # "repeat" or "bursty"
    steps: int = 2000  # optimiser steps
    seed: int = 0  # initialisation, data and evaluation batches
    lr: float = 3e-3  # Adam learning rate (METHODS.md says 1e-3; 3e-3 halves the plateau on CPU)
    batch_size: int = 32  # sequences per step
    record_every: int = 50  # steps between records (step 0 is always recorded)
    eval_seqs: int = 128  # sequences in the fixed evaluation batch(es)
    n_layers: int = 2  # attention-only layers
    n_heads: int = 4  # heads per layer (bursty: Reddy uses 1)
    d_model: int = 64  # residual width (bursty: fixed to D + 2N + 1 by the data)
    # repeat task
    vocab_size: int = 64  # token ids, 0 is BOS
    seq_len: int = 32  # T: random tokens per half (evaluation; training draws T' per batch, see vary_length)
    vary_length: bool = True  # training batches draw T' in [T/2, T], so no fixed positional offset solves the task
    # bursty task (Reddy): see tasks.BurstySpec
    n_classes: int = 128  # K
    n_labels: int = 32  # L
    burstiness: int = 4  # B (0: no bursty sequences)
    p_bursty: float = 1.0  # p_B
    p_novel: float = 0.0  # p_C
    zipf_alpha: float = 0.0  # Zipf exponent over classes
    n_pairs: int = 8  # N
    item_dim: int = 63  # D
    noise: float = 0.1  # eps
    mlp_hidden: int = 256  # readout MLP width

    def bursty_spec(self) -> tasks.BurstySpec:
        return tasks.BurstySpec(self.n_classes, self.n_labels, self.burstiness, self.p_bursty, self.p_novel,
                                self.zipf_alpha, self.n_pairs, self.item_dim, self.noise)  # fmt: skip


def bursty_config(**overrides) -> TrainConfig:
    """Reddy-like defaults for the bursty task (1 head per layer, batch 128) with any overrides."""
    base = {
        "task": "bursty",
        "steps": 3000,
        "n_heads": 1,
        "batch_size": 128,
        "record_every": 100,
        "lr": 1e-3,
        "n_classes": 1024,
    }  # many classes: the regime where Reddy finds in-context learning
    return TrainConfig(**{**base, **overrides})


# --- the model -------------------------------------------------------------------------------------------


@dataclass
class ScratchModelConfig:
    """The attributes the scan reads from `model.cfg`."""

    n_layers: int
    n_heads: int
    d_model: int
    d_head: int
    d_vocab: int
    n_ctx: int
    device: str = "cpu"
    normalization_type: str | None = None


class Attention(nn.Module):
    def __init__(self, cfg: ScratchModelConfig):
        super().__init__()
        shape_in = (cfg.n_heads, cfg.d_model, cfg.d_head)
        self.W_Q = nn.Parameter(torch.randn(shape_in) * cfg.d_model**-0.5)
        self.W_K = nn.Parameter(torch.randn(shape_in) * cfg.d_model**-0.5)
        self.W_V = nn.Parameter(torch.randn(shape_in) * cfg.d_model**-0.5)
        self.W_O = nn.Parameter(torch.randn(cfg.n_heads, cfg.d_head, cfg.d_model) * (cfg.n_heads * cfg.d_head) ** -0.5)
        self.hook_q, self.hook_k, self.hook_v = HookPoint(), HookPoint(), HookPoint()
        self.hook_attn_scores, self.hook_pattern, self.hook_z = HookPoint(), HookPoint(), HookPoint()

    def forward(self, resid: torch.Tensor) -> torch.Tensor:  # (batch, pos, d_model) -> same
        batch, n_pos, _ = resid.shape
        n_heads, d_model, d_head = self.W_Q.shape
        weights = torch.cat([self.W_Q, self.W_K, self.W_V], dim=0)  # (3 * head, d_model, d_head)
        qkv = resid @ weights.permute(1, 0, 2).reshape(d_model, 3 * n_heads * d_head)  # (batch, pos, 3*head*d_head)
        q, k, v = qkv.view(batch, n_pos, 3, n_heads, d_head).unbind(dim=2)  # (batch, pos, head, d_head) each
        q, k, v = self.hook_q(q), self.hook_k(k), self.hook_v(v)
        scores = q.transpose(1, 2) @ k.permute(0, 2, 3, 1) * d_head**-0.5  # (batch, head, q, k)
        future = torch.ones(n_pos, n_pos, dtype=torch.bool, device=resid.device).triu(diagonal=1)
        scores = self.hook_attn_scores(scores.masked_fill(future, float("-inf")))
        pattern = self.hook_pattern(scores.softmax(dim=-1))
        z = self.hook_z((pattern @ v.transpose(1, 2)).transpose(1, 2))  # (batch, pos, head, d_head)
        return z.reshape(batch, n_pos, n_heads * d_head) @ self.W_O.reshape(n_heads * d_head, d_model)


class AttentionBlock(nn.Module):
    def __init__(self, cfg: ScratchModelConfig):
        super().__init__()
        self.attn = Attention(cfg)
        self.hook_resid_pre, self.hook_attn_out, self.hook_resid_post = HookPoint(), HookPoint(), HookPoint()

    def forward(self, resid: torch.Tensor) -> torch.Tensor:
        resid = self.hook_resid_pre(resid)
        return self.hook_resid_post(resid + self.hook_attn_out(self.attn(resid)))


class AttentionOnlyTransformer(HookedRootModule):
    """Attention-only transformer, no layer norm. Token input -> logits, or (with d_vocab=0) vectors -> residual."""

    def __init__(self, cfg: ScratchModelConfig):
        super().__init__()
        self.cfg = cfg
        self.tokenizer = None
        self.embed = nn.Embedding(cfg.d_vocab, cfg.d_model) if cfg.d_vocab else None
        self.W_pos = nn.Parameter(torch.randn(cfg.n_ctx, cfg.d_model)) if cfg.d_vocab else None
        self.hook_embed, self.hook_pos_embed = HookPoint(), HookPoint()
        self.blocks = nn.ModuleList([AttentionBlock(cfg) for _ in range(cfg.n_layers)])
        self.unembed = nn.Linear(cfg.d_model, cfg.d_vocab, bias=False) if cfg.d_vocab else None
        self.setup()

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        """tokens (batch, pos) -> logits (batch, pos, d_vocab); vectors (batch, pos, d_model) -> residual."""
        if self.embed is not None:
            resid = self.hook_embed(self.embed(inputs)) + self.hook_pos_embed(self.W_pos[: inputs.shape[1]])
        else:
            resid = self.hook_embed(inputs)
        for block in self.blocks:
            resid = block(resid)
        return self.unembed(resid) if self.unembed is not None else resid

    @property
    def W_E(self) -> torch.Tensor:  # (d_vocab, d_model)
        return self.embed.weight

    @property
    def W_U(self) -> torch.Tensor:  # (d_model, d_vocab)
        return self.unembed.weight.T

    @property
    def W_V(self) -> torch.Tensor:  # (n_layers, n_heads, d_model, d_head)
        return torch.stack([block.attn.W_V for block in self.blocks])

    @property
    def W_O(self) -> torch.Tensor:  # (n_layers, n_heads, d_head, d_model)
        return torch.stack([block.attn.W_O for block in self.blocks])


class BurstyClassifier(nn.Module):
    """Reddy's network: attention-only layers on item/label vectors, then an MLP on the query token."""

    def __init__(self, cfg: ScratchModelConfig, n_labels: int, hidden: int):
        super().__init__()
        self.transformer = AttentionOnlyTransformer(cfg)
        self.readout = nn.Sequential(nn.Linear(cfg.d_model, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                                     nn.Linear(hidden, n_labels))  # fmt: skip

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:  # (batch, pos, d_model) -> (batch, n_labels)
        return self.readout(self.transformer(inputs)[:, -1])


def build_model(cfg: TrainConfig) -> nn.Module:
    torch.manual_seed(cfg.seed)
    if cfg.task == "repeat":
        shape = ScratchModelConfig(cfg.n_layers, cfg.n_heads, cfg.d_model, cfg.d_model // cfg.n_heads,
                                   cfg.vocab_size, 2 * cfg.seq_len + 1)  # fmt: skip
        return AttentionOnlyTransformer(shape)
    spec = cfg.bursty_spec()
    d_model = spec.d_model
    shape = ScratchModelConfig(cfg.n_layers, cfg.n_heads, d_model, d_model // cfg.n_heads, 0, 2 * spec.n_pairs + 1)
    return BurstyClassifier(shape, spec.n_labels, cfg.mlp_hidden)


# --- phase change ----------------------------------------------------------------------------------------


def phase_change_step(steps: list[int], values: list[float], threshold: float = PHASE_THRESHOLD) -> int | None:
    """Step ending the steepest rise of the 3-record moving average of `values`; None if it never reaches
    `threshold` (or there are fewer than two records)."""
    if len(values) < 2:
        return None
    padded = np.pad(np.asarray(values, dtype=float), 1, mode="edge")
    smoothed = np.convolve(padded, np.ones(3) / 3, mode="valid")  # (n_records,)
    if np.nanmax(smoothed) < threshold:
        return None
    return int(steps[int(np.nanargmax(np.diff(smoothed))) + 1])


# --- results ---------------------------------------------------------------------------------------------


@dataclass
class EmergenceResult:
    config: TrainConfig | None  # None when rebuilt by `from_stored`: a stored run keeps its config in its key
    # (StoredRun.config); the summary keeps only the task, which `task` carries
    history: list[dict]  # one dict per record
    final_heads: pd.DataFrame  # layer, head, scores of the trained model
    weights: bytes  # safetensors of the trained model
    train_seconds: float
    task: str | None = None  # "repeat" or "bursty"; taken from `config` when not given

    def __post_init__(self) -> None:
        if self.task is None:
            if self.config is None:
                raise ValueError("An emergence result needs its training config or its task.")
            self.task = self.config.task

    @classmethod
    def from_stored(cls, tables: dict[str, pd.DataFrame], summary: dict, files: dict[str, bytes]) -> EmergenceResult:
        """The training run a stored run holds. The history's values come from the summary's JSON records (the
        table turns the first record's missing train_loss into NaN), its key order from the table (the store sorts
        JSON keys); the phase change is recomputed from it, as it was when stored."""
        order = {column: index for index, column in enumerate(tables["history"].columns)}
        history = [dict(sorted(record.items(), key=lambda item: order.get(item[0], len(order))))
                   for record in summary["history"]]  # fmt: skip
        return cls(config=None, history=history, final_heads=tables["final_heads"], weights=files["model.safetensors"],
                   train_seconds=summary["train_seconds"], task=summary["task"])  # fmt: skip

    @property
    def phase_metric(self) -> str:
        return PHASE_METRICS[self.task]

    @property
    def phase_threshold(self) -> float:
        return PHASE_THRESHOLDS[self.task]

    @property
    def phase_change_step(self) -> int | None:
        return phase_change_step([r["step"] for r in self.history], [r[self.phase_metric] for r in self.history],
                                 self.phase_threshold)  # fmt: skip

    @property
    def final(self) -> dict:
        """The last record (the trained model)."""
        return self.history[-1]

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.history)

    def to_tables(self) -> dict[str, pd.DataFrame]:
        return {"history": self.to_frame(), "final_heads": self.final_heads}

    def summary(self) -> dict:
        return {
            "task": self.task,
            "phase_change_step": self.phase_change_step,
            "phase_metric": self.phase_metric,
            "phase_threshold": self.phase_threshold,
            "final": self.final,
            "history": self.history,
            "train_seconds": self.train_seconds,
        }

    def files(self) -> dict[str, bytes]:
        return {"model.safetensors": self.weights}


# --- training --------------------------------------------------------------------------------------------


def best_layer_total(induction: np.ndarray) -> tuple[int, float]:
    """(layer, total) of the layer whose heads' induction scores sum highest; induction is (n_layers, n_heads)."""
    totals = induction.sum(axis=1)  # (n_layers,)
    layer = int(np.argmax(totals))
    return layer, float(totals[layer])


def _repeat_record(model: AttentionOnlyTransformer, eval_tokens: torch.Tensor, seq_len: int) -> dict:
    with torch.no_grad():
        logits, cache = model.run_with_cache(eval_tokens, names_filter=is_attn_pattern)
        scores = attention_scores(cache, model.cfg.n_layers, seq_len, offset=1)
        loss = per_position_loss(logits, eval_tokens)  # (2T,)
    repeated_loss = float(loss[seq_len + 1 : 2 * seq_len].mean())  # targets T+2..2T: the predictable repeated half
    first_half_loss = float(loss[1:seq_len].mean())
    layer, total = best_layer_total(scores["induction"])
    return {
        "loss": repeated_loss,
        "first_half_loss": first_half_loss,
        "loss_ratio": repeated_loss / first_half_loss,
        "induction_score": float(scores["induction"].max()),
        "layer_induction_total": total,
        "best_layer": layer,
        "previous_token_score": float(scores["previous_token"].max()),
        "duplicate_token_score": float(scores["duplicate_token"].max()),
    }


def _bursty_head_scores(model: BurstyClassifier, batch: tasks.BurstyBatch) -> dict[str, torch.Tensor]:
    """Reddy-style progress measures per head from the attention patterns on an ICL batch; (n_heads,) each."""
    transformer = model.transformer
    _, cache = transformer.run_with_cache(batch.inputs, names_filter=is_attn_pattern)
    last = cache[attn_pattern(transformer.cfg.n_layers - 1)][:, :, -1]  # (batch, head, pos)
    matching = batch.item_classes == batch.query_class[:, None]  # (batch, N)
    label_positions = torch.arange(1, 2 * batch.item_classes.shape[1], 2)  # (N,) labels sit at odd positions
    induction = (last[:, :, label_positions] * matching[:, None]).sum(-1).mean(0)  # (head,)
    first = cache[attn_pattern(0)]  # (batch, head, q, k)
    previous = first[:, :, label_positions, label_positions - 1].mean(dim=(0, 2))  # (head,)
    return {"induction": induction, "previous_token": previous}


def _bursty_attention(model: BurstyClassifier, batch: tasks.BurstyBatch) -> dict:
    scores = _bursty_head_scores(model, batch)
    return {"induction_score": float(scores["induction"].max()),
            "previous_token_score": float(scores["previous_token"].max())}  # fmt: skip


def _final_heads_bursty(model: BurstyClassifier, batch: tasks.BurstyBatch) -> pd.DataFrame:
    """Long table: the induction measure lives in the last layer, the previous-token measure in the first."""
    with torch.no_grad():
        scores = _bursty_head_scores(model, batch)
    layer_of = {"induction": model.transformer.cfg.n_layers - 1, "previous_token": 0}
    return pd.DataFrame([{"layer": layer_of[name], "head": head, "measure": name, "score": float(value)}
                         for name, values in scores.items() for head, value in enumerate(values)])  # fmt: skip


def _accuracy(model: BurstyClassifier, batch: tasks.BurstyBatch) -> float:
    return float((model(batch.inputs).argmax(-1) == batch.targets).float().mean())


def _final_heads_repeat(model, eval_tokens, seq_len) -> pd.DataFrame:
    with torch.no_grad():
        _, cache = model.run_with_cache(eval_tokens, names_filter=is_attn_pattern)
        scores = attention_scores(cache, model.cfg.n_layers, seq_len, offset=1)
    layers, heads = np.meshgrid(np.arange(model.cfg.n_layers), np.arange(model.cfg.n_heads), indexing="ij")
    frame = pd.DataFrame({"layer": layers.ravel(), "head": heads.ravel()})
    for name, matrix in scores.items():
        frame[name] = matrix.ravel().astype(float)
    return frame


def _weights_bytes(model: nn.Module) -> bytes:
    from safetensors.torch import save

    return save({name: tensor.detach().contiguous() for name, tensor in model.state_dict().items()})


def train(cfg: TrainConfig = TrainConfig(), progress: Progress | None = None, on_record: OnRecord | None = None):
    """Train from scratch, calling `on_record(record)` as each record is made; returns an EmergenceResult."""
    if cfg.task not in TASKS:
        raise ValueError(f"Unknown task {cfg.task!r}; choose one of {', '.join(TASKS)}.")
    if cfg.steps < 1 or cfg.record_every < 1:
        raise ValueError("Steps and record interval must be positive.")
    progress = progress or (lambda fraction, message="": None)
    on_record = on_record or (lambda record: None)
    trainer = _train_repeat if cfg.task == "repeat" else _train_bursty
    started = time.perf_counter()
    with single_thread():
        model, history, final_heads = trainer(cfg, progress, on_record)
    return EmergenceResult(cfg, history, final_heads, _weights_bytes(model), time.perf_counter() - started)


def _record_steps(cfg: TrainConfig) -> set[int]:
    return set(range(0, cfg.steps, cfg.record_every)) | {cfg.steps}


def _train_length(cfg: TrainConfig, generator: torch.Generator) -> int:
    if not cfg.vary_length:
        return cfg.seq_len
    return int(torch.randint(max(2, cfg.seq_len // 2), cfg.seq_len + 1, (1,), generator=generator))


def _train_repeat(cfg: TrainConfig, progress: Progress, on_record: OnRecord):
    if cfg.d_model % cfg.n_heads:
        raise ValueError("d_model must be divisible by the number of heads.")
    model = build_model(cfg)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    eval_tokens = tasks.repeat_batch(cfg.vocab_size, cfg.eval_seqs, cfg.seq_len, seed=cfg.seed + 7_919)
    generator = torch.Generator().manual_seed(cfg.seed)
    history, running, record_steps = [], [], _record_steps(cfg)
    for step in range(cfg.steps + 1):
        if step in record_steps:
            model.eval()
            record = {"step": step, "train_loss": float(np.mean(running)) if running else None,
                      **_repeat_record(model, eval_tokens, cfg.seq_len)}  # fmt: skip
            history.append(record)
            running = []
            on_record(record)
            progress(step / cfg.steps, f"step {step}: top head {record['induction_score']:.2f}, "
                     f"layer total {record['layer_induction_total']:.2f}")  # fmt: skip
            model.train()
        if step == cfg.steps:
            break
        length = _train_length(cfg, generator)
        tokens = tasks.repeat_batch(cfg.vocab_size, cfg.batch_size, length, seed=cfg.seed * 1_000_003 + step + 1)
        logits = model(tokens)  # (batch, pos, d_vocab)
        loss = nn.functional.cross_entropy(logits[:, :-1].flatten(0, 1), tokens[:, 1:].flatten())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        running.append(loss.item())
    model.eval()
    return model, history, _final_heads_repeat(model, eval_tokens, cfg.seq_len)


def _train_bursty(cfg: TrainConfig, progress: Progress, on_record: OnRecord):
    spec = cfg.bursty_spec()
    if spec.d_model % cfg.n_heads:
        raise ValueError(f"The bursty model's width D + 2N + 1 = {spec.d_model} must be divisible by the head count.")
    world = tasks.BurstyWorld.build(spec, cfg.seed)
    model = build_model(cfg)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    eval_generator = torch.Generator().manual_seed(cfg.seed + 7_919)
    eval_burst = spec.burstiness or 1
    icl = tasks.novel_batch(world, cfg.eval_seqs, eval_burst, eval_generator, flipped=False)
    iwl = tasks.iwl_batch(world, cfg.eval_seqs, eval_generator)
    flipped = tasks.novel_batch(world, cfg.eval_seqs, eval_burst, eval_generator, flipped=True)
    held_out = tasks.training_batch(world, cfg.eval_seqs, eval_generator)  # the training distribution
    generator = torch.Generator().manual_seed(cfg.seed * 1_000_003 + 1)
    history, running, record_steps = [], [], _record_steps(cfg)
    for step in range(cfg.steps + 1):
        if step in record_steps:
            model.eval()
            with torch.no_grad():
                loss = nn.functional.cross_entropy(model(held_out.inputs), held_out.targets)
                record = {"step": step, "loss": float(loss), "train_loss": float(np.mean(running)) if running else None,
                          "icl_accuracy": _accuracy(model, icl), "iwl_accuracy": _accuracy(model, iwl),
                          "flipped_accuracy": _accuracy(model, flipped), **_bursty_attention(model, icl)}  # fmt: skip
            history.append(record)
            running = []
            on_record(record)
            progress(step / cfg.steps, f"step {step}: ICL {record['icl_accuracy']:.2f}")
            model.train()
        if step == cfg.steps:
            break
        batch = tasks.training_batch(world, cfg.batch_size, generator)
        loss = nn.functional.cross_entropy(model(batch.inputs), batch.targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        running.append(loss.item())
    model.eval()
    return model, history, _final_heads_bursty(model, icl)
