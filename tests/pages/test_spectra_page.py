"""Optimizer spectra page (Streamlit AppTest): memory, small transformer and loaded-model views."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[2]
PAGE = "pages/spectra.py"
SMALL_MEMORY = {"mem_k": 12, "mem_d": 12, "mem_steps": 8}


def open_page(model_dir: Path, **state: object) -> AppTest:
    app = AppTest.from_file(str(ROOT / "app.py"), default_timeout=240)
    app.session_state["model_source"] = "Hugging Face name or local folder"
    app.session_state["model_name"] = str(model_dir)
    app.session_state["model_device"] = "cpu"
    for key, value in state.items():
        app.session_state[key] = value
    app.run()
    return app.switch_page(PAGE).run()


def titles(app: AppTest) -> list[str]:
    return [json.loads(chart.proto.spec)["layout"]["title"]["text"] for chart in app.get("plotly_chart")]


def figure(app: AppTest, title_start: str) -> dict:
    for chart in app.get("plotly_chart"):
        spec = json.loads(chart.proto.spec)
        if spec["layout"]["title"]["text"].startswith(title_start):
            return spec
    raise AssertionError(f"no figure titled {title_start!r} in {titles(app)}")


def test_memory_view_trains_draws_and_serves_from_cache(tiny_model_dir, store_path):
    app = open_page(tiny_model_dir, **SMALL_MEMORY)
    assert not app.exception and not app.error
    assert app.title[0].value == "Optimizer spectra: Muon vs Adam"
    table = app.dataframe[0].value
    assert list(table["optimizer"]) == ["GD", "SignGD", "Adam", "Muon"]
    assert {"balance", "svd_entropy", "head_loss", "tail_loss"} <= set(table.columns)
    shown = titles(app)
    assert shown[0].startswith("Per-class probability over training")
    assert "Singular values of W at step 8" in shown
    classes = figure(app, "Per-class probability")
    assert len([t for t in classes["data"] if t.get("mode") == "lines"]) == 4 * 12  # one line per class and optimizer
    for spec in (figure(app, t) for t in shown):  # every figure has axis titles
        assert spec["layout"]["xaxis"]["title"]["text"] and spec["layout"]["yaxis"]["title"]["text"]
    assert "computed in" in " ".join(c.value for c in app.caption)

    app.slider(key="mem_step").set_value(3)
    app.radio(key="mem_matrix").set_value("update")
    app.run()
    assert not app.exception
    assert "Singular values of the update W_t − W_(t−1) at step 3" in titles(app)
    assert "served from the cache" in " ".join(c.value for c in app.caption)


def test_memory_view_bad_dimensions_show_one_error(tiny_model_dir, store_path):
    app = open_page(tiny_model_dir, mem_k=12, mem_d=8, mem_steps=4)
    assert not app.exception
    assert len(app.error) == 1 and "d_model >= n_classes" in app.error[0].value
    assert not app.get("plotly_chart")


def test_transformer_view_trains_on_request(tiny_model_dir, store_path):
    app = open_page(tiny_model_dir, spectra_section="Small transformer", tr_steps=12, tr_individuals=9)
    assert not app.exception
    assert any("Train the transformers" in i.value for i in app.info)
    assert not app.get("plotly_chart")
    app.button[0].click()  # the form's submit button
    app.run()
    assert not app.exception and not app.error
    table = app.dataframe[0].value
    assert list(table["setup"]) == ["Adam", "Muon", "Muon on VO+FFN"]
    assert {"head_accuracy", "tail_accuracy", "W_VO_svd_entropy"} <= set(table.columns)
    shown = titles(app)
    assert shown[0].startswith("First-token accuracy per frequency group")
    assert any(t.startswith("Singular values of W_VO in layer 0 at step 12") for t in shown)
    assert "160M" in " ".join(c.value for c in app.caption)


@pytest.fixture(scope="module")
def model_with_revisions(tmp_path_factory) -> Path:
    from probes.tiny import save_tiny_model

    folder = save_tiny_model(tmp_path_factory.mktemp("tiny-revisions"), n_layer=2, seed=3)
    save_tiny_model(folder / "revisions" / "step-10", n_layer=2, seed=4)
    return folder


def test_loaded_model_view_compares_two_checkpoints(model_with_revisions, store_path):
    app = open_page(model_with_revisions, spectra_section="Loaded model")
    assert not app.exception and not app.error
    assert "step-10" in app.selectbox(key="wt_compare_revision").options
    single = figure(app, "Isotropy per layer")
    assert {t["name"].split(" · ")[0] for t in single["data"]} >= {"W_V", "W_O", "W_VO", "W_VO_sum", "W_in", "W_out"}

    app.selectbox(key="wt_compare_revision").set_value("step-10")
    app.run()
    assert not app.exception and not app.error
    both = figure(app, "Isotropy per layer")
    assert any(t["name"].endswith("@step-10") and t["line"]["dash"] == "dash" for t in both["data"])
    assert len(both["data"]) == 2 * len(single["data"])
    spectrum = figure(app, "Singular values of")
    assert len(spectrum["data"]) == 2


def test_loaded_model_view_unknown_comparison_is_one_error(tiny_model_dir, store_path):
    app = open_page(tiny_model_dir, spectra_section="Loaded model", wt_compare_name="/nonexistent/model-folder")
    assert not app.exception
    assert len(app.error) == 1
    assert figure(app, "Isotropy per layer")  # the sidebar model is still shown
