"""Poisoned-context benchmark: forced-choice scoring throughput vs a plain batched forward of the same inputs.

Rows (throughput ratios: ratio = baseline_s / probe_s = probe items/s over baseline items/s, higher is better):

* `poisoned forced-choice scoring`: `scoring.choice_logprobs` (the default path: each prompt runs once, its KV cache
  is reused for both answers; log-softmax only at the answer positions) vs `scoring.plain_forward` of the same
  (context, answer) continuations as full right-padded sequences, logits only. An "item" is one continuation.
  Target >= 0.8.
* `poisoned full-sequence scoring`: the fallback path `scoring.sequence_logprobs` (the same padded batches as the
  baseline plus scoring) vs the same baseline: the pure cost of scoring on top of the forward.
* `poisoned curve end to end` (not with --quick on big models): `probe.run` with its prompt building,
  tokenization, RW fit and bootstrap, vs the plain forward of the sequences it scores.
* `poisoned judge-first curve` (not with --quick on big models): the curve with `judge_first` (the model writes its
  judgement greedily, KV-cached and batched, before the answers are scored: how RW-Steering-tuned models are
  measured) vs the plain curve; ratio = judge-first time / plain time (lower is better). On an untuned model the
  judgement rarely ends early, so this is close to the worst case (every row generates its whole budget).

The inputs are testbed-format items written in the model's own vocabulary (so every word is a real token).
"""

from __future__ import annotations

import json
from dataclasses import replace

from bench.timing import comparison_row
from probes.poisoned import CurveConfig, load_testbed, run
from probes.poisoned.probe import Prompting, build_requests, choose_items
from probes.poisoned.scoring import as_sequences, choice_logprobs, plain_forward, sequence_logprobs
from probes.tokens import uses_chat

TARGET = ">= 0.8"


def vocabulary_words(tokenizer, count: int) -> list[str]:
    """Alphabetic single-token words of the tokenizer, deterministic order."""
    words = []
    for token in sorted(tokenizer.get_vocab()):
        word = token.lstrip("Ġ▁")
        if word.isalpha() and len(word) > 2 and tokenizer(" " + word, add_special_tokens=False)["input_ids"]:
            words.append(word)
        if len(words) >= count:
            break
    return words


def synthetic_testbed(tokenizer, n_items: int):
    words = vocabulary_words(tokenizer, 4 * n_items + 4)
    items = []
    for i in range(n_items):
        thing, owner, true, false = words[4 * i : 4 * i + 4]
        items.append(
            {
                "Question": f"what is the {thing} of {owner} ?",
                "Generated Information": [f"the {thing} of {owner} is {true} .", f"{owner} has the {thing} {true} ."],
                "Input": f"the {thing} of {owner} is {false} .",
                "Synonym Sentence": [f"{owner} has the {thing} {false} ."],
                "Simple Answer": f"the {thing} of {owner} is {true} .",
            }
        )
    return load_testbed(json.dumps(items).encode(), "bench_output.json")


def rows(model, model_label: str, quick: bool) -> list[dict]:
    big = model.cfg.d_model >= 512
    if quick:
        cfg = CurveConfig(
            n_items=4 if big else 8,
            proportion_steps=2,
            max_items_per_category=2 if big else 4,
            n_bootstrap=20,
        )
    else:
        cfg = CurveConfig(n_items=20, proportion_steps=10, max_items_per_category=8 if big else 24)
    repeats = 1 if quick else 3
    testbed = synthetic_testbed(model.tokenizer, cfg.max_items_per_category)
    items = choose_items(testbed, cfg)
    prompting = Prompting(model.tokenizer, uses_chat(model.tokenizer, cfg.chat_template), cfg.prepend_bos)
    _, choice_sets = build_requests(prompting, items, cfg.n_items, cfg)
    encoded = as_sequences(choice_sets)
    label = f"{len(encoded)} continuations, n={cfg.n_items}"

    def baseline() -> None:
        plain_forward(model, encoded, cfg.batch_tokens)

    result = [
        comparison_row(
            f"poisoned forced-choice scoring vs plain batched forward ({label}, items/s)",
            lambda: choice_logprobs(model, choice_sets, cfg.batch_tokens),
            baseline,
            repeats,
            TARGET,
            higher_is_better=True,
        ),
        comparison_row(
            f"poisoned full-sequence scoring vs plain batched forward ({label}, items/s)",
            lambda: sequence_logprobs(model, encoded, cfg.batch_tokens),
            baseline,
            repeats,
            None,
            higher_is_better=True,
        ),
    ]
    if not (quick and big):
        result.append(
            comparison_row(
                f"poisoned curve end to end vs plain batched forward ({label}, items/s)",
                lambda: run(model, cfg, testbed),
                baseline,
                repeats,
                None,
                higher_is_better=True,
            )
        )
    if not (quick and big):
        result.append(
            comparison_row(
                f"poisoned judge-first curve vs the plain curve ({label}; RW-Steering's after-curve)",
                lambda: run(model, replace(cfg, judge_first=True), testbed),
                lambda: run(model, cfg, testbed),
                repeats,
                None,
            )
        )
    for row in result:
        row["model"] = model_label
    return result
