"""What a researcher does with each probe, in a real browser: move the steering slider and see the steered text
change; upload a poisoned-context testbed and see the curve, then a malformed one and see the clear error; start an
emergence training run and see the live chart grow.
"""

from __future__ import annotations

import json
import re
import time

import pytest

from tests.e2e.helpers import (
    ERROR_BOX,
    PAGE_TIMEOUT_MS,
    assert_no_exception,
    expect_count,
    expect_text,
    figure_facts,
    is_placeholder,
    open_page,
    screenshot,
    wait_for_figure,
    wait_idle,
)


def require_page(name: str) -> None:
    if is_placeholder(name):
        pytest.fail(f"pages/{name}.py is still the placeholder: the interaction cannot be tested until it lands")


def vocabulary_words(count: int) -> list[str]:
    """Plain words the embedded model's tokenizer knows, so prompts are not all <unk> for a word-level vocabulary."""
    from probes.models import embedded_model_dir

    vocab = json.loads((embedded_model_dir() / "tokenizer.json").read_text())["model"]["vocab"]
    words = sorted(vocab if isinstance(vocab, dict) else [entry[0] for entry in vocab])
    plain = [word for word in words if re.fullmatch(r"[a-z]{3,}", word)]
    assert len(plain) >= count, f"the embedded tokenizer has only {len(plain)} plain words"
    return plain[:count]


def upload_file(page, uploader_label: str, name: str, data: bytes, mime: str) -> None:
    uploader = page.locator('[data-testid="stFileUploader"]').filter(has_text=uploader_label)
    uploader.locator('input[type="file"]').set_input_files(files=[{"name": name, "mimeType": mime, "buffer": data}])
    wait_idle(page)


def choose_radio(page, option: str) -> None:
    page.locator('[data-testid="stMain"] [data-testid="stRadio"] label').filter(has_text=option).first.click()
    wait_idle(page)


# --- poisoned context -----------------------------------------------------------------------------------------


def make_testbed(count: int = 4) -> bytes:
    """A small public-schema testbed written in the embedded model's own words."""
    words = vocabulary_words(4 * count)
    items = []
    for i in range(count):
        thing, place, good, bad = words[4 * i : 4 * i + 4]
        items.append(
            {
                "Question": f"the {thing} of {place} is ?",
                "Generated Information": [f"the {thing} of {place} is {good} ."],
                "Input": f"the {thing} of {place} is {bad} .",
                "Synonym Sentence": [f"{place} has {bad} ."],
                "Simple Answer": f"the {thing} of {place} is {good} .",
            }
        )
    return json.dumps(items).encode()


POISONED_UPLOAD = "Upload a testbed"


def test_poisoned_upload_draws_the_curve_and_a_malformed_file_gets_a_clear_error(page, app_server) -> None:
    require_page("poisoned")
    open_page(page, app_server, "poisoned")
    choose_radio(page, "Upload a file")
    upload_file(page, POISONED_UPLOAD, "zorva_output.json", make_testbed(), "application/json")
    main = page.locator('[data-testid="stMain"]')
    expect_text(main, "4 usable items")
    assert_no_exception(page, app_server)

    page.get_by_role("button", name="Compute curves").click()
    wait_idle(page)
    wait_for_figure(page)
    assert_no_exception(page, app_server)
    titles = [fact["title"] for fact in figure_facts(page) if fact["points"] > 0]
    assert any(title.startswith("Poisoned-context curve") for title in titles), titles
    assert main.locator(ERROR_BOX).count() == 0
    screenshot(page, "poisoned-uploaded-curve")

    upload_file(page, POISONED_UPLOAD, "broken.json", b'[{"Question": "the baba of', "application/json")
    errors = main.locator(ERROR_BOX)
    expect_text(errors.first, "broken.json")
    wait_idle(page, rerun_grace_ms=0)
    assert_no_exception(page, app_server)
    expect_count(errors, 1)
    message = errors.first.inner_text()
    assert "broken.json" in message and "not valid JSON" in message, message
    assert page.get_by_role("button", name="Compute curves").count() == 0  # nothing to compute from a bad file
    screenshot(page, "poisoned-malformed-upload")

    upload_file(page, POISONED_UPLOAD, "zorva_output.json", make_testbed(), "application/json")
    expect_text(main, "4 usable items")  # usable again
    expect_count(main.locator(ERROR_BOX), 0)


# --- steering -------------------------------------------------------------------------------------------------

STEERING_UPLOAD = "Prompt sets file"


def prompt_sets_bytes() -> bytes:
    """Two clearly different prompt sets in the embedded model's words."""
    words = vocabulary_words(24)
    faithful = [f"the {words[i]} of {words[i + 1]} is {words[i + 2]} ." for i in range(0, 12, 3)]
    associative = [f"{words[i]} {words[i + 1]} , {words[i + 2]} {words[i]} ?" for i in range(12, 24, 3)]
    return json.dumps({"faithful": faithful, "associative": associative}).encode()


def steered_box(page):
    return page.locator(".st-key-steering-steered")


def steered_after_text(box) -> str:
    """The generated continuation shown in the steered box (after the arrow), without the metric captions."""
    return box.locator('[data-testid="stText"]').first.inner_text().split("⟶", 1)[-1].strip()


def test_steering_slider_changes_the_steered_text(page, app_server) -> None:
    require_page("steering")
    open_page(page, app_server, "steering")
    choose_radio(page, "Paste or upload")
    upload_file(page, STEERING_UPLOAD, "sets.json", prompt_sets_bytes(), "application/json")
    box = steered_box(page)
    box.wait_for(state="visible", timeout=PAGE_TIMEOUT_MS)
    wait_idle(page, rerun_grace_ms=0)
    assert_no_exception(page, app_server)
    before = box.inner_text()
    assert "strength +2" in before, before
    text_before = steered_after_text(box)

    slider = page.locator('[data-testid="stSlider"]').filter(has_text="Associative strength")
    slider.get_by_role("slider").focus()
    for _ in range(12):  # 2.0 -> -4.0 in steps of 0.5
        page.keyboard.press("ArrowLeft")
    wait_idle(page)
    page.wait_for_function(
        "() => (document.querySelector('.st-key-steering-steered') || {}).innerText?.includes('strength -4')",
        timeout=PAGE_TIMEOUT_MS,
    )
    wait_idle(page, rerun_grace_ms=0)
    after = box.inner_text()
    assert_no_exception(page, app_server)
    assert steered_after_text(box) != text_before, f"the steered text did not change:\n{before}\n---\n{after}"
    screenshot(page, "steering-slider-moved")


# --- induction: emergence training -----------------------------------------------------------------------------

LIVE_POINTS_JS = """
() => {
  const title = el => String(((el.layout || {}).title || {}).text || (el.layout || {}).title || '');
  const chart = [...document.querySelectorAll('[data-testid="stMain"] .js-plotly-plot')]
    .find(el => title(el).includes('Emergence'));
  if (!chart) return -1;
  const data = chart._fullData || [];  // plotly.js's decoded traces (chart.data holds base64 typed arrays)
  return Math.max(0, ...data.map(trace => (trace.x || trace.y || []).length || 0));
}
"""


TRAIN_STEPS, RECORD_EVERY = 400, 10  # long enough to leave the page mid-run on a busy 2-core machine; 41 records


def set_number(page, label: str, value: int) -> None:
    field = page.locator('[data-testid="stNumberInput"]').filter(has_text=label).locator("input")
    field.fill(str(value))
    field.press("Enter")
    wait_idle(page)


def live_points(page, at_least: int, timeout_s: float) -> int:
    """Wait until the live chart shows at least `at_least` records; the count then."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        points = page.evaluate(LIVE_POINTS_JS)
        if points >= at_least:
            return points
        page.wait_for_timeout(200)
    raise AssertionError(f"the live chart did not reach {at_least} records in {timeout_s} s")


def jobs_table_text(page) -> str:
    table = page.locator('[data-testid="stDataFrame"]').first  # the first table of the home page: its jobs
    table.wait_for(timeout=PAGE_TIMEOUT_MS)
    return table.inner_text() + page.evaluate(  # the grid draws in a canvas; its accessible copy holds the cells
        '() => [...document.querySelectorAll(\'[data-testid="stDataFrame"] [role="gridcell"]\')]'
        ".map(cell => cell.innerText).join(' ')"
    )


def test_emergence_training_is_a_background_job_that_outlives_the_page(page, app_server) -> None:
    """A job's life in the browser: start training, watch the live chart grow, leave for the home page (the job is
    listed as running), open the page again in a fresh load (the curve so far is there, read from the job's
    history), and see the job finish."""
    require_page("induction")
    open_page(page, app_server, "induction")
    page.get_by_role("tab", name="Emergence").click()
    set_number(page, "Training steps", TRAIN_STEPS)
    set_number(page, "Record every", RECORD_EVERY)
    assert page.evaluate(LIVE_POINTS_JS) == -1, "a chart before training started: the run was not fresh"
    page.get_by_role("button", name="Start training").click()
    first = live_points(page, 2, PAGE_TIMEOUT_MS / 1000)
    grown = live_points(page, first + 1, PAGE_TIMEOUT_MS / 1000)
    assert_no_exception(page, app_server)
    screenshot(page, "induction-emergence-job-running")

    open_page(page, app_server, "home")  # leaving the page (a new page load: the old session is gone)
    listed = jobs_table_text(page)
    assert "Emergence training" in listed and ("running" in listed or "done" in listed), listed
    screenshot(page, "home-jobs-running")

    open_page(page, app_server, "induction")  # reopened with default settings: the running job is shown
    page.get_by_role("tab", name="Emergence").click()
    reopened = live_points(page, grown, PAGE_TIMEOUT_MS / 1000)
    assert reopened >= grown, f"the reopened page lost the curve so far ({reopened} < {grown} records)"
    screenshot(page, "induction-emergence-job-reopened")

    expected = TRAIN_STEPS // RECORD_EVERY + 1
    deadline = time.monotonic() + PAGE_TIMEOUT_MS * 2 / 1000
    while time.monotonic() < deadline:
        open_page(page, app_server, "home")
        if "done" in jobs_table_text(page):
            break
        page.wait_for_timeout(2000)
    listed = jobs_table_text(page)
    assert "done" in listed, listed
    assert_no_exception(page, app_server)
    screenshot(page, "home-jobs-done")
    from cache import ResultStore

    store = ResultStore(app_server.db_path)
    trained = [store.load(run_id) for run_id in store.list_runs(probe="induction-emergence")["run_id"]]
    assert [len(run.tables["history"]) for run in trained if run.config["steps"] == TRAIN_STEPS] == [expected]
