"""Which built-in inputs a model gets: the organism's data for organism-like folders, English for the rest."""

from __future__ import annotations

import shutil
from pathlib import Path

from probes.defaults import ORGANISM_DATA_DIR, organism_data_dir, uses_english_defaults
from probes.models import EMBEDDED_MODEL_DIR, ModelSpec


def test_the_organism_and_organism_like_folders_get_their_own_data(tmp_path: Path) -> None:
    assert organism_data_dir(ModelSpec(name="organism")) == ORGANISM_DATA_DIR
    assert organism_data_dir(ModelSpec(name=str(EMBEDDED_MODEL_DIR))) == ORGANISM_DATA_DIR
    copy = tmp_path / "retrained"
    (copy / "data").mkdir(parents=True)
    shutil.copy(ORGANISM_DATA_DIR / "steering_prompts.json", copy / "data")
    shutil.copy(EMBEDDED_MODEL_DIR / "config.json", copy)
    assert organism_data_dir(ModelSpec(name=str(copy))) == copy / "data"


def test_other_models_get_the_english_defaults(tiny_model_dir: Path) -> None:
    assert uses_english_defaults(ModelSpec(name=str(tiny_model_dir)))
    assert uses_english_defaults(ModelSpec(name="Qwen/Qwen2.5-0.5B-Instruct"))  # a hub name: no local folder
