"""Tiny random-initialised GPT-2 models with a word-level tokenizer, saved like any Hugging Face model.

Used by tests and benchmarks (our machines reach no model hub) and as the stand-in default model until the
trained organism exists. A folder written here loads through `probes.models.load_model` unchanged.
"""

from __future__ import annotations

import json
from pathlib import Path

SPECIAL_TOKENS = ["<unk>", "<pad>", "<bos>", "<eos>"]


def word_level_tokenizer(words: list[str]):
    """A whitespace/punctuation word-level tokenizer over `words` plus special tokens, as a fast tokenizer."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {token: index for index, token in enumerate(SPECIAL_TOKENS + sorted(set(words)))}
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Punctuation()])
    from tokenizers import decoders

    core.decoder = decoders.WordPiece(prefix="##", cleanup=False)
    return PreTrainedTokenizerFast(
        tokenizer_object=core, unk_token="<unk>", pad_token="<pad>", bos_token="<bos>", eos_token="<eos>"
    )


def default_words(count: int) -> list[str]:
    """Pronounceable made-up words, deterministic, for a tiny model's vocabulary."""
    consonants, vowels = "bdfgklmnprstvz", "aeiou"
    words = []
    for index in range(count):
        a, b, c = index % 14, (index // 14) % 5, (index // 70) % 14
        words.append(consonants[a] + vowels[b] + consonants[c] + vowels[(a + c) % 5])
    return words + [".", ",", ":", "?", "the", "of", "is"]


def save_tiny_model(
    folder: Path | str,
    n_layer: int = 2,
    n_head: int = 4,
    n_embd: int = 64,
    n_positions: int = 256,
    vocab_words: int = 200,
    seed: int = 0,
    note: str = "random-initialised test model",
) -> Path:
    """Write a random-initialised GPT-2 (config, safetensors weights, tokenizer) to `folder`."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer = word_level_tokenizer(default_words(vocab_words))
    config = GPT2Config(
        n_layer=n_layer,
        n_head=n_head,
        n_embd=n_embd,
        n_positions=n_positions,
        vocab_size=len(tokenizer),
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(seed)
    GPT2LMHeadModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    (folder / "assoclens.json").write_text(json.dumps({"note": note, "trained": False}, indent=2))
    return folder
