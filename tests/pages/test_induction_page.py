"""Induction page (Streamlit AppTest): the scan's figures, one head on text, live training, the sweep."""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

from probes.models import ModelSpec

APP = str(Path(__file__).resolve().parents[2] / "app.py")
PAGE = "pages/induction.py"
TIMEOUT = 180


def open_page(model_dir: Path, **state) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.session_state["model_spec"] = ModelSpec(name=str(model_dir), device="cpu")
    for key, value in state.items():
        at.session_state[key] = value
    at.run()
    at.switch_page(PAGE).run()
    return at


def chart_titles(at: AppTest) -> list[str]:
    import json

    return [json.loads(chart.proto.spec)["layout"]["title"]["text"] for chart in at.get("plotly_chart")]


def test_scan_shows_heatmaps_table_loss_curve_and_text_attention(tiny_model_dir, store_path):
    at = open_page(tiny_model_dir, induction_seq_len=10, induction_n_seqs=2)
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    assert at.title[0].value == "Induction heads"
    titles = chart_titles(at)
    for expected in ("Induction score", "Previous-token score", "Duplicate-token score", "Copying score",
                     "Per-token loss on repeated random tokens", "Attention pattern of L"):  # fmt: skip
        assert any(title.startswith(expected) for title in titles), (expected, titles)
    top = at.dataframe[0].value
    assert list(top.columns[:3]) == ["rank", "layer", "head"]
    assert top["induction"].is_monotonic_decreasing
    first = f"L{int(top['layer'][0])}H{int(top['head'][0])}"
    assert any(title == f"Attention pattern of {first} on your text" for title in titles)
    assert at.metric[0].value == first
    at.number_input(key=f"induction_head_{int(top['layer'][0])}_{int(top['head'][0])}").set_value(
        (int(top["head"][0]) + 1) % 4
    ).run()
    assert not at.exception
    assert any(t.endswith(f"H{(int(top['head'][0]) + 1) % 4} on your text") for t in chart_titles(at))


def emergence_spec(at: AppTest) -> dict:
    import json

    specs = [json.loads(chart.proto.spec) for chart in at.get("plotly_chart")]
    return next(spec for spec in specs if spec["layout"]["title"]["text"] == "Emergence: training curves (live)")


def test_start_training_draws_the_chart_marks_the_phase_change_and_caches_the_history(tiny_model_dir, store_path):
    # seed 2 with the default model and data: its phase change comes before step 750 (about 10 s of training)
    state = {"induction_steps_repeat": 750, "induction_record_repeat": 50, "induction_train_seed_repeat": 2,
             "induction_seq_len": 6, "induction_n_seqs": 1}  # fmt: skip
    at = open_page(tiny_model_dir, **state)
    assert "Emergence: training curves (live)" not in chart_titles(at)
    at.button(key="induction_start_training").click().run()
    assert not at.exception, at.exception
    assert "Emergence: training curves (live)" in chart_titles(at)
    assert not any("has not been trained yet" in caption.value for caption in at.caption)
    history = [frame.value for frame in at.dataframe]
    assert any(len(frame) == 2 * 4 for frame in history)  # final per-head scores of the 2 x 4 model
    spec = emergence_spec(at)
    names = {trace.get("name") for trace in spec["data"]}
    assert {"top-head induction score", "best-layer total induction", "loss ratio"} <= names
    texts = [annotation["text"] for annotation in spec["layout"]["annotations"]]
    assert "Induction attention: top head (0-1) vs best layer (sum over its 4 heads, 0-4)" in texts
    phase = next(int(text.split("step ")[1].rstrip(")")) for text in texts if text.startswith("phase change"))
    assert 0 < phase <= 750
    vertical = [shape for shape in spec["layout"]["shapes"] if shape.get("x0") == shape.get("x1") == phase]
    assert len(vertical) == 3  # the marker crosses all three panels
    assert at.metric[-4].value == str(phase) and float(at.metric[-2].value) >= 0.6
    again = open_page(tiny_model_dir, **state)  # a fresh session finds the run in the store, no button needed
    assert "Emergence: training curves (live)" in chart_titles(again)
    assert any("served from the cache" in caption.value for caption in again.caption)


def test_sweep_scans_each_checkpoint(tiny_model_dir, store_path):
    at = open_page(tiny_model_dir, induction_seq_len=6, induction_n_seqs=1)
    assert any("Not scanned yet: final" in info.value for info in at.info)
    at.button(key="induction_run_sweep").click().run()
    assert not at.exception, at.exception
    assert "Best induction score and loss vs training step" in chart_titles(at)
