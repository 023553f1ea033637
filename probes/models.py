"""The one place that loads language models.

Any Hugging Face causal LM (hub name or local folder) goes through TransformerLens 4's
`TransformerBridge.boot_transformers`; the embedded organism in `models/organism` takes exactly the same path.
Errors a user can cause (unknown name, no network, gated model, too little memory, remote code) raise
`ModelLoadError` with one clear sentence.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import socket
import threading
import weakref
from dataclasses import dataclass
from pathlib import Path

import torch

from probes.fairlock import FairRLock

REPO_ROOT = Path(__file__).resolve().parent.parent
EMBEDDED_MODEL_DIR = REPO_ROOT / "models" / "organism"
EMBEDDED_MODEL_NAME = "organism"  # short alias users can type instead of the folder path
PLACEHOLDER_MODEL_DIR = REPO_ROOT / ".assoclens" / "untrained-placeholder"  # used only while the organism is absent
LOCAL_REVISIONS_DIR = "revisions"  # a local folder's revision R lives in <folder>/revisions/<R>
TUNED_DIR_ENV = "ASSOCLENS_TUNED_DIR"  # where fine-tuned revisions of any model are saved (RW-Steering)
DEFAULT_TUNED_DIR = REPO_ROOT / ".assoclens" / "tuned"
MEMORY_HEADROOM = 1.3  # weights plus activations, optimizer-free inference
LEARNED_POSITIONS = {"gpt2", "gpt_neo", "opt", "gpt_bigcode"}  # architectures with a position-embedding table
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


class ModelLoadError(RuntimeError):
    """A model could not be loaded for a reason the user can act on."""


@dataclass(frozen=True)
class ModelSpec:
    """What to load: a Hugging Face name or local folder, plus where and how."""

    name: str = EMBEDDED_MODEL_NAME  # hub id ("EleutherAI/pythia-70m"), local path, or "organism"
    revision: str | None = None  # hub branch/tag/commit ("step1000"); for local folders a subfolder
    device: str = "auto"  # "auto" picks cuda, then mps, then cpu
    dtype: str = "auto"  # "auto": bfloat16 on GPU, float32 on CPU
    trust_remote_code: bool = False  # only when the user explicitly asks


def resolve_device(preference: str = "auto") -> str:
    if preference != "auto":
        return preference
    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def resolve_dtype(device: str, preference: str = "auto") -> torch.dtype:
    if preference == "auto":
        return torch.float32 if device == "cpu" else torch.bfloat16
    if preference not in DTYPES:
        raise ModelLoadError(f"Unknown dtype {preference!r}; choose one of {', '.join(DTYPES)}.")
    return DTYPES[preference]


def local_folder(spec: ModelSpec) -> Path | None:
    """The folder holding the weights when the spec names a local model or a fine-tuned revision saved here
    (revision applied), else None (a hub model, loaded by name and revision)."""
    tuned = tuned_folder(spec.name, spec.revision) if spec.revision else None
    if spec.name == EMBEDDED_MODEL_NAME:
        base = embedded_model_dir()
    else:
        base = Path(spec.name).expanduser()
        if not base.is_dir():
            if _looks_like_path(spec.name):
                raise ModelLoadError(f"No model folder at {base}: the folder does not exist.")
            return tuned
    if spec.revision:
        revision_dir = base / LOCAL_REVISIONS_DIR / spec.revision
        if revision_dir.is_dir():
            return revision_dir
        if tuned is not None:
            return tuned
        available = ", ".join(local_revisions(base) + tuned_revisions(spec.name)) or "none"
        raise ModelLoadError(f"Local model {base} has no revision {spec.revision!r} (available: {available}).")
    return base


def tuned_root() -> Path:
    """The folder of fine-tuned revisions: $ASSOCLENS_TUNED_DIR, or .assoclens/tuned in the repository."""
    return Path(os.environ.get(TUNED_DIR_ENV) or DEFAULT_TUNED_DIR).expanduser()


def tuned_base_dir(name: str) -> Path:
    """Where the fine-tuned revisions of model `name` live: <tuned root>/<a file-safe form of the name>."""
    if name == EMBEDDED_MODEL_NAME or not Path(name).expanduser().is_dir():
        slug = re.sub(r"[^A-Za-z0-9._-]+", "--", name).strip("-.") or "model"
    else:  # a local folder: its resolved path, so two folders of the same name never share revisions
        resolved = str(Path(name).expanduser().resolve())
        slug = f"local--{Path(resolved).name}--{hashlib.sha256(resolved.encode()).hexdigest()[:10]}"
    return tuned_root() / slug


def tuned_folder(name: str, revision: str) -> Path | None:
    """The saved fine-tuned revision `revision` of model `name`, or None."""
    if not revision or "/" in revision or revision.startswith("."):
        return None
    folder = tuned_base_dir(name) / LOCAL_REVISIONS_DIR / revision
    return folder if (folder / "config.json").is_file() else None


def tuned_revisions(name: str) -> list[str]:
    """Fine-tuned revisions saved for model `name` (RW-Steering), sorted by name."""
    return sorted(local_revisions(tuned_base_dir(name)), key=str)


def _looks_like_path(name: str) -> bool:
    """Hub ids are `org/name`; a name starting like a path (/, ./, ../, ~) is meant as a local folder."""
    return name.startswith(("/", "./", "../", "~", ".\\")) or name in {".", ".."}


def local_revisions(folder: Path) -> list[str]:
    """Revision names saved under a local model folder, sorted by the step number they contain."""
    revisions_dir = folder / LOCAL_REVISIONS_DIR
    if not revisions_dir.is_dir():
        return []
    names = [p.name for p in revisions_dir.iterdir() if not p.name.startswith(".") and (p / "config.json").is_file()]
    return sorted(names, key=_step_number)


def _step_number(name: str) -> tuple[int, str]:
    digits = re.findall(r"\d+", name)
    return (int(digits[-1]) if digits else -1, name)


def folder_digest(folder: Path) -> str:
    """sha256 over the names and bytes of a local model's weight, config and tokenizer files.

    Memoised on each file's size and modification time, so page reruns do not re-hash gigabytes of weights.
    """
    files = sorted(
        path
        for path in folder.iterdir()
        if path.is_file() and path.suffix in {".json", ".safetensors", ".bin", ".model", ".txt"}
    )
    return _digest_files(tuple((str(path), path.stat().st_size, path.stat().st_mtime_ns) for path in files))


@functools.lru_cache(maxsize=64)
def _digest_files(files: tuple[tuple[str, int, int], ...]) -> str:
    digest = hashlib.sha256()
    for path, _size, _mtime in files:
        digest.update(Path(path).name.encode())
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(2**20), b""):
                digest.update(block)
    return digest.hexdigest()


def model_identity(spec: ModelSpec) -> dict[str, str | None]:
    """What identifies the weights for the cache key: id, revision, and a content hash for local folders."""
    folder = local_folder(spec)
    model_id = spec.name if spec.name == EMBEDDED_MODEL_NAME or folder is None else str(Path(spec.name))
    return {
        "model_id": model_id,
        "revision": spec.revision,
        "content_digest": folder_digest(folder) if folder is not None else None,
    }


def _config_dict(spec: ModelSpec) -> dict:
    folder = local_folder(spec)
    if folder is not None:
        config_path = folder / "config.json"
        if not config_path.is_file():
            raise ModelLoadError(f"{folder} is not a model folder: it has no config.json.")
        try:
            return json.loads(config_path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise ModelLoadError(f"{config_path} is not valid JSON ({error.__class__.__name__}).") from None
    from transformers import AutoConfig

    if not _cached_on_disk(spec) and not hub_reachable():
        raise ModelLoadError(
            f"Could not reach the Hugging Face hub to fetch {spec.name} (no network?) and it is not cached locally."
        )
    try:
        config = AutoConfig.from_pretrained(spec.name, revision=spec.revision, trust_remote_code=spec.trust_remote_code)
    except Exception as error:  # transformers raises many types for the same user mistakes
        raise ModelLoadError(_explain_hub_error(spec, error)) from None
    return config.to_dict()


def _cached_on_disk(spec: ModelSpec) -> bool:
    from huggingface_hub import try_to_load_from_cache

    try:
        found = try_to_load_from_cache(spec.name, "config.json", revision=spec.revision)
    except Exception:
        return False
    return isinstance(found, str)


def hub_reachable(timeout_s: float = 3.0) -> bool:
    """One quick TCP connect, so a machine without network gets an answer in seconds, not after retries."""
    if os.environ.get("HF_HUB_OFFLINE") == "1":
        return False
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
    host = endpoint.split("://", 1)[-1].split("/", 1)[0]
    try:
        socket.create_connection((host, 443), timeout=timeout_s).close()
    except OSError:
        return False
    return True


def estimate_parameter_count(config: dict) -> int:
    """Parameters of a decoder-only transformer from its config (embeddings, attention, MLP)."""
    d_model = config.get("hidden_size") or config.get("n_embd") or config.get("d_model") or 0
    n_layers = config.get("num_hidden_layers") or config.get("n_layer") or config.get("num_layers") or 0
    vocab = config.get("vocab_size") or 0
    d_mlp = config.get("intermediate_size") or config.get("n_inner") or 4 * d_model
    mlp_matrices = 3 if config.get("model_type") in {"llama", "mistral", "qwen2", "qwen3", "gemma"} else 2
    per_layer = 4 * d_model * d_model + mlp_matrices * d_model * d_mlp
    tied = config.get("tie_word_embeddings", True)
    learned_positions = config.get("n_positions") or 0 if config.get("model_type") in LEARNED_POSITIONS else 0
    return n_layers * per_layer + vocab * d_model * (1 if tied else 2) + learned_positions * d_model


def estimate_weight_bytes(spec: ModelSpec) -> int:
    """Bytes the weights need at the dtype they will be loaded in."""
    device = resolve_device(spec.device)
    bytes_per_param = torch.tensor([], dtype=resolve_dtype(device, spec.dtype)).element_size()
    return estimate_parameter_count(_config_dict(spec)) * bytes_per_param


def available_memory_bytes(device: str) -> int:
    if device.startswith("cuda"):
        free, _total = torch.cuda.mem_get_info()
        return free * max(1, torch.cuda.device_count())
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")


def check_fits(spec: ModelSpec) -> None:
    """Refuse before loading when the weights (with headroom) exceed the free memory of the device."""
    device = resolve_device(spec.device)
    needed = estimate_weight_bytes(spec) * MEMORY_HEADROOM
    available = available_memory_bytes(device)
    if needed > available:
        raise ModelLoadError(
            f"{spec.name} needs about {needed / 2**30:.1f} GiB on {device} but only "
            f"{available / 2**30:.1f} GiB is free; pick a smaller model or another device."
        )


def _explain_hub_error(spec: ModelSpec, error: Exception) -> str:
    text = f"{type(error).__name__}: {error}"
    lowered = text.lower()
    if "trust_remote_code" in lowered or "remote code" in lowered:
        return f"{spec.name} needs custom code from its repository; turn on 'trust remote code' to allow it."
    if "gated" in lowered or "401" in lowered or "403" in lowered:
        return f"{spec.name} is gated or private; log in with a Hugging Face token that has access."
    if "revision" in lowered and spec.revision:
        return f"{spec.name} has no revision {spec.revision!r}."
    if any(word in lowered for word in ("connection", "offline", "resolve", "network", "timed out")):
        return f"Could not reach the Hugging Face hub to fetch {spec.name} (no network?) and it is not cached locally."
    if "not a valid model identifier" in lowered or "404" in lowered or "does not appear" in lowered:
        return f"No model named {spec.name!r} on the Hugging Face hub or on disk."
    first_line = text.splitlines()[0][:300]
    return f"Could not load {spec.name}: {first_line}"


def load_model(spec: ModelSpec):
    """Load a causal LM as a TransformerBridge on the resolved device and dtype, in eval mode."""
    from transformer_lens.model_bridge import TransformerBridge

    check_fits(spec)
    device = resolve_device(spec.device)
    dtype = resolve_dtype(device, spec.dtype)
    folder = local_folder(spec)
    if folder is not None and not any(folder.glob("*.safetensors")) and not any(folder.glob("*.bin")):
        raise ModelLoadError(f"{folder} has a config but no weight files (*.safetensors or *.bin).")
    placement = {"device_map": "auto"} if device == "cuda" and torch.cuda.device_count() > 1 else {"device": device}
    try:
        bridge = TransformerBridge.boot_transformers(
            str(folder) if folder is not None else spec.name,
            dtype=dtype,
            trust_remote_code=spec.trust_remote_code,
            revision=None if folder is not None else spec.revision,
            **placement,
        )
    except ModelLoadError:
        raise
    except Exception as error:
        raise ModelLoadError(_explain_hub_error(spec, error)) from None
    bridge.eval()
    return bridge


_MODEL_LOCKS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_MODEL_LOCKS_GUARD = threading.Lock()


def exclusive(model) -> FairRLock:
    """The lock a probe holds on a loaded model while it runs forward passes or has hooks attached.

    The dashboard shares one loaded model between all browser sessions. Hooks live on the model's modules, so a
    forward pass in another thread would run through them (a steering hook would steer another session's scan, a
    caching hook would record it). Every probe run on a shared model holds this lock, so its hooks are seen by its
    own forward passes only; two sessions on one model take turns, in the order they asked (`FairRLock`).
    Re-entrant: a probe that takes it inside a run that already holds it does not block itself.
    """
    with _MODEL_LOCKS_GUARD:
        lock = _MODEL_LOCKS.get(model)
        if lock is None:
            lock = _MODEL_LOCKS[model] = FairRLock()
        return lock


def load_tokenizer(spec: ModelSpec):
    """The model's tokenizer alone (no weights), for checks that run before or without a model load."""
    from transformers import AutoTokenizer

    return _from_pretrained(AutoTokenizer, spec)


def layer_count(spec: ModelSpec) -> int:
    """The model's number of transformer blocks, read from its config alone (no weights).

    Lets a probe resolve layer defaults before its run key is built, so a page and the CLI key the same run."""
    from transformers import AutoConfig

    return int(_from_pretrained(AutoConfig, spec).num_hidden_layers)


def _from_pretrained(loader, spec: ModelSpec):
    folder = local_folder(spec)
    try:
        return loader.from_pretrained(
            str(folder) if folder is not None else spec.name,
            revision=None if folder is not None else spec.revision,
            trust_remote_code=spec.trust_remote_code,
        )
    except Exception as error:  # transformers raises many types for the same user mistakes
        raise ModelLoadError(_explain_hub_error(spec, error)) from None


def embedded_model_dir() -> Path:
    """The trained organism's folder; until it exists, a tiny untrained stand-in created on first use."""
    if (EMBEDDED_MODEL_DIR / "config.json").is_file():
        return EMBEDDED_MODEL_DIR
    if not (PLACEHOLDER_MODEL_DIR / "config.json").is_file():
        from probes.tiny import save_tiny_model

        save_tiny_model(PLACEHOLDER_MODEL_DIR, note="UNTRAINED placeholder: random weights, not the organism")
    return PLACEHOLDER_MODEL_DIR


def describe(spec: ModelSpec) -> dict[str, str]:
    """Human-readable placement for the sidebar: resolved device and dtype."""
    device = resolve_device(spec.device)
    return {"device": device, "dtype": str(resolve_dtype(device, spec.dtype)).removeprefix("torch.")}
