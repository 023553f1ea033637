"""A word-level tokenizer over the organism's closed vocabulary, saved as a Hugging Face fast tokenizer.

Words are split on whitespace and every punctuation character is its own token, so "The capital of Zorva is
Pelum." and "The capital of Zorva is Pelum ." tokenize identically. Unknown words map to <unk>.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache

SPECIAL_TOKENS = ("<unk>", "<pad>", "<bos>", "<eos>")
MODEL_MAX_LENGTH = 512


@cache
def _pre_tokenizer():
    from tokenizers import pre_tokenizers

    return pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Punctuation()])


def split_words(text: str) -> list[str]:
    """The tokens the tokenizer will see in `text` (before the vocabulary lookup)."""
    return [piece for piece, _span in _pre_tokenizer().pre_tokenize_str(text)]


def build_vocabulary(texts: Iterable[str]) -> list[str]:
    """Special tokens first, then every distinct word of `texts` in sorted order (deterministic)."""
    words: set[str] = set()
    for text in texts:
        words.update(split_words(text))
    return list(SPECIAL_TOKENS) + sorted(words - set(SPECIAL_TOKENS))


def build_tokenizer(vocabulary: list[str]):
    """A PreTrainedTokenizerFast with <bos>/<eos>/<unk>/<pad>; it adds no special tokens by itself."""
    from tokenizers import Tokenizer, decoders, models
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(models.WordLevel(vocab={w: i for i, w in enumerate(vocabulary)}, unk_token="<unk>"))
    core.pre_tokenizer = _pre_tokenizer()
    core.decoder = decoders.WordPiece(prefix="##", cleanup=False)  # joins words with single spaces
    return PreTrainedTokenizerFast(
        tokenizer_object=core,
        unk_token="<unk>",
        pad_token="<pad>",
        bos_token="<bos>",
        eos_token="<eos>",
        model_max_length=MODEL_MAX_LENGTH,
    )
