"""One head's attention pattern on the user's own text (to look at a head the scan ranked).

The text is tokenised with the model's tokenizer (BOS prepended when the tokenizer has one and `prepend_bos`),
cut to `max_tokens`, run once with a names_filter on that layer's `hook_pattern`; the result keeps the lower
triangle of the head's (query, key) pattern plus, per query, the attention it pays to the token after an earlier
occurrence of itself (the induction target), so a user can see the head doing induction on real text.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from probes.hook_names import attn_pattern
from probes.models import exclusive
from probes.tokens import prompt_ids

NAME = "induction-attention"
VERSION = "1"

Progress = Callable[[float, str], None]


@dataclass(frozen=True)
class TextAttentionConfig:
    text: str  # the user's text
    layer: int  # which head to show
    head: int
    prepend_bos: bool = True  # prepend the tokenizer's BOS (as the scan does)
    max_tokens: int = 128  # longer texts are cut (the pattern grows with the square of the length)


@dataclass
class TextAttentionResult:
    tokens: list[str]  # (pos,) token strings
    pattern: np.ndarray  # (pos, pos) attention of the chosen head
    layer: int
    head: int

    @classmethod
    def from_stored(
        cls, tables: dict[str, pd.DataFrame], summary: dict, files: dict[str, bytes]
    ) -> TextAttentionResult:
        """The pattern a stored run holds. The table keeps the lower triangle (query >= key) widened to float64;
        the pattern comes back as float32, as computed, so `induction_attention()` is the stored number. Keys after
        the query are not stored: they are 0 here, as the causal mask makes them (no output reads them)."""
        frame = tables["attention"]
        tokens = list(summary["tokens"])
        pattern = np.zeros((len(tokens), len(tokens)), dtype=np.float32)  # (pos, pos)
        pattern[frame["query"].to_numpy(), frame["key"].to_numpy()] = frame["attention"].to_numpy(np.float32)
        return cls(tokens=tokens, pattern=pattern, layer=int(summary["layer"]), head=int(summary["head"]))

    def induction_targets(self, token_ids: list[int] | None = None) -> np.ndarray:
        """(pos, pos) mask: key j is the token after an earlier occurrence of query i's token."""
        ids = token_ids if token_ids is not None else self.tokens
        n = len(ids)
        mask = np.zeros((n, n), dtype=bool)
        for query in range(n):
            for earlier in range(query - 1):  # earlier occurrence e < query - 1, its successor e + 1 < query
                if ids[earlier] == ids[query]:
                    mask[query, earlier + 1] = True
        return mask

    def to_frame(self) -> pd.DataFrame:
        """Lower triangle as a tidy table: query/key index and token, attention weight, induction-target flag."""
        query, key = np.tril_indices(len(self.tokens))
        targets = self.induction_targets()
        return pd.DataFrame({
            "query": query, "key": key,
            "query_token": [self.tokens[i] for i in query], "key_token": [self.tokens[j] for j in key],
            "attention": self.pattern[query, key].astype(float), "induction_target": targets[query, key],
        })  # fmt: skip

    def induction_attention(self) -> float | None:
        """Mean over queries that have an induction target of the attention paid to such targets."""
        targets = self.induction_targets()
        rows = targets.any(axis=1)
        if not rows.any():
            return None
        return float((self.pattern * targets).sum(axis=1)[rows].mean())

    def to_tables(self) -> dict[str, pd.DataFrame]:
        return {"attention": self.to_frame()}

    def summary(self) -> dict:
        return {"tokens": self.tokens, "layer": self.layer, "head": self.head,
                "induction_attention": self.induction_attention()}  # fmt: skip


def tokenize(model, text: str, prepend_bos: bool, max_tokens: int) -> torch.Tensor:
    """(1, pos) token ids of `text`, BOS first when asked and available (never doubled)."""
    ids = prompt_ids(model.tokenizer, text, prepend_bos)
    if len(ids) < 2:
        raise ValueError("Type a text of at least two tokens.")
    return torch.tensor([ids[:max_tokens]])


def run(model, cfg: TextAttentionConfig, progress: Progress | None = None) -> TextAttentionResult:
    if not (0 <= cfg.layer < model.cfg.n_layers and 0 <= cfg.head < model.cfg.n_heads):
        raise ValueError(f"Head L{cfg.layer}H{cfg.head} does not exist in this model.")
    tokens = tokenize(model, cfg.text, cfg.prepend_bos, cfg.max_tokens)  # (1, pos)
    hook = attn_pattern(cfg.layer)
    with torch.no_grad(), exclusive(model):
        _, cache = model.run_with_cache(tokens.to(model.cfg.device), names_filter=lambda name: name == hook)
    pattern = cache[hook][0, cfg.head].float().cpu().numpy()  # (pos, pos)
    strings = [model.tokenizer.convert_ids_to_tokens(int(i)) for i in tokens[0]]
    if progress:
        progress(1.0, "done")
    return TextAttentionResult(tokens=strings, pattern=pattern, layer=cfg.layer, head=cfg.head)
