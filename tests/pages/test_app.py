"""The app and every page render without exception (Streamlit AppTest, no browser)."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[2]
PAGES = sorted(
    p.relative_to(ROOT).as_posix() for p in (ROOT / "pages").glob("*.py") if p.stem not in {"common", "__init__"}
)


def start_app(**session_state: object) -> AppTest:
    """First run of the entry script. Widget state is preset rather than changed between runs because AppTest
    reruns only the current page's file when the app has a `pages/` folder (the sidebar would not re-render)."""
    app = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    for key, value in session_state.items():
        app.session_state[key] = value
    return app.run()


def test_home_renders_with_embedded_model_selected(store_path: Path) -> None:
    app = start_app()
    assert not app.exception
    assert app.title[0].value == "AssocLens"
    assert app.sidebar.radio(key="model_source").value == "Embedded organism"
    assert any("Loaded **organism**" in caption.value for caption in app.sidebar.caption)


@pytest.mark.parametrize("page", PAGES)
def test_every_page_renders(page: str, store_path: Path) -> None:
    app = start_app()
    app.switch_page(page).run()
    assert not app.exception, f"{page}: {app.exception}"


def test_unknown_model_name_shows_one_error_and_app_keeps_working(store_path: Path) -> None:
    app = start_app(model_source="Hugging Face name or local folder", model_name="no-such-org/no-such-model")
    assert not app.exception
    assert len(app.sidebar.error) == 1
    assert "no-such-org/no-such-model" in app.sidebar.error[0].value
    assert app.title[0].value == "AssocLens"


def test_history_lists_opens_and_deletes_runs(store_path: Path) -> None:
    import pandas as pd

    from cache import Payload, ResultStore, RunKey

    store = ResultStore(store_path)
    run = store.put(
        RunKey.build("induction", "1", {"model_id": "organism"}, {"seed": 1}),
        Payload(tables={"scores": pd.DataFrame({"layer": [0, 1], "score": [0.1, 0.9]})}, summary={"best": 0.9}),
        duration_s=0.5,
    )
    app = start_app()
    assert len(app.dataframe) == 1
    app.selectbox(key="history_open").set_value(run.run_id).run()
    assert not app.exception
    assert any("scores" in markdown.value for markdown in app.markdown)
    app.button(key="history_delete").click().run()
    assert store.list_runs().empty
