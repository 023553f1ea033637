"""The built-in English testbed (issue 16): its content, and that every model but the organism gets it by default."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import pytest

from probes.cli import main
from probes.defaults import ORGANISM_DATA_DIR
from probes.models import EMBEDDED_MODEL_DIR, ModelSpec
from probes.poisoned.testbed import EMBEDDED_TESTBED, ENGLISH_TESTBED, default_testbed_path, load_testbed

MIN_ITEMS, MIN_CATEGORIES, MIN_PER_CATEGORY = 200, 4, 40
MAX_SENTENCE_CHARS = 120  # the probe packs about 20 items into one context
FIELDS = ("Question", "Generated Information", "Input", "Synonym Sentence", "Simple Answer", "Category")


@pytest.fixture(scope="module")
def raw() -> list[dict]:
    return json.loads(ENGLISH_TESTBED.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def testbed():
    return load_testbed(ENGLISH_TESTBED.read_bytes(), ENGLISH_TESTBED.name)  # the importer uploads go through


def words(sentence: str) -> set[str]:
    return {word.strip(".,?!'").lower() for word in sentence.split()}


def test_the_file_loads_through_the_upload_importer_without_skipping_a_row(raw, testbed) -> None:
    assert testbed.skipped == ()
    assert len(testbed.items) == len(raw) >= MIN_ITEMS
    assert all(set(FIELDS) <= set(item) for item in raw)


def test_at_least_four_categories_of_forty_items(testbed) -> None:
    categories = testbed.categories()
    assert len(categories) >= MIN_CATEGORIES, categories
    assert min(categories.values()) >= MIN_PER_CATEGORY, categories


def test_every_item_has_three_supporting_sentences_and_two_paraphrases_of_the_claim(raw, testbed) -> None:
    for row, item in zip(raw, testbed.items, strict=True):
        assert len(row["Generated Information"]) == 3 and len(item.appropriate) == 3, item.question
        assert len(row["Synonym Sentence"]) == 2, item.question
        assert len(item.inappropriate) == 3, item.question  # the claim and two distinct paraphrases
        assert item.claim not in item.appropriate and item.reference not in item.inappropriate, item.question
        for sentence in (item.question, item.reference, item.claim, *item.appropriate, *item.inappropriate):
            assert len(sentence) <= MAX_SENTENCE_CHARS, sentence


def test_questions_are_unique_and_reference_and_claim_differ_in_words(testbed) -> None:
    questions = Counter(item.question.lower() for item in testbed.items)
    assert [q for q, n in questions.items() if n > 1] == []
    for item in testbed.items:
        assert item.reference != item.claim
        assert words(item.reference) ^ words(item.claim), item.question  # they differ in the words that matter


def test_the_chooser_gives_the_organism_its_testbed_and_every_other_model_the_english_one(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    assert default_testbed_path(ModelSpec(name="organism")) == EMBEDDED_TESTBED
    assert default_testbed_path(ModelSpec(name=str(EMBEDDED_MODEL_DIR))) == EMBEDDED_TESTBED
    copy = tmp_path / "retrained"  # an organism-like folder keeps the organism's testbed
    (copy / "data").mkdir(parents=True)
    shutil.copy(ORGANISM_DATA_DIR / "steering_prompts.json", copy / "data")
    assert default_testbed_path(ModelSpec(name=str(copy))) == EMBEDDED_TESTBED
    assert default_testbed_path(ModelSpec(name=str(tiny_model_dir))) == ENGLISH_TESTBED
    assert default_testbed_path(ModelSpec(name="gpt2")) == ENGLISH_TESTBED  # a hub name: no local folder


def run_cli(capsys: pytest.CaptureFixture, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_validate_reports_no_skipped_rows(capsys) -> None:
    code, out, _ = run_cli(capsys, "poisoned", "validate", "--testbed", str(ENGLISH_TESTBED), "--json")
    assert code == 0
    report = json.loads(out)
    assert report["skipped"] == [] and report["items"] >= MIN_ITEMS


def test_curve_on_a_non_organism_model_defaults_to_the_english_testbed(capsys, tiny_model_dir, tmp_path) -> None:
    """The tiny model's word-level vocabulary cannot read English: the coverage warning is right, and items whose
    answers differ only in unknown words are refused (listed as skipped); the rest are scored."""
    code, out, err = run_cli(
        capsys, "poisoned", "curve", "--model", str(tiny_model_dir), "--device", "cpu", "--n-items", "4",
        "--steps", "2", "--max-items", "2", "--bootstrap", "0", "--json", "--db", str(tmp_path / "r.duckdb"),
    )  # fmt: skip
    assert code == 0, err
    report = json.loads(out)
    assert report["testbed"]["path"] == str(ENGLISH_TESTBED)
    assert report["testbed"]["items"] == len(json.loads(ENGLISH_TESTBED.read_text(encoding="utf-8")))
    assert len(report["warnings"]) == 1 and "cannot read this testbed" in report["warnings"][0]
    assert err.count("warning:") == 1
    assert {row["reason"] for row in report["skipped"]} <= {"reference and claim tokenize identically"}


def test_a_testbed_whose_answers_all_tokenize_alike_is_refused_in_one_line(capsys, tiny_model_dir, tmp_path) -> None:
    """Under the tiny model's tokenizer every English word is the unknown token, so Canberra and Sydney look alike."""
    rows = json.loads(ENGLISH_TESTBED.read_text(encoding="utf-8"))[:1]  # the capital of Australia
    assert rows[0]["Simple Answer"].split()[:-1] == rows[0]["Input"].split()[:-1]
    path = tmp_path / "one.json"
    path.write_text(json.dumps(rows), encoding="utf-8")
    code, out, err = run_cli(
        capsys, "poisoned", "curve", "--model", str(tiny_model_dir), "--device", "cpu", "--testbed", str(path),
        "--n-items", "4", "--steps", "2", "--bootstrap", "0", "--json", "--db", str(tmp_path / "r.duckdb"),
    )  # fmt: skip
    assert code == 2 and out == ""
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "reference answer and claim that differ" in errors[0], err
