"""The model catalog (probes/data/catalog.json): schema, families and sizes, Pythia's checkpoints, memory math."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import pytest

from probes import catalog
from probes.induction import sweep

GIB = 2**30
PYTHIA_STEPS = [0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512] + list(range(1000, 143001, 1000))  # its published names
REQUIRED = {
    "GPT-2": ["openai-community/gpt2", "openai-community/gpt2-medium", "openai-community/gpt2-large",
              "openai-community/gpt2-xl"],
    "Pythia": [f"EleutherAI/pythia-{size}" for size in ("70m", "160m", "410m", "1b", "1.4b", "2.8b", "6.9b", "12b")],
    "Llama 3": ["meta-llama/Llama-3.2-1B", "meta-llama/Llama-3.2-1B-Instruct", "meta-llama/Llama-3.2-3B",
                "meta-llama/Llama-3.2-3B-Instruct", "meta-llama/Llama-3.1-8B", "meta-llama/Llama-3.1-8B-Instruct"],
    "Qwen2.5": [f"Qwen/Qwen2.5-{size}{kind}" for size in ("0.5B", "1.5B", "3B", "7B") for kind in ("", "-Instruct")],
    "Gemma 2": ["google/gemma-2-2b", "google/gemma-2-2b-it", "google/gemma-2-9b", "google/gemma-2-9b-it"],
    "Mistral": ["mistralai/Mistral-7B-v0.1", "mistralai/Mistral-7B-Instruct-v0.3"],
    "OLMo 2": ["allenai/OLMo-2-1124-7B", "allenai/OLMo-2-1124-7B-Instruct"],
}  # fmt: skip
PUBLISHED = {  # parameter counts from the model cards / papers
    "openai-community/gpt2": 124_439_808, "openai-community/gpt2-xl": 1_557_611_200,
    "EleutherAI/pythia-70m": 70_426_624, "EleutherAI/pythia-12b": 11_846_072_320,
    "meta-llama/Llama-3.1-8B": 8_030_261_248, "Qwen/Qwen2.5-0.5B": 494_032_768, "google/gemma-2-2b": 2_614_341_888,
    "mistralai/Mistral-7B-v0.1": 7_241_732_096,
}  # fmt: skip


def write_catalog(tmp_path: Path, models: list, rules: dict | None = None) -> Path:
    path = tmp_path / "catalog.json"
    path.write_text(json.dumps({"revision_rules": rules or {}, "models": models}))
    return path


GOOD = {"name": "org/model", "family": "F", "parameters": 1000, "gated": False, "instruct": False}


def test_the_catalog_file_is_small_and_valid() -> None:
    assert catalog.CATALOG_PATH.stat().st_size < 20_000
    loaded = catalog.load()
    assert loaded == catalog.entries() and len(loaded) >= 30
    entry = loaded[0]
    assert isinstance(entry, catalog.CatalogEntry)
    with pytest.raises(dataclasses.FrozenInstanceError):
        entry.name = "changed"  # type: ignore[misc]
    for entry in loaded:
        assert entry.parameters > 0 and entry.family and entry.label and "/" in entry.name
        assert isinstance(entry.gated, bool) and isinstance(entry.instruct, bool)
        assert set(entry.sweep_revisions) <= set(entry.revisions)


def test_required_families_and_sizes_are_present() -> None:
    names = {entry.name: entry for entry in catalog.entries()}
    for family, wanted in REQUIRED.items():
        for name in wanted:
            assert name in names, name
            assert names[name].family == family
    assert set(REQUIRED) <= set(catalog.families())
    for name, count in PUBLISHED.items():
        assert names[name].parameters == count, name
    sizes = [names[name].parameters for name in REQUIRED["Pythia"]]
    assert sizes == sorted(sizes)


def test_gated_and_instruct_flags() -> None:
    for entry in catalog.entries():
        gated_family = entry.family in {"Llama 3", "Gemma 2", "Mistral"}
        assert entry.gated == gated_family, entry.name
        tuned = any(mark in entry.name for mark in ("-Instruct", "-it"))
        assert entry.instruct == tuned, entry.name


def test_pythia_has_its_154_checkpoints_log_spaced_then_every_1000() -> None:
    for size in ("70m", "1.4b", "12b", "70m-deduped"):
        entry = catalog.find(f"EleutherAI/pythia-{size}")
        assert entry is not None and entry.has_revisions
        assert len(entry.revisions) == 154
        assert entry.revisions[:12] == tuple(f"step{n}" for n in (0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1000))
        assert entry.revisions[11:] == tuple(f"step{n}" for n in range(1000, 143001, 1000))
        assert entry.revisions[0] == "step0" and entry.revisions[-1] == "step143000"
        assert list(entry.revisions) == [f"step{n}" for n in PYTHIA_STEPS]
    assert not catalog.find("openai-community/gpt2").revisions


def test_the_sweep_uses_the_catalog_for_catalog_models() -> None:
    pythia = catalog.find("EleutherAI/pythia-70m")
    subset = sweep.default_revisions("EleutherAI/pythia-70m")
    assert subset == list(pythia.sweep_revisions)
    assert subset[:11] == list(pythia.revisions[:11])  # the whole log-spaced start
    assert subset[11:] == [f"step{n}" for n in (1000, 2000, 4000, 8000, 16000, 32000, 64000, 128000, 143000)]
    assert sweep.catalog_revisions("EleutherAI/pythia-70m") == list(pythia.revisions)
    assert sweep.default_revisions("Qwen/Qwen2.5-0.5B") == [None]  # in the catalog, no checkpoints listed
    assert sweep.default_revisions("someone/unknown-model") == [None]
    assert sweep.catalog_revisions("someone/unknown-model") == []


def test_memory_math() -> None:
    entry = catalog.find("EleutherAI/pythia-1b")
    assert catalog.OVERHEAD == 1.3
    assert catalog.memory_bytes(entry, "float32") == int(entry.parameters * 4 * 1.3)
    assert catalog.memory_bytes(entry, "bfloat16") == int(entry.parameters * 2 * 1.3)
    assert catalog.memory_bytes(entry, "fp32") == catalog.memory_bytes(entry, "torch.float32")
    assert catalog.memory_bytes(entry, "bf16") == catalog.memory_bytes(entry, "float16")
    with pytest.raises(ValueError, match="int8"):
        catalog.memory_bytes(entry, "int8")
    assert catalog.format_count(entry.parameters) == "1.01B"
    assert catalog.format_count(catalog.find("openai-community/gpt2").parameters) == "124M"
    assert catalog.format_gib(3 * GIB) == "3.0 GiB"


def test_overhead_matches_the_loaders_headroom() -> None:
    from probes.models import MEMORY_HEADROOM

    assert catalog.OVERHEAD == MEMORY_HEADROOM


def test_fits_against_a_fake_available_memory() -> None:
    entry = catalog.find("meta-llama/Llama-3.1-8B")  # ~38.9 GiB at fp32, ~19.4 GiB at bf16
    assert not catalog.fits(entry, "float32", 24 * GIB)
    assert catalog.fits(entry, "bfloat16", 24 * GIB)
    assert not catalog.fits(entry, "bfloat16", 16 * GIB)
    needed = catalog.memory_bytes(entry, "bfloat16")
    assert catalog.fits(entry, "bf16", needed) and not catalog.fits(entry, "bf16", needed - 1)


def test_find() -> None:
    assert catalog.find("EleutherAI/pythia-70m").label == "Pythia 70M"
    assert catalog.find(" eleutherai/Pythia-70M ").name == "EleutherAI/pythia-70m"
    assert catalog.find("no-such/model") is None
    assert catalog.find("") is None and catalog.find(None) is None


def test_available_memory_reads_this_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    free = catalog.available_memory("cpu")
    assert 0 < free < 2**50
    monkeypatch.setitem(sys.modules, "psutil", None)  # without psutil: /proc/meminfo (or sysconf)
    assert catalog.available_memory("cpu") > 0


@pytest.mark.parametrize(
    ("models", "rules", "expected"),
    [
        ([{**GOOD, "parameters": "1B"}], None, r"models\[0\] \(org/model\)\.parameters must be a positive integer"),
        ([{**GOOD, "parameters": True}], None, r"parameters must be a positive integer"),
        ([{k: v for k, v in GOOD.items() if k != "gated"}], None, r"models\[0\] \(org/model\) lacks gated"),
        ([{**GOOD, "gatd": True}], None, r"unknown keys \['gatd'\]"),
        ([{**GOOD, "instruct": "yes"}], None, r"instruct must be true or false"),
        ([{**GOOD, "revisions": "pythia"}], None, r"revisions names no rule"),
        ([{**GOOD, "revisions": ["a", "a"]}], None, r"lists a revision twice"),
        ([{**GOOD, "revisions": 3}], None, r"revisions must be a list"),
        ([GOOD, GOOD], None, r"list org/model twice"),
        ([GOOD], {"r": {"prefix": "step", "log2_until": 500, "every": 1000, "until": 2000}}, r"power of two"),
        ([GOOD], {"r": {"prefix": "step", "log2_until": 512, "every": 1000, "until": 1500}}, r"multiple of every"),
        (["a model"], None, r"models\[0\] must be an object"),
    ],
)
def test_a_malformed_catalog_gives_one_clear_error(tmp_path: Path, models: list, rules, expected: str) -> None:
    path = write_catalog(tmp_path, models, rules)
    with pytest.raises(catalog.CatalogError, match=expected) as raised:
        catalog.load(path)
    message = str(raised.value)
    assert message.startswith(f"Model catalog {path} is malformed:") and "\n" not in message


def test_unreadable_or_invalid_json_catalog(tmp_path: Path) -> None:
    with pytest.raises(catalog.CatalogError, match="cannot be read"):
        catalog.load(tmp_path / "missing.json")
    broken = tmp_path / "broken.json"
    broken.write_text('{"models": [')
    with pytest.raises(catalog.CatalogError, match="is not valid JSON"):
        catalog.load(broken)
    broken.write_text("[]")
    with pytest.raises(catalog.CatalogError, match="'models' list"):
        catalog.load(broken)


def test_a_rule_in_a_custom_catalog_expands() -> None:
    full, subset = catalog.rule_revisions({"prefix": "ckpt-", "log2_until": 4, "every": 10, "until": 50})
    assert full == ["ckpt-0", "ckpt-1", "ckpt-2", "ckpt-4", "ckpt-10", "ckpt-20", "ckpt-30", "ckpt-40", "ckpt-50"]
    assert subset == ["ckpt-0", "ckpt-1", "ckpt-2", "ckpt-4", "ckpt-10", "ckpt-20", "ckpt-40", "ckpt-50"]
