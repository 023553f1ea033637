"""TransformerLens hook names the probes read and write: the one place they are spelled.

TransformerBridge and our own `HookedRootModule` models (probes/induction/emergence.py) use TransformerLens'
names, so these work on both.
"""

from __future__ import annotations

ATTN_PATTERN_SUFFIX = "attn.hook_pattern"


def resid_post(layer: int) -> str:
    """The residual stream after block `layer`: (batch, pos, d_model)."""
    return f"blocks.{layer}.hook_resid_post"


def attn_pattern(layer: int) -> str:
    """The attention probabilities of block `layer`: (batch, n_heads, query_pos, key_pos)."""
    return f"blocks.{layer}.{ATTN_PATTERN_SUFFIX}"


def is_attn_pattern(name: str) -> bool:
    """True for every layer's attention-pattern hook (a `names_filter` for `run_with_cache`)."""
    return name.endswith(ATTN_PATTERN_SUFFIX)
