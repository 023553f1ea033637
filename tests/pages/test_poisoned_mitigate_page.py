"""Poisoned-context page, Mitigate tab (Streamlit AppTest): fine-tune the organism on its built-in testbed, see the
before/after figure and table, find the tuned revision in the sidebar; a testbed too small gives one message."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from probes.figures.poisoned import MITIGATION_TITLE

ROOT = Path(__file__).resolve().parents[2]
PAGE = "pages/poisoned.py"
QUICK = {"mitigate-n-items": 6, "mitigate-stage1": 3, "mitigate-stage2": 2, "mitigate-steps": 2}


@pytest.fixture(autouse=True)
def tuned_dir(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("ASSOCLENS_TUNED_DIR", str(tmp_path / "tuned"))
    return tmp_path / "tuned"


def open_page(**state: object) -> AppTest:
    app = AppTest.from_file(str(ROOT / "app.py"), default_timeout=300)
    app.session_state["model_device"] = "cpu"
    for key, value in {**QUICK, **state}.items():
        app.session_state[key] = value
    app.run()
    return app.switch_page(PAGE).run()


def submit(app: AppTest) -> AppTest:
    next(b for b in app.button if b.label == "Fine-tune and measure").click()
    return app.run()


def chart_titles(app: AppTest) -> list[str]:
    return [json.loads(chart.proto.spec)["layout"]["title"]["text"] for chart in app.get("plotly_chart")]


def test_mitigate_tab_fine_tunes_and_shows_before_and_after(store_path, tuned_dir) -> None:
    app = open_page()
    assert not app.exception
    assert MITIGATION_TITLE not in chart_titles(app)  # nothing is computed before the button
    app = submit(app)
    assert not app.exception and not app.error, [e.value for e in app.error]
    titles = chart_titles(app)
    assert MITIGATION_TITLE in titles and "RW-Steering fine-tuning loss" in titles
    table = next(frame.value for frame in app.dataframe if "clean accuracy (share 0)" in frame.value.index)
    assert list(table.columns) == ["before", "after"]
    revisions = [p.name for p in (tuned_dir / "organism" / "revisions").iterdir()]
    assert len(revisions) == 1 and revisions[0].startswith("rw-steering-")
    again = open_page()  # a new session: the stored mitigation is shown without pressing anything
    assert MITIGATION_TITLE in chart_titles(again)
    home = AppTest.from_file(str(ROOT / "app.py"), default_timeout=300).run()  # the sidebar renders on a first run
    assert revisions[0] in home.sidebar.selectbox(key="embedded_revision").options  # it offers the tuned model


def test_a_testbed_too_small_to_split_gives_one_message(store_path) -> None:
    from tests.pages.test_poisoned_page import paste
    from tests.probes.test_poisoned import tiny_testbed_items

    app = paste(open_page(), json.dumps(tiny_testbed_items(6)))
    app = submit(app)
    assert not app.exception
    assert any("at least 20" in e.value for e in app.error)
