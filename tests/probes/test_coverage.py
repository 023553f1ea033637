"""The share of an input's words the model's tokenizer can read (probes/coverage.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from transformers import AutoTokenizer

from probes import coverage
from probes.models import EMBEDDED_MODEL_DIR
from probes.poisoned.testbed import load_testbed_file

SHARED_POOL = Path(__file__).resolve().parents[3] / "shared" / "data" / "rw-testbed" / "fakenews_output.json"


@pytest.fixture(scope="module")
def organism_tokenizer():
    return AutoTokenizer.from_pretrained(EMBEDDED_MODEL_DIR)


def texts_of_testbed(path: Path) -> list[str]:
    items = load_testbed_file(path).items
    return [text for item in items for text in (item.question, item.reference, item.claim, *item.appropriate)]


def test_the_organisms_own_testbed_is_fully_readable(organism_tokenizer) -> None:
    found = coverage.measure(organism_tokenizer, texts_of_testbed(EMBEDDED_MODEL_DIR / "data" / "testbed.json"))
    assert found.share_known >= 0.95
    assert found.warnings("this testbed") == []


def test_english_the_organism_never_saw_is_flagged(organism_tokenizer) -> None:
    found = coverage.measure(organism_tokenizer, ["Photosynthesis converts sunlight into chemical energy quickly."])
    assert found.share_known < 0.5
    assert "Photosynthesis" in found.unknown_examples
    (warning,) = found.warnings("this testbed")
    assert "cannot read this testbed" in warning


@pytest.mark.skipif(not SHARED_POOL.is_file(), reason="the public testbed pools live in ../shared (absent in a clone)")
def test_a_public_english_pool_is_below_half_for_the_organism(organism_tokenizer) -> None:
    found = coverage.measure(organism_tokenizer, texts_of_testbed(SHARED_POOL))
    assert found.share_known < 0.5
    assert len(found.warnings("this testbed")) == 1


def test_a_tokenizer_without_an_unknown_token_reads_everything() -> None:
    class ByteLevel:
        unk_token_id = None

    assert coverage.measure(ByteLevel(), ["anything at all"]).share_known == 1.0


def test_words_are_distinct_and_stripped_of_punctuation() -> None:
    assert coverage.words(["Hello, world! hello world's"]) == ["Hello", "world", "hello", "world's"]
