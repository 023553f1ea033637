"""Cached page render in the browser vs the same page's first (uncached) render.

One row, for the embedded model only (the dashboard's default): `streamlit run app.py` on a free port with a temp
ASSOCLENS_DB; after one untimed visit (the model, the page's imports in the server and plotly.js in the browser
are loaded), the time from navigation to the first visible `.js-plotly-plot` of a probe page is measured with an
empty store (the server computes and stores the page's default runs: the baseline) and again with the runs stored
(a new session each time, served from DuckDB: the probe).
The ratio is a speed-up, first / cached (higher is better); no target. Skipped with a note when chromium or
Playwright is missing, or with `python bench/run.py --no-browser`. The server and browser helpers are the e2e
tests' (tests/e2e/helpers.py).
"""

from __future__ import annotations

import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from cache import ResultStore
from probes.models import EMBEDDED_MODEL_NAME

BROWSER_ENV = "ASSOCLENS_BENCH_BROWSER"  # "0" skips the row (bench/run.py --no-browser sets it)
BROWSER_PAGE_ENV = "ASSOCLENS_BENCH_PAGE"  # which probe page to render (default: induction)
BROWSER_PAGE = "induction"
PLOT_TIMEOUT_S = 120.0  # first render on CPU: the probe computes in the server
IDLE_GIVE_UP_S = 15.0  # idle this long (script done) without a chart element: the page draws none by default
CHART_ELEMENT = '[data-testid="stPlotlyChart"]'  # present before Plotly has drawn into it (plotly.js loads lazily)
IDLE_APP = '[data-testid="stApp"][data-test-connection-state="CONNECTED"][data-test-script-state="notRunning"]'


def rows(model, model_label: str, quick: bool) -> list[dict]:
    """The browser row once per run, on the embedded model (the server loads its own copy; `model` is unused)."""
    if model_label != EMBEDDED_MODEL_NAME:
        return []
    return [browser_row(quick)]


def browser_row(quick: bool) -> dict:
    """First (uncached) vs cached render of a probe page in headless Chromium; see the module docstring."""
    page_name = os.environ.get(BROWSER_PAGE_ENV, BROWSER_PAGE)
    name = f"cached page render vs first render ({page_name} page)"
    if os.environ.get(BROWSER_ENV) == "0":
        return {"name": name, "skipped": "browser row turned off (--no-browser)"}
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        return {"name": name, "skipped": "chromium not found (apt-get install -y chromium); browser row not measured"}
    try:
        from playwright.sync_api import sync_playwright

        from tests.e2e.helpers import CHROMIUM_ARGS, EXCEPTION, PLOTLY, start_server, stop_server
    except ImportError as error:
        return {"name": name, "skipped": f"browser tooling missing ({error}); pip install -r requirements-dev.txt"}

    first_repeats, cached_repeats = (1, 2) if quick else (3, 5)  # a first render computes: the costly one
    with tempfile.TemporaryDirectory(prefix="assoclens-bench-browser-") as folder:
        db_path = Path(folder) / "results.duckdb"
        store = ResultStore(db_path)
        server = start_server(db_path, Path(folder) / "streamlit.log")
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
                context = browser.new_context(viewport={"width": 1400, "height": 1000})
                try:
                    url = server.page_url(page_name)
                    # untimed warm-up visit: model load, the page's imports in the server, plotly.js in the browser
                    _render_seconds(context, url, PLOTLY, EXCEPTION, server, timeout_s=2 * PLOT_TIMEOUT_S)
                    first, cached = [], []
                    for round_index in range(max(first_repeats, cached_repeats)):  # interleaved: load drift hits both
                        if round_index < first_repeats:
                            for run_id in store.list_runs()["run_id"]:  # an empty store: the page computes
                                store.delete(run_id)
                            first.append(_render_seconds(context, url, PLOTLY, EXCEPTION, server))
                            if store.list_runs().empty:
                                raise RuntimeError(f"the {page_name} page drew a plot but stored no run")
                        if round_index < cached_repeats:
                            cached.append(_render_seconds(context, url, PLOTLY, EXCEPTION, server))
                finally:
                    context.close()
                    browser.close()
        finally:
            stop_server(server)
    cached_s, first_s = statistics.median(cached), statistics.median(first)
    return {
        "name": name,
        "ratio": first_s / cached_s,
        "probe_s": cached_s,
        "baseline_s": first_s,
        "probe_peak_mb": None,
        "baseline_peak_mb": None,
        "repeats": cached_repeats,
        "first_repeats": first_repeats,
        "target": None,
        "note": "speed-up (higher is better); navigation to the first visible .js-plotly-plot in headless Chromium, "
        "a new session each time, after one untimed warm-up visit (model, imports, plotly.js loaded); "
        "baseline = empty store (the server computes the page's default runs)",
    }


def _render_seconds(
    context, url: str, plot_selector: str, exception_selector: str, server, timeout_s: float = PLOT_TIMEOUT_S
) -> float:
    """Seconds from navigation to the first visible Plotly chart of a page that runs its default probe on load.

    Fails fast when the page sits idle (script finished) for IDLE_GIVE_UP_S without any chart element.
    """
    page = context.new_page()
    try:
        started = time.perf_counter()
        page.goto(url, wait_until="commit")
        deadline = started + timeout_s
        plot, idle, idle_since = page.locator(plot_selector).first, page.locator(IDLE_APP), None
        while not plot.is_visible():
            now = time.perf_counter()
            if page.locator(exception_selector).count():
                raise RuntimeError(f"the page raised: {page.locator(exception_selector).first.inner_text()[:300]}")
            idle_since = (idle_since or now) if idle.count() and not page.locator(CHART_ELEMENT).count() else None
            if idle_since is not None and now - idle_since > IDLE_GIVE_UP_S:
                raise RuntimeError(f"{url} finished running without drawing a Plotly chart (placeholder page?)")
            if now > deadline:
                raise RuntimeError(f"no Plotly chart on {url} after {timeout_s:.0f} s; "
                                   f"server log: {server.log_tail(300)!r}")  # fmt: skip
            page.wait_for_timeout(20)
        return time.perf_counter() - started
    finally:
        page.close()
