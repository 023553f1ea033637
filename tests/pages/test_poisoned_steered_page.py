"""Poisoned-context page, curves tab: steer with a stored vector and overlay the curves at several strengths."""

from __future__ import annotations

import json

from cache import ResultStore
from probes.cli import main
from tests.pages.test_poisoned_page import open_page, paste, tiny_items
from tests.probes.test_steering_cli import WORDS


def build_vector(model_dir, store_path, tmp_path) -> str:
    sets = {
        "faithful": [f"the {WORDS[i]} of {WORDS[i + 1]} is" for i in range(0, 20, 2)],
        "associative": [f"{WORDS[i + 100]} {WORDS[i]} , {WORDS[i + 1]} and" for i in range(0, 20, 2)],
    }
    (tmp_path / "sets.json").write_text(json.dumps(sets))
    argv = [
        "steering",
        "vectors",
        "--model",
        str(model_dir),
        "--device",
        "cpu",
        "--prompts",
        str(tmp_path / "sets.json"),
    ]
    assert main([*argv, "--db", str(store_path)]) == 0
    return ResultStore(store_path).list_runs(probe="steering.vectors")["run_id"].iloc[0]


def test_steered_curves_overlay_the_strengths_of_a_stored_vector(tiny_model_dir, store_path, tmp_path) -> None:
    vector_id = build_vector(tiny_model_dir, store_path, tmp_path)
    app = paste(open_page(tiny_model_dir), json.dumps(tiny_items()))
    steer = app.selectbox(key="poisoned-steer-vector")
    assert vector_id in steer.options or any(vector_id[:12] in option for option in steer.options)
    assert app.text_input(key="poisoned-steer-strengths").value == "-2, 0, 2"
    app.slider(key="poisoned-n-items").set_value(4)
    app.select_slider(key="poisoned-steps").set_value(2)
    app.number_input(key="poisoned-bootstrap").set_value(0)
    steer.set_value(vector_id)
    app.button[0].click()  # the form's "Compute curves"
    app.run()
    assert not app.exception and not app.error, [e.value for e in app.error]
    layouts = [json.loads(chart.proto.spec)["layout"] for chart in app.get("plotly_chart")]
    assert len(layouts) == 1
    layout = layouts[0]
    assert (
        layout["title"]["text"]
        == "Poisoned-context curves under steering: poisoned rate vs share of inappropriate items"
    )
    assert layout["xaxis"]["title"]["text"] == "Share of inappropriate items in the context (%)"
    assert layout["yaxis"]["title"]["text"] == "Poisoned rate (0–1)"
    names = [trace["name"] for trace in json.loads(app.get("plotly_chart")[0].proto.spec)["data"]]
    assert names == ["strength -2", "strength 0 (unsteered)", "strength +2"]
    assert len(ResultStore(store_path).list_runs(probe="poisoned")) == 3

    app.text_input(key="poisoned-steer-strengths").set_value("2, x")
    app.button[0].click()
    app.run()
    assert not app.exception and len(app.error) == 1 and "got 'x'" in app.error[0].value
    assert len(ResultStore(store_path).list_runs(probe="poisoned")) == 3


def test_without_stored_vectors_the_choice_says_how_to_build_one(tiny_model_dir, store_path) -> None:
    app = paste(open_page(tiny_model_dir), json.dumps(tiny_items()))
    assert not app.exception
    assert app.selectbox(key="poisoned-steer-vector").options == ["No steering"]
    assert any("No stored steering vector for this model yet" in c.value for c in app.caption)
