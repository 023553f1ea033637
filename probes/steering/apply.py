"""Steered generation and steered teacher-forced answer scoring, batched, hooks scoped to each call.

Generation batches prompts with left padding and an attention mask (TransformerBridge.generate derives positions
from the mask), so the last prompt positions are the last columns of the prefill and every KV-cached step is a
generated token. Scoring right-pads prompt+answer and reads the answer tokens' log-probs: exact match of all
answer tokens under teacher forcing equals "greedy generation starts with the answer", at one forward pass.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from probes.steering.hooks import steering
from probes.steering.vectors import SteeringVectors
from probes.tokens import batch_continuations, bridge_answer_ids, bridge_ids, left_pad, pad_id, right_pad

Directions = dict[int, list[torch.Tensor]]  # layer -> list of (batch or 1, d_model) strength-scaled directions


def layer_directions(
    vectors: SteeringVectors,
    layers: tuple[int, ...],
    strength: float | torch.Tensor,
    task_strength: float = 0.0,
    general: torch.Tensor | None = None,
) -> Directions:
    """u_l = strength * v_l (+ task_strength * v_task_l as a second direction). `strength` may be (batch,).

    `general` overrides the general vector (the matched-norm random baseline) -> {layer: [(b|1, d_model), ...]}.
    """
    base = vectors.general if general is None else general  # (n_layers, d_model)
    scale = torch.as_tensor(strength, dtype=torch.float32).reshape(-1, 1)  # (b|1, 1)
    out: Directions = {}
    for layer in layers:
        directions = [scale * base[layer].unsqueeze(0)]
        if vectors.task is not None and task_strength:
            directions.append(task_strength * vectors.task[layer].unsqueeze(0))
        out[layer] = directions
    return out


def matched_norm_random(vectors: SteeringVectors, seed: int) -> torch.Tensor:
    """A Gaussian random direction per layer with the general vector's norm -> (n_layers, d_model)."""
    generator = torch.Generator().manual_seed(seed)
    noise = torch.randn(vectors.general.shape, generator=generator)
    return noise / noise.norm(dim=-1, keepdim=True) * vectors.general.norm(dim=-1, keepdim=True)


def _rows(directions: Directions, start: int, stop: int) -> Directions:
    return {layer: [d[start:stop] if d.shape[0] > 1 else d for d in ds] for layer, ds in directions.items()}


@dataclass(frozen=True)
class DecodeSettings:
    max_new_tokens: int = 12
    do_sample: bool = False  # False: greedy
    temperature: float = 1.0
    seed: int = 0


@torch.inference_mode()
def generate(
    model,
    prompts: list[str],
    directions: Directions,
    n_prompt_positions: int,
    decode: DecodeSettings,
    batch_size: int = 32,
) -> list[str]:
    """Continuations of `prompts` under steering (directions may carry one row per prompt) -> texts."""
    tokens = [bridge_ids(model, prompt) for prompt in prompts]
    texts: list[str] = []
    for chunk, start in enumerate(range(0, len(prompts), batch_size)):
        stop = min(start + batch_size, len(prompts))
        batch, mask = left_pad(tokens[start:stop], pad_id(model.tokenizer))
        width = batch.shape[1]
        torch.manual_seed(decode.seed + chunk)
        with steering(model, _rows(directions, start, stop), width, n_prompt_positions):
            texts += batch_continuations(
                model, batch, mask, decode.max_new_tokens, do_sample=decode.do_sample, temperature=decode.temperature
            )
    return texts


@torch.inference_mode()
def score_answers(
    model,
    prompts: list[str],
    answers: list[str],
    directions: Directions,
    n_prompt_positions: int,
    batch_size: int = 32,
) -> tuple[list[bool], list[float]]:
    """Teacher-forced greedy exact match and mean answer-token log-prob for each (prompt, answer)."""
    prompt_ids = [bridge_ids(model, prompt) for prompt in prompts]
    answer_ids = [bridge_answer_ids(model, p, ids, a) for p, ids, a in zip(prompts, prompt_ids, answers, strict=True)]
    correct: list[bool] = []
    logprobs: list[float] = []
    for start in range(0, len(prompts), batch_size):
        stop = min(start + batch_size, len(prompts))
        full = [torch.cat([p, a]) for p, a in zip(prompt_ids[start:stop], answer_ids[start:stop], strict=True)]
        batch, _ = right_pad(full, pad_id(model.tokenizer))
        prompt_lengths = torch.tensor([len(p) for p in prompt_ids[start:stop]])
        with steering(model, _rows(directions, start, stop), prompt_lengths, n_prompt_positions):
            logits = model(batch.to(model.cfg.device))  # (batch, pos, vocab)
        log_probs = torch.log_softmax(logits.float(), dim=-1).cpu()
        for row, (length, answer) in enumerate(zip(prompt_lengths.tolist(), answer_ids[start:stop], strict=True)):
            predicting = log_probs[row, length - 1 : length - 1 + len(answer)]  # (n_answer, vocab)
            correct.append(bool((predicting.argmax(-1) == answer).all()))
            logprobs.append(float(predicting.gather(-1, answer[:, None]).mean()))
    return correct, logprobs
