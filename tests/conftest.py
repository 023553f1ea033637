"""Shared fixtures: no hub access, a throwaway result store, a tiny random-initialised model."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # our machines reach no model hub; fail fast instead of retrying
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

SHARED_DIR = Path(__file__).resolve().parent.parent.parent / "shared"


@pytest.fixture
def store_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "results.duckdb"
    monkeypatch.setenv("ASSOCLENS_DB", str(path))
    return path


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from probes.tiny import save_tiny_model

    return save_tiny_model(tmp_path_factory.mktemp("tiny-gpt2"))


@pytest.fixture(scope="session")
def tiny_model(tiny_model_dir: Path):
    from probes.models import ModelSpec, load_model

    return load_model(ModelSpec(name=str(tiny_model_dir), device="cpu"))


@pytest.fixture(scope="session")
def chat_model_dir(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model with a chat template written in its own words (so every part tokenizes to known ids): a user
    turn opens with word 150 and the assistant's reply with word 151; the template writes the BOS."""
    import json
    import shutil

    from probes.tiny import default_words

    words = default_words(200)
    template = (
        "{{ bos_token }}{% for m in messages %}" + words[150] + " {{ m['content'] }} {% endfor %}"
        "{% if add_generation_prompt %}" + words[151] + "{% endif %}"
    )
    folder = tmp_path_factory.mktemp("tiny-chat") / "model"
    shutil.copytree(tiny_model_dir, folder)
    config_path = folder / "tokenizer_config.json"
    config = json.loads(config_path.read_text())
    config["chat_template"] = template
    config_path.write_text(json.dumps(config))
    return folder
