"""The organism's measured numbers: closed-book fact recall, context following, induction score, loss.

All metrics are exact and judge-free. Greedy decoding passes explicit position ids, so left padding never
shifts a prompt's positions. The induction score is the induction probe's own (`probes.induction.scores`), computed
from the attention a plain Hugging Face model returns, so it also runs inside the training loop.
"""

from __future__ import annotations

import json
import random
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import torch

from probes.induction.scores import pattern_scores, repeated_random_tokens
from probes.organism.corpus import (
    canonical,
    clean_context,
    false_value,
    generate_corpus,
    qa_prompt,
    question,
    rc_prompt,
)
from probes.organism.world import Fact, World, build_world

CONTEXT_SEED_OFFSET = 7  # eval contexts come from random.Random(seed + offset)
HELDOUT_SEED_OFFSET = 10_000  # held-out documents for the loss
CONTEXT_ITEMS = 5  # clean context: 1-2 statements of the contradicting value, the rest other true facts
INDUCTION_LENGTH = 50  # random tokens, repeated once, after <bos>


def context_following_items(world: World, seed: int) -> list[tuple[str, str]]:
    """(prompt, expected answer sentence): a clean reputable context that contradicts memory, one per fact."""
    rng = random.Random(seed + CONTEXT_SEED_OFFSET)
    items = []
    for fact in world.facts():
        wrong = false_value(world, fact, rng)
        context = clean_context(world, fact, wrong, rng, CONTEXT_ITEMS)
        items.append((rc_prompt(context, question(fact)), canonical(fact, wrong)))
    return items


def recall_items(world: World) -> list[tuple[str, str]]:
    return [(qa_prompt(f), f"{f.value}.") for f in world.facts()]


def encode(tokenizer, texts: list[str]) -> list[list[int]]:
    return tokenizer(texts, add_special_tokens=False)["input_ids"]


@torch.no_grad()
def greedy_exact_match(model, tokenizer, items: list[tuple[str, str]], batch: int = 64) -> float:
    """Share of prompts whose greedy continuation (up to the first ".") equals the expected text exactly."""
    prompts = [[tokenizer.bos_token_id] + ids for ids in encode(tokenizer, [p for p, _ in items])]
    expected = encode(tokenizer, [e for _, e in items])
    period = tokenizer.convert_tokens_to_ids(".")
    order = sorted(range(len(items)), key=lambda i: len(prompts[i]))  # similar lengths share a batch
    correct = 0
    for start in range(0, len(order), batch):
        chunk = order[start : start + batch]
        new_tokens = max(len(expected[i]) for i in chunk)
        generated = greedy_continuations(model, [prompts[i] for i in chunk], tokenizer.pad_token_id, new_tokens)
        correct += sum(_until(generated[row].tolist(), period) == expected[i] for row, i in enumerate(chunk))
    return correct / len(items)


def greedy_continuations(model, prompts: list[list[int]], pad_id: int, new_tokens: int) -> torch.Tensor:
    """(batch, new_tokens) greedy continuations of left-padded prompts, with explicit positions and the KV cache.

    Positions count from each prompt's first real token, so padding never shifts them.
    """
    width = max(len(p) for p in prompts)
    ids = torch.tensor([[pad_id] * (width - len(p)) + p for p in prompts])  # (batch, width)
    mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts])
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    out = model(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=True)
    next_ids, tokens = out.logits[:, -1].argmax(-1, keepdim=True), []  # (batch, 1)
    for _ in range(new_tokens - 1):
        tokens.append(next_ids)
        mask = torch.cat([mask, torch.ones_like(next_ids)], dim=1)
        positions = positions[:, -1:] + 1
        out = model(
            input_ids=next_ids,
            attention_mask=mask,
            position_ids=positions,
            past_key_values=out.past_key_values,
            use_cache=True,
        )
        next_ids = out.logits[:, -1].argmax(-1, keepdim=True)
    tokens.append(next_ids)
    return torch.cat(tokens, dim=1)


def _until(tokens: list[int], stop: int) -> list[int]:
    return tokens[: tokens.index(stop) + 1] if stop in tokens else tokens


def induction_tokens(tokenizer, n_sequences: int, seed: int) -> torch.Tensor:
    """(n, 1 + 2*length): <bos> then INDUCTION_LENGTH random non-special tokens, repeated once (the probe's sampler)."""
    specials = sorted(set(tokenizer.all_special_ids))
    return repeated_random_tokens(len(tokenizer), specials, n_sequences, INDUCTION_LENGTH, tokenizer.bos_token_id, seed)


@torch.no_grad()
def induction_scores(model, tokens: torch.Tensor, length: int) -> torch.Tensor:
    """(n_layer, n_head) induction scores of a plain HF model, by the induction probe's definition (METHODS.md 1)."""
    attentions = model(input_ids=tokens, output_attentions=True).attentions  # n_layer x (batch, head, pos, pos)
    return torch.stack([pattern_scores(pattern, length, offset=1)["induction"] for pattern in attentions])


@torch.no_grad()
def heldout_loss(model, tokenizer, world: World, seed: int, n_docs: int = 200, batch: int = 32) -> float:
    """Mean next-token cross-entropy on held-out generated documents (<bos> doc <eos>)."""
    docs = generate_corpus(world, seed + HELDOUT_SEED_OFFSET, n_docs)
    seqs = [[tokenizer.bos_token_id] + ids + [tokenizer.eos_token_id] for ids in encode(tokenizer, docs)]
    total, count = 0.0, 0
    for start in range(0, len(seqs), batch):
        chunk = seqs[start : start + batch]
        width = max(len(s) for s in chunk)
        ids = torch.tensor([s + [tokenizer.pad_token_id] * (width - len(s)) for s in chunk])
        mask = torch.tensor([[1] * len(s) + [0] * (width - len(s)) for s in chunk])
        labels = ids.masked_fill(mask == 0, -100)
        n_targets = int((labels[:, 1:] != -100).sum())
        total += model(input_ids=ids, attention_mask=mask, labels=labels).loss.item() * n_targets
        count += n_targets
    return total / count


@dataclass
class QuickProbe:
    """Cheap in-training probes on a subset: next-token recall, teacher-forced context following, induction."""

    recall: list[tuple[torch.Tensor, torch.Tensor]]  # groups of (prompts (n, len), answer ids (n,))
    context: list[tuple[torch.Tensor, torch.Tensor]]
    induction_tokens: torch.Tensor  # (batch, 1 + 2 * INDUCTION_LENGTH)

    @classmethod
    def build(cls, world: World, tokenizer, seed: int, n_items: int = 64) -> QuickProbe:
        """Probe inputs: `n_items` closed-book questions, half as many contradicting contexts, 4 sequences."""
        facts = random.Random(seed).sample(world.facts(), min(n_items, len(world.facts())))
        wrong_rng = random.Random(seed + 3)
        recall = [(qa_prompt(f), f.value) for f in facts]
        context = []
        for fact in facts[: n_items // 2]:
            wrong = false_value(world, fact, wrong_rng)
            items = clean_context(world, fact, wrong, wrong_rng, CONTEXT_ITEMS)
            sentence = canonical(fact, wrong)
            context.append((f"{rc_prompt(items, question(fact))} {sentence.rsplit(' ', 1)[0]}", wrong))
        tokens = induction_tokens(tokenizer, 4, seed)
        return cls(_next_token_groups(tokenizer, recall), _next_token_groups(tokenizer, context), tokens)

    @torch.no_grad()
    def run(self, model) -> dict[str, float]:
        model.eval()
        return {
            "fact_recall": _next_token_accuracy(model, self.recall),
            "context_following": _next_token_accuracy(model, self.context),
            "induction_score_max": float(induction_scores(model, self.induction_tokens, INDUCTION_LENGTH).max()),
        }


def _next_token_groups(tokenizer, items: list[tuple[str, str]]) -> list[tuple[torch.Tensor, torch.Tensor]]:
    prompts = [[tokenizer.bos_token_id] + ids for ids in encode(tokenizer, [p for p, _ in items])]
    answers = tokenizer.convert_tokens_to_ids([a for _, a in items])
    groups: dict[int, list[int]] = defaultdict(list)
    for index, ids in enumerate(prompts):
        groups[len(ids)].append(index)
    return [(torch.tensor([prompts[i] for i in g]), torch.tensor([answers[i] for i in g])) for g in groups.values()]


def _next_token_accuracy(model, groups: list[tuple[torch.Tensor, torch.Tensor]]) -> float:
    hits = sum(int((model(input_ids=p).logits[:, -1].argmax(-1) == a).sum()) for p, a in groups)
    return hits / sum(len(a) for _, a in groups)


def load_folder(folder: Path):
    """The organism (or one of its revisions) as a plain Hugging Face model and tokenizer, in float32."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32, attn_implementation="eager")
    return model.eval(), tokenizer


def world_of(folder: Path) -> World:
    meta = json.loads((Path(folder) / "organism.json").read_text())
    return build_world(meta["seed"], meta["entities_per_kind"])


def evaluate_folder(folder: Path, quick: bool = False) -> dict[str, float]:
    """The headline numbers of a saved organism folder (the same ones the model card reports)."""
    torch.manual_seed(0)
    folder = Path(folder)
    model, tokenizer = load_folder(folder)
    world = world_of(folder)
    seed = world.seed
    n_sequences = 4 if quick else 32
    tokens = induction_tokens(tokenizer, n_sequences, seed + 1)
    scores = induction_scores(model, tokens, INDUCTION_LENGTH)
    best = int(scores.argmax())
    limit = 12 if quick else None  # the quick test build measures a subset
    return {
        "fact_recall": greedy_exact_match(model, tokenizer, recall_items(world)[:limit]),
        "context_following": greedy_exact_match(model, tokenizer, context_following_items(world, seed)[:limit]),
        "induction_score_max": float(scores.max()),
        "induction_best_head": f"L{best // scores.shape[1]}H{best % scores.shape[1]}",
        "loss": heldout_loss(model, tokenizer, world, seed, n_docs=20 if quick else 200),
        "n_facts": len(world.facts()),
    }


__all__ = ["Fact", "QuickProbe", "evaluate_folder", "induction_scores", "load_folder"]
