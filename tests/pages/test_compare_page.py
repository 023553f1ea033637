"""Compare runs page (Streamlit AppTest): opened by URL, by its own pickers and from the home page's run history, on
real stored runs: two induction scans of the embedded organism at two checkpoints and one tiny spectra-memory run."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from cache import ResultStore
from probes import wiring
from probes.induction.scores import ScanConfig
from probes.models import ModelSpec
from probes.spectra.memory import MemoryConfig
from probes.wiring import Request

APP = str(Path(__file__).resolve().parents[2] / "app.py")
PAGE = "pages/compare.py"
TIMEOUT = 180
REVISIONS = ("step-250", "step-750")
FIGURE_TITLES = ["Induction score per head, by run", "Top induction score vs training step"]


@pytest.fixture(scope="module")
def stored(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A result database with the three runs, computed once; each test gets a copy (see `db`)."""
    path = tmp_path_factory.mktemp("compare-store") / "results.duckdb"
    store = ResultStore(path)
    induction = [
        wiring.run(store, Request("induction", ScanConfig(seq_len=10, n_seqs=2),
                                  ModelSpec(name="organism", revision=revision, device="cpu"))).run_id
        for revision in REVISIONS
    ]  # fmt: skip
    memory = wiring.run(store, Request("spectra-memory", MemoryConfig(n_classes=8, d_model=8, steps=2,
                                                                      optimizers=("adam",)))).run_id  # fmt: skip
    return {"path": path, "induction": induction, "memory": memory}


@pytest.fixture
def db(stored: dict, store_path: Path) -> dict:
    """This test's own copy of the stored runs, at $ASSOCLENS_DB."""
    for suffix in ("", ".wal"):
        source = stored["path"].with_name(stored["path"].name + suffix)
        if source.exists():
            shutil.copyfile(source, store_path.with_name(store_path.name + suffix))
    return stored


def open_compare(runs: str | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run()
    if runs is not None:
        at.query_params["runs"] = runs
    at.switch_page(PAGE).run()
    return at


def chart_titles(at: AppTest) -> list[str]:
    return [json.loads(chart.proto.spec)["layout"]["title"]["text"] for chart in at.get("plotly_chart")]


def download_labels(at: AppTest) -> list[str]:
    return [button.proto.label for button in at.get("download_button")]


def assert_comparison_shown(at: AppTest, run_ids: list[str]) -> None:
    assert not at.exception, at.exception
    assert not at.error, [error.value for error in at.error]
    assert at.title[0].value == "Compare runs"
    assert chart_titles(at) == FIGURE_TITLES
    table = at.dataframe[0].value
    assert list(table.columns) == [f"organism@{revision}" for revision in REVISIONS]
    assert list(table.loc["run id"]) == [run_id[:12] for run_id in run_ids]
    assert download_labels(at) == ["Download CSV", "Download Parquet"]
    assert at.query_params["runs"] == ",".join(run_id[:12] for run_id in run_ids)  # short, shareable
    assert any(f"compare?runs={run_id[:12]}" in block.value for block in at.code for run_id in run_ids)


def test_url_with_full_ids_draws_figures_table_and_downloads(db):
    at = open_compare(",".join(db["induction"]))
    assert_comparison_shown(at, db["induction"])
    assert at.selectbox(key="compare_probe").value == "induction"
    assert at.multiselect(key="compare_runs").value == db["induction"]


def test_url_with_8_character_prefixes_and_spaces(db):
    at = open_compare(" , ".join(run_id[:8] for run_id in db["induction"]))
    assert_comparison_shown(at, db["induction"])


def test_mixed_probes_show_one_error_and_no_traceback(db):
    at = open_compare(f"{db['induction'][0]},{db['memory'][:12]}")
    assert not at.exception, at.exception
    assert len(at.error) == 1
    assert at.error[0].value.startswith("Runs of different probes cannot be compared")
    assert "induction (1 run)" in at.error[0].value and "spectra-memory (1 run)" in at.error[0].value
    assert chart_titles(at) == [] and download_labels(at) == []
    assert at.query_params["runs"] == f"{db['induction'][0]},{db['memory'][:12]}"  # left as typed, beside the error


def test_unknown_id_shows_one_error(db):
    at = open_compare(f"{db['induction'][0][:12]},0123456789abcdef")
    assert not at.exception, at.exception
    assert len(at.error) == 1
    assert "0123456789abcdef" in at.error[0].value
    assert chart_titles(at) == []


def test_one_run_in_the_url_asks_for_two(db):
    at = open_compare(db["induction"][0][:12])
    assert not at.exception, at.exception
    assert len(at.error) == 1 and "at least two runs" in at.error[0].value


def test_pickers_without_a_url_compare_and_write_the_url(db):
    at = open_compare()
    assert not at.exception, at.exception
    assert not at.error
    assert chart_titles(at) == []
    assert at.selectbox(key="compare_probe").value == "induction"  # the probe with the most runs
    at.multiselect(key="compare_runs").set_value(db["induction"]).run()
    assert_comparison_shown(at, db["induction"])
    at.multiselect(key="compare_runs").set_value(db["induction"][:1]).run()
    assert not at.exception and chart_titles(at) == []
    assert "runs" not in at.query_params


def test_empty_store_renders_with_a_hint(store_path):
    at = open_compare()
    assert not at.exception, at.exception
    assert not at.error
    assert at.title[0].value == "Compare runs"
    assert any("No stored runs" in info.value for info in at.info)


def test_home_selection_leads_to_the_compare_page(db):
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    assert at.title[0].value == "AssocLens"
    go = at.button(key="history_compare_go")
    assert go.disabled  # nothing selected yet
    at.multiselect(key="history_compare").set_value([db["induction"][0], db["memory"]]).run()
    assert len(at.error) == 1 and at.error[0].value.startswith("Runs of different probes cannot be compared")
    assert at.button(key="history_compare_go").disabled
    at.multiselect(key="history_compare").set_value(db["induction"]).run()
    assert not at.error and not at.button(key="history_compare_go").disabled
    at.button(key="history_compare_go").click().run()
    assert_comparison_shown(at, db["induction"])
