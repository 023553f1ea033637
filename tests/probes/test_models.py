"""Model loading goes through one path for hub names and local folders, and refuses clearly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from probes import models
from probes.models import ModelLoadError, ModelSpec, load_model, model_identity


def test_tiny_local_model_loads_through_bridge(tiny_model_dir: Path) -> None:
    bridge = load_model(ModelSpec(name=str(tiny_model_dir), device="cpu"))
    assert type(bridge).__name__ == "TransformerBridge"
    assert bridge.cfg.n_layers == 2
    tokens = bridge.tokenizer("baba the of .", return_tensors="pt").input_ids
    logits, cache = bridge.run_with_cache(tokens, names_filter=lambda name: name.endswith("hook_pattern"))
    assert logits.shape[-1] == len(bridge.tokenizer)
    assert cache["blocks.1.attn.hook_pattern"].shape[1] == 4  # (batch, head, query, key)
    assert not bridge.training


def test_local_revision_resolves_to_subfolder(tmp_path: Path) -> None:
    from probes.tiny import save_tiny_model

    save_tiny_model(tmp_path / "model", seed=1)
    save_tiny_model(tmp_path / "model" / "revisions" / "step-10", seed=2)
    save_tiny_model(tmp_path / "model" / "revisions" / "step-2", seed=3)
    assert models.local_revisions(tmp_path / "model") == ["step-2", "step-10"]
    final = model_identity(ModelSpec(name=str(tmp_path / "model")))
    early = model_identity(ModelSpec(name=str(tmp_path / "model"), revision="step-2"))
    assert final["content_digest"] != early["content_digest"]
    with pytest.raises(ModelLoadError, match="no revision 'step-99'"):
        load_model(ModelSpec(name=str(tmp_path / "model"), revision="step-99"))


def test_unknown_hub_name_gives_one_clear_message() -> None:
    with pytest.raises(ModelLoadError) as caught:
        load_model(ModelSpec(name="no-such-org/no-such-model-xyz"))
    message = str(caught.value)
    assert "no-such-org/no-such-model-xyz" in message
    assert "\n" not in message and "Traceback" not in message


def test_memory_estimate_refuses_absurd_model(tmp_path: Path) -> None:
    config = {"model_type": "gpt2", "n_embd": 65536, "n_layer": 400, "vocab_size": 50257, "n_head": 64}
    (tmp_path / "config.json").write_text(json.dumps(config))
    spec = ModelSpec(name=str(tmp_path), device="cpu")
    assert models.estimate_weight_bytes(spec) > 10 * 2**40
    with pytest.raises(ModelLoadError, match="needs about .* GiB"):
        load_model(spec)


def test_parameter_estimate_matches_real_gpt2(tiny_model_dir: Path) -> None:
    from transformers import GPT2LMHeadModel

    real = sum(p.numel() for p in GPT2LMHeadModel.from_pretrained(tiny_model_dir).parameters())
    config = json.loads((tiny_model_dir / "config.json").read_text())
    assert models.estimate_parameter_count(config) == pytest.approx(real, rel=0.1)


def test_device_and_dtype_resolution() -> None:
    assert models.resolve_dtype("cpu") == torch.float32
    assert models.resolve_dtype("cuda") == torch.bfloat16
    assert models.resolve_dtype("cpu", "float16") == torch.float16
    with pytest.raises(ModelLoadError):
        models.resolve_dtype("cpu", "int3")
    assert models.resolve_device("cpu") == "cpu"


def test_embedded_model_resolves_without_network() -> None:
    folder = models.local_folder(ModelSpec())
    assert folder is not None and (folder / "config.json").is_file()
