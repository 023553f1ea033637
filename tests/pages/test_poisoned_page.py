"""Poisoned-context page (Streamlit AppTest): paste a testbed, compute curves, reuse the cache, bad input, explore."""

from __future__ import annotations

import json
from pathlib import Path

from streamlit.testing.v1 import AppTest

from cache import ResultStore

ROOT = Path(__file__).resolve().parents[2]
PAGE = "pages/poisoned.py"


def tiny_items(count: int = 4) -> list[dict]:
    from probes.tiny import default_words

    words = default_words(200)
    return [
        {
            "Question": f"the {words[4 * i]} of {words[4 * i + 1]} is ?",
            "Generated Information": [f"the {words[4 * i]} of {words[4 * i + 1]} is {words[4 * i + 2]} ."],
            "Input": f"{words[4 * i + 1]} is {words[4 * i + 3]} .",
            "Simple Answer": f"{words[4 * i + 1]} is {words[4 * i + 2]} .",
            "Synonym Sentence": [],
        }
        for i in range(count)
    ]


def open_page(model_dir: Path, **state: object) -> AppTest:
    app = AppTest.from_file(str(ROOT / "app.py"), default_timeout=180)
    app.session_state["model_source"] = "Hugging Face name or local folder"
    app.session_state["model_name"] = str(model_dir)
    app.session_state["model_device"] = "cpu"
    for key, value in state.items():
        app.session_state[key] = value
    app.run()
    return app.switch_page(PAGE).run()


def paste(app: AppTest, text: str, kind: str = "json") -> AppTest:
    app.radio(key="poisoned-source").set_value("Paste text")
    app.run()
    app.selectbox(key="poisoned-paste-format").set_value(kind)
    app.text_area(key="poisoned-paste").set_value(text)
    return app.run()


def test_pasted_testbed_computes_curves_and_then_serves_them_from_the_cache(tiny_model_dir, store_path) -> None:
    app = paste(open_page(tiny_model_dir), json.dumps(tiny_items()))
    assert not app.exception
    assert any("4 usable items" in s.value for s in app.success)
    app.slider(key="poisoned-n-items").set_value(4)
    app.select_slider(key="poisoned-steps").set_value(2)
    app.number_input(key="poisoned-bootstrap").set_value(20)
    app.button[0].click()  # the form's "Compute curves"
    app.run()
    assert not app.exception and not app.error
    figures = [json.loads(chart.proto.spec)["layout"]["title"]["text"] for chart in app.get("plotly_chart")]
    assert figures[0] == "Poisoned-context curve: poisoned rate vs share of inappropriate items"
    assert "Mean log-odds of the claim over the reference answer" in figures
    captions = " ".join(c.value for c in app.caption)
    assert "computed in" in captions
    runs = ResultStore(store_path).list_runs(probe="poisoned")
    assert len(runs) == 1

    app.run()  # a rerun (any widget change) asks again: served from the store, not recomputed
    assert "served from the cache" in " ".join(c.value for c in app.caption)
    assert len(ResultStore(store_path).list_runs(probe="poisoned")) == 1


BAD_TESTBEDS = [
    ('[{"Question": "x",]', "json", "not valid JSON"),
    ("[" * 40 + "]" * 40, "json", "nests deeper than 16"),
    ("question,appropriate\nq,a\n", "csv", "lacks column(s) inappropriate, reference, category"),
    ('[{"Question": ""}]', "json", "row 0: field 'Question' is missing or empty"),
]


def test_bad_pasted_testbeds_show_one_error_and_cache_nothing(tiny_model_dir, store_path) -> None:
    app = open_page(tiny_model_dir)
    for text, kind, message in BAD_TESTBEDS:
        app = paste(app, text, kind)
        assert not app.exception
        assert len(app.error) == 1 and message in app.error[0].value, (message, [e.value for e in app.error])
        assert not app.get("plotly_chart")
        assert not [b for b in app.button if b.label == "Compute curves"]  # nothing to compute from a bad file
    assert ResultStore(store_path).list_runs().empty


def test_explore_one_context_shows_log_odds_and_attribution(tiny_model_dir, store_path) -> None:
    app = paste(open_page(tiny_model_dir), json.dumps(tiny_items(1)))
    app.slider(key="poisoned-x-n-bad").set_value(1)
    app.checkbox(key="poisoned-x-generate").set_value(False)
    app.button(key="poisoned-x-run").click()
    app.run()
    assert not app.exception and not app.error
    assert any(m.label == "Log-odds claim vs reference (calibrated)" for m in app.metric)
    titles = [json.loads(chart.proto.spec)["layout"]["title"]["text"] for chart in app.get("plotly_chart")]
    assert "Leave-one-out attribution per context segment (red: inappropriate)" in titles
    assert len(ResultStore(store_path).list_runs(probe="poisoned-explore")) == 1


def english_items(count: int = 4) -> list[dict]:
    """Answers the organism can tell apart (its names), in English sentences it cannot read."""
    english = "The senator announced sweeping economic reforms during yesterday's televised parliamentary debate"
    return [
        {
            "Question": f"According to the newspaper, where was Vobil born? ({english.split()[i]})",
            "Generated Information": [f"{english} number {i}.", "Analysts expected inflation to remain stubborn."],
            "Input": "The birthplace of Vobil is Suzol.",
            "Simple Answer": "The birthplace of Vobil is Pital.",
            "Synonym Sentence": ["Commentators insisted the birthplace was elsewhere."],
        }
        for i in range(count)
    ]


def test_a_testbed_the_model_cannot_read_is_warned_about_above_the_figures(store_path) -> None:
    from probes.models import EMBEDDED_MODEL_DIR

    app = paste(open_page(EMBEDDED_MODEL_DIR), json.dumps(english_items()))
    app.slider(key="poisoned-n-items").set_value(4)
    app.select_slider(key="poisoned-steps").set_value(2)
    app.number_input(key="poisoned-bootstrap").set_value(0)
    app.button[0].click()
    app.run()
    assert not app.exception and not app.error, [e.value for e in app.error]
    warnings = [w.value for w in app.warning if "cannot read this testbed" in w.value]
    assert len(warnings) == 1 and "only " in warnings[0], [w.value for w in app.warning]
    order = [
        (node.type, str(getattr(node, "value", ""))) for child in app.main.children.values() for node in _walk(child)
    ]
    warning_at = next(i for i, (kind, value) in enumerate(order) if kind == "warning" and "cannot read" in value)
    assert warning_at < min(i for i, (kind, _) in enumerate(order) if kind == "plotly_chart")


def _walk(node):
    yield node
    for child in getattr(node, "children", {}).values():
        yield from _walk(child)


def test_the_built_in_testbed_fits_the_sidebars_model(tiny_model_dir) -> None:
    """A non-organism model is offered the English testbed (named with its size); the organism keeps its own."""
    from probes.models import EMBEDDED_MODEL_DIR
    from probes.poisoned.testbed import EMBEDDED_TESTBED, ENGLISH_TESTBED, load_testbed_file

    english, organism = load_testbed_file(ENGLISH_TESTBED), load_testbed_file(EMBEDDED_TESTBED)
    app = open_page(tiny_model_dir)
    assert not app.exception and not app.error
    label = f"English testbed ({len(english.items)} items, {len(english.categories())} categories)"
    assert app.radio(key="poisoned-source").options == [label, "Upload a file", "Paste text"]
    assert any(f"{len(english.items)} usable items" in s.value for s in app.success)
    app = open_page(EMBEDDED_MODEL_DIR)
    assert app.radio(key="poisoned-source").options[0] == f"Organism testbed ({len(organism.items)} items)"
    assert any(f"{len(organism.items)} usable items" in s.value for s in app.success)
