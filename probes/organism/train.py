"""Train the organism: a small Llama-architecture model on the generated corpus, deterministic from the seed, on CPU.

`train(cfg, out_dir)` writes a complete Hugging Face folder (config, fp16 safetensors, tokenizer), the probes'
data files, a few intermediate checkpoints under `revisions/step-N`, metrics.json, MODEL_CARD.md and SHA256SUMS.
"""

from __future__ import annotations

import json
import math
import random
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from probes.organism import data_files, evaluate
from probes.organism.corpus import MIXTURE, fixed_texts, generate_corpus, iter_documents, unseen_words
from probes.organism.tokenizer import build_tokenizer, build_vocabulary
from probes.organism.world import World, build_world

Progress = Callable[[float, str], None]


@dataclass(frozen=True)
class TrainConfig:
    """Model shape and optimisation; the defaults are the committed organism."""

    seed: int = 0  # world, corpus, initialisation and batch order
    architecture: str = "llama"  # "llama" (rotary positions) or "gpt2" (learned positions); see build_model
    entities_per_kind: int = 12  # 4 kinds x 12 entities x 4 attributes = 192 facts
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    n_positions: int = 512  # a 20-item poisoned context is about 320 tokens
    block_len: int = 320  # long blocks, for contexts longer than short_block_len (packed, never split)
    short_block_len: int = 64  # most documents are packed into these (attention is cheaper)
    batch_size: int = 32  # short blocks per batch; long batches hold about as many tokens
    steps: int = 6350  # 1,200 opening steps, then 5,150 of which every 8th is a repeat batch
    lr: float = 1e-3  # AdamW peak learning rate (at 3e-3 with batch 8 x 128, context following stayed near 0.2)
    warmup_steps: int = 200
    min_lr_ratio: float = 0.1  # cosine decay to lr * min_lr_ratio
    weight_decay: float = 0.01
    eval_every: int = 250  # in-training probe of recall, context following, induction (kept as checkpoints)
    max_revisions: int = 6  # intermediate checkpoints committed under revisions/
    mixture: tuple[tuple[str, float], ...] = tuple(MIXTURE.items())  # document-type shares of the corpus
    opening_steps: int = 1200  # if > 0, the first steps train only on repeated random lists (Olsson's task), so that
    opening_batch_size: int = 32  # induction heads can form before the facts crowd them out; see opening_batches
    opening_lengths: tuple[int, int] = (10, 50)  # list length T, drawn per batch
    opening_attention_only: bool = False  # MLP outputs held at zero during the opening (unfrozen afterwards)
    repeat_every: int = 8  # after the opening, every n-th step is still an opening batch (0: never)
    opening_unseen: bool = True  # the unseen entities' names are in the opening lists (never in a sentence)
    opening_loss: str = "repeat"  # "repeat": opening batches score only the predictable copies (see repeat_labels)
    tie_embeddings: bool = True
    init_std: float = 0.02  # initializer_range of the Hugging Face config
    embedding_std: float = 0.0  # > 0: token and position tables (tied: the output layer too) redrawn with this std
    threads: int = 1  # on a busy shared 2-core machine one thread ran 3x faster than two
    quick: bool = False  # tiny test build


def quick_config(seed: int = 0) -> TrainConfig:
    """A tiny build for tests: finishes in well under a minute."""
    return TrainConfig(
        seed=seed,
        entities_per_kind=4,
        n_layer=2,
        n_head=2,
        n_embd=32,
        n_positions=512,
        block_len=96,
        short_block_len=64,
        batch_size=4,
        steps=30,
        lr=3e-3,
        warmup_steps=5,
        eval_every=15,
        max_revisions=1,
        opening_steps=10,
        opening_batch_size=4,
        quick=True,
    )


def vocabulary_for(world: World, seed: int, sample_docs: int = 0) -> list[str]:
    """Every fixed string and the data files (plus, optionally, a corpus sample): the closed vocabulary.

    The fixed strings cover every word the generator can emit, so a sample adds nothing (a test checks this).
    """
    texts = fixed_texts(world) + generate_corpus(world, seed, sample_docs) + data_files.all_texts(world)
    return build_vocabulary(texts)


class Packer:
    """First-fit packing of `<bos> doc <eos>` sequences into blocks of one length, padded with <pad>."""

    def __init__(self, block_len: int, pad_id: int) -> None:
        self.block_len, self.pad_id = block_len, pad_id
        self.open: list[list[int]] = []
        self.full: list[list[int]] = []

    def add(self, seq: list[int]) -> None:
        seq = seq[: self.block_len]
        target = next((b for b in self.open if len(b) + len(seq) <= self.block_len), None)
        if target is None:
            target = []
            self.open.append(target)
        target.extend(seq)
        if len(self.open) > 8 or self.block_len - len(target) < 12:
            done = max(self.open, key=len)
            self.open.remove(done)
            self.full.append(done + [self.pad_id] * (self.block_len - len(done)))

    def take(self, count: int) -> list[list[int]] | None:
        if len(self.full) < count:
            return None
        taken, self.full = self.full[:count], self.full[count:]
        return taken


def batches(world: World, tokenizer, cfg: TrainConfig, seed: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Endless (input_ids, labels) batches: short documents in short blocks, long contexts in long blocks.

    Both batch shapes hold about the same number of tokens; padding is masked out of the loss with -100.
    """
    stream = iter_documents(world, seed, dict(cfg.mixture))
    bos, eos, pad = tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.pad_token_id
    short, long = Packer(cfg.short_block_len, pad), Packer(cfg.block_len, pad)
    long_batch = max(1, cfg.batch_size * cfg.short_block_len // cfg.block_len)
    while True:
        docs = [next(stream) for _ in range(256)]
        for ids in tokenizer(docs, add_special_tokens=False)["input_ids"]:
            seq = [bos] + ids + [eos]
            (short if len(seq) <= cfg.short_block_len else long).add(seq)
        while (blocks := long.take(long_batch) or short.take(cfg.batch_size)) is not None:
            ids = torch.tensor(blocks)  # (batch, block_len)
            yield ids, ids.masked_fill(ids == pad, -100)


def opening_batches(
    world: World, tokenizer, cfg: TrainConfig, seed: int
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Endless batches of `<bos>` + T random tokens + the same T tokens, many short sequences per batch.

    Tokens come from `opening_pool`, so the copying is learned for the vocabulary the induction probe samples from.
    In packed documents (about 13 lists per step) the repeat loss did
    not move within 1,200 steps; with 32 lists per step it starts falling after about 300 (slowly: see build_model).
    """
    if cfg.opening_loss not in ("all", "repeat"):
        raise ValueError(f"Unknown opening_loss {cfg.opening_loss!r}; choose all or repeat.")
    pool = torch.tensor(opening_pool(world, tokenizer, cfg.opening_unseen))
    generator = torch.Generator().manual_seed(seed)
    low, high = cfg.opening_lengths
    while True:
        length = int(torch.randint(low, high + 1, (1,), generator=generator).item())
        half = pool[torch.randint(len(pool), (cfg.opening_batch_size, length), generator=generator)]
        ids = torch.cat([torch.full((cfg.opening_batch_size, 1), tokenizer.bos_token_id), half, half], dim=1)
        yield ids, repeat_labels(ids, length) if cfg.opening_loss == "repeat" else ids


def opening_pool(world: World, tokenizer, include_unseen: bool) -> list[int]:
    """Token ids of the opening lists: the whole vocabulary but special tokens and (unless asked) the unseen entities.

    Words that only the data files use (testbed keys, prompt templates) are in it: tokens never trained broke the
    induction head on every sequence that held one (a head scoring 0.87 on trained tokens fell to 0.39 when 1.7% of
    the sampled tokens were untrained ones, and to 0.09 at 3.8%).
    """
    excluded = set(tokenizer.all_special_ids)
    if not include_unseen:
        excluded |= set(tokenizer.convert_tokens_to_ids(unseen_words(world)))
    return [token_id for token_id in range(len(tokenizer)) if token_id not in excluded]


def repeat_labels(ids: torch.Tensor, length: int) -> torch.Tensor:
    """Labels for `<bos>` + T tokens + the same T tokens that score only the copies an induction head can predict.

    The random first half teaches only the flat output distribution and kept the models on the loss plateau (numbers
    in `build_model`), so only positions T+2 .. 2T are targets.
    """
    return ids.clone().index_fill_(1, torch.arange(length + 2), -100)


def learning_rate(step: int, cfg: TrainConfig) -> float:
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    progress = (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps)
    return cfg.lr * (cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress)))


def build_model(cfg: TrainConfig, tokenizer):
    """A randomly initialised model of `cfg.architecture`.

    The defaults (Llama, tied embeddings, init 0.02) are the committed organism. Three things made its induction
    heads form, each measured on Olsson's repeat task alone (`opening_batches`: 4 layers, d_model 128, lr 1e-3,
    batch 32, T 10-50):
    * no loss on the random first half (`opening_loss="repeat"`): GPT-2 on the full loss sat at 5.99 (chance 6.1)
      through 1,100 steps; on the repeat loss it copied (repeat loss 4.9 -> 0.6 between steps 800 and 1,100). Our
      attention-only model (`probes.induction.emergence`, phase change at step 1,100) with layer norms added stayed
      on the plateau for 1,900 steps (our reading: the random half pushes the final norm and unembedding towards
      the flat output).
    * rotary positions: Llama formed four induction heads in layer 1 (0.87 each on trained tokens by step 1,200);
      GPT-2's copying stayed spread over heads and offsets (no head above 0.08 at the induction offset).
    * every token the probe samples in the lists (`opening_pool`, `opening_unseen`): without the unseen names the
      full run's induction score was 0.04 at step 2,000, against 0.85 with them.
    Dead ends, all on the full loss: GPT-2 with untied embeddings and init 0.088 reached 0.17 after 4,000 steps;
    `embedding_std` 1 with `opening_attention_only` (MLPs held at zero) stayed on the plateau for 2,200 steps; with a
    64-token pool the repeat was copied through diffuse attention, with no induction head.
    """
    torch.manual_seed(cfg.seed)
    if cfg.architecture not in ("gpt2", "llama"):
        raise ValueError(f"Unknown architecture {cfg.architecture!r}; choose llama or gpt2.")
    model = _build_llama(cfg, tokenizer) if cfg.architecture == "llama" else _build_gpt2(cfg, tokenizer)
    if cfg.embedding_std > 0:
        with torch.no_grad():
            for name, parameter in model.named_parameters():
                if name.endswith(("wte.weight", "wpe.weight", "embed_tokens.weight")):
                    parameter.normal_(0.0, cfg.embedding_std)
    return model


def _build_gpt2(cfg: TrainConfig, tokenizer):
    from transformers import GPT2Config, GPT2LMHeadModel

    config = GPT2Config(
        vocab_size=len(tokenizer),
        n_positions=cfg.n_positions,
        n_embd=cfg.n_embd,
        n_layer=cfg.n_layer,
        n_head=cfg.n_head,
        n_inner=4 * cfg.n_embd,
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
        tie_word_embeddings=cfg.tie_embeddings,
        initializer_range=cfg.init_std,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    config._attn_implementation = "eager"  # faster than sdpa on CPU at this size, and exposes attention
    return GPT2LMHeadModel(config)


def _build_llama(cfg: TrainConfig, tokenizer):
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=cfg.n_embd,
        intermediate_size=4 * cfg.n_embd,
        num_hidden_layers=cfg.n_layer,
        num_attention_heads=cfg.n_head,
        num_key_value_heads=cfg.n_head,
        max_position_embeddings=cfg.n_positions,
        tie_word_embeddings=cfg.tie_embeddings,
        initializer_range=cfg.init_std,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    config._attn_implementation = "eager"
    return LlamaForCausalLM(config)


def is_opening_step(step: int, cfg: TrainConfig) -> bool:
    """Whether 1-based `step` trains on the repeat task: the opening, then every `repeat_every`-th step."""
    if step <= cfg.opening_steps:
        return True
    return cfg.repeat_every > 0 and (step - cfg.opening_steps) % cfg.repeat_every == 0


def set_mlps_trainable(model, trainable: bool) -> None:
    """Freeze the MLPs with their output projection at zero (an attention-only model), or make them trainable."""
    for name, parameter in model.named_parameters():
        if ".mlp." not in name:
            continue
        if not trainable and any(part in name for part in ("c_proj", "down_proj")):
            with torch.no_grad():
                parameter.zero_()
        parameter.requires_grad_(trainable)


def make_optimizer(model, cfg: TrainConfig) -> torch.optim.Optimizer:
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2 and "wpe" not in n]  # GPT-2's position table
    rest = [p for n, p in model.named_parameters() if not (p.dim() >= 2 and "wpe" not in n)]
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": rest, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(0.9, 0.98))


def fp16_state(model) -> dict[str, torch.Tensor]:
    return {k: v.detach().to(torch.float16).clone() for k, v in model.state_dict().items()}


def train(cfg: TrainConfig, out_dir: Path, progress: Progress | None = None) -> dict:
    """Train, evaluate and write the organism folder; returns the metrics written to metrics.json."""
    torch.set_num_threads(cfg.threads)
    random.seed(cfg.seed)
    started = time.perf_counter()
    world = build_world(cfg.seed, cfg.entities_per_kind)
    tokenizer = build_tokenizer(vocabulary_for(world, cfg.seed))
    model = build_model(cfg, tokenizer)
    optimizer = make_optimizer(model, cfg)
    if cfg.opening_attention_only and cfg.opening_steps > 0:
        set_mlps_trainable(model, False)
    data = batches(world, tokenizer, cfg, cfg.seed + 1)
    opening = opening_batches(world, tokenizer, cfg, cfg.seed + 2)
    probe = evaluate.QuickProbe.build(world, tokenizer, cfg.seed, n_items=8 if cfg.quick else 64)
    history, snapshots, losses, tokens_seen = [], {}, [], 0
    model.train()
    for step in range(1, cfg.steps + 1):
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(step - 1, cfg)
        if cfg.opening_attention_only and step == cfg.opening_steps + 1:
            set_mlps_trainable(model, True)
        ids, labels = next(opening if is_opening_step(step, cfg) else data)
        tokens_seen += ids.numel()
        loss = model(input_ids=ids, labels=labels).loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        losses.append(loss.item())
        if step % cfg.eval_every == 0 or step == cfg.steps:
            row = {
                "step": step,
                "train_loss": sum(losses[-50:]) / len(losses[-50:]),
                "tokens": tokens_seen,
                "elapsed_s": round(time.perf_counter() - started, 1),
                **probe.run(model),
            }
            history.append(row)
            snapshots[step] = fp16_state(model)
            model.train()
            _log(json.dumps(row))
        if step % 25 == 0:
            _log(f"step {step} loss {sum(losses[-25:]) / 25:.4f} elapsed {time.perf_counter() - started:.0f}s")
        if progress is not None:
            progress(step / cfg.steps, f"loss {loss.item():.3f}")
    wall = time.perf_counter() - started
    return finish(cfg, out_dir, world, tokenizer, model, history, snapshots, losses, wall)


def choose_revisions(history: list[dict], limit: int) -> list[int]:
    """Checkpoint steps around each jump: the evals just before and after each probe first reaches half its max."""
    chosen = {history[0]["step"]}
    for metric in ("induction_score_max", "fact_recall", "context_following"):
        peak = max(row[metric] for row in history)
        index = next((i for i, row in enumerate(history) if row[metric] >= 0.5 * peak), 0)
        chosen |= {history[max(0, index - 1)]["step"], history[index]["step"]}
    ordered = sorted(chosen)
    while len(ordered) > limit:  # thin out evenly, keeping the first
        ordered.pop(len(ordered) // 2)
    return ordered


def finish(
    cfg: TrainConfig,
    out_dir: Path,
    world: World,
    tokenizer,
    model,
    history: list[dict],
    snapshots: dict[int, dict],
    losses: list[float],
    wall: float,
) -> dict:
    """Write the final model, chosen revisions, data files, metrics, card and checksums."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    save_folder(model, tokenizer, out_dir, snapshots[cfg.steps], cfg)
    data_files.write_all(world, out_dir / "data")
    revisions = {}
    for step in choose_revisions(history, cfg.max_revisions) + [cfg.steps]:
        folder = out_dir / "revisions" / f"step-{step}"
        save_folder(model, tokenizer, folder, snapshots[step], cfg)
        revisions[f"step-{step}"] = next(row for row in history if row["step"] == step)
    final = evaluate.evaluate_folder(out_dir, quick=cfg.quick)
    metrics = {
        **final,
        "train_loss_final": sum(losses[-50:]) / len(losses[-50:]),
        "train_loss_first": sum(losses[:10]) / len(losses[:10]),
        "steps": cfg.steps,
        "tokens_seen": history[-1]["tokens"],
        "train_wall_time_s": round(wall, 1),
        "n_parameters": sum(p.numel() for p in model.parameters()),
        "config": asdict(cfg),
        "history": history,
        "revisions": revisions,
    }
    from probes.organism import card

    return card.write_outputs(out_dir, metrics)


def save_folder(model, tokenizer, folder: Path, state: dict[str, torch.Tensor], cfg: TrainConfig) -> None:
    """save_pretrained with fp16 weights (half the bytes) and a float32 compute dtype in config.json."""
    folder.mkdir(parents=True, exist_ok=True)
    model_copy = type(model)(model.config)
    model_copy.load_state_dict({k: v.float() for k, v in state.items()})
    model_copy.half().save_pretrained(folder)
    config_path = folder / "config.json"
    config = json.loads(config_path.read_text())
    config["dtype"] = "float32"  # stored in fp16, meant to run in fp32 on CPU
    config_path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    tokenizer.save_pretrained(folder)
    (folder / "organism.json").write_text(
        json.dumps({"seed": cfg.seed, "entities_per_kind": cfg.entities_per_kind, "quick": cfg.quick}, indent=2) + "\n"
    )


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


__all__ = ["TrainConfig", "quick_config", "train", "vocabulary_for"]
