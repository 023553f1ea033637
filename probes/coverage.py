"""Can the model read this input? The share of its words that the tokenizer maps to something other than unknown.

A word-level tokenizer (the organism's) maps every word it never saw to `<unk>`; a probe run on such input measures
answer length or the unknown token, not content. Byte-level tokenizers (GPT-2, Llama 3, Qwen) have no unknown
token and read any text: their coverage is 1.

Words are whitespace-separated runs with surrounding punctuation stripped; a word counts as known when none of
its tokens is the unknown token. Below `COVERAGE_WARNING` the probes warn in the page and on stderr.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

COVERAGE_WARNING = 0.8  # below this share of known words a result mostly measures the unknown token
MAX_WORDS = 20_000  # a sample is enough for a share; tokenizing a whole 7,600-item pool would cost seconds
_WORD = re.compile(r"[^\W_]+(?:['’\-][^\W_]+)*", re.UNICODE)


@dataclass(frozen=True)
class Coverage:
    share_known: float  # 0-1: known words / all words (1.0 when the text has no words)
    n_words: int | None  # distinct words checked; None when rebuilt from a stored summary, which does not keep it
    unknown_examples: tuple[str, ...]  # a few words the tokenizer cannot read, for the message
    has_unknown_token: bool | None  # None when rebuilt from a stored summary that cannot tell (no unknown words)

    @classmethod
    def from_summary(cls, summary: dict) -> Coverage:
        """The coverage a probe's stored summary records ("coverage", "unknown_words"): enough for its share,
        examples and warnings. The summary keeps neither the number of words checked (n_words None) nor whether the
        tokenizer has an unknown token, which is only known (True) when some words were unknown."""
        share, unknown = float(summary["coverage"]), tuple(summary.get("unknown_words", ()))
        return cls(share, None, unknown, True if unknown else None)

    def warnings(self, what: str) -> list[str]:
        """One sentence when the share is below the warning line, else nothing."""
        if self.share_known >= COVERAGE_WARNING:
            return []
        examples = ", ".join(repr(w) for w in self.unknown_examples[:5])
        return [
            f"The model's tokenizer cannot read {what}: only {self.share_known:.0%} of its words are known "
            f"(unknown: {examples}). Results measure the unknown token, not the content; use a model whose "
            "tokenizer covers this text, or input written in the model's vocabulary."
        ]

    def as_dict(self) -> dict:
        return {"coverage": self.share_known, "n_words": self.n_words, "unknown_examples": list(self.unknown_examples)}


def words(texts: Iterable[str]) -> list[str]:
    """Distinct words in order of first appearance, at most MAX_WORDS."""
    seen: dict[str, None] = {}
    for text in texts:
        for match in _WORD.finditer(text):
            seen.setdefault(match.group(0), None)
            if len(seen) >= MAX_WORDS:
                return list(seen)
    return list(seen)


def unknown_token_id(tokenizer) -> int | None:
    unk = getattr(tokenizer, "unk_token_id", None)
    return None if unk is None else int(unk)


def measure(tokenizer, texts: Iterable[str]) -> Coverage:
    """Share of the texts' distinct words whose tokens include no unknown token."""
    vocabulary = words(texts)
    unk = unknown_token_id(tokenizer)
    if unk is None or not vocabulary:
        return Coverage(1.0, len(vocabulary), (), unk is not None)
    encoded = tokenizer(vocabulary, add_special_tokens=False)["input_ids"]
    unknown = [word for word, ids in zip(vocabulary, encoded, strict=True) if not ids or unk in ids]
    share = 1.0 - len(unknown) / len(vocabulary)
    return Coverage(share, len(vocabulary), tuple(unknown[:10]), True)
