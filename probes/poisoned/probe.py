"""Rescorla-Wagner curves under poisoned context, and single-context exploration (METHODS.md section 3).

For every testbed item, share p of inappropriate items and position setting, build an n-item context in the
testbed prompt format and score, by forced choice, the reference answer against the inappropriate claim:
`logodds = log P(claim | context) - log P(reference | context)` (sum of log-probs over each answer's tokens).
"Poisoned rate" = share of items whose claim wins (logodds > 0; an exact tie counts one half).

Association strength fitted by the RW model: by default the poisoned rate (the share of answers that follow the
inappropriate content, the closest judge-free stand-in for the paper's "association with C1"); optionally the
mean choice probability `sigmoid(logodds)` (smoother on few items). Confidence bands: percentile bootstrap over
items (the same resampled items at every proportion), which also gives an interval for alpha_beta. Per category,
the sequential (shared prediction error) variant is also fitted jointly over the position settings, with the
actual order of appropriate and inappropriate items in each context: it predicts position effects.

Steered curves (`SteeredTestbed`, our addition): the testbed scored with a stored FlexAC vector applied at a
strength (FlexAC hooks on the vector's layers, `probes/steering/hooks.py`), to ask whether pushing the model toward
faithfulness (negative strengths) makes it resist poisoned context. Every position of every scored forward pass is
steered: the whole prompt (context items, question) and the answer tokens, in the context prompts and in the
content-free prompts of the calibrated scoring alike. Why every position: the vector is a register direction, and
the poisoned context is read all along the prompt, not only at its last tokens; and it makes the shared-prompt
KV-cache path exact (a hook that steers every position needs no per-row notion of where the prompt ends), so
`share_prompt` keeps its meaning under steering. Strength 0 attaches no hook: exactly the unsteered curve. The
vector and strength are an input, not config fields, so an unsteered run keeps its key.

Deviations from the paper: forced choice by log-probability instead of an LLM judge; the RW formulation is ours
(METHODS.md); source tags are the organism's tag words. When n items do not fit the model's context, n is
lowered to the largest that fits every item and the summary says so.
"""

from __future__ import annotations

import contextlib
import json
import random
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from probes.coverage import Coverage, measure
from probes.poisoned.contexts import (
    POSITIONS,
    Segment,
    bad_slots,
    content_free_prompt,
    judgement_tokens,
    poisoned_segments,
    render_prompt,
)
from probes.poisoned.rescorla_wagner import (
    CurveFits,
    fit_columns,
    fit_curves,
    fit_rw_many,
    fit_sequential,
    models_from_columns,
    overweighting,
)
from probes.poisoned.scoring import (
    DEFAULT_BATCH_TOKENS,
    DEFAULT_SCORING,
    SCORINGS,
    ChoiceSet,
    answer_scores,
    as_sequences,
    choice_logprobs,
    encode_choices,
    greedy_answer,
    greedy_first_sentences,
    sequence_logprobs,
)
from probes.poisoned.testbed import Testbed, TestbedItem
from probes.steering.apply import layer_directions
from probes.steering.hooks import steering
from probes.steering.vectors import SteeringVectors
from probes.tokens import CHAT_MODES, as_model_reads, prompt_format, shown_ids, uses_chat

NAME = "poisoned"
VERSION = "4"  # 3: chat templates (prompt_format, example_prompt); 4: judge_first
EXPLORE_NAME = "poisoned-explore"
EXPLORE_VERSION = "3"  # 3: chat templates; the prompt as the model reads it
EXPLORE_INPUTS_FILE = "explore_inputs.json"  # the typed context, kept with the run (not part of its key)
STRENGTHS = ("poisoned_rate", "choice_probability")
ALL = "all"
Progress = Callable[[float, str], None]


@dataclass(frozen=True)
class CurveConfig:
    """What the curve probe computes; every field goes into the cache key."""

    n_items: int = 20  # context items per prompt (the paper used about 20)
    proportion_steps: int = 10  # shares 0, 1/steps, ..., 1 of inappropriate items (rounded to whole items)
    positions: tuple[str, ...] = ("random",)  # where inappropriate items sit: random, first, last, spread
    max_items_per_category: int = 24  # testbed items sampled per category (seeded)
    categories: tuple[str, ...] = ()  # restrict to these categories; empty = all
    source_tags: bool = True  # "(From <source>)" tags: reputable for appropriate, disreputable for inappropriate
    strength: str = "poisoned_rate"  # what the RW model fits: poisoned_rate or choice_probability
    scoring: str = DEFAULT_SCORING  # sum, mean (per token) or calibrated (minus the content-free log-prob)
    chat_template: str = "auto"  # auto: prompts go through the tokenizer's chat template when it has one; on, off
    n_bootstrap: int = 200  # bootstrap resamples of items for the confidence bands (0 = none)
    n_generated: int = 0  # contexts for which a greedy answer is generated for display
    max_new_tokens: int = 24  # length limit of a generated answer
    batch_tokens: int = DEFAULT_BATCH_TOKENS  # tokens per forward pass
    share_prompt: bool = True  # run each prompt once and reuse its KV cache for both answers (same numbers)
    prepend_bos: bool = True
    seed: int = 0
    judge_first: bool = False  # the model first writes its judgement of the context (greedy, up to its first
    # sentence end: "Reliable items: 1, 3."), then the answers are scored after it: RW-Steering-tuned models


EVERY_POSITION = "all"  # which positions a steered curve steers (module docstring)


@dataclass(frozen=True)
class Steer:
    """A FlexAC vector applied while the testbed is scored: the vector's own layers, `strength` in its unit."""

    vectors: SteeringVectors
    strength: float

    def describe(self) -> dict:
        """What the run's summary records of the steering (JSON-safe)."""
        return {
            "strength": float(self.strength) + 0.0,  # -0.0 -> 0.0
            "layers": [int(layer) for layer in self.vectors.layers],
            "positions": EVERY_POSITION,
            "unit": str(self.vectors.metadata.get("unit", "")),
            "vector_model": str(self.vectors.metadata.get("model", "")),
            "vector_digest": self.vectors.digest(),
        }


@dataclass(frozen=True)
class SteeredTestbed:
    """The curve probe's input when a steering vector is applied (`steer` None: the plain testbed's curve)."""

    testbed: Testbed
    steer: Steer | None = None


def check_steer(steer: Steer, model, model_label: str = "") -> None:
    """One clear ValueError when the vector was built on another model (its recorded model, or its shape)."""
    built_on = str(steer.vectors.metadata.get("model") or "")
    if built_on and model_label and built_on != model_label:
        raise ValueError(
            f"This steering vector was built on {built_on}, not on the model in use ({model_label}); build a vector "
            "on this model (python -m probes steering vectors --model ...) or choose one of its stored vectors."
        )
    steer.vectors.check_model(model)


@dataclass(frozen=True)
class CurveResult:
    config: CurveConfig | None  # None when rebuilt from a stored run (from_stored): the payload keeps only the
    # settings below; the run's whole config is the store's StoredRun.config
    scores: pd.DataFrame  # one row per item x proportion x position
    curve: pd.DataFrame  # one row per category x position x proportion
    fits: pd.DataFrame  # one row per category x position
    fitted: pd.DataFrame  # the fitted RW curve on a fine grid
    examples: pd.DataFrame  # generated answers (may be empty)
    n_items_used: int
    notice: str
    skipped: list[dict]
    coverage: Coverage  # share of the scored items' words the tokenizer can read
    # What the summary records of the config: taken from `config` when it is given, set by from_stored otherwise.
    strength: str = ""  # what the RW model fits: poisoned_rate or choice_probability
    scoring: str = ""  # sum, mean or calibrated
    positions: tuple[str, ...] = ()  # position settings, in the config's order; the summary's is the first
    n_items_requested: int = 0  # the config's n_items (n_items_used may be lower)
    prompt_format: str = "plain"  # "chat" when the prompts went through the tokenizer's chat template
    example_prompt: str = ""  # the first scored prompt exactly as the model read it, special tokens included
    steer: dict | None = None  # the steering applied (`Steer.describe`), None for an unsteered curve

    def __post_init__(self) -> None:
        if self.config is not None:
            settings = {
                "strength": self.config.strength,
                "scoring": self.config.scoring,
                "positions": tuple(self.config.positions),
                "n_items_requested": self.config.n_items,
            }
            for name, value in settings.items():
                object.__setattr__(self, name, value)
        elif not (self.strength and self.scoring and self.positions and self.n_items_requested):
            raise ValueError("A curve result without its config needs strength, scoring, positions and n_items.")

    def to_frame(self) -> pd.DataFrame:
        return self.curve

    def to_tables(self) -> dict[str, pd.DataFrame]:
        return {
            "curve": self.curve,
            "fits": self.fits,
            "fitted": self.fitted,
            "scores": self.scores,
            "examples": self.examples,
        }

    @classmethod
    def from_stored(cls, tables: dict[str, pd.DataFrame], summary: dict, files: dict[str, bytes]) -> CurveResult:
        """A stored run rebuilt from its five tables and summary. The config is not in the payload (config None):
        strength, scoring and n_items come from the summary, the position settings from the curve table (in the
        config's order); the coverage keeps what the summary records (see `Coverage.from_summary`)."""
        curve = tables["curve"]
        positions = tuple(dict.fromkeys(curve.loc[curve["category"] == ALL, "position"]))
        if not positions or positions[0] != summary["position"]:
            raise ValueError("The stored curve table does not start with the summary's position setting.")
        return cls(
            config=None,
            scores=tables["scores"],
            curve=curve,
            fits=tables["fits"],
            fitted=tables["fitted"],
            examples=tables["examples"],
            n_items_used=int(summary["n_items_used"]),
            notice=summary["notice"],
            skipped=list(summary["skipped"]),
            coverage=Coverage.from_summary(summary),
            strength=summary["strength"],
            scoring=summary["scoring"],
            positions=positions,
            n_items_requested=int(summary["n_items_requested"]),
            prompt_format=summary["prompt_format"],
            example_prompt=summary["example_prompt"],
            steer=summary.get("steer"),
        )

    @property
    def position(self) -> str:
        """The first position setting: the one the summary's points and fits describe."""
        return self.positions[0]

    @property
    def testbed_items(self) -> int:
        """Testbed items scored (per share and position)."""
        return int(self.scores["item"].nunique())

    @property
    def categories(self) -> list[str]:
        """The testbed categories with a curve of their own (none when the items are of one category)."""
        return sorted(c for c in self.curve["category"].unique() if c != ALL)

    @property
    def groups(self) -> list[tuple[str, str]]:
        """Every (category, position) with a curve, in table order ("all" first)."""
        return list(dict.fromkeys(zip(self.curve["category"], self.curve["position"], strict=True)))

    @property
    def best_models(self) -> dict[tuple[str, str], str]:
        """The best model by AICc of each (category, position)."""
        if "best_model" not in self.fits:
            return {}
        return {(r.category, r.position): r.best_model for r in self.fits.itertuples()}

    @property
    def warnings(self) -> list[str]:
        """The coverage warning (the tokenizer cannot read the testbed), or nothing."""
        return self.coverage.warnings("this testbed")

    def _main_fit(self) -> pd.Series:
        rows = self.fits[(self.fits["category"] == ALL) & (self.fits["position"] == self.position)]
        return rows.iloc[0]

    @property
    def points(self) -> list[dict]:
        """The curve of all items at the first position: proportion, poisoned_rate, mean_logodds per share."""
        main = self.curve[(self.curve["category"] == ALL) & (self.curve["position"] == self.position)]
        return [
            {
                "proportion": float(r.proportion),
                "poisoned_rate": float(r.poisoned_rate),
                "mean_logodds": float(r.mean_logodds),
            }
            for r in main.itertuples()
        ]

    @property
    def rw_fit(self) -> dict:
        """The RW fit of all items at the first position, JSON-safe: alpha_beta (and its bootstrap interval),
        baseline, scale, r2, the best model by AICc, its meaning and every model's parameters and scores."""
        fit = self._main_fit()
        return {
            "alpha_beta": float(fit.alpha_beta),
            "baseline": float(fit.baseline),
            "scale": float(fit.scale),
            "r2": _json_float(fit.r2),
            "best_model": str(fit.best_model),
            "models": models_from_columns(fit),
            "meaning": str(fit.meaning),
            "alpha_beta_low": _json_float(fit.alpha_beta_low),
            "alpha_beta_high": _json_float(fit.alpha_beta_high),
        }

    @property
    def rw_sequential_fit(self) -> dict:
        """The sequential (shared-error) RW variant's fit of all items: alpha_beta, scale, r2."""
        fit = self._main_fit()
        return {"alpha_beta": float(fit.seq_alpha_beta), "scale": float(fit.seq_scale), "r2": _json_float(fit.seq_r2)}

    def summary(self) -> dict:
        steered = {} if self.steer is None else {"steer": self.steer}  # unsteered summaries stay as they were
        return {
            **steered,
            "points": self.points,
            "rw_fit": self.rw_fit,
            "rw_sequential_fit": self.rw_sequential_fit,
            "strength": self.strength,
            "scoring": self.scoring,
            "prompt_format": self.prompt_format,
            "example_prompt": self.example_prompt,
            "position": self.position,
            "n_items_requested": self.n_items_requested,
            "n_items_used": self.n_items_used,
            "testbed_items": self.testbed_items,
            "categories": self.categories,
            "notice": self.notice,
            "skipped": self.skipped,
            "coverage": self.coverage.share_known,
            "unknown_words": list(self.coverage.unknown_examples),
            "warnings": self.warnings,
        }


def _json_float(value: float) -> float | None:
    return None if value is None or not np.isfinite(value) else float(value)


def validate_config(cfg: CurveConfig) -> None:
    if cfg.n_items < 1:
        raise ValueError("n_items must be at least 1.")
    if not 2 <= cfg.proportion_steps <= 100:
        raise ValueError("proportion_steps must lie in 2..100.")
    if not cfg.positions or any(p not in POSITIONS for p in cfg.positions):
        raise ValueError(f"positions must be a non-empty subset of {', '.join(POSITIONS)}.")
    if cfg.strength not in STRENGTHS:
        raise ValueError(f"strength must be one of {', '.join(STRENGTHS)}.")
    if cfg.scoring not in SCORINGS:
        raise ValueError(f"scoring must be one of {', '.join(SCORINGS)}.")
    if cfg.chat_template not in CHAT_MODES:
        raise ValueError(f"chat_template must be one of {', '.join(CHAT_MODES)}.")
    if cfg.max_items_per_category < 1:
        raise ValueError("max_items_per_category must be at least 1.")


# ---------------------------------------------------------------------------------------------- item choice


def choose_items(testbed: Testbed, cfg: CurveConfig) -> list[TestbedItem]:
    """Up to max_items_per_category items from each chosen category, sampled with the seed."""
    rng = random.Random(cfg.seed)
    available = testbed.categories()
    unknown = [c for c in cfg.categories if c not in available]
    if unknown:
        raise ValueError(f"Unknown categories {', '.join(unknown)}; the testbed has {', '.join(available)}.")
    chosen = []
    for category in cfg.categories or tuple(available):
        pool = [item for item in testbed.items if item.category == category]
        chosen += rng.sample(pool, min(len(pool), cfg.max_items_per_category))
    return chosen


def distinguishable(tokenizer, items: list[TestbedItem]) -> tuple[list[TestbedItem], list[dict]]:
    """Items whose reference and claim differ as token sequences (else forced choice cannot tell them apart)."""
    kept, skipped = [], []
    for item in items:
        reference = tokenizer(" " + item.reference, add_special_tokens=False)["input_ids"]
        claim = tokenizer(" " + item.claim, add_special_tokens=False)["input_ids"]
        if reference == claim:
            skipped.append({"question": item.question, "reason": "reference and claim tokenize identically"})
        else:
            kept.append(item)
    return kept, skipped


def fitting_n_items(prompting: Prompting, items: list[TestbedItem], n_items: int, n_ctx: int, cfg: CurveConfig) -> int:
    """The largest n <= n_items whose longest possible prompt (plus answer) fits the model's context."""
    best, tokenizer = n_items, prompting.tokenizer
    for item in items:
        sentences = item.appropriate + item.inappropriate
        tag = " (From university)" if cfg.source_tags else ""
        segment = max(
            len(tokenizer(f" {n_items}. {s}.{tag}", add_special_tokens=False)["input_ids"]) for s in sentences
        )
        overhead = len(prompting.choices(render_prompt([], item.question), (item.reference,)).prompt)
        answer = max(
            len(tokenizer(" " + a, add_special_tokens=False)["input_ids"]) for a in (item.reference, item.claim)
        )
        margin = 4 + (judgement_tokens(tokenizer, n_items) if cfg.judge_first else 0)
        best = min(best, (n_ctx - overhead - answer - margin) // max(segment, 1))
    if best < 1:
        raise ValueError(
            f"Even a one-item context does not fit the model's {n_ctx}-token context; shorten the testbed."
        )
    return best


def bad_counts(n_items: int, steps: int) -> list[int]:
    return sorted({round(k * n_items / steps) for k in range(steps + 1)})


def check_enough_shares(n_used: int, n_ctx: int, cfg: CurveConfig, prompting: Prompting) -> None:
    """A curve needs at least 3 distinct shares; with 1 item per context there are only 0% and 100%."""
    if len(bad_counts(n_used, cfg.proportion_steps)) >= 3:
        return
    remedies = ["a model with a longer context", "a testbed with shorter sentences"]
    if n_used >= 2:
        remedies.append("more share steps")
    if prompting.chat:
        remedies.append("the plain prompt format")
    template = " with its chat template" if prompting.chat else ""
    raise ValueError(
        f"Only {n_used} testbed item(s) per context fit this model's {n_ctx}-token context{template}, which gives "
        f"fewer than the 3 shares of inappropriate content a curve needs; use {', or '.join(remedies)}."
    )


# ---------------------------------------------------------------------------------------------- the probe


def run(
    model,
    cfg: CurveConfig,
    testbed: Testbed | SteeredTestbed,
    progress: Progress | None = None,
    model_label: str = "",
) -> CurveResult:
    """Score every item at every share and position, aggregate curves, fit the RW model, bootstrap bands.

    A `SteeredTestbed` with a `Steer` scores under the FlexAC hooks (every position; module docstring); a vector
    built on another model than `model` (named `model_label`) is refused before anything is scored."""
    report = progress or (lambda fraction, message="": None)
    prepared = prepare(model, cfg, testbed, model_label)
    part = score_shard(model, prepared, cfg, None, lambda f, m: report(0.02 + 0.91 * f, m))
    report(0.93, "fitting the Rescorla-Wagner model")
    result = merge_shards(cfg, [part])
    report(1.0, "done")
    return result


@dataclass
class Prepared:
    """What scoring needs, the same for the whole testbed and for every shard of it (deterministic given the model's
    tokenizer, the config and the testbed)."""

    items: list[TestbedItem]  # the chosen items the tokenizer can tell apart, in scoring order
    skipped: list[dict]
    coverage: Coverage
    prompting: Prompting
    n_used: int  # items per context that fit the model's context window
    notice: str
    rows: list[dict]  # one per item x position x share
    choice_sets: list[ChoiceSet]
    steer: Steer | None


def prepare(model, cfg: CurveConfig, testbed: Testbed | SteeredTestbed, model_label: str = "") -> Prepared:
    """Choose and check the items and build every prompt (nothing is scored yet)."""
    validate_config(cfg)
    steer = testbed.steer if isinstance(testbed, SteeredTestbed) else None
    testbed = testbed.testbed if isinstance(testbed, SteeredTestbed) else testbed
    if steer is not None:
        check_steer(steer, model, model_label)
    tokenizer = model.tokenizer
    chosen = choose_items(testbed, cfg)
    coverage = measure(tokenizer, item_texts(chosen))
    items, skipped = distinguishable(tokenizer, chosen)
    if not items:
        raise ValueError(
            " ".join(
                ["No testbed item has a reference answer and claim that differ under this model's tokenizer."]
                + coverage.warnings("this testbed")
            )
        )
    prompting = Prompting(tokenizer, uses_chat(tokenizer, cfg.chat_template), cfg.prepend_bos, cfg.judge_first)
    n_used = fitting_n_items(prompting, items, cfg.n_items, int(model.cfg.n_ctx), cfg)
    check_enough_shares(n_used, int(model.cfg.n_ctx), cfg, prompting)
    notice = (
        ""
        if n_used == cfg.n_items
        else (
            f"{cfg.n_items} items per context do not fit the model's {int(model.cfg.n_ctx)}-token context; "
            f"used {n_used} items per context instead."
        )
    )
    rows, choice_sets = build_requests(prompting, items, n_used, cfg)
    return Prepared(items, skipped, coverage, prompting, n_used, notice, rows, choice_sets, steer)


def shard_ranges(testbed: Testbed | SteeredTestbed, cfg: CurveConfig, items_per_shard: int) -> list[tuple[int, int]]:
    """Item ranges [start, stop) covering every item the curve can score, `items_per_shard` each (the last range
    may reach past the items the tokenizer keeps: its shard is then smaller or empty). One range: no split."""
    if items_per_shard < 1:
        raise ValueError(f"A shard needs at least one item (got {items_per_shard}).")
    plain = testbed.testbed if isinstance(testbed, SteeredTestbed) else testbed
    total = len(choose_items(plain, cfg))
    return [(start, min(start + items_per_shard, total)) for start in range(0, max(total, 1), items_per_shard)]


@dataclass
class CurveShard:
    """The scores of a range of items (all of them for an unsplit curve), and what merging needs to know; travels
    between processes as a payload (tables and a JSON summary)."""

    scores: pd.DataFrame  # score_table rows of the range's items, in scoring order
    examples: pd.DataFrame  # generated answers (only the shard that starts at item 0 generates them)
    meta: dict  # n_items_used, notice, skipped, coverage, prompt_format, example_prompt, steer, fallback, start

    def to_tables(self) -> dict[str, pd.DataFrame]:
        return {"scores": self.scores, "examples": self.examples}

    def summary(self) -> dict:
        return self.meta

    @classmethod
    def from_stored(cls, tables: dict[str, pd.DataFrame], summary: dict, files: dict[str, bytes]) -> CurveShard:
        return cls(tables["scores"], tables["examples"], summary)


def score_shard(
    model, prepared: Prepared, cfg: CurveConfig, item_range: tuple[int, int] | None, progress: Progress | None = None
) -> CurveShard:
    """Score the prompts of the items in `item_range` (None: every item) under the steering, if any."""
    report = progress or (lambda fraction, message="": None)
    start, stop = item_range or (0, len(prepared.items))
    picked = [n for n, row in enumerate(prepared.rows) if start <= row["item"] < stop]
    rows = [prepared.rows[n] for n in picked]
    choice_sets = [prepared.choice_sets[n] for n in picked]
    items = prepared.items[start:stop]
    report(0.0, f"{len(choice_sets)} contexts to score")
    fallback, free, judgements, logprobs = "", None, [], np.zeros((0, 2, 2))
    with steered(model, prepared.steer):  # every scored or generated forward pass below
        if choice_sets:
            choice_sets, judgements = judged(model, choice_sets, prepared.n_used, cfg,
                                             lambda f, m: report(0.33 * f, m))  # fmt: skip
            logprobs, fallback = score_choice_sets(
                model, choice_sets, cfg.share_prompt, cfg.batch_tokens, lambda f, m: report(0.95 * f, m)
            )
            if cfg.scoring == "calibrated":
                free = np.full((len(prepared.items), 2), np.nan)  # (items, 2); this shard's rows only
                free[start : start + len(items)] = content_free_logprobs(model, prepared.prompting, items, cfg)
        generate = cfg.n_generated and start == 0
        examples = generate_examples(model, prepared.prompting, prepared.items, prepared.n_used, cfg) if generate \
            else _empty_examples()  # fmt: skip
    scores = score_table(rows, logprobs, cfg, free).assign(judgement=judgements) if rows else pd.DataFrame()
    first_set = choice_sets[0] if choice_sets and start == 0 else prepared.choice_sets[0]  # with its judgement
    meta = {
        "start": start, "n_items_used": prepared.n_used, "notice": prepared.notice, "skipped": prepared.skipped,
        "coverage": asdict(prepared.coverage), "prompt_format": prepared.prompting.format,
        "example_prompt": prepared.prompting.shown(first_set), "fallback": fallback,
        "steer": None if prepared.steer is None else prepared.steer.describe(),
    }  # fmt: skip
    return CurveShard(scores, examples, meta)


def merge_shards(cfg: CurveConfig, shards: list[CurveShard]) -> CurveResult:
    """One curve from the shards of a testbed (in any order): their scores in scoring order, aggregated, fitted and
    bootstrapped as one. The same as scoring every item in one go, up to float rounding of differently batched
    forward passes."""
    ordered = sorted(shards, key=lambda shard: shard.meta["start"])
    first = ordered[0].meta
    scores = pd.concat([shard.scores for shard in ordered if len(shard.scores)], ignore_index=True)
    examples = next((shard.examples for shard in ordered if len(shard.examples)), ordered[0].examples)
    fallback = next((shard.meta["fallback"] for shard in ordered if shard.meta["fallback"]), "")
    notice = " ".join(text for text in (first["notice"], fallback) if text)
    curve, fits, fitted = aggregate(scores, first["n_items_used"], cfg)
    coverage = dict(first["coverage"], unknown_examples=tuple(first["coverage"]["unknown_examples"]))
    return CurveResult(
        cfg, scores, curve, fits, fitted, examples, first["n_items_used"], notice, list(first["skipped"]),
        Coverage(**coverage), prompt_format=first["prompt_format"], example_prompt=first["example_prompt"],
        steer=first["steer"],
    )  # fmt: skip


def steered(model, steer: Steer | None):
    """The FlexAC hooks of `steer` on every position of every forward pass (none for no steer or strength 0)."""
    if steer is None:
        return contextlib.nullcontext()
    directions = layer_directions(steer.vectors, steer.vectors.layers, float(steer.strength))
    return steering(model, directions, 0, 0)  # prompt length 0, 0 last prompt positions: every position steered


@dataclass(frozen=True)
class Prompting:
    """How this run's prompts reach the model: the chat template or plain text, BOS, the answers' placement."""

    tokenizer: object
    chat: bool  # prompts are one user turn of the chat template; answers start the assistant's reply
    prepend_bos: bool
    judge_first: bool = False  # answers follow the model's own judgement (a space before them even after chat)

    @property
    def format(self) -> str:
        return prompt_format(self.chat)

    def text(self, prompt: str) -> str:
        """The prompt as the model reads it (before tokenization)."""
        return as_model_reads(self.tokenizer, prompt, self.chat)

    def choices(self, prompt: str, answers: tuple[str, ...]) -> ChoiceSet:
        """The prompt's ids and each answer's; after a chat prompt an answer starts the reply (no leading space)
        unless it follows the model's judgement."""
        leading_space = self.judge_first or not self.chat
        return encode_choices(self.tokenizer, self.text(prompt), answers, self.prepend_bos, leading_space)

    def shown(self, choice_set: ChoiceSet) -> str:
        """A scored prompt exactly as the model reads it, special tokens written out (`example_prompt`)."""
        return shown_ids(self.tokenizer, choice_set.prompt)


def item_texts(items: list[TestbedItem]) -> list[str]:
    """Every text of the items that goes into a prompt or an answer (what coverage is measured on)."""
    return [
        text
        for item in items
        for text in (item.question, item.reference, item.claim, *item.appropriate, *item.inappropriate)
    ]


def judged(
    model, choice_sets: list[ChoiceSet], n_items: int, cfg: CurveConfig, progress: Progress | None = None
) -> tuple[list[ChoiceSet], list[str]]:
    """With `judge_first`: each prompt extended by the model's greedy judgement (its first sentence), and the
    judgements as text; else the sets unchanged and empty judgements."""
    if not cfg.judge_first:
        return choice_sets, [""] * len(choice_sets)
    if progress:
        progress(0.0, f"the model judges {len(choice_sets)} contexts")
    budget = judgement_tokens(model.tokenizer, n_items)
    new = greedy_first_sentences(model, [s.prompt for s in choice_sets], budget, cfg.batch_tokens)
    extended = [ChoiceSet(s.prompt + ids, s.answers) for s, ids in zip(choice_sets, new, strict=True)]
    return extended, [model.tokenizer.decode(list(ids)).strip() for ids in new]


def content_free_logprobs(model, prompting: Prompting, items: list[TestbedItem], cfg: CurveConfig) -> np.ndarray:
    """(items, 2) summed log-probs of the reference and the claim after each item's content-free prompt (after the
    model's judgement of it with `judge_first`)."""
    sets = [prompting.choices(content_free_prompt(item.question), (item.reference, item.claim)) for item in items]
    sets = judged(model, sets, 1, cfg)[0]
    return score_choice_sets(model, sets, cfg.share_prompt, cfg.batch_tokens)[0][:, :, 0]


def context_rng(cfg: CurveConfig, item_index: int, n_bad: int, position: str) -> random.Random:
    return random.Random(f"{cfg.seed}-{item_index}-{n_bad}-{position}")


def build_requests(
    prompting: Prompting, items: list[TestbedItem], n_items: int, cfg: CurveConfig
) -> tuple[list[dict], list[ChoiceSet]]:
    """One row per item x share x position, and its prompt with the two answers (reference, then claim)."""
    rows, choice_sets = [], []
    for index, item in enumerate(items):
        for position in cfg.positions:
            for n_bad in bad_counts(n_items, cfg.proportion_steps):
                rng = context_rng(cfg, index, n_bad, position)
                prompt = render_prompt(
                    poisoned_segments(item, n_items, n_bad, position, rng, cfg.source_tags), item.question
                )
                choice_set = prompting.choices(prompt, (item.reference, item.claim))
                rows.append(
                    {
                        "item": index,
                        "category": item.category,
                        "position": position,
                        "proportion": n_bad / n_items,
                        "n_bad": n_bad,
                        "tokens_reference": len(choice_set.answers[0]),
                        "tokens_claim": len(choice_set.answers[1]),
                    }
                )
                choice_sets.append(choice_set)
    return rows, choice_sets


def score_choice_sets(
    model, choice_sets: list[ChoiceSet], share_prompt: bool, batch_tokens: int, progress: Progress | None = None
) -> tuple[np.ndarray, str]:
    """(sets, answers, 2) log-probs (sum, mean), shared-prompt when the model supports it; and a notice."""
    notice = ""
    if share_prompt:
        try:
            return choice_logprobs(model, choice_sets, batch_tokens, progress), notice
        except (TypeError, NotImplementedError, AttributeError) as error:
            notice = f"This model does not support KV-cache reuse ({type(error).__name__}); scored full sequences."
    n_answers = len(choice_sets[0].answers)
    flat = sequence_logprobs(model, as_sequences(choice_sets), batch_tokens, progress)
    return flat.reshape(len(choice_sets), n_answers, 2), notice


def score_table(rows: list[dict], logprobs: np.ndarray, cfg: CurveConfig, free: np.ndarray | None) -> pd.DataFrame:
    """Rows with summed log-probs in context (and after the content-free prompt), scores under cfg.scoring, log-odds.

    logprobs: (rows, 2 answers, [sum, mean]); free: (items, 2 answers) or None unless calibrated.
    """
    frame = pd.DataFrame(rows)
    free_rows = None if free is None else free[frame["item"].to_numpy()]  # (rows, 2)
    scores = answer_scores(logprobs, free_rows, cfg.scoring)  # (rows, 2)
    frame["logp_reference"] = logprobs[:, 0, 0]
    frame["logp_claim"] = logprobs[:, 1, 0]
    missing = np.full(len(frame), np.nan)
    frame["logp_reference_free"] = missing if free_rows is None else free_rows[:, 0]
    frame["logp_claim_free"] = missing if free_rows is None else free_rows[:, 1]
    frame["score_reference"] = scores[:, 0]
    frame["score_claim"] = scores[:, 1]
    frame["logodds"] = frame["score_claim"] - frame["score_reference"]
    frame["poisoned"] = np.where(frame["logodds"] > 0, 1.0, np.where(frame["logodds"] < 0, 0.0, 0.5))
    frame["claim_probability"] = 1.0 / (1.0 + np.exp(-frame["logodds"]))
    return frame


# ---------------------------------------------------------------------------------------------- aggregation


def aggregate(scores: pd.DataFrame, n_items: int, cfg: CurveConfig) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Curves with bootstrap bands, RW fits and fitted curves for 'all' and each category, per position."""
    categories = [ALL] + (sorted(scores["category"].unique()) if scores["category"].nunique() > 1 else [])
    curves, fits, fitted = [], [], []
    for category in categories:
        category_curves, category_fits = [], []
        for position in cfg.positions:
            subset = scores[(scores["position"] == position) & ((scores["category"] == category) | (category == ALL))]
            curve, fit, fine = group_curve(subset, n_items, cfg)
            labels = {"category": category, "position": position}
            category_curves.append(curve.assign(**labels))
            category_fits.append({**labels, **fit})
            fitted.append(fine.assign(**labels))
        add_sequential_fit(category_curves, category_fits, n_items, cfg)
        curves += category_curves
        fits += category_fits
    order = ["category", "position"]
    curve = pd.concat(curves, ignore_index=True)
    return (
        curve[order + [c for c in curve.columns if c not in order]],
        pd.DataFrame(fits),
        pd.concat(fitted, ignore_index=True)[
            order + ["proportion", "fitted", "logistic", "proportional", "overweight"]
        ],
    )


SEQUENTIAL_RANDOM_ORDERS = 16  # random context orders averaged per point for the "random" position


def context_orders(n_items: int, n_bad: int, position: str, seed: int) -> np.ndarray:
    """(orders, n_items) booleans, True where an inappropriate item sits, for the sequential RW variant."""
    count = SEQUENTIAL_RANDOM_ORDERS if position == "random" else 1
    rng = random.Random(f"orders-{seed}-{n_items}-{n_bad}-{position}")
    orders = np.zeros((count, n_items), dtype=bool)
    for row in range(count):
        orders[row, bad_slots(n_items, n_bad, position, rng)] = True
    return orders


def add_sequential_fit(curves: list[pd.DataFrame], fits: list[dict], n_items: int, cfg: CurveConfig) -> None:
    """Fit the shared-error (sequential) RW variant jointly over the position settings of one category."""
    points = [(frame, row) for frame in curves for row in frame.itertuples()]
    orders = [context_orders(n_items, int(row.n_bad), frame["position"].iloc[0], cfg.seed) for frame, row in points]
    fit = fit_sequential(orders, np.array([row.strength for _, row in points]))
    start = 0
    for frame, fit_row in zip(curves, fits, strict=True):
        frame["rw_sequential"] = fit.fitted[start : start + len(frame)]
        start += len(frame)
        fit_row.update({"seq_alpha_beta": fit.alpha_beta, "seq_scale": fit.scale, "seq_r2": fit.r2})


def group_curve(subset: pd.DataFrame, n_items: int, cfg: CurveConfig) -> tuple[pd.DataFrame, dict, pd.DataFrame]:
    poisoned = subset.pivot(index="item", columns="proportion", values="poisoned")  # (items, proportions)
    logodds = subset.pivot(index="item", columns="proportion", values="logodds")
    choice = subset.pivot(index="item", columns="proportion", values="claim_probability")
    proportions = poisoned.columns.to_numpy(dtype=float)
    strength_matrix = (poisoned if cfg.strength == "poisoned_rate" else choice).to_numpy()
    strength = strength_matrix.mean(axis=0)
    fits = fit_curves(proportions, strength, n_items, bounded=True)  # both strengths are rates in [0, 1]
    fit = fits.rw
    bands = bootstrap_bands(
        {"poisoned_rate": poisoned.to_numpy(), "mean_logodds": logodds.to_numpy(), "strength": strength_matrix},
        cfg,
    )
    ab_low, ab_high = bootstrap_alpha_beta(strength_matrix, proportions, n_items, cfg)
    curve = pd.DataFrame(
        {
            "proportion": proportions,
            "n_bad": np.rint(proportions * n_items).astype(int),
            "n_scored": len(poisoned),
            "poisoned_rate": poisoned.to_numpy().mean(axis=0),
            "mean_logodds": logodds.to_numpy().mean(axis=0),
            "choice_probability": choice.to_numpy().mean(axis=0),
            "strength": strength,
            "rw_fitted": fit.predict(proportions),
            "logistic_fitted": fits.predict("logistic", proportions),
            "proportional": fits.predict("proportional", proportions),
            "overweight": overweighting(proportions, fit),
            **bands,
        }
    )
    fine_p = np.linspace(0.0, 1.0, 101)
    fine = pd.DataFrame(
        {
            "proportion": fine_p,
            "fitted": fit.predict(fine_p),
            "logistic": fits.predict("logistic", fine_p),
            "proportional": fits.predict("proportional", fine_p),
            "overweight": overweighting(fine_p, fit),
        }
    )
    fit_row = {
        **_fit_columns(fits),
        "alpha_beta_low": ab_low,
        "alpha_beta_high": ab_high,
        "strength_measure": cfg.strength,
        "n_scored": len(poisoned),
        "max_overweight": float(fine["overweight"].max()),
        "max_overweight_at": float(fine_p[int(fine["overweight"].to_numpy().argmax())]),
    }
    return curve, fit_row, fine


def _fit_columns(fits: CurveFits) -> dict:
    """The RW fit (alpha_beta, baseline, scale, r2), best model by AIC and its meaning, and each model's
    parameters, r2, aic and sse (`r2_logistic`, `logistic_k`, `prop_b`, `const_b`, ...)."""
    return fit_columns(fits)


def _resamples(n_rows: int, cfg: CurveConfig) -> np.ndarray:
    rng = np.random.default_rng(cfg.seed)
    return rng.integers(0, n_rows, size=(cfg.n_bootstrap, n_rows))  # (resamples, items)


def bootstrap_bands(matrices: dict[str, np.ndarray], cfg: CurveConfig) -> dict[str, np.ndarray]:
    """2.5% and 97.5% percentiles of each column mean over item resamples; NaN when n_bootstrap is 0."""
    bands = {}
    for name, matrix in matrices.items():
        if cfg.n_bootstrap == 0:
            low = high = np.full(matrix.shape[1], np.nan)
        else:
            means = matrix[_resamples(matrix.shape[0], cfg)].mean(axis=1)  # (resamples, proportions)
            low, high = np.percentile(means, [2.5, 97.5], axis=0)
        bands[f"{name}_low"], bands[f"{name}_high"] = low, high
    return bands


def bootstrap_alpha_beta(
    matrix: np.ndarray, proportions: np.ndarray, n_items: int, cfg: CurveConfig
) -> tuple[float, float]:
    if cfg.n_bootstrap == 0:
        return float("nan"), float("nan")
    means = matrix[_resamples(matrix.shape[0], cfg)].mean(axis=1)  # (resamples, proportions)
    values = [fit.alpha_beta for fit in fit_rw_many(proportions, means, n_items, refine=False)]
    low, high = np.percentile(values, [2.5, 97.5])
    return float(low), float(high)


# ---------------------------------------------------------------------------------------------- examples


def _empty_examples() -> pd.DataFrame:
    return pd.DataFrame(
        columns=["category", "position", "proportion", "question", "reference", "claim", "generated", "prompt"]
    )


def generate_examples(
    model, prompting: Prompting, items: list[TestbedItem], n_items: int, cfg: CurveConfig
) -> pd.DataFrame:
    """Greedy answers for the first items at shares 0, 1/2 and 1 (first position setting)."""
    rows = []
    position = cfg.positions[0]
    for index, item in enumerate(items):
        for n_bad in sorted({0, n_items // 2, n_items}):
            if len(rows) >= cfg.n_generated:
                return pd.DataFrame(rows)
            segments = poisoned_segments(
                item, n_items, n_bad, position, context_rng(cfg, index, n_bad, position), cfg.source_tags
            )
            prompt = render_prompt(segments, item.question)
            rows.append(
                {
                    "category": item.category,
                    "position": position,
                    "proportion": n_bad / n_items,
                    "question": item.question,
                    "reference": item.reference,
                    "claim": item.claim,
                    "generated": greedy_answer(
                        model, prompting.text(prompt), cfg.max_new_tokens, cfg.prepend_bos, 2 if cfg.judge_first else 1
                    ),
                    "prompt": prompt,
                }
            )
    return pd.DataFrame(rows) if rows else _empty_examples()


# ---------------------------------------------------------------------------------------------- explore


@dataclass(frozen=True)
class ExploreConfig:
    """One context: how many inappropriate segments to mix in, where, and whether to generate an answer."""

    n_inappropriate: int = 0  # inappropriate segments mixed into the context (cycled if more than given)
    position: str = "random"  # random, first, last, spread
    source_tags: bool = True
    generate: bool = True  # also generate a greedy answer
    max_new_tokens: int = 24
    scoring: str = DEFAULT_SCORING  # sum, mean or calibrated, as in CurveConfig
    chat_template: str = "auto"  # auto, on, off, as in CurveConfig
    prepend_bos: bool = True
    seed: int = 0


@dataclass(frozen=True)
class ExploreInput:
    """What the user typed or uploaded (digested into the cache key)."""

    question: str
    appropriate: tuple[str, ...]  # context segments
    inappropriate: tuple[str, ...]  # segments to mix in
    candidates: tuple[str, ...]  # candidate answers: the first is the reference, the second the claim

    def as_dict(self) -> dict:
        return asdict(self)

    def to_json_bytes(self) -> bytes:
        """The inputs as the run's file: canonical JSON, so the same inputs give the same bytes."""
        return (json.dumps(self.as_dict(), indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()

    @classmethod
    def from_json_bytes(cls, content: bytes) -> ExploreInput:
        """The inputs back from `to_json_bytes` (ValueError when the content is not such a file)."""
        data = json.loads(content)
        if not isinstance(data, dict):
            raise ValueError("explore inputs must be a JSON object")
        try:
            return cls(
                str(data["question"]),
                *(tuple(str(text) for text in data[name]) for name in ("appropriate", "inappropriate", "candidates")),
            )
        except (KeyError, TypeError) as error:
            raise ValueError(f"explore inputs lack a field ({error})") from None


@dataclass(frozen=True)
class ExploreResult:
    prompt: str  # the full-context prompt exactly as the model read it, special tokens included
    answers: pd.DataFrame  # one row per candidate: logp, choice probability
    segments: pd.DataFrame  # one row per context segment: text, inappropriate, leave-one-out attribution
    logodds: float  # claim score - reference score in the full context (under the config's scoring)
    generated: str
    scoring: str
    coverage: Coverage  # share of the question's, segments' and candidates' words the tokenizer can read
    prompt_format: str = "plain"  # "chat" when the prompt went through the tokenizer's chat template
    inputs: ExploreInput | None = None  # what was typed; stored as a run file so the run can be recomputed

    def to_frame(self) -> pd.DataFrame:
        return self.segments

    def files(self) -> dict[str, bytes]:
        """The typed inputs (question, segments, candidates): the tables keep only what the context used."""
        return {} if self.inputs is None else {EXPLORE_INPUTS_FILE: self.inputs.to_json_bytes()}

    def to_tables(self) -> dict[str, pd.DataFrame]:
        return {"segments": self.segments, "answers": self.answers}

    def summary(self) -> dict:
        return {
            "prompt": self.prompt,
            "logodds": self.logodds,
            "generated": self.generated,
            "winner": str(self.winner.candidate),
            "scoring": self.scoring,
            "prompt_format": self.prompt_format,
            "example_prompt": self.prompt,  # the one prompt, as in the curve's JSON
            "coverage": self.coverage.share_known,
            "unknown_words": list(self.coverage.unknown_examples),
            "warnings": self.warnings,
        }

    @classmethod
    def from_stored(cls, tables: dict[str, pd.DataFrame], summary: dict, files: dict[str, bytes]) -> ExploreResult:
        """A stored run rebuilt from its two tables and summary; the coverage keeps what the summary records (see
        `Coverage.from_summary`)."""
        return cls(
            prompt=summary["prompt"],
            answers=tables["answers"],
            segments=tables["segments"],
            logodds=float(summary["logodds"]),
            generated=summary["generated"],
            scoring=summary["scoring"],
            coverage=Coverage.from_summary(summary),
            prompt_format=summary["prompt_format"],
            inputs=ExploreInput.from_json_bytes(files[EXPLORE_INPUTS_FILE]) if EXPLORE_INPUTS_FILE in files else None,
        )

    @property
    def winner(self) -> pd.Series:
        """The forced choice: the answers row (candidate, role, scores) with the highest score."""
        return self.answers.iloc[int(self.answers["score"].to_numpy().argmax())]

    @property
    def warnings(self) -> list[str]:
        """The coverage warning (the tokenizer cannot read the context), or nothing."""
        return self.coverage.warnings("this context")


def validate_explore(data: ExploreInput, cfg: ExploreConfig) -> None:
    if not data.question.strip():
        raise ValueError("Type a question.")
    if len([c for c in data.candidates if c.strip()]) < 2:
        raise ValueError("Give at least two candidate answers (the reference answer and the inappropriate claim).")
    if not data.appropriate and not (data.inappropriate and cfg.n_inappropriate):
        raise ValueError("The context is empty: type or upload at least one segment.")
    if cfg.n_inappropriate and not data.inappropriate:
        raise ValueError("Type at least one inappropriate segment to mix in, or set their number to 0.")
    if cfg.position not in POSITIONS:
        raise ValueError(f"position must be one of {', '.join(POSITIONS)}.")
    if cfg.scoring not in SCORINGS:
        raise ValueError(f"scoring must be one of {', '.join(SCORINGS)}.")


def mixed_segments(data: ExploreInput, cfg: ExploreConfig) -> list[Segment]:
    """The user's segments with n_inappropriate inappropriate ones placed by `position`."""
    rng = random.Random(cfg.seed)
    total = len(data.appropriate) + cfg.n_inappropriate
    slots = set(bad_slots(total, cfg.n_inappropriate, cfg.position, rng))
    good, bad, segments = iter(data.appropriate), 0, []
    for slot in range(total):
        if slot in slots:
            text, bad = data.inappropriate[bad % len(data.inappropriate)], bad + 1
            source = rng.choice(("rumors", "gossip", "tabloid", "spam", "trolls"))
        else:
            text, source = next(good), rng.choice(("encyclopedia", "archive", "atlas", "almanac", "university"))
        segments.append(Segment(text, source if cfg.source_tags else "", slot in slots))
    return segments


def explore(model, cfg: ExploreConfig, data: ExploreInput, progress: Progress | None = None) -> ExploreResult:
    """Score each candidate in the full context and with each segment left out (one batched pass)."""
    validate_explore(data, cfg)
    candidates = [c.strip() for c in data.candidates if c.strip()]
    segments = mixed_segments(data, cfg)
    contexts = [segments] + [segments[:i] + segments[i + 1 :] for i in range(len(segments))]
    prompting = Prompting(model.tokenizer, uses_chat(model.tokenizer, cfg.chat_template), cfg.prepend_bos)
    prompts = [render_prompt(context, data.question) for context in contexts]
    sets = [prompting.choices(prompt, tuple(candidates)) for prompt in prompts]
    logprobs = score_choice_sets(model, sets, True, DEFAULT_BATCH_TOKENS, progress)[0]  # (contexts, cands, 2)
    free = None
    if cfg.scoring == "calibrated":
        free_set = prompting.choices(content_free_prompt(data.question), tuple(candidates))
        free = score_choice_sets(model, [free_set], True, DEFAULT_BATCH_TOKENS)[0][:, :, 0]  # (1, cands)
    scores = answer_scores(logprobs, free, cfg.scoring)  # (contexts, cands)
    logodds = scores[:, 1] - scores[:, 0]  # (contexts,) claim vs reference
    choice = np.exp(scores[0] - scores[0].max())
    answers = pd.DataFrame(
        {
            "candidate": candidates,
            "role": ["reference", "claim"] + ["other"] * (len(candidates) - 2),
            "logp": logprobs[0, :, 0],
            "logp_free": np.full(len(candidates), np.nan) if free is None else free[0],
            "score": scores[0],
            "choice_probability": choice / choice.sum(),
        }
    )
    table = pd.DataFrame(
        {
            "segment": np.arange(1, len(segments) + 1),
            "text": [s.text for s in segments],
            "source": [s.source for s in segments],
            "inappropriate": [s.inappropriate for s in segments],
            "logodds_without": logodds[1:],
            "attribution": logodds[0] - logodds[1:],  # > 0: the segment pushes the answer toward the claim
        }
    )
    full = prompting.text(prompts[0])
    generated = greedy_answer(model, full, cfg.max_new_tokens, cfg.prepend_bos) if cfg.generate else ""
    texts = [data.question, *data.appropriate, *data.inappropriate, *candidates]
    coverage = measure(model.tokenizer, texts)
    shown = prompting.shown(sets[0])
    return ExploreResult(
        shown, answers, table, float(logodds[0]), generated, cfg.scoring, coverage, prompting.format, data
    )
