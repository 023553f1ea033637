"""The Compare runs page in a real browser, opened from a shareable URL: `/compare?runs=<id1>,<id2>` of two stored
induction scans of the embedded organism at two checkpoints. Screenshot: artifacts/screenshots/compare.png."""

from __future__ import annotations

from cache import ResultStore
from probes import wiring
from probes.induction.scores import ScanConfig
from probes.models import ModelSpec
from probes.wiring import Request
from tests.e2e.helpers import (
    ERROR_BOX,
    assert_no_exception,
    expect_text,
    main_text,
    screenshot,
    wait_for_figure,
    wait_idle,
)

REVISIONS = ("step-250", "step-750")
FIGURE_TITLES = ["Induction score per head, by run", "Top induction score vs training step"]


def store_scans(server) -> list[str]:
    """Two small induction scans, stored in the running server's database (the store takes one writer at a time
    and opens a connection per call, so the server keeps working meanwhile)."""
    store = ResultStore(server.db_path)
    return [
        wiring.run(store, Request("induction", ScanConfig(seq_len=12, n_seqs=4),
                                  ModelSpec(name="organism", revision=revision, device="cpu"))).run_id
        for revision in REVISIONS
    ]  # fmt: skip


def test_compare_link_draws_the_overlaid_figures_and_the_table(page, app_server) -> None:
    run_ids = store_scans(app_server)
    page.goto(f"{app_server.url}/compare?runs={run_ids[0]},{run_ids[1][:8]}", wait_until="domcontentloaded")
    wait_idle(page)
    assert_no_exception(page, app_server)  # fail fast instead of waiting for figures that will not come
    assert page.locator(ERROR_BOX).count() == 0, page.locator(ERROR_BOX).first.inner_text()
    main = page.locator('[data-testid="stMain"]')
    expect_text(main, "Headline numbers")
    facts = wait_for_figure(page)
    page.wait_for_timeout(500)  # let the second figure lay out too
    assert_no_exception(page, app_server)
    assert page.locator(ERROR_BOX).count() == 0, page.locator(ERROR_BOX).first.inner_text()
    assert main.locator("h1").first.inner_text().strip() == "Compare runs"
    facts = [fact for fact in facts if fact["traces"]]
    assert [fact["title"] for fact in facts] == FIGURE_TITLES, facts
    assert all(fact["points"] > 0 for fact in facts), facts
    text = main_text(page)
    for revision in REVISIONS:
        assert f"organism@{revision}" in text
    assert "Download CSV" in text and "Download Parquet" in text
    shared = ",".join(run_id[:12] for run_id in run_ids)
    assert f"compare?runs={shared}" in text  # the shareable link
    assert page.url.endswith(f"/compare?runs={shared.replace(',', '%2C')}") or page.url.endswith(
        f"/compare?runs={shared}"
    ), page.url
    nav = page.locator('[data-testid="stSidebarNav"]').inner_text()
    assert "Compare runs" in nav
    screenshot(page, "compare")
