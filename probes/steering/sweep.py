"""Dose-response sweep (metrics vs strength, FlexAC vector vs matched-norm random vector) and the generation
ladder the page's slider reads (one prompt continued at every slider strength, computed in one batch).

Faithfulness: teacher-forced greedy exact-match accuracy on the evaluation facts (the organism's known facts, or
the user's prompt/answer pairs); `answer_prob` (geometric-mean probability of the answer tokens) is reported too.
Creativity (primary): associative_share of the greedy continuations of the same fact prompts when an associative
vocabulary is known, else novelty (see probes/steering/metrics.py). All metrics lie in [0, 1].
Strength is in the vector's unit (probes/steering/vectors.py; by default +2 carries the faithful prompts' output
residual to the associative centroid); the random control has the FlexAC vector's norm at every strength.
Coverage: the share of the prompt sets' words (both sets, facts, task samples) the tokenizer can read, with a
warning below probes.coverage.COVERAGE_WARNING; a word-level model reads unknown words as one unknown token.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
import torch

from probes.coverage import Coverage, measure
from probes.steering import metrics
from probes.steering.apply import DecodeSettings, generate, layer_directions, matched_norm_random, score_answers
from probes.steering.prompts import FactItem, PromptSets
from probes.steering.vectors import ModelPrompts, SteeringVectors, validate_layers

FLEXAC, RANDOM = "flexac", "random"
N_EXAMPLES = 4  # generations per strength kept in the examples table


@dataclass(frozen=True)
class SweepConfig:
    """A dose-response sweep over steering strengths."""

    strengths: tuple[float, ...] = (-2.0, -1.0, 0.0, 1.0, 2.0)  # in the vector's unit (negative = faithful)
    layers: tuple[int, ...] | None = None  # steering layers; None = the vector's own layers
    n_prompt_positions: int = 4  # steer the last 4 prompt tokens (and every generated token)
    task_strength: float = 0.0  # strength of the task-specific vector, when the vector has one
    n_facts: int = 64  # evaluation facts (a seeded sample of the facts)
    max_new_tokens: int = 12  # greedy continuation length for the creativity metrics
    n_diversity_prompts: int = 4  # prompts sampled several times for diversity across samples
    n_diversity_samples: int = 4  # samples per diversity prompt
    temperature: float = 1.0  # sampling temperature for the diversity samples
    collapse_ratio: float = 0.5  # collapse: distinct-2 below this share of its value at strength 0
    random_baseline: bool = True  # also sweep a matched-norm random vector
    batch_size: int = 128  # rows per forward pass / generate call (rows = facts x strengths)
    seed: int = 0  # fact sample, random vector, sampling
    chat_template: str = "auto"  # fact prompts through the tokenizer's chat template: auto (when it has one), on, off

    def resolved(self, vector_layers: tuple[int, ...]) -> SweepConfig:
        """Defaults filled in before the run key is built: no layers means the vector's own layers."""
        return replace(self, layers=tuple(sorted(set(self.layers))) if self.layers else tuple(vector_layers))


@dataclass
class SweepResult:
    rows: pd.DataFrame  # one row per (direction, strength): metrics
    examples: pd.DataFrame  # a few generations per (direction, strength)
    layers: tuple[int, ...]
    creativity_metric: str
    collapse: dict[str, dict]
    coverage: Coverage
    strength_unit: dict  # the vector's unit and its measured output shift (vector metadata)
    prompt_format: str = "plain"  # "chat" when the fact prompts went through the tokenizer's chat template
    example_prompt: str = ""  # the first fact prompt exactly as the model read it, special tokens included

    def to_frame(self) -> pd.DataFrame:
        return self.rows

    def to_tables(self) -> dict[str, pd.DataFrame]:
        return {"sweep": self.rows, "examples": self.examples}

    def summary(self) -> dict:
        return {
            "layers": list(self.layers),
            "creativity_metric": self.creativity_metric,
            "collapse": self.collapse,
            "coverage": self.coverage.share_known,
            "unknown_words": list(self.coverage.unknown_examples),
            "warnings": self.warnings,
            "strength_unit": self.strength_unit,
            "prompt_format": self.prompt_format,
            "example_prompt": self.example_prompt,
            "rows": _metric_records(self.rows, FLEXAC),
            "random_baseline": _metric_records(self.rows, RANDOM),
        }

    @classmethod
    def from_stored(cls, tables: dict[str, pd.DataFrame], summary: dict, files: dict[str, bytes]) -> SweepResult:
        """A stored run rebuilt from its two tables and summary. The coverage keeps what the summary records (share
        and unknown words; see `Coverage.from_summary`); the metric records of the summary come from the table."""
        return cls(
            rows=tables["sweep"],
            examples=tables["examples"],
            layers=tuple(int(layer) for layer in summary["layers"]),
            creativity_metric=summary["creativity_metric"],
            collapse=summary["collapse"],
            coverage=Coverage.from_summary(summary),
            strength_unit=summary["strength_unit"],
            prompt_format=summary["prompt_format"],
            example_prompt=summary["example_prompt"],
        )

    @property
    def warnings(self) -> list[str]:
        """The coverage warning (the tokenizer cannot read the prompt sets), or nothing."""
        return self.coverage.warnings("the prompt sets' text")

    @property
    def unit(self) -> str:
        """The vector's strength unit ("centroid", "residual", "raw"), or "" when its metadata names none."""
        return str(self.strength_unit.get("unit", ""))

    def collapse_of(self, direction: str = FLEXAC) -> dict:
        """The first collapsed strength on each side of 0 and the distinct-2 threshold of one direction:
        {"positive": s or None, "negative": s or None, "threshold": t} (see metrics.collapse_strengths)."""
        return self.collapse[direction]


def _metric_records(rows: pd.DataFrame, direction: str) -> list[dict]:
    picked = rows[rows["direction"] == direction].sort_values("strength")
    columns = [
        "strength",
        "faithfulness",
        "creativity",
        "answer_prob",
        "associative_share",
        "novelty",
        "distinct_2",
        "diversity",
    ]
    return [{k: float(v) for k, v in record.items()} for record in picked[columns].to_dict(orient="records")]


def input_coverage(tokenizer, sets: PromptSets) -> Coverage:
    """How much of what the probe feeds the model (both sets, fact prompts and answers, task samples) it can read."""
    return measure(tokenizer, sets.model_texts())


UNIT_KEYS = ("unit", "unit_factor", "relative_norm", "output_shift", "output_centroid_distance")


def evaluation_facts(facts: tuple[FactItem, ...], n_facts: int, seed: int) -> list[FactItem]:
    if not facts:
        raise ValueError("No evaluation facts: provide prompt/answer pairs to measure faithfulness.")
    chosen = list(facts)
    random.Random(seed).shuffle(chosen)
    return chosen[:n_facts]


def run_sweep(model, cfg: SweepConfig, vectors: SteeringVectors, sets: PromptSets, progress=None) -> SweepResult:
    """Faithfulness and creativity at every strength, for the FlexAC vector and a matched-norm random one.

    All strengths of one direction run together: each batch row carries its own strength.
    """
    vectors.check_model(model)
    layers = validate_layers(cfg.layers, model.cfg.n_layers) if cfg.layers else vectors.layers
    reads = ModelPrompts(model, cfg.chat_template)
    facts = evaluation_facts(reads.sets(sets).facts, cfg.n_facts, cfg.seed)
    vocabulary = frozenset(w.lower() for w in sets.associative_words) or metrics.derived_vocabulary(
        sets.faithful, sets.associative
    )
    creativity_metric = "associative_share" if vocabulary else "novelty"
    bases = {FLEXAC: None}
    if cfg.random_baseline:
        bases[RANDOM] = matched_norm_random(vectors, cfg.seed)
    report = progress or (lambda fraction, message="": None)
    records, examples = [], []
    for index, (name, base) in enumerate(bases.items()):

        def phase(fraction: float, message: str, index: int = index, name: str = name) -> None:
            report((index + fraction) / len(bases), f"{name}: {message}")

        measured = _measure_all(model, cfg, layers, vectors, base, facts, vocabulary, phase)
        for strength, (record, texts) in zip(cfg.strengths, measured, strict=True):
            record["creativity"] = record[creativity_metric]
            records.append({"direction": name, "strength": float(strength), **record})
            examples += [
                {
                    "direction": name,
                    "strength": float(strength),
                    "prompt": f.prompt,
                    "answer": f.answer,
                    "generation": t,
                }
                for f, t in list(zip(facts, texts, strict=True))[:N_EXAMPLES]
            ]
    report(1.0, "done")
    rows = pd.DataFrame(records)
    collapse = {}
    for name in bases:
        part = rows[rows["direction"] == name]
        collapse[name] = metrics.collapse_strengths(
            part["strength"].tolist(), part["distinct_2"].tolist(), cfg.collapse_ratio
        )
    rows["collapsed"] = [_is_collapsed(r, collapse[r["direction"]]) for _, r in rows.iterrows()]
    unit = {key: vectors.metadata[key] for key in UNIT_KEYS if key in vectors.metadata}
    read = input_coverage(model.tokenizer, sets)
    shown = reads.shown(facts[0].prompt) if facts else ""
    return SweepResult(
        rows, pd.DataFrame(examples), layers, creativity_metric, collapse, read, unit, reads.format, shown
    )


def _is_collapsed(row: pd.Series, collapse: dict) -> bool:
    positive, negative = collapse["positive"], collapse["negative"]
    return bool(
        (positive is not None and row["strength"] >= positive) or (negative is not None and row["strength"] <= negative)
    )


def _measure_all(model, cfg: SweepConfig, layers, vectors, base, facts: list[FactItem], vocabulary, phase):
    """Metrics at every strength of cfg.strengths -> [(record, greedy texts)] in that order."""
    n, strengths = len(facts), list(cfg.strengths)
    prompts = [f.prompt for _ in strengths for f in facts]
    answers = [f.answer for _ in strengths for f in facts]
    directions = layer_directions(
        vectors, layers, torch.tensor(strengths).repeat_interleave(n), cfg.task_strength, base
    )
    phase(0.0, "scoring facts")
    correct, logprobs = score_answers(model, prompts, answers, directions, cfg.n_prompt_positions, cfg.batch_size)
    phase(0.3, "greedy continuations")
    greedy = DecodeSettings(max_new_tokens=cfg.max_new_tokens, seed=cfg.seed)
    texts = generate(model, prompts, directions, cfg.n_prompt_positions, greedy, cfg.batch_size)
    phase(0.7, "sampled continuations")
    diversity = _diversity(model, cfg, layers, vectors, base, [f.prompt for f in facts])
    out = []
    for k in range(len(strengths)):
        part = slice(k * n, (k + 1) * n)
        part_texts, part_prompts = texts[part], prompts[part]
        record = {
            "faithfulness": float(np.mean(correct[part])),
            "answer_prob": float(np.mean(np.exp(logprobs[part]))),
            "associative_share": float(np.mean([metrics.associative_share(t, vocabulary) for t in part_texts])),
            "novelty": float(np.mean([metrics.novelty(t, p) for t, p in zip(part_texts, part_prompts, strict=True)])),
            "distinct_2": float(np.mean([metrics.distinct_n(t, 2) for t in part_texts])),
            "diversity": diversity[k],
        }
        out.append((record, part_texts))
    return out


def _diversity(model, cfg: SweepConfig, layers, vectors, base, prompts: list[str]) -> list[float]:
    """Per strength: mean pairwise Jaccard distance between samples of the same prompt."""
    strengths = list(cfg.strengths)
    if cfg.n_diversity_prompts <= 0 or cfg.n_diversity_samples < 2:
        return [float("nan")] * len(strengths)
    chosen = prompts[: cfg.n_diversity_prompts]
    per_strength = [p for p in chosen for _ in range(cfg.n_diversity_samples)]
    rows = len(per_strength)
    directions = layer_directions(
        vectors, layers, torch.tensor(strengths).repeat_interleave(rows), cfg.task_strength, base
    )
    sampling = DecodeSettings(cfg.max_new_tokens, do_sample=True, temperature=cfg.temperature, seed=cfg.seed)
    texts = generate(model, per_strength * len(strengths), directions, cfg.n_prompt_positions, sampling, cfg.batch_size)
    out = []
    for k in range(len(strengths)):
        part = texts[k * rows : (k + 1) * rows]
        groups = [part[i : i + cfg.n_diversity_samples] for i in range(0, rows, cfg.n_diversity_samples)]
        out.append(float(np.mean([metrics.diversity(g) for g in groups])))
    return out


# ------------------------------------------------------------------------------------- the slider's ladder


@dataclass(frozen=True)
class LadderConfig:
    """One prompt continued at every strength of the page's slider grid."""

    prompt: str = ""
    strengths: tuple[float, ...] = tuple(x / 2 for x in range(-8, 9))  # -4 .. 4 in steps of 0.5
    layers: tuple[int, ...] | None = None  # None = the vector's own layers
    n_prompt_positions: int = 4  # steer the last 4 prompt tokens (and every generated token)
    task_strength: float = 0.0  # task-specific vector strength (when the vector has one)
    max_new_tokens: int = 16
    do_sample: bool = False  # False: greedy (all strengths in one batch); True: seeded sampling
    temperature: float = 1.0
    seed: int = 0  # the same seed at every strength (common random numbers)
    chat_template: str = "auto"  # the prompt through the tokenizer's chat template: auto (when it has one), on, off


@dataclass
class LadderResult:
    generations: pd.DataFrame  # strength, text, metrics

    def to_frame(self) -> pd.DataFrame:
        return self.generations

    def to_tables(self) -> dict[str, pd.DataFrame]:
        return {"generations": self.generations}

    def summary(self) -> dict:
        return {"n_strengths": int(len(self.generations))}

    @classmethod
    def from_stored(cls, tables: dict[str, pd.DataFrame], summary: dict, files: dict[str, bytes]) -> LadderResult:
        """A stored run rebuilt: the generations table is the whole result (the summary only counts its rows)."""
        return cls(tables["generations"])

    def at(self, strength: float) -> pd.Series:
        """The row of one strength of the ladder: text, associative_share, novelty, distinct_2."""
        return self.generations.set_index("strength").loc[float(strength)]


def run_ladder(
    model, cfg: LadderConfig, vectors: SteeringVectors, vocabulary: frozenset[str] = frozenset(), progress=None
) -> LadderResult:
    """Continuations of `cfg.prompt` at every strength (strength 0 is the unsteered baseline)."""
    if not cfg.prompt.strip():
        raise ValueError("Enter a prompt to steer.")
    vectors.check_model(model)
    layers = validate_layers(cfg.layers, model.cfg.n_layers) if cfg.layers else vectors.layers
    cfg = replace(cfg, prompt=ModelPrompts(model, cfg.chat_template).text(cfg.prompt))
    decode = DecodeSettings(cfg.max_new_tokens, cfg.do_sample, cfg.temperature, cfg.seed)
    strengths = sorted(set(cfg.strengths) | {0.0})
    if cfg.do_sample:  # one call per strength, each with the same seed, so differences come from steering
        texts = []
        for index, s in enumerate(strengths):
            if progress:
                progress(index / len(strengths), f"strength {s:+g}")
            directions = layer_directions(vectors, layers, s, cfg.task_strength)
            texts += generate(model, [cfg.prompt], directions, cfg.n_prompt_positions, decode)
    else:  # greedy: all strengths in one batch, one row per strength
        directions = layer_directions(vectors, layers, torch.tensor(strengths), cfg.task_strength)
        texts = generate(
            model, [cfg.prompt] * len(strengths), directions, cfg.n_prompt_positions, decode, batch_size=len(strengths)
        )
    frame = pd.DataFrame(
        {
            "strength": strengths,
            "text": texts,
            "associative_share": [metrics.associative_share(t, vocabulary) for t in texts],
            "novelty": [metrics.novelty(t, cfg.prompt) for t in texts],
            "distinct_2": [metrics.distinct_n(t, 2) for t in texts],
        }
    )
    return LadderResult(frame)
