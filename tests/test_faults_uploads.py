"""Bad uploads: each gives one clear message, leaves the app usable, and caches nothing.

Drives the real importers (`probes.poisoned.testbed.load_testbed`, the steering page's prompt-set reader), the pages
through Streamlit's AppTest with the real file uploader widget, and the CLI in-process. Cases from issue #8: empty,
1 byte over the limit, binary, non-UTF-8, wrong schema, missing fields, CSV formula injection, JSON bombs.
"""

from __future__ import annotations

import csv
import io
import json
import time
import zipfile
from pathlib import Path

import pandas as pd
import pytest

from cache import Payload, ResultStore, RunKey
from probes.poisoned.testbed import MAX_ITEMS, MAX_JSON_DEPTH, MAX_UPLOAD_BYTES, TestbedError, load_testbed

REPO_ROOT = Path(__file__).resolve().parent.parent
POISONED_PAGE = REPO_ROOT / "pages" / "poisoned.py"
FAST_S = 10.0

GOOD_ITEM = {
    "Question": "What is the capital of Zorva?",
    "Generated Information": ["The capital of Zorva is Pelum.", "Zorva is a country."],
    "Input": "The capital of Zorva is Kret.",
    "Synonym Sentence": ["Kret is the capital of Zorva."],
    "Simple Answer": "The capital of Zorva is Pelum.",
}
GOOD_JSON = json.dumps([GOOD_ITEM, {**GOOD_ITEM, "Question": "Which city is Zorva's capital?"}]).encode()


def padded_to(size: int) -> bytes:
    """A valid testbed padded with trailing whitespace to exactly `size` bytes."""
    return GOOD_JSON + b" " * (size - len(GOOD_JSON))


# (file name, bytes, words the one message must contain)
BAD_UPLOADS = {
    "empty": ("empty.json", b"", ["empty"]),
    "one byte over the limit": ("big.json", padded_to(MAX_UPLOAD_BYTES + 1), ["limit", "10 MB"]),
    "binary": ("image.json", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 8, ["binary"]),
    "non-UTF-8": ("latin.json", json.dumps([GOOD_ITEM]).replace("Zorva", "Zörva").encode("latin-1"), ["UTF-8"]),
    "wrong schema (object)": ("object.json", json.dumps({"name": "not a testbed", "rows": 3}).encode(), ["list"]),
    "wrong schema (CSV header)": ("table.csv", b"name,age\nAda,36\n", ["column", "question"]),
    "missing fields": (
        "partial.json",
        json.dumps([{k: v for k, v in GOOD_ITEM.items() if k != "Simple Answer"}] * 3).encode(),
        ["no usable", "Simple Answer"],
    ),
    "JSON bomb (deep nesting)": ("deep.json", b"[" * 500_000 + b"]" * 500_000, ["deeper"]),
    "JSON bomb (many items)": ("wide.json", ("[" + ",".join(["{}"] * (MAX_ITEMS + 1)) + "]").encode(), ["limit"]),
    "JSONL bomb (many lines)": ("wide.jsonl", b"{}\n" * (MAX_ITEMS + 1), ["limit"]),
}


def assert_one_clear_line(message: str, words: list[str]) -> None:
    assert message and "\n" not in message and "Traceback" not in message, message
    assert len(message) < 500, message
    for word in words:
        assert word.lower() in message.lower(), f"{word!r} not in {message!r}"


# --- the importer ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", list(BAD_UPLOADS))
def test_testbed_importer_refuses_with_one_clear_message(case: str) -> None:
    name, data, words = BAD_UPLOADS[case]
    started = time.monotonic()
    with pytest.raises(TestbedError) as caught:
        load_testbed(data, name)
    assert time.monotonic() - started < FAST_S, "the guard must be cheap"
    assert_one_clear_line(str(caught.value), words)


def test_exactly_at_the_limit_is_accepted() -> None:
    testbed = load_testbed(padded_to(MAX_UPLOAD_BYTES), "at-limit.json")
    assert len(testbed.items) == 2


def test_brackets_inside_strings_are_not_nesting() -> None:
    item = {**GOOD_ITEM, "Question": "What does [[[[[[[[[[[[[[[[[[[[[[[[ mean in {{{{{{{{{{{{{{{{{{{{{{{{?"}
    testbed = load_testbed(json.dumps([item]).encode(), "brackets.json")
    assert testbed.items[0].question.startswith("What does [[[[")


def test_deep_nesting_just_over_the_depth_limit_inside_a_jsonl_line() -> None:
    line = "[" * (MAX_JSON_DEPTH + 1) + "]" * (MAX_JSON_DEPTH + 1)
    good = json.dumps({**GOOD_ITEM})
    testbed = load_testbed(f"{good}\n{line}\n".encode(), "mixed.jsonl")
    assert len(testbed.items) == 1
    assert "deeper" in testbed.skipped[0].reason and testbed.skipped[0].reason.startswith("row 1")


# question (one cell), an appropriate sentence, the claim, the reference; '|' splits sentences, so only the question
# carries the classic DDE payload with a pipe
FORMULAS = ["=cmd|' /C calc'!A0", "+SUM(1+1)*2", "-2+3", "@SUM(1+1)"]


def formula_csv() -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["question", "appropriate", "inappropriate", "reference", "category"])
    writer.writerow([FORMULAS[0], "The capital is Pelum.|" + FORMULAS[1], FORMULAS[2], FORMULAS[3], "=evil()"])
    return buffer.getvalue().encode()


def test_csv_formula_injection_is_stored_as_text_and_neutralised_on_csv_export(tmp_path: Path) -> None:
    testbed = load_testbed(formula_csv(), "formulas.csv")
    item = testbed.items[0]
    assert item.question == FORMULAS[0]
    assert item.appropriate == ("The capital is Pelum.", FORMULAS[1])
    assert item.claim == FORMULAS[2] and item.reference == FORMULAS[3] and item.category == "=evil()"

    store = ResultStore(tmp_path / "r.duckdb")
    frame = pd.DataFrame([{**item.__dict__, "appropriate": " | ".join(item.appropriate)}]).drop(columns="inappropriate")
    stored = store.put(
        RunKey.build("upload", "1", {"model_id": "m"}, {}, testbed.digest), Payload(tables={"items": frame}), 0.0
    )
    assert stored.tables["items"].loc[0, "question"] == FORMULAS[0]  # the store keeps the text as is

    with zipfile.ZipFile(io.BytesIO(store.export_zip(stored.run_id, "csv"))) as archive:
        exported = next(csv.DictReader(io.StringIO(archive.read("items.csv").decode())))
    for column in ("question", "claim", "reference", "category"):
        assert exported[column].startswith("'"), f"{column}: {exported[column]!r} would run as a formula"
        assert exported[column][1:] == getattr(item, column)
    assert not exported["appropriate"].startswith("'")  # starts with plain text: left alone
    with zipfile.ZipFile(io.BytesIO(store.export_zip(stored.run_id, "parquet"))) as archive:
        raw = pd.read_parquet(io.BytesIO(archive.read("items.parquet")))
    assert raw.loc[0, "question"] == FORMULAS[0]  # Parquet is data, not a spreadsheet: unchanged


# --- the poisoned page, through its real upload widget ---------------------------------------------------------


def poisoned_page():
    from streamlit.testing.v1 import AppTest

    app = AppTest.from_file(str(POISONED_PAGE), default_timeout=120)
    app.run()
    assert not app.exception, app.exception
    app.radio(key="poisoned-source").set_value("Upload a file").run()
    assert not app.exception, app.exception
    return app


def upload(app, name: str, data: bytes):
    mime = "text/csv" if name.endswith(".csv") else "application/json"
    app.file_uploader(key="poisoned-upload").set_value((name, data, mime)).run()
    assert not app.exception, app.exception
    return app


def store_rows(path: Path) -> int:
    return 0 if not path.exists() else len(ResultStore(path).list_runs())


@pytest.fixture(scope="module")
def page_store(tmp_path_factory: pytest.TempPathFactory):
    path = tmp_path_factory.mktemp("uploads") / "results.duckdb"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ASSOCLENS_DB", str(path))
        yield path


def test_poisoned_page_bad_uploads_show_one_error_cache_nothing_and_recover(page_store: Path) -> None:
    if "placeholder until the probe lands" in POISONED_PAGE.read_text():
        pytest.fail("pages/poisoned.py is still the placeholder")
    app = poisoned_page()
    for case, (name, data, words) in BAD_UPLOADS.items():
        if len(data) > 1_000_000 and case != "one byte over the limit":
            continue  # the big bombs are covered at the importer; the page path is the same call
        upload(app, name, data)
        errors = [error.value for error in app.error]
        assert len(errors) == 1, f"{case}: {errors}"
        assert_one_clear_line(errors[0], words)
        assert not app.success, f"{case}: a bad file was described as usable"
        assert not [b for b in app.button if "Compute" in str(b.label)], f"{case}: offered to compute a bad file"
        assert store_rows(page_store) == 0, f"{case}: something was cached"
    upload(app, "good.json", GOOD_JSON)  # the app is still usable after all of that
    assert not app.error, [error.value for error in app.error]
    assert any("2 usable items" in message.value for message in app.success)
    assert store_rows(page_store) == 0  # uploading alone computes nothing


def test_poisoned_page_formula_csv_is_accepted_as_text(page_store: Path) -> None:
    if "placeholder until the probe lands" in POISONED_PAGE.read_text():
        pytest.fail("pages/poisoned.py is still the placeholder")
    app = upload(poisoned_page(), "formulas.csv", formula_csv())
    assert not app.error, [error.value for error in app.error]
    assert any("1 usable items" in message.value or "1 usable item" in message.value for message in app.success)


# --- the command line -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", ["empty", "binary", "non-UTF-8", "missing fields", "JSON bomb (many items)"])
def test_cli_bad_testbed_exits_2_with_one_line_and_caches_nothing(
    case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from probes.cli import main

    name, data, words = BAD_UPLOADS[case]
    path = tmp_path / name
    path.write_bytes(data)
    db = tmp_path / "cli.duckdb"
    code = main(["poisoned", "curve", "--testbed", str(path), "--db", str(db), "--json"])
    captured = capsys.readouterr()
    assert code == 2
    assert captured.out == ""
    lines = [line for line in captured.err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), captured.err
    assert_one_clear_line(lines[0], words)
    assert store_rows(db) == 0


# --- the steering page's prompt-set upload --------------------------------------------------------------------

STEERING_PAGE = REPO_ROOT / "pages" / "steering.py"
STEERING_PASTE = "Paste or upload"
GOOD_SETS = {"faithful": ["the baba of bade is bafi .", "the beba of bede is befi ."],
             "associative": ["baba bade , bafi baba ?", "beba bede , befi beba ?"]}  # fmt: skip

# (file name, bytes, words the one message must contain)
BAD_PROMPT_SETS = {
    "empty": ("sets.json", b"", ["empty"]),
    "binary": ("sets.json", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)), ["json"]),
    "wrong schema": ("sets.json", json.dumps({"prompts": ["a", "b"], "labels": [0, 1]}).encode(), ["faithful"]),
    "missing fields": ("sets.json", json.dumps({"faithful": GOOD_SETS["faithful"]}).encode(), ["associative"]),
    "non-UTF-8": ("sets.json", json.dumps(GOOD_SETS).replace("baba", "bäba").encode("latin-1"), ["UTF-8"]),
    "JSON bomb (deep nesting)": ("sets.json", b'{"faithful": ' + b"[" * 200_000 + b"]" * 200_000 + b"}", ["deep"]),
}
STEERING_BUGS: dict[str, str] = {}  # open bugs as strict xfails; the three found earlier are fixed


def steering_page():
    from streamlit.testing.v1 import AppTest

    app = AppTest.from_file(str(STEERING_PAGE), default_timeout=300)
    app.session_state["steering_sets_source"] = STEERING_PASTE  # straight to the upload, no default computation
    app.run()
    assert not app.exception, app.exception
    return app


@pytest.mark.parametrize(
    "case",
    [pytest.param(c, marks=pytest.mark.xfail(strict=True, reason=STEERING_BUGS[c])) if c in STEERING_BUGS else c
     for c in BAD_PROMPT_SETS],
)  # fmt: skip
def test_steering_prompt_set_upload_refuses_bad_files(case: str, page_store: Path) -> None:
    if "placeholder until the probe lands" in STEERING_PAGE.read_text():
        pytest.fail("pages/steering.py is still the placeholder")
    name, data, words = BAD_PROMPT_SETS[case]
    app = steering_page()
    before = store_rows(page_store)
    app.file_uploader(key="steering_sets_upload").set_value((name, data, "application/json")).run()
    assert not app.exception, f"{case}: exception box: {app.exception}"
    errors = [error.value for error in app.error]
    assert len(errors) == 1, f"{case}: {errors}"
    assert_one_clear_line(errors[0], words)
    assert store_rows(page_store) == before, f"{case}: something was cached"


def test_steering_prompt_sets_with_a_huge_item_count_are_refused() -> None:
    from probes.steering.prompts import parse_prompt_sets

    many = json.dumps({"faithful": ["baba bade ."] * 300_000, "associative": ["bafi beba ?"] * 300_000})
    with pytest.raises(ValueError) as caught:
        parse_prompt_sets(many, source="many.json")
    assert_one_clear_line(str(caught.value), ["limit"])
