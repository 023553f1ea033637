"""Two browser sessions asking for the same probe run at the same moment (cold cache): both get the result, no
exception, no error box, and the store ends up with one complete run, not two half ones.

Runs first among the browser tests (file order), so the default induction scan is not cached yet.
"""

from __future__ import annotations

import pytest

from cache import ResultStore
from tests.e2e.helpers import (
    ERROR_BOX,
    PAGE_TIMEOUT_MS,
    assert_no_exception,
    is_placeholder,
    screenshot,
    wait_for_figure,
    wait_idle,
)


def stored_runs(db_path) -> list[tuple[str, str, int]]:
    """(probe, run_id, table count) for every run; the store retries while the app holds the file."""
    store = ResultStore(db_path)
    return [(row.probe, row.run_id, len(store.load(row.run_id).tables)) for row in store.list_runs().itertuples()]


def test_two_sessions_run_the_same_probe_at_once(browser, app_server) -> None:
    if is_placeholder("induction"):
        pytest.fail("pages/induction.py is still the placeholder")
    before = {run_id for _, run_id, _ in stored_runs(app_server.db_path)}
    contexts = [browser.new_context(viewport={"width": 1400, "height": 1000}) for _ in range(2)]
    try:
        tabs = [context.new_page() for context in contexts]
        for tab in tabs:
            tab.set_default_timeout(PAGE_TIMEOUT_MS)
            tab.goto(app_server.page_url("induction"), wait_until="commit")  # both start before either finishes
        for tab in tabs:
            wait_idle(tab)
            wait_for_figure(tab)
            wait_idle(tab, rerun_grace_ms=0)
        for number, tab in enumerate(tabs):
            assert_no_exception(tab, app_server)
            errors = tab.locator(f'[data-testid="stMain"] {ERROR_BOX}')
            assert errors.count() == 0, f"session {number}: {errors.first.inner_text()}"
        screenshot(tabs[1], "induction-second-session")
    finally:
        for context in contexts:
            context.close()
    new = [(probe, run_id, tables) for probe, run_id, tables in stored_runs(app_server.db_path) if run_id not in before]
    assert new, "the probe run was not stored"
    assert len({run_id for _, run_id, _ in new}) == len(new)
    assert all(tables > 0 for _, _, tables in new), f"a run without its tables: {new}"
