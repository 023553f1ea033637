"""The model catalog: known hub models with their size, memory need, access and checkpoint revisions.

The data lives in `probes/data/catalog.json` (one line per model); this module loads and validates it, expands
revision rules (Pythia's 154 checkpoints) and does the memory arithmetic the sidebar shows before any download.
Memory is weights only times OVERHEAD: 4 bytes per parameter at float32, 2 at bfloat16/float16, then x1.3 for
activations and buffers of optimizer-free inference (the loader's own headroom, probes.models.MEMORY_HEADROOM,
so "fits" here agrees with the loader's refusal). Pure: no UI, no store; torch is imported only to ask a GPU.
"""

from __future__ import annotations

import functools
import json
import os
from dataclasses import dataclass
from pathlib import Path

CATALOG_PATH = Path(__file__).resolve().parent / "data" / "catalog.json"
OVERHEAD = 1.3  # activations and buffers on top of the weights; equal to probes.models.MEMORY_HEADROOM
BYTES_PER_PARAMETER = {"float32": 4, "bfloat16": 2, "float16": 2}
DTYPE_ALIASES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}
MODEL_KEYS = {"name", "family", "label", "parameters", "gated", "instruct", "revisions"}
RULE_KEYS = {"about", "prefix", "log2_until", "every", "until"}


class CatalogError(ValueError):
    """The catalog file is missing or malformed; the message names the file and the offending field."""


@dataclass(frozen=True)
class CatalogEntry:
    name: str  # exact hub id, e.g. "EleutherAI/pythia-70m"
    family: str  # e.g. "Pythia"
    label: str  # short human name, e.g. "Pythia 70M"
    parameters: int  # published total parameter count
    gated: bool  # the hub asks to accept a licence / share contact details first
    instruct: bool  # instruction-tuned (chat) rather than a base model
    revisions: tuple[str, ...] = ()  # hub branches with training checkpoints, in training order
    sweep_revisions: tuple[str, ...] = ()  # the default subset for the checkpoint sweep

    @property
    def has_revisions(self) -> bool:
        return bool(self.revisions)


def rule_revisions(rule: dict) -> tuple[list[str], list[str]]:
    """(all, default subset) of a 'log2 then linear' rule: step0, step1, step2, step4 ... step<log2_until>, then
    every `every` steps up to `until`. The subset keeps the log-spaced start, the doublings of `every`
    (1000, 2000, 4000, ...) and the last checkpoint."""
    prefix, log_until, every, until = rule["prefix"], rule["log2_until"], rule["every"], rule["until"]
    log_part = [0] + [2**k for k in range(log_until.bit_length()) if 2**k <= log_until]
    linear = list(range(every, until + 1, every))
    doublings = [every * 2**k for k in range(until.bit_length()) if every * 2**k <= until]
    subset = log_part + doublings + ([until] if until not in doublings else [])
    return [f"{prefix}{step}" for step in log_part + linear], [f"{prefix}{step}" for step in subset]


def _fail(path: Path, where: str, problem: str) -> None:
    raise CatalogError(f"Model catalog {path} is malformed: {where} {problem}.")


def _check_rule(path: Path, name: str, rule: object) -> None:
    where = f"revision_rules[{name!r}]"
    if not isinstance(rule, dict):
        _fail(path, where, "must be an object")
    if unknown := set(rule) - RULE_KEYS:
        _fail(path, where, f"has unknown keys {sorted(unknown)}")
    if not isinstance(rule.get("prefix"), str):
        _fail(path, where + ".prefix", "must be a string")
    for key in ("log2_until", "every", "until"):
        value = rule.get(key)
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            _fail(path, f"{where}.{key}", "must be a positive integer")
    if rule["log2_until"] & (rule["log2_until"] - 1):
        _fail(path, where + ".log2_until", "must be a power of two")
    if not rule["log2_until"] < rule["every"] <= rule["until"] or rule["until"] % rule["every"]:
        _fail(path, where, "needs log2_until < every <= until, with until a multiple of every")


def _entry(path: Path, index: int, raw: object, rules: dict) -> CatalogEntry:
    where = f"models[{index}]"
    if not isinstance(raw, dict):
        _fail(path, where, "must be an object")
    if isinstance(raw.get("name"), str):
        where += f" ({raw['name']})"
    if missing := {"name", "family", "parameters", "gated", "instruct"} - set(raw):
        _fail(path, where, f"lacks {', '.join(sorted(missing))}")
    if unknown := set(raw) - MODEL_KEYS:
        _fail(path, where, f"has unknown keys {sorted(unknown)}")
    for key in ("name", "family", "label"):
        if key in raw and (not isinstance(raw[key], str) or not raw[key].strip()):
            _fail(path, f"{where}.{key}", "must be a non-empty string")
    parameters = raw["parameters"]
    if not isinstance(parameters, int) or isinstance(parameters, bool) or parameters <= 0:
        _fail(path, f"{where}.parameters", "must be a positive integer (the parameter count)")
    for key in ("gated", "instruct"):
        if not isinstance(raw[key], bool):
            _fail(path, f"{where}.{key}", "must be true or false")
    revisions = raw.get("revisions", [])
    if isinstance(revisions, str):
        if revisions not in rules:
            _fail(path, f"{where}.revisions", f"names no rule in revision_rules ({revisions!r})")
        full, subset = rule_revisions(rules[revisions])
    elif isinstance(revisions, list) and all(isinstance(r, str) and r.strip() for r in revisions):
        if len(set(revisions)) != len(revisions):
            _fail(path, f"{where}.revisions", "lists a revision twice")
        full, subset = list(revisions), list(revisions)
    else:
        _fail(path, f"{where}.revisions", "must be a list of branch names or the name of a revision rule")
    return CatalogEntry(
        name=raw["name"].strip(), family=raw["family"], label=raw.get("label", raw["name"]), parameters=parameters,
        gated=raw["gated"], instruct=raw["instruct"], revisions=tuple(full), sweep_revisions=tuple(subset),
    )  # fmt: skip


def load(path: Path | str = CATALOG_PATH) -> tuple[CatalogEntry, ...]:
    """Read and validate a catalog file; any problem raises one CatalogError naming the file and the field."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise CatalogError(f"Model catalog {path} cannot be read: {error.strerror or error}.") from None
    except ValueError as error:
        raise CatalogError(f"Model catalog {path} is not valid JSON: {error}.") from None
    if not isinstance(data, dict) or not isinstance(data.get("models"), list):
        _fail(path, "the top level", "must be an object with a 'models' list")
    rules = data.get("revision_rules", {})
    if not isinstance(rules, dict):
        _fail(path, "revision_rules", "must be an object")
    for name, rule in rules.items():
        _check_rule(path, name, rule)
    found = [_entry(path, index, raw, rules) for index, raw in enumerate(data["models"])]
    seen: set[str] = set()
    for entry in found:
        if entry.name.lower() in seen:
            _fail(path, "models", f"list {entry.name} twice")
        seen.add(entry.name.lower())
    return tuple(found)


@functools.cache
def _catalog() -> tuple[CatalogEntry, ...]:
    return load(CATALOG_PATH)


def entries() -> tuple[CatalogEntry, ...]:
    """Every catalog model, grouped by family in file order."""
    return _catalog()


def families() -> list[str]:
    return list(dict.fromkeys(entry.family for entry in entries()))


def find(name: str | None) -> CatalogEntry | None:
    """The catalog entry for a hub name (case-insensitive, surrounding spaces and slashes ignored), else None."""
    if not name:
        return None
    wanted = name.strip().strip("/").lower()
    return next((entry for entry in entries() if entry.name.lower() == wanted), None)


def _dtype(dtype: str) -> str:
    name = str(dtype).removeprefix("torch.")
    name = DTYPE_ALIASES.get(name, name)
    if name not in BYTES_PER_PARAMETER:
        raise ValueError(f"Unknown dtype {dtype!r}; choose one of {', '.join(BYTES_PER_PARAMETER)}.")
    return name


def memory_bytes(entry: CatalogEntry, dtype: str) -> int:
    """Memory to run the model at `dtype` ('float32'/'fp32', 'bfloat16'/'bf16', 'float16'/'fp16'): parameter
    count x bytes per parameter x OVERHEAD (activations and buffers)."""
    return int(entry.parameters * BYTES_PER_PARAMETER[_dtype(dtype)] * OVERHEAD)


def fits(entry: CatalogEntry, dtype: str, available_bytes: int) -> bool:
    return memory_bytes(entry, dtype) <= available_bytes


def _system_available() -> int:
    try:
        import psutil  # installed with accelerate; optional here
    except ImportError:
        pass
    else:
        return int(psutil.virtual_memory().available)
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")


def available_memory(device: str = "auto") -> int:
    """Free bytes where a model on `device` would live: free GPU memory (summed over the visible GPUs, which the
    loader spreads a model across) for 'cuda' or for 'auto' when CUDA is available; else available system RAM
    (also what Apple's MPS shares)."""
    if device == "auto" or device.startswith("cuda"):
        import torch

        if torch.cuda.is_available():
            if ":" in device:
                return int(torch.cuda.mem_get_info(int(device.split(":", 1)[1]))[0])
            return int(sum(torch.cuda.mem_get_info(index)[0] for index in range(torch.cuda.device_count())))
    return _system_available()


def format_count(parameters: int) -> str:
    """124439808 -> '124M', 1414647808 -> '1.41B'."""
    return f"{parameters / 1e9:.3g}B" if parameters >= 1e9 else f"{parameters / 1e6:.3g}M"


def format_gib(size: float) -> str:
    return f"{size / 2**30:.1f} GiB"
