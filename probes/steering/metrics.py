"""Text metrics for steered generations, all in [0, 1].

Words are lower-cased runs of letters/digits (`\\w+`), so punctuation never counts.
* associative_share: share of generated words that belong to the associative vocabulary (the organism's dream
  register words, or the words of the associative prompt set that never occur in the faithful set).
* novelty: share of generated words that do not occur in the prompt.
* distinct_n: distinct n-grams / n-grams within one generation (1 when it has fewer than n words).
* diversity: mean pairwise Jaccard distance between the word sets of several samples for one prompt.
The primary creativity metric is associative_share when a vocabulary is known, otherwise novelty.
Collapse: the first strength, walking away from 0 on each side, whose mean distinct-2 falls below
`collapse_ratio` times the mean distinct-2 at the strength nearest 0 (repetitive, degenerate text).
"""

from __future__ import annotations

import itertools
import re

import numpy as np

WORD = re.compile(r"\w+", re.UNICODE)


def words(text: str) -> list[str]:
    return [w.lower() for w in WORD.findall(text)]


def associative_share(text: str, vocabulary: frozenset[str]) -> float:
    generated = words(text)
    return sum(w in vocabulary for w in generated) / len(generated) if generated else 0.0


def novelty(text: str, prompt: str) -> float:
    generated, seen = words(text), set(words(prompt))
    return sum(w not in seen for w in generated) / len(generated) if generated else 0.0


def distinct_n(text: str, n: int = 2) -> float:
    generated = words(text)
    grams = [tuple(generated[i : i + n]) for i in range(len(generated) - n + 1)]
    return len(set(grams)) / len(grams) if grams else 1.0


def diversity(samples: list[str]) -> float:
    """Mean pairwise Jaccard distance of the samples' word sets (0: identical, 1: disjoint)."""
    sets = [set(words(s)) for s in samples]
    distances = [1 - len(a & b) / len(a | b) if a | b else 0.0 for a, b in itertools.combinations(sets, 2)]
    return float(np.mean(distances)) if distances else 0.0


def derived_vocabulary(faithful: tuple[str, ...], associative: tuple[str, ...]) -> frozenset[str]:
    """Words of the associative set that never occur in the faithful set (fallback associative vocabulary)."""
    faithful_words = {w for text in faithful for w in words(text)}
    return frozenset(w for text in associative for w in words(text) if w not in faithful_words)


def collapse_strengths(strengths: list[float], distinct: list[float], ratio: float) -> dict[str, float | None]:
    """First strength on each side of 0 where distinct-2 < ratio * distinct-2 at the strength nearest 0."""
    order = np.argsort(strengths)
    s = np.asarray(strengths, dtype=float)[order]
    d = np.asarray(distinct, dtype=float)[order]
    reference = d[int(np.argmin(np.abs(s)))]
    threshold = ratio * reference
    positive = next((float(x) for x, y in zip(s, d, strict=True) if x > 0 and y < threshold), None)
    negative = next((float(x) for x, y in zip(s[::-1], d[::-1], strict=True) if x < 0 and y < threshold), None)
    return {"positive": positive, "negative": negative, "threshold": float(threshold)}
