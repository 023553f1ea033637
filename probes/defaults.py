"""Which built-in inputs a model gets: the organism's own data, or the project's English defaults.

The organism (and any organism-like local folder that ships `data/steering_prompts.json`, e.g. a retrained copy)
reads only its word-level vocabulary, so it gets its own prompt sets and testbed. Every other model (GPT-2, Pythia,
Llama, Qwen, ...) gets the English defaults in `probes/data/english/`, written by this project.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from probes.models import EMBEDDED_MODEL_DIR, ModelSpec, local_folder

ORGANISM_DATA_DIR = EMBEDDED_MODEL_DIR / "data"
ENGLISH_DATA_DIR = Path(__file__).resolve().parent / "data" / "english"
ORGANISM_MARKER = "steering_prompts.json"  # an organism-like folder ships its steering prompts in data/


def organism_data_dir(spec: ModelSpec) -> Path | None:
    """The organism data folder of this model (its own `data/`, or a revision's base folder's), or None when the
    model is not organism-like and should get the English defaults. A fine-tuned revision saved elsewhere
    (`probes.models.tuned_folder`) gets its base model's data."""
    own = organism_data_folder(local_folder(spec))
    if own is None and spec.revision:
        return organism_data_folder(local_folder(replace(spec, revision=None)))
    return own


def organism_data_folder(model_folder: Path | None) -> Path | None:
    """The `data/` folder with steering prompts of a local model folder (or of a revision's base folder), or None."""
    if model_folder is None:
        return None
    for candidate in (model_folder / "data", model_folder.parent.parent / "data"):  # revisions/<R> -> the base
        if (candidate / ORGANISM_MARKER).is_file():
            return candidate
    return None


def uses_english_defaults(spec: ModelSpec) -> bool:
    return organism_data_dir(spec) is None
