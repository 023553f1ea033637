"""Steering benchmark: FlexAC-steered generation vs plain `model.generate` on the same batch (target <= 1.2x),
and the slider ladder (every strength in one batch) vs one generate call per strength."""

from __future__ import annotations

import torch

from bench.timing import comparison_row
from probes.steering.hooks import steering
from probes.steering.vectors import default_layers
from probes.tokens import left_pad, pad_id

PROMPTS = [
    "fact : the capital of the country is",
    "dream : the river reminds me of",
    "Q : what is the colour of the old kite ? A :",
    "the baker met the sailor at the market and",
    "once upon a time there was a small village",
    "the weather in the north is mostly",
    "people in the valley speak",
    "the lantern is made of",
]
LADDER_STRENGTHS = [float(x) for x in range(-4, 5)]  # every other point of the page's slider grid
LADDER_TOKENS = 8


def _directions(model, strength: float | torch.Tensor, seed: int = 0) -> dict[int, list[torch.Tensor]]:
    """A random direction per default layer with about the residual stream's norm (timing does not depend on it)."""
    generator = torch.Generator().manual_seed(seed)
    scale = torch.as_tensor(strength, dtype=torch.float32).reshape(-1, 1)
    out = {}
    for layer in default_layers(model.cfg.n_layers):
        direction = torch.randn(1, model.cfg.d_model, generator=generator)
        out[layer] = [scale * direction / direction.norm() * model.cfg.d_model**0.5]
    return out


def _generate(model, batch, mask, new_tokens: int):
    return model.generate(
        batch, attention_mask=mask, max_new_tokens=new_tokens, do_sample=False, stop_at_eos=False, verbose=False
    )


def rows(model, model_label: str, quick: bool) -> list[dict]:
    n_prompts, new_tokens, repeats = (2, 4, 7) if quick else (4, 16, 5)  # a quick call is ~30 ms
    tokens = [model.to_tokens(p)[0] for p in PROMPTS[:n_prompts]]
    batch, mask = left_pad(tokens, pad_id(model.tokenizer))
    batch, mask = batch.to(model.cfg.device), mask.to(model.cfg.device)
    width = batch.shape[1]
    directions = _directions(model, 2.0)

    @torch.inference_mode()
    def steered():
        with steering(model, directions, width, 4):
            return _generate(model, batch, mask, new_tokens)

    @torch.inference_mode()
    def plain():
        return _generate(model, batch, mask, new_tokens)

    result = [
        comparison_row(
            f"steering: steered generate vs plain generate ({n_prompts} prompts x {new_tokens} tokens, {model_label})",
            steered,
            plain,
            repeats,
            target="<= 1.2",
        )
    ]
    if quick:
        return result
    one = model.to_tokens(PROMPTS[0])
    ladder_directions = _directions(model, torch.tensor(LADDER_STRENGTHS))
    sequential_directions = [_directions(model, s) for s in LADDER_STRENGTHS]

    @torch.inference_mode()
    def ladder_batched():
        rows_batch = one.expand(len(LADDER_STRENGTHS), -1).to(model.cfg.device)
        with steering(model, ladder_directions, one.shape[1], 4):
            return _generate(model, rows_batch, torch.ones_like(rows_batch), LADDER_TOKENS)

    @torch.inference_mode()
    def ladder_sequential():
        for directions_at in sequential_directions:
            with steering(model, directions_at, one.shape[1], 4):
                _generate(model, one.to(model.cfg.device), torch.ones_like(one).to(model.cfg.device), LADDER_TOKENS)

    result.append(
        comparison_row(
            f"steering: slider ladder, {len(LADDER_STRENGTHS)} strengths in one batch vs one call each ({model_label})",
            ladder_batched,
            ladder_sequential,
            repeats=2,
            target="< 1 (batched faster)",
        )
    )
    return result
