"""Paper-settings presets and the published-reference switch on the probe pages (Streamlit AppTest)."""

from __future__ import annotations

import json
from pathlib import Path

from streamlit.testing.v1 import AppTest

from probes import references
from probes.models import ModelSpec
from probes.references import PUBLISHED_GROUP
from tests.pages.test_poisoned_page import paste, tiny_items
from tests.pages.test_steering_page import paste_tiny_sets

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 180


def open_page(page: str, model_dir: Path, **state: object) -> AppTest:
    app = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)
    app.session_state["model_spec"] = ModelSpec(name=str(model_dir), device="cpu")
    for key, value in state.items():
        app.session_state[key] = value
    app.run()
    return app.switch_page(f"pages/{page}.py").run()


def choose_preset(app: AppTest, page: str, index: int = 1) -> AppTest:
    app.selectbox(key=f"{page}-preset").set_value(references.preset_options(page)[index])
    return app.run()


def specs(app: AppTest) -> list[dict]:
    return [json.loads(chart.proto.spec) for chart in app.get("plotly_chart")]


def published_parts(spec: dict) -> list[str]:
    """The reference traces (legend group "published") and notes (annotations named "published:<id>") of a figure."""
    traces = [trace.get("name", "") for trace in spec["data"] if trace.get("legendgroup") == PUBLISHED_GROUP]
    notes = [a["name"] for a in spec["layout"].get("annotations", []) if a.get("name", "").startswith("published:")]
    return traces + notes


def figure(app: AppTest, title_start: str) -> dict:
    for spec in specs(app):
        if spec["layout"]["title"]["text"].startswith(title_start):
            return spec
    raise AssertionError(f"no figure titled {title_start!r}")


def no_trouble(app: AppTest) -> None:
    assert not app.exception, app.exception
    assert not app.error, [e.value for e in app.error]


def test_spectra_preset_fills_the_memory_widgets_and_the_switch_hides_the_references(tiny_model_dir, store_path):
    app = open_page("spectra", tiny_model_dir, mem_k=8, mem_d=8, mem_steps=4)
    assert app.toggle(key="spectra-references").value is True
    app = choose_preset(app, "spectra")
    no_trouble(app)
    assert (app.number_input(key="mem_k").value, app.number_input(key="mem_d").value) == (64, 64)
    assert app.number_input(key="mem_eps").value == 0.1 and app.number_input(key="mem_steps").value == 30
    assert app.selectbox(key="mem_embeddings").value == "orthogonal" and app.number_input(key="mem_zipf").value == 1.0
    assert any("Muon Outperforms Adam" in info.value for info in app.info)
    balance = figure(app, "Balance per optimizer")
    assert published_parts(balance) == ["published · Muon vs Adam (ICLR 2026): balance"]
    stars = next(trace for trace in balance["data"] if trace.get("legendgroup") == PUBLISHED_GROUP)
    assert stars["y"] == [0.018, 0.016, 0.904]
    app.toggle(key="spectra-references").set_value(False).run()
    no_trouble(app)
    assert specs(app) and not [part for spec in specs(app) for part in published_parts(spec)]
    assert app.number_input(key="mem_k").value == 64  # the preset's values stay


def test_poisoned_preset_sets_the_paper_grid_and_says_what_to_load(tiny_model_dir, store_path):
    app = paste(open_page("poisoned", tiny_model_dir), json.dumps(tiny_items()))
    app = choose_preset(app, "poisoned")
    no_trouble(app)
    assert app.slider(key="poisoned-n-items").value == 20 and app.select_slider(key="poisoned-steps").value == 20
    assert app.multiselect(key="poisoned-positions").value == ["first", "last", "random"]
    assert app.slider(key="mitigate-n-items").value == 20 and app.select_slider(key="mitigate-steps").value == 20
    infos = " ".join(info.value for info in app.info)
    assert "load Qwen/Qwen2-1.5B-Instruct" in infos and "Poisoned Context Testbed" in infos
    assert app.session_state["model_spec"].name == str(tiny_model_dir)  # the sidebar's model is not switched
    assert "model_name" not in app.session_state or app.session_state["model_name"] != "Qwen/Qwen2-1.5B-Instruct"


def test_poisoned_curve_draws_the_qwen2_points_until_switched_off(tiny_model_dir, store_path):
    app = paste(open_page("poisoned", tiny_model_dir), json.dumps(tiny_items()))
    app.slider(key="poisoned-n-items").set_value(4)
    app.select_slider(key="poisoned-steps").set_value(2)
    app.number_input(key="poisoned-bootstrap").set_value(0)
    app.button[0].click()  # the form's "Compute curves"
    app.run()
    no_trouble(app)
    curve = figure(app, "Poisoned-context curve")
    assert published_parts(curve) == ["published · RW-Steering (EMNLP 2025): Qwen2, read off (LLM judge)"]
    app.toggle(key="poisoned-references").set_value(False).run()
    no_trouble(app)
    assert not published_parts(figure(app, "Poisoned-context curve"))


def test_steering_preset_sets_flexac_layers_and_pairs_and_the_switch_hides_the_note(tiny_model_dir, store_path):
    app = open_page("steering", tiny_model_dir, steering_sweep="0,2", steering_n_facts=4, steering_tokens=4)
    app = paste_tiny_sets(app)
    app = choose_preset(app, "steering")
    no_trouble(app)
    n_layers = len(app.multiselect(key="steering_layers").options)
    expected = references.presets("steering")[0].layers.layers(n_layers)
    assert app.multiselect(key="steering_layers").value == expected and len(expected) == min(3, n_layers)
    assert app.number_input(key="steering_pairs").value == 50
    sweep = figure(app, "Dose-response")
    assert published_parts(sweep) == ["published:flexac-published"]
    app.toggle(key="steering-references").set_value(False).run()
    no_trouble(app)
    assert not published_parts(figure(app, "Dose-response"))


def test_induction_presets_set_the_task_and_reddys_data(tiny_model_dir, store_path):
    app = open_page("induction", tiny_model_dir, induction_seq_len=6, induction_n_seqs=1)
    app = choose_preset(app, "induction", 2)  # Reddy's bursty task
    no_trouble(app)
    assert app.radio(key="induction_task").value == "bursty"
    values = {key: app.select_slider(key=key).value for key in ("induction_k", "induction_n", "induction_b")}
    assert values == {"induction_k": 512, "induction_n": 8, "induction_b": 2}
    assert app.slider(key="induction_pb").value == 1.0
    app = choose_preset(app, "induction", 1)  # Olsson: repeated random tokens, a Pythia sweep to load
    no_trouble(app)
    assert app.radio(key="induction_task").value == "repeat"
    assert any("EleutherAI/pythia-160m-deduped" in info.value for info in app.info)
    assert app.session_state["model_spec"].name == str(tiny_model_dir)


def test_induction_emergence_note_follows_the_switch(tiny_model_dir, store_path):
    state = {"induction_steps_repeat": 100, "induction_record_repeat": 50, "induction_seq_len": 6,
             "induction_n_seqs": 1}  # fmt: skip
    app = open_page("induction", tiny_model_dir, **state)
    app.button(key="induction_start_training").click().run()
    no_trouble(app)
    assert published_parts(figure(app, "Emergence")) == ["published:olsson-phase-change"]
    app.toggle(key="induction-references").set_value(False).run()
    no_trouble(app)
    assert not published_parts(figure(app, "Emergence"))


def test_apply_sets_the_chosen_paper_settings_again_after_a_widget_changed(tiny_model_dir, store_path):
    """In a browser, choosing the same preset again is no select-box change (no callback), so the "Apply" button beside
    it fills the widgets again with the chosen paper's settings; with no preset chosen there is nothing to apply (no
    button)."""
    app = open_page("spectra", tiny_model_dir, mem_k=8, mem_d=8, mem_steps=4)
    assert "spectra-preset-apply" not in [button.key for button in app.button]
    app = choose_preset(app, "spectra")
    assert app.number_input(key="mem_k").value == 64 and app.button(key="spectra-preset-apply").label == "Apply"
    app.number_input(key="mem_k").set_value(16)
    app.number_input(key="mem_steps").set_value(3)
    next(button for button in app.button if button.label == "Train the memory").click().run()  # the form's submit
    no_trouble(app)
    assert (app.number_input(key="mem_k").value, app.number_input(key="mem_steps").value) == (16, 3)
    assert app.selectbox(key="spectra-preset").value == references.preset_options("spectra")[1]  # still chosen
    app.button(key="spectra-preset-apply").click().run()
    no_trouble(app)
    assert (app.number_input(key="mem_k").value, app.number_input(key="mem_steps").value) == (64, 30)
    assert app.selectbox(key="spectra-preset").value == references.preset_options("spectra")[1]


def test_apply_on_the_steering_page_sets_the_layers_for_this_model_again(tiny_model_dir, store_path):
    app = open_page("steering", tiny_model_dir, steering_sweep="0,2", steering_n_facts=4, steering_tokens=4)
    app = choose_preset(paste_tiny_sets(app), "steering")
    layers = app.multiselect(key="steering_layers")
    expected = references.presets("steering")[0].layers.layers(len(layers.options))
    assert layers.value == expected and app.number_input(key="steering_pairs").value == 50
    app.multiselect(key="steering_layers").set_value([0]).run()
    app.number_input(key="steering_pairs").set_value(7).run()
    assert app.multiselect(key="steering_layers").value == [0] and app.number_input(key="steering_pairs").value == 7
    app.button(key="steering-preset-apply").click().run()
    no_trouble(app)
    assert (
        app.multiselect(key="steering_layers").value == expected and app.number_input(key="steering_pairs").value == 50
    )
