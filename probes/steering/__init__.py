"""Associative steering (FlexAC, NeurIPS 2025) carried to text-only causal LMs.

Three cached computations share this package:
* vectors (`build_vectors`, VECTORS_NAME): FlexAC direction per layer from faithful vs associative prompt sets,
  with a per-layer separability/norm table; saved as safetensors + JSON metadata (`vectors.py`);
* sweep (`run_sweep`, NAME): faithfulness and creativity vs strength, with a matched-norm random baseline and
  the collapse strength marked (`sweep.py`, `metrics.py`);
* ladder (`run_ladder`, LADDER_NAME): one prompt continued at every slider strength in one batch, so moving the
  page's slider only reads a table.
The steering update itself (adaptive factor, norm preservation, scoped hooks) is in `hooks.py`.
Deviations from the paper: text-only models; the task-specific vector is mean(target samples) - mean(faithful)
(our choice); faithfulness is teacher-forced exact match on known facts instead of CHAIR; creativity is the share
of associative-register words (or novelty) instead of Creation-MMBench judging.
"""

from probes.steering.apply import DecodeSettings, generate, layer_directions, matched_norm_random, score_answers
from probes.steering.hooks import adaptive_factor, flexac_update, steering
from probes.steering.prompts import FactItem, PromptSets, organism_prompt_sets, parse_facts, parse_prompt_sets
from probes.steering.sweep import LadderConfig, LadderResult, SweepConfig, SweepResult, run_ladder, run_sweep
from probes.steering.vectors import SteeringVectors, VectorConfig, VectorResult, build_vectors, default_layers

NAME = "steering"  # the dose-response sweep
VERSION = "3"  # 2: coverage and strength unit in the summary; 3: chat templates (prompt_format, example_prompt)
VECTORS_NAME = "steering.vectors"
VECTORS_VERSION = "3"  # 2: strength unit "centroid" (calibrated), output_shift metadata; 3: chat templates
LADDER_NAME = "steering.ladder"
LADDER_VERSION = "2"  # 2: chat templates

__all__ = [
    "LADDER_NAME",
    "LADDER_VERSION",
    "NAME",
    "VECTORS_NAME",
    "VECTORS_VERSION",
    "VERSION",
    "DecodeSettings",
    "FactItem",
    "LadderConfig",
    "LadderResult",
    "PromptSets",
    "SteeringVectors",
    "SweepConfig",
    "SweepResult",
    "VectorConfig",
    "VectorResult",
    "adaptive_factor",
    "build_vectors",
    "default_layers",
    "flexac_update",
    "generate",
    "layer_directions",
    "matched_norm_random",
    "organism_prompt_sets",
    "parse_facts",
    "parse_prompt_sets",
    "run_ladder",
    "run_sweep",
    "score_answers",
    "steering",
]
