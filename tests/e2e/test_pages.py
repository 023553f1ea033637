"""Every page in a real browser: it loads without a Streamlit exception, explains itself, and draws its default
result from the embedded model with no typing (the user's first five minutes). Screenshots go to
artifacts/screenshots/<page>.png.
"""

from __future__ import annotations

import time

import pytest

from tests.e2e.helpers import (
    ERROR_BOX,
    PAGE_TIMEOUT_MS,
    PLOTLY,
    PRIMARY_BUTTON,
    PROBE_PAGES,
    REPO_ROOT,
    assert_no_exception,
    expect_text,
    figure_facts,
    is_placeholder,
    open_page,
    screenshot,
    wait_for_figure,
    wait_idle,
)

TIMINGS = REPO_ROOT / "artifacts" / "e2e-timings.txt"


def record(name: str, seconds: float) -> None:
    TIMINGS.parent.mkdir(parents=True, exist_ok=True)
    with TIMINGS.open("a") as out:
        out.write(f"{time.strftime('%H:%M:%S')} {name}: {seconds:.1f} s\n")


def test_home_opens_on_the_embedded_model_without_typing(page, app_server) -> None:
    started = time.monotonic()
    open_page(page, app_server, "home")
    record("home first load", time.monotonic() - started)
    assert_no_exception(page, app_server)
    assert page.locator(ERROR_BOX).count() == 0, page.locator(ERROR_BOX).first.inner_text()
    sidebar = page.locator('[data-testid="stSidebar"]')
    expect_text(sidebar, "Embedded organism")  # widgets draw lazily (skeletons first): a retrying check
    expect_text(sidebar, "Loaded organism")
    main = page.locator('[data-testid="stMain"]')
    assert main.locator("h1").first.inner_text().strip() == "AssocLens"
    assert "Run history" in main.inner_text()
    nav = page.locator('[data-testid="stSidebarNav"]').inner_text()
    for title in ("Induction heads", "Associative steering", "Poisoned context", "Optimizer spectra"):
        assert title in nav
    screenshot(page, "home")


@pytest.mark.parametrize("name", PROBE_PAGES)
def test_probe_page_explains_itself_and_draws_its_default_result(name: str, page, app_server) -> None:
    if is_placeholder(name):
        pytest.xfail(f"pages/{name}.py is still the placeholder: the probe page has not landed")
    started = time.monotonic()
    open_page(page, app_server, name)
    assert_no_exception(page, app_server)

    about = page.locator('[data-testid="stExpander"]').filter(has_text="About this probe")
    assert about.count() == 1, f"{name}: no 'About this probe' box"
    about.locator("summary").first.click()
    about_text = about.first.inner_text()
    assert "Source:" in about_text, f"{name}: the about box names no paper"
    body = about_text.split("Source:")[0].replace("About this probe", "").strip()
    assert 80 <= len(body) <= 1500, f"{name}: the about text should be two or three sentences, got {len(body)} chars"

    clicked = False
    if page.locator(f'[data-testid="stMain"] {PLOTLY}').count() == 0:
        primary = page.locator(f'[data-testid="stMain"] {PRIMARY_BUTTON}')
        if primary.count():  # one click on the page's main button is fine; typing is not
            primary.first.click()
            clicked = True
            wait_idle(page)
    facts = wait_for_figure(page, PAGE_TIMEOUT_MS)
    record(f"{name} default result{' (after one click)' if clicked else ''}", time.monotonic() - started)
    wait_idle(page, rerun_grace_ms=0)
    assert_no_exception(page, app_server)
    errors = page.locator(f'[data-testid="stMain"] {ERROR_BOX}')
    assert errors.count() == 0, f"{name}: error box on the default run: {errors.first.inner_text()}"
    drawn = [fact for fact in figure_facts(page) if fact["traces"] > 0 and fact["points"] > 0]
    assert drawn, f"{name}: no figure with data: {facts}"
    untitled = [fact for fact in drawn if not fact["title"].strip()]
    assert not untitled, f"{name}: figures without a title: {untitled}"
    screenshot(page, name)
