"""Associative steering page (Streamlit AppTest): pasted prompt sets on a tiny model, the slider, the sweep."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from probes.models import EMBEDDED_MODEL_DIR, ModelSpec
from probes.tiny import default_words

APP = str(Path(__file__).resolve().parents[2] / "app.py")
PAGE = "pages/steering.py"
WORDS = default_words(200)
TIMEOUT = 180


def open_page(model_dir: Path | None, **state) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    if model_dir is not None:
        at.session_state["model_spec"] = ModelSpec(name=str(model_dir), device="cpu")
    for key, value in state.items():
        at.session_state[key] = value
    at.run()
    at.switch_page(PAGE).run()
    return at


def paste_tiny_sets(at: AppTest) -> AppTest:
    at.radio(key="steering_sets_source").set_value("Paste or upload").run()
    at.text_area(key="steering_faithful").input(
        "\n".join(f"the {WORDS[i]} of {WORDS[i + 1]} is" for i in range(0, 24, 2))
    )
    at.text_area(key="steering_associative").input(
        "\n".join(f"{WORDS[i + 100]} {WORDS[i]} , {WORDS[i + 1]} and" for i in range(0, 24, 2))
    )
    at.text_input(key="steering_vocabulary").input(",".join(WORDS[100:140]))
    facts = "\n".join(f"the {WORDS[i]} of {WORDS[i + 1]} is,{WORDS[i + 50]}" for i in range(0, 24, 2))
    at.text_area(key="steering_facts").input("prompt,answer\n" + facts)
    return at.run()


def shown_texts(at: AppTest) -> tuple[str, str]:
    texts = [element.value for element in at.text]
    assert len(texts) == 2, texts
    return texts[0], texts[1]


def test_pasted_sets_build_vector_steer_and_sweep(tiny_model_dir, store_path):
    at = open_page(tiny_model_dir, steering_sweep="-4,0,4", steering_n_facts=4, steering_tokens=6)
    at = paste_tiny_sets(at)
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    assert at.title[0].value == "Associative steering (FlexAC)"
    assert len(at.get("plotly_chart")) == 2  # per-layer figure and dose-response figure
    assert at.slider(key="steering_strength").label == "Associative strength"
    baseline, steered = shown_texts(at)
    prompt = f"the {WORDS[0]} of {WORDS[1]} is"
    assert baseline.startswith(prompt) and steered.startswith(prompt)
    seen = {}
    for strength in (-4.0, 0.0, 4.0):
        at.slider(key="steering_strength").set_value(strength).run()
        assert not at.exception
        seen[strength] = shown_texts(at)[1]
        assert shown_texts(at)[0] == baseline  # the baseline never moves
    assert seen[0.0] == baseline
    assert seen[-4.0] != baseline or seen[4.0] != baseline  # moving the slider changes the steered text
    assert any("Collapse" in caption.value for caption in at.caption)


def test_bad_sweep_strengths_show_one_error(tiny_model_dir, store_path):
    at = open_page(tiny_model_dir, steering_sweep="1,two", steering_tokens=4)
    at = paste_tiny_sets(at)
    assert not at.exception
    assert [e.value for e in at.error] == ["Sweep strengths must be numbers separated by commas, got '1,two'."]


def test_too_few_prompts_are_refused_with_a_message(tiny_model_dir, store_path):
    at = open_page(tiny_model_dir)
    at.radio(key="steering_sets_source").set_value("Paste or upload").run()
    at.text_area(key="steering_faithful").input("only one prompt").run()
    assert not at.exception
    assert any("at least 2 faithful and 2 associative" in e.value for e in at.error)
    assert not at.get("plotly_chart")


@pytest.mark.skipif(
    not (EMBEDDED_MODEL_DIR / "data" / "steering_prompts.json").is_file(), reason="the trained organism is absent"
)
def test_default_page_on_the_embedded_organism(store_path):
    at = open_page(None, steering_sweep="-2,0,2", steering_n_facts=24)
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    assert len(at.get("plotly_chart")) == 2
    baseline, steered = shown_texts(at)
    assert baseline != steered  # the default strength (+2) visibly shifts the organism's continuation


ORGANISM_PRESENT = (EMBEDDED_MODEL_DIR / "data" / "steering_prompts.json").is_file()
ENGLISH_FAITHFUL = ["fact: the weather in London is", "fact: my grandmother baked bread in", "fact: the violin is"]


def element_types_in_order(node) -> list[str]:
    """Depth-first element types of the page, in the order they are drawn."""
    children = getattr(node, "children", None)
    if children is None:
        return [node.type]
    return [kind for key in sorted(children) for kind in element_types_in_order(children[key])]


@pytest.mark.skipif(not ORGANISM_PRESENT, reason="the trained organism is absent")
def test_words_the_organism_cannot_read_give_a_warning_above_the_figures(store_path):
    at = open_page(None, steering_sweep="0,1", steering_n_facts=4, steering_tokens=4)
    at.radio(key="steering_sets_source").set_value("Paste or upload").run()
    at.text_area(key="steering_faithful").input("\n".join(ENGLISH_FAITHFUL))
    at.text_area(key="steering_associative").input("\n".join(p.replace("fact:", "dream:") for p in ENGLISH_FAITHFUL))
    at.text_area(key="steering_facts").input("prompt,answer\nfact: the weather in London is,rainy")
    at.run()
    assert not at.exception, at.exception
    warnings = [w.value for w in at.warning]
    assert len(warnings) == 2, warnings  # the full warning above the figures, a reminder above the sweep
    assert "cannot read the prompt sets' text" in warnings[0] and "'London'" in warnings[0]
    assert "mostly measures the unknown token" in warnings[1]
    order = element_types_in_order(at.main)
    first_figure, sweep_figure = [i for i, kind in enumerate(order) if kind == "plotly_chart"]
    warned = [i for i, kind in enumerate(order) if kind == "warning"]
    assert warned[0] < first_figure < warned[1] < sweep_figure


@pytest.mark.skipif(not ORGANISM_PRESENT, reason="the trained organism is absent")
def test_organism_defaults_have_no_coverage_warning_and_state_the_unit(store_path):
    at = open_page(None, steering_sweep="0,2", steering_n_facts=8, steering_tokens=4)
    assert not at.exception, at.exception
    assert not at.warning, [w.value for w in at.warning]
    unit = [c.value for c in at.caption if c.value.startswith("Strength unit")]
    assert len(unit) == 1 and "+2 100% of the distance" in unit[0], unit
    figure = at.get("plotly_chart")[1].proto.spec
    assert "2 = faithful output moved one centroid distance toward associative" in figure


def test_residual_unit_offers_its_multiple(tiny_model_dir, store_path):
    at = open_page(tiny_model_dir, steering_sweep="0,1", steering_n_facts=4, steering_tokens=4)
    at = paste_tiny_sets(at)
    at.selectbox(key="steering_unit").set_value("residual").run()
    assert not at.exception and not at.error
    assert at.number_input(key="steering_relative_norm").value == 0.3
    assert any("Strength unit: residual" in c.value for c in at.caption)
