"""FlexAC steering vectors: last-token residuals of two prompt sets, crosswise pairs, top-N mean difference.

Construction (METHODS.md section 2): residuals r_l(x) = blocks.{l}.hook_resid_post at the last prompt token, for
every layer l. Every faithful prompt i is paired with every associative prompt j ("crosswise"); a pair's score is
its cosine distance 1 - cos(r_l(f_i), r_l(a_j)) averaged over the scoring layers (the steering layers); the top N
pairs are kept and v_l = mean over kept pairs of r_l(a_j) - r_l(f_i), for every layer (so the per-layer plot
and any later change of steering layers can use them). When more than `max_pairs` pairs exist, a seeded random
subset is scored. Option `pairing="matched"` (our addition) keeps only the pairs (i, i) of aligned sets, the same
content in both registers, so the top-N mean difference holds the register shift without content differences.

Default pairing, measured on the embedded organism (deviation from the release, switchable): N = all pairs (with
FlexAC's N = 50 of 65k crosswise pairs the kept pairs are the content-mismatched outliers, the vector is 1.7x
longer and steering toward "faithful" at -2 broke fact recall, 1.00 -> 0.78).

Strength unit (`unit`, our addition; FlexAC leaves the scale to the raw mean difference). Default "centroid":
strength 2 carries the faithful prompts' output residual (last block's resid_post at the last prompt token, what
the unembedding reads) one centroid distance toward the associative set, on average, along the line between the
two sets' output centroids; strength s applies s/2 of that vector (the slider multiplies the vector, as in
FlexAC). The factor is found by bisection with the steering hooks on (`unit_prompts` faithful prompts, the last
`unit_positions` prompt positions steered), so it includes FlexAC's adaptive factor, its rescaling of h' to ||h||
and whatever the layers after the steered ones do; it is defined by the prompt sets, not by ||h||, so it holds on
any model. Measured on the organism (dream sets, layers 0-2, default sweep: 64 facts, seed 0) at strengths
-2/-1/0/+1/+2 for five candidate units (f: fact accuracy, c: creativity, r: the matched-norm random vector's f):

| strength 1 =                                      | f                        | c at +2 | r                        |
|---------------------------------------------------|--------------------------|---------|--------------------------|
| "residual": 0.3 x mean ||h_l|| per layer (before) | 0.92/1.00/1.00/0.08/0.00 | 1.00    | 0.92/1.00/1.00/1.00/0.69 |
| "raw": the mean difference mu_a - mu_f per layer  | 0.06/0.61/1.00/0.00/0.00 | 1.00    | 0.03/0.84/1.00/0.22/0.00 |
| output moved one centroid distance (0.50 x raw)   | 0.61/0.98/1.00/0.02/0.00 | 1.00    | 0.84/1.00/1.00/0.94/0.22 |
| output moved halfway, calibrated at +1 (0.27 raw) | 0.98/1.00/1.00/0.80/0.00 | 0.86    | 1.00/1.00/1.00/1.00/0.89 |
| "centroid": output at the centroid at +2 (0.25)   | 0.98/1.00/1.00/0.94/0.02 | 0.80    | 1.00/1.00/1.00/1.00/0.94 |

The residual-norm unit and the raw difference are cliffs: the three steered layers add up, so 0.3 x ||h_l|| at
each already carries the output past the associative centroid. One centroid distance per unit overshoots at -2
and makes even noise harmful at +2; "halfway" calibrated at +1 lets the random vector at +2 cost 0.11 of recall.
The default meets every target (f at +2 at least 0.3 below f at 0, f at -2 within 0.05, c at +2 at least 0.2
above, r within 0.1 everywhere, f at +1 strictly between f at 0 and +2); its +1 moves the organism's faithful
outputs 0.46 of the distance (the response is slightly convex in the vector) and costs answer probability
0.99 -> 0.64, while exact match only falls once the outputs cross the midpoint. The vector metadata records the
measured `output_shift` at strengths 1 and 2 for every unit. Calibration costs about 15 steered forward passes
over `unit_prompts` prompts (more when the bracket has to grow past 1 x raw).
"residual" rescales each v_l to `relative_norm` x the mean residual norm at its layer; "raw" keeps FlexAC's
scale (strength 1 adds the raw mean difference). The per-layer table always reports raw norms.

Task-specific vector (our choice; the paper's text was not available): v_task_l = mean r_l(target samples) -
mean r_l(faithful prompts), from a few target-domain samples the user enters; its own unit is calibrated the
same way, with the target samples' output centroid in place of the associative one.

Separability per layer: 2-fold cross-validated nearest-centroid accuracy (chance 0.5) of faithful vs associative
residuals, plus the vector's norm absolute and relative to the mean residual norm.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
import torch

from probes.hook_names import resid_post
from probes.models import exclusive
from probes.steering.hooks import steering
from probes.steering.prompts import PromptSets
from probes.tokens import as_model_reads, bridge_ids, pad_id, prompt_format, right_pad, shown_ids, uses_chat

SAFETENSORS_NAME = "vector.safetensors"
METADATA_NAME = "vector.json"
GENERAL_PREFIX = "general"
TASK_PREFIX = "task"
FORMAT_VERSION = "assoclens-steering-vector/1"
STRENGTH_UNITS = ("centroid", "residual", "raw")
CENTROID_STRENGTH = 2.0  # unit "centroid": the strength that carries faithful outputs one centroid distance
MAX_DOUBLINGS = 12  # unit "centroid": give up beyond 4096 x the raw vector
BISECTION_STEPS = 12  # unit "centroid": the factor to 2^-12 of its bracket


@dataclass(frozen=True)
class VectorConfig:
    """How steering vectors are built from the two prompt sets."""

    layers: tuple[int, ...] | None = None  # steering (and pair-scoring) layers; None = middle three (45-55% depth)
    top_n_pairs: int = 0  # keep the N highest-scoring pairs (FlexAC's release: 50); 0 = all pairs (see module doc)
    pairing: str = "crosswise"  # "crosswise": every faithful x every associative; "matched": i-th with i-th only
    unit: str = "centroid"  # what strength 1 means: "centroid" (module doc), "residual" or "raw"
    relative_norm: float = 0.3  # unit "residual": each v_l rescaled to this x mean ||h_l||
    unit_prompts: int = 64  # unit "centroid": faithful prompts the factor is calibrated on (the first ones)
    unit_positions: int = 4  # unit "centroid": steered last prompt positions (the sweep's and slider's default)
    max_pairs: int = 200_000  # score at most this many crosswise pairs (seeded random subset beyond it)
    batch_size: int = 32  # prompts per forward pass
    seed: int = 0  # only used when the crosswise pairs are subsampled
    chat_template: str = "auto"  # prompts through the tokenizer's chat template: auto (when it has one), on, off

    def resolved(self, n_layers: int) -> VectorConfig:
        """This config with its defaults filled in for a model of `n_layers` blocks: what the run key describes,
        so the same request from the page and the CLI gets the same key."""
        layers = validate_layers(self.layers, n_layers) if self.layers else default_layers(n_layers)
        return replace(self, layers=layers)


@dataclass(frozen=True)
class ModelPrompts:
    """How the steering probe's prompts reach the model: one user turn of its chat template, or plain text."""

    model: object
    mode: str = "auto"  # a config's chat_template: auto (the template when the tokenizer has one), on, off

    @property
    def chat(self) -> bool:
        return uses_chat(self.model.tokenizer, self.mode)

    @property
    def format(self) -> str:
        return prompt_format(self.chat)

    def text(self, prompt: str) -> str:
        return as_model_reads(self.model.tokenizer, prompt, self.chat)

    def sets(self, sets: PromptSets) -> PromptSets:
        return sets.formatted(self.text) if self.chat else sets

    def shown(self, model_text: str) -> str:
        """A prompt already formatted by `text` as the model reads it: its ids, special tokens written out."""
        return shown_ids(self.model.tokenizer, bridge_ids(self.model, model_text).tolist())


def default_layers(n_layers: int, count: int = 3) -> tuple[int, ...]:
    """`count` consecutive layers centred at half depth (FlexAC: about 45-55% of depth, three layers).

    Depth of blocks.{l}.hook_resid_post is (l + 1) / n_layers, so the centre is l = n_layers / 2 - 1
    (layers 4-6 of 12, 0-2 of 4); the final block, whose output goes straight to the unembedding, is avoided
    whenever the model has more layers than `count`.
    """
    count = min(count, n_layers)
    centre = int(n_layers / 2 - 1 + 0.5)  # round half up
    start = min(max(0, centre - count // 2), max(0, n_layers - count - 1) if n_layers > count else 0)
    return tuple(range(start, start + count))


def validate_layers(layers: tuple[int, ...], n_layers: int) -> tuple[int, ...]:
    if not layers:
        raise ValueError("Choose at least one steering layer.")
    bad = [layer for layer in layers if not 0 <= layer < n_layers]
    if bad:
        raise ValueError(f"Layers {bad} do not exist; the model has layers 0-{n_layers - 1}.")
    return tuple(sorted(set(layers)))


def validate_unit(cfg: VectorConfig) -> None:
    if cfg.unit not in STRENGTH_UNITS:
        raise ValueError(f"Unknown strength unit {cfg.unit!r}; choose {', '.join(STRENGTH_UNITS)}.")
    if cfg.unit == "residual" and not cfg.relative_norm > 0:
        raise ValueError(f"The residual strength unit needs a relative norm above 0, got {cfg.relative_norm}.")
    if cfg.unit_prompts < 1 or cfg.unit_positions < 1:
        raise ValueError("Calibrating the strength unit needs at least one prompt and one steered position.")


@torch.inference_mode()
def last_token_residuals(model, prompts: list[str], batch_size: int = 32, progress=None) -> torch.Tensor:
    """Residual stream after every block at each prompt's last token -> (n_prompts, n_layers, d_model) float32."""
    n_layers = model.cfg.n_layers
    tokens = [bridge_ids(model, prompt) for prompt in prompts]
    out = torch.zeros(len(prompts), n_layers, model.cfg.d_model)
    for start in range(0, len(prompts), batch_size):
        batch, lengths = right_pad(tokens[start : start + batch_size], pad_id(model.tokenizer))
        captured = _capture_last_token(model, batch, lengths)
        out[start : start + len(lengths)] = torch.stack([captured[layer] for layer in range(n_layers)], dim=1)
        if progress:
            progress(min(1.0, (start + batch_size) / len(prompts)), "residuals")
    return out


def _capture_last_token(
    model, batch: torch.Tensor, lengths: torch.Tensor, layers: tuple[int, ...] | None = None
) -> dict[int, torch.Tensor]:
    """One forward pass; resid_post of `layers` (default all) at each row's last real token -> {l: (batch, d)}."""
    rows = torch.arange(len(lengths))
    captured: dict[int, torch.Tensor] = {}

    def capture_at(layer: int):
        def capture(resid: torch.Tensor, hook) -> None:
            captured[layer] = resid[rows, lengths.to(resid.device) - 1].float().cpu()

        return capture

    chosen = range(model.cfg.n_layers) if layers is None else layers
    hooks = [(resid_post(layer), capture_at(layer)) for layer in chosen]
    with exclusive(model), model.hooks(fwd_hooks=hooks):
        model(batch.to(model.cfg.device), return_type=None)
    return captured


def crosswise_scores(faithful: torch.Tensor, associative: torch.Tensor, layers: tuple[int, ...]) -> torch.Tensor:
    """Cosine distance of every (faithful i, associative j) pair averaged over `layers` -> (n_f, n_a)."""
    f = torch.nn.functional.normalize(faithful[:, list(layers)], dim=-1)  # (n_f, k, d)
    a = torch.nn.functional.normalize(associative[:, list(layers)], dim=-1)  # (n_a, k, d)
    cosine = torch.einsum("ikd,jkd->ij", f, a) / len(layers)
    return 1.0 - cosine


def top_pairs(scores: torch.Tensor, top_n: int, max_pairs: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices (faithful, associative) of the `top_n` highest-scoring pairs, best first."""
    flat = scores.flatten()
    candidates = torch.arange(flat.numel())
    if flat.numel() > max_pairs:
        generator = torch.Generator().manual_seed(seed)
        candidates = torch.randperm(flat.numel(), generator=generator)[:max_pairs]
    order = torch.argsort(flat[candidates], descending=True, stable=True)[: min(top_n, len(candidates))]
    chosen = candidates[order]
    return chosen // scores.shape[1], chosen % scores.shape[1]


def matched_top_pairs(scores: torch.Tensor, top_n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Pairs (i, i) of aligned sets (the same prompt in both registers), the `top_n` most distant, best first."""
    if scores.shape[0] != scores.shape[1]:
        raise ValueError(
            f"Matched pairing needs sets of equal length (one associative prompt per faithful prompt); got "
            f"{scores.shape[0]} and {scores.shape[1]}."
        )
    order = torch.argsort(scores.diagonal(), descending=True, stable=True)[:top_n]
    return order, order


def separability(faithful: torch.Tensor, associative: torch.Tensor) -> float:
    """2-fold cross-validated nearest-centroid accuracy of two sets of (n, d) vectors (0.5 = chance)."""
    correct, total = 0, 0
    for fold in (0, 1):
        train_f, test_f = faithful[fold::2], faithful[1 - fold :: 2]
        train_a, test_a = associative[fold::2], associative[1 - fold :: 2]
        if min(len(train_f), len(test_f), len(train_a), len(test_a)) == 0:
            continue
        centre_f, centre_a = train_f.mean(0), train_a.mean(0)
        for test, is_assoc in ((test_f, False), (test_a, True)):
            closer_to_a = (test - centre_a).norm(dim=-1) < (test - centre_f).norm(dim=-1)
            correct += int((closer_to_a == is_assoc).sum())
            total += len(test)
    return correct / total if total else float("nan")


@dataclass
class SteeringVectors:
    """Per-layer directions for every layer of one model; `layers` are the ones steering uses by default."""

    general: torch.Tensor  # (n_layers, d_model) float32
    layers: tuple[int, ...]
    task: torch.Tensor | None = None  # (n_layers, d_model) float32, from target samples
    metadata: dict = field(default_factory=dict)  # model, N, prompt-set digest, ...

    def to_safetensors(self) -> bytes:
        from safetensors.torch import save

        tensors = _named(GENERAL_PREFIX, self.general)
        if self.task is not None:
            tensors |= _named(TASK_PREFIX, self.task)
        return save(tensors, metadata={"assoclens": json.dumps(self.metadata_dict(), sort_keys=True)})

    def metadata_dict(self) -> dict:
        return {
            "format": FORMAT_VERSION,
            "layers": list(self.layers),
            "n_layers": int(self.general.shape[0]),
            "d_model": int(self.general.shape[1]),
            "has_task_vector": self.task is not None,
            **self.metadata,
        }

    def to_json_bytes(self) -> bytes:
        return (json.dumps(self.metadata_dict(), indent=2, sort_keys=True) + "\n").encode()

    def files(self) -> dict[str, bytes]:
        return {SAFETENSORS_NAME: self.to_safetensors(), METADATA_NAME: self.to_json_bytes()}

    @classmethod
    def from_files(cls, tensor_bytes: bytes, json_bytes: bytes | None = None) -> SteeringVectors:
        """Reload from safetensors bytes (metadata from the sidecar JSON when given, else from the header)."""
        from safetensors import SafetensorError
        from safetensors.torch import load

        try:
            tensors = load(tensor_bytes)
            header = _safetensors_metadata(tensor_bytes)
        except (SafetensorError, ValueError, json.JSONDecodeError) as error:
            raise ValueError(f"Not a valid steering-vector safetensors file: {error}") from None
        meta = json.loads(json_bytes) if json_bytes else header
        general = _stack(tensors, GENERAL_PREFIX)
        if general is None:
            raise ValueError("The safetensors file holds no 'general.blocks.{l}.hook_resid_post' tensors.")
        task = _stack(tensors, TASK_PREFIX)
        known = {"format", "layers", "n_layers", "d_model", "has_task_vector"}
        layers = tuple(int(layer) for layer in meta.get("layers") or default_layers(len(general)))
        extra = {k: v for k, v in meta.items() if k not in known}
        return cls(general, validate_layers(layers, len(general)), task, extra)

    def digest(self) -> str:
        import hashlib

        return hashlib.sha256(self.to_safetensors()).hexdigest()

    def check_model(self, model) -> None:
        if self.general.shape != (model.cfg.n_layers, model.cfg.d_model):
            raise ValueError(
                f"This vector was built for {self.general.shape[0]} layers x d_model {self.general.shape[1]}; "
                f"the model has {model.cfg.n_layers} x {model.cfg.d_model}."
            )


def _safetensors_metadata(blob: bytes) -> dict:
    header_len = int.from_bytes(blob[:8], "little")
    header = json.loads(blob[8 : 8 + header_len])
    return json.loads(header.get("__metadata__", {}).get("assoclens", "{}"))


def _named(prefix: str, stacked: torch.Tensor) -> dict[str, torch.Tensor]:
    return {f"{prefix}.{resid_post(layer)}": stacked[layer].contiguous() for layer in range(len(stacked))}


def _stack(tensors: dict[str, torch.Tensor], prefix: str) -> torch.Tensor | None:
    layers = sorted(int(key.split(".")[2]) for key in tensors if key.startswith(prefix + ".blocks."))
    if not layers:
        return None
    if layers != list(range(len(layers))):
        raise ValueError(f"The {prefix} vector misses layers: found {layers}.")
    return torch.stack([tensors[f"{prefix}.{resid_post(layer)}"].float() for layer in layers])


@dataclass
class VectorResult:
    vectors: SteeringVectors
    per_layer: pd.DataFrame  # one row per layer: separability, norms, mean pair distance
    pairs: pd.DataFrame  # the kept pairs: faithful/associative index and text, score

    def to_frame(self) -> pd.DataFrame:
        return self.per_layer

    def to_tables(self) -> dict[str, pd.DataFrame]:
        return {"per_layer": self.per_layer, "pairs": self.pairs}

    def summary(self) -> dict:
        return {**self.vectors.metadata_dict(), "n_pairs_kept": int(len(self.pairs))}

    def files(self) -> dict[str, bytes]:
        return self.vectors.files()

    @classmethod
    def from_stored(cls, tables: dict[str, pd.DataFrame], summary: dict, files: dict[str, bytes]) -> VectorResult:
        """A stored run rebuilt: the vectors from their safetensors file (metadata from the JSON sidecar), the two
        tables as stored. The summary is the vectors' metadata plus the kept pairs' count, so it adds nothing."""
        if SAFETENSORS_NAME not in files:
            raise ValueError(f"The stored steering-vector run holds no {SAFETENSORS_NAME}.")
        vectors = SteeringVectors.from_files(files[SAFETENSORS_NAME], files.get(METADATA_NAME))
        return cls(vectors, tables["per_layer"], tables["pairs"])


def build_vectors(model, cfg: VectorConfig, sets: PromptSets, model_label: str = "", progress=None) -> VectorResult:
    """Residuals of both sets (and target samples) -> FlexAC top-N mean-difference vectors for every layer."""
    sets.validate()
    validate_unit(cfg)
    n_layers = model.cfg.n_layers
    layers = validate_layers(cfg.layers, n_layers) if cfg.layers else default_layers(n_layers)
    report = progress or (lambda fraction, message="": None)
    reads, set_digest = ModelPrompts(model, cfg.chat_template), prompt_set_digest(sets)
    sets = reads.sets(sets)  # every prompt as the model reads it (its chat template, when used)
    faithful = last_token_residuals(model, list(sets.faithful), cfg.batch_size)  # (n_f, L, d)
    report(0.4, "faithful residuals")
    associative = last_token_residuals(model, list(sets.associative), cfg.batch_size)  # (n_a, L, d)
    report(0.8, "associative residuals")
    scores = crosswise_scores(faithful, associative, layers)  # (n_f, n_a)
    if cfg.pairing == "matched":
        fi, ai = matched_top_pairs(scores, cfg.top_n_pairs or len(scores))
    elif cfg.pairing == "crosswise":
        fi, ai = top_pairs(scores, cfg.top_n_pairs or scores.numel(), cfg.max_pairs, cfg.seed)
    else:
        raise ValueError(f"Unknown pairing {cfg.pairing!r}; choose 'crosswise' or 'matched'.")
    general = (associative[ai] - faithful[fi]).mean(0)  # (L, d)
    task = None
    if sets.target_samples:
        targets = last_token_residuals(model, list(sets.target_samples), cfg.batch_size)
        task = targets.mean(0) - faithful.mean(0)  # (L, d)
    report(0.95, "vectors")
    metadata = {
        "model": model_label,
        "top_n_pairs": int(len(fi)),
        "pairing": cfg.pairing,
        "n_faithful": len(sets.faithful),
        "n_associative": len(sets.associative),
        "n_target_samples": len(sets.target_samples),
        "prompt_set_digest": set_digest,
        "score_layers": list(layers),
        "prompt_format": reads.format,
        "example_prompt": reads.shown(sets.faithful[0]),
    }
    per_layer = per_layer_table(faithful, associative, general, fi, ai)
    calibration = UnitCalibration.prepare(model, cfg, sets.faithful, faithful, layers)
    general, unit_meta = strength_unit(cfg, general, associative, calibration, per_layer)
    metadata |= unit_meta
    if task is not None:
        task, task_meta = strength_unit(cfg, task, targets, calibration, per_layer)
        metadata["task_output_shift"] = task_meta["output_shift"]
    per_layer["steering_norm"] = general.norm(dim=-1).numpy()
    report(0.98, "strength unit")
    vectors = SteeringVectors(general, layers, task, metadata)
    pairs = pd.DataFrame(
        {
            "rank": np.arange(1, len(fi) + 1),
            "faithful_index": fi.numpy(),
            "associative_index": ai.numpy(),
            "faithful_prompt": [sets.faithful[i] for i in fi.tolist()],
            "associative_prompt": [sets.associative[j] for j in ai.tolist()],
            "cosine_distance": scores[fi, ai].numpy(),
        }
    )
    report(1.0, "done")
    return VectorResult(vectors, per_layer, pairs)


@dataclass
class UnitCalibration:
    """Faithful prompts (tokenised, batched) and their unsteered output residuals, to measure a vector's push."""

    model: object
    layers: tuple[int, ...]  # steering layers
    batches: list[tuple[torch.Tensor, torch.Tensor]]  # ((batch, pos) right-padded tokens, (batch,) lengths)
    baseline: torch.Tensor  # (n, d_model) unsteered output residual at each prompt's last token
    faithful_centroid: torch.Tensor  # (d_model,) mean output residual of all faithful prompts
    positions: int

    @classmethod
    def prepare(cls, model, cfg: VectorConfig, prompts: tuple[str, ...], residuals: torch.Tensor, layers):
        """`residuals`: (n_prompts, n_layers, d_model) last-token residuals of `prompts` (unsteered)."""
        chosen = list(prompts[: cfg.unit_prompts])
        tokens = [bridge_ids(model, prompt) for prompt in chosen]
        batches = [
            right_pad(tokens[start : start + cfg.batch_size], pad_id(model.tokenizer))
            for start in range(0, len(tokens), cfg.batch_size)
        ]
        output = residuals[:, -1]  # (n_prompts, d_model)
        return cls(model, layers, batches, output[: len(chosen)], output.mean(0), cfg.unit_positions)

    @torch.inference_mode()
    def output_shift(self, vectors: torch.Tensor, target: torch.Tensor, strength: float) -> float:
        """Mean move of the prompts' output residual along `target` (a centroid difference), in units of its
        length, with strength x `vectors` (n_layers, d_model) steering the layers."""
        out_layer = self.model.cfg.n_layers - 1
        directions = {layer: [strength * vectors[layer].unsqueeze(0)] for layer in self.layers}
        moved = []
        for batch, lengths in self.batches:
            with steering(self.model, directions, lengths, self.positions):
                moved.append(_capture_last_token(self.model, batch, lengths, (out_layer,))[out_layer])
        distance = target.norm()
        return float(((torch.cat(moved) - self.baseline) @ (target / distance)).mean() / distance)


def strength_unit(
    cfg: VectorConfig, raw: torch.Tensor, other: torch.Tensor, calibration: UnitCalibration, per_layer: pd.DataFrame
) -> tuple[torch.Tensor, dict]:
    """`raw` (n_layers, d_model) rescaled to cfg.unit, and metadata saying what strength 1 and 2 do.

    `other`: (n, n_layers, d_model) residuals of the set the vector points to (associative prompts or task samples).
    """
    target = other[:, -1].mean(0) - calibration.faithful_centroid  # (d_model,) output centroid difference
    distance = float(target.norm())
    if distance <= 1e-6 * float(calibration.baseline.norm(dim=-1).mean()):
        raise ValueError(
            "The two prompt sets end in the same output residual, so there is no direction to steer along; "
            "use prompt sets that differ in register."
        )
    meta: dict = {"unit": cfg.unit, "output_centroid_distance": distance}
    if cfg.unit == "centroid":
        factor = centroid_factor(lambda m: calibration.output_shift(raw, target, m))
        scaled = raw * (factor / CENTROID_STRENGTH)
        meta["unit_factor"] = factor / CENTROID_STRENGTH  # vector = unit_factor x raw mean difference
    elif cfg.unit == "residual":
        mean_norms = torch.tensor(per_layer["mean_residual_norm"].to_numpy(), dtype=torch.float32)[:, None]
        scaled = rescaled(raw, cfg.relative_norm * mean_norms)
        meta["relative_norm"] = cfg.relative_norm
    else:
        scaled = raw
    meta["output_shift"] = {str(s): calibration.output_shift(scaled, target, s) for s in (1.0, 2.0)}
    return scaled, meta


def centroid_factor(shift, goal: float = 1.0) -> float:
    """The multiplier m > 0 with shift(m) = goal: bracket by doubling from 1, then bisect.

    `shift(m)`: the output's move (in centroid distances) with m x the raw vector; 0 at m = 0, rising with m.
    """
    low, high = 0.0, 1.0
    for _ in range(MAX_DOUBLINGS):
        reached = shift(high)
        if reached >= goal:
            break
        low, high = high, 2 * high
    else:
        raise ValueError(
            f"Steering along this direction does not carry the faithful prompts' output to the associative "
            f"centroid (it moves {reached:.0%} of the way at {low:g} x the raw vector), so the 'centroid' strength "
            "unit is undefined; choose the 'residual' or 'raw' unit."
        )
    for _ in range(BISECTION_STEPS):
        middle = (low + high) / 2
        low, high = (middle, high) if shift(middle) < goal else (low, middle)
    return (low + high) / 2


def rescaled(vectors: torch.Tensor, norms: torch.Tensor) -> torch.Tensor:
    """Each row of (n_layers, d_model) `vectors` rescaled to the matching (n_layers, 1) norm."""
    return vectors / vectors.norm(dim=-1, keepdim=True).clamp_min(1e-12) * norms


def prompt_set_digest(sets: PromptSets) -> str:
    """sha256 of the sets' canonical JSON (faithful, associative, vocabulary, facts, target samples)."""
    import hashlib

    text = json.dumps(sets.as_json(), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def per_layer_table(
    faithful: torch.Tensor, associative: torch.Tensor, general: torch.Tensor, fi: torch.Tensor, ai: torch.Tensor
) -> pd.DataFrame:
    """Where the direction lives: per layer separability, vector norm (absolute and relative), pair distance."""
    rows = []
    for layer in range(general.shape[0]):
        f, a = faithful[:, layer], associative[:, layer]  # (n, d)
        mean_norm = float(torch.cat([f, a]).norm(dim=-1).mean())
        pair_cos = torch.nn.functional.cosine_similarity(f[fi], a[ai], dim=-1)
        rows.append(
            {
                "layer": layer,
                "hook": resid_post(layer),
                "separability": separability(f, a),
                "vector_norm": float(general[layer].norm()),
                "relative_norm": float(general[layer].norm()) / mean_norm if mean_norm > 0 else float("nan"),
                "mean_residual_norm": mean_norm,
                "kept_pair_cosine_distance": float((1 - pair_cos).mean()),
            }
        )
    return pd.DataFrame(rows)
