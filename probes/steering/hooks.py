"""FlexAC steering hooks on `blocks.{l}.hook_resid_post`.

The update (METHODS.md section 2, from FlexAC's released code), for each steered position with residual h and
each direction u = strength * v_l (general vector, optionally plus a task vector with its own strength):

    a = sigmoid(100 * max(-cos(h, u), 0))      # adaptive factor in [0.5, 1); 0.5 whenever cos(h, u) >= 0
    h' = h + sum_u a_u * u
    h' <- h' * ||h|| / ||h'||                  # norm preservation

Steered positions: the last `n_prompt_positions` prompt tokens and every token after the prompt (generated
tokens, or answer tokens when scoring by teacher forcing). A forward that sees fewer positions than the prompt
is a KV-cached generation step, whose positions are all generated tokens, so all of them are steered.
Hooks live only inside `steering(...)`, which removes them on exit, also when the body raises, and which holds
the model's `exclusive` lock meanwhile, so no other thread's forward pass runs through them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

from probes.hook_names import resid_post
from probes.models import exclusive

ADAPTIVE_SHARPNESS = 100.0  # FlexAC's constant inside the sigmoid
NORM_EPS = 1e-8
BELOW_ONE = {dtype: 1.0 - torch.finfo(dtype).eps / 2 for dtype in (torch.float32, torch.float64)}  # largest < 1
vector_norm = torch.linalg.vector_norm


def adaptive_factor(h: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """a = sigmoid(100 * max(-cos(h, u), 0)); h (..., d), u broadcastable to h -> (...).

    Mathematically a < 1; in floating point sigmoid(x) rounds to exactly 1.0 once x > ~17, so the result is capped
    at the largest float below 1 to keep the documented range [0.5, 1) true of the numbers too.
    """
    return _factor(h, u, h.norm(dim=-1))


def _factor(h: torch.Tensor, u: torch.Tensor, h_norm: torch.Tensor, u_norm: torch.Tensor | None = None) -> torch.Tensor:
    u_norm = vector_norm(u, dim=-1) if u_norm is None else u_norm
    cos = (h * u).sum(-1) / (h_norm * u_norm).clamp_min(NORM_EPS)  # (...)
    factor = torch.sigmoid(torch.relu(cos * -ADAPTIVE_SHARPNESS))
    return factor.clamp(max=BELOW_ONE[factor.dtype]) if factor.dtype in BELOW_ONE else factor.clamp(max=1.0)


def flexac_update(
    h: torch.Tensor, directions: list[torch.Tensor], direction_norms: list[torch.Tensor] | None = None
) -> torch.Tensor:
    """h + sum a_u * u, rescaled to the norm of h. h (..., d); each u broadcastable to h. Float32 inside.

    `direction_norms` (optional, each u.norm(dim=-1)) saves recomputing them on every call.
    """
    h32 = h.float()
    h_norm = vector_norm(h32, dim=-1)  # (...)
    steered = h32
    for index, u in enumerate(directions):
        u32 = u.to(device=h.device, dtype=torch.float32)
        u_norm = None if direction_norms is None else direction_norms[index]
        steered = torch.addcmul(steered, _factor(h32, u32, h_norm, u_norm).unsqueeze(-1), u32)
    scale = h_norm / vector_norm(steered, dim=-1).clamp_min(NORM_EPS)
    return (steered * scale.unsqueeze(-1)).to(h.dtype)


def steered_position_mask(seq_len: int, prompt_lengths: torch.Tensor, n_prompt_positions: int) -> torch.Tensor:
    """(batch, seq_len) bool: True where a full-sequence forward is steered (last prompt positions onward).

    `prompt_lengths` (batch,) counts each row's prompt tokens from position 0 (right padding; pads past a row's
    end are steered too, harmlessly, since nothing real attends to them in a causal model).
    """
    positions = torch.arange(seq_len, device=prompt_lengths.device).unsqueeze(0)  # (1, pos)
    first_steered = (prompt_lengths - n_prompt_positions).clamp_min(0).unsqueeze(1)  # (batch, 1)
    return positions >= first_steered


class SteeringHook:
    """A forward hook for one layer: applies the FlexAC update at the steered positions.

    `directions`: list of (batch or 1, d_model) tensors, strength already multiplied in (one per vector kind).
    `prompt_lengths`: (batch,) prompt token counts (all rows equal in generation; right-padded in scoring).
    """

    def __init__(self, directions: list[torch.Tensor], prompt_lengths: torch.Tensor, n_prompt_positions: int):
        self.directions = [(d if d.dim() == 2 else d.unsqueeze(0)).float() for d in directions]
        self.prompt_lengths = prompt_lengths
        self.shortest_prompt = int(prompt_lengths.min())
        self.n_prompt_positions = n_prompt_positions
        self.calls = 0
        self._prepared: dict[tuple, tuple[list[torch.Tensor], list[torch.Tensor]]] = {}

    def _units(self, batch: int, device: torch.device) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Directions shaped (b|1, 1, d_model) on `device`, and their norms; prepared once per batch size."""
        key = (batch, str(device))
        if key not in self._prepared:
            units = [(d if d.shape[0] == batch else d[:1]).unsqueeze(1).to(device) for d in self.directions]
            self._prepared[key] = (units, [vector_norm(u, dim=-1) for u in units])
        return self._prepared[key]

    def __call__(self, resid: torch.Tensor, hook=None) -> torch.Tensor:
        # resid: (batch, pos, d_model)
        self.calls += 1
        batch, seq_len, _ = resid.shape
        units, norms = self._units(batch, resid.device)
        if seq_len < self.shortest_prompt:
            return flexac_update(resid, units, norms)  # KV-cached generation step: only generated positions
        mask = steered_position_mask(seq_len, self.prompt_lengths.to(resid.device), self.n_prompt_positions)
        mask = mask[:batch] if mask.shape[0] >= batch else mask[:1].expand(batch, -1)
        updated = flexac_update(resid, units, norms)
        return torch.where(mask.unsqueeze(-1), updated, resid)


@contextlib.contextmanager
def steering(
    model,
    layer_directions: dict[int, list[torch.Tensor]],
    prompt_lengths: torch.Tensor | int,
    n_prompt_positions: int,
) -> Iterator[dict[int, SteeringHook]]:
    """Attach one SteeringHook per layer for the duration of the block; always removed on exit.

    `layer_directions[l]` lists the (batch or 1, d_model) directions added at layer l (already strength-scaled).
    Layers whose directions are all zero get no hook (strength 0 is exactly the unsteered model).
    """
    if isinstance(prompt_lengths, int):
        prompt_lengths = torch.tensor([prompt_lengths])
    hooks = {
        layer: SteeringHook(directions, prompt_lengths, n_prompt_positions)
        for layer, directions in layer_directions.items()
        if any(bool(d.abs().sum() > 0) for d in directions)
    }
    fwd_hooks = [(resid_post(layer), hook) for layer, hook in hooks.items()]
    with exclusive(model), model.hooks(fwd_hooks=fwd_hooks):
        yield hooks


def active_hook_count(model, layers: list[int]) -> int:
    """How many forward hooks are attached at the given layers' resid_post points (0 when clean)."""
    total = 0
    for layer in layers:
        point = model.hook_dict[resid_post(layer)]
        total += len(point._forward_hooks)
    return total
