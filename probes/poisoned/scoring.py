"""Forced-choice scoring: log-probability of answer continuations given a prompt, batched.

Two paths give the same numbers (tests check both against one-sequence-at-a-time forwards):

* `choice_logprobs` (default): the prompt is shared by its candidate answers. Prompts are left-padded (with an
  attention mask; the bridge derives position ids from it), run once with the KV cache kept; the cache is repeated
  once per candidate and only the answer tokens run through a second, short forward. About half the compute of
  scoring full sequences when there are two candidates.
* `sequence_logprobs`: each (prompt, answer) pair is one sequence `[bos] prompt answer`, right-padded (no mask
  needed for a causal model), one forward per batch.

An answer's log-probability is the sum of the log-softmax of the logits at the positions predicting each of its
tokens; log-softmax is taken only at those positions. Batches group similar lengths under a token budget.

Answer scores (`SCORINGS`, `answer_scores`): `sum` (the summed log-probability), `mean` (per answer token) and
`calibrated` (the summed log-probability minus the same answer's after the content-free prompt "... retrieved
information are: N/A ...", i.e. the pointwise mutual information between answer and context, after Holtzman et al.
2021 and Zhao et al. 2021). The default, `calibrated`, was chosen by measurement on the organism (the curve probe's
defaults, 20 items per context, random position, seed 0; `poisoned_rate` at the first four shares, 0.5 and 1: the
organism's own contexts hold 20 items, p = 0/0.1/0.2/0.3/0.5/1; the public pool's long sentences fit 8, p = 0/0.125/
0.25/0.375/0.5/1):

| testbed                                   | scoring    | rate at p = 0 .. 1            | corr(length gap, log-odds) |
|-------------------------------------------|------------|-------------------------------|----------------------------|
| organism's own (24 items, equal lengths)  | sum        | 0.00/0.00/0.21/0.29/0.75/1.00 | (one-token answers)        |
|                                           | mean       | 0.00/0.00/0.21/0.29/0.75/1.00 |                            |
|                                           | calibrated | 0.00/0.08/0.33/0.42/0.88/1.00 |                            |
| public fake-news pool (48 items; the      | sum        | 0.48/0.44/0.44/0.44/0.42/0.42 | -0.97                      |
| organism reads 5% of its words)           | mean       | 0.60/0.60/0.58/0.56/0.67/0.67 | -0.13                      |
|                                           | calibrated | 0.52/0.54/0.46/0.50/0.54/0.60 | +0.17                      |

(The correlation is over items at p = 0, between the claim's minus the reference's token count and the log-odds.)

A length test the organism can read: 24 of its testbed items (every 8th) at p = 0, the clean context supporting
the reference, with the reference answer written three times over ("The birthplace of Vobil is Pital. The ...").
The claim wins the forced choice in 24/24 items under `sum`, 23/24 under `mean` and 16/24 under `calibrated`: no
score is immune to a tripled answer (the organism never saw a sentence repeated, so its later copies stay
improbable in every context), calibrated is the least fooled.
On answers of different length the summed score is decided by length (corr -0.97: the longer answer loses), so
the curve measures tokenisation, not content; the mean and the calibrated scores both remove that. Calibration also
removes the model's prior preference for one answer without context, which the mean keeps (0.60 "poisoned" at
p = 0 on the unreadable pool against 0.52, chance, calibrated). On text the model reads, all three agree at p = 0
and p = 1; calibrated gives the graded middle (0.08 at 10%). Cost: one extra scoring pass per item (not per
context): 4.3 s against 4.6 s (sum) for the organism's curve, within noise.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from probes.tokens import (
    answer_ids,
    generate_ids,
    greedy_continuation,
    left_pad,
    length_mask,
    pad_id,
    prompt_ids,
    right_pad,
)

Progress = Callable[[float, str], None]
SCORINGS = ("sum", "mean", "calibrated")  # how an answer's token log-probs become one score (module docstring)
DEFAULT_SCORING = "calibrated"
DEFAULT_BATCH_TOKENS = 8192  # tokens per forward pass (batch x padded length)
LOGITS_BUDGET_BYTES = 512 * 2**20  # cap on batch x length x vocab x 4 bytes of logits per forward


@dataclass(frozen=True)
class Encoded:
    ids: tuple[int, ...]  # [bos] + prompt + answer token ids
    answer_start: int  # index of the first answer token in `ids`


def encode(tokenizer, prompt: str, answer: str, prepend_bos: bool = True) -> Encoded:
    """Token ids of prompt then " " + answer, tokenized separately so the answer's tokens are exact."""
    answer_part = answer_ids(tokenizer, answer)
    ids = tuple(prompt_ids(tokenizer, prompt, prepend_bos) + answer_part)
    return Encoded(ids, len(ids) - len(answer_part))


def plan_batches(lengths: Sequence[int], vocab_size: int, batch_tokens: int = DEFAULT_BATCH_TOKENS) -> list[list[int]]:
    """Indices grouped into batches of similar length (longest first) under the token and logits budgets."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    batches: list[list[int]] = []
    current: list[int] = []
    for index in order:
        width = lengths[current[0]] if current else lengths[index]
        rows = len(current) + 1
        too_many_tokens = rows * width > batch_tokens
        too_many_logits = rows * width * vocab_size * 4 > LOGITS_BUDGET_BYTES
        if current and (too_many_tokens or too_many_logits):
            batches.append(current)
            current = []
        current.append(index)
    if current:
        batches.append(current)
    return batches


def batch_tensor(encoded: Sequence[Encoded], indices: list[int], pad: int, device) -> torch.Tensor:
    tokens, _ = right_pad([encoded[index].ids for index in indices], pad)  # (batch, pos)
    return tokens.to(device)


def answer_logprobs(logits: torch.Tensor, encoded: Sequence[Encoded], indices: list[int]) -> np.ndarray:
    """Summed and per-token-mean log-probs of each row's answer tokens; logits (batch, pos, vocab)."""
    rows, positions, targets, owners = [], [], [], []
    for row, index in enumerate(indices):
        item = encoded[index]
        span = range(item.answer_start, len(item.ids))
        rows += [row] * len(span)
        positions += [p - 1 for p in span]  # the logits at p-1 predict the token at p
        targets += [item.ids[p] for p in span]
        owners += [row] * len(span)
    device = logits.device
    picked = logits[torch.tensor(rows, device=device), torch.tensor(positions, device=device)].float()  # (n, vocab)
    token_logprobs = picked.log_softmax(-1).gather(1, torch.tensor(targets, device=device)[:, None])[:, 0]
    sums = torch.zeros(len(indices), dtype=torch.float64, device=device)
    sums.index_add_(0, torch.tensor(owners, device=device), token_logprobs.double())
    counts = torch.bincount(torch.tensor(owners), minlength=len(indices)).to(torch.float64)
    return np.stack([sums.cpu().numpy(), (sums.cpu() / counts).numpy()], axis=1)  # (batch, 2)


def sequence_logprobs(
    model,
    encoded: Sequence[Encoded],
    batch_tokens: int = DEFAULT_BATCH_TOKENS,
    progress: Progress | None = None,
) -> np.ndarray:
    """(n, 2) array: summed and mean answer log-probability of every encoded sequence."""
    n_ctx = int(model.cfg.n_ctx)
    too_long = [i for i, item in enumerate(encoded) if len(item.ids) > n_ctx]
    if too_long:
        longest = max(len(encoded[i].ids) for i in too_long)
        raise ValueError(f"A prompt needs {longest} tokens but the model's context holds {n_ctx}; use fewer items.")
    pad = pad_id(model.tokenizer)
    device = model.cfg.device
    out = np.zeros((len(encoded), 2))
    batches = plan_batches([len(e.ids) for e in encoded], int(model.cfg.d_vocab), batch_tokens)
    done = 0
    with torch.inference_mode():
        for indices in batches:
            logits = model(batch_tensor(encoded, indices, pad, device), return_type="logits")  # (batch, pos, vocab)
            out[indices] = answer_logprobs(logits, encoded, indices)
            done += len(indices)
            if progress:
                progress(done / len(encoded), f"scored {done}/{len(encoded)} continuations")
    return out


def plain_forward(model, encoded: Sequence[Encoded], batch_tokens: int = DEFAULT_BATCH_TOKENS) -> None:
    """The benchmark baseline: the same padded batches through the model, with no scoring."""
    pad = pad_id(model.tokenizer)
    with torch.inference_mode():
        for indices in plan_batches([len(e.ids) for e in encoded], int(model.cfg.d_vocab), batch_tokens):
            model(batch_tensor(encoded, indices, pad, model.cfg.device), return_type="logits")


def ends_sentence(tokenizer, token: int) -> bool:
    return tokenizer.decode([token]).strip() in {".", "!", "?"}


def greedy_answer(model, prompt: str, max_new_tokens: int = 24, prepend_bos: bool = True, sentences: int = 1) -> str:
    """Greedy continuation of one prompt, stopped at end-of-text or after `sentences` sentences."""
    tokenizer = model.tokenizer
    seen = []

    def enough(token: int) -> bool:
        seen.append(ends_sentence(tokenizer, token))
        return sum(seen) >= sentences

    new = greedy_continuation(model, prompt_ids(tokenizer, prompt, prepend_bos), max_new_tokens, enough)
    return tokenizer.decode(new).strip()


def greedy_first_sentences(
    model, prompts: Sequence[tuple[int, ...]], max_new_tokens: int, batch_tokens: int = DEFAULT_BATCH_TOKENS
) -> list[tuple[int, ...]]:
    """Each prompt's greedy continuation up to and including its first sentence end (or EOS, or `max_new_tokens`)
    -> the new ids of each prompt. Batched, left-padded, through the bridge's KV-cached `generate` (positions from
    the mask; hooks attached to the model apply), stopping a row at its first "."."""
    tokenizer = model.tokenizer
    period = tokenizer(".", add_special_tokens=False)["input_ids"]
    stop = period[-1] if period else tokenizer.eos_token_id
    pad = pad_id(tokenizer)
    out: list[tuple[int, ...]] = [()] * len(prompts)
    budget = min(max_new_tokens, int(model.cfg.n_ctx) - max(len(p) for p in prompts))
    if budget < 1:
        return out
    with torch.inference_mode():
        for indices in plan_batches([len(p) + budget for p in prompts], int(model.cfg.d_vocab), batch_tokens):
            batch, mask = left_pad([prompts[index] for index in indices], pad)  # (batch, pos)
            new = generate_ids(model, batch, mask, budget, stop_id=stop)  # (batch, new)
            for row, index in enumerate(indices):
                out[index] = first_sentence(tokenizer, new[row].tolist())
    return out


def first_sentence(tokenizer, new_ids: list[int]) -> tuple[int, ...]:
    """The ids up to and including the first sentence end; EOS and what follows it dropped."""
    kept = []
    for token in new_ids:
        if token == tokenizer.eos_token_id:
            break
        kept.append(int(token))
        if ends_sentence(tokenizer, token):
            break
    return tuple(kept)


# ------------------------------------------------------------------------------------ shared-prompt scoring


@dataclass(frozen=True)
class ChoiceSet:
    prompt: tuple[int, ...]  # [bos] + prompt token ids
    answers: tuple[tuple[int, ...], ...]  # token ids of each candidate answer (same count in every set)


def encode_choices(
    tokenizer, prompt: str, answers: Sequence[str], prepend_bos: bool = True, leading_space: bool = True
) -> ChoiceSet:
    """The prompt's ids and each answer's ids after it (`leading_space=False` after a chat prompt)."""
    encoded = [tuple(answer_ids(tokenizer, answer, leading_space)) for answer in answers]
    return ChoiceSet(tuple(prompt_ids(tokenizer, prompt, prepend_bos)), tuple(encoded))


def as_sequences(choice_sets: Sequence[ChoiceSet]) -> list[Encoded]:
    """The same continuations as full sequences (for the full-sequence path and the benchmark baseline)."""
    return [Encoded(s.prompt + a, len(s.prompt)) for s in choice_sets for a in s.answers]


def _check_fits(choice_sets: Sequence[ChoiceSet], n_ctx: int) -> None:
    longest = max(len(s.prompt) + max(len(a) for a in s.answers) for s in choice_sets)
    if longest > n_ctx:
        raise ValueError(f"A prompt needs {longest} tokens but the model's context holds {n_ctx}; use fewer items.")


def choice_logprobs(
    model,
    choice_sets: Sequence[ChoiceSet],
    batch_tokens: int = DEFAULT_BATCH_TOKENS,
    progress: Progress | None = None,
) -> np.ndarray:
    """(sets, answers, 2) array: summed and mean log-probability of each answer after its shared prompt."""
    if not choice_sets:
        return np.zeros((0, 0, 2))
    n_answers = len(choice_sets[0].answers)
    if any(len(s.answers) != n_answers for s in choice_sets):
        raise ValueError("Every prompt needs the same number of candidate answers.")
    _check_fits(choice_sets, int(model.cfg.n_ctx))
    widths = [len(s.prompt) + n_answers * max(len(a) for a in s.answers) for s in choice_sets]
    out = np.zeros((len(choice_sets), n_answers, 2))
    done = 0
    with torch.inference_mode():
        for indices in plan_batches(widths, int(model.cfg.d_vocab), batch_tokens):
            out[indices] = _score_shared_batch(model, [choice_sets[i] for i in indices], n_answers)
            done += len(indices)
            if progress:
                progress(done / len(choice_sets), f"scored {done}/{len(choice_sets)} contexts")
    return out


def _score_shared_batch(model, sets: list[ChoiceSet], n_answers: int) -> np.ndarray:
    """Prompt forward with the KV cache kept, then one forward over all answers' remaining tokens."""
    device = model.cfg.device
    tokens, mask = left_pad([s.prompt for s in sets], pad_id(model.tokenizer))  # (batch, pos) each
    tokens, mask = tokens.to(device), mask.to(device)
    logits, cache = model(tokens, attention_mask=mask, return_type="logits_and_cache")  # (batch, pos, vocab)
    first = logits[:, -1].float().log_softmax(-1)  # (batch, vocab): predicts every answer's first token
    answers = [a for s in sets for a in s.answers]  # (batch * n_answers) answers, set-major
    owner = torch.arange(len(answers), device=device) // n_answers
    firsts = torch.tensor([a[0] for a in answers], device=device)
    per_answer = [[float(v)] for v in first[owner, firsts].double().cpu()]
    longest = max(len(a) for a in answers)
    if longest > 1:
        cache.batch_repeat_interleave(n_answers)
        feed, fed = right_pad([a[:-1] for a in answers], pad_id(model.tokenizer))  # (batch * n_answers, longest - 1)
        feed_mask = length_mask(fed, feed.shape[1])
        full_mask = torch.cat([mask.repeat_interleave(n_answers, dim=0), feed_mask.to(device)], dim=1)
        later = model(feed.to(device), attention_mask=full_mask, past_key_values=cache, return_type="logits")
        rows = [r for r, a in enumerate(answers) for _ in range(1, len(a))]
        positions = [j - 1 for a in answers for j in range(1, len(a))]
        targets = [a[j] for a in answers for j in range(1, len(a))]
        if rows:
            picked = later[torch.tensor(rows, device=device), torch.tensor(positions, device=device)].float()
            values = picked.log_softmax(-1).gather(1, torch.tensor(targets, device=device)[:, None])[:, 0]
            for row, value in zip(rows, values.double().cpu().tolist(), strict=True):
                per_answer[row].append(value)
    sums = np.array([sum(v) for v in per_answer])
    means = np.array([sum(v) / len(v) for v in per_answer])
    return np.stack([sums, means], axis=1).reshape(len(sets), n_answers, 2)


# ------------------------------------------------------------------------------------------ answer scores


def answer_scores(in_context: np.ndarray, content_free: np.ndarray | None, scoring: str) -> np.ndarray:
    """(sets, answers) scores from (sets, answers, 2) [sum, mean] log-probs in context.

    sum: summed log-prob; mean: per-token mean; calibrated: summed log-prob minus the same answer's summed log-prob
    after the content-free prompt (`content_free`, (sets, answers)), i.e. the pointwise mutual information between
    the answer and the retrieved information.
    """
    if scoring == "sum":
        return in_context[..., 0]
    if scoring == "mean":
        return in_context[..., 1]
    if scoring == "calibrated":
        if content_free is None:
            raise ValueError("Calibrated scoring needs the answers' log-probs after the content-free prompt.")
        return in_context[..., 0] - content_free
    raise ValueError(f"Unknown scoring {scoring!r}; choose one of {', '.join(SCORINGS)}.")
