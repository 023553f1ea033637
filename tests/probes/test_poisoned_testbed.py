"""Testbed importer: the public schema, our CSV/JSONL format, and every bad-input case."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from probes.poisoned.testbed import (
    MAX_ITEMS,
    MAX_JSON_DEPTH,
    MAX_UPLOAD_BYTES,
    TestbedError,
    load_testbed,
    load_testbed_file,
)

REPO = Path(__file__).resolve().parents[2]
POOLS = REPO.parent / "shared" / "data" / "rw-testbed"

ITEM = {
    "Question": "What is the capital of Zorva?",
    "Generated Information": ["Zorva is a country.", "The capital of Zorva is Pelum."],
    "Input": "The capital of Zorva is Kret.",
    "Synonym Sentence": ["Kret is the capital of Zorva.", "Zorva's capital city is Kret."],
    "Simple Answer": "The capital of Zorva is Pelum.",
    "Explainable Answer": "Reliable sources say Pelum.",
}
CSV_HEADER = "question,appropriate,inappropriate,reference,category\n"


# The pools hold 1964 and 3398 items; a few repeat the Input as the Simple Answer (up to a final period), which
# leaves nothing to choose between: they are skipped and reported with their row index.
SKIPPED_ROWS = {"fakenews_output.json": [286, 667], "non_factual_output.json": [28, 1794, 2748]}


@pytest.mark.parametrize(("name", "expected"), [("fakenews_output.json", 1962), ("non_factual_output.json", 3395)])
def test_reads_the_shared_real_pools(name: str, expected: int) -> None:
    if not (POOLS / name).is_file():
        pytest.skip("../shared/data/rw-testbed is not present in this checkout")
    testbed = load_testbed_file(POOLS / name)
    report = testbed.report()
    assert report["items"] == expected
    assert list(report["categories"]) == [name.removesuffix("_output.json")]
    item = testbed.items[0]
    assert len(item.appropriate) == 3 and len(item.inappropriate) == 3  # Input plus its two paraphrases
    assert item.claim == item.inappropriate[0] and item.reference
    assert [row.index for row in testbed.skipped] == SKIPPED_ROWS[name]
    assert all("'Simple Answer' equals field 'Input'" in row.reason for row in testbed.skipped)


def test_public_schema_accepts_strings_or_lists_and_privacy_items() -> None:
    as_strings = {**ITEM, "Generated Information": "The capital of Zorva is Pelum.", "Synonym Sentence": "Kret rules."}
    privacy = {
        "Question": "Where does Ana live?",
        "Non-private Information": ["Ana is a painter."],
        "Privacy information": ["Ana lives at 4 Elm Street.", "Ana's address is 4 Elm Street."],
        "Simple Answer": "I cannot share where Ana lives.",
        "Category": "privacy",
    }
    testbed = load_testbed(json.dumps([ITEM, as_strings, privacy]).encode(), "mixed_output.json")
    assert [i.category for i in testbed.items] == ["mixed", "mixed", "privacy"]
    assert testbed.items[1].appropriate == ("The capital of Zorva is Pelum.",)
    assert testbed.items[1].inappropriate == ("The capital of Zorva is Kret.", "Kret rules.")
    assert testbed.items[2].claim == "Ana lives at 4 Elm Street."
    assert testbed.items[2].appropriate == ("Ana is a painter.",)


def test_csv_format_with_formula_cells_kept_as_plain_text() -> None:
    text = CSV_HEADER + (
        'What is the capital?,"Zorva is a country.|The capital is Pelum.",=HYPERLINK("x")|The capital is Kret.,'
        "The capital is Pelum.,geo\n"
    )
    testbed = load_testbed(text.encode(), "mine.csv")
    item = testbed.items[0]
    assert item.appropriate == ("Zorva is a country.", "The capital is Pelum.")
    assert item.inappropriate[0] == '=HYPERLINK("x")' and item.claim == '=HYPERLINK("x")'
    assert testbed.categories() == {"geo": 1}


def test_csv_bad_rows_name_the_row_and_field() -> None:
    text = CSV_HEADER + "Q1,a.,b.,ref one,c\n,a.,b.,ref two,c\nQ3,a.,,ref three,c\nQ4,a.,b.,b.,c\nQ5,a.,b.,r,c,extra\n"
    testbed = load_testbed(text.encode(), "mine.csv")
    assert len(testbed.items) == 1
    reasons = {row.index: row.reason for row in testbed.skipped}
    assert reasons[1] == "row 1: field 'question' is missing or empty"
    assert reasons[2] == "row 2: field 'inappropriate' is missing or empty"
    assert "field 'reference' equals field 'inappropriate'" in reasons[3]
    assert "row 4:" in reasons[4] and "cells" in reasons[4]


def test_csv_missing_column_is_one_clear_error() -> None:
    with pytest.raises(TestbedError, match="lacks column\\(s\\) reference"):
        load_testbed(b"question,appropriate,inappropriate,category\nq,a,b,c\n", "mine.csv")


def test_jsonl_skips_malformed_lines_and_reads_our_field_names() -> None:
    good = {"question": "Q?", "appropriate": ["a."], "inappropriate": "b.", "reference": "r.", "category": "k"}
    lines = [json.dumps(good), "{not json", json.dumps({"question": "Q?", "appropriate": 3}), json.dumps(ITEM)]
    testbed = load_testbed("\n".join(lines).encode(), "pool.jsonl")
    assert len(testbed.items) == 2
    reasons = [row.reason for row in testbed.skipped]
    assert reasons[0].startswith("row 1:") and "not valid JSON" in reasons[0]
    assert reasons[1].startswith("row 2:") and "'appropriate' must be text or a list of text" in reasons[1]


def test_wrong_field_types_are_named() -> None:
    bad = [{**ITEM, "Question": 5}, {**ITEM, "Generated Information": [1, 2]}, "just text", {"foo": "bar"}]
    with pytest.raises(TestbedError) as error:
        load_testbed(json.dumps(bad).encode(), "bad.json")
    assert "no usable testbed item" in str(error.value) and "row 0: field 'Question' must be text" in str(error.value)
    testbed = load_testbed(json.dumps([ITEM, *bad]).encode(), "bad.json")
    assert [row.reason for row in testbed.skipped] == [
        "row 1: field 'Question' must be text, got int",
        "row 2: field 'Generated Information' must be text or a list of text",
        "row 3: expected an object with testbed fields, got str",
        "row 4: no testbed fields; expected question, appropriate, inappropriate, reference, category or the public "
        "testbed's fields",
    ]


@pytest.mark.parametrize(
    ("data", "filename", "message"),
    [
        (b"x" * (MAX_UPLOAD_BYTES + 1), "big.json", "the limit is 10 MB"),
        (b'[{"Question": "a\x00b"}]', "nul.json", "binary file"),
        ('[{"Question": "caf\u00e9"}]'.encode("latin-1"), "latin.json", "not UTF-8"),
        (b'[{"Question": "x",]', "broken.json", "not valid JSON"),
        (b"[" * (MAX_JSON_DEPTH + 1) + b"]" * (MAX_JSON_DEPTH + 1), "deep.json", "nests deeper than 16"),
        (b'{"Question": "x"}', "object.json", "expected a JSON list"),
        (b"   \n", "empty.json", "is empty"),
        (b"question\n", "table.xlsx", "unsupported file type"),
        (b"PK\x03\x04\x00\x00", "zipped.csv", "binary file"),
    ],
)
def test_bad_files_raise_one_clear_message(data: bytes, filename: str, message: str) -> None:
    with pytest.raises(TestbedError, match=message) as error:
        load_testbed(data, filename)
    assert "\n" not in str(error.value)


def test_too_many_items_is_refused() -> None:
    data = ("[" + ",".join(["{}"] * (MAX_ITEMS + 1)) + "]").encode()
    with pytest.raises(TestbedError, match=f"the limit is {MAX_ITEMS}"):
        load_testbed(data, "many.json")


def test_digest_depends_on_content_not_on_order_of_keys() -> None:
    reordered = dict(reversed(list(ITEM.items())))
    first = load_testbed(json.dumps([ITEM]).encode(), "a_output.json")
    assert first.digest == load_testbed(json.dumps([reordered]).encode(), "a_output.json").digest
    changed = {**ITEM, "Simple Answer": "The capital of Zorva is Mip."}
    assert first.digest != load_testbed(json.dumps([changed]).encode(), "a_output.json").digest
