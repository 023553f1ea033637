"""The benchmark models: the embedded organism and random-initialised configurations, all loaded through
`probes.models.load_model` so they take exactly the path any Hugging Face model takes.

- `organism`: the embedded model (`models/organism`, or its untrained placeholder until it exists).
- `gpt2-small`: a random-initialised GPT-2-small-sized config (12 layers, 12 heads, d_model 768, vocab 50257).
- `llama-1b`: a random-initialised Llama-style config with about 1.06B parameters (CUDA only by default, bf16).

Random models are written once (config, safetensors, word-level tokenizer) under `.assoclens/bench-models/`
in a folder named after a digest of their config, so a changed config rebuilds and an unchanged one is reused.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch

from cache.keys import digest_json
from probes.models import EMBEDDED_MODEL_NAME, REPO_ROOT, ModelSpec, load_model, resolve_device

BENCH_MODELS_DIR = REPO_ROOT / ".assoclens" / "bench-models"
TOKENIZER_WORDS = 1000  # word-level vocabulary of the random models' tokenizer (ids < vocab_size)
SEED = 0

# label -> (architecture, config keyword arguments); the tokenizer's special-token ids are added when building
RANDOM_CONFIGS: dict[str, tuple[str, dict]] = {
    "gpt2-small": ("gpt2", dict(n_layer=12, n_head=12, n_embd=768, n_positions=1024, vocab_size=50257)),
    "llama-1b": (
        "llama",
        dict(
            hidden_size=2048,
            intermediate_size=5632,
            num_hidden_layers=18,
            num_attention_heads=16,
            num_key_value_heads=16,
            max_position_embeddings=2048,
            vocab_size=32000,
            tie_word_embeddings=False,
        ),
    ),
}
CUDA_ONLY = {"llama-1b"}  # ~4 GiB of float32 weights: too slow to be useful on a 2-core CPU
LABELS = (EMBEDDED_MODEL_NAME, *RANDOM_CONFIGS)


def default_labels(device: str, quick: bool = False) -> list[str]:
    """The models a run covers by default on `device`.

    Full run: the organism and GPT-2-small everywhere, plus the 1B model on CUDA. Quick run: the organism only on
    CPU (a 124M model's probe cases alone take minutes on 2 cores), the organism and GPT-2-small on CUDA.
    """
    cuda = device.startswith("cuda")
    if quick:
        return [EMBEDDED_MODEL_NAME, "gpt2-small"] if cuda else [EMBEDDED_MODEL_NAME]
    return [label for label in LABELS if cuda or label not in CUDA_ONLY]


def folder_for(label: str) -> Path:
    architecture, kwargs = RANDOM_CONFIGS[label]
    digest = digest_json({"architecture": architecture, "config": kwargs, "words": TOKENIZER_WORDS, "seed": SEED})
    return BENCH_MODELS_DIR / f"{label}-{digest[:10]}"


def spec_for(label: str, device: str = "auto", dtype: str = "auto") -> ModelSpec:
    """The ModelSpec a benchmark label stands for (the folder may not be built yet; see `prepare`)."""
    if label == EMBEDDED_MODEL_NAME:
        return ModelSpec(name=EMBEDDED_MODEL_NAME, device=device, dtype=dtype)
    if label not in RANDOM_CONFIGS:
        raise ValueError(f"Unknown benchmark model {label!r}; choose from {', '.join(LABELS)}.")
    return ModelSpec(name=str(folder_for(label)), device=device, dtype=dtype)


def prepare(label: str, device: str = "auto", dtype: str = "auto") -> ModelSpec:
    """Build the model folder if it is missing, and return its spec."""
    spec = spec_for(label, device, dtype)
    if label in RANDOM_CONFIGS and not (folder_for(label) / "config.json").is_file():
        build_random_model(label, folder_for(label), device=resolve_device(device))
    return spec


def load(label: str, device: str = "auto", dtype: str = "auto"):
    """(loaded TransformerBridge, its ModelSpec) for a benchmark label."""
    spec = prepare(label, device, dtype)
    return load_model(spec), spec


def build_random_model(label: str, folder: Path, device: str = "cpu") -> Path:
    """Write a random-initialised model (safetensors, config, word-level tokenizer) to `folder`, atomically."""
    from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

    from probes.tiny import default_words, word_level_tokenizer

    architecture, kwargs = RANDOM_CONFIGS[label]
    builders: dict[str, tuple[type, type]] = {
        "gpt2": (GPT2Config, GPT2LMHeadModel),
        "llama": (LlamaConfig, LlamaForCausalLM),
    }
    config_class, model_class = builders[architecture]
    tokenizer = word_level_tokenizer(default_words(TOKENIZER_WORDS))
    config = config_class(
        **kwargs,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    # bf16 weights for the 1B model (what a GPU run uses anyway, half the disk); float32 for the small ones
    dtype = torch.bfloat16 if label in CUDA_ONLY else torch.float32
    staging = folder.with_name(folder.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    torch.manual_seed(SEED)
    with torch.device(device if device.startswith("cuda") else "cpu"):  # initialising 1B params on GPU is fast
        model = model_class._from_config(config, dtype=dtype)
    model.save_pretrained(staging)
    tokenizer.save_pretrained(staging)
    parameters = sum(p.numel() for p in model.parameters())
    (staging / "assoclens.json").write_text(
        json.dumps({"note": f"random-initialised benchmark model {label}", "trained": False, "parameters": parameters})
    )
    del model
    shutil.rmtree(folder, ignore_errors=True)
    staging.rename(folder)
    return folder


def parameter_count(model) -> int:
    return sum(p.numel() for p in model.parameters())


def describe_model(model, spec: ModelSpec) -> dict:
    """Facts about a loaded benchmark model for the report."""
    first = next(model.parameters())
    return {
        "name": spec.name if spec.name == EMBEDDED_MODEL_NAME else Path(spec.name).name,
        "parameters": parameter_count(model),
        "device": str(first.device),
        "dtype": str(first.dtype).removeprefix("torch."),
        "n_layers": getattr(model.cfg, "n_layers", None),
        "d_model": getattr(model.cfg, "d_model", None),
    }
