"""English defaults (probes/data/english/): the steering prompt sets every non-organism model gets, and the induction
page's default text. Schema, counts, uniqueness, the chooser, the CLI and the steering page on the tiny model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from probes.cli import main
from probes.defaults import ENGLISH_DATA_DIR, ORGANISM_DATA_DIR
from probes.models import EMBEDDED_MODEL_DIR, ModelSpec
from probes.steering.prompts import (
    ORGANISM_ASSOCIATIVE_SETS,
    default_prompt_sets,
    default_sets_kind,
    english_prompt_sets,
    organism_prompt_sets,
    parse_prompt_sets,
)

PROMPTS_FILE = ENGLISH_DATA_DIR / "steering_prompts.json"
INDUCTION_FILE = ENGLISH_DATA_DIR / "induction_text.txt"
ORGANISM_PRESENT = (ORGANISM_DATA_DIR / "steering_prompts.json").is_file()


@pytest.fixture(scope="module")
def data() -> dict:
    return json.loads(PROMPTS_FILE.read_text(encoding="utf-8"))


def test_the_file_parses_like_an_upload() -> None:
    uploaded = parse_prompt_sets(PROMPTS_FILE.read_text(encoding="utf-8"), source="the English defaults")
    assert uploaded == english_prompt_sets("dream")
    assert uploaded.facts and uploaded.associative_words


def test_counts_domains_and_vocabulary(data: dict) -> None:
    sets = english_prompt_sets("dream")
    assert len(sets.faithful) >= 150 and len(sets.facts) == len(sets.faithful)
    assert [f.prompt for f in sets.facts] == list(sets.faithful)
    assert len(sets.associative) >= 150
    assert len(english_prompt_sets("hallucination").associative) >= 150
    both = english_prompt_sets("dream+hallucination")
    assert len(both.associative) == len(data["associative"]) + len(data["hallucination"])
    domains = {item["domain"] for item in data["faithful"]}
    assert len(domains) >= 6, domains
    assert {"geography", "chemistry", "astronomy", "biology", "history", "literature"} <= domains
    assert len(set(sets.associative_words)) >= 60
    assert len(data["associative"]) == len(data["faithful"])  # the dream set retells the facts, in order


def test_no_duplicates_and_short_answers(data: dict) -> None:
    prompts = [item["prompt"] for key in ("faithful", "associative", "hallucination") for item in data[key]]
    assert len(prompts) == len(set(prompts))
    assert all(prompt == prompt.strip() and prompt for prompt in prompts)
    for item in data["faithful"]:
        assert 1 <= len(item["answer"].split()) <= 3, item
        assert item["answer"].lower() not in item["prompt"].lower().split(), item  # the answer is not given away
    vocabulary = data["associative_vocabulary"]
    assert len(vocabulary) == len(set(vocabulary)) and all(w == w.strip().lower() for w in vocabulary)


def test_dream_prompts_are_in_the_dream_register(data: dict) -> None:
    for faithful, dream in zip(data["faithful"], data["associative"], strict=True):
        assert "dream" in dream["prompt"].lower() and "dream" not in faithful["prompt"].lower()
        assert dream["domain"] == faithful["domain"]


def test_induction_text_repeats_a_phrase() -> None:
    text = INDUCTION_FILE.read_text(encoding="utf-8")
    sentences = [s for s in text.replace("\n", " ").split(". ") if s.strip()]
    assert 2 <= len(sentences) <= 4
    words = text.split()
    repeated = {tuple(words[i : i + 8]) for i in range(len(words) - 7)}
    assert any(text.count(" ".join(gram)) >= 2 for gram in repeated)


def test_chooser_gives_english_to_the_tiny_model(tiny_model_dir: Path) -> None:
    spec = ModelSpec(name=str(tiny_model_dir))
    assert default_sets_kind(spec) == "english"
    for name in ORGANISM_ASSOCIATIVE_SETS:
        assert default_prompt_sets(spec, name) == english_prompt_sets(name)
    assert default_prompt_sets(spec).source == "the English defaults"
    assert default_sets_kind(ModelSpec(name="gpt2")) == "english"  # a hub name: no local folder


@pytest.mark.skipif(not ORGANISM_PRESENT, reason="the trained organism is absent")
def test_chooser_keeps_the_organism_on_its_own_sets() -> None:
    for spec in (ModelSpec(name="organism"), ModelSpec(name=str(EMBEDDED_MODEL_DIR))):
        assert default_sets_kind(spec) == "organism"
        sets = default_prompt_sets(spec, "dream")
        assert sets == organism_prompt_sets("dream") and sets.source == "the embedded organism"
        assert sets.faithful[0].startswith("fact:")


def test_english_sets_run_on_the_tiny_model(tiny_model) -> None:
    """Mostly unknown words on the tiny model's vocabulary: the run completes or fails with one clear message."""
    from probes.steering import SweepConfig, VectorConfig, build_vectors, run_sweep

    sets = english_prompt_sets("dream")
    cfg = VectorConfig(layers=(1,)).resolved(tiny_model.cfg.n_layers)
    try:
        built = build_vectors(tiny_model, cfg, sets)
    except ValueError as error:  # the centroid unit may be undefined on a random model
        assert "strength unit" in str(error) or "same output residual" in str(error), error
        return
    sweep = run_sweep(tiny_model, SweepConfig(strengths=(0.0, 2.0), n_facts=4, max_new_tokens=3), built.vectors, sets)
    assert len(sweep.rows) == 4 and sweep.warnings  # FlexAC and random at two strengths; a coverage warning


def test_cli_vectors_use_the_english_defaults(capsys, tiny_model_dir: Path, tmp_path: Path) -> None:
    argv = ["steering", "vectors", "--model", str(tiny_model_dir), "--device", "cpu", "--json",
            "--db", str(tmp_path / "results.duckdb")]  # fmt: skip
    code = main(argv)
    captured = capsys.readouterr()
    if code == 2:  # a user error (e.g. the centroid unit undefined on a random model): one line, no traceback
        assert captured.err.strip().splitlines()[-1].startswith("error:"), captured.err
        pytest.fail(f"the English defaults did not build on the tiny model: {captured.err}")
    assert code == 0, captured.err
    out = json.loads(captured.out)
    assert out["prompt_sets"] == "english"
    assert out["layers"]


def test_steering_page_names_the_english_defaults(tiny_model_dir: Path, store_path) -> None:
    from tests.pages.test_steering_page import open_page

    at = open_page(tiny_model_dir, steering_sweep="0,2", steering_n_facts=4, steering_tokens=3)
    assert not at.exception, at.exception
    dream, hallucination = english_prompt_sets("dream"), english_prompt_sets("hallucination")
    radio = at.radio(key="steering_sets_source")
    label = f"English defaults: {len(dream.faithful)} faithful / {len(dream.associative)} associative prompts"
    assert radio.options[0] == label, radio.options
    assert radio.options[1] == "Paste or upload"
    assert any("from the English defaults" in caption.value for caption in at.caption)
    errors = [e.value for e in at.error]
    assert len(errors) <= 1, errors  # at most one clear message (e.g. an undefined strength unit), no traceback
    at.selectbox(key="steering_associative_set").set_value("hallucination").run()
    assert not at.exception, at.exception
    label = f"{len(hallucination.faithful)} faithful / {len(hallucination.associative)} associative prompts"
    assert at.radio(key="steering_sets_source").options[0].endswith(label)


def test_induction_page_defaults_to_the_english_text(tiny_model_dir: Path, store_path) -> None:
    from tests.pages.test_induction_page import open_page

    at = open_page(tiny_model_dir, induction_seq_len=6, induction_n_seqs=1)
    assert not at.exception, at.exception
    expected = " ".join(INDUCTION_FILE.read_text(encoding="utf-8").split())
    assert at.text_area(key="induction_text").value == expected
