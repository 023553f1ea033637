"""Induction scan benchmark: the whole scan vs one plain forward pass over the same tokens (target <= 1.5x without
the copying score), and vs TransformerLens' `head_detector` run once per score type (target < 1x: faster)."""

from __future__ import annotations

import torch
from transformer_lens.head_detector import detect_head

from bench.timing import comparison_row
from probes.induction import scores
from probes.tokens import bos_for


def _tokens_and_texts(model, cfg: scores.ScanConfig) -> tuple[torch.Tensor, list[str]]:
    vocab, special = scores.sampling_vocabulary(model)
    bos = bos_for(model, cfg.prepend_bos)
    tokens = scores.repeated_random_tokens(vocab, special, cfg.n_seqs, cfg.seq_len, bos, cfg.seed)
    texts = [model.tokenizer.decode(row[int(bos is not None) :]) for row in tokens]
    return tokens.to(model.cfg.device), texts


def _head_detector_all(model, texts: list[str], previous_pattern: torch.Tensor) -> None:
    """What a user would do without the scan: one head_detector call per score type (each runs its forwards)."""
    detect_head(model, texts, "induction_head")
    detect_head(model, texts, "duplicate_token_head")
    for text in texts:  # a custom pattern takes one text at a time
        detect_head(model, text, previous_pattern)


def rows(model, model_label: str, quick: bool) -> list[dict]:
    repeats = 2 if quick else 5
    cfg = scores.ScanConfig(seq_len=50, n_seqs=2 if quick else 8, copying=False)
    tokens, texts = _tokens_and_texts(model, cfg)
    n_pos = tokens.shape[1]
    previous = torch.zeros(n_pos, n_pos)
    previous[torch.arange(n_pos - cfg.seq_len, n_pos), torch.arange(n_pos - cfg.seq_len - 1, n_pos - 1)] = 1.0

    def forward() -> None:
        with torch.no_grad():
            model(tokens)

    out = [
        comparison_row(
            f"induction scan vs one forward pass ({model_label})",
            lambda: scores.run(model, cfg),
            forward,
            repeats,
            target="<=1.5",
        ),  # fmt: skip
        comparison_row(
            f"induction scan vs head_detector x3 score types ({model_label})",
            lambda: scores.run(model, cfg),
            lambda: _head_detector_all(model, texts, previous),
            repeats,
            target="<1",
        ),  # fmt: skip
    ]
    if not quick:
        with_copying = scores.ScanConfig(seq_len=cfg.seq_len, n_seqs=cfg.n_seqs, copying=True)
        out.append(comparison_row(f"induction scan with copying score vs one forward pass ({model_label})",
                                  lambda: scores.run(model, with_copying), forward, repeats))  # fmt: skip
    return out
